"""Stochastic gradient descent with optional momentum, dampening, Nesterov momentum and weight decay."""
from fastnn.optim.optimizer import Optimizer, check_number


class SGD(Optimizer):
    """PyTorch's SGD: g = grad + weight_decay*p; buf = momentum*buf + (1-dampening)*g (buf = g on the first
    step); p -= lr * (g + momentum*buf if nesterov else buf). With momentum=0, p -= lr * g."""

    def __init__(self, params, lr=1e-3, momentum=0, dampening=0, weight_decay=0, nesterov=False, *,
                 maximize=False):
        defaults = dict(lr=lr, momentum=momentum, dampening=dampening, weight_decay=weight_decay,
                        nesterov=nesterov, maximize=maximize)
        super().__init__(params, defaults)

    def _check_options(self, options):
        check_number(options, "lr", message="Invalid learning rate")
        check_number(options, "momentum")
        check_number(options, "dampening", low=float("-inf"))
        check_number(options, "weight_decay")
        if options["nesterov"] and (options["momentum"] <= 0 or options["dampening"] != 0):
            raise ValueError("Nesterov momentum requires a momentum and zero dampening")

    def _update(self, p, param, grad, state, group, kernels):
        momentum = group["momentum"]
        first_step = "momentum_buffer" not in state
        if momentum != 0 and first_step:
            state["momentum_buffer"] = self.zeros_like_param(p)
        # Without momentum there is no buffer: the kernel gets an empty array it never reads.
        buf = state["momentum_buffer"].reshape(-1) if momentum != 0 else param[:0]
        kernels.sgd_step(param, grad, buf, group["lr"], momentum, group["dampening"], group["weight_decay"],
                         group["nesterov"], group["maximize"], first_step)

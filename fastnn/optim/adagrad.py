"""Adagrad: per-element learning rates from the running sum of squared gradients (Duchi et al., 2011)."""
from fastnn.optim.optimizer import Optimizer, check_number


class Adagrad(Optimizer):
    """PyTorch's Adagrad: g = grad + weight_decay*p; sum += g*g;
    p -= lr / (1 + (step-1)*lr_decay) * g / (sqrt(sum) + eps). The sum starts at initial_accumulator_value."""

    def __init__(self, params, lr=1e-2, lr_decay=0, weight_decay=0, initial_accumulator_value=0, eps=1e-10, *,
                 maximize=False):
        defaults = dict(lr=lr, lr_decay=lr_decay, weight_decay=weight_decay,
                        initial_accumulator_value=initial_accumulator_value, eps=eps, maximize=maximize)
        super().__init__(params, defaults)

    def _check_options(self, options):
        check_number(options, "lr", message="Invalid learning rate")
        check_number(options, "lr_decay")
        check_number(options, "weight_decay")
        check_number(options, "initial_accumulator_value")
        check_number(options, "eps", message="Invalid epsilon value")

    def _update(self, p, param, grad, state, group, kernels):
        if not state:
            state["step"] = 0
            state["sum"] = self.zeros_like_param(p)
            state["sum"][...] = group["initial_accumulator_value"]
        state["step"] += 1
        kernels.adagrad_step(param, grad, state["sum"].reshape(-1), state["step"], group["lr"], group["lr_decay"],
                             group["weight_decay"], group["eps"], group["maximize"])

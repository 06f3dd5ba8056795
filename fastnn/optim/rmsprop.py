"""RMSprop (Hinton's lecture 6e), with optional momentum and the centered variant (Graves, 2013)."""
from fastnn.optim.optimizer import Optimizer, check_number


class RMSprop(Optimizer):
    """PyTorch's RMSprop: g = grad + weight_decay*p; square_avg = alpha*square_avg + (1-alpha)*g*g;
    avg = sqrt(square_avg - grad_avg^2) + eps with centered=True (grad_avg: running mean of g), else
    sqrt(square_avg) + eps; with momentum: buf = momentum*buf + g/avg, p -= lr*buf; else p -= lr*g/avg."""

    def __init__(self, params, lr=1e-2, alpha=0.99, eps=1e-8, weight_decay=0, momentum=0, centered=False, *,
                 maximize=False):
        defaults = dict(lr=lr, alpha=alpha, eps=eps, weight_decay=weight_decay, momentum=momentum,
                        centered=centered, maximize=maximize)
        super().__init__(params, defaults)

    def _check_options(self, options):
        check_number(options, "lr", message="Invalid learning rate")
        check_number(options, "eps", message="Invalid epsilon value")
        check_number(options, "momentum")
        check_number(options, "weight_decay")
        check_number(options, "alpha")

    def _update(self, p, param, grad, state, group, kernels):
        momentum, centered = group["momentum"], group["centered"]
        if not state:
            state["step"] = 0
            state["square_avg"] = self.zeros_like_param(p)
        # Buffers appear when first needed, so a group switched to momentum/centered later still works.
        if momentum > 0 and "momentum_buffer" not in state:
            state["momentum_buffer"] = self.zeros_like_param(p)
        if centered and "grad_avg" not in state:
            state["grad_avg"] = self.zeros_like_param(p)
        state["step"] += 1
        # Unused buffers are passed as empty arrays the kernel never reads.
        grad_avg = state["grad_avg"].reshape(-1) if centered else param[:0]
        momentum_buffer = state["momentum_buffer"].reshape(-1) if momentum > 0 else param[:0]
        kernels.rmsprop_step(param, grad, state["square_avg"].reshape(-1), grad_avg, momentum_buffer, group["lr"],
                             group["alpha"], group["eps"], group["weight_decay"], momentum, centered,
                             group["maximize"])

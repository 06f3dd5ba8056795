"""Adadelta (Zeiler, 2012): per-coordinate step sizes from running averages of squared gradients and updates."""
from fastnn.optim.optimizer import Optimizer, check_number


class Adadelta(Optimizer):
    """PyTorch's Adadelta: g = grad + weight_decay*p; square_avg = rho*square_avg + (1-rho)*g^2;
    delta = sqrt(acc_delta + eps) / sqrt(square_avg + eps) * g; acc_delta = rho*acc_delta + (1-rho)*delta^2;
    p -= lr*delta. `foreach` is accepted for PyTorch's signature and ignored (one kernel per parameter), and
    so is `capturable` (CUDA graphs)."""

    def __init__(self, params, lr=1.0, rho=0.9, eps=1e-6, weight_decay=0, foreach=None, *, capturable=False,
                 maximize=False):
        defaults = dict(lr=lr, rho=rho, eps=eps, weight_decay=weight_decay, maximize=maximize)
        super().__init__(params, defaults)

    def _check_options(self, options):
        check_number(options, "lr", message="Invalid learning rate")
        check_number(options, "rho")
        if options["rho"] > 1.0:
            raise ValueError(f"Invalid rho value: {options['rho']}")
        check_number(options, "eps", message="Invalid epsilon value")
        check_number(options, "weight_decay")

    def _update(self, p, param, grad, state, group, kernels):
        if not state:
            state["step"] = 0
            state["square_avg"] = self.zeros_like_param(p)
            state["acc_delta"] = self.zeros_like_param(p)
        state["step"] += 1
        kernels.adadelta_step(param, grad, state["square_avg"].reshape(-1), state["acc_delta"].reshape(-1),
                              group["lr"], group["rho"], group["eps"], group["weight_decay"], group["maximize"])

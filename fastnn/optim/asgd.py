"""ASGD: SGD with Polyak-Ruppert averaging of the iterates (Polyak & Juditsky, 1992)."""
import math

from fastnn.optim.optimizer import Optimizer, check_number


class ASGD(Optimizer):
    """PyTorch's ASGD: g = grad + weight_decay*p; p = p*(1 - lambd*eta) - eta*g; the average
    ax += (p - ax)*mu (ax = p while mu == 1); then eta = lr / (1 + lambd*lr*t)^alpha and
    mu = 1 / max(1, t - t0), starting from eta = lr, mu = 1. The average is state["ax"]. `foreach` is accepted
    for PyTorch's signature and ignored, and so is `capturable` (CUDA graphs)."""

    def __init__(self, params, lr=1e-2, lambd=1e-4, alpha=0.75, t0=1e6, weight_decay=0, foreach=None,
                 maximize=False, capturable=False):
        defaults = dict(lr=lr, lambd=lambd, alpha=alpha, t0=t0, weight_decay=weight_decay, maximize=maximize)
        super().__init__(params, defaults)

    def _check_options(self, options):
        check_number(options, "lr", message="Invalid learning rate")
        check_number(options, "weight_decay")
        for name in ("lambd", "alpha", "t0"):  # PyTorch bounds none of them; they must still be numbers
            check_number(options, name, low=-math.inf)

    def _update(self, p, param, grad, state, group, kernels):
        if not state:
            state["step"] = 0
            state["eta"] = float(group["lr"])
            state["mu"] = 1.0
            state["ax"] = self.zeros_like_param(p)
        state["step"] += 1
        state["eta"], state["mu"] = kernels.asgd_step(
            param, grad, state["ax"].reshape(-1), state["step"], state["eta"], state["mu"], group["lr"],
            group["lambd"], group["alpha"], group["t0"], group["weight_decay"], group["maximize"])

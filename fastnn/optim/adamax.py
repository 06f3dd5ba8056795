"""Adamax: Adam with the infinity norm of past gradients in place of their second moment (Kingma & Ba, 2014)."""
from fastnn.optim.adam import Adam
from fastnn.optim.optimizer import Optimizer


class Adamax(Optimizer):
    """PyTorch's Adamax: g = grad + weight_decay*p; exp_avg = lerp(exp_avg, g, 1-beta1);
    exp_inf = max(beta2*exp_inf, |g| + eps); p -= lr/(1-beta1^t) * exp_avg/exp_inf. `foreach` is accepted for
    PyTorch's signature and ignored, and so is `capturable` (CUDA graphs)."""

    def __init__(self, params, lr=2e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0, foreach=None, *,
                 maximize=False, capturable=False):
        defaults = dict(lr=lr, betas=betas, eps=eps, weight_decay=weight_decay, maximize=maximize)
        super().__init__(params, defaults)

    def _check_options(self, options):
        Adam._check_options(self, options)  # lr, eps, betas, weight_decay: the same checks and messages

    def _update(self, p, param, grad, state, group, kernels):
        if not state:
            state["step"] = 0
            state["exp_avg"] = self.zeros_like_param(p)
            state["exp_inf"] = self.zeros_like_param(p)
        state["step"] += 1
        beta1, beta2 = group["betas"]
        kernels.adamax_step(param, grad, state["exp_avg"].reshape(-1), state["exp_inf"].reshape(-1), state["step"],
                            group["lr"], beta1, beta2, group["eps"], group["weight_decay"], group["maximize"])

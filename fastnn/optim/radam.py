"""RAdam: Adam with the variance of its adaptive learning rate rectified (Liu et al., 2019)."""
from fastnn.optim.adam import Adam
from fastnn.optim.optimizer import Optimizer


class RAdam(Optimizer):
    """PyTorch's RAdam: moments as Adam's, m_hat = m/(1-beta1^t); rho_inf = 2/(1-beta2) - 1,
    rho_t = rho_inf - 2t*beta2^t/(1-beta2^t). While rho_t <= 5 (the first steps) p -= lr*m_hat; then
    p -= lr * m_hat * r_t * sqrt(1-beta2^t)/(sqrt(v) + eps), r_t = sqrt((rho_t-4)(rho_t-2)rho_inf /
    ((rho_inf-4)(rho_inf-2)rho_t)). decoupled_weight_decay=True multiplies p by (1 - lr*weight_decay);
    otherwise weight_decay*p is added to g. `foreach` is accepted for PyTorch's signature and ignored, and so
    is `capturable` (CUDA graphs)."""

    def __init__(self, params, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0, decoupled_weight_decay=False, *,
                 foreach=None, maximize=False, capturable=False):
        defaults = dict(lr=lr, betas=betas, eps=eps, weight_decay=weight_decay, maximize=maximize,
                        decoupled_weight_decay=decoupled_weight_decay)
        super().__init__(params, defaults)

    def _check_options(self, options):
        Adam._check_options(self, options)  # lr, eps, betas, weight_decay: the same checks and messages

    def _update(self, p, param, grad, state, group, kernels):
        if not state:
            state["step"] = 0
            state["exp_avg"] = self.zeros_like_param(p)
            state["exp_avg_sq"] = self.zeros_like_param(p)
        state["step"] += 1
        beta1, beta2 = group["betas"]
        kernels.radam_step(param, grad, state["exp_avg"].reshape(-1), state["exp_avg_sq"].reshape(-1), state["step"],
                           group["lr"], beta1, beta2, group["eps"], group["weight_decay"],
                           group["decoupled_weight_decay"], group["maximize"])

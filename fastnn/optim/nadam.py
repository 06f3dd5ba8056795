"""NAdam: Adam with Nesterov momentum and a momentum schedule (Dozat, 2016)."""
from fastnn.optim.adam import Adam
from fastnn.optim.optimizer import Optimizer, check_number


class NAdam(Optimizer):
    """PyTorch's NAdam: momentum coefficients mu_t = beta1 * (1 - 0.5 * 0.96^(t*momentum_decay)); moments as
    Adam's; p -= lr*(1-mu_t)/(1-prod mu_1..t) * g/denom + lr*mu_{t+1}/(1-prod mu_1..t+1) * m/denom with
    denom = sqrt(v / (1-beta2^t)) + eps. decoupled_weight_decay=True multiplies p by (1 - lr*weight_decay)
    (NAdamW); otherwise weight_decay*p is added to g."""

    def __init__(self, params, lr=2e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0, momentum_decay=4e-3,
                 decoupled_weight_decay=False, *, maximize=False):
        defaults = dict(lr=lr, betas=betas, eps=eps, weight_decay=weight_decay, momentum_decay=momentum_decay,
                        decoupled_weight_decay=decoupled_weight_decay, maximize=maximize)
        super().__init__(params, defaults)

    def _check_options(self, options):
        Adam._check_options(self, options)  # lr, eps, betas, weight_decay: Adam's checks and messages
        check_number(options, "momentum_decay")

    def _update(self, p, param, grad, state, group, kernels):
        if not state:
            state["step"] = 0
            state["mu_product"] = 1.0
            state["exp_avg"] = self.zeros_like_param(p)
            state["exp_avg_sq"] = self.zeros_like_param(p)
        state["step"] += 1
        beta1, beta2 = group["betas"]
        state["mu_product"] = kernels.nadam_step(
            param, grad, state["exp_avg"].reshape(-1), state["exp_avg_sq"].reshape(-1), state["step"],
            state["mu_product"], group["lr"], beta1, beta2, group["eps"], group["weight_decay"],
            group["momentum_decay"], group["decoupled_weight_decay"], group["maximize"])

"""Adam and AdamW (decoupled weight decay), with optional AMSGrad and maximize."""
from fastnn.optim.optimizer import Optimizer, check_number


class Adam(Optimizer):
    """PyTorch's Adam: m = lerp(m, g, 1-beta1); v = beta2*v + (1-beta2)*g*g (v_max = max(v_max, v) with
    amsgrad); p -= lr/(1-beta1^t) * m / (sqrt(v)/sqrt(1-beta2^t) + eps). Coupled weight decay adds
    weight_decay*p to g; decoupled_weight_decay=True (AdamW) multiplies p by (1 - lr*weight_decay) instead."""

    def __init__(self, params, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0, amsgrad=False, *,
                 maximize=False, decoupled_weight_decay=False):
        defaults = dict(lr=lr, betas=betas, eps=eps, weight_decay=weight_decay, amsgrad=amsgrad,
                        maximize=maximize, decoupled_weight_decay=decoupled_weight_decay)
        super().__init__(params, defaults)

    def _check_options(self, options):
        check_number(options, "lr", message="Invalid learning rate")
        check_number(options, "eps", message="Invalid epsilon value")
        betas = options["betas"]
        if not isinstance(betas, (tuple, list)) or len(betas) != 2:
            raise TypeError(f"betas must be a pair of floats, got {betas!r}")
        for i in range(2):
            check_number({"beta": betas[i]}, "beta", high=1.0, message=f"Invalid beta parameter at index {i}")
        check_number(options, "weight_decay")

    def _update(self, p, param, grad, state, group, kernels):
        if not state:
            state["step"] = 0
            state["exp_avg"] = self.zeros_like_param(p)
            state["exp_avg_sq"] = self.zeros_like_param(p)
        amsgrad = group["amsgrad"]
        if amsgrad and "max_exp_avg_sq" not in state:
            state["max_exp_avg_sq"] = self.zeros_like_param(p)
        # Without amsgrad the kernel gets an empty array it never reads.
        max_exp_avg_sq = state["max_exp_avg_sq"].reshape(-1) if amsgrad else param[:0]
        state["step"] += 1
        beta1, beta2 = group["betas"]
        kernels.adam_step(param, grad, state["exp_avg"].reshape(-1), state["exp_avg_sq"].reshape(-1),
                          max_exp_avg_sq, state["step"], group["lr"], beta1, beta2, group["eps"],
                          group["weight_decay"], amsgrad, group["decoupled_weight_decay"], group["maximize"])


class AdamW(Adam):
    """Adam with decoupled weight decay (Loshchilov & Hutter): p *= 1 - lr*weight_decay before each step."""

    def __init__(self, params, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=1e-2, amsgrad=False, *,
                 maximize=False):
        super().__init__(params, lr=lr, betas=betas, eps=eps, weight_decay=weight_decay, amsgrad=amsgrad,
                         maximize=maximize, decoupled_weight_decay=True)

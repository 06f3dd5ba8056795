"""SparseAdam: Adam that updates only the rows a gradient touches (for embedding tables)."""
from fastnn.optim.adam import Adam
from fastnn.optim.optimizer import Optimizer


class SparseAdam(Optimizer):
    """PyTorch's SparseAdam on fastnn's dense gradients. PyTorch requires sparse-layout gradients (it raises
    "SparseAdam does not support dense gradients, please consider Adam instead") and updates the moments and
    values of the rows the sparse gradient holds. fastnn has no sparse tensors, so a row (a slice along the
    parameter's first dimension, e.g. one embedding vector; the whole tensor for a 0-d parameter) counts as held
    when its gradient has a nonzero entry. On those rows: m += (g - m)*(1-beta1); v += (g^2 - v)*(1-beta2);
    p -= lr*sqrt(1-beta2^t)/(1-beta1^t) * m/(sqrt(v) + eps); other rows keep their values and moments. The one
    difference from PyTorch: a row looked up whose gradient is exactly zero is updated by PyTorch (its moments
    decay) but not here. The step count t advances on every step the parameter has a gradient, as PyTorch's."""

    def __init__(self, params, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, maximize=False):
        defaults = dict(lr=lr, betas=betas, eps=eps, maximize=maximize)
        super().__init__(params, defaults)

    def _check_options(self, options):
        Adam._check_options(self, dict(options, weight_decay=0))  # lr, eps, betas: Adam's checks and messages
        # ... and PyTorch's SparseAdam refuses zero as well
        if options["lr"] == 0:
            raise ValueError(f"Invalid learning rate: {options['lr']}")
        if options["eps"] == 0:
            raise ValueError(f"Invalid epsilon value: {options['eps']}")

    def _update(self, p, param, grad, state, group, kernels):
        if not state:
            state["step"] = 0
            state["exp_avg"] = self.zeros_like_param(p)
            state["exp_avg_sq"] = self.zeros_like_param(p)
        state["step"] += 1
        if param.size == 0:
            return
        row_size = param.size // p.shape[0] if p.ndim else 1
        beta1, beta2 = group["betas"]
        kernels.sparse_adam_step(param, grad, state["exp_avg"].reshape(-1), state["exp_avg_sq"].reshape(-1), row_size,
                                 state["step"], group["lr"], beta1, beta2, group["eps"], group["maximize"])

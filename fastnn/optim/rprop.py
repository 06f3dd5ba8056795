"""Rprop: resilient backpropagation, per-coordinate step sizes adapted from gradient signs (Riedmiller & Braun)."""
from fastnn.optim.optimizer import Optimizer, check_number


class Rprop(Optimizer):
    """PyTorch's Rprop: each coordinate keeps a step size (starting at lr) and its previous gradient. When
    g*prev > 0 the step size is multiplied by etas[1], when < 0 by etas[0] and g is taken as 0; it is clamped to
    step_sizes = (min, max); then p -= sign(g)*step_size and prev = g. `foreach` is accepted for PyTorch's
    signature and ignored, and so is `capturable` (CUDA graphs)."""

    def __init__(self, params, lr=1e-2, etas=(0.5, 1.2), step_sizes=(1e-6, 50), *, capturable=False, foreach=None,
                 maximize=False):
        defaults = dict(lr=lr, etas=etas, step_sizes=step_sizes, maximize=maximize)
        super().__init__(params, defaults)

    def _check_options(self, options):
        check_number(options, "lr", message="Invalid learning rate")
        for name in ("etas", "step_sizes"):
            pair = options[name]
            if not isinstance(pair, (tuple, list)) or len(pair) != 2:
                raise TypeError(f"{name} must be a pair of floats, got {pair!r}")
            for i, value in enumerate(pair):
                check_number({f"{name}[{i}]": value}, f"{name}[{i}]", low=-float("inf"))
        etaminus, etaplus = options["etas"]
        if not 0.0 < etaminus < 1.0 < etaplus:
            raise ValueError(f"Invalid eta values: {etaminus}, {etaplus}")

    def _update(self, p, param, grad, state, group, kernels):
        if not state:
            state["step"] = 0
            state["prev"] = self.zeros_like_param(p)
            state["step_size"] = p._backend.xp.full_like(p._data, group["lr"], order="C")
        state["step"] += 1
        etaminus, etaplus = group["etas"]
        step_size_min, step_size_max = group["step_sizes"]
        kernels.rprop_step(param, grad, state["prev"].reshape(-1), state["step_size"].reshape(-1), etaminus, etaplus,
                           step_size_min, step_size_max, group["maximize"])

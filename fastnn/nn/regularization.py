"""Weight penalties to add to a loss (L1, L2, elastic net), and how they relate to optimizers' weight decay.

Each helper takes parameters (an iterable of Tensors such as `model.parameters()`, or one Tensor) and returns a
differentiable scalar Tensor, so `(loss + lam * l2_penalty(model.parameters())).backward()` works.

Coupled weight decay (SGD, Adam, RMSprop with `weight_decay=lam`): the optimizer adds lam * theta to each
parameter's gradient before its update. For plain SGD that is exactly the gradient of (lam / 2) * ||theta||^2,
so training with `SGD(weight_decay=lam)` and training with `SGD(weight_decay=0)` on
`loss + lam / 2 * l2_penalty(params)` take identical steps. With adaptive optimizers (Adam) the added lam * theta
is then divided by the running RMS of the gradient, so weights with large gradients are barely decayed: there
L2 regularisation is not the same as decaying the weights.

Decoupled weight decay (AdamW, Loshchilov & Hutter 2019): the optimizer shrinks theta directly,
theta <- theta - lr * lam * theta, outside the adaptive gradient step, so every weight decays at the same
relative rate whatever its gradient history; no penalty term in the loss reproduces it.
"""
import numbers

import numpy as np

from fastnn import ops
from fastnn.tensor import Tensor


def _penalty(params, term):
    """sum over params of sum(term(p)) as a scalar Tensor (0.0 when there are none)."""
    params = [params] if isinstance(params, Tensor) else list(params)
    total = None
    for i, p in enumerate(params):
        if not isinstance(p, Tensor) or p.dtype.kind != "f":
            raise TypeError(f"parameter {i} must be a floating point Tensor, got "
                            f"{p.dtype if isinstance(p, Tensor) else type(p).__name__}")
        value = ops.sum(term(p))
        total = value if total is None else total + value
    return Tensor(np.zeros((), np.float32)) if total is None else total


def l1_penalty(params):
    """sum |theta| over every element of every parameter (its gradient is sign(theta), 0 at theta = 0)."""
    return _penalty(params, ops.abs)


def l2_penalty(params):
    """sum theta^2 over every element of every parameter: the squared L2 norm, without a factor 1/2.

    SGD's weight_decay=lam equals adding (lam / 2) * l2_penalty(params) to the loss (see the module docstring).
    """
    return _penalty(params, lambda p: p * p)


def elastic_net_penalty(params, l1_ratio=0.5):
    """l1_ratio * l1_penalty + (1 - l1_ratio) * l2_penalty (Zou & Hastie): l1_ratio=1 is the lasso (L1) penalty,
    l1_ratio=0 the ridge (L2) penalty."""
    if isinstance(l1_ratio, bool) or not isinstance(l1_ratio, numbers.Real) or not 0.0 <= l1_ratio <= 1.0:
        raise ValueError(f"l1_ratio must be a number in [0, 1], got {l1_ratio!r}")
    return _penalty(params, lambda p: l1_ratio * ops.abs(p) + (1.0 - l1_ratio) * (p * p))

"""Ops on vectors along one dim, with PyTorch's formulas: one_hot, normalize, cosine_similarity,
pairwise_distance.

normalize, cosine_similarity and pairwise_distance are compositions of differentiable ops (norm, clamp, div,
sum), as in PyTorch, so their backward is the one of those ops; one_hot produces integers and has none.
"""
import numbers

import numpy as np

from fastnn.ops._util import as_tensor, check_same_device
from fastnn.ops.elementwise import add, clamp, div, mul, sub
from fastnn.ops.math import norm
from fastnn.ops.reduce import sum as _sum
from fastnn.tensor import Tensor


def one_hot(tensor, num_classes=-1):
    """int64 tensor of shape tensor.shape + (num_classes,) with a 1 at each class index."""
    if not isinstance(tensor, Tensor):
        raise TypeError(f"one_hot(): argument 'tensor' must be a Tensor, got {type(tensor).__name__}")
    if tensor.dtype.kind not in "iu":
        raise RuntimeError(f"one_hot is only applicable to index tensor of integer type, got {tensor.dtype}")
    if isinstance(num_classes, bool) or not isinstance(num_classes, numbers.Integral):
        raise TypeError(f"one_hot(): num_classes must be an int, got {num_classes!r}")
    xp = tensor._backend.xp
    data = tensor._data
    if data.size and int(data.min()) < 0:
        raise RuntimeError("Class values must be non-negative.")
    if num_classes == -1:
        if not data.size:
            raise RuntimeError("Can not infer total number of classes from empty tensor.")
        num_classes = int(data.max()) + 1
    elif num_classes < 0:
        raise RuntimeError(f"num_classes should be -1 or non-negative, got {num_classes}")
    elif data.size and int(data.max()) >= num_classes:
        raise RuntimeError("Class values must be smaller than num_classes.")
    out = (xp.expand_dims(data, -1) == xp.arange(int(num_classes))).astype(np.int64)
    return Tensor._wrap(out, tensor._backend)


def _floating(name, arg, x):
    if not isinstance(x, Tensor):
        raise TypeError(f"{name}(): argument '{arg}' must be a Tensor, got {type(x).__name__}")
    if x.dtype.kind != "f":
        raise TypeError(f"{name}(): expected a floating point tensor for '{arg}', got {x.dtype}")
    return x


def normalize(input, p=2.0, dim=1, eps=1e-12, out=None):
    """input / max(||input||_p over dim, eps)."""
    if out is not None:
        raise NotImplementedError("normalize(out=...) is not supported by fastnn; use the returned tensor")
    x = _floating("normalize", "input", input)
    denom = clamp(norm(x, p, dim, keepdim=True), min=eps)
    return div(x, denom)


def cosine_similarity(x1, x2, dim=1, eps=1e-8):
    """sum(x1 * x2, dim) / (max(||x1||, eps) * max(||x2||, eps)), each vector divided by its norm first (PyTorch's
    order, which keeps the result in [-1, 1]); x1 and x2 broadcast."""
    x1, x2 = _floating("cosine_similarity", "x1", x1), _floating("cosine_similarity", "x2", x2)
    check_same_device(x1, x2)
    shape = np.broadcast_shapes(x1.shape, x2.shape)
    a = x1 if x1.shape == shape else x1.expand(shape)
    b = x2 if x2.shape == shape else x2.expand(shape)
    na = clamp(norm(a, 2, dim, keepdim=True), min=eps)
    nb = clamp(norm(b, 2, dim, keepdim=True), min=eps)
    return _sum(mul(div(a, na), div(b, nb)), dim)


def pairwise_distance(x1, x2, p=2.0, eps=1e-6, keepdim=False):
    """||x1 - x2 + eps||_p over the last dim (eps keeps the norm, and its gradient, away from zero)."""
    x1, x2 = _floating("pairwise_distance", "x1", x1), _floating("pairwise_distance", "x2", x2)
    check_same_device(x1, x2)
    ndim = max(x1.ndim, x2.ndim)
    diff = add(sub(x1, x2), as_tensor(eps, x1))
    return norm(diff, p, ndim - 1 if ndim else None, keepdim=keepdim)

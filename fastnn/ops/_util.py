"""Helpers shared by the op modules: wrapping scalars, normalising dims."""
import numpy as np

from fastnn.tensor import Tensor


def as_tensor(value, like):
    """Tensor for an op argument. A scalar is weak, as in PyTorch: it takes `like`'s dtype unless it is a
    float meeting an integer/bool tensor (float32) or an int meeting a bool tensor (int64)."""
    if isinstance(value, Tensor):
        return value
    arr = np.asarray(value)
    if arr.ndim == 0 and like is not None:
        if like.dtype.kind in "fc" or arr.dtype.kind == "b":
            dtype = like.dtype
        elif arr.dtype.kind == "f":
            dtype = np.dtype("float32")
        else:
            dtype = like.dtype if like.dtype.kind != "b" else np.dtype("int64")
        arr = arr.astype(dtype)
    elif arr.dtype == np.float64 and not isinstance(value, np.ndarray):
        arr = arr.astype(np.float32)
    return Tensor(arr, device=like.device if like is not None else "cpu")


def normalize_dim(dim, ndim):
    """Validated non-negative axis (or tuple of axes) for a tensor of `ndim` dims; None stays None."""
    if dim is None:
        return None
    if isinstance(dim, (tuple, list)):
        return tuple(sorted(normalize_dim(d, ndim) for d in dim))
    if not isinstance(dim, (int, np.integer)) or isinstance(dim, bool):
        raise TypeError(f"dim must be an int or tuple of ints, got {dim!r}")
    lo, hi = -max(ndim, 1), max(ndim, 1) - 1
    if not lo <= dim <= hi:
        raise IndexError(f"dimension out of range (expected to be in range of [{lo}, {hi}], but got {dim})")
    return int(dim) % max(ndim, 1)


def shape_args(args):
    """Accept f(2, 3) and f((2, 3)) alike."""
    if len(args) == 1 and isinstance(args[0], (tuple, list)):
        return tuple(args[0])
    return tuple(args)

"""Tensor constructors (fastnn.tensor, zeros, randn, ...). Random ones draw from fastnn.random."""
import numpy as np

from fastnn import random as _random
from fastnn.ops._util import shape_args
from fastnn.tensor import Tensor, as_dtype, float32, int64


def _make(data, dtype, requires_grad, device):
    if dtype is not None:
        data = data.astype(as_dtype(dtype), copy=False)
    t = Tensor(data, device=device)
    if device != "cpu":
        t = t.to(device)
    return t.requires_grad_(requires_grad) if requires_grad else t


def tensor(data, dtype=None, requires_grad=False, device="cpu"):
    """A new tensor holding a copy of `data`. Python floats become float32 and ints int64, as in PyTorch;
    an ndarray keeps its dtype."""
    if isinstance(data, Tensor):
        data = data.data
    if isinstance(data, (np.ndarray, np.generic)):
        arr = np.array(data, copy=True)
    else:
        arr = np.array(data)
        if arr.dtype.kind not in "biuf":
            raise TypeError(f"can't convert {type(data).__name__} of dtype {arr.dtype} to a tensor")
        if dtype is None:  # an explicit dtype converts straight from the exact values
            if arr.dtype == np.float64:
                arr = arr.astype(float32)
            elif arr.dtype.kind in "iu":
                arr = arr.astype(int64)
    return _make(arr, dtype, requires_grad, device)


def zeros(*size, dtype=None, requires_grad=False, device="cpu"):
    return _make(np.zeros(shape_args(size), dtype=as_dtype(dtype or float32)), None, requires_grad, device)


def ones(*size, dtype=None, requires_grad=False, device="cpu"):
    return _make(np.ones(shape_args(size), dtype=as_dtype(dtype or float32)), None, requires_grad, device)


def empty(*size, dtype=None, requires_grad=False, device="cpu"):
    return _make(np.empty(shape_args(size), dtype=as_dtype(dtype or float32)), None, requires_grad, device)


def full(size, fill_value, dtype=None, requires_grad=False, device="cpu"):
    if dtype is None:
        dtype = float32 if isinstance(fill_value, float) else (np.dtype(bool) if isinstance(fill_value, bool)
                                                                else int64)
    return _make(np.full(shape_args((size,)) if isinstance(size, int) else tuple(size), fill_value,
                         dtype=as_dtype(dtype)), None, requires_grad, device)


def arange(start, end=None, step=1, dtype=None, requires_grad=False, device="cpu"):
    if end is None:
        start, end = 0, start
    if dtype is None:
        dtype = int64 if all(isinstance(v, (int, np.integer)) for v in (start, end, step)) else float32
    return _make(np.arange(start, end, step, dtype=as_dtype(dtype)), None, requires_grad, device)


def rand(*size, dtype=None, requires_grad=False, device="cpu", generator=None):
    gen = generator or _random.default_generator()
    return _make(gen.random(shape_args(size), dtype=as_dtype(dtype or float32)), None, requires_grad, device)


def randn(*size, dtype=None, requires_grad=False, device="cpu", generator=None):
    gen = generator or _random.default_generator()
    return _make(gen.standard_normal(shape_args(size), dtype=as_dtype(dtype or float32)), None, requires_grad,
                 device)


def randint(low, high=None, size=(), dtype=None, device="cpu", generator=None):
    if high is None:
        low, high = 0, low
    gen = generator or _random.default_generator()
    return _make(gen.integers(low, high, size=tuple(size), dtype=as_dtype(dtype or int64)), None, False, device)


def _like(fn, t, dtype, requires_grad, device):
    return fn(t.shape, dtype=dtype or t.dtype, requires_grad=requires_grad, device=device or t.device)


def zeros_like(t, dtype=None, requires_grad=False, device=None):
    return _like(zeros, t, dtype, requires_grad, device)


def ones_like(t, dtype=None, requires_grad=False, device=None):
    return _like(ones, t, dtype, requires_grad, device)


def rand_like(t, dtype=None, requires_grad=False, device=None):
    return _like(rand, t, dtype, requires_grad, device)


def randn_like(t, dtype=None, requires_grad=False, device=None):
    return _like(randn, t, dtype, requires_grad, device)


def full_like(t, fill_value, dtype=None, requires_grad=False, device=None):
    return full(t.shape, fill_value, dtype=dtype or t.dtype, requires_grad=requires_grad, device=device or t.device)

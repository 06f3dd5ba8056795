"""Tensor constructors (fastnn.tensor, zeros, randn, ...), built by the target device's backend.

Random ones draw through the backend (`Backend.draw`), i.e. from fastnn's seeded generator unless `generator` is
given, so `fastnn.manual_seed` governs every device.
"""
import numpy as np

from fastnn import _dispatch
from fastnn.ops._util import shape_args
from fastnn.tensor import Tensor, as_dtype, float32, int64

_REFUSED_TYPES = (str, bytes, dict, set, frozenset)


def _dtype(dtype, default):
    """The dtype to build, refusing what fastnn tensors cannot hold (complex, strings, objects)."""
    dtype = default if dtype is None else as_dtype(dtype)
    if dtype.kind not in "biuf":
        raise TypeError(f"dtype {dtype} is not supported: fastnn tensors hold bool, integer or floating point data")
    return dtype


def _finish(data, backend, requires_grad):
    t = Tensor._wrap(data, backend)
    return t.requires_grad_(True) if requires_grad else t


def tensor(data, dtype=None, requires_grad=False, device=None):
    """A new tensor holding a copy of `data`, on `device` (default: data's device if it is a Tensor, else the CPU,
    as in PyTorch). Python floats become float32 and ints int64, as in PyTorch; an ndarray keeps its dtype.
    Strings, dicts, objects and complex numbers are refused with a TypeError."""
    if isinstance(data, Tensor):
        device = data.device if device is None else device
        data = data._backend.to_host(data.data)
    backend = _dispatch.backend(device)
    if isinstance(data, _REFUSED_TYPES):
        raise TypeError(f"fastnn.tensor: can't convert data of type {type(data).__name__} to a tensor; expected "
                        f"numbers, (nested) sequences of numbers or an ndarray")
    is_array = isinstance(data, (np.ndarray, np.generic))
    try:
        host = np.array(data, copy=True)
    except ValueError as e:  # ragged nesting
        raise ValueError(f"fastnn.tensor: data is not a regular (rectangular) nesting of numbers: {e}") from None
    if host.dtype.kind not in "biuf":
        what = f"an ndarray of dtype {host.dtype}" if is_array else (
            f"{type(data).__name__} holding {host.dtype} data" if host.dtype.kind != "O"
            else f"{type(data).__name__} holding non-numeric elements (dtype object)")
        raise TypeError(f"fastnn.tensor: can't convert {what} to a tensor; fastnn tensors hold bool, integer or "
                        f"floating point data")
    if dtype is not None:  # an explicit dtype converts straight from the exact values
        host = host.astype(_dtype(dtype, None), copy=False)
    elif not is_array:
        if host.dtype.kind == "f":
            host = host.astype(float32)
        elif host.dtype.kind in "iu":
            host = host.astype(int64)
    return _finish(backend.from_host(host), backend, requires_grad)


def zeros(*size, dtype=None, requires_grad=False, device="cpu"):
    backend = _dispatch.backend(device)
    return _finish(backend.xp.zeros(shape_args(size), dtype=_dtype(dtype, float32)), backend, requires_grad)


def ones(*size, dtype=None, requires_grad=False, device="cpu"):
    backend = _dispatch.backend(device)
    return _finish(backend.xp.ones(shape_args(size), dtype=_dtype(dtype, float32)), backend, requires_grad)


def empty(*size, dtype=None, requires_grad=False, device="cpu"):
    backend = _dispatch.backend(device)
    return _finish(backend.xp.empty(shape_args(size), dtype=_dtype(dtype, float32)), backend, requires_grad)


def full(size, fill_value, dtype=None, requires_grad=False, device="cpu"):
    default = float32 if isinstance(fill_value, float) else (np.dtype(bool) if isinstance(fill_value, bool)
                                                             else int64)
    shape = (size,) if isinstance(size, int) else tuple(size)
    backend = _dispatch.backend(device)
    return _finish(backend.xp.full(shape, fill_value, dtype=_dtype(dtype, default)), backend, requires_grad)


def arange(start, end=None, step=1, dtype=None, requires_grad=False, device="cpu"):
    if end is None:
        start, end = 0, start
    if step == 0:
        raise ValueError(f"arange: step must be nonzero, got step={step!r}")
    if (end - start) * step < 0:
        raise ValueError(f"arange: upper bound and larger bound inconsistent with step sign: start={start!r}, "
                         f"end={end!r}, step={step!r}")
    default = int64 if all(isinstance(v, (int, np.integer)) for v in (start, end, step)) else float32
    backend = _dispatch.backend(device)
    return _finish(backend.xp.arange(start, end, step, dtype=_dtype(dtype, default)), backend, requires_grad)


def _drawn(method, shape, dtype, default, requires_grad, device, generator, **params):
    backend = _dispatch.backend(device)
    data = backend.draw(method, shape, _dtype(dtype, default), generator=generator, **params)
    return _finish(data, backend, requires_grad)


def _float_dtype(dtype, name):
    """rand/randn draw floats: PyTorch refuses an integer dtype ("not implemented for 'Long'"), as here."""
    dtype = _dtype(dtype, float32)
    if dtype.kind != "f":
        raise TypeError(f"{name}: dtype must be a floating point type, got {dtype}")
    return dtype


def rand(*size, dtype=None, requires_grad=False, device="cpu", generator=None):
    return _drawn("random", shape_args(size), _float_dtype(dtype, "rand"), None, requires_grad, device, generator)


def randn(*size, dtype=None, requires_grad=False, device="cpu", generator=None):
    return _drawn("standard_normal", shape_args(size), _float_dtype(dtype, "randn"), None, requires_grad, device,
                  generator)


def randint(low, high=None, size=(), dtype=None, device="cpu", generator=None):
    if high is None:
        low, high = 0, low
    return _drawn("integers", tuple(size), dtype, int64, False, device, generator, low=low, high=high)


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

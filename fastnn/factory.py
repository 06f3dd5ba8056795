"""Tensor constructors (fastnn.tensor, zeros, randn, ...), built by the target device's backend.

Random ones draw through the backend (`Backend.draw`), i.e. from fastnn's seeded generator unless `generator` is
given, so `fastnn.manual_seed` governs every device.
"""
import numpy as np

from fastnn import _dispatch
from fastnn.ops._util import shape_args
from fastnn.tensor import Tensor, as_dtype, get_default_dtype, int64

_REFUSED_TYPES = (str, bytes, dict, set, frozenset)


def _dtype(dtype, default=None):
    """The dtype to build (`default`, else the default dtype, when None), refusing what fastnn tensors cannot hold
    (complex, strings, objects)."""
    dtype = (get_default_dtype() if default is None else default) if dtype is None else as_dtype(dtype)
    if dtype.kind not in "biuf":
        raise TypeError(f"dtype {dtype} is not supported: fastnn tensors hold bool, integer or floating point data")
    return dtype


def _finish(data, backend, requires_grad):
    t = Tensor._wrap(data, backend)
    return t.requires_grad_(True) if requires_grad else t


def tensor(data, dtype=None, requires_grad=False, device=None):
    """A new tensor holding a copy of `data`, on `device` (default: data's device if it is a Tensor, else the CPU,
    as in PyTorch). Python floats become the default dtype (float32 unless set_default_dtype) and ints int64, as
    in PyTorch; an ndarray keeps its dtype.
    Strings, dicts, objects and complex numbers are refused with a TypeError."""
    if isinstance(data, Tensor):
        device = data.device if device is None else device
        data = data._backend.to_host(data._data)
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
    if not host.dtype.isnative:  # e.g. big-endian data read from a file: kernels compute in native order
        host = host.astype(host.dtype.newbyteorder("="))
    if dtype is not None:  # an explicit dtype converts straight from the exact values
        host = host.astype(_dtype(dtype, None), copy=False)
    elif not is_array:
        if host.dtype.kind == "f":
            host = host.astype(get_default_dtype())
        elif host.dtype.kind in "iu":
            host = host.astype(int64)
    return _finish(backend.from_host(host), backend, requires_grad)


def zeros(*size, dtype=None, requires_grad=False, device="cpu"):
    backend = _dispatch.backend(device)
    return _finish(backend.xp.zeros(shape_args(size), dtype=_dtype(dtype)), backend, requires_grad)


def ones(*size, dtype=None, requires_grad=False, device="cpu"):
    backend = _dispatch.backend(device)
    return _finish(backend.xp.ones(shape_args(size), dtype=_dtype(dtype)), backend, requires_grad)


def empty(*size, dtype=None, requires_grad=False, device="cpu"):
    backend = _dispatch.backend(device)
    return _finish(backend.xp.empty(shape_args(size), dtype=_dtype(dtype)), backend, requires_grad)


def full(size, fill_value, dtype=None, requires_grad=False, device="cpu"):
    default = get_default_dtype() if isinstance(fill_value, float) else (
        np.dtype(bool) if isinstance(fill_value, bool) else int64)
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
    default = int64 if all(isinstance(v, (int, np.integer)) for v in (start, end, step)) else get_default_dtype()
    backend = _dispatch.backend(device)
    return _finish(backend.xp.arange(start, end, step, dtype=_dtype(dtype, default)), backend, requires_grad)


def _drawn(method, shape, dtype, default, requires_grad, device, generator, **params):
    backend = _dispatch.backend(device)
    data = backend.draw(method, shape, _dtype(dtype, default), generator=generator, **params)
    return _finish(data, backend, requires_grad)


def _float_dtype(dtype, name):
    """rand/randn draw floats: PyTorch refuses an integer dtype ("not implemented for 'Long'"), as here."""
    dtype = _dtype(dtype)
    if dtype.kind != "f":
        raise TypeError(f"{name}: dtype must be a floating point type, got {dtype}")
    return dtype


def rand(*size, dtype=None, requires_grad=False, device="cpu", generator=None):
    return _drawn("random", shape_args(size), _float_dtype(dtype, "rand"), None, requires_grad, device, generator)


def randn(*size, dtype=None, requires_grad=False, device="cpu", generator=None):
    return _drawn("standard_normal", shape_args(size), _float_dtype(dtype, "randn"), None, requires_grad, device,
                  generator)


def randint(low, high=None, size=(), dtype=None, device="cpu", generator=None):
    if isinstance(high, (tuple, list)):  # PyTorch's randint(high, size) overload
        low, high, size = 0, low, high
    elif high is None:
        low, high = 0, low
    return _drawn("integers", tuple(size), dtype, int64, False, device, generator, low=low, high=high)


def _like(fn, t, dtype, requires_grad, device, **generator):
    return fn(t.shape, dtype=dtype or t.dtype, requires_grad=requires_grad, device=device or t.device, **generator)


def zeros_like(t, dtype=None, requires_grad=False, device=None):
    return _like(zeros, t, dtype, requires_grad, device)


def ones_like(t, dtype=None, requires_grad=False, device=None):
    return _like(ones, t, dtype, requires_grad, device)


def rand_like(t, dtype=None, requires_grad=False, device=None, *, generator=None):
    return _like(rand, t, dtype, requires_grad, device, generator=generator)


def randn_like(t, dtype=None, requires_grad=False, device=None, *, generator=None):
    return _like(randn, t, dtype, requires_grad, device, generator=generator)


def full_like(t, fill_value, dtype=None, requires_grad=False, device=None):
    return full(t.shape, fill_value, dtype=dtype or t.dtype, requires_grad=requires_grad, device=device or t.device)


def empty_like(t, dtype=None, requires_grad=False, device=None):
    return _like(empty, t, dtype, requires_grad, device)


def randint_like(input, low=0, high=None, *, dtype=None, requires_grad=False, device=None, generator=None):
    """randint_like(input, high) or randint_like(input, low, high): integers in [low, high) of input's shape and
    (by default) dtype."""
    if high is None:
        low, high = 0, low
    return _drawn("integers", tuple(input.shape), dtype or input.dtype, None, requires_grad,
                  device or input.device, generator, low=low, high=high)


def eye(n, m=None, *, dtype=None, requires_grad=False, device="cpu"):
    """The n x m (default n x n) identity matrix."""
    for name, v in (("n", n), ("m", m)):
        if v is not None and (not isinstance(v, (int, np.integer)) or isinstance(v, bool) or v < 0):
            raise ValueError(f"eye(): {name} must be a non-negative int, got {v!r}")
    backend = _dispatch.backend(device)
    return _finish(backend.xp.eye(n, n if m is None else m, dtype=_dtype(dtype)), backend, requires_grad)


def _steps(steps, name):
    if not isinstance(steps, (int, np.integer)) or isinstance(steps, bool) or steps < 0:
        raise ValueError(f"{name}(): steps must be a non-negative int, got {steps!r}")
    return int(steps)


def linspace(start, end, steps, *, dtype=None, requires_grad=False, device="cpu"):
    """`steps` evenly spaced values from start to end inclusive (the default dtype unless given, as in PyTorch)."""
    steps = _steps(steps, "linspace")
    backend = _dispatch.backend(device)
    dtype = _dtype(dtype)
    data = backend.xp.linspace(float(start), float(end), steps, dtype=np.dtype(np.float64))
    if dtype.kind in "iu":  # PyTorch truncates toward zero for integer dtypes
        data = backend.xp.trunc(data)
    return _finish(data.astype(dtype), backend, requires_grad)


def logspace(start, end, steps, base=10.0, *, dtype=None, requires_grad=False, device="cpu"):
    """base ** linspace(start, end, steps)."""
    steps = _steps(steps, "logspace")
    backend = _dispatch.backend(device)
    dtype = _dtype(dtype)
    exponents = backend.xp.linspace(float(start), float(end), steps, dtype=np.dtype(np.float64))
    return _finish((float(base) ** exponents).astype(dtype), backend, requires_grad)


def randperm(n, *, generator=None, dtype=None, requires_grad=False, device="cpu"):
    """A random permutation of 0 .. n-1 (int64 by default): the order that sorts n uniform draws."""
    if not isinstance(n, (int, np.integer)) or isinstance(n, bool) or n < 0:
        raise ValueError(f"randperm(): n must be a non-negative int, got {n!r}")
    backend = _dispatch.backend(device)
    keys = backend.draw("random", (int(n),), np.dtype(np.float64), generator=generator)
    data = backend.xp.argsort(keys, kind="stable").astype(_dtype(dtype, int64))
    return _finish(data, backend, requires_grad)


_NUMPY_TYPES = "floating point (up to float64), signed and unsigned integer (up to 64 bits) and bool"


def from_numpy(ndarray):
    """A CPU tensor sharing memory with `ndarray` (writes through either show in both), as torch.from_numpy.
    Refused like PyTorch: non-ndarrays, non-native byte order, negative strides, unsupported dtypes."""
    if not isinstance(ndarray, np.ndarray):
        raise TypeError(f"from_numpy(): expected np.ndarray (got {type(ndarray).__name__})")
    if ndarray.dtype.kind not in "biuf" or ndarray.dtype.itemsize > 8:
        raise TypeError(f"from_numpy(): can't convert np.ndarray of type {ndarray.dtype}. The only supported types "
                        f"are: {_NUMPY_TYPES}.")
    if not ndarray.dtype.isnative:
        raise ValueError("from_numpy(): given numpy array has byte order different from the native byte order. "
                         "Conversion between byte orders is currently not supported.")
    if any(s < 0 for s in ndarray.strides):
        raise ValueError("from_numpy(): at least one stride in the given numpy array is negative; copy it first "
                         "(array.copy())")
    return Tensor._wrap(ndarray, _dispatch.backend("cpu"))


def as_tensor(data, dtype=None, device=None):
    """`data` as a tensor, sharing memory when it can (a Tensor or a CPU-bound ndarray of the wanted dtype and
    device); otherwise a copy, as fastnn.tensor makes."""
    if isinstance(data, Tensor):
        return data.to(*(a for a in (device, dtype) if a is not None))
    if isinstance(data, np.ndarray) and (device is None or _dispatch.backend(device) is _dispatch.backend("cpu")):
        if (dtype is None or as_dtype(dtype) == data.dtype) and data.dtype.isnative \
                and data.dtype.kind in "biuf" and all(s >= 0 for s in data.strides):
            return from_numpy(data)
        return tensor(data, dtype=dtype, device=device)
    return tensor(data, dtype=dtype, device=device)


def _triangle_indices(name, row, col, offset, dtype, device, upper):
    for arg, v in (("row", row), ("col", col), ("offset", offset)):
        if not isinstance(v, (int, np.integer)) or isinstance(v, bool) or (arg != "offset" and v < 0):
            raise ValueError(f"{name}(): {arg} must be a{' non-negative' if arg != 'offset' else 'n'} int, got {v!r}")
    backend = _dispatch.backend(device)
    xp = backend.xp
    r = xp.arange(row)[:, None]
    c = xp.arange(col)[None, :]
    inside = (c - r >= offset) if upper else (c - r <= offset)
    rows, cols = xp.nonzero(inside)  # row-major order, as PyTorch lists them
    return _finish(xp.stack([rows, cols]).astype(_dtype(dtype, int64)), backend, False)


def tril_indices(row, col, offset=0, *, dtype=None, device="cpu"):
    """The 2 x N (row, column) coordinates of the lower triangle of a row x col matrix (diagonal `offset`)."""
    return _triangle_indices("tril_indices", row, col, offset, dtype, device, upper=False)


def triu_indices(row, col, offset=0, *, dtype=None, device="cpu"):
    """The 2 x N (row, column) coordinates of the upper triangle of a row x col matrix (diagonal `offset`)."""
    return _triangle_indices("triu_indices", row, col, offset, dtype, device, upper=True)

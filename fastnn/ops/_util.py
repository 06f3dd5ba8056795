"""Helpers shared by the op modules: PyTorch's type promotion, wrapping scalars, normalising dims."""
import numpy as np

from fastnn.tensor import Tensor

_INT64, _FLOAT32, _BOOL = np.dtype(np.int64), np.dtype(np.float32), np.dtype(np.bool_)


def promote_types(d1, d2):
    """PyTorch's promote_types on bool/integer/float dtypes: a float meeting an integer or bool keeps the float's
    dtype (int64 + float16 -> float16, where NumPy gives float64); otherwise NumPy's table, which agrees."""
    if d1 == d2:
        return d1
    f1, f2 = d1.kind == "f", d2.kind == "f"
    if f1 != f2:
        return d1 if f1 else d2
    return np.promote_types(d1, d2)


def _combine(higher, lower):
    """PyTorch's combine_categories: a lower-priority operand changes the result only when it is of a higher
    category (bool < integer < float)."""
    if higher is None:
        return lower
    if lower is None or higher.kind == "f":
        return higher
    if higher.kind == "b" or lower.kind == "f":
        return promote_types(higher, lower)
    return higher


def scalar_dtype(value):
    """The dtype PyTorch gives a Python (or NumPy) number in an op: bool, int64, or the default float32."""
    if isinstance(value, (bool, np.bool_)):
        return _BOOL
    if isinstance(value, (int, np.integer)):
        return _INT64
    if isinstance(value, (float, np.floating)):
        return _FLOAT32
    raise TypeError(f"expected a Tensor or a Python number, got {type(value).__name__}")


def result_type(*operands):
    """The dtype of an op on `operands` (Tensors and numbers), by PyTorch's rule: tensors with dimensions outrank
    0-d tensors, which outrank numbers; within a rank dtypes promote; a lower rank counts only if it is of a higher
    category. E.g. float32 tensor + float64 0-d tensor -> float32; int64 tensor + 1.5 -> float32."""
    ranks = [None, None, None]  # numbers, 0-d tensors, tensors with dims
    for v in operands:
        if isinstance(v, Tensor):
            rank, dtype = (2 if v.ndim else 1), v.dtype
        else:
            rank, dtype = 0, scalar_dtype(v)
        ranks[rank] = dtype if ranks[rank] is None else promote_types(ranks[rank], dtype)
    return _combine(ranks[2], _combine(ranks[1], ranks[0]))


def _is_scalar(value):
    return isinstance(value, (bool, int, float, np.generic))


def as_tensor(value, like):
    """Tensor for an op argument, on `like`'s device (the CPU when `like` is None). A number is weak, as in
    PyTorch: it takes `like`'s dtype unless its category is higher (a float meeting an integer/bool tensor gives
    float32, an int meeting a bool tensor int64). A list of floats gives float32; an ndarray keeps its dtype."""
    if isinstance(value, Tensor):
        return value
    backend = like._backend if like is not None else _cpu()
    if _is_scalar(value) or (isinstance(value, np.ndarray) and value.ndim == 0):
        if not _is_scalar(value):  # a 0-d host array counts as a number
            value = value.item()
        if like is None:
            dtype = scalar_dtype(value)
        elif like.dtype.kind == "f":  # a number never changes a float tensor's dtype (the common case, kept fast)
            dtype = like.dtype
        else:
            dtype = result_type(like, value)
        return Tensor._wrap(backend.xp.asarray(value, dtype=dtype), backend)
    if isinstance(value, (list, tuple)):
        arr = backend.asarray(value)
        if arr.dtype.kind == "f" and arr.dtype != _FLOAT32:  # Python floats are float32 tensors, as in PyTorch
            arr = arr.astype(_FLOAT32)
    else:
        arr = backend.asarray(value)
    if arr.dtype.kind not in "biuf":
        raise TypeError(f"expected a Tensor or numeric data, got {type(value).__name__} of dtype {arr.dtype}")
    return Tensor._wrap(arr, backend)


def _cpu():
    from fastnn import _dispatch
    return _dispatch.backend("cpu")


def scalar_array(out, xp):
    """NumPy turns 0-d results into NumPy scalars; tensors hold arrays (as CuPy always returns), so wrap them."""
    return out if out.ndim or not isinstance(out, np.generic) else xp.asarray(out)


def check_same_device(a, b):
    """Before computing (a device array refuses a foreign one with a less clear error): PyTorch's message."""
    if a._backend is not b._backend:
        raise RuntimeError(f"expected all tensors on the same device, got {a.device} and {b.device}")


def product_saved(a, b):
    """What the backward of a product a*b (or a@b) reads: b for a's gradient, a for b's, as PyTorch saves them."""
    return ((b,) if a.requires_grad else ()) + ((a,) if b.requires_grad else ())


def normalize_dim(dim, ndim):
    """Validated non-negative axis (or tuple of axes) for a tensor of `ndim` dims; None stays None."""
    if dim is None:
        return None
    span = ndim if ndim > 0 else 1
    if dim.__class__ is int and -span <= dim < span:  # the usual case, first: ~0.2 us instead of ~0.6
        return dim % span
    if isinstance(dim, (tuple, list)):
        return tuple(sorted([normalize_dim(d, ndim) for d in dim]))
    if not isinstance(dim, (int, np.integer)) or isinstance(dim, bool):
        raise TypeError(f"dim must be an int or tuple of ints, got {dim!r}")
    lo, hi = -span, span - 1
    if not lo <= dim <= hi:
        raise IndexError(f"dimension out of range (expected to be in range of [{lo}, {hi}], but got {dim})")
    return int(dim) % span


def shape_args(args):
    """Accept f(2, 3) and f((2, 3)) alike."""
    if len(args) == 1 and isinstance(args[0], (tuple, list)):
        return tuple(args[0])
    return tuple(args)


def add_tangents(*terms):
    """The sum of a tangent rule's terms, leaving out the None ones (inputs without a tangent)."""
    present = [t for t in terms if t is not None]
    total = present[0]
    for t in present[1:]:
        total = total + t
    return total


def tangent_or_zeros(tangent, x):
    """`tangent`, or zeros shaped like x when the input has none (for rules that need every operand's)."""
    return tangent if tangent is not None else Tensor._wrap(x._backend.xp.zeros(x.shape, x.dtype), x._backend)

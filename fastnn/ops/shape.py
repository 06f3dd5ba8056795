"""Shape ops: views, indexing, concatenation, padding.

Views (reshape of a contiguous tensor, permute, expand, squeeze/unsqueeze, basic indexing) share their input's
storage and so its version counter, as in PyTorch; none of these backward passes reads input values.
"""
import math

import numpy as np

from fastnn.autograd import make_result, unbroadcast
from fastnn.ops.elementwise import astype
from fastnn.ops._util import check_same_device, normalize_dim, result_type, scalar_array, shape_args
from fastnn.tensor import Tensor


def reshape(x, shape):
    shape = shape_args(shape) if isinstance(shape, (tuple, list)) else (shape,)
    try:
        out = x.data.reshape(shape)
    except ValueError:
        raise ValueError(f"shape {list(shape)} is invalid for input of size {x.data.size} "
                         f"(shape {tuple(x.shape)})") from None
    # NumPy and CuPy reshape without a copy when x is contiguous or only unit dims move; other cases may copy.
    view = x.data.flags.c_contiguous or _without_ones(x.shape) == _without_ones(out.shape)
    return make_result(out, (x,), lambda g: (g.reshape(x.shape),), "reshape", saved=(),
                       shares_storage=x if view else None)


def _without_ones(shape):
    return tuple(n for n in shape if n != 1)


def flatten(x, start_dim=0, end_dim=-1):
    if x.ndim == 0:
        return reshape(x, (1,))
    start, end = normalize_dim(start_dim, x.ndim), normalize_dim(end_dim, x.ndim)
    if start > end:
        raise ValueError(f"flatten: start_dim {start_dim} comes after end_dim {end_dim}")
    shape = x.shape[:start] + (math.prod(x.shape[start:end + 1]),) + x.shape[end + 1:]
    return reshape(x, shape)


def permute(x, dims):
    dims = tuple(normalize_dim(d, x.ndim) for d in dims)
    if sorted(dims) != list(range(x.ndim)):
        raise ValueError(f"permute: dims {dims} are not a permutation of {x.ndim} dimensions")
    inverse = tuple(sorted(range(len(dims)), key=dims.__getitem__))
    return make_result(x.data.transpose(dims), (x,), lambda g: (g.transpose(inverse),), "permute", saved=(),
                       shares_storage=x)


def transpose(x, dim0, dim1):
    dims = list(range(x.ndim))
    d0, d1 = normalize_dim(dim0, x.ndim), normalize_dim(dim1, x.ndim)
    dims[d0], dims[d1] = dims[d1], dims[d0]
    return permute(x, dims)


def expand(x, sizes):
    sizes = shape_args(sizes)
    if len(sizes) < x.ndim:
        raise ValueError(f"expand: the number of sizes ({len(sizes)}) must be >= the tensor's dims ({x.ndim})")
    lead = len(sizes) - x.ndim
    if -1 in sizes[:lead]:
        raise ValueError(f"expand: size -1 is not allowed in a new leading dimension (sizes {sizes}, tensor shape "
                         f"{tuple(x.shape)})")
    target = tuple(s if s != -1 else x.shape[i - lead] for i, s in enumerate(sizes))
    try:
        out = x._backend.xp.broadcast_to(x.data, target)
    except ValueError:
        raise ValueError(f"expand: cannot expand shape {tuple(x.shape)} to {sizes}") from None
    return make_result(out, (x,), lambda g: (unbroadcast(g, x.shape),), "expand", saved=(), shares_storage=x)


def squeeze(x, dim=None):
    if dim is None:
        shape = tuple(n for n in x.shape if n != 1)
    else:
        axes = normalize_dim(dim, x.ndim)
        axes = axes if isinstance(axes, tuple) else (axes,)
        shape = tuple(n for i, n in enumerate(x.shape) if not (i in axes and n == 1))
    return reshape(x, shape)


def unsqueeze(x, dim):
    axis = normalize_dim(dim, x.ndim + 1)
    return reshape(x, x.shape[:axis] + (1,) + x.shape[axis:])


def to_index(index):
    """Translate Tensors inside an index into their arrays."""
    if isinstance(index, Tensor):
        return index.data
    if isinstance(index, tuple):
        return tuple(i.data if isinstance(i, Tensor) else i for i in index)
    return index


def _is_basic(index):
    parts = index if isinstance(index, tuple) else (index,)
    return all(p is None or p is Ellipsis or isinstance(p, (slice, int, np.integer)) for p in parts)


def _device_index(index, backend):
    """The index with host arrays moved to the backend (a kernel only takes device arrays)."""
    if isinstance(index, tuple):
        return tuple(_device_index(i, backend) for i in index)
    if isinstance(index, (list, np.ndarray)):
        return backend.asarray(index)
    return index


def getitem(x, index):
    index = to_index(index)
    basic = _is_basic(index)
    if basic:
        parts = index if isinstance(index, tuple) else (index,)
        if not any(p is Ellipsis for p in parts):
            # a trailing `...` makes NumPy return a 0-d view instead of a detached scalar for x[i] of a vector
            index = parts + (Ellipsis,)
    try:
        out = x.data[index]
    except IndexError as e:
        raise IndexError(f"{e} (tensor of shape {tuple(x.shape)})") from None
    backend = x._backend

    def backward(g):
        gx = backend.xp.zeros(x.shape, x.dtype)  # C-contiguous even when x is a strided view (scatter_add's need)
        if basic or _is_mask(index):
            gx[index] = g  # each position is taken at most once
        else:  # integer arrays may repeat a position: accumulate
            backend.kernels.scatter_add(gx, _device_index(index, backend), backend.xp.ascontiguousarray(g))
        return (gx,)
    return make_result(scalar_array(out, backend.xp), (x,), backward, "getitem", saved=(),
                       shares_storage=x if basic else None)


def _is_mask(index):
    return getattr(index, "dtype", None) == np.bool_


def _check_sequence(tensors, name):
    """`tensors` as a list of Tensors, or a TypeError naming the argument and the first bad element (PyTorch's)."""
    if isinstance(tensors, Tensor) or not hasattr(tensors, "__iter__"):
        raise TypeError(f"{name}(): argument 'tensors' must be a tuple or list of Tensors, not "
                        f"{_type_name(tensors)}")
    tensors = list(tensors)
    if not tensors:
        raise ValueError(f"{name} expects a non-empty list of tensors")
    for i, t in enumerate(tensors):
        if not isinstance(t, Tensor):
            raise TypeError(f"{name}(): expected Tensor as element {i} in argument 'tensors', but got "
                            f"{_type_name(t)}")
    return tensors


def _type_name(value):
    cls = type(value)
    plain = cls.__module__ == "builtins" or cls.__module__.startswith("fastnn")
    return cls.__name__ if plain else f"{cls.__module__}.{cls.__name__}"


def cat(tensors, dim=0):
    tensors = _check_sequence(tensors, "cat")
    first = tensors[0]
    axis = normalize_dim(dim, first.ndim)
    for t in tensors[1:]:
        check_same_device(first, t)
        if t.ndim != first.ndim or any(a != b for i, (a, b) in enumerate(zip(t.shape, first.shape)) if i != axis):
            raise ValueError(f"cat: sizes of tensors must match except in dimension {dim}; got "
                             f"{tuple(first.shape)} and {tuple(t.shape)}")
    if any(t.dtype != first.dtype for t in tensors):  # PyTorch promotes: float32 + int64 -> float32
        dtype = result_type(*tensors)
        tensors = [t if t.dtype == dtype else astype(t, dtype) for t in tensors]
    out = first._backend.xp.concatenate([t.data for t in tensors], axis=axis)
    bounds = [0]
    for t in tensors:
        bounds.append(bounds[-1] + t.shape[axis])
    lead = (slice(None),) * axis

    def backward(g):
        return tuple(g[lead + (slice(lo, hi),)] for lo, hi in zip(bounds[:-1], bounds[1:]))
    return make_result(out, tuple(tensors), backward, "cat", saved=())


def stack(tensors, dim=0):
    tensors = _check_sequence(tensors, "stack")
    for t in tensors[1:]:
        if t.shape != tensors[0].shape:
            raise ValueError(f"stack expects each tensor to be equal size, got {tuple(tensors[0].shape)} and "
                             f"{tuple(t.shape)}")
    axis = normalize_dim(dim, tensors[0].ndim + 1)
    return cat([unsqueeze(t, axis) for t in tensors], axis)


_PAD_MODES = {"constant": "constant", "reflect": "reflect", "replicate": "edge", "circular": "wrap"}


def pad(x, pad, mode="constant", value=0.0):
    """PyTorch's F.pad: `pad` lists (left, right) pairs starting from the LAST dimension."""
    if len(pad) % 2 or len(pad) // 2 > x.ndim:
        raise ValueError(f"pad: padding length {len(pad)} must be even and at most 2 * ndim ({2 * x.ndim})")
    if mode not in _PAD_MODES:
        raise ValueError(f"pad: mode must be one of {sorted(_PAD_MODES)}, got {mode!r}")
    widths = [(0, 0)] * x.ndim
    for i in range(len(pad) // 2):
        widths[x.ndim - 1 - i] = (int(pad[2 * i]), int(pad[2 * i + 1]))
    if any(lo < 0 or hi < 0 for lo, hi in widths):
        raise ValueError(f"pad: negative padding {tuple(pad)} is not supported")
    for d, (lo, hi) in enumerate(widths):
        # NumPy would reflect/wrap repeatedly; PyTorch refuses (same messages)
        if mode == "reflect" and (lo or hi) and (lo >= x.shape[d] or hi >= x.shape[d]):
            raise ValueError(f"pad: Padding size should be less than the corresponding input dimension, but got: "
                             f"padding ({lo}, {hi}) at dimension {d} of input {list(x.shape)}")
        if mode == "circular" and (lo > x.shape[d] or hi > x.shape[d]):
            raise ValueError(f"pad: Padding value causes wrapping around more than once: padding ({lo}, {hi}) at "
                             f"dimension {d} of input {list(x.shape)}")
    xp = x._backend.xp
    if mode == "constant":
        out = xp.pad(x.data, widths, mode="constant", constant_values=value)
    else:
        out = xp.pad(x.data, widths, mode=_PAD_MODES[mode])

    def backward(g):
        if mode == "constant":
            return (g[tuple(slice(lo, g.shape[i] - hi) for i, (lo, hi) in enumerate(widths))],)
        # Non-constant modes copy input values into the border: route those gradients back by index.
        positions = xp.pad(xp.arange(x.data.size).reshape(x.shape), widths, mode=_PAD_MODES[mode])
        gx = xp.zeros(x.data.size, dtype=g.dtype)
        x._backend.kernels.scatter_add(gx, positions.reshape(-1), xp.ascontiguousarray(g).reshape(-1))
        return (gx.reshape(x.shape),)
    return make_result(out, (x,), backward, "pad", saved=())

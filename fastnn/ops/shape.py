"""Shape ops: views, indexing, concatenation, padding.

Views (reshape of a contiguous tensor, permute, expand, squeeze/unsqueeze, basic indexing) share their input's
storage and so its version counter, as in PyTorch; none of these backward passes reads input values.
"""
import math

import numpy as np

from fastnn._tracing import traced
from fastnn.autograd import make_result, unbroadcast
from fastnn.ops.elementwise import astype
from fastnn.ops._util import (as_tensor, check_same_device, normalize_dim, result_type, scalar_array, shape_args,
                              tangent_or_zeros)
from fastnn.tensor import Tensor


@traced
def reshape(x, shape):
    shape = shape_args(shape) if isinstance(shape, (tuple, list)) else (shape,)
    try:
        out = x._data.reshape(shape)
    except ValueError:
        raise ValueError(f"shape {list(shape)} is invalid for input of size {x._data.size} "
                         f"(shape {tuple(x.shape)})") from None
    # NumPy and CuPy reshape without a copy when x is contiguous or only unit dims move; other cases may copy.
    view = x._data.flags.c_contiguous or _without_ones(x.shape) == _without_ones(out.shape)
    return make_result(out, (x,), lambda g: (g.reshape(x.shape),), "reshape", saved=(),
                       shares_storage=x if view else None, tangent=lambda t: reshape(t, out.shape))


def _without_ones(shape):
    return tuple(n for n in shape if n != 1)


@traced
def flatten(x, start_dim=0, end_dim=-1):
    if x.ndim == 0:
        return reshape(x, (1,))
    start, end = normalize_dim(start_dim, x.ndim), normalize_dim(end_dim, x.ndim)
    if start > end:
        raise ValueError(f"flatten: start_dim {start_dim} comes after end_dim {end_dim}")
    shape = x.shape[:start] + (math.prod(x.shape[start:end + 1]),) + x.shape[end + 1:]
    return reshape(x, shape)


@traced
def permute(x, dims):
    dims = tuple(normalize_dim(d, x.ndim) for d in dims)
    if sorted(dims) != list(range(x.ndim)):
        raise ValueError(f"permute: dims {dims} are not a permutation of {x.ndim} dimensions")
    inverse = tuple(sorted(range(len(dims)), key=dims.__getitem__))
    return make_result(x._data.transpose(dims), (x,), lambda g: (g.transpose(inverse),), "permute", saved=(),
                       shares_storage=x, tangent=lambda t: permute(t, dims))


@traced
def transpose(x, dim0, dim1):
    dims = list(range(x.ndim))
    d0, d1 = normalize_dim(dim0, x.ndim), normalize_dim(dim1, x.ndim)
    dims[d0], dims[d1] = dims[d1], dims[d0]
    return permute(x, dims)


@traced
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
        out = x._backend.xp.broadcast_to(x._data, target)
    except ValueError:
        raise ValueError(f"expand: cannot expand shape {tuple(x.shape)} to {sizes}") from None
    return make_result(out, (x,), lambda g: (unbroadcast(g, x.shape),), "expand", saved=(), shares_storage=x,
                       tangent=lambda t: expand(t, target))


@traced
def squeeze(x, dim=None):
    if dim is None:
        shape = tuple(n for n in x.shape if n != 1)
    else:
        axes = normalize_dim(dim, x.ndim)
        axes = axes if isinstance(axes, tuple) else (axes,)
        shape = tuple(n for i, n in enumerate(x.shape) if not (i in axes and n == 1))
    return reshape(x, shape)


@traced
def unsqueeze(x, dim):
    axis = normalize_dim(dim, x.ndim + 1)
    return reshape(x, x.shape[:axis] + (1,) + x.shape[axis:])


def to_index(index):
    """Translate Tensors inside an index into their arrays."""
    if isinstance(index, Tensor):
        return index._data
    if isinstance(index, tuple):
        return tuple(i._data if isinstance(i, Tensor) else i for i in index)
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


@traced
def getitem(x, index):
    index = to_index(index)
    basic = _is_basic(index)
    if basic:
        parts = index if isinstance(index, tuple) else (index,)
        if not any(p is Ellipsis for p in parts):
            # a trailing `...` makes NumPy return a 0-d view instead of a detached scalar for x[i] of a vector
            index = parts + (Ellipsis,)
    try:
        out = x._data[index]
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
                       shares_storage=x if basic else None, tangent=lambda t: getitem(t, index))


def index_put(x, index, value):
    """x with x[index] = value, out of place: the differentiable form of `x[index] = value` (Tensor.__setitem__,
    fill_ and copy_ on tensors in a graph). x's gradient is the output's with the written positions zeroed; value's is
    the gradient at the written positions, summed over value's broadcasting."""
    index = to_index(index)
    backend = x._backend
    value = as_tensor(value, x)
    check_same_device(x, value)
    device_index = _device_index(index, backend)
    out = x._data.copy()
    try:
        out[device_index] = value._data.astype(x.dtype, copy=False)
    except (IndexError, ValueError) as e:
        raise type(e)(f"{e} (tensor of shape {tuple(x.shape)}, value of shape {tuple(value.shape)})") from None

    def backward(g):
        gx = g.copy()
        gx[device_index] = 0
        gv = None
        if value.requires_grad:
            picked = g[device_index]
            gv = unbroadcast(picked.reshape((1,) * (len(value.shape) - picked.ndim) + picked.shape)
                             if picked.ndim < len(value.shape) else picked, value.shape).astype(value.dtype)
        return gx, gv
    return make_result(out, (x, value), backward, "index_put", saved=(), tangent=lambda tx, tv: index_put(
        tangent_or_zeros(tx, x), index, 0.0 if tv is None else tv))


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


@traced
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
    out = first._backend.xp.concatenate([t._data for t in tensors], axis=axis)
    bounds = [0]
    for t in tensors:
        bounds.append(bounds[-1] + t.shape[axis])
    lead = (slice(None),) * axis

    def backward(g):
        return tuple(g[lead + (slice(lo, hi),)] for lo, hi in zip(bounds[:-1], bounds[1:]))
    return make_result(out, tuple(tensors), backward, "cat", saved=(), tangent=lambda *ts: cat(
        [tangent_or_zeros(t, x) for t, x in zip(ts, tensors)], axis))


@traced
def stack(tensors, dim=0):
    tensors = _check_sequence(tensors, "stack")
    for t in tensors[1:]:
        if t.shape != tensors[0].shape:
            raise ValueError(f"stack expects each tensor to be equal size, got {tuple(tensors[0].shape)} and "
                             f"{tuple(t.shape)}")
    axis = normalize_dim(dim, tensors[0].ndim + 1)
    return cat([unsqueeze(t, axis) for t in tensors], axis)


_PAD_MODES = {"constant": "constant", "reflect": "reflect", "replicate": "edge", "circular": "wrap"}


def _pad_constant(xp, data, widths, value):
    """xp.pad(data, widths, constant_values=value), in one copy of data and fills of the border slabs only:
    ~25% faster than np.pad (the channel padding of a ResNet option-A shortcut, 64x16x16x16 -> 32 channels)."""
    shape = tuple(size + lo + hi for size, (lo, hi) in zip(data.shape, widths))
    out = xp.empty(shape, data.dtype)
    out[tuple(slice(lo, lo + size) for size, (lo, _) in zip(data.shape, widths))] = data
    for d, (lo, hi) in enumerate(widths):
        head = (slice(None),) * d
        if lo:
            out[head + (slice(0, lo),)] = value
        if hi:
            out[head + (slice(shape[d] - hi, None),)] = value
    return out


@traced
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
        out = _pad_constant(xp, x._data, widths, value)
    else:
        out = xp.pad(x._data, widths, mode=_PAD_MODES[mode])

    def backward(g):
        if mode == "constant":
            return (g[tuple(slice(lo, g.shape[i] - hi) for i, (lo, hi) in enumerate(widths))],)
        # Non-constant modes copy input values into the border: route those gradients back by index.
        positions = xp.pad(xp.arange(x._data.size).reshape(x.shape), widths, mode=_PAD_MODES[mode])
        gx = xp.zeros(x._data.size, dtype=g.dtype)
        x._backend.kernels.scatter_add(gx, positions.reshape(-1), xp.ascontiguousarray(g).reshape(-1))
        return (gx.reshape(x.shape),)
    def tangent(t):
        from fastnn.ops.shape import pad as pad_op  # the argument `pad` shadows the function here
        return pad_op(t, pad, mode)
    return make_result(out, (x,), backward, "pad", saved=(), tangent=tangent)


# ---- splitting, repeating and reordering (PyTorch's names) ---------------------------------------------------
def _size_along(x, dim, name):
    if x.ndim == 0:
        raise ValueError(f"{name}(): expected a tensor with at least one dimension, got a 0-d tensor")
    axis = normalize_dim(dim, x.ndim)
    return axis, x.shape[axis]


def _slices(x, axis, bounds):
    """Views of x between consecutive bounds along axis (basic indexing: they share x's storage)."""
    lead = (slice(None),) * axis
    return tuple(getitem(x, lead + (slice(lo, hi),)) for lo, hi in zip(bounds[:-1], bounds[1:]))


@traced
def split(tensor, split_size_or_sections, dim=0):
    """Views of `tensor` along dim: pieces of split_size_or_sections elements (the last may be smaller), or of the
    listed sizes, which must add up to the dimension's size."""
    axis, n = _size_along(tensor, dim, "split")
    if isinstance(split_size_or_sections, (int, np.integer)) and not isinstance(split_size_or_sections, bool):
        size = int(split_size_or_sections)
        if size <= 0 and not (size == 0 and n == 0):
            raise ValueError(f"split(): split_size must be a positive int, got {size}")
        bounds = list(range(0, n, size)) + [n] if n else [0, 0]
    else:
        sizes = [int(s) for s in split_size_or_sections]
        if any(s < 0 for s in sizes) or sum(sizes) != n:
            raise ValueError(f"split(): split_sizes {sizes} must be non-negative and sum to the size of dimension "
                             f"{dim} ({n})")
        bounds = [0]
        for s in sizes:
            bounds.append(bounds[-1] + s)
    return _slices(tensor, axis, bounds)


@traced
def chunk(input, chunks, dim=0):
    """At most `chunks` views along dim, each of ceil(size / chunks) elements but the last (PyTorch's rule: it
    may return fewer chunks)."""
    if not isinstance(chunks, (int, np.integer)) or isinstance(chunks, bool) or chunks <= 0:
        raise ValueError(f"chunk(): chunks must be a positive int, got {chunks!r}")
    axis, n = _size_along(input, dim, "chunk")
    return split(input, max(math.ceil(n / int(chunks)), 1), axis)


def unbind(input, dim=0):
    """The slices along dim, that dimension removed (views)."""
    axis, n = _size_along(input, dim, "unbind")
    lead = (slice(None),) * axis
    return tuple(getitem(input, lead + (i,)) for i in range(n))


def narrow(input, dim, start, length):
    """The view input[..., start:start + length, ...] along dim; start may be negative (counted from the end)."""
    axis, n = _size_along(input, dim, "narrow")
    start, length = int(start), int(length)
    if not -n <= start <= n:
        raise IndexError(f"narrow(): start ({start}) out of range for dimension {dim} of size {n}")
    if start < 0:
        start += n
    if length < 0 or start + length > n:
        raise ValueError(f"narrow(): start ({start}) + length ({length}) exceeds dimension {dim} of size {n}")
    return _slices(input, axis, [start, start + length])[0]


def repeat(input, *sizes):
    """Tile input `sizes[i]` times along each dim (leading new dims where len(sizes) > input.ndim): PyTorch's
    Tensor.repeat, NumPy's tile."""
    x = input
    reps = shape_args(sizes)
    if len(reps) < x.ndim:
        raise ValueError(f"repeat(): number of repeat dims ({len(reps)}) can not be smaller than the number of "
                         f"dimensions of the tensor ({x.ndim})")
    if any(int(r) < 0 for r in reps):
        raise ValueError(f"repeat(): repeats must be non-negative, got {tuple(reps)}")
    reps = tuple(int(r) for r in reps)
    shape = (1,) * (len(reps) - x.ndim) + tuple(x.shape)
    xp = x._backend.xp
    out = xp.tile(x._data.reshape(shape), reps)

    def backward(g):
        # out[r0, s0, r1, s1, ...] interleaves repeat and source axes: sum the repeat ones
        split_shape = tuple(v for pair in zip(reps, shape) for v in pair)
        summed = g.reshape(split_shape).sum(axis=tuple(range(0, 2 * len(reps), 2)))
        return (summed.reshape(x.shape),)
    return make_result(out, (x,), backward, "repeat", saved=(), tangent=lambda t: repeat(t, reps))


def tile(input, dims):
    """repeat() with PyTorch's tile rule: fewer dims than the tensor are padded with leading ones."""
    dims = tuple(dims) if isinstance(dims, (tuple, list)) else (dims,)
    return repeat(input, (1,) * (input.ndim - len(dims)) + dims)


def _repeat_positions(xp, counts):
    """[0] * counts[0] + [1] * counts[1] + ...: the source position of each output element, for a device array of
    counts (by searchsorted over their running total; CuPy's repeat takes only host repeats)."""
    ends = xp.cumsum(counts)
    total = int(ends[-1]) if counts.shape[0] else 0
    return xp.searchsorted(ends, xp.arange(total), side="right").astype(np.dtype(np.int64))


def repeat_interleave(input, repeats=None, dim=None, *, output_size=None):
    """Each element (each slice along dim; of the flattened input when dim is None) repeated `repeats` times
    (an int, or a 1-D tensor of per-element counts). repeat_interleave(counts) alone gives
    repeat_interleave(arange(len(counts)), counts)."""
    from fastnn.ops.indexing import index_select
    if repeats is None:  # torch.repeat_interleave(repeats)
        counts = input
        if counts.ndim != 1 or counts.dtype.kind not in "iu":
            raise ValueError(f"repeat_interleave(): repeats must be a 1-D integer tensor, got dtype {counts.dtype}, "
                             f"shape {tuple(counts.shape)}")
        if bool((counts._data < 0).any()):
            raise ValueError("repeat_interleave(): repeats can not be negative")
        return Tensor._wrap(_repeat_positions(counts._backend.xp, counts._data), counts._backend)
    x = input
    if dim is None:
        x, axis = reshape(x, (-1,)), 0
    else:
        axis = normalize_dim(dim, x.ndim)
    n = x.shape[axis] if x.ndim else 1
    xp = x._backend.xp
    if isinstance(repeats, Tensor):
        if repeats.ndim > 1 or repeats.numel() not in (1, n) or repeats.dtype.kind not in "iu":
            raise ValueError(f"repeat_interleave(): repeats must be an int or a 1-D integer tensor of {n} counts, "
                             f"got dtype {repeats.dtype}, shape {tuple(repeats.shape)}")
        counts = xp.broadcast_to(repeats._data.reshape(-1), (n,))
    else:
        counts = xp.full((n,), int(repeats), dtype=np.dtype(np.int64))
    if bool((counts < 0).any()):
        raise ValueError("repeat_interleave(): repeats can not be negative")
    positions = _repeat_positions(xp, counts)
    if output_size is not None and positions.shape[0] != output_size:
        raise ValueError(f"repeat_interleave(): output_size {output_size} does not match the total of repeats "
                         f"({positions.shape[0]})")
    return index_select(x, axis, Tensor._wrap(positions, x._backend))


def roll(input, shifts, dims=None):
    """Elements shifted cyclically by `shifts` along `dims` (of the flattened tensor when dims is None)."""
    x = input
    xp = x._backend.xp
    if dims is None:
        if isinstance(shifts, (tuple, list)):
            if len(shifts) != 1:
                raise ValueError(f"roll(): shifts {tuple(shifts)} need dims")
            shifts = shifts[0]
        s = int(shifts)
        out = xp.roll(x._data.reshape(-1), s).reshape(x.shape)
        return make_result(out, (x,), lambda g: (xp.roll(g.reshape(-1), -s).reshape(x.shape),), "roll", saved=(),
                           tangent=lambda t: roll(t, s))
    shifts = tuple(shifts) if isinstance(shifts, (tuple, list)) else (shifts,)
    dims = tuple(dims) if isinstance(dims, (tuple, list)) else (dims,)
    if len(shifts) != len(dims):
        raise ValueError(f"roll(): shifts {shifts} and dims {dims} must have the same length")
    axes = tuple(normalize_dim(d, x.ndim) for d in dims)
    s = tuple(int(v) for v in shifts)
    out = xp.roll(x._data, s, axis=axes)
    return make_result(out, (x,), lambda g: (xp.roll(g, tuple(-v for v in s), axis=axes),), "roll", saved=(),
                       tangent=lambda t: roll(t, s, axes))


def flip(input, dims):
    """A copy with the order of elements reversed along dims (PyTorch copies; NumPy would view)."""
    x = input
    dims = tuple(dims) if isinstance(dims, (tuple, list)) else (dims,)
    axes = tuple(normalize_dim(d, x.ndim) for d in dims)
    if len(set(axes)) != len(axes):
        raise ValueError(f"flip(): dims {dims} has a repeated dimension")
    xp = x._backend.xp
    out = xp.flip(x._data, axes).copy() if axes else x._data.copy()
    return make_result(out, (x,), lambda g: (xp.flip(g, axes) if axes else g,), "flip", saved=(),
                       tangent=lambda t: flip(t, axes))


def movedim(input, source, destination):
    """A view with dims `source` moved to positions `destination`, the others keeping their order."""
    x = input
    src = tuple(source) if isinstance(source, (tuple, list)) else (source,)
    dst = tuple(destination) if isinstance(destination, (tuple, list)) else (destination,)
    if len(src) != len(dst):
        raise ValueError(f"movedim(): source {src} and destination {dst} must have the same number of dims")
    src = tuple(normalize_dim(d, x.ndim) for d in src)
    dst = tuple(normalize_dim(d, x.ndim) for d in dst)
    if len(set(src)) != len(src) or len(set(dst)) != len(dst):
        raise ValueError(f"movedim(): repeated dim in source {src} or destination {dst}")
    rest = iter(d for d in range(x.ndim) if d not in src)
    placed = dict(zip(dst, src))
    return permute(x, tuple(placed[i] if i in placed else next(rest) for i in range(x.ndim)))


moveaxis = movedim


def unflatten(input, dim, sizes):
    """Dim `dim` split into `sizes` (one may be -1)."""
    x = input
    axis = normalize_dim(dim, x.ndim)
    sizes = tuple(int(s) for s in sizes)
    known = math.prod(s for s in sizes if s != -1)
    if sizes.count(-1) > 1 or (sizes.count(-1) == 0 and known != x.shape[axis]) or \
            (sizes.count(-1) == 1 and (known == 0 or x.shape[axis] % known)):
        raise ValueError(f"unflatten(): sizes {sizes} don't multiply up to the size of dim {dim} "
                         f"({x.shape[axis]}) in the input shape {tuple(x.shape)}")
    return reshape(x, x.shape[:axis] + sizes + x.shape[axis + 1:])


@traced
def t(input):
    """The transpose of a 2-D tensor; a 0-D or 1-D tensor is returned as is (PyTorch's rule)."""
    if input.ndim > 2:
        raise ValueError(f"t() expects a tensor with <= 2 dimensions, but self is {input.ndim}D")
    return transpose(input, 0, 1) if input.ndim == 2 else input


def swapaxes(input, axis0, axis1):
    return transpose(input, axis0, axis1)


# ---- broadcasting and stacking helpers (compositions of the views above) --------------------------------------
def broadcast_to(input, size):
    return expand(input, tuple(size))


def broadcast_tensors(*tensors):
    """The tensors expanded (as views) to their common broadcast shape."""
    tensors = _check_sequence(tensors, "broadcast_tensors")
    try:
        shape = np.broadcast_shapes(*(t.shape for t in tensors))
    except ValueError:
        raise ValueError(f"broadcast_tensors(): shapes {[tuple(t.shape) for t in tensors]} do not broadcast") \
            from None
    return tuple(t if t.shape == shape else expand(t, shape) for t in tensors)


def meshgrid(*tensors, indexing="ij"):
    """Coordinate grids from 1-D tensors: 'ij' (matrix indexing, PyTorch's default) or 'xy' (Cartesian: the
    first two grids' dimensions swapped)."""
    if len(tensors) == 1 and isinstance(tensors[0], (list, tuple)):
        tensors = tuple(tensors[0])
    tensors = _check_sequence(tensors, "meshgrid")
    if indexing not in ("ij", "xy"):
        raise ValueError(f"meshgrid(): indexing must be 'ij' or 'xy', got {indexing!r}")
    for t in tensors:
        if t.ndim > 1:
            raise ValueError(f"meshgrid(): expects 0-D or 1-D tensors, got shape {tuple(t.shape)}")
    flat = [reshape(t, (-1,)) for t in tensors]
    order = list(range(len(flat)))
    if indexing == "xy" and len(flat) >= 2:
        order[0], order[1] = 1, 0
    shape = tuple(flat[i].shape[0] for i in order)
    grids = []
    for i, t in enumerate(flat):
        position = order.index(i)
        view = [1] * len(flat)
        view[position] = t.shape[0]
        grids.append(expand(reshape(t, tuple(view)), shape))
    return tuple(grids)


def _at_least_2d(t):
    return reshape(t, (1, -1)) if t.ndim < 2 else t


def hstack(tensors):
    """Concatenation along dim 1 (dim 0 for 1-D tensors), as numpy.hstack."""
    tensors = _check_sequence(tensors, "hstack")
    return cat([reshape(t, (-1,)) if t.ndim == 0 else t for t in tensors], 0 if tensors[0].ndim <= 1 else 1)


def vstack(tensors):
    """Concatenation along dim 0 after making 1-D tensors rows."""
    return cat([_at_least_2d(t) for t in _check_sequence(tensors, "vstack")], 0)


row_stack = vstack


def column_stack(tensors):
    """1-D (and 0-D) tensors become columns, then concatenation along dim 1."""
    tensors = _check_sequence(tensors, "column_stack")
    return cat([reshape(t, (-1, 1)) if t.ndim <= 1 else t for t in tensors], 1)


# ---- more of torch's shape functions, composed of the views and copies above ------------------------------------
def _is_int(value):
    return isinstance(value, (int, np.integer)) and not isinstance(value, bool)


def tensor_split(input, indices_or_sections, dim=0):
    """Views along dim: `sections` pieces as equal as can be (the first size % sections one longer, as
    numpy.array_split), or the pieces between the listed indices."""
    axis, n = _size_along(input, dim, "tensor_split")
    if isinstance(indices_or_sections, Tensor):
        if indices_or_sections.ndim > 1 or indices_or_sections.dtype.kind not in "iu":
            raise ValueError("tensor_split(): a tensor indices_or_sections must be a 0-D or 1-D integer tensor")
        indices_or_sections = (indices_or_sections.item() if indices_or_sections.ndim == 0
                               else indices_or_sections.tolist())
    if _is_int(indices_or_sections):
        sections = int(indices_or_sections)
        if sections <= 0:
            raise ValueError(f"tensor_split(): number of sections must be larger than 0, got {sections}")
        small, extra = divmod(n, sections)
        bounds = [0]
        for i in range(sections):
            bounds.append(bounds[-1] + small + (1 if i < extra else 0))
    else:
        # Python's slice rules between consecutive cuts: negative cuts count from the end, a cut before the
        # previous one gives an empty piece (and the next piece starts back at it), as torch and numpy do
        bounds = [0] + [int(i) for i in indices_or_sections] + [n]
    return _slices(input, axis, bounds)


def split_with_sizes(input, split_sizes, dim=0):
    """Views of the listed sizes along dim (they must add up to its size)."""
    return split(input, list(split_sizes), dim)


def _directional_split(name, dim_for):
    def op(input, indices_or_sections):
        need = {"hsplit": 1, "vsplit": 2, "dsplit": 3}[name]
        if input.ndim < need:
            raise ValueError(f"torch.{name} requires a tensor with at least {need} dimension, but got a tensor with "
                             f"{input.ndim} dimensions!")
        dim = dim_for(input)
        if _is_int(indices_or_sections) and input.shape[dim] % indices_or_sections:
            raise ValueError(f"torch.{name} attempted to split along dimension {dim}, but the size of the "
                             f"dimension {input.shape[dim]} is not divisible by the split_size "
                             f"{indices_or_sections}!")
        return tensor_split(input, indices_or_sections, dim)
    op.__name__ = op.__qualname__ = name
    return op


hsplit = _directional_split("hsplit", lambda x: 1 if x.ndim > 1 else 0)
vsplit = _directional_split("vsplit", lambda x: 0)
dsplit = _directional_split("dsplit", lambda x: 2)


def _at_least(name, ndim, reshape_to):
    def op(*tensors):
        if len(tensors) == 1 and isinstance(tensors[0], (list, tuple)):
            tensors = tuple(tensors[0])
        out = tuple(t if t.ndim >= ndim else reshape(t, reshape_to(t)) for t in _check_sequence(tensors, name))
        return out[0] if len(out) == 1 else out
    op.__name__ = op.__qualname__ = name
    return op


atleast_1d = _at_least("atleast_1d", 1, lambda t: (1,))
atleast_2d = _at_least("atleast_2d", 2, lambda t: (1,) * (2 - t.ndim) + tuple(t.shape))
# numpy's (and PyTorch's) rule: a 1-D (n,) becomes (1, n, 1), a 2-D (m, n) becomes (m, n, 1)
atleast_3d = _at_least("atleast_3d", 3, lambda t: {0: (1, 1, 1), 1: (1,) + tuple(t.shape) + (1,),
                                                   2: tuple(t.shape) + (1,)}[t.ndim])


def dstack(tensors):
    """Concatenation along dim 2 after atleast_3d."""
    parts = atleast_3d(*_check_sequence(tensors, "dstack"))
    return cat(list(parts) if isinstance(parts, tuple) else [parts], 2)


def ravel(input):
    """The elements as a 1-D tensor."""
    return reshape(input, (-1,))


def select(input, dim, index):
    """input[..., index, ...] along dim (that dim removed): a view."""
    axis, n = _size_along(input, dim, "select")
    if not _is_int(index) or not -n <= index < n:
        raise IndexError(f"select(): index {index} out of range for tensor of size {tuple(input.shape)} at "
                         f"dimension {dim}")
    return getitem(input, (slice(None),) * axis + (int(index),))


def rot90(input, k=1, dims=(0, 1)):
    """input rotated by 90 degrees k times in the plane of dims, from the first towards the second."""
    dims = tuple(dims)
    if len(dims) != 2:
        raise ValueError(f"rot90(): expected total rotation dims == 2, but got dims = {len(dims)}")
    if input.ndim < 2:
        raise ValueError(f"rot90(): expected total dims >= 2, but got total dims = {input.ndim}")
    d0, d1 = (normalize_dim(d, input.ndim) for d in dims)
    if d0 == d1:
        raise ValueError(f"rot90(): expected rotation dims to be different, but got dim0 = {d0} and dim1 = {d1}")
    k %= 4
    if k == 1:
        return transpose(flip(input, (d1,)), d0, d1)
    if k == 2:
        return flip(input, (d0, d1))
    if k == 3:
        return transpose(flip(input, (d0,)), d0, d1)
    return input.clone()


def fliplr(input):
    """input with its columns (dim 1) reversed."""
    if input.ndim < 2:
        raise ValueError(f"fliplr(): input must be >= 2-d, got shape {tuple(input.shape)}")
    return flip(input, (1,))


def flipud(input):
    """input with its rows (dim 0) reversed."""
    if input.ndim < 1:
        raise ValueError("flipud(): input must be >= 1-d, got a 0-d tensor")
    return flip(input, (0,))


def unfold(input, dimension, size, step):
    """Tensor.unfold: every window of `size` elements along dimension, `step` apart: that dimension becomes the
    window count and a new last dimension holds each window (a gather: the gradient adds up the overlaps)."""
    from fastnn.ops.indexing import index_select
    x = input
    if x.ndim == 0:
        x = reshape(x, (1,))
    axis = normalize_dim(dimension, x.ndim)
    n = x.shape[axis]
    if not _is_int(size) or not 0 <= size <= n:
        raise ValueError(f"unfold(): maximum size for tensor at dimension {axis} is {n} but size is {size}")
    if not _is_int(step) or step <= 0:
        raise ValueError(f"unfold(): step is {step} but must be > 0")
    xp = x._backend.xp
    windows = (n - size) // step + 1
    positions = (xp.arange(windows)[:, None] * step + xp.arange(size)[None, :]).reshape(-1)
    picked = index_select(x, axis, Tensor._wrap(positions.astype(np.dtype(np.int64)), x._backend))
    picked = unflatten(picked, axis, (windows, size))
    return movedim(picked, axis + 1, -1)


def block_diag(*tensors):
    """The tensors (0-D, 1-D as a row, or 2-D) as blocks down the diagonal of a zero matrix."""
    from fastnn.ops._util import result_type
    from fastnn.ops.elementwise import astype
    tensors = _check_sequence(tensors, "block_diag") if tensors else ()
    if not tensors:  # torch.block_diag() is a 1 x 0 tensor of the default dtype
        from fastnn.ops._util import _cpu
        from fastnn.tensor import get_default_dtype
        return Tensor._wrap(_cpu().xp.zeros((1, 0), dtype=get_default_dtype()), _cpu())
    blocks = []
    for t in tensors:
        if t.ndim > 2:
            raise ValueError(f"block_diag(): input tensors must have 2 or fewer dimensions, got {t.ndim}")
        blocks.append(reshape(t, (1, 1) if t.ndim == 0 else (1, -1)) if t.ndim < 2 else t)
    dtype = result_type(*blocks)
    width = sum(b.shape[1] for b in blocks)
    rows, left = [], 0
    for b in blocks:
        b = b if b.dtype == dtype else astype(b, dtype)
        rows.append(pad(b, (left, width - left - b.shape[1])))
        left += b.shape[1]
    return cat(rows, 0)


def cartesian_prod(*tensors):
    """Every combination of one element from each 1-D tensor, as rows (one tensor: itself)."""
    tensors = _check_sequence(tensors, "cartesian_prod")
    if len(tensors) == 1:
        return tensors[0]
    return stack([reshape(g, (-1,)) for g in meshgrid(*tensors, indexing="ij")], 1)


def combinations(input, r=2, with_replacement=False):
    """The r-element combinations of a 1-D tensor's elements, as rows (itertools.combinations' order)."""
    import itertools
    from fastnn.ops.indexing import index_select
    if input.ndim != 1:
        raise ValueError(f"combinations(): expect a 1-D vector, but got shape {tuple(input.shape)}")
    if not _is_int(r) or r < 0:
        raise ValueError(f"combinations(): r must be a non-negative int, got {r!r}")
    pick = itertools.combinations_with_replacement if with_replacement else itertools.combinations
    rows = list(pick(range(input.shape[0]), r))
    if r == 0 or not rows:
        return reshape(index_select(input, 0, Tensor._wrap(input._backend.xp.zeros(0, dtype=np.dtype(np.int64)),
                                                          input._backend)), (0,) if r == 0 else (0, r))
    xp = input._backend.xp
    idx = Tensor._wrap(xp.asarray([i for row in rows for i in row], dtype=np.dtype(np.int64)), input._backend)
    return reshape(index_select(input, 0, idx), (len(rows), r))


def broadcast_shapes(*shapes):
    """The shape the given shapes broadcast to."""
    try:
        return tuple(np.broadcast_shapes(*(tuple(s) if isinstance(s, (tuple, list)) else (s,) for s in shapes)))
    except ValueError:
        raise ValueError(f"broadcast_shapes(): shapes {list(shapes)} are not broadcastable") from None


def diff(input, n=1, dim=-1, prepend=None, append=None):
    """The n-th forward difference along dim, after concatenating prepend and append to input along it."""
    if input.ndim == 0:
        raise ValueError("diff(): expected at least one dimension, got a 0-d tensor")
    if not _is_int(n) or n < 0:
        raise ValueError(f"diff(): order n must be non-negative but got {n!r}")
    from fastnn.ops.elementwise import sub
    axis = normalize_dim(dim, input.ndim)
    parts = [p for p in (prepend, input, append) if p is not None]
    x = cat([p if p.ndim else expand(reshape(p, (1,) * input.ndim), input.shape[:axis] + (1,) +
                                     input.shape[axis + 1:]) for p in parts], axis) if len(parts) > 1 else input
    for _ in range(n):
        length = x.shape[axis]
        if length == 0:
            break
        later, earlier = narrow(x, axis, 1, length - 1), narrow(x, axis, 0, length - 1)
        x = later ^ earlier if x.dtype == np.bool_ else sub(later, earlier)  # bools differ by xor, as in PyTorch
    return x


def unravel_index(indices, shape):
    """The coordinates, one int64 tensor per dim of `shape`, of flat (row-major) `indices`."""
    indices = as_tensor(indices, None)
    if indices.dtype.kind not in "iu":
        raise TypeError(f"unravel_index(): expected 'indices' to be an integer tensor, got {indices.dtype}")
    shape = (shape,) if _is_int(shape) else tuple(int(s) for s in shape)
    size = math.prod(shape)
    data = indices._data
    if bool(((data < -size) | (data >= size)).any()):
        raise ValueError(f"unravel_index(): 'indices' must be in the range [{-size}, {size - 1}] for shape {shape}")
    xp = indices._backend.xp
    coords = xp.unravel_index(data.astype(np.dtype(np.int64)) % max(size, 1), shape)
    return tuple(Tensor._wrap(scalar_array(c.astype(np.dtype(np.int64)), xp), indices._backend) for c in coords)

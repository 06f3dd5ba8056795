"""Shape ops: views, indexing, concatenation, padding.

Views (reshape of a contiguous tensor, permute, expand, squeeze/unsqueeze, basic indexing) share their input's
storage and so its version counter, as in PyTorch; none of these backward passes reads input values.
"""
import math

import numpy as np

from fastnn.autograd import make_result, unbroadcast
from fastnn.ops.elementwise import astype
from fastnn.ops._util import (as_tensor, check_same_device, normalize_dim, result_type, scalar_array, shape_args,
                              tangent_or_zeros)
from fastnn.tensor import Tensor


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
    return make_result(x._data.transpose(dims), (x,), lambda g: (g.transpose(inverse),), "permute", saved=(),
                       shares_storage=x, tangent=lambda t: permute(t, dims))


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
        out = x._backend.xp.broadcast_to(x._data, target)
    except ValueError:
        raise ValueError(f"expand: cannot expand shape {tuple(x.shape)} to {sizes}") from None
    return make_result(out, (x,), lambda g: (unbroadcast(g, x.shape),), "expand", saved=(), shares_storage=x,
                       tangent=lambda t: expand(t, target))


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
        out = xp.pad(x._data, widths, mode="constant", constant_values=value)
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

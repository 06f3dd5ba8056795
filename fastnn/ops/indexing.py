"""Selection and indexing ops with PyTorch's names: sort/topk/kthvalue/median/mode, unique, gather/scatter,
index_select/index_add, masked_fill/masked_select, nonzero and where(condition).

Ops that pick elements (sort, topk, gather, ...) route the gradient back to the picked positions through the
backend's `scatter_add` kernel, which accumulates repeated positions.
"""
from collections import namedtuple

import numpy as np

from fastnn.autograd import is_grad_enabled, make_result, unbroadcast
from fastnn.ops import elementwise
from fastnn.ops._util import check_same_device, normalize_dim, scalar_array, tangent_or_zeros
from fastnn.tensor import Tensor

_INT64 = np.dtype(np.int64)

# torch.return_types.*: tuples with named fields
ValuesIndices = namedtuple("ValuesIndices", ["values", "indices"])
sort_result = topk_result = kthvalue_result = median_result = mode_result = ValuesIndices


def _tensor(x, name, arg="input"):
    if not isinstance(x, Tensor):
        raise TypeError(f"{name}(): argument '{arg}' must be a Tensor, not {type(x).__name__}")
    return x


def _index_tensor(index, name, arg="index"):
    _tensor(index, name, arg)
    if index.dtype.kind not in "iu":
        raise TypeError(f"{name}(): expected an integer tensor for argument '{arg}', got dtype {index.dtype}")
    return index


def _along_axis(xp, idx, axis):
    """The advanced index selecting element idx[..., j, ...] along `axis` at every other position of idx's shape:
    x[_along_axis(xp, idx, axis)] is PyTorch's gather (idx may be smaller than x in every dimension)."""
    parts = []
    for d, n in enumerate(idx.shape):
        if d == axis:
            parts.append(idx)
        else:
            parts.append(xp.arange(n).reshape((1,) * d + (n,) + (1,) * (idx.ndim - d - 1)))
    return tuple(parts)


def _check_bounds(idx, size, name, dim):
    if idx.size and (int(idx.min()) < 0 or int(idx.max()) >= size):
        raise IndexError(f"{name}(): index {int(idx.max()) if int(idx.max()) >= size else int(idx.min())} is out "
                         f"of bounds for dimension {dim} with size {size}")


def _pick(x, idx, axis, name):
    """x's elements at idx along axis (idx an int64 device array shaped like the result): a differentiable
    gather whose backward scatters (and accumulates) the gradient into x's shape."""
    backend = x._backend
    xp = backend.xp
    if x.ndim == 0:
        return make_result(x._data.copy(), (x,), lambda g: (g,), name, saved=(), tangent=elementwise.clone)
    where = _along_axis(xp, idx, axis)
    out = x._data[where]

    def backward(g):
        gx = xp.zeros(x.shape, dtype=g.dtype)
        backend.kernels.scatter_add(gx, where, xp.ascontiguousarray(g))
        return (gx,)
    return make_result(scalar_array(out, xp), (x,), backward, name, saved=(),
                       tangent=lambda t: _pick(t, idx, axis, name))


def _indices(idx, x):
    return Tensor._wrap(scalar_array(idx.astype(_INT64), x._backend.xp), x._backend)


def _squeeze_axis(t_data, axis, keepdim):
    return t_data if keepdim else t_data.reshape(t_data.shape[:axis] + t_data.shape[axis + 1:])


# ---- sorting and order statistics -------------------------------------------------------------------------------
def _argsort(xp, data, axis, descending):
    """Stable order along axis; descending keeps equal elements in their original order too. NaN sorts as the
    largest value, as in PyTorch."""
    if not descending:
        return xp.argsort(data, axis=axis, kind="stable")
    n = data.shape[axis]
    flipped = xp.argsort(xp.flip(data, axis), axis=axis, kind="stable")
    return (n - 1) - xp.flip(flipped, axis)


def sort(input, dim=-1, descending=False, stable=False):
    """(values, indices) sorted along dim; always stable here (PyTorch's stable=True order)."""
    x = _tensor(input, "sort")
    if x.ndim == 0:
        return ValuesIndices(_pick(x, None, 0, "sort"), _indices(x._backend.xp.zeros((), dtype=_INT64), x))
    axis = normalize_dim(dim, x.ndim)
    idx = _argsort(x._backend.xp, x._data, axis, descending)
    return ValuesIndices(_pick(x, idx, axis, "sort"), _indices(idx, x))


def argsort(input, dim=-1, descending=False, stable=False):
    x = _tensor(input, "argsort")
    if x.ndim == 0:
        return _indices(x._backend.xp.zeros((), dtype=_INT64), x)
    return _indices(_argsort(x._backend.xp, x._data, normalize_dim(dim, x.ndim), descending), x)


def _check_k(k, size, name, low=0):
    if not isinstance(k, (int, np.integer)) or isinstance(k, bool):
        raise TypeError(f"{name}(): argument 'k' must be int, not {type(k).__name__}")
    if not low <= k <= size:
        raise ValueError(f"{name}(): k ({k}) out of range for a dimension of size {size}")


def topk(input, k, dim=-1, largest=True, sorted=True):
    """The k largest (or smallest) elements along dim and their indices, largest first (smallest first when
    largest=False); ties keep the lower index first."""
    x = _tensor(input, "topk")
    axis = normalize_dim(dim, x.ndim)
    size = x.shape[axis] if x.ndim else 1
    _check_k(k, size, "topk")
    if x.ndim == 0:
        return sort(x)
    xp = x._backend.xp
    order = _argsort(xp, x._data, axis, descending=largest)
    idx = xp.take(order, xp.arange(k), axis=axis)
    return ValuesIndices(_pick(x, idx, axis, "topk"), _indices(idx, x))


def _kth(x, axis, position, keepdim, name):
    """The element at `position` (an int array broadcast over the other dims, or an int) of each slice's
    ascending order, with its index."""
    xp = x._backend.xp
    order = _argsort(xp, x._data, axis, descending=False)
    if isinstance(position, int):
        idx = xp.take(order, xp.asarray([position]), axis=axis)
    else:
        idx = xp.take_along_axis(order, position, axis=axis)
    values = _pick(x, idx, axis, name)
    if not keepdim:
        from fastnn.ops.shape import squeeze
        values = squeeze(values, axis)
    return ValuesIndices(values, _indices(_squeeze_axis(idx, axis, keepdim), x))


def kthvalue(input, k, dim=-1, keepdim=False):
    """The k-th smallest element (k counts from 1) along dim, and its index."""
    x = _tensor(input, "kthvalue")
    axis = normalize_dim(dim, x.ndim)
    _check_k(k, x.shape[axis] if x.ndim else 1, "kthvalue", low=1)
    if x.ndim == 0:
        return sort(x)
    return _kth(x, axis, int(k) - 1, keepdim, "kthvalue")


def median(input, dim=None, keepdim=False):
    """The lower median (for an even count the smaller of the two middle values, as PyTorch does, not their
    mean); NaN when a slice holds a NaN. median(x) -> tensor; median(x, dim) -> (values, indices)."""
    x = _tensor(input, "median")
    if x._data.size == 0:
        raise ValueError("median() of an empty tensor is undefined")
    if dim is None:
        from fastnn.ops.shape import reshape
        flat = reshape(x, (-1,))
        return _median(flat, 0, False).values
    axis = normalize_dim(dim, x.ndim)
    if x.ndim == 0:
        return sort(x)
    return _median(x, axis, keepdim)


def _median(x, axis, keepdim):
    xp = x._backend.xp
    n = x.shape[axis]
    if x.dtype.kind == "f":  # NaNs sort last: a slice holding one picks its last element (a NaN)
        has_nan = xp.isnan(x._data).any(axis=axis, keepdims=True)
        position = xp.where(has_nan, n - 1, (n - 1) // 2).astype(_INT64)
        return _kth(x, axis, position, keepdim, "median")
    return _kth(x, axis, (n - 1) // 2, keepdim, "median")


def mode(input, dim=-1, keepdim=False):
    """The most frequent value along dim (the smallest of equally frequent ones) and an index where it occurs."""
    x = _tensor(input, "mode")
    if x.ndim == 0:
        return sort(x)
    axis = normalize_dim(dim, x.ndim)
    xp = x._backend.xp
    order = _argsort(xp, x._data, axis, descending=False)
    s = xp.moveaxis(xp.take_along_axis(x._data, order, axis=axis), axis, -1)
    counts = (s[..., :, None] == s[..., None, :]).sum(axis=-1)  # O(n^2) along dim: how often each value occurs
    first = xp.argmax(counts, axis=-1)[..., None]  # the first (smallest) value of the largest count
    position = xp.moveaxis(first, -1, axis)
    return _kth(x, axis, position, keepdim, "mode")


def unique(input, sorted=True, return_inverse=False, return_counts=False, dim=None):
    """Distinct values in ascending order (always sorted here); with return_inverse the index of each input
    element in them (shaped like the input, or like input.shape[dim]), with return_counts their counts."""
    x = _tensor(input, "unique")
    xp = x._backend.xp
    axis = None if dim is None else normalize_dim(dim, x.ndim)
    data = x._data.reshape(-1) if axis is None else x._data
    values, inverse, counts = xp.unique(data, return_inverse=True, return_counts=True, axis=axis)
    out = [Tensor._wrap(values, x._backend)]
    if return_inverse:
        inverse = inverse.reshape(x.shape if axis is None else (x.shape[axis],))
        out.append(_indices(inverse, x))
    if return_counts:
        out.append(_indices(counts, x))
    return out[0] if len(out) == 1 else tuple(out)


# ---- gather / scatter / index_* --------------------------------------------------------------------------------
def _check_index_shape(x, axis, index, name, src=None):
    if index.ndim != x.ndim:
        raise ValueError(f"{name}(): index must have as many dimensions as input ({x.ndim}), got shape "
                         f"{tuple(index.shape)}")
    for d, n in enumerate(index.shape):
        if d != axis and n > x.shape[d]:
            raise ValueError(f"{name}(): index shape {tuple(index.shape)} is larger than input shape "
                             f"{tuple(x.shape)} in dimension {d}")
        if src is not None and n > src.shape[d]:
            raise ValueError(f"{name}(): index shape {tuple(index.shape)} is larger than src shape "
                             f"{tuple(src.shape)} in dimension {d}")


def gather(input, dim, index, *, sparse_grad=False):
    """out[i][j][k] = input[index[i][j][k]][j][k] for dim=0 (and so on): index has input's number of dims and is
    no larger than input except along dim."""
    x = _tensor(input, "gather")
    index = _index_tensor(index, "gather")
    check_same_device(x, index)
    if x.ndim == 0:
        x = elementwise.clone(x)
    axis = normalize_dim(dim, x.ndim)
    if x.ndim:
        _check_index_shape(x, axis, index, "gather")
        _check_bounds(index._data, x.shape[axis], "gather", dim)
    return _pick(x, index._data.astype(_INT64), axis, "gather")


def _src_part(src, index):
    """The leading index.shape block of src (scatter reads only that much of src, as in PyTorch)."""
    return src[tuple(slice(0, n) for n in index.shape)]


def scatter(input, dim, index, src=None, *, value=None, reduce=None):
    """A copy of input with out[index[i][j]][j] = src[i][j] for dim=0 (and so on); src may be a number (or pass
    value=). Where index repeats a position, the last write wins here (PyTorch leaves it unspecified)."""
    if reduce is not None:
        raise NotImplementedError("scatter(reduce=...) is not supported; use scatter_add or scatter_reduce")
    x = _tensor(input, "scatter")
    index = _index_tensor(index, "scatter")
    check_same_device(x, index)
    if src is None:
        src = value
    if src is None:
        raise TypeError("scatter(): expected argument 'src' (a Tensor) or 'value' (a number)")
    axis = normalize_dim(dim, x.ndim)
    xp = x._backend.xp
    scalar = not isinstance(src, Tensor)
    if not scalar:
        check_same_device(x, src)
        if src.dtype != x.dtype:
            raise TypeError(f"scatter(): expected src of dtype {x.dtype}, got {src.dtype}")
    _check_index_shape(x, axis, index, "scatter", None if scalar else src)
    _check_bounds(index._data, x.shape[axis], "scatter", dim)
    where = _along_axis(xp, index._data.astype(_INT64), axis)
    out = x._data.copy()
    out[where] = x.dtype.type(src) if scalar else _src_part(src._data, index)

    def backward(g):
        gx = None
        if x.requires_grad:
            gx = g.copy()
            gx[where] = 0
        if scalar or not src.requires_grad:
            return (gx,)
        gs = xp.zeros(src.shape, dtype=g.dtype)
        gs[tuple(slice(0, n) for n in index.shape)] = g[where]
        return gx, gs
    def tangent(tx, ts=None):  # the written positions take src's tangent (0 for a number), the rest x's
        return scatter(tangent_or_zeros(tx, x), dim, index, 0.0 if scalar else tangent_or_zeros(ts, src))
    inputs = (x,) if scalar else (x, src)
    return make_result(out, inputs, backward, "scatter", saved=(), tangent=tangent)


def scatter_add(input, dim, index, src):
    """A copy of input with src[i][j] added at out[index[i][j]][j] for dim=0 (and so on); repeated positions
    accumulate."""
    x = _tensor(input, "scatter_add")
    index = _index_tensor(index, "scatter_add")
    _tensor(src, "scatter_add", "src")
    check_same_device(x, index)
    check_same_device(x, src)
    if src.dtype != x.dtype:
        raise TypeError(f"scatter_add(): expected src of dtype {x.dtype}, got {src.dtype}")
    axis = normalize_dim(dim, x.ndim)
    _check_index_shape(x, axis, index, "scatter_add", src)
    _check_bounds(index._data, x.shape[axis], "scatter_add", dim)
    backend = x._backend
    xp = backend.xp
    where = _along_axis(xp, index._data.astype(_INT64), axis)
    out = xp.array(x._data, copy=True, order="C")
    backend.kernels.scatter_add(out, where, xp.ascontiguousarray(_src_part(src._data, index)))

    def backward(g):
        gs = None
        if src.requires_grad:
            gs = xp.zeros(src.shape, dtype=g.dtype)
            gs[tuple(slice(0, n) for n in index.shape)] = g[where]
        return (g if x.requires_grad else None), gs
    return make_result(out, (x, src), backward, "scatter_add", saved=(), tangent=lambda tx, ts: scatter_add(
        tangent_or_zeros(tx, x), dim, index, tangent_or_zeros(ts, src)))


def _vector_index(index, name, size, dim):
    index = _index_tensor(index, name)
    if index.ndim > 1:
        raise ValueError(f"{name}(): index must be 0-D or 1-D, got shape {tuple(index.shape)}")
    idx = index._data.reshape(-1).astype(_INT64)
    _check_bounds(idx, size, name, dim)
    return idx


def index_select(input, dim, index):
    """The slices of input at `index` (a 1-D integer tensor) along dim; repeated indices repeat slices."""
    x = _tensor(input, "index_select")
    check_same_device(x, index)
    axis = normalize_dim(dim, x.ndim)
    backend = x._backend
    xp = backend.xp
    data = x._data.reshape(1) if x.ndim == 0 else x._data
    idx = _vector_index(index, "index_select", data.shape[axis], dim)
    out = xp.take(data, idx, axis=axis)
    if x.ndim == 0:
        out = out.reshape(())
    lead = (slice(None),) * axis

    def backward(g):
        gx = xp.zeros(data.shape, dtype=g.dtype)
        backend.kernels.scatter_add(gx, lead + (idx,), xp.ascontiguousarray(g.reshape(out.shape if x.ndim
                                                                                     else (1,))))
        return (gx.reshape(x.shape),)
    return make_result(scalar_array(out, xp), (x,), backward, "index_select", saved=(),
                       tangent=lambda t: index_select(t, dim, index))


def _index_add_args(x, dim, index, source, name):
    _tensor(source, name, "source")
    check_same_device(x, index)
    check_same_device(x, source)
    axis = normalize_dim(dim, x.ndim)
    idx = _vector_index(index, name, x.shape[axis] if x.ndim else 1, dim)
    expected = x.shape[:axis] + (idx.size,) + x.shape[axis + 1:]
    if x.ndim and source.shape != expected:
        raise ValueError(f"{name}(): source shape {tuple(source.shape)} must be {expected} (input shape "
                         f"{tuple(x.shape)} with index's length along dim {dim})")
    if source.dtype != x.dtype:
        raise TypeError(f"{name}(): expected source of dtype {x.dtype}, got {source.dtype}")
    return axis, idx


def index_add(input, dim, index, source, *, alpha=1):
    """A copy of input with alpha * source[i] added to the slice index[i] along dim; repeats accumulate."""
    x = _tensor(input, "index_add")
    axis, idx = _index_add_args(x, dim, index, source, "index_add")
    backend = x._backend
    xp = backend.xp
    lead = (slice(None),) * axis
    scale = x.dtype.type(alpha)
    out = xp.array(x._data, copy=True, order="C")
    add_values(backend, out, lead + (idx,), source._data, scale)

    def backward(g):
        return ((g if x.requires_grad else None),
                (xp.take(g, idx, axis=axis) * scale if source.requires_grad else None))
    return make_result(out, (x, source), backward, "index_add", saved=(), tangent=lambda tx, ts: index_add(
        tangent_or_zeros(tx, x), dim, index, tangent_or_zeros(ts, source), alpha=alpha))


def add_values(backend, target, where, values, scale):
    """target[where] += scale * values in place, accumulating repeated positions (index_add, index_add_)."""
    xp = backend.xp
    values = values if scale == 1 else values * scale
    backend.kernels.scatter_add(target, where, xp.ascontiguousarray(values.astype(target.dtype, copy=False)))


# ---- masks ---------------------------------------------------------------------------------------------------
def _mask(mask, x, name):
    _tensor(mask, name, "mask")
    check_same_device(x, mask)
    if mask.dtype != np.bool_:
        raise TypeError(f"{name}(): expected a bool mask, got dtype {mask.dtype}")
    return mask


def _private(array, *inputs):
    """`array` as the backward will read it: a copy when a graph is recorded, so that an in-place edit of a
    non-differentiable operand (a mask) after forward cannot change the gradient."""
    recording = is_grad_enabled() and any(t.requires_grad for t in inputs if isinstance(t, Tensor))
    return array.copy() if recording else array


def masked_fill(input, mask, value):
    """input with `value` where mask (broadcast to input's shape) is True; value is a number or a 0-d tensor."""
    x = _tensor(input, "masked_fill")
    mask = _mask(mask, x, "masked_fill")
    try:
        shape = np.broadcast_shapes(mask.shape, x.shape)
    except ValueError:
        shape = None
    if shape != x.shape:
        raise ValueError(f"masked_fill(): mask of shape {tuple(mask.shape)} does not broadcast to input shape "
                         f"{tuple(x.shape)}")
    xp = x._backend.xp
    m = _private(mask._data, x, value)
    if isinstance(value, Tensor):
        if value.ndim:
            raise ValueError(f"masked_fill(): value must be a number or a 0-dim tensor, got shape "
                             f"{tuple(value.shape)}")
        check_same_device(x, value)
        fill = value._data.astype(x.dtype)
        inputs = (x, value)
    else:
        fill = x.dtype.type(value)
        inputs = (x,)
    out = scalar_array(xp.where(m, fill, x._data), xp)

    def backward(g):
        gx = xp.where(m, g.dtype.type(0), g)
        if len(inputs) == 1:
            return (gx,)
        return gx, (xp.where(m, g, g.dtype.type(0)).sum().astype(value.dtype) if value.requires_grad else None)
    def tangent(tx, tv=None):
        return masked_fill(tangent_or_zeros(tx, x), Tensor._wrap(m, x._backend), 0.0 if tv is None else tv)
    return make_result(out, inputs, backward, "masked_fill", saved=(), tangent=tangent)


def masked_select(input, mask):
    """A 1-D tensor of input's elements where mask is True (input and mask broadcast together)."""
    x = _tensor(input, "masked_select")
    mask = _mask(mask, x, "masked_select")
    xp = x._backend.xp
    try:
        shape = np.broadcast_shapes(mask.shape, x.shape)
    except ValueError:
        raise ValueError(f"masked_select(): mask of shape {tuple(mask.shape)} does not broadcast with input "
                         f"shape {tuple(x.shape)}") from None
    m = xp.broadcast_to(_private(mask._data, x), shape)
    out = xp.broadcast_to(x._data, shape)[m]

    def backward(g):
        gx = xp.zeros(shape, dtype=g.dtype)
        gx[m] = g
        return (unbroadcast(gx, x.shape),)
    return make_result(out, (x,), backward, "masked_select", saved=(),
                       tangent=lambda t: masked_select(t, Tensor._wrap(m, x._backend)))


def nonzero(input, *, as_tuple=False):
    """Indices of the nonzero elements: an (n, ndim) int64 tensor, or with as_tuple one 1-D tensor per dim."""
    x = _tensor(input, "nonzero")
    xp = x._backend.xp
    if x.ndim == 0:
        hit = bool(x._data.astype(bool))
        parts = (xp.zeros(int(hit), dtype=_INT64),)
        if as_tuple:
            return tuple(_indices(p, x) for p in parts)
        return _indices(xp.zeros((int(hit), 0), dtype=_INT64), x)
    parts = xp.nonzero(x._data)
    if as_tuple:
        return tuple(_indices(p, x) for p in parts)
    return _indices(xp.stack(parts, axis=1), x)


def argwhere(input):
    return nonzero(input)


def where(condition, input=None, other=None):
    """where(condition, input, other): elements of input where condition, else of other; where(condition) alone
    is nonzero(condition, as_tuple=True), as in PyTorch."""
    if input is None and other is None:
        return nonzero(condition, as_tuple=True)
    if input is None or other is None:
        raise TypeError("where(): expected both 'input' and 'other', or neither")
    return elementwise.where(condition, input, other)


def take_along_dim(input, indices, dim=None):
    """input's elements at `indices` along dim (indices broadcast against input); dim=None uses the flattened
    input."""
    x = _tensor(input, "take_along_dim")
    indices = _index_tensor(indices, "take_along_dim", "indices")
    if dim is None:
        from fastnn.ops.shape import reshape
        return gather(reshape(x, (-1,)), 0, reshape(indices, (-1,)))
    axis = normalize_dim(dim, x.ndim)
    shape = list(np.broadcast_shapes(x.shape[:axis] + (1,) + x.shape[axis + 1:],
                                     indices.shape[:axis] + (1,) + indices.shape[axis + 1:]))
    from fastnn.ops.shape import expand
    x_shape = shape.copy()
    x_shape[axis] = x.shape[axis]
    i_shape = shape.copy()
    i_shape[axis] = indices.shape[axis]
    return gather(expand(x, tuple(x_shape)), axis, expand(indices, tuple(i_shape)))



# ---- more of torch's indexing, composed of index_put, gather, scatter (so their gradients carry) -----------------
import builtins  # noqa: E402  (histc's arguments shadow min and max)


def _along(x, dim, index, name):
    """The index tuple (:, ..., :, idx) that addresses positions `index` (a 0-D or 1-D integer tensor) along
    dim."""
    axis = normalize_dim(dim, x.ndim)
    idx = _vector_index(index, name, x.shape[axis] if x.ndim else 1, dim)
    return (slice(None),) * axis + (Tensor._wrap(idx, x._backend),)


def index_fill(input, dim, index, value):
    """A copy of input with the slices index[i] along dim set to value (a number or a 0-d tensor)."""
    from fastnn.ops.shape import index_put
    x = _tensor(input, "index_fill")
    check_same_device(x, index)
    if isinstance(value, Tensor) and value.ndim:
        raise ValueError(f"index_fill(): only supports a 0-dimensional value tensor, but got tensor with "
                         f"{value.ndim} dimension(s)")
    if x.ndim == 0:
        return index_put(x, (), value) if _vector_index(index, "index_fill", 1, dim).size else elementwise.clone(x)
    return index_put(x, _along(x, dim, index, "index_fill"), value)


def index_copy(input, dim, index, source):
    """A copy of input with source's slice i written to slice index[i] along dim (repeats: the last wins)."""
    from fastnn.ops.shape import index_put
    x = _tensor(input, "index_copy")
    _index_add_args(x, dim, index, source, "index_copy")
    if x.ndim == 0:
        return index_put(x, (), source)
    return index_put(x, _along(x, dim, index, "index_copy"), source)


def masked_scatter(input, mask, source):
    """A copy of input whose positions where mask (broadcast to input) is True take source's first elements in
    row-major order."""
    from fastnn.ops.shape import expand, index_put, reshape
    x = _tensor(input, "masked_scatter")
    mask = _mask(mask, x, "masked_scatter")
    _tensor(source, "masked_scatter", "source")
    check_same_device(x, source)
    if source.dtype != x.dtype:
        raise TypeError(f"masked_scatter(): expected source of dtype {x.dtype}, got {source.dtype}")
    full = expand(mask, x.shape)
    n = int(full._data.sum())
    if n > source._data.size:
        raise ValueError(f"masked_scatter(): the mask selects {n} positions, source has only "
                         f"{source._data.size} elements")
    return index_put(x, Tensor._wrap(_private(full._data, x, source), x._backend), reshape(source, (-1,))[:n])


def take(input, index):
    """input's elements at `index` in the flattened input (negative indices count from the end); the result
    has index's shape."""
    from fastnn.ops.shape import reshape
    x = _tensor(input, "take")
    index = _index_tensor(index, "take")
    check_same_device(x, index)
    n = x._data.size
    if bool(((index._data < -n) | (index._data >= n)).any()):
        raise IndexError(f"take(): index out of range for a tensor of {n} elements")
    flat = index._data.reshape(-1).astype(_INT64) % builtins.max(n, 1)
    return reshape(reshape(x, (-1,))[Tensor._wrap(flat, x._backend)], index.shape)


def put(input, index, source, accumulate=False):
    """A copy of input with source's elements written at `index` of the flattened input (added with
    accumulate=True; without it, where index repeats the last write wins)."""
    from fastnn.ops.shape import index_put, reshape
    x = _tensor(input, "put")
    index = _index_tensor(index, "put")
    _tensor(source, "put", "source")
    check_same_device(x, index)
    check_same_device(x, source)
    if source._data.size != index._data.size:
        raise ValueError(f"put(): expected source and index to have the same number of elements, got "
                         f"{source._data.size} and {index._data.size}")
    if source.dtype != x.dtype:
        raise TypeError(f"put(): expected source of dtype {x.dtype}, got {source.dtype}")
    n = x._data.size
    if bool(((index._data < -n) | (index._data >= n)).any()):
        raise IndexError(f"put(): index out of range for a tensor of {n} elements")
    flat_index = Tensor._wrap(index._data.reshape(-1).astype(_INT64) % builtins.max(n, 1), x._backend)
    flat = reshape(x, (-1,))
    values = reshape(source, (-1,))
    out = index_add(flat, 0, flat_index, values) if accumulate else index_put(flat, (flat_index,), values)
    return reshape(out, x.shape)


_SCATTER_REDUCTIONS = ("sum", "prod", "mean", "amax", "amin")


def _reduce_into(xp, combine, out, members, elems):
    """out[m] = combine(out[m], e) for every (m, e) pair, repeats included (ufunc.at, built from plain indexing so
    that every backend has it): round r applies each group's r-th element, so no round repeats a position."""
    order = xp.argsort(members, kind="stable")
    ordered = members[order]
    rank = xp.arange(ordered.size) - xp.searchsorted(ordered, ordered, side="left")
    for r in range(int(rank.max()) + 1 if rank.size else 0):
        pick = order[rank == r]
        out[members[pick]] = combine(out[members[pick]], elems[pick])


def scatter_reduce(input, dim, index, src, reduce, *, include_self=True):
    """A copy of input with each src[i][j] (dim=0, and so on) reduced into out[index[i][j]][j] by `reduce`
    ('sum', 'prod', 'mean', 'amax', 'amin'); include_self=False leaves input's values at scattered positions
    out of the reduction. amax/amin share the gradient evenly among the tied elements, as PyTorch does; prod's
    gradient is the product of the other elements of the group."""
    x = _tensor(input, "scatter_reduce")
    if reduce not in _SCATTER_REDUCTIONS:
        raise ValueError(f"scatter_reduce(): reduce argument must be one of {_SCATTER_REDUCTIONS}, got {reduce!r}")
    index = _index_tensor(index, "scatter_reduce")
    _tensor(src, "scatter_reduce", "src")
    check_same_device(x, index)
    check_same_device(x, src)
    if src.dtype != x.dtype:
        raise TypeError(f"scatter_reduce(): expected src of dtype {x.dtype}, got {src.dtype}")
    axis = normalize_dim(dim, x.ndim)
    _check_index_shape(x, axis, index, "scatter_reduce", src)
    _check_bounds(index._data, x.shape[axis], "scatter_reduce", dim)
    backend = x._backend
    xp = backend.xp
    # Every element of src in the group it lands in, as a flat group number (a position of the output).
    where = _along_axis(xp, index._data.astype(_INT64), axis)
    group = xp.ravel_multi_index(tuple(xp.broadcast_to(w, index.shape) for w in where), x.shape).reshape(-1)
    values = _src_part(src._data, index).reshape(-1)
    size = x._data.size
    self_in = xp.ones(size, dtype=bool) if include_self else xp.bincount(group, minlength=size) == 0
    flat_x = x._data.reshape(-1)
    self_positions = xp.nonzero(self_in)[0]
    members = xp.concatenate([group, self_positions])  # the group (output position) of every reduced element
    elems = xp.concatenate([values, flat_x[self_positions]])
    count = xp.bincount(members, minlength=size).astype(x.dtype)
    if reduce in ("sum", "mean"):
        total = xp.zeros(size, dtype=x.dtype)
        backend.kernels.scatter_add(total, (members,), xp.ascontiguousarray(elems))
        out = total if reduce == "sum" else total / count if x.dtype.kind == "f" else total // count.astype(x.dtype)
    elif reduce == "prod":
        out = xp.ones(size, dtype=x.dtype)
        _reduce_into(xp, xp.multiply, out, members, elems)
    else:  # every position has at least one member (itself, or a src element), so start from one of them
        out = xp.zeros(size, dtype=x.dtype)
        out[members] = elems
        _reduce_into(xp, xp.minimum if reduce == "amin" else xp.maximum, out, members, elems)
    out = out.reshape(x.shape)

    def weights():
        """d out[group] / d element, per reduced element (src's first, then the input's kept ones)."""
        if reduce == "sum":
            per = xp.ones_like(elems)
        elif reduce == "mean":
            per = 1 / count[members]
        elif reduce == "prod":
            # product of the others in the group: out / e, or (for a zero e) the product of the group's other
            # elements, computed with the zeros taken out
            nonzero = xp.where(elems == 0, xp.ones_like(elems), elems)
            zeros = xp.bincount(members, weights=(elems == 0).astype(xp.float64), minlength=size)
            prod_nz = xp.ones(size, dtype=x.dtype)
            _reduce_into(xp, xp.multiply, prod_nz, members, nonzero)
            z = zeros[members]
            per = xp.where(z == 0, prod_nz[members] / nonzero,
                           xp.where((z == 1) & (elems == 0), prod_nz[members], 0))
        else:
            tied = (elems == out.reshape(-1)[members]).astype(x.dtype)
            ties = xp.bincount(members, weights=tied.astype(xp.float64), minlength=size).astype(x.dtype)
            per = tied / xp.maximum(ties, 1)[members]
        return per

    def spread(per_element):
        """Per-element values back on the input's and src's shapes (0 where an element is not reduced)."""
        gx = xp.zeros(size, dtype=per_element.dtype)  # input's values left out of the reduction get no gradient
        gx[self_positions] = per_element[values.size:]
        gs = xp.zeros(src.shape, dtype=per_element.dtype)
        gs[tuple(slice(0, n) for n in index.shape)] = per_element[:values.size].reshape(index.shape)
        return gx.reshape(x.shape), gs

    def backward(g):
        return spread(g.reshape(-1)[members] * weights())

    def tangent(tx, ts):
        """The same scatter of the tangents, each scaled by d out / d element: constants for sum and mean
        (linear) and amax/amin (the tied elements are a constant selection); for prod, out / element from ops
        (so reverse mode differentiates it), the precomputed product of the others where the element is 0."""
        region = tuple(slice(0, n) for n in index.shape)
        wx, ws = (Tensor._wrap(w, backend) for w in spread(weights()))
        ws = ws[region]
        if reduce == "prod":
            product = scatter_reduce(x, dim, index, src, "prod", include_self=include_self)
            part = src[region]
            kept = Tensor._wrap(self_in.reshape(x.shape) & (x._data != 0), backend)
            wx = elementwise.where(kept, product / elementwise.where(kept, x, 1.0), wx)
            nonzero = part != 0
            ws = elementwise.where(nonzero, gather(product, dim, index) / elementwise.where(nonzero, part, 1.0), ws)
        return scatter_reduce(tangent_or_zeros(tx, x) * wx, dim, index, tangent_or_zeros(ts, src)[region] * ws,
                              "sum", include_self=include_self)
    return make_result(out, (x, src), backward, "scatter_reduce", saved=(), tangent=tangent)


def _cumulative_extreme(input, dim, largest, name):
    """(values, indices) of the running max (min) along dim; ties take the later index, as in PyTorch."""
    x = _tensor(input, name)
    xp = x._backend.xp
    if x.ndim == 0:
        return ValuesIndices(elementwise.clone(x), _indices(xp.zeros((), dtype=_INT64), x))
    axis = normalize_dim(dim, x.ndim)
    data = xp.moveaxis(x._data, axis, 0)
    idx = xp.zeros(data.shape, dtype=_INT64)
    best = data[0].copy() if data.shape[0] else None
    for i in range(1, data.shape[0]):
        better = (data[i] >= best) if largest else (data[i] <= best)
        if x.dtype.kind == "f":  # NaN wins and stays (PyTorch propagates it)
            better = better | xp.isnan(data[i])
            better = better & ~xp.isnan(best)
        best = xp.where(better, data[i], best)
        idx[i] = xp.where(better, i, idx[i - 1])
    idx = xp.moveaxis(idx, 0, axis)
    return ValuesIndices(gather(x, axis, Tensor._wrap(idx, x._backend)), _indices(idx, x))


def cummax(input, dim):
    return _cumulative_extreme(input, dim, True, "cummax")


def cummin(input, dim):
    return _cumulative_extreme(input, dim, False, "cummin")


def isin(elements, test_elements, *, assume_unique=False, invert=False):
    """Whether each element of `elements` occurs in test_elements (a tensor or a number)."""
    backend = (elements if isinstance(elements, Tensor) else test_elements)._backend
    xp = backend.xp
    e = elements._data if isinstance(elements, Tensor) else xp.asarray(elements)
    t = test_elements._data if isinstance(test_elements, Tensor) else xp.asarray(test_elements)
    pool = xp.sort(t.reshape(-1))
    if pool.size == 0:
        found = xp.zeros(e.shape, dtype=bool)
    else:
        pos = xp.clip(xp.searchsorted(pool, e), 0, pool.size - 1)
        found = pool[pos] == e
    return Tensor._wrap(scalar_array(~found if invert else found, xp), backend)


def unique_consecutive(input, return_inverse=False, return_counts=False, dim=None):
    """input with each run of equal consecutive values (slices along dim when given) collapsed to one; the
    inverse maps every element (slice) to its run, counts are the run lengths."""
    x = _tensor(input, "unique_consecutive")
    xp = x._backend.xp
    if dim is None:
        data = x._data.reshape(-1)
        axis = 0
        changes = data[1:] != data[:-1]
    else:
        axis = normalize_dim(dim, x.ndim)
        data = x._data
        moved = xp.moveaxis(data, axis, 0).reshape(data.shape[axis], -1)
        changes = (moved[1:] != moved[:-1]).any(axis=1)
    n = data.shape[axis]
    starts = xp.concatenate([xp.zeros(1 if n else 0, dtype=bool), changes]) if n else xp.zeros(0, dtype=bool)
    if n:
        starts[0] = True
    first = xp.nonzero(starts)[0]
    out = Tensor._wrap(xp.take(data, first, axis=axis), x._backend)
    results = [out]
    if return_inverse:
        inverse = xp.cumsum(starts) - 1
        results.append(Tensor._wrap(inverse.reshape(x.shape) if dim is None else inverse, x._backend))
    if return_counts:
        results.append(Tensor._wrap(xp.diff(xp.concatenate([first, xp.asarray([n])])).astype(_INT64),
                                    x._backend))
    return results[0] if len(results) == 1 else tuple(results)


def histc(input, bins=100, min=0, max=0):
    """Counts of input's values in `bins` equal-width bins over [min, max] (over the data's range when
    min == max, both 0 by default); values outside are ignored. The counts have input's dtype, as in PyTorch."""
    x = _tensor(input, "histc")
    if x.dtype.kind != "f":
        raise TypeError(f"histc(): expected a floating point tensor, got {x.dtype}")
    if not isinstance(bins, (int, np.integer)) or bins <= 0:
        raise ValueError(f"histc(): bins must be > 0, got {bins!r}")
    if min > max:
        raise ValueError(f"histc(): max must be larger than min, got min={min}, max={max}")
    xp = x._backend.xp
    data = x._data.reshape(-1)
    lo, hi = float(min), float(max)
    if lo == hi and data.size:
        lo, hi = float(data.min()), float(data.max())
    if lo == hi:
        lo, hi = lo - 1, hi + 1
    inside = (data >= lo) & (data <= hi)
    which = xp.floor((data[inside] - lo) / (hi - lo) * bins).astype(_INT64)
    which = xp.minimum(which, bins - 1)  # the top edge belongs to the last bin
    return Tensor._wrap(xp.bincount(which, minlength=bins).astype(x.dtype), x._backend)

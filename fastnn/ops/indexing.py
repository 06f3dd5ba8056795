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


"""Reductions. Gradients are broadcast back over the reduced axes."""
import builtins
import math
from collections import namedtuple

import numpy as np

from fastnn._tracing import traced
from fastnn.autograd import make_result
from fastnn.ops._util import normalize_dim, scalar_array
from fastnn.tensor import Tensor

MaxMin = namedtuple("MaxMin", ["values", "indices"])
_INT64 = np.dtype(np.int64)


def _axes(x, dim):
    dim = normalize_dim(dim, x.ndim)
    return dim if dim is None or isinstance(dim, tuple) else (dim,)


def _count(x, axes):
    """How many elements each output of a reduction over `axes` combines."""
    return x._data.size if axes is None else math.prod(x.shape[a] for a in axes)


def _kept_shape(x, axes):
    """x's shape with the reduced axes kept as 1 (keepdim=True)."""
    return tuple(1 if axes is None or i in axes else n for i, n in enumerate(x.shape))


def _dropped_shape(x, axes):
    """x's shape without the reduced axes (keepdim=False)."""
    return () if axes is None else tuple(n for i, n in enumerate(x.shape) if i not in axes)


def _expand_back(g, x, axes, keepdim):
    """Reshape a reduced gradient so it broadcasts against x."""
    return g if keepdim else g.reshape(_kept_shape(x, axes))


@traced
def sum(x, dim=None, keepdim=False):
    axes = _axes(x, dim)
    xp = x._backend.xp
    # Integer and bool sums are int64, as in PyTorch (NumPy would keep uint8 as uint64).
    out = x._data.sum(axis=axes, keepdims=keepdim, dtype=_INT64 if x.dtype.kind in "biu" else None)

    def backward(g):
        return (xp.broadcast_to(_expand_back(g, x, axes, keepdim), x.shape),)
    return make_result(scalar_array(out, xp), (x,), backward, "sum", saved=(), tangent=lambda t: sum(t, axes, keepdim))


@traced
def mean(x, dim=None, keepdim=False):
    if x.dtype.kind not in "fc":
        raise TypeError(f"mean expects a floating point tensor, got {x.dtype}")
    axes = _axes(x, dim)
    xp = x._backend.xp
    out = x._data.mean(axis=axes, keepdims=keepdim)
    count = _count(x, axes)

    def backward(g):
        return (xp.broadcast_to(_expand_back(g, x, axes, keepdim) / x.dtype.type(count), x.shape),)
    return make_result(scalar_array(out, xp), (x,), backward, "mean", saved=(),
                       tangent=lambda t: mean(t, axes, keepdim))


def _extreme_all(x, dim, keepdim, largest):
    """amax/amin: the gradient is shared evenly among tied extreme elements."""
    if x._data.size == 0:
        raise RuntimeError("max/min of an empty tensor is undefined")
    axes = _axes(x, dim)
    xp = x._backend.xp
    kept = (xp.amax if largest else xp.amin)(x._data, axis=axes, keepdims=True)
    out = kept if keepdim else kept.reshape(_dropped_shape(x, axes))  # a view: backward reads it as `kept`

    def backward(g):
        hits = x._data == kept
        share = hits / hits.sum(axis=axes, keepdims=True).astype(x.dtype)
        return ((_expand_back(g, x, axes, keepdim) * share).astype(x.dtype),)
    def tangent(t):  # the tied extremes' tangents averaged, as backward shares the gradient
        hits = x._data == kept
        share = Tensor._wrap(hits / hits.sum(axis=axes, keepdims=True).astype(x.dtype), x._backend)
        return sum(t * share, axes, keepdim)
    return make_result(out, (x,), backward, "amax" if largest else "amin", saves_output=True, tangent=tangent)


def _extreme_dim(x, dim, keepdim, largest):
    """max(dim)/min(dim): (values, indices); the gradient flows to the returned index."""
    axis = normalize_dim(dim, x.ndim)
    xp = x._backend.xp
    idx = (xp.argmax if largest else xp.argmin)(x._data, axis=axis, keepdims=True)
    values = xp.take_along_axis(x._data, idx, axis)
    kept_shape = values.shape

    def backward(g):
        # one-hot of the returned index along `axis`, by broadcasting (no scatter needed)
        positions = xp.arange(x.shape[axis]).reshape((-1,) + (1,) * (x.ndim - 1 - axis))
        return (((positions == idx) * g.reshape(kept_shape)).astype(x.dtype),)
    indices = idx
    if not keepdim:  # new names: the backward closure needs the unsqueezed idx
        shape = _dropped_shape(x, (axis,))
        values, indices = scalar_array(values.reshape(shape), xp), idx.reshape(shape)
    def tangent(t):  # the tangent at the returned index
        from fastnn.ops.indexing import _pick
        return _pick(t, idx, axis, "max" if largest else "min").reshape(values.shape)
    return MaxMin(make_result(values, (x,), backward, "max" if largest else "min", saved=(), tangent=tangent),
                  Tensor._wrap(scalar_array(indices.astype(_INT64), xp), x._backend))


@traced
def amax(x, dim=None, keepdim=False):
    return _extreme_all(x, dim, keepdim, True)


@traced
def amin(x, dim=None, keepdim=False):
    return _extreme_all(x, dim, keepdim, False)


@traced
def max(x, dim=None, keepdim=False):
    """max(x) -> Tensor; max(x, dim) -> (values, indices), as in PyTorch. max(a, b) is fastnn.maximum."""
    return _extreme_all(x, None, False, True) if dim is None else _extreme_dim(x, dim, keepdim, True)


@traced
def min(x, dim=None, keepdim=False):
    return _extreme_all(x, None, False, False) if dim is None else _extreme_dim(x, dim, keepdim, False)


def _arg(x, dim, keepdim, largest):
    xp = x._backend.xp
    pick = xp.argmax if largest else xp.argmin
    if dim is None:
        out = pick(x._data)
    else:
        out = pick(x._data, axis=normalize_dim(dim, x.ndim), keepdims=keepdim)
    return Tensor._wrap(xp.asarray(out, dtype=_INT64), x._backend)


@traced
def argmax(x, dim=None, keepdim=False):
    return _arg(x, dim, keepdim, True)


@traced
def argmin(x, dim=None, keepdim=False):
    return _arg(x, dim, keepdim, False)


def _correction(unbiased, correction):
    if correction is not None:
        return correction
    return 1 if unbiased is None or unbiased else 0


def _centered(x, dim, unbiased, correction, name):
    """(axes, x - mean over axes, the variance's divisor count - correction) for var and std."""
    if x.dtype.kind not in "fc":
        raise TypeError(f"{name} expects a floating point tensor, got {x.dtype}")
    axes = _axes(x, dim)
    centered = x._data - x._data.mean(axis=axes, keepdims=True)
    denom = x.dtype.type(builtins.max(_count(x, axes) - _correction(unbiased, correction), 0))
    return axes, centered, denom


def _variance_tangent(x, t, axes, keepdim, denom):
    """d var = 2 / denom * sum((x - mean) * t), with x's values through ops (reverse mode differentiates it)."""
    return sum((x - mean(x, axes, keepdim=True)) * t, axes, keepdim) * (x.dtype.type(2) / denom)


def var(x, dim=None, unbiased=None, keepdim=False, correction=None):
    """Variance with Bessel's correction by default (correction=1), as in PyTorch."""
    axes, centered, denom = _centered(x, dim, unbiased, correction, "var")
    xp = x._backend.xp
    out = (centered * centered).sum(axis=axes, keepdims=keepdim) / denom

    def backward(g):
        return (_expand_back(g, x, axes, keepdim) * (x.dtype.type(2) / denom) * centered,)
    # The backward reads only `centered`, a private copy: an in-place edit of x after var does not change it.
    return make_result(scalar_array(out, xp), (x,), backward, "var", saved=(),
                       tangent=lambda t: _variance_tangent(x, t, axes, keepdim, denom))


def std(x, dim=None, unbiased=None, keepdim=False, correction=None):
    """Standard deviation; its gradient is 0 where it is 0 (a constant input), as in PyTorch, not 0/0."""
    axes, centered, denom = _centered(x, dim, unbiased, correction, "std")
    xp = x._backend.xp
    out = scalar_array(xp.sqrt((centered * centered).sum(axis=axes, keepdims=keepdim) / denom), xp)

    def backward(g):
        s = _expand_back(out, x, axes, keepdim)
        nonzero = s > 0
        scale = xp.where(nonzero, _expand_back(g, x, axes, keepdim) / (denom * xp.where(nonzero, s, 1)), 0)
        return (scale.astype(x.dtype) * centered,)
    def tangent(t):  # d std = d var / (2 std), 0 where std is 0 (as backward)
        from fastnn.ops.elementwise import where
        s = std(x, axes, keepdim=keepdim, correction=denom_correction)
        positive = s > 0
        return where(positive, _variance_tangent(x, t, axes, keepdim, denom) / (2 * where(positive, s, 1)), 0)
    denom_correction = _correction(unbiased, correction)
    return make_result(out, (x,), backward, "std", saved=(), saves_output=True, tangent=tangent)


@traced
def logsumexp(x, dim, keepdim=False):
    axes = _axes(x, dim)
    xp = x._backend.xp
    shift = xp.amax(x._data, axis=axes, keepdims=True)
    shift = xp.where(xp.isfinite(shift), shift, 0)
    out_keep = xp.log(xp.exp(x._data - shift).sum(axis=axes, keepdims=True)) + shift

    def backward(g):
        return (_expand_back(g, x, axes, keepdim) * xp.exp(x._data - out_keep),)
    out = out_keep if keepdim else out_keep.reshape(_dropped_shape(x, axes))
    return make_result(scalar_array(out, xp), (x,), backward, "logsumexp", saves_output=True,
                       tangent=lambda t: sum(t * (x - logsumexp(x, axes, keepdim=True)).exp(), axes, keepdim))


# ---- more of torch's reductions, composed of the ops above (gradients follow them) -------------------------------
AMinMax = namedtuple("aminmax", ["min", "max"])


def aminmax(input, *, dim=None, keepdim=False):
    """(min, max) over dim (all elements when None), as amin and amax."""
    return AMinMax(amin(input, dim, keepdim), amax(input, dim, keepdim))


def var_mean(input, dim=None, unbiased=None, keepdim=False, *, correction=None):
    """(var, mean) in one call, the variance with Bessel's correction by default."""
    return var(input, dim, unbiased, keepdim, correction), mean(input, dim, keepdim)


def std_mean(input, dim=None, unbiased=None, keepdim=False, *, correction=None):
    """(std, mean) in one call."""
    return std(input, dim, unbiased, keepdim, correction), mean(input, dim, keepdim)


def _without_nans(input, name):
    from fastnn.ops.elementwise import where
    if not isinstance(input, Tensor):
        raise TypeError(f"{name}(): argument 'input' must be a Tensor, not {type(input).__name__}")
    if input.dtype.kind != "f":
        return input, None
    xp = input._backend.xp
    nan = Tensor._wrap(xp.isnan(input._data), input._backend)
    zeros = Tensor._wrap(xp.zeros(input.shape, dtype=input.dtype), input._backend)
    return where(nan, zeros, input), nan


def nansum(input, dim=None, keepdim=False, *, dtype=None):
    """The sum treating NaN as 0."""
    x, _ = _without_nans(input, "nansum")
    if dtype is not None:
        from fastnn.ops.elementwise import astype
        from fastnn.tensor import as_dtype
        x = astype(x, as_dtype(dtype))
    return sum(x, dim, keepdim)


def nanmean(input, dim=None, keepdim=False, *, dtype=None):
    """The mean of the non-NaN elements (NaN where all are NaN)."""
    from fastnn.ops.elementwise import div
    if not isinstance(input, Tensor) or input.dtype.kind != "f":
        raise TypeError(f"nanmean(): expected a floating point tensor, got "
                        f"{getattr(input, 'dtype', type(input).__name__)}")
    x, nan = _without_nans(input, "nanmean")
    count = sum(Tensor._wrap(~nan._data, x._backend), dim, keepdim)
    return div(nansum(x, dim, keepdim, dtype=dtype), count)


_INTERPOLATIONS = ("linear", "lower", "higher", "midpoint", "nearest")


def _quantile(input, q, dim, keepdim, interpolation, ignore_nan, name):
    from fastnn.ops import elementwise as ew
    from fastnn.ops import indexing, shape as sh
    if not isinstance(input, Tensor):
        raise TypeError(f"{name}(): argument 'input' must be a Tensor, not {type(input).__name__}")
    if input.dtype.kind != "f":
        raise TypeError(f"{name}() input tensor must be either float or double dtype, got {input.dtype}")
    if interpolation not in _INTERPOLATIONS:
        raise ValueError(f"{name}() interpolation must be one of {_INTERPOLATIONS}, got {interpolation!r}")
    backend = input._backend
    xp = backend.xp
    scalar_q = not isinstance(q, Tensor)
    if not scalar_q and q._backend is not backend:
        raise RuntimeError(f"{name}() q tensor must be on the same device as the input tensor, got {q.device} and "
                           f"{input.device}")
    qs = xp.asarray([float(q)], dtype=input.dtype) if scalar_q else q._data.reshape(-1).astype(input.dtype)
    if not scalar_q and q.ndim > 1:
        raise ValueError(f"{name}() q must be a scalar or 1D tensor, got shape {tuple(q.shape)}")
    if bool(((qs < 0) | (qs > 1)).any()):
        raise ValueError(f"{name}() q values must be in the range [0, 1]")
    x = sh.reshape(input, (-1,)) if dim is None else input
    axis = 0 if dim is None else normalize_dim(dim, x.ndim)
    if x.ndim == 0:
        x, axis = sh.reshape(x, (1,)), 0
    n = x.shape[axis]
    if n == 0:
        raise ValueError(f"{name}() input tensor must be non-empty")
    values = sh.movedim(indexing.sort(x, axis).values, axis, -1)  # (..., n), NaNs last
    nan = xp.isnan(values._data)
    count = (n - nan.sum(axis=-1, keepdims=True)) if ignore_nan else xp.full(values.shape[:-1] + (1,), n)
    pos = qs * (xp.maximum(count, 1) - 1).astype(input.dtype)  # (..., Q)
    lo = xp.floor(pos).astype(_INT64)
    hi = xp.ceil(pos).astype(_INT64)
    if interpolation == "nearest":
        lo = hi = xp.round(pos).astype(_INT64)  # half to even, as PyTorch
    elif interpolation == "lower":
        hi = lo
    elif interpolation == "higher":
        lo = hi
    below = indexing.gather(values, -1, Tensor._wrap(lo, backend))
    above = indexing.gather(values, -1, Tensor._wrap(hi, backend))
    weight = xp.full(pos.shape, 0.5, dtype=input.dtype) if interpolation == "midpoint" else (pos - lo)
    out = ew.add(below, ew.mul(ew.sub(above, below), Tensor._wrap(weight, backend)))
    # no value: a slice of NaNs only (nanquantile) or holding one (quantile)
    undefined = (count == 0) if ignore_nan else nan.any(axis=-1, keepdims=True)
    out = ew.where(Tensor._wrap(xp.broadcast_to(undefined, out.shape), backend),
                   Tensor._wrap(xp.full(out.shape, math.nan, dtype=input.dtype), backend), out)
    out = sh.movedim(out, -1, 0)  # (Q, ...)
    if keepdim:
        out = sh.unsqueeze(out, axis + 1) if dim is not None else sh.reshape(out, (qs.shape[0],) + (1,) * input.ndim)
    return sh.squeeze(out, 0) if scalar_q else out


def quantile(input, q, dim=None, keepdim=False, *, interpolation="linear"):
    """The q-th quantiles (q a number or a 1-D tensor, leading the result's shape) over dim (all elements when
    None), interpolating between the two nearest ranks as `interpolation` says; NaN where a slice holds NaN."""
    return _quantile(input, q, dim, keepdim, interpolation, False, "quantile")


def nanquantile(input, q, dim=None, keepdim=False, *, interpolation="linear"):
    """quantile ignoring NaNs (NaN only for a slice of NaNs)."""
    return _quantile(input, q, dim, keepdim, interpolation, True, "nanquantile")


def nanmedian(input, dim=None, keepdim=False):
    """The lower median of the non-NaN elements: nanmedian(x) -> tensor, nanmedian(x, dim) -> (values,
    indices), as median."""
    from fastnn.ops import indexing
    from fastnn.ops.shape import reshape
    if not isinstance(input, Tensor):
        raise TypeError(f"nanmedian(): argument 'input' must be a Tensor, not {type(input).__name__}")
    if input.dtype.kind != "f":
        return indexing.median(input, dim, keepdim)
    xp = input._backend.xp
    x = input if dim is not None else reshape(input, (-1,))
    axis = 0 if dim is None else normalize_dim(dim, x.ndim)
    if x.ndim == 0:
        return indexing.median(x, dim, keepdim)
    count = x.shape[axis] - xp.isnan(x._data).sum(axis=axis, keepdims=True)
    position = (xp.maximum(count, 1) - 1) // 2
    result = indexing._kth(x, axis, position.astype(_INT64), keepdim or dim is None, "nanmedian")
    if dim is None:
        return result.values.reshape(())
    return result

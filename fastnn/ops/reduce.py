"""Reductions. Gradients are broadcast back over the reduced axes."""
from collections import namedtuple

import numpy as np

from fastnn.autograd import make_result
from fastnn.ops._util import normalize_dim
from fastnn.tensor import Tensor

MaxMin = namedtuple("MaxMin", ["values", "indices"])


def _axes(x, dim):
    dim = normalize_dim(dim, x.ndim)
    return dim if dim is None or isinstance(dim, tuple) else (dim,)


def _count(x, axes):
    """How many elements each output of a reduction over `axes` combines."""
    return x.data.size if axes is None else int(np.prod([x.shape[a] for a in axes]))


def _expand_back(g, x, axes, keepdim):
    """Reshape a reduced gradient so it broadcasts against x."""
    if axes is None:
        return np.reshape(g, (1,) * x.ndim) if x.ndim else g
    return g if keepdim else np.expand_dims(g, axes)


def sum(x, dim=None, keepdim=False):
    axes = _axes(x, dim)
    out = np.sum(x.data, axis=axes, keepdims=keepdim)
    if x.dtype.kind == "b":
        out = out.astype(np.int64)

    def backward(g):
        return (np.broadcast_to(_expand_back(g, x, axes, keepdim), x.shape),)
    return make_result(np.asarray(out), (x,), backward, "sum")


def mean(x, dim=None, keepdim=False):
    if x.dtype.kind not in "fc":
        raise TypeError(f"mean expects a floating point tensor, got {x.dtype}")
    axes = _axes(x, dim)
    out = np.mean(x.data, axis=axes, keepdims=keepdim)
    count = _count(x, axes)

    def backward(g):
        return (np.broadcast_to(_expand_back(g, x, axes, keepdim) / x.dtype.type(count), x.shape),)
    return make_result(np.asarray(out), (x,), backward, "mean")


def _extreme_all(x, dim, keepdim, pick):
    """amax/amin: the gradient is shared evenly among tied extreme elements."""
    if x.data.size == 0:
        raise RuntimeError("max/min of an empty tensor is undefined")
    axes = _axes(x, dim)
    out = pick(x.data, axis=axes, keepdims=True)

    def backward(g):
        hits = x.data == out
        share = hits / np.sum(hits, axis=axes, keepdims=True).astype(x.dtype)
        return ((_expand_back(g, x, axes, keepdim) * share).astype(x.dtype),)
    result = out if keepdim else (out.reshape(()) if axes is None else np.squeeze(out, axes))
    return make_result(np.asarray(result), (x,), backward, pick.__name__)


def _extreme_dim(x, dim, keepdim, arg):
    """max(dim)/min(dim): (values, indices); the gradient flows to the returned index."""
    axis = normalize_dim(dim, x.ndim)
    idx = np.expand_dims(arg(x.data, axis=axis), axis)
    values = np.take_along_axis(x.data, idx, axis)

    def backward(g):
        gx = np.zeros_like(x.data)
        np.put_along_axis(gx, idx, g if keepdim else np.expand_dims(g, axis), axis)
        return (gx,)
    indices = idx
    if not keepdim:  # new names: the backward closure needs the unsqueezed idx
        values, indices = np.squeeze(values, axis), np.squeeze(idx, axis)
    return MaxMin(make_result(values, (x,), backward, "max" if arg is np.argmax else "min"),
                  Tensor(indices.astype(np.int64), device=x.device))


def amax(x, dim=None, keepdim=False):
    return _extreme_all(x, dim, keepdim, np.amax)


def amin(x, dim=None, keepdim=False):
    return _extreme_all(x, dim, keepdim, np.amin)


def max(x, dim=None, keepdim=False):
    """max(x) -> Tensor; max(x, dim) -> (values, indices), as in PyTorch. max(a, b) is fastnn.maximum."""
    return _extreme_all(x, None, False, np.amax) if dim is None else _extreme_dim(x, dim, keepdim, np.argmax)


def min(x, dim=None, keepdim=False):
    return _extreme_all(x, None, False, np.amin) if dim is None else _extreme_dim(x, dim, keepdim, np.argmin)


def argmax(x, dim=None, keepdim=False):
    if dim is None:
        return Tensor(np.asarray(np.argmax(x.data), dtype=np.int64), device=x.device)
    axis = normalize_dim(dim, x.ndim)
    return Tensor(np.argmax(x.data, axis=axis, keepdims=keepdim).astype(np.int64), device=x.device)


def argmin(x, dim=None, keepdim=False):
    if dim is None:
        return Tensor(np.asarray(np.argmin(x.data), dtype=np.int64), device=x.device)
    axis = normalize_dim(dim, x.ndim)
    return Tensor(np.argmin(x.data, axis=axis, keepdims=keepdim).astype(np.int64), device=x.device)


def _correction(unbiased, correction):
    if correction is not None:
        return correction
    return 1 if unbiased is None or unbiased else 0


def var(x, dim=None, unbiased=None, keepdim=False, correction=None):
    """Variance with Bessel's correction by default (correction=1), as in PyTorch."""
    if x.dtype.kind not in "fc":
        raise TypeError(f"var expects a floating point tensor, got {x.dtype}")
    axes = _axes(x, dim)
    ddof = _correction(unbiased, correction)
    centered = x.data - np.mean(x.data, axis=axes, keepdims=True)
    denom = x.dtype.type(np.maximum(_count(x, axes) - ddof, 0))
    out = np.sum(centered * centered, axis=axes, keepdims=keepdim) / denom

    def backward(g):
        return (_expand_back(g, x, axes, keepdim) * (x.dtype.type(2) / denom) * centered,)
    return make_result(np.asarray(out, dtype=x.dtype), (x,), backward, "var")


def std(x, dim=None, unbiased=None, keepdim=False, correction=None):
    return var(x, dim, unbiased, keepdim, correction) ** 0.5


def logsumexp(x, dim, keepdim=False):
    axes = _axes(x, dim)
    shift = np.amax(x.data, axis=axes, keepdims=True)
    shift = np.where(np.isfinite(shift), shift, 0)
    sumexp = np.sum(np.exp(x.data - shift), axis=axes, keepdims=True)
    out_keep = np.log(sumexp) + shift

    def backward(g):
        return (_expand_back(g, x, axes, keepdim) * np.exp(x.data - out_keep),)
    out = out_keep if keepdim else np.squeeze(out_keep, axes)
    return make_result(np.asarray(out), (x,), backward, "logsumexp")

"""Normalisation ops: batch, instance, group and layer normalisation, local response normalisation.

Batch, instance and group norm share one set of channel kernels by viewing the input as (N, K, S), with
statistics per K over N and S: batch norm per channel (N, C, S), instance norm per sample and channel
(1, N*C, S), group norm per sample and group (1, N*G, C/G*S). Group norm's per-channel affine step is the
same kernel with fixed statistics (mean 0, invstd 1).
"""
import math
import numbers

import numpy as np

from fastnn._tracing import traced
from fastnn._validation import check_eps
from fastnn.autograd import make_result
from fastnn.ops._util import add_tangents
from fastnn.tensor import Tensor


def _check_input(input, op, min_ndim, layout):
    if not isinstance(input, Tensor):
        raise TypeError(f"{op} expects a Tensor input, got {type(input).__name__}")
    if input.dtype not in input._backend.kernel_dtypes:
        raise TypeError(f"{op} expects a float32 or float64 input, got {input.dtype}")
    if input.ndim < min_ndim:
        raise ValueError(f"{op} expects input of shape {layout}, got shape {tuple(input.shape)}")


def _param_array(input, param, name, shape, fill):
    """The array a kernel reads for an optional weight or bias: the parameter's data, or `fill` if absent."""
    dtype = input.dtype
    if param is None:
        return input._backend.xp.full(shape, fill, dtype)
    if not isinstance(param, Tensor):
        raise TypeError(f"{name} must be a Tensor or None, got {type(param).__name__}")
    data = param._data  # its shape and dtype read from the array: Tensor properties cost a call each, per step
    if data.shape != shape:
        raise ValueError(f"{name} should have shape {shape}, got {tuple(param.shape)}")
    if data.dtype != dtype:
        raise TypeError(f"{name} has dtype {param.dtype} but the input has dtype {dtype}")
    if param._backend is not input._backend:
        raise RuntimeError(f"{name} is on device {param.device} but the input is on {input.device}")
    return data if data.flags.c_contiguous else input._backend.xp.ascontiguousarray(data)


def _check_running(running_mean, running_var, channels, input_shape):
    if (running_mean is None) != (running_var is None):
        raise ValueError("running_mean and running_var must be given together (or both None)")
    for name, t in (("running_mean", running_mean), ("running_var", running_var)):
        if t is not None and t.shape != (channels,):
            raise ValueError(f"{name} should have shape ({channels},) to match the {channels} channels of input of "
                             f"shape {tuple(input_shape)}, got {tuple(t.shape)}")


def _update_running(running_mean, running_var, mean, unbiased_var, momentum):
    """running = (1 - momentum) * running + momentum * batch, in place (buffers are not part of the graph)."""
    if not isinstance(momentum, numbers.Real):
        raise TypeError(f"momentum must be a number, got {momentum!r}")
    running_mean._data[...] = (1 - momentum) * running_mean._data + momentum * mean
    running_var._data[...] = (1 - momentum) * running_var._data + momentum * unbiased_var
    running_mean._bump_version()
    running_var._bump_version()


def _running_stats(running_mean, running_var, eps, op):
    if running_mean is None:
        raise ValueError(f"{op} needs running_mean and running_var when it does not use the input's statistics")
    xp = running_mean._backend.xp
    invstd = xp.add(running_var._data, eps, dtype=np.float64)  # one float64 buffer, updated in place
    xp.sqrt(invstd, out=invstd)
    return running_mean._data.astype(np.float64), xp.divide(1.0, invstd, out=invstd)


def _normalize(input, view, weight, bias, w, b, eps, stats, name):
    """Normalise `input` viewed as (N, K, S) per K, then scale by w and shift by b.

    w and b hold C entries with C dividing K; kernel channel k uses entry k % C, and the weight and bias
    gradients are summed over the K // C repeats. `stats` None: the input's own statistics (the gradient flows
    through them). Otherwise (mean, invstd), float64 (K,), held fixed. Returns (output, mean, var), var being
    the biased batch variance, or None when `stats` was given.
    """
    kern, xp = input._backend.kernels, input._backend.xp
    x = xp.ascontiguousarray(input._data).reshape(view)
    repeats = view[1] // w.shape[0]
    w_k, b_k = (w, b) if repeats == 1 else (xp.tile(w, repeats), xp.tile(b, repeats))
    if stats is None:
        y, mean, var = kern.batch_norm_forward(x, w_k, b_k, float(eps))
        invstd = 1.0 / xp.sqrt(var + eps)
    else:
        (mean, invstd), var = stats, None
        y = kern.batch_norm_apply(x, mean, invstd, w_k, b_k)

    def backward(g):
        dy = xp.ascontiguousarray(g, dtype=x.dtype).reshape(view)
        dx, dw, db = kern.batch_norm_backward(dy, x, mean, invstd, w_k, stats is None)
        grads = [dx.reshape(input.shape)]
        if weight is not None:
            grads.append(dw.reshape(repeats, -1).sum(axis=0))
        if bias is not None:
            grads.append(db.reshape(repeats, -1).sum(axis=0))
        return tuple(grads)
    def tangent(tx, *param_tangents):
        tw, tb = _param_tangents(weight, bias, param_tangents)
        per_k = (1, view[1], 1)
        xv, tv = input.reshape(view), None if tx is None else tx.reshape(view)
        if stats is None:
            xhat, dxhat = _normalized_tangent(xv, tv, (0, 2), eps)
        else:  # fixed statistics: an affine map of x
            mean_k, invstd_k = (Tensor._wrap(a.astype(input.dtype).reshape(per_k), input._backend) for a in stats)
            xhat = (xv - mean_k) * invstd_k
            dxhat = None if tv is None else tv * invstd_k

        def channel(p):  # a (C,) parameter or its tangent, as (1, K, 1)
            return p.repeat(repeats).reshape(per_k)
        return add_tangents(None if dxhat is None else dxhat if weight is None else dxhat * channel(weight),
                            None if tw is None else xhat * channel(tw),
                            None if tb is None else channel(tb)).expand(view).reshape(input.shape)
    inputs = _graph_inputs(input, weight, bias)
    return (make_result(y.reshape(input.shape), inputs, backward, name, tangent=tangent, fresh_grads=True),
            mean, var)


def _graph_inputs(input, weight, bias):
    """(input, weight, bias) without the absent parameters (spelled out: a generator costs ~1 us per call)."""
    if weight is None:
        return (input,) if bias is None else (input, bias)
    return (input, weight) if bias is None else (input, weight, bias)


def _param_tangents(weight, bias, tangents):
    """(weight's tangent, bias's tangent) from those of the inputs after the first (absent parameters: None)."""
    tangents = iter(tangents)
    return tuple(None if p is None else next(tangents) for p in (weight, bias))


def _normalized_tangent(x, t, axes, eps):
    """(x_hat, its tangent along t) for x_hat = (x - mean) / sqrt(var + eps) over `axes` (biased variance), from
    ops so that reverse mode differentiates them: d x_hat = (t - mean(t) - x_hat mean(t x_hat)) / sqrt(var + eps)."""
    centered = x - x.mean(axes, keepdim=True)
    rstd = ((centered * centered).mean(axes, keepdim=True) + eps) ** -0.5
    xhat = centered * rstd
    if t is None:
        return xhat, None
    return xhat, (t - t.mean(axes, keepdim=True) - xhat * (t * xhat).mean(axes, keepdim=True)) * rstd


def _channel_layout(input, op, weight, bias):
    """(N, C, S) of an (N, C, *) input and the kernel arrays for its per-channel weight and bias."""
    _check_input(input, op, 2, "(N, C) or (N, C, *)")
    n, channels = input.shape[:2]
    size = math.prod(input.shape[2:])
    w = _param_array(input, weight, "weight", (channels,), 1)
    b = _param_array(input, bias, "bias", (channels,), 0)
    return n, channels, size, w, b


@traced
def batch_norm(input, running_mean, running_var, weight=None, bias=None, training=False, momentum=0.1, eps=1e-5):
    """Per-channel normalisation of an (N, C, *) input: batch statistics when training (updating the running
    ones with the unbiased variance), else running_mean and running_var."""
    n, channels, size, w, b = _channel_layout(input, "batch_norm", weight, bias)
    eps = check_eps(eps, "batch_norm")
    _check_running(running_mean, running_var, channels, input.shape)
    view = (n, channels, size)
    if not training:
        stats = _running_stats(running_mean, running_var, eps, "batch_norm with training=False")
        return _normalize(input, view, weight, bias, w, b, eps, stats, "batch_norm")[0]
    count = n * size
    if count <= 1:
        raise ValueError(f"Expected more than 1 value per channel when training, got input size "
                         f"{tuple(input.shape)}")
    out, mean, var = _normalize(input, view, weight, bias, w, b, eps, None, "batch_norm")
    if running_mean is not None:
        _update_running(running_mean, running_var, mean, var * (count / (count - 1)), momentum)
    return out


@traced
def instance_norm(input, running_mean=None, running_var=None, weight=None, bias=None, use_input_stats=True,
                  momentum=0.1, eps=1e-5):
    """Normalisation of each sample's channel over its spatial positions; with use_input_stats=False, the
    running statistics instead. Running statistics average the per-instance ones over the batch."""
    n, channels, size, w, b = _channel_layout(input, "instance_norm", weight, bias)
    eps = check_eps(eps, "instance_norm")
    _check_running(running_mean, running_var, channels, input.shape)
    if not use_input_stats:
        stats = _running_stats(running_mean, running_var, eps, "instance_norm with use_input_stats=False")
        return _normalize(input, (n, channels, size), weight, bias, w, b, eps, stats, "instance_norm")[0]
    if size <= 1:
        raise ValueError(f"Expected more than 1 spatial element when training, got input size {tuple(input.shape)}")
    out, mean, var = _normalize(input, (1, n * channels, size), weight, bias, w, b, eps, None, "instance_norm")
    if running_mean is not None:
        _update_running(running_mean, running_var, mean.reshape(n, channels).mean(axis=0),
                        (var * (size / (size - 1))).reshape(n, channels).mean(axis=0), momentum)
    return out


@traced
def group_norm(input, num_groups, weight=None, bias=None, eps=1e-5):
    """Normalisation of each sample over groups of num_groups consecutive channels, then a per-channel affine."""
    n, channels, size, w, b = _channel_layout(input, "group_norm", weight, bias)
    if isinstance(num_groups, bool) or not isinstance(num_groups, numbers.Integral) or num_groups <= 0 \
            or channels % num_groups:
        raise ValueError(f"Expected number of channels in input to be divisible by num_groups, but got input of "
                         f"shape {tuple(input.shape)} and num_groups={num_groups!r}")
    eps = check_eps(eps, "group_norm")
    xp = input._backend.xp
    unit_w, unit_b = xp.ones(1, input.dtype), xp.zeros(1, input.dtype)
    view = (1, n * num_groups, channels // num_groups * size)
    normalized = _normalize(input, view, None, None, unit_w, unit_b, eps, None, "group_norm")[0]
    if weight is None and bias is None:
        return normalized
    identity = (xp.zeros(channels), xp.ones(channels))
    return _normalize(normalized, (n, channels, size), weight, bias, w, b, 0.0, identity, "group_norm_affine")[0]


@traced
def layer_norm(input, normalized_shape, weight=None, bias=None, eps=1e-5):
    """Normalisation over the trailing dimensions `normalized_shape`, with an element-wise affine of that shape."""
    # type(...) is int first: an isinstance check against the numbers ABC costs ~1 us
    shape = ((normalized_shape,) if type(normalized_shape) is int or isinstance(normalized_shape, numbers.Integral)
             else tuple(normalized_shape))
    _check_input(input, "layer_norm", len(shape), f"(*, {', '.join(map(str, shape))})")
    if input.shape[input.ndim - len(shape):] != shape:
        raise ValueError(f"layer_norm: normalized_shape {shape} must match the trailing dimensions of input of shape "
                         f"{tuple(input.shape)}")
    eps = check_eps(eps, "layer_norm")
    width = math.prod(shape)
    w = _param_array(input, weight, "weight", shape, 1).reshape(width)
    b = _param_array(input, bias, "bias", shape, 0).reshape(width)
    kern, xp = input._backend.kernels, input._backend.xp
    x = xp.ascontiguousarray(input._data).reshape(input._data.size // max(width, 1), width)
    y, mean, invstd = kern.layer_norm_forward(x, w, b, float(eps))

    def backward(g):
        dy = xp.ascontiguousarray(g, dtype=x.dtype).reshape(x.shape)
        dx, dw, db = kern.layer_norm_backward(dy, x, mean, invstd, w)
        grads = [dx.reshape(input.shape)]
        if weight is not None:
            grads.append(dw.reshape(shape))
        if bias is not None:
            grads.append(db.reshape(shape))
        return tuple(grads)
    def tangent(tx, *param_tangents):
        tw, tb = _param_tangents(weight, bias, param_tangents)
        xhat, dxhat = _normalized_tangent(input.reshape(x.shape), None if tx is None else tx.reshape(x.shape), (1,),
                                          eps)
        return add_tangents(None if dxhat is None else dxhat if weight is None else dxhat * weight.reshape(width),
                            None if tw is None else xhat * tw.reshape(width),
                            None if tb is None else tb.reshape(width)).expand(x.shape).reshape(input.shape)
    inputs = _graph_inputs(input, weight, bias)
    return make_result(y.reshape(input.shape), inputs, backward, "layer_norm", tangent=tangent, fresh_grads=True)


@traced
def local_response_norm(input, size, alpha=1e-4, beta=0.75, k=1.0):
    """x / (k + alpha * mean of x^2 over a window of `size` channels)^beta, the window zero-padded by size//2
    channels before and (size-1)//2 after, as PyTorch computes it."""
    _check_input(input, "local_response_norm", 3, "(N, C, *) with at least one dimension after C")
    if isinstance(size, bool) or not isinstance(size, numbers.Integral) or size <= 0:
        raise ValueError(f"local_response_norm size must be a positive integer, got {size!r}")
    n, channels = input.shape[:2]
    kern, xp = input._backend.kernels, input._backend.xp
    x = xp.ascontiguousarray(input._data).reshape(n, channels, math.prod(input.shape[2:]))
    scalar = input.dtype.type
    y, base = kern.local_response_norm_forward(x, int(size), scalar(alpha), scalar(beta), scalar(k))

    def backward(g):
        dy = xp.ascontiguousarray(g, dtype=x.dtype).reshape(x.shape)
        dx = kern.local_response_norm_backward(dy, x, y, base, int(size), scalar(alpha), scalar(beta))
        return (dx.reshape(input.shape),)
    def composite(x):  # the forward from ops: zero-padded channel windows of x^2 averaged by a pool
        from fastnn.ops.pool import avg_pool2d
        from fastnn.ops.shape import pad
        squares = pad((x * x).reshape(n, 1, channels, -1), (0, 0, size // 2, (size - 1) // 2))
        return x / (avg_pool2d(squares, (size, 1), 1).reshape(x.shape) * alpha + k) ** beta

    def tangent(t):
        from fastnn.autograd.forward_ad import composite_tangent
        return composite_tangent(composite, (input,), (t,))
    return make_result(y.reshape(input.shape), (input,), backward, "local_response_norm", tangent=tangent,
                       fresh_grads=True)


def rms_norm(input, normalized_shape, weight=None, eps=None):
    """x / sqrt(mean(x^2 over the trailing normalized_shape dims) + eps) * weight; eps=None is the input dtype's
    machine epsilon (PyTorch's default). Composed of differentiable ops: no statistics to save."""
    from fastnn.ops.elementwise import add, mul
    from fastnn.ops.math import rsqrt
    from fastnn.ops.reduce import mean
    shape = (normalized_shape,) if isinstance(normalized_shape, numbers.Integral) else tuple(normalized_shape)
    _check_input(input, "rms_norm", len(shape), f"(*, {', '.join(map(str, shape))})")
    if input.shape[input.ndim - len(shape):] != shape:
        raise ValueError(f"rms_norm: normalized_shape {shape} must match the trailing dimensions of input of shape "
                         f"{tuple(input.shape)}")
    eps = float(np.finfo(input.dtype).eps) if eps is None else check_eps(eps, "rms_norm")
    if weight is not None and tuple(weight.shape) != shape:
        raise ValueError(f"rms_norm: weight must have shape {shape}, got {tuple(weight.shape)}")
    dims = tuple(range(input.ndim - len(shape), input.ndim))
    out = mul(input, rsqrt(add(mean(mul(input, input), dims, keepdim=True), eps)))
    return out if weight is None else mul(out, weight)

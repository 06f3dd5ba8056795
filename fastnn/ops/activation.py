"""Activation functions, maxout and softmax.

Element-wise activations run as fused device kernels (fastnn/_kernels/cpu_activation.py): one pass forward,
one pass backward from the saved input (or output, for sigmoid and tanh). This module validates arguments,
makes the input contiguous, casts scalars to the input's dtype and wires the backward pass.

The kernels run at every size. On an idle machine a parallel launch costs a few microseconds, about what
NumPy's several-pass formulas cost on a tiny array, while from ~4K elements the fused kernel is several times
faster; a NumPy path for small inputs would add a second implementation to keep equal for no real gain.
Softmax and log-softmax stay NumPy: they reduce along a dim, and their NumPy form is already a few passes.
"""
import math

import numpy as np

from fastnn import _dispatch
from fastnn.autograd import make_result
from fastnn.ops._util import normalize_dim
from fastnn.tensor import Tensor

SELU_ALPHA = 1.6732632423543772848170429916717
SELU_SCALE = 1.0507009873554804934193349852946
_KERNEL_DTYPES = (np.dtype(np.float32), np.dtype(np.float64))


def _compute_array(x, op):
    """x's data as a C-contiguous float32/float64 array; float16 is computed in float32."""
    if not isinstance(x, Tensor):
        raise TypeError(f"{op}(): expected a Tensor, got {type(x).__name__}")
    if x.dtype == np.float16:
        return x.data.astype(np.float32)
    if x.dtype not in _KERNEL_DTYPES:
        raise TypeError(f"{op}(): expected a floating point tensor (float16/32/64), got {x.dtype}")
    return np.ascontiguousarray(x.data)


def _real(op, name, value):
    if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)):
        raise TypeError(f"{op}(): {name} must be a real number, got {value!r}")
    if math.isnan(value):
        raise ValueError(f"{op}(): {name} must not be NaN")
    return float(value)


def _elementwise(x, op, *scalars, kernel=None, saves_output=False):
    """Run `<kernel>_forward` on x's flat data and record `<kernel>_backward`, which reads the flat input
    (or the output when `saves_output`). Float scalars are cast to the compute dtype; bools pass as flags."""
    data = _compute_array(x, op)
    backend = _dispatch.kernels(x.device)
    kernel = kernel or op
    forward_kernel, backward_kernel = getattr(backend, kernel + "_forward"), getattr(backend, kernel + "_backward")
    args = tuple(s if isinstance(s, bool) else data.dtype.type(s) for s in scalars)
    flat = data.reshape(-1)
    out = forward_kernel(flat, *args)
    saved = out if saves_output else flat

    def backward(g):
        grad = backward_kernel(np.ascontiguousarray(g, dtype=data.dtype).reshape(-1), saved, *args)
        return (grad.reshape(x.shape).astype(x.dtype, copy=False),)
    return make_result(out.reshape(x.shape).astype(x.dtype, copy=False), (x,), backward, op)


# ---- piecewise-linear -----------------------------------------------------------------------------------
def hardtanh(x, min_val=-1.0, max_val=1.0):
    min_val, max_val = _real("hardtanh", "min_val", min_val), _real("hardtanh", "max_val", max_val)
    if min_val > max_val:
        raise ValueError(f"hardtanh(): min_val ({min_val}) cannot be greater than max_val ({max_val})")
    return _elementwise(x, "hardtanh", min_val, max_val)


def relu(x):
    return _elementwise(x, "relu", 0.0, math.inf, kernel="hardtanh")


def relu6(x):
    return _elementwise(x, "relu6", 0.0, 6.0, kernel="hardtanh")


def leaky_relu(x, negative_slope=0.01):
    return _elementwise(x, "leaky_relu", _real("leaky_relu", "negative_slope", negative_slope))


def prelu(x, weight):
    """x where x > 0, else weight * x; weight holds one slope or one per channel (dim 1 of x)."""
    data = _compute_array(x, "prelu")
    if not isinstance(weight, Tensor):
        raise TypeError(f"prelu(): weight must be a Tensor, got {type(weight).__name__}")
    if weight.dtype != x.dtype:
        raise TypeError(f"prelu(): weight dtype {weight.dtype} does not match input dtype {x.dtype}")
    channels = x.shape[1] if x.ndim >= 2 else 1
    if weight.data.size != 1 and (weight.ndim != 1 or weight.data.size != channels):
        raise ValueError(f"prelu(): weight must hold 1 slope or one per input channel ({channels}, dim 1 of "
                         f"input shape {x.shape}), got weight shape {weight.shape}")
    slopes = weight.data.reshape(-1).astype(data.dtype)
    if slopes.size == 1:
        # One slope: any split into rows works; keep the last dim inner and parallelize over the rest.
        x3 = data.reshape(math.prod(x.shape[:-1]), 1, x.shape[-1] if x.ndim else 1)
    else:
        x3 = data.reshape(x.shape[0], channels, math.prod(x.shape[2:]))
    backend = _dispatch.kernels(x.device)
    out = backend.prelu_forward(x3, slopes)

    def backward(g):
        grad_in, grad_weight_rows = backend.prelu_backward(
            np.ascontiguousarray(g, dtype=data.dtype).reshape(x3.shape), x3, slopes)
        grad_weight = grad_weight_rows.sum(axis=0).reshape(weight.shape).astype(weight.dtype, copy=False)
        return grad_in.reshape(x.shape).astype(x.dtype, copy=False), grad_weight
    return make_result(out.reshape(x.shape).astype(x.dtype, copy=False), (x, weight), backward, "prelu")


# ---- smooth ---------------------------------------------------------------------------------------------
def elu(x, alpha=1.0):
    return _elementwise(x, "elu", _real("elu", "alpha", alpha), 1.0)


def selu(x):
    return _elementwise(x, "selu", SELU_ALPHA, SELU_SCALE, kernel="elu")


def gelu(x, approximate="none"):
    if approximate not in ("none", "tanh"):
        raise ValueError(f"gelu(): approximate must be 'none' or 'tanh', got {approximate!r}")
    return _elementwise(x, "gelu", approximate == "tanh")


def sigmoid(x):
    return _elementwise(x, "sigmoid", saves_output=True)


def tanh(x):
    return _elementwise(x, "tanh", saves_output=True)


def silu(x):
    return _elementwise(x, "silu", 1.0, kernel="swish")


def swish(x, beta=1.0):
    """x * sigmoid(beta * x); beta is a number or a one-element Tensor (a learnable Parameter gets a grad)."""
    if not isinstance(beta, Tensor):
        return _elementwise(x, "swish", _real("swish", "beta", beta))
    data = _compute_array(x, "swish")
    if beta.data.size != 1:
        raise ValueError(f"swish(): beta must hold one element, got shape {beta.shape}")
    if beta.dtype != x.dtype:
        raise TypeError(f"swish(): beta dtype {beta.dtype} does not match input dtype {x.dtype}")
    backend = _dispatch.kernels(x.device)
    beta_value = data.dtype.type(beta.data.reshape(()))
    flat = data.reshape(-1)
    out = backend.swish_forward(flat, beta_value)

    def backward(g):
        g = np.ascontiguousarray(g, dtype=data.dtype).reshape(-1)
        if not beta.requires_grad:
            return backend.swish_backward(g, flat, beta_value).reshape(x.shape).astype(x.dtype, copy=False), None
        grad_in, beta_partials = backend.swish_backward_with_beta(g, flat, beta_value)
        grad_beta = np.full(beta.shape, beta_partials.sum(), dtype=beta.dtype)
        return grad_in.reshape(x.shape).astype(x.dtype, copy=False), grad_beta
    return make_result(out.reshape(x.shape).astype(x.dtype, copy=False), (x, beta), backward, "swish")


def softplus(x, beta=1.0, threshold=20.0):
    beta = _real("softplus", "beta", beta)
    if beta == 0:
        raise ValueError("softplus(): beta must be non-zero")
    return _elementwise(x, "softplus", beta, _real("softplus", "threshold", threshold))


def mish(x):
    return _elementwise(x, "mish")


# ---- maxout ---------------------------------------------------------------------------------------------
def maxout(x, pieces, dim=1):
    """Max over consecutive groups of `pieces` entries along `dim`: size C becomes C // pieces."""
    data = _compute_array(x, "maxout")
    if isinstance(pieces, bool) or not isinstance(pieces, (int, np.integer)) or pieces <= 0:
        raise ValueError(f"maxout(): pieces must be a positive integer, got {pieces!r}")
    if x.ndim == 0:
        raise ValueError("maxout(): input must have at least one dimension")
    axis = normalize_dim(dim, x.ndim)
    channels = x.shape[axis]
    if channels % pieces:
        raise ValueError(f"maxout(): size {channels} of dim {dim} (input shape {x.shape}) is not divisible by "
                         f"pieces={pieces}")
    x3 = data.reshape(math.prod(x.shape[:axis]), channels, math.prod(x.shape[axis + 1:]))
    backend = _dispatch.kernels(x.device)
    out = backend.maxout_forward(x3, int(pieces))
    out_shape = x.shape[:axis] + (channels // pieces,) + x.shape[axis + 1:]

    def backward(g):
        g3 = np.ascontiguousarray(g, dtype=data.dtype).reshape(out.shape)
        return (backend.maxout_backward(g3, x3, int(pieces)).reshape(x.shape).astype(x.dtype, copy=False),)
    return make_result(out.reshape(out_shape).astype(x.dtype, copy=False), (x,), backward, "maxout")


# ---- softmax --------------------------------------------------------------------------------------------
def _log_softmax_array(data, axis):
    shifted = data - np.amax(data, axis=axis, keepdims=True)
    return shifted - np.log(np.sum(np.exp(shifted), axis=axis, keepdims=True))


def log_softmax(x, dim):
    axis = normalize_dim(dim, x.ndim)
    out = _log_softmax_array(x.data, axis)

    def backward(g):
        return (g - np.exp(out) * np.sum(g, axis=axis, keepdims=True),)
    return make_result(out, (x,), backward, "log_softmax")


def softmax(x, dim):
    axis = normalize_dim(dim, x.ndim)
    out = np.exp(x.data - np.amax(x.data, axis=axis, keepdims=True))
    out /= np.sum(out, axis=axis, keepdims=True)

    def backward(g):
        return (out * (g - np.sum(g * out, axis=axis, keepdims=True)),)
    return make_result(out, (x,), backward, "softmax")

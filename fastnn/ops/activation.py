"""Activation functions, maxout and softmax.

Element-wise activations run as fused device kernels (fastnn/_kernels/cpu_activation.py): one pass forward,
one pass backward from the saved input (or output, for sigmoid and tanh). This module validates arguments,
makes the input contiguous, casts scalars to the input's dtype and wires the backward pass.

The kernels run at every size. On an idle machine a parallel launch costs a few microseconds, about what
NumPy's several-pass formulas cost on a tiny array, while from ~4K elements the fused kernel is several times
faster; a NumPy path for small inputs would add a second implementation to keep equal for no real gain.
Softmax and log-softmax run as fused kernels too, on the input seen as (outer, C, inner) with C the softmax dim.

The activations PyTorch has in-place forms of take `_inplace` (passed by Tensor._write_through, which F's
`inplace=True` and the trailing-underscore forms call): they then write into the input's storage.
"""
import functools
import math
from operator import attrgetter

import numpy as np

from fastnn._tracing import traced
from fastnn.autograd import is_grad_enabled, make_result
from fastnn.ops._util import normalize_dim
from fastnn.tensor import Tensor

SELU_ALPHA = 1.6732632423543772848170429916717
SELU_SCALE = 1.0507009873554804934193349852946

# (forward, backward) entry points of each kernel family, read from a backend's kernel namespace
_HARDTANH = attrgetter("hardtanh_forward", "hardtanh_backward")
_LEAKY_RELU = attrgetter("leaky_relu_forward", "leaky_relu_backward")
_ELU = attrgetter("elu_forward", "elu_backward")
_GELU = attrgetter("gelu_forward", "gelu_backward")
_SIGMOID = attrgetter("sigmoid_forward", "sigmoid_backward")
_TANH = attrgetter("tanh_forward", "tanh_backward")
_SWISH = attrgetter("swish_forward", "swish_backward")
_SOFTPLUS = attrgetter("softplus_forward", "softplus_backward")
_MISH = attrgetter("mish_forward", "mish_backward")


def _compute_array(x, op):
    """x's data as a C-contiguous array of a kernel dtype of its backend; float16 is computed in float32."""
    if not isinstance(x, Tensor):
        raise TypeError(f"{op}(): expected a Tensor, got {type(x).__name__}")
    data = x._data
    if data.dtype == np.float16:
        return data.astype(np.float32)
    if data.dtype not in x._backend.kernel_dtypes:
        raise TypeError(f"{op}(): expected a floating point tensor (float16/32/64), got {data.dtype}")
    return data if data.flags.c_contiguous else x._backend.xp.ascontiguousarray(data)


@functools.lru_cache(maxsize=256, typed=True)
def _kernel_scalars(cast, *scalars):
    """The scalar arguments of a kernel: floats cast to the compute dtype (`cast`), bools kept as flags. Cached:
    the casts cost ~0.7 us a call (ReLU's whole call ~6 us on a small tensor), and an activation's scalars
    rarely change; typed, so that True and 1.0 stay apart."""
    return tuple([s if s.__class__ is bool else cast(s) for s in scalars])


def _real(op, name, value):
    if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)):
        raise TypeError(f"{op}(): {name} must be a real number, got {value!r}")
    if math.isnan(value):
        raise ValueError(f"{op}(): {name} must not be NaN")
    return float(value)


def _elementwise(x, op, family, *scalars, saves_output=False, derivative=None, inplace=False, output_grad=None):
    """Run the family's forward kernel on x's flat data and record its backward kernel, which reads the flat
    input (or the output when `saves_output`). Float scalars are cast to the compute dtype; bools pass as flags.
    `derivative()`: f'(x) from fastnn ops (a constant mask where f is piecewise linear), for the tangent rule
    t * f'(x) (reverse mode differentiates it again).

    `inplace` (from Tensor._write_through): the kernel writes into x's storage (straight into it when x is
    C-contiguous of a kernel dtype, else into a temporary copied back) and the result shares x's storage and
    version counter. A recorded backward then reads the output when the op allows it: `saves_output`, or
    `output_grad(backend, g, out, *scalars)`, the gradient from the output; otherwise it reads a copy of the
    input taken before the write (PyTorch's in-place ops save the original input the same way)."""
    data = _compute_array(x, op)
    xp = x._backend.xp
    forward_kernel, backward_kernel = family(x._backend.kernels)
    args = _kernel_scalars(data.dtype.type, *scalars)
    flat = data.reshape(-1)
    if not inplace:
        out = forward_kernel(flat, *args, xp.empty_like(flat))
        saved = out if saves_output else flat
        out = out.reshape(x.shape)
    else:
        direct = data is x._data  # the kernel can write into x's storage (element-wise: aliasing is safe)
        keeps_input = (output_grad is None and not saves_output and is_grad_enabled() and x.requires_grad)
        if direct:
            target = flat
            if keeps_input:
                flat = flat.copy()
        else:
            target = xp.empty_like(flat) if keeps_input else flat
        out = forward_kernel(flat, *args, target)
        if not direct:
            x._data[...] = out.reshape(x.shape)
        saves_output = saves_output or output_grad is not None
        saved = out if saves_output else flat

    def backward(g):
        g = xp.ascontiguousarray(g, dtype=data.dtype).reshape(-1)
        if inplace and output_grad is not None:
            grad = output_grad(x._backend, g, saved, *args)
        else:
            grad = backward_kernel(g, saved, *args)
        return (grad.reshape(x.shape).astype(x.dtype, copy=False),)
    if inplace:
        out = x._data
    elif out.dtype != x.dtype:
        out = out.astype(x.dtype)
    return make_result(out, (x,), backward, op, saved=() if saves_output or inplace else None,
                       saves_output=saves_output, shares_storage=x if inplace else None,
                       tangent=None if derivative is None else lambda t: t * derivative(), fresh_grads=True)


def _hardtanh_output_grad(backend, g, out, min_val, max_val):
    # min_val < clamp(x) < max_val exactly where min_val < x < max_val (NaN passes both ways)
    return backend.kernels.hardtanh_backward(g, out, min_val, max_val)


# PyTorch's error at the backward of an in-place form whose output no longer tells the input's sign
_NEGATIVE_SLOPE = ("In-place {} backward calculation is triggered with a negative slope which is not supported. This "
                   "is caused by calling in-place forward function with a negative slope, please call out-of-place "
                   "version instead.")


def _leaky_relu_output_grad(backend, g, out, negative_slope):
    if negative_slope < 0:  # out > 0 no longer tells x > 0
        raise RuntimeError(_NEGATIVE_SLOPE.format("leakyReLu"))
    return backend.kernels.leaky_relu_backward(g, out, negative_slope)


def _elu_output_grad(backend, g, out, alpha, scale):
    # for x <= 0, out = scale alpha expm1(x) <= 0 and f'(x) = scale alpha exp(x) = out + scale alpha
    if alpha < 0:
        raise RuntimeError(_NEGATIVE_SLOPE.format("elu"))
    return g * backend.xp.where(out > 0, scale, out + scale * alpha)


def _mask(x, values):
    """A constant (array of x's device, in x's dtype) inside a tangent rule: its derivative is 0."""
    return Tensor._wrap(values.astype(x.dtype), x._backend)


def _elu_derivative(x, alpha, scale):
    return (x.exp() * (scale * alpha)).where(x <= 0, scale)


def _gelu_derivative(x, approximate):
    if approximate == "tanh":  # 0.5 x (1 + tanh(u)), u = sqrt(2 / pi) (x + 0.044715 x^3)
        c = math.sqrt(2 / math.pi)
        th = tanh((x + 0.044715 * x ** 3) * c)
        return 0.5 * (1 + th) + 0.5 * x * (1 - th * th) * c * (1 + 3 * 0.044715 * x * x)
    return 0.5 * (1 + (x * (1 / math.sqrt(2))).erf()) + x * (x * x * -0.5).exp() * (1 / math.sqrt(2 * math.pi))


def _swish_derivative(x, beta):  # d/dx x sigmoid(beta x) = s (1 + beta x (1 - s))
    s = sigmoid(x * beta)
    return s * (1 + x * beta * (1 - s))


# ---- piecewise-linear -----------------------------------------------------------------------------------
@traced
def hardtanh(x, min_val=-1.0, max_val=1.0, *, _inplace=False):
    min_val, max_val = _real("hardtanh", "min_val", min_val), _real("hardtanh", "max_val", max_val)
    if min_val > max_val:
        raise ValueError(f"hardtanh(): min_val ({min_val}) cannot be greater than max_val ({max_val})")
    return _elementwise(x, "hardtanh", _HARDTANH, min_val, max_val, inplace=_inplace,
                        output_grad=_hardtanh_output_grad,
                        derivative=lambda: _mask(x, (x._data > min_val) & (x._data < max_val)))


@traced
def relu(x, *, _inplace=False):
    return _elementwise(x, "relu", _HARDTANH, 0.0, math.inf, inplace=_inplace, output_grad=_hardtanh_output_grad,
                        derivative=lambda: _mask(x, x._data > 0))


@traced
def relu6(x, *, _inplace=False):
    return _elementwise(x, "relu6", _HARDTANH, 0.0, 6.0, inplace=_inplace, output_grad=_hardtanh_output_grad,
                        derivative=lambda: _mask(x, (x._data > 0) & (x._data < 6)))


@traced
def leaky_relu(x, negative_slope=0.01, *, _inplace=False):
    slope = _real("leaky_relu", "negative_slope", negative_slope)
    return _elementwise(x, "leaky_relu", _LEAKY_RELU, slope, inplace=_inplace, output_grad=_leaky_relu_output_grad,
                        derivative=lambda: _mask(x, x._backend.xp.where(x._data > 0, 1.0, slope)))


@traced
def prelu(x, weight):
    """x where x > 0, else weight * x; weight holds one slope or one per channel (dim 1 of x)."""
    data = _compute_array(x, "prelu")
    if not isinstance(weight, Tensor):
        raise TypeError(f"prelu(): weight must be a Tensor, got {type(weight).__name__}")
    if weight.dtype != x.dtype:
        raise TypeError(f"prelu(): weight dtype {weight.dtype} does not match input dtype {x.dtype}")
    channels = x.shape[1] if x.ndim >= 2 else 1
    if weight._data.size != 1 and (weight.ndim != 1 or weight._data.size != channels):
        raise ValueError(f"prelu(): weight must hold 1 slope or one per input channel ({channels}, dim 1 of "
                         f"input shape {x.shape}), got weight shape {weight.shape}")
    slopes = x._backend.xp.ascontiguousarray(weight._data.reshape(-1), dtype=data.dtype)
    if slopes.size == 1:
        # One slope: any split into rows works; keep the last dim inner and parallelize over the rest.
        x3 = data.reshape(math.prod(x.shape[:-1]), 1, x.shape[-1] if x.ndim else 1)
    else:
        x3 = data.reshape(x.shape[0], channels, math.prod(x.shape[2:]))
    backend, xp = x._backend.kernels, x._backend.xp
    out = backend.prelu_forward(x3, slopes)

    def backward(g):
        grad_in, grad_weight_rows = backend.prelu_backward(
            xp.ascontiguousarray(g, dtype=data.dtype).reshape(x3.shape), x3, slopes)
        grad_weight = grad_weight_rows.sum(axis=0).reshape(weight.shape).astype(weight.dtype, copy=False)
        return grad_in.reshape(x.shape).astype(x.dtype, copy=False), grad_weight
    def tangent(tx, tw):
        w = weight.reshape((channels,) + (1,) * (x.ndim - 2) if slopes.size > 1 else ())
        return ((0 if tx is None else tx * w.where(x <= 0, 1.0)) +
                (0 if tw is None else (x * tw.reshape(w.shape)).where(x <= 0, 0.0)))
    return make_result(out.reshape(x.shape).astype(x.dtype, copy=False), (x, weight), backward, "prelu",
                       tangent=tangent, fresh_grads=True)


# ---- smooth ---------------------------------------------------------------------------------------------
@traced
def elu(x, alpha=1.0, *, _inplace=False):
    alpha = _real("elu", "alpha", alpha)
    return _elementwise(x, "elu", _ELU, alpha, 1.0, inplace=_inplace, output_grad=_elu_output_grad,
                        derivative=lambda: _elu_derivative(x, alpha, 1.0))


@traced
def selu(x, *, _inplace=False):
    return _elementwise(x, "selu", _ELU, SELU_ALPHA, SELU_SCALE, inplace=_inplace, output_grad=_elu_output_grad,
                        derivative=lambda: _elu_derivative(x, SELU_ALPHA, SELU_SCALE))


@traced
def gelu(x, approximate="none"):
    if approximate not in ("none", "tanh"):
        raise ValueError(f"gelu(): approximate must be 'none' or 'tanh', got {approximate!r}")
    return _elementwise(x, "gelu", _GELU, approximate == "tanh", derivative=lambda: _gelu_derivative(x, approximate))


@traced
def sigmoid(x, *, _inplace=False):
    def derivative():
        s = sigmoid(x)
        return s * (1 - s)
    return _elementwise(x, "sigmoid", _SIGMOID, saves_output=True, derivative=derivative, inplace=_inplace)


@traced
def tanh(x, *, _inplace=False):
    return _elementwise(x, "tanh", _TANH, saves_output=True, derivative=lambda: 1 - tanh(x) ** 2, inplace=_inplace)


@traced
def silu(x, *, _inplace=False):
    return _elementwise(x, "silu", _SWISH, 1.0, inplace=_inplace, derivative=lambda: _swish_derivative(x, 1.0))


@traced
def swish(x, beta=1.0):
    """x * sigmoid(beta * x); beta is a number or a one-element Tensor (a learnable Parameter gets a grad)."""
    if not isinstance(beta, Tensor):
        beta = _real("swish", "beta", beta)
        return _elementwise(x, "swish", _SWISH, beta, derivative=lambda: _swish_derivative(x, beta))
    data = _compute_array(x, "swish")
    if beta._data.size != 1:
        raise ValueError(f"swish(): beta must hold one element, got shape {beta.shape}")
    if beta.dtype != x.dtype:
        raise TypeError(f"swish(): beta dtype {beta.dtype} does not match input dtype {x.dtype}")
    backend, xp = x._backend.kernels, x._backend.xp
    beta_value = data.dtype.type(beta._data.reshape(()).item())
    flat = data.reshape(-1)
    out = backend.swish_forward(flat, beta_value, xp.empty_like(flat))

    def backward(g):
        g = xp.ascontiguousarray(g, dtype=data.dtype).reshape(-1)
        if not beta.requires_grad:
            return backend.swish_backward(g, flat, beta_value).reshape(x.shape).astype(x.dtype, copy=False), None
        grad_in, beta_partials = backend.swish_backward_with_beta(g, flat, beta_value)
        # the partials are summed on the device (keepdims: an array, never a host scalar)
        grad_beta = beta_partials.sum(keepdims=True).reshape(beta.shape).astype(beta.dtype)
        return grad_in.reshape(x.shape).astype(x.dtype, copy=False), grad_beta
    def tangent(tx, tb):  # d/d beta of x sigmoid(beta x) = x^2 s (1 - s)
        s = sigmoid(beta * x)
        return ((0 if tx is None else tx * _swish_derivative(x, beta)) +
                (0 if tb is None else tb * x * x * s * (1 - s)))
    return make_result(out.reshape(x.shape).astype(x.dtype, copy=False), (x, beta), backward, "swish",
                       tangent=tangent, fresh_grads=True)


@traced
def softplus(x, beta=1.0, threshold=20.0):
    beta = _real("softplus", "beta", beta)
    if beta == 0:
        raise ValueError("softplus(): beta must be non-zero")
    threshold = _real("softplus", "threshold", threshold)
    # linear (slope 1) above the threshold, as the forward
    return _elementwise(x, "softplus", _SOFTPLUS, beta, threshold,
                        derivative=lambda: sigmoid(x * beta).where(x * beta <= threshold, 1.0))


@traced
def mish(x, *, _inplace=False):
    def derivative():  # mish = x tanh(softplus(x))
        th = tanh(softplus(x))
        return th + x * (1 - th * th) * sigmoid(x)
    return _elementwise(x, "mish", _MISH, derivative=derivative, inplace=_inplace)


# ---- maxout ---------------------------------------------------------------------------------------------
@traced
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
    backend, xp = x._backend.kernels, x._backend.xp
    out = backend.maxout_forward(x3, int(pieces))
    out_shape = x.shape[:axis] + (channels // pieces,) + x.shape[axis + 1:]

    def backward(g):
        g3 = xp.ascontiguousarray(g, dtype=data.dtype).reshape(out.shape)
        return (backend.maxout_backward(g3, x3, int(pieces)).reshape(x.shape).astype(x.dtype, copy=False),)
    def tangent(t):  # the tangent of each group's winner (argmax: the first of ties, as the kernel)
        from fastnn.ops.indexing import _pick
        grouped = (x3.shape[0], channels // pieces, int(pieces), x3.shape[2])
        winner = xp.argmax(x3.reshape(grouped), axis=2)[:, :, None]
        return _pick(t.reshape(grouped), winner, 2, "maxout").reshape(out_shape)
    return make_result(out.reshape(out_shape).astype(x.dtype, copy=False), (x,), backward, "maxout",
                       tangent=tangent, fresh_grads=True)


# ---- softmax --------------------------------------------------------------------------------------------
def _softmax_input(x, dim, dtype, op):
    """(x cast to `dtype` if given, the axis). Like PyTorch, integer and bool inputs need dtype= (a float)."""
    if not isinstance(x, Tensor):
        raise TypeError(f"{op}(): expected a Tensor, got {type(x).__name__}")
    if dtype is not None:
        from fastnn.ops.elementwise import astype
        dtype = np.dtype(dtype)
        if dtype.kind != "f":
            raise TypeError(f"{op}(): dtype must be a floating point dtype, got {dtype}")
        if dtype != x.dtype:
            x = astype(x, dtype)
    elif x.dtype.kind != "f":
        raise TypeError(f"{op}(): not implemented for input dtype {x.dtype} (PyTorch raises too): pass a floating "
                        f"point tensor, or dtype=fastnn.float32 to compute in float32")
    return x, normalize_dim(dim, x.ndim)


def _softmax_kernel_input(xp, data, axis):
    """data as a C-contiguous (outer, C, inner) array of a kernel dtype, C being the softmax axis (float16 is
    computed in float32, as _compute_array does)."""
    shape = data.shape
    if data.dtype == np.float16:
        data = data.astype(np.float32)
    return xp.ascontiguousarray(data).reshape(math.prod(shape[:axis]), shape[axis] if shape else 1,
                                              math.prod(shape[axis + 1:]))


def _softmax_array(backend, data, axis, log):
    """(Log-)softmax of a backend array along `axis` by the backend's fused kernel, in data's dtype and shape."""
    if data.size == 0:  # nothing to normalise
        return data.copy()
    out = backend.kernels.softmax_forward(_softmax_kernel_input(backend.xp, data, axis), log)
    return out.reshape(data.shape).astype(data.dtype, copy=False)


def _softmax_op(x, dim, dtype, log):
    op = "log_softmax" if log else "softmax"
    x, axis = _softmax_input(x, dim, dtype, op)
    backend = x._backend
    out = _softmax_array(backend, x._data, axis, log)

    def backward(g):
        if out.size == 0:
            return (g.astype(out.dtype, copy=True),)
        grad = backend.kernels.softmax_backward(_softmax_kernel_input(backend.xp, g.astype(out.dtype, copy=False),
                                                                      axis),
                                                _softmax_kernel_input(backend.xp, out, axis), log)
        return (grad.reshape(out.shape).astype(out.dtype, copy=False),)
    if log:
        def tangent(t):
            return t - (softmax(x, axis) * t).sum(axis, keepdim=True)
    else:
        def tangent(t):
            s = softmax(x, axis)
            return s * (t - (s * t).sum(axis, keepdim=True))
    return make_result(out, (x,), backward, op, saved=(), saves_output=True, tangent=tangent, fresh_grads=True)


@traced
def log_softmax(x, dim, dtype=None):
    return _softmax_op(x, dim, dtype, True)


@traced
def softmax(x, dim, dtype=None):
    return _softmax_op(x, dim, dtype, False)


# ---- activations built from array expressions (issue 14) --------------------------------------------------
# PyTorch's less common activations: forward and derivative as backend-array formulas, one pass of NumPy-style
# math each way. They are cheap next to the layers around them, so they get no fused kernel.
def _pointwise(x, op, forward, derivative, smooth=None, inplace=False, output_derivative=None):
    """An element-wise op: forward(xp, a) -> output array, derivative(xp, a) -> d output / d a (same shape).
    The tangent rule is t * f'(x): `smooth()` builds f'(x) from fastnn ops (so reverse mode differentiates it
    again); without it f is piecewise linear and the derivative array is a constant mask. `inplace`: as in
    _elementwise; the backward then reads the output by `output_derivative(xp, out)` when given, else a copy of
    the input taken before the write."""
    data = _compute_array(x, op)
    xp = x._backend.xp
    out = forward(xp, data)
    from_output = inplace and output_derivative is not None
    if inplace:
        if data is x._data and not from_output and is_grad_enabled() and x.requires_grad:
            data = data.copy()
        x._data[...] = out

    def backward(g):
        if from_output:
            return ((g * output_derivative(xp, out)).astype(x.dtype, copy=False),)
        return ((g * derivative(xp, data)).astype(x.dtype, copy=False),)

    def tangent(t):
        return t * (_mask(x, derivative(xp, data)) if smooth is None else smooth())
    return make_result(x._data if inplace else out.astype(x.dtype, copy=False), (x,), backward, op,
                       saved=() if inplace else None, saves_output=from_output,
                       shares_storage=x if inplace else None, tangent=tangent)


@traced
def hardswish(x, *, _inplace=False):
    """x * relu6(x + 3) / 6; its derivative is 0 below -3, x / 3 + 1/2 on [-3, 3] and 1 above (PyTorch's)."""
    return _pointwise(x, "hardswish", lambda xp, a: a * xp.clip(a + 3, 0, 6) / 6,
                      lambda xp, a: xp.where(a < -3, 0.0, xp.where(a <= 3, a / 3 + 0.5, 1.0)),
                      lambda: _mask(x, (x._data >= -3) & (x._data <= 3)) * (x / 3 + 0.5) + _mask(x, x._data > 3),
                      inplace=_inplace)


@traced
def hardsigmoid(x, *, _inplace=False):
    """relu6(x + 3) / 6; derivative 1/6 strictly inside (-3, 3)."""
    return _pointwise(x, "hardsigmoid", lambda xp, a: xp.clip(a + 3, 0, 6) / 6,
                      lambda xp, a: ((a > -3) & (a < 3)) / 6.0, inplace=_inplace)


def _lambd(op, lambd):
    lambd = _real(op, "lambd", lambd)
    if lambd < 0:
        raise ValueError(f"{op}(): lambd must be greater or equal to 0, got {lambd}")
    return lambd


@traced
def hardshrink(x, lambd=0.5):
    """x where |x| > lambd, else 0."""
    lambd = _real("hardshrink", "lambd", lambd)
    return _pointwise(x, "hardshrink", lambda xp, a: xp.where(xp.abs(a) > lambd, a, 0),
                      lambda xp, a: (xp.abs(a) > lambd).astype(a.dtype))


@traced
def softshrink(x, lambd=0.5):
    """x - lambd above lambd, x + lambd below -lambd, else 0."""
    lambd = _lambd("softshrink", lambd)
    return _pointwise(x, "softshrink", lambda xp, a: xp.where(xp.abs(a) > lambd, a - xp.sign(a) * lambd, 0),
                      lambda xp, a: (xp.abs(a) > lambd).astype(a.dtype))


@traced
def tanhshrink(x):
    """x - tanh(x)."""
    return _pointwise(x, "tanhshrink", lambda xp, a: a - xp.tanh(a), lambda xp, a: xp.tanh(a) ** 2,
                      lambda: tanh(x) ** 2)


@traced
def softsign(x):
    """x / (1 + |x|)."""
    return _pointwise(x, "softsign", lambda xp, a: a / (1 + xp.abs(a)), lambda xp, a: 1 / (1 + xp.abs(a)) ** 2,
                      lambda: (x.abs() + 1) ** -2)


@traced
def logsigmoid(x):
    """log(sigmoid(x)) = min(x, 0) - log1p(exp(-|x|)), finite for every finite x; derivative sigmoid(-x)."""
    return _pointwise(x, "logsigmoid", lambda xp, a: xp.minimum(a, 0) - xp.log1p(xp.exp(-xp.abs(a))),
                      lambda xp, a: 1 / (1 + xp.exp(a)), lambda: sigmoid(-x))


@traced
def celu(x, alpha=1.0, *, _inplace=False):
    """max(0, x) + min(0, alpha * (exp(x / alpha) - 1))."""
    alpha = _real("celu", "alpha", alpha)
    if alpha == 0:
        raise ValueError("celu(): alpha must be non-zero (the formula divides by it)")

    def output_derivative(xp, out):  # exp(x / alpha) = out / alpha + 1 where x <= 0
        if alpha < 0:  # out > 0 no longer tells x > 0
            raise RuntimeError(_NEGATIVE_SLOPE.format("elu"))
        return xp.where(out > 0, 1.0, out / alpha + 1)
    return _pointwise(x, "celu", lambda xp, a: xp.where(a > 0, a, alpha * xp.expm1(xp.minimum(a, 0) / alpha)),
                      lambda xp, a: xp.where(a > 0, 1.0, xp.exp(xp.minimum(a, 0) / alpha)),
                      lambda: (x.clamp(max=0.0) / alpha).exp().where(x <= 0, 1.0), inplace=_inplace,
                      output_derivative=output_derivative)


@traced
def threshold(x, threshold, value, *, _inplace=False):
    """x where x > threshold, else value (PyTorch's argument names: the threshold and the replacement)."""
    threshold, value = _real("threshold", "threshold", threshold), _real("threshold", "value", value)
    return _pointwise(x, "threshold", lambda xp, a: xp.where(a > threshold, a, value),
                      lambda xp, a: (a > threshold).astype(a.dtype), inplace=_inplace)


def rrelu(x, lower=1.0 / 8, upper=1.0 / 3, training=False, generator=None, *, _inplace=False):
    """Randomized leaky ReLU (Xu et al., 2015): in training each negative element gets its own slope drawn
    uniformly from [lower, upper] (fastnn's seeded generator); in evaluation the slope is (lower + upper) / 2."""
    lower, upper = _real("rrelu", "lower", lower), _real("rrelu", "upper", upper)
    if lower > upper:
        raise ValueError(f"rrelu(): lower bound ({lower}) must be less than or equal to upper bound ({upper})")
    if not training:
        return leaky_relu(x, (lower + upper) / 2, _inplace=_inplace)
    data = _compute_array(x, "rrelu")
    slopes = x._backend.draw("uniform", x.shape, data.dtype, generator, low=lower, high=upper)
    # the factor that multiplies x (1 where x > 0, PyTorch's rule) is both the forward and the derivative
    factor = x._backend.xp.where(data > 0, data.dtype.type(1), slopes)
    if _inplace:  # the backward reads only the factor: no copy of the input
        x._data[...] = data * factor
        out = x._data
    else:
        out = (data * factor).astype(x.dtype, copy=False)
    # in place, the node records the output's version as PyTorch's does (a later edit of it raises at backward)
    return make_result(out, (x,), lambda g: ((g * factor).astype(x.dtype, copy=False),), "rrelu", saved=(),
                       saves_output=_inplace, shares_storage=x if _inplace else None,
                       tangent=lambda t: t * _mask(x, factor))


@traced
def glu(x, dim=-1):
    """Gated linear unit: a * sigmoid(b), where a and b are the two halves of x along dim."""
    from fastnn.ops.elementwise import mul
    from fastnn.ops.shape import chunk
    if not isinstance(x, Tensor):
        raise TypeError(f"glu(): expected a Tensor, got {type(x).__name__}")
    if x.ndim == 0:
        raise ValueError("glu(): input must have at least one dimension (got a 0-d tensor)")
    axis = normalize_dim(dim, x.ndim)
    if x.shape[axis] % 2:
        raise ValueError(f"glu(): halving dimension must be even, but dimension {dim} is size {x.shape[axis]}")
    a, b = chunk(x, 2, axis)
    return mul(a, sigmoid(b))


def softmin(x, dim, dtype=None):
    """softmax(-x) along dim."""
    from fastnn.ops.elementwise import neg
    x, _ = _softmax_input(x, dim, dtype, "softmin")
    return softmax(neg(x), dim)

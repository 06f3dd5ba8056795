"""Activation kernels (numba.cuda): the entry points of cpu_activation.py, one fused launch per call.

Element-wise kernels run one thread per element of the flat input; the math of each activation is a device
function shared by its forward and backward. Scalars are cast to the input's dtype by the entry points. PReLU's
weight gradient and swish's beta gradient are sums: each thread (PReLU) or block (swish, a fixed shared-memory
tree) sums in a fixed order and writes its own slot, and the op sums the slots, so results are deterministic
(no float atomics).
"""
import math

from numba import cuda

from fastnn._kernels.cuda_common import REDUCE_THREADS, THREADS, blocks, empty_like
from fastnn._kernels.cuda_norm import block_sum

__all__ = ["hardtanh_forward", "hardtanh_backward", "leaky_relu_forward", "leaky_relu_backward", "elu_forward",
           "elu_backward", "sigmoid_forward", "sigmoid_backward", "tanh_forward", "tanh_backward", "swish_forward",
           "swish_backward", "swish_backward_with_beta", "softplus_forward", "softplus_backward", "mish_forward",
           "mish_backward", "gelu_forward", "gelu_backward", "prelu_forward", "prelu_backward", "maxout_forward",
           "maxout_backward"]

_SQRT_HALF = math.sqrt(0.5)
_INV_SQRT_2PI = 1.0 / math.sqrt(2 * math.pi)
_GELU_2K = 2 * math.sqrt(2 / math.pi)


# ---- the math, one device function per formula ------------------------------------------------------
@cuda.jit(device=True)
def _sigmoid(x):
    if x >= 0:
        return 1 / (1 + math.exp(-x))
    e = math.exp(x)
    return e / (1 + e)


@cuda.jit(device=True)
def _softplus1(x):
    """log(1 + exp(x)) without overflow."""
    return math.log1p(math.exp(-abs(x))) + max(x, 0)


@cuda.jit(device=True)
def _hardtanh_f(x, lo, hi):
    return lo if x < lo else (hi if x > hi else x)


@cuda.jit(device=True)
def _hardtanh_b(g, x, lo, hi):
    return 0 if (x <= lo or x >= hi) else g


@cuda.jit(device=True)
def _leaky_f(x, slope, unused):
    return x if x > 0 else x * slope


@cuda.jit(device=True)
def _leaky_b(g, x, slope, unused):
    return g if x > 0 else g * slope


@cuda.jit(device=True)
def _elu_f(x, alpha, scale):
    return scale * x if x > 0 else scale * alpha * math.expm1(x)


@cuda.jit(device=True)
def _elu_b(g, x, alpha, scale):
    return g * scale if x > 0 else g * scale * alpha * math.exp(x)


@cuda.jit(device=True)
def _sigmoid_f(x, a, b):
    return _sigmoid(x)


@cuda.jit(device=True)
def _sigmoid_b(g, out, a, b):
    return g * out * (1 - out)


@cuda.jit(device=True)
def _tanh_f(x, a, b):
    return math.tanh(x)


@cuda.jit(device=True)
def _tanh_b(g, out, a, b):
    return g * (1 - out * out)


@cuda.jit(device=True)
def _swish_f(x, beta, unused):
    return x * _sigmoid(beta * x)


@cuda.jit(device=True)
def _swish_b(g, x, beta, unused):
    s = _sigmoid(beta * x)
    return g * (s + beta * x * s * (1 - s))


@cuda.jit(device=True)
def _softplus_f(x, beta, threshold):
    return x if beta * x > threshold else _softplus1(beta * x) / beta


@cuda.jit(device=True)
def _softplus_b(g, x, beta, threshold):
    return g if beta * x > threshold else g * _sigmoid(beta * x)


@cuda.jit(device=True)
def _mish_f(x, a, b):
    return x * math.tanh(_softplus1(x))


@cuda.jit(device=True)
def _mish_b(g, x, a, b):
    t = math.tanh(_softplus1(x))
    return g * (t + x * (1 - t * t) * _sigmoid(x))


@cuda.jit(device=True)
def _gelu_f(x, tanh_approximation, unused):
    if tanh_approximation:  # 0.5 * (1 + tanh(u)) written as sigmoid(2u)
        return x * _sigmoid(_GELU_2K * (x + 0.044715 * x * x * x))
    return 0.5 * x * (1 + math.erf(x * _SQRT_HALF))


@cuda.jit(device=True)
def _gelu_b(g, x, tanh_approximation, unused):
    if tanh_approximation:
        s = _sigmoid(_GELU_2K * (x + 0.044715 * x * x * x))
        return g * (s + x * s * (1 - s) * _GELU_2K * (1 + 3 * 0.044715 * x * x))
    return g * (0.5 * (1 + math.erf(x * _SQRT_HALF)) + x * math.exp(-0.5 * x * x) * _INV_SQRT_2PI)


# ---- kernel factories: one launch over the flat array -----------------------------------------------
def _forward_kernel(fn):
    @cuda.jit
    def kernel(x, out, a, b):
        i = cuda.grid(1)
        if i < x.size:
            out[i] = fn(x[i], a, b)
    return kernel


def _backward_kernel(fn):
    @cuda.jit
    def kernel(g, saved, out, a, b):
        i = cuda.grid(1)
        if i < g.size:
            out[i] = fn(g[i], saved[i], a, b)
    return kernel


def _forward(kernel, x, out, a=0, b=0):
    kernel[blocks(x.size), THREADS](x, out, a, b)
    return out


def _backward(kernel, grad_out, saved, a=0, b=0):
    out = empty_like(saved)
    kernel[blocks(saved.size), THREADS](grad_out, saved, out, a, b)
    return out


_K = {name: (_forward_kernel(f), _backward_kernel(b)) for name, f, b in (
    ("hardtanh", _hardtanh_f, _hardtanh_b), ("leaky_relu", _leaky_f, _leaky_b), ("elu", _elu_f, _elu_b),
    ("sigmoid", _sigmoid_f, _sigmoid_b), ("tanh", _tanh_f, _tanh_b), ("swish", _swish_f, _swish_b),
    ("softplus", _softplus_f, _softplus_b), ("mish", _mish_f, _mish_b), ("gelu", _gelu_f, _gelu_b))}


def _t(x, value):
    return x.dtype.type(value)


def hardtanh_forward(x, min_val, max_val, out):
    return _forward(_K["hardtanh"][0], x, out, _t(x, min_val), _t(x, max_val))


def hardtanh_backward(grad_out, x, min_val, max_val):
    return _backward(_K["hardtanh"][1], grad_out, x, _t(x, min_val), _t(x, max_val))


def leaky_relu_forward(x, negative_slope, out):
    return _forward(_K["leaky_relu"][0], x, out, _t(x, negative_slope))


def leaky_relu_backward(grad_out, x, negative_slope):
    return _backward(_K["leaky_relu"][1], grad_out, x, _t(x, negative_slope))


def elu_forward(x, alpha, scale, out):
    return _forward(_K["elu"][0], x, out, _t(x, alpha), _t(x, scale))


def elu_backward(grad_out, x, alpha, scale):
    return _backward(_K["elu"][1], grad_out, x, _t(x, alpha), _t(x, scale))


def sigmoid_forward(x, out):
    return _forward(_K["sigmoid"][0], x, out)


def sigmoid_backward(grad_out, out):
    return _backward(_K["sigmoid"][1], grad_out, out)


def tanh_forward(x, out):
    return _forward(_K["tanh"][0], x, out)


def tanh_backward(grad_out, out):
    return _backward(_K["tanh"][1], grad_out, out)


def swish_forward(x, beta, out):
    return _forward(_K["swish"][0], x, out, _t(x, beta))


def swish_backward(grad_out, x, beta):
    return _backward(_K["swish"][1], grad_out, x, _t(x, beta))


def softplus_forward(x, beta, threshold, out):
    return _forward(_K["softplus"][0], x, out, _t(x, beta), _t(x, threshold))


def softplus_backward(grad_out, x, beta, threshold):
    return _backward(_K["softplus"][1], grad_out, x, _t(x, beta), _t(x, threshold))


def mish_forward(x, out):
    return _forward(_K["mish"][0], x, out)


def mish_backward(grad_out, x):
    return _backward(_K["mish"][1], grad_out, x)


def gelu_forward(x, tanh_approximation, out):
    return _forward(_K["gelu"][0], x, out, bool(tanh_approximation))


def gelu_backward(grad_out, x, tanh_approximation):
    return _backward(_K["gelu"][1], grad_out, x, bool(tanh_approximation))


# ---- swish with a beta gradient: per-block partial sums by a fixed tree ------------------------------
@cuda.jit
def _swish_beta_kernel(g, x, beta, grad_in, partials):
    shared = cuda.shared.array(REDUCE_THREADS, dtype=partials.dtype)  # float64 partials, whatever x's dtype
    t = cuda.threadIdx.x
    i = cuda.blockIdx.x * REDUCE_THREADS + t
    term = 0.0
    if i < x.size:
        v = x[i]
        s = _sigmoid(beta * v)
        grad_in[i] = g[i] * (s + beta * v * s * (1 - s))
        term = g[i] * v * v * s * (1 - s)
    total = block_sum(shared, t, term)
    if t == 0:
        partials[cuda.blockIdx.x] = total


def swish_backward_with_beta(grad_out, x, beta):
    """(grad_in, the beta gradient as per-block partial sums, in x's dtype; the op adds them)."""
    n_blocks = blocks(x.size, REDUCE_THREADS)
    grad_in = empty_like(x)
    partials = empty_like(x, (n_blocks,), "float64")
    _swish_beta_kernel[n_blocks, REDUCE_THREADS](grad_out, x, _t(x, beta), grad_in, partials)
    return grad_in, partials.astype(x.dtype)


# ---- PReLU: x (outer, C, inner), one slope per channel ------------------------------------------------
@cuda.jit
def _prelu_forward_kernel(x, weight, out, channels, inner):
    i = cuda.grid(1)
    if i < x.size:
        v = x[i]
        out[i] = v if v > 0 else weight[(i // inner) % channels] * v


@cuda.jit
def _prelu_backward_kernel(g, x, weight, grad_in, channels, inner):
    i = cuda.grid(1)
    if i < x.size:
        grad_in[i] = g[i] if x[i] > 0 else weight[(i // inner) % channels] * g[i]


@cuda.jit
def _prelu_weight_rows_kernel(g, x, rows, channels, inner):
    """rows[o, c] = sum over the inner positions of x*g where x <= 0, summed in order by one thread."""
    r = cuda.grid(1)
    if r < rows.size:
        total = 0.0
        base = r * inner
        for k in range(inner):
            v = x[base + k]
            if not v > 0:
                total += v * g[base + k]
        rows[r // channels, r % channels] = total


def prelu_forward(x, weight):
    outer, channels, inner = x.shape
    out = empty_like(x)
    _prelu_forward_kernel[blocks(x.size), THREADS](x.reshape(-1), weight, out.reshape(-1), channels, inner)
    return out


def prelu_backward(grad_out, x, weight):
    """(grad_in, weight-gradient partial sums shaped (outer, C))."""
    outer, channels, inner = x.shape
    grad_in = empty_like(x)
    flat_g, flat_x = grad_out.reshape(-1), x.reshape(-1)
    _prelu_backward_kernel[blocks(x.size), THREADS](flat_g, flat_x, weight, grad_in.reshape(-1), channels, inner)
    rows = empty_like(x, (outer, channels))
    _prelu_weight_rows_kernel[blocks(outer * channels), THREADS](flat_g, flat_x, rows, channels, inner)
    return grad_in, rows


# ---- maxout: x (outer, groups * pieces, inner) -> (outer, groups, inner) ------------------------------
@cuda.jit(device=True)
def _maxout_winner(x, n, first, pieces, j):
    """The winning piece of one output: the first maximum, or the first NaN (NaN wins, as on the CPU)."""
    best = x[n, first, j]
    winner = 0
    for p in range(1, pieces):
        v = x[n, first + p, j]
        if v > best or (v != v and best == best):
            best = v
            winner = p
    return winner


@cuda.jit
def _maxout_forward_kernel(x, out, pieces):
    i = cuda.grid(1)
    outer, groups, inner = out.shape
    if i < out.size:
        n = i // (groups * inner)
        group = (i // inner) % groups
        j = i % inner
        out[n, group, j] = x[n, group * pieces + _maxout_winner(x, n, group * pieces, pieces, j), j]


@cuda.jit
def _maxout_backward_kernel(g, x, grad_in, pieces):
    i = cuda.grid(1)
    outer, groups, inner = g.shape
    if i < g.size:
        n = i // (groups * inner)
        group = (i // inner) % groups
        j = i % inner
        winner = _maxout_winner(x, n, group * pieces, pieces, j)
        for p in range(pieces):
            grad_in[n, group * pieces + p, j] = g[n, group, j] if p == winner else 0


def maxout_forward(x, pieces):
    outer, channels, inner = x.shape
    out = empty_like(x, (outer, channels // pieces, inner))
    _maxout_forward_kernel[blocks(out.size), THREADS](x, out, pieces)
    return out


def maxout_backward(grad_out, x, pieces):
    grad_in = empty_like(x)
    _maxout_backward_kernel[blocks(grad_out.size), THREADS](grad_out, x, grad_in, pieces)
    return grad_in

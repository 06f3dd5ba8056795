"""Plain-NumPy references for fastnn/_kernels/cpu_activation.py: same names, arguments and results.

Written for clarity, not speed; the tests compare the Numba kernels with these. Each formula is the textbook
one, with np.errstate silencing the harmless overflow/underflow of the saturated branch that np.where drops.
"""
import math

import numpy as np
from scipy import special


def _into(out, values):
    """The forward kernels' contract: values written into `out` (possibly the input itself), which is returned."""
    out[...] = values
    return out


def hardtanh_forward(x, min_val, max_val, out):
    return _into(out, np.where(x < min_val, min_val, np.where(x > max_val, max_val, x)).astype(x.dtype))


def hardtanh_backward(grad_out, x, min_val, max_val):
    return np.where((x <= min_val) | (x >= max_val), 0, grad_out).astype(x.dtype)


def leaky_relu_forward(x, negative_slope, out):
    return _into(out, np.where(x > 0, x, x * negative_slope))


def leaky_relu_backward(grad_out, x, negative_slope):
    return np.where(x > 0, grad_out, grad_out * negative_slope)


def elu_forward(x, alpha, scale, out):
    return _into(out, scale * np.where(x > 0, x, alpha * np.expm1(np.minimum(x, 0))))


def elu_backward(grad_out, x, alpha, scale):
    return grad_out * scale * np.where(x > 0, 1, alpha * np.exp(np.minimum(x, 0))).astype(x.dtype)


def sigmoid_forward(x, out):
    return _into(out, special.expit(x))


def sigmoid_backward(grad_out, out):
    return grad_out * out * (1 - out)


def tanh_forward(x, out):
    return _into(out, np.tanh(x))


def tanh_backward(grad_out, out):
    return grad_out * (1 - out * out)


def swish_forward(x, beta, out):
    return _into(out, x * special.expit(beta * x))


def swish_backward(grad_out, x, beta):
    s = special.expit(beta * x)
    return grad_out * (s + beta * x * s * (1 - s))


def swish_backward_with_beta(grad_out, x, beta):
    """(grad_in, the beta gradient as a one-element array of partial sums)."""
    s = special.expit(beta * x)
    return swish_backward(grad_out, x, beta), np.array([np.sum(grad_out * x * x * s * (1 - s))], x.dtype)


def softplus_forward(x, beta, threshold, out):
    # logaddexp(0, bx) = log(1 + exp(bx)) without overflow when threshold lets a large bx through
    with np.errstate(invalid="ignore"):  # NaN inputs propagate silently, as in the kernel
        return _into(out, np.where(beta * x > threshold, x, np.logaddexp(0, beta * x) / beta).astype(x.dtype))


def softplus_backward(grad_out, x, beta, threshold):
    return np.where(beta * x > threshold, grad_out, grad_out * special.expit(beta * x)).astype(x.dtype)


def mish_forward(x, out):
    return _into(out, x * np.tanh(np.logaddexp(0, x)))


def mish_backward(grad_out, x):
    t = np.tanh(np.logaddexp(0, x))
    return grad_out * (t + x * (1 - t * t) * special.expit(x))


def gelu_forward(x, tanh_approximation, out):
    if tanh_approximation:  # 0.5 * (1 + tanh(u)) written as sigmoid(2u)
        return _into(out, x * special.expit(2 * math.sqrt(2 / math.pi) * (x + 0.044715 * x ** 3)))
    return _into(out, (0.5 * x * (1 + special.erf(x / math.sqrt(2)))).astype(x.dtype))


def gelu_backward(grad_out, x, tanh_approximation):
    if tanh_approximation:
        two_k = 2 * math.sqrt(2 / math.pi)
        s = special.expit(two_k * (x + 0.044715 * x ** 3))
        return grad_out * (s + x * s * (1 - s) * two_k * (1 + 3 * 0.044715 * x * x))
    cdf = 0.5 * (1 + special.erf(x / math.sqrt(2)))
    pdf = np.exp(-0.5 * x * x) / math.sqrt(2 * math.pi)
    return (grad_out * (cdf + x * pdf)).astype(x.dtype)


def prelu_forward(x, weight):
    w = weight[None, :, None]
    return np.where(x > 0, x, w * x)


def prelu_backward(grad_out, x, weight):
    """(grad_in, weight-gradient partial sums shaped (outer, C))."""
    w = weight[None, :, None]
    return (np.where(x > 0, grad_out, w * grad_out),
            np.where(x > 0, 0, x * grad_out).sum(axis=2).astype(x.dtype))


def maxout_forward(x, pieces):
    outer, channels, inner = x.shape
    return x.reshape(outer, channels // pieces, pieces, inner).max(axis=2)


def maxout_backward(grad_out, x, pieces):
    outer, channels, inner = x.shape
    grouped = x.reshape(outer, channels // pieces, pieces, inner)
    winner = np.argmax(grouped, axis=2)[:, :, None, :]
    grad_in = np.zeros_like(grouped)
    np.put_along_axis(grad_in, winner, grad_out[:, :, None, :], axis=2)
    return grad_in.reshape(x.shape)


# Softmax references use only array methods and ufuncs, so CuPy arrays run them too (the CUDA backend's fallback).
def softmax_forward(x, log):
    shifted = x - x.max(axis=1, keepdims=True)
    exp = np.exp(shifted)
    if log:
        return shifted - np.log(exp.sum(axis=1, keepdims=True))
    return exp / exp.sum(axis=1, keepdims=True)


def softmax_backward(grad_out, out, log):
    if log:
        return grad_out - np.exp(out) * grad_out.sum(axis=1, keepdims=True)
    return out * (grad_out - (grad_out * out).sum(axis=1, keepdims=True))

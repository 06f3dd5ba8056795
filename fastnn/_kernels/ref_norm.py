"""Plain-NumPy references for the normalisation kernels in cpu_norm.py (same signatures, same layouts)."""
import numpy as np


def batch_norm_forward(x, weight, bias, eps):
    x64 = x.astype(np.float64)
    mean = x64.mean(axis=(0, 2))
    var = x64.var(axis=(0, 2))
    xhat = (x64 - mean[:, None]) / np.sqrt(var[:, None] + eps)
    y = xhat * weight[:, None] + bias[:, None]
    return y.astype(x.dtype), mean, var


def batch_norm_apply(x, mean, invstd, weight, bias):
    y = (x - mean[:, None]) * (invstd * weight)[:, None] + bias[:, None]
    return y.astype(x.dtype)


def batch_norm_backward(grad_out, x, mean, invstd, weight, batch_stats):
    dy = grad_out.astype(np.float64)
    xhat = (x.astype(np.float64) - mean[:, None]) * invstd[:, None]
    sum_dy = dy.sum(axis=(0, 2))
    sum_dy_xhat = (dy * xhat).sum(axis=(0, 2))
    gain = (weight * invstd)[:, None]
    if batch_stats:
        count = x.shape[0] * x.shape[2]
        dx = gain / count * (count * dy - sum_dy[:, None] - xhat * sum_dy_xhat[:, None])
    else:
        dx = gain * dy
    return dx.astype(x.dtype), sum_dy_xhat.astype(x.dtype), sum_dy.astype(x.dtype)


def layer_norm_forward(x, weight, bias, eps):
    x64 = x.astype(np.float64)
    mean = x64.mean(axis=1)
    invstd = 1.0 / np.sqrt(x64.var(axis=1) + eps)
    y = (x64 - mean[:, None]) * invstd[:, None] * weight + bias
    return y.astype(x.dtype), mean, invstd


def layer_norm_backward(grad_out, x, mean, invstd, weight):
    dy = grad_out.astype(np.float64)
    xhat = (x.astype(np.float64) - mean[:, None]) * invstd[:, None]
    g = dy * weight
    width = x.shape[1]
    dx = invstd[:, None] / width * (width * g - g.sum(axis=1, keepdims=True)
                                    - xhat * (g * xhat).sum(axis=1, keepdims=True))
    return dx.astype(x.dtype), (dy * xhat).sum(axis=0).astype(x.dtype), dy.sum(axis=0).astype(x.dtype)


def _window_sums(values, before, after):
    """Sum over channels [c - before, c + after] for every channel c of (N, C, S), clipped at the edges."""
    channels = values.shape[1]
    padded = np.pad(values, ((0, 0), (before, after), (0, 0)))
    return sum(padded[:, j:j + channels] for j in range(before + after + 1))


def local_response_norm_forward(x, size, alpha, beta, k):
    base = k + alpha / size * _window_sums(x * x, size // 2, (size - 1) // 2)
    return (x * base ** -beta).astype(x.dtype), base.astype(x.dtype)


def local_response_norm_backward(grad_out, x, y, base, size, alpha, beta):
    # The channels whose window holds c lie in [c - (size-1)//2, c + size//2]: the window mirrored.
    total = _window_sums(grad_out * y / base, (size - 1) // 2, size // 2)
    return (grad_out * base ** -beta - 2 * alpha * beta / size * x * total).astype(x.dtype)

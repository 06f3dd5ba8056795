"""Normalisation kernels (numba.cuda): batch norm on (N, C, S) and layer norm on rows (R, D), the entry points
of cpu_norm.py with the same layouts and results (local response norm is served by cuda.py with CuPy).

Deterministic: a channel (batch norm) or a row (layer norm) is one block; each thread sums a fixed strided
subset of it in float64, then the block adds the threads' sums by a fixed shared-memory tree. Layer norm's
weight/bias gradients are column sums over rows, one thread per column in row order. No float atomics, so the
results are bit-identical from run to run. Output loops stay in the input's dtype, as on the CPU.
"""
import math

from numba import cuda, float64

from fastnn._kernels.cuda_common import CHANNEL_THREADS, REDUCE_THREADS, THREADS, blocks, empty_like

__all__ = ["batch_norm_forward", "batch_norm_apply", "batch_norm_backward", "layer_norm_forward",
           "layer_norm_backward"]


@cuda.jit(device=True)
def block_sum(shared, t, value):
    """The sum of `value` over the block's threads (one slot of `shared` each: the block has shared.size
    threads, a power of two), the same tree every time; every thread gets it."""
    cuda.syncthreads()  # the previous use of `shared` is finished
    shared[t] = value
    cuda.syncthreads()
    step = shared.shape[0] // 2
    while step > 0:
        if t < step:
            shared[t] += shared[t + step]
        cuda.syncthreads()
        step //= 2
    return shared[0]


@cuda.jit
def _bn_forward(x, weight, bias, eps, y, mean, var):
    n, channels, size = x.shape
    c = cuda.blockIdx.x
    t = cuda.threadIdx.x
    shared = cuda.shared.array(CHANNEL_THREADS, float64)
    count = n * size
    total = 0.0
    for k in range(t, count, CHANNEL_THREADS):
        total += x[k // size, c, k % size]
    m = block_sum(shared, t, total) / count
    squares = 0.0  # second pass over the centred values, as on the CPU
    for k in range(t, count, CHANNEL_THREADS):
        d = x[k // size, c, k % size] - m
        squares += d * d
    v = block_sum(shared, t, squares) / count
    if t == 0:
        mean[c] = m
        var[c] = v
    scale = weight[c] / math.sqrt(v + eps)
    for k in range(t, count, CHANNEL_THREADS):
        i = k // size
        s = k % size
        y[i, c, s] = (x[i, c, s] - m) * scale + bias[c]


def batch_norm_forward(x, weight, bias, eps):
    """(y, mean, var): mean and var float64 (C,)."""
    channels = x.shape[1]
    y = empty_like(x)
    mean = empty_like(x, (channels,), "float64")
    var = empty_like(x, (channels,), "float64")
    _bn_forward[channels, CHANNEL_THREADS](x, weight, bias, float(eps), y, mean, var)
    return y, mean, var


@cuda.jit
def _bn_apply(x, mean, invstd, weight, bias, y, channels, size):
    i = cuda.grid(1)
    if i < x.size:
        c = (i // size) % channels
        y[i] = (x[i] - mean[c]) * (invstd[c] * weight[c]) + bias[c]


def batch_norm_apply(x, mean, invstd, weight, bias):
    n, channels, size = x.shape
    y = empty_like(x)
    _bn_apply[blocks(x.size), THREADS](x.reshape(-1), mean, invstd, weight, bias, y.reshape(-1), channels, size)
    return y


@cuda.jit
def _bn_backward(grad_out, x, mean, invstd, weight, batch_stats, dx, dweight, dbias):
    n, channels, size = x.shape
    c = cuda.blockIdx.x
    t = cuda.threadIdx.x
    shared = cuda.shared.array(CHANNEL_THREADS, float64)
    count = n * size
    m = mean[c]
    sum_dy = 0.0
    sum_dy_centred = 0.0
    for k in range(t, count, CHANNEL_THREADS):
        g = grad_out[k // size, c, k % size]
        sum_dy += g
        sum_dy_centred += g * (x[k // size, c, k % size] - m)
    sum_dy = block_sum(shared, t, sum_dy)
    sum_dy_centred = block_sum(shared, t, sum_dy_centred)
    istd = invstd[c]
    if t == 0:
        dbias[c] = sum_dy
        dweight[c] = sum_dy_centred * istd
    gain = weight[c] * istd
    mean_dy = sum_dy / count if batch_stats else 0.0
    projection = istd * istd * sum_dy_centred / count if batch_stats else 0.0
    for k in range(t, count, CHANNEL_THREADS):
        i = k // size
        s = k % size
        dx[i, c, s] = (grad_out[i, c, s] - mean_dy - (x[i, c, s] - m) * projection) * gain


def batch_norm_backward(grad_out, x, mean, invstd, weight, batch_stats):
    """(dx, dweight = sum(dy*xhat), dbias = sum(dy)); see cpu_norm.batch_norm_backward."""
    channels = x.shape[1]
    dx = empty_like(x)
    dweight = empty_like(x, (channels,))
    dbias = empty_like(x, (channels,))
    _bn_backward[channels, CHANNEL_THREADS](grad_out, x, mean, invstd, weight, bool(batch_stats), dx, dweight, dbias)
    return dx, dweight, dbias


@cuda.jit
def _ln_forward(x, weight, bias, eps, y, mean, invstd):
    rows, width = x.shape
    r = cuda.blockIdx.x
    t = cuda.threadIdx.x
    shared = cuda.shared.array(REDUCE_THREADS, float64)
    total = 0.0
    for d in range(t, width, REDUCE_THREADS):
        total += x[r, d]
    m = block_sum(shared, t, total) / width
    squares = 0.0
    for d in range(t, width, REDUCE_THREADS):
        v = x[r, d] - m
        squares += v * v
    istd = 1.0 / math.sqrt(block_sum(shared, t, squares) / width + eps)
    if t == 0:
        mean[r] = m
        invstd[r] = istd
    for d in range(t, width, REDUCE_THREADS):
        y[r, d] = (x[r, d] - m) * istd * weight[d] + bias[d]


def layer_norm_forward(x, weight, bias, eps):
    """(y, mean, invstd): mean and invstd float64 (R,)."""
    rows = x.shape[0]
    y = empty_like(x)
    mean = empty_like(x, (rows,), "float64")
    invstd = empty_like(x, (rows,), "float64")
    _ln_forward[max(rows, 1), REDUCE_THREADS](x, weight, bias, float(eps), y, mean, invstd)
    return y, mean, invstd


@cuda.jit
def _ln_backward_rows(grad_out, x, mean, invstd, weight, dx):
    rows, width = x.shape
    r = cuda.blockIdx.x
    t = cuda.threadIdx.x
    shared = cuda.shared.array(REDUCE_THREADS, float64)
    m = mean[r]
    istd = invstd[r]
    sum_g = 0.0
    sum_g_centred = 0.0
    for d in range(t, width, REDUCE_THREADS):
        g = grad_out[r, d] * weight[d]
        sum_g += g
        sum_g_centred += g * (x[r, d] - m)
    mean_g = block_sum(shared, t, sum_g) / width
    projection = istd * istd * block_sum(shared, t, sum_g_centred) / width
    for d in range(t, width, REDUCE_THREADS):
        dx[r, d] = (grad_out[r, d] * weight[d] - mean_g - (x[r, d] - m) * projection) * istd


@cuda.jit
def _ln_backward_columns(grad_out, x, mean, invstd, dweight, dbias):
    rows, width = x.shape
    d = cuda.grid(1)
    if d < width:
        total_dweight = 0.0
        total_dbias = 0.0
        for r in range(rows):
            g = grad_out[r, d]
            total_dbias += g
            total_dweight += g * (x[r, d] - mean[r]) * invstd[r]
        dweight[d] = total_dweight
        dbias[d] = total_dbias


def layer_norm_backward(grad_out, x, mean, invstd, weight):
    """(dx (R, D), dweight (D,), dbias (D,))."""
    rows, width = x.shape
    dx = empty_like(x)
    dweight = empty_like(x, (width,))
    dbias = empty_like(x, (width,))
    if rows:
        _ln_backward_rows[rows, REDUCE_THREADS](grad_out, x, mean, invstd, weight, dx)
    _ln_backward_columns[blocks(width), THREADS](grad_out, x, mean, invstd, dweight, dbias)
    return dx, dweight, dbias

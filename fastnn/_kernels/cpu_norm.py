"""Normalisation kernels (Numba, CPU).

Channel kernels work on arrays shaped (N, C, S), C-contiguous, with statistics per channel C over N and S:
batch norm uses the layer's own layout, instance norm the view (1, N*C, S), group norm (1, N*G, C/G*S).
Layer-norm kernels work on rows (R, D), statistics per row. Local response norm works on (N, C, S) with a
window along C.

Every reduction belongs to one `prange` iteration (a channel, a row, a chunk of rows) and runs in a fixed
order, so results are bit-identical from run to run whatever the thread count. Sums accumulate in float64;
the per-element loops that write outputs stay in the input's dtype. `fastmath` is limited to reassociation:
that lets LLVM split a channel's sum over SIMD lanes (an order fixed at compile time) while NaN and infinity
still propagate as IEEE arithmetic says. (No FMA contraction: g*w - mean(g*w) must cancel exactly.)
"""
import numpy as np
from numba import njit, prange

__all__ = ["batch_norm_forward", "batch_norm_apply", "batch_norm_backward", "layer_norm_forward",
           "layer_norm_backward", "local_response_norm_forward", "local_response_norm_backward"]

_SIMD_SUMS = {"reassoc"}
# Layer-norm weight gradients are summed over rows in this many fixed chunks (then over chunks, in order):
# enough to keep both cores busy, independent of the thread count so the sum order never changes.
_ROW_CHUNKS = 32
# Blocks of rows in batch_norm_apply: element-wise, so any count gives the same result; a few per thread.
_ROW_BLOCKS = 64


@njit(parallel=True, nogil=True, cache=True)
def batch_norm_apply(x, mean, invstd, weight, bias):
    """y = (x - mean[c]) * invstd[c] * weight[c] + bias[c] on x (N, C, S); mean and invstd float64 (C,).

    Parallel over blocks of the N*C contiguous rows of S, not over channels: each thread streams one contiguous
    part of x instead of runs of S strided C*S apart (which share cache sets when C*S is a power of two), and
    N = 1 still splits. The channel index steps along a block (a modulo per row would cost more than a short row).
    """
    n, channels, size = x.shape
    y = np.empty_like(x)
    centre = np.empty(channels, x.dtype)
    scale = np.empty(channels, x.dtype)
    for c in range(channels):
        centre[c] = mean[c]
        scale[c] = weight[c] * invstd[c]
    src = x.reshape(n * channels, size)
    dst = y.reshape(n * channels, size)
    rows = n * channels
    tasks = min(rows, _ROW_BLOCKS)
    for k in prange(tasks):
        start = k * rows // tasks
        c = start % channels
        for row in range(start, (k + 1) * rows // tasks):
            row_centre, row_scale, row_shift = centre[c], scale[c], bias[c]
            for s in range(size):
                dst[row, s] = (src[row, s] - row_centre) * row_scale + row_shift
            c = 0 if c == channels - 1 else c + 1
    return y


@njit(parallel=True, nogil=True, cache=True, fastmath=_SIMD_SUMS)
def batch_norm_forward(x, weight, bias, eps):
    """Normalise each channel of x (N, C, S) by its batch mean and biased variance, then scale and shift.

    Returns (y, mean, var): y like x; mean and var float64 (C,). `eps` is a float64.
    """
    n, channels, size = x.shape
    y = np.empty_like(x)
    mean = np.empty(channels, np.float64)
    var = np.empty(channels, np.float64)
    count = n * size
    for c in prange(channels):
        total = 0.0
        for i in range(n):
            for s in range(size):
                total += x[i, c, s]
        m = total / count
        # Second pass over the centred values: exact where E[x^2] - E[x]^2 would cancel. The channel's data
        # is still in cache from the first pass.
        squares = 0.0
        for i in range(n):
            for s in range(size):
                d = x[i, c, s] - m
                squares += d * d
        v = squares / count
        mean[c] = m
        var[c] = v
        scale = x.dtype.type(weight[c] / np.sqrt(v + eps))
        centre = x.dtype.type(m)
        shift = bias[c]
        for i in range(n):
            for s in range(size):
                y[i, c, s] = (x[i, c, s] - centre) * scale + shift
    return y, mean, var


@njit(parallel=True, nogil=True, cache=True, fastmath=_SIMD_SUMS)
def batch_norm_backward(grad_out, x, mean, invstd, weight, batch_stats):
    """Gradients of y = (x - mean) * invstd * weight + bias per channel of x (N, C, S).

    With `batch_stats`, mean and invstd are the batch's own statistics and depend on x (training):
    dx = weight*invstd/M * (M*dy - sum(dy) - xhat*sum(dy*xhat)), M = N*S. Without, they are constants
    (evaluation): dx = weight*invstd*dy. Returns (dx, dweight = sum(dy*xhat), dbias = sum(dy)).
    The element loop evaluates (dy - mean(dy) - (x - mean) * projection) * weight*invstd: the centred terms
    cancel before the large factor invstd multiplies them.
    """
    n, channels, size = x.shape
    dx = np.empty_like(x)
    dweight = np.empty(channels, x.dtype)
    dbias = np.empty(channels, x.dtype)
    count = n * size
    for c in prange(channels):
        m = mean[c]
        sum_dy = 0.0
        sum_dy_centred = 0.0
        for i in range(n):
            for s in range(size):
                g = grad_out[i, c, s]
                sum_dy += g
                sum_dy_centred += g * (x[i, c, s] - m)
        istd = invstd[c]
        dbias[c] = sum_dy
        dweight[c] = sum_dy_centred * istd
        gain = x.dtype.type(weight[c] * istd)
        if batch_stats:
            mean_dy = x.dtype.type(sum_dy / count)
            projection = x.dtype.type(istd * istd * sum_dy_centred / count)
        else:
            mean_dy = x.dtype.type(0)
            projection = x.dtype.type(0)
        centre = x.dtype.type(m)
        for i in range(n):
            for s in range(size):
                dx[i, c, s] = (grad_out[i, c, s] - mean_dy - (x[i, c, s] - centre) * projection) * gain
    return dx, dweight, dbias


@njit(parallel=True, nogil=True, cache=True, fastmath=_SIMD_SUMS)
def layer_norm_forward(x, weight, bias, eps):
    """Normalise each row of x (R, D) by its mean and biased variance, then y = xhat * weight + bias.

    Returns (y, mean, invstd): mean and invstd float64 (R,). `eps` is a float64.
    """
    rows, width = x.shape
    y = np.empty_like(x)
    mean = np.empty(rows, np.float64)
    invstd = np.empty(rows, np.float64)
    for r in prange(rows):
        total = 0.0
        for d in range(width):
            total += x[r, d]
        m = total / width
        squares = 0.0
        for d in range(width):
            v = x[r, d] - m
            squares += v * v
        istd = 1.0 / np.sqrt(squares / width + eps)
        mean[r] = m
        invstd[r] = istd
        centre = x.dtype.type(m)
        istd_t = x.dtype.type(istd)
        for d in range(width):
            y[r, d] = (x[r, d] - centre) * istd_t * weight[d] + bias[d]
    return y, mean, invstd


@njit(parallel=True, nogil=True, cache=True, fastmath=_SIMD_SUMS)
def layer_norm_backward(grad_out, x, mean, invstd, weight):
    """Gradients of layer_norm_forward: (dx (R, D), dweight (D,), dbias (D,)).

    Per row, with g = dy*weight: dx = invstd/D * (D*g - sum(g) - xhat*sum(g*xhat)). dweight and dbias are
    column sums over rows: each chunk of rows sums into its own slot, then the chunks are added in order.
    The slots are cleared inside the parallel loop and added row by row after it: np.zeros outside a prange
    would be a parallel region of its own, and a column-by-column sum strides across the slots.
    """
    rows, width = x.shape
    dx = np.empty_like(x)
    chunks = min(rows, _ROW_CHUNKS)
    partial_dweight = np.empty((chunks, width), np.float64)
    partial_dbias = np.empty((chunks, width), np.float64)
    for k in prange(chunks):
        for d in range(width):
            partial_dweight[k, d] = 0.0
            partial_dbias[k, d] = 0.0
        for r in range(k * rows // chunks, (k + 1) * rows // chunks):
            m = mean[r]
            istd = invstd[r]
            sum_g = 0.0
            sum_g_centred = 0.0
            for d in range(width):
                g = grad_out[r, d] * weight[d]
                centred = x[r, d] - m
                sum_g += g
                sum_g_centred += g * centred
                partial_dbias[k, d] += grad_out[r, d]
                partial_dweight[k, d] += grad_out[r, d] * centred * istd
            mean_g = x.dtype.type(sum_g / width)
            projection = x.dtype.type(istd * istd * sum_g_centred / width)
            istd_t = x.dtype.type(istd)
            centre = x.dtype.type(m)
            for d in range(width):
                dx[r, d] = (grad_out[r, d] * weight[d] - mean_g - (x[r, d] - centre) * projection) * istd_t
    total_dweight = np.empty(width, np.float64)
    total_dbias = np.empty(width, np.float64)
    for d in range(width):
        total_dweight[d] = 0.0
        total_dbias[d] = 0.0
    for k in range(chunks):  # the same order per column as a loop over k for each column
        for d in range(width):
            total_dweight[d] += partial_dweight[k, d]
            total_dbias[d] += partial_dbias[k, d]
    return dx, total_dweight.astype(x.dtype), total_dbias.astype(x.dtype)


@njit(parallel=True, nogil=True, cache=True, error_model="numpy")
def local_response_norm_forward(x, size, alpha, beta, k):
    """y = x / base**beta with base = k + alpha/size * (sum of x^2 over the channel window) on x (N, C, S).

    The window of channel c spans [c - size//2, c + (size-1)//2], clipped to the channels (zero padding that
    still counts in the average, as PyTorch's average pooling does). alpha, beta, k are x's dtype.
    Returns (y, base). error_model="numpy": a zero base (k = 0) gives inf/NaN as in PyTorch, not an exception.
    """
    n, channels, width = x.shape
    y = np.empty_like(x)
    base = np.empty_like(x)
    coeff = alpha / x.dtype.type(size)
    for row in prange(n * channels):
        i = row // channels
        c = row - i * channels
        lo = max(c - size // 2, 0)
        hi = min(c + (size - 1) // 2 + 1, channels)
        for s in range(width):
            squares = x.dtype.type(0)
            for j in range(lo, hi):
                squares += x[i, j, s] * x[i, j, s]
            b = k + coeff * squares
            base[i, c, s] = b
            y[i, c, s] = x[i, c, s] * b ** -beta
    return y, base


@njit(parallel=True, nogil=True, cache=True, error_model="numpy")
def local_response_norm_backward(grad_out, x, y, base, size, alpha, beta):
    """dx of local_response_norm_forward, given its outputs y and base.

    dx_c = dy_c * base_c**-beta - 2*alpha*beta/size * x_c * sum(dy_i * y_i / base_i) over the channels i
    whose window holds c, i in [c - (size-1)//2, c + size//2].
    """
    n, channels, width = x.shape
    dx = np.empty_like(x)
    coeff = x.dtype.type(2) * alpha * beta / x.dtype.type(size)
    for row in prange(n * channels):
        i = row // channels
        c = row - i * channels
        lo = max(c - (size - 1) // 2, 0)
        hi = min(c + size // 2 + 1, channels)
        for s in range(width):
            total = x.dtype.type(0)
            for j in range(lo, hi):
                total += grad_out[i, j, s] * y[i, j, s] / base[i, j, s]
            dx[i, c, s] = grad_out[i, c, s] * base[i, c, s] ** -beta - coeff * x[i, c, s] * total
    return dx

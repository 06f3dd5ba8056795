"""2-D pooling kernels (Numba, CPU) on planes: arrays shaped (P, H, W) with P = N*C, C-contiguous.

Window geometry follows PyTorch's CPU kernels: a window starts at `o*stride - padding`; padded positions
never win a max and count toward an average only when `count_include_pad`. Max-pool indices are flat
offsets `h*W + w` inside the plane, as PyTorch returns them.

Forward kernels parallelize over output rows; backward kernels over planes, so each iteration owns the
plane it scatters into (overlapping windows accumulate sequentially inside one iteration: race-free and
deterministic). Averaging kernels use error_model="numpy": their divisors are never zero, and skipping
Python's zero-division check keeps the loops simple to vectorize.
"""
import numpy as np
from numba import njit, prange

__all__ = ["max_pool2d_forward", "max_pool2d_backward", "avg_pool2d_forward", "avg_pool2d_backward"]


@njit(parallel=True, cache=True)
def max_pool2d_forward(x, kh, kw, sh, sw, ph, pw, dh, dw, oh, ow):
    """Max over each window; returns (out, indices), both shaped (P, oh, ow). NaN wins, as in PyTorch."""
    planes, height, width = x.shape
    out = np.empty((planes, oh, ow), x.dtype)
    indices = np.empty((planes, oh, ow), np.int64)
    lowest = x.dtype.type(-np.inf)
    for row in prange(planes * oh):
        p = row // oh
        i = row - p * oh
        h0 = i * sh - ph
        h1 = min(h0 + (kh - 1) * dh + 1, height)
        while h0 < 0:
            h0 += dh
        for j in range(ow):
            w0 = j * sw - pw
            w1 = min(w0 + (kw - 1) * dw + 1, width)
            while w0 < 0:
                w0 += dw
            best = lowest
            # -1 marks a window whose dilated taps all fall in the padding: it has no source element.
            best_index = h0 * width + w0 if h0 < h1 and w0 < w1 else -1
            for y in range(h0, h1, dh):
                for x_ in range(w0, w1, dw):
                    v = x[p, y, x_]
                    if v > best or np.isnan(v):
                        best = v
                        best_index = y * width + x_
            out[p, i, j] = best
            indices[p, i, j] = best_index
    return out, indices


@njit(parallel=True, cache=True)
def max_pool2d_backward(grad_out, indices, height, width):
    """Scatter-add each output gradient to the input position its window's max came from."""
    planes, oh, ow = grad_out.shape
    size = height * width
    grad_in = np.empty((planes, size), grad_out.dtype)
    zero = grad_out.dtype.type(0)
    for p in prange(planes):
        for k in range(size):
            grad_in[p, k] = zero
        for i in range(oh):
            for j in range(ow):
                k = indices[p, i, j]
                if k >= 0:
                    grad_in[p, k] += grad_out[p, i, j]
    return grad_in.reshape((planes, height, width))


@njit(cache=True)
def _avg_window(i, j, kh, kw, sh, sw, ph, pw, height, width, count_include_pad, divisor_override):
    """Clipped window bounds (h0, h1, w0, w1) and the divisor PyTorch uses for output (i, j)."""
    h0 = i * sh - ph
    w0 = j * sw - pw
    h1 = min(h0 + kh, height + ph)
    w1 = min(w0 + kw, width + pw)
    padded_size = (h1 - h0) * (w1 - w0)
    h0 = max(h0, 0)
    w0 = max(w0, 0)
    h1 = min(h1, height)
    w1 = min(w1, width)
    if divisor_override != 0:
        divisor = divisor_override
    elif count_include_pad:
        divisor = padded_size
    else:
        divisor = (h1 - h0) * (w1 - w0)
    return h0, h1, w0, w1, divisor


@njit(parallel=True, cache=True, error_model="numpy")
def avg_pool2d_forward(x, kh, kw, sh, sw, ph, pw, oh, ow, count_include_pad, divisor_override):
    """Mean over each window (divisor_override=0 means no override); out shaped (P, oh, ow)."""
    planes, height, width = x.shape
    out = np.empty((planes, oh, ow), x.dtype)
    zero = x.dtype.type(0)
    for row in prange(planes * oh):
        p = row // oh
        i = row - p * oh
        for j in range(ow):
            h0, h1, w0, w1, divisor = _avg_window(i, j, kh, kw, sh, sw, ph, pw, height, width,
                                                  count_include_pad, divisor_override)
            total = zero
            for y in range(h0, h1):
                for x_ in range(w0, w1):
                    total += x[p, y, x_]
            out[p, i, j] = total / x.dtype.type(divisor) if h0 < h1 and w0 < w1 else zero
    return out


@njit(parallel=True, cache=True, error_model="numpy")
def avg_pool2d_backward(grad_out, height, width, kh, kw, sh, sw, ph, pw, count_include_pad,
                        divisor_override):
    """Spread each output gradient evenly (by the forward's divisor) over its window."""
    planes, oh, ow = grad_out.shape
    grad_in = np.empty((planes, height, width), grad_out.dtype)
    zero = grad_out.dtype.type(0)
    for p in prange(planes):
        for y in range(height):
            for x_ in range(width):
                grad_in[p, y, x_] = zero
        for i in range(oh):
            for j in range(ow):
                h0, h1, w0, w1, divisor = _avg_window(i, j, kh, kw, sh, sw, ph, pw, height, width,
                                                      count_include_pad, divisor_override)
                if h0 >= h1 or w0 >= w1:
                    continue
                share = grad_out[p, i, j] / grad_out.dtype.type(divisor)
                for y in range(h0, h1):
                    for x_ in range(w0, w1):
                        grad_in[p, y, x_] += share
    return grad_in

"""2-D pooling kernels (Numba, CPU) on planes: arrays shaped (P, H, W) with P = N*C, C-contiguous.

Window geometry follows PyTorch's CPU kernels: a window starts at `o*stride - padding`; padded positions
never win a max and count toward an average only when `count_include_pad`. Max-pool indices are flat
offsets `h*W + w` inside the plane, as PyTorch returns them.

Forward kernels parallelize over output rows; backward kernels over planes, so each iteration owns the
plane it scatters into (overlapping windows accumulate sequentially inside one iteration: race-free and
deterministic). Averaging kernels use error_model="numpy": their divisors are never zero (every window
holds at least one input element, see ops/pool.py), and skipping Python's zero-division check keeps the
loops simple.
"""
import numpy as np
from numba import njit, prange

__all__ = ["max_pool2d_forward", "max_pool2d_backward", "avg_pool2d_forward", "avg_pool2d_backward"]


@njit(nogil=True, cache=True)
def _valid_taps(start, k, dilation, size):
    """Range [first, last) of the taps `start + t*dilation` (t < k) that fall inside [0, size)."""
    first = 0
    while first < k and start + first * dilation < 0:
        first += 1
    last = k
    while last > first and start + (last - 1) * dilation >= size:
        last -= 1
    return first, last


@njit(nogil=True, cache=True)
def _window_max_nan(flat, base, width, hs, a0, a1, dh, ws, b0, b1, dw, best, best_index):
    """Rescan a window whose tap sum is NaN, given its max ignoring NaNs, with PyTorch's rule that a NaN
    tap replaces the running max: the result is the last NaN and its index. (A window mixing +inf and
    -inf also sums to NaN; with no NaN tap the rescan leaves its max unchanged.)"""
    for a in range(a0, a1):
        row = (hs + a * dh) * width + ws
        for b in range(b0, b1):
            k = row + b * dw
            v = flat[base + k]
            if v > best or v != v:
                best = v
                best_index = k
    return best, best_index


@njit(parallel=True, nogil=True, cache=True)
def max_pool2d_forward(x, kh, kw, sh, sw, ph, pw, dh, dw, oh, ow):
    """Max over each window; returns (out, indices), both shaped (P, oh, ow). NaN wins, as in PyTorch.

    Ties go to the first maximum in raster order; a window whose taps all fall in the padding (possible
    only with dilation) gets -inf and index -1.
    """
    planes, height, width = x.shape
    flat = x.reshape(-1)
    plane_size = height * width
    out = np.empty((planes, oh, ow), x.dtype)
    indices = np.empty((planes, oh, ow), np.int64)
    lowest = x.dtype.type(-np.inf)
    zero = x.dtype.type(0)
    col_first = np.empty(ow, np.int64)
    col_last = np.empty(ow, np.int64)
    for j in range(ow):
        col_first[j], col_last[j] = _valid_taps(j * sw - pw, kw, dw, width)
    taps = kh * kw
    offsets = np.empty(taps, np.int64)
    for a in range(kh):
        for b in range(kw):
            offsets[a * kw + b] = a * dh * width + b * dw
    for row in prange(planes * oh):
        p = row // oh
        i = row - p * oh
        hs = i * sh - ph
        a0, a1 = _valid_taps(hs, kh, dh, height)
        base = p * plane_size
        for j in range(ow):
            ws = j * sw - pw
            b0 = col_first[j]
            b1 = col_last[j]
            best = lowest
            # The sum of the taps is NaN whenever a tap is: one add per tap, where testing each tap for
            # NaN in the loop doubles its cost. The rare windows that sum to NaN are rescanned.
            probe = zero
            if a1 - a0 == kh and b1 - b0 == kw:
                start = hs * width + ws
                best_index = start
                for t in range(taps):
                    k = start + offsets[t]
                    v = flat[base + k]
                    probe += v
                    if v > best:
                        best = v
                        best_index = k
            else:
                best_index = (hs + a0 * dh) * width + ws + b0 * dw if a0 < a1 and b0 < b1 else -1
                for a in range(a0, a1):
                    row_start = (hs + a * dh) * width + ws
                    for b in range(b0, b1):
                        k = row_start + b * dw
                        v = flat[base + k]
                        probe += v
                        if v > best:
                            best = v
                            best_index = k
            if probe != probe:
                best, best_index = _window_max_nan(flat, base, width, hs, a0, a1, dh, ws, b0, b1, dw, best,
                                                   best_index)
            out[p, i, j] = best
            indices[p, i, j] = best_index
    return out, indices


@njit(parallel=True, nogil=True, cache=True)
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


@njit(nogil=True, cache=True)
def _avg_bounds(n_out, stride, pad, k, size):
    """Per output position along one axis: first and past-the-end input index of its window clipped to
    the input, and the window's length clipped to the padded input (PyTorch's count_include_pad size)."""
    first = np.empty(n_out, np.int64)
    stop = np.empty(n_out, np.int64)
    padded = np.empty(n_out, np.int64)
    for o in range(n_out):
        start = o * stride - pad
        end = min(start + k, size + pad)
        padded[o] = end - start
        first[o] = max(start, 0)
        stop[o] = min(end, size)
    return first, stop, padded


@njit(nogil=True, cache=True)
def _avg_divisor(i, j, row_first, row_stop, row_padded, col_first, col_stop, col_padded, count_include_pad,
                 divisor_override):
    if divisor_override != 0:
        return divisor_override
    if count_include_pad:
        return row_padded[i] * col_padded[j]
    return (row_stop[i] - row_first[i]) * (col_stop[j] - col_first[j])


@njit(parallel=True, nogil=True, cache=True, error_model="numpy")
def avg_pool2d_forward(x, kh, kw, sh, sw, ph, pw, oh, ow, count_include_pad, divisor_override):
    """Mean over each window (divisor_override=0 means no override); out shaped (P, oh, ow)."""
    planes, height, width = x.shape
    out = np.empty((planes, oh, ow), x.dtype)
    zero = x.dtype.type(0)
    row_first, row_stop, row_padded = _avg_bounds(oh, sh, ph, kh, height)
    col_first, col_stop, col_padded = _avg_bounds(ow, sw, pw, kw, width)
    for row in prange(planes * oh):
        p = row // oh
        i = row - p * oh
        for j in range(ow):
            total = zero
            for y in range(row_first[i], row_stop[i]):
                for x_ in range(col_first[j], col_stop[j]):
                    total += x[p, y, x_]
            divisor = _avg_divisor(i, j, row_first, row_stop, row_padded, col_first, col_stop, col_padded,
                                   count_include_pad, divisor_override)
            out[p, i, j] = total / x.dtype.type(divisor)
    return out


@njit(parallel=True, nogil=True, cache=True, error_model="numpy")
def avg_pool2d_backward(grad_out, height, width, kh, kw, sh, sw, ph, pw, count_include_pad,
                        divisor_override):
    """Spread each output gradient evenly (by the forward's divisor) over its window."""
    planes, oh, ow = grad_out.shape
    grad_in = np.empty((planes, height, width), grad_out.dtype)
    zero = grad_out.dtype.type(0)
    row_first, row_stop, row_padded = _avg_bounds(oh, sh, ph, kh, height)
    col_first, col_stop, col_padded = _avg_bounds(ow, sw, pw, kw, width)
    for p in prange(planes):
        for y in range(height):
            for x_ in range(width):
                grad_in[p, y, x_] = zero
        for i in range(oh):
            for j in range(ow):
                divisor = _avg_divisor(i, j, row_first, row_stop, row_padded, col_first, col_stop, col_padded,
                                       count_include_pad, divisor_override)
                share = grad_out[p, i, j] / grad_out.dtype.type(divisor)
                for y in range(row_first[i], row_stop[i]):
                    for x_ in range(col_first[j], col_stop[j]):
                        grad_in[p, y, x_] += share
    return grad_in

"""3-D, adaptive and fractional pooling kernels (Numba, CPU) on planes: (P, D, H, W) or (P, H, W), P = N*C.

Window rules follow PyTorch's CPU kernels:

* 3-D max/avg pooling: the 2-D rules of cpu_pool.py with a depth axis (windows start at o*stride - padding;
  padded positions never win a max; averages divide by the padded window size when count_include_pad).
* adaptive pooling: output i of an axis of size n pools [floor(i*n/out), ceil((i+1)*n/out)).
* fractional max pooling (Graham, 2014): windows of kernel size start at the pseudo-random sequence
  floor((i + u)*alpha) - floor(u*alpha), alpha = (n - k)/(out - 1), the last at n - k, with one sample u per
  plane and axis (samples[p, 0] for the width, samples[p, 1] for the height), computed in the input dtype.

Max kernels return flat indices inside the plane (d*H*W + h*W + w), as PyTorch does; their backward is
cpu_pool.max_pool2d_backward, a scatter by those indices. A NaN tap wins the max, as in PyTorch.
Forward kernels parallelize over planes (or plane rows), backward kernels over planes, each iteration
writing only its own plane: race-free and bit-identical run to run.
"""
import numpy as np
from numba import njit, prange

from fastnn._kernels.cpu_pool import _valid_taps

__all__ = ["max_pool3d_forward", "avg_pool3d_forward", "avg_pool3d_backward", "adaptive_avg_pool2d_forward",
           "adaptive_avg_pool2d_backward", "adaptive_max_pool2d_forward", "fractional_max_pool2d_forward"]


@njit(parallel=True, nogil=True, cache=True)
def max_pool3d_forward(x, kd, kh, kw, sd, sh, sw, pd, ph, pw, dd, dh, dw, od, oh, ow):
    """Max over each dilated window; returns (out, indices), both (P, od, oh, ow); index -1 for a window with
    no tap inside the input."""
    planes, depth, height, width = x.shape
    out = np.empty((planes, od, oh, ow), x.dtype)
    indices = np.empty((planes, od, oh, ow), np.int64)
    lowest = x.dtype.type(-np.inf)
    for task in prange(planes * od):
        p = task // od
        z = task - p * od
        zs = z * sd - pd
        c0, c1 = _valid_taps(zs, kd, dd, depth)
        for i in range(oh):
            hs = i * sh - ph
            a0, a1 = _valid_taps(hs, kh, dh, height)
            for j in range(ow):
                ws = j * sw - pw
                b0, b1 = _valid_taps(ws, kw, dw, width)
                best = lowest
                best_index = -1
                if c0 < c1 and a0 < a1 and b0 < b1:
                    best_index = ((zs + c0 * dd) * height + hs + a0 * dh) * width + ws + b0 * dw
                for c in range(c0, c1):
                    zz = zs + c * dd
                    for a in range(a0, a1):
                        yy = hs + a * dh
                        for b in range(b0, b1):
                            xx = ws + b * dw
                            v = x[p, zz, yy, xx]
                            if v > best or v != v:
                                best = v
                                best_index = (zz * height + yy) * width + xx
                out[p, z, i, j] = best
                indices[p, z, i, j] = best_index
    return out, indices


@njit(nogil=True, cache=True)
def _avg_range(o, k, s, pad, size):
    """Clipped window [lo, hi) of output o along one axis, and its length counting padding."""
    lo = o * s - pad
    hi = min(lo + k, size + pad)
    padded = hi - lo
    return max(lo, 0), min(hi, size), padded


@njit(nogil=True, cache=True)
def _avg_window3d(z, i, j, kd, kh, kw, sd, sh, sw, pd, ph, pw, depth, height, width, count_include_pad,
                  divisor_override):
    """Clipped bounds (z0, z1, h0, h1, w0, w1) of output (z, i, j) and PyTorch's divisor for it."""
    z0, z1, nd = _avg_range(z, kd, sd, pd, depth)
    h0, h1, nh = _avg_range(i, kh, sh, ph, height)
    w0, w1, nw = _avg_range(j, kw, sw, pw, width)
    if divisor_override != 0:
        divisor = divisor_override
    elif count_include_pad:
        divisor = nd * nh * nw
    else:
        divisor = (z1 - z0) * (h1 - h0) * (w1 - w0)
    return z0, z1, h0, h1, w0, w1, divisor


@njit(parallel=True, nogil=True, cache=True, error_model="numpy")
def avg_pool3d_forward(x, kd, kh, kw, sd, sh, sw, pd, ph, pw, od, oh, ow, count_include_pad, divisor_override):
    """Mean over each window (divisor_override=0 means none); out (P, od, oh, ow)."""
    planes, depth, height, width = x.shape
    out = np.empty((planes, od, oh, ow), x.dtype)
    zero = x.dtype.type(0)
    for task in prange(planes * od):
        p = task // od
        z = task - p * od
        for i in range(oh):
            for j in range(ow):
                z0, z1, h0, h1, w0, w1, divisor = _avg_window3d(z, i, j, kd, kh, kw, sd, sh, sw, pd, ph, pw,
                                                                depth, height, width, count_include_pad,
                                                                divisor_override)
                total = zero
                for zz in range(z0, z1):
                    for yy in range(h0, h1):
                        for xx in range(w0, w1):
                            total += x[p, zz, yy, xx]
                empty = z0 >= z1 or h0 >= h1 or w0 >= w1
                out[p, z, i, j] = zero if empty else total / x.dtype.type(divisor)
    return out


@njit(parallel=True, nogil=True, cache=True, error_model="numpy")
def avg_pool3d_backward(grad_out, depth, height, width, kd, kh, kw, sd, sh, sw, pd, ph, pw, count_include_pad,
                        divisor_override):
    """Spread each output gradient evenly (by the forward's divisor) over its window."""
    planes, od, oh, ow = grad_out.shape
    grad_in = np.zeros((planes, depth, height, width), grad_out.dtype)
    for p in prange(planes):
        for z in range(od):
            for i in range(oh):
                for j in range(ow):
                    z0, z1, h0, h1, w0, w1, divisor = _avg_window3d(z, i, j, kd, kh, kw, sd, sh, sw, pd, ph, pw,
                                                                    depth, height, width, count_include_pad,
                                                                    divisor_override)
                    share = grad_out[p, z, i, j] / grad_out.dtype.type(divisor)
                    for zz in range(z0, z1):
                        for yy in range(h0, h1):
                            for xx in range(w0, w1):
                                grad_in[p, zz, yy, xx] += share
    return grad_in


@njit(nogil=True, cache=True)
def _adaptive_bounds(size, out_size):
    """Start and end of each adaptive region along an axis: floor(i*n/out), ceil((i+1)*n/out)."""
    starts = np.empty(out_size, np.int64)
    ends = np.empty(out_size, np.int64)
    for i in range(out_size):
        starts[i] = (i * size) // out_size
        ends[i] = ((i + 1) * size + out_size - 1) // out_size
    return starts, ends


@njit(parallel=True, nogil=True, cache=True)
def adaptive_avg_pool2d_forward(x, oh, ow):
    """Mean over each adaptive region; out (P, oh, ow)."""
    planes, height, width = x.shape
    h0, h1 = _adaptive_bounds(height, oh)
    w0, w1 = _adaptive_bounds(width, ow)
    out = np.empty((planes, oh, ow), x.dtype)
    zero = x.dtype.type(0)
    for p in prange(planes):
        for i in range(oh):
            for j in range(ow):
                total = zero
                for y in range(h0[i], h1[i]):
                    for xx in range(w0[j], w1[j]):
                        total += x[p, y, xx]
                out[p, i, j] = total / x.dtype.type((h1[i] - h0[i]) * (w1[j] - w0[j]))
    return out


@njit(parallel=True, nogil=True, cache=True)
def adaptive_avg_pool2d_backward(grad_out, height, width):
    """Spread each output gradient evenly over its adaptive region; grad_in (P, height, width)."""
    planes, oh, ow = grad_out.shape
    h0, h1 = _adaptive_bounds(height, oh)
    w0, w1 = _adaptive_bounds(width, ow)
    grad_in = np.zeros((planes, height, width), grad_out.dtype)
    for p in prange(planes):
        for i in range(oh):
            for j in range(ow):
                share = grad_out[p, i, j] / grad_out.dtype.type((h1[i] - h0[i]) * (w1[j] - w0[j]))
                for y in range(h0[i], h1[i]):
                    for xx in range(w0[j], w1[j]):
                        grad_in[p, y, xx] += share
    return grad_in


@njit(nogil=True, cache=True)
def _region_max(x, p, y0, y1, x0, x1, lowest):
    """(max, flat index y*W + x) over rows [y0, y1) and columns [x0, x1) of plane p; NaN wins."""
    width = x.shape[2]
    best = lowest
    best_index = y0 * width + x0
    for y in range(y0, y1):
        for xx in range(x0, x1):
            v = x[p, y, xx]
            if v > best or v != v:
                best = v
                best_index = y * width + xx
    return best, best_index


@njit(parallel=True, nogil=True, cache=True)
def adaptive_max_pool2d_forward(x, oh, ow):
    """Max over each adaptive region; returns (out, indices), both (P, oh, ow)."""
    planes, height, width = x.shape
    h0, h1 = _adaptive_bounds(height, oh)
    w0, w1 = _adaptive_bounds(width, ow)
    out = np.empty((planes, oh, ow), x.dtype)
    indices = np.empty((planes, oh, ow), np.int64)
    lowest = x.dtype.type(-np.inf)
    for p in prange(planes):
        for i in range(oh):
            for j in range(ow):
                out[p, i, j], indices[p, i, j] = _region_max(x, p, h0[i], h1[i], w0[j], w1[j], lowest)
    return out, indices


@njit(nogil=True, cache=True)
def _fractional_starts(sample, size, out_size, k):
    """Window starts of fractional max pooling along one axis, in the sample's dtype as PyTorch computes
    them: floor((i + u)*alpha) - floor(u*alpha) for i < out - 1, then size - k."""
    starts = np.empty(out_size, np.int64)
    if out_size > 1:
        real = type(sample)
        alpha = real(size - k) / real(out_size - 1)
        offset = np.int64(sample * alpha)
        for i in range(out_size - 1):
            starts[i] = np.int64((real(i) + sample) * alpha) - offset
    starts[out_size - 1] = size - k
    return starts


@njit(parallel=True, nogil=True, cache=True)
def fractional_max_pool2d_forward(x, samples, kh, kw, oh, ow):
    """Max over kh x kw windows at each plane's pseudo-random starts; samples (P, 2) in [0, 1] (width, height).
    Returns (out, indices), both (P, oh, ow)."""
    planes, height, width = x.shape
    out = np.empty((planes, oh, ow), x.dtype)
    indices = np.empty((planes, oh, ow), np.int64)
    lowest = x.dtype.type(-np.inf)
    for p in prange(planes):
        col = _fractional_starts(samples[p, 0], width, ow, kw)
        row = _fractional_starts(samples[p, 1], height, oh, kh)
        for i in range(oh):
            for j in range(ow):
                out[p, i, j], indices[p, i, j] = _region_max(x, p, row[i], row[i] + kh, col[j], col[j] + kw,
                                                             lowest)
    return out, indices

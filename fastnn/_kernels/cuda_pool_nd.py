"""3-D, adaptive and fractional pooling kernels (numba.cuda): the entry points of cpu_pool_nd.py with the layouts,
window rules, NaN rule and flat indices of ref_pool_nd.py.

One thread per output for the forwards; the backwards gather, one thread per input element summing the shares of
the outputs whose windows cover it in a fixed order (no atomics). Fractional pooling's window starts are computed
with array operations in the samples' dtype, as PyTorch does, before the launch.
"""
from numba import cuda

from fastnn._kernels.cuda_common import THREADS, array_module, blocks, empty_like

__all__ = ["max_pool3d_forward", "avg_pool3d_forward", "avg_pool3d_backward", "adaptive_avg_pool2d_forward",
           "adaptive_avg_pool2d_backward", "adaptive_max_pool2d_forward", "fractional_max_pool2d_forward"]


@cuda.jit
def _max3d(x, out, indices, kd, kh, kw, sd, sh, sw, pd, ph, pw, dd, dh, dw):
    planes, depth, height, width = x.shape
    _, od, oh, ow = out.shape
    n = cuda.grid(1)
    if n < out.size:
        p = n // (od * oh * ow)
        z = (n // (oh * ow)) % od
        i = (n // ow) % oh
        j = n % ow
        best = -float("inf")
        best_index = -1
        for c in range(kd):
            t = z * sd - pd + c * dd
            if 0 <= t < depth:
                for a in range(kh):
                    y = i * sh - ph + a * dh
                    if 0 <= y < height:
                        for b in range(kw):
                            x_ = j * sw - pw + b * dw
                            if 0 <= x_ < width:
                                v = x[p, t, y, x_]
                                k = (t * height + y) * width + x_
                                if best_index < 0:
                                    best_index = k
                                if v > best or v != v:  # first max; a NaN replaces the running max
                                    best = v
                                    best_index = k
        out[p, z, i, j] = best
        indices[p, z, i, j] = best_index


def max_pool3d_forward(x, kd, kh, kw, sd, sh, sw, pd, ph, pw, dd, dh, dw, od, oh, ow):
    out = empty_like(x, (x.shape[0], od, oh, ow))
    indices = empty_like(x, out.shape, "int64")
    _max3d[blocks(out.size), THREADS](x, out, indices, kd, kh, kw, sd, sh, sw, pd, ph, pw, dd, dh, dw)
    return out, indices


@cuda.jit(device=True)
def _span(o, stride, pad, k, size):
    start = o * stride - pad
    end = min(start + k, size + pad)
    return max(start, 0), min(end, size), end - start


@cuda.jit(device=True)
def _divisor3d(z, i, j, kd, kh, kw, sd, sh, sw, pd, ph, pw, depth, height, width, count_include_pad,
               divisor_override):
    if divisor_override != 0:
        return divisor_override
    t0, t1, tpad = _span(z, sd, pd, kd, depth)
    r0, r1, rpad = _span(i, sh, ph, kh, height)
    c0, c1, cpad = _span(j, sw, pw, kw, width)
    if count_include_pad:
        return tpad * rpad * cpad
    return (t1 - t0) * (r1 - r0) * (c1 - c0)


@cuda.jit
def _avg3d(x, out, kd, kh, kw, sd, sh, sw, pd, ph, pw, count_include_pad, divisor_override, zero):
    planes, depth, height, width = x.shape
    _, od, oh, ow = out.shape
    n = cuda.grid(1)
    if n < out.size:
        p = n // (od * oh * ow)
        z = (n // (oh * ow)) % od
        i = (n // ow) % oh
        j = n % ow
        t0, t1, _t = _span(z, sd, pd, kd, depth)
        r0, r1, _r = _span(i, sh, ph, kh, height)
        c0, c1, _c = _span(j, sw, pw, kw, width)
        total = zero
        for t in range(t0, t1):
            for y in range(r0, r1):
                for x_ in range(c0, c1):
                    total += x[p, t, y, x_]
        out[p, z, i, j] = total / _divisor3d(z, i, j, kd, kh, kw, sd, sh, sw, pd, ph, pw, depth, height, width,
                                             count_include_pad, divisor_override)


def avg_pool3d_forward(x, kd, kh, kw, sd, sh, sw, pd, ph, pw, od, oh, ow, count_include_pad, divisor_override):
    out = empty_like(x, (x.shape[0], od, oh, ow))
    _avg3d[blocks(out.size), THREADS](x, out, kd, kh, kw, sd, sh, sw, pd, ph, pw, bool(count_include_pad),
                                      int(divisor_override or 0), x.dtype.type(0))
    return out


@cuda.jit(device=True)
def _covering(pos, pad, k, stride, n_out):
    """The outputs o whose window [o*stride - pad, o*stride - pad + k) holds input position pos."""
    return max(0, (pos + pad - k) // stride + 1), min(n_out, (pos + pad) // stride + 1)


@cuda.jit
def _avg3d_backward(grad_out, grad_in, kd, kh, kw, sd, sh, sw, pd, ph, pw, count_include_pad, divisor_override,
                    zero):
    planes, depth, height, width = grad_in.shape
    _, od, oh, ow = grad_out.shape
    n = cuda.grid(1)
    if n < grad_in.size:
        p = n // (depth * height * width)
        t = (n // (height * width)) % depth
        y = (n // width) % height
        x_ = n % width
        z0, z1 = _covering(t, pd, kd, sd, od)
        i0, i1 = _covering(y, ph, kh, sh, oh)
        j0, j1 = _covering(x_, pw, kw, sw, ow)
        total = zero
        for z in range(z0, z1):
            for i in range(i0, i1):
                for j in range(j0, j1):
                    total += grad_out[p, z, i, j] / _divisor3d(z, i, j, kd, kh, kw, sd, sh, sw, pd, ph, pw, depth,
                                                               height, width, count_include_pad, divisor_override)
        grad_in[p, t, y, x_] = total


def avg_pool3d_backward(grad_out, depth, height, width, kd, kh, kw, sd, sh, sw, pd, ph, pw, count_include_pad,
                        divisor_override):
    grad_in = empty_like(grad_out, (grad_out.shape[0], depth, height, width))
    _avg3d_backward[blocks(grad_in.size), THREADS](grad_out, grad_in, kd, kh, kw, sd, sh, sw, pd, ph, pw,
                                                   bool(count_include_pad), int(divisor_override or 0),
                                                   grad_out.dtype.type(0))
    return grad_in


@cuda.jit(device=True)
def _region(o, size, n_out):
    """PyTorch's adaptive region along one axis: [floor(o*size/n_out), ceil((o+1)*size/n_out))."""
    return o * size // n_out, -(-(o + 1) * size // n_out)


@cuda.jit
def _adaptive_avg(x, out, zero):
    planes, height, width = x.shape
    _, oh, ow = out.shape
    n = cuda.grid(1)
    if n < out.size:
        p = n // (oh * ow)
        i = (n // ow) % oh
        j = n % ow
        r0, r1 = _region(i, height, oh)
        c0, c1 = _region(j, width, ow)
        total = zero
        for y in range(r0, r1):
            for x_ in range(c0, c1):
                total += x[p, y, x_]
        out[p, i, j] = total / ((r1 - r0) * (c1 - c0))


def adaptive_avg_pool2d_forward(x, oh, ow):
    out = empty_like(x, (x.shape[0], oh, ow))
    _adaptive_avg[blocks(out.size), THREADS](x, out, x.dtype.type(0))
    return out


@cuda.jit
def _adaptive_avg_backward(grad_out, grad_in, zero):
    planes, height, width = grad_in.shape
    _, oh, ow = grad_out.shape
    n = cuda.grid(1)
    if n < grad_in.size:
        p = n // (height * width)
        y = (n // width) % height
        x_ = n % width
        total = zero
        # the regions holding y: floor(i*H/oh) <= y < ceil((i+1)*H/oh), i.e. y*oh//H <= i <= ((y+1)*oh - 1)//H
        for i in range(y * oh // height, min(oh, ((y + 1) * oh - 1) // height + 1)):
            r0, r1 = _region(i, height, oh)
            for j in range(x_ * ow // width, min(ow, ((x_ + 1) * ow - 1) // width + 1)):
                c0, c1 = _region(j, width, ow)
                total += grad_out[p, i, j] / ((r1 - r0) * (c1 - c0))
        grad_in[p, y, x_] = total


def adaptive_avg_pool2d_backward(grad_out, height, width):
    grad_in = empty_like(grad_out, (grad_out.shape[0], height, width))
    _adaptive_avg_backward[blocks(grad_in.size), THREADS](grad_out, grad_in, grad_out.dtype.type(0))
    return grad_in


@cuda.jit(device=True)
def _block_max(x, p, r0, r1, c0, c1, width):
    """Max and flat index over rows [r0, r1) x columns [c0, c1) of plane p: first max, a NaN wins."""
    best = -float("inf")
    best_index = -1
    for y in range(r0, r1):
        for x_ in range(c0, c1):
            v = x[p, y, x_]
            if best_index < 0:
                best_index = y * width + x_
            if v > best or v != v:
                best = v
                best_index = y * width + x_
    return best, best_index


@cuda.jit
def _adaptive_max(x, out, indices):
    planes, height, width = x.shape
    _, oh, ow = out.shape
    n = cuda.grid(1)
    if n < out.size:
        p = n // (oh * ow)
        i = (n // ow) % oh
        j = n % ow
        r0, r1 = _region(i, height, oh)
        c0, c1 = _region(j, width, ow)
        best, best_index = _block_max(x, p, r0, r1, c0, c1, width)
        out[p, i, j] = best
        indices[p, i, j] = best_index


def adaptive_max_pool2d_forward(x, oh, ow):
    out = empty_like(x, (x.shape[0], oh, ow))
    indices = empty_like(x, out.shape, "int64")
    _adaptive_max[blocks(out.size), THREADS](x, out, indices)
    return out, indices


@cuda.jit
def _fractional_max(x, row_starts, col_starts, out, indices, kh, kw):
    planes, height, width = x.shape
    _, oh, ow = out.shape
    n = cuda.grid(1)
    if n < out.size:
        p = n // (oh * ow)
        i = (n // ow) % oh
        j = n % ow
        r0 = row_starts[p, i]
        c0 = col_starts[p, j]
        best, best_index = _block_max(x, p, r0, r0 + kh, c0, c0 + kw, width)
        out[p, i, j] = best
        indices[p, i, j] = best_index


def _fractional_starts(xp, samples, size, out_size, k):
    """(planes, out_size) window starts, in the samples' dtype as ref_pool_nd.fractional_starts computes them."""
    starts = xp.empty((samples.shape[0], out_size), xp.int64)
    if out_size > 1:
        real = samples.dtype.type
        alpha = xp.asarray(real(size - k) / real(out_size - 1), samples.dtype)
        steps = xp.arange(out_size - 1, dtype=samples.dtype)
        starts[:, :-1] = (((steps[None, :] + samples[:, None]) * alpha).astype(xp.int64)
                          - (samples[:, None] * alpha).astype(xp.int64))
    starts[:, -1] = size - k
    return starts


def fractional_max_pool2d_forward(x, samples, kh, kw, oh, ow):
    xp = array_module(x)
    rows = _fractional_starts(xp, xp.ascontiguousarray(samples[:, 1]), x.shape[1], oh, kh)
    cols = _fractional_starts(xp, xp.ascontiguousarray(samples[:, 0]), x.shape[2], ow, kw)
    out = empty_like(x, (x.shape[0], oh, ow))
    indices = empty_like(x, out.shape, "int64")
    _fractional_max[blocks(out.size), THREADS](x, rows, cols, out, indices, kh, kw)
    return out, indices

"""2-D pooling kernels (numba.cuda) on planes (P, H, W), the entry points of cpu_pool.py with its window
geometry, NaN rule and index layout (flat `h*W + w` inside the plane).

Forward kernels run one thread per output. Backward kernels write every input element from one thread, so
nothing is accumulated across threads (no atomics, deterministic): the average-pool backward gathers, per input
element, the outputs whose windows cover it; the max-pool backward (which only has the indices) runs one thread
per plane that adds its outputs' gradients in raster order, as the CPU kernel does.
"""
from numba import cuda

from fastnn._kernels.cuda_common import THREADS, blocks, empty_like

__all__ = ["max_pool2d_forward", "max_pool2d_backward", "avg_pool2d_forward", "avg_pool2d_backward"]


@cuda.jit
def _max_forward(x, out, indices, kh, kw, sh, sw, ph, pw, dh, dw):
    planes, height, width = x.shape
    _, oh, ow = out.shape
    n = cuda.grid(1)
    if n < out.size:
        p = n // (oh * ow)
        i = (n // ow) % oh
        j = n % ow
        best = -float("inf")
        best_index = -1
        for a in range(kh):
            y = i * sh - ph + a * dh
            if 0 <= y < height:
                for b in range(kw):
                    x_ = j * sw - pw + b * dw
                    if 0 <= x_ < width:
                        v = x[p, y, x_]
                        if best_index < 0:
                            best_index = y * width + x_  # the first valid tap, kept if all are -inf
                        # first max in raster order; a NaN replaces the running max (last NaN wins)
                        if v > best or v != v:
                            best = v
                            best_index = y * width + x_
        out[p, i, j] = best
        indices[p, i, j] = best_index


def max_pool2d_forward(x, kh, kw, sh, sw, ph, pw, dh, dw, oh, ow):
    """(out, indices), both (P, oh, ow); an all-padding window gets -inf and index -1."""
    out = empty_like(x, (x.shape[0], oh, ow))
    indices = empty_like(x, (x.shape[0], oh, ow), "int64")
    _max_forward[blocks(out.size), THREADS](x, out, indices, kh, kw, sh, sw, ph, pw, dh, dw)
    return out, indices


@cuda.jit
def _max_backward(grad_out, indices, grad_in):
    planes, oh, ow = grad_out.shape
    p = cuda.grid(1)
    if p < planes:
        for k in range(grad_in.shape[1]):
            grad_in[p, k] = 0
        for i in range(oh):
            for j in range(ow):
                k = indices[p, i, j]
                if k >= 0:
                    grad_in[p, k] += grad_out[p, i, j]


def max_pool2d_backward(grad_out, indices, height, width):
    planes = grad_out.shape[0]
    grad_in = empty_like(grad_out, (planes, height * width))
    _max_backward[blocks(planes), THREADS](grad_out, indices, grad_in)
    return grad_in.reshape((planes, height, width))


@cuda.jit(device=True)
def _avg_span(o, stride, pad, k, size):
    """First and past-the-end input index of window o clipped to the input, and its length clipped to the
    padded input (PyTorch's count_include_pad size)."""
    start = o * stride - pad
    end = min(start + k, size + pad)
    return max(start, 0), min(end, size), end - start


@cuda.jit(device=True)
def _avg_divisor(i, j, kh, kw, sh, sw, ph, pw, height, width, count_include_pad, divisor_override):
    if divisor_override != 0:
        return divisor_override
    r0, r1, rpad = _avg_span(i, sh, ph, kh, height)
    c0, c1, cpad = _avg_span(j, sw, pw, kw, width)
    if count_include_pad:
        return rpad * cpad
    return (r1 - r0) * (c1 - c0)


@cuda.jit
def _avg_forward(x, out, kh, kw, sh, sw, ph, pw, count_include_pad, divisor_override, zero):
    planes, height, width = x.shape
    _, oh, ow = out.shape
    n = cuda.grid(1)
    if n < out.size:
        p = n // (oh * ow)
        i = (n // ow) % oh
        j = n % ow
        r0, r1, _r = _avg_span(i, sh, ph, kh, height)
        c0, c1, _c = _avg_span(j, sw, pw, kw, width)
        total = zero  # x's dtype, as the CPU kernel's accumulator
        for y in range(r0, r1):
            for x_ in range(c0, c1):
                total += x[p, y, x_]
        out[p, i, j] = total / _avg_divisor(i, j, kh, kw, sh, sw, ph, pw, height, width, count_include_pad,
                                            divisor_override)


def avg_pool2d_forward(x, kh, kw, sh, sw, ph, pw, oh, ow, count_include_pad, divisor_override):
    out = empty_like(x, (x.shape[0], oh, ow))
    _avg_forward[blocks(out.size), THREADS](x, out, kh, kw, sh, sw, ph, pw, bool(count_include_pad),
                                            int(divisor_override or 0), x.dtype.type(0))
    return out


@cuda.jit
def _avg_backward(grad_out, grad_in, kh, kw, sh, sw, ph, pw, count_include_pad, divisor_override, zero):
    planes, height, width = grad_in.shape
    _, oh, ow = grad_out.shape
    n = cuda.grid(1)
    if n < grad_in.size:
        p = n // (height * width)
        y = (n // width) % height
        x_ = n % width
        # outputs i whose window [i*sh - ph, i*sh - ph + kh) holds y (clipping never removes a real row)
        i0 = max(0, (y + ph - kh) // sh + 1)
        i1 = min(oh, (y + ph) // sh + 1)
        j0 = max(0, (x_ + pw - kw) // sw + 1)
        j1 = min(ow, (x_ + pw) // sw + 1)
        total = zero
        for i in range(i0, i1):
            for j in range(j0, j1):
                total += grad_out[p, i, j] / _avg_divisor(i, j, kh, kw, sh, sw, ph, pw, height, width,
                                                          count_include_pad, divisor_override)
        grad_in[p, y, x_] = total


def avg_pool2d_backward(grad_out, height, width, kh, kw, sh, sw, ph, pw, count_include_pad, divisor_override):
    grad_in = empty_like(grad_out, (grad_out.shape[0], height, width))
    _avg_backward[blocks(grad_in.size), THREADS](grad_out, grad_in, kh, kw, sh, sw, ph, pw, bool(count_include_pad),
                                                 int(divisor_override or 0), grad_out.dtype.type(0))
    return grad_in

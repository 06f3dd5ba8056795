"""2-D convolution kernels (Numba + BLAS, CPU) for NCHW input, weight (Cout, Cin/groups, kh, kw).

Two algorithms with the same results up to float rounding:

* direct: loops over kernel taps on a zero-padded copy of the input. With stride 1 each output plane is
  computed "wide": as one flat run over rows of the padded width, so every tap is a long contiguous
  multiply-add that vectorizes; the few columns past the true output width are computed and dropped.
  Best when Cin/groups * kh * kw is small (first layers, depthwise), where a GEMM would be thin.
* im2col: the input is unfolded into a column matrix laid out (Cin*kh*kw, N*Hout*Wout), so each group is a
  single BLAS GEMM with the whole batch folded in. Backward reuses the GEMMs (grad weight contracts over
  the batch inside BLAS) and folds columns back with col2im.

Every parallel loop writes only its own output slice (an image plane, an output channel, or a per-chunk
partial that is then summed in a fixed order), so results are race-free and bit-identical run to run.
"""
import numpy as np
from numba import njit, prange

__all__ = ["conv2d_forward_direct", "conv2d_forward_im2col", "conv2d_backward_direct",
           "conv2d_backward_im2col"]

# Reassociation lets the dot products in grad weight vectorize; NaN/Inf semantics stay IEEE.
_FASTMATH = {"reassoc", "contract", "nsz", "arcp"}


def _output_hw(h, w, kh, kw, stride, padding, dilation):
    out_h = (h + 2 * padding[0] - dilation[0] * (kh - 1) - 1) // stride[0] + 1
    out_w = (w + 2 * padding[1] - dilation[1] * (kw - 1) - 1) // stride[1] + 1
    return out_h, out_w


# ---------------------------------------------------------------------------------------------- layout


@njit(parallel=True, cache=True)
def _pad_planes(x, ph, pw):
    """Zero-padded copy of x (N, C, H, W), returned flat per plane: (N, C, (H+2ph)*(W+2pw))."""
    n_img, chans, height, width = x.shape
    hp = height + 2 * ph
    wp = width + 2 * pw
    xp = np.empty((n_img, chans, hp * wp), x.dtype)
    zero = x.dtype.type(0)
    for plane in prange(n_img * chans):
        n = plane // chans
        c = plane - n * chans
        dst = xp[n, c]
        for k in range(ph * wp):
            dst[k] = zero
            dst[(hp - ph) * wp + k] = zero
        for y in range(height):
            row = (y + ph) * wp
            for k in range(pw):
                dst[row + k] = zero
                dst[row + pw + width + k] = zero
            for k in range(width):
                dst[row + pw + k] = x[n, c, y, k]
    return xp


@njit(parallel=True, cache=True)
def _widen(grad_out, wp):
    """grad_out (N, C, Ho, Wo) as wide planes (N, C, (Ho-1)*wp + Wo): row stride wp, zeros past Wo."""
    n_img, chans, out_h, out_w = grad_out.shape
    span = (out_h - 1) * wp + out_w
    wide = np.empty((n_img, chans, span), grad_out.dtype)
    zero = grad_out.dtype.type(0)
    for plane in prange(n_img * chans):
        n = plane // chans
        c = plane - n * chans
        dst = wide[n, c]
        for y in range(out_h):
            for k in range(out_w):
                dst[y * wp + k] = grad_out[n, c, y, k]
            if y < out_h - 1:
                for k in range(out_w, wp):
                    dst[y * wp + k] = zero
    return wide


@njit(parallel=True, cache=True)
def _channels_first(grad_out):
    """(N, C, P) -> contiguous (C, N, P): the layout of the im2col GEMM outputs."""
    n_img, chans, size = grad_out.shape
    out = np.empty((chans, n_img, size), grad_out.dtype)
    for task in prange(chans * n_img):
        c = task // n_img
        n = task - c * n_img
        for k in range(size):
            out[c, n, k] = grad_out[n, c, k]
    return out


@njit(parallel=True, cache=True)
def _batch_first_add_bias(out_t, bias):
    """(C, N, P) GEMM output -> contiguous (N, C, P), adding bias[c] on the way."""
    chans, n_img, size = out_t.shape
    out = np.empty((n_img, chans, size), out_t.dtype)
    for task in prange(n_img * chans):
        n = task // chans
        c = task - n * chans
        bc = bias[c]
        for k in range(size):
            out[n, c, k] = out_t[c, n, k] + bc
    return out


@njit(parallel=True, cache=True, fastmath=_FASTMATH)
def _bias_grad(grad_out):
    """Sum of grad_out (N, C, P) over N and P, one channel per iteration."""
    n_img, chans, size = grad_out.shape
    out = np.empty(chans, grad_out.dtype)
    for c in prange(chans):
        total = grad_out.dtype.type(0)
        for n in range(n_img):
            for k in range(size):
                total += grad_out[n, c, k]
        out[c] = total
    return out


@njit(cache=True)
def _valid_columns(out_w, width, kw, sw, pw, dw):
    """Per kernel column j: [lo, hi) of output columns whose input column wo*sw + j*dw - pw is in range."""
    lo = np.empty(kw, np.int64)
    hi = np.empty(kw, np.int64)
    for j in range(kw):
        offset = j * dw - pw
        first = 0 if offset >= 0 else (-offset + sw - 1) // sw
        last = (width - offset + sw - 1) // sw
        lo[j] = min(first, out_w)
        hi[j] = max(min(last, out_w), lo[j])
    return lo, hi


# ---------------------------------------------------------------------------------------------- direct


@njit(parallel=True, cache=True, fastmath=_FASTMATH)
def _direct_forward(xp, wp, w, bias, out, sh, sw, dh, dw, groups):
    """out (N, Cout, Ho, Wo) = conv of padded planes xp (N, Cin, Hp*wp); one (image, out channel) each."""
    n_img = xp.shape[0]
    cout, cin_g, kh, kw = w.shape
    out_h, out_w = out.shape[2], out.shape[3]
    cout_g = cout // groups
    unit_stride = sh == 1 and sw == 1
    span = (out_h - 1) * wp + out_w if unit_stride else out_w
    for task in prange(n_img * cout):
        n = task // cout
        o = task - n * cout
        c0 = (o // cout_g) * cin_g
        acc = np.empty(span, out.dtype)
        if unit_stride:
            acc[:] = bias[o]
            for c in range(cin_g):
                src = xp[n, c0 + c]
                for i in range(kh):
                    for j in range(kw):
                        wv = w[o, c, i, j]
                        base = i * dh * wp + j * dw
                        for t in range(span):
                            acc[t] += wv * src[base + t]
            for y in range(out_h):
                for k in range(out_w):
                    out[n, o, y, k] = acc[y * wp + k]
        else:
            for y in range(out_h):
                acc[:] = bias[o]
                for c in range(cin_g):
                    src = xp[n, c0 + c]
                    for i in range(kh):
                        row = (y * sh + i * dh) * wp
                        for j in range(kw):
                            wv = w[o, c, i, j]
                            base = row + j * dw
                            for k in range(out_w):
                                acc[k] += wv * src[base + k * sw]
                out[n, o, y, :] = acc
    return out


@njit(parallel=True, cache=True, fastmath=_FASTMATH)
def _direct_grad_input(grad_out, gwide, wp, hp, w, grad_x, ph, pw, sh, sw, dh, dw, groups):
    """grad_x (N, Cin, H, W) by scattering each output gradient through the taps into a padded plane.

    One (image, input channel) per iteration: it owns that plane, so the scatter is race-free. With unit
    stride `gwide` holds grad_out as wide planes (see _widen); otherwise grad_out is read directly.
    """
    n_img, cin, height, width = grad_x.shape
    cout, cin_g, kh, kw = w.shape
    out_h, out_w = grad_out.shape[2], grad_out.shape[3]
    cout_g = cout // groups
    unit_stride = sh == 1 and sw == 1
    span = gwide.shape[2]
    zero = grad_x.dtype.type(0)
    for task in prange(n_img * cin):
        n = task // cin
        c = task - n * cin
        g = c // cin_g
        cl = c - g * cin_g
        acc = np.empty(hp * wp, grad_x.dtype)
        acc[:] = zero
        for o in range(g * cout_g, (g + 1) * cout_g):
            for i in range(kh):
                for j in range(kw):
                    wv = w[o, cl, i, j]
                    if unit_stride:
                        src = gwide[n, o]
                        base = i * dh * wp + j * dw
                        for t in range(span):
                            acc[base + t] += wv * src[t]
                    else:
                        for y in range(out_h):
                            base = (y * sh + i * dh) * wp + j * dw
                            for k in range(out_w):
                                acc[base + k * sw] += wv * grad_out[n, o, y, k]
        for y in range(height):
            for k in range(width):
                grad_x[n, c, y, k] = acc[(y + ph) * wp + pw + k]
    return grad_x


@njit(parallel=True, cache=True, fastmath=_FASTMATH)
def _direct_grad_weight(grad_out, gwide, xp, wp, grad_w, sh, sw, dh, dw, groups, n_chunks):
    """grad_w (Cout, Cin/groups, kh, kw): dot products of output gradients with shifted input planes.

    Iterations are (batch chunk, out channel, in channel); each writes its own partial sums, which are
    then added over chunks in chunk order, so the result does not depend on scheduling.
    """
    n_img = xp.shape[0]
    cout, cin_g, kh, kw = grad_w.shape
    out_h, out_w = grad_out.shape[2], grad_out.shape[3]
    cout_g = cout // groups
    unit_stride = sh == 1 and sw == 1
    span = gwide.shape[2]
    partial = np.empty((n_chunks, cout, cin_g, kh, kw), grad_w.dtype)
    for task in prange(n_chunks * cout * cin_g):
        chunk = task // (cout * cin_g)
        rest = task - chunk * (cout * cin_g)
        o = rest // cin_g
        cl = rest - o * cin_g
        c = (o // cout_g) * cin_g + cl
        n0 = chunk * n_img // n_chunks
        n1 = (chunk + 1) * n_img // n_chunks
        for i in range(kh):
            for j in range(kw):
                total = grad_w.dtype.type(0)
                for n in range(n0, n1):
                    src = xp[n, c]
                    if unit_stride:
                        gsrc = gwide[n, o]
                        base = i * dh * wp + j * dw
                        for t in range(span):
                            total += gsrc[t] * src[base + t]
                    else:
                        for y in range(out_h):
                            base = (y * sh + i * dh) * wp + j * dw
                            for k in range(out_w):
                                total += grad_out[n, o, y, k] * src[base + k * sw]
                partial[chunk, o, cl, i, j] = total
    for o in prange(cout):
        for cl in range(cin_g):
            for i in range(kh):
                for j in range(kw):
                    total = partial[0, o, cl, i, j]
                    for chunk in range(1, n_chunks):
                        total += partial[chunk, o, cl, i, j]
                    grad_w[o, cl, i, j] = total
    return grad_w


# ---------------------------------------------------------------------------------------------- im2col


@njit(parallel=True, cache=True)
def _im2col(x, col, kh, kw, sh, sw, ph, pw, dh, dw):
    """Fill col (Cin*kh*kw, N, Ho, Wo): row (c, i, j) holds input channel c seen through tap (i, j)."""
    n_img, cin, height, width = x.shape
    out_h, out_w = col.shape[2], col.shape[3]
    lo, hi = _valid_columns(out_w, width, kw, sw, pw, dw)
    zero = x.dtype.type(0)
    for task in prange(n_img * cin):
        n = task // cin
        c = task - n * cin
        for i in range(kh):
            for j in range(kw):
                k = (c * kh + i) * kw + j
                offset = j * dw - pw
                for y in range(out_h):
                    dst = col[k, n, y]
                    src_y = y * sh + i * dh - ph
                    if src_y < 0 or src_y >= height:
                        dst[:] = zero
                        continue
                    src = x[n, c, src_y]
                    for t in range(lo[j]):
                        dst[t] = zero
                    if sw == 1:
                        for t in range(lo[j], hi[j]):
                            dst[t] = src[t + offset]
                    else:
                        for t in range(lo[j], hi[j]):
                            dst[t] = src[t * sw + offset]
                    for t in range(hi[j], out_w):
                        dst[t] = zero
    return col


@njit(parallel=True, cache=True)
def _col2im(col, grad_x, kh, kw, sh, sw, ph, pw, dh, dw):
    """grad_x (N, Cin, H, W) = sum of the col (Cin*kh*kw, N, Ho, Wo) rows back at their input positions.

    One (image, channel) plane per iteration, accumulated in a fixed tap order: race-free, deterministic.
    """
    n_img, cin, height, width = grad_x.shape
    out_h, out_w = col.shape[2], col.shape[3]
    lo, hi = _valid_columns(out_w, width, kw, sw, pw, dw)
    zero = grad_x.dtype.type(0)
    for task in prange(n_img * cin):
        n = task // cin
        c = task - n * cin
        plane = grad_x[n, c]
        plane[:, :] = zero
        for i in range(kh):
            for j in range(kw):
                k = (c * kh + i) * kw + j
                offset = j * dw - pw
                for y in range(out_h):
                    dst_y = y * sh + i * dh - ph
                    if dst_y < 0 or dst_y >= height:
                        continue
                    src = col[k, n, y]
                    dst = plane[dst_y]
                    if sw == 1:
                        for t in range(lo[j], hi[j]):
                            dst[t + offset] += src[t]
                    else:
                        for t in range(lo[j], hi[j]):
                            dst[t * sw + offset] += src[t]
    return grad_x


# ---------------------------------------------------------------------------------------------- entry points


def _bias_or_zeros(b, cout, dtype):
    return np.zeros(cout, dtype) if b is None else np.ascontiguousarray(b, dtype)


def conv2d_forward_direct(x, w, b, stride, padding, dilation, groups):
    """Direct convolution. x (N, Cin, H, W), w (Cout, Cin/groups, kh, kw), b (Cout,) or None;
    stride, padding, dilation are (h, w) pairs. Returns (N, Cout, Ho, Wo)."""
    x = np.ascontiguousarray(x)
    w = np.ascontiguousarray(w)
    n_img, _, height, width = x.shape
    cout, _, kh, kw = w.shape
    out_h, out_w = _output_hw(height, width, kh, kw, stride, padding, dilation)
    xp = _pad_planes(x, padding[0], padding[1])
    out = np.empty((n_img, cout, out_h, out_w), x.dtype)
    return _direct_forward(xp, width + 2 * padding[1], w, _bias_or_zeros(b, cout, x.dtype), out,
                           stride[0], stride[1], dilation[0], dilation[1], groups)


def _weight_grad_chunks(n_img, cout, cin_g):
    """Batch chunks for the direct weight gradient: enough parallel iterations to keep the cores busy.
    It depends only on shapes, so the summation order (and the result) never varies."""
    return max(1, min(n_img, -(-16 // (cout * cin_g))))


def conv2d_backward_direct(grad_out, x, w, stride, padding, dilation, groups,
                           need_input, need_weight, need_bias):
    """Gradients of conv2d_forward_direct: (grad_x or None, grad_w or None, grad_b or None)."""
    grad_out = np.ascontiguousarray(grad_out, x.dtype)
    x = np.ascontiguousarray(x)
    w = np.ascontiguousarray(w)
    n_img, cin, height, width = x.shape
    cout, cin_g, kh, kw = w.shape
    sh, sw = stride
    dh, dw = dilation
    ph, pw = padding
    hp, wp = height + 2 * ph, width + 2 * pw
    if sh == 1 and sw == 1:
        gwide = _widen(grad_out, wp)
    else:
        gwide = np.empty((0, 0, 0), x.dtype)
    grad_x = grad_w = grad_b = None
    if need_input:
        grad_x = _direct_grad_input(grad_out, gwide, wp, hp, w, np.empty_like(x), ph, pw, sh, sw, dh, dw, groups)
    if need_weight:
        xp = _pad_planes(x, ph, pw)
        grad_w = _direct_grad_weight(grad_out, gwide, xp, wp, np.empty_like(w), sh, sw, dh, dw, groups,
                                     _weight_grad_chunks(n_img, cout, cin_g))
    if need_bias:
        grad_b = _bias_grad(grad_out.reshape(n_img, cout, -1))
    return grad_x, grad_w, grad_b


def _unfold(x, kh, kw, stride, padding, dilation, out_h, out_w):
    n_img, cin = x.shape[:2]
    col = np.empty((cin * kh * kw, n_img, out_h, out_w), x.dtype)
    return _im2col(x, col, kh, kw, stride[0], stride[1], padding[0], padding[1], dilation[0], dilation[1])


def conv2d_forward_im2col(x, w, b, stride, padding, dilation, groups):
    """im2col + one GEMM per group; same contract as conv2d_forward_direct."""
    x = np.ascontiguousarray(x)
    w = np.ascontiguousarray(w)
    n_img, cin, height, width = x.shape
    cout, cin_g, kh, kw = w.shape
    out_h, out_w = _output_hw(height, width, kh, kw, stride, padding, dilation)
    col = _unfold(x, kh, kw, stride, padding, dilation, out_h, out_w)
    k_g = cin_g * kh * kw
    cols = n_img * out_h * out_w
    out_t = np.empty((cout, n_img, out_h * out_w), x.dtype)
    np.matmul(w.reshape(groups, cout // groups, k_g), col.reshape(groups, k_g, cols),
              out=out_t.reshape(groups, cout // groups, cols))
    out = _batch_first_add_bias(out_t, _bias_or_zeros(b, cout, x.dtype))
    return out.reshape(n_img, cout, out_h, out_w)


def conv2d_backward_im2col(grad_out, x, w, stride, padding, dilation, groups,
                           need_input, need_weight, need_bias):
    """Gradients via GEMMs on the column matrix: (grad_x or None, grad_w or None, grad_b or None)."""
    grad_out = np.ascontiguousarray(grad_out, x.dtype)
    x = np.ascontiguousarray(x)
    w = np.ascontiguousarray(w)
    n_img, cin, height, width = x.shape
    cout, cin_g, kh, kw = w.shape
    out_h, out_w = grad_out.shape[2:]
    k_g = cin_g * kh * kw
    cols = n_img * out_h * out_w
    grad_x = grad_w = grad_b = None
    if need_bias:
        grad_b = _bias_grad(grad_out.reshape(n_img, cout, -1))
    if not (need_input or need_weight):
        return grad_x, grad_w, grad_b
    gout_t = _channels_first(grad_out.reshape(n_img, cout, -1)).reshape(groups, cout // groups, cols)
    col = None
    if need_weight:
        col = _unfold(x, kh, kw, stride, padding, dilation, out_h, out_w)
        grad_w = np.empty_like(w)
        np.matmul(gout_t, col.reshape(groups, k_g, cols).transpose(0, 2, 1),
                  out=grad_w.reshape(groups, cout // groups, k_g))
    if need_input:
        if col is None:
            col = np.empty((cin * kh * kw, n_img, out_h, out_w), x.dtype)
        np.matmul(w.reshape(groups, cout // groups, k_g).transpose(0, 2, 1), gout_t,
                  out=col.reshape(groups, k_g, cols))
        grad_x = _col2im(col, np.empty_like(x), kh, kw, stride[0], stride[1], padding[0], padding[1],
                         dilation[0], dilation[1])
    return grad_x, grad_w, grad_b

"""2-D convolution kernels (Numba + BLAS, CPU) for NCHW input, weight (Cout, Cin/groups, kh, kw).

Two algorithms with the same results up to float rounding:

* direct: multiply-adds straight from the zero-padded input, one kernel tap at a time. Output planes are
  computed "wide": with row pitch equal to the padded row length, an output plane is one flat run, and
  each tap reads the input plane shifted by a fixed offset, so every tap is a long contiguous
  multiply-add that vectorizes (the few columns past the true output width are computed and dropped).
  Strided convolutions read a space-to-depth copy of the input (one plane per stride phase), where every
  tap is again a contiguous run. Four taps and two output channels share each pass over the accumulators.
  Best when Cin/groups * kh * kw is small (first layers, depthwise), where a GEMM would be thin.
* im2col: the input is unfolded into a row matrix (N*Hout*Wout, groups*kh*kw*Cin/groups), built from a
  channels-last copy so every copy is a contiguous channel run, and each group is one BLAS GEMM with the
  whole batch folded in. Backward reuses it: grad weight is a GEMM contracting over the batch, grad input
  a GEMM followed by the scatter-add that folds rows back into images (col2im).

Every parallel loop writes only its own slice (an image, an (image, channel block) plane, or a per-chunk
partial that is then summed in a fixed order), so results are race-free and bit-identical run to run.
"""
import threading

import numpy as np
from numba import njit, prange

from fastnn._kernels.blas_threads import parallel_blas

__all__ = ["conv2d_forward_direct", "conv2d_forward_im2col", "conv2d_backward_direct",
           "conv2d_backward_im2col"]

# Reassociation lets the tap sums and dot products vectorize; NaN/Inf semantics stay IEEE.
_FASTMATH = {"reassoc", "contract", "nsz", "arcp"}
_TAPS_PER_PASS = 4  # the direct kernels' tap lists are zero-padded to a multiple of this


def _output_hw(h, w, kh, kw, stride, padding, dilation):
    out_h = (h + 2 * padding[0] - dilation[0] * (kh - 1) - 1) // stride[0] + 1
    out_w = (w + 2 * padding[1] - dilation[1] * (kw - 1) - 1) // stride[1] + 1
    return out_h, out_w


@njit(cache=True)
def _row_block(block, pairs, group_start):
    """First row and row count of block `block` of a group: pairs of rows first, then single rows."""
    if block < pairs:
        return group_start + 2 * block, 2
    return group_start + pairs + block, 1


# ---------------------------------------------------------------------------------------------- direct


@njit(parallel=True, cache=True, fastmath=_FASTMATH)
def _tap_sum(src, offsets, weights, init, pitch, out):
    """out[n, q, y, x] = init[q] + sum_k weights[q, k] * src[n, offsets[g, k] + y*pitch + x].

    src (N, L): each image's flat input. offsets (G, T): tap start offsets, shared by the Q/G consecutive
    rows q of group g; T is a multiple of 4 (padding taps have weight 0). Each iteration computes one or
    two rows of one image as a wide plane (flat index y*pitch + x) and keeps the x < out_w columns.
    """
    n_img = src.shape[0]
    n_groups, n_taps = offsets.shape
    rows = weights.shape[0] // n_groups
    pairs = rows // 2
    blocks = pairs + rows % 2
    out_h, out_w = out.shape[2], out.shape[3]
    span = (out_h - 1) * pitch + out_w
    for task in prange(n_img * n_groups * blocks):
        n = task // (n_groups * blocks)
        g = (task // blocks) % n_groups
        q, size = _row_block(task % blocks, pairs, g * rows)
        x = src[n]
        acc = np.empty((size, span), out.dtype)
        for r in range(size):
            acc[r, :] = init[q + r]
        a = acc[0]
        b = acc[size - 1]  # the second row of a pair (unused for a single row)
        for k in range(0, n_taps, 4):
            x0 = x[offsets[g, k]:offsets[g, k] + span]
            x1 = x[offsets[g, k + 1]:offsets[g, k + 1] + span]
            x2 = x[offsets[g, k + 2]:offsets[g, k + 2] + span]
            x3 = x[offsets[g, k + 3]:offsets[g, k + 3] + span]
            wa0, wa1, wa2, wa3 = weights[q, k], weights[q, k + 1], weights[q, k + 2], weights[q, k + 3]
            if size == 2:
                wb0, wb1 = weights[q + 1, k], weights[q + 1, k + 1]
                wb2, wb3 = weights[q + 1, k + 2], weights[q + 1, k + 3]
                for t in range(span):
                    v0, v1, v2, v3 = x0[t], x1[t], x2[t], x3[t]
                    a[t] += wa0 * v0 + wa1 * v1 + wa2 * v2 + wa3 * v3
                    b[t] += wb0 * v0 + wb1 * v1 + wb2 * v2 + wb3 * v3
            else:
                for t in range(span):
                    a[t] += wa0 * x0[t] + wa1 * x1[t] + wa2 * x2[t] + wa3 * x3[t]
        for r in range(size):
            for y in range(out_h):
                out[n, q + r, y, :] = acc[r, y * pitch:y * pitch + out_w]
    return out


@njit(parallel=True, cache=True, fastmath=_FASTMATH)
def _tap_dot(src, grad_wide, span, offsets, n_chunks, out):
    """out[q, k] = sum over n, t < span of grad_wide[n, q, t] * src[n, offsets[g, k] + t].

    The weight gradient of _tap_sum (grad_wide: the output gradient as wide planes, zero in the dropped
    columns). Iterations are (batch chunk, row block); each writes its own partial sums, which are then
    added over chunks in chunk order, so the result does not depend on scheduling.
    """
    n_img = src.shape[0]
    n_groups, n_taps = offsets.shape
    rows = out.shape[0] // n_groups
    pairs = rows // 2
    blocks = pairs + rows % 2
    partial = np.empty((n_chunks, out.shape[0], n_taps), out.dtype)
    zero = out.dtype.type(0)
    for task in prange(n_chunks * n_groups * blocks):
        chunk = task // (n_groups * blocks)
        g = (task // blocks) % n_groups
        q, size = _row_block(task % blocks, pairs, g * rows)
        n0 = chunk * n_img // n_chunks
        n1 = (chunk + 1) * n_img // n_chunks
        for k in range(0, n_taps, 4):
            # Sums for taps k..k+3 of row q (a*) and, in a pair, of row q + 1 (b*).
            a0 = a1 = a2 = a3 = b0 = b1 = b2 = b3 = zero
            for n in range(n0, n1):
                x = src[n]
                x0 = x[offsets[g, k]:offsets[g, k] + span]
                x1 = x[offsets[g, k + 1]:offsets[g, k + 1] + span]
                x2 = x[offsets[g, k + 2]:offsets[g, k + 2] + span]
                x3 = x[offsets[g, k + 3]:offsets[g, k + 3] + span]
                ga = grad_wide[n, q, :span]
                if size == 2:
                    gb = grad_wide[n, q + 1, :span]
                    for t in range(span):
                        v0, v1, v2, v3 = x0[t], x1[t], x2[t], x3[t]
                        ha = ga[t]
                        hb = gb[t]
                        a0 += ha * v0
                        a1 += ha * v1
                        a2 += ha * v2
                        a3 += ha * v3
                        b0 += hb * v0
                        b1 += hb * v1
                        b2 += hb * v2
                        b3 += hb * v3
                else:
                    for t in range(span):
                        ha = ga[t]
                        a0 += ha * x0[t]
                        a1 += ha * x1[t]
                        a2 += ha * x2[t]
                        a3 += ha * x3[t]
            partial[chunk, q, k] = a0
            partial[chunk, q, k + 1] = a1
            partial[chunk, q, k + 2] = a2
            partial[chunk, q, k + 3] = a3
            if size == 2:
                partial[chunk, q + 1, k] = b0
                partial[chunk, q + 1, k + 1] = b1
                partial[chunk, q + 1, k + 2] = b2
                partial[chunk, q + 1, k + 3] = b3
    for q in prange(out.shape[0]):
        for k in range(n_taps):
            total = partial[0, q, k]
            for chunk in range(1, n_chunks):
                total += partial[chunk, q, k]
            out[q, k] = total
    return out


def _pad_taps(taps, fill):
    """A (rows, T) tap table padded with `fill` to a multiple of _TAPS_PER_PASS columns, contiguous.
    Padding taps get weight 0 and read a run of zeros, so they add exactly nothing (even next to an inf)."""
    extra = -taps.shape[1] % _TAPS_PER_PASS
    return np.ascontiguousarray(np.pad(taps, ((0, 0), (0, extra)), constant_values=fill))


class _DirectLayout:
    """Where the direct kernels read the input: the zero-padded image split into stride phases.

    Phase (a, b) holds padded pixels (u*sh + a, v*sw + b) as a (hq, wq) plane, so tap (i, j) of output
    (y, x) is pixel (y + (i*dh)//sh, x + (j*dw)//sw) of phase ((i*dh) % sh, (j*dw) % sw): a fixed offset
    from the output's flat index y*wq + x. With stride 1 there is one phase, the padded image itself.
    """

    def __init__(self, x_shape, w_shape, stride, padding, dilation, groups):
        cin, height, width = x_shape[1:]
        cin_g, kh, kw = w_shape[1:]
        sh, sw = stride
        dh, dw = dilation
        self.out_h, self.out_w = _output_hw(height, width, kh, kw, stride, padding, dilation)
        self.hq = -(-(height + 2 * padding[0]) // sh)
        self.wq = -(-(width + 2 * padding[1]) // sw)
        self.span = (self.out_h - 1) * self.wq + self.out_w
        plane = self.hq * self.wq
        self.zeros_at = cin * sh * sw * plane
        row_tap, col_tap = np.arange(kh) * dh, np.arange(kw) * dw
        phase = (row_tap % sh)[:, None] * sw + col_tap % sw
        tap = phase * plane + (row_tap // sh * self.wq)[:, None] + col_tap // sw
        channel = (np.arange(groups) * cin_g)[:, None] + np.arange(cin_g)
        # offsets[g, (c, i, j)]: start of tap (i, j) of group g's input channel c in the flat image.
        self.offsets = _pad_taps((channel[:, :, None, None] * (sh * sw * plane) + tap).reshape(groups, -1),
                                 self.zeros_at)

    def split(self, x, stride, padding):
        """x (N, C, H, W) as flat images of zero-padded stride phases, (N, zeros_at + span): a run of
        zeros follows the phases for padding taps to read."""
        n_img, cin, height, width = x.shape
        sh, sw = stride
        flat = np.zeros((n_img, self.zeros_at + self.span), x.dtype)
        if sh * sw == 1:
            grid = flat[:, :self.zeros_at].reshape(n_img, cin, self.hq, self.wq)
            grid[:, :, padding[0]:padding[0] + height, padding[1]:padding[1] + width] = x
            return flat
        grid = np.zeros((n_img, cin, self.hq * sh, self.wq * sw), x.dtype)
        grid[:, :, padding[0]:padding[0] + height, padding[1]:padding[1] + width] = x
        phases = grid.reshape(n_img, cin, self.hq, sh, self.wq, sw).transpose(0, 1, 3, 5, 2, 4)
        flat[:, :self.zeros_at].reshape(n_img, cin, sh, sw, self.hq, self.wq)[...] = phases
        return flat


def conv2d_forward_direct(x, w, b, stride, padding, dilation, groups):
    """Direct convolution. x (N, Cin, H, W), w (Cout, Cin/groups, kh, kw), b (Cout,) or None;
    stride, padding, dilation are (h, w) pairs. Returns (N, Cout, Ho, Wo)."""
    x = np.ascontiguousarray(x)
    n_img, cout = x.shape[0], w.shape[0]
    layout = _DirectLayout(x.shape, w.shape, stride, padding, dilation, groups)
    weights = _pad_taps(np.asarray(w).reshape(cout, -1), 0)
    init = np.zeros(cout, x.dtype) if b is None else np.ascontiguousarray(b, x.dtype)
    out = np.empty((n_img, cout, layout.out_h, layout.out_w), x.dtype)
    return _tap_sum(layout.split(x, stride, padding), layout.offsets, weights, init, layout.wq, out)


def _weight_grad_chunks(n_img, cout):
    """Batch chunks for the direct weight gradient: enough parallel iterations to keep the cores busy.
    It depends only on shapes, so the summation order (and the result) never varies."""
    return max(1, min(n_img, -(-32 // cout)))


def _bias_grad(grad_out):
    """Sum of grad_out (N, C, Ho, Wo) over batch and positions: planes first (contiguous), then the batch."""
    return grad_out.sum(axis=(2, 3)).sum(axis=0)


def _direct_grad_input(grad_out, w, x_shape, stride, padding, dilation, groups):
    """Transposed convolution as a gather: each padded-input position sums weight * output gradient over
    the taps that reach it. The gradient is spread onto the padded grid (zeros between strided outputs)
    after `front` zeros, so that every tap reads it at a fixed non-negative offset: a _tap_sum."""
    n_img, cin, height, width = x_shape
    cout, cin_g, kh, kw = w.shape
    cout_g = cout // groups
    out_h, out_w = grad_out.shape[2:]
    hp, wp = height + 2 * padding[0], width + 2 * padding[1]
    tap = ((np.arange(kh) * dilation[0] * wp)[:, None] + np.arange(kw) * dilation[1]).ravel()
    front = int(tap[-1])
    length = front + hp * wp
    zeros_at = cout * length
    spread = np.zeros((n_img, zeros_at + (height - 1) * wp + width), grad_out.dtype)
    grid = spread[:, :zeros_at].reshape(n_img, cout, length)[:, :, front:].reshape(n_img, cout, hp, wp)
    grid[:, :, 0:out_h * stride[0]:stride[0], 0:out_w * stride[1]:stride[1]] = grad_out
    origin = padding[0] * wp + padding[1]
    channel = (np.arange(groups) * cout_g)[:, None] + np.arange(cout_g)
    offsets = _pad_taps((channel[:, :, None] * length + (front + origin) - tap).reshape(groups, -1), zeros_at)
    weights = _pad_taps(w.reshape(groups, cout_g, cin_g, kh * kw).transpose(0, 2, 1, 3).reshape(cin, -1), 0)
    return _tap_sum(spread, offsets, weights, np.zeros(cin, grad_out.dtype), wp, np.empty(x_shape, grad_out.dtype))


def conv2d_backward_direct(grad_out, x, w, stride, padding, dilation, groups,
                           need_input, need_weight, need_bias):
    """Gradients of conv2d_forward_direct: (grad_x or None, grad_w or None, grad_b or None)."""
    grad_out = np.ascontiguousarray(grad_out, x.dtype)
    w = np.ascontiguousarray(w)
    n_img, cout = x.shape[0], w.shape[0]
    grad_x = grad_w = grad_b = None
    if need_input:
        grad_x = _direct_grad_input(grad_out, w, x.shape, stride, padding, dilation, groups)
    if need_weight:
        layout = _DirectLayout(x.shape, w.shape, stride, padding, dilation, groups)
        out_h, out_w = layout.out_h, layout.out_w
        grad_wide = np.zeros((n_img, cout, out_h, layout.wq), x.dtype)
        grad_wide[:, :, :, :out_w] = grad_out
        sums = _tap_dot(layout.split(np.ascontiguousarray(x), stride, padding),
                        grad_wide.reshape(n_img, cout, out_h * layout.wq), layout.span, layout.offsets,
                        _weight_grad_chunks(n_img, cout), np.empty((cout, layout.offsets.shape[1]), x.dtype))
        grad_w = np.ascontiguousarray(sums[:, :w[0].size]).reshape(w.shape)
    if need_bias:
        grad_b = _bias_grad(grad_out)
    return grad_x, grad_w, grad_b


# ---------------------------------------------------------------------------------------------- im2col


@njit(parallel=True, cache=True)
def _swap_last_axes(src, bias):
    """src (N, A, B) -> contiguous (N, B, A), adding bias[b] (length B) on the way."""
    n_img, size_a, size_b = src.shape
    out = np.empty((n_img, size_b, size_a), src.dtype)
    for n in prange(n_img):
        for b in range(size_b):
            bb = bias[b]
            dst = out[n, b]
            for a in range(size_a):
                dst[a] = src[n, a, b] + bb
    return out


@njit(parallel=True, cache=True)
def _im2row(xt, cin, cols, kh, kw, sh, sw, ph, pw, dh, dw, groups, out_h, out_w):
    """cols (N*Ho*Wo, groups*kh*kw*cin_g): row (n, y, x) holds, for each group g and tap (i, j), that
    group's channels at pixel (y*sh + i*dh - ph, x*sw + j*dw - pw) of channels-last images xt
    (N, H, W*cin), zero outside.

    With one group and unit column dilation, a kernel row's taps are kw adjacent pixels: one contiguous
    run of kw*cin values in both xt and cols, copied at once when it lies inside the image.
    """
    n_img, height = xt.shape[0], xt.shape[1]
    width = xt.shape[2] // cin
    cin_g = cin // groups
    k_g = kh * kw * cin_g
    run = kw * cin
    whole_rows = groups == 1 and dw == 1
    zero = xt.dtype.type(0)
    for task in prange(n_img * out_h):
        n = task // out_h
        y = task - n * out_h
        for x in range(out_w):
            dst = cols[task * out_w + x]
            x0 = x * sw - pw
            for i in range(kh):
                src_y = y * sh + i * dh - ph
                row_inside = 0 <= src_y < height
                if whole_rows and row_inside and x0 >= 0 and x0 + kw <= width:
                    dst[i * run:(i + 1) * run] = xt[n, src_y, x0 * cin:x0 * cin + run]
                    continue
                for j in range(kw):
                    src_x = x0 + j * dw
                    inside = row_inside and 0 <= src_x < width
                    for g in range(groups):
                        base = g * k_g + (i * kw + j) * cin_g
                        if inside:
                            at = src_x * cin + g * cin_g
                            dst[base:base + cin_g] = xt[n, src_y, at:at + cin_g]
                        else:
                            dst[base:base + cin_g] = zero
    return cols


@njit(parallel=True, cache=True)
def _row2im(cols, grad_x, kh, kw, sh, sw, ph, pw, dh, dw, groups, out_h, out_w):
    """grad_x (N, C, H, W) = every cols row added back at the input pixels _im2row copied it from.

    One image per iteration, accumulated channels-last in a fixed order (race-free, deterministic), then
    written out channels-first. Whole kernel rows go at once where _im2row copied them at once.
    """
    n_img, cin, height, width = grad_x.shape
    cin_g = cin // groups
    k_g = kh * kw * cin_g
    run = kw * cin
    whole_rows = groups == 1 and dw == 1
    for n in prange(n_img):
        acc = np.zeros((height, width * cin), grad_x.dtype)
        for y in range(out_h):
            for x in range(out_w):
                src = cols[(n * out_h + y) * out_w + x]
                x0 = x * sw - pw
                for i in range(kh):
                    dst_y = y * sh + i * dh - ph
                    if dst_y < 0 or dst_y >= height:
                        continue
                    dst = acc[dst_y]
                    if whole_rows and x0 >= 0 and x0 + kw <= width:
                        acc_run = dst[x0 * cin:x0 * cin + run]
                        src_run = src[i * run:(i + 1) * run]
                        for t in range(run):
                            acc_run[t] += src_run[t]
                        continue
                    for j in range(kw):
                        dst_x = x0 + j * dw
                        if dst_x < 0 or dst_x >= width:
                            continue
                        for g in range(groups):
                            base = g * k_g + (i * kw + j) * cin_g
                            at = dst_x * cin + g * cin_g
                            for c in range(cin_g):
                                dst[at + c] += src[base + c]
        for c in range(cin):
            for y in range(height):
                for x in range(width):
                    grad_x[n, c, y, x] = acc[y, x * cin + c]
    return grad_x


_workspace = threading.local()
# Cap on the column matrix's elements: bigger batches are unfolded and multiplied in chunks of images.
_MAX_COLUMN_ELEMENTS = 1 << 24
# OpenBLAS runs a GEMM whose reduction is long (the weight gradient sums over every output position of
# the batch) at about a third of its usual speed; in blocks of this many rows it runs at full speed.
_REDUCTION_BLOCK = 384


_blas_warmed_dtypes = set()


def _warm_blas(dtype):
    """Run one small GEMM per process and dtype before the first im2col GEMM.

    Measured with NumPy's OpenBLAS 0.3.31 on the 2-core Zen host: a fresh process runs the im2col forward
    GEMM (many rows, a few hundred columns of reduction, Cout outputs) at half speed, 16 instead of
    32 GF/s per core, and keeps doing so until it has run one GEMM with a short, wide right operand like
    this one; from then on it runs at full speed. Costs about a millisecond, once.
    """
    if dtype not in _blas_warmed_dtypes:
        np.matmul(np.ones((64, 384), dtype), np.ones((384, 512), dtype))
        _blas_warmed_dtypes.add(dtype)


def _workspace_rows(n_rows, n_cols, dtype):
    """An (n_rows, n_cols) scratch array on a per-thread buffer reused across calls: the column matrix is
    the one large temporary, and a fresh allocation of it would pay page faults on every call."""
    size = n_rows * n_cols
    buffer = getattr(_workspace, dtype.name, None)
    if buffer is None or buffer.size < size:
        buffer = np.empty(size, dtype)
        setattr(_workspace, dtype.name, buffer)
    return buffer[:size].reshape(n_rows, n_cols)


def _image_chunks(n_img, rows_per_image, n_cols):
    """Balanced [start, stop) image ranges whose column matrices fit _MAX_COLUMN_ELEMENTS (at least one
    image each). They depend only on shapes, so chunked sums always add in the same order."""
    if n_img == 0:
        return [(0, 0)]
    per_chunk = max(1, _MAX_COLUMN_ELEMENTS // max(1, rows_per_image * n_cols))
    n_chunks = -(-n_img // per_chunk)
    size = -(-n_img // n_chunks)
    return [(start, min(start + size, n_img)) for start in range(0, n_img, size)]


def _group_blocks(matrix, groups):
    """(M, groups*K) -> (groups, M, K) view of each group's column block."""
    return matrix.reshape(matrix.shape[0], groups, matrix.shape[1] // groups).transpose(1, 0, 2)


def _matmul_groups(a, b, out, groups):
    """Per group g: out's column block g = a's column block g @ b[g]."""
    if groups == 1:
        np.matmul(a, b[0], out=out)
    else:
        np.matmul(_group_blocks(a, groups), b, out=_group_blocks(out, groups))


def _add_weight_grad_columns(cols, grad_rows, groups, total):
    """total (groups, kh*kw*cin_g, Cout/groups) += per group cols_gᵀ @ grad_rows_g, summed over row
    blocks in order (see _REDUCTION_BLOCK)."""
    for start in range(0, cols.shape[0], _REDUCTION_BLOCK):
        block = slice(start, start + _REDUCTION_BLOCK)
        total += np.matmul(_group_blocks(cols[block], groups).transpose(0, 2, 1),
                           _group_blocks(grad_rows[block], groups))


def _weight_rows(w, groups):
    """w (Cout, cin_g, kh, kw) -> (groups, Cout/groups, kh*kw*cin_g), columns in _im2row's (i, j, c) order."""
    cout = w.shape[0]
    return np.ascontiguousarray(w.transpose(0, 2, 3, 1)).reshape(groups, cout // groups, -1)


def _channels_last(a):
    """(N, C, H, W) -> contiguous channels-last (N, H, W*C)."""
    n_img, chans, height, width = a.shape
    positions = height * width
    flat = _swap_last_axes(np.ascontiguousarray(a).reshape(n_img, chans, positions), np.zeros(positions, a.dtype))
    return flat.reshape(n_img, height, width * chans)


def _unfold(xt, w_shape, stride, padding, dilation, groups, out_h, out_w):
    """The column matrix of channels-last images xt, on the workspace buffer."""
    n_img = xt.shape[0]
    cin_g, kh, kw = w_shape[1:]
    cin = groups * cin_g
    cols = _workspace_rows(n_img * out_h * out_w, cin * kh * kw, xt.dtype)
    return _im2row(xt, cin, cols, kh, kw, stride[0], stride[1], padding[0], padding[1], dilation[0], dilation[1],
                   groups, out_h, out_w)


def conv2d_forward_im2col(x, w, b, stride, padding, dilation, groups):
    """im2col + one GEMM per group; same contract as conv2d_forward_direct."""
    with parallel_blas():
        return _forward_im2col(x, w, b, stride, padding, dilation, groups)


def _forward_im2col(x, w, b, stride, padding, dilation, groups):
    n_img, cin, height, width = x.shape
    cout, _, kh, kw = w.shape
    out_h, out_w = _output_hw(height, width, kh, kw, stride, padding, dilation)
    size = out_h * out_w
    _warm_blas(x.dtype)
    xt = _channels_last(x)
    w_t = _weight_rows(w, groups).transpose(0, 2, 1)
    rows = np.empty((n_img * size, cout), x.dtype)
    for n0, n1 in _image_chunks(n_img, size, cin * kh * kw):
        cols = _unfold(xt[n0:n1], w.shape, stride, padding, dilation, groups, out_h, out_w)
        _matmul_groups(cols, w_t, rows[n0 * size:n1 * size], groups)
    bias = np.zeros(cout, x.dtype) if b is None else np.ascontiguousarray(b, x.dtype)
    return _swap_last_axes(rows.reshape(n_img, size, cout), bias).reshape(n_img, cout, out_h, out_w)


def conv2d_backward_im2col(grad_out, x, w, stride, padding, dilation, groups,
                           need_input, need_weight, need_bias):
    """Gradients via GEMMs on the column matrix: (grad_x or None, grad_w or None, grad_b or None)."""
    with parallel_blas():
        return _backward_im2col(grad_out, x, w, stride, padding, dilation, groups, need_input, need_weight,
                                need_bias)


def _backward_im2col(grad_out, x, w, stride, padding, dilation, groups, need_input, need_weight, need_bias):
    grad_out = np.ascontiguousarray(grad_out, x.dtype)
    n_img, cin = x.shape[:2]
    cout, cin_g, kh, kw = w.shape
    out_h, out_w = grad_out.shape[2:]
    size = out_h * out_w
    grad_x = grad_w = grad_b = None
    if need_bias:
        grad_b = _bias_grad(grad_out)
    if not (need_input or need_weight):
        return grad_x, grad_w, grad_b
    _warm_blas(x.dtype)
    grad_rows = _channels_last(grad_out).reshape(-1, cout)
    w_rows = _weight_rows(w, groups)
    xt = _channels_last(x) if need_weight else None
    grad_x = np.empty(x.shape, x.dtype) if need_input else None
    grad_w_columns = np.zeros((groups, kh * kw * cin_g, cout // groups), x.dtype) if need_weight else None
    for n0, n1 in _image_chunks(n_img, size, cin * kh * kw):
        grad_chunk = grad_rows[n0 * size:n1 * size]
        if need_weight:
            cols = _unfold(xt[n0:n1], w.shape, stride, padding, dilation, groups, out_h, out_w)
            _add_weight_grad_columns(cols, grad_chunk, groups, grad_w_columns)
        if need_input:
            cols = _workspace_rows(grad_chunk.shape[0], cin * kh * kw, x.dtype)
            _matmul_groups(grad_chunk, w_rows, cols, groups)
            _row2im(cols, grad_x[n0:n1], kh, kw, stride[0], stride[1], padding[0], padding[1], dilation[0],
                    dilation[1], groups, out_h, out_w)
    if need_weight:
        # (groups, (i, j, c), o) -> (Cout, cin_g, kh, kw)
        grad_w = np.ascontiguousarray(
            grad_w_columns.reshape(groups, kh, kw, cin_g, cout // groups).transpose(0, 4, 3, 1, 2)).reshape(w.shape)
    return grad_x, grad_w, grad_b

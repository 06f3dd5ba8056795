"""2-D convolution kernels (Numba + BLAS, CPU) for NCHW input, weight (Cout, Cin/groups, kh, kw).

Three algorithms with the same results up to float rounding:

* direct: multiply-adds straight from the zero-padded input, one kernel tap at a time. Output planes are
  computed "wide": with row pitch equal to the padded row length, an output plane is one flat run, and
  each tap reads the input plane shifted by a fixed offset, so every tap is a long contiguous
  multiply-add that vectorizes (the few columns past the true output width are computed and dropped).
  Strided convolutions read a space-to-depth copy of the input (one plane per stride phase), where every
  tap is again a contiguous run (the blocked forward builds it, or for stride 1 the padded image, per (image,
  group) inside each task). Where output channels per group come in fours, a block of 4 channels x 16 pixels
  (32 where the target has 512-bit vectors) is held in registers across the whole reduction, each tap 8 vector
  FMAs (_fma_block, _fma_block32, the oneDNN way);
  otherwise four taps and two output channels share each pass over accumulators in memory. The input gradient
  is the same kernel on the spread output gradient (for stride 1, the forward of the flipped kernel), or for input
  channels per group not in fours, tap planes summed over the output channels and folded back (col2im); the
  weight gradient dot products over the wide planes, 4 output channels x 4 taps at a time.
  Best when Cin/groups * kh * kw is small (first layers, depthwise), where a GEMM would be thin, and for
  stride-1 layers with large output planes.
* im2col: a batch of images is unfolded side by side into a column matrix (Cin*kh*kw, batch*Hout*Wout) on
  one thread (a single image for large planes, several for small ones so that the GEMM is wide enough), and
  each group's weight rows multiply their block of it in one single-threaded BLAS GEMM (called from Numba)
  whose columns are then written to the NCHW output planes (a lone image is instead unfolded by all threads
  and its GEMM cut into blocks of output channels, so that it does not leave the other cores idle). Backward
  reuses it: grad weight is a GEMM per batch summed in fixed batch chunks, grad input a GEMM followed by the
  scatter-add that folds the columns back into each image (col2im). Ungrouped kxk convs whose batch has
  more pixels than output channels (resnet20's stride-2 convs) transpose that matrix instead: each image goes
  channels last into a zero-padded scratch, one output pixel per row of (batch*Hout*Wout, kh*kw*Cin) is
  gathered in contiguous channel runs, and the GEMM has the pixels as its long side (_pixel_columns). One
  thread pool (Numba's) runs it all, so BLAS threads never compete. A 1x1 stride-1 unpadded conv has nothing to
  unfold: its GEMM reads the input planes and writes the output planes in place (_pointwise_forward).

* winograd (cpu_winograd.py): F(4x4, 3x3) for stride-1 undilated 3x3 convs, 4x fewer multiplies, as 36
  batched GEMMs between input and weight transforms; its input gradient is again such a conv and its weight
  gradient 36 GEMMs over the tiles. Asked for a conv it does not cover, or one too small to pay for its
  transforms, it runs the one of direct and im2col that the policy picks for the shape.

A forward too small to pay for waking the thread pool runs the same loops on the calling thread (serial
twins, _SERIAL_BELOW_MACS). Every parallel loop writes only its own slice (an image, an (image, channel block)
plane, or a per-chunk partial that is then summed in a fixed order), so results are race-free and
bit-identical run to run.
"""
import functools

import numpy as np
from numba import njit, prange

from fastnn._kernels import cpu_winograd
from fastnn._kernels.variants import rebound, serial_twin, with_slp
from fastnn._kernels.vector_width import compile_features, full_width_target

__all__ = ["conv2d_forward", "conv2d_backward", "choose_algorithm", "ALGORITHMS"]

ALGORITHMS = ("direct", "im2col", "winograd")


# Reassociation lets the tap sums and dot products vectorize; NaN/Inf semantics stay IEEE.
_FASTMATH = {"reassoc", "contract", "nsz", "arcp"}
_TAPS_PER_PASS = 4  # the direct kernels' tap lists are zero-padded to a multiple of this
_U = tuple(np.uint64(i) for i in range(32))  # unsigned offsets within a run (_fma_block, _fma_block32)


def _output_hw(h, w, kh, kw, stride, padding, dilation):
    out_h = (h + 2 * padding[0] - dilation[0] * (kh - 1) - 1) // stride[0] + 1
    out_w = (w + 2 * padding[1] - dilation[1] * (kw - 1) - 1) // stride[1] + 1
    return out_h, out_w


@njit(nogil=True, cache=True)
def _row_block(block, pairs, group_start):
    """First row and row count of block `block` of a group: pairs of rows first, then single rows."""
    if block < pairs:
        return group_start + 2 * block, 2
    return group_start + pairs + block, 1


# ---------------------------------------------------------------------------------------------- direct


@njit(parallel=True, nogil=True, cache=True, fastmath=_FASTMATH)
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


@njit(nogil=True, cache=True, fastmath=_FASTMATH, inline="always")
def _quad_tap_dots(x, offsets, grads, span, part, q, rows):
    """part[q + r, k] += sum over t < span of grads[r, t] * x[offsets[k] + t] for r < rows <= 4 (the sums of
    grads' other rows are dropped), taps four at a time.

    Four gradient rows by four taps are 16 sums over the span, each loaded value feeding four of them (8 loads
    per 16 FMAs); the loop vectorizer keeps each sum in a vector register across the span ('reassoc')."""
    g0, g1, g2, g3 = grads[0, :span], grads[1, :span], grads[2, :span], grads[3, :span]
    zero = part.dtype.type(0)
    for k in range(0, offsets.shape[0], 4):
        x0 = x[offsets[k]:offsets[k] + span]
        x1 = x[offsets[k + 1]:offsets[k + 1] + span]
        x2 = x[offsets[k + 2]:offsets[k + 2] + span]
        x3 = x[offsets[k + 3]:offsets[k + 3] + span]
        a0 = a1 = a2 = a3 = b0 = b1 = b2 = b3 = c0 = c1 = c2 = c3 = d0 = d1 = d2 = d3 = zero
        for t in range(span):
            v0, v1, v2, v3 = x0[t], x1[t], x2[t], x3[t]
            h = g0[t]
            a0, a1, a2, a3 = a0 + h * v0, a1 + h * v1, a2 + h * v2, a3 + h * v3
            h = g1[t]
            b0, b1, b2, b3 = b0 + h * v0, b1 + h * v1, b2 + h * v2, b3 + h * v3
            h = g2[t]
            c0, c1, c2, c3 = c0 + h * v0, c1 + h * v1, c2 + h * v2, c3 + h * v3
            h = g3[t]
            d0, d1, d2, d3 = d0 + h * v0, d1 + h * v1, d2 + h * v2, d3 + h * v3
        sums = ((a0, a1, a2, a3), (b0, b1, b2, b3), (c0, c1, c2, c3), (d0, d1, d2, d3))
        for r in range(rows):
            row = part[q + r]
            s0, s1, s2, s3 = sums[r]
            row[k] += s0
            row[k + 1] += s1
            row[k + 2] += s2
            row[k + 3] += s3


@njit(nogil=True, cache=True, fastmath=_FASTMATH, inline="always")
def _pair_tap_dots(x, offsets, grads, span, part, q, rows):
    """_quad_tap_dots for rows <= 2: 8 sums, which fit AVX2's 16 vector registers with the loads (16 sums spilled
    there)."""
    g0, g1 = grads[0, :span], grads[1, :span]
    zero = part.dtype.type(0)
    for k in range(0, offsets.shape[0], 4):
        x0 = x[offsets[k]:offsets[k] + span]
        x1 = x[offsets[k + 1]:offsets[k + 1] + span]
        x2 = x[offsets[k + 2]:offsets[k + 2] + span]
        x3 = x[offsets[k + 3]:offsets[k + 3] + span]
        a0 = a1 = a2 = a3 = b0 = b1 = b2 = b3 = zero
        for t in range(span):
            v0, v1, v2, v3 = x0[t], x1[t], x2[t], x3[t]
            h = g0[t]
            a0, a1, a2, a3 = a0 + h * v0, a1 + h * v1, a2 + h * v2, a3 + h * v3
            h = g1[t]
            b0, b1, b2, b3 = b0 + h * v0, b1 + h * v1, b2 + h * v2, b3 + h * v3
        sums = ((a0, a1, a2, a3), (b0, b1, b2, b3))
        for r in range(rows):
            row = part[q + r]
            s0, s1, s2, s3 = sums[r]
            row[k] += s0
            row[k + 1] += s1
            row[k + 2] += s2
            row[k + 3] += s3


@njit(parallel=True, nogil=True, cache=True, fastmath=_FASTMATH)
def _tap_dot(x, grad_out, groups, offsets, sh, sw, ph, pw, hq, wq, span, block, partial, bias_partial):
    """partial[chunk, q, k] = sum over the images n of the chunk and t < span of G[n, q, t] * X[n, offsets[k] + t]:
    the weight gradient of the direct forward, summed per batch chunk (partial: (chunks, Cout, T)).

    X is image n's group of input channels split into stride phases (_group_phases, as the strided forward reads
    them) and G its output gradient as wide planes of pitch wq, zero in the columns past the output's width, so
    that the dot products run over one flat span. Iterations are (batch chunk, group): each one splits its own
    images one at a time into a scratch that then stays in cache for all of the group's rows and taps, and copies
    `block` (4 or 2, _weight_grad_block) rows of the output gradient at a time into a wide scratch whose dropped
    columns stay zero (the whole batch's phases and wide planes, built beforehand, were a round trip through memory
    costing as much as the dot products on first layers). Every iteration writes its own partial sums, which the
    caller adds over the chunks in order, so the result does not depend on scheduling. bias_partial (chunks,
    Cout), unless it has no columns, gets the output gradient's sums per chunk, the bias gradient, added up while
    its rows are copied (a separate pass over the output gradient, _bias_grad, took 0.3-0.5 ms, a third of the
    weight gradient on a first layer)."""
    n_img = x.shape[0]
    cin_g = x.shape[1] // groups
    n_chunks, cout = partial.shape[0], partial.shape[1]
    rows = cout // groups
    out_h, out_w = grad_out.shape[2], grad_out.shape[3]
    # The dot products run over the span rounded up to whole vectors, zeros past it in the gradient's scratch, so that
    # no iteration of a scalar remainder loop follows the vector loop (1 thread, best of 9 interleaved: 64x6x14x14 -> 16
    # k5, span 136 of 144, 0.60 -> 0.47 ms; 32x3x32x32 -> 64 k3 1.32 -> 1.18; 64x1x28x28 -> 32 k5 1.11 -> 1.06).
    runs = -(-span // 16) * 16
    zero = x.dtype.type(0)
    for task in prange(n_chunks * groups):
        chunk = task // groups
        g = task % groups
        part = partial[chunk]
        part[g * rows:(g + 1) * rows] = 0
        bias_part = bias_partial[chunk]
        bias_part[g * rows:(g + 1) * rows] = 0
        flat = np.empty(cin_g * sh * sw * hq * wq + runs, x.dtype)
        wide = np.zeros((4, runs), x.dtype)
        for n in range(chunk * n_img // n_chunks, (chunk + 1) * n_img // n_chunks):
            _group_phases(x[n, g * cin_g:(g + 1) * cin_g], flat, sh, sw, ph, pw, hq, wq)
            for q in range(g * rows, (g + 1) * rows, block):
                quad = min(block, (g + 1) * rows - q)
                for r in range(quad):
                    total = zero
                    for y in range(out_h):
                        row = grad_out[n, q + r, y]
                        wide[r, y * wq:y * wq + out_w] = row
                        for t in range(out_w):
                            total += row[t]
                    if bias_partial.shape[1]:
                        bias_part[q + r] += total
                if block == 4:
                    _quad_tap_dots(flat, offsets, wide, runs, part, q, quad)
                else:
                    _pair_tap_dots(flat, offsets, wide, runs, part, q, quad)
    return partial


@njit(nogil=True, cache=True, fastmath={"contract"}, inline="always")
def _fma_block(x, offsets, weights, t0, init, dst, row, y, d0):
    """dst[row + r, y, d0 + j] = init[r] + sum over taps k of weights[4*k + r] * x[offsets[k] + t0 + j], r < 4,
    j < 16 (offsets: uint64).

    The 4x16 block is held in 64 scalars across the whole reduction; the SLP vectorizer packs each row's 16 into
    two ymm registers, so that a tap is 2 vector loads, 4 broadcasts and 8 FMAs (the loop vectorizer, which
    only vectorizes innermost loops, would instead gather across taps: hence no 'reassoc' here). The input is
    indexed by unsigned integers and the weights are one flat run, so a tap costs no negative-index wraparound,
    slice clamping or stride multiply: those took as many instructions as the FMAs, and dropping them made
    64x16x32x32 -> 16 k3 1.36x faster (1 thread, 6.84 -> 5.03 ms, 44 -> 60 GFLOP/s, load ~0.9)."""
    a00 = a01 = a02 = a03 = a04 = a05 = a06 = a07 = a08 = a09 = a0a = a0b = a0c = a0d = a0e = a0f = init[0]
    a10 = a11 = a12 = a13 = a14 = a15 = a16 = a17 = a18 = a19 = a1a = a1b = a1c = a1d = a1e = a1f = init[1]
    a20 = a21 = a22 = a23 = a24 = a25 = a26 = a27 = a28 = a29 = a2a = a2b = a2c = a2d = a2e = a2f = init[2]
    a30 = a31 = a32 = a33 = a34 = a35 = a36 = a37 = a38 = a39 = a3a = a3b = a3c = a3d = a3e = a3f = init[3]
    t0 = np.uint64(t0)
    for k in range(offsets.shape[0]):
        o = offsets[k] + t0  # uint64 + uint64: no wraparound test on the reads
        x0, x1, x2, x3 = x[o], x[o + _U[1]], x[o + _U[2]], x[o + _U[3]]
        x4, x5, x6, x7 = x[o + _U[4]], x[o + _U[5]], x[o + _U[6]], x[o + _U[7]]
        x8, x9, xa, xb = x[o + _U[8]], x[o + _U[9]], x[o + _U[10]], x[o + _U[11]]
        xc, xd, xe, xf = x[o + _U[12]], x[o + _U[13]], x[o + _U[14]], x[o + _U[15]]
        w0, w1, w2, w3 = weights[4 * k], weights[4 * k + 1], weights[4 * k + 2], weights[4 * k + 3]
        a00, a01, a02, a03 = a00 + w0 * x0, a01 + w0 * x1, a02 + w0 * x2, a03 + w0 * x3
        a04, a05, a06, a07 = a04 + w0 * x4, a05 + w0 * x5, a06 + w0 * x6, a07 + w0 * x7
        a08, a09, a0a, a0b = a08 + w0 * x8, a09 + w0 * x9, a0a + w0 * xa, a0b + w0 * xb
        a0c, a0d, a0e, a0f = a0c + w0 * xc, a0d + w0 * xd, a0e + w0 * xe, a0f + w0 * xf
        a10, a11, a12, a13 = a10 + w1 * x0, a11 + w1 * x1, a12 + w1 * x2, a13 + w1 * x3
        a14, a15, a16, a17 = a14 + w1 * x4, a15 + w1 * x5, a16 + w1 * x6, a17 + w1 * x7
        a18, a19, a1a, a1b = a18 + w1 * x8, a19 + w1 * x9, a1a + w1 * xa, a1b + w1 * xb
        a1c, a1d, a1e, a1f = a1c + w1 * xc, a1d + w1 * xd, a1e + w1 * xe, a1f + w1 * xf
        a20, a21, a22, a23 = a20 + w2 * x0, a21 + w2 * x1, a22 + w2 * x2, a23 + w2 * x3
        a24, a25, a26, a27 = a24 + w2 * x4, a25 + w2 * x5, a26 + w2 * x6, a27 + w2 * x7
        a28, a29, a2a, a2b = a28 + w2 * x8, a29 + w2 * x9, a2a + w2 * xa, a2b + w2 * xb
        a2c, a2d, a2e, a2f = a2c + w2 * xc, a2d + w2 * xd, a2e + w2 * xe, a2f + w2 * xf
        a30, a31, a32, a33 = a30 + w3 * x0, a31 + w3 * x1, a32 + w3 * x2, a33 + w3 * x3
        a34, a35, a36, a37 = a34 + w3 * x4, a35 + w3 * x5, a36 + w3 * x6, a37 + w3 * x7
        a38, a39, a3a, a3b = a38 + w3 * x8, a39 + w3 * x9, a3a + w3 * xa, a3b + w3 * xb
        a3c, a3d, a3e, a3f = a3c + w3 * xc, a3d + w3 * xd, a3e + w3 * xe, a3f + w3 * xf
    d = dst[row + 0, y, d0:d0 + 16]
    d[0], d[1], d[2], d[3], d[4], d[5], d[6], d[7] = a00, a01, a02, a03, a04, a05, a06, a07
    d[8], d[9], d[10], d[11], d[12], d[13], d[14], d[15] = a08, a09, a0a, a0b, a0c, a0d, a0e, a0f
    d = dst[row + 1, y, d0:d0 + 16]
    d[0], d[1], d[2], d[3], d[4], d[5], d[6], d[7] = a10, a11, a12, a13, a14, a15, a16, a17
    d[8], d[9], d[10], d[11], d[12], d[13], d[14], d[15] = a18, a19, a1a, a1b, a1c, a1d, a1e, a1f
    d = dst[row + 2, y, d0:d0 + 16]
    d[0], d[1], d[2], d[3], d[4], d[5], d[6], d[7] = a20, a21, a22, a23, a24, a25, a26, a27
    d[8], d[9], d[10], d[11], d[12], d[13], d[14], d[15] = a28, a29, a2a, a2b, a2c, a2d, a2e, a2f
    d = dst[row + 3, y, d0:d0 + 16]
    d[0], d[1], d[2], d[3], d[4], d[5], d[6], d[7] = a30, a31, a32, a33, a34, a35, a36, a37
    d[8], d[9], d[10], d[11], d[12], d[13], d[14], d[15] = a38, a39, a3a, a3b, a3c, a3d, a3e, a3f



@njit(nogil=True, cache=True, fastmath={"contract"}, inline="always")
def _fma_block32(x, offsets, weights, t0, init, dst, row, y, d0):
    """_fma_block for j < 32: each row's 32 sums in two zmm registers where the target has 512-bit vectors (8
    accumulators, as _fma_block has in ymm on AVX2). _fma_block's 4 zmm accumulators there wait on the FMA latency:
    in isolation (4 x 1024 outputs over 144 taps, 1 thread, Zen 5) 4x16 131 GFLOP/s, 4x32 201, 8x16 185."""
    i0, i1, i2, i3 = init[0], init[1], init[2], init[3]
    a000 = a001 = a002 = a003 = a004 = a005 = a006 = a007 = a008 = a009 = a00a = a00b = a00c = a00d = a00e = a00f = i0
    a010 = a011 = a012 = a013 = a014 = a015 = a016 = a017 = a018 = a019 = a01a = a01b = a01c = a01d = a01e = a01f = i0
    a100 = a101 = a102 = a103 = a104 = a105 = a106 = a107 = a108 = a109 = a10a = a10b = a10c = a10d = a10e = a10f = i1
    a110 = a111 = a112 = a113 = a114 = a115 = a116 = a117 = a118 = a119 = a11a = a11b = a11c = a11d = a11e = a11f = i1
    a200 = a201 = a202 = a203 = a204 = a205 = a206 = a207 = a208 = a209 = a20a = a20b = a20c = a20d = a20e = a20f = i2
    a210 = a211 = a212 = a213 = a214 = a215 = a216 = a217 = a218 = a219 = a21a = a21b = a21c = a21d = a21e = a21f = i2
    a300 = a301 = a302 = a303 = a304 = a305 = a306 = a307 = a308 = a309 = a30a = a30b = a30c = a30d = a30e = a30f = i3
    a310 = a311 = a312 = a313 = a314 = a315 = a316 = a317 = a318 = a319 = a31a = a31b = a31c = a31d = a31e = a31f = i3
    t0 = np.uint64(t0)
    for k in range(offsets.shape[0]):
        o = offsets[k] + t0  # uint64 + uint64: no wraparound test on the reads
        x00, x01, x02, x03 = x[o], x[o + _U[1]], x[o + _U[2]], x[o + _U[3]]
        x04, x05, x06, x07 = x[o + _U[4]], x[o + _U[5]], x[o + _U[6]], x[o + _U[7]]
        x08, x09, x0a, x0b = x[o + _U[8]], x[o + _U[9]], x[o + _U[10]], x[o + _U[11]]
        x0c, x0d, x0e, x0f = x[o + _U[12]], x[o + _U[13]], x[o + _U[14]], x[o + _U[15]]
        x10, x11, x12, x13 = x[o + _U[16]], x[o + _U[17]], x[o + _U[18]], x[o + _U[19]]
        x14, x15, x16, x17 = x[o + _U[20]], x[o + _U[21]], x[o + _U[22]], x[o + _U[23]]
        x18, x19, x1a, x1b = x[o + _U[24]], x[o + _U[25]], x[o + _U[26]], x[o + _U[27]]
        x1c, x1d, x1e, x1f = x[o + _U[28]], x[o + _U[29]], x[o + _U[30]], x[o + _U[31]]
        w0, w1, w2, w3 = weights[4 * k], weights[4 * k + 1], weights[4 * k + 2], weights[4 * k + 3]
        a000, a001, a002, a003 = a000 + w0 * x00, a001 + w0 * x01, a002 + w0 * x02, a003 + w0 * x03
        a004, a005, a006, a007 = a004 + w0 * x04, a005 + w0 * x05, a006 + w0 * x06, a007 + w0 * x07
        a008, a009, a00a, a00b = a008 + w0 * x08, a009 + w0 * x09, a00a + w0 * x0a, a00b + w0 * x0b
        a00c, a00d, a00e, a00f = a00c + w0 * x0c, a00d + w0 * x0d, a00e + w0 * x0e, a00f + w0 * x0f
        a010, a011, a012, a013 = a010 + w0 * x10, a011 + w0 * x11, a012 + w0 * x12, a013 + w0 * x13
        a014, a015, a016, a017 = a014 + w0 * x14, a015 + w0 * x15, a016 + w0 * x16, a017 + w0 * x17
        a018, a019, a01a, a01b = a018 + w0 * x18, a019 + w0 * x19, a01a + w0 * x1a, a01b + w0 * x1b
        a01c, a01d, a01e, a01f = a01c + w0 * x1c, a01d + w0 * x1d, a01e + w0 * x1e, a01f + w0 * x1f
        a100, a101, a102, a103 = a100 + w1 * x00, a101 + w1 * x01, a102 + w1 * x02, a103 + w1 * x03
        a104, a105, a106, a107 = a104 + w1 * x04, a105 + w1 * x05, a106 + w1 * x06, a107 + w1 * x07
        a108, a109, a10a, a10b = a108 + w1 * x08, a109 + w1 * x09, a10a + w1 * x0a, a10b + w1 * x0b
        a10c, a10d, a10e, a10f = a10c + w1 * x0c, a10d + w1 * x0d, a10e + w1 * x0e, a10f + w1 * x0f
        a110, a111, a112, a113 = a110 + w1 * x10, a111 + w1 * x11, a112 + w1 * x12, a113 + w1 * x13
        a114, a115, a116, a117 = a114 + w1 * x14, a115 + w1 * x15, a116 + w1 * x16, a117 + w1 * x17
        a118, a119, a11a, a11b = a118 + w1 * x18, a119 + w1 * x19, a11a + w1 * x1a, a11b + w1 * x1b
        a11c, a11d, a11e, a11f = a11c + w1 * x1c, a11d + w1 * x1d, a11e + w1 * x1e, a11f + w1 * x1f
        a200, a201, a202, a203 = a200 + w2 * x00, a201 + w2 * x01, a202 + w2 * x02, a203 + w2 * x03
        a204, a205, a206, a207 = a204 + w2 * x04, a205 + w2 * x05, a206 + w2 * x06, a207 + w2 * x07
        a208, a209, a20a, a20b = a208 + w2 * x08, a209 + w2 * x09, a20a + w2 * x0a, a20b + w2 * x0b
        a20c, a20d, a20e, a20f = a20c + w2 * x0c, a20d + w2 * x0d, a20e + w2 * x0e, a20f + w2 * x0f
        a210, a211, a212, a213 = a210 + w2 * x10, a211 + w2 * x11, a212 + w2 * x12, a213 + w2 * x13
        a214, a215, a216, a217 = a214 + w2 * x14, a215 + w2 * x15, a216 + w2 * x16, a217 + w2 * x17
        a218, a219, a21a, a21b = a218 + w2 * x18, a219 + w2 * x19, a21a + w2 * x1a, a21b + w2 * x1b
        a21c, a21d, a21e, a21f = a21c + w2 * x1c, a21d + w2 * x1d, a21e + w2 * x1e, a21f + w2 * x1f
        a300, a301, a302, a303 = a300 + w3 * x00, a301 + w3 * x01, a302 + w3 * x02, a303 + w3 * x03
        a304, a305, a306, a307 = a304 + w3 * x04, a305 + w3 * x05, a306 + w3 * x06, a307 + w3 * x07
        a308, a309, a30a, a30b = a308 + w3 * x08, a309 + w3 * x09, a30a + w3 * x0a, a30b + w3 * x0b
        a30c, a30d, a30e, a30f = a30c + w3 * x0c, a30d + w3 * x0d, a30e + w3 * x0e, a30f + w3 * x0f
        a310, a311, a312, a313 = a310 + w3 * x10, a311 + w3 * x11, a312 + w3 * x12, a313 + w3 * x13
        a314, a315, a316, a317 = a314 + w3 * x14, a315 + w3 * x15, a316 + w3 * x16, a317 + w3 * x17
        a318, a319, a31a, a31b = a318 + w3 * x18, a319 + w3 * x19, a31a + w3 * x1a, a31b + w3 * x1b
        a31c, a31d, a31e, a31f = a31c + w3 * x1c, a31d + w3 * x1d, a31e + w3 * x1e, a31f + w3 * x1f
    d = dst[row + 0, y, d0:d0 + 32]
    d[0], d[1], d[2], d[3], d[4], d[5], d[6], d[7] = a000, a001, a002, a003, a004, a005, a006, a007
    d[8], d[9], d[10], d[11], d[12], d[13], d[14], d[15] = a008, a009, a00a, a00b, a00c, a00d, a00e, a00f
    d[16], d[17], d[18], d[19], d[20], d[21], d[22], d[23] = a010, a011, a012, a013, a014, a015, a016, a017
    d[24], d[25], d[26], d[27], d[28], d[29], d[30], d[31] = a018, a019, a01a, a01b, a01c, a01d, a01e, a01f
    d = dst[row + 1, y, d0:d0 + 32]
    d[0], d[1], d[2], d[3], d[4], d[5], d[6], d[7] = a100, a101, a102, a103, a104, a105, a106, a107
    d[8], d[9], d[10], d[11], d[12], d[13], d[14], d[15] = a108, a109, a10a, a10b, a10c, a10d, a10e, a10f
    d[16], d[17], d[18], d[19], d[20], d[21], d[22], d[23] = a110, a111, a112, a113, a114, a115, a116, a117
    d[24], d[25], d[26], d[27], d[28], d[29], d[30], d[31] = a118, a119, a11a, a11b, a11c, a11d, a11e, a11f
    d = dst[row + 2, y, d0:d0 + 32]
    d[0], d[1], d[2], d[3], d[4], d[5], d[6], d[7] = a200, a201, a202, a203, a204, a205, a206, a207
    d[8], d[9], d[10], d[11], d[12], d[13], d[14], d[15] = a208, a209, a20a, a20b, a20c, a20d, a20e, a20f
    d[16], d[17], d[18], d[19], d[20], d[21], d[22], d[23] = a210, a211, a212, a213, a214, a215, a216, a217
    d[24], d[25], d[26], d[27], d[28], d[29], d[30], d[31] = a218, a219, a21a, a21b, a21c, a21d, a21e, a21f
    d = dst[row + 3, y, d0:d0 + 32]
    d[0], d[1], d[2], d[3], d[4], d[5], d[6], d[7] = a300, a301, a302, a303, a304, a305, a306, a307
    d[8], d[9], d[10], d[11], d[12], d[13], d[14], d[15] = a308, a309, a30a, a30b, a30c, a30d, a30e, a30f
    d[16], d[17], d[18], d[19], d[20], d[21], d[22], d[23] = a310, a311, a312, a313, a314, a315, a316, a317
    d[24], d[25], d[26], d[27], d[28], d[29], d[30], d[31] = a318, a319, a31a, a31b, a31c, a31d, a31e, a31f


# The blocked kernels below compute runs of _RUN output pixels with _run_block; _blocked_kernels compiles them
# again for runs of 32 (_fma_block32).
_RUN = 16
_run_block = _fma_block


@njit(nogil=True, cache=True, fastmath={"contract"}, inline="always")
def _blocked_sums(x, offs, packed, init, pitch, in_rows, blocks_outer, b0, b1, out, n):
    """Blocks b0..b1-1 of _tap_sum_blocked for image n, whose input (one group's, or the whole image's) is the
    flat x read at tap offsets offs."""
    out_h, out_w = out.shape[2], out.shape[3]
    span = (out_h - 1) * pitch + out_w
    if in_rows and blocks_outer:
        for b in range(b0, b1):
            for y in range(out_h):
                for first in range(0, out_w, _RUN):
                    x0 = min(first, out_w - _RUN)
                    _run_block(x, offs, packed[b], y * pitch + x0, init[4 * b:4 * b + 4], out[n], 4 * b, y, x0)
    elif in_rows:
        for y in range(out_h):
            for first in range(0, out_w, _RUN):
                x0 = min(first, out_w - _RUN)
                for b in range(b0, b1):
                    _run_block(x, offs, packed[b], y * pitch + x0, init[4 * b:4 * b + 4], out[n], 4 * b, y, x0)
    else:
        wide = np.empty((4 * (b1 - b0), 1, span), out.dtype)
        for first in range(0, span, _RUN):
            t0 = min(first, span - _RUN)
            for b in range(b0, b1):
                _run_block(x, offs, packed[b], t0, init[4 * b:4 * b + 4], wide, 4 * (b - b0), 0, t0)
        for r in range(4 * (b1 - b0)):
            for y in range(out_h):
                out[n, 4 * b0 + r, y, :] = wide[r, 0, y * pitch:y * pitch + out_w]


@njit(parallel=True, nogil=True, cache=True, fastmath={"contract"})
def _tap_sum_blocked(src, offsets, packed, init, pitch, in_rows, blocks_outer, chunk, out):
    """_tap_sum's sums, 4 rows x _RUN output pixels at a time held in registers (_run_block), for Q/G a multiple of
    4 and a wide plane of at least _RUN pixels. packed (Q/4, T*4): weights rows 4b..4b+3, tap-major; offsets
    (G, T) uint64.

    One iteration computes `chunk` 4-row blocks of a group for one image. With in_rows, each output row (at
    least _RUN wide) is computed in place in runs of _RUN, the last one overlapping the one before it (it recomputes
    the same sums); with blocks_outer one block's whole planes after another, so that each block writes 4 output
    planes in order rather than 4 * chunk at once, otherwise every block at one run before the next, so that the
    input the run reads stays in L1 across the blocks (see _BLOCKS_OUTER_MAX_BYTES). Without in_rows the wide
    plane is computed through a buffer, keeping the x < out_w columns, every block at one run of pixels before
    the next (block after block measured 3-9% slower there).
    """
    n_groups = offsets.shape[0]
    per_group = packed.shape[0] // n_groups
    chunks = -(-per_group // chunk)
    for task in prange(src.shape[0] * n_groups * chunks):
        n = task // (n_groups * chunks)
        g = (task // chunks) % n_groups
        b0 = g * per_group + (task % chunks) * chunk
        b1 = min(b0 + chunk, (g + 1) * per_group)
        _blocked_sums(src[n], offsets[g], packed, init, pitch, in_rows, blocks_outer, b0, b1, out, n)
    return out


@njit(nogil=True, cache=True)
def _group_phases(x, flat, sh, sw, ph, pw, hq, wq):
    """flat[((c*sh + a)*sw + b)*hq*wq + u*wq + v] = x[c] zero-padded at pixel (u*sh + a, v*sw + b): the stride
    phases of _DirectLayout for the channels of x (C, H, W); the rest of flat, zeros. Zeroed whole, then each
    input row scattered to its phases' rows by index (row by row through views, or phase by phase over the
    input, took 1-2x longer on resnext50's stride-2 layers)."""
    cin, height, width = x.shape
    plane = hq * wq
    flat[:] = 0
    for c in range(cin):
        for iy in range(height):
            a, u = (iy + ph) % sh, (iy + ph) // sh
            for b in range(sw):
                o = ((c * sh + a) * sw + b) * plane + u * wq
                ix0 = (b - pw) % sw  # the first column of phase b
                v = (ix0 + pw) // sw
                if sw == 1:  # a whole row: one contiguous copy
                    flat[o + v:o + v + width] = x[c, iy]
                    continue
                for ix in range(ix0, width, sw):
                    flat[o + v] = x[c, iy, ix]
                    v += 1


@njit(parallel=True, nogil=True, cache=True, fastmath={"contract"})
def _tap_sum_blocked_phases(x, offsets, packed, init, sh, sw, ph, pw, hq, wq, in_rows, out):
    """_tap_sum_blocked straight from x (N, Cin, H, W), one (image, group) per iteration: it
    first splits the image's group of input channels into stride phases in a scratch of its own (_group_phases;
    group 0's tap offsets are then every group's), which the group's blocks then read from cache, one block's
    planes after another.
    The whole batch's phases, split beforehand, are 4x the plane of a stride-2 conv's output per channel; read
    back from memory by the tap sums, they took ~3x the time of a stride-1 conv with as many multiply-adds, and
    the split as long again (resnext50's 3x3 s2 grouped convs, 1 thread: 256 channels at 56x56 ~80 -> 19 ms; its
    7x7 s2 stem, 3 channels of 224x224 per task, 53 -> 48 ms)."""
    n_groups = offsets.shape[0]
    cin_g = x.shape[1] // n_groups
    per_group = packed.shape[0] // n_groups
    span = (out.shape[2] - 1) * wq + out.shape[3]
    offs = offsets[0]
    for task in prange(x.shape[0] * n_groups):
        n = task // n_groups
        g = task % n_groups
        flat = np.empty(cin_g * sh * sw * hq * wq + span, x.dtype)
        _group_phases(x[n, g * cin_g:(g + 1) * cin_g], flat, sh, sw, ph, pw, hq, wq)
        _blocked_sums(flat, offs, packed, init, wq, in_rows, True, g * per_group, (g + 1) * per_group, out, n)
    return out

# A forward of fewer multiply-adds than this runs on the calling thread. Waking the pool costs more than the second
# core saves there: the gaps between a model's convs (its BN, ReLU and Python in between) are long enough for
# the pool's threads to fall asleep, so each parallel region of a small conv pays their wake-up, and on a busy
# host waits for a descheduled thread. resnet20 at batch 1 (2.4M multiply-adds per 3x3 conv, ~0.12 ms on one
# core) ran 1.0-1.2x PyTorch's time single-threaded but 1.5x with 2 threads (bench, quiet host); with these
# twins, 2 threads, best of 40 interleaved in one process (load 2.5): 6.1 ms vs 17.6 on the pool, PyTorch 9.0.
_SERIAL_BELOW_MACS = 1 << 22


def _runs_serially(x_shape, w_shape, out_shape):
    """Whether a forward of x (N, Cin, H, W) with w (Cout, Cin/g, kh, kw) into out (N, Cout, Ho, Wo) is small
    enough for one thread (_SERIAL_BELOW_MACS)."""
    return out_shape[0] * out_shape[1] * out_shape[2] * out_shape[3] * w_shape[1] * w_shape[2] * w_shape[3] \
        < _SERIAL_BELOW_MACS


def _on_threads(kernel, serial):
    """`kernel`, or if `serial` its twin compiled without `parallel` (the same loops on the calling thread, so
    the same results)."""
    return serial_twin(kernel) if serial else kernel


# The blocked tap sum's weights per iteration (chunk x T x 4 floats) are kept to about this many bytes, so that
# in the wide-plane mode, where all of an iteration's blocks take each run of pixels in turn, they and the input
# window of those pixels share L1; and there are at least _MIN_TASKS iterations to share out.
_CHUNK_WEIGHT_BYTES = 16384
_MIN_TASKS = 8
# In-row blocked tap sums take one block's whole planes after another when an image's input (per group) is at
# most this many bytes, so that it stays in L2 while every block re-reads it; larger inputs go row by row, every
# block at each run of pixels. Forward, 1 thread, block-outer / row-outer time (load ~2.5): 64x1x28x28 -> 32
# k5 0.88, 32x3x32x32 -> 64 k3 0.80, 16x3x96x96 -> 32 k3 0.52, 64x16x32x32 -> 16 k3 0.97, 32x32x16x16 -> 64 k5
# 0.97, 4x3x224x224 -> 64 k7s2 0.86 (635 KB of stride phases: over the limit, a gain given up); but 8x16x112x112
# -> 16 k3 (832 KB) 1.15.
_BLOCKS_OUTER_MAX_BYTES = 1 << 18


def _blocks_per_task(n_img, packed_shape, n_groups):
    blocks, block_weights = packed_shape
    per_group = blocks // n_groups
    fit = max(1, _CHUNK_WEIGHT_BYTES // (block_weights * 4))
    spread = max(1, n_img * n_groups * per_group // _MIN_TASKS)
    return min(per_group, fit, spread)


# Pixels per row of a register block: two vectors of the compile target, 16 float32 on AVX2, 32 where it has
# 512-bit vectors (vector_width.py; _fma_block32).
_VECTOR_RUN = 32 if full_width_target() else 16
_RUN_BLOCKS = {16: _fma_block, 32: _fma_block32}


@functools.cache
def _blocked_kernels(run):
    """(_tap_sum_blocked, _tap_sum_blocked_phases, _tap_planes_grad_input) computing runs of `run` pixels."""
    if run == _RUN:
        return _tap_sum_blocked, _tap_sum_blocked_phases, _tap_planes_grad_input
    suffix, names = f"_run{run}", {"_RUN": run, "_run_block": _RUN_BLOCKS[run]}
    sums = rebound(_blocked_sums, suffix, **names)
    return (rebound(_tap_sum_blocked, suffix, _blocked_sums=sums),
            rebound(_tap_sum_blocked_phases, suffix, _blocked_sums=sums),
            rebound(_tap_planes_grad_input, suffix, **names))


# With 32-pixel runs, output rows of 16 to 31 pixels go through the wide plane's buffer (as 16-pixel runs do under
# 16), whose copy pays only over long reductions; shorter ones keep 16-pixel runs in place. Forward, 1 thread, best
# of 11 interleaved, 16 in rows | 32 through the buffer (ms, load ~4): 28x28 outputs 64x1 -> 32 k5 (25 taps)
# 0.74 | 0.85, 64x3 -> 32 k3 (27) 0.89 | 0.98; 64x8 -> 16 k3 (72) 1.28 | 1.17, 64x16x24x24 -> 16 k3 (144) 2.26 |
# 1.52; 64x32x16x16 -> 32 k3 (288) 3.01 | 2.38.
_WIDE_RUN_MIN_TAPS = 48


def _run_and_rows(out_h, out_w, span, taps):
    """(run, in_rows) of the blocked tap sums of `taps` taps for an (out_h, out_w) output in a wide plane of `span`
    pixels, or None where it is under 16 pixels. Rows are computed in place where that wastes no more lanes than the
    wide plane (whose pitch - out_w columns are dropped); runs are _VECTOR_RUN pixels where the plane has as many,
    but 16 where only they fit the rows in place and the reduction is short (_WIDE_RUN_MIN_TAPS)."""
    def fit_rows(run):
        return out_w >= run and out_h * -(-out_w // run) <= -(-span // run)
    if span < 16:
        return None
    if span < _VECTOR_RUN or (not fit_rows(_VECTOR_RUN) and fit_rows(16) and taps < _WIDE_RUN_MIN_TAPS):
        return 16, fit_rows(16)
    return _VECTOR_RUN, fit_rows(_VECTOR_RUN)


def _blocking(offsets, weights, pitch, out, taps):
    """(offsets as uint64, packed weights, run, in_rows) for the register-blocked tap sums (_run_and_rows), or None
    where the shape does not allow them (Q/G not a multiple of 4, or a wide plane under 16 pixels). `taps`: how
    many of the tap columns are real, not _pad_taps's padding."""
    out_h, out_w = out.shape[2], out.shape[3]
    taps = offsets.shape[1] if taps is None else taps
    run_and_rows = _run_and_rows(out_h, out_w, (out_h - 1) * pitch + out_w, taps)
    rows = weights.shape[0] // offsets.shape[0]
    if rows % 4 or run_and_rows is None:
        return None
    if taps < offsets.shape[1]:
        # The blocked kernel takes taps one at a time: padding taps would only cost (a 5x5 kernel on one channel
        # pads its 25 taps to 28).
        offsets, weights = offsets[:, :taps], weights[:, :taps]
    offsets = offsets.astype(np.uint64)  # (a copy, C-contiguous)
    packed = np.ascontiguousarray(weights.reshape(weights.shape[0] // 4, 4, -1).transpose(0, 2, 1)).reshape(
        weights.shape[0] // 4, -1)
    return offsets, packed, *run_and_rows


def _tap_sums(src, offsets, weights, init, pitch, out, serial=False, taps=None):
    """_tap_sum(src, offsets, weights, init, pitch, out), register-blocked where the shape allows it; on the
    calling thread if `serial`. `taps`: as for _blocking."""
    blocking = _blocking(offsets, weights, pitch, out, taps)
    if blocking is None:
        return _on_threads(_tap_sum, serial)(src, offsets, weights, init, pitch, out)
    offsets, packed, run, in_rows = blocking
    blocks_outer = src.shape[1] * src.itemsize // offsets.shape[0] <= _BLOCKS_OUTER_MAX_BYTES
    return with_slp(_on_threads(_blocked_kernels(run)[0], serial), src, offsets, packed, init, pitch, in_rows,
                    blocks_outer, _blocks_per_task(src.shape[0], packed.shape, offsets.shape[0]), out)


def _pad_taps(taps, fill):
    """A (rows, T) tap table padded with `fill` to a multiple of _TAPS_PER_PASS columns, contiguous.
    Padding taps get weight 0 and read a run of zeros, so they add exactly nothing (even next to an inf)."""
    padded = np.full((taps.shape[0], taps.shape[1] + -taps.shape[1] % _TAPS_PER_PASS), fill, taps.dtype)
    padded[:, :taps.shape[1]] = taps
    return padded


@njit(parallel=True, nogil=True, cache=True)
def _embed(src, dst, first, chan_pitch, length, start, pitch, row_step, col_step):
    """dst[n, first + c*chan_pitch:][:length] (a flat region) = zeros, except its element
    start + y*row_step*pitch + x*col_step = src[n, c, y, x]: the planes padded, spread out or re-pitched into the
    layouts the direct kernels read. One (image, channel) region per iteration; rows copied whole (col_step 1)
    are not zeroed first, only the runs between them. dst (N, L) is C-contiguous and each region a 1-D slice of
    it, so that the copies compile to vector moves (a strided view's would not)."""
    n_img, chans, height, width = src.shape
    zero = dst.dtype.type(0)
    for task in prange(n_img * chans):
        n = task // chans
        c = task % chans
        region = dst[n, first + c * chan_pitch:first + c * chan_pitch + length]
        if col_step != 1:
            region[:] = zero
        filled = 0  # region[:filled] is written
        for y in range(height):
            row = src[n, c, y]
            base = start + y * row_step * pitch
            if col_step == 1:
                region[filled:base] = zero
                region[base:base + width] = row
                filled = base + width
            else:
                for t in range(width):
                    region[base + t * col_step] = row[t]
        if col_step == 1:
            region[filled:] = zero


@functools.lru_cache(maxsize=256)
def _direct_layout(x_shape, w_shape, stride, padding, dilation, groups):
    """The _DirectLayout of a problem, built once per shape (its tap tables are read-only)."""
    return _DirectLayout(x_shape, w_shape, stride, padding, dilation, groups)


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
        # Group 0's taps read from one group's phases (_group_phases), their padding taps from the zeros after them.
        self.group_offsets = _pad_taps(self.offsets[:1, :cin_g * kh * kw], cin_g * sh * sw * plane)[0]

    def split(self, x, stride, padding, serial=False):
        """x (N, C, H, W) as flat images of zero-padded stride phases, (N, zeros_at + span): a run of
        zeros follows the phases for padding taps to read (on the calling thread if `serial`)."""
        n_img, cin, height, width = x.shape
        sh, sw = stride
        flat = np.empty((n_img, self.zeros_at + self.span), x.dtype)
        flat[:, self.zeros_at:] = 0
        plane = self.hq * self.wq
        for a in range(sh):
            for b in range(sw):
                # Rows r of x with (r + padding) % stride == a land in phase row (r + padding) // stride.
                r0, c0 = (a - padding[0]) % sh, (b - padding[1]) % sw
                start = (r0 + padding[0]) // sh * self.wq + (c0 + padding[1]) // sw
                src = x if sh == sw == 1 else x[:, :, r0::sh, c0::sw]  # (a C-contiguous source copies faster)
                _on_threads(_embed, serial)(src, flat, (a * sw + b) * plane, sh * sw * plane, plane, start, self.wq, 1, 1)
        return flat


def conv2d_forward_direct(x, w, b, stride, padding, dilation, groups):
    """Direct convolution. x (N, Cin, H, W), w (Cout, Cin/groups, kh, kw), b (Cout,) or None;
    stride, padding, dilation are (h, w) pairs. Returns (N, Cout, Ho, Wo)."""
    x = np.ascontiguousarray(x)
    n_img, cout = x.shape[0], w.shape[0]
    layout = _direct_layout(x.shape, w.shape, tuple(stride), tuple(padding), tuple(dilation), groups)
    weights = _pad_taps(np.asarray(w).reshape(cout, -1), 0)
    init = np.zeros(cout, x.dtype) if b is None else np.ascontiguousarray(b, x.dtype)
    out = np.empty((n_img, cout, layout.out_h, layout.out_w), x.dtype)
    serial = _runs_serially(x.shape, w.shape, out.shape)
    blocking = None
    if serial or n_img * groups >= _MIN_TASKS:
        blocking = _blocking(layout.offsets, weights, layout.wq, out, w[0].size)
    if blocking is not None:
        # Each task splits its own image's group into stride phases and takes all of the group's blocks, one after
        # another (_tap_sum_blocked_phases), so each block's weights alone need to stay in L1. With fewer (image,
        # group) pairs than _MIN_TASKS the tasks would have to split the same phases again, as many times as the
        # group's blocks are shared out (resnet18's stem on one image: 8 times): the phases are split once instead.
        # Stride 1 too: its one phase, the padded image, then stays in L2 instead of a round trip through memory
        # for the whole batch (forward, 1 thread, per-task / batch split, load ~4: 64x16x32x32 -> 16 k3 0.79,
        # 64x32x16x16 -> 32 0.80, 8x16x112x112 -> 16 0.57-0.75, 16x12x28x28 -> 12 0.95-1.10, 16x8x56x56 -> 8
        # 1.02-1.03).
        offsets, packed, run, in_rows = blocking
        return with_slp(_on_threads(_blocked_kernels(run)[1], serial), x, offsets, packed, init, *stride, *padding,
                         layout.hq, layout.wq, in_rows, out)
    return _tap_sums(layout.split(x, stride, padding, serial), layout.offsets, weights, init, layout.wq, out, serial,
                     w[0].size)


@functools.cache
def _weight_grad_block():
    """Output-channel rows per block of the direct weight gradient: 4 (16 vector sums, _quad_tap_dots) where the
    kernels compile for AVX-512's 32 vector registers, 2 (_pair_tap_dots) for AVX2's 16, where 16 sums spilled.
    1 thread, best of 9 interleaved against fb05ebb's kernel (pairs, the whole batch's phases and wide planes built
    beforehand), in ms: compiled for znver5, 4 rows: 64x1x28x28 -> 32 k5 1.41 -> 0.98, 32x3x32x32 -> 64 k3 2.17 ->
    1.34, 64x6x14x14 -> 16 k5 0.69 -> 0.57, 128x16x32x32 -> 16 k3 6.87 -> 5.63; compiled for AVX2 (znver3 without
    AVX-512), 4 rows: 2.15 -> 2.19, 2.58 -> 2.79, 0.76 -> 0.85, 11.8 -> 13.0; 2 rows: 1.93 -> 1.51, 2.35 -> 2.22,
    0.76 -> 0.65, 9.19 -> 8.67."""
    return 4 if "+avx512f" in compile_features() else 2


def _weight_grad_chunks(n_img, groups, partial_size):
    """Batch chunks for the direct weight gradient: with the groups, enough parallel iterations to keep the cores
    busy (_MIN_TASKS), but no more than keep the chunks' partial sums (partial_size elements each) under
    _MAX_PARTIAL_ELEMENTS, unless that leaves fewer than two. It depends only on shapes, so the summation order (and
    the result) never varies."""
    return max(1, min(n_img, -(-_MIN_TASKS // groups), max(2, _MAX_PARTIAL_ELEMENTS // partial_size)))


def _bias_grad(grad_out):
    """Sum of grad_out (N, C, Ho, Wo) over batch and positions: planes first (contiguous), then the batch."""
    return grad_out.sum(axis=(2, 3)).sum(axis=0)


@functools.lru_cache(maxsize=256)
def _spread_layout(x_shape, w_shape, stride, padding, dilation, groups):
    """(front, length, zeros_at, offsets) of _direct_grad_input for one problem shape: the output gradient of
    channel o is spread at o*length + front onto a padded-input grid, and offsets[g, (o, i, j)] is where tap
    (i, j) of group g's output channel o starts reading it (zeros_at: a run of zeros for padding taps)."""
    cin, height, width = x_shape[1:]
    cout, cin_g, kh, kw = w_shape
    cout_g = cout // groups
    hp, wp = height + 2 * padding[0], width + 2 * padding[1]
    tap = ((np.arange(kh) * dilation[0] * wp)[:, None] + np.arange(kw) * dilation[1]).ravel()
    front = int(tap[-1])
    length = front + hp * wp
    zeros_at = cout * length
    origin = padding[0] * wp + padding[1]
    channel = (np.arange(groups) * cout_g)[:, None] + np.arange(cout_g)
    offsets = _pad_taps((channel[:, :, None] * length + (front + origin) - tap).reshape(groups, -1), zeros_at)
    return front, length, zeros_at, offsets


def _spread_grad(grad_out, x_shape, w_shape, stride, padding, dilation, groups):
    """(spread, offsets): grad_out spread onto zero-padded input grids as _spread_layout describes, and where
    its taps start."""
    n_img, _, height, width = x_shape
    wp = width + 2 * padding[1]
    front, length, zeros_at, offsets = _spread_layout(tuple(x_shape), tuple(w_shape), tuple(stride),
                                                      tuple(padding), tuple(dilation), groups)
    spread = np.empty((n_img, zeros_at + (height - 1) * wp + width), grad_out.dtype)
    spread[:, zeros_at:] = 0
    _embed(grad_out, spread, 0, length, length, front, wp, *stride)
    return spread, offsets


def _direct_grad_input(spread, offsets, w, x_shape, padding, groups):
    """Transposed convolution as a gather: each padded-input position sums weight * output gradient over
    the taps that reach it. Reading the spread gradient (zeros between strided outputs, after `front`
    zeros), every tap starts at a fixed non-negative offset: a _tap_sum."""
    cout, cin_g, kh, kw = w.shape
    cin = x_shape[1]
    weights = _pad_taps(w.reshape(groups, cout // groups, cin_g, kh * kw).transpose(0, 2, 1, 3).reshape(cin, -1), 0)
    return _tap_sums(spread, offsets, weights, np.zeros(cin, spread.dtype), x_shape[3] + 2 * padding[1],
                    np.empty(x_shape, spread.dtype))


@njit(nogil=True, cache=True)
def _repitched(planes, pitch):
    """planes (C, H, W) as one flat run with the planes `pitch` apart (itself, flattened, for pitch H*W)."""
    size = planes.shape[1] * planes.shape[2]
    if pitch == size:
        return planes.reshape(-1)
    flat = np.empty(planes.shape[0] * pitch, planes.dtype)
    for c in range(planes.shape[0]):
        flat[c * pitch:c * pitch + size] = planes[c].reshape(-1)
    return flat


@njit(parallel=True, nogil=True, cache=True, fastmath={"contract"})
def _tap_planes_grad_input(grad_out, pitch, offsets, packed, kh, kw, sh, sw, ph, pw, dh, dw, grad_x):
    """grad_x (N, Cin, H, W) of a conv with few input channels per group: per image, the tap planes
    T[(c, i, j), p] = sum over the group's output channels q of w[q, c, i, j] * grad_out[n, q, p] (a 1x1 conv over
    the output plane, 4 taps x _RUN pixels at a time in registers, _run_block), then folded back onto the input
    (_col2im_image). offsets (G, Q/G) uint64: where output channel q's plane starts in the image's flat gradient
    with planes `pitch` apart (copied to that pitch where it differs from the plane's size);
    packed (G, K4/4, Q/G*4): the group's weights, 4 taps per block, K = Cin/G*kh*kw taps padded to K4 (a multiple
    of 4) with zero weights. One image per iteration."""
    n_img, cin = grad_x.shape[0], grad_x.shape[1]
    groups, blocks = packed.shape[0], packed.shape[1]
    cin_g = cin // groups
    out_h, out_w = grad_out.shape[2], grad_out.shape[3]
    size = out_h * out_w
    taps = cin_g * kh * kw
    zeros = np.zeros(4, grad_x.dtype)
    for n in prange(n_img):
        flat = _repitched(grad_out[n], pitch)
        planes = np.empty((4 * blocks, 1, size), grad_x.dtype)
        phases = _phase_planes(grad_x, sh, sw)
        for g in range(groups):
            for first in range(0, size, _RUN):
                p0 = min(first, size - _RUN)  # the last run overlaps the one before it (the same sums again)
                for b in range(blocks):
                    _run_block(flat, offsets[g], packed[g, b], p0, zeros, planes, 4 * b, 0, p0)
            _col2im_image(planes[:taps].reshape(taps, size), grad_x[n, g * cin_g:(g + 1) * cin_g], phases,
                          kh, kw, sh, sw, ph, pw, dh, dw, out_h, out_w)
    return grad_x


# Input channels per group not in fours (first layers' 1 or 3) would not fill the register-blocked kernel's
# blocks of 4 as rows of the flipped forward or of the spread gradient's tap sums; the tap planes
# (_tap_planes_grad_input) sum over the output channels instead, which pays for their fold from this many. Input
# gradient, 1 thread, best of 9 interleaved, flipped forward -> tap planes (ms): 64x1x28x28 -> 32 k5p2 1.97 ->
# 1.26, 32x3x32x32 -> 64 k3p1 2.22 -> 2.07, 64x6x14x14 -> 16 k5 0.85 -> 0.77; but 64x1x28x28 -> 6 k5p2 0.35 -> 0.41.
_TAP_PLANES_MIN_OUT_CHANNELS = 16


def _grad_input_tap_planes(grad_out, w, x_shape, stride, padding, dilation, groups):
    """The input gradient by _tap_planes_grad_input (on the calling thread for a conv as small as
    _SERIAL_BELOW_MACS)."""
    cout, cin_g, kh, kw = w.shape
    cout_g = cout // groups
    taps = cin_g * kh * kw
    weights = np.zeros((groups, cout_g, taps + -taps % 4), grad_out.dtype)
    weights[:, :, :taps] = w.reshape(groups, cout_g, taps)
    # packed[g, b, 4*q + r] = weights[g, q, 4*b + r]: block b's 4 taps, output channel after output channel.
    packed = np.ascontiguousarray(weights.reshape(groups, cout_g, -1, 4).transpose(0, 2, 1, 3)).reshape(
        groups, -1, cout_g * 4)
    size = grad_out.shape[2] * grad_out.shape[3]
    # Planes a multiple of 2 KB apart put a run of 16 pixels of every plane in the same few L1 sets, which then
    # miss on every tap block (32x3x32x32 -> 64 k3: 4 KB planes, 64 of them): such planes are re-pitched.
    pitch = size + 16 if size * grad_out.itemsize % 2048 == 0 else size
    offsets = ((np.arange(groups) * cout_g)[:, None] + np.arange(cout_g)).astype(np.uint64) * np.uint64(pitch)
    serial = _runs_serially(x_shape, w.shape, grad_out.shape)
    # Runs of 32 pixels where the plane has as many (input gradient, 1 thread, best of 15 interleaved, 16 -> 32:
    # 64x1x28x28 -> 32 k5p2 1.14 -> 0.99 ms, 32x3x32x32 -> 64 k3p1 1.91 -> 1.62, 64x6x14x14 -> 16 k5 0.74 -> 0.69).
    kernel = _blocked_kernels(_VECTOR_RUN if size >= _VECTOR_RUN else 16)[2]
    return with_slp(_on_threads(kernel, serial), grad_out, pitch, offsets, packed, kh, kw, *stride,
                    *padding, *dilation, np.empty(x_shape, grad_out.dtype))


def conv2d_backward_direct(grad_out, x, w, stride, padding, dilation, groups,
                           need_input, need_weight, need_bias):
    """Gradients of conv2d_forward_direct: (grad_x or None, grad_w or None, grad_b or None)."""
    grad_out = np.ascontiguousarray(grad_out, x.dtype)
    w = np.ascontiguousarray(w)
    n_img, cout = x.shape[0], w.shape[0]
    grad_x = grad_w = grad_b = None
    # The flipped kernel's padding: the input gradient of a stride-1 conv is the stride-1 conv of grad_out with
    # the flipped, transposed weight and this padding, where it is not negative (at most "full" padding).
    flip_padding = tuple(dilation[i] * (w.shape[2 + i] - 1) - padding[i] for i in range(2))
    if (need_input and w.shape[1] % 4 and cout // groups >= _TAP_PLANES_MIN_OUT_CHANNELS
            and grad_out.shape[2] * grad_out.shape[3] >= 16):
        grad_x = _grad_input_tap_planes(grad_out, w, x.shape, stride, padding, dilation, groups)
    elif need_input and tuple(stride) == (1, 1) and min(flip_padding) >= 0 and n_img * groups >= _MIN_TASKS:
        # As a forward, each task pads its own image's gradient (_tap_sum_blocked_phases) instead of spreading the
        # whole batch's first (64x16x32x32 -> 16 k3, 1 thread, load ~3.5: 4.8 vs 0.75 + 5.8 ms). Not for fewer
        # (image, group) pairs than _MIN_TASKS, which that forward would run on too few threads (or on one, as a
        # small forward): one image's backward took 1.11x the time of the spread gradient's (2 threads, load ~1).
        cin_g, kh, kw = w.shape[1:]
        flipped = np.ascontiguousarray(w.reshape(groups, cout // groups, cin_g, kh, kw).transpose(0, 2, 1, 3, 4)
                                       [..., ::-1, ::-1]).reshape(x.shape[1], cout // groups, kh, kw)
        grad_x = conv2d_forward_direct(grad_out, flipped, None, stride, flip_padding, dilation, groups)
    elif need_input:
        spread, offsets = _spread_grad(grad_out, x.shape, w.shape, stride, padding, dilation, groups)
        grad_x = _direct_grad_input(spread, offsets, w, x.shape, padding, groups)
    if need_weight:
        layout = _direct_layout(x.shape, w.shape, tuple(stride), tuple(padding), tuple(dilation), groups)
        n_chunks = _weight_grad_chunks(n_img, groups, cout * layout.group_offsets.shape[0])
        partial = np.empty((n_chunks, cout, layout.group_offsets.shape[0]), x.dtype)
        bias_partial = np.empty((n_chunks, cout if need_bias else 0), x.dtype)
        _tap_dot(np.ascontiguousarray(x), grad_out, groups, layout.group_offsets, *stride, *padding, layout.hq,
                 layout.wq, layout.span, _weight_grad_block(), partial, bias_partial)
        sums = partial[0]
        for chunk in range(1, n_chunks):
            sums += partial[chunk]
        grad_w = np.ascontiguousarray(sums[:, :w[0].size]).reshape(w.shape)
        if need_bias:
            grad_b = bias_partial[0]
            for chunk in range(1, n_chunks):
                grad_b += bias_partial[chunk]
    elif need_bias:
        grad_b = _bias_grad(grad_out)
    return grad_x, grad_w, grad_b


# ---------------------------------------------------------------------------------------------- im2col


@njit(nogil=True, cache=True)
def _inside_columns(col_shift, sw, width, out_w):
    """Output columns [lo, hi) whose input column x*sw + col_shift lies inside [0, width)."""
    lo = min(out_w, max(0, (sw - 1 - col_shift) // sw))
    hi = max(lo, min(out_w, (width - 1 - col_shift) // sw + 1))
    return lo, hi


@njit(nogil=True, cache=True)
def _im2col_image(x, cols, kh, kw, sh, sw, ph, pw, dh, dw, out_h, out_w):
    """cols (Cin*kh*kw, Ho*Wo): row (c, i, j), column (y, x) holds x[c, y*sh + i*dh - ph, x*sw + j*dw - pw]
    of one image x (Cin, H, W), zero outside it."""
    cin, height, width = x.shape
    zero = x.dtype.type(0)
    for c in range(cin):
        for i in range(kh):
            for j in range(kw):
                dst = cols[(c * kh + i) * kw + j]
                col_shift = j * dw - pw
                lo, hi = _inside_columns(col_shift, sw, width, out_w)
                start = lo * sw + col_shift  # >= 0: reads never wrap around
                for y in range(out_h):
                    base = y * out_w
                    src_y = y * sh + i * dh - ph
                    if src_y < 0 or src_y >= height:
                        for t in range(out_w):
                            dst[base + t] = zero
                        continue
                    src = x[c, src_y]
                    for t in range(lo):
                        dst[base + t] = zero
                    for t in range(hi - lo):
                        dst[base + lo + t] = src[start + t * sw]
                    for t in range(hi, out_w):
                        dst[base + t] = zero


@njit(nogil=True, cache=True)
def _tap_phase(shift, stride):
    """(phase, offset) with k*stride + shift == (k + offset)*stride + phase, 0 <= phase < stride."""
    return shift % stride, shift // stride


@njit(nogil=True, cache=True)
def _split_phases(x, phases):
    """phases[c, a, b, u, v] = x[c, u*sh + a, v*sw + b] (sh, sw = phases.shape[1:3]) of one image x (Cin, H, W):
    a strided conv's tap reads one such plane in contiguous runs."""
    sh, sw = phases.shape[1], phases.shape[2]
    for c in range(x.shape[0]):
        for a in range(sh):
            for b in range(sw):
                for u in range((x.shape[1] - a + sh - 1) // sh):
                    src = x[c, u * sh + a]
                    dst = phases[c, a, b, u]
                    for v in range((x.shape[2] - b + sw - 1) // sw):
                        dst[v] = src[v * sw + b]


@njit(nogil=True, cache=True)
def _merge_phases(phases, x):
    """Inverse of _split_phases: x[c, u*sh + a, v*sw + b] = phases[c, a, b, u, v]."""
    sh, sw = phases.shape[1], phases.shape[2]
    for c in range(x.shape[0]):
        for a in range(sh):
            for b in range(sw):
                for u in range((x.shape[1] - a + sh - 1) // sh):
                    src = phases[c, a, b, u]
                    dst = x[c, u * sh + a]
                    for v in range((x.shape[2] - b + sw - 1) // sw):
                        dst[v * sw + b] = src[v]


@njit(nogil=True, cache=True)
def _phase_planes(x, sh, sw):
    """Scratch for _split_phases of one image of x (N, Cin, H, W); empty for stride 1, which needs none."""
    if sh == 1 and sw == 1:
        return np.empty((0, 1, 1, 0, 0), x.dtype)
    return np.empty((x.shape[1], sh, sw, (x.shape[2] + sh - 1) // sh, (x.shape[3] + sw - 1) // sw), x.dtype)


@njit(nogil=True, cache=True)
def _im2col_phases(phases, cols, height, width, kh, kw, ph, pw, dh, dw, out_h, out_w):
    """_im2col_image of the image (Cin, height, width) split by _split_phases: every row of cols is a run of
    contiguous copies."""
    cin, sh, sw = phases.shape[0], phases.shape[1], phases.shape[2]
    zero = cols.dtype.type(0)
    for c in range(cin):
        for i in range(kh):
            a, row_offset = _tap_phase(i * dh - ph, sh)
            for j in range(kw):
                dst = cols[(c * kh + i) * kw + j]
                col_shift = j * dw - pw
                b, col_offset = _tap_phase(col_shift, sw)
                lo, hi = _inside_columns(col_shift, sw, width, out_w)
                for y in range(out_h):
                    base = y * out_w
                    src_y = y * sh + i * dh - ph
                    if src_y < 0 or src_y >= height:
                        for t in range(out_w):
                            dst[base + t] = zero
                        continue
                    # Row slices indexed from 0: Numba then sees no negative index to wrap around and
                    # vectorizes the copies (dst[base + t] indexing measured 1.1-1.3x slower).
                    src = phases[c, a, b, y + row_offset, lo + col_offset:hi + col_offset]
                    head = dst[base:base + lo]
                    for t in range(lo):
                        head[t] = zero
                    run = dst[base + lo:base + hi]
                    for t in range(hi - lo):
                        run[t] = src[t]
                    tail = dst[base + hi:base + out_w]
                    for t in range(out_w - hi):
                        tail[t] = zero


@njit(nogil=True, cache=True)
def _col2im_image(cols, grad_x, phases, kh, kw, sh, sw, ph, pw, dh, dw, out_h, out_w):
    """grad_x (Cin, H, W) = every entry of cols added back at the pixel _im2col_image copied it from, taps in
    a fixed order. A strided conv sums into the stride phases of grad_x (contiguous runs, scratch `phases`
    from _phase_planes) and interleaves them once at the end."""
    cin, height, width = grad_x.shape
    strided = sh > 1 or sw > 1
    if strided:
        phases[:] = 0
    else:
        grad_x[:] = 0
    for c in range(cin):
        for i in range(kh):
            a, row_offset = _tap_phase(i * dh - ph, sh)
            for j in range(kw):
                src = cols[(c * kh + i) * kw + j]
                col_shift = j * dw - pw
                b, col_offset = _tap_phase(col_shift, sw)
                lo, hi = _inside_columns(col_shift, sw, width, out_w)
                for y in range(out_h):
                    dst_y = y * sh + i * dh - ph
                    if dst_y < 0 or dst_y >= height:
                        continue
                    if strided:
                        dst = phases[c, a, b, y + row_offset, lo + col_offset:hi + col_offset]
                    else:
                        dst = grad_x[c, dst_y, lo + col_shift:hi + col_shift]
                    row = src[y * out_w + lo:y * out_w + hi]
                    for t in range(hi - lo):
                        dst[t] += row[t]
    if strided:
        _merge_phases(phases, grad_x)


@njit(nogil=True, cache=True)
def _unfold_batch(x, n0, n1, kh, kw, sh, sw, ph, pw, dh, dw, out_h, out_w):
    """Images n0..n1-1 of x unfolded side by side: (Cin*kh*kw, (n1-n0)*Ho*Wo). Strided convs gather from each
    image's stride phases (_split_phases), so that every copy is contiguous."""
    size = out_h * out_w
    cols = np.empty((x.shape[1] * kh * kw, (n1 - n0) * size), x.dtype)
    height, width = x.shape[2], x.shape[3]
    phases = _phase_planes(x, sh, sw)
    for n in range(n0, n1):
        block = cols[:, (n - n0) * size:(n - n0 + 1) * size]
        if sh > 1 or sw > 1:
            _split_phases(x[n], phases)
            _im2col_phases(phases, block, height, width, kh, kw, ph, pw, dh, dw, out_h, out_w)
        else:
            _im2col_image(x[n], block, kh, kw, sh, sw, ph, pw, dh, dw, out_h, out_w)
    return cols


@njit(parallel=True, nogil=True, cache=True)
def _im2col_forward(x, w_groups, bias, out, batch, kh, kw, sh, sw, ph, pw, dh, dw):
    """out (N, Cout, Ho, Wo): per batch of `batch` images, unfold them side by side and multiply each group's
    (Cout/g, K/g) weight rows by its block of the column matrix, then add the bias. Batches are independent:
    one per iteration."""
    n_img = x.shape[0]
    groups, cout_g, k_g = w_groups.shape
    out_h, out_w = out.shape[2], out.shape[3]
    size = out_h * out_w
    for first in prange(-(-n_img // batch)):
        n0 = first * batch
        n1 = min(n_img, n0 + batch)
        cols = _unfold_batch(x, n0, n1, kh, kw, sh, sw, ph, pw, dh, dw, out_h, out_w)
        for g in range(groups):
            product = np.dot(w_groups[g], cols[g * k_g:(g + 1) * k_g])
            for n in range(n0, n1):
                planes = out[n].reshape(groups * cout_g, size)
                for q in range(cout_g):
                    o = g * cout_g + q
                    row = product[q, (n - n0) * size:(n - n0 + 1) * size]
                    for t in range(size):
                        planes[o, t] = row[t] + bias[o]
    return out


@njit(parallel=True, nogil=True, cache=True)
def _pointwise_forward(x, w, bias, out, add_bias):
    """out[n] = w @ x[n] (+ bias), with x[n] as a (Cin, H*W) and out[n] as a (Cout, H*W) matrix: a 1x1 stride-1
    unpadded ungrouped conv needs no unfolding, and its GEMM can write the output planes in place (resnext50's
    1x1 convs, batch 8, 1 thread: 0.80-0.90x the time of _im2col_forward's copies in and out). One image per
    iteration."""
    cin, cout = x.shape[1], w.shape[0]
    size = out.shape[2] * out.shape[3]
    for n in prange(x.shape[0]):
        planes = out[n].reshape(cout, size)
        np.dot(w, x[n].reshape(cin, size), planes)
        if add_bias:
            for o in range(cout):
                b = bias[o]
                row = planes[o]
                for t in range(size):
                    row[t] += b
    return out


@njit(parallel=True, nogil=True, cache=True)
def _im2col_forward_rows(x, w_groups, bias, out, rows, kh, kw, sh, sw, ph, pw, dh, dw):
    """_im2col_forward's result for a few images, each shared out among the threads: its channels unfolded in
    parallel, then each group's GEMM cut into blocks of `rows` output channels, one per iteration, written
    straight into the output planes (each output element is still one GEMM's dot product over the whole
    reduction, whatever the cut)."""
    cin = x.shape[1]
    groups, cout_g, k_g = w_groups.shape
    out_h, out_w = out.shape[2], out.shape[3]
    size = out_h * out_w
    taps = kh * kw
    blocks = -(-cout_g // rows)
    cols = np.empty((cin * taps, size), x.dtype)
    for n in range(x.shape[0]):
        for c in prange(cin):
            _im2col_image(x[n, c:c + 1], cols[c * taps:(c + 1) * taps], kh, kw, sh, sw, ph, pw, dh, dw, out_h, out_w)
        planes = out[n].reshape(groups * cout_g, size)
        for task in prange(groups * blocks):
            g = task // blocks
            q0 = (task % blocks) * rows
            q1 = min(q0 + rows, cout_g)
            o0 = g * cout_g + q0
            dst = planes[o0:o0 + q1 - q0]
            np.dot(w_groups[g, q0:q1], cols[g * k_g:(g + 1) * k_g], dst)
            for q in range(q1 - q0):
                b = bias[o0 + q]
                for t in range(size):
                    dst[q, t] += b
    return out


@njit(parallel=True, nogil=True, cache=True)
def _im2col_backward(grad_out, x, w_groups_t, grad_x, grad_w_partial, batch, kh, kw, sh, sw, ph, pw, dh, dw,
                     need_input, need_weight):
    """Per batch of images: grad_x = col2im(Wᵀ @ G) and grad_w_partial[chunk] += G @ cols(x)ᵀ, where G holds the
    batch's output gradients side by side.

    Iterations are fixed batch chunks (one per slot of grad_w_partial), each summing its own images in
    order; the caller adds the chunks in order, so the result never depends on scheduling."""
    n_img = x.shape[0]
    groups, k_g, cout_g = w_groups_t.shape
    out_h, out_w = grad_out.shape[2], grad_out.shape[3]
    size = out_h * out_w
    n_chunks = grad_w_partial.shape[0]
    for chunk in prange(n_chunks):
        acc = grad_w_partial[chunk]
        acc[:] = 0
        phases = _phase_planes(x, sh, sw)
        last = (chunk + 1) * n_img // n_chunks
        for n0 in range(chunk * n_img // n_chunks, last, batch):
            n1 = min(last, n0 + batch)
            grads = np.empty((groups * cout_g, (n1 - n0) * size), x.dtype)
            for n in range(n0, n1):
                grads[:, (n - n0) * size:(n - n0 + 1) * size] = grad_out[n].reshape(groups * cout_g, size)
            if need_weight:
                cols = _unfold_batch(x, n0, n1, kh, kw, sh, sw, ph, pw, dh, dw, out_h, out_w)
                for g in range(groups):
                    acc[g] += np.dot(grads[g * cout_g:(g + 1) * cout_g], cols[g * k_g:(g + 1) * k_g].T)
            if need_input:
                cols = np.empty((groups * k_g, (n1 - n0) * size), x.dtype)
                for g in range(groups):
                    np.dot(w_groups_t[g], grads[g * cout_g:(g + 1) * cout_g], cols[g * k_g:(g + 1) * k_g])
                for n in range(n0, n1):
                    _col2im_image(cols[:, (n - n0) * size:(n - n0 + 1) * size], grad_x[n], phases,
                                  kh, kw, sh, sw, ph, pw, dh, dw, out_h, out_w)
    return grad_x


@njit(nogil=True, cache=True)
def _image_channels_last(image, padded, top, left):
    """padded[top + y, left + x, c] = image[c, y, x] for one image (Cin, H, W); the rest of padded (Hp, Wp, Cin),
    its zero border, is left as it is."""
    height, width = image.shape[1], image.shape[2]
    for y in range(height):
        cpu_winograd.channels_last_row(image, y, padded[top + y, left:left + width])


@njit(nogil=True, cache=True)
def _image_channels_first(padded, top, left, image):
    """Inverse of _image_channels_last: image[c, y, x] = padded[top + y, left + x, c]."""
    height, width = image.shape[1], image.shape[2]
    for y in range(height):
        cpu_winograd.channels_first_row(padded[top + y, left:left + width], image, y)


@njit(nogil=True, cache=True)
def _unfold_pixels(padded, cols, p0, kh, kw, sh, sw, dh, dw, out_h, out_w):
    """Rows p0.. of cols (P, kh*kw*Cin), one per output pixel (y, x) of one image: column (i, j, c) holds
    padded[y*sh + i*dh, x*sw + j*dw, c], from the image channels last and zero-padded (_image_channels_last).
    Each tap's channels are one contiguous run (an undilated kernel row's, kw*Cin values), so the copies
    vectorize whatever the stride, which only moves where a run starts."""
    wp, cin = padded.shape[1], padded.shape[2]
    flat = padded.reshape(-1)
    taps = kw if dw == 1 else 1
    for y in range(out_h):
        for x in range(out_w):
            row = cols[p0 + y * out_w + x]
            for i in range(kh):
                for j in range(0, kw, taps):
                    src = flat[((y * sh + i * dh) * wp + x * sw + j * dw) * cin:]
                    dst = row[(i * kw + j) * cin:]
                    for t in range(taps * cin):
                        dst[t] = src[t]


@njit(nogil=True, cache=True)
def _fold_pixels(cols, p0, padded, kh, kw, sh, sw, dh, dw, out_h, out_w):
    """Adjoint of _unfold_pixels (col2im): every entry of rows p0.. of cols added to padded where it was read
    from, pixels and taps in a fixed order, along the same contiguous runs."""
    wp, cin = padded.shape[1], padded.shape[2]
    flat = padded.reshape(-1)
    taps = kw if dw == 1 else 1
    for y in range(out_h):
        for x in range(out_w):
            row = cols[p0 + y * out_w + x]
            for i in range(kh):
                for j in range(0, kw, taps):
                    dst = flat[((y * sh + i * dh) * wp + x * sw + j * dw) * cin:]
                    src = row[(i * kw + j) * cin:]
                    for t in range(taps * cin):
                        dst[t] += src[t]


@njit(parallel=True, nogil=True, cache=True)
def _im2col_forward_pixels(x, w_t, bias, out, batch, kh, kw, sh, sw, ph, pw, dh, dw):
    """_im2col_forward of an ungrouped conv with the column matrix transposed: per batch of `batch` images,
    cols (P, K) holds one output pixel per row (_unfold_pixels), and the GEMM cols @ w_t (K, Cout) has the
    many pixels as its long side, which BLAS runs near peak even for 16 or 32 channels; its columns are then
    written to the output planes with the bias. Batches are independent: one per iteration."""
    n_img, cin, height, width = x.shape
    cout = w_t.shape[1]
    out_h, out_w = out.shape[2], out.shape[3]
    size = out_h * out_w
    for first in prange(-(-n_img // batch)):
        n0 = first * batch
        n1 = min(n_img, n0 + batch)
        padded = np.zeros((height + 2 * ph, width + 2 * pw, cin), x.dtype)
        cols = np.empty(((n1 - n0) * size, w_t.shape[0]), x.dtype)
        for n in range(n0, n1):
            _image_channels_last(x[n], padded, ph, pw)
            _unfold_pixels(padded, cols, (n - n0) * size, kh, kw, sh, sw, dh, dw, out_h, out_w)
        product = np.dot(cols, w_t)
        for n in range(n0, n1):
            planes = out[n].reshape(cout, size)
            block = product[(n - n0) * size:(n - n0 + 1) * size]
            for o in range(cout):
                b = bias[o]
                dst = planes[o]
                for t in range(size):
                    dst[t] = block[t, o] + b
    return out


@njit(parallel=True, nogil=True, cache=True)
def _im2col_backward_pixels(grad_out, x, w_k, grad_x, grad_w_partial, batch, kh, kw, sh, sw, ph, pw, dh, dw,
                            need_input, need_weight):
    """_im2col_backward of an ungrouped conv, columns as in _im2col_forward_pixels: with G (Cout, P) the batch's
    output gradients side by side, grad_w_partial[chunk] (K, Cout) += cols(x)ᵀ @ Gᵀ (K in (i, j, c) order;
    BLAS ran this operand order at 47 GF/s against 38 for G @ cols on resnet20's 16-channel layer) and
    grad_x = the fold (_fold_pixels) of Gᵀ @ w_k, whose rows are output pixels again. Same fixed batch
    chunks."""
    n_img, cin, height, width = x.shape
    out_h, out_w = grad_out.shape[2], grad_out.shape[3]
    size = out_h * out_w
    n_chunks = grad_w_partial.shape[0]
    for chunk in prange(n_chunks):
        acc = grad_w_partial[chunk]
        acc[:] = 0
        padded = np.zeros((height + 2 * ph, width + 2 * pw, cin), x.dtype)
        spread = np.empty_like(padded)
        last = (chunk + 1) * n_img // n_chunks
        for n0 in range(chunk * n_img // n_chunks, last, batch):
            n1 = min(last, n0 + batch)
            grads = np.empty((w_k.shape[0], (n1 - n0) * size), x.dtype)
            for n in range(n0, n1):
                grads[:, (n - n0) * size:(n - n0 + 1) * size] = grad_out[n].reshape(w_k.shape[0], size)
            cols = np.empty(((n1 - n0) * size, w_k.shape[1]), x.dtype)
            if need_weight:
                for n in range(n0, n1):
                    _image_channels_last(x[n], padded, ph, pw)
                    _unfold_pixels(padded, cols, (n - n0) * size, kh, kw, sh, sw, dh, dw, out_h, out_w)
                acc += np.dot(cols.T, grads.T)
            if need_input:
                np.dot(grads.T, w_k, cols)
                for n in range(n0, n1):
                    spread[:] = 0
                    _fold_pixels(cols, (n - n0) * size, spread, kh, kw, sh, sw, dh, dw, out_h, out_w)
                    _image_channels_first(spread, ph, pw, grad_x[n])
    return grad_x


# The weight gradient is summed in up to this many batch chunks (parallel iterations), fewer when their
# partial sums would exceed _MAX_PARTIAL_ELEMENTS; both depend only on shapes.
_MAX_WEIGHT_CHUNKS = 16
_MAX_PARTIAL_ELEMENTS = 1 << 23
# Small output planes are unfolded several images side by side, so that each GEMM has at least this many
# columns (measured, 2 threads: a 64x576 weight runs at ~35 GFLOP/s on one 8x8 plane, ~55-60 on 512
# columns), while keeping at least _MIN_BATCHES batches to share out among the threads.
_MIN_GEMM_COLUMNS = 512
_MIN_BATCHES = 8


# Fewer images than this leave threads idle when each batch of images is one iteration (one image: one thread
# for the whole conv); they are shared out by _ROW_BLOCKS blocks of output channels instead
# (_im2col_forward_rows), blocks of at least _MIN_GEMM_ROWS rows. Few blocks, one per core of the 2-core hosts
# this was tuned on: each block's GEMM packs the whole column matrix again (resnet18's single-image layers,
# 1 thread, CPU time against one GEMM: 2 blocks +3-7%, 4 +10-30%, 8 +25-70%). The cut depends on the shape only,
# never on the thread count: BLAS rounds a row differently in a block of another height.
_ROWS_SPLIT_BELOW_IMAGES = 2
_ROW_BLOCKS = 2
_MIN_GEMM_ROWS = 16


def _gemm_rows(cout_g):
    """Rows per block of _im2col_forward_rows for a group of cout_g output channels."""
    blocks = max(1, min(_ROW_BLOCKS, cout_g // _MIN_GEMM_ROWS))
    return -(-cout_g // blocks)


def _weight_chunks(n_img, weight_size):
    return max(1, min(n_img, _MAX_WEIGHT_CHUNKS, max(2, _MAX_PARTIAL_ELEMENTS // weight_size)))


def _images_per_gemm(n_img, plane_size):
    return max(1, min(-(-_MIN_GEMM_COLUMNS // plane_size), n_img // _MIN_BATCHES))


_PIXEL_MIN_IN_CHANNELS = 16
_PIXEL_MIN_ROWS_PER_CHANNEL = 2


def _pixel_columns(w_shape, groups, pixels):
    """Whether im2col unfolds one output pixel per row (_im2col_forward_pixels) for GEMMs over `pixels` output
    pixels (a batch of images): ungrouped convs with a kernel wider than 1x1, at least _PIXEL_MIN_IN_CHANNELS
    input channels, and at least _PIXEL_MIN_ROWS_PER_CHANNEL pixels per output channel, so that the pixels
    are the GEMM's long side. Measured per layer (1 thread, old vs new interleaved): resnet20's stride-2 convs
    (512 pixels, 32-64 channels) 1.3-1.8x faster forward and backward, stride-1 3x3 convs of 32-128 channels
    1.5-2x, resnet18's first stride-2 conv at batch 4 (784 pixels, 128 channels) 1.05x; resnet18's later layers at
    batch 4 (49-196 pixels, 256-512 channels) 1.1-1.7x slower, as BLAS runs a GEMM of so few rows far below
    peak. A 1x1 conv has no patch to gather, and transposing its large planes to channels last and back cost
    1.4-1.8x (resnext50's, resnet18's downsamples); grouped convs, and convs of 1 or 3 channels (5-15% slower),
    gather runs too short."""
    cout, cin_g, kh, kw = w_shape
    return (groups == 1 and kh * kw > 1 and cin_g >= _PIXEL_MIN_IN_CHANNELS
            and pixels >= _PIXEL_MIN_ROWS_PER_CHANNEL * cout)


def _weight_pixel_columns(w, dtype):
    """w (Cout, Cin, kh, kw) as (Cout, kh*kw*Cin), columns in _unfold_pixels's (i, j, c) order."""
    return np.ascontiguousarray(np.asarray(w).transpose(0, 2, 3, 1).reshape(w.shape[0], -1), dtype)


def conv2d_forward_im2col(x, w, b, stride, padding, dilation, groups):
    """im2col + one GEMM per batch of images and group; same contract as conv2d_forward_direct."""
    x = np.ascontiguousarray(x)
    cout, cin_g, kh, kw = w.shape
    out_h, out_w = _output_hw(x.shape[2], x.shape[3], kh, kw, stride, padding, dilation)
    bias = np.zeros(cout, x.dtype) if b is None else np.ascontiguousarray(b, x.dtype)
    out = np.empty((x.shape[0], cout, out_h, out_w), x.dtype)
    serial = _runs_serially(x.shape, w.shape, out.shape)
    w_groups = np.ascontiguousarray(w, x.dtype).reshape(groups, cout // groups, cin_g * kh * kw)
    if x.shape[0] < _ROWS_SPLIT_BELOW_IMAGES and not serial:
        return _im2col_forward_rows(x, w_groups, bias, out, _gemm_rows(cout // groups), kh, kw, *stride, *padding,
                                    *dilation)
    batch = max(1, x.shape[0]) if serial else _images_per_gemm(x.shape[0], out_h * out_w)
    if (kh, kw) == (1, 1) and tuple(stride) == (1, 1) and tuple(padding) == (0, 0) and groups == 1 and (
            serial or batch == 1):
        return _on_threads(_pointwise_forward, serial)(x, w_groups[0], bias, out, b is not None)
    if _pixel_columns(w.shape, groups, batch * out_h * out_w):
        w_t = np.ascontiguousarray(np.asarray(w, x.dtype).transpose(2, 3, 1, 0).reshape(-1, cout))  # its transpose
        return _on_threads(_im2col_forward_pixels, serial)(x, w_t, bias, out, batch, kh, kw, *stride, *padding,
                                                           *dilation)
    return _on_threads(_im2col_forward, serial)(x, w_groups, bias, out, batch, kh, kw, *stride, *padding,
                                                *dilation)


def conv2d_backward_im2col(grad_out, x, w, stride, padding, dilation, groups,
                           need_input, need_weight, need_bias):
    """Gradients of conv2d_forward_im2col: (grad_x or None, grad_w or None, grad_b or None)."""
    x = np.ascontiguousarray(x)
    grad_out = np.ascontiguousarray(grad_out, x.dtype)
    cout, cin_g, kh, kw = w.shape
    grad_b = _bias_grad(grad_out) if need_bias else None
    if not (need_input or need_weight):
        return None, None, grad_b
    grad_x = np.empty(x.shape if need_input else (0,) + x.shape[1:], x.dtype)
    # The batch chunks are also the parallel iterations, so there are as many without a weight gradient;
    # their partial sums are then empty.
    n_chunks = _weight_chunks(x.shape[0], w.size)
    batch = _images_per_gemm(x.shape[0], grad_out.shape[2] * grad_out.shape[3])
    pixels = _pixel_columns(w.shape, groups, batch * grad_out.shape[2] * grad_out.shape[3])
    if pixels:
        partial = np.empty((n_chunks, cin_g * kh * kw, cout if need_weight else 0), x.dtype)
        _im2col_backward_pixels(grad_out, x, _weight_pixel_columns(w, x.dtype), grad_x, partial, batch,
                                kh, kw, *stride, *padding, *dilation, need_input, need_weight)
    else:
        partial = np.empty((n_chunks, groups, cout // groups if need_weight else 0, cin_g * kh * kw), x.dtype)
        w_groups_t = np.ascontiguousarray(
            np.asarray(w, x.dtype).reshape(groups, cout // groups, cin_g * kh * kw).transpose(0, 2, 1))
        _im2col_backward(grad_out, x, w_groups_t, grad_x, partial, batch, kh, kw, *stride, *padding, *dilation,
                         need_input, need_weight)
    grad_w = None
    if need_weight:
        grad_w = partial[0]
        for chunk in range(1, n_chunks):
            grad_w += partial[chunk]
        if pixels:
            grad_w = np.ascontiguousarray(grad_w.reshape(kh, kw, cin_g, cout).transpose(3, 2, 0, 1))
        grad_w = grad_w.reshape(w.shape)
    return (grad_x if need_input else None), grad_w, grad_b


def _runnable(algorithm, x_shape, w_shape, stride, padding, dilation, groups, output_hw):
    """`algorithm`, or for a winograd request on a conv it does not cover or too small to pay for its
    transforms, the policy's direct/im2col choice."""
    if algorithm != "winograd":
        return algorithm
    macs = x_shape[0] * x_shape[1] * w_shape[0] * output_hw[0] * output_hw[1] * 9
    tiles_hw = -(-output_hw[0] // cpu_winograd.TILE) * -(-output_hw[1] // cpu_winograd.TILE)
    tile_use = output_hw[0] * output_hw[1] / max(1, tiles_hw * cpu_winograd.TILE ** 2)
    if (macs >= _WINOGRAD_MIN_MACS and x_shape[0] * tiles_hw >= _WINOGRAD_MIN_TILES
            and tile_use >= _WINOGRAD_MIN_TILE_USE
            and cpu_winograd.winograd_applies(w_shape, stride, padding, dilation, groups)):
        return algorithm
    return _direct_or_im2col(w_shape, groups, stride, output_hw)


def conv2d_forward(x, w, b, stride, padding, dilation, groups, algorithm):
    """conv2d of x (N, Cin, H, W) with w (Cout, Cin/groups, kh, kw) and bias b (or None) by `algorithm`."""
    output_hw = _output_hw(x.shape[2], x.shape[3], w.shape[2], w.shape[3], stride, padding, dilation)
    algorithm = _runnable(algorithm, x.shape, w.shape, stride, padding, dilation, groups, output_hw)
    if algorithm == "winograd":
        return cpu_winograd.conv2d_forward_winograd(x, w, b, padding)
    forward = conv2d_forward_direct if algorithm == "direct" else conv2d_forward_im2col
    return forward(x, w, b, stride, padding, dilation, groups)


def conv2d_backward_winograd(grad_out, x, w, stride, padding, dilation, groups, need_input, need_weight,
                             need_bias):
    """Gradients of the winograd forward: the input gradient is the stride-1 3x3 conv of grad_out with the
    flipped, transposed weight and padding 2 - padding, the weight gradient the forward's transpose (both
    Winograd, see cpu_winograd.py)."""
    grad_out = np.ascontiguousarray(grad_out, x.dtype)
    grad_x, grad_w = cpu_winograd.conv2d_backward_winograd(grad_out, x, w, padding, need_input, need_weight)
    return grad_x, grad_w, _bias_grad(grad_out) if need_bias else None


def conv2d_backward(grad_out, x, w, stride, padding, dilation, groups, need_input, need_weight, need_bias,
                    algorithm):
    """(grad_x or None, grad_w or None, grad_b or None) of conv2d_forward with the same `algorithm`."""
    algorithm = _runnable(algorithm, x.shape, w.shape, stride, padding, dilation, groups, grad_out.shape[2:])
    backward = {"direct": conv2d_backward_direct, "im2col": conv2d_backward_im2col,
                "winograd": conv2d_backward_winograd}[algorithm]
    return backward(grad_out, x, w, stride, padding, dilation, groups, need_input, need_weight, need_bias)


# When a group's GEMM is big enough to amortise building the column matrix, im2col wins: measured on the
# 2-core AVX2 host (single thread, fwd+bwd) im2col/direct time is 0.57-0.99 for Cin/groups*kh*kw >= 144
# with Cout/groups >= 32, 0.77 for 576 with 16, but 1.03-2.05 for shorter reductions or narrower
# outputs (e.g. 1.35 at 144 with 16), and direct needs fewer thread hand-offs per call.
_IM2COL_MIN_REDUCTION = 128
_IM2COL_MIN_OUT_CHANNELS = 32
_IM2COL_ALWAYS_REDUCTION = 512
# Except on large output planes: a stride-1 k x k (k > 1) conv with at least this many output pixels per input
# channel runs faster direct, whose register-blocked taps reach GEMM speed without the unfolding, than as
# smallish GEMMs. Measured after the blocking (1 thread, CPU time on a busy host, batch 16-32, fwd+bwd,
# direct/im2col): 3x3 0.45 for 16 channels at 32x32, 0.63 for 32 at 16x16, 0.90 for 32 at 14x14, 0.68 for 32
# at 10x10, 0.89 for 64 at 14x14, 0.90 for 48 at 12x12, 1.02 for 32 at 12x12; below 3, 1.07 for 32 at 8x8, 1.04
# for 64 at 8x8, 1.11 for 128 at 16x16; 5x5 0.60 for 64 at 16x16, 0.53 for 32 at 12x12. The forward alone runs
# 0.4-0.75 direct on all of these; the backward's weight gradient (_tap_dot) is what holds direct back below 3.
# Strided convs favoured im2col (fwd+bwd 1.45 for 16 channels at 32x32, 1.9 for 32 at 16x16, stride 2; again with
# the strided forward's phases split per task, batch 64, 1 thread, load ~1.9: fwd+bwd 2.55 and 3.28, the forward
# alone 1.13 and 1.51), and 1x1 convs, plain GEMMs, did at every width measured (8 to 1024 input channels:
# direct/im2col 1.0-3.1). Stride-1 3x3 convs too small for Winograd's tiles keep im2col without a backward too
# (forward, one image, 1 thread: 256 channels at 14x14 1.54, 512 at 7x7 2.48, 64 at 8x8 1.25).
_DIRECT_MIN_PIXELS_PER_CHANNEL = 3
# ... and grouped stride-1 convs of fewer output channels per group than this, whatever their plane: im2col's
# GEMM per group is too thin there (batch 8, 1 thread, CPU time, direct vs im2col, fwd / fwd+bwd: resnext50's
# 1024 channels in 32 groups at 7x7 10.7 vs 22.3 / 43 vs 57 ms; 256 in 4 groups at 14x14 14.4 vs 20.0 / 48 vs 56;
# but 256 in 2 groups, 128 each, 17.6 vs 25.5 / 98 vs 82, where im2col's backward wins).
_IM2COL_MIN_GROUP_OUT_CHANNELS = 128
# A forward with no backward to follow (inference) runs strided grouped convs of fewer output channels per group
# than this direct too: the strided direct forward (_tap_sum_blocked_phases) beats im2col's thin GEMMs there, its
# backward does not. Forward, direct/im2col time, best of 10-25 interleaved, 1 thread CPU time (load ~1.8) | 2
# threads wall (load ~1.8), 3x3 stride 2, batch 8: resnext50's 1024 channels in 32 groups at 14x14 0.60-0.88 |
# 0.61-0.76, 512 in 16 groups at 14x14 0.75-0.76 | 0.77-0.78, 256 in 8 groups at 28x28 0.40-0.70 | 0.70; but 64
# per group 0.94 | 0.93 (256 in 4 at 28x28) and 1.16 | 1.10 (512 in 8 at 14x14), 128 per group 1.26 (512 in 4).
# Fewer (image, group) tasks do not change it (load ~2): one image, 1024 in 32 groups 0.85 | 0.98, 512 in 16 0.81 |
# 1.00, 128 in 4 at 56x56 0.52 | 0.62, 64 in 2 at 28x28 0.92 | 0.91 (batch 8: 0.77 | 0.87).
# Ungrouped strided convs stay im2col without a backward too: resnet20's (batch 64) 16 -> 32 at 32x32 1.04-1.36 |
# 1.19-1.30 and 32 -> 64 at 16x16 1.56-2.0 | 1.49-1.96 (at batch 1 1.5 | 1.4-1.6), 32 -> 32 at 32x32 0.83-0.86 |
# 0.74-0.97; resnet18's at batch 1, 3x3 2.6-7.9, 1x1 1.3-2.9 (1 thread).
_FORWARD_ONLY_MIN_GROUP_OUT_CHANNELS = 64
# First layers on images (up to 4 input channels) run direct whatever their stride or kernel: resnet18's 7x7
# stride-2 stem (3 -> 64, 224x224) ran 4.8 ms direct vs 17.2 ms im2col at batch 1 on 2 threads (PyTorch 3.8
# ms; one image is one im2col task, while direct shares out channel blocks), and at batch 8 on 1 thread fwd +
# weight gradient (a stem needs no input gradient) 0.74 of im2col's time.
_DIRECT_MAX_IN_CHANNELS = 4


# Winograd needs enough input channels for its 36 GEMMs to run near BLAS peak and amortise the transforms:
# measured 1 thread, fwd+bwd, interleaved (load ~6, CPU time): 64x32x14x14 -> 64 33.6 ms Winograd, 43.0 direct,
# 48.3 im2col; 128x32x16x16 -> 32 41.7 Winograd, 64.5 direct; but 128x16x32x32 -> 16 69.4 Winograd, 59.5 direct.
# At 16 channels the transforms alone cost about what the whole direct conv does (64x16x32x32 -> 16 forward, 1
# thread, best of 30, load ~3: direct 8.3 ms; Winograd 10.6, of which channels-last copy 1.4, input transform
# 3.0, 36 BLAS products ~2.3, output transform ~1.5). Neither Numba products (each chunk's V[p] transposed in L1
# to rows of FMAs over the tiles: 5.4 ms, the transposes half of it) nor interleaving 4 images per pixel so that
# the input transform runs over 64 contiguous values (1.5 ms, but its channels-last copy 3.1) closed the gap.
# Another run, best of 40: forward 5.95 direct vs 8.84 Winograd, fwd+bwd 17.8 vs 28.5 (32 channels at 16x16:
# forward 6.5 vs 5.3, fwd+bwd 23.0 vs 16.6 in Winograd's favour).
# With the transforms' second stage one loop per run of tiles and the output written in row segments (f955deb),
# Winograd / direct time, best of 5x5 (forward) and 5x3 (fwd+bwd) interleaved in one process, quiet (load ~1),
# 2 threads | 1 thread, fwd ; fwd+bwd: 20 channels 64x20x32x32 -> 20 0.85 ; 0.85 | 0.81 ; 0.75; 24 channels
# 64x24x32x32 0.69-0.72 ; 0.69-0.77 | 0.84 ; 0.81, at 16x16 0.78 ; 0.71 | 0.70 ; 0.63, at 8x8 0.80 ; 0.56 | 0.92 ;
# 0.58, 8 images 1.02 ; 1.09 | 0.93 ; 0.95, one image 0.86 ; 0.90 | 1.01 ; 1.01. At 16 channels still even:
# 64x16x32x32 forward 0.85-0.99 | 1.09, fwd+bwd 0.85-0.96 | 0.97; 8 images 1.10-1.16 ; 1.06-1.19.
# With the direct kernel's taps free of index overhead (_fma_block) and its forwards padding each image in their
# tasks, Winograd / direct time, 1 thread, best of 4 (fwd+bwd) and 7 (fwd) interleaved (load ~2.6), fwd+bwd ; fwd:
# 64x16x32x32 -> 16 1.13 ; 1.43 (128 images 1.12 ; 1.43), 20 channels 1.09 ; 1.20, 24 channels 0.94 ; 1.18, at
# 16x16 0.96 ; 1.08, 32 channels at 16x16 0.69 ; 0.94; 16x12x28x28 -> 12 1.39 ; 1.48. Hence 24 input channels with
# a backward to follow, 32 without.
_WINOGRAD_MIN_IN_CHANNELS = 24
_WINOGRAD_FORWARD_ONLY_MIN_IN_CHANNELS = 32
# ... and enough work: one 16-channel 32x32 image (2.4M multiply-adds) ran 0.14 ms direct, 0.48 ms Winograd,
# whose transforms and 36 small GEMMs cost more than they save there.
_WINOGRAD_MIN_MACS = 1 << 23
# ... and enough tiles per call: each call transforms the weight (36 x Cout x Cin) for 36 GEMMs as wide as the
# tiles, so a single small plane with many channels loses (one image, fwd, 1 thread: 256 channels at 14x14, 16
# tiles, 6.2 ms Winograd vs 4.5 im2col; 512 at 7x7, 4 tiles, 21.7 vs 5.1; 128 at 28x28, 49 tiles, 2.8 vs 5.7).
_WINOGRAD_MIN_TILES = 32
# ... and planes that fill most of their 4x4 tiles: a 2x2 plane computes 4 of 16 outputs per tile
# (128x512x2x2 -> 512 fwd+bwd, 1 thread: 375 ms Winograd vs 310 im2col; at 4x4 354 vs 804).
_WINOGRAD_MIN_TILE_USE = 0.5


def choose_algorithm(weight_shape, groups, stride, output_hw, backward=True):
    """'winograd', 'direct' or 'im2col' for a conv2d with weight (Cout, Cin/groups, kh, kw), `groups`, stride
    (sh, sw) and output plane output_hw (Ho, Wo); `backward`: whether a backward will follow the forward (False
    for inference, where only the forward's time counts).

    Stride-1 3x3 convs with enough input channels (more without a backward) go to Winograd (a dilated, heavily
    padded or small one - a batch of few small planes, under 32 tiles, or planes under half their 4x4 tiles -
    then runs the direct/im2col choice below, see _runnable). Otherwise the
    direct kernel does one multiply-add per tap with no data reshuffling, at a fixed fraction of the core's
    peak, so it wins when a group's GEMM would be thin: first layers with 1 or 3 input channels, small
    LeNet-style layers, depthwise and narrow grouped convolutions, and stride-1 layers whose output planes
    are large next to their channel count. Wide layers and 1x1 convolutions go to im2col, where one BLAS
    GEMM per batch of images and group runs near peak and the unfolding costs little by comparison. Without a
    backward, strided grouped convs of narrow groups run direct too.
    """
    cout, cin_g, kh, kw = weight_shape
    min_channels = _WINOGRAD_MIN_IN_CHANNELS if backward else _WINOGRAD_FORWARD_ONLY_MIN_IN_CHANNELS
    if (kh, kw) == (3, 3) and groups == 1 and tuple(stride) == (1, 1) and cin_g >= min_channels:
        return "winograd"
    return _direct_or_im2col(weight_shape, groups, stride, output_hw, backward)


def _direct_or_im2col(weight_shape, groups, stride, output_hw, backward=True):
    cout, cin_g, kh, kw = weight_shape
    if kh * kw == 1:
        return "im2col"
    if cin_g <= _DIRECT_MAX_IN_CHANNELS:
        return "direct"
    if not backward and 1 < groups and cout // groups < _FORWARD_ONLY_MIN_GROUP_OUT_CHANNELS:
        return "direct"
    if tuple(stride) == (1, 1) and (output_hw[0] * output_hw[1] >= _DIRECT_MIN_PIXELS_PER_CHANNEL * cin_g
                                    or 1 < groups and cout // groups < _IM2COL_MIN_GROUP_OUT_CHANNELS):
        return "direct"
    reduction = cin_g * kh * kw
    wide = reduction >= _IM2COL_MIN_REDUCTION and cout // groups >= _IM2COL_MIN_OUT_CHANNELS
    return "im2col" if wide or reduction >= _IM2COL_ALWAYS_REDUCTION else "direct"

"""Winograd F(4x4, 3x3) convolution kernels (Numba + BLAS, CPU) for stride-1, undilated, ungrouped 3x3 convs.

Each output is cut into 4x4 tiles; tile t of input channel c reads a 6x6 input patch d and becomes
V[p, t, c] = (Bᵀ d B)[p], the weight of (output k, input c) becomes U[p, c, k] = (G w Gᵀ)[p], and the 36
positions p = (a, b) of a tile are 36 independent GEMMs M[p] = U[p]ᵀ @ V[p]ᵀ over the input channels, after
which each tile's output is Aᵀ M A. That is 36 multiplies per 16 outputs instead of 9 per output (4x fewer),
with the GEMMs in register blocks or BLAS near their peak; the transforms are a few adds per element.

Tiles are numbered across the whole batch (image, tile row, tile column) and cut into fixed chunks, one per
parallel iteration: a chunk transforms its input patches, runs its 36 single-threaded GEMMs and writes its
own output tiles, so the result does not depend on scheduling (bit-identical run to run), and a single large
image still spreads over the cores. The input is copied once, zero-padded so that every patch lies inside it and
channels last so that the input transform runs over contiguous channels (vectorized, 3x faster than gathering
tiles from NCHW planes), each row's columns in phase-major order (_column_slot) so that the transforms' second
stage runs over a whole run of tiles per loop; the transforms are written out (no zero coefficients).

The backward of a stride-1 3x3 conv is again one: grad_input = conv(grad_out, weight flipped and transposed,
padding 2 - padding), whose channels-last copy of grad_out also feeds the weight gradient. The weight gradient
is the transpose of the forward: with the output gradient's tiles transformed as A g Aᵀ, S[p] = sum over tiles
of (A g Aᵀ)[p]ᵀ (K) x V[p] (C) is again 36 GEMMs (the tiles are the reduction), and grad_w = Gᵀ S G. Its
chunks' transforms stay in the cache for their GEMMs, which add each chunk's products onto its slot's partial
sums in place: float32 up to 64 x 64 channels in 6x16 register blocks that read the transforms' rows as they lie
(BLAS would first pack both operands, as costly as the products of so small an output), the rest in BLAS
(beta = 1, cpu_blas.gemm); fixed slots of chunks, then summed over slots in order. When few tiles meet many
channels (the slots' partial sums would outweigh all tiles' transforms) it transforms all tiles and runs one
GEMM per position instead.
"""
import numpy as np
from numba import njit, prange

from fastnn._kernels.cpu_blas import gemm
from fastnn._kernels.variants import with_slp

__all__ = ["winograd_applies", "conv2d_forward_winograd", "conv2d_weight_grad_winograd", "conv2d_backward_winograd",
           "weight_transform", "TILE"]

TILE = 4  # output tile edge m of F(m x m, 3 x 3)
_PATCH = TILE + 2  # input patch edge: m + r - 1
# Lavin & Gray's F(4, 3) matrices (points 0, ±1, ±2): Y = Aᵀ [(G w Gᵀ) ⊙ (Bᵀ d B)] A.
BT = np.array([[4, 0, -5, 0, 1, 0],
               [0, -4, -4, 1, 1, 0],
               [0, 4, -4, -1, 1, 0],
               [0, -2, -1, 2, 1, 0],
               [0, 2, -1, -2, 1, 0],
               [0, 4, 0, -5, 0, 1]], np.float64)
G = np.array([[1 / 4, 0, 0],
              [-1 / 6, -1 / 6, -1 / 6],
              [-1 / 6, 1 / 6, -1 / 6],
              [1 / 24, 1 / 12, 1 / 6],
              [1 / 24, -1 / 12, 1 / 6],
              [0, 0, 1]], np.float64)
AT = np.array([[1, 1, 1, 1, 1, 0],
               [0, 1, -1, 2, -2, 0],
               [0, 1, 1, 4, 4, 0],
               [0, 1, -1, 8, -8, 1]], np.float64)

_FASTMATH = {"reassoc", "contract", "nsz", "arcp"}
# Tiles per parallel iteration: enough GEMM columns for BLAS to run near peak, few enough that a chunk's
# transformed patches (36 x Cin x chunk floats) stay in the core's caches between transform and GEMM (measured,
# 2 threads, the bench's wide shapes: 64 and 512 were 5-45% slower than 128 forward; with the written-out
# transforms, 1 thread, 64-256 and 8-2 minimum chunks were within the host's noise, ±5%).
_TILES_PER_CHUNK = 128
# Smaller problems (a single image) are cut into up to _MIN_CHUNKS chunks of at least _MIN_TILES_PER_CHUNK
# tiles, so that both cores get work; the cut depends only on the shape, never on the thread count.
_MIN_CHUNKS = 8
_MIN_TILES_PER_CHUNK = 16
# The weight gradient sums its chunks in this many fixed slots (partial sums of 36 x Cout x Cin each), enough
# to keep two cores busy under uneven load.
_WEIGHT_SLOTS = 4
# The weight gradient's float32 per-position products gᵀ v (K x C outputs, over a chunk's tiles) run in
# _tn_block's 4x16 register blocks up to this many outputs, BLAS above (whole blocks only). Measured 1 thread,
# 36 positions of 128 tiles, best of 5, load ~2.3, blocked / BLAS GFLOP/s: 16x16 48/18, 32x32 45/29, 64x32
# 47/36, 64x64 44/42, 128x128 33/35 (a position's operands outgrow L1, where BLAS's packing pays). float64 stays
# on BLAS: its 4x16 block needs all 16 AVX2 registers and spills (64x32 16/19, 64x64 13/19). With the 6x16
# blocks (_tn_block6; 1 thread, CPU time, load ~3.7): 64x32 80/49, 64x64 60-73/50-52, 128x128 36-54/40-48 (as
# noisy as the load), 256x256 43/51, so the bound stays.
_BLOCKED_MAX_OUTPUT = 64 * 64
# The forward's float32 products (K x T outputs over C, a chunk's T tiles) run in the same register blocks, after
# a transpose of each position's transformed patches, up to this many weights per position (Cin x Cout), or
# for chunks of at most _MIN_TILES_PER_CHUNK tiles, where BLAS packs a whole position's weights for a handful of
# tiles. Measured on a Zen 5 (AVX-512) host, 1 thread, forward best of 7 interleaved with BLAS, load ~4:
# 32 -> 64 channels (14x14, 128-tile chunks) 3.93 -> 3.58 ms, 64 -> 128 (16x16) 23.2 -> 23.6, 128 -> 256 (8x8)
# 25.5 -> 24.0; 256 -> 256 (8x8, 64-tile chunks) 40.8 -> 45.1 and 42.0 -> 44.4 ms (BLAS keeps it); 256 -> 512
# (4x4, 16-tile chunks) 34.6 -> 24.0 ms.
_BLOCKED_FORWARD_MAX_WEIGHTS = 128 * 256


def winograd_applies(w_shape, stride, padding, dilation, groups):
    """Whether this kernel computes the conv: 3x3, stride 1, dilation 1, one group, padding <= 2 (so that the
    input gradient, a conv with padding 2 - padding, is one too)."""
    return (tuple(w_shape[2:]) == (3, 3) and tuple(stride) == (1, 1) and tuple(dilation) == (1, 1)
            and groups == 1 and max(padding) <= 2)


@njit(parallel=True, nogil=True, cache=True, fastmath=_FASTMATH)
def _weight_transform(w, g, u):
    """u[a*6 + b, c, k] = (G w[k, c] Gᵀ)[a, b]; one input channel c per iteration, runs over the output
    channels k (contiguous in u; the reads of w gather: the other order's scattered writes measured 2.2 vs 0.55
    ms, 128 x 128 channels, 1 thread; this order takes 1.5x the time of the former (K, C) layout's at 256 x
    256, 1.9 vs 1.3 ms)."""
    cout, cin = w.shape[0], w.shape[1]
    for c in prange(cin):
        wc = w[:, c]
        tmp = np.empty((_PATCH, 3, cout), w.dtype)
        for a in range(_PATCH):
            g0, g1, g2 = g[a, 0], g[a, 1], g[a, 2]
            for j in range(3):
                row = tmp[a, j]
                for k in range(cout):
                    row[k] = g0 * wc[k, 0, j] + g1 * wc[k, 1, j] + g2 * wc[k, 2, j]
        for a in range(_PATCH):
            for b in range(_PATCH):
                g0, g1, g2 = g[b, 0], g[b, 1], g[b, 2]
                dst = u[a * _PATCH + b, c]
                for k in range(cout):
                    dst[k] = tmp[a, 0, k] * g0 + tmp[a, 1, k] * g1 + tmp[a, 2, k] * g2
    return u


def weight_transform(w):
    """U (36, Cin, Cout) = G w Gᵀ per (output, input) channel pair, position p = a*6 + b first, output channels
    contiguous (the forward's products read rows of U[p] as they lie, see _winograd_conv)."""
    w = np.ascontiguousarray(w)
    return _weight_transform(w, G.astype(w.dtype), np.empty((_PATCH * _PATCH, w.shape[1], w.shape[0]), w.dtype))


@njit(parallel=True, nogil=True, cache=True, fastmath=_FASTMATH)
def _weight_grad_transform(partial, g, out):
    """out[k, c] = Gᵀ S G with S[a, b] = sum over slots, in order, of partial[slot, a*6 + b, k, c]; one output
    channel k per iteration, runs over the input channels c (contiguous in partial)."""
    n_slots, _, cout, cin = partial.shape
    for k in prange(cout):
        s = partial[0, :, k].copy()
        for slot in range(1, n_slots):
            s += partial[slot, :, k]
        tmp = np.empty((3, _PATCH, cin), out.dtype)
        for r in range(3):
            for b in range(_PATCH):
                row = tmp[r, b]
                row[:] = 0
                for a in range(_PATCH):
                    coef = g[a, r]
                    src = s[a * _PATCH + b]
                    for c in range(cin):
                        row[c] += coef * src[c]
        ok = out[k].reshape(cin, 9)
        for r in range(3):
            for q in range(3):
                for c in range(cin):
                    acc = tmp[r, 0, c] * g[0, q]
                    for b in range(1, _PATCH):
                        acc += tmp[r, b, c] * g[b, q]
                    ok[c, r * 3 + q] = acc
    return out


# An L1 data cache line's set is fixed by its address modulo 4 KiB (64 sets of 64-byte lines), and a set holds 8
# lines (8-way on the AVX2 and AVX-512 hosts this runs on).
_L1_SET_SPAN = 4096
_L1_WAYS = 8


@njit(nogil=True, cache=True)
def _pixel_by_pixel(chans, row_step):
    """Whether a transpose between an image row's C channel rows, row_step bytes apart, and its channels-last
    row walks the pixels (contiguous on the channels-last side, one value from each channel row in turn): the C
    channel rows then stay in L1, unless more than _L1_WAYS of them map to one L1 set (rows a multiple of 4 KiB
    apart, as 32x32 float32 planes), where every access evicts another, and walking the channels (contiguous
    on the channel rows, strided by C on the channels-last row, which stays in L1) is faster. Measured 1 thread
    float32, best of 11, load ~2: 16 channels of 32x32 2.2 vs 3.1-4.3 ms pixel by pixel (128 images, either
    direction); 32 of 16x16 1.3 vs 2.1-2.9 ms, 64 of 8x8 0.33 vs 0.46 ms the other way round."""
    aligned = min(row_step & -row_step, _L1_SET_SPAN)  # rows per set: chans / (_L1_SET_SPAN / aligned), rounded up
    return -(-chans * aligned // _L1_SET_SPAN) <= _L1_WAYS


@njit(nogil=True, cache=True, inline='always')
def channels_last_row(image, y, dst):
    """dst (W, C) = row y of image (C, H, W) with its channels last, in the order _pixel_by_pixel picks. The
    image is passed whole, not as its (C, W) row view, so that a channel's row image[c, y] is typed contiguous
    for the channel-by-channel copy (through the view it measured ~10% slower)."""
    chans, _, width = image.shape
    if _pixel_by_pixel(chans, image.strides[0]):
        src = image[:, y]
        for j in range(width):
            pixel = dst[j]
            for c in range(chans):
                pixel[c] = src[c, j]
    else:
        for c in range(chans):
            channel = image[c, y]
            for j in range(width):
                dst[j, c] = channel[j]


@njit(nogil=True, cache=True, inline='always')
def channels_first_row(src, image, y):
    """Row y of image (C, H, W) = src (W, C) with its channels first: the inverse of channels_last_row, in the
    order _pixel_by_pixel picks."""
    chans, _, width = image.shape
    if _pixel_by_pixel(chans, image.strides[0]):
        dst = image[:, y]
        for j in range(width):
            pixel = src[j]
            for c in range(chans):
                dst[c, j] = pixel[c]
    else:
        for c in range(chans):
            channel = image[c, y]
            for j in range(width):
                channel[j] = src[j, c]


@njit(nogil=True, cache=True, inline="always")
def _column_slot(x, width):
    """Where column x lies in a phase-major row of `width` pixels: the columns x = 0 (mod TILE) first, in order,
    then those = 1, 2 and 3. Column x + TILE*s then lies s slots after column x, so that the s-th tiles of a run
    along a tile row read column j of their patches as one contiguous block (see _input_transform)."""
    slot = x // TILE
    for phase in range(x % TILE):
        slot += (width - phase + TILE - 1) // TILE
    return slot


@njit(nogil=True, cache=True, inline="always")
def _phase_major_row(image, y, dst, slots):
    """dst[slots[j]] = pixel (y, j) of image (C, H, W), its channels contiguous, in the loop order
    _pixel_by_pixel picks. Channel by channel, each phase's pixels (a run of slots) are read with a stride of
    TILE: indexing the slots per pixel there measured 1.5x slower, a transpose in order then a pass moving the
    pixels to their slots 2x (16 channels of 32x32)."""
    chans, _, width = image.shape
    if _pixel_by_pixel(chans, image.strides[0]):
        src = image[:, y]
        for j in range(width):
            pixel = dst[slots[j]]
            for c in range(chans):
                pixel[c] = src[c, j]
    else:
        for j0 in range(min(TILE, width)):
            block = dst[slots[j0]:]
            for c in range(chans):
                channel = image[c, y]
                for i in range((width - j0 + TILE - 1) // TILE):
                    block[i, c] = channel[j0 + TILE * i]


@njit(parallel=True, nogil=True, cache=True)
def _to_channels_last(x, top, left, out):
    """out (N, Hp, Wp, C) = x (N, C, H, W) with its channels last, at rows top.. and columns left.., zero
    elsewhere: every tile's patch then lies inside, and each pixel's channels are one contiguous run, over which
    the transforms vectorize. Each row's pixels lie in _column_slot's phase-major order. One (image, row) per
    iteration."""
    n_img, chans, height, width = x.shape
    rows, cols = out.shape[1], out.shape[2]
    zero = out.dtype.type(0)
    slots = np.empty(width, np.int64)
    for j in range(width):
        slots[j] = _column_slot(left + j, cols)
    for task in prange(n_img * rows):
        n = task // rows
        y = task % rows - top
        dst = out[n, task % rows]
        if y < 0 or y >= height:
            dst[:] = zero
            continue
        for col in range(cols):
            if col < left or col >= left + width:
                dst[_column_slot(col, cols)] = zero
        _phase_major_row(x[n], y, dst, slots)
    return out


# The transforms combine runs of contiguous channels, one loop per output row: a single store stream per loop keeps
# LLVM's run-time alias checks few enough for it to vectorize (six stores in one loop were left scalar). The
# constants are typed, as a plain 4 would make float32 sums float64.


@njit(nogil=True, cache=True, fastmath=_FASTMATH, inline="always")
def _bt(d0, d1, d2, d3, d4, d5, out, first, lo):
    """out[first + a, lo:lo + n] = (Bᵀ d)[a] for six rows d0..d5 of length n (Lavin & Gray's F(4, 3) Bᵀ, its
    shared sub-expressions recomputed per output row)."""
    c2, c4, c5 = out.dtype.type(2), out.dtype.type(4), out.dtype.type(5)
    n = d0.shape[0]
    o = out[first, lo:lo + n]
    for c in range(n):
        o[c] = c4 * d0[c] - c5 * d2[c] + d4[c]
    o = out[first + 1, lo:lo + n]
    for c in range(n):
        o[c] = (d4[c] - c4 * d2[c]) + (d3[c] - c4 * d1[c])
    o = out[first + 2, lo:lo + n]
    for c in range(n):
        o[c] = (d4[c] - c4 * d2[c]) - (d3[c] - c4 * d1[c])
    o = out[first + 3, lo:lo + n]
    for c in range(n):
        o[c] = (d4[c] - d2[c]) + c2 * (d3[c] - d1[c])
    o = out[first + 4, lo:lo + n]
    for c in range(n):
        o[c] = (d4[c] - d2[c]) - c2 * (d3[c] - d1[c])
    o = out[first + 5, lo:lo + n]
    for c in range(n):
        o[c] = c4 * d1[c] - c5 * d3[c] + d5[c]


@njit(nogil=True, cache=True, fastmath=_FASTMATH, inline="always")
def _at(g0, g1, g2, g3, out, first, lo):
    """out[first + a, lo:lo + n] = (A g)[a] for four rows g0..g3 of length n, A = ATᵀ written out."""
    c2, c4, c8 = out.dtype.type(2), out.dtype.type(4), out.dtype.type(8)
    n = g0.shape[0]
    o = out[first, lo:lo + n]
    for c in range(n):
        o[c] = g0[c]
    o = out[first + 1, lo:lo + n]
    for c in range(n):
        o[c] = (g0[c] + g2[c]) + (g1[c] + g3[c])
    o = out[first + 2, lo:lo + n]
    for c in range(n):
        o[c] = (g0[c] + g2[c]) - (g1[c] + g3[c])
    o = out[first + 3, lo:lo + n]
    for c in range(n):
        o[c] = (g0[c] + c4 * g2[c]) + (c2 * g1[c] + c8 * g3[c])
    o = out[first + 4, lo:lo + n]
    for c in range(n):
        o[c] = (g0[c] + c4 * g2[c]) - (c2 * g1[c] + c8 * g3[c])
    o = out[first + 5, lo:lo + n]
    for c in range(n):
        o[c] = g3[c]


@njit(nogil=True, cache=True)
def _run_end(offsets, t, step):
    """End of the run of tiles from t whose origins are `step` apart: the tiles of one tile row (`step` after
    a row's last tile lies at most one pixel row down, the next tile row's first tile four)."""
    end = t + 1
    while end < offsets.shape[0] and offsets[end] == offsets[end - 1] + step:
        end += 1
    return end


@njit(nogil=True, cache=True, inline="always")
def _run_start(src_offset, pitch, chans):
    """(flat offset of its row, column) of a tile's origin at src_offset (see _channels_last_offsets) in a
    channels-last copy with rows of pitch = width * chans values."""
    col = src_offset % pitch // chans
    return src_offset - col * chans, col


@njit(nogil=True, cache=True, fastmath=_FASTMATH)
def _input_transform(src, offsets, pitch, t0, tmp, v):
    """v[a*6 + b, t0 + t, c] = (Bᵀ d B)[a, b] for d the 6x6 patch of channel c whose origin pixel is at
    offsets[t] (see _channels_last_offsets) of the channels-last padded input src (rows of pitch values, pixels
    in _column_slot's order). Per run of tiles along a tile row, Bᵀ first combines the six input rows over their
    whole width (tmp (6, >= pitch)), then B the run's six patch columns: column j of the run's tiles is one
    contiguous block of the phase-major rows, so each output position of the whole run is one loop."""
    chans = v.shape[2]
    width = pitch // chans
    step = TILE * chans
    flat = v.reshape((v.shape[0], v.shape[1] * chans))
    t = 0
    while t < offsets.shape[0]:
        end = _run_end(offsets, t, step)
        o, x0 = _run_start(offsets[t], pitch, chans)
        _bt(src[o:o + pitch], src[o + pitch:o + 2 * pitch], src[o + 2 * pitch:o + 3 * pitch],
            src[o + 3 * pitch:o + 4 * pitch], src[o + 4 * pitch:o + 5 * pitch], src[o + 5 * pitch:o + 6 * pitch],
            tmp, 0, 0)
        n = (end - t) * chans
        s0, s1, s2 = (_column_slot(x0, width) * chans, _column_slot(x0 + 1, width) * chans,
                      _column_slot(x0 + 2, width) * chans)
        s3, s4, s5 = (_column_slot(x0 + 3, width) * chans, _column_slot(x0 + 4, width) * chans,
                      _column_slot(x0 + 5, width) * chans)
        for a in range(_PATCH):
            r = tmp[a]
            _bt(r[s0:s0 + n], r[s1:s1 + n], r[s2:s2 + n], r[s3:s3 + n], r[s4:s4 + n], r[s5:s5 + n], flat,
                a * _PATCH, (t0 + t) * chans)
        t = end


@njit(nogil=True, cache=True, fastmath=_FASTMATH)
def _grad_transform(src, offsets, pitch, t0, tmp, gt):
    """gt[a*6 + b, t0 + t, k] = (A g Aᵀ)[a, b] for g the 4x4 output-gradient tile of channel k whose origin
    pixel is at offsets[t] (see _channels_last_offsets) of the channels-last src (phase-major rows of pitch
    values); runs of tiles as in _input_transform."""
    chans = gt.shape[2]
    width = pitch // chans
    step = TILE * chans
    flat = gt.reshape((gt.shape[0], gt.shape[1] * chans))
    t = 0
    while t < offsets.shape[0]:
        end = _run_end(offsets, t, step)
        o, x0 = _run_start(offsets[t], pitch, chans)
        _at(src[o:o + pitch], src[o + pitch:o + 2 * pitch], src[o + 2 * pitch:o + 3 * pitch],
            src[o + 3 * pitch:o + 4 * pitch], tmp, 0, 0)
        n = (end - t) * chans
        s0, s1 = _column_slot(x0, width) * chans, _column_slot(x0 + 1, width) * chans
        s2, s3 = _column_slot(x0 + 2, width) * chans, _column_slot(x0 + 3, width) * chans
        for a in range(_PATCH):
            r = tmp[a]
            _at(r[s0:s0 + n], r[s1:s1 + n], r[s2:s2 + n], r[s3:s3 + n], flat, a * _PATCH, (t0 + t) * chans)
        t = end


@njit(nogil=True, cache=True)
def _output_runs(tile_y, tile_x, offsets, out_h, out_w):
    """(first tile, flat offset, width, rows) of each run of a chunk's tiles along a tile row (tile_x steps by
    TILE): the run's output rows are contiguous segments of out's rows, only its last tile clipped."""
    runs = np.empty((offsets.shape[0], 4), np.int64)
    n_runs = 0
    t = 0
    while t < offsets.shape[0]:
        end = t + 1
        while end < offsets.shape[0] and tile_x[end] == tile_x[end - 1] + TILE:
            end += 1
        runs[n_runs, 0], runs[n_runs, 1] = t, offsets[t]
        runs[n_runs, 2] = min((end - t) * TILE, out_w - tile_x[t])
        runs[n_runs, 3] = min(TILE, out_h - tile_y[t])
        n_runs += 1
        t = end
    return runs[:n_runs]


@njit(nogil=True, cache=True, fastmath=_FASTMATH)
def _output_transform(m, count, bias, runs, tmp, rows, out):
    """The chunk's output tiles, Aᵀ M[k] A + bias[k] (Aᵀ written out), clipped to the planes of out (flat
    (N, K, Ho, Wo) output, the runs of tiles as _output_runs gives them at channel 0). m (36, K, >= count)
    holds the products of the chunk's `count` tiles. Per channel: Aᵀ over the positions' rows into tmp (4, 6,
    count), one store stream per loop; A over its columns into rows (4, count * TILE), row i of tile t at
    [i, t*TILE..], so that each run's output row is one contiguous copy."""
    out_h, out_w = out.shape[2], out.shape[3]
    flat = out.reshape(-1)
    plane = out_h * out_w
    c2, c4, c8 = m.dtype.type(2), m.dtype.type(4), m.dtype.type(8)
    for k in range(m.shape[1]):
        for b in range(_PATCH):
            m0, m1, m2 = m[b, k], m[_PATCH + b, k], m[2 * _PATCH + b, k]
            m3, m4, m5 = m[3 * _PATCH + b, k], m[4 * _PATCH + b, k], m[5 * _PATCH + b, k]
            o = tmp[0, b]
            for t in range(count):
                o[t] = m0[t] + (m1[t] + m2[t]) + (m3[t] + m4[t])
            o = tmp[1, b]
            for t in range(count):
                o[t] = (m1[t] - m2[t]) + c2 * (m3[t] - m4[t])
            o = tmp[2, b]
            for t in range(count):
                o[t] = (m1[t] + m2[t]) + c4 * (m3[t] + m4[t])
            o = tmp[3, b]
            for t in range(count):
                o[t] = (m1[t] - m2[t]) + c8 * (m3[t] - m4[t]) + m5[t]
        bk = bias[k]
        for i in range(TILE):
            q0, q1, q2, q3, q4, q5 = tmp[i, 0], tmp[i, 1], tmp[i, 2], tmp[i, 3], tmp[i, 4], tmp[i, 5]
            dst = rows[i]
            for t in range(count):
                s, d, s2, d2 = q1[t] + q2[t], q1[t] - q2[t], q3[t] + q4[t], q3[t] - q4[t]
                dst[TILE * t] = q0[t] + s + s2 + bk
                dst[TILE * t + 1] = d + c2 * d2 + bk
                dst[TILE * t + 2] = s + c4 * s2 + bk
                dst[TILE * t + 3] = d + c8 * d2 + q5[t] + bk
        base = k * plane
        for r in range(runs.shape[0]):
            first, o, width = runs[r, 0] * TILE, runs[r, 1] + base, runs[r, 2]
            for i in range(runs[r, 3]):
                src, dst = rows[i, first:first + width], flat[o + i * out_w:o + i * out_w + width]
                for j in range(width):
                    dst[j] = src[j]


@njit(nogil=True, cache=True)
def _transpose(a, b):
    """b[:, :T] = aᵀ for a (T, C). Row by row of a, writing a column of b, up to 64 channels; above, b's rows
    (a multiple of 4 KiB apart for 128 tiles) outnumber an L1 set's ways (see _pixel_by_pixel), and it goes 8
    tiles (half a line of b's rows) at a time. Measured 1 thread, 128 tiles, cycles per value: 32 or 64
    channels 0.7 row by row, 1.6 in blocks; 128 channels 3.7-4.5 row by row, 1.7 in blocks of 8 tiles (2.6 of
    16); 64 -> 128 channels at 16x16 (the input gradient's forward) ran 40.3 ms row by row vs 26.8 in BLAS."""
    tiles, chans = a.shape
    if chans <= 64:
        for t in range(tiles):
            for c in range(chans):
                b[c, t] = a[t, c]
    else:
        for t0 in range(0, tiles, 8):
            for c in range(chans):
                row = b[c]
                for t in range(t0, min(t0 + 8, tiles)):
                    row[t] = a[t, c]


@njit(parallel=True, nogil=True, cache=True, fastmath=_FASTMATH)
def _winograd_conv(xc, u, bias, in_offsets, out_offsets, tile_y, tile_x, chunk, blocked, out):
    """out (N, K, Ho, Wo) = the 3x3 stride-1 conv of the padded channels-last input xc (N, Hp, Wp, C), from the
    transformed weight u (36, C, K); tile t reads its patch at flat offset in_offsets[t] of xc and writes its
    output at out_offsets[t] (origin tile_y[t], tile_x[t]); tiles in chunks of `chunk`, one per parallel
    iteration. Its products M[p] (K, T) = U[p]ᵀ V[p]ᵀ run, if `blocked` (float32, K a multiple of 4), in
    _blocked_product's register blocks on V[p] transposed (C, T), T the tiles rounded up to 16 with zero tiles
    (1 thread, 64 x 32 channels, 128 tiles, Zen 5: 98-130 GFLOP/s vs BLAS's 67-72, which packs both operands
    first; the transpose takes ~30% of the gain there, 0.37 of 2.02 -> 1.16-1.35 ms over 1024 tiles, ~60% for
    64 -> 32 channels, 0.72 of 2.3 -> 1.1-1.3 ms); BLAS otherwise. Compiled with the SLP vectorizer (_forward
    calls it through with_slp)."""
    n_tiles = in_offsets.shape[0]
    n_pos, cin, cout = u.shape
    pitch = xc.shape[2] * xc.shape[3]
    src = xc.reshape(-1)
    dtype = xc.dtype
    for ci in prange(-(-n_tiles // chunk)):
        t0 = ci * chunk
        t1 = min(t0 + chunk, n_tiles)
        count = t1 - t0
        width = -(-count // 16) * 16
        v = np.empty((n_pos, count, cin), dtype)
        _input_transform(src, in_offsets[t0:t1], pitch, 0, np.empty((_PATCH, pitch), dtype), v)
        m = np.empty((n_pos, cout, width), dtype)
        # One position's V[p] transposed at a time, used while in the cache.
        vt = np.zeros((cin, width), dtype)
        for p in range(n_pos):
            if blocked:
                _transpose(v[p], vt)
                m[p] = 0
                _blocked_product(u[p], vt, m[p])
            else:
                gemm(1.0, u[p].T, v[p].T, 0.0, m[p, :, :count])
        runs = _output_runs(tile_y[t0:t1], tile_x[t0:t1], out_offsets[t0:t1], out.shape[2], out.shape[3])
        _output_transform(m, count, bias, runs, np.empty((TILE, _PATCH, count), dtype),
                          np.empty((TILE, count * TILE), dtype), out)
    return out


@njit(parallel=True, nogil=True, cache=True, fastmath=_FASTMATH)
def _transform_all(xc, gc, in_offsets, grad_offsets, chunk, v, gt):
    """v[:, t] = Bᵀ d B of the input patches (xc (N, Hp, Wp, C) padded, channels last, patch t at flat offset
    in_offsets[t]) and gt[:, t] = A g Aᵀ of the output-gradient tiles (gc (N, Gh, Gw, K) zero-padded to whole
    tiles, channels last, tile t at grad_offsets[t]); chunks of tiles in parallel."""
    n_tiles = in_offsets.shape[0]
    x_pitch, g_pitch = xc.shape[2] * xc.shape[3], gc.shape[2] * gc.shape[3]
    x_src, g_src = xc.reshape(-1), gc.reshape(-1)
    for ci in prange(-(-n_tiles // chunk)):
        t0 = ci * chunk
        t1 = min(t0 + chunk, n_tiles)
        tmp = np.empty((_PATCH, max(x_pitch, g_pitch)), xc.dtype)
        _input_transform(x_src, in_offsets[t0:t1], x_pitch, t0, tmp, v)
        _grad_transform(g_src, grad_offsets[t0:t1], g_pitch, t0, tmp, gt)


@njit(parallel=True, nogil=True, cache=True)
def _position_products(gt, v, s):
    """s[p] (K, C) = gt[p]ᵀ (K, T) x v[p] (T, C): one GEMM over all tiles per position, positions in parallel."""
    for p in prange(s.shape[0]):
        gemm(1.0, gt[p].T, v[p], 0.0, s[p])
    return s


@njit(nogil=True, cache=True, fastmath={"contract"}, inline="always")
def _tn_block(g, v, k0, c0, acc):
    """acc[k0 + r, c0 + j] += sum over rows t of g[t, k0 + r] * v[t, c0 + j], r < 4, j < 16: one block of the
    weight gradient's product gᵀ v, read straight from the transforms' (T, K) and (T, C) rows (BLAS would first
    pack both operands, as costly as the products for a 64 x 32 output). The 4x16 block is held in 64 scalars
    over the whole reduction, which LLVM's SLP vectorizer packs into vector registers: a row t is 2 vector
    loads, 4 broadcasts and 8 FMAs with AVX2 (as cpu_conv._fma_block, which reads its operands otherwise)."""
    d = acc[k0 + 0, c0:c0 + 16]
    a00, a01, a02, a03, a04, a05, a06, a07 = d[0], d[1], d[2], d[3], d[4], d[5], d[6], d[7]
    a08, a09, a0a, a0b, a0c, a0d, a0e, a0f = d[8], d[9], d[10], d[11], d[12], d[13], d[14], d[15]
    d = acc[k0 + 1, c0:c0 + 16]
    a10, a11, a12, a13, a14, a15, a16, a17 = d[0], d[1], d[2], d[3], d[4], d[5], d[6], d[7]
    a18, a19, a1a, a1b, a1c, a1d, a1e, a1f = d[8], d[9], d[10], d[11], d[12], d[13], d[14], d[15]
    d = acc[k0 + 2, c0:c0 + 16]
    a20, a21, a22, a23, a24, a25, a26, a27 = d[0], d[1], d[2], d[3], d[4], d[5], d[6], d[7]
    a28, a29, a2a, a2b, a2c, a2d, a2e, a2f = d[8], d[9], d[10], d[11], d[12], d[13], d[14], d[15]
    d = acc[k0 + 3, c0:c0 + 16]
    a30, a31, a32, a33, a34, a35, a36, a37 = d[0], d[1], d[2], d[3], d[4], d[5], d[6], d[7]
    a38, a39, a3a, a3b, a3c, a3d, a3e, a3f = d[8], d[9], d[10], d[11], d[12], d[13], d[14], d[15]
    for t in range(g.shape[0]):
        x = v[t, c0:c0 + 16]
        x0, x1, x2, x3, x4, x5, x6, x7 = x[0], x[1], x[2], x[3], x[4], x[5], x[6], x[7]
        x8, x9, xa, xb, xc, xd, xe, xf = x[8], x[9], x[10], x[11], x[12], x[13], x[14], x[15]
        w = g[t, k0:k0 + 4]
        w0, w1, w2, w3 = w[0], w[1], w[2], w[3]
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
    d = acc[k0 + 0, c0:c0 + 16]
    d[0], d[1], d[2], d[3], d[4], d[5], d[6], d[7] = a00, a01, a02, a03, a04, a05, a06, a07
    d[8], d[9], d[10], d[11], d[12], d[13], d[14], d[15] = a08, a09, a0a, a0b, a0c, a0d, a0e, a0f
    d = acc[k0 + 1, c0:c0 + 16]
    d[0], d[1], d[2], d[3], d[4], d[5], d[6], d[7] = a10, a11, a12, a13, a14, a15, a16, a17
    d[8], d[9], d[10], d[11], d[12], d[13], d[14], d[15] = a18, a19, a1a, a1b, a1c, a1d, a1e, a1f
    d = acc[k0 + 2, c0:c0 + 16]
    d[0], d[1], d[2], d[3], d[4], d[5], d[6], d[7] = a20, a21, a22, a23, a24, a25, a26, a27
    d[8], d[9], d[10], d[11], d[12], d[13], d[14], d[15] = a28, a29, a2a, a2b, a2c, a2d, a2e, a2f
    d = acc[k0 + 3, c0:c0 + 16]
    d[0], d[1], d[2], d[3], d[4], d[5], d[6], d[7] = a30, a31, a32, a33, a34, a35, a36, a37
    d[8], d[9], d[10], d[11], d[12], d[13], d[14], d[15] = a38, a39, a3a, a3b, a3c, a3d, a3e, a3f


@njit(nogil=True, cache=True, fastmath={"contract"}, inline="always")
def _tn_block6(g, v, k0, c0, acc):
    """_tn_block for 6 rows k0..k0 + 5: its 12 vector accumulators hide the FMAs' latency, which _tn_block's 8 do
    not (an AVX2 core keeps ~10 FMAs in flight), and each row t's 2 vector loads and 6 broadcasts feed 12 FMAs
    instead of 8 (measured 1 thread, 36 positions of 128 tiles, GFLOP/s 6-row / 4-row blocks: 64x32 73/64,
    32x32 58/45, 64x64 50/40, 32x64 44/34, 16x16 55/45)."""
    d = acc[k0 + 0, c0:c0 + 16]
    a00, a01, a02, a03, a04, a05, a06, a07 = d[0], d[1], d[2], d[3], d[4], d[5], d[6], d[7]
    a08, a09, a0a, a0b, a0c, a0d, a0e, a0f = d[8], d[9], d[10], d[11], d[12], d[13], d[14], d[15]
    d = acc[k0 + 1, c0:c0 + 16]
    a10, a11, a12, a13, a14, a15, a16, a17 = d[0], d[1], d[2], d[3], d[4], d[5], d[6], d[7]
    a18, a19, a1a, a1b, a1c, a1d, a1e, a1f = d[8], d[9], d[10], d[11], d[12], d[13], d[14], d[15]
    d = acc[k0 + 2, c0:c0 + 16]
    a20, a21, a22, a23, a24, a25, a26, a27 = d[0], d[1], d[2], d[3], d[4], d[5], d[6], d[7]
    a28, a29, a2a, a2b, a2c, a2d, a2e, a2f = d[8], d[9], d[10], d[11], d[12], d[13], d[14], d[15]
    d = acc[k0 + 3, c0:c0 + 16]
    a30, a31, a32, a33, a34, a35, a36, a37 = d[0], d[1], d[2], d[3], d[4], d[5], d[6], d[7]
    a38, a39, a3a, a3b, a3c, a3d, a3e, a3f = d[8], d[9], d[10], d[11], d[12], d[13], d[14], d[15]
    d = acc[k0 + 4, c0:c0 + 16]
    a40, a41, a42, a43, a44, a45, a46, a47 = d[0], d[1], d[2], d[3], d[4], d[5], d[6], d[7]
    a48, a49, a4a, a4b, a4c, a4d, a4e, a4f = d[8], d[9], d[10], d[11], d[12], d[13], d[14], d[15]
    d = acc[k0 + 5, c0:c0 + 16]
    a50, a51, a52, a53, a54, a55, a56, a57 = d[0], d[1], d[2], d[3], d[4], d[5], d[6], d[7]
    a58, a59, a5a, a5b, a5c, a5d, a5e, a5f = d[8], d[9], d[10], d[11], d[12], d[13], d[14], d[15]
    for t in range(g.shape[0]):
        x = v[t, c0:c0 + 16]
        x0, x1, x2, x3, x4, x5, x6, x7 = x[0], x[1], x[2], x[3], x[4], x[5], x[6], x[7]
        x8, x9, xa, xb, xc, xd, xe, xf = x[8], x[9], x[10], x[11], x[12], x[13], x[14], x[15]
        w = g[t, k0:k0 + 6]
        w0, w1, w2, w3, w4, w5 = w[0], w[1], w[2], w[3], w[4], w[5]
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
        a40, a41, a42, a43 = a40 + w4 * x0, a41 + w4 * x1, a42 + w4 * x2, a43 + w4 * x3
        a44, a45, a46, a47 = a44 + w4 * x4, a45 + w4 * x5, a46 + w4 * x6, a47 + w4 * x7
        a48, a49, a4a, a4b = a48 + w4 * x8, a49 + w4 * x9, a4a + w4 * xa, a4b + w4 * xb
        a4c, a4d, a4e, a4f = a4c + w4 * xc, a4d + w4 * xd, a4e + w4 * xe, a4f + w4 * xf
        a50, a51, a52, a53 = a50 + w5 * x0, a51 + w5 * x1, a52 + w5 * x2, a53 + w5 * x3
        a54, a55, a56, a57 = a54 + w5 * x4, a55 + w5 * x5, a56 + w5 * x6, a57 + w5 * x7
        a58, a59, a5a, a5b = a58 + w5 * x8, a59 + w5 * x9, a5a + w5 * xa, a5b + w5 * xb
        a5c, a5d, a5e, a5f = a5c + w5 * xc, a5d + w5 * xd, a5e + w5 * xe, a5f + w5 * xf
    d = acc[k0 + 0, c0:c0 + 16]
    d[0], d[1], d[2], d[3], d[4], d[5], d[6], d[7] = a00, a01, a02, a03, a04, a05, a06, a07
    d[8], d[9], d[10], d[11], d[12], d[13], d[14], d[15] = a08, a09, a0a, a0b, a0c, a0d, a0e, a0f
    d = acc[k0 + 1, c0:c0 + 16]
    d[0], d[1], d[2], d[3], d[4], d[5], d[6], d[7] = a10, a11, a12, a13, a14, a15, a16, a17
    d[8], d[9], d[10], d[11], d[12], d[13], d[14], d[15] = a18, a19, a1a, a1b, a1c, a1d, a1e, a1f
    d = acc[k0 + 2, c0:c0 + 16]
    d[0], d[1], d[2], d[3], d[4], d[5], d[6], d[7] = a20, a21, a22, a23, a24, a25, a26, a27
    d[8], d[9], d[10], d[11], d[12], d[13], d[14], d[15] = a28, a29, a2a, a2b, a2c, a2d, a2e, a2f
    d = acc[k0 + 3, c0:c0 + 16]
    d[0], d[1], d[2], d[3], d[4], d[5], d[6], d[7] = a30, a31, a32, a33, a34, a35, a36, a37
    d[8], d[9], d[10], d[11], d[12], d[13], d[14], d[15] = a38, a39, a3a, a3b, a3c, a3d, a3e, a3f
    d = acc[k0 + 4, c0:c0 + 16]
    d[0], d[1], d[2], d[3], d[4], d[5], d[6], d[7] = a40, a41, a42, a43, a44, a45, a46, a47
    d[8], d[9], d[10], d[11], d[12], d[13], d[14], d[15] = a48, a49, a4a, a4b, a4c, a4d, a4e, a4f
    d = acc[k0 + 5, c0:c0 + 16]
    d[0], d[1], d[2], d[3], d[4], d[5], d[6], d[7] = a50, a51, a52, a53, a54, a55, a56, a57
    d[8], d[9], d[10], d[11], d[12], d[13], d[14], d[15] = a58, a59, a5a, a5b, a5c, a5d, a5e, a5f


@njit(nogil=True, cache=True, fastmath={"contract"})
def _blocked_product(g, v, acc):
    """acc (R, S) += gᵀ v for g (T, R), v (T, S), in 6x16 blocks and 4x16 ones for the rest (R a multiple of 4,
    S of 16): an even number of 6-row blocks leaves a multiple of 4 rows. Not inlined into its callers, whose
    'reassoc' would let the loop vectorizer gather across the rows instead."""
    rows = acc.shape[0]
    rows6 = rows // 12 * 12
    for c0 in range(0, acc.shape[1], 16):
        for k0 in range(0, rows6, 6):
            _tn_block6(g, v, k0, c0, acc)
        for k0 in range(rows6, rows, 4):
            _tn_block(g, v, k0, c0, acc)


@njit(parallel=True, nogil=True, cache=True, fastmath=_FASTMATH)
def _slot_products(xc, gc, in_offsets, grad_offsets, chunk, partial):
    """partial[slot] (36, K, C) = sum over the slot's chunks of tiles of (A g Aᵀ)ᵀ x (Bᵀ d B) per position
    (xc, gc and offsets as in _transform_all): each chunk's transformed tiles stay in the cache between their
    transform and their GEMMs; fixed slots of consecutive chunks, summed in order, keep it deterministic.
    Compiled with the SLP vectorizer (_weight_grad calls it through with_slp), which _tn_block needs."""
    n_tiles = in_offsets.shape[0]
    n_slots, n_pos, cout, cin = partial.shape
    n_chunks = -(-n_tiles // chunk)
    x_pitch, g_pitch = xc.shape[2] * xc.shape[3], gc.shape[2] * gc.shape[3]
    x_src, g_src = xc.reshape(-1), gc.reshape(-1)
    blocked = xc.itemsize == 4 and cout % 4 == 0 and cin % 16 == 0 and cout * cin <= _BLOCKED_MAX_OUTPUT
    for slot in prange(n_slots):
        acc = partial[slot]
        if blocked:
            acc[:] = 0
        # One set of buffers per slot, viewed at each chunk's size.
        tmp = np.empty((_PATCH, max(x_pitch, g_pitch)), xc.dtype)
        v_buf = np.empty(n_pos * cin * chunk, xc.dtype)
        gt_buf = np.empty(n_pos * cout * chunk, xc.dtype)
        first = slot * n_chunks // n_slots
        for ci in range(first, (slot + 1) * n_chunks // n_slots):
            t0 = ci * chunk
            t1 = min(t0 + chunk, n_tiles)
            count = t1 - t0
            v = v_buf[:n_pos * count * cin].reshape((n_pos, count, cin))
            gt = gt_buf[:n_pos * count * cout].reshape((n_pos, count, cout))
            _input_transform(x_src, in_offsets[t0:t1], x_pitch, 0, tmp, v)
            _grad_transform(g_src, grad_offsets[t0:t1], g_pitch, 0, tmp, gt)
            if blocked:
                for p in range(n_pos):
                    _blocked_product(gt[p], v[p], acc[p])
            else:
                # The slot's first chunk writes its sums (beta 0), the others add to them.
                beta = 0.0 if ci == first else 1.0
                for p in range(n_pos):
                    gemm(1.0, gt[p].T, v[p], beta, acc[p])
    return partial


def _chunk(n_tiles):
    return min(_TILES_PER_CHUNK, max(_MIN_TILES_PER_CHUNK, -(-n_tiles // _MIN_CHUNKS)))


def _tiles(n_img, out_h, out_w):
    """(tile_n, tile_y, tile_x): image and output origin of every TILE x TILE output tile, batch-major."""
    ty, tx = np.arange(-(-out_h // TILE)) * TILE, np.arange(-(-out_w // TILE)) * TILE
    n, y, x = np.meshgrid(np.arange(n_img), ty, tx, indexing="ij")
    return n.ravel(), y.ravel(), x.ravel()


def _offsets(tile_n, tile_y, tile_x, shape):
    """Flat offset of each tile's origin in channel 0 of its image in a C-contiguous (N, C, H, W) array."""
    _, channels, height, width = shape
    return (tile_n * channels * height + tile_y) * width + tile_x


def _channels_last_offsets(tile_n, tile_y, tile_x, shape):
    """Offset of each tile's origin (its channel 0) in a C-contiguous channels-last (N, H, W, C) array as if its
    columns were in order: its row's flat offset + column * C (the copies keep them phase-major, _column_slot;
    _run_start splits the two, _run_end finds the runs of tiles along a tile row by their column step)."""
    _, height, width, channels = shape
    return ((tile_n * height + tile_y) * width + tile_x) * channels


def _channels_last(x, padding, height, width):
    """x (N, C, H, W) zero-padded by `padding` at the top/left to (N, height, width, C), channels last."""
    out = np.empty((x.shape[0], height, width, x.shape[1]), x.dtype)
    return _to_channels_last(x, padding[0], padding[1], out)


def _padded_shape(n_img, out_h, out_w, chans):
    """The channels-last input copy a forward with output plane (out_h, out_w) reads: whole tiles plus the
    patches' two extra rows and columns."""
    return n_img, -(-out_h // TILE) * TILE + 2, -(-out_w // TILE) * TILE + 2, chans


def _forward(xc, w, b, out):
    """out (N, Cout, Ho, Wo) = the conv of the padded channels-last input xc (see _padded_shape) with w, b."""
    n_img, cout, out_h, out_w = out.shape
    u = weight_transform(np.asarray(w, xc.dtype))
    bias = np.zeros(cout, xc.dtype) if b is None else np.ascontiguousarray(b, xc.dtype)
    tile_n, tile_y, tile_x = _tiles(n_img, out_h, out_w)
    # As many chunks as _chunk makes, evened out: one 28x28 image's 49 tiles as 13+13+13+10, not 16+16+16+1,
    # which left one of two threads half idle.
    chunk = -(-tile_n.size // -(-tile_n.size // _chunk(tile_n.size)))
    cin = xc.shape[3]
    blocked = (xc.dtype == np.float32 and cout % 4 == 0
               and (cin * cout <= _BLOCKED_FORWARD_MAX_WEIGHTS or chunk <= _MIN_TILES_PER_CHUNK))
    return with_slp(_winograd_conv, xc, u, bias, _channels_last_offsets(tile_n, tile_y, tile_x, xc.shape),
                    _offsets(tile_n, tile_y, tile_x, out.shape), tile_y, tile_x, chunk, blocked, out)


def conv2d_forward_winograd(x, w, b, padding):
    """3x3 stride-1 conv of x (N, Cin, H, W) with w (Cout, Cin, 3, 3), bias b or None, symmetric padding
    (ph, pw) <= 2 (see winograd_applies)."""
    padding = tuple(padding)
    x = np.ascontiguousarray(x)
    n_img, cin, height, width = x.shape
    out_h, out_w = height + 2 * padding[0] - 2, width + 2 * padding[1] - 2
    out = np.empty((n_img, w.shape[0], out_h, out_w), x.dtype)
    if out.size == 0:
        return out
    return _forward(_channels_last(x, padding, *_padded_shape(n_img, out_h, out_w, cin)[1:3]), w, b, out)


def _weight_grad(xc, gc, origin, cout):
    """grad_w (Cout, Cin, 3, 3) from the padded channels-last input xc (see _padded_shape) and the output
    gradient's channels-last copy gc, its pixel (0, 0) at row/column `origin` and zeros after it to whole
    tiles."""
    n_img, cin = xc.shape[0], xc.shape[3]
    tiles_h, tiles_w = xc.shape[1] - 2, xc.shape[2] - 2
    tile_n, tile_y, tile_x = _tiles(n_img, tiles_h, tiles_w)
    n_tiles = tile_n.size
    in_offsets = _channels_last_offsets(tile_n, tile_y, tile_x, xc.shape)
    grad_offsets = _channels_last_offsets(tile_n, tile_y + origin[0], tile_x + origin[1], gc.shape)
    chunk = _chunk(n_tiles)
    slots = min(_WEIGHT_SLOTS, -(-n_tiles // chunk))
    n_pos = _PATCH * _PATCH
    if n_tiles * (cin + cout) <= slots * cin * cout:
        # Few tiles for the channel count: all tiles' transforms take less memory than the slots' partial sums,
        # and one GEMM per position over all tiles runs at BLAS speed.
        v, gt = np.empty((n_pos, n_tiles, cin), xc.dtype), np.empty((n_pos, n_tiles, cout), xc.dtype)
        _transform_all(xc, gc, in_offsets, grad_offsets, chunk, v, gt)
        partial = _position_products(gt, v, np.empty((1, n_pos, cout, cin), xc.dtype)[0])[None]
    else:
        partial = with_slp(_slot_products, xc, gc, in_offsets, grad_offsets, chunk,
                            np.empty((slots, n_pos, cout, cin), xc.dtype))
    return _weight_grad_transform(partial, G.astype(xc.dtype), np.empty((cout, cin, 3, 3), xc.dtype))


def conv2d_weight_grad_winograd(grad_out, x, padding):
    """grad_w (Cout, Cin, 3, 3) of conv2d_forward_winograd(x, w, b, padding) for the output gradient grad_out."""
    return conv2d_backward_winograd(grad_out, x, None, padding, False, True)[1]


def conv2d_backward_winograd(grad_out, x, w, padding, need_input, need_weight):
    """(grad_x or None, grad_w or None) of conv2d_forward_winograd(x, w, b, padding) for grad_out. The input
    gradient is the conv of grad_out with w flipped and transposed and padding 2 - padding; its channels-last
    copy of grad_out, zero-padded by that at the top/left, serves the weight gradient too when its zeros reach
    to whole tiles (one layout pass fewer)."""
    padding = tuple(padding)
    x = np.ascontiguousarray(x)
    grad_out = np.ascontiguousarray(grad_out, x.dtype)
    n_img, cin, height, width = x.shape
    cout, out_h, out_w = grad_out.shape[1:]
    grad_x = grad_w = gc = None
    origin = (2 - padding[0], 2 - padding[1])
    if need_input:
        grad_x = np.empty(x.shape, x.dtype)
        if grad_x.size:
            w_flipped = np.ascontiguousarray(np.asarray(w, x.dtype)[:, :, ::-1, ::-1].transpose(1, 0, 2, 3))
            gc = _channels_last(grad_out, origin, *_padded_shape(n_img, height, width, cout)[1:3])
            _forward(gc, w_flipped, None, grad_x)
    if need_weight:
        if grad_out.size == 0:
            return grad_x, np.zeros((cout, cin, 3, 3), x.dtype)
        tiles_h, tiles_w = -(-out_h // TILE) * TILE, -(-out_w // TILE) * TILE
        if gc is None or origin[0] + tiles_h > gc.shape[1] or origin[1] + tiles_w > gc.shape[2]:
            gc, origin = _channels_last(grad_out, (0, 0), tiles_h, tiles_w), (0, 0)
        xc = _channels_last(x, padding, tiles_h + 2, tiles_w + 2)
        grad_w = _weight_grad(xc, gc, origin, cout)
    return grad_x, grad_w

"""Winograd F(4x4, 3x3) convolution kernels (Numba + BLAS, CPU) for stride-1, undilated, ungrouped 3x3 convs.

Each output is cut into 4x4 tiles; tile t of input channel c reads a 6x6 input patch d and becomes
V[p, c, t] = (Bᵀ d B)[p], the weight of (output k, input c) becomes U[p, k, c] = (G w Gᵀ)[p], and the 36
positions p = (a, b) of a tile are 36 independent GEMMs M[p] = U[p] @ V[p] over the input channels, after
which each tile's output is Aᵀ M A. That is 36 multiplies per 16 outputs instead of 9 per output (4x fewer),
with the GEMMs in BLAS near its peak; the transforms are a few adds per element.

Tiles are numbered across the whole batch (image, tile row, tile column) and cut into fixed chunks, one per
parallel iteration: a chunk transforms its input patches, runs its 36 single-threaded GEMMs and writes its
own output tiles, so the result does not depend on scheduling (bit-identical run to run), and a single large
image still spreads over the cores.

The backward of a stride-1 3x3 conv is again one: grad_input = conv(grad_out, weight flipped and transposed,
padding 2 - padding). The weight gradient is the transpose of the forward: with the output gradient's tiles
transformed as A g Aᵀ, S[p] = sum over tiles of (A g Aᵀ)[p] (K) x V[p] (C) is again 36 GEMMs (the tiles are the
reduction), summed per fixed slot of chunks and then over slots in order, and grad_w = Gᵀ S G.
"""
import numpy as np
from numba import njit, prange

__all__ = ["winograd_applies", "conv2d_forward_winograd", "conv2d_weight_grad_winograd", "weight_transform",
           "TILE"]

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
# transformed patches (36 x Cin x chunk floats) stay in the L2 cache next to its outputs (measured, 2 threads,
# the bench's wide shapes: 64 and 512 were 5-45% slower than 128 forward; 128-512 alike for the weight gradient).
_TILES_PER_CHUNK = 128
# Smaller problems (a single image) are cut into up to _MIN_CHUNKS chunks of at least _MIN_TILES_PER_CHUNK
# tiles, so that both cores get work; the cut depends only on the shape, never on the thread count.
_MIN_CHUNKS = 8
_MIN_TILES_PER_CHUNK = 16
# The weight gradient's per-slot partial sums (36 x Cout x Cin each): at most this many slots.
_MAX_WEIGHT_SLOTS = 8


def winograd_applies(w_shape, stride, padding, dilation, groups):
    """Whether this kernel computes the conv: 3x3, stride 1, dilation 1, one group, padding <= 2 (so that the
    input gradient, a conv with padding 2 - padding, is one too)."""
    return (tuple(w_shape[2:]) == (3, 3) and tuple(stride) == (1, 1) and tuple(dilation) == (1, 1)
            and groups == 1 and max(padding) <= 2)


@njit(parallel=True, nogil=True, cache=True, fastmath=_FASTMATH)
def _weight_transform(w, g, u):
    """u[a*6 + b, k, c] = (G w[k, c] Gᵀ)[a, b]; one output channel k per iteration."""
    cout, cin = w.shape[0], w.shape[1]
    for k in prange(cout):
        tmp = np.empty((_PATCH, 3), w.dtype)
        for c in range(cin):
            for a in range(_PATCH):
                for j in range(3):
                    tmp[a, j] = g[a, 0] * w[k, c, 0, j] + g[a, 1] * w[k, c, 1, j] + g[a, 2] * w[k, c, 2, j]
            for a in range(_PATCH):
                for b in range(_PATCH):
                    u[a * _PATCH + b, k, c] = tmp[a, 0] * g[b, 0] + tmp[a, 1] * g[b, 1] + tmp[a, 2] * g[b, 2]
    return u


def weight_transform(w):
    """U (36, Cout, Cin) = G w Gᵀ per (output, input) channel pair, position p = a*6 + b first."""
    w = np.ascontiguousarray(w)
    return _weight_transform(w, G.astype(w.dtype), np.empty((_PATCH * _PATCH,) + w.shape[:2], w.dtype))


@njit(parallel=True, nogil=True, cache=True, fastmath=_FASTMATH)
def _weight_grad_transform(partial, g, out):
    """out[k, c] = Gᵀ S G with S[a, b] = sum over slots, in order, of partial[slot, a*6 + b, k, c]."""
    n_slots, _, cout, cin = partial.shape
    for k in prange(cout):
        s = np.empty((_PATCH, _PATCH), out.dtype)
        tmp = np.empty((3, _PATCH), out.dtype)
        for c in range(cin):
            for p in range(_PATCH * _PATCH):
                total = partial[0, p, k, c]
                for slot in range(1, n_slots):
                    total += partial[slot, p, k, c]
                s[p // _PATCH, p % _PATCH] = total
            for r in range(3):
                for b in range(_PATCH):
                    acc = out.dtype.type(0)
                    for a in range(_PATCH):
                        acc += g[a, r] * s[a, b]
                    tmp[r, b] = acc
            for r in range(3):
                for q in range(3):
                    acc = out.dtype.type(0)
                    for b in range(_PATCH):
                        acc += tmp[r, b] * g[b, q]
                    out[k, c, r, q] = acc
    return out


@njit(nogil=True, cache=True, fastmath=_FASTMATH)
def _tile_transform(src, c, tile_n, tile_y, tile_x, mat, patch, tmp, v):
    """v[p, c, t] = (mat d matᵀ)[p] for tiles t of channel c of src (N, C, H, W), d the s x s patch (s =
    mat.shape[1]) at (tile_y[t], tile_x[t]) of image tile_n[t], zero outside the plane. With mat = Bᵀ this is
    the input transform, with mat = A (6x4) the transform of an output-gradient tile."""
    height, width = src.shape[2], src.shape[3]
    size = mat.shape[1]
    count = v.shape[2]
    zero = src.dtype.type(0)
    for t in range(count):
        n, y0, x0 = tile_n[t], tile_y[t], tile_x[t]
        plane = src[n, c]
        if y0 >= 0 and x0 >= 0 and y0 + size <= height and x0 + size <= width:
            for i in range(size):
                for j in range(size):
                    patch[i, j, t] = plane[y0 + i, x0 + j]
        else:
            for i in range(size):
                for j in range(size):
                    yy, xx = y0 + i, x0 + j
                    inside = yy >= 0 and yy < height and xx >= 0 and xx < width
                    patch[i, j, t] = plane[yy, xx] if inside else zero
    # Rows, then columns, each a run over the tiles; zero coefficients are skipped (Bᵀ is 40% zeros).
    for a in range(_PATCH):
        for j in range(size):
            row = tmp[a, j]
            row[:count] = zero
            for i in range(size):
                coef = mat[a, i]
                if coef != 0:
                    src_row = patch[i, j]
                    for t in range(count):
                        row[t] += coef * src_row[t]
    for a in range(_PATCH):
        for b in range(_PATCH):
            dst = v[a * _PATCH + b, c]
            dst[:] = zero
            for j in range(size):
                coef = mat[b, j]
                if coef != 0:
                    src_row = tmp[a, j]
                    for t in range(count):
                        dst[t] += coef * src_row[t]


@njit(nogil=True, cache=True, fastmath=_FASTMATH)
def _output_transform(m, k, bias, tile_n, tile_y, tile_x, t0, at, tmp, tile, out):
    """out[n, k] tiles of the chunk = Aᵀ M[:, k] A + bias[k], clipped to the output plane."""
    out_h, out_w = out.shape[2], out.shape[3]
    count = m.shape[2]
    zero = out.dtype.type(0)
    for i in range(TILE):
        for b in range(_PATCH):
            row = tmp[i, b]
            row[:count] = zero
            for a in range(_PATCH):
                coef = at[i, a]
                if coef != 0:
                    src = m[a * _PATCH + b, k]
                    for t in range(count):
                        row[t] += coef * src[t]
        for j in range(TILE):
            dst = tile[i, j]
            dst[:count] = bias[k]
            for b in range(_PATCH):
                coef = at[j, b]
                if coef != 0:
                    src = tmp[i, b]
                    for t in range(count):
                        dst[t] += coef * src[t]
    for t in range(count):
        n, y0, x0 = tile_n[t0 + t], tile_y[t0 + t], tile_x[t0 + t]
        plane = out[n, k]
        rows, cols = min(TILE, out_h - y0), min(TILE, out_w - x0)
        for i in range(rows):
            for j in range(cols):
                plane[y0 + i, x0 + j] = tile[i, j, t]


@njit(parallel=True, nogil=True, cache=True, fastmath=_FASTMATH)
def _winograd_conv(x, u, bias, tile_n, tile_y, tile_x, pad_h, pad_w, chunk, bt, at, out):
    """out (N, K, Ho, Wo) = the 3x3 stride-1 conv of x (N, C, H, W) padded by (pad_h, pad_w), from the
    transformed weight u (36, K, C); tiles (tile_n, tile_y, tile_x: image and output origin) in chunks of
    `chunk`, one per parallel iteration."""
    n_tiles = tile_n.shape[0]
    n_pos, cout, cin = u.shape
    dtype = x.dtype
    for ci in prange(-(-n_tiles // chunk)):
        t0 = ci * chunk
        count = min(chunk, n_tiles - t0)
        # Patch origins in input coordinates for this chunk.
        ys = tile_y[t0:t0 + count] - pad_h
        xs = tile_x[t0:t0 + count] - pad_w
        ns = tile_n[t0:t0 + count]
        patch = np.empty((_PATCH, _PATCH, count), dtype)
        tmp = np.empty((_PATCH, _PATCH, count), dtype)
        v = np.empty((n_pos, cin, count), dtype)
        for c in range(cin):
            _tile_transform(x, c, ns, ys, xs, bt, patch, tmp, v)
        m = np.empty((n_pos, cout, count), dtype)
        for p in range(n_pos):
            m[p] = np.dot(u[p], v[p])
        tile = np.empty((TILE, TILE, count), dtype)
        for k in range(cout):
            _output_transform(m, k, bias, tile_n, tile_y, tile_x, t0, at, tmp, tile, out)
    return out


@njit(parallel=True, nogil=True, cache=True, fastmath=_FASTMATH)
def _winograd_weight_grad(x, grad, tile_n, tile_y, tile_x, pad_h, pad_w, chunk, bt, a, partial):
    """partial[slot] (36, K, C) = sum over the slot's chunks of tiles of (A g Aᵀ) x (Bᵀ d B) per position,
    for grad (N, K, Ho, Wo) the output gradient and x (N, C, H, W) the input padded by (pad_h, pad_w)."""
    n_tiles = tile_n.shape[0]
    n_slots, n_pos, cout, cin = partial.shape
    n_chunks = -(-n_tiles // chunk)
    dtype = x.dtype
    for slot in prange(n_slots):
        acc = partial[slot]
        acc[:] = 0
        for ci in range(slot * n_chunks // n_slots, (slot + 1) * n_chunks // n_slots):
            t0 = ci * chunk
            count = min(chunk, n_tiles - t0)
            ns, ys, xs = tile_n[t0:t0 + count], tile_y[t0:t0 + count], tile_x[t0:t0 + count]
            patch = np.empty((_PATCH, _PATCH, count), dtype)
            tmp = np.empty((_PATCH, _PATCH, count), dtype)
            v = np.empty((n_pos, cin, count), dtype)
            for c in range(cin):
                _tile_transform(x, c, ns, ys - pad_h, xs - pad_w, bt, patch, tmp, v)
            gt = np.empty((n_pos, cout, count), dtype)
            for k in range(cout):
                _tile_transform(grad, k, ns, ys, xs, a, patch, tmp, gt)
            for p in range(n_pos):
                acc[p] += np.dot(gt[p], v[p].T)
    return partial


def _chunk(n_tiles):
    return min(_TILES_PER_CHUNK, max(_MIN_TILES_PER_CHUNK, -(-n_tiles // _MIN_CHUNKS)))


def _tiles(n_img, out_h, out_w):
    """(tile_n, tile_y, tile_x): image and output origin of every TILE x TILE output tile, batch-major."""
    ty, tx = np.arange(-(-out_h // TILE)) * TILE, np.arange(-(-out_w // TILE)) * TILE
    n, y, x = np.meshgrid(np.arange(n_img), ty, tx, indexing="ij")
    return n.ravel(), y.ravel(), x.ravel()


def conv2d_forward_winograd(x, w, b, padding):
    """3x3 stride-1 conv of x (N, Cin, H, W) with w (Cout, Cin, 3, 3), bias b or None, symmetric padding
    (ph, pw) <= 2 (see winograd_applies)."""
    x = np.ascontiguousarray(x)
    n_img, _, height, width = x.shape
    cout = w.shape[0]
    out_h, out_w = height + 2 * padding[0] - 2, width + 2 * padding[1] - 2
    out = np.empty((n_img, cout, out_h, out_w), x.dtype)
    if out.size == 0:
        return out
    u = weight_transform(np.asarray(w, x.dtype))
    bias = np.zeros(cout, x.dtype) if b is None else np.ascontiguousarray(b, x.dtype)
    tile_n, tile_y, tile_x = _tiles(n_img, out_h, out_w)
    return _winograd_conv(x, u, bias, tile_n, tile_y, tile_x, padding[0], padding[1], _chunk(tile_n.size),
                          BT.astype(x.dtype), AT.astype(x.dtype), out)


def conv2d_weight_grad_winograd(grad_out, x, padding):
    """grad_w (Cout, Cin, 3, 3) of conv2d_forward_winograd(x, w, b, padding) for the output gradient grad_out."""
    x = np.ascontiguousarray(x)
    grad_out = np.ascontiguousarray(grad_out, x.dtype)
    n_img, cout, out_h, out_w = grad_out.shape
    tile_n, tile_y, tile_x = _tiles(n_img, out_h, out_w)
    chunk = _chunk(tile_n.size)
    slots = max(1, min(_MAX_WEIGHT_SLOTS, -(-tile_n.size // chunk)))
    partial = np.empty((slots, _PATCH * _PATCH, cout, x.shape[1]), x.dtype)
    _winograd_weight_grad(x, grad_out, tile_n, tile_y, tile_x, padding[0], padding[1], chunk,
                          BT.astype(x.dtype), np.ascontiguousarray(AT.T, x.dtype), partial)
    return _weight_grad_transform(partial, G.astype(x.dtype), np.empty((cout, x.shape[1], 3, 3), x.dtype))

"""Plain-NumPy reference for the Winograd F(4x4, 3x3) convolution and weight gradient of cpu_winograd.py: the
same transforms and per-position contractions on whole arrays, the ground truth its kernel is tested against (and, in
float64, against the direct definition in ref_conv.py)."""
import numpy as np

from fastnn._kernels.cpu_winograd import AT, BT, G, TILE


def _patches(x, padding, tiles, size):
    """(N, C, th, tw, size, size) patches of x zero-padded by `padding` at the tile origins (rows/cols of TILE)."""
    th, tw = tiles
    xp = np.zeros((x.shape[0], x.shape[1], th * TILE + size - TILE, tw * TILE + size - TILE), x.dtype)
    height, width = min(x.shape[2], xp.shape[2] - padding[0]), min(x.shape[3], xp.shape[3] - padding[1])
    xp[:, :, padding[0]:padding[0] + height, padding[1]:padding[1] + width] = x[:, :, :height, :width]
    rows = np.arange(th)[:, None] * TILE + np.arange(size)
    cols = np.arange(tw)[:, None] * TILE + np.arange(size)
    return xp[:, :, rows[:, None, :, None], cols[None, :, None, :]]


def conv2d_forward(x, w, b, padding):
    """3x3 stride-1 conv of x (N, C, H, W) with w (K, C, 3, 3), bias b or None, symmetric padding (ph, pw)."""
    n_img, _, height, width = x.shape
    out_h, out_w = height + 2 * padding[0] - 2, width + 2 * padding[1] - 2
    tiles = (-(-out_h // TILE), -(-out_w // TILE))
    bt, g, at = BT.astype(x.dtype), G.astype(x.dtype), AT.astype(x.dtype)
    v = bt @ _patches(x, padding, tiles, TILE + 2) @ bt.T  # (N, C, th, tw, 6, 6)
    u = g @ w @ g.T  # (K, C, 6, 6)
    m = np.einsum("kcab,ncyxab->nkyxab", u, v)
    y = at @ m @ at.T  # (N, K, th, tw, 4, 4)
    out = y.transpose(0, 1, 2, 4, 3, 5).reshape(n_img, w.shape[0], tiles[0] * TILE, tiles[1] * TILE)
    out = out[:, :, :out_h, :out_w]
    if b is not None:
        out = out + b[None, :, None, None]
    return np.ascontiguousarray(out)


def conv2d_weight_grad(grad_out, x, padding):
    """grad_w (K, C, 3, 3) of conv2d_forward(x, w, b, padding): Gᵀ [sum over tiles (A g Aᵀ) ⊙ (Bᵀ d B)] G."""
    out_h, out_w = grad_out.shape[2:]
    tiles = (-(-out_h // TILE), -(-out_w // TILE))
    bt, g, at = BT.astype(x.dtype), G.astype(x.dtype), AT.astype(x.dtype)
    v = bt @ _patches(x, padding, tiles, TILE + 2) @ bt.T  # (N, C, th, tw, 6, 6)
    gt = at.T @ _patches(grad_out, (0, 0), tiles, TILE) @ at  # (N, K, th, tw, 6, 6)
    s = np.einsum("nkyxab,ncyxab->kcab", gt, v)
    return g.T @ s @ g

"""Plain-NumPy reference for the Winograd F(4x4, 3x3) convolution of cpu_winograd.py: the same transforms and
per-position channel contractions on whole arrays, the ground truth its kernel is tested against (and, in
float64, against the direct definition in ref_conv.py)."""
import numpy as np

from fastnn._kernels.cpu_winograd import AT, BT, G, TILE


def conv2d_forward(x, w, b, padding):
    """3x3 stride-1 conv of x (N, C, H, W) with w (K, C, 3, 3), bias b or None, symmetric padding (ph, pw)."""
    n_img, _, height, width = x.shape
    out_h, out_w = height + 2 * padding[0] - 2, width + 2 * padding[1] - 2
    th, tw = -(-out_h // TILE), -(-out_w // TILE)
    # Pad so that every tile's 6x6 patch lies inside: tiles overrun the output by up to TILE - 1.
    xp = np.zeros((n_img, x.shape[1], th * TILE + 2, tw * TILE + 2), x.dtype)
    xp[:, :, padding[0]:padding[0] + height, padding[1]:padding[1] + width] = x
    bt, g, at = BT.astype(x.dtype), G.astype(x.dtype), AT.astype(x.dtype)
    rows = np.arange(th)[:, None] * TILE + np.arange(TILE + 2)  # (th, 6)
    cols = np.arange(tw)[:, None] * TILE + np.arange(TILE + 2)  # (tw, 6)
    patches = xp[:, :, rows[:, None, :, None], cols[None, :, None, :]]  # (N, C, th, tw, 6, 6)
    v = bt @ patches @ bt.T
    u = g @ w @ g.T  # (K, C, 6, 6)
    m = np.einsum("kcab,ncyxab->nkyxab", u, v)
    y = at @ m @ at.T  # (N, K, th, tw, 4, 4)
    out = y.transpose(0, 1, 2, 4, 3, 5).reshape(n_img, w.shape[0], th * TILE, tw * TILE)[:, :, :out_h, :out_w]
    if b is not None:
        out = out + b[None, :, None, None]
    return np.ascontiguousarray(out)

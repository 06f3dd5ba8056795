"""Augmentation kernels (Numba, CPU) on image batches (N, C, H, W), C-contiguous, parallel over images.

Each kernel is a pure function: it allocates and returns its output and never writes to its inputs. All are
`nogil=True`, so data-loader threads can run them next to the training step. Callers
(fastnn/data/transforms/functional.py) validate shapes, dtypes and ranges first, and pass every scalar table
(fill values, colour factors) already in the images' dtype so float32 images stay in float32 arithmetic, which
is what makes the uint8 truncations land where torchvision's do.
"""
import numpy as np
from numba import njit, prange, uint64

from fastnn._kernels.augment_codes import (C_BOUND, C_FOUR, C_FROM_UNIT, C_ONE, C_SIX, C_SIXTH, C_TO_UNIT,
                                           C_TWO, C_WB, C_WG, C_WR, C_ZERO, OP_BRIGHTNESS, OP_CONTRAST,
                                           OP_GRAYSCALE, OP_HUE, OP_SATURATION)

__all__ = ["crop_flip", "scale_normalize", "affine_sample", "color_ops", "erase_constant", "erase_noise"]


@njit(parallel=True, nogil=True, cache=True)
def crop_flip(images, tops, lefts, out_h, out_w, hflip, vflip, fill):
    """out[n, c, y, x] = images[n, c, tops[n] + y', lefts[n] + x'] with x' = out_w - 1 - x when hflip[n] (else x)
    and y' likewise with vflip[n]. Source positions outside the image take fill[c], so negative or too large
    offsets are a crop of the image zero-/fill-padded on the fly. tops, lefts int64 (N,); hflip, vflip bool (N,);
    fill (C,) in images' dtype."""
    n, c, h, w = images.shape
    out = np.empty((n, c, out_h, out_w), images.dtype)
    src = images.reshape(n * c * h * w)
    dst = out.reshape(n * c * out_h * out_w)
    # Flat offsets as unsigned integers: Numba adds a negative-index check to every signed subscript, which made
    # the row copies scalar (measured 2-3x slower on 28x28 crops).
    for i in prange(n):
        top, left, mirror = tops[i], lefts[i], hflip[i]
        # output columns [x_lo, x_hi) read inside the image: source column left + x, or left + out_w - 1 - x
        x_lo = min(max(left + out_w - w if mirror else -left, 0), out_w)
        x_hi = max(min(left + out_w if mirror else w - left, out_w), x_lo)
        for ch in range(c):
            f = fill[ch]
            for y in range(out_h):
                row = uint64(((i * c + ch) * out_h + y) * out_w)
                sy = top + (out_h - 1 - y if vflip[i] else y)
                inside = 0 <= sy < h
                for x in range(x_lo if inside else out_w):
                    dst[row + uint64(x)] = f
                if not inside:
                    continue
                for x in range(x_hi, out_w):
                    dst[row + uint64(x)] = f
                first = row + uint64(x_lo)
                if mirror:
                    s = uint64(((i * c + ch) * h + sy) * w + left + out_w - 1 - x_lo)
                    for k in range(x_hi - x_lo):
                        dst[first + uint64(k)] = src[s - uint64(k)]
                else:
                    s = uint64(((i * c + ch) * h + sy) * w + left + x_lo)
                    for k in range(x_hi - x_lo):
                        dst[first + uint64(k)] = src[s + uint64(k)]
    return out


@njit(parallel=True, nogil=True, cache=True)
def scale_normalize(images, scale, mean, std):
    """out[n, c] = (images[n, c] * scale[0] / scale[1] - mean[c]) / std[c] in the float dtype of scale, mean and
    std: ToDtype(scale=True) then Normalize multiplies by 1/max (scale (1/max, 1)), ToTensor then Normalize divides
    by 255 (scale (1, 255)); the other factor, 1, is exact. images (N, C, H, W) uint8 (converted exactly) or
    already of that float dtype; scale (2,); mean, std (C,)."""
    n, c, h, w = images.shape
    out = np.empty((n, c, h, w), mean.dtype)
    src, dst = images.reshape(n * c, h * w), out.reshape(n * c, h * w)
    s, q = scale[0], scale[1]
    for k in prange(n * c):
        m, d = mean[k % c], std[k % c]
        for j in range(h * w):
            dst[k, j] = (src[k, j] * s / q - m) / d
    return out


@njit(parallel=True, nogil=True, cache=True)
def affine_sample(images, matrices, out_h, out_w, bilinear, fill, use_fill):
    """Inverse-mapped resampling, torchvision's affine/rotate on tensors (grid_sample, align_corners=False).

    images float (N, C, H, W); matrices float64 (N, 6): the inverse map [a, b, c, d, e, f] of
    torchvision's _get_inverse_affine_matrix, taking output coordinates relative to the output centre,
    (x - (out_w - 1) / 2, y - (out_h - 1) / 2), to input coordinates relative to the input centre.
    Nearest rounds half to even (grid_sample's nearbyint); bilinear weighs the four neighbours, those outside
    the image contributing 0. With use_fill, torchvision's mask rule: nearest puts fill[c] where the source
    pixel is outside; bilinear returns mask * (value - fill) + fill with mask the in-image weight.
    """
    n, c, h, w = images.shape
    out = np.empty((n, c, out_h, out_w), images.dtype)
    cx_out, cy_out = (out_w - 1) * 0.5, (out_h - 1) * 0.5
    cx_in, cy_in = (w - 1) * 0.5, (h - 1) * 0.5
    for i in prange(n):
        m0, m1, m2 = matrices[i, 0], matrices[i, 1], matrices[i, 2]
        m3, m4, m5 = matrices[i, 3], matrices[i, 4], matrices[i, 5]
        for y in range(out_h):
            yc = y - cy_out
            for x in range(out_w):
                xc = x - cx_out
                ix = m0 * xc + m1 * yc + m2 + cx_in
                iy = m3 * xc + m4 * yc + m5 + cy_in
                if not bilinear:
                    sx, sy = int(np.rint(ix)), int(np.rint(iy))
                    inside = 0 <= sx < w and 0 <= sy < h
                    for ch in range(c):
                        if inside:
                            out[i, ch, y, x] = images[i, ch, sy, sx]
                        else:
                            out[i, ch, y, x] = fill[ch] if use_fill else 0
                    continue
                x0, y0 = int(np.floor(ix)), int(np.floor(iy))
                fx, fy = ix - x0, iy - y0
                w00, w01 = (1 - fx) * (1 - fy), fx * (1 - fy)
                w10, w11 = (1 - fx) * fy, fx * fy
                in_x0, in_x1 = 0 <= x0 < w, 0 <= x0 + 1 < w
                in_y0, in_y1 = 0 <= y0 < h, 0 <= y0 + 1 < h
                mask = 0.0
                if in_y0 and in_x0:
                    mask += w00
                if in_y0 and in_x1:
                    mask += w01
                if in_y1 and in_x0:
                    mask += w10
                if in_y1 and in_x1:
                    mask += w11
                for ch in range(c):
                    v = 0.0
                    if in_y0 and in_x0:
                        v += w00 * images[i, ch, y0, x0]
                    if in_y0 and in_x1:
                        v += w01 * images[i, ch, y0, x0 + 1]
                    if in_y1 and in_x0:
                        v += w10 * images[i, ch, y0 + 1, x0]
                    if in_y1 and in_x1:
                        v += w11 * images[i, ch, y0 + 1, x0 + 1]
                    if use_fill:
                        v = mask * (v - fill[ch]) + fill[ch]
                    out[i, ch, y, x] = v
    return out


@njit(nogil=True, cache=True)
def _quantize(img, integer, consts):
    """Clamp to [0, bound] and, for integer images held as floats, truncate as torch's .to(uint8) does."""
    flat = img.reshape(-1)
    zero, top = consts[C_ZERO], consts[C_BOUND]
    for k in range(flat.size):
        v = min(max(flat[k], zero), top)
        flat[k] = np.trunc(v) if integer else v


@njit(nogil=True, cache=True)
def _fma(a, b, c, like):
    """a * b + c rounded once to `like`'s dtype: torch's vectorized add(other, alpha) is a fused multiply-add.
    For float32 operands the float64 result is exact, so its rounding to float32 is the FMA's."""
    return like.dtype.type(np.float64(a) * np.float64(b) + np.float64(c))


@njit(nogil=True, cache=True)
def _gray_value(img, y, x, consts):
    """torchvision's r.mul(wr).add_(g, alpha=wg).add_(b, alpha=wb), with its fused roundings."""
    partial = _fma(img[1, y, x], consts[C_WG], img[0, y, x] * consts[C_WR], img)
    return _fma(img[2, y, x], consts[C_WB], partial, img)


@njit(nogil=True, cache=True)
def _plane_mean(img, integer, consts):
    """Mean of the grayscale plane (floored first for integer images) or of the single channel, in img's dtype."""
    _, h, w = img.shape
    total = 0.0
    for y in range(h):
        for x in range(w):
            if img.shape[0] == 3:
                g = _gray_value(img, y, x, consts)
                total += np.floor(g) if integer else g
            else:
                total += img[0, y, x]
    cast = np.empty(1, img.dtype)
    cast[0] = total / (h * w)
    return cast[0]


@njit(nogil=True, cache=True)
def _hue_shift(img, factor, integer, consts):
    """torchvision's adjust_hue on one RGB image: to [0, 1] floats, RGB -> HSV, h = (h + factor) mod 1, back."""
    _, h, w = img.shape
    zero, one = consts[C_ZERO], consts[C_ONE]
    for y in range(h):
        for x in range(w):
            r, g, b = img[0, y, x], img[1, y, x], img[2, y, x]
            if integer:
                r, g, b = r * consts[C_TO_UNIT], g * consts[C_TO_UNIT], b * consts[C_TO_UNIT]
            maxc, minc = max(r, g, b), min(r, g, b)
            eqc = maxc == minc
            s = (maxc - minc) / (one if eqc else maxc)
            div = one if eqc else maxc - minc
            rc, gc, bc = (maxc - r) / div, (maxc - g) / div, (maxc - b) / div
            if maxc == r:
                hh = bc - gc
            elif maxc == g:
                hh = rc + consts[C_TWO] - bc
            else:
                hh = gc + consts[C_FOUR] - rc
            hh = hh * consts[C_SIXTH] + one  # in (0, 2): fmod(hh, 1) exactly, without libm's slow fmodf
            if hh >= one:
                hh = hh - one
            hh = hh + factor
            hh = hh - np.floor(hh)  # torch.remainder(h, 1.0)
            v = maxc
            h6 = hh * consts[C_SIX]
            k = np.floor(h6)
            f = h6 - k
            sector = int(k) % 6
            sxf = s * f
            one_minus_s = one - s
            q = min(max((one - sxf) * v, zero), one)
            t = min(max((sxf + one_minus_s) * v, zero), one)
            p = min(max(one_minus_s * v, zero), one)
            if sector == 0:
                r, g, b = v, t, p
            elif sector == 1:
                r, g, b = q, v, p
            elif sector == 2:
                r, g, b = p, v, t
            elif sector == 3:
                r, g, b = p, q, v
            elif sector == 4:
                r, g, b = t, p, v
            else:
                r, g, b = v, p, q
            if integer:  # torchvision's float -> uint8 conversion: trunc(x * 255.999)
                r = np.trunc(r * consts[C_FROM_UNIT])
                g = np.trunc(g * consts[C_FROM_UNIT])
                b = np.trunc(b * consts[C_FROM_UNIT])
            img[0, y, x], img[1, y, x], img[2, y, x] = r, g, b


@njit(parallel=True, nogil=True, cache=True)
def color_ops(images, ops, factors, alphas, consts, integer):
    """torchvision's colour adjustments, applied per image in the order given.

    images float (N, C, H, W), C 1 or 3, holding [0, 1] floats or (integer=True) uint8 values as floats;
    ops int64 (N, K): image n gets ops[n, 0], ops[n, 1], ... (OP_* codes; OP_NONE skips); factors (N, K) the op's
    factor and alphas (N, K) = 1 - factor (computed in float64, as torchvision's blend alpha), both in images'
    dtype; consts = color_constants(images.dtype, integer). Brightness, contrast and saturation end clamped to
    [0, bound] and, for integer images, truncated, as each torchvision op returns a uint8 image; saturation,
    hue and grayscale leave 1-channel images unchanged.
    """
    out = images.copy()
    n, c, h, w = out.shape
    for i in prange(n):
        img = out[i]
        for k in range(ops.shape[1]):
            op = ops[i, k]
            ratio, alpha = factors[i, k], alphas[i, k]
            if op == OP_BRIGHTNESS:
                for ch in range(c):
                    for y in range(h):
                        for x in range(w):
                            img[ch, y, x] = img[ch, y, x] * ratio
                _quantize(img, integer, consts)
            elif op == OP_CONTRAST:
                mean = _plane_mean(img, integer, consts)
                for ch in range(c):
                    for y in range(h):
                        for x in range(w):
                            img[ch, y, x] = _fma(mean, alpha, img[ch, y, x] * ratio, img)
                _quantize(img, integer, consts)
            elif op == OP_SATURATION and c == 3:
                for y in range(h):
                    for x in range(w):
                        g = _gray_value(img, y, x, consts)
                        if integer:
                            g = np.floor(g)
                        for ch in range(3):
                            img[ch, y, x] = _fma(g, alpha, img[ch, y, x] * ratio, img)
                _quantize(img, integer, consts)
            elif op == OP_HUE and c == 3:
                _hue_shift(img, ratio, integer, consts)
            elif op == OP_GRAYSCALE and c == 3:
                for y in range(h):
                    for x in range(w):
                        g = _gray_value(img, y, x, consts)
                        if integer:
                            g = np.trunc(g)
                        img[0, y, x] = g
                        img[1, y, x] = g
                        img[2, y, x] = g
    return out


@njit(parallel=True, nogil=True, cache=True)
def erase_constant(images, boxes, values):
    """images (N, C, H, W); boxes int64 (N, K, 4) rows (top, left, height, width) inside the image (height or
    width 0: no box); values (N, C) in images' dtype: every box of image n is set to values[n, c] in channel c."""
    out = images.copy()
    n, c = images.shape[0], images.shape[1]
    for i in prange(n):
        for k in range(boxes.shape[1]):
            top, left, bh, bw = boxes[i, k, 0], boxes[i, k, 1], boxes[i, k, 2], boxes[i, k, 3]
            for ch in range(c):
                v = values[i, ch]
                for y in range(top, top + bh):
                    for x in range(left, left + bw):
                        out[i, ch, y, x] = v
    return out


@njit(parallel=True, nogil=True, cache=True)
def erase_noise(images, boxes, noise, offsets):
    """One box per image, boxes int64 (N, 4) as in erase_constant, filled from the flat noise array: pixel
    (c, y, x) of box n takes noise[offsets[n] + (c * height + y) * width + x] (offsets int64 (N,))."""
    out = images.copy()
    n, c = images.shape[0], images.shape[1]
    for i in prange(n):
        top, left, bh, bw = boxes[i, 0], boxes[i, 1], boxes[i, 2], boxes[i, 3]
        base = offsets[i]
        for ch in range(c):
            for y in range(bh):
                for x in range(bw):
                    out[i, ch, top + y, left + x] = noise[base + (ch * bh + y) * bw + x]
    return out

"""Plain-NumPy references for the augmentation kernels in cpu_augment.py (same signatures, same results)."""
import numpy as np

from fastnn._kernels.augment_codes import (C_BOUND, C_FOUR, C_FROM_UNIT, C_ONE, C_SIX, C_SIXTH, C_TO_UNIT, C_TWO,
                                         C_WB, C_WG, C_WR, OP_BRIGHTNESS, OP_CONTRAST, OP_GRAYSCALE, OP_HUE,
                                         OP_SATURATION, color_constants)

__all__ = ["crop_flip", "scale_normalize", "affine_sample", "color_ops", "color_constants", "erase_constant", "erase_noise"]


def crop_flip(images, tops, lefts, out_h, out_w, hflip, vflip, fill):
    n, c, h, w = images.shape
    out = np.empty((n, c, out_h, out_w), images.dtype)
    for i in range(n):
        padded = np.empty((c, h + 2 * out_h, w + 2 * out_w), images.dtype)  # pad by a full crop on every side
        padded[...] = np.asarray(fill).reshape(-1, 1, 1)
        padded[:, out_h:out_h + h, out_w:out_w + w] = images[i]
        y0, x0 = tops[i] + out_h, lefts[i] + out_w
        if 0 <= y0 and y0 + out_h <= padded.shape[1] and 0 <= x0 and x0 + out_w <= padded.shape[2]:
            window = padded[:, y0:y0 + out_h, x0:x0 + out_w]
        else:  # the window lies entirely in the fill
            window = np.empty((c, out_h, out_w), images.dtype)
            window[...] = np.asarray(fill).reshape(-1, 1, 1)
        if hflip[i]:
            window = window[:, :, ::-1]
        if vflip[i]:
            window = window[:, ::-1, :]
        out[i] = window
    return out


def scale_normalize(images, scale, mean, std):
    values = images.astype(mean.dtype)
    return (values * scale[0] / scale[1] - mean.reshape(-1, 1, 1)) / std.reshape(-1, 1, 1)


def affine_sample(images, matrices, out_h, out_w, bilinear, fill, use_fill):
    n, c, h, w = images.shape
    ys, xs = np.meshgrid(np.arange(out_h) - (out_h - 1) / 2, np.arange(out_w) - (out_w - 1) / 2, indexing="ij")
    out = np.empty((n, c, out_h, out_w), images.dtype)
    fill = np.asarray(fill, np.float64).reshape(-1, 1, 1)
    for i in range(n):
        a, b, cc, d, e, f = matrices[i]
        ix = a * xs + b * ys + cc + (w - 1) / 2
        iy = d * xs + e * ys + f + (h - 1) / 2
        if not bilinear:
            sx, sy = np.rint(ix).astype(np.int64), np.rint(iy).astype(np.int64)
            inside = (sx >= 0) & (sx < w) & (sy >= 0) & (sy < h)
            values = images[i][:, np.clip(sy, 0, h - 1), np.clip(sx, 0, w - 1)].astype(np.float64)
            out[i] = np.where(inside, values, fill if use_fill else 0.0)
            continue
        x0, y0 = np.floor(ix).astype(np.int64), np.floor(iy).astype(np.int64)
        fx, fy = ix - x0, iy - y0
        value = np.zeros((c, out_h, out_w))
        mask = np.zeros((out_h, out_w))
        for dy, dx, weight in ((0, 0, (1 - fx) * (1 - fy)), (0, 1, fx * (1 - fy)), (1, 0, (1 - fx) * fy),
                               (1, 1, fx * fy)):
            yy, xx = y0 + dy, x0 + dx
            inside = (xx >= 0) & (xx < w) & (yy >= 0) & (yy < h)
            corner = images[i][:, np.clip(yy, 0, h - 1), np.clip(xx, 0, w - 1)].astype(np.float64)
            value += np.where(inside, weight * corner, 0.0)
            mask += np.where(inside, weight, 0.0)
        out[i] = mask * (value - fill) + fill if use_fill else value
    return out


def _rgb_to_hsv(r, g, b, k):
    maxc, minc = np.maximum(np.maximum(r, g), b), np.minimum(np.minimum(r, g), b)
    eqc = maxc == minc
    one = k[C_ONE]
    s = (maxc - minc) / np.where(eqc, one, maxc)
    div = np.where(eqc, one, maxc - minc)
    rc, gc, bc = (maxc - r) / div, (maxc - g) / div, (maxc - b) / div
    hue = np.where(maxc == r, bc - gc, np.where(maxc == g, rc + k[C_TWO] - bc, gc + k[C_FOUR] - rc))
    return np.fmod(hue * k[C_SIXTH] + one, one), s, maxc


def _hsv_to_rgb(hue, s, v, k):
    one, zero = k[C_ONE], k[C_ONE] - k[C_ONE]
    h6 = hue * k[C_SIX]
    sector = np.floor(h6)
    f = h6 - sector
    sector = sector.astype(np.int64) % 6
    sxf = s * f
    q = np.clip((one - sxf) * v, zero, one)
    t = np.clip((sxf + (one - s)) * v, zero, one)
    p = np.clip((one - s) * v, zero, one)
    r = np.choose(sector, [v, q, p, p, t, v])
    g = np.choose(sector, [t, v, v, q, p, p])
    b = np.choose(sector, [p, p, t, v, v, q])
    return r, g, b


def _fma(a, b, c):
    """a * b + c rounded once to c's dtype (torch's add with alpha is a fused multiply-add; exact in float64
    for float32 operands)."""
    return (np.float64(b) * np.asarray(a, np.float64) + np.asarray(c, np.float64)).astype(np.asarray(c).dtype)


def _gray(img, k):
    return _fma(img[2], k[C_WB], _fma(img[1], k[C_WG], img[0] * k[C_WR]))


def color_ops(images, ops, factors, alphas, consts, integer):
    out = images.copy()
    k = consts
    for i in range(out.shape[0]):
        img = out[i]
        channels = img.shape[0]
        for j in range(ops.shape[1]):
            op, ratio, alpha = ops[i, j], factors[i, j], alphas[i, j]
            if op == OP_BRIGHTNESS:
                img[...] = img * ratio
            elif op == OP_CONTRAST:
                plane = _gray(img, k) if channels == 3 else img[0]
                if integer and channels == 3:
                    plane = np.floor(plane)
                mean = np.asarray(plane.astype(np.float64).mean(), img.dtype)
                img[...] = _fma(mean, alpha, img * ratio)
            elif op == OP_SATURATION and channels == 3:
                gray = _gray(img, k)
                if integer:
                    gray = np.floor(gray)
                img[...] = _fma(gray, alpha, img * ratio)
            elif op == OP_HUE and channels == 3:
                rgb = img * k[C_TO_UNIT] if integer else img
                hue, s, v = _rgb_to_hsv(rgb[0], rgb[1], rgb[2], k)
                hue = hue + ratio
                hue = hue - np.floor(hue)
                rgb = np.stack(_hsv_to_rgb(hue, s, v, k))
                img[...] = np.trunc(rgb * k[C_FROM_UNIT]) if integer else rgb
                continue
            elif op == OP_GRAYSCALE and channels == 3:
                gray = _gray(img, k)
                img[...] = np.trunc(gray) if integer else gray
                continue
            else:
                continue
            np.clip(img, 0, k[C_BOUND], out=img)
            if integer:
                np.trunc(img, out=img)
    return out


def erase_constant(images, boxes, values):
    out = images.copy()
    for i in range(images.shape[0]):
        for top, left, bh, bw in boxes[i]:
            out[i, :, top:top + bh, left:left + bw] = values[i][:, None, None]
    return out


def erase_noise(images, boxes, noise, offsets):
    out = images.copy()
    c = images.shape[1]
    for i, (top, left, bh, bw) in enumerate(boxes):
        size = c * bh * bw
        out[i, :, top:top + bh, left:left + bw] = noise[offsets[i]:offsets[i] + size].reshape(c, bh, bw)
    return out

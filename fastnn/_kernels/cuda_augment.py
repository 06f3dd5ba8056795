"""Augmentation kernels (numba.cuda) on image batches (N, C, H, W): the entry points of cpu_augment.py with its
semantics (see its docstrings).

One thread per output element (per output pixel for affine_sample, which loops over the channels like the CPU
kernel); each writes only its own element, so the kernels return new arrays and never touch their inputs.
color_ops runs one block per image: its threads take fixed strided sets of pixels through the image's ops in
order, and contrast's mean is a fixed-tree block sum (exact for integer images, whose floored gray values sum
exactly in float64). Arithmetic stays in the images' dtype through the `consts` table, as on the CPU.
"""
import math

from numba import cuda, float64

from fastnn._kernels.augment_codes import (C_BOUND, C_FOUR, C_FROM_UNIT, C_ONE, C_SIX, C_SIXTH, C_TO_UNIT,
                                           C_TWO, C_WB, C_WG, C_WR, C_ZERO, OP_BRIGHTNESS, OP_CONTRAST,
                                           OP_GRAYSCALE, OP_HUE, OP_SATURATION)
from fastnn._kernels.cuda_common import REDUCE_THREADS, THREADS, blocks, empty_like
from fastnn._kernels.cuda_norm import block_sum

__all__ = ["crop_flip", "scale_normalize", "affine_sample", "color_ops", "erase_constant", "erase_noise"]


@cuda.jit
def _crop_flip(images, tops, lefts, hflip, vflip, fill, out):
    n, c, h, w = images.shape
    _, _, out_h, out_w = out.shape
    k = cuda.grid(1)
    if k < out.size:
        i = k // (c * out_h * out_w)
        ch = (k // (out_h * out_w)) % c
        y = (k // out_w) % out_h
        x = k % out_w
        sy = tops[i] + (out_h - 1 - y if vflip[i] else y)
        sx = lefts[i] + (out_w - 1 - x if hflip[i] else x)
        out[i, ch, y, x] = images[i, ch, sy, sx] if 0 <= sy < h and 0 <= sx < w else fill[ch]


def crop_flip(images, tops, lefts, out_h, out_w, hflip, vflip, fill):
    out = empty_like(images, (images.shape[0], images.shape[1], out_h, out_w))
    _crop_flip[blocks(out.size), THREADS](images, tops, lefts, hflip, vflip, fill, out)
    return out


@cuda.jit
def _scale_normalize(images, scale, mean, std, out):
    n, c, h, w = images.shape
    k = cuda.grid(1)
    if k < out.size:
        i = k // (c * h * w)
        ch = (k // (h * w)) % c
        y = (k // w) % h
        x = k % w
        out[i, ch, y, x] = (images[i, ch, y, x] * scale[0] / scale[1] - mean[ch]) / std[ch]


def scale_normalize(images, scale, mean, std):
    out = empty_like(images, images.shape, mean.dtype)
    _scale_normalize[blocks(out.size), THREADS](images, scale, mean, std, out)
    return out


@cuda.jit(device=True)
def _rint(v):
    """Round half to even (grid_sample's nearbyint, NumPy's rint)."""
    r = math.floor(v + 0.5)
    if r - v == 0.5 and r % 2 != 0:
        r -= 1
    return int(r)


@cuda.jit
def _affine(images, matrices, bilinear, fill, use_fill, out):
    n, c, h, w = images.shape
    _, _, out_h, out_w = out.shape
    k = cuda.grid(1)
    if k < n * out_h * out_w:
        i = k // (out_h * out_w)
        y = (k // out_w) % out_h
        x = k % out_w
        xc = x - (out_w - 1) * 0.5
        yc = y - (out_h - 1) * 0.5
        ix = matrices[i, 0] * xc + matrices[i, 1] * yc + matrices[i, 2] + (w - 1) * 0.5
        iy = matrices[i, 3] * xc + matrices[i, 4] * yc + matrices[i, 5] + (h - 1) * 0.5
        if not bilinear:
            sx = _rint(ix)
            sy = _rint(iy)
            inside = 0 <= sx < w and 0 <= sy < h
            for ch in range(c):
                if inside:
                    out[i, ch, y, x] = images[i, ch, sy, sx]
                else:
                    out[i, ch, y, x] = fill[ch] if use_fill else 0
            return
        x0 = int(math.floor(ix))
        y0 = int(math.floor(iy))
        fx = ix - x0
        fy = iy - y0
        w00 = (1 - fx) * (1 - fy)
        w01 = fx * (1 - fy)
        w10 = (1 - fx) * fy
        w11 = fx * fy
        in_x0 = 0 <= x0 < w
        in_x1 = 0 <= x0 + 1 < w
        in_y0 = 0 <= y0 < h
        in_y1 = 0 <= y0 + 1 < h
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


def affine_sample(images, matrices, out_h, out_w, bilinear, fill, use_fill):
    n = images.shape[0]
    out = empty_like(images, (n, images.shape[1], out_h, out_w))
    _affine[blocks(n * out_h * out_w), THREADS](images, matrices, bool(bilinear), fill, bool(use_fill), out)
    return out


@cuda.jit
def _erase_constant(images, boxes, values, out):
    n, c, h, w = images.shape
    k = cuda.grid(1)
    if k < images.size:
        i = k // (c * h * w)
        ch = (k // (h * w)) % c
        y = (k // w) % h
        x = k % w
        v = images[i, ch, y, x]
        for b in range(boxes.shape[1]):
            if boxes[i, b, 0] <= y < boxes[i, b, 0] + boxes[i, b, 2] and \
                    boxes[i, b, 1] <= x < boxes[i, b, 1] + boxes[i, b, 3]:
                v = values[i, ch]
        out[i, ch, y, x] = v


def erase_constant(images, boxes, values):
    out = empty_like(images)
    _erase_constant[blocks(images.size), THREADS](images, boxes, values, out)
    return out


@cuda.jit
def _erase_noise(images, boxes, noise, offsets, out):
    n, c, h, w = images.shape
    k = cuda.grid(1)
    if k < images.size:
        i = k // (c * h * w)
        ch = (k // (h * w)) % c
        y = (k // w) % h
        x = k % w
        top, left, bh, bw = boxes[i, 0], boxes[i, 1], boxes[i, 2], boxes[i, 3]
        if top <= y < top + bh and left <= x < left + bw:
            out[i, ch, y, x] = noise[offsets[i] + (ch * bh + y - top) * bw + x - left]
        else:
            out[i, ch, y, x] = images[i, ch, y, x]


def erase_noise(images, boxes, noise, offsets):
    out = empty_like(images)
    _erase_noise[blocks(images.size), THREADS](images, boxes, noise, offsets, out)
    return out


@cuda.jit(device=True)
def _floor(v, consts):
    """floor(v) in the images' dtype (math.floor returns an integer, which would turn the arithmetic after it
    into float64). Every value truncated here is >= 0, where trunc is floor."""
    return consts.dtype.type(math.floor(v))


@cuda.jit(device=True)
def _quantize(v, integer, consts):
    v = min(max(v, consts[C_ZERO]), consts[C_BOUND])
    return _floor(v, consts) if integer else v


@cuda.jit(device=True)
def _fma(a, b, c, consts):
    """a * b + c rounded once to the images' dtype, as torch's fused add(other, alpha) (cpu_augment._fma)."""
    return consts.dtype.type(float64(a) * float64(b) + float64(c))


@cuda.jit(device=True)
def _gray(img, i, y, x, consts):
    """torchvision's r.mul(wr).add_(g, alpha=wg).add_(b, alpha=wb), with its fused roundings."""
    partial = _fma(img[i, 1, y, x], consts[C_WG], img[i, 0, y, x] * consts[C_WR], consts)
    return _fma(img[i, 2, y, x], consts[C_WB], partial, consts)


@cuda.jit(device=True)
def _hue_pixel(img, i, y, x, factor, integer, consts):
    """torchvision's adjust_hue on one RGB pixel (cpu_augment._hue_shift's arithmetic, step for step)."""
    zero, one = consts[C_ZERO], consts[C_ONE]
    r, g, b = img[i, 0, y, x], img[i, 1, y, x], img[i, 2, y, x]
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
    hh = hh * consts[C_SIXTH] + one
    if hh >= one:
        hh = hh - one
    hh = hh + factor
    hh = hh - _floor(hh, consts)
    v = maxc
    h6 = hh * consts[C_SIX]
    k = _floor(h6, consts)
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
        r = _floor(r * consts[C_FROM_UNIT], consts)
        g = _floor(g * consts[C_FROM_UNIT], consts)
        b = _floor(b * consts[C_FROM_UNIT], consts)
    img[i, 0, y, x] = r
    img[i, 1, y, x] = g
    img[i, 2, y, x] = b


@cuda.jit
def _color_ops(img, ops, factors, alphas, consts, integer, means):
    n, c, h, w = img.shape
    i = cuda.blockIdx.x
    t = cuda.threadIdx.x
    shared = cuda.shared.array(REDUCE_THREADS, float64)
    for k in range(ops.shape[1]):
        op = ops[i, k]
        ratio = factors[i, k]
        alpha = alphas[i, k]
        if op == OP_CONTRAST:
            total = 0.0
            for pixel in range(t, h * w, REDUCE_THREADS):
                y = pixel // w
                x = pixel % w
                if c == 3:
                    g = _gray(img, i, y, x, consts)
                    total += _floor(g, consts) if integer else g
                else:
                    total += img[i, 0, y, x]
            total = block_sum(shared, t, total)
            if t == 0:
                means[i] = total / (h * w)  # the store casts to the images' dtype, as the CPU kernel's
            cuda.syncthreads()
        for pixel in range(t, h * w, REDUCE_THREADS):
            y = pixel // w
            x = pixel % w
            if op == OP_BRIGHTNESS:
                for ch in range(c):
                    img[i, ch, y, x] = _quantize(img[i, ch, y, x] * ratio, integer, consts)
            elif op == OP_CONTRAST:
                for ch in range(c):
                    img[i, ch, y, x] = _quantize(_fma(means[i], alpha, img[i, ch, y, x] * ratio, consts), integer,
                                                 consts)
            elif op == OP_SATURATION and c == 3:
                g = _gray(img, i, y, x, consts)
                if integer:
                    g = _floor(g, consts)
                for ch in range(3):
                    img[i, ch, y, x] = _quantize(_fma(g, alpha, img[i, ch, y, x] * ratio, consts), integer, consts)
            elif op == OP_HUE and c == 3:
                _hue_pixel(img, i, y, x, ratio, integer, consts)
            elif op == OP_GRAYSCALE and c == 3:
                g = _gray(img, i, y, x, consts)
                if integer:
                    g = _floor(g, consts)
                img[i, 0, y, x] = g
                img[i, 1, y, x] = g
                img[i, 2, y, x] = g


def color_ops(images, ops, factors, alphas, consts, integer):
    out = images.copy()
    if images.shape[0]:
        means = empty_like(images, (images.shape[0],))
        _color_ops[images.shape[0], REDUCE_THREADS](out, ops, factors, alphas, consts, bool(integer), means)
    return out

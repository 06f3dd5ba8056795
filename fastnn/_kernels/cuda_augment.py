"""Augmentation kernels (numba.cuda) on image batches (N, C, H, W): crop_flip, affine_sample, erase_constant and
erase_noise with the semantics of cpu_augment.py (see its docstrings); color_ops is not here yet (cuda.NOT_YET).

One thread per output element (per output pixel for affine_sample, which loops over the channels like the CPU
kernel); each writes only its own element, so the kernels return new arrays and never touch their inputs.
"""
import math

from numba import cuda

from fastnn._kernels.cuda_common import THREADS, blocks, empty_like

__all__ = ["crop_flip", "affine_sample", "erase_constant", "erase_noise"]


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

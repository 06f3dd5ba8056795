"""Resampling ops with PyTorch's semantics: interpolate (nearest, nearest-exact, linear/bilinear/trilinear, bicubic,
area), pixel_shuffle/pixel_unshuffle, and unfold/fold (im2col/col2im), each with its backward beside its forward.

interpolate is separable: along every spatial dim the output is a fixed (out, in) matrix times the input, with
one nonzero per row (nearest), two (linear) or four (bicubic). The backward is the transposed matrix, so forward
and backward share one construction and run as array products on any backend.
"""
import math
import numbers

import numpy as np

from fastnn._tracing import traced
from fastnn._validation import int_tuple
from fastnn.autograd import make_result
from fastnn.ops.pool_nd import adaptive_avg_pool1d, adaptive_avg_pool2d
from fastnn.ops.shape import permute, reshape, transpose
from fastnn.tensor import Tensor

_LINEAR_MODES = {"linear": 1, "bilinear": 2, "trilinear": 3, "bicubic": 2}
_CUBIC_A = -0.75  # PyTorch's (and OpenCV's) cubic convolution coefficient
_MODES = ("nearest", "nearest-exact", "linear", "bilinear", "trilinear", "area", "bicubic")


def _check_tensor(name, input):
    if not isinstance(input, Tensor):
        raise TypeError(f"{name}: input must be a Tensor, got {type(input).__name__}")


def _output_sizes(input, size, scale_factor, recompute_scale_factor, spatial):
    """(output sizes, per-dim scale used to map output to input positions or None when it is in/out)."""
    if (size is None) == (scale_factor is None):
        raise ValueError("only one of size or scale_factor should be defined" if size is not None
                         else "either size or scale_factor should be defined")
    in_sizes = input.shape[2:]
    if size is not None:
        if recompute_scale_factor:
            raise ValueError("recompute_scale_factor is not meaningful with an explicit size.")
        sizes = tuple(size) if isinstance(size, (tuple, list)) else (size,) * spatial
        if len(sizes) != spatial:
            raise ValueError(f"Input and output must have the same number of spatial dimensions, but got input "
                             f"with spatial dimensions of {list(in_sizes)} and output size of {list(sizes)}. "
                             f"Please provide input tensor in (N, C, d1, d2, ...,dK) format and output size in "
                             f"(o1, o2, ...,oK) format.")
        if not all(isinstance(s, numbers.Integral) and not isinstance(s, bool) and s > 0 for s in sizes):
            raise ValueError(f"interpolate: size must hold positive integers, got {size!r}")
        return tuple(int(s) for s in sizes), (None,) * spatial
    factors = tuple(scale_factor) if isinstance(scale_factor, (tuple, list)) else (scale_factor,) * spatial
    if len(factors) != spatial:
        raise ValueError(f"Input and scale_factor must have the same number of spatial dimensions, but got input "
                         f"with spatial dimensions of {list(in_sizes)} and scale_factor of shape {list(factors)}. "
                         f"Please provide input tensor in (N, C, d1, d2, ...,dK) format and scale_factor in "
                         f"(s1, s2, ...,sK) format.")
    if not all(isinstance(f, numbers.Real) and not isinstance(f, bool) and f > 0 for f in factors):
        raise ValueError(f"interpolate: scale_factor must hold positive numbers, got {scale_factor!r}")
    sizes = tuple(int(math.floor(n * float(f))) for n, f in zip(in_sizes, factors))
    if any(s <= 0 for s in sizes):
        raise ValueError(f"interpolate: input sizes {list(in_sizes)} times scale_factor {scale_factor!r} give an "
                         f"empty output {list(sizes)}")
    # PyTorch maps positions with 1/scale_factor unless asked to recompute the scale from the sizes
    scales = (None,) * spatial if recompute_scale_factor else tuple(1.0 / float(f) for f in factors)
    return sizes, scales


def _weights(xp, dtype, n_in, n_out, mode, align_corners, scale):
    """The (n_out, n_in) matrix mapping one spatial dim of the input to the output (PyTorch's index math, in
    float32 for the nearest modes as PyTorch computes it)."""
    dst = xp.arange(n_out)
    src_ids = xp.arange(n_in).reshape(1, n_in)
    if mode in ("nearest", "nearest-exact"):
        s = np.float32(n_in / n_out if scale is None else scale)
        pos = dst.astype(np.float32) + (np.float32(0.5) if mode == "nearest-exact" else np.float32(0))
        idx = xp.minimum(xp.floor(pos * s).astype(np.int64), n_in - 1)
        return (idx.reshape(n_out, 1) == src_ids).astype(dtype)
    if align_corners:
        src = dst * ((n_in - 1) / (n_out - 1) if n_out > 1 else 0.0)
    else:
        s = n_in / n_out if scale is None else scale
        src = (dst + 0.5) * s - 0.5
        if mode != "bicubic":  # linear modes clamp negative sources to 0; cubic keeps them
            src = xp.maximum(src, 0.0)
    if mode == "bicubic":
        return _cubic_weights(xp, dtype, src, n_in, n_out, src_ids)
    i0 = xp.floor(src).astype(np.int64)
    i1 = xp.minimum(i0 + 1, n_in - 1)
    lam = (src - i0).reshape(n_out, 1)
    w = (i0.reshape(n_out, 1) == src_ids) * (1 - lam) + (i1.reshape(n_out, 1) == src_ids) * lam
    return w.astype(dtype)


def _cubic_weights(xp, dtype, src, n_in, n_out, src_ids):
    """Four taps at floor(src) - 1 .. floor(src) + 2 (clamped to the edge, so clamped taps add up) with Keys'
    cubic convolution weights, as aten's upsample_bicubic2d."""
    a = _CUBIC_A
    base = xp.floor(src)
    t = (src - base).reshape(n_out, 1)
    base = base.astype(np.int64).reshape(n_out, 1)

    def far(x):  # 1 < |x| < 2
        return ((a * x - 5 * a) * x + 8 * a) * x - 4 * a

    def near(x):  # |x| <= 1
        return ((a + 2) * x - (a + 3)) * x * x + 1
    taps = (far(t + 1), near(t), near(1 - t), far(2 - t))
    w = 0
    for k, coef in enumerate(taps):
        w = w + (xp.clip(base + (k - 1), 0, n_in - 1) == src_ids) * coef
    return w.astype(dtype)


def _apply_along(xp, data, mats, transpose):
    """Multiply every spatial axis (2, 3, ...) of `data` by its matrix (or its transpose)."""
    for k, m in enumerate(mats):
        axis = 2 + k
        moved = xp.moveaxis(data, axis, -1)
        moved = moved @ (m if transpose else m.T)
        data = xp.moveaxis(moved, -1, axis)
    return xp.ascontiguousarray(data)


@traced
def interpolate(input, size=None, scale_factor=None, mode="nearest", align_corners=None,
                recompute_scale_factor=None, antialias=False):
    """PyTorch's F.interpolate on (N, C, d1[, d2[, d3]]) inputs."""
    _check_tensor("interpolate", input)
    if mode not in _MODES:
        raise ValueError(f"interpolate: mode must be one of {_MODES}, got {mode!r}")
    if mode in ("nearest", "nearest-exact", "area") and align_corners is not None:
        raise ValueError("align_corners option can only be set with the interpolating modes: "
                         "linear | bilinear | bicubic | trilinear")
    if antialias:
        raise NotImplementedError("interpolate: antialias=True is not implemented in fastnn")
    if input.ndim not in (3, 4, 5):
        raise ValueError(f"interpolate: input must be 3-D, 4-D or 5-D (N, C, spatial...), got shape "
                         f"{tuple(input.shape)}")
    spatial = input.ndim - 2
    if mode in _LINEAR_MODES and _LINEAR_MODES[mode] != spatial:
        raise NotImplementedError(f"Got {input.ndim}D input, but {mode} mode needs {_LINEAR_MODES[mode] + 2}D "
                                  f"input")
    if input.dtype.kind != "f" and mode != "nearest" and mode != "nearest-exact":
        raise TypeError(f"interpolate: mode {mode!r} needs a floating point input, got {input.dtype}")
    sizes, scales = _output_sizes(input, size, scale_factor, recompute_scale_factor, spatial)
    if mode == "area":
        if spatial == 1:
            return adaptive_avg_pool1d(input, sizes[0])
        if spatial == 2:
            return adaptive_avg_pool2d(input, sizes)
        raise NotImplementedError("interpolate: mode='area' on 5-D inputs is not implemented in fastnn yet")
    xp = input._backend.xp
    wdtype = input.dtype if input.dtype.kind == "f" else np.dtype(np.float64)
    mats = [_weights(xp, wdtype, n_in, n_out, mode, bool(align_corners), s)
            for n_in, n_out, s in zip(input.shape[2:], sizes, scales)]
    if mode in ("nearest", "nearest-exact"):
        # picking values (exact for every dtype); the backward still sums through the one-hot matrices
        out = input._data
        for k, m in enumerate(mats):
            out = xp.take(out, m.argmax(axis=1), axis=2 + k)
        out = xp.ascontiguousarray(out)
    else:
        out = _apply_along(xp, input._data, mats, False)

    def backward(g):
        return (_apply_along(xp, g, mats, True),)
    return make_result(out, (input,), backward, "interpolate", saved=(), tangent=lambda t: interpolate(
        t, size, scale_factor, mode, align_corners, recompute_scale_factor))


# ---- pixel shuffle -------------------------------------------------------------------------------------------
def _factor(name, arg, value):
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value <= 0:
        raise ValueError(f"{name}: {arg} must be a positive integer, got {value!r}")
    return int(value)


@traced
def pixel_shuffle(input, upscale_factor):
    """(*, C*r*r, H, W) -> (*, C, H*r, W*r); a reshape-permute-reshape, differentiable through those views."""
    _check_tensor("pixel_shuffle", input)
    r = _factor("pixel_shuffle", "upscale_factor", upscale_factor)
    if input.ndim < 3:
        raise RuntimeError(f"pixel_shuffle expects input to have at least 3 dimensions, but got input with "
                           f"{input.ndim} dimension(s)")
    *batch, c, h, w = input.shape
    if c % (r * r):
        raise RuntimeError(f"pixel_shuffle expects its input's 'channel' dimension to be divisible by the square "
                           f"of upscale_factor, but input.size(-3)={c} is not divisible by {r * r}")
    b = len(batch)
    x = reshape(input, (*batch, c // (r * r), r, r, h, w))
    x = permute(x, tuple(range(b)) + (b, b + 3, b + 1, b + 4, b + 2))
    return reshape(x, (*batch, c // (r * r), h * r, w * r))


def pixel_unshuffle(input, downscale_factor):
    """(*, C, H*r, W*r) -> (*, C*r*r, H, W), the inverse of pixel_shuffle."""
    _check_tensor("pixel_unshuffle", input)
    r = _factor("pixel_unshuffle", "downscale_factor", downscale_factor)
    if input.ndim < 3:
        raise RuntimeError(f"pixel_unshuffle expects input to have at least 3 dimensions, but got input with "
                           f"{input.ndim} dimension(s)")
    *batch, c, h, w = input.shape
    if h % r or w % r:
        raise RuntimeError(f"pixel_unshuffle expects height and width to be divisible by downscale_factor, but "
                           f"input.size(-2)={h} and input.size(-1)={w} are not both divisible by {r}")
    b = len(batch)
    x = reshape(input, (*batch, c, h // r, r, w // r, r))
    x = permute(x, tuple(range(b)) + (b, b + 2, b + 4, b + 1, b + 3))
    return reshape(x, (*batch, c * r * r, h // r, w // r))


# ---- unfold / fold (im2col / col2im) -------------------------------------------------------------------------
def _window_args(op, kernel_size, dilation, padding, stride):
    return (int_tuple(op, "kernel_size", kernel_size, 2, 1), int_tuple(op, "dilation", dilation, 2, 1),
            int_tuple(op, "padding", padding, 2, 0), int_tuple(op, "stride", stride, 2, 1))


def _blocks(size, k, d, p, s):
    return (size + 2 * p - d * (k - 1) - 1) // s + 1


def _im2col(xp, x, hw, k, d, p, s, blocks):
    """(N, C, H, W) -> (N, C*kh*kw, L): each column one flattened sliding block, as PyTorch's unfold."""
    n, c = x.shape[:2]
    xpad = xp.pad(x, ((0, 0), (0, 0), (p[0], p[0]), (p[1], p[1])))
    parts = [xpad[:, :, i * d[0]: i * d[0] + s[0] * (blocks[0] - 1) + 1: s[0],
                  j * d[1]: j * d[1] + s[1] * (blocks[1] - 1) + 1: s[1]]
             for i in range(k[0]) for j in range(k[1])]
    return xp.stack(parts, axis=2).reshape(n, c * k[0] * k[1], blocks[0] * blocks[1])


def _col2im(xp, cols, hw, k, d, p, s, blocks):
    """(N, C*kh*kw, L) -> (N, C, H, W): every block's values summed back into place (the adjoint of _im2col)."""
    n = cols.shape[0]
    c = cols.shape[1] // (k[0] * k[1])
    parts = cols.reshape(n, c, k[0] * k[1], blocks[0], blocks[1])
    out = xp.zeros((n, c, hw[0] + 2 * p[0], hw[1] + 2 * p[1]), dtype=cols.dtype)
    for i in range(k[0]):
        for j in range(k[1]):
            # within one (i, j) the strided positions are distinct, so += is a plain accumulation
            out[:, :, i * d[0]: i * d[0] + s[0] * (blocks[0] - 1) + 1: s[0],
                j * d[1]: j * d[1] + s[1] * (blocks[1] - 1) + 1: s[1]] += parts[:, :, i * k[1] + j]
    return xp.ascontiguousarray(out[:, :, p[0]: p[0] + hw[0], p[1]: p[1] + hw[1]])


def unfold(input, kernel_size, dilation=1, padding=0, stride=1):
    """PyTorch's F.unfold (im2col): (N, C, H, W) or (C, H, W) -> (N, C*kh*kw, L) or (C*kh*kw, L)."""
    _check_tensor("unfold", input)
    k, d, p, s = _window_args("unfold", kernel_size, dilation, padding, stride)
    if input.ndim not in (3, 4):
        raise RuntimeError(f"Input Error: Only 3D or 4D input Tensors are supported (got {input.ndim}D)")
    batched = input.ndim == 4
    x = input if batched else reshape(input, (1,) + tuple(input.shape))
    hw = x.shape[2:]
    blocks = tuple(_blocks(hw[i], k[i], d[i], p[i], s[i]) for i in range(2))
    if min(blocks) < 1:
        raise RuntimeError(f"Given input with spatial size ({hw[0]}, {hw[1]}), kernel_size={k}, dilation={d}, "
                           f"padding={p}, calculated shape of the array of sliding blocks as {blocks}, but its "
                           f"components must be at least one.")
    xp = x._backend.xp
    out = _im2col(xp, x._data, hw, k, d, p, s, blocks)
    y = make_result(out, (x,), lambda g: (_col2im(xp, g, hw, k, d, p, s, blocks),), "unfold", saved=(),
                    tangent=lambda t: unfold(t, kernel_size, dilation, padding, stride))
    return y if batched else reshape(y, y.shape[1:])


def fold(input, output_size, kernel_size, dilation=1, padding=0, stride=1):
    """PyTorch's F.fold (col2im, summing overlaps): (N, C*kh*kw, L) or (C*kh*kw, L) -> (N, C, H, W) or (C, H, W)."""
    _check_tensor("fold", input)
    hw = int_tuple("fold", "output_size", output_size, 2, 1)
    k, d, p, s = _window_args("fold", kernel_size, dilation, padding, stride)
    if input.ndim not in (2, 3):
        raise RuntimeError(f"Input Error: Only unbatched (2D) or batched (3D) input Tensors are supported "
                           f"(got {input.ndim}D)")
    batched = input.ndim == 3
    x = input if batched else reshape(input, (1,) + tuple(input.shape))
    if x.shape[1] % (k[0] * k[1]):
        raise RuntimeError(f"Expected size of input's dimension 1 to be divisible by the product of kernel_size, "
                           f"but got input.size(1)={x.shape[1]} and kernel_size={k}")
    blocks = tuple(_blocks(hw[i], k[i], d[i], p[i], s[i]) for i in range(2))
    if min(blocks) < 1 or blocks[0] * blocks[1] != x.shape[2]:
        raise RuntimeError(f"Given output_size={hw}, kernel_size={k}, dilation={d}, padding={p}, stride={s}, "
                           f"expected size of input's dimension 2 to match the calculated number of sliding "
                           f"blocks {blocks[0]} * {blocks[1]} = {blocks[0] * blocks[1]}, but got "
                           f"input.size(2)={x.shape[2]}.")
    xp = x._backend.xp
    out = _col2im(xp, xp.ascontiguousarray(x._data), hw, k, d, p, s, blocks)
    y = make_result(out, (x,), lambda g: (_im2col(xp, g, hw, k, d, p, s, blocks),), "fold", saved=(),
                    tangent=lambda t: fold(t, output_size, kernel_size, dilation, padding, stride))
    return y if batched else reshape(y, y.shape[1:])


def channel_shuffle(input, groups):
    """(N, C, *) with C = g * k: channel c = i * k + j moves to j * g + i (ShuffleNet's interleave of the groups)."""
    _check_tensor("channel_shuffle", input)
    if isinstance(groups, bool) or not isinstance(groups, numbers.Integral) or groups <= 0:
        raise ValueError(f"channel_shuffle: number of groups to divide channels in must be positive, got "
                         f"groups={groups!r}")
    if input.ndim < 3:
        raise ValueError(f"channel_shuffle: expected input of at least 3 dimensions (N, C, *), got shape "
                         f"{tuple(input.shape)}")
    n, c, *rest = input.shape
    if c % groups:
        raise ValueError(f"channel_shuffle: number of channels ({c}) must be divisible by groups ({groups})")
    x = reshape(input, (n, groups, c // groups, *rest))
    return reshape(transpose(x, 1, 2), input.shape)


# ---- spatial transformers: affine_grid and grid_sample (issue 14, part B) --------------------------------------
def _grid_coords(xp, steps, align_corners, dtype):
    """PyTorch's normalised sample positions along one axis: -1..1 at pixel centres of the corner pixels
    (align_corners) or at the image edges (steps positions at the pixel centres of [-1, 1])."""
    if steps <= 1:
        return xp.zeros(steps, dtype)
    coords = xp.linspace(-1, 1, steps, dtype=dtype)
    return coords if align_corners else coords * dtype.type((steps - 1) / steps)


def affine_grid(theta, size, align_corners=None):
    """The (N, H, W, 2) sampling grid of (x, y) positions that the affine maps theta (N, 2, 3) give for an output
    of size (N, C, H, W), or the (N, D, H, W, 3) grid of theta (N, 3, 4) for size (N, C, D, H, W). Differentiable
    in theta (a matmul of the fixed base grid)."""
    from fastnn.ops.linalg import matmul
    if not isinstance(theta, Tensor) or theta.dtype.kind != "f":
        raise TypeError(f"affine_grid(): theta must be a floating point Tensor, got "
                        f"{getattr(theta, 'dtype', type(theta).__name__)}")
    size = tuple(int(s) for s in size)
    if len(size) not in (4, 5):
        raise ValueError(f"affine_grid(): size must be (N, C, H, W) or (N, C, D, H, W), got {size}")
    k = len(size) - 2
    if theta.shape != (size[0], k, k + 1):
        raise ValueError(f"affine_grid(): expected theta of shape ({size[0]}, {k}, {k + 1}) for size {size}, got "
                         f"{tuple(theta.shape)}")
    if min(size) <= 0:
        raise ValueError(f"affine_grid(): expected non-zero, positive output size, got {size}")
    xp = theta._backend.xp
    spatial = size[2:]
    # coordinate j of the base grid varies along spatial axis k - 1 - j: x along W, y along H, z along D
    axes = [_grid_coords(xp, n, bool(align_corners), theta.dtype) for n in spatial]
    mesh = xp.meshgrid(*axes, indexing="ij")
    base = xp.stack([*reversed(mesh), xp.ones(spatial, theta.dtype)], axis=-1).reshape(1, -1, k + 1)
    grid = matmul(Tensor(base, device=theta.device), transpose(theta, 1, 2))
    return reshape(grid, (size[0], *spatial, k))


def _unnormalized(coord, size, align, padding_mode):
    """Pixel coordinates of grid_sample's [-1, 1] coordinates along an axis of `size` pixels (a Tensor)."""
    pixel = (coord + 1) * ((size - 1) / 2) if align else ((coord + 1) * size - 1) / 2
    return pixel.clamp(0, size - 1) if padding_mode == "border" else pixel


_GRID_MODES = ("bilinear", "nearest")
_GRID_PADDINGS = ("zeros", "border")


@traced
def grid_sample(input, grid, mode="bilinear", padding_mode="zeros", align_corners=None):
    """output[n, :, h, w] = input[n] sampled at grid[n, h, w] = (x, y) in [-1, 1] (x along W, y along H), by
    bilinear interpolation or the nearest pixel (rounding half to even); positions outside read 0 (zeros) or the
    nearest edge pixel (border). 4-D input only. Gradients reach both input and grid (bilinear)."""
    _check_tensor("grid_sample", input)
    if mode not in _GRID_MODES:
        raise (NotImplementedError if mode == "bicubic" else ValueError)(
            f"grid_sample(): mode must be one of {_GRID_MODES}, got {mode!r}")
    if padding_mode not in _GRID_PADDINGS:
        raise (NotImplementedError if padding_mode == "reflection" else ValueError)(
            f"grid_sample(): padding_mode must be one of {_GRID_PADDINGS}, got {padding_mode!r}")
    if input.ndim != 4 or input.dtype.kind != "f":
        raise ValueError(f"grid_sample(): expected a 4-D floating point input (N, C, H, W), got shape "
                         f"{tuple(input.shape)} of {input.dtype} (5-D volumetric sampling is not implemented)")
    if not isinstance(grid, Tensor) or grid.ndim != 4 or grid.shape[-1] != 2 or grid.shape[0] != input.shape[0]:
        raise ValueError(f"grid_sample(): expected grid of shape (N, H_out, W_out, 2) with N={input.shape[0]}, got "
                         f"{tuple(getattr(grid, 'shape', ()))}")
    if grid.dtype != input.dtype:
        raise TypeError(f"grid_sample(): expected grid to have the input's dtype {input.dtype}, got {grid.dtype}")
    if grid._backend is not input._backend:
        raise RuntimeError(f"expected all tensors on the same device, got {input.device} and {grid.device}")
    xp, kernels = input._backend.xp, input._backend.kernels
    n, c, h, w = input.shape
    points = grid.shape[1] * grid.shape[2]
    dtype = input.dtype.type
    align = bool(align_corners)

    def unnormalize(coord, size):
        """pixel coordinate, d pixel / d coord, and where the gradient passes (border clamps)."""
        if align:
            pixel, scale = (coord + 1) / 2 * (size - 1), dtype((size - 1) / 2)
        else:
            pixel, scale = ((coord + 1) * size - 1) / 2, dtype(size / 2)
        if padding_mode == "border":
            inside = (pixel >= 0) & (pixel <= size - 1)
            return xp.clip(pixel, 0, size - 1), scale * inside
        return pixel, scale

    coords = grid._data.reshape(n, points, 2)
    ix, scale_x = unnormalize(coords[..., 0], w)
    iy, scale_y = unnormalize(coords[..., 1], h)
    if mode == "bilinear":
        x0, y0 = xp.floor(ix), xp.floor(iy)
        wx1, wy1 = ix - x0, iy - y0
        wx0, wy0 = 1 - wx1, 1 - wy1
        # (x, y, weight, d weight / d ix, d weight / d iy) per corner
        corners = [(x0, y0, wx0 * wy0, -wy0, -wx0), (x0 + 1, y0, wx1 * wy0, wy0, -wx1),
                   (x0, y0 + 1, wx0 * wy1, -wy1, wx0), (x0 + 1, y0 + 1, wx1 * wy1, wy1, wx1)]
    else:
        corners = [(xp.rint(ix), xp.rint(iy), xp.ones_like(ix), None, None)]
    flat = xp.ascontiguousarray(input._data).reshape(n, c, h * w)
    plane = (xp.arange(n * c).reshape(n, c, 1) * (h * w))
    out = xp.zeros((n, c, points), input.dtype)
    taps, fixed = [], []
    for x, y, weight, dwx, dwy in corners:
        valid = (x >= 0) & (x <= w - 1) & (y >= 0) & (y <= h - 1)
        index = xp.where(valid, y * w + x, 0).astype(xp.int64).reshape(n, 1, points)
        values = xp.take_along_axis(flat, xp.broadcast_to(index, (n, c, points)), axis=2) * valid[:, None, :]
        out += weight[:, None, :] * values
        taps.append((plane + index, (weight * valid)[:, None, :], values, dwx, dwy))
        fixed.append((x, y, xp.broadcast_to(index, (n, c, points)), valid[:, None, :].astype(input.dtype)))

    def const(array):
        return Tensor._wrap(array.astype(input.dtype, copy=False), input._backend)

    def composite(inp, grd):
        """The same sampling from fastnn ops with the corners held where the primal grid put them: bilinear
        weights linear in the (unnormalised, clamped) coordinates, pixels gathered from the input."""
        from fastnn.ops.indexing import gather
        coord = reshape(grd, (n, points, 2))
        px, py = (_unnormalized(coord[..., k], size, align, padding_mode) for k, size in ((0, w), (1, h)))
        picked = reshape(inp, (n, c, h * w))
        total = 0
        # the corners in `corners`' order; the one at x0 weighs x0 + 1 - px, the one at x0 + 1 weighs px - x0
        for (x, y, index, valid), (dx, dy) in zip(fixed, ((0, 0), (1, 0), (0, 1), (1, 1))):
            values = gather(picked, 2, Tensor._wrap(index, input._backend)) * const(valid)
            if mode == "bilinear":
                wx = px - const(x - 1) if dx else const(x + 1) - px
                wy = py - const(y - 1) if dy else const(y + 1) - py
                values = values * (wx * wy).unsqueeze(1)
            total = total + values
        return reshape(total, (n, c, *grid.shape[1:3]))

    def tangent(t_input, t_grid):
        from fastnn.autograd.forward_ad import composite_tangent
        return composite_tangent(composite, (input, grid), (t_input, t_grid))

    def backward(g):
        g = xp.ascontiguousarray(g).reshape(n, c, points)
        grad_input = grad_grid = None
        if input.requires_grad:
            grad_input = xp.zeros(n * c * h * w, input.dtype)
            for index, weight, *_ in taps:
                kernels.scatter_add(grad_input, xp.broadcast_to(index, (n, c, points)).reshape(-1),
                                    (g * weight).reshape(-1))
            grad_input = grad_input.reshape(input.shape)
        if grid.requires_grad:
            gx, gy = xp.zeros((n, points), input.dtype), xp.zeros((n, points), input.dtype)
            if mode == "bilinear":
                for _, _, values, dwx, dwy in taps:
                    gv = (g * values).sum(axis=1)
                    gx += gv * dwx
                    gy += gv * dwy
            grad_grid = xp.stack([gx * scale_x, gy * scale_y], axis=-1).reshape(grid.shape).astype(input.dtype)
        return grad_input, grad_grid
    return make_result(out.reshape(n, c, *grid.shape[1:3]), (input, grid), backward, "grid_sample", saved=(),
                       tangent=tangent)

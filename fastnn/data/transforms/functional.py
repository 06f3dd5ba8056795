"""Deterministic image operations under torchvision.transforms.v2.functional's names, arguments and numbers.

Inputs are fastnn Tensors or ndarrays shaped (..., C, H, W) (geometric operations also take a plain H x W
image); each function returns the kind it was given. An ndarray that looks channels-last (last axis 1, 3 or 4,
third-to-last over 4: a raw H x W x C image) raises a ValueError instead of being misread. uint8 images stay uint8 and float images keep their
dtype, with torchvision's conventions: float images are in [0, 1], colour operations clamp to [0, 1] (uint8:
[0, 255]) and cast uint8 results by truncation, resampling rounds half to even. The per-pixel work runs in the
kernels of fastnn/_kernels/cpu_augment.py over whole batches.
"""
import enum
import math
import numbers

import numpy as np

from fastnn._kernels import augment_codes as _K
from fastnn.tensor import Tensor

__all__ = ["InterpolationMode", "horizontal_flip", "vertical_flip", "hflip", "vflip", "crop", "center_crop", "pad",
           "resize", "resized_crop", "to_dtype", "normalize", "affine", "rotate", "erase", "adjust_brightness",
           "adjust_contrast", "adjust_saturation", "adjust_hue", "adjust_sharpness", "rgb_to_grayscale",
           "to_grayscale", "posterize", "solarize", "autocontrast", "equalize", "invert", "five_crop", "ten_crop"]


class InterpolationMode(str, enum.Enum):
    """Resampling modes (the values are torchvision's strings, which are accepted too)."""
    NEAREST = "nearest"
    BILINEAR = "bilinear"


# ---- input handling -----------------------------------------------------------------------------------------

def _looks_channels_last(shape):
    """Whether an ndarray of `shape` looks like H x W x C (or N x H x W x C): its last axis has 1, 3 or 4 entries
    (gray, RGB, RGBA) and its third-to-last more than 4, so read as (..., C, H, W) it would be an image of over 4
    channels and at most 4 pixels wide. (A C x H x W array with C <= 4, e.g. two-channel data, is never refused.)"""
    return len(shape) >= 3 and shape[-1] in (1, 3, 4) and shape[-3] > 4


def _unwrap(image):
    """(ndarray view of `image`, function wrapping a result array back into the kind `image` was). An ndarray
    that looks channels-last (a raw image before ToTensor, a PIL image) is refused rather than misread."""
    if isinstance(image, Tensor):
        return image.detach().numpy(), lambda array: Tensor(array, device=image.device)
    array = np.asarray(image)
    if _looks_channels_last(array.shape):
        raise ValueError(f"got an ndarray of shape {array.shape}, which looks like an H x W x C image (or N x H x "
                         f"W x C batch); transforms take (..., C, H, W): convert it first with ToTensor() (uint8 "
                         f"-> float in [0, 1]) or ToImage() (dtype kept), as before any torchvision transform")
    return array, lambda array: array


def _check_image_dims(array, name):
    if array.ndim < 2:
        raise ValueError(f"{name} expects an image H x W, C x H x W or a batch (..., C, H, W), got shape "
                         f"{array.shape}")


def _as_batch(array, name):
    """(batch N x C x H x W, C-contiguous; restore(out) giving out the leading shape of `array`)."""
    _check_image_dims(array, name)
    if array.ndim == 2:
        batch = array.reshape((1, 1) + array.shape)
        return np.ascontiguousarray(batch), lambda out: out.reshape(out.shape[-2:])
    lead = array.shape[:-3]
    batch = np.ascontiguousarray(array.reshape((-1,) + array.shape[-3:]))
    return batch, lambda out: out.reshape(lead + out.shape[1:])


def _count(array):
    """Number of images a random transform draws for: every image of a batch (..., C, H, W) its own draw."""
    return math.prod(array.shape[:-3]) if array.ndim >= 4 else 1


def _int(value, name, minimum=0):
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < minimum:
        raise ValueError(f"{name} must be an integer >= {minimum}, got {value!r}")
    return int(value)


def _size_pair(size, name):
    """An int or a sequence of 1 or 2 ints -> (height, width), each >= 1."""
    if isinstance(size, numbers.Integral) and not isinstance(size, bool):
        size = (size, size)
    elif isinstance(size, (tuple, list)) and len(size) == 1:
        size = (size[0], size[0])
    if not isinstance(size, (tuple, list)) or len(size) != 2:
        raise ValueError(f"{name} must be an int or a sequence of 1 or 2 ints, got {size!r}")
    return _int(size[0], name, 1), _int(size[1], name, 1)


def _interpolation(mode):
    try:
        return InterpolationMode(mode.value if isinstance(mode, InterpolationMode) else mode)
    except ValueError:
        raise ValueError(f"interpolation must be one of {[m.value for m in InterpolationMode]}, got {mode!r}") \
            from None


def _fill_values(fill, channels, dtype, name="fill"):
    """fill (None -> 0, a number, or one value per channel) as a (channels,) array of `dtype`."""
    values = np.atleast_1d(np.asarray(0 if fill is None else fill, dtype=np.float64))
    if values.ndim != 1 or len(values) not in (1, channels):
        raise ValueError(f"{name} must be a number or a sequence of 1 or {channels} numbers (one per channel), "
                         f"got {fill!r}")
    return _per_channel(values, channels, dtype)


def _per_channel(values, channels, dtype):
    """A validated (1,) or (channels,) array as a contiguous (channels,) array of `dtype`."""
    return values.astype(dtype) if len(values) == channels else np.full(channels, values[0], dtype)


def _working_float(batch, name):
    """(float batch, integer flag): uint8 computes in float32 (exact), float images in their own dtype."""
    if batch.dtype == np.uint8:
        return batch.astype(np.float32), True
    if batch.dtype.kind == "f":
        return batch, False
    raise TypeError(f"{name} supports uint8 and floating-point images, got {batch.dtype}")


def _bound(dtype):
    return 255 if dtype == np.uint8 else 1.0


def _launch(kernel, images, *args):
    """The CPU backend's augmentation kernel `kernel` (declared in fastnn/_kernels/interface.py) on host images. A
    single image runs on the calling thread only: opening a parallel region costs ~10 us on an idle machine and a
    scheduler time slice (measured ~23 ms at load 8 on 2 cores) on a busy one, far more than one image's work.
    (Numba's thread count belongs to the calling thread, so this is thread-safe.)"""
    from fastnn import _dispatch
    backend = _dispatch.backend("cpu")
    run = getattr(backend.kernels, kernel)
    if images.shape[0] > 1:
        return run(images, *args)
    previous = backend.get_num_threads()
    backend.set_num_threads(1)
    try:
        return run(images, *args)
    finally:
        backend.set_num_threads(previous)


# ---- flips and crops ----------------------------------------------------------------------------------------

def horizontal_flip(inpt):
    """Mirror left-right (the last axis)."""
    array, wrap = _unwrap(inpt)
    _check_image_dims(array, "horizontal_flip")
    return wrap(np.ascontiguousarray(array[..., ::-1]))


def vertical_flip(inpt):
    """Mirror top-bottom (the second-last axis)."""
    array, wrap = _unwrap(inpt)
    _check_image_dims(array, "vertical_flip")
    return wrap(np.ascontiguousarray(array[..., ::-1, :]))


hflip, vflip = horizontal_flip, vertical_flip


def _per_image(values, n, dtype):
    """A number or (n,) sequence as a contiguous (n,) array of `dtype`, as the kernels take per-image values."""
    values = np.asarray(values, dtype)
    if values.ndim == 0:
        return np.full(n, values)
    if values.shape != (n,):
        raise ValueError(f"expected one value per image ({n}), got shape {values.shape}")
    return np.ascontiguousarray(values)


def _crop_batch(batch, tops, lefts, height, width, fill=None, hflip=None, vflip=None):
    """Kernel call: one (height, width) window per image at (tops[n], lefts[n]), outside pixels = fill."""
    n = batch.shape[0]
    no = np.zeros(n, np.bool_)
    return _launch("crop_flip", batch, _per_image(tops, n, np.int64), _per_image(lefts, n, np.int64), height, width,
                   no if hflip is None else _per_image(hflip, n, np.bool_),
                   no if vflip is None else _per_image(vflip, n, np.bool_),
                   _fill_values(fill, batch.shape[1], batch.dtype))


def crop(inpt, top, left, height, width):
    """The height x width window at (top, left); parts outside the image are 0, as torchvision's crop pads."""
    array, wrap = _unwrap(inpt)
    batch, restore = _as_batch(array, "crop")
    height, width = _int(height, "crop height", 1), _int(width, "crop width", 1)
    if not all(isinstance(v, numbers.Integral) for v in (top, left)):
        raise ValueError(f"crop top and left must be integers, got {top!r} and {left!r}")
    return wrap(restore(_crop_batch(batch, top, left, height, width)))


def _center_offsets(size, crop_size):
    """torchvision's centre anchor: round((size - crop) / 2) (half to even), or the padding when crop > size."""
    return -((crop_size - size) // 2) if crop_size > size else int(round((size - crop_size) / 2.0))


def center_crop(inpt, output_size):
    """The centred output_size window; an image smaller than it is zero-padded around (torchvision's rule)."""
    array, wrap = _unwrap(inpt)
    batch, restore = _as_batch(array, "center_crop")
    height, width = _size_pair(output_size, "center_crop output_size")
    top, left = _center_offsets(batch.shape[-2], height), _center_offsets(batch.shape[-1], width)
    return wrap(restore(_crop_batch(batch, top, left, height, width)))


def _padding_ltrb(padding, name="padding"):
    """int, (left/right, top/bottom) or (left, top, right, bottom) -> (left, top, right, bottom), all >= 0."""
    if isinstance(padding, numbers.Integral) and not isinstance(padding, bool):
        padding = (padding,) * 4
    elif isinstance(padding, (tuple, list)) and len(padding) == 1:
        padding = tuple(padding) * 4
    elif isinstance(padding, (tuple, list)) and len(padding) == 2:
        padding = (padding[0], padding[1], padding[0], padding[1])
    if not isinstance(padding, (tuple, list)) or len(padding) != 4:
        raise ValueError(f"{name} must be an int or a sequence of 1, 2 or 4 ints, got {padding!r}")
    return tuple(_int(p, name) for p in padding)


_PADDING_MODES = ("constant", "edge", "reflect", "symmetric")


def _pad_batch(batch, ltrb, fill, padding_mode):
    left, top, right, bottom = ltrb
    height, width = batch.shape[-2] + top + bottom, batch.shape[-1] + left + right
    if padding_mode == "constant":  # a crop reaching outside the image, filled: one pass, no np.pad
        return _crop_batch(batch, -top, -left, height, width, fill=fill)
    if padding_mode == "reflect" and (max(top, bottom) >= batch.shape[-2] or max(left, right) >= batch.shape[-1]):
        raise ValueError(f"reflect padding {ltrb} must be smaller than the image size {batch.shape[-2:]}")
    return np.pad(batch, [(0, 0), (0, 0), (top, bottom), (left, right)], mode=padding_mode)


def pad(inpt, padding, fill=None, padding_mode="constant"):
    """Pad the borders: padding int, (left/right, top/bottom) or (left, top, right, bottom); padding_mode
    'constant' (fill: a number or one per channel), 'edge', 'reflect' or 'symmetric'."""
    array, wrap = _unwrap(inpt)
    batch, restore = _as_batch(array, "pad")
    if padding_mode not in _PADDING_MODES:
        raise ValueError(f"padding_mode must be one of {_PADDING_MODES}, got {padding_mode!r}")
    return wrap(restore(_pad_batch(batch, _padding_ltrb(padding), fill, padding_mode)))


def five_crop(inpt, size):
    """(top-left, top-right, bottom-left, bottom-right, centre) crops of `size`."""
    array, wrap = _unwrap(inpt)
    batch, restore = _as_batch(array, "five_crop")
    height, width = _size_pair(size, "five_crop size")
    image_h, image_w = batch.shape[-2:]
    if height > image_h or width > image_w:
        raise ValueError(f"five_crop size {(height, width)} is larger than the image {(image_h, image_w)}")
    anchors = [(0, 0), (0, image_w - width), (image_h - height, 0), (image_h - height, image_w - width),
               (_center_offsets(image_h, height), _center_offsets(image_w, width))]
    return tuple(wrap(restore(_crop_batch(batch, top, left, height, width))) for top, left in anchors)


def ten_crop(inpt, size, vertical_flip=False):
    """five_crop of the image, then five_crop of its horizontal (or, with vertical_flip, vertical) mirror."""
    flipped = globals()["vertical_flip" if vertical_flip else "horizontal_flip"](inpt)
    return five_crop(inpt, size) + five_crop(flipped, size)


# ---- resize -------------------------------------------------------------------------------------------------

def _resize_weights(in_size, out_size, antialias, mode):
    """(out_size, in_size) matrix of PyTorch's interpolate weights along one axis (align_corners=False)."""
    scale = in_size / out_size
    weights = np.zeros((out_size, in_size))
    rows = np.arange(out_size)
    if mode == InterpolationMode.NEAREST:  # PyTorch's 'nearest': floor(dst * scale)
        weights[rows, np.minimum(np.floor(rows * scale).astype(np.int64), in_size - 1)] = 1
        return weights
    if antialias:  # PyTorch's _upsample_bilinear2d_aa (PIL's separable triangle filter, widened by the scale)
        support = scale if scale >= 1 else 1.0
        invscale = 1 / scale if scale >= 1 else 1.0
        for i in rows:
            centre = scale * (i + 0.5)
            lo = max(int(centre - support + 0.5), 0)
            hi = min(int(centre + support + 0.5), in_size)
            taps = np.maximum(0, 1 - np.abs((np.arange(lo, hi) - centre + 0.5) * invscale))
            total = taps.sum()
            weights[i, lo:hi] = taps / total if total != 0 else taps
        return weights
    source = np.maximum(scale * (rows + 0.5) - 0.5, 0)  # upsample_bilinear2d: source index clamped at 0
    lo = np.minimum(source.astype(np.int64), in_size - 1)
    hi = np.minimum(lo + 1, in_size - 1)
    frac = source - lo
    np.add.at(weights, (rows, lo), 1 - frac)
    np.add.at(weights, (rows, hi), frac)
    return weights


def _resize_batch(batch, weights_y, weights_x):
    """out[n, c] = weights_y[n] @ batch[n, c] @ weights_x[n].T, weights (N or 1, out, in); uint8 rounded.

    Shared weights run as two large GEMMs over the whole batch; per-image weights as one GEMM per image and
    axis with the channels side by side (stacked matmul of broadcast small matrices is much slower)."""
    work = batch.astype(np.float32) if batch.dtype == np.uint8 else batch
    n, c, h, w = work.shape
    wy, wx = weights_y.astype(work.dtype), weights_x.astype(work.dtype)
    out_h, out_w = wy.shape[1], wx.shape[1]
    if wy.shape[0] == 1:
        rows = np.matmul(work.reshape(n * c * h, w), wx[0].T).reshape(n * c, h, out_w)
        out = np.matmul(wy[0], rows) if n * c == 1 else \
            np.tensordot(wy[0], rows, axes=([1], [1])).transpose(1, 0, 2)
        out = out.reshape(n, c, out_h, out_w)
    else:
        columns = np.matmul(work.reshape(n, c * h, w), np.swapaxes(wx, 1, 2))  # (N, C*H, out_w)
        columns = columns.reshape(n, c, h, out_w).transpose(0, 2, 1, 3).reshape(n, h, c * out_w)
        out = np.matmul(wy, columns).reshape(n, out_h, c, out_w).transpose(0, 2, 1, 3)
    if batch.dtype == np.uint8:
        return np.clip(np.rint(out), 0, 255).astype(np.uint8)
    return np.ascontiguousarray(out)


def _resized_size(height, width, size, max_size):
    if isinstance(size, numbers.Integral) or (isinstance(size, (tuple, list)) and len(size) == 1):
        short_target = _int(size if isinstance(size, numbers.Integral) else size[0], "resize size", 1)
        short, long = min(height, width), max(height, width)
        new_short, new_long = short_target, int(short_target * long / short)
        if max_size is not None:
            if max_size <= short_target:
                raise ValueError(f"max_size = {max_size} must be strictly greater than the requested size for "
                                 f"the smaller edge, {short_target}")
            if new_long > max_size:
                new_short, new_long = int(max_size * new_short / new_long), max_size
        return (new_short, new_long) if height <= width else (new_long, new_short)
    if max_size is not None:
        raise ValueError("max_size is only allowed when size is an int (the length of the smaller edge)")
    return _size_pair(size, "resize size")


def resize(inpt, size, interpolation=InterpolationMode.BILINEAR, max_size=None, antialias=True):
    """Resize to size (h, w), or with an int size the smaller edge to size keeping the aspect ratio.

    Bilinear follows PyTorch's interpolate(align_corners=False), with antialias (the v2 default) its
    PIL-style filter when downscaling. uint8 images are computed in float32 and rounded half to even (torchvision's
    float path; its native AVX2 uint8 path may differ by 1).
    """
    array, wrap = _unwrap(inpt)
    batch, restore = _as_batch(array, "resize")
    mode = _interpolation(interpolation)
    height, width = batch.shape[-2:]
    new_h, new_w = _resized_size(height, width, size, max_size)
    if (new_h, new_w) == (height, width):
        return wrap(restore(batch.copy()))
    wy = _resize_weights(height, new_h, antialias, mode)[None]
    wx = _resize_weights(width, new_w, antialias, mode)[None]
    return wrap(restore(_resize_batch(batch, wy, wx)))


def resized_crop(inpt, top, left, height, width, size, interpolation=InterpolationMode.BILINEAR, antialias=True):
    """crop(top, left, height, width) then resize(size)."""
    return resize(crop(inpt, top, left, height, width), size, interpolation=interpolation, antialias=antialias)


# ---- normalize and erase ------------------------------------------------------------------------------------

def _mean_std(mean, std):
    mean = np.atleast_1d(np.asarray(mean, dtype=np.float64))
    std = np.atleast_1d(np.asarray(std, dtype=np.float64))
    if mean.ndim != 1 or std.ndim != 1:
        raise ValueError(f"Normalize mean and std must be numbers or sequences, got {mean!r} and {std!r}")
    if np.any(std == 0):
        raise ValueError(f"Normalize std must be non-zero, got {std.tolist()!r}")
    return mean, std


def normalize(inpt, mean, std, inplace=False):
    """(x - mean[c]) / std[c] per channel of floating-point (..., C, H, W) images (mean, std cast to x's dtype)."""
    return _scaled_normalize(inpt, _float_dtype(inpt), UNSCALED, *_mean_std(mean, std), inplace)


def _float_dtype(inpt):
    dtype = _unwrap(inpt)[0].dtype
    if dtype.kind != "f":
        raise TypeError(f"Normalize expects a floating-point image (apply ToTensor first), got {dtype}")
    return dtype


UNSCALED = (1.0, 1.0)  # _scaled_normalize's (multiplier, divisor) of a plain Normalize


def _scaled_normalize(inpt, dtype, scale, mean, std, inplace=False):
    """normalize(to_dtype(inpt, dtype) * scale[0] / scale[1], mean, std) in one pass (ToDtype or ToTensor, then
    Normalize, fused by Compose); the same arithmetic in `dtype`, so the same bits. mean, std: as _mean_std
    returns them."""
    array, wrap = _unwrap(inpt)
    return wrap(_normalize_array(array, dtype, scale, mean, std, inplace))


def _normalize_array(array, dtype, scale, mean, std, inplace=False):
    """_scaled_normalize on an ndarray (..., C, H, W)."""
    if array.ndim < 3:
        raise ValueError(f"Normalize expects C x H x W or (..., C, H, W), got shape {array.shape}")
    channels = array.shape[-3]
    for name, values in (("mean", mean), ("std", std)):
        if len(values) not in (1, channels):
            raise ValueError(f"Normalize {name} has {len(values)} values for {channels} channels")
    if inplace:
        mean, std = mean.astype(dtype).reshape(-1, 1, 1), std.astype(dtype).reshape(-1, 1, 1)
        np.subtract(array, mean, out=array)
        np.divide(array, std, out=array)
        return array
    batch, restore = _as_batch(array, "Normalize")
    if batch.dtype not in (np.uint8, dtype):  # the kernel takes uint8 or `dtype`: convert first, as ToDtype does
        batch = batch.astype(dtype)
    return restore(_launch("scale_normalize", batch, np.array(scale, dtype), _per_channel(mean, channels, dtype),
                           _per_channel(std, channels, dtype)))


_VALUE_BITS = {np.dtype(np.uint8): 8, np.dtype(np.int8): 7, np.dtype(np.int16): 15, np.dtype(np.uint16): 16,
               np.dtype(np.int32): 31, np.dtype(np.int64): 63}


def _value_scale(dtype):
    """What scale=True multiplies an image of integer `dtype` by to bring it to [0, 1]: 1 / its maximum."""
    return 1.0 / (2 ** _VALUE_BITS[dtype] - 1)


def _check_dtypes(source, target):
    """TypeError unless to_dtype converts images of `source` to `target` (float or integer dtypes)."""
    for name, d in (("input", source), ("dtype", target)):
        if d.kind != "f" and d not in _VALUE_BITS:
            raise TypeError(f"to_dtype supports float and {sorted(str(t) for t in _VALUE_BITS)} images, got "
                            f"{name} {d}")


def to_dtype(inpt, dtype=np.float32, scale=False):
    """Convert images to `dtype`; with scale, map the value range of the input dtype to the output's, as
    torchvision's to_dtype does: integer -> float multiplies by 1 / max (uint8: 1/255, in the float dtype), float
    -> integer multiplies by max + 1 - 1e-3 and truncates, integer -> integer shifts bits, float -> float only
    converts. An input already of `dtype` is returned as it is."""
    array, wrap = _unwrap(inpt)
    dtype = np.dtype(dtype)
    _check_dtypes(array.dtype, dtype)
    if array.dtype == dtype:
        return inpt
    if not scale or (array.dtype.kind == "f" and dtype.kind == "f"):
        return wrap(array.astype(dtype))
    if dtype.kind == "f":
        out = array.astype(dtype)
        out *= dtype.type(_value_scale(array.dtype))
        return wrap(out)
    if array.dtype.kind == "f":
        if (array.dtype, dtype) in ((np.float32, np.int32), (np.float32, np.int64), (np.float64, np.int64)):
            raise RuntimeError(f"The conversion from {array.dtype} to {dtype} cannot be performed safely.")
        return wrap((array * (2 ** _VALUE_BITS[dtype] - 1 + 1.0 - 1e-3)).astype(dtype))
    shift = _VALUE_BITS[array.dtype] - _VALUE_BITS[dtype]
    if shift > 0:
        return wrap((array >> shift).astype(dtype))
    return wrap(array.astype(dtype) << -shift)


def erase(inpt, i, j, h, w, v, inplace=False):
    """Set the h x w box at row i, column j to v (broadcast to (C, h, w): a number, per-channel, or full)."""
    array, wrap = _unwrap(inpt)
    _check_image_dims(array, "erase")
    i, j, h, w = (_int(value, f"erase {name}") for value, name in ((i, "i"), (j, "j"), (h, "h"), (w, "w")))
    if i + h > array.shape[-2] or j + w > array.shape[-1]:
        raise ValueError(f"erase box (i={i}, j={j}, h={h}, w={w}) reaches outside the image {array.shape[-2:]}")
    out = array if inplace else array.copy()
    out[..., i:i + h, j:j + w] = np.asarray(v.detach().numpy() if isinstance(v, Tensor) else v)
    return inpt if inplace else wrap(out)


# ---- affine -------------------------------------------------------------------------------------------------

def _get_inverse_affine_matrix(center, angle, translate, scale, shear):
    """torchvision's inverse of C T R S Sh C^-1 (degrees; shear (x, y)) as [a, b, c, d, e, f], mapping output
    coordinates to input coordinates, both relative to `center` (given relative to the image centre)."""
    rot, sx, sy = math.radians(angle), math.radians(shear[0]), math.radians(shear[1])
    cx, cy = center
    tx, ty = translate
    a = math.cos(rot - sy) / math.cos(sy)
    b = -(a * math.tan(sx) + math.sin(rot))
    c = math.sin(rot - sy) / math.cos(sy)
    d = math.cos(rot) - c * math.tan(sx)
    matrix = [d / scale, -b / scale, 0.0, -c / scale, a / scale, 0.0]  # det [[a, b], [c, d]] == 1
    matrix[2] += matrix[0] * (-cx - tx) + matrix[1] * (-cy - ty) + cx
    matrix[5] += matrix[3] * (-cx - tx) + matrix[4] * (-cy - ty) + cy
    return matrix


def _affine_batch(batch, matrices, interpolation, fill, out_h=None, out_w=None):
    """Kernel call: resample every image with its own inverse matrix (N, 6); uint8 via float32, rounded."""
    work, integer = _working_float(batch, "affine")
    use_fill = fill is not None
    fill = _fill_values(fill, batch.shape[1], work.dtype)
    out = _launch("affine_sample", work, np.ascontiguousarray(matrices, np.float64),
                  batch.shape[-2] if out_h is None else out_h, batch.shape[-1] if out_w is None else out_w,
                  _interpolation(interpolation) == InterpolationMode.BILINEAR, fill, use_fill)
    return np.rint(out).astype(batch.dtype) if integer else out


def _check_affine(angle, translate, scale, shear):
    if not isinstance(angle, numbers.Real):
        raise ValueError(f"affine angle must be a number, got {angle!r}")
    if not isinstance(translate, (tuple, list)) or len(translate) != 2:
        raise ValueError(f"affine translate must be a sequence of 2 numbers, got {translate!r}")
    if not isinstance(scale, numbers.Real) or scale <= 0:
        raise ValueError(f"affine scale must be a positive number, got {scale!r}")
    if isinstance(shear, numbers.Real):
        shear = (shear, 0.0)
    elif isinstance(shear, (tuple, list)) and len(shear) == 1:
        shear = (shear[0], 0.0)
    if not isinstance(shear, (tuple, list)) or len(shear) != 2:
        raise ValueError(f"affine shear must be a number or a sequence of 1 or 2 numbers, got {shear!r}")
    return [float(t) for t in translate], [float(s) for s in shear]


def _center_f(center, height, width):
    """A centre in pixel coordinates, relative to the image centre (torchvision: c - size * 0.5)."""
    return [0.0, 0.0] if center is None else [center[0] - width * 0.5, center[1] - height * 0.5]


def affine(inpt, angle, translate, scale, shear, interpolation=InterpolationMode.NEAREST, fill=None, center=None):
    """torchvision's affine: rotate by `angle` degrees (clockwise on screen), scale, shear (degrees, x then y) about
    `center` (default the image centre), translate by `translate` pixels; output the input's size. fill None
    leaves outside pixels 0 without torchvision's fill mask; a number or per-channel fill uses it."""
    array, wrap = _unwrap(inpt)
    batch, restore = _as_batch(array, "affine")
    translate, shear = _check_affine(angle, translate, scale, shear)
    height, width = batch.shape[-2:]
    matrix = _get_inverse_affine_matrix(_center_f(center, height, width), angle, translate, scale, shear)
    matrices = np.broadcast_to(np.asarray(matrix), (batch.shape[0], 6))
    return wrap(restore(_affine_batch(batch, matrices, interpolation, fill)))


def _affine_output_size(matrix, width, height):
    """torchvision's _compute_affine_output_size for rotate(expand=True): the bounding box of the corners."""
    half_w, half_h = 0.5 * width, 0.5 * height
    corners = np.array([[-half_w, -half_h, 1.0], [-half_w, half_h, 1.0], [half_w, half_h, 1.0],
                        [half_w, -half_h, 1.0]], np.float32)
    points = corners @ np.asarray(matrix, np.float32).reshape(2, 3).T
    low, high = points.min(axis=0) + (half_w, half_h), points.max(axis=0) + (half_w, half_h)
    high = np.ceil(np.trunc(high * 1e4) * 1e-4)  # trim 1e-15 noise before ceil/floor, as torchvision does
    low = np.floor(np.trunc(low * 1e4) * 1e-4)
    size = high - low
    return int(size[0]), int(size[1])


def rotate(inpt, angle, interpolation=InterpolationMode.NEAREST, expand=False, center=None, fill=None):
    """Rotate counter-clockwise by `angle` degrees about `center` (default the image centre); with expand the
    output grows to hold the whole rotated image. Multiples of 90 degrees are exact (np.rot90), as torchvision's
    fast paths."""
    array, wrap = _unwrap(inpt)
    batch, restore = _as_batch(array, "rotate")
    if not isinstance(angle, numbers.Real):
        raise ValueError(f"rotate angle must be a number, got {angle!r}")
    angle = angle % 360
    height, width = batch.shape[-2:]
    if center is None:
        if angle == 0:
            return wrap(restore(batch.copy()))
        if angle == 180:
            return wrap(restore(np.ascontiguousarray(np.rot90(batch, 2, axes=(-2, -1)))))
        if (expand or height == width) and angle in (90, 270):
            return wrap(restore(np.ascontiguousarray(np.rot90(batch, 1 if angle == 90 else 3, axes=(-2, -1)))))
    matrix = _get_inverse_affine_matrix(_center_f(center, height, width), -angle, [0.0, 0.0], 1.0, [0.0, 0.0])
    out_w, out_h = _affine_output_size(matrix, width, height) if expand else (width, height)
    matrices = np.broadcast_to(np.asarray(matrix), (batch.shape[0], 6))
    return wrap(restore(_affine_batch(batch, matrices, interpolation, fill, out_h, out_w)))


# ---- colour -------------------------------------------------------------------------------------------------

def _color_batch(batch, ops, factors, name):
    """Kernel call: colour ops (N, K) with factors (N, K) per image; returns the batch's dtype."""
    if batch.shape[1] not in (1, 3):
        raise ValueError(f"{name} expects images with 1 or 3 channels, got {batch.shape[1]}")
    work, integer = _working_float(batch, name)
    n = batch.shape[0]
    ops = np.ascontiguousarray(np.broadcast_to(np.asarray(ops, np.int64), (n, np.shape(ops)[-1])))
    factors = np.broadcast_to(np.asarray(factors, np.float64), ops.shape)
    out = _launch("color_ops", work, ops, np.ascontiguousarray(factors, work.dtype),
                  np.ascontiguousarray(1.0 - factors, work.dtype), _K.color_constants(work.dtype, integer), integer)
    return out.astype(np.uint8) if integer else out


def _color(inpt, op, factor, name):
    array, wrap = _unwrap(inpt)
    if array.ndim < 3:
        raise ValueError(f"{name} expects images (..., C, H, W), got shape {array.shape}")
    batch, restore = _as_batch(array, name)
    return wrap(restore(_color_batch(batch, [[op]], [[factor]], name)))


def _non_negative(value, name):
    if not isinstance(value, numbers.Real) or not value >= 0:
        raise ValueError(f"{name} must be a non-negative number, got {value!r}")
    return float(value)


def adjust_brightness(inpt, brightness_factor):
    """x * brightness_factor, clamped to [0, 1] (uint8: [0, 255], truncated)."""
    return _color(inpt, _K.OP_BRIGHTNESS, _non_negative(brightness_factor, "brightness_factor"),
                  "adjust_brightness")


def adjust_contrast(inpt, contrast_factor):
    """Blend with the mean of the grayscale image: factor * x + (1 - factor) * mean, clamped."""
    return _color(inpt, _K.OP_CONTRAST, _non_negative(contrast_factor, "contrast_factor"), "adjust_contrast")


def adjust_saturation(inpt, saturation_factor):
    """Blend with the grayscale image: factor * x + (1 - factor) * gray, clamped (1 channel: unchanged)."""
    return _color(inpt, _K.OP_SATURATION, _non_negative(saturation_factor, "saturation_factor"),
                  "adjust_saturation")


def adjust_hue(inpt, hue_factor):
    """Rotate the hue by hue_factor turns (in [-0.5, 0.5]) in HSV space (1 channel: unchanged)."""
    if not isinstance(hue_factor, numbers.Real) or not -0.5 <= hue_factor <= 0.5:
        raise ValueError(f"hue_factor must be in [-0.5, 0.5], got {hue_factor!r}")
    return _color(inpt, _K.OP_HUE, float(hue_factor), "adjust_hue")


def rgb_to_grayscale(inpt, num_output_channels=1):
    """0.2989 R + 0.587 G + 0.114 B (uint8: truncated), as 1 or 3 channels; 1-channel input is copied."""
    if num_output_channels not in (1, 3):
        raise ValueError(f"num_output_channels must be 1 or 3, got {num_output_channels!r}")
    array, wrap = _unwrap(inpt)
    if array.ndim < 3:
        raise ValueError(f"rgb_to_grayscale expects images (..., C, H, W), got shape {array.shape}")
    batch, restore = _as_batch(array, "rgb_to_grayscale")
    gray = _color_batch(batch, [[_K.OP_GRAYSCALE]], [[0.0]], "rgb_to_grayscale")
    if num_output_channels == 1:
        gray = np.ascontiguousarray(gray[:, :1])
    elif batch.shape[1] == 1:
        gray = np.repeat(gray, 3, axis=1)
    return wrap(restore(gray))


to_grayscale = rgb_to_grayscale


def _blend(image, other, ratio, bound):
    """torchvision's _blend in the working dtype: image * ratio + other * (1 - ratio), clamped. torch adds the
    second product with a fused multiply-add (one rounding), which float64 reproduces exactly for float32."""
    dtype = image.dtype.type
    out = (image * dtype(ratio)).astype(np.float64)
    out += other.astype(np.float64) * np.float64(dtype(1.0 - ratio))
    out = out.astype(image.dtype)
    return np.clip(out, 0, bound, out=out)


def _sharpness_batch(batch, factors):
    """adjust_sharpness with one factor per image (factors (N,))."""
    if batch.shape[-1] <= 2 or batch.shape[-2] <= 2:
        return batch.copy()
    work, integer = _working_float(batch, "adjust_sharpness")
    a, b = work.dtype.type(1 / 13), work.dtype.type(5 / 13)
    height, width = work.shape[-2:]
    blurred = sum(work[..., 1 + dy:height - 1 + dy, 1 + dx:width - 1 + dx] * (b if dy == dx == 0 else a)
                  for dy in (-1, 0, 1) for dx in (-1, 0, 1))
    if integer:
        blurred = np.rint(blurred)
    out = work.copy()
    inner = out[..., 1:-1, 1:-1]
    inner += (blurred - inner) * (1.0 - np.asarray(factors, np.float64)).astype(work.dtype).reshape(-1, 1, 1, 1)
    np.clip(out, 0, _bound(batch.dtype), out=out)
    return out.astype(np.uint8) if integer else out


def adjust_sharpness(inpt, sharpness_factor):
    """Blend with the image smoothed by the 3x3 kernel [[1, 1, 1], [1, 5, 1], [1, 1, 1]] / 13 (borders kept)."""
    factor = _non_negative(sharpness_factor, "sharpness_factor")
    array, wrap = _unwrap(inpt)
    batch, restore = _as_batch(array, "adjust_sharpness")
    return wrap(restore(_sharpness_batch(batch, np.full(batch.shape[0], factor))))


def _posterize_batch(batch, bits):
    """posterize with bits (N,) per image."""
    bits = np.asarray(bits, np.int64).reshape(-1, 1, 1, 1)
    if batch.dtype == np.uint8:
        return batch & (((1 << bits) - 1) << (8 - bits)).astype(np.uint8)
    levels = (1 << bits).astype(batch.dtype)
    return (np.clip(np.floor(batch * levels), 0, levels - 1) / levels).astype(batch.dtype)


def posterize(inpt, bits):
    """Keep the `bits` high bits of uint8 values (floats: floor(x * 2^bits) / 2^bits, clamped)."""
    bits = _int(bits, "posterize bits")
    if bits > 8:
        raise ValueError(f"posterize bits must be in [0, 8], got {bits}")
    array, wrap = _unwrap(inpt)
    _working_float(array, "posterize")
    return wrap(_posterize_batch(array.reshape(1, -1, 1, 1), [bits]).reshape(array.shape))


def invert(inpt):
    """255 - x for uint8, 1 - x for floats."""
    array, wrap = _unwrap(inpt)
    return wrap(~array if array.dtype == np.uint8 else (1 - array).astype(array.dtype))


def solarize(inpt, threshold):
    """Invert the pixels >= threshold."""
    array, wrap = _unwrap(inpt)
    if threshold > _bound(array.dtype):
        raise ValueError(f"solarize threshold {threshold} exceeds the maximum value of {array.dtype} images")
    inverted = invert(array)
    return wrap(np.where(array >= threshold, inverted, array))


def autocontrast(inpt):
    """Stretch each channel of each image linearly to [0, bound] (constant channels unchanged)."""
    array, wrap = _unwrap(inpt)
    batch, restore = _as_batch(array, "autocontrast")
    work, integer = _working_float(batch, "autocontrast")
    bound = _bound(batch.dtype)
    low = work.min(axis=(-2, -1), keepdims=True)
    high = work.max(axis=(-2, -1), keepdims=True)
    flat = high == low
    inv_scale = np.where(flat, 1, (high - low) * work.dtype.type(1.0 / bound))
    out = np.clip((work - np.where(flat, 0, low)) / inv_scale, 0, bound)
    return wrap(restore(out.astype(batch.dtype)))


def equalize(inpt):
    """Histogram equalisation per channel with PIL's lookup table (torchvision's equalize); floats go through
    uint8 (x * 255.999, truncated) and back (/ 255)."""
    array, wrap = _unwrap(inpt)
    batch, restore = _as_batch(array, "equalize")
    _working_float(batch, "equalize")
    images = batch if batch.dtype == np.uint8 else (batch * (255 + 1.0 - 1e-3)).astype(np.uint8)
    planes = images.reshape(-1, images.shape[-2] * images.shape[-1])
    count, size = planes.shape
    hist = np.bincount((planes + 256 * np.arange(count)[:, None]).ravel(), minlength=256 * count).reshape(count, 256)
    cumulative = np.cumsum(hist, axis=1)
    top = hist[np.arange(count), np.argmax(cumulative, axis=1)]  # pixels of the highest level present
    step = (size - top) // 255
    lut = np.zeros((count, 256), np.int64)
    lut[:, 1:] = np.clip((cumulative[:, :-1] + step[:, None] // 2) // np.maximum(step, 1)[:, None], 0, 255)
    equalized = np.take_along_axis(lut, planes.astype(np.int64), axis=1).astype(np.uint8)
    out = np.where((step > 0)[:, None], equalized, planes).reshape(images.shape)
    if batch.dtype != np.uint8:
        out = (out * (1.0 / 255)).astype(batch.dtype)
    return wrap(restore(out))

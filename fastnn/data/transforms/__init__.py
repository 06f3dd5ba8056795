"""Image transforms with torchvision.transforms.v2's names, arguments and defaults, on images and whole batches.

After ToTensor, images are C x H x W and batches N x C x H x W (or any (..., C, H, W)); Tensors or ndarrays,
each transform returns the kind it was given, and uint8 images stay uint8 where torchvision keeps them. Random
transforms draw at call time from their `generator` (an np.random.Generator) or, when none was passed, from
fastnn.random.default_generator(), so fastnn.manual_seed(s) fixes every batch. Unlike torchvision (one draw per
call), every image of a batch gets its own draw, which lets data sets transform a whole batch in one call
(`batched = True`). The deterministic operations behind them are in fastnn.data.transforms.functional.
"""
import math
import numbers

import numpy as np

from fastnn._kernels import augment_codes as _K
from fastnn.data.transforms import functional as F
from fastnn.data.transforms.functional import (InterpolationMode, _as_batch, _check_image_dims, _count, _unwrap)
from fastnn.random import default_generator
from fastnn.tensor import Tensor

__all__ = ["Compose", "ToTensor", "ToImage", "PILToTensor", "ToDtype", "Normalize", "RandomHorizontalFlip",
           "RandomVerticalFlip", "RandomCrop", "Resize", "CenterCrop", "RandomResizedCrop", "FiveCrop", "TenCrop", "ColorJitter", "Grayscale",
           "RandomGrayscale", "FancyPCA", "RandomAffine", "RandomRotation", "RandAugment", "TrivialAugmentWide",
           "RandomErasing", "InterpolationMode", "functional", "MixUp", "CutMix", "Cutout"]
functional = F


# ---- argument checks ----------------------------------------------------------------------------------------

def _probability(p, name):
    if isinstance(p, bool) or not isinstance(p, numbers.Real) or not 0 <= p <= 1:
        raise ValueError(f"{name} p must be in [0, 1], got {p!r}")
    return float(p)


def _range(value, name, low=None, high=None):
    """A (min, max) pair of numbers with min <= max, inside [low, high] where given."""
    if not isinstance(value, (tuple, list)) or len(value) != 2 or \
            not all(isinstance(v, numbers.Real) and not isinstance(v, bool) for v in value):
        raise ValueError(f"{name} must be a sequence (min, max) of 2 numbers, got {value!r}")
    lo, hi = float(value[0]), float(value[1])
    if lo > hi:
        raise ValueError(f"{name} must be given as (min, max), got the reversed range {value!r}")
    if (low is not None and lo < low) or (high is not None and hi > high):
        raise ValueError(f"{name} must lie in [{low}, {high}], got {value!r}")
    return lo, hi


def _symmetric(value, name, center=0.0, low=None, high=None):
    """A number v -> (center - v, center + v) (v >= 0), or a (min, max) pair; clipped below at `low`."""
    if isinstance(value, numbers.Real) and not isinstance(value, bool):
        if value < 0:
            raise ValueError(f"{name} must be non-negative when a single number, got {value!r}")
        lo, hi = center - float(value), center + float(value)
        return (max(lo, low) if low is not None else lo), hi
    return _range(value, name, low, high)


class _Random:
    """Shared by the random transforms: the generator and per-call random state."""
    batched = True
    generator = None

    def _rng(self):
        return self.generator if self.generator is not None else default_generator()


# ---- composition, conversion, normalization ---------------------------------------------------------------

class Compose:
    """Apply transforms one after another."""

    def __init__(self, transforms):
        self.transforms = list(transforms)

    @property
    def batched(self):
        return all(getattr(t, "batched", False) for t in self.transforms)

    def __call__(self, image):
        transforms, i = self.transforms, 0
        while i < len(transforms):
            transform = transforms[i]
            following = transforms[i + 1] if i + 1 < len(transforms) else None
            if type(transform) is RandomCrop and isinstance(following, _RandomFlip):
                # one kernel pass for both, with the same draws as two calls (crop's, then flip's)
                image = transform._crop(image, following)
                i += 2
                continue
            if (type(transform) in (ToDtype, ToTensor) and type(following) is Normalize and not following.inplace
                    and transform._fuses_normalize(image)):
                image = transform._normalized(image, following)  # one pass, the same bits as two
                i += 2
                continue
            image = transform(image)
            i += 1
        return image

    def __repr__(self):
        return "Compose(" + ", ".join(repr(t) for t in self.transforms) + ")"


def _channels_first(pic, name):
    """An ndarray or PIL image H x W, H x W x C or batch N x H x W x C as an ndarray view C x H x W or
    N x C x H x W."""
    if isinstance(pic, Tensor):
        raise TypeError(f"{name} expects an ndarray or PIL image (H x W, H x W x C or N x H x W x C), got a Tensor")
    array = np.asarray(pic)
    if array.ndim == 2:
        array = array[None]
    elif array.ndim == 3:
        array = array.transpose(2, 0, 1)
    elif array.ndim == 4:
        array = array.transpose(0, 3, 1, 2)
    else:
        raise ValueError(f"{name} expects H x W, H x W x C or N x H x W x C, got shape {array.shape}")
    return array


class ToTensor:
    """ndarray or PIL image H x W, H x W x C or batch N x H x W x C -> Tensor C x H x W or N x C x H x W.

    uint8 input is scaled to float32 in [0, 1] (x / 255); other dtypes are converted without scaling.
    """
    batched = True

    def __call__(self, pic):
        array = _channels_first(pic, "ToTensor")
        if array.dtype == np.uint8:
            scaled = array.astype(np.float32, order="C")
            scaled /= np.float32(255)
            return Tensor(scaled)
        return Tensor(np.ascontiguousarray(array))

    @staticmethod
    def _fuses_normalize(pic):
        return isinstance(pic, np.ndarray) and pic.dtype == np.uint8

    def _normalized(self, pic, normalize):
        """This conversion of uint8 images followed by `normalize`, in one pass: x / 255, then normalized."""
        array = _channels_first(pic, "ToTensor")
        return Tensor(F._normalize_array(array, np.float32, (1.0, 255.0), normalize.mean, normalize.std))

    def __repr__(self):
        return "ToTensor()"


class ToImage:
    """ndarray or PIL image H x W, H x W x C or batch N x H x W x C -> Tensor C x H x W or N x C x H x W with the
    same dtype and values (torchvision.transforms.v2.ToImage; a Tensor is returned as it is)."""
    batched = True

    def __call__(self, pic):
        if isinstance(pic, Tensor):
            return pic
        return Tensor(np.ascontiguousarray(_channels_first(pic, type(self).__name__)))

    def __repr__(self):
        return f"{type(self).__name__}()"


class PILToTensor(ToImage):
    """PIL image H x W x C -> Tensor C x H x W of the same dtype, unscaled (torchvision's PILToTensor). Also takes
    the H x W x C ndarrays fastnn's data sets hand over (what np.asarray gives for a PIL image)."""

    def __call__(self, pic):
        if isinstance(pic, Tensor):
            raise TypeError(f"pic should be PIL Image or ndarray, got {type(pic).__name__}")
        return super().__call__(pic)


class ToDtype:
    """Convert images to `dtype`, with scale=True also their value range (uint8 [0, 255] -> float [0, 1], ...);
    see functional.to_dtype. Followed by Normalize in a Compose, both run as one pass."""
    batched = True

    def __init__(self, dtype, scale=False):
        self.dtype = np.dtype(dtype)
        self.scale = bool(scale)

    def __call__(self, image):
        return F.to_dtype(image, self.dtype, self.scale)

    def _fuses_normalize(self, image):
        return self.dtype.kind == "f"

    def _normalized(self, image, normalize):
        """This conversion (to a float dtype) followed by `normalize`, in one pass."""
        source = _unwrap(image)[0].dtype
        F._check_dtypes(source, self.dtype)
        scale = F._value_scale(source) if self.scale and source.kind != "f" else 1.0
        return F._scaled_normalize(image, self.dtype, (scale, 1.0), normalize.mean, normalize.std)

    def __repr__(self):
        return f"ToDtype(dtype={self.dtype}, scale={self.scale})"


class Normalize:
    """(x - mean[c]) / std[c] per channel of floating-point (..., C, H, W) images; see functional.normalize."""
    batched = True

    def __init__(self, mean, std, inplace=False):
        self.mean, self.std = F._mean_std(mean, std)
        self.inplace = bool(inplace)

    def __call__(self, image):
        return F._scaled_normalize(image, F._float_dtype(image), F.UNSCALED, self.mean, self.std, self.inplace)

    def __repr__(self):
        return f"Normalize(mean={self.mean.tolist()}, std={self.std.tolist()})"


# ---- flips and crops ----------------------------------------------------------------------------------------

class _RandomFlip(_Random):
    _vertical = False

    def __init__(self, p=0.5, generator=None):
        self.p = _probability(p, type(self).__name__)
        self.generator = generator

    def _flags(self, array):
        """(hflip, vflip) per image of `array` (None: no flip of that kind); one draw per image."""
        rng = self._rng()
        flags = rng.random(_count(array)) < self.p if array.ndim >= 4 else np.array([rng.random() < self.p])
        return (None, flags) if self._vertical else (flags, None)

    def __call__(self, image):
        array, wrap = _unwrap(image)
        _check_image_dims(array, type(self).__name__)
        hflip, vflip = self._flags(array)
        if array.ndim < 4:
            if (hflip if vflip is None else vflip)[0]:
                return (F.vertical_flip if self._vertical else F.horizontal_flip)(image)
            return image
        batch, restore = _as_batch(array, type(self).__name__)
        height, width = batch.shape[-2:]
        return wrap(restore(F._crop_batch(batch, 0, 0, height, width, hflip=hflip, vflip=vflip)))

    def __repr__(self):
        return f"{type(self).__name__}(p={self.p})"


class RandomHorizontalFlip(_RandomFlip):
    """Mirror the image left-right with probability p (each image of a batch independently)."""


class RandomVerticalFlip(_RandomFlip):
    """Mirror the image top-bottom with probability p (each image of a batch independently)."""
    _vertical = True


class RandomCrop(_Random):
    """Crop a random size[0] x size[1] window, after padding the borders by `padding` when given.

    padding: int (all sides), (left/right, top/bottom) or (left, top, right, bottom); pad_if_needed pads an image
    smaller than size by the difference on both sides; padding_mode is 'constant' (filled with `fill`, a number or
    one per channel), 'edge', 'reflect' or 'symmetric'. Constant padding never materializes the padded image.
    """

    def __init__(self, size, padding=None, pad_if_needed=False, fill=0, padding_mode="constant", generator=None):
        self.size = F._size_pair(size, "RandomCrop size")
        self.padding = (0, 0, 0, 0) if padding is None else F._padding_ltrb(padding, "RandomCrop padding")
        if padding_mode not in F._PADDING_MODES:
            raise ValueError(f"RandomCrop padding_mode must be one of {F._PADDING_MODES}, got {padding_mode!r}")
        self.pad_if_needed = bool(pad_if_needed)
        self.fill = fill
        self.padding_mode = padding_mode
        self.generator = generator

    def __call__(self, image):
        return self._crop(image)

    def _crop(self, image, flip=None):
        """The crop, followed by the random flip `flip` (a RandomHorizontalFlip/RandomVerticalFlip) when given."""
        array, wrap = _unwrap(image)
        batch, restore = _as_batch(array, "RandomCrop")
        left, top, right, bottom = self.padding
        height, width = self.size
        padded_h, padded_w = batch.shape[-2] + top + bottom, batch.shape[-1] + left + right
        if self.pad_if_needed:  # torchvision pads the missing size on both sides
            extra_w, extra_h = max(width - padded_w, 0), max(height - padded_h, 0)
            left, right, top, bottom = left + extra_w, right + extra_w, top + extra_h, bottom + extra_h
            padded_h, padded_w = padded_h + 2 * extra_h, padded_w + 2 * extra_w
        if height > padded_h or width > padded_w:
            raise ValueError(f"RandomCrop size {self.size} is larger than the padded image {(padded_h, padded_w)}; "
                             f"pass padding or pad_if_needed=True")
        rng = self._rng()
        size = _count(array) if array.ndim >= 4 else None
        tops = rng.integers(0, padded_h - height + 1, size=size)
        lefts = rng.integers(0, padded_w - width + 1, size=size)
        hflip, vflip = (None, None) if flip is None else flip._flags(array)
        if self.padding_mode == "constant":  # the kernel reads outside pixels as fill: offsets into the padding
            out = F._crop_batch(batch, np.asarray(tops) - top, np.asarray(lefts) - left, height, width, self.fill,
                                hflip, vflip)
        else:
            padded = F._pad_batch(batch, (left, top, right, bottom), None, self.padding_mode)
            out = F._crop_batch(padded, tops, lefts, height, width, None, hflip, vflip)
        return wrap(restore(out))

    def __repr__(self):
        return (f"RandomCrop(size={self.size}, padding={self.padding}, pad_if_needed={self.pad_if_needed}, "
                f"fill={self.fill}, padding_mode={self.padding_mode!r})")


class CenterCrop:
    """The centred size window (zero-padded when the image is smaller); see functional.center_crop."""
    batched = True

    def __init__(self, size):
        self.size = F._size_pair(size, "CenterCrop size")

    def __call__(self, image):
        return F.center_crop(image, self.size)

    def __repr__(self):
        return f"CenterCrop(size={self.size})"


class FiveCrop:
    """The four corner crops and the centre crop, as a tuple (torchvision's order)."""
    batched = True

    def __init__(self, size):
        self.size = F._size_pair(size, "FiveCrop size")

    def __call__(self, image):
        return F.five_crop(image, self.size)

    def __repr__(self):
        return f"FiveCrop(size={self.size})"


class TenCrop:
    """FiveCrop of the image and of its horizontal (vertical_flip=True: vertical) mirror: a tuple of 10."""
    batched = True

    def __init__(self, size, vertical_flip=False):
        self.size = F._size_pair(size, "TenCrop size")
        self.vertical_flip = bool(vertical_flip)

    def __call__(self, image):
        return F.ten_crop(image, self.size, self.vertical_flip)

    def __repr__(self):
        return f"TenCrop(size={self.size}, vertical_flip={self.vertical_flip})"


class Resize:
    """Resize to size (h, w), or the smaller edge to an int size; see functional.resize."""
    batched = True

    def __init__(self, size, interpolation=InterpolationMode.BILINEAR, max_size=None, antialias=True):
        if isinstance(size, (tuple, list)) and len(size) == 2:
            F._size_pair(size, "Resize size")
        elif not (isinstance(size, numbers.Integral) or (isinstance(size, (tuple, list)) and len(size) == 1)):
            raise ValueError(f"Resize size must be an int or a sequence of 1 or 2 ints, got {size!r}")
        else:
            F._int(size if isinstance(size, numbers.Integral) else size[0], "Resize size", 1)
        self.size, self.max_size, self.antialias = size, max_size, antialias
        self.interpolation = F._interpolation(interpolation)

    def __call__(self, image):
        return F.resize(image, self.size, self.interpolation, self.max_size, self.antialias)

    def __repr__(self):
        return f"Resize(size={self.size}, interpolation={self.interpolation.value}, antialias={self.antialias})"


def _random_boxes(rng, count, height, width, scale, ratio, strict):
    """torchvision's RandomResizedCrop / RandomErasing box search, per image: up to 10 tries of an area
    uniform in scale * H * W and a log-uniform aspect ratio; (tops, lefts, heights, widths, found). A try fits
    when the box lies inside the image (strictly smaller, for RandomErasing)."""
    area = height * width
    target = area * rng.uniform(scale[0], scale[1], size=(count, 10))
    aspect = np.exp(rng.uniform(math.log(ratio[0]), math.log(ratio[1]), size=(count, 10)))
    box_w = np.rint(np.sqrt(target * aspect)).astype(np.int64)  # Python's round(): half to even
    box_h = np.rint(np.sqrt(target / aspect)).astype(np.int64)
    if strict:  # RandomErasing names them the other way round: h from area * ratio
        box_w, box_h = box_h, box_w
        fits = (box_h < height) & (box_w < width)
    else:
        fits = (box_w > 0) & (box_w <= width) & (box_h > 0) & (box_h <= height)
    found = fits.any(axis=1)
    first = np.argmax(fits, axis=1)
    rows = np.arange(count)
    heights, widths = box_h[rows, first], box_w[rows, first]
    tops = np.floor(rng.random(count) * (height - heights + 1)).astype(np.int64)
    lefts = np.floor(rng.random(count) * (width - widths + 1)).astype(np.int64)
    return tops, lefts, heights, widths, found


class RandomResizedCrop(_Random):
    """A random crop of area scale * H * W and aspect ratio in `ratio` (log-uniform), resized to `size`: the
    Inception / ResNet training crop. After 10 failed tries, torchvision's fallback: the central crop at the
    closest allowed aspect ratio."""

    def __init__(self, size, scale=(0.08, 1.0), ratio=(3.0 / 4.0, 4.0 / 3.0),
                 interpolation=InterpolationMode.BILINEAR, antialias=True, generator=None):
        self.size = F._size_pair(size, "RandomResizedCrop size")
        self.scale = _range(scale, "RandomResizedCrop scale", 0.0)
        self.ratio = _range(ratio, "RandomResizedCrop ratio", 0.0)
        if self.ratio[0] == 0:
            raise ValueError(f"RandomResizedCrop ratio must be positive, got {ratio!r}")
        self.interpolation = F._interpolation(interpolation)
        self.antialias = bool(antialias)
        self.generator = generator

    def _params(self, count, height, width):
        tops, lefts, heights, widths, found = _random_boxes(self._rng(), count, height, width, self.scale,
                                                            self.ratio, strict=False)
        in_ratio = width / height
        if in_ratio < self.ratio[0]:
            fb_w, fb_h = width, int(round(width / self.ratio[0]))
        elif in_ratio > self.ratio[1]:
            fb_h, fb_w = height, int(round(height * self.ratio[1]))
        else:
            fb_h, fb_w = height, width
        heights, widths = np.where(found, heights, fb_h), np.where(found, widths, fb_w)
        tops = np.where(found, tops, (height - fb_h) // 2)
        lefts = np.where(found, lefts, (width - fb_w) // 2)
        return tops, lefts, heights, widths

    def __call__(self, image):
        array, wrap = _unwrap(image)
        batch, restore = _as_batch(array, "RandomResizedCrop")
        height, width = batch.shape[-2:]
        tops, lefts, heights, widths = self._params(batch.shape[0], height, width)
        out_h, out_w = self.size
        wy = np.zeros((batch.shape[0], out_h, height))
        wx = np.zeros((batch.shape[0], out_w, width))
        for n in range(batch.shape[0]):  # crop + resize as one matrix pair per image
            wy[n, :, tops[n]:tops[n] + heights[n]] = _cached_weights(int(heights[n]), out_h, self.antialias,
                                                                     self.interpolation)
            wx[n, :, lefts[n]:lefts[n] + widths[n]] = _cached_weights(int(widths[n]), out_w, self.antialias,
                                                                      self.interpolation)
        return wrap(restore(F._resize_batch(batch, wy, wx)))

    def __repr__(self):
        return f"RandomResizedCrop(size={self.size}, scale={self.scale}, ratio={self.ratio})"


_WEIGHTS = {}


def _cached_weights(in_size, out_size, antialias, mode):
    key = (in_size, out_size, antialias, mode)
    if key not in _WEIGHTS:
        _WEIGHTS[key] = F._resize_weights(in_size, out_size, antialias, mode)
    return _WEIGHTS[key]


# ---- colour -------------------------------------------------------------------------------------------------

class ColorJitter(_Random):
    """Random brightness, contrast, saturation and hue, applied in a random order (each image its own order and
    factors). brightness/contrast/saturation b: factor uniform in [max(0, 1 - b), 1 + b] (or a (min, max) pair);
    hue h: shift uniform in [-h, h], h <= 0.5. Grayscale images get brightness and contrast only."""

    def __init__(self, brightness=0, contrast=0, saturation=0, hue=0, generator=None):
        self.brightness = self._check(brightness, "brightness")
        self.contrast = self._check(contrast, "contrast")
        self.saturation = self._check(saturation, "saturation")
        self.hue = self._check(hue, "hue", center=0.0, bound=(-0.5, 0.5))
        self.generator = generator

    @staticmethod
    def _check(value, name, center=1.0, bound=(0.0, None)):
        low, high = _symmetric(value, f"ColorJitter {name}", center, bound[0], bound[1])
        if (bound[0] is not None and low < bound[0]) or (bound[1] is not None and high > bound[1]):
            raise ValueError(f"ColorJitter {name} must lie in {bound}, got {value!r}")
        return None if low == high == center else (low, high)

    def __call__(self, image):
        array, wrap = _unwrap(image)
        if array.ndim < 3:
            raise ValueError(f"ColorJitter expects images (..., C, H, W), got shape {array.shape}")
        batch, restore = _as_batch(array, "ColorJitter")
        rng, n = self._rng(), batch.shape[0]
        order = rng.permuted(np.tile(np.arange(4), (n, 1)), axis=1)
        factors = np.zeros((n, 4))
        ops = np.full((n, 4), _K.OP_NONE, np.int64)
        codes = (_K.OP_BRIGHTNESS, _K.OP_CONTRAST, _K.OP_SATURATION, _K.OP_HUE)
        for code, bounds in zip(codes, (self.brightness, self.contrast, self.saturation, self.hue)):
            if bounds is None:
                continue
            drawn = rng.uniform(bounds[0], bounds[1], size=n)
            position = np.argmax(order == code, axis=1)
            ops[np.arange(n), position] = code
            factors[np.arange(n), position] = drawn
        return wrap(restore(F._color_batch(batch, ops, factors, "ColorJitter")))

    def __repr__(self):
        return (f"ColorJitter(brightness={self.brightness}, contrast={self.contrast}, "
                f"saturation={self.saturation}, hue={self.hue})")


class Grayscale:
    """RGB -> grayscale with 1 or 3 output channels; see functional.rgb_to_grayscale."""
    batched = True

    def __init__(self, num_output_channels=1):
        if num_output_channels not in (1, 3):
            raise ValueError(f"num_output_channels must be 1 or 3, got {num_output_channels!r}")
        self.num_output_channels = num_output_channels

    def __call__(self, image):
        return F.rgb_to_grayscale(image, self.num_output_channels)

    def __repr__(self):
        return f"Grayscale(num_output_channels={self.num_output_channels})"


class RandomGrayscale(_Random):
    """Turn each image to grayscale with probability p, keeping its number of channels."""

    def __init__(self, p=0.1, generator=None):
        self.p = _probability(p, "RandomGrayscale")
        self.generator = generator

    def __call__(self, image):
        array, wrap = _unwrap(image)
        if array.ndim < 3:
            raise ValueError(f"RandomGrayscale expects images (..., C, H, W), got shape {array.shape}")
        batch, restore = _as_batch(array, "RandomGrayscale")
        chosen = self._rng().random(batch.shape[0]) < self.p
        ops = np.where(chosen, _K.OP_GRAYSCALE, _K.OP_NONE)[:, None]
        return wrap(restore(F._color_batch(batch, ops, np.zeros(ops.shape), "RandomGrayscale")))

    def __repr__(self):
        return f"RandomGrayscale(p={self.p})"


class FancyPCA(_Random):
    """AlexNet's PCA lighting noise: add sum_i alpha_i * lambda_i * v_i to every pixel of an image, with
    (lambda_i, v_i) the eigenpairs of the training set's RGB covariance (see
    fastnn.data.preprocessing.channel_stats) and alpha_i ~ N(0, alphastd) drawn per image. The covariance must
    be in the images' units (uint8 images: 0..255 values; results rounded and clamped to [0, 255])."""

    def __init__(self, covariance, alphastd=0.1, generator=None):
        covariance = np.asarray(covariance, np.float64)
        if covariance.ndim != 2 or covariance.shape[0] != covariance.shape[1]:
            raise ValueError(f"FancyPCA covariance must be a square C x C matrix, got shape {covariance.shape}")
        if not np.allclose(covariance, covariance.T):
            raise ValueError("FancyPCA covariance must be symmetric")
        if not isinstance(alphastd, numbers.Real) or alphastd < 0:
            raise ValueError(f"FancyPCA alphastd must be a non-negative number, got {alphastd!r}")
        self.eigenvalues, self.eigenvectors = np.linalg.eigh(covariance)
        self.alphastd = float(alphastd)
        self.generator = generator

    def __call__(self, image):
        array, wrap = _unwrap(image)
        batch, restore = _as_batch(array, "FancyPCA")
        channels = len(self.eigenvalues)
        if batch.shape[1] != channels:
            raise ValueError(f"FancyPCA has a {channels} x {channels} covariance for images with {batch.shape[1]} "
                             f"channels")
        alpha = self._rng().normal(0.0, self.alphastd, size=(batch.shape[0], channels))
        shift = (alpha * self.eigenvalues) @ self.eigenvectors.T  # (N, C): V @ (alpha * lambda) per image
        if batch.dtype == np.uint8:
            out = np.clip(np.rint(batch + shift[:, :, None, None]), 0, 255).astype(np.uint8)
        else:
            out = batch + shift.astype(batch.dtype)[:, :, None, None]
        return wrap(restore(out))

    def __repr__(self):
        return f"FancyPCA(eigenvalues={self.eigenvalues.tolist()}, alphastd={self.alphastd})"


# ---- affine -------------------------------------------------------------------------------------------------

def _matrices(angles, translations, scales, shears, centers):
    """One torchvision inverse affine matrix per image (arrays of per-image parameters)."""
    return np.array([F._get_inverse_affine_matrix(c, a, t, s, sh) for a, t, s, sh, c in
                     zip(angles, translations, scales, shears, centers)]).reshape(-1, 6)


class RandomAffine(_Random):
    """Random rotation (degrees), translation (fraction of width, height; integer pixels), scale and shear
    (degrees; a number s -> x shear in (-s, s), 2 values -> x range, 4 values -> x and y ranges), per image."""

    def __init__(self, degrees, translate=None, scale=None, shear=None, interpolation=InterpolationMode.NEAREST,
                 fill=0, center=None, generator=None):
        self.degrees = _symmetric(degrees, "RandomAffine degrees")
        if translate is not None:
            if not isinstance(translate, (tuple, list)) or len(translate) != 2 or \
                    not all(isinstance(t, numbers.Real) and 0 <= t <= 1 for t in translate):
                raise ValueError(f"RandomAffine translate must be 2 fractions in [0, 1], got {translate!r}")
        self.translate = translate
        self.scale = None if scale is None else _range(scale, "RandomAffine scale", 0.0)
        if self.scale is not None and self.scale[0] <= 0:
            raise ValueError(f"RandomAffine scale must be positive, got {scale!r}")
        if shear is None:
            self.shear = None
        elif isinstance(shear, (tuple, list)) and len(shear) == 4:
            self.shear = _range(shear[:2], "RandomAffine shear") + _range(shear[2:], "RandomAffine shear")
        else:
            self.shear = _symmetric(shear, "RandomAffine shear") + (0.0, 0.0)
        self.interpolation = F._interpolation(interpolation)
        self.fill, self.center = fill, center
        self.generator = generator

    def __call__(self, image):
        array, wrap = _unwrap(image)
        batch, restore = _as_batch(array, "RandomAffine")
        rng, n = self._rng(), batch.shape[0]
        height, width = batch.shape[-2:]
        angles = rng.uniform(self.degrees[0], self.degrees[1], size=n)
        translations = np.zeros((n, 2))
        if self.translate is not None:
            limits = np.array([self.translate[0] * width, self.translate[1] * height])
            translations = np.rint(rng.uniform(-limits, limits, size=(n, 2)))
        scales = np.ones(n) if self.scale is None else rng.uniform(self.scale[0], self.scale[1], size=n)
        shears = np.zeros((n, 2))
        if self.shear is not None:
            shears[:, 0] = rng.uniform(self.shear[0], self.shear[1], size=n)
            shears[:, 1] = rng.uniform(self.shear[2], self.shear[3], size=n)
        centers = [F._center_f(self.center, height, width)] * n
        matrices = _matrices(angles, translations, scales, shears, centers)
        return wrap(restore(F._affine_batch(batch, matrices, self.interpolation, self.fill)))

    def __repr__(self):
        return (f"RandomAffine(degrees={self.degrees}, translate={self.translate}, scale={self.scale}, "
                f"shear={self.shear}, interpolation={self.interpolation.value})")


class RandomRotation(_Random):
    """Rotate by an angle uniform in degrees ((-d, d) for a number), counter-clockwise; each image its own angle
    (with expand=True one angle per call, so that the batch keeps one size)."""

    def __init__(self, degrees, interpolation=InterpolationMode.NEAREST, expand=False, center=None, fill=0,
                 generator=None):
        self.degrees = _symmetric(degrees, "RandomRotation degrees")
        self.interpolation = F._interpolation(interpolation)
        self.expand, self.center, self.fill = bool(expand), center, fill
        self.generator = generator

    def __call__(self, image):
        array, wrap = _unwrap(image)
        batch, restore = _as_batch(array, "RandomRotation")
        rng = self._rng()
        if self.expand:
            angle = float(rng.uniform(self.degrees[0], self.degrees[1]))
            return wrap(restore(F.rotate(batch, angle, self.interpolation, True, self.center, self.fill)))
        n = batch.shape[0]
        height, width = batch.shape[-2:]
        angles = -rng.uniform(self.degrees[0], self.degrees[1], size=n)  # rotate's sign convention
        matrices = _matrices(angles, [(0.0, 0.0)] * n, [1.0] * n, [(0.0, 0.0)] * n,
                             [F._center_f(self.center, height, width)] * n)
        return wrap(restore(F._affine_batch(batch, matrices, self.interpolation, self.fill)))

    def __repr__(self):
        return f"RandomRotation(degrees={self.degrees}, interpolation={self.interpolation.value})"


# ---- automatic augmentation ---------------------------------------------------------------------------------

_GEOMETRIC_OPS = ("ShearX", "ShearY", "TranslateX", "TranslateY", "Rotate")
_COLOUR_OPS = {"Brightness": _K.OP_BRIGHTNESS, "Color": _K.OP_SATURATION, "Contrast": _K.OP_CONTRAST}


def _op_matrices(op, magnitudes, height, width):
    """The inverse affine matrices (n, 6) of geometric op `op` at each image's (signed) magnitude."""
    n = len(magnitudes)
    zeros2 = [(0.0, 0.0)] * n
    if op in ("ShearX", "ShearY"):
        shear = np.degrees(np.arctan(magnitudes))
        shears = np.stack([shear, np.zeros(n)] if op == "ShearX" else [np.zeros(n), shear], axis=1)
        return _matrices(np.zeros(n), zeros2, np.ones(n), shears, [F._center_f((0, 0), height, width)] * n)
    if op in ("TranslateX", "TranslateY"):
        shift = np.trunc(magnitudes)  # int(magnitude)
        translations = np.stack([shift, np.zeros(n)] if op == "TranslateX" else [np.zeros(n), shift], axis=1)
        return _matrices(np.zeros(n), translations, np.ones(n), zeros2, zeros2)
    assert op == "Rotate", op
    return _matrices(-magnitudes, zeros2, np.ones(n), zeros2, zeros2)


def _apply_op(batch, op, magnitudes):
    """torchvision's _AutoAugmentBase._apply_image_or_video_transform for a group of images, each with its own
    magnitude, for the ops not batched across ops by _AutoAugment._apply_round."""
    if op == "Sharpness":
        return F._sharpness_batch(batch, 1.0 + magnitudes)
    if op == "Posterize":
        return F._posterize_batch(batch, magnitudes.astype(np.int64))
    if op == "Solarize":
        thresholds = (F._bound(batch.dtype) * magnitudes).reshape(-1, 1, 1, 1)
        return np.where(batch >= thresholds, F.invert(batch), batch)
    if op == "AutoContrast":
        return F.autocontrast(batch)
    if op == "Equalize":
        return F.equalize(batch)
    raise AssertionError(op)


class _AutoAugment(_Random):
    def __init__(self, num_magnitude_bins, interpolation, fill, generator):
        self.num_magnitude_bins = F._int(num_magnitude_bins, f"{type(self).__name__} num_magnitude_bins", 2)
        self.interpolation = F._interpolation(interpolation)
        self.fill, self.generator = fill, generator

    def _space(self, height, width):
        """{op: (magnitude per bin or None, signed)}, in torchvision's order."""
        bins = self.num_magnitude_bins
        return {name: (None if build is None else np.asarray(build(bins, height, width), np.float64), signed)
                for name, (build, signed) in self._SPACE.items()}

    def _apply_round(self, batch, ops, magnitudes, space):
        """Image i gets op ops[i] at magnitudes[i]. The geometric ops share one resampling kernel launch (one
        matrix per image), and so do brightness, colour and contrast (one colour op code per image)."""
        out = batch.copy()
        geometric, colour = [], []
        for index, name in enumerate(space):
            chosen = np.flatnonzero(ops == index)
            if not chosen.size or name == "Identity":
                continue
            if name in _GEOMETRIC_OPS:
                geometric.append((chosen, _op_matrices(name, magnitudes[chosen], *batch.shape[-2:])))
            elif name in _COLOUR_OPS:
                colour.append((chosen, np.full(chosen.size, _COLOUR_OPS[name])))
            else:
                out[chosen] = _apply_op(batch[chosen], name, magnitudes[chosen])
        if geometric:
            chosen = np.concatenate([c for c, _ in geometric])
            matrices = np.concatenate([m for _, m in geometric])
            out[chosen] = F._affine_batch(batch[chosen], matrices, self.interpolation, self.fill)
        if colour:
            chosen = np.concatenate([c for c, _ in colour])
            codes = np.concatenate([k for _, k in colour])
            out[chosen] = F._color_batch(batch[chosen], codes[:, None], 1.0 + magnitudes[chosen, None],
                                         type(self).__name__)
        return out

    def _checked(self, image):
        array, wrap = _unwrap(image)
        if array.ndim < 3:
            raise ValueError(f"{type(self).__name__} expects images (..., C, H, W), got shape {array.shape}")
        batch, restore = _as_batch(array, type(self).__name__)
        if batch.dtype != np.uint8 and batch.dtype.kind != "f":
            raise TypeError(f"{type(self).__name__} supports uint8 and floating-point images, got {batch.dtype}")
        return batch, lambda out: wrap(restore(out))


def _linspace(low, high):
    # torchvision's magnitudes are float32 (torch.linspace)
    return lambda bins, height, width: np.linspace(low, high, bins, dtype=np.float32)


class RandAugment(_AutoAugment):
    """RandAugment (Cubuk et al., 2020), torchvision's op set: num_ops ops per image, each chosen uniformly, at
    bin `magnitude` of num_magnitude_bins, signed ops negated with probability 1/2."""
    _SPACE = {
        "Identity": (None, False),
        "ShearX": (_linspace(0.0, 0.3), True),
        "ShearY": (_linspace(0.0, 0.3), True),
        "TranslateX": (lambda bins, h, w: np.linspace(0.0, 150.0 / 331.0 * w, bins, dtype=np.float32), True),
        "TranslateY": (lambda bins, h, w: np.linspace(0.0, 150.0 / 331.0 * h, bins, dtype=np.float32), True),
        "Rotate": (_linspace(0.0, 30.0), True),
        "Brightness": (_linspace(0.0, 0.9), True),
        "Color": (_linspace(0.0, 0.9), True),
        "Contrast": (_linspace(0.0, 0.9), True),
        "Sharpness": (_linspace(0.0, 0.9), True),
        "Posterize": (lambda bins, h, w: np.round(8 - np.arange(bins) / ((bins - 1) / 4)).astype(np.int64), False),
        "Solarize": (_linspace(1.0, 0.0), False),
        "AutoContrast": (None, False),
        "Equalize": (None, False),
    }

    def __init__(self, num_ops=2, magnitude=9, num_magnitude_bins=31, interpolation=InterpolationMode.NEAREST,
                 fill=None, generator=None):
        super().__init__(num_magnitude_bins, interpolation, fill, generator)
        self.num_ops = F._int(num_ops, "RandAugment num_ops")
        self.magnitude = F._int(magnitude, "RandAugment magnitude")
        if self.magnitude >= self.num_magnitude_bins:
            raise ValueError(f"RandAugment magnitude must be < num_magnitude_bins={self.num_magnitude_bins}, got "
                             f"{magnitude}")

    def __call__(self, image):
        batch, finish = self._checked(image)
        space = self._space(*batch.shape[-2:])
        rng, n = self._rng(), batch.shape[0]
        for _ in range(self.num_ops):
            ops = rng.integers(len(space), size=n)
            negate = rng.random(n) <= 0.5
            magnitudes = np.zeros(n)
            for index, (values, signed) in enumerate(space.values()):
                if values is not None:
                    sign = np.where(negate & signed, -1.0, 1.0)
                    magnitudes = np.where(ops == index, sign * float(values[self.magnitude]), magnitudes)
            batch = self._apply_round(batch, ops, magnitudes, space)
        return finish(batch)

    def __repr__(self):
        return (f"RandAugment(num_ops={self.num_ops}, magnitude={self.magnitude}, "
                f"num_magnitude_bins={self.num_magnitude_bins})")


class TrivialAugmentWide(_AutoAugment):
    """TrivialAugment (Müller & Hutter, 2021), wide magnitudes: one op per image at a uniformly random bin."""
    _SPACE = {
        "Identity": (None, False),
        "ShearX": (_linspace(0.0, 0.99), True),
        "ShearY": (_linspace(0.0, 0.99), True),
        "TranslateX": (_linspace(0.0, 32.0), True),
        "TranslateY": (_linspace(0.0, 32.0), True),
        "Rotate": (_linspace(0.0, 135.0), True),
        "Brightness": (_linspace(0.0, 0.99), True),
        "Color": (_linspace(0.0, 0.99), True),
        "Contrast": (_linspace(0.0, 0.99), True),
        "Sharpness": (_linspace(0.0, 0.99), True),
        "Posterize": (lambda bins, h, w: np.round(8 - np.arange(bins) / ((bins - 1) / 6)).astype(np.int64), False),
        "Solarize": (_linspace(1.0, 0.0), False),
        "AutoContrast": (None, False),
        "Equalize": (None, False),
    }

    def __init__(self, num_magnitude_bins=31, interpolation=InterpolationMode.NEAREST, fill=None, generator=None):
        super().__init__(num_magnitude_bins, interpolation, fill, generator)

    def __call__(self, image):
        batch, finish = self._checked(image)
        space = self._space(*batch.shape[-2:])
        rng, n = self._rng(), batch.shape[0]
        ops = rng.integers(len(space), size=n)
        bins = rng.integers(self.num_magnitude_bins, size=n)
        negate = rng.random(n) <= 0.5
        magnitudes = np.zeros(n)
        for index, (values, signed) in enumerate(space.values()):
            if values is not None:
                picked = values[bins].astype(np.float64)
                magnitudes = np.where(ops == index, np.where(negate & signed, -picked, picked), magnitudes)
        return finish(self._apply_round(batch, ops, magnitudes, space))

    def __repr__(self):
        return f"TrivialAugmentWide(num_magnitude_bins={self.num_magnitude_bins})"


# ---- erasing ------------------------------------------------------------------------------------------------

class RandomErasing(_Random):
    """Random Erasing (Zhong et al., 2020): with probability p, a box of area in scale * H * W and aspect ratio
    in `ratio` (log-uniform) set to `value`: a number, one per channel (e.g. the data set's mean), or 'random'
    (standard normal noise; uniform 0..255 for uint8). No box after 10 tries: the image is kept."""

    def __init__(self, p=0.5, scale=(0.02, 0.33), ratio=(0.3, 3.3), value=0, inplace=False, generator=None):
        self.p = _probability(p, "RandomErasing")
        self.scale = _range(scale, "RandomErasing scale", 0.0, 1.0)
        self.ratio = _range(ratio, "RandomErasing ratio", 0.0)
        if self.ratio[0] == 0:
            raise ValueError(f"RandomErasing ratio must be positive, got {ratio!r}")
        if isinstance(value, str):
            if value != "random":
                raise ValueError(f"RandomErasing value must be a number, a sequence or 'random', got {value!r}")
        elif not isinstance(value, numbers.Real) and not (isinstance(value, (tuple, list)) and
                                                          all(isinstance(v, numbers.Real) for v in value)):
            raise ValueError(f"RandomErasing value must be a number, a sequence or 'random', got {value!r}")
        self.value, self.inplace = value, bool(inplace)
        self.generator = generator

    def _boxes(self, count, height, width):
        """(boxes (N, 4) as top, left, height, width; zero-sized where an image is not erased)."""
        rng = self._rng()
        erase = rng.random(count) < self.p
        tops, lefts, heights, widths, found = _random_boxes(rng, count, height, width, self.scale, self.ratio,
                                                            strict=True)
        keep = erase & found
        return np.stack([tops, lefts, heights, widths], axis=1) * keep[:, None]

    def __call__(self, image):
        array, wrap = _unwrap(image)
        batch, restore = _as_batch(array, "RandomErasing")
        boxes = self._boxes(batch.shape[0], *batch.shape[-2:]).astype(np.int64)
        channels = batch.shape[1]
        if self.value == "random":
            sizes = channels * boxes[:, 2] * boxes[:, 3]
            offsets = np.concatenate([[0], np.cumsum(sizes)[:-1]]).astype(np.int64)
            rng = self._rng()
            if batch.dtype == np.uint8:
                noise = rng.integers(0, 256, size=int(sizes.sum())).astype(np.uint8)
            else:
                noise = rng.standard_normal(int(sizes.sum())).astype(batch.dtype)
            out = F._launch("erase_noise", batch, boxes, noise, offsets)
        else:
            values = F._fill_values(self.value, channels, batch.dtype, "RandomErasing value")
            out = F._launch("erase_constant", batch, np.ascontiguousarray(boxes[:, None]),
                            np.ascontiguousarray(np.broadcast_to(values, (batch.shape[0], channels))))
        if self.inplace:
            array[...] = restore(out)
            return image
        return wrap(restore(out))

    def __repr__(self):
        return f"RandomErasing(p={self.p}, scale={self.scale}, ratio={self.ratio}, value={self.value!r})"


from fastnn.data.mixing import CutMix, Cutout, MixUp  # noqa: E402  (torchvision.transforms.v2 has them here)

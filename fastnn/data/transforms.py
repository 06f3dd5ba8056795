"""Image transforms in the style of torchvision.transforms, working on single images and on whole batches.

After ToTensor, images are C x H x W and batches N x C x H x W (Tensors or ndarrays; each transform returns the
kind it was given). Random transforms draw at call time from their `generator` (an np.random.Generator) or,
when none was passed, from fastnn.random.default_generator(); in a batch each image gets its own draw.
Transforms with `batched = True` accept a batch, which lets data sets transform a whole batch in one call.
"""
import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from fastnn.random import default_generator
from fastnn.tensor import Tensor


def _unwrap(image):
    if isinstance(image, Tensor):
        return image.data, lambda array: Tensor(array, device=image.device)
    return np.asarray(image), lambda array: array


def _pair(value, name):
    if isinstance(value, (int, np.integer)):
        return int(value), int(value)
    if len(value) == 2:
        return int(value[0]), int(value[1])
    raise ValueError(f"{name} must be an int or a pair of ints, got {value!r}")


def _check_image_dims(array, name):
    if not 2 <= array.ndim <= 4:
        raise ValueError(f"{name} expects an image H x W or C x H x W or a batch N x C x H x W, got shape "
                         f"{array.shape}")


class Compose:
    """Apply transforms one after another."""

    def __init__(self, transforms):
        self.transforms = list(transforms)

    @property
    def batched(self):
        return all(getattr(t, "batched", False) for t in self.transforms)

    def __call__(self, image):
        for transform in self.transforms:
            image = transform(image)
        return image

    def __repr__(self):
        return "Compose(" + ", ".join(repr(t) for t in self.transforms) + ")"


class ToTensor:
    """ndarray image H x W, H x W x C or batch N x H x W x C -> Tensor C x H x W or N x C x H x W.

    uint8 input is scaled to float32 in [0, 1] (x / 255); other dtypes are converted without scaling.
    """
    batched = True

    def __call__(self, pic):
        if isinstance(pic, Tensor):
            raise TypeError("ToTensor expects an ndarray image (H x W, H x W x C or N x H x W x C), got a Tensor")
        array = np.asarray(pic)
        if array.ndim == 2:
            array = array[None]
        elif array.ndim == 3:
            array = array.transpose(2, 0, 1)
        elif array.ndim == 4:
            array = array.transpose(0, 3, 1, 2)
        else:
            raise ValueError(f"ToTensor expects H x W, H x W x C or N x H x W x C, got shape {array.shape}")
        if array.dtype == np.uint8:
            scaled = array.astype(np.float32, order="C")
            scaled /= np.float32(255)
            return Tensor(scaled)
        return Tensor(np.ascontiguousarray(array))

    def __repr__(self):
        return "ToTensor()"


class Normalize:
    """(x - mean[c]) / std[c] per channel c of C x H x W images or N x C x H x W batches (floating point)."""
    batched = True

    def __init__(self, mean, std, inplace=False):
        self.mean = np.atleast_1d(np.asarray(mean, dtype=np.float64))
        self.std = np.atleast_1d(np.asarray(std, dtype=np.float64))
        if self.mean.ndim != 1 or self.std.ndim != 1:
            raise ValueError(f"Normalize mean and std must be numbers or sequences, got {mean!r} and {std!r}")
        if np.any(self.std == 0):
            raise ValueError(f"Normalize std must be non-zero, got {std!r}")
        self.inplace = bool(inplace)

    def __call__(self, image):
        array, wrap = _unwrap(image)
        if array.dtype.kind != "f":
            raise TypeError(f"Normalize expects a floating-point image (apply ToTensor first), got {array.dtype}")
        if array.ndim not in (3, 4):
            raise ValueError(f"Normalize expects C x H x W or N x C x H x W, got shape {array.shape}")
        channels = array.shape[-3]
        for name, values in (("mean", self.mean), ("std", self.std)):
            if len(values) not in (1, channels):
                raise ValueError(f"Normalize {name} has {len(values)} values for {channels} channels")
        mean = self.mean.astype(array.dtype).reshape(-1, 1, 1)
        std = self.std.astype(array.dtype).reshape(-1, 1, 1)
        if self.inplace:
            np.subtract(array, mean, out=array)
            np.divide(array, std, out=array)
            return image
        return wrap((array - mean) / std)

    def __repr__(self):
        return f"Normalize(mean={self.mean.tolist()}, std={self.std.tolist()})"


class RandomCrop:
    """Crop a random size[0] x size[1] window, after padding the borders by `padding` when given.

    padding: int (all sides), (left/right, top/bottom) or (left, top, right, bottom); padding_mode is
    'constant' (filled with `fill`), 'edge', 'reflect' or 'symmetric'.
    """
    batched = True
    _PADDING_MODES = ("constant", "edge", "reflect", "symmetric")

    def __init__(self, size, padding=None, fill=0, padding_mode="constant", generator=None):
        self.size = _pair(size, "RandomCrop size")
        if min(self.size) < 1:
            raise ValueError(f"RandomCrop size must be positive, got {size!r}")
        if padding is None:
            padding = 0
        if isinstance(padding, (int, np.integer)):
            padding = (padding,) * 4
        elif len(padding) == 2:
            padding = (padding[0], padding[1], padding[0], padding[1])
        elif len(padding) != 4:
            raise ValueError(f"RandomCrop padding must be an int or a sequence of 2 or 4 ints, got {padding!r}")
        self.padding = tuple(int(p) for p in padding)
        if min(self.padding) < 0:
            raise ValueError(f"RandomCrop padding must be non-negative, got {padding!r}")
        if padding_mode not in self._PADDING_MODES:
            raise ValueError(f"RandomCrop padding_mode must be one of {self._PADDING_MODES}, got {padding_mode!r}")
        self.fill = fill
        self.padding_mode = padding_mode
        self.generator = generator

    def __call__(self, image):
        array, wrap = _unwrap(image)
        _check_image_dims(array, "RandomCrop")
        left, top, right, bottom = self.padding
        if any(self.padding):
            array = self._pad(array, left, top, right, bottom)
        height, width = self.size
        if height > array.shape[-2] or width > array.shape[-1]:
            raise ValueError(f"RandomCrop size {self.size} is larger than the padded image "
                             f"{array.shape[-2:]}")
        rng = self.generator if self.generator is not None else default_generator()
        windows = sliding_window_view(array, (height, width), axis=(-2, -1))
        if array.ndim == 4:
            count = array.shape[0]
            tops = rng.integers(0, array.shape[-2] - height + 1, size=count)
            lefts = rng.integers(0, array.shape[-1] - width + 1, size=count)
            return wrap(windows[np.arange(count), :, tops, lefts])
        crop_top = rng.integers(0, array.shape[-2] - height + 1)
        crop_left = rng.integers(0, array.shape[-1] - width + 1)
        return wrap(windows[..., crop_top, crop_left, :, :].copy())

    def _pad(self, array, left, top, right, bottom):
        if self.padding_mode == "constant":  # a filled buffer plus one copy is several times faster than np.pad
            height, width = array.shape[-2:]
            padded = np.full(array.shape[:-2] + (top + height + bottom, left + width + right), self.fill,
                             dtype=array.dtype)
            padded[..., top:top + height, left:left + width] = array
            return padded
        pad_width = [(0, 0)] * (array.ndim - 2) + [(top, bottom), (left, right)]
        return np.pad(array, pad_width, mode=self.padding_mode)

    def __repr__(self):
        return f"RandomCrop(size={self.size}, padding={self.padding})"


class RandomHorizontalFlip:
    """Mirror the image left-right with probability p (each image of a N x C x H x W batch independently)."""
    batched = True

    def __init__(self, p=0.5, generator=None):
        if not 0 <= p <= 1:
            raise ValueError(f"RandomHorizontalFlip p must be in [0, 1], got {p!r}")
        self.p = p
        self.generator = generator

    def __call__(self, image):
        array, wrap = _unwrap(image)
        _check_image_dims(array, "RandomHorizontalFlip")
        rng = self.generator if self.generator is not None else default_generator()
        if array.ndim == 4:
            flip = rng.random(array.shape[0]) < self.p
            return wrap(np.where(flip[:, None, None, None], array[..., ::-1], array))
        if rng.random() < self.p:
            return wrap(array[..., ::-1].copy())
        return image

    def __repr__(self):
        return f"RandomHorizontalFlip(p={self.p})"

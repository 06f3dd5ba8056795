"""Test-time augmentation: average a model's softmax over flipped and cropped views of each image.

AlexNet scored the average over ten 224x224 views of a 256x256 image (the four corner crops and the centre
crop, and their mirror images: TenCrop); ResNet evaluated the same way. Small images have no margin to crop, so
`padding` first pads them (28x28 Fashion-MNIST padded by 2 gives five 28x28 crops shifted by up to 2 pixels,
the shifts RandomCrop(28, padding=2) trains with). Works with any Module mapping N x C x H x W to N x classes
logits; put it in eval mode first (TTA does not change the mode) -- batch statistics would otherwise differ
between views.

    probs = tta_predict(model, images, crop_size=28, padding=2, num_crops=5, flip=True)  # 10 views
"""
import numpy as np

from fastnn.autograd import no_grad
from fastnn.factory import tensor
from fastnn.ops import softmax
from fastnn.tensor import Tensor

__all__ = ["tta_views", "tta_predict", "TTA"]

_PADDING_MODES = ("constant", "edge", "reflect", "symmetric")


def _crop_offsets(height, width, crop_h, crop_w, num_crops):
    """(top, left) of each crop: the centre (num_crops=1), or as torchvision's five_crop: top-left, top-right,
    bottom-left, bottom-right, centre (num_crops=5); the centre rounds like torchvision's center_crop."""
    centre = (int(round((height - crop_h) / 2.0)), int(round((width - crop_w) / 2.0)))
    if num_crops == 1:
        return [centre]
    return [(0, 0), (0, width - crop_w), (height - crop_h, 0), (height - crop_h, width - crop_w), centre]


def tta_views(images, crop_size=None, padding=0, num_crops=5, flip=True, fill=0.0, padding_mode="constant"):
    """The augmented views of a batch N x C x H x W (ndarray or Tensor), as a list of ndarrays of the crop size.

    Order: each crop of _crop_offsets, then (flip=True) the same crops of the horizontally mirrored image,
    i.e. torchvision's TenCrop order. crop_size defaults to the image size (then padding gives the margin).
    """
    array = images.detach().numpy() if isinstance(images, Tensor) else np.asarray(images)
    if array.ndim != 4:
        raise ValueError(f"tta_views expects a batch N x C x H x W, got shape {array.shape}")
    if num_crops not in (1, 5):
        raise ValueError(f"num_crops must be 1 (centre) or 5 (corners and centre, FiveCrop), got {num_crops!r}")
    if isinstance(padding, bool) or not isinstance(padding, (int, np.integer)) or padding < 0:
        raise ValueError(f"padding must be a non-negative int, got {padding!r}")
    if padding_mode not in _PADDING_MODES:
        raise ValueError(f"padding_mode must be one of {_PADDING_MODES}, got {padding_mode!r}")
    height, width = array.shape[-2:]
    if crop_size is None:
        crop_size = (height, width)
    crop_h, crop_w = (crop_size, crop_size) if isinstance(crop_size, (int, np.integer)) else tuple(crop_size)
    if padding:
        pad = [(0, 0), (0, 0), (padding, padding), (padding, padding)]
        array = (np.pad(array, pad, mode="constant", constant_values=fill) if padding_mode == "constant"
                 else np.pad(array, pad, mode=padding_mode))
    padded_h, padded_w = array.shape[-2:]
    if not (0 < crop_h <= padded_h and 0 < crop_w <= padded_w):
        raise ValueError(f"crop_size {(crop_h, crop_w)} must be positive and fit the padded image "
                         f"{(padded_h, padded_w)}")
    offsets = _crop_offsets(padded_h, padded_w, crop_h, crop_w, num_crops)
    views = [array[..., top:top + crop_h, left:left + crop_w] for top, left in offsets]
    if flip:
        mirrored = array[..., ::-1]
        views += [mirrored[..., top:top + crop_h, left:left + crop_w] for top, left in offsets]
    return [np.ascontiguousarray(view) for view in views]


def tta_predict(model, images, crop_size=None, padding=0, num_crops=5, flip=True, fill=0.0,
                padding_mode="constant", batch_size=None):
    """Class probabilities N x K: the mean over tta_views(...) of softmax(model(view)), computed without
    autograd, `batch_size` images at a time (all at once by default). Returns a Tensor when given one."""
    array = images.detach().numpy() if isinstance(images, Tensor) else np.asarray(images)
    if array.ndim != 4:
        raise ValueError(f"tta_predict expects a batch N x C x H x W, got shape {array.shape}")
    step = len(array) if batch_size is None else int(batch_size)
    if step < 1 and len(array):
        raise ValueError(f"batch_size must be positive, got {batch_size!r}")
    parts = []
    with no_grad():
        for start in range(0, len(array), max(step, 1)):
            views = tta_views(array[start:start + step], crop_size, padding, num_crops, flip, fill, padding_mode)
            total = None
            for view in views:
                logits = model(tensor(view))
                if logits.ndim != 2:
                    raise ValueError(f"tta_predict needs a model returning N x classes logits, got shape "
                                     f"{tuple(logits.shape)}")
                probs = softmax(logits, dim=1).detach().numpy()
                total = probs.astype(np.float64) if total is None else total + probs
            parts.append((total / len(views)).astype(probs.dtype))
    out = np.concatenate(parts) if parts else np.zeros((0, 0), np.float32)
    return Tensor(out) if isinstance(images, Tensor) else out


class TTA:
    """A model wrapped to predict with test-time augmentation: TTA(model, ...)(images) == tta_predict(model,
    images, ...), probabilities rather than logits."""

    def __init__(self, model, crop_size=None, padding=0, num_crops=5, flip=True, fill=0.0,
                 padding_mode="constant", batch_size=None):
        self.model = model
        self.options = dict(crop_size=crop_size, padding=padding, num_crops=num_crops, flip=flip, fill=fill,
                            padding_mode=padding_mode, batch_size=batch_size)

    def __call__(self, images):
        return tta_predict(self.model, images, **self.options)

    def __repr__(self):
        options = ", ".join(f"{k}={v!r}" for k, v in self.options.items())
        return f"TTA({type(self.model).__name__}, {options})"

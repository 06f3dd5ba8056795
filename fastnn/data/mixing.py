"""Batch-level augmentation that mixes samples: MixUp, CutMix, and Cutout (random square holes).

MixUp and CutMix take a batch (N, C, H, W) and its labels, either class indices (N,) with `num_classes` or
class probabilities (N, num_classes), pair each sample with another one of the batch (a random permutation)
and return `(mixed_images, soft_targets)`. The soft targets are class probabilities (N, num_classes) summing to
1, made for cross_entropy's probability targets (label smoothing can still be added there):

    images, targets = MixUp(alpha=0.2, num_classes=10)(images, labels)
    loss = F.cross_entropy(model(images), targets, label_smoothing=0.1)

Cross-entropy is linear in its target, so this equals lam * CE(out, y_a) + (1 - lam) * CE(out, y_b); `mix()`
returns that form, `(mixed_images, y_a, y_b, lam)`, and `soft_targets(y_a, y_b, lam, num_classes)` turns it
into the soft targets. Outputs are Tensors when the images are, ndarrays otherwise. Random draws come from
`generator` or, when none was passed, from fastnn.random.default_generator().
"""
import numbers

import numpy as np

from fastnn._validation import positive_int
from fastnn.data.transforms.functional import _as_batch, _launch, _unwrap
from fastnn.random import default_generator
from fastnn.tensor import Tensor


def _one_hot_or_probs(labels, num_classes, dtype):
    """Class-index labels (N,) as one-hot rows, or probability labels (N, K) as they are, in `dtype`."""
    labels = labels._data if isinstance(labels, Tensor) else np.asarray(labels)
    if labels.dtype.kind in "iu":
        if num_classes is None:
            raise ValueError("num_classes is required when labels are class indices")
        if labels.ndim != 1:
            raise ValueError(f"class-index labels must have shape (N,), got {labels.shape}")
        if labels.size and (labels.min() < 0 or labels.max() >= num_classes):
            bad = labels[(labels < 0) | (labels >= num_classes)][0]
            raise ValueError(f"label {int(bad)} is out of range for num_classes={num_classes}")
        one_hot = np.zeros((labels.shape[0], num_classes), dtype)
        one_hot[np.arange(labels.shape[0]), labels] = 1
        return one_hot
    if labels.dtype.kind == "f":
        if labels.ndim != 2 or (num_classes is not None and labels.shape[1] != num_classes):
            expected = f"(N, {num_classes})" if num_classes is not None else "(N, num_classes)"
            raise ValueError(f"probability labels must have shape {expected}, got {labels.shape}")
        return labels.astype(dtype)
    raise TypeError(f"labels must be class indices (integers) or class probabilities (floats), got {labels.dtype}")


def soft_targets(labels_a, labels_b, lam, num_classes=None, dtype=np.float32):
    """lam * onehot(labels_a) + (1 - lam) * onehot(labels_b), rows summing to 1 (labels as for MixUp)."""
    a = _one_hot_or_probs(labels_a, num_classes, np.dtype(dtype))
    b = _one_hot_or_probs(labels_b, num_classes, np.dtype(dtype))
    if a.shape != b.shape:
        raise ValueError(f"labels_a and labels_b give targets of different shapes {a.shape} and {b.shape}")
    lam = a.dtype.type(lam)
    return lam * a + (1 - lam) * b


class _PairMixing:
    """Shared by MixUp and CutMix: lam ~ Beta(alpha, alpha), a random partner per sample, soft targets."""
    batched = True
    _pastes = False  # CutMix only copies pixels, so it also takes uint8 images

    def __init__(self, alpha=1.0, num_classes=None, generator=None):
        if isinstance(alpha, bool) or not isinstance(alpha, numbers.Real) or not 0 < alpha < float("inf"):
            raise ValueError(f"{type(self).__name__} alpha must be a positive number, got {alpha!r}")
        self.alpha = float(alpha)
        self.num_classes = None if num_classes is None else positive_int("num_classes", num_classes)
        self.generator = generator

    def mix(self, images, labels):
        """(mixed_images, labels_a, labels_b, lam): sample i mixed with sample index[i] of the batch, weight lam
        on its own label labels_a = labels and 1 - lam on its partner's label labels_b = labels[index]."""
        array, wrap = _unwrap(images)
        if array.ndim != 4:
            raise ValueError(f"{type(self).__name__} expects a batch N x C x H x W, got shape {array.shape}")
        if array.dtype.kind != "f" and not (self._pastes and array.dtype == np.uint8):
            raise TypeError(f"{type(self).__name__} expects floating-point images (apply ToTensor first), got "
                            f"{array.dtype}")
        label_array = labels._data if isinstance(labels, Tensor) else np.asarray(labels)
        if label_array.ndim == 0 or label_array.shape[0] != array.shape[0]:
            raise ValueError(f"{type(self).__name__} got {array.shape[0]} images but labels of shape "
                             f"{label_array.shape}")
        rng = self.generator if self.generator is not None else default_generator()
        lam = float(rng.beta(self.alpha, self.alpha))
        index = rng.permutation(array.shape[0])
        mixed, lam = self._mix_images(array, array[index], lam, rng)
        partner_labels = label_array[index]
        if isinstance(labels, Tensor):
            partner_labels = Tensor(partner_labels, device=labels.device)
        return wrap(mixed), labels, partner_labels, lam

    def __call__(self, images, labels):
        """(mixed_images, soft_targets) with soft targets (N, num_classes) in the images' dtype (uint8: float32)."""
        mixed, labels_a, labels_b, lam = self.mix(images, labels)
        dtype = mixed.dtype if mixed.dtype.kind == "f" else np.float32
        targets = soft_targets(labels_a, labels_b, lam, self.num_classes, dtype)
        return mixed, Tensor(targets, device=mixed.device) if isinstance(mixed, Tensor) else targets

    def __repr__(self):
        return f"{type(self).__name__}(alpha={self.alpha}, num_classes={self.num_classes})"


class MixUp(_PairMixing):
    """MixUp (Zhang et al., 2018): x = lam * x_i + (1 - lam) * x_j with lam ~ Beta(alpha, alpha), one lam per
    batch, and the labels mixed with the same weights."""

    def _mix_images(self, array, partners, lam, rng):
        weight = array.dtype.type(lam)
        return weight * array + (1 - weight) * partners, lam


class CutMix(_PairMixing):
    """CutMix (Yun et al., 2019): a box of area (1 - lam) * H * W, centred at a uniformly random pixel and clipped
    at the borders, is pasted from the partner image (one box per batch, as torchvision's CutMix); the label
    weight is then the exact share of pixels kept, lam = 1 - box_area / (H * W). uint8 images work too (soft
    targets are then float32)."""
    _pastes = True

    def _mix_images(self, array, partners, lam, rng):
        height, width = array.shape[-2:]
        centre_y, centre_x = int(rng.integers(height)), int(rng.integers(width))
        half = 0.5 * np.sqrt(1.0 - lam)
        half_h, half_w = int(half * height), int(half * width)
        y1, y2 = max(centre_y - half_h, 0), min(centre_y + half_h, height)
        x1, x2 = max(centre_x - half_w, 0), min(centre_x + half_w, width)
        mixed = array.copy()
        mixed[..., y1:y2, x1:x2] = partners[..., y1:y2, x1:x2]
        return mixed, 1.0 - (y2 - y1) * (x2 - x1) / (height * width)


Mixup = MixUp  # timm's spelling


class Cutout:
    """Cutout (DeVries & Taylor, 2017): zero n_holes squares of side `length` in every channel of an image, at
    centres drawn uniformly over the image (each image of a batch its own); parts of a square that fall outside
    the image are clipped, so a hole near a border covers fewer pixels. Labels are unchanged.

    Works on H x W, C x H x W and N x C x H x W images (Tensor or ndarray).
    """
    batched = True

    def __init__(self, length, n_holes=1, generator=None):
        self.length = positive_int("Cutout length", length)
        self.n_holes = positive_int("Cutout n_holes", n_holes)
        self.generator = generator

    def __call__(self, image):
        array, wrap = _unwrap(image)
        batch, restore = _as_batch(array, "Cutout")
        height, width = batch.shape[-2:]
        rng = self.generator if self.generator is not None else default_generator()
        count = batch.shape[0]
        tops = rng.integers(height, size=(count, self.n_holes)) - self.length // 2
        lefts = rng.integers(width, size=(count, self.n_holes)) - self.length // 2
        top, bottom = np.clip(tops, 0, height), np.clip(tops + self.length, 0, height)
        left, right = np.clip(lefts, 0, width), np.clip(lefts + self.length, 0, width)
        boxes = np.stack([top, left, bottom - top, right - left], axis=-1).astype(np.int64)
        zeros = np.zeros((count, batch.shape[1]), batch.dtype)
        return wrap(restore(_launch("erase_constant", batch, np.ascontiguousarray(boxes), zeros)))

    def __repr__(self):
        return f"Cutout(length={self.length}, n_holes={self.n_holes})"

"""MixUp, CutMix and Cutout: mixed images, soft targets and their use as cross_entropy probability targets."""
import numpy as np
import pytest

import fastnn
from fastnn.data import CutMix, Cutout, MixUp, Mixup, soft_targets
from fastnn.nn import functional as F

NUM_CLASSES = 5


def constant_batch(n=8, channels=3, size=16):
    """Image i is filled with the value i + 1, so every mixed pixel tells which images it came from."""
    values = np.arange(1, n + 1, dtype=np.float32)
    return fastnn.tensor(np.broadcast_to(values[:, None, None, None], (n, channels, size, size)).copy())


def labels(n=8):
    return fastnn.tensor(np.arange(n) % NUM_CLASSES)


@pytest.mark.parametrize("mixer", [MixUp(alpha=0.4, num_classes=NUM_CLASSES), CutMix(alpha=1.0,
                                                                                      num_classes=NUM_CLASSES)])
def test_soft_targets_sum_to_one_and_follow_the_mixing(mixer):
    images, y = constant_batch(), labels()
    for seed in range(10):
        fastnn.manual_seed(seed)
        mixed, y_a, y_b, lam = mixer.mix(images, y)
        fastnn.manual_seed(seed)
        mixed_again, targets = mixer(images, y)
        np.testing.assert_array_equal(mixed.numpy(), mixed_again.numpy())
        assert targets.shape == (8, NUM_CLASSES) and targets.dtype == np.float32
        np.testing.assert_allclose(targets.numpy().sum(axis=1), 1, rtol=1e-6)
        np.testing.assert_array_equal(y_a.numpy(), y.numpy())
        rows = np.arange(8)
        expected = np.zeros((8, NUM_CLASSES), np.float32)
        np.add.at(expected, (rows, y_a.numpy()), lam)
        np.add.at(expected, (rows, y_b.numpy()), 1 - lam)
        np.testing.assert_allclose(targets.numpy(), expected, rtol=1e-6, atol=1e-7)


def test_mixup_images_are_the_lambda_weighted_pair():
    images, y = constant_batch(), labels()
    mixer = MixUp(alpha=1.0, num_classes=NUM_CLASSES)
    mixed, y_a, y_b, lam = mixer.mix(images, y)
    own = images.numpy()[:, 0, 0, 0]
    partner = (mixed.numpy()[:, 0, 0, 0] - lam * own) / (1 - lam)
    assert sorted(np.round(partner).astype(int)) == list(range(1, 9))  # partners are a permutation of the batch
    np.testing.assert_allclose(partner, np.round(partner), atol=1e-4)
    np.testing.assert_array_equal(y_b.numpy(), (np.round(partner).astype(int) - 1) % NUM_CLASSES)
    assert (mixed.numpy() == mixed.numpy()[:, :1, :1, :1]).all()  # whole image mixed with one weight


def test_cutmix_lambda_is_the_share_of_own_pixels():
    images, y = constant_batch(n=16, size=32), fastnn.tensor(np.arange(16) % NUM_CLASSES)
    mixer = CutMix(alpha=1.0, num_classes=NUM_CLASSES)
    for seed in range(20):
        fastnn.manual_seed(seed)
        mixed, _, _, lam = mixer.mix(images, y)
        from_partner = mixed.numpy() != images.numpy()
        moved = from_partner.any(axis=(1, 2, 3))
        if not moved.any():  # an empty box, or every sample paired with itself
            continue
        share = from_partner[moved].mean(axis=(1, 2, 3))
        np.testing.assert_allclose(share, 1 - lam, rtol=1e-6)  # every sample moved pastes the same box
        box = from_partner[moved][0, 0]
        rows, cols = np.flatnonzero(box.any(axis=1)), np.flatnonzero(box.any(axis=0))
        assert box[rows[0]:rows[-1] + 1, cols[0]:cols[-1] + 1].all()  # the pasted region is one rectangle


def test_mixed_soft_targets_give_the_mixed_cross_entropy():
    rng = np.random.default_rng(0)
    logits = fastnn.tensor(rng.standard_normal((8, NUM_CLASSES)).astype(np.float64))
    _, y_a, y_b, lam = MixUp(alpha=0.5, num_classes=NUM_CLASSES).mix(constant_batch(), labels())
    targets = fastnn.tensor(soft_targets(y_a, y_b, lam, NUM_CLASSES, np.float64))
    mixed_loss = F.cross_entropy(logits, targets).item()
    expected = lam * F.cross_entropy(logits, y_a).item() + (1 - lam) * F.cross_entropy(logits, y_b).item()
    assert mixed_loss == pytest.approx(expected, rel=1e-12)
    smoothed = F.cross_entropy(logits, targets, label_smoothing=0.1).item()
    expected = lam * F.cross_entropy(logits, y_a, label_smoothing=0.1).item() + \
        (1 - lam) * F.cross_entropy(logits, y_b, label_smoothing=0.1).item()
    assert smoothed == pytest.approx(expected, rel=1e-12)


def test_mixing_accepts_ndarrays_and_probability_labels():
    images = constant_batch().numpy()
    probabilities = np.full((8, NUM_CLASSES), 1 / NUM_CLASSES, np.float32)
    mixed, targets = CutMix()(images, probabilities)
    assert isinstance(mixed, np.ndarray) and isinstance(targets, np.ndarray)
    np.testing.assert_allclose(targets, probabilities, rtol=1e-6)
    assert Mixup is MixUp


@pytest.mark.parametrize("call, error, match", [
    (lambda: MixUp(alpha=0), ValueError, "alpha"),
    (lambda: CutMix(alpha=-1.0), ValueError, "alpha"),
    (lambda: MixUp(num_classes=0), ValueError, "num_classes"),
    (lambda: MixUp()(constant_batch(), labels()), ValueError, "num_classes is required"),
    (lambda: MixUp(num_classes=3)(constant_batch(), labels()), ValueError, "out of range"),
    (lambda: MixUp(num_classes=5)(constant_batch()[0], labels()), ValueError, "N x C x H x W"),
    (lambda: MixUp(num_classes=5)(constant_batch(), labels(4)), ValueError, "8 images"),
    (lambda: MixUp(num_classes=5)(np.ones((8, 1, 4, 4), np.uint8), labels()), TypeError, "floating-point"),
    (lambda: CutMix(num_classes=5)(np.ones((8, 1, 4, 4), np.int16), labels()), TypeError, "floating-point"),
    (lambda: Cutout(0), ValueError, "length"),
    (lambda: Cutout(4, n_holes=-1), ValueError, "n_holes"),
])
def test_argument_errors(call, error, match):
    with pytest.raises(error, match=match):
        call()


# ---- Cutout ------------------------------------------------------------------------------------------------
def covered(length, size):
    """Mean number of rows a hole of side `length` covers when its centre is uniform over `size` rows."""
    tops = np.arange(size) - length // 2
    return np.mean(np.clip(tops + length, 0, size) - np.clip(tops, 0, size))


def test_cutout_zeroes_one_square_per_hole_in_every_channel():
    length, size = 6, 20
    images = fastnn.ones(500, 3, size, size)
    out = Cutout(length)(images).numpy()
    assert (out[:, :1] == out).all()  # every channel has the same hole
    zeros = out[:, 0] == 0
    for hole in zeros:
        rows, cols = np.flatnonzero(hole.any(axis=1)), np.flatnonzero(hole.any(axis=0))
        assert hole.sum() == len(rows) * len(cols)  # one rectangle ...
        for span in (rows, cols):  # ... of side `length` unless clipped by a border
            assert len(span) == length or (len(span) < length and (span[0] == 0 or span[-1] == size - 1))
    expected = covered(length, size) ** 2
    assert abs(zeros.sum(axis=(1, 2)).mean() - expected) < 0.05 * expected
    assert (zeros.sum(axis=(1, 2)) == length ** 2).mean() > 0.5


def test_cutout_holes_inside_the_image_zero_length_squared_pixels():
    out = Cutout(1, n_holes=1)(np.ones((50, 2, 9, 9), np.float32))
    assert ((out == 0).sum(axis=(1, 2, 3)) == 2).all()
    out = Cutout(40)(np.ones((3, 9, 9), np.float32))  # a hole larger than twice the image covers all of it
    assert (out == 0).all()


def test_cutout_several_holes_and_single_images():
    images = fastnn.ones(200, 1, 32, 32)
    one = (Cutout(8, n_holes=1)(images).numpy() == 0).sum(axis=(1, 2, 3)).mean()
    three = (Cutout(8, n_holes=3)(images).numpy() == 0).sum(axis=(1, 2, 3)).mean()
    assert 2.3 * one < three <= 3 * one  # holes may overlap
    single = Cutout(4, generator=np.random.default_rng(0))(np.ones((16, 16), np.float32))
    assert single.shape == (16, 16) and 1 <= (single == 0).sum() <= 16
    fastnn.manual_seed(5)
    first = Cutout(5)(images).numpy()
    fastnn.manual_seed(5)
    np.testing.assert_array_equal(first, Cutout(5)(images).numpy())


def test_cutmix_pastes_uint8_images():
    images = (constant_batch().numpy() * 10).astype(np.uint8)
    fastnn.manual_seed(1)
    mixed, targets = CutMix(num_classes=NUM_CLASSES)(images, labels().numpy())
    fastnn.manual_seed(1)
    reference, reference_targets = CutMix(num_classes=NUM_CLASSES)(images.astype(np.float32), labels().numpy())
    assert mixed.dtype == np.uint8 and targets.dtype == np.float32
    np.testing.assert_array_equal(mixed, reference)
    np.testing.assert_array_equal(targets, reference_targets)

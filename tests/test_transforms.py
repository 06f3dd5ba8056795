"""fastnn.data.transforms classes: torchvision.transforms.v2 semantics, per-image draws, invariants, errors."""
import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import fastnn
from fastnn.data import transforms as T
from fastnn.data.transforms import functional as F


def batch(n=6, c=3, h=10, w=9, dtype=np.float32, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.integers(0, 256, (n, c, h, w)).astype(np.uint8)
    return x if dtype == np.uint8 else (x / 255).astype(dtype)


ALL = [T.RandomHorizontalFlip(), T.RandomVerticalFlip(), T.RandomCrop(8, padding=2),
       T.RandomCrop(12, pad_if_needed=True, padding_mode="reflect"), T.Resize(6), T.CenterCrop(5),
       T.RandomResizedCrop(7), T.ColorJitter(0.4, 0.4, 0.4, 0.1), T.RandomGrayscale(0.5),
       T.FancyPCA(np.diag([0.01, 0.02, 0.03])), T.RandomAffine(30, (0.1, 0.2), (0.8, 1.2), (-10, 10, -5, 5)),
       T.RandomAffine(15, interpolation="bilinear"), T.RandomRotation(20), T.RandAugment(), T.TrivialAugmentWide(),
       T.RandomErasing(p=0.7), T.RandomErasing(p=1, value="random"), T.Cutout(4)]


@pytest.mark.parametrize("transform", ALL, ids=lambda t: repr(t)[:40])
@pytest.mark.parametrize("dtype", [np.uint8, np.float32])
def test_every_transform_is_seeded_and_keeps_kind_and_dtype(transform, dtype):
    x = batch(dtype=dtype)
    fastnn.manual_seed(3)
    first = transform(x)
    fastnn.manual_seed(3)
    np.testing.assert_array_equal(transform(x), first)
    assert first.dtype == dtype and first.shape[:2] == (6, 3)
    out = transform(fastnn.tensor(x[0]))
    assert isinstance(out, fastnn.Tensor) and out.dtype == dtype and out.ndim == 3
    seeded = type(transform).__new__(type(transform))
    seeded.__dict__.update(transform.__dict__, generator=np.random.default_rng(9))
    again = type(transform).__new__(type(transform))
    again.__dict__.update(transform.__dict__, generator=np.random.default_rng(9))
    np.testing.assert_array_equal(seeded(x), again(x))  # an explicit generator works the same way


def test_random_transforms_draw_per_image():
    x = np.repeat(batch(n=1), 32, axis=0)
    for transform in [T.RandomCrop(8, padding=2), T.ColorJitter(0.5, hue=0.2), T.RandomAffine(30),
                      T.RandomResizedCrop(6), T.RandomErasing(p=1), T.RandAugment()]:
        out = transform(x)
        assert len({o.tobytes() for o in out}) > 8, transform


@settings(max_examples=20, deadline=None)
@given(seed=st.integers(0, 1000), h=st.integers(2, 9), w=st.integers(2, 9), pad=st.integers(0, 3),
       mode=st.sampled_from(["constant", "edge", "reflect", "symmetric"]), data=st.data())
def test_crops_have_the_size_and_come_from_the_padded_image(seed, h, w, pad, mode, data):
    pad = min(pad, h - 1, w - 1) if mode == "reflect" else pad
    size = (data.draw(st.integers(1, h + 2 * pad)), data.draw(st.integers(1, w + 2 * pad)))
    x = batch(n=4, c=2, h=h, w=w, seed=seed)
    out = T.RandomCrop(size, padding=pad, fill=-1, padding_mode=mode, generator=np.random.default_rng(seed))(x)
    assert out.shape == (4, 2) + size
    padded = np.pad(x, [(0, 0), (0, 0), (pad, pad), (pad, pad)], mode=mode,
                    **({"constant_values": -1} if mode == "constant" else {}))
    windows = np.lib.stride_tricks.sliding_window_view(padded, size, axis=(-2, -1))
    for i in range(4):
        assert (windows[i] == out[i][:, None, None]).all(axis=(0, 3, 4)).any()


def test_random_crop_pad_if_needed_pads_both_sides():
    x = np.ones((1, 3, 4), np.float32)
    out = T.RandomCrop((7, 4), pad_if_needed=True, fill=0)(x)  # height 3 -> padded by 4 on top and bottom
    assert out.shape == (1, 7, 4) and out.sum() == 12
    with pytest.raises(ValueError, match="larger than the padded image"):
        T.RandomCrop((7, 4))(x)


@settings(max_examples=20, deadline=None)
@given(seed=st.integers(0, 1000), h=st.integers(4, 30), w=st.integers(4, 30), s0=st.floats(0.01, 0.3),
       s1=st.floats(0.3, 0.6), r0=st.floats(0.2, 1.0), r1=st.floats(1.0, 4.0))
def test_random_erasing_area_lies_in_its_scale_range(seed, h, w, s0, s1, r0, r1):
    x = np.ones((8, 2, h, w), np.float32)
    out = T.RandomErasing(p=1, scale=(s0, s1), ratio=(r0, r1), generator=np.random.default_rng(seed))(x)
    for image in out:
        erased = image[0] == 0
        if not erased.any():
            continue  # no box fitted in 10 tries: torchvision keeps the image
        rows, cols = np.flatnonzero(erased.any(axis=1)), np.flatnonzero(erased.any(axis=0))
        bh, bw = len(rows), len(cols)
        assert erased.sum() == bh * bw and (image[1] == 0).sum() == bh * bw and bh < h and bw < w
        # bh = round(sqrt(A r)), bw = round(sqrt(A / r)): A = bh * bw up to the rounding, r = bh / bw likewise
        area_lo, area_hi = (bh - 0.5) * (bw - 0.5), (bh + 0.5) * (bw + 0.5)
        assert area_lo <= s1 * h * w + 1e-9 and area_hi >= s0 * h * w - 1e-9
        assert (bh - 0.5) / (bw + 0.5) <= r1 + 1e-9 and (bh + 0.5) / (bw - 0.5) >= r0 - 1e-9


def test_random_erasing_values():
    x = np.ones((50, 3, 8, 8), np.float32)
    out = T.RandomErasing(p=1, value=(0.25, 0.5, 0.75))(x)
    changed = out != 1
    assert changed.any() and set(np.unique(out[:, 1][changed[:, 1]]).tolist()) == {0.5}
    assert (T.RandomErasing(p=0)(x) == 1).all()
    erased = (T.RandomErasing(p=0.5)(x) == 0).any(axis=(1, 2, 3))
    assert 10 < erased.sum() < 40


@settings(max_examples=20, deadline=None)
@given(seed=st.integers(0, 1000), n=st.integers(1, 4), c=st.integers(1, 3), h=st.integers(1, 9), w=st.integers(1, 9),
       interpolation=st.sampled_from(["nearest", "bilinear"]), dtype=st.sampled_from([np.uint8, np.float32]))
def test_identity_affine_and_double_flips_return_the_input(seed, n, c, h, w, interpolation, dtype):
    x = batch(n=n, c=c, h=h, w=w, dtype=dtype, seed=seed)
    for transform in [T.RandomAffine(0, interpolation=interpolation), T.RandomAffine(
            (0, 0), translate=(0, 0), scale=(1, 1), shear=0, interpolation=interpolation),
            T.RandomRotation(0, interpolation=interpolation)]:
        np.testing.assert_array_equal(transform(x), x)
    for flip in (T.RandomHorizontalFlip(p=1), T.RandomVerticalFlip(p=1)):
        np.testing.assert_array_equal(flip(flip(x)), x)
        np.testing.assert_array_equal(flip(flip(x[0])), x[0])


def test_random_affine_draws_torchvision_parameters():
    x = batch(n=4)
    transform = T.RandomAffine(20, translate=(0.2, 0.1), scale=(0.9, 1.1), shear=5, fill=0.5,
                               generator=np.random.default_rng(1))
    out = transform(x)
    rng = np.random.default_rng(1)
    angles = rng.uniform(-20, 20, 4)
    shifts = np.rint(rng.uniform(-np.array([0.2 * 9, 0.1 * 10]), [0.2 * 9, 0.1 * 10], size=(4, 2)))
    scales = rng.uniform(0.9, 1.1, 4)
    shears = rng.uniform(-5, 5, 4)
    rng.uniform(0, 0, 4)
    for i in range(4):
        expected = F.affine(x[i], angles[i], list(shifts[i]), scales[i], [shears[i], 0.0], fill=0.5)
        np.testing.assert_array_equal(out[i], expected)


def test_random_rotation_is_counter_clockwise_rotate():
    x = batch(n=3, h=8, w=8)
    out = T.RandomRotation((90, 90))(x)
    np.testing.assert_array_equal(out, np.rot90(x, 1, axes=(-2, -1)))
    expanded = T.RandomRotation((90, 90), expand=True)(batch(n=2, h=4, w=6))
    assert expanded.shape == (2, 3, 6, 4)


def test_color_jitter_factors_are_the_functional_ops():
    x = batch(dtype=np.uint8)
    np.testing.assert_array_equal(T.ColorJitter(brightness=(1.5, 1.5))(x), F.adjust_brightness(x, 1.5))
    np.testing.assert_array_equal(T.ColorJitter(contrast=(0.5, 0.5))(x), F.adjust_contrast(x, 0.5))
    np.testing.assert_array_equal(T.ColorJitter(saturation=(0.3, 0.3))(x), F.adjust_saturation(x, 0.3))
    np.testing.assert_array_equal(T.ColorJitter(hue=(0.2, 0.2))(x), F.adjust_hue(x, 0.2))
    both = T.ColorJitter(brightness=(1.4, 1.4), contrast=(0.6, 0.6))(x)
    options = [F.adjust_contrast(F.adjust_brightness(x, 1.4), 0.6), F.adjust_brightness(F.adjust_contrast(x, 0.6),
                                                                                         1.4)]
    for i in range(len(x)):  # every image gets one of the two orders
        assert any((both[i] == o[i]).all() for o in options)
    gray = batch(c=1)  # brightness and contrast only
    assert T.ColorJitter(0.5, 0.5, 0.5, 0.5)(gray).shape == gray.shape
    assert T.ColorJitter().brightness is None


def test_random_grayscale_and_resized_crop():
    x = batch()
    np.testing.assert_array_equal(T.RandomGrayscale(p=1)(x), F.rgb_to_grayscale(x, 3))
    np.testing.assert_array_equal(T.RandomGrayscale(p=0)(x), x)
    square = batch(h=9, w=9)
    full = T.RandomResizedCrop(5, scale=(1, 1), ratio=(1, 1))(square)
    np.testing.assert_allclose(full, F.resize(square, (5, 5)), rtol=1e-6, atol=1e-7)
    out = T.RandomResizedCrop((4, 6), scale=(0.1, 0.2))(x)
    assert out.shape == (6, 3, 4, 6)


def test_fancy_pca_adds_eigenvector_noise():
    eigenvectors = np.linalg.qr(np.random.default_rng(0).standard_normal((3, 3)))[0]
    eigenvalues = np.array([0.2, 0.05, 0.01])
    covariance = eigenvectors @ np.diag(eigenvalues) @ eigenvectors.T
    x = np.full((4000, 3, 2, 2), 0.5, np.float64)
    out = T.FancyPCA(covariance, alphastd=0.1)(x)
    shift = out[:, :, 0, 0] - 0.5
    np.testing.assert_allclose(out - shift[:, :, None, None], x, atol=1e-12)  # one colour shift per image
    along = shift @ eigenvectors  # component i = alpha_i * lambda_i, alpha_i ~ N(0, 0.1)
    np.testing.assert_allclose(along.std(axis=0), 0.1 * eigenvalues, rtol=0.06)
    assert T.FancyPCA(covariance)(batch(dtype=np.uint8)).dtype == np.uint8


def candidates(image, magnitude_index, bins, space):
    """Every result of one RandAugment op on `image` (both signs), through the functional API."""
    height, width = image.shape[-2:]
    out = [image]
    table = {name: np.asarray(build(bins, height, width), np.float64) for name, (build, _) in space.items()
             if build is not None}
    for sign in (1, -1):
        m = {name: float(values[magnitude_index]) * sign for name, values in table.items()}
        shear = math.degrees(math.atan(m["ShearX"]))
        out += [F.affine(image, 0.0, [0, 0], 1.0, [shear, 0.0], center=[0, 0]),
                F.affine(image, 0.0, [0, 0], 1.0, [0.0, shear], center=[0, 0]),
                F.affine(image, 0.0, [int(m["TranslateX"]), 0], 1.0, [0.0, 0.0]),
                F.affine(image, 0.0, [0, int(m["TranslateY"])], 1.0, [0.0, 0.0]),
                F.rotate(image, m["Rotate"]),
                F.adjust_brightness(image, 1 + m["Brightness"]), F.adjust_saturation(image, 1 + m["Color"]),
                F.adjust_contrast(image, 1 + m["Contrast"]), F.adjust_sharpness(image, 1 + m["Sharpness"])]
    out += [F.posterize(image, int(table["Posterize"][magnitude_index])),
            F.solarize(image, 255 * table["Solarize"][magnitude_index]), F.autocontrast(image), F.equalize(image)]
    return out


def test_rand_augment_applies_one_of_torchvision_ops():
    x = batch(n=24, dtype=np.uint8, h=12, w=12)
    out = T.RandAugment(num_ops=1, magnitude=9)(x)
    matched = 0
    for image, result in zip(x, out):
        options = candidates(image, 9, 31, T.RandAugment._SPACE)
        matched += any(np.array_equal(result, o) for o in options)
    assert matched == len(x)
    assert T.RandAugment(num_ops=0)(x) is not x and np.array_equal(T.RandAugment(num_ops=0)(x), x)


def test_trivial_augment_wide_applies_one_of_its_ops():
    x = batch(n=24, dtype=np.uint8, h=12, w=12)
    transform = T.TrivialAugmentWide(generator=np.random.default_rng(5))
    out = transform(x)
    rng = np.random.default_rng(5)
    rng.integers(14, size=24)
    bins = rng.integers(31, size=24)
    for image, result, b in zip(x, out, bins):
        assert any(np.array_equal(result, o) for o in candidates(image, b, 31, T.TrivialAugmentWide._SPACE))


@settings(max_examples=20, deadline=None)
@given(seed=st.integers(0, 1000), n=st.integers(2, 8), classes=st.integers(2, 6), size=st.integers(2, 12),
       alpha=st.floats(0.1, 2.0))
def test_mixup_and_cutmix_soft_labels(seed, n, classes, size, alpha):
    images = np.random.default_rng(seed).random((n, 2, size, size)).astype(np.float32)
    labels = np.random.default_rng(seed + 1).integers(0, classes, n)
    one_hot = np.eye(classes, dtype=np.float32)[labels]
    mixed, targets = T.MixUp(alpha=alpha, num_classes=classes, generator=np.random.default_rng(seed))(images, labels)
    _, y_a, y_b, lam = T.MixUp(alpha=alpha, num_classes=classes,
                               generator=np.random.default_rng(seed)).mix(images, labels)
    np.testing.assert_allclose(targets.sum(axis=1), 1, rtol=1e-6)
    np.testing.assert_allclose(targets, lam * one_hot + (1 - lam) * np.eye(classes, dtype=np.float32)[y_b],
                               rtol=1e-5, atol=1e-6)
    ones = np.ones((n, 1, size, size), np.float32)
    partners = np.zeros_like(ones)
    cut = T.CutMix(alpha=alpha, num_classes=classes, generator=np.random.default_rng(seed))
    both = np.concatenate([ones, partners])  # every other image is 0: the pasted area is visible
    mixed, _, partner_labels, lam = cut.mix(both, np.concatenate([labels, labels]))
    pasted = (mixed != both).mean(axis=(1, 2, 3))
    moved = (both[:, 0, 0, 0] != both[cut_index(seed, alpha, 2 * n), 0, 0, 0])
    np.testing.assert_allclose(pasted[moved], 1 - lam, rtol=1e-6)  # weight = pasted area after clipping


def cut_index(seed, alpha, n):
    rng = np.random.default_rng(seed)
    rng.beta(alpha, alpha)
    return rng.permutation(n)


@pytest.mark.parametrize("call, match", [
    (lambda: T.RandomHorizontalFlip(p=-0.1), "p must be in"),
    (lambda: T.RandomGrayscale(p=2), "p must be in"),
    (lambda: T.RandomErasing(p=1.5), "p must be in"),
    (lambda: T.RandomErasing(scale=(0.3, 0.1)), "reversed"),
    (lambda: T.RandomErasing(ratio=(3.3, 0.3)), "reversed"),
    (lambda: T.RandomErasing(scale=(0.1, 1.5)), r"lie in \[0.0, 1.0\]"),
    (lambda: T.RandomErasing(value="noise"), "'random'"),
    (lambda: T.RandomResizedCrop(8, scale=(1.0, 0.5)), "reversed"),
    (lambda: T.RandomResizedCrop(8, ratio=(2.0, 1.0)), "reversed"),
    (lambda: T.RandomResizedCrop(-8), "size"),
    (lambda: T.RandomCrop(0), "size"),
    (lambda: T.RandomCrop(4, padding=-1), "padding"),
    (lambda: T.RandomCrop(4, padding_mode="wrap"), "padding_mode"),
    (lambda: T.RandomCrop(12)(batch()), "larger than the padded image"),
    (lambda: T.CenterCrop((2, -2)), "size"),
    (lambda: T.Resize(-1), "size"),
    (lambda: T.ColorJitter(brightness=-0.5), "non-negative"),
    (lambda: T.ColorJitter(hue=0.7), "hue"),
    (lambda: T.ColorJitter(contrast=(1.5, 0.5)), "reversed"),
    (lambda: T.RandomAffine(-10), "non-negative"),
    (lambda: T.RandomAffine((20, 10)), "reversed"),
    (lambda: T.RandomAffine(0, translate=(0.5, 1.5)), "translate"),
    (lambda: T.RandomAffine(0, scale=(0, 1)), "scale"),
    (lambda: T.RandomRotation(0, interpolation="cubic"), "interpolation"),
    (lambda: T.RandAugment(magnitude=31), "magnitude"),
    (lambda: T.RandAugment(num_ops=-1), "num_ops"),
    (lambda: T.FancyPCA(np.ones((3, 2))), "square"),
    (lambda: T.FancyPCA(np.eye(3))(batch(c=1)), "channels"),
    (lambda: T.ColorJitter(0.5)(np.zeros((4, 4), np.float32)), "C, H, W"),
    (lambda: T.RandomCrop(2)(np.zeros(5, np.float32)), "expects an image"),
    (lambda: T.Normalize(0, 1)(np.zeros((2, 2), np.float32)), "C x H x W"),
])
def test_bad_arguments_raise_value_errors(call, match):
    with pytest.raises(ValueError, match=match):
        call()


@pytest.mark.parametrize("flip", [T.RandomHorizontalFlip, T.RandomVerticalFlip])
@pytest.mark.parametrize("shape", [(16, 2, 7, 6), (2, 7, 6)])
@pytest.mark.parametrize("mode", ["constant", "reflect"])
def test_compose_fuses_crop_and_flip_with_the_same_draws(flip, shape, mode):
    x = np.random.default_rng(0).random(shape).astype(np.float32)
    crop, flipper = T.RandomCrop((5, 6), padding=2, fill=0.5, padding_mode=mode), flip(p=0.5)
    for seed in range(4):
        fastnn.manual_seed(seed)
        fused = T.Compose([crop, flipper])(x)
        fastnn.manual_seed(seed)
        np.testing.assert_array_equal(fused, flipper(crop(x)))


def test_transforms_in_worker_threads_give_the_sequential_results():
    from concurrent.futures import ThreadPoolExecutor

    def pipeline(seed):
        rng = np.random.default_rng(seed)
        return T.Compose([T.RandomCrop(8, padding=2, generator=rng), T.RandomHorizontalFlip(generator=rng),
                          T.ColorJitter(0.4, 0.4, 0.4, 0.1, generator=rng), T.RandomAffine(20, generator=rng),
                          T.RandomResizedCrop(6, generator=rng), T.RandomErasing(generator=rng)])

    batches = [batch(n=16, seed=s) for s in range(6)]
    expected = [pipeline(s)(b) for s, b in enumerate(batches)]
    with ThreadPoolExecutor(3) as pool:
        results = list(pool.map(lambda args: pipeline(args[0])(args[1]), enumerate(batches)))
    for got, want in zip(results, expected):
        np.testing.assert_array_equal(got, want)


def test_to_image_and_pil_to_tensor_keep_dtype_and_values():
    # torchvision.transforms.v2.ToImage: H x W x C ndarray -> C x H x W, same dtype and values (no scaling);
    # H x W -> 1 x H x W; a Tensor passes through
    hwc = np.arange(5 * 6 * 3, dtype=np.uint8).reshape(5, 6, 3)
    out = T.ToImage()(hwc)
    assert isinstance(out, fastnn.Tensor) and out.shape == (3, 5, 6) and out.dtype == np.uint8
    np.testing.assert_array_equal(out._data, hwc.transpose(2, 0, 1))
    assert out._data.flags.c_contiguous
    assert T.ToImage()(hwc[..., 0].astype(np.float64)).shape == (1, 5, 6)
    nhwc = np.zeros((2, 7, 8, 3), np.float32)
    assert T.ToImage()(nhwc).shape == (2, 3, 7, 8)  # fastnn's batches, as ToTensor takes them
    already = fastnn.tensor(np.ones((3, 4, 4), np.float32))
    assert T.ToImage()(already) is already
    Image = pytest.importorskip("PIL.Image")
    pil = Image.fromarray(hwc)
    np.testing.assert_array_equal(T.PILToTensor()(pil)._data, hwc.transpose(2, 0, 1))
    np.testing.assert_array_equal(T.ToTensor()(pil)._data, hwc.transpose(2, 0, 1) / np.float32(255))
    with pytest.raises(TypeError, match="pic should be PIL Image"):
        T.PILToTensor()(already)


CHANNELS_LAST = [(32, 32, 3), (28, 28, 1), (5, 9, 4), (2, 32, 32, 3)]


@pytest.mark.parametrize("shape", CHANNELS_LAST)
@pytest.mark.parametrize("transform", ALL + [T.Normalize((0.5,) * 3, (0.2,) * 3), T.ColorJitter(0.3),
                                             T.FiveCrop(2), T.Grayscale()], ids=lambda t: repr(t)[:40])
def test_channels_last_ndarrays_are_refused_not_misread(shape, transform):
    # A raw H x W x C image before ToTensor read as C x H x W would be transformed along the wrong axes without
    # an error (a 32 x 32 x 3 image: 32 "channels" of 32 x 3 pixels).
    with pytest.raises(ValueError, match=r"looks like an H x W x C image.*ToTensor\(\)"):
        transform(np.zeros(shape, np.uint8))


@pytest.mark.parametrize("fn", [F.horizontal_flip, lambda x: F.crop(x, 0, 0, 2, 2), lambda x: F.pad(x, 1),
                                lambda x: F.resize(x, 4), lambda x: F.adjust_brightness(x, 1.5),
                                lambda x: F.rotate(x, 10), lambda x: F.erase(x, 0, 0, 1, 1, 0)])
def test_functional_ops_refuse_channels_last_ndarrays_but_take_chw(fn):
    with pytest.raises(ValueError, match="looks like an H x W x C image"):
        fn(np.zeros((32, 32, 3), np.float32))
    fn(np.zeros((3, 32, 32), np.float32))  # the same pixels channels-first
    fn(np.zeros((1, 6, 3), np.float32))  # C <= 4: a genuine one-channel image 6 x 3 is never refused
    fn(fastnn.tensor(np.zeros((3, 32, 32), np.float32)))


def test_converters_then_transforms_work_on_channels_last_images():
    hwc = np.random.default_rng(0).integers(0, 256, (2, 32, 32, 3)).astype(np.uint8)
    out = T.Compose([T.ToTensor(), T.RandomCrop(28), T.ColorJitter(0.2)])(hwc)
    assert out.shape == (2, 3, 28, 28)
    assert T.Compose([T.ToImage(), T.RandomHorizontalFlip(p=1)])(hwc).dtype == np.uint8


# ToDtype: torchvision.transforms.v2.ToDtype / functional.to_dtype numbers (torchvision 0.2x: integer -> float
# is `image.to(dtype).mul_(1 / max)`, float -> integer `image.mul(max + 1 - 1e-3).to(dtype)`, integer -> integer a
# bit shift by the difference of value bits: uint8 8, int16 15, int32 31).

def test_to_dtype_numbers_match_torchvision():
    u8 = np.array([[[0, 1, 128, 255]]], np.uint8)
    f = T.ToDtype(fastnn.float32, scale=True)(fastnn.tensor(u8))
    assert isinstance(f, fastnn.Tensor) and f.dtype == np.float32
    np.testing.assert_array_equal(f.numpy(), u8.astype(np.float32) * np.float32(1 / 255))
    assert f.numpy()[0, 0, 3] == 1.0
    np.testing.assert_array_equal(F.to_dtype(u8, np.int16, scale=True), [[[0, 128, 16384, 32640]]])
    np.testing.assert_array_equal(F.to_dtype(np.array([[[0, 16384, 32767]]], np.int16), np.uint8, scale=True),
                                  [[[0, 128, 255]]])
    np.testing.assert_array_equal(F.to_dtype(np.array([[[0, 0.5, 0.999, 1.0]]], np.float32), np.uint8, scale=True),
                                  [[[0, 127, 255, 255]]])
    np.testing.assert_array_equal(F.to_dtype(u8, np.float32), u8.astype(np.float32))  # scale=False: values kept
    assert F.to_dtype(u8, np.uint8, scale=True) is u8  # already that dtype: returned as it is
    with pytest.raises(RuntimeError, match="float32 to int32 cannot be performed safely"):
        F.to_dtype(np.zeros((1, 2, 2), np.float32), np.int32, scale=True)
    with pytest.raises(TypeError, match="bool"):
        F.to_dtype(np.zeros((1, 2, 2), bool), np.float32)


@pytest.mark.parametrize("source", [np.uint8, np.int16, np.int64, np.float32, np.float64])
@pytest.mark.parametrize("scale", [True, False])
def test_todtype_then_normalize_in_compose_gives_the_bits_of_two_steps(source, scale):
    x = batch(dtype=np.uint8).astype(source)
    mean, std = (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)
    fused = T.Compose([T.ToDtype(np.float32, scale=scale), T.Normalize(mean, std)])(fastnn.tensor(x))
    two = T.Normalize(mean, std)(T.ToDtype(np.float32, scale=scale)(fastnn.tensor(x)))
    assert fused.dtype == two.dtype == np.float32
    np.testing.assert_array_equal(fused.numpy(), two.numpy())
    want = (F.to_dtype(x, np.float32, scale) - np.float32(mean).reshape(-1, 1, 1)) / np.float32(std).reshape(-1, 1, 1)
    np.testing.assert_array_equal(two.numpy(), want)


@pytest.mark.parametrize("shape", [(28, 28), (28, 28, 1), (5, 28, 28, 1), (32, 32, 3), (4, 32, 32, 3)])
def test_totensor_then_normalize_in_compose_gives_the_bits_of_two_steps(shape):
    x = np.random.default_rng(0).integers(0, 256, shape).astype(np.uint8)
    channels = shape[-1] if len(shape) > 2 else 1
    mean, std = (0.485, 0.456, 0.406)[:channels], (0.229, 0.224, 0.225)[:channels]
    fused = T.Compose([T.ToTensor(), T.Normalize(mean, std)])(x)
    two = T.Normalize(mean, std)(T.ToTensor()(x))
    assert isinstance(fused, fastnn.Tensor) and fused.dtype == two.dtype == np.float32 and fused.shape == two.shape
    np.testing.assert_array_equal(fused.numpy(), two.numpy())
    # torchvision's ToTensor divides by 255 (x * (1/255) differs in the last bit for 126 of the 256 values)
    chw = np.moveaxis(x.reshape(x.shape[:2] + (-1,)) if len(shape) == 2 else x, -1, -3).astype(np.float32)
    want = (chw / np.float32(255) - np.float32(mean).reshape(-1, 1, 1)) / np.float32(std).reshape(-1, 1, 1)
    np.testing.assert_array_equal(two.numpy(), want.reshape(two.shape))
    float_input = x.astype(np.float32)  # ToTensor keeps float values unscaled: the two-step path, same result
    np.testing.assert_array_equal(T.Compose([T.ToTensor(), T.Normalize(mean, std)])(float_input).numpy(),
                                  T.Normalize(mean, std)(T.ToTensor()(float_input)).numpy())

"""fastnn.data.transforms.functional against torchvision.transforms.v2.functional's numbers.

torchvision is not a test dependency: the facts checked are written here, each with the torchvision rule it
comes from (torchvision/transforms/v2/functional/_color.py, _geometry.py).
"""
import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import fastnn
from fastnn.data.transforms import functional as F


def rgb(*pixel, dtype=np.uint8):
    return np.array(pixel, dtype=dtype).reshape(3, 1, 1)


# ---- colour -------------------------------------------------------------------------------------------------

def test_rgb_to_grayscale_weights_and_uint8_truncation():
    # l = 0.2989 r + 0.587 g + 0.114 b in float32, then .to(uint8) truncates: white -> 0.9999 * 255 = 254.97 -> 254
    assert F.rgb_to_grayscale(rgb(255, 255, 255)).item() == 254
    assert F.rgb_to_grayscale(rgb(255, 0, 0)).item() == 76  # 76.22
    assert F.rgb_to_grayscale(rgb(0, 255, 0)).item() == 149  # 149.685
    assert F.rgb_to_grayscale(rgb(0, 0, 255)).item() == 29  # 29.07
    x = np.random.default_rng(0).random((2, 3, 4, 5)).astype(np.float32)
    expected = (x[:, 0] * np.float32(0.2989) + x[:, 1] * np.float32(0.587) + x[:, 2] * np.float32(0.114))[:, None]
    np.testing.assert_allclose(F.rgb_to_grayscale(x), expected, rtol=1e-6)
    three = F.rgb_to_grayscale(fastnn.tensor(x), num_output_channels=3)
    assert isinstance(three, fastnn.Tensor) and three.shape == (2, 3, 4, 5)
    np.testing.assert_allclose(three.numpy(), np.repeat(expected, 3, axis=1), rtol=1e-6)
    single = np.full((1, 2, 2), 7, np.uint8)
    np.testing.assert_array_equal(F.rgb_to_grayscale(single), single)


def test_adjust_brightness_clamps_and_truncates():
    image = np.array([3, 100, 200], np.uint8).reshape(1, 1, 3)
    np.testing.assert_array_equal(F.adjust_brightness(image, 1.5).ravel(), [4, 150, 255])  # 4.5 -> 4, 300 -> 255
    np.testing.assert_array_equal(F.adjust_brightness(image, 0.5).ravel(), [1, 50, 100])
    floats = np.array([0.2, 0.8], np.float32).reshape(1, 1, 2)
    np.testing.assert_allclose(F.adjust_brightness(floats, 1.5).ravel(), [0.3, 1.0], rtol=1e-6)  # clamped at 1


def test_adjust_saturation_and_contrast_blend_with_floored_gray():
    red = rgb(255, 0, 0)
    np.testing.assert_array_equal(F.adjust_saturation(red, 0.0).ravel(), [76, 76, 76])  # floor(76.2195)
    # factor 0.5: 0.5 * 255 + 0.5 * 76 = 165.5 -> 165; 0.5 * 0 + 0.5 * 76 = 38
    np.testing.assert_array_equal(F.adjust_saturation(red, 0.5).ravel(), [165, 38, 38])
    image = np.zeros((3, 1, 2), np.uint8)
    image[:, 0, 1] = 255  # a black and a white pixel: gray 0 and floor(254.97) = 254, mean 127
    np.testing.assert_array_equal(F.adjust_contrast(image, 0.0)[:, 0], np.full((3, 2), 127))
    np.testing.assert_array_equal(F.adjust_contrast(image, 2.0)[0, 0], [0, 255])  # -127 -> 0, 383 -> 255
    gray = np.array([0.2, 0.6], np.float32).reshape(1, 1, 2)
    np.testing.assert_allclose(F.adjust_contrast(gray, 0.5).ravel(), [0.3, 0.5], rtol=1e-6)
    np.testing.assert_array_equal(F.adjust_saturation(gray, 0.0), gray)  # 1 channel: unchanged


def test_adjust_hue_rotates_hsv_hue():
    np.testing.assert_array_equal(F.adjust_hue(rgb(255, 0, 0), 1 / 3).ravel(), [0, 255, 0])
    np.testing.assert_array_equal(F.adjust_hue(rgb(255, 0, 0), -1 / 3).ravel(), [0, 0, 255])
    np.testing.assert_allclose(F.adjust_hue(rgb(1.0, 0.5, 0.0, dtype=np.float32), 0.5).ravel(), [0, 0.5, 1],
                               atol=1e-6)
    x = np.random.default_rng(1).integers(0, 256, (2, 3, 6, 6)).astype(np.uint8)
    np.testing.assert_array_equal(F.adjust_hue(x, 0.0), x)  # trunc(x / 255 * 255.999) == x
    y = np.random.default_rng(1).random((2, 3, 6, 6))
    back = F.adjust_hue(F.adjust_hue(y, 0.2), -0.2)
    np.testing.assert_allclose(back, y, atol=1e-12)
    np.testing.assert_allclose(F.rgb_to_grayscale(F.adjust_hue(y, 0.0)), F.rgb_to_grayscale(y), atol=1e-12)


def test_sharpness_posterize_solarize_autocontrast_equalize_numbers():
    image = np.zeros((1, 3, 3), np.uint8)
    image[0, 1, 1] = 130
    # blur of the centre = 5/13 * 130 = 50; factor 2: 130 + (1 - 2) * (50 - 130) = 210; borders untouched
    np.testing.assert_array_equal(F.adjust_sharpness(image, 2.0)[0], [[0, 0, 0], [0, 210, 0], [0, 0, 0]])
    np.testing.assert_array_equal(F.posterize(np.array([255, 77], np.uint8), 4), [240, 64])
    np.testing.assert_array_equal(F.solarize(np.array([200, 100], np.uint8), 128), [55, 100])
    ramp = np.array([0.2, 0.4, 0.6], np.float32).reshape(1, 1, 3)
    np.testing.assert_allclose(F.autocontrast(ramp).ravel(), [0, 0.5, 1], rtol=1e-6)  # (x - min) / (max - min)
    # uint8: (x - 50) / (100 * float32(1 / 255)), truncated
    np.testing.assert_array_equal(F.autocontrast((ramp * 250).astype(np.uint8)).ravel(), [0, 127, 254])
    # PIL's LUT, lut[k] = (cumhist[k - 1] + step // 2) // step with step = (pixels - count of the top level) // 255:
    # step 0 leaves the image unchanged; 100/200/212 pixels at 10/20/30: step 1, 10 -> 0, 20 -> 100, 30 -> 255
    tiny = np.array([1, 1, 1, 2, 2, 2, 3, 3, 3], np.uint8).reshape(1, 3, 3)
    np.testing.assert_array_equal(F.equalize(tiny), tiny)
    three = np.repeat(np.array([10, 20, 30], np.uint8), [100, 200, 212]).reshape(1, 16, 32)
    np.testing.assert_array_equal(F.equalize(three), np.repeat(np.array([0, 100, 255], np.uint8),
                                                               [100, 200, 212]).reshape(1, 16, 32))


def test_color_argument_errors():
    x = np.zeros((3, 2, 2), np.float32)
    for call, match in [(lambda: F.adjust_brightness(x, -1), "brightness_factor"),
                        (lambda: F.adjust_hue(x, 0.6), r"hue_factor must be in \[-0.5, 0.5\]"),
                        (lambda: F.adjust_saturation(np.zeros((2, 2, 2)), 1.0), "1 or 3 channels"),
                        (lambda: F.adjust_contrast(np.zeros((2, 2)), 1.0), r"\(\.\.\., C, H, W\)"),
                        (lambda: F.rgb_to_grayscale(x, 2), "num_output_channels")]:
        with pytest.raises(ValueError, match=match):
            call()
    with pytest.raises(TypeError, match="uint8 and floating-point"):
        F.adjust_brightness(np.zeros((3, 2, 2), np.int32), 1.0)


# ---- geometry -----------------------------------------------------------------------------------------------

def square(size=5, channels=2, dtype=np.float32):
    return np.arange(channels * size * size, dtype=dtype).reshape(channels, size, size)


@pytest.mark.parametrize("size", [4, 5])
def test_affine_rotation_by_90_degrees_is_rot90(size):
    x = square(size)
    # affine's angle turns clockwise on screen, rotate's counter-clockwise (torchvision passes -angle)
    np.testing.assert_array_equal(F.affine(x, -90, [0, 0], 1.0, [0, 0]), np.rot90(x, 1, axes=(-2, -1)))
    np.testing.assert_array_equal(F.affine(x, 90, [0, 0], 1.0, 0.0), np.rot90(x, 3, axes=(-2, -1)))
    np.testing.assert_array_equal(F.rotate(x, 90), np.rot90(x, 1, axes=(-2, -1)))
    center = [(size - 1) / 2 + 0.5 * 0, (size - 1) / 2]  # an explicit centre takes the grid path
    np.testing.assert_array_equal(F.rotate(x, 90, center=[c + 0.5 for c in center]), np.rot90(x, 1, axes=(-2, -1)))


def test_inverse_affine_matrix_of_torchvision():
    # _get_inverse_affine_matrix(center=[0, 0], angle=30, translate=[2, -1], scale=2, shear=[0, 0]):
    # [cos/s, sin/s, .., -sin/s, cos/s, ..] with the translation inverted through it
    c, s = math.cos(math.radians(30)) / 2, math.sin(math.radians(30)) / 2
    expected = [c, s, -(c * 2 + s * -1), -s, c, -(-s * 2 + c * -1)]
    np.testing.assert_allclose(F._get_inverse_affine_matrix([0, 0], 30, [2, -1], 2.0, [0, 0]), expected,
                               atol=1e-15)
    shear = F._get_inverse_affine_matrix([0, 0], 0, [0, 0], 1.0, [45, 0])  # x shear: x_in = x + tan(45) y
    np.testing.assert_allclose(shear, [1, 1, 0, 0, 1, 0], atol=1e-15)


def test_affine_translate_scale_and_fill_rules():
    x = square(6, 1)
    out = F.affine(x, 0, [2, 1], 1.0, [0, 0])  # content moves right 2, down 1; fill None -> 0
    expected = np.zeros_like(x)
    expected[:, 1:, 2:] = x[:, :-1, :-2]
    np.testing.assert_array_equal(out, expected)
    np.testing.assert_array_equal(F.affine(x, 0, [2, 1], 1.0, [0, 0], fill=-1)[:, 0], -1)
    # bilinear, half-pixel shift: column 0 reads x = -0.5 -> 0.5 * x[0] with mask 0.5. torchvision's fill rule
    # mask * (value - fill) + fill gives 0.25 * x[0] for fill=0 but 0.5 * x[0] without a fill.
    row = np.array([[[4.0, 8.0, 8.0, 8.0]]], np.float32)
    no_fill = F.affine(row, 0, [0.5, 0], 1.0, [0, 0], interpolation="bilinear")
    zero_fill = F.affine(row, 0, [0.5, 0], 1.0, [0, 0], interpolation="bilinear", fill=0)
    ten_fill = F.affine(row, 0, [0.5, 0], 1.0, [0, 0], interpolation="bilinear", fill=10)
    np.testing.assert_allclose(no_fill.ravel(), [2, 6, 8, 8])
    np.testing.assert_allclose(zero_fill.ravel(), [1, 6, 8, 8])
    np.testing.assert_allclose(ten_fill.ravel(), [6, 6, 8, 8])  # 0.5 * (2 - 10) + 10
    # scale 2 about the centre (2.5, 2.5): output (y, x) reads input ((y - 2.5) / 2 + 2.5), nearest half to even
    zoom = F.affine(x, 0, [0, 0], 2.0, [0, 0])
    src = np.rint((np.arange(6) - 2.5) / 2 + 2.5).astype(int)
    np.testing.assert_array_equal(zoom[0], x[0][np.ix_(src, src)])
    uint8 = F.affine(x.astype(np.uint8), 0, [0.5, 0], 1.0, [0, 0], interpolation="bilinear")
    assert uint8.dtype == np.uint8
    np.testing.assert_array_equal(uint8, np.rint(F.affine(x, 0, [0.5, 0], 1.0, [0, 0], interpolation="bilinear")))


def test_rotate_expand_size():
    out = F.rotate(np.ones((1, 4, 6), np.float32), 90, expand=True)
    assert out.shape == (1, 6, 4)
    assert F.rotate(np.ones((1, 10, 10), np.float32), 45, expand=True).shape == (1, 16, 16)
    # torchvision's bounding box of the corners: +-5 * sqrt(2) + 5 = [-2.07, 12.07] -> floor/ceil -> 16


def test_resize_bilinear_numbers():
    # PyTorch interpolate(align_corners=False): 2 -> 4 reads source (dst + 0.5) / 2 - 0.5, clamped at 0
    row = np.array([0.0, 1.0], np.float32).reshape(1, 1, 2)
    np.testing.assert_allclose(F.resize(row, (1, 4), antialias=False).ravel(), [0, 0.25, 0.75, 1])
    np.testing.assert_allclose(F.resize(row, (1, 4)).ravel(), [0, 0.25, 0.75, 1])  # upscaling: antialias = same
    ramp = np.arange(4, dtype=np.float64).reshape(1, 1, 4)
    np.testing.assert_allclose(F.resize(ramp, (1, 2), antialias=False).ravel(), [0.5, 2.5])
    # antialias (PIL's triangle filter widened 2x): [0, 1, 2] weighted .75, .75, .25 -> 1.25 / 1.75
    np.testing.assert_allclose(F.resize(ramp, (1, 2)).ravel(), [1.25 / 1.75, 4 / 1.75])
    np.testing.assert_array_equal(F.resize(ramp, (1, 2), interpolation="nearest").ravel(), [0, 2])
    image = np.zeros((3, 20, 30), np.uint8)
    assert F.resize(image, 10).shape == (3, 10, 15)  # int size: the smaller edge
    assert F.resize(image, 10, max_size=12).shape == (3, 8, 12)
    x = np.random.default_rng(0).integers(0, 256, (2, 3, 9, 7)).astype(np.uint8)
    np.testing.assert_array_equal(F.resize(x, (5, 4)), np.rint(F.resize(x.astype(np.float32), (5, 4))))
    np.testing.assert_array_equal(F.resize(x, (9, 7)), x)


def test_center_crop_and_five_crop_anchors():
    x = np.arange(7 * 6, dtype=np.float32).reshape(1, 7, 6)
    # anchor round((size - crop) / 2), Python's round (half to even): rows round(2.5) = 2, cols round(1.5) = 2
    np.testing.assert_array_equal(F.center_crop(x, (2, 3)), x[:, 2:4, 2:5])
    big = F.center_crop(x, (9, 9))  # pads (crop - size) // 2 before: 1 row, 1 column
    np.testing.assert_array_equal(big[:, 1:8, 1:7], x)
    assert big[:, 0].sum() == 0 and big[:, :, 7:].sum() == 0
    tl, tr, bl, br, center = F.five_crop(x, (3, 2))
    np.testing.assert_array_equal(tl, x[:, :3, :2])
    np.testing.assert_array_equal(tr, x[:, :3, 4:])
    np.testing.assert_array_equal(bl, x[:, 4:, :2])
    np.testing.assert_array_equal(br, x[:, 4:, 4:])
    np.testing.assert_array_equal(center, x[:, 2:5, 2:4])
    ten = F.ten_crop(x, (3, 2))
    np.testing.assert_array_equal(ten[5], x[:, :3, ::-1][:, :, :2])
    np.testing.assert_array_equal(F.ten_crop(x, 2, vertical_flip=True)[5], x[:, ::-1][:, :2, :2])
    with pytest.raises(ValueError, match="larger than the image"):
        F.five_crop(x, 8)


def test_crop_outside_the_image_is_zero_padded():
    x = np.ones((1, 3, 3), np.uint8)
    out = F.crop(x, -1, 1, 3, 4)
    np.testing.assert_array_equal(out[0], [[0, 0, 0, 0], [1, 1, 0, 0], [1, 1, 0, 0]])


@pytest.mark.parametrize("mode", ["constant", "edge", "reflect", "symmetric"])
def test_pad_modes_match_numpy(mode):
    x = np.random.default_rng(0).random((2, 3, 4, 5)).astype(np.float32)
    expected = np.pad(x, [(0, 0), (0, 0), (2, 3), (1, 0)], mode=mode)
    np.testing.assert_array_equal(F.pad(x, [1, 2, 0, 3], padding_mode=mode), expected)
    filled = F.pad(x, 1, fill=(1, 2, 3))
    np.testing.assert_array_equal(filled[:, :, 0, 0], [[1, 2, 3]] * 2)
    np.testing.assert_array_equal(F.pad(x, (1, 2)).shape, (2, 3, 8, 7))


def test_erase_and_normalize():
    x = np.zeros((3, 4, 4), np.float32)
    out = F.erase(x, 1, 2, 2, 1, np.array([1.0, 2.0, 3.0])[:, None, None])
    assert out[:, 1:3, 2].tolist() == [[1, 1], [2, 2], [3, 3]] and out.sum() == 12 and x.sum() == 0
    assert F.erase(x, 0, 0, 1, 1, 5.0, inplace=True) is x and x[0, 0, 0] == 5
    with pytest.raises(ValueError, match="outside the image"):
        F.erase(x, 3, 3, 2, 2, 0.0)
    y = np.random.default_rng(0).random((2, 3, 2, 2)).astype(np.float32)
    np.testing.assert_allclose(F.normalize(y, [0.5, 0.4, 0.3], [0.2, 0.1, 0.5])[:, 1], (y[:, 1] - 0.4) / 0.1,
                               rtol=1e-6)


@settings(max_examples=20, deadline=None)
@given(seed=st.integers(0, 1000), lead=st.lists(st.integers(1, 3), max_size=2), c=st.integers(1, 4),
       h=st.integers(1, 6), w=st.integers(1, 6))
def test_flip_twice_is_identity_and_normalize_inverts(seed, lead, c, h, w):
    x = np.random.default_rng(seed).standard_normal(tuple(lead) + (c, h, w)).astype(np.float32)
    np.testing.assert_array_equal(F.horizontal_flip(F.horizontal_flip(x)), x)
    np.testing.assert_array_equal(F.vertical_flip(F.vertical_flip(x)), x)
    mean = np.random.default_rng(seed + 1).standard_normal(c)
    std = np.random.default_rng(seed + 2).uniform(0.1, 2, c)
    back = F.normalize(F.normalize(x, mean, std), -mean / std, 1 / std)
    np.testing.assert_allclose(back, x, rtol=1e-5, atol=1e-5)


def test_geometry_argument_errors():
    x = np.zeros((3, 4, 4), np.float32)
    for call, match in [(lambda: F.crop(x, 0, 0, -1, 2), "crop height"),
                        (lambda: F.center_crop(x, (0, 2)), "output_size"),
                        (lambda: F.pad(x, -1), "padding"),
                        (lambda: F.pad(x, 1, padding_mode="wrap"), "padding_mode"),
                        (lambda: F.pad(x, 4, padding_mode="reflect"), "smaller than the image"),
                        (lambda: F.resize(x, (2, 0)), "resize size"),
                        (lambda: F.resize(x, 4, interpolation="bicubic"), "interpolation"),
                        (lambda: F.affine(x, 0, [0], 1.0, 0), "translate"),
                        (lambda: F.affine(x, 0, [0, 0], 0.0, 0), "scale"),
                        (lambda: F.horizontal_flip(np.zeros(3)), "expects an image"),
                        (lambda: F.normalize(x, 0, 0), "non-zero")]:
        with pytest.raises(ValueError, match=match):
            call()


# Outputs printed by torchvision 0.28.0 (transforms.v2.functional, CPU torch 2.13) for this 3 x 4 x 4 uint8
# image; fastnn gives them bit for bit. (The float versions of these ops agree to 6e-7.)
_X = ((np.arange(48).reshape(3, 4, 4) * 37 + 11) % 256).astype(np.uint8)
_TORCHVISION = [
    (lambda x: F.adjust_hue(x, 0.2),
     [[[123, 160, 197, 26], [63, 196, 233, 126], [163, 200, 29, 66], [199, 236, 129, 166]],
      [[11, 48, 85, 202], [239, 151, 188, 14], [51, 88, 205, 242], [154, 191, 17, 54]],
      [[171, 208, 245, 141], [178, 20, 57, 174], [211, 248, 144, 181], [23, 60, 177, 214]]]),
    (lambda x: F.adjust_saturation(x, 1.7),
     [[[0, 2, 39, 96], [133, 255, 255, 0], [5, 42, 99, 137], [255, 255, 0, 8]],
      [[101, 138, 175, 232], [255, 0, 14, 104], [141, 178, 235, 255], [0, 17, 107, 144]],
      [[237, 255, 255, 0], [0, 113, 150, 240], [255, 255, 0, 0], [116, 153, 243, 255]]]),
    (lambda x: F.adjust_sharpness(x, 1.8),
     [[[11, 48, 85, 122], [159, 243, 255, 14], [51, 56, 125, 162], [199, 236, 17, 54]],
      [[91, 128, 165, 202], [239, 0, 9, 94], [131, 199, 252, 242], [23, 60, 97, 134]],
      [[171, 208, 245, 26], [63, 68, 137, 174], [211, 255, 0, 66], [103, 140, 177, 214]]]),
    (lambda x: F.rotate(x, 33.0, interpolation="bilinear"),
     [[[21, 79, 91, 10], [69, 181, 170, 142], [143, 119, 109, 63], [24, 133, 207, 13]],
      [[55, 156, 137, 44], [114, 54, 116, 220], [221, 126, 171, 143], [58, 88, 62, 40]],
      [[89, 234, 125, 71], [162, 134, 106, 75], [76, 189, 117, 156], [86, 168, 139, 74]]]),
    (lambda x: F.affine(x, angle=10.0, translate=[1, -1], scale=1.1, shear=[5.0, 3.0], interpolation="bilinear"),
     [[[21, 138, 183, 225], [34, 79, 95, 137], [111, 214, 142, 50], [0, 17, 17, 11]],
      [[34, 207, 47, 51], [43, 129, 174, 192], [13, 42, 85, 130], [0, 4, 16, 35]],
      [[19, 97, 113, 131], [75, 209, 209, 42], [57, 120, 155, 158], [0, 10, 30, 58]]]),
]


@pytest.mark.parametrize("case", range(len(_TORCHVISION)))
def test_uint8_outputs_printed_by_torchvision(case):
    fn, expected = _TORCHVISION[case]
    np.testing.assert_array_equal(fn(_X), np.array(expected, np.uint8))


def test_saturation_blend_rounds_once_like_torchs_fused_add():
    # torch computes image * 1.7 + gray * (1 - 1.7) as one fused multiply-add in float32: for this pixel (gray
    # 156) the red channel is 19.99999... -> 19, where two roundings give exactly 20. torchvision: [19, 232, 120].
    assert F.adjust_saturation(rgb(76, 201, 135), 1.7).ravel().tolist() == [19, 232, 120]


def test_float_resize_printed_by_torchvision():
    # torchvision 0.28.0 resize of channel 0 of _X / 255 (float32) to 3 x 2, with and without antialiasing
    x = (_X[:1] / 255).astype(np.float32)
    np.testing.assert_allclose(F.resize(x, [3, 2], antialias=True)[0],
                               [[0.320896, 0.419832], [0.515406, 0.528291], [0.609524, 0.335574]], atol=1e-6)
    np.testing.assert_allclose(F.resize(x, [3, 2], antialias=False)[0],
                               [[0.212418, 0.418954], [0.484314, 0.523529], [0.756209, 0.209804]], atol=1e-6)

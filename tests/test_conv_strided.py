"""im2col's pixel-major path (cpu_conv._im2col_forward_pixels / _im2col_backward_pixels, used for ungrouped kxk
convs of 16+ input channels whose batches have more pixels than output channels, resnet20's stride-2 convs among
them) against the NumPy reference, and which convs take it."""
import numpy as np
import pytest

from fastnn._kernels import cpu_conv, ref_conv


def _assert_close(actual, expected):
    assert actual.dtype == expected.dtype and actual.shape == expected.shape
    tol = 1e-10 if actual.dtype == np.float64 else 1e-4
    np.testing.assert_allclose(actual, expected, rtol=tol, atol=tol * (1 + np.abs(expected).max()))


@pytest.mark.parametrize("x_shape, w_shape, args", [
    ((6, 16, 12, 12), (8, 16, 3, 3), ((2, 2), (1, 1), (1, 1))),   # resnet20's downsampling conv, small
    ((3, 16, 11, 13), (6, 16, 3, 4), ((3, 2), (2, 1), (2, 1))),   # dilated rows, odd plane, stride 3
    ((2, 16, 9, 10), (5, 16, 2, 3), ((1, 2), (3, 2), (1, 2))),    # padding beyond a whole stride, dilated columns
    ((17, 16, 8, 8), (4, 16, 3, 3), ((2, 2), (1, 1), (1, 1))),    # several images per GEMM, ragged last batch
])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_pixel_path_matches_reference(x_shape, w_shape, args, dtype):
    rng = np.random.default_rng(sum(x_shape))
    x = rng.standard_normal(x_shape).astype(dtype)
    w = rng.standard_normal(w_shape).astype(dtype)
    b = rng.standard_normal(w_shape[0]).astype(dtype)
    out = cpu_conv.conv2d_forward_im2col(x, w, b, *args, 1)
    batch = cpu_conv._images_per_gemm(x_shape[0], out.shape[2] * out.shape[3])
    assert cpu_conv._pixel_columns(w_shape, 1, batch * out.shape[2] * out.shape[3])
    x64, w64 = x.astype(np.float64), w.astype(np.float64)
    _assert_close(out, ref_conv.conv2d_forward(x64, w64, b.astype(np.float64), *args, 1).astype(dtype))
    grad_out = rng.standard_normal(out.shape).astype(dtype)
    expected = [e.astype(dtype) for e in ref_conv.conv2d_backward(grad_out.astype(np.float64), x64, w64, *args, 1)]
    for flags in [(True, True, True), (True, False, False), (False, True, False)]:
        grads = cpu_conv.conv2d_backward_im2col(grad_out, x, w, *args, 1, *flags)
        for wanted, got, want in zip(flags, grads, expected):
            if wanted:
                _assert_close(got, want)
            else:
                assert got is None


def test_pixel_path_is_deterministic():
    rng = np.random.default_rng(1)
    x = rng.standard_normal((20, 16, 16, 16)).astype(np.float32)
    w = rng.standard_normal((32, 16, 3, 3)).astype(np.float32)
    args = ((2, 2), (1, 1), (1, 1), 1)
    out = cpu_conv.conv2d_forward_im2col(x, w, None, *args)
    grad_out = rng.standard_normal(out.shape).astype(np.float32)
    grads = cpu_conv.conv2d_backward_im2col(grad_out, x, w, *args, True, True, False)
    for _ in range(2):
        assert np.array_equal(cpu_conv.conv2d_forward_im2col(x, w, None, *args), out)
        again = cpu_conv.conv2d_backward_im2col(grad_out, x, w, *args, True, True, False)
        assert np.array_equal(again[0], grads[0]) and np.array_equal(again[1], grads[1])


@pytest.mark.parametrize("shape, dtype", [((3, 4, 5), np.float64), ((16, 32, 32), np.float32),
                                          ((9, 1024, 3), np.float32)])
def test_channels_last_round_trip_keeps_the_zero_border(shape, dtype):
    """Pixel by pixel (3x4x5) and channel by channel (channel rows 4 KiB apart, see
    cpu_winograd._pixel_by_pixel), both ways."""
    rng = np.random.default_rng(2)
    image = rng.standard_normal(shape).astype(dtype)
    cin, height, width = shape
    padded = np.zeros((height + 3, width + 3, cin), dtype)
    cpu_conv._image_channels_last(image, padded, 2, 1)
    np.testing.assert_array_equal(padded[2:height + 2, 1:width + 1], image.transpose(1, 2, 0))
    assert not padded[:2].any() and not padded[height + 2:].any()
    assert not padded[:, :1].any() and not padded[:, width + 1:].any()
    back = np.empty_like(image)
    cpu_conv._image_channels_first(padded, 2, 1, back)
    np.testing.assert_array_equal(back, image)


def test_which_convs_unfold_pixel_rows():
    # resnet20's stride-2 convs at batch 64: 2 images (512 pixels) per GEMM of 32 channels, 8 (512) of 64.
    assert cpu_conv._pixel_columns((32, 16, 3, 3), 1, 512)
    assert cpu_conv._pixel_columns((64, 32, 3, 3), 1, 512)
    # resnet18's deep layers at batch 4: one 7x7 output plane per GEMM of 512 channels (the pixels the short side).
    assert not cpu_conv._pixel_columns((512, 256, 3, 3), 1, 49)
    # 1x1 convs, grouped convs and 1-3 input channels keep the channel-major unfold.
    assert not cpu_conv._pixel_columns((128, 64, 1, 1), 1, 4096)
    assert not cpu_conv._pixel_columns((64, 16, 3, 3), 2, 4096)
    assert not cpu_conv._pixel_columns((64, 3, 3, 3), 1, 4096)

"""The direct conv's layout copy (cpu_conv._embed), weight gradient (cpu_conv._tap_dot) and input gradient against
NumPy."""
import numpy as np
import pytest

from fastnn._kernels import cpu_conv, ref_conv


@pytest.mark.parametrize("first, chan_pitch, length, start, pitch, row_step, col_step", [
    (0, 42, 42, 7, 6, 1, 1),     # zero-padded planes back to back (a stride-1 input, pitch 6 for 4 columns)
    (10, 60, 25, 3, 5, 1, 1),    # one stride phase: regions with gaps between them, left as they were
    (0, 90, 90, 11, 9, 2, 2),    # an output gradient spread with stride 2 (zeros between its elements)
    (0, 24, 24, 0, 4, 1, 1),     # re-pitched rows, no leading zeros, rows touching at pitch == width
])
def test_embed_writes_regions_exactly_and_nothing_else(first, chan_pitch, length, start, pitch, row_step, col_step):
    rng = np.random.default_rng(length)
    src = rng.standard_normal((2, 3, 4, 4)).astype(np.float32) + 5  # never 0: a missed copy shows
    n_img, chans, height, width = src.shape
    dst = np.full((n_img, first + chans * chan_pitch + 3), np.nan, np.float32)  # unzeroed memory, like np.empty
    cpu_conv._embed(src, dst, first, chan_pitch, length, start, pitch, row_step, col_step)
    expected = np.full_like(dst, np.nan)
    for n in range(n_img):
        for c in range(chans):
            region = np.zeros(length, np.float32)
            for y in range(height):
                base = start + y * row_step * pitch
                region[base:base + width * col_step:col_step] = src[n, c, y]
            expected[n, first + c * chan_pitch:first + c * chan_pitch + length] = region
    np.testing.assert_array_equal(dst, expected)


@pytest.mark.parametrize("block", [2, 4])
@pytest.mark.parametrize("n_chunks", [1, 3])
@pytest.mark.parametrize("x_shape, w_shape, stride, padding, groups", [
    ((5, 3, 12, 11), (7, 3, 3, 3), 1, 1, 1),   # odd output channels: a block of 4 rows and one of 3
    ((4, 1, 14, 14), (8, 1, 5, 5), 2, 2, 1),   # a first layer, strided (stride phases), taps padded 25 -> 28
    ((3, 16, 9, 9), (16, 16, 3, 3), 1, 1, 1),  # 16 channels, 144 taps (no padding taps)
    ((3, 4, 7, 9), (8, 4, 3, 3), 1, 3, 1),     # padding past the kernel
    ((3, 6, 9, 8), (15, 2, 3, 3), 2, 1, 3),    # groups: per-group phases, 5 rows per group, padding taps 18 -> 20
])
def test_weight_gradient_matches_reference_in_any_batch_chunking(monkeypatch, block, n_chunks, x_shape, w_shape,
                                                                 stride, padding, groups):
    """Rows in blocks of 4 (AVX-512 hosts) or 2 (AVX2), whatever this host's."""
    monkeypatch.setattr(cpu_conv, "_weight_grad_chunks", lambda n_img, groups, partial_size: n_chunks)
    monkeypatch.setattr(cpu_conv, "_weight_grad_block", lambda: block)
    rng = np.random.default_rng(n_chunks + x_shape[1])
    x = rng.standard_normal(x_shape).astype(np.float32)
    w = rng.standard_normal(w_shape).astype(np.float32)
    args = ((stride,) * 2, (padding,) * 2, (1, 1), groups)
    grad_out = rng.standard_normal(ref_conv.conv2d_forward(x, w, None, *args).shape).astype(np.float32)
    _, expected, expected_b = ref_conv.conv2d_backward(grad_out, x, w, *args)
    for need_input in (False, True):
        grad_w = cpu_conv.conv2d_backward_direct(grad_out, x, w, *args, need_input, True, False)[1]
        np.testing.assert_allclose(grad_w, expected, rtol=1e-4, atol=1e-4 * np.abs(expected).max())
    # With the weight gradient, the bias gradient is summed in the same pass over the output gradient.
    _, again, grad_b = cpu_conv.conv2d_backward_direct(grad_out, x, w, *args, True, True, True)
    assert np.array_equal(again, grad_w)
    np.testing.assert_allclose(grad_b, expected_b, rtol=1e-4, atol=1e-4 * np.abs(expected_b).max())
    assert np.array_equal(cpu_conv.conv2d_backward_direct(grad_out, x, w, *args, False, True, True)[2], grad_b)


@pytest.mark.parametrize("x_shape, w_shape, padding, dilation, groups", [
    ((9, 16, 16, 16), (16, 16, 3, 3), (1, 1), (1, 1), 1),  # resnet20's: the flipped kernel's forward, pooled
    ((4, 8, 9, 13), (8, 4, 3, 3), (0, 2), (1, 2), 2),       # unpadded rows, dilated columns, two groups: serial
    ((8, 4, 7, 9), (8, 4, 3, 3), (3, 1), (1, 1), 1),        # padding past the kernel's reach: the spread gradient
    ((2, 16, 16, 16), (16, 16, 3, 3), (1, 1), (1, 1), 1),   # too few images for the forward's tasks: the spread
])
def test_stride1_input_gradient_matches_reference(x_shape, w_shape, padding, dilation, groups):
    """A stride-1 input gradient of at least cpu_conv._MIN_TASKS (image, group) pairs is the forward of grad_out
    with the flipped, transposed weight and padding dilation*(k - 1) - padding, where that is not negative;
    otherwise the spread output gradient's tap sums."""
    rng = np.random.default_rng(sum(x_shape))
    x = rng.standard_normal(x_shape).astype(np.float32)
    w = rng.standard_normal(w_shape).astype(np.float32)
    args = ((1, 1), padding, dilation, groups)
    grad_out = rng.standard_normal(ref_conv.conv2d_forward(x, w, None, *args).shape).astype(np.float32)
    expected = ref_conv.conv2d_backward(grad_out, x, w, *args)[0]
    grad_x = cpu_conv.conv2d_backward_direct(grad_out, x, w, *args, True, False, False)[0]
    assert grad_x.shape == x.shape
    np.testing.assert_allclose(grad_x, expected, rtol=1e-4, atol=1e-4 * np.abs(expected).max())
    assert np.array_equal(cpu_conv.conv2d_backward_direct(grad_out, x, w, *args, True, True, False)[0], grad_x)


@pytest.mark.parametrize("x_shape, w_shape, stride, padding, dilation, groups, dtype", [
    ((5, 1, 12, 11), (16, 1, 5, 5), (1, 1), (2, 2), (1, 1), 1, np.float32),   # a first layer: 25 taps padded to 28
    ((3, 3, 16, 16), (16, 3, 3, 3), (1, 1), (1, 1), (1, 1), 1, np.float32),   # 2 KB planes: re-pitched
    ((3, 3, 16, 16), (16, 3, 3, 3), (1, 1), (1, 1), (1, 1), 1, np.float64),   # float64, 2 KB planes
    ((2, 3, 17, 15), (20, 3, 3, 3), (2, 2), (1, 0), (1, 2), 1, np.float32),   # strided, dilated: a phased fold
    ((2, 6, 10, 10), (32, 3, 3, 3), (1, 1), (0, 1), (1, 1), 2, np.float32),   # two groups of 3 channels
    ((3, 3, 6, 6), (16, 3, 3, 3), (1, 1), (0, 0), (1, 1), 1, np.float32),     # 16-pixel planes: runs of 16 only
])
@pytest.mark.parametrize("vector_run", [16, 32])
def test_input_gradient_by_tap_planes_matches_reference(monkeypatch, x_shape, w_shape, stride, padding, dilation,
                                                        groups, dtype, vector_run):
    """Input channels per group not in fours, with at least cpu_conv._TAP_PLANES_MIN_OUT_CHANNELS output channels
    per group: the input gradient sums tap planes over the output channels and folds them (col2im), in runs of
    16 or 32 pixels (cpu_conv._VECTOR_RUN: AVX2 or AVX-512 hosts)."""
    monkeypatch.setattr(cpu_conv, "_VECTOR_RUN", vector_run)
    assert w_shape[1] % 4 and w_shape[0] // groups >= cpu_conv._TAP_PLANES_MIN_OUT_CHANNELS
    rng = np.random.default_rng(sum(x_shape))
    x = rng.standard_normal(x_shape).astype(dtype)
    w = rng.standard_normal(w_shape).astype(dtype)
    args = (stride, padding, dilation, groups)
    grad_out = rng.standard_normal(ref_conv.conv2d_forward(x, w, None, *args).shape).astype(dtype)
    expected = ref_conv.conv2d_backward(grad_out, x, w, *args)[0]
    grad_x = cpu_conv.conv2d_backward_direct(grad_out, x, w, *args, True, False, False)[0]
    assert grad_x.shape == x.shape and grad_x.dtype == dtype
    tol = 1e-4 if dtype == np.float32 else 1e-12
    np.testing.assert_allclose(grad_x, expected, rtol=tol, atol=tol * np.abs(expected).max())
    assert np.array_equal(cpu_conv.conv2d_backward_direct(grad_out, x, w, *args, True, True, True)[0], grad_x)

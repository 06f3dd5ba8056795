"""Pooling: CPU kernels vs NumPy references, ops (on every device) vs PyTorch-computed values, gradients, validation."""
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import fastnn
from conftest import host
from fastnn import _dispatch, nn
from fastnn._kernels import ref_pool
from fastnn._validation import pool_output_size
from fastnn.autograd import gradcheck
from fastnn.nn import functional as F
from fastnn.ops.pool import avg_pool2d, max_pool2d

DTYPES = [np.float32, np.float64]
CPU = _dispatch.backend("cpu").kernels  # the Numba kernels, compared with the references below


@st.composite
def pool_geometry(draw, dilated):
    kh, kw = draw(st.integers(1, 4)), draw(st.integers(1, 4))
    sh, sw = draw(st.integers(1, 3)), draw(st.integers(1, 3))
    ph, pw = draw(st.integers(0, kh // 2)), draw(st.integers(0, kw // 2))
    dh, dw = (draw(st.integers(1, 3)), draw(st.integers(1, 3))) if dilated else (1, 1)
    ceil_mode = draw(st.booleans())
    height = draw(st.integers(max(1, dh * (kh - 1) + 1 - 2 * ph), 12))
    width = draw(st.integers(max(1, dw * (kw - 1) + 1 - 2 * pw), 12))
    oh = pool_output_size(height, kh, ph, sh, dh, ceil_mode)
    ow = pool_output_size(width, kw, pw, sw, dw, ceil_mode)
    planes = draw(st.integers(1, 5))
    return planes, height, width, (kh, kw, sh, sw, ph, pw), (dh, dw), oh, ow


@pytest.mark.parametrize("dtype", DTYPES)
@settings(max_examples=40, deadline=None)
@given(geometry=pool_geometry(dilated=True), seed=st.integers(0, 2**16))
def test_max_pool_kernels_match_reference(dtype, geometry, seed):
    planes, height, width, window, dilation, oh, ow = geometry
    rng = np.random.default_rng(seed)
    # Rounded values force ties, which must resolve to the first maximum in raster order.
    x = np.round(rng.standard_normal((planes, height, width)), 1).astype(dtype)
    out, indices = CPU.max_pool2d_forward(x, *window, *dilation, oh, ow)
    ref_out, ref_indices = ref_pool.max_pool2d_forward(x, *window, *dilation, oh, ow)
    np.testing.assert_array_equal(out, ref_out)
    np.testing.assert_array_equal(indices, ref_indices)
    g = rng.standard_normal((planes, oh, ow)).astype(dtype)
    np.testing.assert_allclose(CPU.max_pool2d_backward(g, indices, height, width),
                               ref_pool.max_pool2d_backward(g, ref_indices, height, width), rtol=1e-6, atol=1e-6)


@pytest.mark.parametrize("dtype", DTYPES)
@settings(max_examples=40, deadline=None)
@given(geometry=pool_geometry(dilated=False), count_include_pad=st.booleans(),
       divisor_override=st.sampled_from([0, 1, 3, -2]), seed=st.integers(0, 2**16))
def test_avg_pool_kernels_match_reference(dtype, geometry, count_include_pad, divisor_override, seed):
    planes, height, width, window, _, oh, ow = geometry
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((planes, height, width)).astype(dtype)
    tol = dict(rtol=1e-5, atol=1e-6) if dtype == np.float32 else dict(rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(
        CPU.avg_pool2d_forward(x, *window, oh, ow, count_include_pad, divisor_override),
        ref_pool.avg_pool2d_forward(x, *window, oh, ow, count_include_pad, divisor_override), **tol)
    g = rng.standard_normal((planes, oh, ow)).astype(dtype)
    np.testing.assert_allclose(
        CPU.avg_pool2d_backward(g, height, width, *window, count_include_pad, divisor_override),
        ref_pool.avg_pool2d_backward(g, height, width, *window, count_include_pad, divisor_override), **tol)


# Expected values below were computed with torch 2.13 (F.max_pool2d / F.avg_pool2d) on the same input.
def _ramp():
    x = np.arange(1.0, 21.0, dtype=np.float32).reshape(1, 1, 4, 5)
    x[0, 0, 1, 2] = 30.0
    return x


def test_max_pool_matches_pytorch_values_ceil_mode_padding(device):
    out, indices = max_pool2d(fastnn.tensor(_ramp(), device=device), 3, stride=2, padding=1, ceil_mode=True,
                              return_indices=True)
    np.testing.assert_array_equal(host(out), [[[[7, 30, 10], [17, 30, 20], [17, 19, 20]]]])
    np.testing.assert_array_equal(host(indices), [[[[6, 7, 9], [16, 7, 19], [16, 18, 19]]]])
    assert indices.dtype == np.int64 and not indices.requires_grad
    assert out.device == indices.device == device


def test_max_pool_matches_pytorch_values_dilation(device):
    out, indices = max_pool2d(fastnn.tensor(_ramp(), device=device), 2, stride=1, dilation=2, return_indices=True)
    np.testing.assert_array_equal(host(out), [[[[13, 14, 15], [30, 19, 30]]]])
    np.testing.assert_array_equal(host(indices), [[[[12, 13, 14], [7, 18, 7]]]])


@pytest.mark.parametrize("count_include_pad, expected", [
    (False, [[4.0, 9.1666667, 7.0], [11.5, 15.4444447, 14.5], [16.5, 18.0, 19.5]]),
    (True, [[1.7777778, 6.1111112, 3.1111112], [7.6666665, 15.4444447, 9.666667], [5.5, 9.0, 6.5]]),
])
def test_avg_pool_matches_pytorch_values(count_include_pad, expected, device):
    out = avg_pool2d(fastnn.tensor(_ramp(), device=device), 3, stride=2, padding=1, ceil_mode=True,
                     count_include_pad=count_include_pad)
    np.testing.assert_allclose(host(out)[0, 0], expected, rtol=1e-6)


def test_ceil_mode_drops_a_window_starting_in_the_right_padding(device):
    x = fastnn.ones(1, 1, 4, 4, device=device)
    assert avg_pool2d(x, 2, stride=3, padding=1, ceil_mode=True).shape == (1, 1, 2, 2)
    assert max_pool2d(fastnn.ones(1, 1, 5, 5, device=device), 2, ceil_mode=True).shape == (1, 1, 3, 3)
    assert max_pool2d(fastnn.ones(1, 1, 5, 5, device=device), 2).shape == (1, 1, 2, 2)


def test_max_pool_propagates_nan_like_pytorch(device):
    x = np.array([[[[1.0, np.nan, 3.0], [np.nan, 0.0, 2.0]]]], dtype=np.float32)
    out, indices = max_pool2d(fastnn.tensor(x, device=device), 2, stride=1, return_indices=True)
    assert np.isnan(host(out)).all()
    np.testing.assert_array_equal(host(indices), [[[[3, 1]]]])


def test_windows_mixing_infinities_are_not_mistaken_for_nan(device):
    x = np.array([[[[-np.inf, np.inf, 1.0], [2.0, -np.inf, np.inf]]]], dtype=np.float32)
    out, indices = max_pool2d(fastnn.tensor(x, device=device), 2, stride=1, padding=(0, 1), return_indices=True)
    np.testing.assert_array_equal(host(out), [[[[2.0, np.inf, np.inf, np.inf]]]])
    np.testing.assert_array_equal(host(indices), [[[[3, 1, 1, 5]]]])


def test_all_negative_infinity_window_points_at_its_first_element(device):
    x = np.full((1, 1, 2, 2), -np.inf, dtype=np.float32)
    out, indices = max_pool2d(fastnn.tensor(x, device=device), 2, return_indices=True)
    assert out.item() == -np.inf and indices.item() == 0


@pytest.mark.parametrize("kwargs", [
    dict(kernel_size=2),
    dict(kernel_size=3, stride=2, padding=1, ceil_mode=True),
    dict(kernel_size=(3, 2), stride=(1, 2), padding=(1, 0), dilation=(2, 1)),
])
def test_max_pool_gradcheck(kwargs, device):
    x = fastnn.tensor(np.random.default_rng(1).standard_normal((2, 2, 6, 7)), requires_grad=True, device=device)
    assert gradcheck(lambda t: max_pool2d(t, **kwargs), [x])


@pytest.mark.parametrize("kwargs", [
    dict(kernel_size=2),
    dict(kernel_size=3, stride=2, padding=1, ceil_mode=True, count_include_pad=False),
    dict(kernel_size=(3, 2), stride=1, padding=1, divisor_override=4),
])
def test_avg_pool_gradcheck(kwargs, device):
    x = fastnn.tensor(np.random.default_rng(2).standard_normal((2, 2, 6, 7)), requires_grad=True, device=device)
    assert gradcheck(lambda t: avg_pool2d(t, **kwargs), [x])


def test_overlapping_max_pool_backward_is_deterministic(device):
    rng = np.random.default_rng(3)
    x = fastnn.tensor(np.round(rng.standard_normal((8, 4, 17, 17)), 1).astype(np.float32), requires_grad=True,
                      device=device)
    grads = []
    for _ in range(3):
        x.grad = None
        max_pool2d(x, 3, stride=1, padding=1).sum().backward()
        grads.append(host(x.grad).copy())
    assert all(np.array_equal(grads[0], g) for g in grads[1:])


def test_unbatched_and_noncontiguous_inputs(device):
    data = np.random.default_rng(4).standard_normal((3, 8, 6)).astype(np.float32)
    batched = host(max_pool2d(fastnn.tensor(data[None], device=device), 2))
    np.testing.assert_array_equal(host(max_pool2d(fastnn.tensor(data, device=device), 2)), batched[0])
    transposed = fastnn.tensor(np.ascontiguousarray(data.transpose(0, 2, 1)), device=device).transpose(1, 2)
    assert not transposed._data.flags.c_contiguous
    np.testing.assert_array_equal(host(avg_pool2d(transposed, 2)), host(avg_pool2d(fastnn.tensor(data), 2)))


def test_stride_defaults_to_kernel_size(device):
    x = fastnn.randn(1, 2, 8, 8, device=device)
    np.testing.assert_array_equal(host(max_pool2d(x, 2, stride=None)), host(max_pool2d(x, 2, stride=2)))
    np.testing.assert_array_equal(host(avg_pool2d(x, 2, stride=[])), host(avg_pool2d(x, 2, stride=2)))
    assert nn.MaxPool2d(3).stride == nn.AvgPool2d(3, stride=None).stride == 3
    # As in PyTorch, a one-element sequence stands for every dimension.
    np.testing.assert_array_equal(host(max_pool2d(x, [2], stride=(2,))), host(max_pool2d(x, 2)))


# PyTorch 2.13: F.max_pool2d(x, 2, stride=0) and nn.AvgPool2d(2, stride=0)(x) raise "stride should not be zero"
# (any dimension, any pooling); fastnn raised nothing and pooled with stride = kernel_size (issue 11).
@pytest.mark.parametrize("call", [
    lambda: max_pool2d(fastnn.randn(1, 1, 4, 4), 2, stride=0),
    lambda: avg_pool2d(fastnn.randn(1, 1, 4, 4), 2, stride=0),
    lambda: F.max_pool2d(fastnn.randn(1, 1, 4, 4), 2, stride=(1, 0)),
    lambda: F.avg_pool2d(fastnn.randn(1, 1, 4, 4), 2, stride=[0]),
    lambda: F.max_pool1d(fastnn.randn(1, 1, 4), 2, stride=0),
    lambda: F.avg_pool1d(fastnn.randn(1, 1, 4), 2, stride=0),
    lambda: F.max_pool3d(fastnn.randn(1, 1, 4, 4, 4), 2, stride=(1, 1, 0)),
    lambda: F.avg_pool3d(fastnn.randn(1, 1, 4, 4, 4), 2, stride=0),
    lambda: nn.MaxPool2d(2, stride=0),
    lambda: nn.AvgPool2d(2, stride=0),
    lambda: nn.MaxPool1d(2, stride=0),
    lambda: nn.AvgPool1d(2, stride=0),
    lambda: nn.MaxPool3d(2, stride=0),
    lambda: nn.AvgPool3d(2, stride=(2, 0, 2)),
])
def test_zero_stride_is_an_error_naming_stride(call):
    with pytest.raises(ValueError, match="stride should not be zero") as info:
        call()
    assert "stride" in str(info.value).replace("stride should not be zero", "")


@pytest.mark.parametrize("call, error, match", [
    (lambda: max_pool2d(fastnn.randn(4, 4), 2), ValueError, r"shape \(4, 4\)"),
    (lambda: max_pool2d(fastnn.tensor(np.ones((1, 1, 4, 4), np.int64)), 2), TypeError, "int64"),
    (lambda: max_pool2d(np.ones((1, 1, 4, 4)), 2), TypeError, "Tensor"),
    (lambda: max_pool2d(fastnn.randn(1, 1, 4, 4), 2, padding=2), ValueError, "half of kernel size"),
    (lambda: max_pool2d(fastnn.randn(1, 1, 4, 4), 0), ValueError, "kernel size should be greater than zero"),
    (lambda: max_pool2d(fastnn.randn(1, 1, 4, 4), 2, stride=-1), ValueError, "stride should be greater"),
    (lambda: max_pool2d(fastnn.randn(1, 1, 4, 4), 2, dilation=0), ValueError, "dilation should be greater"),
    (lambda: max_pool2d(fastnn.randn(1, 1, 4, 4), 2, padding=-1), ValueError, "non-negative"),
    (lambda: max_pool2d(fastnn.randn(1, 1, 2, 2), 3), ValueError, "too small"),
    (lambda: max_pool2d(fastnn.randn(1, 1, 4, 4), (2, 2, 2)), TypeError, "kernel_size"),
    (lambda: max_pool2d(fastnn.randn(1, 1, 4, 4), 2.0), TypeError, "kernel_size"),
    (lambda: max_pool2d(fastnn.randn(1, 0, 4, 4), 2), ValueError, "non-zero"),
    (lambda: avg_pool2d(fastnn.randn(1, 1, 4, 4), 2, divisor_override=0), ValueError, "divisor must be not zero"),
    (lambda: avg_pool2d(fastnn.randn(1, 1, 4, 4), 2, divisor_override=1.5), TypeError, "divisor_override"),
])
def test_invalid_arguments_raise_clear_errors(call, error, match):
    with pytest.raises(error, match=match):
        call()


def test_pool2d_layers_run_their_functional_forms(device):
    x = fastnn.randn(2, 3, 6, 6, device=device)
    out, indices = nn.MaxPool2d(3, stride=2, padding=1, return_indices=True)(x)
    expected, expected_indices = max_pool2d(x, 3, 2, 1, return_indices=True)
    assert out.shape == indices.shape == (2, 3, 3, 3) and out.device == device
    np.testing.assert_array_equal(host(out), host(expected))
    np.testing.assert_array_equal(host(indices), host(expected_indices))
    avg = nn.AvgPool2d(3, stride=1, padding=1, count_include_pad=False, divisor_override=2)(x)
    np.testing.assert_array_equal(host(avg), host(avg_pool2d(x, 3, 1, 1, False, False, 2)))
    assert repr(nn.MaxPool2d(2)) == "MaxPool2d(kernel_size=2, stride=2, padding=0, dilation=1, ceil_mode=False)"
    assert repr(nn.AvgPool2d(3, 1)) == "AvgPool2d(kernel_size=3, stride=1, padding=0)"

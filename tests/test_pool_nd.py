"""1-D, 3-D, adaptive and fractional pooling: kernels vs NumPy references, region rules, gradients, layers."""
import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import fastnn
from conftest import DEVICES, host
from fastnn import _dispatch, nn
from fastnn._kernels import ref_pool_nd
from fastnn._validation import pool_output_size
from fastnn.autograd import gradcheck
from fastnn.nn import functional as F
from fastnn.ops.pool import avg_pool2d, max_pool2d
from fastnn.ops.pool_nd import (adaptive_avg_pool1d, adaptive_avg_pool2d, adaptive_max_pool1d, adaptive_max_pool2d,
                                avg_pool1d, avg_pool3d, fractional_max_pool2d, max_pool1d, max_pool3d)

DTYPES = [np.float32, np.float64]
CPU = _dispatch.backend("cpu").kernels  # the Numba kernels, compared with the references below


def _tol(dtype):
    return dict(rtol=1e-5, atol=1e-6) if dtype == np.float32 else dict(rtol=1e-12, atol=1e-12)


def _distinct(rng, shape, device="cpu"):
    """float64 values at least 0.01 apart, so no finite-difference step of gradcheck changes which one is max."""
    return fastnn.tensor(rng.permutation(math.prod(shape)).reshape(shape) * 0.01, requires_grad=True, device=device)


@st.composite
def window_geometry(draw, spatial, dilated, max_size=7):
    """(input spatial sizes, kernel, stride, padding, dilation, ceil_mode) of a valid max/avg pooling."""
    kernel = tuple(draw(st.integers(1, 3)) for _ in range(spatial))
    stride = tuple(draw(st.integers(1, 3)) for _ in range(spatial))
    padding = tuple(draw(st.integers(0, k // 2)) for k in kernel)
    dilation = tuple(draw(st.integers(1, 2)) if dilated else 1 for _ in range(spatial))
    sizes = tuple(draw(st.integers(max(1, d * (k - 1) + 1 - 2 * p), max_size))
                  for k, p, d in zip(kernel, padding, dilation))
    return sizes, kernel, stride, padding, dilation, draw(st.booleans())


def _out_sizes(sizes, kernel, stride, padding, dilation, ceil_mode):
    return tuple(pool_output_size(n, k, p, s, d, ceil_mode) for n, k, s, p, d in zip(sizes, kernel, stride, padding,
                                                                                  dilation))


# ------------------------------------------------------------------------------------- 3-D kernels


@pytest.mark.parametrize("dtype", DTYPES)
@settings(max_examples=25, deadline=None)
@given(geometry=window_geometry(3, dilated=True), planes=st.integers(1, 3), seed=st.integers(0, 2**16))
def test_max_pool3d_kernel_matches_reference(dtype, geometry, planes, seed):
    sizes, kernel, stride, padding, dilation, ceil_mode = geometry
    out_size = _out_sizes(*geometry)
    rng = np.random.default_rng(seed)
    # Rounded values force ties (the first max in raster order wins); a NaN, when present, wins its windows.
    x = np.round(rng.standard_normal((planes,) + sizes), 1).astype(dtype)
    if seed % 3 == 0:
        x.reshape(-1)[seed % x.size] = np.nan
    args = kernel + stride + padding + dilation + out_size
    out, indices = CPU.max_pool3d_forward(x, *args)
    ref_out, ref_indices = ref_pool_nd.max_pool3d_forward(x, *args)
    np.testing.assert_array_equal(out, ref_out)
    np.testing.assert_array_equal(indices, ref_indices)


@pytest.mark.parametrize("dtype", DTYPES)
@settings(max_examples=25, deadline=None)
@given(geometry=window_geometry(3, dilated=False), count_include_pad=st.booleans(),
       divisor_override=st.sampled_from([0, 1, 5, -2]), planes=st.integers(1, 3), seed=st.integers(0, 2**16))
def test_avg_pool3d_kernels_match_reference(dtype, geometry, count_include_pad, divisor_override, planes, seed):
    sizes, kernel, stride, padding, _, _ = geometry
    out_size = _out_sizes(*geometry)
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((planes,) + sizes).astype(dtype)
    args = kernel + stride + padding
    np.testing.assert_allclose(
        CPU.avg_pool3d_forward(x, *args, *out_size, count_include_pad, divisor_override),
        ref_pool_nd.avg_pool3d_forward(x, *args, *out_size, count_include_pad, divisor_override), **_tol(dtype))
    g = rng.standard_normal((planes,) + out_size).astype(dtype)
    np.testing.assert_allclose(
        CPU.avg_pool3d_backward(g, *sizes, *args, count_include_pad, divisor_override),
        ref_pool_nd.avg_pool3d_backward(g, *sizes, *args, count_include_pad, divisor_override), **_tol(dtype))


@pytest.mark.parametrize("device", DEVICES)
@settings(max_examples=6, deadline=None)
@given(geometry=window_geometry(3, dilated=True, max_size=5), seed=st.integers(0, 2**16))
def test_max_pool3d_gradcheck(device, geometry, seed):
    sizes, kernel, stride, padding, dilation, ceil_mode = geometry
    x = _distinct(np.random.default_rng(seed), (1, 1) + sizes, device)
    assert gradcheck(lambda t: max_pool3d(t, kernel, stride, padding, dilation, ceil_mode), [x])


@pytest.mark.parametrize("device", DEVICES)
@settings(max_examples=6, deadline=None)
@given(geometry=window_geometry(3, dilated=False, max_size=5), count_include_pad=st.booleans(),
       seed=st.integers(0, 2**16))
def test_avg_pool3d_gradcheck(device, geometry, count_include_pad, seed):
    sizes, kernel, stride, padding, _, ceil_mode = geometry
    x = fastnn.tensor(np.random.default_rng(seed).standard_normal((1, 1) + sizes), requires_grad=True,
                      device=device)
    assert gradcheck(lambda t: avg_pool3d(t, kernel, stride, padding, ceil_mode, count_include_pad), [x])


def test_max_pool3d_indices_address_the_whole_volume(device):
    x = np.zeros((1, 1, 2, 3, 4), np.float32)
    x[0, 0, 1, 2, 3] = 5.0
    out, indices = max_pool3d(fastnn.tensor(x, device=device), (2, 3, 4), return_indices=True)
    assert out.item() == 5.0 and indices.item() == (1 * 3 + 2) * 4 + 3 and indices.device == device
    assert indices.dtype == np.int64 and not indices.requires_grad


# ---------------------------------------------------------------------------------------------- 1-D


@pytest.mark.parametrize("device", DEVICES)
@settings(max_examples=10, deadline=None)
@given(geometry=window_geometry(1, dilated=True, max_size=10), count_include_pad=st.booleans(),
       seed=st.integers(0, 2**16))
def test_1d_pooling_is_2d_pooling_at_unit_height_and_gradchecks(device, geometry, count_include_pad, seed):
    (length,), (k,), (s,), (p,), (d,), ceil_mode = geometry
    x = _distinct(np.random.default_rng(seed), (2, 2, length), device)
    x2 = fastnn.tensor(host(x)[:, :, None], device=device)
    out, indices = max_pool1d(x, k, s, p, d, ceil_mode, return_indices=True)
    out2, indices2 = max_pool2d(x2, (1, k), (1, s), (0, p), (1, d), ceil_mode, return_indices=True)
    np.testing.assert_array_equal(host(out), host(out2)[:, :, 0])
    np.testing.assert_array_equal(host(indices), host(indices2)[:, :, 0])
    avg = avg_pool1d(x, k, s, p, ceil_mode, count_include_pad)
    avg2 = avg_pool2d(x2, (1, k), (1, s), (0, p), ceil_mode, count_include_pad)
    np.testing.assert_array_equal(host(avg), host(avg2)[:, :, 0])
    assert gradcheck(lambda t: max_pool1d(t, k, s, p, d, ceil_mode), [x])
    assert gradcheck(lambda t: avg_pool1d(t, k, s, p, ceil_mode, count_include_pad), [x])


# ----------------------------------------------------------------------------------------- adaptive


def test_adaptive_regions_follow_pytorch_rule():
    """Output i pools [floor(i*n/out), ceil((i+1)*n/out)): overlapping when out does not divide n."""
    def bounds(n, out):
        return [(r.start, r.stop) for r in ref_pool_nd.adaptive_regions(n, out)]
    assert bounds(7, 3) == [(0, 3), (2, 5), (4, 7)]
    assert bounds(5, 3) == [(0, 2), (1, 4), (3, 5)]
    assert bounds(3, 5) == [(0, 1), (0, 2), (1, 2), (1, 3), (2, 3)]
    assert bounds(8, 4) == [(0, 2), (2, 4), (4, 6), (6, 8)]
    for n in range(1, 15):
        for out in range(1, 15):
            assert bounds(n, out) == [(math.floor(i * n / out), math.ceil((i + 1) * n / out)) for i in range(out)]


@pytest.mark.parametrize("dtype", DTYPES)
@settings(max_examples=25, deadline=None)
@given(height=st.integers(1, 12), width=st.integers(1, 12), oh=st.integers(1, 14), ow=st.integers(1, 14),
       planes=st.integers(1, 3), seed=st.integers(0, 2**16))
def test_adaptive_kernels_match_reference(dtype, height, width, oh, ow, planes, seed):
    rng = np.random.default_rng(seed)
    x = np.round(rng.standard_normal((planes, height, width)), 1).astype(dtype)
    np.testing.assert_allclose(CPU.adaptive_avg_pool2d_forward(x, oh, ow),
                               ref_pool_nd.adaptive_avg_pool2d_forward(x, oh, ow), **_tol(dtype))
    g = rng.standard_normal((planes, oh, ow)).astype(dtype)
    np.testing.assert_allclose(CPU.adaptive_avg_pool2d_backward(g, height, width),
                               ref_pool_nd.adaptive_avg_pool2d_backward(g, height, width), **_tol(dtype))
    out, indices = CPU.adaptive_max_pool2d_forward(x, oh, ow)
    ref_out, ref_indices = ref_pool_nd.adaptive_max_pool2d_forward(x, oh, ow)
    np.testing.assert_array_equal(out, ref_out)
    np.testing.assert_array_equal(indices, ref_indices)


@pytest.mark.parametrize("device", DEVICES)
@settings(max_examples=8, deadline=None)
@given(height=st.integers(1, 6), width=st.integers(1, 6), oh=st.sampled_from([1, 2, 3, 4, 7, None]),
       ow=st.integers(1, 7), seed=st.integers(0, 2**16))
def test_adaptive_pool2d_gradcheck(device, height, width, oh, ow, seed):
    x = _distinct(np.random.default_rng(seed), (1, 2, height, width), device)
    assert adaptive_avg_pool2d(x, (oh, ow)).shape == (1, 2, oh or height, ow)
    assert gradcheck(lambda t: adaptive_avg_pool2d(t, (oh, ow)), [x])
    assert gradcheck(lambda t: adaptive_max_pool2d(t, (oh, ow)), [x])


@pytest.mark.parametrize("device", DEVICES)
@settings(max_examples=8, deadline=None)
@given(length=st.integers(1, 9), out=st.integers(1, 10), seed=st.integers(0, 2**16))
def test_adaptive_pool1d_is_2d_at_unit_height_and_gradchecks(device, length, out, seed):
    x = _distinct(np.random.default_rng(seed), (2, 3, length), device)
    x2 = fastnn.tensor(host(x)[:, :, None], device=device)
    np.testing.assert_array_equal(host(adaptive_avg_pool1d(x, out)), host(adaptive_avg_pool2d(x2, (1, out)))[:, :, 0])
    values, indices = adaptive_max_pool1d(x, (out,), return_indices=True)
    values2, indices2 = adaptive_max_pool2d(x2, (1, out), return_indices=True)
    np.testing.assert_array_equal(host(values), host(values2)[:, :, 0])
    np.testing.assert_array_equal(host(indices), host(indices2)[:, :, 0])
    assert gradcheck(lambda t: adaptive_avg_pool1d(t, out), [x])
    assert gradcheck(lambda t: adaptive_max_pool1d(t, out), [x])


def test_adaptive_avg_pool_with_divisible_sizes_is_avg_pool(device):
    x = fastnn.randn(2, 3, 12, 8, device=device)
    np.testing.assert_allclose(host(adaptive_avg_pool2d(x, (4, 2))), host(avg_pool2d(x, (3, 4))), rtol=1e-6)
    np.testing.assert_array_equal(host(adaptive_max_pool2d(x, (4, 2))), host(max_pool2d(x, (3, 4))))


def test_global_average_pooling_is_a_mean(device):
    data = np.random.default_rng(5).standard_normal((2, 3, 5, 7))
    x = fastnn.tensor(data, requires_grad=True, device=device)
    out = adaptive_avg_pool2d(x, 1)
    assert out.shape == (2, 3, 1, 1)
    np.testing.assert_allclose(host(out), data.mean(axis=(2, 3), keepdims=True), rtol=1e-12)
    np.testing.assert_allclose(host(nn.AdaptiveAvgPool2d((1, 1))(x)), host(out), rtol=0)
    flat = nn.GlobalAvgPool2d()(x)
    assert flat.shape == (2, 3) and nn.GlobalAvgPool2d(flatten=False)(x).shape == (2, 3, 1, 1)
    flat.sum().backward()
    np.testing.assert_allclose(host(x.grad), np.full(x.shape, 1 / 35), rtol=1e-12)


def test_adaptive_max_pool_propagates_nan(device):
    x = np.arange(16, dtype=np.float32).reshape(1, 1, 4, 4)
    x[0, 0, 1, 0] = np.nan
    out, indices = adaptive_max_pool2d(fastnn.tensor(x, device=device), 2, return_indices=True)
    out, indices = host(out), host(indices)
    assert np.isnan(out[0, 0, 0, 0]) and indices[0, 0, 0, 0] == 4
    np.testing.assert_array_equal(out[0, 0, 1], [13, 15])


# --------------------------------------------------------------------------------------- fractional


@pytest.mark.parametrize("dtype", DTYPES)
@settings(max_examples=20, deadline=None)
@given(height=st.integers(2, 20), width=st.integers(2, 20), kh=st.integers(1, 3), kw=st.integers(1, 3),
       data=st.data(), planes=st.integers(1, 3), seed=st.integers(0, 2**16))
def test_fractional_kernel_matches_reference(dtype, height, width, kh, kw, data, planes, seed):
    kh, kw = min(kh, height), min(kw, width)
    oh = data.draw(st.integers(1, height - kh + 1))
    ow = data.draw(st.integers(1, width - kw + 1))
    rng = np.random.default_rng(seed)
    x = np.round(rng.standard_normal((planes, height, width)), 1).astype(dtype)
    samples = rng.random((planes, 2)).astype(dtype)
    out, indices = CPU.fractional_max_pool2d_forward(x, samples, kh, kw, oh, ow)
    ref_out, ref_indices = ref_pool_nd.fractional_max_pool2d_forward(x, samples, kh, kw, oh, ow)
    np.testing.assert_array_equal(out, ref_out)
    np.testing.assert_array_equal(indices, ref_indices)


@settings(max_examples=200, deadline=None)
@given(size=st.integers(2, 40), k=st.integers(1, 4), data=st.data(),
       u=st.floats(0, 1, exclude_max=True))
def test_fractional_regions_are_graham_sequences(size, k, data, u):
    """Starts run from 0 to size - k in steps of floor(alpha) or ceil(alpha), alpha = (size - k)/(out - 1); the
    windows cover the input whenever alpha <= k (e.g. 2x2 windows at any ratio >= 1/2)."""
    k = min(k, size)
    out = data.draw(st.integers(2, size - k + 1)) if size - k >= 1 else 1
    starts = ref_pool_nd.fractional_starts(np.float64(u), size, out, k)
    assert starts[-1] == size - k
    if out == 1:
        return
    alpha = (size - k) / (out - 1)
    steps = np.diff(starts)
    assert starts[0] == 0
    assert set(steps.tolist()) <= {math.floor(alpha), math.ceil(alpha)}
    covered = np.zeros(size, bool)
    for s in starts:
        covered[s:s + k] = True
    assert covered.all() == (alpha <= k)


@pytest.mark.parametrize("device", DEVICES)
@settings(max_examples=6, deadline=None)
@given(height=st.integers(3, 7), width=st.integers(3, 7), k=st.integers(1, 3), seed=st.integers(0, 2**16))
def test_fractional_outputs_are_region_maxima_and_gradcheck(device, height, width, k, seed):
    rng = np.random.default_rng(seed)
    x = _distinct(rng, (2, 1, height, width), device)
    oh, ow = max(1, (height - k + 1) * 2 // 3), width - k + 1
    samples = rng.random((2, 1, 2))
    out, indices = fractional_max_pool2d(x, k, (oh, ow), return_indices=True, _random_samples=samples)
    assert out.shape == indices.shape == (2, 1, oh, ow)
    out, indices = host(out), host(indices)
    for n, c in np.ndindex(2, 1):
        rows = ref_pool_nd.fractional_starts(samples[n, c, 1], height, oh, k)
        cols = ref_pool_nd.fractional_starts(samples[n, c, 0], width, ow, k)
        plane = host(x)[n, c]
        for i, j in np.ndindex(oh, ow):
            region = plane[rows[i]:rows[i] + k, cols[j]:cols[j] + k]
            assert region.shape == (k, k)
            y, x_ = divmod(int(indices[n, c, i, j]), width)
            assert rows[i] <= y < rows[i] + k and cols[j] <= x_ < cols[j] + k
            assert out[n, c, i, j] == plane[y, x_] == region.max()
    assert gradcheck(lambda t: fractional_max_pool2d(t, k, (oh, ow), _random_samples=samples), [x])


def test_fractional_output_size_from_ratio(device):
    x = fastnn.randn(2, 3, 25, 17, device=device)
    assert fractional_max_pool2d(x, 2, output_ratio=0.5).shape == (2, 3, 12, 8)
    assert fractional_max_pool2d(x, (3, 2), output_ratio=(0.7, 0.5)).shape == (2, 3, 17, 8)
    assert nn.FractionalMaxPool2d(2, output_size=(10, 6))(x).shape == (2, 3, 10, 6)
    out, indices = nn.FractionalMaxPool2d(3, output_ratio=0.6, return_indices=True)(x[0])
    assert out.shape == indices.shape == (3, 15, 10)


def test_fractional_regions_are_reproducible_with_a_seed(device):
    data = fastnn.randn(4, 8, 20, 20).numpy()
    x = fastnn.tensor(data, device=device)
    fastnn.manual_seed(7)
    first = host(fractional_max_pool2d(x, 2, output_ratio=0.6, return_indices=True)[1])
    fastnn.manual_seed(7)
    again = host(fractional_max_pool2d(x, 2, output_ratio=0.6, return_indices=True)[1])
    fresh = host(fractional_max_pool2d(x, 2, output_ratio=0.6, return_indices=True)[1])
    np.testing.assert_array_equal(first, again)
    assert not np.array_equal(first, fresh)
    generated = [host(fractional_max_pool2d(x, 2, output_ratio=0.6, return_indices=True,
                                            generator=np.random.default_rng(3))[1]) for _ in range(2)]
    np.testing.assert_array_equal(*generated)
    fixed = nn.FractionalMaxPool2d(2, output_ratio=0.6, _random_samples=np.full((4, 8, 2), 0.25))
    np.testing.assert_array_equal(host(fixed(x)), host(fixed(x)))
    # Every device draws from fastnn's seeded generator: one seed, the same regions on each.
    fastnn.manual_seed(7)
    on_cpu = fractional_max_pool2d(fastnn.tensor(data), 2, output_ratio=0.6, return_indices=True)[1]
    np.testing.assert_array_equal(first, host(on_cpu))


def test_fractional_pool_propagates_nan(device):
    x = np.arange(25, dtype=np.float64).reshape(1, 1, 5, 5)
    x[0, 0, 0, 0] = np.nan
    out = host(fractional_max_pool2d(fastnn.tensor(x, device=device), 2, 2, _random_samples=np.zeros((1, 1, 2))))
    assert np.isnan(out[0, 0, 0, 0]) and not np.isnan(out[0, 0, 1, 1])


# ------------------------------------------------------------------------------------ errors, layers


@pytest.mark.parametrize("call, error, match", [
    (lambda: max_pool1d(fastnn.randn(2, 3, 4, 5), 2), ValueError, r"3-D input .* shape \(2, 3, 4, 5\)"),
    (lambda: max_pool1d(fastnn.randn(1, 2, 5), 2, padding=2), ValueError, "half of kernel size"),
    (lambda: avg_pool1d(fastnn.randn(1, 2, 5), 6), ValueError, "too small"),
    (lambda: max_pool3d(fastnn.randn(2, 4, 4), 2), ValueError, "5-D input"),
    (lambda: max_pool3d(fastnn.randn(1, 1, 4, 4, 4), (2, 2)), TypeError, "kernel_size"),
    (lambda: max_pool3d(fastnn.randn(1, 1, 4, 4, 4), 2, stride=-1), ValueError, "stride"),
    (lambda: max_pool3d(fastnn.tensor(np.ones((1, 1, 2, 2, 2), np.int32)), 2), TypeError, "int32"),
    (lambda: avg_pool3d(fastnn.randn(1, 1, 4, 4, 4), 2, divisor_override=0), ValueError, "non-zero"),
    (lambda: avg_pool3d(fastnn.randn(1, 1, 4, 4, 4), 2, divisor_override=2.0), TypeError, "divisor_override"),
    (lambda: adaptive_avg_pool2d(fastnn.randn(1, 2, 4, 4), (2, 2, 2)), TypeError, "output_size"),
    (lambda: adaptive_avg_pool2d(fastnn.randn(1, 2, 4, 4), 0), ValueError, "output_size"),
    (lambda: adaptive_max_pool2d(np.ones((1, 2, 4, 4)), 2), TypeError, "Tensor"),
    (lambda: adaptive_avg_pool1d(fastnn.randn(1, 0, 4), 2), ValueError, "non-zero"),
    (lambda: fractional_max_pool2d(fastnn.randn(1, 1, 6, 6), 2), ValueError, "output_size or an output_ratio"),
    (lambda: fractional_max_pool2d(fastnn.randn(1, 1, 6, 6), 3, 5), ValueError, "too large"),
    (lambda: fractional_max_pool2d(fastnn.randn(1, 1, 6, 6), 2, output_ratio=0.1), ValueError, "empty"),
    (lambda: fractional_max_pool2d(fastnn.randn(2, 3, 6, 6), 2, 3, _random_samples=np.zeros((1, 3, 2))),
     ValueError, r"\(2, 3, 2\)"),
    (lambda: fractional_max_pool2d(fastnn.randn(1, 1, 6, 6), 2, 3, _random_samples=np.full((1, 1, 2), 1.5)),
     ValueError, r"\[0, 1\]"),
    (lambda: nn.FractionalMaxPool2d(2), ValueError, "either an output size"),
    (lambda: nn.FractionalMaxPool2d(2, output_size=3, output_ratio=0.5), ValueError, "only one"),
    (lambda: nn.FractionalMaxPool2d(2, output_ratio=1.5), ValueError, "between 0 and 1"),
])
def test_invalid_arguments_raise_clear_errors(call, error, match):
    with pytest.raises(error, match=match):
        call()


def test_layers_run_their_functional_forms(device):
    x1, x2, x3 = (fastnn.randn(*shape, device=device) for shape in ((2, 3, 9), (3, 6, 7), (2, 3, 4, 6, 6)))
    out, indices = nn.MaxPool1d(3, stride=2, padding=1, return_indices=True)(x1)
    np.testing.assert_array_equal(host(out), host(max_pool1d(x1, 3, 2, 1)))
    assert indices.shape == out.shape == (2, 3, 5) and out.device == indices.device == device
    np.testing.assert_array_equal(host(nn.AvgPool1d(2)(x1)), host(avg_pool1d(x1, 2)))
    np.testing.assert_array_equal(host(nn.MaxPool3d(2, ceil_mode=True)(x3)), host(max_pool3d(x3, 2, ceil_mode=True)))
    np.testing.assert_array_equal(host(nn.AvgPool3d(3, 1, 1, divisor_override=2)(x3)),
                                  host(avg_pool3d(x3, 3, 1, 1, divisor_override=2)))
    np.testing.assert_array_equal(host(nn.AdaptiveAvgPool1d(4)(x1)), host(adaptive_avg_pool1d(x1, 4)))
    assert nn.AdaptiveMaxPool1d(4, return_indices=True)(x1)[1].shape == (2, 3, 4)
    assert nn.AdaptiveMaxPool2d((None, 2))(x2).shape == (3, 6, 2)
    assert nn.AdaptiveAvgPool2d(5)(x2).shape == (3, 5, 5)


def test_layer_reprs_follow_pytorch():
    assert repr(nn.MaxPool1d(3, 2)) == "MaxPool1d(kernel_size=3, stride=2, padding=0, dilation=1, ceil_mode=False)"
    assert repr(nn.MaxPool3d(2)) == "MaxPool3d(kernel_size=2, stride=2, padding=0, dilation=1, ceil_mode=False)"
    assert repr(nn.AvgPool1d(4)) == "AvgPool1d(kernel_size=4, stride=4, padding=0)"
    assert repr(nn.AvgPool3d((1, 2, 2), padding=(0, 1, 1))) == \
        "AvgPool3d(kernel_size=(1, 2, 2), stride=(1, 2, 2), padding=(0, 1, 1))"
    assert repr(nn.AdaptiveAvgPool2d(5)) == "AdaptiveAvgPool2d(output_size=5)"
    assert repr(nn.AdaptiveMaxPool1d(3)) == "AdaptiveMaxPool1d(output_size=3)"


@pytest.mark.parametrize("layer, name, shape", [
    (lambda: nn.MaxPool1d(2), "max_pool1d", (1, 2, 6)),
    (lambda: nn.MaxPool2d(2), "max_pool2d", (1, 2, 6, 6)),
    (lambda: nn.MaxPool3d(2), "max_pool3d", (1, 2, 4, 4, 4)),
    (lambda: nn.AvgPool1d(2), "avg_pool1d", (1, 2, 6)),
    (lambda: nn.AvgPool2d(2), "avg_pool2d", (1, 2, 6, 6)),
    (lambda: nn.AvgPool3d(2), "avg_pool3d", (1, 2, 4, 4, 4)),
    (lambda: nn.AdaptiveAvgPool1d(3), "adaptive_avg_pool1d", (1, 2, 6)),
    (lambda: nn.AdaptiveAvgPool2d(3), "adaptive_avg_pool2d", (1, 2, 6, 6)),
    (lambda: nn.GlobalAvgPool2d(), "adaptive_avg_pool2d", (1, 2, 6, 6)),
    (lambda: nn.AdaptiveMaxPool1d(3), "adaptive_max_pool1d", (1, 2, 6)),
    (lambda: nn.AdaptiveMaxPool2d(3), "adaptive_max_pool2d", (1, 2, 6, 6)),
    (lambda: nn.FractionalMaxPool2d(2, output_size=3), "fractional_max_pool2d", (1, 2, 6, 6)),
])
def test_layers_are_thin_over_nn_functional(monkeypatch, layer, name, shape):
    """Each pooling layer's forward is its F function (as in PyTorch), so patching F reaches the layer."""
    calls, original = [], getattr(F, name)
    monkeypatch.setattr(F, name, lambda *args, **kwargs: calls.append(name) or original(*args, **kwargs))
    layer()(fastnn.randn(*shape))
    assert calls == [name]

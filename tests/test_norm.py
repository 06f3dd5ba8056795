"""Normalisation: kernels against NumPy references, gradients against finite differences, layer semantics
(running statistics, eval mode, state_dict keys), conv+bn fusion and the error cases."""
from collections import OrderedDict

import numba
import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

import fastnn
import fastnn.nn.functional as F
from fastnn import nn
from fastnn import _dispatch
from fastnn._kernels import ref_norm
from fastnn.autograd import gradcheck
from fastnn.nn.utils import fuse_conv_bn, fuse_conv_bn_modules

from conftest import DEVICES, host

cpu_norm = _dispatch.backend("cpu").kernels  # the kernels under test, as the ops reach them

seeds = st.integers(0, 2 ** 32 - 1)
dtypes = st.sampled_from([np.float32, np.float64])
channel_shapes = st.tuples(st.integers(1, 5), st.integers(1, 4), st.integers(1, 7))  # (N, C, S)


def randn(shape, seed, dtype=np.float64, loc=0.0, scale=1.0):
    return (np.random.default_rng(seed).standard_normal(shape) * scale + loc).astype(dtype)


def leaf(array, device="cpu"):
    return fastnn.tensor(array, requires_grad=True, device=device)


def tolerance(dtype):
    return {"rtol": 1e-5, "atol": 1e-5} if dtype == np.float32 else {"rtol": 1e-10, "atol": 1e-12}


def assert_all_close(actual, expected, dtype):
    for a, e in zip(actual, expected):
        np.testing.assert_allclose(a, e, **tolerance(dtype))


# ---- kernels against the NumPy references ---------------------------------------------------------------

@given(shape=channel_shapes, dtype=dtypes, seed=seeds)
@settings(max_examples=15, deadline=None)
def test_batch_norm_kernels_match_reference(shape, dtype, seed):
    x = randn(shape, seed, dtype, loc=3.0, scale=2.0)
    weight, bias = randn(shape[1], seed + 1, dtype), randn(shape[1], seed + 2, dtype)
    grad_out = randn(shape, seed + 3, dtype)
    forward = cpu_norm.batch_norm_forward(x, weight, bias, 1e-5)
    assert forward[0].dtype == dtype
    assert_all_close(forward, ref_norm.batch_norm_forward(x, weight, bias, 1e-5), dtype)
    mean, invstd = forward[1], 1.0 / np.sqrt(forward[2] + 1e-5)
    assert_all_close([cpu_norm.batch_norm_apply(x, mean, invstd, weight, bias)],
                     [ref_norm.batch_norm_apply(x, mean, invstd, weight, bias)], dtype)
    for batch_stats in (True, False):
        assert_all_close(cpu_norm.batch_norm_backward(grad_out, x, mean, invstd, weight, batch_stats),
                         ref_norm.batch_norm_backward(grad_out, x, mean, invstd, weight, batch_stats), dtype)


@given(rows=st.integers(1, 70), width=st.integers(1, 9), dtype=dtypes, seed=seeds)
@settings(max_examples=15, deadline=None)
def test_layer_norm_kernels_match_reference(rows, width, dtype, seed):
    x = randn((rows, width), seed, dtype, loc=-2.0)
    weight, bias = randn(width, seed + 1, dtype), randn(width, seed + 2, dtype)
    grad_out = randn((rows, width), seed + 3, dtype)
    forward = cpu_norm.layer_norm_forward(x, weight, bias, 1e-5)
    assert_all_close(forward, ref_norm.layer_norm_forward(x, weight, bias, 1e-5), dtype)
    mean, invstd = forward[1], forward[2]
    assert_all_close(cpu_norm.layer_norm_backward(grad_out, x, mean, invstd, weight),
                     ref_norm.layer_norm_backward(grad_out, x, mean, invstd, weight), dtype)


@pytest.mark.parametrize("shape", [(5, 11, 700), (1, 3, 12000), (300, 130, 1)])
def test_parallel_kernels_match_reference(shape):
    # Sizes past the serial twins' threshold, so the parallel kernels run (the hypothesis tests above reach only
    # the serial twins): row counts that split unevenly into batch_norm_apply's blocks or are fewer, one sample,
    # one element per row, fewer layer-norm rows than chunks.
    from fastnn._kernels.cpu import SERIAL_BELOW
    assert np.prod(shape) >= SERIAL_BELOW
    x = randn(shape, 0, np.float32, loc=3.0, scale=2.0)
    weight, bias, grad_out = randn(shape[1], 1, np.float32), randn(shape[1], 2, np.float32), randn(shape, 3, np.float32)
    forward = cpu_norm.batch_norm_forward(x, weight, bias, 1e-5)
    assert_all_close(forward, ref_norm.batch_norm_forward(x, weight, bias, 1e-5), np.float32)
    mean, invstd = forward[1], 1.0 / np.sqrt(forward[2] + 1e-5)
    assert_all_close([cpu_norm.batch_norm_apply(x, mean, invstd, weight, bias)],
                     [ref_norm.batch_norm_apply(x, mean, invstd, weight, bias)], np.float32)
    assert_all_close(cpu_norm.batch_norm_backward(grad_out, x, mean, invstd, weight, True),
                     ref_norm.batch_norm_backward(grad_out, x, mean, invstd, weight, True), np.float32)
    rows, row_grad = x.reshape(shape[0], -1), grad_out.reshape(shape[0], -1)
    row_weight, row_bias = randn(rows.shape[1], 4, np.float32), randn(rows.shape[1], 5, np.float32)
    ln = cpu_norm.layer_norm_forward(rows, row_weight, row_bias, 1e-5)
    assert_all_close(ln, ref_norm.layer_norm_forward(rows, row_weight, row_bias, 1e-5), np.float32)
    assert_all_close(cpu_norm.layer_norm_backward(row_grad, rows, ln[1], ln[2], row_weight),
                     ref_norm.layer_norm_backward(row_grad, rows, ln[1], ln[2], row_weight), np.float32)


@given(shape=st.tuples(st.integers(1, 3), st.integers(1, 8), st.integers(1, 5)), size=st.integers(1, 6),
       dtype=dtypes, seed=seeds)
@settings(max_examples=15, deadline=None)
def test_local_response_norm_kernels_match_reference(shape, size, dtype, seed):
    x, grad_out = randn(shape, seed, dtype), randn(shape, seed + 1, dtype)
    scalars = (dtype(0.3), dtype(0.75), dtype(1.5))
    y, base = cpu_norm.local_response_norm_forward(x, size, *scalars)
    assert_all_close((y, base), ref_norm.local_response_norm_forward(x, size, *scalars), dtype)
    assert_all_close([cpu_norm.local_response_norm_backward(grad_out, x, y, base, size, *scalars[:2])],
                     [ref_norm.local_response_norm_backward(grad_out, x, y, base, size, *scalars[:2])], dtype)


def test_kernels_are_bit_identical_across_runs_and_thread_counts():
    x = randn((16, 8, 300), 0, np.float32, loc=5.0)
    rows = x.reshape(128, 300)
    weight, bias = randn(8, 1, np.float32), randn(8, 2, np.float32)
    row_weight, row_bias = randn(300, 3, np.float32), randn(300, 4, np.float32)
    grad_out = randn(x.shape, 5, np.float32)

    def run():
        y, mean, var = cpu_norm.batch_norm_forward(x, weight, bias, 1e-5)
        invstd = 1.0 / np.sqrt(var + 1e-5)
        ln = cpu_norm.layer_norm_forward(rows, row_weight, row_bias, 1e-5)
        return ((y, mean, var) + cpu_norm.batch_norm_backward(grad_out, x, mean, invstd, weight, True) + ln
                + cpu_norm.layer_norm_backward(grad_out.reshape(rows.shape), rows, ln[1], ln[2], row_weight))
    threads = numba.get_num_threads()
    first = run()
    try:
        numba.set_num_threads(1)
        single = run()
    finally:
        numba.set_num_threads(threads)
    for a, b, c in zip(first, run(), single):
        assert np.array_equal(a, b) and np.array_equal(a, c)


def test_float32_statistics_survive_a_large_offset():
    # Float64 accumulation and centred second pass: a one-pass float32 E[x^2] - E[x]^2 would lose the variance.
    x = randn((64, 2, 100), 0, np.float64, loc=1e4, scale=0.01)
    y, mean, var = cpu_norm.batch_norm_forward(x.astype(np.float32), np.ones(2, np.float32), np.zeros(2, np.float32),
                                               0.0)
    x32 = x.astype(np.float32).astype(np.float64)
    np.testing.assert_allclose(var, x32.var(axis=(0, 2)), rtol=1e-6)
    np.testing.assert_allclose(y.std(axis=(0, 2)), 1.0, rtol=2e-3)


# ---- gradients against finite differences (float64) -----------------------------------------------------

@pytest.mark.parametrize("device", DEVICES)
@given(shape=st.tuples(st.integers(2, 3), st.integers(1, 3), st.integers(1, 4)), training=st.booleans(),
       seed=seeds)
@settings(max_examples=8, deadline=None)
def test_batch_norm_gradcheck(device, shape, training, seed):
    x = leaf(randn(shape, seed, loc=1.0, scale=2.0), device)
    weight, bias = leaf(randn(shape[1], seed + 1), device), leaf(randn(shape[1], seed + 2), device)
    running_mean = fastnn.tensor(randn(shape[1], seed + 3), device=device)
    running_var = fastnn.tensor(np.abs(randn(shape[1], seed + 4)) + 0.5, device=device)
    assert gradcheck(lambda a, w, b: F.batch_norm(a, running_mean, running_var, w, b, training, 0.0, 1e-5),
                     (x, weight, bias))


@pytest.mark.parametrize("device", DEVICES)
@given(shape=st.tuples(st.integers(1, 3), st.integers(1, 3), st.integers(2, 5)), affine=st.booleans(),
       seed=seeds)
@settings(max_examples=6, deadline=None)
def test_instance_norm_gradcheck(device, shape, affine, seed):
    x = leaf(randn(shape, seed), device)
    params = (leaf(randn(shape[1], seed + 1), device), leaf(randn(shape[1], seed + 2), device)) if affine else ()
    assert gradcheck(lambda a, *p: F.instance_norm(a, None, None, *p), (x,) + params)


@pytest.mark.parametrize("device", DEVICES)
@given(n=st.integers(1, 2), groups=st.integers(1, 3), per_group=st.integers(1, 2), size=st.integers(1, 4),
       seed=seeds)
@settings(max_examples=8, deadline=None)
def test_group_norm_gradcheck(device, n, groups, per_group, size, seed):
    channels = groups * per_group
    x = leaf(randn((n, channels, size), seed), device)
    weight, bias = leaf(randn(channels, seed + 1), device), leaf(randn(channels, seed + 2), device)
    assert gradcheck(lambda a, w, b: F.group_norm(a, groups, w, b), (x, weight, bias))
    assert gradcheck(lambda a: F.group_norm(a, groups), (x,))


@pytest.mark.parametrize("device", DEVICES)
@given(lead=st.integers(1, 4), normalized_shape=st.sampled_from([(3,), (2, 3), (5,)]), seed=seeds)
@settings(max_examples=8, deadline=None)
def test_layer_norm_gradcheck(device, lead, normalized_shape, seed):
    x = leaf(randn((lead,) + normalized_shape, seed, loc=-1.0), device)
    weight, bias = leaf(randn(normalized_shape, seed + 1), device), leaf(randn(normalized_shape, seed + 2), device)
    assert gradcheck(lambda a, w, b: F.layer_norm(a, normalized_shape, w, b), (x, weight, bias))
    assert gradcheck(lambda a: F.layer_norm(a, normalized_shape), (x,))


@pytest.mark.parametrize("device", DEVICES)
@given(shape=st.tuples(st.integers(1, 2), st.integers(1, 6), st.integers(1, 3)), size=st.integers(1, 5),
       seed=seeds)
@settings(max_examples=8, deadline=None)
def test_local_response_norm_gradcheck(device, shape, size, seed):
    x = leaf(randn(shape + (2,), seed, scale=2.0), device)
    assert gradcheck(lambda a: F.local_response_norm(a, size, alpha=0.5, beta=0.75, k=1.0), (x,))


# ---- forward semantics ----------------------------------------------------------------------------------

def lrn_by_definition(x, size, alpha, beta, k):
    """PyTorch's formula written out: average of x^2 over the window [c - size//2, c + (size-1)//2]."""
    out = np.empty_like(x)
    for c in range(x.shape[1]):
        window = x[:, max(c - size // 2, 0):c + (size - 1) // 2 + 1]
        out[:, c] = x[:, c] / (k + alpha * np.sum(window ** 2, axis=1) / size) ** beta
    return out


@pytest.mark.parametrize("shape", [(2, 7, 3), (2, 5, 3, 4)])
@pytest.mark.parametrize("size", [1, 2, 3, 4])
def test_local_response_norm_matches_definition(shape, size, device):
    x = randn(shape, 0)
    out = nn.LocalResponseNorm(size, alpha=0.2, beta=0.6, k=2.0)(fastnn.tensor(x, device=device))
    np.testing.assert_allclose(host(out), lrn_by_definition(x, size, 0.2, 0.6, 2.0), rtol=1e-12)


def test_layer_group_instance_norm_match_numpy(device):
    x = randn((3, 6, 4, 5), 0, loc=2.0)
    xt, x0 = fastnn.tensor(x, device=device), fastnn.tensor(x[0], device=device)

    def standardize(a, axes):
        return (a - a.mean(axis=axes, keepdims=True)) / np.sqrt(a.var(axis=axes, keepdims=True) + 1e-5)
    ln = nn.LayerNorm((4, 5), dtype="float64")
    ln.weight.data[...] = randn((4, 5), 1)
    ln.bias.data[...] = randn((4, 5), 2)
    np.testing.assert_allclose(host(ln.to(device)(xt)),
                               standardize(x, (2, 3)) * host(ln.weight) + host(ln.bias), rtol=1e-10, atol=1e-12)
    gn = nn.GroupNorm(3, 6, dtype="float64")
    gn.weight.data[...] = randn(6, 3)
    gn.bias.data[...] = randn(6, 4)
    grouped = standardize(x.reshape(3, 3, 2, 4, 5), (2, 3, 4)).reshape(x.shape)
    w, b = host(gn.weight), host(gn.bias)
    np.testing.assert_allclose(host(gn.to(device)(xt)), grouped * w[:, None, None] + b[:, None, None], rtol=1e-10,
                               atol=1e-12)
    inorm = nn.InstanceNorm2d(6, dtype="float64").to(device)
    np.testing.assert_allclose(host(inorm(xt)), standardize(x, (2, 3)), rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(host(inorm(x0)), standardize(x[0], (1, 2)), rtol=1e-10, atol=1e-12)


def batch_stats(x):
    axes = (0,) + tuple(range(2, x.ndim))
    return x.mean(axis=axes), x.var(axis=axes), x.var(axis=axes, ddof=1)


@pytest.mark.parametrize("layer, shape", [(nn.BatchNorm1d, (16, 3)), (nn.BatchNorm1d, (8, 3, 5)),
                                          (nn.BatchNorm2d, (8, 3, 4, 5))])
def test_batch_norm_training_normalizes_and_tracks_running_stats(layer, shape, device):
    bn = layer(3, momentum=0.3).to(device)
    running_mean, running_var = np.zeros(3), np.ones(3)
    for step in range(3):
        x = randn(shape, step, np.float32, loc=step + 1.0, scale=3.0)
        out = host(bn(fastnn.tensor(x, device=device)))
        mean, _, unbiased = batch_stats(x.astype(np.float64))
        np.testing.assert_allclose(batch_stats(out.astype(np.float64))[0], 0, atol=1e-5)
        np.testing.assert_allclose(batch_stats(out.astype(np.float64))[1], 1, rtol=1e-3)
        running_mean = 0.7 * running_mean + 0.3 * mean
        running_var = 0.7 * running_var + 0.3 * unbiased
    np.testing.assert_allclose(host(bn.running_mean), running_mean, rtol=1e-5)
    np.testing.assert_allclose(host(bn.running_var), running_var, rtol=1e-5)
    assert bn.num_batches_tracked.item() == 3 and bn.num_batches_tracked.dtype == np.int64

    bn.eval()
    x = randn(shape, 9, np.float32)
    weight, bias = np.array([2.0, -1.0, 0.5], np.float32), np.array([0.1, 0.2, 0.3], np.float32)
    bn.weight.data[...] = bn.weight._backend.asarray(weight)
    bn.bias.data[...] = bn.bias._backend.asarray(bias)
    expand = (slice(None),) + (None,) * (len(shape) - 2)
    before = host(bn.running_mean).copy()
    expected = ((x - before[expand]) / np.sqrt(host(bn.running_var)[expand] + 1e-5) * weight[expand] + bias[expand])
    np.testing.assert_allclose(host(bn(fastnn.tensor(x, device=device))), expected, rtol=1e-5, atol=1e-6)
    assert np.array_equal(host(bn.running_mean), before) and bn.num_batches_tracked.item() == 3


def test_batch_norm_momentum_none_is_a_cumulative_average():
    bn = nn.BatchNorm2d(2, momentum=None, dtype="float64")
    batches = [randn((4, 2, 3, 3), seed, loc=seed) for seed in range(4)]
    for x in batches:
        bn(fastnn.tensor(x))
    np.testing.assert_allclose(bn.running_mean.data, np.mean([batch_stats(x)[0] for x in batches], axis=0))
    np.testing.assert_allclose(bn.running_var.data, np.mean([batch_stats(x)[2] for x in batches], axis=0))


def test_batch_norm_without_running_stats_or_affine():
    x = randn((6, 2, 3, 3), 0, np.float32, loc=4.0)
    bn = nn.BatchNorm2d(2, affine=False, track_running_stats=False).eval()
    assert bn.weight is None and bn.running_mean is None and list(bn.state_dict()) == []
    mean, var, _ = batch_stats(x)
    expected = (x - mean[:, None, None]) / np.sqrt(var[:, None, None] + 1e-5)
    np.testing.assert_allclose(bn(fastnn.tensor(x)).data, expected, rtol=1e-4, atol=1e-5)


def test_batch_norm_layer_gradients_reach_parameters(device):
    bn = nn.BatchNorm2d(3, dtype="float64").to(device)
    x = leaf(randn((4, 3, 2, 2), 0), device)
    bn(x).sum().backward()
    np.testing.assert_allclose(host(bn.bias.grad), 16.0)
    np.testing.assert_allclose(host(bn.weight.grad), 0.0, atol=1e-12)  # sum of a normalised channel
    np.testing.assert_allclose(host(x.grad), 0.0, atol=1e-12)


def test_instance_norm_running_stats_average_the_instances(device):
    inorm = nn.InstanceNorm2d(2, momentum=0.5, affine=True, track_running_stats=True, dtype="float64").to(device)
    x = randn((3, 2, 4, 4), 0, loc=2.0)
    inorm(fastnn.tensor(x, device=device))
    per_instance = x.reshape(3, 2, 16)
    mean, var = host(inorm.running_mean), host(inorm.running_var)
    np.testing.assert_allclose(mean, 0.5 * per_instance.mean(axis=2).mean(axis=0))
    np.testing.assert_allclose(var, 0.5 + 0.5 * per_instance.var(axis=2, ddof=1).mean(axis=0))
    inorm.eval()
    expected = ((x - mean[:, None, None]) / np.sqrt(var[:, None, None] + 1e-5))
    np.testing.assert_allclose(host(inorm(fastnn.tensor(x, device=device))), expected, rtol=1e-10)


def test_state_dict_keys_match_pytorch():
    assert list(nn.BatchNorm2d(4).state_dict()) == ["weight", "bias", "running_mean", "running_var",
                                                    "num_batches_tracked"]
    assert nn.BatchNorm1d(4).state_dict()["num_batches_tracked"].dtype == np.int64
    assert list(nn.BatchNorm2d(4, track_running_stats=False).state_dict()) == ["weight", "bias"]
    assert list(nn.BatchNorm2d(4, affine=False).state_dict()) == ["running_mean", "running_var",
                                                                  "num_batches_tracked"]
    assert list(nn.InstanceNorm2d(4).state_dict()) == []
    assert list(nn.InstanceNorm2d(4, affine=True, track_running_stats=True).state_dict()) == [
        "weight", "bias", "running_mean", "running_var", "num_batches_tracked"]
    assert list(nn.LayerNorm(4).state_dict()) == ["weight", "bias"]
    assert list(nn.LayerNorm(4, bias=False).state_dict()) == ["weight"]
    assert list(nn.GroupNorm(2, 4).state_dict()) == ["weight", "bias"]
    assert list(nn.LocalResponseNorm(3).state_dict()) == []
    model = nn.Sequential(nn.Conv2d(1, 2, 3), nn.BatchNorm2d(2))
    assert list(model.state_dict())[2:] == ["1.weight", "1.bias", "1.running_mean", "1.running_var",
                                            "1.num_batches_tracked"]
    model.double()
    assert model[1].num_batches_tracked.dtype == np.int64 and model[1].running_var.dtype == np.float64


def test_repr_matches_pytorch():
    assert repr(nn.BatchNorm2d(8)) == "BatchNorm2d(8, eps=1e-05, momentum=0.1, affine=True, track_running_stats=True)"
    assert repr(nn.LayerNorm(4)) == "LayerNorm((4,), eps=1e-05, elementwise_affine=True)"
    assert repr(nn.GroupNorm(2, 4)) == "GroupNorm(2, 4, eps=1e-05, affine=True)"
    assert repr(nn.LocalResponseNorm(5)) == "LocalResponseNorm(5, alpha=0.0001, beta=0.75, k=1.0)"


# ---- conv + batch norm fusion ---------------------------------------------------------------------------

def trained_conv_bn(bias, seed=0):
    conv = nn.Conv2d(3, 4, 3, padding=1, bias=bias)
    bn = nn.BatchNorm2d(4)
    bn.weight.data[...] = randn(4, seed, np.float32)
    bn.bias.data[...] = randn(4, seed + 1, np.float32)
    for step in range(3):
        bn(conv(fastnn.tensor(randn((4, 3, 6, 6), seed + step, np.float32, loc=1.0))))
    return conv, bn.eval()


@pytest.mark.parametrize("bias", [True, False])
def test_fused_conv_bn_matches_the_pair(bias):
    conv, bn = trained_conv_bn(bias)
    fused = fuse_conv_bn(conv, bn)
    assert not fused.training and fused is not conv and fused.bias is not None
    x = fastnn.tensor(randn((2, 3, 6, 6), 7, np.float32))
    with fastnn.no_grad():
        np.testing.assert_allclose(fused(x).data, bn(conv(x)).data, rtol=1e-5, atol=1e-5)
    assert (conv.bias is None) == (not bias)


def test_fuse_conv_bn_modules_replaces_pairs_inside_sequentials():
    conv, bn = trained_conv_bn(True)
    model = nn.Sequential(OrderedDict([("features", nn.Sequential(conv, bn, nn.ReLU())),
                                       ("head", nn.Flatten())])).eval()
    x = fastnn.tensor(randn((2, 3, 6, 6), 3, np.float32))
    with fastnn.no_grad():
        expected = model(x).data
        assert fuse_conv_bn_modules(model) is model
        assert isinstance(model.features[1], nn.Identity) and model.features[0] is not conv
        np.testing.assert_allclose(model(x).data, expected, rtol=1e-5, atol=1e-5)


def test_fuse_conv_bn_errors():
    conv, bn = trained_conv_bn(True)
    with pytest.raises(ValueError, match="eval mode"):
        fuse_conv_bn(conv, bn.train())
    with pytest.raises(ValueError, match="4 output channels"):
        fuse_conv_bn(conv, nn.BatchNorm2d(5).eval())
    with pytest.raises(ValueError, match="track_running_stats"):
        fuse_conv_bn(conv, nn.BatchNorm2d(4, track_running_stats=False).eval())
    with pytest.raises(TypeError, match="BatchNorm2d"):
        fuse_conv_bn(conv, nn.BatchNorm1d(4).eval())
    with pytest.raises(ValueError, match="eval mode"):
        fuse_conv_bn_modules(nn.Sequential(conv, bn.train()))


# ---- errors ---------------------------------------------------------------------------------------------

def test_batch_norm_errors():
    with pytest.raises(ValueError, match=r"more than 1 value per channel when training, got input size \(1, 3\)"):
        nn.BatchNorm1d(3)(fastnn.randn(1, 3))
    with pytest.raises(ValueError, match=r"more than 1 value per channel.*\(1, 3, 1, 1\)"):
        nn.BatchNorm2d(3)(fastnn.randn(1, 3, 1, 1))
    nn.BatchNorm2d(3).eval()(fastnn.randn(1, 3, 1, 1))  # one value per channel is fine in eval mode
    with pytest.raises(ValueError, match=r"\(2, 4, 5, 5\): expected 3 channels in dimension 1, got 4"):
        nn.BatchNorm2d(3)(fastnn.randn(2, 4, 5, 5))
    with pytest.raises(ValueError, match="expected 4D input"):
        nn.BatchNorm2d(3)(fastnn.randn(2, 3, 5))
    with pytest.raises(ValueError, match="expected 2D or 3D input"):
        nn.BatchNorm1d(3)(fastnn.randn(2, 3, 5, 5))
    with pytest.raises(ValueError, match=r"running_mean should have shape \(3,\).*\(2, 3, 4\).*\(4,\)"):
        F.batch_norm(fastnn.randn(2, 3, 4), fastnn.zeros(4), fastnn.ones(4), training=True)
    with pytest.raises(ValueError, match=r"weight should have shape \(3,\)"):
        F.batch_norm(fastnn.randn(2, 3, 4), None, None, fastnn.ones(2), training=True)
    with pytest.raises(ValueError, match="needs running_mean"):
        F.batch_norm(fastnn.randn(2, 3, 4), None, None, training=False)
    with pytest.raises(TypeError, match="dtype float32 but the input has dtype float64"):
        nn.BatchNorm1d(3)(fastnn.randn(4, 3, dtype="float64"))
    with pytest.raises(TypeError, match="float32 or float64"):
        F.batch_norm(fastnn.tensor(np.ones((2, 3), np.int64)), None, None, training=True)


def test_other_norm_errors():
    with pytest.raises(ValueError, match="divisible by num_groups"):
        nn.GroupNorm(3, 4)
    with pytest.raises(ValueError, match=r"divisible by num_groups.*\(2, 4, 3\)"):
        F.group_norm(fastnn.randn(2, 4, 3), 3)
    with pytest.raises(ValueError, match=r"normalized_shape \(4,\) must match.*\(2, 3\)"):
        nn.LayerNorm(4)(fastnn.randn(2, 3))
    with pytest.raises(ValueError, match="more than 1 spatial element"):
        nn.InstanceNorm2d(3)(fastnn.randn(2, 3, 1, 1))
    with pytest.raises(ValueError, match="expected 3 channels"):
        nn.InstanceNorm2d(3)(fastnn.randn(2, 4, 5, 5))
    with pytest.raises(ValueError, match="at least one dimension after C"):
        nn.LocalResponseNorm(2)(fastnn.randn(2, 3))
    with pytest.raises(ValueError, match="size must be a positive integer"):
        nn.LocalResponseNorm(0)

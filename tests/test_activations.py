"""Activations: Numba kernels against the NumPy references, gradients against finite differences, saturation
without overflow or warnings, SELU self-normalisation, PyTorch defaults and the error cases."""
import math
import warnings

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

import fastnn
import fastnn.nn.functional as F
from fastnn import nn
from fastnn import _dispatch
from fastnn._kernels import ref_activation
from fastnn.autograd import gradcheck

from conftest import DEVICES, host

cpu_activation = _dispatch.backend("cpu").kernels  # the kernels under test, as the ops reach them

seeds = st.integers(0, 2 ** 32 - 1)
small_shapes = st.lists(st.integers(1, 4), min_size=1, max_size=3).map(tuple)


def randn(shape, seed, dtype=np.float64, scale=1.0):
    return (np.random.default_rng(seed).standard_normal(shape) * scale).astype(dtype)


def leaf(array, device="cpu"):
    return fastnn.tensor(array, requires_grad=True, device=device)


# (kernel name, scalar arguments) for the element-wise kernels that backpropagate from their input.
INPUT_KERNELS = [
    ("hardtanh", (-1.0, 1.0)), ("hardtanh", (0.0, math.inf)), ("hardtanh", (0.0, 6.0)),
    ("leaky_relu", (0.01,)), ("leaky_relu", (-0.3,)),
    ("elu", (1.0, 1.0)), ("elu", (0.5, 1.0)), ("elu", (1.6732632423543772, 1.0507009873554805)),
    ("gelu", (False,)), ("gelu", (True,)), ("swish", (1.0,)), ("swish", (-0.7,)),
    ("softplus", (1.0, 20.0)), ("softplus", (2.0, 3.0)), ("softplus", (-1.5, 20.0)), ("mish", ()),
]


def cast_scalars(args, dtype):
    return tuple(a if isinstance(a, bool) else dtype(a) for a in args)


def tolerance(dtype):
    return {"rtol": 1e-5, "atol": 2e-6} if dtype == np.float32 else {"rtol": 1e-12, "atol": 1e-13}


def kernel_inputs(dtype):
    """Normal values spread over the interesting range, plus exact zeros, kinks and tiny values."""
    special = [0.0, -0.0, 1.0, -1.0, 6.0, 1e-30, -1e-30, 1e-8, -1e-8, 0.3, -0.3, 0.35, -0.35, 10.0, -10.0]
    return np.concatenate([randn(5000, 1, dtype, 4.0), np.array(special, dtype)])


# ---- kernels against the NumPy references ---------------------------------------------------------------
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("name,scalars", INPUT_KERNELS)
def test_kernel_matches_reference(name, scalars, dtype):
    x = kernel_inputs(dtype)
    g = randn(x.size, 2, dtype)
    args = cast_scalars(scalars, dtype)
    out = getattr(cpu_activation, name + "_forward")(x, *args, np.empty_like(x))
    grad = getattr(cpu_activation, name + "_backward")(g, x, *args)
    assert out.dtype == dtype and grad.dtype == dtype
    np.testing.assert_allclose(out, getattr(ref_activation, name + "_forward")(x, *args, np.empty_like(x)),
                               **tolerance(dtype))
    np.testing.assert_allclose(grad, getattr(ref_activation, name + "_backward")(g, x, *args), **tolerance(dtype))


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("name", ["sigmoid", "tanh"])
def test_output_saving_kernel_matches_reference(name, dtype):
    x = kernel_inputs(dtype)
    g = randn(x.size, 2, dtype)
    out = getattr(cpu_activation, name + "_forward")(x, np.empty_like(x))
    expected = getattr(ref_activation, name + "_forward")(x, np.empty_like(x))
    np.testing.assert_allclose(out, expected, **tolerance(dtype))
    # Backward reads the saved output; give both the same one, 1 - t*t amplifies a 1-ulp difference near 1.
    np.testing.assert_allclose(getattr(cpu_activation, name + "_backward")(g, expected),
                               getattr(ref_activation, name + "_backward")(g, expected), **tolerance(dtype))


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_swish_beta_gradient_kernel(dtype):
    x = kernel_inputs(dtype)
    x = np.concatenate([x] * 8)  # several reduction blocks
    g = randn(x.size, 3, dtype)
    beta = dtype(1.3)
    grad_in, partials = cpu_activation.swish_backward_with_beta(g, x, beta)
    expected_in, expected_beta = ref_activation.swish_backward_with_beta(g, x, beta)
    np.testing.assert_allclose(grad_in, expected_in, **tolerance(dtype))
    np.testing.assert_allclose(partials.sum(), expected_beta.sum(), rtol=1e-4 if dtype == np.float32 else 1e-10)
    assert np.array_equal(cpu_activation.swish_backward_with_beta(g, x, beta)[1], partials)  # deterministic


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@given(outer=st.integers(1, 4), channels=st.integers(1, 5), inner=st.integers(1, 9), seed=seeds)
@settings(max_examples=10, deadline=None)
def test_prelu_kernels_match_reference(outer, channels, inner, seed, dtype):
    x = randn((outer, channels, inner), seed, dtype)
    g = randn(x.shape, seed + 1, dtype)
    w = randn(channels, seed + 2, dtype)
    np.testing.assert_allclose(cpu_activation.prelu_forward(x, w), ref_activation.prelu_forward(x, w),
                               **tolerance(dtype))
    for actual, expected in zip(cpu_activation.prelu_backward(g, x, w), ref_activation.prelu_backward(g, x, w)):
        np.testing.assert_allclose(actual, expected, **tolerance(dtype))


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@given(outer=st.integers(1, 4), groups=st.integers(1, 4), pieces=st.integers(1, 4), inner=st.integers(1, 6),
       seed=seeds)
@settings(max_examples=10, deadline=None)
def test_maxout_kernels_match_reference(outer, groups, pieces, inner, seed, dtype):
    x = randn((outer, groups * pieces, inner), seed, dtype)
    g = randn((outer, groups, inner), seed + 1, dtype)
    np.testing.assert_array_equal(cpu_activation.maxout_forward(x, pieces), ref_activation.maxout_forward(x, pieces))
    np.testing.assert_array_equal(cpu_activation.maxout_backward(g, x, pieces),
                                  ref_activation.maxout_backward(g, x, pieces))


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("log", [False, True])
@given(outer=st.integers(1, 5), channels=st.integers(1, 40), inner=st.sampled_from([1, 1, 2, 7, 33]), seed=seeds)
@settings(max_examples=15, deadline=None)
def test_softmax_kernels_match_reference(outer, channels, inner, seed, log, dtype):
    x, g = randn((outer, channels, inner), seed, dtype, 4.0), randn((outer, channels, inner), seed + 1, dtype)
    out = cpu_activation.softmax_forward(x, log)
    expected = ref_activation.softmax_forward(x, log)
    np.testing.assert_allclose(out, expected, **tolerance(dtype))
    np.testing.assert_allclose(cpu_activation.softmax_backward(g, expected, log),
                               ref_activation.softmax_backward(g, expected, log), **tolerance(dtype))
    assert np.array_equal(cpu_activation.softmax_forward(x, log), out)  # deterministic


@pytest.mark.parametrize("inner", [1, 300])
def test_softmax_kernel_long_rows_and_extremes(inner):
    """Rows longer than a vector (the reassociated sums), huge logits, -inf entries (probability exactly 0) and a
    NaN row (NaN everywhere in that row only, as PyTorch)."""
    x = randn((4, 1000, inner), 3, np.float32, 30.0)
    x[0, 5] = 1e30
    x[1, :7] = -np.inf
    x[2, 11] = np.nan
    for log in (False, True):
        out = cpu_activation.softmax_forward(x, log)
        with np.errstate(invalid="ignore"):
            expected = ref_activation.softmax_forward(x, log)
        np.testing.assert_allclose(out[[0, 1, 3]], expected[[0, 1, 3]], rtol=1e-5, atol=2e-6)
        assert np.all(np.isnan(out[2])) and not np.any(np.isnan(out[[0, 1, 3]]))
        assert np.all(out[1, :7] == (-np.inf if log else 0))
    probabilities = cpu_activation.softmax_forward(x, False)
    np.testing.assert_allclose(probabilities[[0, 1, 3]].sum(axis=1), 1, rtol=1e-5)


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("fn", [F.softmax, F.log_softmax])
def test_softmax_gradcheck_every_dim(fn, device):
    x = leaf(randn((2, 3, 4), 5, scale=2.0), device)
    for dim in (0, 1, 2, -1):
        assert gradcheck(lambda t: fn(t, dim) * fastnn.tensor(randn((2, 3, 4), 6), device=device), [x])


# ---- gradients against finite differences ---------------------------------------------------------------
SMOOTH_OR_KINKED = {
    "relu": F.relu, "relu6": lambda x: F.relu6(x * 4), "hardtanh": lambda x: F.hardtanh(x, -0.5, 0.8),
    "leaky_relu": lambda x: F.leaky_relu(x, 0.2), "elu": lambda x: F.elu(x, 0.7), "selu": F.selu,
    "gelu": F.gelu, "gelu_tanh": lambda x: F.gelu(x, approximate="tanh"), "silu": F.silu,
    "swish": lambda x: F.swish(x, 1.8), "softplus": F.softplus,
    "softplus_threshold": lambda x: F.softplus(x * 3, beta=2.0, threshold=4.0), "mish": F.mish,
    "sigmoid": F.sigmoid, "tanh": F.tanh, "softmax": lambda x: F.softmax(x, -1),
    "log_softmax": lambda x: F.log_softmax(x, 0),
}


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("name", sorted(SMOOTH_OR_KINKED))
@given(shape=small_shapes, seed=seeds)
@settings(max_examples=6, deadline=None)
def test_activation_gradcheck(name, shape, seed, device):
    # Normal inputs land within eps of a kink (0, clamp bounds, softplus threshold) with negligible probability.
    assert gradcheck(SMOOTH_OR_KINKED[name], [leaf(randn(shape, seed, scale=2.0), device)])


@pytest.mark.parametrize("device", DEVICES)
@given(batch=st.integers(1, 3), channels=st.integers(1, 4), spatial=st.lists(st.integers(1, 3), max_size=2),
       per_channel=st.booleans(), seed=seeds)
@settings(max_examples=10, deadline=None)
def test_prelu_gradcheck_input_and_weight(batch, channels, spatial, per_channel, seed, device):
    x = leaf(randn((batch, channels, *spatial), seed), device)
    weight = leaf(randn(channels if per_channel else 1, seed + 1) * 0.5, device)
    assert gradcheck(F.prelu, [x, weight])


@pytest.mark.parametrize("device", DEVICES)
@given(shape=small_shapes, beta=st.floats(-2.0, 2.0), seed=seeds)
@settings(max_examples=10, deadline=None)
def test_swish_gradcheck_input_and_beta(shape, beta, seed, device):
    assert gradcheck(F.swish, [leaf(randn(shape, seed), device), leaf(np.array([beta]), device)])


@pytest.mark.parametrize("device", DEVICES)
@given(groups=st.integers(1, 3), pieces=st.integers(1, 3), dim=st.integers(0, 2), seed=seeds)
@settings(max_examples=10, deadline=None)
def test_maxout_gradcheck(groups, pieces, dim, seed, device):
    shape = [2, 3, 2]
    shape[dim] = groups * pieces
    assert gradcheck(lambda x: F.maxout(x, pieces, dim=dim), [leaf(randn(tuple(shape), seed), device)])


def test_maxout_layer_gradcheck_parameters():
    layer = nn.Maxout(3, 2, pieces=3).double()
    x = leaf(randn((4, 3), 0))
    assert gradcheck(lambda x, w, b: F.maxout(F.linear(x, w, b), 3, dim=-1),
                     [x, layer.linear.weight, layer.linear.bias])
    assert layer(x).shape == (4, 2)


def test_learnable_swish_and_prelu_parameters_get_gradients(device):
    base = randn((2, 3, 4), 0, np.float32)
    x = fastnn.tensor(base, device=device)
    swish, prelu = nn.Swish(beta=1.2, learnable=True).to(device), nn.PReLU(num_parameters=3).to(device)
    (swish(x).sum() + prelu(x).sum()).backward()
    assert [name for name, _ in swish.named_parameters()] == ["beta"]
    assert swish.beta.grad.shape == (1,) and prelu.weight.grad.shape == (3,)
    expected_prelu = np.where(base > 0, 0, base).sum(axis=(0, 2))
    np.testing.assert_allclose(host(prelu.weight.grad), expected_prelu, rtol=1e-5)
    sig = 1 / (1 + np.exp(-1.2 * base.astype(np.float64)))
    np.testing.assert_allclose(host(swish.beta.grad), [np.sum(base * base * sig * (1 - sig))], rtol=1e-5)
    assert list(nn.Swish().parameters()) == []


# ---- saturation: exact limits, no overflow, no warnings -------------------------------------------------
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_saturation_is_exact_and_silent(dtype, device):
    x = leaf(np.array([-1000.0, 1000.0], dtype), device)
    cases = {
        F.sigmoid: [0.0, 1.0], F.tanh: [-1.0, 1.0], F.silu: [0.0, 1000.0], lambda t: F.swish(t, 2.0): [0.0, 1000.0],
        F.gelu: [0.0, 1000.0], lambda t: F.gelu(t, approximate="tanh"): [0.0, 1000.0], F.mish: [0.0, 1000.0],
        F.elu: [-1.0, 1000.0], F.selu: [-nn.SELU.alpha * nn.SELU.scale, 1000.0 * nn.SELU.scale],
        F.softplus: [0.0, 1000.0], lambda t: F.softplus(t, beta=0.5, threshold=1e4): [0.0, 1000.0],
    }
    # Silence is a property of the CPU kernels; the twin device runs the NumPy references, which may underflow.
    strict = device == "cpu"
    with warnings.catch_warnings(), np.errstate(all="raise" if strict else "ignore"):
        warnings.simplefilter("error" if strict else "ignore")
        for fn, expected in cases.items():
            x.grad = None
            y = fn(x)
            np.testing.assert_allclose(host(y), np.array(expected, dtype), rtol=1e-6, atol=1e-30)
            y.sum().backward()
            assert np.all(np.isfinite(host(x.grad)))
        assert F.softplus(fastnn.tensor(np.array([1e4], dtype), device=device)).item() == 1e4
        assert F.sigmoid(fastnn.tensor(np.array([-1000.0, 1000.0], dtype), device=device)).tolist() == [0.0, 1.0]
        huge = np.array([-np.finfo(dtype).max, np.finfo(dtype).max], dtype)
        for fn in (F.sigmoid, F.tanh, F.gelu, lambda t: F.gelu(t, approximate="tanh"), F.elu, F.softplus):
            y = fn(leaf(huge, device))
            y.sum().backward()
            assert not np.any(np.isnan(host(y)))



@pytest.mark.filterwarnings("ignore:invalid value encountered")  # the twin runs the NumPy references on NaN
def test_nan_propagates(device):
    x = fastnn.tensor(np.array([np.nan, 1.0], np.float32), device=device)
    for fn in (F.relu, F.sigmoid, F.tanh, F.elu, F.gelu, F.silu, F.softplus, F.mish, F.leaky_relu):
        y = host(fn(x))
        assert np.isnan(y[0]) and not np.isnan(y[1])


# ---- SELU self-normalisation ----------------------------------------------------------------------------
def test_selu_mlp_keeps_activations_normalised():
    layers = []
    for _ in range(50):
        linear = nn.Linear(256, 256)
        nn.init.lecun_normal_(linear.weight)
        nn.init.zeros_(linear.bias)
        layers += [linear, nn.SELU()]
    model = nn.Sequential(*layers)
    with fastnn.no_grad():
        out = model(fastnn.randn(256, 256))._data
    assert abs(out.mean()) < 0.2
    assert 0.7 < out.std() < 1.3


# ---- PyTorch defaults and closed forms ------------------------------------------------------------------
def test_pytorch_defaults():
    assert nn.LeakyReLU().negative_slope == 0.01
    prelu = nn.PReLU()
    assert prelu.weight.shape == (1,) and prelu.weight._data[0] == np.float32(0.25)
    assert nn.PReLU(4, init=0.1).weight._data.tolist() == [np.float32(0.1)] * 4
    assert nn.ELU().alpha == 1.0 and nn.GELU().approximate == "none"
    assert (nn.Softplus().beta, nn.Softplus().threshold) == (1.0, 20.0)
    assert nn.SELU.alpha == pytest.approx(1.6732632423543772) and nn.SELU.scale == pytest.approx(1.0507009873554805)
    assert (nn.Hardtanh().min_val, nn.Hardtanh().max_val) == (-1.0, 1.0)
    assert repr(nn.GELU(approximate="tanh")) == "GELU(approximate='tanh')"
    assert repr(nn.LeakyReLU(0.2)) == "LeakyReLU(negative_slope=0.2)"


def test_gelu_tanh_approximation_is_close_to_exact():
    x = fastnn.tensor(np.linspace(-10, 10, 20001))
    assert np.max(np.abs(F.gelu(x)._data - F.gelu(x, approximate="tanh")._data)) < 1e-3


def test_closed_form_values(device):
    v = np.array([-2.0, -0.5, 0.0, 0.5, 3.0, 7.0])
    x = fastnn.tensor(v, device=device)
    cases = {
        F.relu: np.maximum(v, 0), F.relu6: np.clip(v, 0, 6), F.hardtanh: np.clip(v, -1, 1),
        F.leaky_relu: np.where(v > 0, v, 0.01 * v), F.elu: np.where(v > 0, v, np.exp(v) - 1),
        F.selu: nn.SELU.scale * np.where(v > 0, v, nn.SELU.alpha * (np.exp(v) - 1)),
        F.gelu: v * 0.5 * (1 + np.array([math.erf(a / math.sqrt(2)) for a in v])),
        F.silu: v / (1 + np.exp(-v)), F.softplus: np.log1p(np.exp(v)), F.mish: v * np.tanh(np.log1p(np.exp(v))),
        F.sigmoid: 1 / (1 + np.exp(-v)), F.tanh: np.tanh(v),
    }
    for fn, expected in cases.items():
        np.testing.assert_allclose(host(fn(x)), expected, rtol=1e-13, atol=1e-15)
    np.testing.assert_allclose(host(F.maxout(x, 2, dim=0)), [-0.5, 0.5, 7.0])
    np.testing.assert_allclose(host(F.softmax(x, 0)), np.exp(v) / np.exp(v).sum(), rtol=1e-13)
    np.testing.assert_allclose(host(F.log_softmax(x, 0)), v - np.log(np.exp(v).sum()), rtol=1e-13)


# ---- layouts, dtypes, errors ----------------------------------------------------------------------------
def test_non_contiguous_and_float16_inputs(device):
    base = randn((5, 7), 0, np.float32)
    x = fastnn.tensor(base, device=device).transpose(0, 1)
    np.testing.assert_array_equal(host(F.gelu(x)),
                                  host(F.gelu(fastnn.tensor(np.ascontiguousarray(base.T), device=device))))
    half = leaf(base.astype(np.float16), device)
    y = F.silu(half)
    y.sum().backward()
    assert y.dtype == np.float16 and half.grad.dtype == np.float16
    np.testing.assert_allclose(host(y), host(F.silu(fastnn.tensor(base))), rtol=2e-3, atol=1e-3)


def test_channel_maxout_on_nchw(device):
    base = randn((2, 6, 3, 3), 0, np.float32)
    y = F.maxout(fastnn.tensor(base, device=device), 3)
    assert y.shape == (2, 2, 3, 3)
    np.testing.assert_array_equal(host(y), base.reshape(2, 2, 3, 3, 3).max(axis=2))


def test_softmax_layer_implicit_dim_matches_pytorch():
    x = fastnn.tensor(randn((2, 3, 4, 5), 0, np.float32))
    with pytest.warns(UserWarning, match="Implicit dimension"):
        y = nn.Softmax()(x)
    np.testing.assert_allclose(y._data.sum(axis=1), 1, rtol=1e-5)


def test_errors_are_clear():
    x = fastnn.randn(2, 4)
    with pytest.raises(TypeError, match="floating point"):
        F.relu(fastnn.tensor(np.arange(3)))
    with pytest.raises(ValueError, match="approximate"):
        F.gelu(x, approximate="fast")
    with pytest.raises(ValueError, match="approximate"):
        nn.GELU("fast")
    with pytest.raises(ValueError, match="not divisible"):
        F.maxout(x, 3)
    with pytest.raises(ValueError, match="pieces"):
        F.maxout(x, 0)
    with pytest.raises(ValueError, match="one per input channel"):
        F.prelu(x, fastnn.ones(3))
    with pytest.raises(TypeError, match="dtype"):
        F.prelu(x, fastnn.ones(4, dtype="float64"))
    with pytest.raises(ValueError, match="greater than max_val"):
        F.hardtanh(x, 1.0, -1.0)
    with pytest.raises(ValueError, match="non-zero"):
        F.softplus(x, beta=0)
    with pytest.raises(TypeError, match="real number"):
        F.leaky_relu(x, "0.1")
    with pytest.raises(ValueError, match="one element"):
        F.swish(x, fastnn.ones(2))
    with pytest.raises(ValueError, match="num_parameters"):
        nn.PReLU(0)

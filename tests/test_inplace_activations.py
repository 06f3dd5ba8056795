"""PyTorch's in-place activations and dropouts: `inplace=True` (functional and modules) and Tensor.relu_ & co.

Facts about PyTorch written into the tests: the call returns the input tensor itself, whose storage now holds the
out-of-place op's values; a leaf that requires grad is refused; inside a graph the gradients equal the out-of-place
op's (and finite differences); a tensor an earlier op saved for backward and then overwritten raises at backward;
so does an edit of the output of the forms whose backward reads their output (relu, elu, leaky_relu, celu, rrelu,
sigmoid...), while silu, mish, hardswish, hardsigmoid, threshold and dropout keep what they need and do not.
"""
import numpy as np
import pytest

import fastnn
import fastnn.nn.functional as F
from fastnn import nn
from fastnn.autograd import gradcheck

from conftest import host, leaf, t

SELU_ALPHA, SELU_SCALE = 1.6732632423543772, 1.0507009873554805


def _softplus(a):
    return np.logaddexp(0, a)


# (F name, its arguments after input, the NumPy values, the module doing the same, kinks of f)
INPLACE = [
    ("relu", (), lambda a: np.maximum(a, 0), lambda: nn.ReLU(inplace=True), (0,)),
    ("relu6", (), lambda a: np.clip(a, 0, 6), lambda: nn.ReLU6(inplace=True), (0, 6)),
    ("hardtanh", (-0.5, 0.5), lambda a: np.clip(a, -0.5, 0.5), lambda: nn.Hardtanh(-0.5, 0.5, inplace=True),
     (-0.5, 0.5)),
    ("leaky_relu", (0.2,), lambda a: np.where(a > 0, a, 0.2 * a), lambda: nn.LeakyReLU(0.2, inplace=True), (0,)),
    ("elu", (0.7,), lambda a: np.where(a > 0, a, 0.7 * np.expm1(a)), lambda: nn.ELU(0.7, inplace=True), (0,)),
    ("selu", (), lambda a: SELU_SCALE * np.where(a > 0, a, SELU_ALPHA * np.expm1(a)),
     lambda: nn.SELU(inplace=True), (0,)),
    ("celu", (0.5,), lambda a: np.where(a > 0, a, 0.5 * np.expm1(a / 0.5)), lambda: nn.CELU(0.5, inplace=True),
     (0,)),
    ("silu", (), lambda a: a / (1 + np.exp(-a)), lambda: nn.SiLU(inplace=True), ()),
    ("mish", (), lambda a: a * np.tanh(_softplus(a)), lambda: nn.Mish(inplace=True), ()),
    ("hardswish", (), lambda a: a * np.clip(a + 3, 0, 6) / 6, lambda: nn.Hardswish(inplace=True), (-3, 3)),
    ("hardsigmoid", (), lambda a: np.clip(a + 3, 0, 6) / 6, lambda: nn.Hardsigmoid(inplace=True), (-3, 3)),
    ("threshold", (0.1, -3.0), lambda a: np.where(a > 0.1, a, -3.0), lambda: nn.Threshold(0.1, -3.0, inplace=True),
     (0.1,)),
    ("rrelu", (0.1, 0.3), lambda a: np.where(a >= 0, a, 0.2 * a), lambda: nn.RReLU(0.1, 0.3, inplace=True).eval(),
     (0,)),
]
NAMES = [case[0] for case in INPLACE]
# the forms whose backward reads their output, as PyTorch's: editing it before backward raises
READS_OUTPUT = {"relu", "relu6", "hardtanh", "leaky_relu", "elu", "selu", "celu", "rrelu"}


def _sample(shape=(3, 5), seed=0, kinks=()):
    a = np.random.default_rng(seed).standard_normal(shape) * 3
    for k in kinks:  # no finite difference straddles a kink
        a = np.where(np.abs(a - k) < 0.05, a + 0.1, a)
    return a


def _inplace(name, args):
    return lambda x: getattr(F, name)(x, *args, inplace=True)


@pytest.mark.parametrize("name, args, values, module, kinks", INPLACE, ids=NAMES)
def test_inplace_returns_the_input_holding_the_values(name, args, values, module, kinks, device):
    a = _sample()
    x = t(a, device)
    storage = x._data
    assert _inplace(name, args)(x) is x
    assert x._data is storage and x._version == 1  # the same storage, written once
    np.testing.assert_allclose(host(x), values(a), rtol=1e-12, atol=1e-12)
    x = t(a, device)
    assert module()(x) is x
    np.testing.assert_allclose(host(x), values(a), rtol=1e-12, atol=1e-12)
    y = t(a, device)
    assert getattr(F, name)(y, *args) is not y and np.array_equal(host(y), a)  # out of place leaves input alone


@pytest.mark.parametrize("name, args, values, module, kinks", INPLACE, ids=NAMES)
def test_inplace_gradients_equal_the_out_of_place_ops(name, args, values, module, kinks, device):
    a = _sample(kinks=kinks)
    g = _sample(seed=1)
    x = leaf(a, device)
    h = x * 1.0  # a non-leaf: in-place is allowed and recorded
    y = _inplace(name, args)(h)
    assert y is h and y.requires_grad
    (y * t(g, device)).sum().backward()
    reference = leaf(a, device)
    (getattr(F, name)(reference, *args) * t(g, device)).sum().backward()
    np.testing.assert_allclose(host(x.grad), host(reference.grad), rtol=1e-12, atol=1e-12)
    assert gradcheck(lambda w: _inplace(name, args)(w * 1.0), [leaf(a, device)])


@pytest.mark.parametrize("name, args", [(case[0], case[1]) for case in INPLACE], ids=NAMES)
def test_inplace_refusals_and_version_checks_match_pytorch(name, args):
    a = _sample()
    with pytest.raises(RuntimeError, match="leaf Variable that requires grad"):
        _inplace(name, args)(leaf(a))
    with fastnn.no_grad():  # allowed outside grad mode, as in PyTorch
        w = leaf(a)
        assert _inplace(name, args)(w) is w and w.requires_grad and w.grad_fn is None
    # an input an earlier op saved for its backward, overwritten
    x = leaf(a)
    h = x * 1.0
    square = h * h
    _inplace(name, args)(h)
    with pytest.raises(RuntimeError, match="modified by an inplace operation"):
        square.sum().backward()
    # the output edited before backward: raises exactly where PyTorch's backward reads the output
    x = leaf(a)
    h = x * 1.0
    y = _inplace(name, args)(h)
    h.mul_(2.0)
    if name in READS_OUTPUT:
        with pytest.raises(RuntimeError, match="modified by an inplace operation"):
            y.sum().backward()
    else:
        y.sum().backward()  # y is h: the sum of 2 f(x)
        reference = leaf(a)
        (getattr(F, name)(reference, *args) * 2.0).sum().backward()
        np.testing.assert_allclose(x.grad.numpy(), reference.grad.numpy(), rtol=1e-12)


def test_tensor_methods_sigmoid_tanh_relu_write_in_place_and_read_their_output():
    a = _sample()
    for method, values, derivative in [("sigmoid_", lambda v: 1 / (1 + np.exp(-v)), lambda s: s * (1 - s)),
                                       ("tanh_", np.tanh, lambda th: 1 - th * th),
                                       ("relu_", lambda v: np.maximum(v, 0), lambda r: (r > 0) * 1.0)]:
        x = leaf(a)
        h = x * 1.0
        assert getattr(h, method)() is h
        out = host(h).copy()
        np.testing.assert_allclose(out, values(a), rtol=1e-12)
        h.sum().backward()
        np.testing.assert_allclose(x.grad.numpy(), derivative(out), rtol=1e-12, atol=1e-15)
        h = leaf(a) * 1.0
        y = getattr(h, method)()
        h.add_(1.0)
        with pytest.raises(RuntimeError, match="modified by an inplace operation"):
            y.sum().backward()


def test_negative_slopes_in_place_raise_at_backward_as_in_pytorch():
    a = _sample()
    for name, args in [("leaky_relu", (-0.1,)), ("elu", (-1.0,)), ("celu", (-1.0,))]:
        h = leaf(a) * 1.0
        y = _inplace(name, args)(h)  # the forward runs, as PyTorch's
        np.testing.assert_allclose(host(y), host(getattr(F, name)(t(a), *args)), rtol=1e-12)
        with pytest.raises(RuntimeError, match=r"In-place \w+ backward calculation is triggered with a negative"):
            y.sum().backward()
        x = leaf(a)
        getattr(F, name)(x * 1.0, *args).sum().backward()  # the out-of-place op differentiates
        assert np.isfinite(x.grad.numpy()).all()


def test_strided_views_and_float16_are_written_in_place():
    a = _sample((4, 6)).astype(np.float32)
    x = t(a)
    view = x.t()[1:4]  # not C-contiguous: the values go through a temporary into the viewed storage
    assert F.relu(view, inplace=True) is view
    expected = a.copy()
    expected.T[1:4] = np.maximum(expected.T[1:4], 0)
    np.testing.assert_array_equal(x.numpy(), expected)
    half = t(a.astype(np.float16))
    assert F.elu(half, inplace=True) is half and half.dtype == np.float16
    np.testing.assert_allclose(half.numpy(), np.where(a > 0, a, np.expm1(a)).astype(np.float16), rtol=1e-3)
    # a bad argument is refused before anything is written
    y = t(a)
    with pytest.raises(ValueError, match="min_val"):
        F.hardtanh(y, 1.0, -1.0, inplace=True)
    assert y._version == 0 and np.array_equal(y.numpy(), a)
    # a view of a tensor in the graph stays refused: fastnn does not rewrite its base's graph
    h = leaf(a.astype(np.float64)) * 1.0
    with pytest.raises(RuntimeError, match="view of a tensor in the autograd graph"):
        F.relu(h[0], inplace=True)


@pytest.mark.parametrize("name, kind", [("dropout", "Dropout"), ("dropout1d", "Dropout1d"),
                                        ("dropout2d", "Dropout2d"), ("dropout3d", "Dropout3d"),
                                        ("alpha_dropout", "AlphaDropout"),
                                        ("feature_alpha_dropout", "FeatureAlphaDropout")])
def test_inplace_dropouts_write_the_same_draw_into_the_input(name, kind, device):
    shape = (2, 3, 4) if name == "dropout1d" else (2, 3, 2, 4) if name != "dropout3d" else (2, 3, 2, 2, 2)
    a = _sample(shape)
    g = _sample(shape, seed=1)
    fastnn.manual_seed(7)
    reference = leaf(a, device)
    expected = getattr(F, name)(reference, 0.4, True)
    (expected * t(g, device)).sum().backward()
    fastnn.manual_seed(7)
    x = leaf(a, device)
    h = x * 1.0
    assert getattr(F, name)(h, 0.4, True, inplace=True) is h
    np.testing.assert_array_equal(host(h), host(expected))
    (h * t(g, device)).sum().backward()
    np.testing.assert_array_equal(host(x.grad), host(reference.grad))
    layer = getattr(nn, kind)(0.4, inplace=True)
    y = t(a, device)
    assert layer(y) is y and not np.array_equal(host(y), a)
    y = t(a, device)
    assert layer.eval()(y) is y and np.array_equal(host(y), a)  # evaluation: the identity


def test_a_network_with_inplace_relus_trains_as_the_out_of_place_one():
    def network(inplace):
        fastnn.manual_seed(3)
        return nn.Sequential(nn.Conv2d(2, 4, 3, padding=1), nn.BatchNorm2d(4), nn.ReLU(inplace=inplace),
                             nn.Conv2d(4, 4, 3, padding=1), nn.ReLU6(inplace=inplace), nn.Flatten(),
                             nn.Linear(4 * 5 * 5, 3), nn.LeakyReLU(0.1, inplace=inplace))
    x = t(_sample((2, 2, 5, 5)).astype(np.float32))
    grads = []
    for inplace in (False, True):
        model = network(inplace)
        out = model(x)
        out.square().sum().backward()
        grads.append([out.detach().numpy()] + [p.grad.numpy() for p in model.parameters()])
    assert len(grads[0]) == len(grads[1])
    for a, b in zip(*grads):
        np.testing.assert_array_equal(a, b)

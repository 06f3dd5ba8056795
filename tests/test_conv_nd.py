"""conv1d, conv3d, conv_transpose1d/2d on every device: NumPy references, conv2d equivalences, adjointness,
gradients, layers."""
import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import fastnn
from conftest import DEVICES, host
from fastnn import nn
from fastnn.autograd import gradcheck
from fastnn.nn import functional as F
from fastnn.ops.conv import conv2d
from fastnn.ops.conv_nd import conv1d, conv3d, conv_transpose1d, conv_transpose2d

DTYPES = [np.float32, np.float64]
ALGORITHMS = ["direct", "im2col"]
# Every CPU algorithm, and each other device with its own choice ('auto'; twin runs the NumPy reference).
DEVICE_ALGORITHMS = [("cpu", a) for a in ALGORITHMS] + [(d, "auto") for d in DEVICES if d != "cpu"]


def _tol(dtype):
    return dict(rtol=1e-4, atol=1e-4) if dtype == np.float32 else dict(rtol=1e-10, atol=1e-10)


def conv3d_reference(x, w, b, stride, padding, dilation, groups):
    """Sum over kernel taps (a, i, j) of a channel contraction with a strided window of the padded input."""
    n, cin, *_ = x.shape
    cout, cin_g = w.shape[:2]
    cout_g = cout // groups
    xp = np.pad(x, [(0, 0), (0, 0)] + [(p, p) for p in padding])
    out_size = [(s - d * (k - 1) - 1) // st + 1 for s, k, st, d in zip(xp.shape[2:], w.shape[2:], stride, dilation)]
    out = np.zeros([n, cout] + out_size)
    for g in range(groups):
        for tap in np.ndindex(*w.shape[2:]):
            window = xp[(slice(None), slice(g * cin_g, (g + 1) * cin_g)) + tuple(
                slice(t * d, t * d + s * (o - 1) + 1, s) for t, d, s, o in zip(tap, dilation, stride, out_size))]
            out[:, g * cout_g:(g + 1) * cout_g] += np.einsum(
                "ncdhw,oc->nodhw", window, w[(slice(g * cout_g, (g + 1) * cout_g), slice(None)) + tap])
    return out + (0 if b is None else b[:, None, None, None])


def conv_transpose2d_reference(x, w, b, stride, padding, output_padding, groups, dilation):
    """Scatter: input pixel (y, x) adds w[:, :, i, j] times itself at output (y*s + i*d - p, x*s + j*d - p)."""
    n, cin, height, width = x.shape
    cout_g, kh, kw = w.shape[1:]
    cin_g = cin // groups
    full = np.zeros((n, cout_g * groups, (height - 1) * stride[0] + dilation[0] * (kh - 1) + 1 + output_padding[0],
                     (width - 1) * stride[1] + dilation[1] * (kw - 1) + 1 + output_padding[1]))
    for g in range(groups):
        xg = x[:, g * cin_g:(g + 1) * cin_g]
        for i in range(kh):
            for j in range(kw):
                rows = slice(i * dilation[0], i * dilation[0] + stride[0] * (height - 1) + 1, stride[0])
                cols = slice(j * dilation[1], j * dilation[1] + stride[1] * (width - 1) + 1, stride[1])
                full[:, g * cout_g:(g + 1) * cout_g, rows, cols] += np.einsum(
                    "nchw,co->nohw", xg, w[g * cin_g:(g + 1) * cin_g, :, i, j])
    out = full[:, :, padding[0]:full.shape[2] - padding[0], padding[1]:full.shape[3] - padding[1]]
    return out + (0 if b is None else b[:, None, None])


@st.composite
def transposed_geometry(draw, spatial=2, batch=2):
    """(x shape, weight shape, stride, padding, output_padding, groups, dilation) of a valid conv_transpose."""
    groups = draw(st.integers(1, 2))
    cin, cout = groups * draw(st.integers(1, 2)), groups * draw(st.integers(1, 2))
    kernel = tuple(draw(st.integers(1, 3)) for _ in range(spatial))
    stride = tuple(draw(st.integers(1, 3)) for _ in range(spatial))
    dilation = tuple(draw(st.integers(1, 2)) for _ in range(spatial))
    output_padding = tuple(draw(st.integers(0, max(s, d) - 1)) for s, d in zip(stride, dilation))
    size = tuple(draw(st.integers(1, 4)) for _ in range(spatial))
    full = [(n - 1) * s + d * (k - 1) + 1 + q for n, s, d, k, q in zip(size, stride, dilation, kernel, output_padding)]
    padding = tuple(draw(st.integers(0, (f - 1) // 2)) for f in full)
    return ((draw(st.integers(1, batch)), cin) + size, (cin, cout // groups) + kernel, stride, padding, output_padding,
            groups, dilation)


def _tensors(rng, dtype, *shapes, requires_grad=False, device="cpu"):
    return [fastnn.tensor(rng.standard_normal(s).astype(dtype), requires_grad=requires_grad, device=device)
            for s in shapes]


# --------------------------------------------------------------------------------------------- conv1d


@pytest.mark.parametrize("device", DEVICES)
@settings(max_examples=15, deadline=None)
@given(groups=st.integers(1, 2), k=st.integers(1, 4), stride=st.integers(1, 3), dilation=st.integers(1, 2),
       padding=st.integers(0, 2), length=st.integers(6, 12), seed=st.integers(0, 2**16))
def test_conv1d_is_conv2d_at_unit_height(device, groups, k, stride, dilation, padding, length, seed):
    rng = np.random.default_rng(seed)
    x, w, b = _tensors(rng, np.float64, (2, 2 * groups, length), (3 * groups, 2, k), (3 * groups,),
                       requires_grad=True, device=device)
    out = conv1d(x, w, b, stride, padding, dilation, groups)
    x2, w2, b2 = [fastnn.tensor(host(t), requires_grad=True, device=device) for t in (x, w, b)]
    out2 = conv2d(x2.reshape(2, 2 * groups, 1, length), w2.reshape(3 * groups, 2, 1, k), b2, (1, stride),
                  (0, padding), (1, dilation), groups)
    np.testing.assert_allclose(host(out), host(out2)[:, :, 0], rtol=1e-12, atol=1e-12)
    g = rng.standard_normal(out.shape)
    out.backward(fastnn.tensor(g, device=device))
    out2.backward(fastnn.tensor(g[:, :, None], device=device))
    for t, t2 in ((x, x2), (w, w2), (b, b2)):
        np.testing.assert_allclose(host(t.grad), host(t2.grad).reshape(t.shape), rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("device", DEVICES)
@settings(max_examples=8, deadline=None)
@given(groups=st.integers(1, 2), k=st.integers(1, 3), stride=st.integers(1, 2), padding=st.sampled_from([0, 1, "same"]),
       seed=st.integers(0, 2**16))
def test_conv1d_gradcheck(device, groups, k, stride, padding, seed):
    stride = 1 if padding == "same" else stride
    x, w, b = _tensors(np.random.default_rng(seed), np.float64, (1, 2 * groups, 6), (2 * groups, 2, k),
                       (2 * groups,), requires_grad=True, device=device)
    assert gradcheck(lambda *t: conv1d(*t, stride=stride, padding=padding, dilation=2, groups=groups), [x, w, b])


def test_conv1d_same_padding_keeps_the_length_and_puts_the_odd_zero_last(device):
    x = fastnn.tensor(np.arange(1.0, 6.0).reshape(1, 1, 5), device=device)
    w = fastnn.tensor(np.ones((1, 1, 4)), device=device)
    # total padding 3: one zero before, two after -> windows [0, 1+2+3], ..., [4+5+0+0]
    np.testing.assert_array_equal(host(conv1d(x, w, padding="same")), [[[6, 10, 14, 12, 9]]])


# --------------------------------------------------------------------------------------------- conv3d


@st.composite
def conv3d_geometry(draw, max_kernel=3, max_extra=3, batch=2):
    groups = draw(st.integers(1, 2))
    kernel = tuple(draw(st.integers(1, max_kernel)) for _ in range(3))
    stride = tuple(draw(st.integers(1, 2)) for _ in range(3))
    dilation = tuple(draw(st.integers(1, 2)) for _ in range(3))
    padding = tuple(draw(st.integers(0, 1)) for _ in range(3))
    size = tuple(max(d * (k - 1) + 1 - 2 * p, 1) + draw(st.integers(0, max_extra))
                 for k, d, p in zip(kernel, dilation, padding))
    x_shape = (draw(st.integers(1, batch)), groups * draw(st.integers(1, 2))) + size
    return x_shape, groups * draw(st.integers(1, 2)), kernel, stride, padding, dilation, groups


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("dtype", DTYPES)
@settings(max_examples=15, deadline=None)
@given(geometry=conv3d_geometry(), bias=st.booleans(), seed=st.integers(0, 2**16))
def test_conv3d_matches_reference(device, dtype, geometry, bias, seed):
    x_shape, cout, kernel, stride, padding, dilation, groups = geometry
    rng = np.random.default_rng(seed)
    x, w, b = _tensors(rng, dtype, x_shape, (cout, x_shape[1] // groups) + kernel, (cout,), device=device)
    out = conv3d(x, w, b if bias else None, stride, padding, dilation, groups)
    expected = conv3d_reference(host(x).astype(np.float64), host(w).astype(np.float64),
                                host(b).astype(np.float64) if bias else None, stride, padding, dilation, groups)
    assert out.dtype == dtype and out.device == device
    np.testing.assert_allclose(host(out), expected, **_tol(dtype))


@pytest.mark.parametrize("device", DEVICES)
@settings(max_examples=6, deadline=None)
@given(geometry=conv3d_geometry(max_kernel=2, max_extra=1, batch=1), seed=st.integers(0, 2**16))
def test_conv3d_gradcheck(device, geometry, seed):
    x_shape, cout, kernel, stride, padding, dilation, groups = geometry
    x, w, b = _tensors(np.random.default_rng(seed), np.float64, x_shape, (cout, x_shape[1] // groups) + kernel,
                       (cout,), requires_grad=True, device=device)
    assert gradcheck(lambda *t: conv3d(*t, stride=stride, padding=padding, dilation=dilation, groups=groups),
                     [x, w, b])


def test_conv3d_same_padding_and_unbatched_input(device):
    rng = np.random.default_rng(0)
    x, w = _tensors(rng, np.float64, (2, 5, 6, 4), (3, 2, 2, 3, 4), device=device)
    out = conv3d(x, w, padding="same", dilation=(1, 2, 1))
    assert out.shape == (3, 5, 6, 4)
    # 'same' pads d*(k-1) in total, the odd one after: depth (0, 1), height (2, 2), width (1, 2).
    padded = np.pad(host(x), ((0, 0), (0, 1), (2, 2), (1, 2)))
    expected = conv3d_reference(padded[None], host(w), None, (1, 1, 1), (0, 0, 0), (1, 2, 1), 1)[0]
    np.testing.assert_allclose(host(out), expected, rtol=1e-12, atol=1e-12)


def test_conv3d_backward_is_deterministic():
    rng = np.random.default_rng(1)
    x, w = _tensors(rng, np.float32, (2, 4, 6, 7, 7), (8, 2, 3, 3, 3), requires_grad=True)
    grads = []
    for _ in range(2):
        x.grad = w.grad = None
        conv3d(x, w, stride=(2, 1, 2), padding=1, groups=2).sum().backward()
        grads.append((x.grad._data.copy(), w.grad._data.copy()))
    assert all(np.array_equal(a, b) for a, b in zip(*grads))


# ----------------------------------------------------------------------------------- conv_transpose


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("device, algorithm", DEVICE_ALGORITHMS)
@settings(max_examples=15, deadline=None)
@given(geometry=transposed_geometry(), bias=st.booleans(), seed=st.integers(0, 2**16))
def test_conv_transpose2d_matches_scatter_reference(dtype, device, algorithm, geometry, bias, seed):
    x_shape, w_shape, stride, padding, output_padding, groups, dilation = geometry
    rng = np.random.default_rng(seed)
    x, w, b = _tensors(rng, dtype, x_shape, w_shape, (w_shape[1] * groups,), device=device)
    out = conv_transpose2d(x, w, b if bias else None, stride, padding, output_padding, groups, dilation,
                           algorithm=algorithm)
    expected = conv_transpose2d_reference(host(x).astype(np.float64), host(w).astype(np.float64),
                                          host(b).astype(np.float64) if bias else None, stride, padding,
                                          output_padding, groups, dilation)
    assert out.dtype == dtype and out.device == device
    np.testing.assert_allclose(host(out), expected, **_tol(dtype))


@pytest.mark.parametrize("device, algorithm", DEVICE_ALGORITHMS)
@settings(max_examples=15, deadline=None)
@given(geometry=transposed_geometry(), seed=st.integers(0, 2**16))
def test_conv_transpose2d_is_the_adjoint_of_conv2d(device, algorithm, geometry, seed):
    """<conv2d(z, w), y> == <z, conv_transpose2d(y, w)> for z of conv_transpose2d's output shape.

    With output_padding >= stride (allowed when < dilation) conv2d(z) has extra trailing rows/columns; they
    see no input of the transposed convolution, so the adjoint is conv2d cropped to y's shape."""
    y_shape, w_shape, stride, padding, output_padding, groups, dilation = geometry
    rng = np.random.default_rng(seed)
    y, w = _tensors(rng, np.float64, y_shape, w_shape, device=device)
    transposed = conv_transpose2d(y, w, None, stride, padding, output_padding, groups, dilation, algorithm=algorithm)
    z = fastnn.tensor(rng.standard_normal(transposed.shape), device=device)
    forward = conv2d(z, w, None, stride, padding, dilation, groups, algorithm=algorithm)
    forward = forward[:, :, :y.shape[2], :y.shape[3]]
    assert forward.shape == y.shape
    np.testing.assert_allclose(np.vdot(host(forward), host(y)), np.vdot(host(z), host(transposed)), rtol=1e-10)


@pytest.mark.parametrize("device, algorithm", DEVICE_ALGORITHMS)
@settings(max_examples=6, deadline=None)
@given(geometry=transposed_geometry(batch=1), seed=st.integers(0, 2**16))
def test_conv_transpose2d_gradcheck(device, algorithm, geometry, seed):
    x_shape, w_shape, stride, padding, output_padding, groups, dilation = geometry
    x, w, b = _tensors(np.random.default_rng(seed), np.float64, x_shape, w_shape, (w_shape[1] * groups,),
                       requires_grad=True, device=device)
    assert gradcheck(lambda *t: conv_transpose2d(*t, stride, padding, output_padding, groups, dilation,
                                                 algorithm=algorithm), [x, w, b])


@pytest.mark.parametrize("device", DEVICES)
@settings(max_examples=8, deadline=None)
@given(geometry=transposed_geometry(spatial=1, batch=1), seed=st.integers(0, 2**16))
def test_conv_transpose1d_is_conv_transpose2d_at_unit_height_and_gradchecks(device, geometry, seed):
    x_shape, w_shape, stride, padding, output_padding, groups, dilation = geometry
    x, w, b = _tensors(np.random.default_rng(seed), np.float64, x_shape, w_shape, (w_shape[1] * groups,),
                       requires_grad=True, device=device)
    out = conv_transpose1d(x, w, b, stride, padding, output_padding, groups, dilation)
    expected = conv_transpose2d_reference(host(x)[:, :, None], host(w)[:, :, None], host(b), (1,) + stride,
                                          (0,) + padding, (0,) + output_padding, groups, (1,) + dilation)
    np.testing.assert_allclose(host(out), expected[:, :, 0], rtol=1e-12, atol=1e-12)
    assert gradcheck(lambda *t: conv_transpose1d(*t, stride, padding, output_padding, groups, dilation), [x, w, b])


def test_conv_transpose2d_unbatched_and_float32_gradients(device):
    rng = np.random.default_rng(2)
    x, w, b = _tensors(rng, np.float32, (4, 5, 6), (4, 3, 3, 3), (3,), requires_grad=True, device=device)
    out = conv_transpose2d(x, w, b, stride=2, padding=1, output_padding=1)
    assert out.shape == (3, 10, 12) and out.dtype == np.float32
    out.sum().backward()
    # d(sum out)/db = number of output positions.
    np.testing.assert_allclose(host(b.grad), np.full(3, 120.0))
    assert x.grad.shape == x.shape and x.grad.dtype == np.float32 and w.grad.shape == w.shape


@pytest.mark.parametrize("call, error, match", [
    (lambda: conv1d(fastnn.randn(1, 2, 5), fastnn.randn(3, 2, 2, 2)), ValueError, r"3-D weight"),
    (lambda: conv1d(fastnn.randn(1, 3, 5), fastnn.randn(4, 2, 2)), ValueError, "has 3 channels"),
    (lambda: conv1d(fastnn.randn(1, 2, 5), fastnn.randn(4, 2, 9)), ValueError, "output size"),
    (lambda: conv1d(fastnn.randn(1, 2, 5), fastnn.randn(4, 2, 3), stride=2, padding="same"), ValueError,
     "strided"),
    (lambda: conv1d(fastnn.randn(1, 2, 5), fastnn.randn(4, 2, 3), padding="full"), ValueError, "'valid' or 'same'"),
    (lambda: conv1d(fastnn.randn(1, 2, 5), fastnn.randn(4, 2, 3), stride=(1, 1)), TypeError, "stride"),
    (lambda: conv3d(fastnn.randn(2, 5, 5, 5), fastnn.randn(4, 1, 3, 3, 3)), ValueError, "has 2 channels"),
    (lambda: conv3d(fastnn.randn(2, 5, 5, 5), fastnn.randn(4, 2, 3, 3, 3, dtype="float64")), TypeError,
     "weight dtype"),
    (lambda: conv3d(fastnn.randn(1, 4, 5, 5, 5), fastnn.randn(6, 2, 3, 3, 3), groups=4), ValueError,
     "divisible by groups|expects"),
    (lambda: conv3d(fastnn.randn(1, 2, 5, 5, 5), fastnn.randn(4, 2, 3, 3, 3), fastnn.randn(3)), ValueError,
     "bias shape"),
    (lambda: conv_transpose2d(fastnn.randn(1, 2, 5, 5), fastnn.randn(2, 3, 3, 3), output_padding=1), ValueError,
     "output_padding"),
    (lambda: conv_transpose2d(fastnn.randn(1, 3, 5, 5), fastnn.randn(2, 3, 3, 3)), ValueError, "has 3 channels"),
    (lambda: conv_transpose2d(fastnn.randn(1, 2, 1, 1), fastnn.randn(2, 3, 1, 1), padding=1), ValueError,
     "empty"),
    (lambda: conv_transpose2d(fastnn.randn(1, 2, 3, 3), fastnn.randn(2, 3, 3, 3), algorithm="fft"), ValueError,
     "algorithm"),
    (lambda: conv_transpose2d(np.ones((1, 2, 3, 3)), fastnn.randn(2, 3, 3, 3)), TypeError, "Tensor"),
    (lambda: conv_transpose1d(fastnn.tensor(np.ones((1, 2, 3), np.int64)), fastnn.randn(2, 3, 3)), TypeError,
     "int64"),
])
def test_invalid_arguments_raise_clear_errors(call, error, match):
    with pytest.raises(error, match=match):
        call()


# --------------------------------------------------------------------------------------------- layers


@pytest.mark.parametrize("layer, weight_shape, fan_in", [
    (lambda: nn.Conv1d(4, 6, 3, groups=2), (6, 2, 3), 6),
    (lambda: nn.Conv3d(2, 4, (1, 2, 3)), (4, 2, 1, 2, 3), 12),
    (lambda: nn.ConvTranspose1d(4, 6, 5, groups=2), (4, 3, 5), 15),
    (lambda: nn.ConvTranspose2d(4, 6, (2, 3)), (4, 6, 2, 3), 36),
])
def test_layer_weight_shapes_and_default_init(layer, weight_shape, fan_in):
    module = layer()
    bound = 1 / math.sqrt(fan_in)  # PyTorch's default: kaiming_uniform_(a=sqrt(5)), fan_in from weight dim 1
    assert module.weight.shape == weight_shape and module.weight.dtype == np.float32
    assert np.abs(module.weight._data).max() <= bound and np.abs(module.bias._data).max() <= bound
    assert np.abs(module.weight._data).max() > bound / 2


def test_layers_run_their_functional_forms(device):
    rng = np.random.default_rng(3)
    (x1,) = _tensors(rng, np.float32, (2, 4, 9), device=device)
    conv = nn.Conv1d(4, 6, 3, stride=2, padding=1, dilation=2, groups=2).to(device)
    np.testing.assert_array_equal(host(conv(x1)), host(conv1d(x1, conv.weight, conv.bias, 2, 1, 2, 2)))
    (x3,) = _tensors(rng, np.float32, (1, 2, 4, 5, 6), device=device)
    conv = nn.Conv3d(2, 3, 3, padding=1, bias=False).to(device)
    assert conv.bias is None
    np.testing.assert_array_equal(host(conv(x3)), host(conv3d(x3, conv.weight, None, 1, 1)))
    (x2,) = _tensors(rng, np.float32, (2, 4, 5, 5), device=device)
    deconv = nn.ConvTranspose2d(4, 2, 3, stride=2, padding=1, output_padding=1).to(device)
    out = deconv(x2)
    assert out.device == device
    np.testing.assert_array_equal(host(out), host(conv_transpose2d(x2, deconv.weight, deconv.bias, 2, 1, 1)))
    assert nn.ConvTranspose1d(4, 2, 4, stride=2).to(device)(x1).shape == (2, 2, 20)
    linear = nn.Linear(9, 3).to(device)
    np.testing.assert_allclose(host(linear(x1)), host(x1) @ host(linear.weight).T + host(linear.bias), rtol=1e-5)


@pytest.mark.parametrize("layer, name, shape", [
    (lambda: nn.Conv1d(2, 3, 3), "conv1d", (1, 2, 6)),
    (lambda: nn.Conv2d(2, 3, 3), "conv2d", (1, 2, 6, 6)),
    (lambda: nn.Conv2d(2, 3, 3, padding=1, padding_mode="reflect"), "conv2d", (1, 2, 6, 6)),
    (lambda: nn.Conv3d(2, 3, 2), "conv3d", (1, 2, 4, 4, 4)),
    (lambda: nn.ConvTranspose1d(2, 3, 3), "conv_transpose1d", (1, 2, 6)),
    (lambda: nn.ConvTranspose2d(2, 3, 3), "conv_transpose2d", (1, 2, 6, 6)),
    (lambda: nn.Linear(6, 3), "linear", (2, 6)),
])
def test_layers_are_thin_over_nn_functional(monkeypatch, layer, name, shape):
    """Each conv/linear layer's forward is its F function (as in PyTorch), so patching F reaches the layer."""
    calls, original = [], getattr(F, name)
    monkeypatch.setattr(F, name, lambda *args, **kwargs: calls.append(name) or original(*args, **kwargs))
    layer()(fastnn.randn(*shape))
    assert calls == [name]


def test_conv_transpose_output_size_picks_output_padding(device):
    deconv = nn.ConvTranspose2d(3, 2, 3, stride=2, padding=1).to(device)
    x = fastnn.randn(1, 3, 4, 5, device=device)
    assert deconv(x).shape == (1, 2, 7, 9)
    assert deconv(x, output_size=(8, 10)).shape == (1, 2, 8, 10)
    assert deconv(x, output_size=[1, 2, 8, 9]).shape == (1, 2, 8, 9)
    with pytest.raises(ValueError, match="not reachable"):
        deconv(x, output_size=(9, 9))


@pytest.mark.parametrize("mode", ["reflect", "replicate", "circular"])
def test_padding_modes_pad_the_input_first(mode, device):
    rng = np.random.default_rng(4)
    (x,) = _tensors(rng, np.float64, (1, 2, 4, 5, 6), device=device)
    conv = nn.Conv3d(2, 3, 3, padding=(1, 2, 1), padding_mode=mode, dtype="float64").to(device)
    padded = F.pad(x, (1, 1, 2, 2, 1, 1), mode=mode)
    np.testing.assert_allclose(host(conv(x)), host(conv3d(padded, conv.weight, conv.bias)), rtol=1e-12)
    conv = nn.Conv1d(2, 3, 4, padding="same", padding_mode=mode, dtype="float64").to(device)
    (x,) = _tensors(rng, np.float64, (1, 2, 7), device=device)
    padded = F.pad(x, (1, 2), mode=mode)
    np.testing.assert_allclose(host(conv(x)), host(conv1d(padded, conv.weight, conv.bias)), rtol=1e-12)


@pytest.mark.parametrize("make", [
    lambda: nn.Conv1d(3, 4, 3, groups=2),
    lambda: nn.Conv3d(2, 4, 3, padding_mode="mirror"),
    lambda: nn.ConvTranspose2d(2, 4, 3, padding_mode="reflect"),
    lambda: nn.Conv3d(2, 4, 3, stride=2, padding="same"),
    lambda: nn.Conv1d(2, 4, 0),
])
def test_layer_constructors_validate(make):
    with pytest.raises(ValueError):
        make()

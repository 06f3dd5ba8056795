"""RNN/LSTM/GRU layers and cells: PyTorch's state_dict layout (facts written down), forward against a NumPy
implementation of PyTorch's documented equations (gate order i, f, g, o for LSTM; r, z, n for GRU with b_hn inside
r * (...)), gradients against finite differences (float64) on every device, and, when torch is importable, outputs
equal to torch's modules with the same weights."""
import math

import numpy as np
import pytest

import fastnn
from fastnn import nn
from fastnn.autograd import gradcheck
from fastnn.ops import rnn as rnn_ops
from conftest import host


# ---- NumPy reference of PyTorch's equations ---------------------------------------------------------------------
def sig(x):
    return 1.0 / (1.0 + np.exp(-x))


def ref_step(mode, x, h, c, w_ih, w_hh, b_ih, b_hh):
    gi, gh = x @ w_ih.T + b_ih, h @ w_hh.T + b_hh
    H = h.shape[-1]
    if mode == "LSTM":
        i, f, g, o = (gi + gh)[:, :H], (gi + gh)[:, H:2 * H], (gi + gh)[:, 2 * H:3 * H], (gi + gh)[:, 3 * H:]
        c = sig(f) * c + sig(i) * np.tanh(g)
        return sig(o) * np.tanh(c), c
    if mode == "GRU":
        r = sig(gi[:, :H] + gh[:, :H])
        z = sig(gi[:, H:2 * H] + gh[:, H:2 * H])
        n = np.tanh(gi[:, 2 * H:] + r * gh[:, 2 * H:])  # gh includes b_hn: r * (W_hn h + b_hn)
        return (1 - z) * n + z * h, None
    pre = gi + gh
    return (np.tanh(pre) if mode == "RNN_TANH" else np.maximum(pre, 0)), None


def ref_rnn(mode, params, x, h0, c0, num_layers, bidirectional, zero_between=False):
    """Sequence-first reference: (output, h_n, c_n). zero_between: the layer inputs after layer 0 are zeroed
    (what dropout p=1 between layers does)."""
    D = 2 if bidirectional else 1
    T = x.shape[0]
    inp, h_n, c_n = x, [], []
    for layer in range(num_layers):
        outs = []
        for d in range(D):
            sfx = "_reverse" if d else ""
            w_ih, w_hh = params[f"weight_ih_l{layer}{sfx}"], params[f"weight_hh_l{layer}{sfx}"]
            b_ih = params.get(f"bias_ih_l{layer}{sfx}", 0.0)
            b_hh = params.get(f"bias_hh_l{layer}{sfx}", 0.0)
            h, c = h0[layer * D + d], (c0[layer * D + d] if c0 is not None else None)
            out = np.zeros((T,) + h.shape)
            for t in (range(T - 1, -1, -1) if d else range(T)):
                h, c = ref_step(mode, inp[t], h, c, w_ih, w_hh, b_ih, b_hh)
                out[t] = h
            outs.append(out)
            h_n.append(h)
            c_n.append(c)
        inp = np.concatenate(outs, -1)
        if zero_between and layer < num_layers - 1:
            inp = np.zeros_like(inp)
    return inp, np.stack(h_n), (np.stack(c_n) if mode == "LSTM" else None)


def params_of(module):
    return {k: host(v) for k, v in module.state_dict().items()}


def make(mode, *args, **kwargs):
    if mode.startswith("RNN"):
        return nn.RNN(*args, nonlinearity=mode[4:].lower(), **kwargs)
    return getattr(nn, mode)(*args, **kwargs)


MODES = ["LSTM", "GRU", "RNN_TANH", "RNN_RELU"]


# ---- state_dict layout: facts about PyTorch ---------------------------------------------------------------------
def test_lstm_state_dict_layout_is_pytorchs():
    sd = nn.LSTM(10, 20, num_layers=2, bidirectional=True).state_dict()
    assert [(k, tuple(v.shape)) for k, v in sd.items()] == [
        ("weight_ih_l0", (80, 10)), ("weight_hh_l0", (80, 20)), ("bias_ih_l0", (80,)), ("bias_hh_l0", (80,)),
        ("weight_ih_l0_reverse", (80, 10)), ("weight_hh_l0_reverse", (80, 20)), ("bias_ih_l0_reverse", (80,)),
        ("bias_hh_l0_reverse", (80,)),
        ("weight_ih_l1", (80, 40)), ("weight_hh_l1", (80, 20)), ("bias_ih_l1", (80,)), ("bias_hh_l1", (80,)),
        ("weight_ih_l1_reverse", (80, 40)), ("weight_hh_l1_reverse", (80, 20)), ("bias_ih_l1_reverse", (80,)),
        ("bias_hh_l1_reverse", (80,))]


def test_gru_rnn_and_cell_state_dict_layouts_are_pytorchs():
    assert [(k, tuple(v.shape)) for k, v in nn.GRU(5, 7, bias=False).state_dict().items()] == [
        ("weight_ih_l0", (21, 5)), ("weight_hh_l0", (21, 7))]
    assert [(k, tuple(v.shape)) for k, v in nn.RNN(3, 4, num_layers=2).state_dict().items()] == [
        ("weight_ih_l0", (4, 3)), ("weight_hh_l0", (4, 4)), ("bias_ih_l0", (4,)), ("bias_hh_l0", (4,)),
        ("weight_ih_l1", (4, 4)), ("weight_hh_l1", (4, 4)), ("bias_ih_l1", (4,)), ("bias_hh_l1", (4,))]
    for cls, gates in ((nn.LSTMCell, 4), (nn.GRUCell, 3), (nn.RNNCell, 1)):
        assert [(k, tuple(v.shape)) for k, v in cls(6, 5).state_dict().items()] == [
            ("weight_ih", (5 * gates, 6)), ("weight_hh", (5 * gates, 5)), ("bias_ih", (5 * gates,)),
            ("bias_hh", (5 * gates,))]
    assert list(nn.LSTMCell(6, 5, bias=False).state_dict()) == ["weight_ih", "weight_hh"]


def test_init_is_uniform_within_one_over_sqrt_hidden():
    for module in (nn.LSTM(30, 64, num_layers=2), nn.GRUCell(8, 100)):
        bound = 1 / math.sqrt(module.hidden_size)
        values = np.concatenate([host(p).ravel() for p in module.parameters()])
        assert np.abs(values).max() <= bound
        # U(-b, b): the extremes reach close to b and the mean is near 0 (std b/sqrt(3))
        assert np.abs(values).max() > 0.99 * bound
        assert abs(values.mean()) < 0.02 * bound
        assert abs(values.std() - bound / math.sqrt(3)) < 0.02 * bound


# ---- forward against the NumPy reference ---------------------------------------------------------------------------
@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("num_layers,bidirectional,batch_first,bias",
                         [(1, False, False, True), (2, True, False, True), (2, False, True, False),
                          (3, True, True, True)])
def test_layers_match_numpy_reference(mode, num_layers, bidirectional, batch_first, bias):
    I, H, T, B = 3, 4, 5, 2
    m = make(mode, I, H, num_layers=num_layers, bias=bias, batch_first=batch_first, bidirectional=bidirectional,
             dtype=np.float64)
    D = 2 if bidirectional else 1
    rng = np.random.default_rng(1)
    x = rng.standard_normal((T, B, I))
    h0, c0 = rng.standard_normal((num_layers * D, B, H)), rng.standard_normal((num_layers * D, B, H))
    xin = x.transpose(1, 0, 2) if batch_first else x
    hx = (fastnn.tensor(h0), fastnn.tensor(c0)) if mode == "LSTM" else fastnn.tensor(h0)
    out, state = m(fastnn.tensor(xin), hx)
    ref_out, ref_h, ref_c = ref_rnn(mode, params_of(m), x, h0, c0 if mode == "LSTM" else None, num_layers,
                                    bidirectional)
    assert out.shape == xin.shape[:2] + (D * H,)
    np.testing.assert_allclose(host(out), ref_out.transpose(1, 0, 2) if batch_first else ref_out, atol=1e-12)
    h_n = state[0] if mode == "LSTM" else state
    np.testing.assert_allclose(host(h_n), ref_h, atol=1e-12)
    if mode == "LSTM":
        np.testing.assert_allclose(host(state[1]), ref_c, atol=1e-12)


@pytest.mark.parametrize("mode", MODES)
def test_unbatched_input_and_default_zero_state(mode):
    m = make(mode, 3, 4, num_layers=2, bidirectional=True, dtype=np.float64)
    x = np.random.default_rng(2).standard_normal((6, 3))
    out, state = m(fastnn.tensor(x))
    zeros = np.zeros((4, 1, 4))
    ref_out, ref_h, ref_c = ref_rnn(mode, params_of(m), x[:, None], zeros, zeros, 2, True)
    assert out.shape == (6, 8)
    np.testing.assert_allclose(host(out), ref_out[:, 0], atol=1e-12)
    h_n = state[0] if mode == "LSTM" else state
    assert h_n.shape == (4, 4)
    np.testing.assert_allclose(host(h_n), ref_h[:, 0], atol=1e-12)


@pytest.mark.parametrize("mode", ["LSTM", "GRU"])
def test_dropout_between_layers(mode):
    m = make(mode, 3, 4, num_layers=2, dropout=1.0, dtype=np.float64)
    x = np.random.default_rng(3).standard_normal((5, 2, 3))
    zeros = np.zeros((2, 2, 4))
    out, _ = m(fastnn.tensor(x))
    # p = 1 drops every input of layer 2: its output is the recurrence on zero inputs
    dropped, _, _ = ref_rnn(mode, params_of(m), x, zeros, zeros, 2, False, zero_between=True)
    np.testing.assert_allclose(host(out), dropped, atol=1e-12)
    m.eval()
    out, _ = m(fastnn.tensor(x))
    np.testing.assert_allclose(host(out), ref_rnn(mode, params_of(m), x, zeros, zeros, 2, False)[0], atol=1e-12)


@pytest.mark.parametrize("cls,mode", [(nn.LSTMCell, "LSTM"), (nn.GRUCell, "GRU"), (nn.RNNCell, "RNN_TANH")])
def test_cells_match_numpy_reference(cls, mode):
    m = cls(3, 5, dtype=np.float64)
    p = params_of(m)
    rng = np.random.default_rng(4)
    x, h, c = rng.standard_normal((2, 3)), rng.standard_normal((2, 5)), rng.standard_normal((2, 5))
    ref_h, ref_c = ref_step(mode, x, h, c, p["weight_ih"], p["weight_hh"], p["bias_ih"], p["bias_hh"])
    if mode == "LSTM":
        out_h, out_c = m(fastnn.tensor(x), (fastnn.tensor(h), fastnn.tensor(c)))
        np.testing.assert_allclose(host(out_c), ref_c, atol=1e-12)
        unbatched = m(fastnn.tensor(x[0]), (fastnn.tensor(h[0]), fastnn.tensor(c[0])))[0]
    else:
        out_h = m(fastnn.tensor(x), fastnn.tensor(h))
        unbatched = m(fastnn.tensor(x[0]), fastnn.tensor(h[0]))
    np.testing.assert_allclose(host(out_h), ref_h, atol=1e-12)
    np.testing.assert_allclose(host(unbatched), ref_h[0], atol=1e-12)
    relu = nn.RNNCell(3, 5, nonlinearity="relu", dtype=np.float64)
    q = params_of(relu)
    np.testing.assert_allclose(host(relu(fastnn.tensor(x), fastnn.tensor(h))),
                               ref_step("RNN_RELU", x, h, None, q["weight_ih"], q["weight_hh"], q["bias_ih"],
                                        q["bias_hh"])[0], atol=1e-12)


# ---- the ops on every device: reference values and gradients --------------------------------------------------------
def _leaves(rng, device, *shapes, scale=1.0):
    return [fastnn.tensor(rng.standard_normal(s) * scale, requires_grad=True, device=device) for s in shapes]


@pytest.mark.parametrize("kind", ["lstm", "gru", "rnn_tanh", "rnn_relu"])
@pytest.mark.parametrize("reverse", [False, True])
def test_layer_ops_reference_and_gradcheck(device, kind, reverse):
    T, B, H = 3, 2, 3
    k = {"lstm": 4, "gru": 3}.get(kind, 1)
    rng = np.random.default_rng(5)
    xg, w, b, h0, c0 = _leaves(rng, device, (T, B, k * H), (k * H, H), (k * H,), (B, H), (B, H))
    if kind == "lstm":
        def fn(xg, w, b, h0, c0):
            out, h, c = rnn_ops.lstm_layer(xg, w, b, h0, c0, reverse)
            return (out * out).sum() + 2 * h.sum() + 3 * (c * c).sum()
        inputs = (xg, w, b, h0, c0)
    else:
        def fn(xg, w, b, h0):
            if kind == "gru":
                out, h = rnn_ops.gru_layer(xg, w, b, h0, reverse)
            else:
                out, h = rnn_ops.rnn_layer(xg, w, b, h0, kind[4:], reverse)
            return (out * out).sum() + 2 * h.sum()
        inputs = (xg, w, b, h0)
    assert gradcheck(fn, inputs)
    # forward against the reference: the op's input gates are x W_ih^T + b_ih, so feed identity-like pieces
    mode = {"lstm": "LSTM", "gru": "GRU", "rnn_tanh": "RNN_TANH", "rnn_relu": "RNN_RELU"}[kind]
    a = [host(t) for t in inputs]
    h, c = a[3], (a[4] if kind == "lstm" else None)
    expected = np.zeros((T, B, H))
    for t in (range(T - 1, -1, -1) if reverse else range(T)):
        h, c = ref_step(mode, a[0][t], h, c, np.eye(k * H), a[1], 0.0, a[2])
        expected[t] = h
    result = (rnn_ops.lstm_layer(*inputs, reverse) if kind == "lstm" else
              rnn_ops.gru_layer(*inputs, reverse) if kind == "gru" else rnn_ops.rnn_layer(*inputs, kind[4:], reverse))
    assert result[0].device == device
    np.testing.assert_allclose(host(result[0]), expected, atol=1e-12)
    np.testing.assert_allclose(host(result[1]), h, atol=1e-12)
    if kind == "lstm":
        np.testing.assert_allclose(host(result[2]), c, atol=1e-12)


@pytest.mark.parametrize("kind", ["lstm", "gru", "rnn_tanh", "rnn_relu"])
def test_cell_ops_gradcheck(device, kind):
    B, H = 2, 3
    k = {"lstm": 4, "gru": 3}.get(kind, 1)
    rng = np.random.default_rng(6)
    ig, hg, state, bi, bh = _leaves(rng, device, (B, k * H), (B, k * H), (B, H), (k * H,), (k * H,))
    if kind == "lstm":
        def fn(ig, hg, c, bi, bh):
            h, c = rnn_ops.lstm_cell(ig, hg, c, bi, bh)
            return (h * h).sum() + 3 * c.sum()
    elif kind == "gru":
        def fn(ig, hg, h, bi, bh):
            return rnn_ops.gru_cell(ig, hg, h, bi, bh)
    else:
        cell = rnn_ops.rnn_tanh_cell if kind == "rnn_tanh" else rnn_ops.rnn_relu_cell
        inputs = (ig, hg, bi, bh)
        assert gradcheck(lambda ig, hg, bi, bh: cell(ig, hg, bi, bh), inputs)
        return
    assert gradcheck(fn, (ig, hg, state, bi, bh))


@pytest.mark.parametrize("mode", ["LSTM", "GRU"])
def test_module_gradients_through_layers_and_directions(mode):
    """Gradients reach the input and the initial states through 2 bidirectional layers (finite differences)."""
    m = make(mode, 2, 3, num_layers=2, bidirectional=True, batch_first=True, dtype=np.float64)
    rng = np.random.default_rng(7)
    x, h0, c0 = _leaves(rng, "cpu", (2, 3, 2), (4, 2, 3), (4, 2, 3))
    if mode == "LSTM":
        def fn(x, h0, c0):
            out, (h, c) = m(x, (h0, c0))
            return (out * out).sum() + h.sum() + (c * c).sum()
        assert gradcheck(fn, (x, h0, c0))
    else:
        def fn(x, h0):
            out, h = m(x, h0)
            return (out * out).sum() + h.sum()
        assert gradcheck(fn, (x, h0))
    out, _ = m(x, (h0, c0) if mode == "LSTM" else h0)
    out.sum().backward()
    assert all(p.grad is not None and p.grad.shape == p.shape for p in m.parameters())


def test_layer_op_refuses_in_place_edit_of_weight_hh_before_backward():
    rng = np.random.default_rng(8)
    xg, w, b, h0 = _leaves(rng, "cpu", (2, 1, 3), (3, 3), (3,), (1, 3))
    out, _ = rnn_ops.rnn_layer(xg, w, b, h0)
    with fastnn.no_grad():
        w += 1.0
    with pytest.raises(RuntimeError, match="modified by an inplace operation"):
        out.sum().backward()


# ---- argument checks -----------------------------------------------------------------------------------------------
def test_bad_arguments_raise_clear_errors():
    with pytest.raises(ValueError, match="nonlinearity"):
        nn.RNN(3, 4, nonlinearity="sigmoid")
    with pytest.raises(ValueError, match="dropout"):
        nn.LSTM(3, 4, num_layers=2, dropout=1.5)
    with pytest.raises(ValueError, match="hidden_size"):
        nn.GRU(3, 0)
    with pytest.warns(UserWarning, match="num_layers greater than 1"):
        nn.GRU(3, 4, dropout=0.5)
    m = nn.LSTM(3, 4)
    with pytest.raises(ValueError, match="input_size. Expected 3, got 5"):
        m(fastnn.randn(2, 1, 5))
    with pytest.raises(ValueError, match=r"h_0 of shape \(1, 1, 4\)"):
        m(fastnn.randn(2, 1, 3), (fastnn.zeros(2, 1, 4), fastnn.zeros(1, 1, 4)))
    with pytest.raises(TypeError, match=r"tuple \(h_0, c_0\)"):
        m(fastnn.randn(2, 1, 3), fastnn.zeros(1, 1, 4))
    with pytest.raises(ValueError, match="4-D"):
        m(fastnn.randn(2, 1, 1, 3))
    with pytest.raises(ValueError, match="input_gates"):
        rnn_ops.lstm_layer(fastnn.randn(2, 1, 7), fastnn.randn(8, 2), None, fastnn.zeros(1, 2),
                           fastnn.zeros(1, 2))
    with pytest.raises(TypeError, match="float32 or float64"):
        rnn_ops.gru_cell(fastnn.zeros(1, 3, dtype=fastnn.int64), fastnn.zeros(1, 3), fastnn.zeros(1, 1))
    with pytest.raises(ValueError, match="input_size: got 2 expected 3"):
        nn.GRUCell(3, 4)(fastnn.randn(5, 2))


# ---- pad_sequence ----------------------------------------------------------------------------------------------------
def test_pad_sequence_layout_and_gradient():
    pad_sequence = nn.utils.rnn.pad_sequence
    a = fastnn.tensor(np.arange(6.0).reshape(3, 2), requires_grad=True)
    b = fastnn.tensor(np.arange(2.0).reshape(1, 2) + 10, requires_grad=True)
    out = pad_sequence([a, b])
    assert out.shape == (3, 2, 2)
    np.testing.assert_array_equal(host(out)[:, 1], [[10, 11], [0, 0], [0, 0]])
    np.testing.assert_array_equal(host(out)[:, 0], host(a))
    left = pad_sequence([a, b], batch_first=True, padding_value=-1.0, padding_side="left")
    assert left.shape == (2, 3, 2)
    np.testing.assert_array_equal(host(left)[1], [[-1, -1], [-1, -1], [10, 11]])
    (left * fastnn.tensor(np.arange(12.0).reshape(2, 3, 2))).sum().backward()
    np.testing.assert_array_equal(host(b.grad), [[10, 11]])
    np.testing.assert_array_equal(host(a.grad), np.arange(6.0).reshape(3, 2))
    with pytest.raises(ValueError, match="padding_side"):
        pad_sequence([a], padding_side="top")
    with pytest.raises(ValueError, match="trailing shape"):
        pad_sequence([a, fastnn.zeros(2, 3)])


# ---- torch: same weights, same outputs ----------------------------------------------------------------------------
def _load_from_torch(module, torch_module):
    module.load_state_dict({k: fastnn.tensor(v.detach().numpy()) for k, v in torch_module.state_dict().items()})


@pytest.mark.parametrize("mode", MODES)
def test_layers_equal_torch_with_copied_weights(mode):
    torch = pytest.importorskip("torch")
    torch.manual_seed(0)
    kwargs = dict(num_layers=2, bidirectional=True, batch_first=True)
    if mode.startswith("RNN"):
        tm = torch.nn.RNN(5, 6, nonlinearity=mode[4:].lower(), **kwargs)
    else:
        tm = getattr(torch.nn, mode)(5, 6, **kwargs)
    m = make(mode, 5, 6, **kwargs)
    assert list(m.state_dict()) == list(tm.state_dict())
    _load_from_torch(m, tm)
    x = np.random.default_rng(9).standard_normal((3, 7, 5)).astype(np.float32)
    t_out, t_state = tm(torch.from_numpy(x))
    out, state = m(fastnn.tensor(x))
    np.testing.assert_allclose(host(out), t_out.detach().numpy(), atol=1e-5)
    if mode == "LSTM":
        for ours, theirs in zip(state, t_state):
            np.testing.assert_allclose(host(ours), theirs.detach().numpy(), atol=1e-5)
    else:
        np.testing.assert_allclose(host(state), t_state.detach().numpy(), atol=1e-5)
    # gradients of the parameters equal too
    t_out.square().sum().backward()
    (out * out).sum().backward()
    for name, p in tm.named_parameters():
        np.testing.assert_allclose(host(getattr(m, name).grad), p.grad.numpy(), rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("name", ["LSTMCell", "GRUCell", "RNNCell"])
def test_cells_equal_torch_with_copied_weights(name):
    torch = pytest.importorskip("torch")
    torch.manual_seed(0)
    tm, m = getattr(torch.nn, name)(4, 5), getattr(nn, name)(4, 5)
    _load_from_torch(m, tm)
    x = np.random.default_rng(10).standard_normal((3, 4)).astype(np.float32)
    theirs, ours = tm(torch.from_numpy(x)), m(fastnn.tensor(x))
    if name == "LSTMCell":
        theirs, ours = theirs[1], ours[1]
    np.testing.assert_allclose(host(ours), theirs.detach().numpy(), atol=1e-5)


def test_saturated_gates_stay_finite():
    """sigmoid as (1 + tanh(x/2)) / 2: gate pre-activations of +-1e4 saturate to exactly 0/1, never NaN."""
    big = np.full((1, 4), 1e4, np.float32)
    for sign in (1.0, -1.0):
        h, c = rnn_ops.lstm_cell(fastnn.tensor(sign * big), fastnn.tensor(sign * big), fastnn.zeros(1, 1))
        # i = f = o = 1 and g = 1 for +; i = f = o = 0 for -
        np.testing.assert_array_equal(host(c), [[1.0 if sign > 0 else 0.0]])
        np.testing.assert_allclose(host(h), [[np.tanh(1.0) if sign > 0 else 0.0]], rtol=1e-6)


@pytest.mark.parametrize("mode", ["LSTM", "GRU"])
def test_modules_on_another_device_equal_cpu(device, mode):
    m = make(mode, 3, 4, num_layers=2, bidirectional=True, batch_first=True, dtype=np.float64)
    x = np.random.default_rng(12).standard_normal((2, 5, 3))
    expected, _ = m(fastnn.tensor(x))
    expected.sum().backward()
    grads = {k: host(p.grad) for k, p in m.named_parameters()}
    m.zero_grad()
    m.to(device)
    out, _ = m(fastnn.tensor(x, device=device))
    out.sum().backward()
    assert out.device == device
    np.testing.assert_allclose(host(out), host(expected), atol=1e-12)
    for k, p in m.named_parameters():
        np.testing.assert_allclose(host(p.grad), grads[k], atol=1e-12)

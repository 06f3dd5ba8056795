"""Recurrent cells and layers: the gate math of one step fused into one forward and one backward function per cell
kind, used by two kinds of op:

- the cell ops (lstm_cell, gru_cell, rnn_tanh_cell/rnn_relu_cell): one step, for LSTMCell/GRUCell/RNNCell;
- the layer ops (lstm_layer, gru_layer, rnn_layer): the whole time loop of one layer and direction as ONE op,
  taking the input projections of every step (x W_ih^T + b_ih, one GEMM outside) and running the hidden GEMM and
  the fused gate math per step. Backpropagation through time is that op's backward, so a step costs one GEMM and a
  few array passes instead of a handful of graph nodes, and no per-step slice of the input ever needs a
  full-size gradient buffer.

Equations and gate order are PyTorch's (gates are blocks of the 4H/3H dimension):
  LSTM (i, f, g, o): c' = sigmoid(f) * c + sigmoid(i) * tanh(g);  h' = sigmoid(o) * tanh(c')
  GRU  (r, z, n):    r, z = sigmoid(x_r + h_r), sigmoid(x_z + h_z);  n = tanh(x_n + r * h_n);
                     h' = (1 - z) * n + z * h, with b_hn inside r * (W_hn h + b_hn)
  RNN:               h' = tanh or relu(x W_ih^T + b_ih + h W_hh^T + b_hh)
All math runs through the tensor's backend array namespace (`xp`). A one-pass Numba kernel for the LSTM/GRU step
was measured and dropped: its scalar tanh made it 5-8x slower than NumPy's vectorised tanh passes at every size
tried (B x H from 64 x 32 to 256 x 512, float32), and its parallel launches per step cost more than the step.

Several results (h and c, or the output sequence and the final states) come out of one op packed in one array
along a new leading axis and are handed out as views of it (getitem), since a graph node has one output.
"""
import numpy as np

from fastnn.autograd import make_result
from fastnn.ops.shape import getitem, stack
from fastnn.tensor import Tensor

_NONLINEARITIES = ("tanh", "relu")


def _sigmoid(xp, x):
    # sigmoid(x) = (1 + tanh(x / 2)) / 2: no overflow for large |x|, one transcendental
    return xp.tanh(x * x.dtype.type(0.5)) * x.dtype.type(0.5) + x.dtype.type(0.5)


# ---- the fused gate math of one step (arrays in, arrays out) ---------------------------------------------------
# forward(xp, input_gates, hidden_gates, h, c) -> (h', c' or None, workspace)
# backward(xp, d_h', d_c' or None, workspace) -> (d_input_gates, d_hidden_gates, d_h through the gate math only,
#                                                  d_c or None)

def _lstm_forward(xp, input_gates, hidden_gates, h, c):
    gates = input_gates + hidden_gates
    H = c.shape[-1]
    half = gates.dtype.type(0.5)
    act = xp.tanh(gates * half)                      # tanh(x/2) for i, f, o; g is overwritten below
    act *= half
    act += half
    act[:, 2 * H:3 * H] = xp.tanh(gates[:, 2 * H:3 * H])
    i, f, g, o = act[:, :H], act[:, H:2 * H], act[:, 2 * H:3 * H], act[:, 3 * H:]
    c_new = f * c + i * g
    tanh_c = xp.tanh(c_new)
    return o * tanh_c, c_new, (act, c, tanh_c)


def _lstm_backward(xp, d_h, d_c, workspace):
    act, c, tanh_c = workspace
    H = c.shape[-1]
    one = act.dtype.type(1)
    i, f, g, o = act[:, :H], act[:, H:2 * H], act[:, 2 * H:3 * H], act[:, 3 * H:]
    d_cell = d_h * o * (one - tanh_c * tanh_c)
    if d_c is not None:
        d_cell += d_c
    d_gates = xp.empty(act.shape, act.dtype)
    d_gates[:, :H] = d_cell * g * i * (one - i)
    d_gates[:, H:2 * H] = d_cell * c * f * (one - f)
    d_gates[:, 2 * H:3 * H] = d_cell * i * (one - g * g)
    d_gates[:, 3 * H:] = d_h * tanh_c * o * (one - o)
    return d_gates, d_gates, None, d_cell * f


def _gru_forward(xp, input_gates, hidden_gates, h, c):
    H = h.shape[-1]
    rz = _sigmoid(xp, input_gates[:, :2 * H] + hidden_gates[:, :2 * H])
    r, z = rz[:, :H], rz[:, H:]
    h_n = hidden_gates[:, 2 * H:]
    n = xp.tanh(input_gates[:, 2 * H:] + r * h_n)
    h_new = n + z * (h - n)
    return h_new, None, (rz, n, h_n.copy(), h)


def _gru_backward(xp, d_h, d_c, workspace):
    rz, n, h_n, h = workspace
    H = h.shape[-1]
    one = rz.dtype.type(1)
    r, z = rz[:, :H], rz[:, H:]
    d_n_pre = d_h * (one - z) * (one - n * n)
    d_input = xp.empty((h.shape[0], 3 * H), rz.dtype)
    d_input[:, :H] = d_n_pre * h_n * r * (one - r)
    d_input[:, H:2 * H] = d_h * (h - n) * z * (one - z)
    d_input[:, 2 * H:] = d_n_pre
    d_hidden = d_input.copy()
    d_hidden[:, 2 * H:] *= r
    return d_input, d_hidden, d_h * z, None


def _rnn_forward(relu):
    def forward(xp, input_gates, hidden_gates, h, c):
        pre = input_gates + hidden_gates
        out = xp.maximum(pre, pre.dtype.type(0)) if relu else xp.tanh(pre)
        return out, None, (out,)
    return forward


def _rnn_backward(relu):
    def backward(xp, d_h, d_c, workspace):
        (out,) = workspace
        d_pre = d_h * (out > 0) if relu else d_h * (out.dtype.type(1) - out * out)
        return d_pre, d_pre, None, None
    return backward


_CELLS = {
    "lstm": (4, _lstm_forward, _lstm_backward),
    "gru": (3, _gru_forward, _gru_backward),
    "rnn_tanh": (1, _rnn_forward(False), _rnn_backward(False)),
    "rnn_relu": (1, _rnn_forward(True), _rnn_backward(True)),
}


# ---- argument checks ---------------------------------------------------------------------------------------------
def _check_tensor(op, name, t, dtype=None, backend=None):
    if not isinstance(t, Tensor):
        raise TypeError(f"{op}(): {name} must be a Tensor, got {type(t).__name__}")
    if t.dtype not in (np.float32, np.float64):
        raise TypeError(f"{op}(): {name} must be float32 or float64, got {t.dtype}")
    if dtype is not None and t.dtype != dtype:
        raise TypeError(f"{op}(): {name} dtype {t.dtype} does not match {dtype}")
    if backend is not None and t._backend is not backend:
        raise RuntimeError(f"expected all tensors on the same device, got {backend.device} and {t.device}")


def _check_shape(op, name, t, shape):
    if tuple(t.shape) != tuple(shape):
        raise ValueError(f"{op}(): expected {name} of shape {tuple(shape)}, got {tuple(t.shape)}")


def _composite_step(kind, input_gates, hidden_gates, h, c):
    """One step of `kind` from ops, (h', c' or None): the form tangent rules differentiate (the fused math above
    is its array twin)."""
    from fastnn.ops.activation import relu, sigmoid, tanh
    if kind == "lstm":
        i, f, g, o = (input_gates + hidden_gates).chunk(4, 1)
        c_new = sigmoid(f) * c + sigmoid(i) * tanh(g)
        return sigmoid(o) * tanh(c_new), c_new
    if kind == "gru":
        (xr, xz, xn), (hr, hz, hn) = input_gates.chunk(3, 1), hidden_gates.chunk(3, 1)
        r, z = sigmoid(xr + hr), sigmoid(xz + hz)
        return (1 - z) * tanh(xn + r * hn) + z * h, None
    return (tanh if kind == "rnn_tanh" else relu)(input_gates + hidden_gates), None


# ---- one step: the cell ops --------------------------------------------------------------------------------------
def _cell(kind, op, input_gates, hidden_gates, h, c, input_bias, hidden_bias):
    """One step of `kind` on (B, k*H) gate pre-activations; returns h' (and c' for LSTM)."""
    k, forward, backward_step = _CELLS[kind]
    _check_tensor(op, "input_gates", input_gates)
    dtype, backend = input_gates.dtype, input_gates._backend
    _check_tensor(op, "hidden_gates", hidden_gates, dtype, backend)
    state = c if kind == "lstm" else h
    if state is not None:
        _check_tensor(op, "cx" if kind == "lstm" else "hx", state, dtype, backend)
    if input_gates.ndim != 2 or input_gates.shape[1] % k:
        raise ValueError(f"{op}(): input_gates must be (batch, {k} * hidden_size), got {tuple(input_gates.shape)}")
    B, H = input_gates.shape[0], input_gates.shape[1] // k
    _check_shape(op, "hidden_gates", hidden_gates, (B, k * H))
    for name, t in (("hx", h), ("cx", c)):
        if t is not None:
            _check_tensor(op, name, t, dtype, backend)
            _check_shape(op, name, t, (B, H))
    for name, t in (("input_bias", input_bias), ("hidden_bias", hidden_bias)):
        if t is not None:
            _check_tensor(op, name, t, dtype, backend)
            _check_shape(op, name, t, (k * H,))
    ig, hg = input_gates._data, hidden_gates._data
    if input_bias is not None:
        ig = ig + input_bias._data
    if hidden_bias is not None:
        hg = hg + hidden_bias._data
    xp = backend.xp
    h_data = h._data if h is not None else None
    h_new, c_new, workspace = forward(xp, ig, hg, h_data, c._data if c is not None else None)
    inputs = [input_gates, hidden_gates]
    slots = {}
    for name, t in (("h", h if kind == "gru" else None), ("c", c), ("input_bias", input_bias),
                    ("hidden_bias", hidden_bias)):
        if t is not None:
            slots[name] = len(inputs)
            inputs.append(t)
    packed = xp.stack([h_new, c_new]) if kind == "lstm" else h_new

    def backward(g):
        d_h, d_c = (g[0], g[1]) if kind == "lstm" else (g, None)
        d_input, d_hidden, d_h_direct, d_c_prev = backward_step(xp, d_h, d_c, workspace)
        grads = [d_input, d_hidden] + [None] * (len(inputs) - 2)
        if "h" in slots:
            grads[slots["h"]] = d_h_direct
        if "c" in slots:
            grads[slots["c"]] = d_c_prev
        if "input_bias" in slots:
            grads[slots["input_bias"]] = d_input.sum(axis=0)
        if "hidden_bias" in slots:
            grads[slots["hidden_bias"]] = d_hidden.sum(axis=0)
        return tuple(grads)
    def composite(*values):  # the step from ops, on the inputs in `inputs`' order
        named = dict(zip(["input_gates", "hidden_gates"] + list(slots), values))
        ig, hg = named["input_gates"], named["hidden_gates"]
        ig = ig if "input_bias" not in named else ig + named["input_bias"]
        hg = hg if "hidden_bias" not in named else hg + named["hidden_bias"]
        h_new, c_new = _composite_step(kind, ig, hg, named.get("h"), named.get("c"))
        return h_new if c_new is None else stack([h_new, c_new])

    def tangent(*tangents):
        from fastnn.autograd.forward_ad import composite_tangent
        return composite_tangent(composite, inputs, tangents)
    # the backward reads the state's values (kept in the workspace) and nothing else of the inputs
    saved = tuple(t for t in (h if kind == "gru" else None, c) if t is not None)
    out = make_result(packed, tuple(inputs), backward, op, saved=saved, tangent=tangent)
    if kind == "lstm":
        return getitem(out, 0), getitem(out, 1)
    return out


def lstm_cell(input_gates, hidden_gates, cx, input_bias=None, hidden_bias=None):
    """One LSTM step from gate pre-activations (B, 4H) (x W_ih^T and h W_hh^T, biases optional) and the cell state
    cx (B, H): returns (hy, cy). PyTorch's _thnn_fused_lstm_cell."""
    if cx is None:
        raise TypeError("lstm_cell(): cx must be a Tensor, got None")
    return _cell("lstm", "lstm_cell", input_gates, hidden_gates, None, cx, input_bias, hidden_bias)


def gru_cell(input_gates, hidden_gates, hx, input_bias=None, hidden_bias=None):
    """One GRU step from x W_ih^T and h W_hh^T (B, 3H) and hx (B, H): returns hy. b_hh must reach the step as part
    of hidden_gates or as hidden_bias (b_hn sits inside r * (...)). PyTorch's _thnn_fused_gru_cell."""
    if hx is None:
        raise TypeError("gru_cell(): hx must be a Tensor, got None")
    return _cell("gru", "gru_cell", input_gates, hidden_gates, hx, None, input_bias, hidden_bias)


def rnn_tanh_cell(input_gates, hidden_gates, input_bias=None, hidden_bias=None):
    return _cell("rnn_tanh", "rnn_tanh_cell", input_gates, hidden_gates, None, None, input_bias, hidden_bias)


def rnn_relu_cell(input_gates, hidden_gates, input_bias=None, hidden_bias=None):
    return _cell("rnn_relu", "rnn_relu_cell", input_gates, hidden_gates, None, None, input_bias, hidden_bias)


# ---- the time loop of one layer and direction: the layer ops -----------------------------------------------------
def _layer(kind, op, input_gates, weight_hh, bias_hh, hx, cx, reverse):
    """Run `kind` over input_gates (T, B, k*H) from (hx, cx); returns (output (T, B, H), h_n, c_n or None)."""
    k, forward, backward_step = _CELLS[kind]
    _check_tensor(op, "input_gates", input_gates)
    dtype, backend = input_gates.dtype, input_gates._backend
    if input_gates.ndim != 3:
        raise ValueError(f"{op}(): input_gates must be (seq_len, batch, {k} * hidden_size), got "
                         f"{tuple(input_gates.shape)}")
    T, B = input_gates.shape[:2]
    _check_tensor(op, "weight_hh", weight_hh, dtype, backend)
    if weight_hh.ndim != 2 or weight_hh.shape[0] != k * weight_hh.shape[1]:
        raise ValueError(f"{op}(): weight_hh must be ({k} * hidden_size, hidden_size), got "
                         f"{tuple(weight_hh.shape)}")
    H = weight_hh.shape[1]
    if input_gates.shape[2] != k * H:
        raise ValueError(f"{op}(): input_gates' last dimension must be {k} * hidden_size = {k * H}, got "
                         f"{tuple(input_gates.shape)}")
    if T == 0:
        raise ValueError(f"{op}(): the sequence must have at least one step, got input_gates of shape "
                         f"{tuple(input_gates.shape)}")
    if bias_hh is not None:
        _check_tensor(op, "bias_hh", bias_hh, dtype, backend)
        _check_shape(op, "bias_hh", bias_hh, (k * H,))
    _check_tensor(op, "hx", hx, dtype, backend)
    _check_shape(op, "hx", hx, (B, H))
    if kind == "lstm":
        _check_tensor(op, "cx", cx, dtype, backend)
        _check_shape(op, "cx", cx, (B, H))
    xp = backend.xp
    w_hh_t = weight_hh._data.T
    xg = input_gates._data
    # packed result: rows 0..T-1 the outputs (in time order), then c_n for LSTM
    packed = xp.empty((T + (kind == "lstm"), B, H), dtype)
    order = range(T - 1, -1, -1) if reverse else range(T)
    h = hx._data
    c = cx._data if kind == "lstm" else None
    h_prev = xp.empty((T, B, H), dtype)  # the state each step started from, in time order (for dW_hh)
    workspaces = []
    for t in order:
        hg = h @ w_hh_t
        if bias_hh is not None:
            hg += bias_hh._data
        h_prev[t] = h
        h, c, workspace = forward(xp, xg[t], hg, h, c)
        workspaces.append(workspace)
        packed[t] = h
    if kind == "lstm":
        packed[T] = c

    def backward(g):
        d_xg = xp.empty(xg.shape, dtype)
        d_hg = xp.empty(xg.shape, dtype) if kind == "gru" else d_xg  # time order, like d_xg
        d_h = xp.zeros((B, H), dtype)
        d_c = g[T] if kind == "lstm" else None
        for step, t in reversed(list(enumerate(order))):
            d_h = d_h + g[t]
            d_in, d_hid, d_h_direct, d_c = backward_step(xp, d_h, d_c, workspaces[step])
            d_xg[t] = d_in
            if kind == "gru":
                d_hg[t] = d_hid
            d_h = d_hid @ weight_hh._data
            if d_h_direct is not None:
                d_h += d_h_direct
        # dW_hh = sum over steps of d_hidden_gates^T h_prev: one GEMM over all steps
        grad_w = d_hg.reshape(T * B, k * H).T @ h_prev.reshape(T * B, H)
        grads = [d_xg, grad_w]
        if bias_hh is not None:
            grads.append(d_hg.sum(axis=(0, 1)))
        grads.append(d_h)
        if kind == "lstm":
            grads.append(d_c)
        return tuple(grads)
    inputs = (input_gates, weight_hh) + ((bias_hh,) if bias_hh is not None else ()) + (hx,) + (
        (cx,) if kind == "lstm" else ())
    def composite(*values):  # the time loop from ops, on the inputs in `inputs`' order
        values = iter(values)
        gates, w = next(values), next(values)
        b = next(values) if bias_hh is not None else None
        h, c = next(values), (next(values) if kind == "lstm" else None)
        outputs = [None] * T
        for t in order:
            hg = h @ w.t()
            h, c = _composite_step(kind, gates[t], hg if b is None else hg + b, h, c)
            outputs[t] = h
        return stack(outputs + ([c] if kind == "lstm" else []))

    def tangent(*tangents):
        from fastnn.autograd.forward_ad import composite_tangent
        return composite_tangent(composite, inputs, tangents)
    # the backward reads weight_hh; hx/cx and the gates' activations live in its own workspace arrays
    out = make_result(packed, inputs, backward, op, saved=(weight_hh, hx) + ((cx,) if kind == "lstm" else ()),
                      tangent=tangent)
    last = 0 if reverse else T - 1
    if kind == "lstm":
        return getitem(out, slice(0, T)), getitem(out, last), getitem(out, T)
    return out, getitem(out, last), None


def lstm_layer(input_gates, weight_hh, bias_hh, hx, cx, reverse=False):
    """One LSTM layer and direction over input_gates = x W_ih^T + b_ih (T, B, 4H): (output, h_n, c_n)."""
    out, h_n, c_n = _layer("lstm", "lstm_layer", input_gates, weight_hh, bias_hh, hx, cx, reverse)
    return out, h_n, c_n


def gru_layer(input_gates, weight_hh, bias_hh, hx, reverse=False):
    """One GRU layer and direction over input_gates = x W_ih^T + b_ih (T, B, 3H): (output, h_n)."""
    out, h_n, _ = _layer("gru", "gru_layer", input_gates, weight_hh, bias_hh, hx, None, reverse)
    return out, h_n


def rnn_layer(input_gates, weight_hh, bias_hh, hx, nonlinearity="tanh", reverse=False):
    """One Elman RNN layer and direction over input_gates = x W_ih^T + b_ih (T, B, H): (output, h_n)."""
    if nonlinearity not in _NONLINEARITIES:
        raise ValueError(f"rnn_layer(): unknown nonlinearity {nonlinearity!r} (expected 'tanh' or 'relu')")
    out, h_n, _ = _layer("rnn_" + nonlinearity, "rnn_layer", input_gates, weight_hh, bias_hh, hx, None, reverse)
    return out, h_n

"""RNN, LSTM, GRU and their cells, with PyTorch's constructor arguments, parameter names and shapes, gate order
and initialisation, so state_dicts load either way.

Parameters of layer k (suffix "_reverse" for the backward direction): weight_ih_l{k} (G, input), weight_hh_l{k}
(G, hidden), bias_ih_l{k} (G,), bias_hh_l{k} (G,), with G = 4 * hidden (LSTM: i, f, g, o), 3 * hidden (GRU: r, z,
n) or hidden (RNN). Every parameter starts as U(-1/sqrt(hidden), 1/sqrt(hidden)).

Each layer and direction is one input projection (a GEMM over all steps) and one recurrence op
(fastnn.ops.rnn.*_layer) that runs the time loop with the fused gate math.
"""
import math
import numbers
import warnings

import numpy as np

from fastnn import ops
from fastnn._validation import positive_int
from fastnn.nn import init
from fastnn.nn.modules.module import Module
from fastnn.nn.parameter import Parameter
from fastnn.ops import rnn as _rnn
from fastnn.ops.dropout import dropout as _dropout
from fastnn.ops.linalg import linear
from fastnn.tensor import Tensor, as_dtype

_GATES = {"LSTM": 4, "GRU": 3, "RNN_TANH": 1, "RNN_RELU": 1}


def _zeros_like_state(input, shape):
    return Tensor._wrap(input._backend.xp.zeros(shape, input.dtype), input._backend)


class RNNBase(Module):
    def __init__(self, mode, input_size, hidden_size, num_layers=1, bias=True, batch_first=False, dropout=0.0,
                 bidirectional=False, proj_size=0, device=None, dtype=None):
        super().__init__()
        self.mode = mode
        self.input_size = positive_int("input_size", input_size)
        self.hidden_size = positive_int("hidden_size", hidden_size)
        self.num_layers = positive_int("num_layers", num_layers)
        if isinstance(dropout, bool) or not isinstance(dropout, numbers.Real) or not 0 <= dropout <= 1:
            raise ValueError("dropout should be a number in range [0, 1] representing the probability of an "
                             f"element being zeroed, got {dropout!r}")
        if dropout > 0 and num_layers == 1:
            warnings.warn("dropout option adds dropout after all but last recurrent layer, so non-zero dropout "
                          f"expects num_layers greater than 1, but got dropout={dropout} and num_layers=1")
        if proj_size:
            raise NotImplementedError(f"{type(self).__name__}: proj_size > 0 is not supported yet (got "
                                      f"{proj_size!r})")
        self.bias = bool(bias)
        self.batch_first = bool(batch_first)
        self.dropout = float(dropout)
        self.bidirectional = bool(bidirectional)
        self.proj_size = 0
        dtype = as_dtype(dtype or "float32")
        gate_size = _GATES[mode] * self.hidden_size
        directions = 2 if self.bidirectional else 1
        self._flat_weights_names = []
        for layer in range(self.num_layers):
            layer_input = self.input_size if layer == 0 else self.hidden_size * directions
            for direction in range(directions):
                suffix = "_reverse" if direction == 1 else ""
                shapes = [(f"weight_ih_l{layer}{suffix}", (gate_size, layer_input)),
                          (f"weight_hh_l{layer}{suffix}", (gate_size, self.hidden_size))]
                if self.bias:
                    shapes += [(f"bias_ih_l{layer}{suffix}", (gate_size,)),
                               (f"bias_hh_l{layer}{suffix}", (gate_size,))]
                for name, shape in shapes:
                    setattr(self, name, Parameter(np.empty(shape, dtype)))
                    self._flat_weights_names.append(name)
        if device is not None:
            self.to(device)
        self.reset_parameters()

    def reset_parameters(self):
        stdv = 1.0 / math.sqrt(self.hidden_size)
        for weight in self.parameters():
            init.uniform_(weight, -stdv, stdv)

    def flatten_parameters(self):
        """PyTorch compacts the weights into one cuDNN buffer here; fastnn's weights need nothing: a no-op, so
        scripts that call it run unchanged."""

    @property
    def all_weights(self):
        return [[getattr(self, name) for name in self._flat_weights_names[i:i + (4 if self.bias else 2)]]
                for i in range(0, len(self._flat_weights_names), 4 if self.bias else 2)]

    def _layer_params(self, layer, direction):
        suffix = "_reverse" if direction == 1 else ""
        return (getattr(self, f"weight_ih_l{layer}{suffix}"), getattr(self, f"weight_hh_l{layer}{suffix}"),
                getattr(self, f"bias_ih_l{layer}{suffix}") if self.bias else None,
                getattr(self, f"bias_hh_l{layer}{suffix}") if self.bias else None)

    def _check_state(self, name, state, expected):
        if not isinstance(state, Tensor):
            raise TypeError(f"{type(self).__name__}: {name} must be a Tensor, got {type(state).__name__}")
        if tuple(state.shape) != expected:
            raise ValueError(f"{type(self).__name__}: expected {name} of shape {expected}, got "
                             f"{tuple(state.shape)}")

    def forward(self, input, hx=None):
        name = type(self).__name__
        if not isinstance(input, Tensor):
            raise TypeError(f"{name}: input must be a Tensor (PackedSequence is not supported), got "
                            f"{type(input).__name__}")
        if input.ndim not in (2, 3):
            raise ValueError(f"{name}: expected input to be 2-D (unbatched) or 3-D, got {input.ndim}-D tensor of "
                             f"shape {tuple(input.shape)}")
        if input.shape[-1] != self.input_size:
            raise ValueError(f"{name}: input.size(-1) must be equal to input_size. Expected {self.input_size}, "
                             f"got {input.shape[-1]}")
        batched = input.ndim == 3
        is_lstm = self.mode == "LSTM"
        if not batched:
            input = ops.unsqueeze(input, 1)
            if hx is not None:
                hx = tuple(ops.unsqueeze(h, 1) for h in hx) if is_lstm else ops.unsqueeze(hx, 1)
        elif self.batch_first:
            input = ops.transpose(input, 0, 1)
        batch = input.shape[1]
        directions = 2 if self.bidirectional else 1
        state_shape = (self.num_layers * directions, batch, self.hidden_size)
        if hx is None:
            h0 = _zeros_like_state(input, state_shape)
            c0 = _zeros_like_state(input, state_shape) if is_lstm else None
        elif is_lstm:
            if not isinstance(hx, (tuple, list)) or len(hx) != 2:
                raise TypeError(f"LSTM: hx must be a tuple (h_0, c_0), got {type(hx).__name__}")
            h0, c0 = hx
            self._check_state("h_0", h0, state_shape)
            self._check_state("c_0", c0, state_shape)
        else:
            h0, c0 = hx, None
            self._check_state("hx", h0, state_shape)
        layer_input = input
        h_n, c_n = [], []
        for layer in range(self.num_layers):
            outputs = []
            for direction in range(directions):
                index = layer * directions + direction
                w_ih, w_hh, b_ih, b_hh = self._layer_params(layer, direction)
                gates = linear(layer_input, w_ih, b_ih)
                if is_lstm:
                    out, h, c = _rnn.lstm_layer(gates, w_hh, b_hh, h0[index], c0[index], direction == 1)
                    c_n.append(c)
                elif self.mode == "GRU":
                    out, h = _rnn.gru_layer(gates, w_hh, b_hh, h0[index], direction == 1)
                else:
                    out, h = _rnn.rnn_layer(gates, w_hh, b_hh, h0[index], self.mode[4:].lower(), direction == 1)
                outputs.append(out)
                h_n.append(h)
            layer_input = outputs[0] if directions == 1 else ops.cat(outputs, -1)
            if self.dropout > 0 and self.training and layer < self.num_layers - 1:
                layer_input = _dropout(layer_input, self.dropout)
        output = layer_input
        h_n = ops.stack(h_n, 0)
        c_n = ops.stack(c_n, 0) if is_lstm else None
        if not batched:
            output = ops.squeeze(output, 1)
            h_n = ops.squeeze(h_n, 1)
            c_n = ops.squeeze(c_n, 1) if is_lstm else None
        elif self.batch_first:
            output = ops.transpose(output, 0, 1)
        return output, ((h_n, c_n) if is_lstm else h_n)

    def extra_repr(self):
        s = f"{self.input_size}, {self.hidden_size}"
        if self.num_layers != 1:
            s += f", num_layers={self.num_layers}"
        if self.mode == "RNN_RELU":
            s += ", nonlinearity='relu'"
        if not self.bias:
            s += ", bias=False"
        if self.batch_first:
            s += ", batch_first=True"
        if self.dropout:
            s += f", dropout={self.dropout}"
        if self.bidirectional:
            s += ", bidirectional=True"
        return s


class RNN(RNNBase):
    """Elman RNN: h_t = tanh or relu(x_t W_ih^T + b_ih + h_{t-1} W_hh^T + b_hh)."""

    def __init__(self, input_size, hidden_size, num_layers=1, nonlinearity="tanh", bias=True, batch_first=False,
                 dropout=0.0, bidirectional=False, device=None, dtype=None):
        if nonlinearity not in ("tanh", "relu"):
            raise ValueError(f"Unknown nonlinearity '{nonlinearity}'. Select from 'tanh' or 'relu'.")
        super().__init__("RNN_" + nonlinearity.upper(), input_size, hidden_size, num_layers, bias, batch_first,
                         dropout, bidirectional, 0, device, dtype)
        self.nonlinearity = nonlinearity


class LSTM(RNNBase):
    """Long short-term memory (gates i, f, g, o); forward returns (output, (h_n, c_n))."""

    def __init__(self, input_size, hidden_size, num_layers=1, bias=True, batch_first=False, dropout=0.0,
                 bidirectional=False, proj_size=0, device=None, dtype=None):
        super().__init__("LSTM", input_size, hidden_size, num_layers, bias, batch_first, dropout, bidirectional,
                         proj_size, device, dtype)


class GRU(RNNBase):
    """Gated recurrent unit (gates r, z, n; b_hn inside r * (W_hn h + b_hn)); forward returns (output, h_n)."""

    def __init__(self, input_size, hidden_size, num_layers=1, bias=True, batch_first=False, dropout=0.0,
                 bidirectional=False, device=None, dtype=None):
        super().__init__("GRU", input_size, hidden_size, num_layers, bias, batch_first, dropout, bidirectional, 0,
                         device, dtype)


class RNNCellBase(Module):
    def __init__(self, input_size, hidden_size, bias, num_chunks, device=None, dtype=None):
        super().__init__()
        self.input_size = positive_int("input_size", input_size)
        self.hidden_size = positive_int("hidden_size", hidden_size)
        self.bias = bool(bias)
        dtype = as_dtype(dtype or "float32")
        self.weight_ih = Parameter(np.empty((num_chunks * self.hidden_size, self.input_size), dtype))
        self.weight_hh = Parameter(np.empty((num_chunks * self.hidden_size, self.hidden_size), dtype))
        if self.bias:
            self.bias_ih = Parameter(np.empty(num_chunks * self.hidden_size, dtype))
            self.bias_hh = Parameter(np.empty(num_chunks * self.hidden_size, dtype))
        else:
            self.register_parameter("bias_ih", None)
            self.register_parameter("bias_hh", None)
        if device is not None:
            self.to(device)
        self.reset_parameters()

    reset_parameters = RNNBase.reset_parameters

    def _prepare(self, input, hx, states):
        """(input as (B, input_size), the states as (B, hidden) (zeros when hx is None), batched?)."""
        name = type(self).__name__
        if not isinstance(input, Tensor):
            raise TypeError(f"{name}: input must be a Tensor, got {type(input).__name__}")
        if input.ndim not in (1, 2):
            raise ValueError(f"{name}: Expected input to be 1D or 2D, got {input.ndim}D instead")
        if input.shape[-1] != self.input_size:
            raise ValueError(f"{name}: input has inconsistent input_size: got {input.shape[-1]} expected "
                             f"{self.input_size}")
        batched = input.ndim == 2
        if not batched:
            input = ops.unsqueeze(input, 0)
        shape = (input.shape[0], self.hidden_size)
        if hx is None:
            return input, [_zeros_like_state(input, shape) for _ in range(states)], batched
        hx = list(hx) if states > 1 else [hx]
        out = []
        for h in hx:
            if not isinstance(h, Tensor):
                raise TypeError(f"{name}: hx must be a Tensor, got {type(h).__name__}")
            if not batched:
                h = ops.unsqueeze(h, 0)
            if tuple(h.shape) != shape:
                raise ValueError(f"{name}: expected hidden state of shape {shape[1:] if not batched else shape}, "
                                 f"got {tuple(h.shape if batched else h.shape[1:])}")
            out.append(h)
        return input, out, batched

    def extra_repr(self):
        s = f"{self.input_size}, {self.hidden_size}"
        if not self.bias:
            s += ", bias=False"
        if getattr(self, "nonlinearity", "tanh") != "tanh":
            s += f", nonlinearity={self.nonlinearity!r}"
        return s


class LSTMCell(RNNCellBase):
    def __init__(self, input_size, hidden_size, bias=True, device=None, dtype=None):
        super().__init__(input_size, hidden_size, bias, 4, device, dtype)

    def forward(self, input, hx=None):
        input, (h, c), batched = self._prepare(input, hx, 2)
        h, c = _rnn.lstm_cell(linear(input, self.weight_ih), linear(h, self.weight_hh), c, self.bias_ih,
                              self.bias_hh)
        return (h, c) if batched else (ops.squeeze(h, 0), ops.squeeze(c, 0))


class GRUCell(RNNCellBase):
    def __init__(self, input_size, hidden_size, bias=True, device=None, dtype=None):
        super().__init__(input_size, hidden_size, bias, 3, device, dtype)

    def forward(self, input, hx=None):
        input, (h,), batched = self._prepare(input, hx, 1)
        h = _rnn.gru_cell(linear(input, self.weight_ih), linear(h, self.weight_hh), h, self.bias_ih,
                          self.bias_hh)
        return h if batched else ops.squeeze(h, 0)


class RNNCell(RNNCellBase):
    def __init__(self, input_size, hidden_size, bias=True, nonlinearity="tanh", device=None, dtype=None):
        if nonlinearity not in ("tanh", "relu"):
            raise ValueError(f"Unknown nonlinearity: {nonlinearity!r} (expected 'tanh' or 'relu')")
        super().__init__(input_size, hidden_size, bias, 1, device, dtype)
        self.nonlinearity = nonlinearity

    def forward(self, input, hx=None):
        input, (h,), batched = self._prepare(input, hx, 1)
        cell = _rnn.rnn_tanh_cell if self.nonlinearity == "tanh" else _rnn.rnn_relu_cell
        h = cell(linear(input, self.weight_ih), linear(h, self.weight_hh), self.bias_ih, self.bias_hh)
        return h if batched else ops.squeeze(h, 0)

"""Plain-NumPy references for the recurrent-cell kernels in cpu_rnn.py (same signatures, same layouts).

Gate pre-activations are (B, 4H) for LSTM (blocks i, f, g, o) and (B, 3H) for GRU (r, z, n), as in PyTorch.
`act` holds the activated gates: sigmoid for i, f, o, r, z; tanh for g and n.
"""
import numpy as np


def _sigmoid(x):
    # (1 + tanh(x / 2)) / 2: sigmoid without overflow for large |x|
    return np.tanh(x * x.dtype.type(0.5)) * x.dtype.type(0.5) + x.dtype.type(0.5)


def lstm_cell_forward(input_gates, hidden_gates, c):
    """(h', c', act, tanh(c')) from the two gate pre-activation arrays and the cell state c (B, H)."""
    H = c.shape[1]
    gates = input_gates + hidden_gates
    act = _sigmoid(gates)
    act[:, 2 * H:3 * H] = np.tanh(gates[:, 2 * H:3 * H])
    i, f, g, o = act[:, :H], act[:, H:2 * H], act[:, 2 * H:3 * H], act[:, 3 * H:]
    c_new = f * c + i * g
    tanh_c = np.tanh(c_new)
    return o * tanh_c, c_new, act, tanh_c


def lstm_cell_backward(grad_h, grad_c, act, c, tanh_c):
    """(d gate pre-activations (B, 4H), d c) from the gradients of h' and c'."""
    H = c.shape[1]
    one = act.dtype.type(1)
    i, f, g, o = act[:, :H], act[:, H:2 * H], act[:, 2 * H:3 * H], act[:, 3 * H:]
    d_cell = grad_c + grad_h * o * (one - tanh_c * tanh_c)
    d_gates = np.concatenate([d_cell * g * i * (one - i), d_cell * c * f * (one - f), d_cell * i * (one - g * g),
                              grad_h * tanh_c * o * (one - o)], axis=1)
    return d_gates, d_cell * f


def gru_cell_forward(input_gates, hidden_gates, h):
    """(h', act) with n = tanh(x_n + r * h_n): hidden_gates' n block holds W_hn h + b_hn."""
    H = h.shape[1]
    rz = _sigmoid(input_gates[:, :2 * H] + hidden_gates[:, :2 * H])
    n = np.tanh(input_gates[:, 2 * H:] + rz[:, :H] * hidden_gates[:, 2 * H:])
    z = rz[:, H:]
    return n + z * (h - n), np.concatenate([rz, n], axis=1)


def gru_cell_backward(grad_h, act, hidden_gates, h):
    """(d input gates (B, 3H), d hidden gates (B, 3H), d h through the z * h term)."""
    H = h.shape[1]
    one = act.dtype.type(1)
    r, z, n = act[:, :H], act[:, H:2 * H], act[:, 2 * H:]
    d_n = grad_h * (one - z) * (one - n * n)
    d_r = d_n * hidden_gates[:, 2 * H:] * r * (one - r)
    d_z = grad_h * (h - n) * z * (one - z)
    return (np.concatenate([d_r, d_z, d_n], axis=1), np.concatenate([d_r, d_z, d_n * r], axis=1), grad_h * z)

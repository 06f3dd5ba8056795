"""Recurrent-cell kernels (Numba, CPU): the gate math of one LSTM or GRU step in one pass over the batch rows.

Layouts as ref_rnn.py (the plain-NumPy reference): gates (B, 4H) in PyTorch's order i, f, g, o; GRU (B, 3H) r,
z, n. Each prange iteration owns one batch row: no shared writes. Scalars are cast to the array dtype, so float32
stays float32. sigmoid(x) = (1 + tanh(x/2)) / 2 (no overflow).
"""
import numpy as np
from numba import njit, prange

__all__ = ["lstm_cell_forward", "lstm_cell_backward", "gru_cell_forward", "gru_cell_backward"]


@njit(parallel=True, cache=True)
def lstm_cell_forward(input_gates, hidden_gates, c):
    B, H = c.shape
    half = c.dtype.type(0.5)
    h_new = np.empty_like(c)
    c_new = np.empty_like(c)
    tanh_c = np.empty_like(c)
    act = np.empty_like(input_gates)
    for b in prange(B):
        for j in range(H):
            i = np.tanh((input_gates[b, j] + hidden_gates[b, j]) * half) * half + half
            f = np.tanh((input_gates[b, H + j] + hidden_gates[b, H + j]) * half) * half + half
            g = np.tanh(input_gates[b, 2 * H + j] + hidden_gates[b, 2 * H + j])
            o = np.tanh((input_gates[b, 3 * H + j] + hidden_gates[b, 3 * H + j]) * half) * half + half
            cell = f * c[b, j] + i * g
            t = np.tanh(cell)
            act[b, j] = i
            act[b, H + j] = f
            act[b, 2 * H + j] = g
            act[b, 3 * H + j] = o
            c_new[b, j] = cell
            tanh_c[b, j] = t
            h_new[b, j] = o * t
    return h_new, c_new, act, tanh_c


@njit(parallel=True, cache=True)
def lstm_cell_backward(grad_h, grad_c, act, c, tanh_c):
    B, H = c.shape
    one = c.dtype.type(1)
    d_gates = np.empty_like(act)
    d_c = np.empty_like(c)
    for b in prange(B):
        for j in range(H):
            i = act[b, j]
            f = act[b, H + j]
            g = act[b, 2 * H + j]
            o = act[b, 3 * H + j]
            t = tanh_c[b, j]
            gh = grad_h[b, j]
            d_cell = grad_c[b, j] + gh * o * (one - t * t)
            d_gates[b, j] = d_cell * g * i * (one - i)
            d_gates[b, H + j] = d_cell * c[b, j] * f * (one - f)
            d_gates[b, 2 * H + j] = d_cell * i * (one - g * g)
            d_gates[b, 3 * H + j] = gh * t * o * (one - o)
            d_c[b, j] = d_cell * f
    return d_gates, d_c


@njit(parallel=True, cache=True)
def gru_cell_forward(input_gates, hidden_gates, h):
    B, H = h.shape
    half = h.dtype.type(0.5)
    h_new = np.empty_like(h)
    act = np.empty_like(input_gates)
    for b in prange(B):
        for j in range(H):
            r = np.tanh((input_gates[b, j] + hidden_gates[b, j]) * half) * half + half
            z = np.tanh((input_gates[b, H + j] + hidden_gates[b, H + j]) * half) * half + half
            n = np.tanh(input_gates[b, 2 * H + j] + r * hidden_gates[b, 2 * H + j])
            act[b, j] = r
            act[b, H + j] = z
            act[b, 2 * H + j] = n
            h_new[b, j] = n + z * (h[b, j] - n)
    return h_new, act


@njit(parallel=True, cache=True)
def gru_cell_backward(grad_h, act, hidden_gates, h):
    B, H = h.shape
    one = h.dtype.type(1)
    d_input = np.empty_like(act)
    d_hidden = np.empty_like(act)
    d_h = np.empty_like(h)
    for b in prange(B):
        for j in range(H):
            r = act[b, j]
            z = act[b, H + j]
            n = act[b, 2 * H + j]
            gh = grad_h[b, j]
            d_n = gh * (one - z) * (one - n * n)
            d_r = d_n * hidden_gates[b, 2 * H + j] * r * (one - r)
            d_z = gh * (h[b, j] - n) * z * (one - z)
            d_input[b, j] = d_r
            d_input[b, H + j] = d_z
            d_input[b, 2 * H + j] = d_n
            d_hidden[b, j] = d_r
            d_hidden[b, H + j] = d_z
            d_hidden[b, 2 * H + j] = d_n * r
            d_h[b, j] = gh * z
    return d_input, d_hidden, d_h

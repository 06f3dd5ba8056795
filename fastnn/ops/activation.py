"""Activation functions and softmax."""
import numpy as np

from fastnn.autograd import make_result
from fastnn.ops._util import normalize_dim


def relu(x):
    out = np.maximum(x.data, 0)
    return make_result(out, (x,), lambda g: (g * (out > 0),), "relu")


def sigmoid(x):
    # exp of a non-positive number never overflows: split by sign.
    z = np.exp(-np.abs(x.data))
    out = np.where(x.data >= 0, 1 / (1 + z), z / (1 + z)).astype(x.dtype)
    return make_result(out, (x,), lambda g: (g * out * (1 - out),), "sigmoid")


def tanh(x):
    out = np.tanh(x.data)
    return make_result(out, (x,), lambda g: (g * (1 - out * out),), "tanh")


def _log_softmax_array(data, axis):
    shifted = data - np.amax(data, axis=axis, keepdims=True)
    return shifted - np.log(np.sum(np.exp(shifted), axis=axis, keepdims=True))


def log_softmax(x, dim):
    axis = normalize_dim(dim, x.ndim)
    out = _log_softmax_array(x.data, axis)

    def backward(g):
        return (g - np.exp(out) * np.sum(g, axis=axis, keepdims=True),)
    return make_result(out, (x,), backward, "log_softmax")


def softmax(x, dim):
    axis = normalize_dim(dim, x.ndim)
    out = np.exp(_log_softmax_array(x.data, axis))

    def backward(g):
        return (out * (g - np.sum(g * out, axis=axis, keepdims=True)),)
    return make_result(out, (x,), backward, "softmax")

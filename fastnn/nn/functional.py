"""fastnn.nn.functional: the stateless form of every layer, with PyTorch's names and signatures.

The math lives in fastnn.ops; this module is the public face layers and users call.
"""
from fastnn import ops
from fastnn.ops import (binary_cross_entropy_with_logits, cross_entropy, l1_loss, linear, mse_loss, nll_loss,
                        pad, sigmoid, tanh)
from fastnn.ops.conv import conv2d
from fastnn.ops.pool import avg_pool2d, max_pool2d

__all__ = ["avg_pool2d", "binary_cross_entropy_with_logits", "conv2d", "cross_entropy", "flatten", "l1_loss",
           "linear", "log_softmax", "max_pool2d", "mse_loss", "nll_loss", "pad", "relu", "sigmoid", "softmax",
           "tanh"]


def relu(input, inplace=False):
    return ops.relu(input)


def softmax(input, dim):
    return ops.softmax(input, dim)


def log_softmax(input, dim):
    return ops.log_softmax(input, dim)


def flatten(input, start_dim=1, end_dim=-1):
    return ops.flatten(input, start_dim, end_dim)

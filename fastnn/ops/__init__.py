"""Differentiable ops: each defines its forward and backward side by side (see fastnn.autograd.make_result)."""
from fastnn.ops._util import shape_args
from fastnn.ops.activation import log_softmax, relu, sigmoid, softmax, tanh
from fastnn.ops.elementwise import (abs, add, astype, clamp, clone, div, eq, exp, ge, gt, le, log, lt, maximum,
                                    minimum, mul, ne, neg, pow, sqrt, sub, to_device, where)
from fastnn.ops.linalg import linear, matmul
from fastnn.ops.loss import (binary_cross_entropy_with_logits, cross_entropy, l1_loss, mse_loss, nll_loss)
from fastnn.ops.reduce import amax, amin, argmax, argmin, logsumexp, max, mean, min, std, sum, var
from fastnn.ops.shape import (cat, expand, flatten, getitem, pad, permute, reshape, squeeze, stack, to_index,
                              transpose, unsqueeze)

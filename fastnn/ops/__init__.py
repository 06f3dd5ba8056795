"""Differentiable ops: each defines its forward and backward side by side (see fastnn.autograd.make_result)."""
from fastnn.ops._util import shape_args
from fastnn.ops.activation import log_softmax, relu, sigmoid, softmax, tanh
from fastnn.ops.elementwise import (abs, add, astype, clamp, clone, div, eq, exp, ge, gt, le, log, lt, maximum,
                                    minimum, mul, ne, neg, pow, sqrt, sub, to_device)
from fastnn.ops.indexing import (argsort, argwhere, gather, index_add, index_select, kthvalue, masked_fill,
                                 masked_select, median, mode, nonzero, scatter, scatter_add, sort, take_along_dim,
                                 topk, unique, where)
from fastnn.ops.linalg import linear, matmul
from fastnn.ops.loss import (binary_cross_entropy_with_logits, cross_entropy, l1_loss, mse_loss, nll_loss)
from fastnn.ops.math import (acos, addmm, all, allclose, any, asin, atan, atan2, bincount, bitwise_and, bitwise_not,
                             bitwise_or, bitwise_xor, bmm, bucketize, ceil, clamp_max, clamp_min, cos, cosh,
                             count_nonzero, cumprod, cumsum, diag, diagonal, dist, einsum, equal, erf, exp2, expm1,
                             floor, floor_divide, fmod, isfinite, isinf, isnan, lerp, log10, log1p, log2, logical_and,
                             logical_not, logical_or, logical_xor, mm, nan_to_num, outer, prod, reciprocal, remainder,
                             round, rsqrt, searchsorted, sign, sin, sinh, square, tan, trace, tril, triu, trunc)
from fastnn.ops.random import bernoulli, multinomial
from fastnn.ops.reduce import amax, amin, argmax, argmin, logsumexp, max, mean, min, std, sum, var
from fastnn.ops.shape import (broadcast_tensors, broadcast_to, cat, chunk, column_stack, expand, flatten, flip,
                              getitem, hstack, index_put, meshgrid, movedim, narrow, pad, permute, repeat,
                              repeat_interleave, reshape, roll, row_stack, split, squeeze, stack, swapaxes, t, tile,
                              to_index, transpose, unbind, unflatten, unsqueeze, vstack)
# norm (the vector norm) is fastnn.ops.math.norm: the name fastnn.ops.norm is the normalization-ops module.

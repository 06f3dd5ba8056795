"""fastnn: a standalone deep-learning framework on NumPy with Numba kernels and a PyTorch-shaped API."""
# autograd first: tensor.py and autograd.py refer to each other (see the bottom of autograd.py).
from fastnn import autograd
from fastnn.autograd import enable_grad, is_grad_enabled, no_grad, set_grad_enabled
from fastnn.tensor import (Tensor, bool_, float16, float32, float64, int32, int64, uint8)
from fastnn.random import default_generator, get_rng_state, manual_seed, set_rng_state
from fastnn.serialization import load, save
from fastnn._dispatch import get_num_threads, set_num_threads
from fastnn.factory import (arange, as_tensor, empty, empty_like, eye, from_numpy, full, full_like, linspace,
                            logspace, ones, ones_like, rand, rand_like, randint, randint_like, randn, randn_like,
                            randperm, tensor, zeros, zeros_like)
from fastnn.ops import (abs, amax, amin, argmax, argmin, cat, clamp, exp, flatten, log, logsumexp, matmul,
                        maximum, mean, minimum, permute, reshape, sigmoid, softmax, sqrt, squeeze, stack, std,
                        sum, tanh, transpose, unsqueeze, var, where)
from fastnn.ops import (acos, add, addmm, allclose, argsort, argwhere, asin, atan, atan2, bernoulli, bmm, ceil,
                        chunk, clone, cos, cosh, cumprod, cumsum, diag, dist, div, einsum, eq, equal, erf, exp2,
                        expm1, flip, floor, fmod, gather, ge, gt, index_add, index_select, isfinite, isinf, isnan,
                        kthvalue, le, lerp, log1p, log2, log10, lt, masked_fill, masked_select, median, mm, mode,
                        movedim, mul, multinomial, nan_to_num, narrow, ne, neg, nonzero, outer, prod,
                        reciprocal, remainder, repeat_interleave, roll, rsqrt, scatter, scatter_add, sign, sin,
                        sinh, sort, split, square, sub, swapaxes, t, take_along_dim, tan, tile, topk, tril, triu,
                        trunc, unbind, unflatten, unique)
from fastnn.ops import (bincount, bitwise_and, bitwise_not, bitwise_or, bitwise_xor, bucketize, clamp_max, clamp_min,
                        count_nonzero, diagonal, floor_divide, logical_and, logical_not, logical_or, logical_xor,
                        searchsorted, trace)
from fastnn.ops import (broadcast_tensors, broadcast_to, column_stack, hstack, meshgrid, row_stack, vstack)
from fastnn.ops.math import norm
from fastnn.ops import all, any, max, min, pow, relu, round  # noqa: F401  (shadow builtins only in this namespace)
clip, moveaxis, arcsin, arccos, arctan, arctan2 = clamp, movedim, asin, acos, atan, atan2  # PyTorch's aliases


def is_tensor(obj):
    return isinstance(obj, Tensor)


def is_floating_point(input):
    return input.is_floating_point()


def numel(input):
    return input.numel()
from fastnn.summary import summary
from fastnn._dispatch import device
from fastnn import data, models, nn, optim  # noqa: E402  (subpackages build on the names above)
from fastnn import accelerator, backends, cuda, utils  # noqa: E402,F401
from fastnn import func  # noqa: E402,F401  (fastnn.func: function transforms, as torch.func)

# PyTorch's dtype aliases (fastnn.float is float32, fastnn.long int64, ...); they shadow the builtins only as
# attributes of this namespace, as torch.float does.
float, double, half, long, int, bool = float32, float64, float16, int64, int32, bool_  # noqa: A001

__version__ = "0.1.0"

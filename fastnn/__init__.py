"""fastnn: a standalone deep-learning framework on NumPy with Numba kernels and a PyTorch-shaped API."""
# autograd first: tensor.py and autograd.py refer to each other (see the bottom of autograd.py).
from fastnn import autograd
from fastnn.autograd import enable_grad, is_grad_enabled, no_grad, set_grad_enabled
from fastnn.tensor import (Tensor, bool_, float16, float32, float64, int32, int64, uint8)
from fastnn.random import (Generator, default_generator, get_rng_state, initial_seed, manual_seed, seed,
                           set_rng_state)
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
from fastnn.tensor import (can_cast, finfo, get_default_dtype, iinfo, is_complex, is_signed, promote_types,
                           result_type, set_default_dtype, set_printoptions)
from fastnn.ops.math import (addbmm, addcdiv, addcmul, addmv, addr, baddbmm, cdist, copysign, cross, deg2rad, dot,
                             erfc, fmax, fmin, frac, heaviside, hypot, inner, isclose, isneginf, isposinf, kron,
                             logaddexp, logaddexp2, logcumsumexp, logdet, logit, mv, rad2deg, signbit, sinc,
                             tensordot, vdot, xlogy)
from fastnn.ops.reduce import (aminmax, nanmean, nanmedian, nanquantile, nansum, quantile, std_mean, var_mean)
from fastnn.ops.indexing import (cummax, cummin, histc, index_copy, index_fill, isin, masked_scatter, put,
                                 scatter_reduce, take, unique_consecutive)
from fastnn.ops.shape import (atleast_1d, atleast_2d, atleast_3d, block_diag, broadcast_shapes, cartesian_prod,
                              combinations, diff, dsplit, dstack, fliplr, flipud, hsplit, ravel, rot90, select,
                              split_with_sizes, tensor_split, vsplit)
from fastnn.ops.math import (acosh, arccosh, arcsinh, arctanh, asinh, atanh, corrcoef, cov, diag_embed, diagflat,
                             float_power, matrix_power, msort, rsub, sgn, trapezoid, trapz, vander)
from fastnn.ops.shape import unravel_index
from fastnn.ops.math import digamma, erfinv, lgamma, polygamma
from fastnn.ops.random import normal
from fastnn.factory import tril_indices, triu_indices
from fastnn.ops import all, any, max, min, pow, relu, round  # noqa: F401  (shadow builtins only in this namespace)
clip, moveaxis, arcsin, arccos, arctan, arctan2 = clamp, movedim, asin, acos, atan, atan2  # PyTorch's aliases
swapdims, concat, concatenate, ger = swapaxes, cat, cat, outer
greater, greater_equal, less, less_equal, not_equal = gt, ge, lt, le, ne
multiply, true_divide, negative = mul, div, neg


def positive(input):
    return input


def subtract(input, other, *, alpha=1):
    """input - alpha * other."""
    return sub(input, other if alpha == 1 else mul(other, alpha))


def divide(input, other, *, rounding_mode=None):
    """input / other; rounding_mode 'trunc' or 'floor' rounds the quotient (integers stay integers)."""
    if rounding_mode is None:
        return div(input, other)
    if rounding_mode == "floor":
        return floor_divide(input, other)
    if rounding_mode == "trunc":
        dtype = result_type(input, other)
        q = trunc(div(input, other))
        return q.to(dtype=dtype) if dtype.kind in "iu" else q
    raise ValueError(f"div expected rounding_mode to be one of None, 'trunc', or 'floor' but found {rounding_mode!r}")


def is_nonzero(input):
    return input.is_nonzero()


def is_same_size(input, other):
    return input.is_same_size(other)


def get_device(input):
    return input.get_device()


def detach(input):
    return input.detach()


def scalar_tensor(s, *, dtype=None, device=None, requires_grad=False):
    """A 0-d tensor holding the number s (the default float dtype unless dtype is given)."""
    return tensor(s, dtype=dtype or get_default_dtype(), device=device, requires_grad=requires_grad)


asarray = as_tensor


def pinverse(input, rcond=1e-15):
    return linalg.pinv(input, rtol=rcond)


def cholesky(input, upper=False):
    return linalg.cholesky(input, upper=upper)


def qr(input, some=True):
    return input.qr(some)


def svd(input, some=True, compute_uv=True):
    return input.svd(some, compute_uv)


def matrix_rank(input, tol=None, symmetric=False):
    return linalg.matrix_rank(input, atol=tol)


def is_inference_mode_enabled():
    return _inference_depth[0] > 0


_matmul_precision = ["highest"]


def set_float32_matmul_precision(precision):
    """Accepted ('highest', 'high', 'medium'): fastnn's float32 matrix products always use full float32."""
    if precision not in ("highest", "high", "medium"):
        raise ValueError(f"set_float32_matmul_precision: expected 'highest', 'high' or 'medium', got {precision!r}")
    _matmul_precision[0] = precision


def get_float32_matmul_precision():
    return _matmul_precision[0]


def inverse(input):
    return linalg.inv(input)


def det(input):
    return linalg.det(input)


def slogdet(input):
    return linalg.slogdet(input)


def use_deterministic_algorithms(mode, *, warn_only=False):
    """Accepted: every fastnn op is deterministic already (reductions have a fixed order, no atomics)."""
    _deterministic[0] = not not mode  # (`bool` is fastnn.bool, the dtype, in this namespace)


def are_deterministic_algorithms_enabled():
    return _deterministic[0]


_deterministic = [False]


class inference_mode(autograd._GradMode):
    """torch.inference_mode(mode=True): no graph is recorded inside (fastnn has no separate inference tensors,
    so this is no_grad; inference_mode(False) leaves grad mode as it is)."""

    def __new__(cls, mode=True):
        if callable(mode):  # bare @inference_mode
            return cls()(mode)
        self = object.__new__(cls)
        self._enabled = not not mode
        return self

    def __init__(self, mode=True):
        pass

    def _recreate_cm(self):
        return type(self)(self._enabled)

    def __enter__(self):
        self._mode = False if self._enabled else is_grad_enabled()
        _inference_depth[0] += self._enabled
        return super().__enter__()

    def __exit__(self, *exc):
        _inference_depth[0] -= self._enabled
        return super().__exit__(*exc)


_inference_depth = [0]


def is_tensor(obj):
    return isinstance(obj, Tensor)


def is_floating_point(input):
    return input.is_floating_point()


def numel(input):
    return input.numel()
from fastnn.summary import summary
from fastnn._dispatch import device
from fastnn import data, models, nn, optim  # noqa: E402  (subpackages build on the names above)
from fastnn import _torch_namespace  # noqa: E402  (torch.conv2d, torch.dropout, torch.exp_, ...: over nn.functional)
globals().update({name: getattr(_torch_namespace, name) for name in _torch_namespace.__all__})
from fastnn import accelerator, backends, cuda, linalg, onnx, utils  # noqa: E402,F401
from fastnn import func  # noqa: E402,F401  (fastnn.func: function transforms, as torch.func)

# PyTorch's dtype aliases (fastnn.float is float32, fastnn.long int64, ...); they shadow the builtins only as
# attributes of this namespace, as torch.float does.
float, double, half, long, int, bool = float32, float64, float16, int64, int32, bool_  # noqa: A001

__version__ = "0.1.0"

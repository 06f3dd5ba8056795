"""Activation kernels (Numba, CPU): fused element-wise forward and backward passes, PReLU, maxout.

Element-wise kernels take 1-D C-contiguous float32/float64 arrays and scalars already cast to the array
dtype; each forward writes its output in one pass into `out` (a new array, or x itself for PyTorch's in-place
forms: element i is read before it is written, so the alias is safe) and each backward computes grad_in from
grad_out and the saved input (or output) in one pass. Every exponential is taken of a non-positive argument (exp(-|x|),
expm1(min(x, 0))), so nothing overflows: saturating activations reach exact 0/1 (or x) with no inf or NaN.

exp, expm1, log1p and (float32) erf are computed here rather than by libm: a scalar libm call keeps LLVM from
vectorizing the loop, while these helpers are plain arithmetic that compiles to AVX2 code. `_exp_nonpositive`
is 2**k (built from exponent bits) times a Taylor polynomial, `_log1p_unit` an atanh series, both with a
per-dtype degree for ~1-2 ulp; float32 erf is the Abramowitz-Stegun formula PyTorch's CPU kernels use
(|error| <= 1.5e-7), float64 erf is libm's. exp results below the smallest normal number (x < -87.3 in float32,
< -708.4 in float64) are flushed to 0.

PReLU kernels see the input as (outer, C, inner) and maxout kernels as (outer, groups * pieces, inner); both
parallelize over (outer, channel-or-group) rows. Softmax kernels see it as (outer, C, inner), normalise over C
and parallelize over outer: with inner > 1 (softmax over dim 1 of NCHW) each pass sweeps the contiguous inner
axis, so it vectorizes; with inner == 1 (the last dim) each row is contiguous and its sums are reassociated
(`_row_sum`). Reductions (the PReLU weight gradient, the learnable-swish
beta gradient) are written per row or per fixed block and summed by the caller, so results are deterministic.
"""
import math

import numpy as np
from llvmlite import ir
from numba import njit, prange, types
from numba.extending import intrinsic, overload

__all__ = ["hardtanh_forward", "hardtanh_backward", "leaky_relu_forward", "leaky_relu_backward",
           "elu_forward", "elu_backward", "gelu_forward", "gelu_backward", "sigmoid_forward", "sigmoid_backward",
           "tanh_forward", "tanh_backward", "swish_forward", "swish_backward", "swish_backward_with_beta",
           "softplus_forward", "softplus_backward", "mish_forward", "mish_backward", "prelu_forward",
           "prelu_backward", "maxout_forward", "maxout_backward", "softmax_forward", "softmax_backward"]

# Elements per prange iteration when a kernel also reduces (one partial sum per block, summed by the caller).
REDUCTION_BLOCK = 16384
# Kernels with polynomial math may fuse a * b + c into one FMA: a third fewer instructions and one rounding
# instead of two; the compiled code fixes where, so results stay bit-identical run to run.
FMA = {"contract"}


# ---- vectorizable exponentials -------------------------------------------------------------------------
@intrinsic
def _pow2(typingctx, k):
    """2**k for an integer-valued float k within the normal exponent range, assembled from exponent bits."""
    width, mantissa = {types.float32: (32, 23), types.float64: (64, 52)}[k]

    def codegen(context, builder, signature, args):
        int_type = ir.IntType(width)
        exponent = builder.fptosi(args[0], int_type)
        biased = builder.add(exponent, ir.Constant(int_type, (1 << (width - mantissa - 2)) - 1))
        return builder.bitcast(builder.shl(biased, ir.Constant(int_type, mantissa)), context.get_value_type(k))
    return k(k), codegen


def _dtype_constants(dtype, taylor_degree, atanh_terms, min_exponent, ln2_hi, ln2_lo):
    cast = dtype.type
    return {"taylor": tuple(cast(1 / math.factorial(n)) for n in range(taylor_degree, 0, -1)),
            "atanh": tuple(cast(1 / (2 * n + 1)) for n in range(atanh_terms - 1, -1, -1)),
            "min_exponent": cast(min_exponent), "underflow": cast(min_exponent * math.log(2)),
            "log2e": cast(1 / math.log(2)), "ln2_hi": cast(ln2_hi), "ln2_lo": cast(ln2_lo),
            "half": cast(0.5), "one": cast(1), "two": cast(2), "zero": cast(0),
            "expm1_taylor_bound": cast(-math.log(2) / 2)}


# ln2 split in two (Cody-Waite) so that k * ln2_hi is exact for every reachable k.
_CONSTANTS = {types.float32: _dtype_constants(np.dtype(np.float32), 8, 8, -126, 0.693359375, -2.12194440e-4),
              types.float64: _dtype_constants(np.dtype(np.float64), 13, 16, -1022, 6.93147180369123816490e-01,
                                              1.90821492927058770002e-10)}
# Abramowitz & Stegun 7.1.26, |error| <= 1.5e-7: float32 erf, as PyTorch's vectorized CPU kernels compute it.
_ERF_P, _ERF_A = np.float32(0.3275911), tuple(np.float32(a) for a in (1.061405429, -1.453152027, 1.421413741,
                                                                         -0.284496736, 0.254829592))


def _expm1_small(r):
    """expm1(r) for |r| <= ln2/2 (Numba only, see the overload)."""


def _exp_nonpositive(a):
    """exp(a) for a <= 0 or NaN (Numba only, see the overload)."""


def _expm1_nonpositive(a):
    """expm1(a) for a <= 0 or NaN (Numba only, see the overload)."""


def _log1p_unit(z):
    """log1p(z) for 0 <= z <= 1 or NaN (Numba only, see the overload)."""


def _erf_and_gauss(v):
    """(erf(v), exp(-v * v)), sharing the exp in float32 where erf needs it (Numba only, see the overload)."""


@overload(_expm1_small)
def _expm1_small_impl(r):
    coefficients = _CONSTANTS[r]["taylor"]
    leading, degree = coefficients[0], len(coefficients)

    def impl(r):
        p = leading
        for i in range(1, degree):
            p = p * r + coefficients[i]
        return p * r
    return impl


@overload(_exp_nonpositive)
def _exp_nonpositive_impl(a):
    c = _CONSTANTS[a]
    min_exponent, underflow, log2e, ln2_hi, ln2_lo = (c["min_exponent"], c["underflow"], c["log2e"],
                                                      c["ln2_hi"], c["ln2_lo"])
    half, one, zero = c["half"], c["one"], c["zero"]

    def impl(a):
        k = np.floor(a * log2e + half)
        k = k if k > min_exponent else min_exponent
        r = (a - k * ln2_hi) - k * ln2_lo
        value = _pow2(k) * (_expm1_small(r) + one)
        return zero if a < underflow else value  # NaN fails the test and stays NaN
    return impl


@overload(_expm1_nonpositive)
def _expm1_nonpositive_impl(a):
    bound, one = _CONSTANTS[a]["expm1_taylor_bound"], _CONSTANTS[a]["one"]

    def impl(a):
        # Near 0 the Taylor series keeps full relative precision; further out exp(a) - 1 loses < 2 bits.
        return _expm1_small(a) if a > bound else _exp_nonpositive(a) - one
    return impl


@overload(_log1p_unit)
def _log1p_unit_impl(z):
    coefficients, two = _CONSTANTS[z]["atanh"], _CONSTANTS[z]["two"]
    leading, terms = coefficients[0], len(coefficients)

    def impl(z):
        # log1p(z) = 2 atanh(u), u = z / (2 + z) <= 1/3: the odd series 2u(1 + u^2/3 + u^4/5 + ...) converges
        # fast enough over the whole range, with no range reduction.
        u = z / (two + z)
        u2 = u * u
        p = leading
        for i in range(1, terms):
            p = p * u2 + coefficients[i]
        return two * u * p
    return impl


@overload(_erf_and_gauss)
def _erf_and_gauss_impl(v):
    if v == types.float64:
        return lambda v: (math.erf(v), _exp_nonpositive(-v * v))
    p, (a5, a4, a3, a2, a1) = _ERF_P, _ERF_A
    one, zero = _CONSTANTS[v]["one"], _CONSTANTS[v]["zero"]

    def impl(v):
        a = abs(v)
        t = one / (one + p * a)
        gauss = _exp_nonpositive(-a * a)
        e = one - ((((a5 * t + a4) * t + a3) * t + a2) * t + a1) * t * gauss
        return (e if v >= zero else -e), gauss
    return impl


def _sigmoid(v):
    """sigmoid(v) from exp(-|v|): exact 0 and 1 at saturation (Numba only, see the overload)."""


def _tanh(v):
    """tanh(v) from expm1(-2|v|) (Numba only, see the overload)."""


def _mish_parts(v):
    """(tanh(softplus(v)), sigmoid(v)) (Numba only, see the overload)."""


@overload(_sigmoid)
def _sigmoid_impl(v):
    one, zero = _CONSTANTS[v]["one"], _CONSTANTS[v]["zero"]

    def impl(v):
        z = _exp_nonpositive(-abs(v))
        s = one / (one + z)
        return s if v >= zero else z * s
    return impl


@overload(_tanh)
def _tanh_impl(v):
    two, zero = _CONSTANTS[v]["two"], _CONSTANTS[v]["zero"]

    def impl(v):
        e = _expm1_nonpositive(-two * abs(v))
        t = -e / (two + e)
        return t if v >= zero else -t
    return impl


@overload(_mish_parts)
def _mish_parts_impl(v):
    one, two, zero = _CONSTANTS[v]["one"], _CONSTANTS[v]["two"], _CONSTANTS[v]["zero"]

    def impl(v):
        z = _exp_nonpositive(-abs(v))
        # tanh(log(1 + n)) = n(n + 2) / (n(n + 2) + 2) with n = exp(v); for v >= 0 divide through by n**2,
        # so only exp(-|v|) is needed: no log, no overflow.
        numerator = one + two * z if v >= zero else z * (z + two)
        denominator = numerator + (two * z * z if v >= zero else two)
        return numerator / denominator, _sigmoid(v)  # LLVM shares the exp(-|v|) of both
    return impl


# ---- piecewise-linear -----------------------------------------------------------------------------------
# The forwards of the activations PyTorch has in-place forms of run a second copy of their loop when `out` is x:
# LLVM guards a loop over two arrays with an overlap check and runs it unvectorized when they overlap (~5x slower
# on cached data), while a loop over one array needs no check.
@njit(nogil=True, cache=True)
def _same_buffer(x, out):
    return x.ctypes.data == out.ctypes.data


@njit(parallel=True, nogil=True, cache=True)
def hardtanh_forward(x, min_val, max_val, out):
    """clamp(x, min_val, max_val); NaN stays NaN. ReLU is (0, inf), ReLU6 is (0, 6)."""
    if _same_buffer(x, out):
        for i in prange(x.size):
            v = x[i]
            x[i] = min_val if v < min_val else (max_val if v > max_val else v)
    else:
        for i in prange(x.size):
            v = x[i]
            out[i] = min_val if v < min_val else (max_val if v > max_val else v)
    return out


@njit(parallel=True, nogil=True, cache=True)
def hardtanh_backward(grad_out, x, min_val, max_val):
    """grad_out where min_val < x < max_val (and where x is NaN), else 0, as PyTorch."""
    grad_in = np.empty_like(grad_out)
    zero = grad_out.dtype.type(0)
    for i in prange(x.size):
        v = x[i]
        grad_in[i] = zero if v <= min_val or v >= max_val else grad_out[i]
    return grad_in


@njit(parallel=True, nogil=True, cache=True)
def leaky_relu_forward(x, negative_slope, out):
    zero = x.dtype.type(0)
    if _same_buffer(x, out):
        for i in prange(x.size):
            v = x[i]
            x[i] = v if v > zero else v * negative_slope
    else:
        for i in prange(x.size):
            v = x[i]
            out[i] = v if v > zero else v * negative_slope
    return out


@njit(parallel=True, nogil=True, cache=True)
def leaky_relu_backward(grad_out, x, negative_slope):
    grad_in = np.empty_like(grad_out)
    zero = x.dtype.type(0)
    for i in prange(x.size):
        g = grad_out[i]
        grad_in[i] = g if x[i] > zero else g * negative_slope
    return grad_in


# ---- exponential family ---------------------------------------------------------------------------------
@njit(parallel=True, nogil=True, cache=True, fastmath=FMA)
def elu_forward(x, alpha, scale, out):
    """scale * (x if x > 0 else alpha * expm1(x)); SELU is ELU with its fixed alpha and scale."""
    scaled_alpha = scale * alpha
    zero = x.dtype.type(0)
    if _same_buffer(x, out):
        for i in prange(x.size):
            v = x[i]
            negative_part = zero if v > zero else v
            x[i] = scale * v if v > zero else scaled_alpha * _expm1_nonpositive(negative_part)
    else:
        for i in prange(x.size):
            v = x[i]
            negative_part = zero if v > zero else v
            out[i] = scale * v if v > zero else scaled_alpha * _expm1_nonpositive(negative_part)
    return out


@njit(parallel=True, nogil=True, cache=True, fastmath=FMA)
def elu_backward(grad_out, x, alpha, scale):
    grad_in = np.empty_like(grad_out)
    scaled_alpha = scale * alpha
    zero = x.dtype.type(0)
    for i in prange(x.size):
        v = x[i]
        negative_part = zero if v > zero else v
        slope = scale if v > zero else scaled_alpha * _exp_nonpositive(negative_part)
        grad_in[i] = grad_out[i] * slope
    return grad_in


@njit(parallel=True, nogil=True, cache=True, fastmath=FMA)
def sigmoid_forward(x, out):
    if _same_buffer(x, out):
        for i in prange(x.size):
            x[i] = _sigmoid(x[i])
    else:
        for i in prange(x.size):
            out[i] = _sigmoid(x[i])
    return out


@njit(parallel=True, nogil=True, cache=True, fastmath=FMA)
def sigmoid_backward(grad_out, out):
    grad_in = np.empty_like(grad_out)
    one = out.dtype.type(1)
    for i in prange(out.size):
        s = out[i]
        grad_in[i] = grad_out[i] * s * (one - s)
    return grad_in


@njit(parallel=True, nogil=True, cache=True, fastmath=FMA)
def tanh_forward(x, out):
    if _same_buffer(x, out):
        for i in prange(x.size):
            x[i] = _tanh(x[i])
    else:
        for i in prange(x.size):
            out[i] = _tanh(x[i])
    return out


@njit(parallel=True, nogil=True, cache=True, fastmath=FMA)
def tanh_backward(grad_out, out):
    grad_in = np.empty_like(grad_out)
    one = out.dtype.type(1)
    for i in prange(out.size):
        t = out[i]
        grad_in[i] = grad_out[i] * (one - t * t)
    return grad_in


@njit(parallel=True, nogil=True, cache=True, fastmath=FMA)
def swish_forward(x, beta, out):
    """x * sigmoid(beta * x); SiLU is beta = 1."""
    if _same_buffer(x, out):
        for i in prange(x.size):
            v = x[i]
            x[i] = v * _sigmoid(beta * v)
    else:
        for i in prange(x.size):
            v = x[i]
            out[i] = v * _sigmoid(beta * v)
    return out


@njit(parallel=True, nogil=True, cache=True, fastmath=FMA)
def swish_backward(grad_out, x, beta):
    grad_in = np.empty_like(grad_out)
    one = x.dtype.type(1)
    for i in prange(x.size):
        v = x[i]
        s = _sigmoid(beta * v)
        grad_in[i] = grad_out[i] * (s + beta * v * s * (one - s))
    return grad_in


@njit(parallel=True, nogil=True, cache=True, fastmath=FMA)
def swish_backward_with_beta(grad_out, x, beta):
    """(grad_in, partial sums of the beta gradient, one per REDUCTION_BLOCK elements; the caller sums them)."""
    n = x.size
    blocks = (n + REDUCTION_BLOCK - 1) // REDUCTION_BLOCK
    grad_in = np.empty_like(grad_out)
    partial = np.empty(blocks, x.dtype)
    one = x.dtype.type(1)
    for b in prange(blocks):
        total = x.dtype.type(0)
        for i in range(b * REDUCTION_BLOCK, min(n, (b + 1) * REDUCTION_BLOCK)):
            v = x[i]
            g = grad_out[i]
            s = _sigmoid(beta * v)
            ds = s * (one - s)
            grad_in[i] = g * (s + beta * v * ds)
            total += g * v * v * ds
        partial[b] = total
    return grad_in, partial


@njit(parallel=True, nogil=True, cache=True, fastmath=FMA)
def softplus_forward(x, beta, threshold, out):
    """log(1 + exp(beta * x)) / beta, and x itself where beta * x > threshold, as PyTorch."""
    zero = x.dtype.type(0)
    for i in prange(x.size):
        v = x[i]
        bv = beta * v
        positive_part = bv if bv > zero else zero
        smooth = (positive_part + _log1p_unit(_exp_nonpositive(-abs(bv)))) / beta
        out[i] = v if bv > threshold else smooth
    return out


@njit(parallel=True, nogil=True, cache=True, fastmath=FMA)
def softplus_backward(grad_out, x, beta, threshold):
    grad_in = np.empty_like(grad_out)
    for i in prange(x.size):
        bv = beta * x[i]
        g = grad_out[i]
        grad_in[i] = g if bv > threshold else g * _sigmoid(bv)
    return grad_in


@njit(parallel=True, nogil=True, cache=True, fastmath=FMA)
def mish_forward(x, out):
    if _same_buffer(x, out):
        for i in prange(x.size):
            v = x[i]
            t, _ = _mish_parts(v)
            x[i] = v * t
    else:
        for i in prange(x.size):
            v = x[i]
            t, _ = _mish_parts(v)
            out[i] = v * t
    return out


@njit(parallel=True, nogil=True, cache=True, fastmath=FMA)
def mish_backward(grad_out, x):
    grad_in = np.empty_like(grad_out)
    one = x.dtype.type(1)
    for i in prange(x.size):
        v = x[i]
        t, s = _mish_parts(v)
        grad_in[i] = grad_out[i] * (t + v * (one - t * t) * s)
    return grad_in


# ---- GELU -----------------------------------------------------------------------------------------------
@njit(parallel=True, nogil=True, cache=True, fastmath=FMA)
def gelu_forward(x, tanh_approximation, out):
    """x * Phi(x) with erf, or PyTorch's tanh approximation when `tanh_approximation`."""
    half = x.dtype.type(0.5)
    one = x.dtype.type(1)
    if tanh_approximation:
        # 0.5 * (1 + tanh(u)) = sigmoid(2u): exact in the tails, where 1 + tanh(u) would cancel.
        two_k = x.dtype.type(2 * math.sqrt(2 / math.pi))
        c = x.dtype.type(0.044715)
        for i in prange(x.size):
            v = x[i]
            out[i] = v * _sigmoid(two_k * (v + c * v * v * v))
    else:
        inv_sqrt2 = x.dtype.type(1 / math.sqrt(2))
        for i in prange(x.size):
            v = x[i]
            erf, _ = _erf_and_gauss(v * inv_sqrt2)
            out[i] = half * v * (one + erf)
    return out


@njit(parallel=True, nogil=True, cache=True, fastmath=FMA)
def gelu_backward(grad_out, x, tanh_approximation):
    grad_in = np.empty_like(grad_out)
    half = x.dtype.type(0.5)
    one = x.dtype.type(1)
    zero = x.dtype.type(0)
    if tanh_approximation:
        two_k = x.dtype.type(2 * math.sqrt(2 / math.pi))
        c = x.dtype.type(0.044715)
        c3 = x.dtype.type(3 * 0.044715)
        for i in prange(x.size):
            v = x[i]
            s = _sigmoid(two_k * (v + c * v * v * v))
            ds = s * (one - s)
            # Where the sigmoid has saturated, skip the polynomial: v * v may be inf and 0 * inf is NaN.
            slope = zero if ds == 0 else v * ds * two_k * (one + c3 * v * v)
            grad_in[i] = grad_out[i] * (s + slope)
    else:
        inv_sqrt2 = x.dtype.type(1 / math.sqrt(2))
        inv_sqrt_2pi = x.dtype.type(1 / math.sqrt(2 * math.pi))
        for i in prange(x.size):
            v = x[i]
            erf, gauss = _erf_and_gauss(v * inv_sqrt2)  # gauss = exp(-v*v/2)
            grad_in[i] = grad_out[i] * (half * (one + erf) + v * inv_sqrt_2pi * gauss)
    return grad_in


# ---- PReLU ----------------------------------------------------------------------------------------------
@njit(parallel=True, nogil=True, cache=True)
def prelu_forward(x, weight):
    """x: (outer, C, inner); weight: (C,). x where x > 0, else weight[c] * x."""
    outer, channels, inner = x.shape
    out = np.empty_like(x)
    zero = x.dtype.type(0)
    for row in prange(outer * channels):
        n = row // channels
        c = row - n * channels
        w = weight[c]
        for j in range(inner):
            v = x[n, c, j]
            out[n, c, j] = v if v > zero else w * v
    return out


# reassoc lets LLVM vectorize the weight-gradient sum (there is no cancellation-sensitive math here); the
# summation order is fixed by the compiled code, so results stay deterministic.
@njit(parallel=True, nogil=True, cache=True, fastmath={"reassoc"})
def prelu_backward(grad_out, x, weight):
    """(grad_in shaped like x, weight-gradient partial sums shaped (outer, C): sum them over axis 0)."""
    outer, channels, inner = x.shape
    grad_in = np.empty_like(grad_out)
    grad_weight_rows = np.empty((outer, channels), x.dtype)
    zero = x.dtype.type(0)
    for row in prange(outer * channels):
        n = row // channels
        c = row - n * channels
        w = weight[c]
        total = zero
        for j in range(inner):
            v = x[n, c, j]
            g = grad_out[n, c, j]
            positive = v > zero
            grad_in[n, c, j] = g if positive else w * g
            total += zero if positive else v * g
        grad_weight_rows[n, c] = total
    return grad_in, grad_weight_rows


# ---- maxout ---------------------------------------------------------------------------------------------
# Pieces are visited in order, each sweeping the contiguous inner axis (vectorizable); a piece takes over
# where it is larger or is the first NaN, so ties go to the first piece, as NumPy's argmax.
@njit(parallel=True, nogil=True, cache=True)
def maxout_forward(x, pieces):
    """x: (outer, groups * pieces, inner) -> (outer, groups, inner), max over each run of `pieces` channels."""
    outer, channels, inner = x.shape
    groups = channels // pieces
    out = np.empty((outer, groups, inner), x.dtype)
    for row in prange(outer * groups):
        n = row // groups
        first = (row - n * groups) * pieces
        best = out[n, row - n * groups]
        best[:] = x[n, first]
        for p in range(1, pieces):
            for j in range(inner):
                v = x[n, first + p, j]
                b = best[j]
                best[j] = v if v > b or (v != v and b == b) else b
    return out


@njit(parallel=True, nogil=True, cache=True)
def maxout_backward(grad_out, x, pieces):
    """Route each output gradient to the winning piece (recomputed from x), zeros elsewhere."""
    outer, channels, inner = x.shape
    groups = channels // pieces
    grad_in = np.empty_like(x)
    zero = x.dtype.type(0)
    for row in prange(outer * groups):
        n = row // groups
        group = row - n * groups
        first = group * pieces
        best = x[n, first].copy()
        winner = np.zeros(inner, np.int64)
        for p in range(1, pieces):
            for j in range(inner):
                v = x[n, first + p, j]
                b = best[j]
                take = v > b or (v != v and b == b)
                best[j] = v if take else b
                winner[j] = p if take else winner[j]
        for p in range(pieces):
            for j in range(inner):
                grad_in[n, first + p, j] = grad_out[n, group, j] if winner[j] == p else zero
    return grad_in


# ---- softmax --------------------------------------------------------------------------------------------
# Only this helper may reorder its additions (8 lanes of partial sums, vectorized); the kernels that call it keep
# strict order elsewhere, since reassociating the Cody-Waite reduction inside _exp_nonpositive would lose bits.
@njit(nogil=True, cache=True, fastmath={"reassoc"})
def _row_sum(a):
    total = a.dtype.type(0)
    for i in range(a.size):  # an index loop: LLVM vectorizes it, not the iterator form
        total += a[i]
    return total


@njit(nogil=True, cache=True)
def _row_max(a):
    best = a[0]
    for i in range(1, a.size):
        v = a[i]
        best = v if v > best else best  # a NaN never wins, but it makes its row NaN through the caller's sum
    return best


@njit(parallel=True, nogil=True, cache=True, fastmath=FMA)
def softmax_forward(x, log):
    """x: (outer, C, inner) -> softmax (or log-softmax when `log`) over C, with the max subtracted first."""
    outer, channels, inner = x.shape
    out = np.empty_like(x)
    if inner == 1:
        rows, dsts = x.reshape(outer, channels), out.reshape(outer, channels)  # C-contiguous rows vectorize
        for n in prange(outer):
            row, dst = rows[n], dsts[n]
            m = _row_max(row)
            for c in range(channels):
                dst[c] = _exp_nonpositive(row[c] - m)
            total = _row_sum(dst)
            if log:  # (x - max) - log(sum), in this order: the max entry's small log-probability keeps its bits
                log_total = np.log(total)
                for c in range(channels):
                    dst[c] = (row[c] - m) - log_total
            else:
                scale = x.dtype.type(1) / total
                for c in range(channels):
                    dst[c] *= scale
        return out
    for n in prange(outer):
        m = x[n, 0].copy()
        for c in range(1, channels):
            for j in range(inner):
                v = x[n, c, j]
                m[j] = v if v > m[j] else m[j]
        total = np.zeros(inner, x.dtype)
        for c in range(channels):
            for j in range(inner):
                e = _exp_nonpositive(x[n, c, j] - m[j])
                out[n, c, j] = e
                total[j] += e
        if log:
            log_total = np.log(total)
            for c in range(channels):
                for j in range(inner):
                    out[n, c, j] = (x[n, c, j] - m[j]) - log_total[j]
        else:
            scale = x.dtype.type(1) / total
            for c in range(channels):
                for j in range(inner):
                    out[n, c, j] *= scale[j]
    return out


@njit(parallel=True, nogil=True, cache=True, fastmath=FMA)
def softmax_backward(grad_out, out, log):
    """From the saved output y: y * (g - sum_C g y) for softmax, g - exp(y) * sum_C g for log-softmax."""
    outer, channels, inner = out.shape
    grad_in = np.empty_like(grad_out)
    if inner == 1:
        gs, ys, dsts = grad_out.reshape(outer, channels), out.reshape(outer, channels), grad_in.reshape(outer, channels)
        for n in prange(outer):
            g, y, dst = gs[n], ys[n], dsts[n]
            if log:
                total = _row_sum(g)
                for c in range(channels):
                    dst[c] = g[c] - _exp_nonpositive(y[c]) * total
            else:
                for c in range(channels):
                    dst[c] = g[c] * y[c]
                total = _row_sum(dst)
                for c in range(channels):
                    dst[c] = y[c] * (g[c] - total)
        return grad_in
    for n in prange(outer):
        total = np.zeros(inner, out.dtype)
        for c in range(channels):
            for j in range(inner):
                total[j] += grad_out[n, c, j] if log else grad_out[n, c, j] * out[n, c, j]
        for c in range(channels):
            for j in range(inner):
                g, y = grad_out[n, c, j], out[n, c, j]
                grad_in[n, c, j] = g - _exp_nonpositive(y) * total[j] if log else y * (g - total[j])
    return grad_in

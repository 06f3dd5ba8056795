"""Math ops with PyTorch's names: element-wise functions, matrix products and einsum, cumulative and product
reductions, norms, triangular/diagonal parts, tests on values (isnan, any, allclose, ...).

Integer inputs to floating functions (sin, exp2, erf, ...) compute in float32, as PyTorch does; rounding
functions and sign keep an integer tensor's dtype.
"""
import builtins
import math
import string

import numpy as np

from fastnn._tracing import traced
from fastnn.autograd import make_result, unbroadcast
from fastnn.ops._util import (add_tangents, as_tensor, check_same_device, normalize_dim, product_saved, result_type,
                              scalar_array)
from fastnn.ops.elementwise import _binary, astype, sub
from fastnn.tensor import Tensor

_FLOAT32, _INT64, _BOOL = np.dtype(np.float32), np.dtype(np.int64), np.dtype(np.bool_)


def _tensor(x, name, arg="input"):
    if not isinstance(x, Tensor):
        raise TypeError(f"{name}(): argument '{arg}' must be a Tensor, not {type(x).__name__}")
    return x


def _floating(x, name):
    """x, cast to float32 when it holds integers or bools (PyTorch's promotion for floating functions)."""
    _tensor(x, name)
    return astype(x, _FLOAT32) if x.dtype.kind in "biu" else x


# ---- element-wise functions ---------------------------------------------------------------------------------
def _unary(name, forward, grad, reads, floating=True, derivative=None):
    """An element-wise op: forward(xp, x) -> out; grad(xp, g, x, out) -> input gradient. `reads` says what grad
    needs ('x', 'out' or nothing), hence what the node saves; `floating`: integers compute in float32.
    derivative(x): f'(x) from ops on the Tensor x, for the tangent rule t * f'(x)."""
    def op(input):
        x = _floating(input, name) if floating else _tensor(input, name)
        xp = x._backend.xp
        out = scalar_array(forward(xp, x._data), xp)
        data = x._data
        return make_result(out, (x,), lambda g: (grad(xp, g, data, out),), name,
                           saved=(x,) if reads == "x" else (), saves_output=reads == "out",
                           tangent=None if derivative is None else lambda t: t * derivative(x))
    op.__name__ = op.__qualname__ = name
    return op


def _c(value, like):
    """A Python constant as a scalar of `like`'s dtype (a float64 constant would promote a float32 array)."""
    return like.dtype.type(value)


# traced (exported to ONNX): the element-wise functions models use in forward (RMSNorm, logaddexp(2), LPPool)
reciprocal = traced(_unary("reciprocal", lambda xp, x: 1 / x, lambda xp, g, x, o: -g * o * o, "out",
                           derivative=lambda x: -1 / (x * x)))
rsqrt = traced(_unary("rsqrt", lambda xp, x: 1 / xp.sqrt(x), lambda xp, g, x, o: _c(-0.5, o) * g * o * o * o,
                      "out", derivative=lambda x: -0.5 * x ** -1.5))
sin = _unary("sin", lambda xp, x: xp.sin(x), lambda xp, g, x, o: g * xp.cos(x), "x", derivative=lambda x: cos(x))
cos = _unary("cos", lambda xp, x: xp.cos(x), lambda xp, g, x, o: -g * xp.sin(x), "x", derivative=lambda x: -sin(x))
tan = _unary("tan", lambda xp, x: xp.tan(x), lambda xp, g, x, o: g * (1 + o * o), "out",
             derivative=lambda x: 1 + tan(x) ** 2)
sinh = _unary("sinh", lambda xp, x: xp.sinh(x), lambda xp, g, x, o: g * xp.cosh(x), "x", derivative=lambda x: cosh(x))
cosh = _unary("cosh", lambda xp, x: xp.cosh(x), lambda xp, g, x, o: g * xp.sinh(x), "x", derivative=lambda x: sinh(x))
asin = _unary("asin", lambda xp, x: xp.arcsin(x), lambda xp, g, x, o: g / xp.sqrt(1 - x * x), "x",
              derivative=lambda x: (1 - x * x) ** -0.5)
acos = _unary("acos", lambda xp, x: xp.arccos(x), lambda xp, g, x, o: -g / xp.sqrt(1 - x * x), "x",
              derivative=lambda x: -(1 - x * x) ** -0.5)
atan = _unary("atan", lambda xp, x: xp.arctan(x), lambda xp, g, x, o: g / (1 + x * x), "x",
              derivative=lambda x: 1 / (1 + x * x))
log1p = traced(_unary("log1p", lambda xp, x: xp.log1p(x), lambda xp, g, x, o: g / (1 + x), "x",
                      derivative=lambda x: 1 / (1 + x)))
expm1 = traced(_unary("expm1", lambda xp, x: xp.expm1(x), lambda xp, g, x, o: g * (o + 1), "out",
                      derivative=lambda x: x.exp()))
log2 = traced(_unary("log2", lambda xp, x: xp.log2(x), lambda xp, g, x, o: g / (x * _c(math.log(2), x)), "x",
                     derivative=lambda x: 1 / (x * math.log(2))))
log10 = _unary("log10", lambda xp, x: xp.log10(x), lambda xp, g, x, o: g / (x * _c(math.log(10), x)), "x",
               derivative=lambda x: 1 / (x * math.log(10)))
exp2 = traced(_unary("exp2", lambda xp, x: xp.exp2(x), lambda xp, g, x, o: g * o * _c(math.log(2), o), "out",
                     derivative=lambda x: exp2(x) * math.log(2)))
square = traced(_unary("square", lambda xp, x: x * x, lambda xp, g, x, o: 2 * g * x, "x", floating=False,
                       derivative=lambda x: 2 * x))


@traced
def erf(input):
    x = _floating(input, "erf")
    backend = x._backend
    xp = backend.xp
    data = x._data
    # NumPy has no erf: it is a declared kernel (scipy.special on the CPU); its derivative is elementary.
    out = backend.kernels.erf(xp.ascontiguousarray(data)).reshape(x.shape)  # ascontiguousarray makes 0-d 1-D

    def backward(g):
        return (g * _c(2 / math.sqrt(math.pi), data) * xp.exp(-data * data),)
    return make_result(scalar_array(out, xp), (x,), backward, "erf",
                       tangent=lambda t: t * (-(x * x)).exp() * _c(2 / math.sqrt(math.pi), data))


def _zero_tangent(t):
    """The tangent of a piecewise-constant op (a zero array: 0 * t would turn an infinite tangent into NaN)."""
    return Tensor._wrap(t._backend.xp.zeros_like(t._data), t._backend)


def _step(name, forward):
    """sign/floor/ceil/trunc: piecewise constant, so the gradient is 0 (PyTorch's); integers pass unchanged."""
    def op(input):
        x = _tensor(input, name)
        xp = x._backend.xp
        out = x._data.copy() if (x.dtype.kind in "biu" and name != "sign") else scalar_array(forward(xp, x._data), xp)
        return make_result(out, (x,), lambda g: (xp.zeros_like(g),), name, saved=(), tangent=_zero_tangent)
    op.__name__ = op.__qualname__ = name
    return op


sign = traced(_step("sign", lambda xp, x: xp.sign(x)))
floor = _step("floor", lambda xp, x: xp.floor(x))
ceil = _step("ceil", lambda xp, x: xp.ceil(x))
trunc = _step("trunc", lambda xp, x: xp.trunc(x))


def round(input, *, decimals=0):
    """Rounds half to even, as PyTorch (and NumPy) do: round(2.5) == 2, round(-0.5) == -0."""
    if not isinstance(decimals, (int, np.integer)) or isinstance(decimals, bool):
        raise TypeError(f"round(): argument 'decimals' must be int, not {type(decimals).__name__}")
    x = _tensor(input, "round")
    xp = x._backend.xp
    if x.dtype.kind in "biu":
        out = x._data.copy()
    elif decimals == 0:
        out = xp.round(x._data)
    else:  # PyTorch scales by 10**decimals, rounds half to even and scales back
        scale = _c(10.0 ** decimals, x._data)
        out = xp.round(x._data * scale) / scale
    return make_result(scalar_array(out, xp), (x,), lambda g: (xp.zeros_like(g),), "round", saved=(),
                       tangent=_zero_tangent)


# ---- element-wise binary ------------------------------------------------------------------------------------
def _floating_pair(a, b, name):
    a, b = _binary(a, b)
    if a.dtype.kind in "biu":
        a, b = astype(a, _FLOAT32), astype(b, _FLOAT32)
    return a, b


def atan2(input, other):
    a, b = _floating_pair(input, other, "atan2")
    xp = a._backend.xp
    out = scalar_array(xp.arctan2(a._data, b._data), xp)

    def backward(g):
        denom = a._data * a._data + b._data * b._data
        return (unbroadcast(g * b._data / denom, a.shape) if a.requires_grad else None,
                unbroadcast(-g * a._data / denom, b.shape) if b.requires_grad else None)
    def tangent(ta, tb):  # (b ta - a tb) / (a^2 + b^2)
        return add_tangents(None if ta is None else b * ta, None if tb is None else -(a * tb)) / (a * a + b * b)
    return make_result(out, (a, b), backward, "atan2", tangent=tangent)


def _modulo(name, forward, quotient):
    """fmod (sign of the dividend, C's fmod) and remainder (sign of the divisor, Python's %). d/db is
    -quotient(a / b), the rounded quotient (trunc for fmod, floor for remainder)."""
    def op(input, other):
        a, b = _binary(input, other)
        xp = a._backend.xp
        if a.dtype.kind in "iu" and bool((b._data == 0).any()):
            raise ZeroDivisionError(f"{name}: integer division by zero")
        out = scalar_array(forward(xp, a._data, b._data), xp)

        def backward(g):
            return (unbroadcast(g, a.shape) if a.requires_grad else None,
                    unbroadcast(-g * quotient(xp, a._data / b._data), b.shape) if b.requires_grad else None)
        return make_result(out, (a, b), backward, name, saved=(a, b) if b.requires_grad else (),
                           tangent=lambda ta, tb: add_tangents(ta, None if tb is None else -(tb * Tensor._wrap(
                               quotient(xp, a._data / b._data), a._backend))))
    op.__name__ = op.__qualname__ = name
    return op


fmod = _modulo("fmod", lambda xp, a, b: xp.fmod(a, b), lambda xp, q: xp.trunc(q))
remainder = _modulo("remainder", lambda xp, a, b: xp.remainder(a, b), lambda xp, q: xp.floor(q))


def floor_divide(input, other):
    """a // b rounded toward negative infinity (Python's //; integers stay integers), with gradient 0."""
    a, b = _binary(input, other)
    xp = a._backend.xp
    if a.dtype.kind in "iu" and bool((b._data == 0).any()):
        raise ZeroDivisionError("floor_divide: integer division by zero")
    out = scalar_array(xp.floor_divide(a._data, b._data), xp)
    return make_result(out, (a, b), lambda g: (xp.zeros(a.shape, dtype=g.dtype) if a.requires_grad else None,
                                               xp.zeros(b.shape, dtype=g.dtype) if b.requires_grad else None),
                       "floor_divide", saved=(), tangent=lambda ta, tb: _zero_tangent(ta if tb is None else tb))


def lerp(input, end, weight):
    """input + weight * (end - input); weight is a number or a tensor (broadcast)."""
    start, end = _binary(_tensor(input, "lerp"), end)
    if start.dtype.kind != "f":
        raise TypeError(f"lerp(): expected floating point tensors, got {start.dtype}")
    w = weight if isinstance(weight, Tensor) else as_tensor(weight, start)
    if w.dtype != start.dtype:
        raise TypeError(f"lerp(): expected dtype {start.dtype} for argument 'weight', got {w.dtype}")
    check_same_device(start, w)
    out = scalar_array(start._data + w._data * (end._data - start._data), start._backend.xp)

    def backward(g):
        return (unbroadcast(g * (1 - w._data), start.shape) if start.requires_grad else None,
                unbroadcast(g * w._data, end.shape) if end.requires_grad else None,
                unbroadcast(g * (end._data - start._data), w.shape) if w.requires_grad else None)
    saved = ((w,) if start.requires_grad or end.requires_grad else ()) + ((start, end) if w.requires_grad else ())
    return make_result(out, (start, end, w), backward, "lerp", saved=saved, tangent=lambda ts, te, tw: add_tangents(
        None if ts is None else ts * (1 - w), None if te is None else te * w,
        None if tw is None else tw * (end - start)))


# ---- matrix products ----------------------------------------------------------------------------------------
def _matrix_operands(name, a, b, ndim):
    for arg, t in (("input", a), ("mat2", b)):
        if not isinstance(t, Tensor):
            raise TypeError(f"{name}(): argument '{arg}' must be a Tensor, not {type(t).__name__}")
        if t.ndim != ndim:
            raise ValueError(f"{name}(): argument '{arg}' must be a {ndim}-D tensor, got shape {tuple(t.shape)}")
    check_same_device(a, b)
    if a.dtype != b.dtype:
        raise TypeError(f"{name}(): expected both operands to have the same dtype, got {a.dtype} and {b.dtype}")
    if a.shape[-1] != b.shape[-2] or (ndim == 3 and a.shape[0] != b.shape[0]):
        raise ValueError(f"{name}(): shapes {tuple(a.shape)} and {tuple(b.shape)} cannot be multiplied")


def _product(name, a, b):
    out = a._data @ b._data

    def backward(g):
        return (g @ b._data.swapaxes(-1, -2) if a.requires_grad else None,
                a._data.swapaxes(-1, -2) @ g if b.requires_grad else None)
    return make_result(out, (a, b), backward, name, saved=product_saved(a, b), tangent=lambda ta, tb: add_tangents(
        None if ta is None else _product(name, ta, b), None if tb is None else _product(name, a, tb)))


@traced
def mm(input, mat2):
    _matrix_operands("mm", input, mat2, 2)
    return _product("mm", input, mat2)


@traced
def bmm(input, mat2):
    _matrix_operands("bmm", input, mat2, 3)
    return _product("bmm", input, mat2)


def addmm(input, mat1, mat2, *, beta=1, alpha=1):
    """beta * input + alpha * (mat1 @ mat2); with beta == 0, input is ignored (its NaNs too), as in PyTorch."""
    _matrix_operands("addmm", mat1, mat2, 2)
    c = as_tensor(input, mat1)
    check_same_device(c, mat1)
    product = mat1._data @ mat2._data
    out_shape = product.shape
    try:
        np.broadcast_shapes(c.shape, out_shape)
    except ValueError:
        raise ValueError(f"addmm(): input of shape {tuple(c.shape)} does not broadcast to {out_shape}") from None
    scale = mat1.dtype.type
    out = scale(alpha) * product if alpha != 1 else product
    if beta != 0:
        out = out + (c._data if beta == 1 else scale(beta) * c._data).astype(product.dtype)
    else:
        out = out + c._backend.xp.zeros(c.shape, product.dtype)  # keeps the broadcast shape, ignores NaNs

    def backward(g):
        ga = g * scale(alpha)
        return (unbroadcast(g * scale(beta), c.shape) if c.requires_grad else None,
                ga @ mat2._data.T if mat1.requires_grad else None,
                mat1._data.T @ ga if mat2.requires_grad else None)
    def tangent(tc, t1, t2):
        product = add_tangents(None if t1 is None else _product("mm", t1, mat2),
                               None if t2 is None else _product("mm", mat1, t2))
        return add_tangents(None if tc is None or beta == 0 else tc * scale(beta),
                            None if product is None else product * scale(alpha))
    return make_result(out, (c, mat1, mat2), backward, "addmm", saved=product_saved(mat1, mat2), tangent=tangent)


def outer(input, vec2):
    for arg, t in (("input", input), ("vec2", vec2)):
        if not isinstance(t, Tensor) or t.ndim != 1:
            raise ValueError(f"outer(): argument '{arg}' must be a 1-D tensor, got "
                             f"{tuple(t.shape) if isinstance(t, Tensor) else type(t).__name__}")
    a, b = _binary(input, vec2)
    out = a._data[:, None] * b._data[None, :]

    def backward(g):
        return (g @ b._data if a.requires_grad else None, a._data @ g if b.requires_grad else None)
    return make_result(out, (a, b), backward, "outer", saved=product_saved(a, b), tangent=lambda ta, tb: add_tangents(
        None if ta is None else outer(ta, b), None if tb is None else outer(a, tb)))


ger = outer


def _parse_einsum(equation, shapes):
    """Explicit subscripts for each operand and the output, with '...' spelled out as letters (right-aligned
    across operands, as broadcasting aligns them)."""
    eq = equation.replace(" ", "")
    lhs, arrow, rhs = eq.partition("->")
    terms = lhs.split(",")
    if len(terms) != len(shapes):
        raise ValueError(f"einsum(): the equation {equation!r} has {len(terms)} operand subscripts but "
                         f"{len(shapes)} operands were given")
    used = set(c for c in eq if c.isalpha())
    spare = [c for c in string.ascii_letters if c not in used]
    n_ell = 0
    for term, shape in zip(terms, shapes):
        if "..." in term:
            n_ell = max(n_ell, len(shape) - (len(term) - 3))
    ell = "".join(spare[:n_ell])
    subs = []
    for term, shape in zip(terms, shapes):
        if "..." in term:
            k = len(shape) - (len(term) - 3)
            term = term.replace("...", ell[n_ell - k:] if k else "")
        if not builtins.all(c.isalpha() for c in term) or len(term) != len(shape):
            raise ValueError(f"einsum(): subscripts {term!r} do not match an operand of shape {tuple(shape)} in "
                             f"{equation!r}")
        subs.append(term)
    if arrow:
        out = rhs.replace("...", ell)
    else:  # implicit mode: the letters seen once, in alphabetical order, after the broadcast dimensions
        counts = {}
        for term in subs:
            for c in term:
                counts[c] = counts.get(c, 0) + 1
        out = ell + "".join(sorted(c for c, n in counts.items() if n == 1 and c not in ell))
    return subs, out, spare[n_ell:]


@traced
def einsum(equation, *operands):
    """torch.einsum(equation, *operands) (or a list of operands). The gradient of each operand is an einsum of
    the output gradient with the other operands; letters repeated within an operand (diagonals) go through an
    identity factor, letters only that operand has through a ones factor."""
    if len(operands) == 1 and isinstance(operands[0], (list, tuple)):
        operands = tuple(operands[0])
    if not isinstance(equation, str):
        raise TypeError(f"einsum(): argument 'equation' must be str, not {type(equation).__name__}")
    if not operands or not builtins.all(isinstance(t, Tensor) for t in operands):
        raise TypeError("einsum(): operands must be one or more Tensors")
    for t in operands[1:]:
        check_same_device(operands[0], t)
    dtype = result_type(*operands)
    operands = tuple(t if t.dtype == dtype else astype(t, dtype) for t in operands)
    subs, out_sub, spare = _parse_einsum(equation, [t.shape for t in operands])
    xp = operands[0]._backend.xp
    try:
        out = xp.einsum(",".join(subs) + "->" + out_sub, *[t._data for t in operands])
    except ValueError as e:
        raise ValueError(f"einsum(): {e} (equation {equation!r}, shapes "
                         f"{[tuple(t.shape) for t in operands]})") from None

    def grad_of(i, g):
        x = operands[i]
        spare_iter = iter(spare)
        target, extra_terms, extra_arrays, seen = "", [], [], {}
        for axis, c in enumerate(subs[i]):
            if c in seen:  # a diagonal: a fresh letter tied to the first by an identity matrix
                fresh = next(spare_iter)
                extra_terms.append(c + fresh)
                extra_arrays.append(xp.eye(x.shape[axis], dtype=g.dtype))
                c = fresh
            seen[c] = axis
            target += c
        others = [s for j, s in enumerate(subs) if j != i]
        present = set(out_sub).union(*others) if others else set(out_sub)
        lonely = "".join(c for c in dict.fromkeys(subs[i]) if c not in present)
        if lonely:
            extra_terms.append(lonely)
            extra_arrays.append(xp.ones(tuple(x.shape[subs[i].index(c)] for c in lonely), dtype=g.dtype))
        terms = [out_sub] + others + extra_terms
        arrays = [g] + [t._data for j, t in enumerate(operands) if j != i] + extra_arrays
        grad = xp.einsum(",".join(terms) + "->" + target, *arrays)
        return unbroadcast(grad, x.shape)  # size-1 dimensions that broadcast in the forward

    def backward(g):
        return tuple(grad_of(i, g) if t.requires_grad else None for i, t in enumerate(operands))
    saved = tuple(t for i, t in enumerate(operands)
                  if builtins.any(o.requires_grad for j, o in enumerate(operands) if j != i))
    def tangent(*tangents):  # multilinear: one einsum per operand with a tangent, in that operand's place
        return add_tangents(*(None if t is None else einsum(equation, *operands[:i], t, *operands[i + 1:])
                              for i, t in enumerate(tangents)))
    return make_result(scalar_array(out, xp), operands, backward, "einsum", saved=saved, tangent=tangent)


# ---- cumulative and product reductions ----------------------------------------------------------------------
def _reduction_dtype(x, dtype):
    """PyTorch's sum-like result dtype: integers and bools accumulate in int64 unless `dtype` says otherwise."""
    if dtype is not None:
        from fastnn.tensor import as_dtype
        return as_dtype(dtype)
    return _INT64 if x.dtype.kind in "biu" else x.dtype


@traced
def cumsum(input, dim, *, dtype=None):
    x = _tensor(input, "cumsum")
    axis = normalize_dim(dim, x.ndim)
    dt = _reduction_dtype(x, dtype)
    x = x if x.dtype == dt else astype(x, dt)
    xp = x._backend.xp
    data = x._data.reshape(1) if x.ndim == 0 else x._data
    out = xp.cumsum(data, axis=axis).reshape(x.shape)

    def backward(g):
        g1 = g.reshape(data.shape)
        return (xp.flip(xp.cumsum(xp.flip(g1, axis), axis=axis), axis).reshape(x.shape),)
    return make_result(scalar_array(out, xp), (x,), backward, "cumsum", saved=(), tangent=lambda t: cumsum(t, axis))


def _exclusive_products(xp, data, axis):
    """(product of the elements before i, product of those after i) along axis: the product without element i
    is their product, exact even where x has zeros (no division)."""
    n = data.shape[axis]
    ones = xp.ones(data.shape[:axis] + (1,) + data.shape[axis + 1:], dtype=data.dtype)
    before = xp.concatenate([ones, xp.cumprod(xp.take(data, xp.arange(n - 1), axis=axis), axis=axis)], axis=axis)
    flipped = xp.flip(data, axis)
    after = xp.flip(xp.concatenate([ones, xp.cumprod(xp.take(flipped, xp.arange(n - 1), axis=axis), axis=axis)],
                                   axis=axis), axis)
    return before, after


def cumprod(input, dim, *, dtype=None):
    x = _tensor(input, "cumprod")
    axis = normalize_dim(dim, x.ndim)
    dt = _reduction_dtype(x, dtype)
    x = x if x.dtype == dt else astype(x, dt)
    xp = x._backend.xp
    data = x._data.reshape(1) if x.ndim == 0 else x._data
    out = xp.cumprod(data, axis=axis)

    def backward(g):
        g1 = g.reshape(data.shape)
        if not bool((data == 0).any()):  # sum_{k >= i} g_k out_k / x_i: a reversed cumulative sum, O(n)
            rev = xp.flip(xp.cumsum(xp.flip(g1 * out, axis), axis=axis), axis)
            return ((rev / data).reshape(x.shape),)
        # With zeros: d out_k / d x_i = prod_{j <= k, j != i} x_j for k >= i, as a triangular sum over (i, k)
        # pairs that needs no division: O(n^2) along the axis.
        n = data.shape[axis]
        g1 = xp.moveaxis(g1, axis, -1)
        xm = xp.moveaxis(data, axis, -1)
        eye = xp.eye(n, dtype=bool)
        # rows i: x with x_i replaced by 1, cumulative product over k
        masked = xp.where(eye, xp.ones((), dtype=data.dtype), xm[..., None, :])
        partial = xp.cumprod(masked, axis=-1)
        upper = xp.triu(xp.ones((n, n), dtype=data.dtype))  # k >= i
        gx = (partial * upper * g1[..., None, :]).sum(axis=-1)
        return (xp.moveaxis(gx, -1, axis).reshape(x.shape),)
    def tangent(t):  # d out_k = sum_{i <= k} t_i prod_{j <= k, j != i} x_j through ops (zeros allowed): O(n^2)
        from fastnn.ops.elementwise import where
        from fastnn.ops.shape import expand, movedim, reshape, unsqueeze
        rows = movedim(reshape(x, data.shape), axis, -1)
        n = rows.shape[-1]
        eye = Tensor._wrap(xp.eye(n, dtype=_BOOL), x._backend)
        partial = cumprod(where(eye, 1, expand(unsqueeze(rows, -2), rows.shape[:-1] + (n, n))), -1)
        upper = Tensor._wrap(xp.triu(xp.ones((n, n), dtype=data.dtype)), x._backend)  # k >= i
        tangent_rows = unsqueeze(movedim(reshape(t, data.shape), axis, -1), -1)
        return reshape(movedim((tangent_rows * partial * upper).sum(-2), -1, axis), x.shape)
    return make_result(scalar_array(out.reshape(x.shape), xp), (x,), backward, "cumprod", saves_output=True,
                       tangent=tangent)


def prod(input, dim=None, keepdim=False, *, dtype=None):
    x = _tensor(input, "prod")
    dt = _reduction_dtype(x, dtype)
    x = x if x.dtype == dt else astype(x, dt)
    xp = x._backend.xp
    if dim is None:
        axis, data = 0, x._data.reshape(-1)
        out = data.prod(axis=0)
        kept_shape = (1,)
    else:
        axis = normalize_dim(dim, x.ndim)
        data = x._data.reshape(1) if x.ndim == 0 else x._data
        out = data.prod(axis=axis, keepdims=True)
        kept_shape = out.shape
        if not keepdim:
            out = out.reshape(x.shape[:axis] + x.shape[axis + 1:])

    def backward(g):
        if data.size == 0:
            return (xp.zeros(x.shape, dtype=g.dtype),)
        before, after = _exclusive_products(xp, data, axis)
        return ((g.reshape(kept_shape) * before * after).reshape(x.shape),)
    def tangent(t):
        # sum_i t_i * prod_{j != i} x_j along the axis, through ops (no division: zeros are fine); the products of
        # the others come from an n x n copy of each reduced row, so this costs n times the input's memory.
        from fastnn.ops.elementwise import where
        from fastnn.ops.shape import expand, movedim, reshape, unsqueeze
        flat = reshape(x, (-1,)) if dim is None else reshape(x, data.shape)
        rows = movedim(flat, axis, -1)
        n = rows.shape[-1]
        eye = Tensor._wrap(xp.eye(n, dtype=_BOOL), x._backend)
        others = prod(where(eye, 1, expand(unsqueeze(rows, -2), rows.shape[:-1] + (n, n))), -1)
        tangent_rows = movedim(reshape(t, flat.shape), axis, -1)
        return reshape((tangent_rows * others).sum(-1), out.shape)
    return make_result(scalar_array(out, xp), (x,), backward, "prod", tangent=tangent)


# ---- norms ----------------------------------------------------------------------------------------------------
def norm(input, p="fro", dim=None, keepdim=False, dtype=None):
    """Vector p-norm over `dim` (all elements when None); 'fro' is the 2-norm. p may be any real, inf or -inf;
    p=0 counts nonzeros. The gradient at a zero norm is 0 (PyTorch's subgradient), not NaN."""
    x = _tensor(input, "norm")
    if dtype is not None:
        from fastnn.tensor import as_dtype
        x = astype(x, as_dtype(dtype))
    if x.dtype.kind != "f":
        raise TypeError(f"norm(): expected a floating point tensor, got {x.dtype}")
    if p == "fro" or p is None:
        p = 2
    if isinstance(p, str) or not isinstance(p, (int, float, np.integer, np.floating)) or isinstance(p, bool):
        raise ValueError(f"norm(): p must be a real number, inf, -inf or 'fro', got {p!r}")
    axes = normalize_dim(dim, x.ndim)
    axes = axes if axes is None or isinstance(axes, tuple) else (axes,)
    xp = x._backend.xp
    data = x._data
    a = xp.abs(data)
    t = data.dtype.type
    if p == math.inf or p == -math.inf:
        kept = (xp.amax if p > 0 else xp.amin)(a, axis=axes, keepdims=True)
    elif p == 0:
        kept = (a != 0).sum(axis=axes, keepdims=True).astype(data.dtype)
    elif p == 1:
        kept = a.sum(axis=axes, keepdims=True)
    elif p == 2:
        kept = xp.sqrt((data * data).sum(axis=axes, keepdims=True))
    else:
        kept = (a ** t(p)).sum(axis=axes, keepdims=True) ** t(1 / p)
    out = kept if keepdim else kept.reshape(tuple(n for i, n in enumerate(x.shape) if axes is not None
                                                  and i not in axes))

    def backward(g):
        gk = g.reshape(kept.shape)
        if p == 0:
            return (xp.zeros_like(data),)
        if p in (math.inf, -math.inf):  # shared evenly among the elements reaching the extreme
            hits = (a == kept).astype(data.dtype)
            return (xp.sign(data) * hits * gk / hits.sum(axis=axes, keepdims=True),)
        if p == 1:
            return (xp.sign(data) * gk,)
        nonzero = kept > 0
        safe = xp.where(nonzero, kept, t(1))
        if p == 2:
            return (xp.where(nonzero, gk / safe, t(0)) * data,)
        scale = xp.where(nonzero, gk / safe ** t(p - 1), t(0))
        return (scale * xp.sign(data) * a ** t(p - 1),)

    def tangent(tv):  # the backward's cases, from ops on x (reverse mode differentiates them)
        from fastnn.ops.elementwise import where
        sign = Tensor._wrap(xp.sign(data), x._backend)
        if p == 0:
            slope = Tensor._wrap(xp.zeros_like(data), x._backend)
        elif p in (math.inf, -math.inf):
            hits = (a == kept).astype(data.dtype)
            slope = sign * Tensor._wrap(hits / hits.sum(axis=axes, keepdims=True), x._backend)
        elif p == 1:
            slope = sign
        else:
            nonzero = Tensor._wrap(kept > 0, x._backend)
            safe = where(nonzero, norm(x, p, axes, keepdim=True), t(1))
            slope = where(nonzero, x.abs() ** t(p - 1) * sign / safe ** t(p - 1), t(0))
        return (slope * tv).sum(axes, keepdim=True).reshape(out.shape)
    return make_result(scalar_array(out, xp), (x,), backward, "norm", saves_output=True, tangent=tangent)


def dist(input, other, p=2):
    """norm(input - other, p) over all elements."""
    return norm(sub(input, other), p)


# ---- triangular and diagonal parts ---------------------------------------------------------------------------
def _triangle(name, upper):
    def op(input, diagonal=0):
        x = _tensor(input, name)
        if x.ndim < 2:
            raise ValueError(f"{name}(): input tensor must have at least 2 dimensions, got shape {tuple(x.shape)}")
        xp = x._backend.xp
        part = xp.triu if upper else xp.tril
        return make_result(part(x._data, diagonal), (x,), lambda g: (part(g, diagonal),), name, saved=(),
                           tangent=lambda t: op(t, diagonal))
    op.__name__ = op.__qualname__ = name
    return op


tril = _triangle("tril", False)
triu = _triangle("triu", True)


def _diagonal_positions(xp, shape, k):
    rows, cols = shape
    n = max(0, min(rows + min(k, 0), cols - max(k, 0)))
    i = xp.arange(n)
    return i - min(k, 0), i + max(k, 0)


def diag(input, diagonal=0):
    """1-D input: a square matrix with it on the `diagonal`-th diagonal; 2-D: that diagonal as a 1-D tensor."""
    x = _tensor(input, "diag")
    if x.ndim not in (1, 2):
        raise ValueError(f"diag(): expected a 1-D or 2-D tensor, got shape {tuple(x.shape)}")
    xp = x._backend.xp
    k = int(diagonal)
    if x.ndim == 1:
        n = x.shape[0] + abs(k)
        out = xp.zeros((n, n), dtype=x.dtype)
        rows, cols = _diagonal_positions(xp, (n, n), k)
        out[rows, cols] = x._data

        def backward(g):
            return (g[rows, cols],)
    else:
        rows, cols = _diagonal_positions(xp, x.shape, k)
        out = x._data[rows, cols]

        def backward(g):
            gx = xp.zeros(x.shape, dtype=g.dtype)
            gx[rows, cols] = g
            return (gx,)
    return make_result(out, (x,), backward, "diag", saved=(), tangent=lambda t: diag(t, k))


# ---- tests on values --------------------------------------------------------------------------------------------
def _predicate(name, forward):
    def op(input):
        x = _tensor(input, name)
        xp = x._backend.xp
        return Tensor._wrap(scalar_array(forward(xp, x._data), xp), x._backend)
    op.__name__ = op.__qualname__ = name
    return op


isnan = _predicate("isnan", lambda xp, a: xp.isnan(a) if a.dtype.kind == "f" else xp.zeros(a.shape, dtype=bool))
isinf = _predicate("isinf", lambda xp, a: xp.isinf(a) if a.dtype.kind == "f" else xp.zeros(a.shape, dtype=bool))
isfinite = _predicate("isfinite", lambda xp, a: xp.isfinite(a) if a.dtype.kind == "f"
                      else xp.ones(a.shape, dtype=bool))


def _logical_reduction(name, method):
    def op(input, dim=None, keepdim=False):
        x = _tensor(input, name)
        xp = x._backend.xp
        axes = normalize_dim(dim, x.ndim)
        out = getattr(x._data.astype(bool), method)(axis=axes, keepdims=keepdim)
        return Tensor._wrap(scalar_array(xp.asarray(out), xp), x._backend)
    op.__name__ = op.__qualname__ = name
    return op


any = _logical_reduction("any", "any")
all = _logical_reduction("all", "all")


def nan_to_num(input, nan=0.0, posinf=None, neginf=None):
    """NaN -> nan, +inf -> posinf (default: the dtype's largest value), -inf -> neginf (its lowest). The
    gradient passes where the input is finite and is 0 at the replaced elements, as in PyTorch."""
    x = _tensor(input, "nan_to_num")
    xp = x._backend.xp
    if x.dtype.kind != "f":
        return make_result(x._data.copy(), (x,), lambda g: (g,), "nan_to_num", saved=(), tangent=lambda t: t)
    info = np.finfo(x.dtype)
    t = x.dtype.type
    data = x._data
    out = xp.where(xp.isnan(data), t(nan), data)
    out = xp.where(data == t(math.inf), t(info.max if posinf is None else posinf), out)
    out = xp.where(data == t(-math.inf), t(info.min if neginf is None else neginf), out)
    return make_result(scalar_array(out, xp), (x,), lambda g: (xp.where(xp.isfinite(data), g, t(0)),),
                       "nan_to_num", tangent=lambda tv: tv * Tensor._wrap(xp.isfinite(data), x._backend))


def allclose(input, other, rtol=1e-05, atol=1e-08, equal_nan=False):
    """|input - other| <= atol + rtol * |other| everywhere (broadcasting), as a Python bool."""
    a, b = _binary(_tensor(input, "allclose"), other)
    return bool(a._backend.xp.allclose(a._data, b._data, rtol=rtol, atol=atol, equal_nan=equal_nan))


def equal(input, other):
    """True when both tensors have the same shape and the same values (no broadcasting), as a Python bool."""
    a, b = _tensor(input, "equal"), _tensor(other, "equal")
    check_same_device(a, b)
    return a.shape == b.shape and bool((a._data == b._data).all())


# ---- logical and bitwise ---------------------------------------------------------------------------------------
def _logical(name, forward):
    def op(input, other=None):
        x = _tensor(input, name)
        xp = x._backend.xp
        if forward is None:  # logical_not
            return Tensor._wrap(scalar_array(x._data == 0, xp), x._backend)
        a, b = _binary(x, other)
        return Tensor._wrap(scalar_array(forward(xp, a._data != 0, b._data != 0), xp), a._backend)
    op.__name__ = op.__qualname__ = name
    return op


logical_and = _logical("logical_and", lambda xp, a, b: a & b)
logical_or = _logical("logical_or", lambda xp, a, b: a | b)
logical_xor = _logical("logical_xor", lambda xp, a, b: a ^ b)
logical_not = _logical("logical_not", None)


def _bitwise(name, forward):
    """&, |, ^ on bool (logical) and integer (bitwise) tensors; floats are refused, as in PyTorch."""
    def op(input, other):
        a, b = _binary(input, other)
        if a.dtype.kind not in "biu":
            raise TypeError(f"{name}(): only integer and bool tensors are supported, got {a.dtype}")
        return Tensor._wrap(scalar_array(forward(a._data, b._data), a._backend.xp), a._backend)
    op.__name__ = op.__qualname__ = name
    return op


bitwise_and = _bitwise("bitwise_and", lambda a, b: a & b)
bitwise_or = _bitwise("bitwise_or", lambda a, b: a | b)
bitwise_xor = _bitwise("bitwise_xor", lambda a, b: a ^ b)


def bitwise_not(input):
    x = _tensor(input, "bitwise_not")
    if x.dtype.kind not in "biu":
        raise TypeError(f"bitwise_not(): only integer and bool tensors are supported, got {x.dtype}")
    return Tensor._wrap(scalar_array(~x._data, x._backend.xp), x._backend)


# ---- diagonals, counting, searching ------------------------------------------------------------------------------
def diagonal(input, offset=0, dim1=0, dim2=1):
    """The diagonal of the (dim1, dim2) planes as the last dimension: a view of input, as in PyTorch (read-only
    on the CPU: NumPy's diagonal views refuse writes)."""
    x = _tensor(input, "diagonal")
    if x.ndim < 2:
        raise ValueError(f"diagonal(): input must have at least 2 dimensions, got shape {tuple(x.shape)}")
    d1, d2 = normalize_dim(dim1, x.ndim), normalize_dim(dim2, x.ndim)
    if d1 == d2:
        raise ValueError(f"diagonal(): dim1 and dim2 must differ, both are {dim1}")
    xp = x._backend.xp
    k = int(offset)
    out = xp.diagonal(x._data, k, d1, d2)

    def backward(g):
        gx = xp.zeros(x.shape, dtype=g.dtype)
        planes = xp.moveaxis(gx, (d1, d2), (-2, -1))  # a view of gx: writing through it fills gx
        rows, cols = _diagonal_positions(xp, planes.shape[-2:], k)
        planes[..., rows, cols] = g
        return (gx,)
    return make_result(out, (x,), backward, "diagonal", saved=(), shares_storage=x,
                       tangent=lambda t: diagonal(t, k, d1, d2))


def trace(input):
    """The sum of a 2-D tensor's main diagonal."""
    x = _tensor(input, "trace")
    if x.ndim != 2:
        raise ValueError(f"trace(): expected a 2-D tensor, got shape {tuple(x.shape)}")
    from fastnn.ops.reduce import sum as _sum
    return _sum(diagonal(x))


def count_nonzero(input, dim=None):
    x = _tensor(input, "count_nonzero")
    axes = normalize_dim(dim, x.ndim)
    out = (x._data != 0).sum(axis=axes, dtype=_INT64)
    return Tensor._wrap(scalar_array(out, x._backend.xp), x._backend)


def bincount(input, weights=None, minlength=0):
    """Counts of each value 0 .. max(input) of a 1-D non-negative integer tensor (at least minlength bins); with
    weights, the sums of the weights falling in each bin."""
    x = _tensor(input, "bincount")
    if x.ndim != 1 or x.dtype.kind not in "iu":
        raise ValueError(f"bincount(): input must be a 1-D integer tensor, got dtype {x.dtype}, shape "
                         f"{tuple(x.shape)}")
    if x._data.size and int(x._data.min()) < 0:
        raise ValueError("bincount(): input must hold non-negative integers")
    if not isinstance(minlength, (int, np.integer)) or minlength < 0:
        raise ValueError(f"bincount(): minlength must be a non-negative int, got {minlength!r}")
    xp = x._backend.xp
    if weights is None:
        return Tensor._wrap(xp.bincount(x._data, minlength=int(minlength)).astype(_INT64), x._backend)
    _tensor(weights, "bincount", "weights")
    check_same_device(x, weights)
    if weights.shape != x.shape:
        raise ValueError(f"bincount(): weights of shape {tuple(weights.shape)} must match input {tuple(x.shape)}")
    dtype = weights.dtype if weights.dtype.kind == "f" else np.dtype(np.float64)
    out = xp.bincount(x._data, weights=weights._data, minlength=int(minlength)).astype(dtype)
    return Tensor._wrap(out, x._backend)


def searchsorted(sorted_sequence, values, *, out_int32=False, right=False, side=None, sorter=None):
    """Indices where `values` would be inserted into the last dimension of `sorted_sequence` to keep it sorted
    (the first such place, or the last one with right=True / side='right'); an N-D sequence searches each row
    with the matching row of values."""
    seq = _tensor(sorted_sequence, "searchsorted", "sorted_sequence")
    if side is not None:
        if side not in ("left", "right"):
            raise ValueError(f"searchsorted(): side must be 'left' or 'right', got {side!r}")
        if right and side == "left":
            raise ValueError("searchsorted(): side='left' contradicts right=True")
        right = side == "right"
    xp = seq._backend.xp
    scalar = not isinstance(values, Tensor)
    vals = xp.asarray(values, dtype=seq.dtype) if scalar else values._data
    if not scalar:
        check_same_device(seq, values)
    order = None
    if sorter is not None:
        check_same_device(seq, sorter)
        order = sorter._data
    where = "right" if right else "left"
    if seq.ndim <= 1:
        data = seq._data if order is None else seq._data[order]
        out = xp.searchsorted(data, vals, side=where)
    else:
        if scalar or vals.shape[:-1] != seq.shape[:-1]:
            raise ValueError(f"searchsorted(): values' leading dimensions {tuple(vals.shape[:-1])} must match the "
                             f"sorted sequence's {tuple(seq.shape[:-1])}")
        rows = seq._data.reshape(-1, seq.shape[-1])
        sorters = None if order is None else order.reshape(-1, seq.shape[-1])
        queries = vals.reshape(-1, vals.shape[-1])
        out = xp.stack([xp.searchsorted(rows[r] if sorters is None else rows[r][sorters[r]], queries[r], side=where)
                        for r in range(rows.shape[0])]).reshape(vals.shape)
    out = out.astype(np.dtype(np.int32) if out_int32 else _INT64)
    return Tensor._wrap(scalar_array(out, xp), seq._backend)


def bucketize(input, boundaries, *, out_int32=False, right=False):
    """The bucket of each element among the sorted 1-D `boundaries`: i with boundaries[i-1] < x <= boundaries[i]
    (right=False), or boundaries[i-1] <= x < boundaries[i] (right=True)."""
    _tensor(boundaries, "bucketize", "boundaries")
    if boundaries.ndim != 1:
        raise ValueError(f"bucketize(): boundaries must be 1-D, got shape {tuple(boundaries.shape)}")
    return searchsorted(boundaries, input, out_int32=out_int32, right=right)


def clamp_min(input, min):
    from fastnn.ops.elementwise import clamp
    return clamp(input, min=min)


def clamp_max(input, max):
    from fastnn.ops.elementwise import clamp
    return clamp(input, max=max)


# ---- more of torch's math, composed of differentiable ops (so gradients, tangents and export follow them) ------
from fastnn.ops import elementwise as _ew  # noqa: E402
from fastnn.ops import indexing as _ix  # noqa: E402
from fastnn.ops import reduce as _red  # noqa: E402
from fastnn.ops import shape as _sh  # noqa: E402
from fastnn.ops.linalg import matmul as _matmul  # noqa: E402


def _scaled(t, factor):
    """t * factor, skipping the multiply for 1 (a weak scalar: t's dtype is kept)."""
    return t if factor == 1 else _ew.mul(t, factor)


def _const(like, value):
    """A constant tensor of like's shape, dtype and device outside the graph (a branch of `where` that must not
    carry gradient, or NaN, back)."""
    xp = like._backend.xp
    return Tensor._wrap(xp.full(like.shape, value, dtype=like.dtype), like._backend)


def addcmul(input, tensor1, tensor2, *, value=1):
    """input + value * tensor1 * tensor2 (the update step of hand-written optimizers)."""
    return _ew.add(input, _scaled(_ew.mul(tensor1, tensor2), value))


def addcdiv(input, tensor1, tensor2, *, value=1):
    """input + value * tensor1 / tensor2; integer tensor1 and tensor2 are refused, as in PyTorch."""
    if builtins.all(isinstance(t, Tensor) and t.dtype.kind in "biu" for t in (tensor1, tensor2)):
        raise TypeError("addcdiv(): integer division with addcdiv is not supported; use (input + value * "
                        "torch.trunc(tensor1 / tensor2)) for integer inputs")
    return _ew.add(input, _scaled(_ew.div(tensor1, tensor2), value))


def _vector(t, name, arg):
    _tensor(t, name, arg)
    if t.ndim != 1:
        raise ValueError(f"{name}(): argument '{arg}' must be a 1-D tensor, got shape {tuple(t.shape)}")
    return t


def dot(input, tensor):
    """The inner product of two 1-D tensors of equal length and dtype."""
    a, b = _vector(input, "dot", "input"), _vector(tensor, "dot", "tensor")
    if a.dtype != b.dtype:
        raise TypeError(f"dot(): expected both vectors to have same dtype, but found {a.dtype} and {b.dtype}")
    if a.shape != b.shape:
        raise ValueError(f"dot(): inconsistent tensor size, expected tensors of the same length, got "
                         f"{a.shape[0]} and {b.shape[0]}")
    return _matmul(a, b)


vdot = dot  # for real tensors conjugating the first argument changes nothing


def mv(input, vec):
    """Matrix (n, m) times vector (m,)."""
    _tensor(input, "mv")
    if input.ndim != 2:
        raise ValueError(f"mv(): argument 'input' must be a 2-D tensor, got shape {tuple(input.shape)}")
    _vector(vec, "mv", "vec")
    if input.shape[1] != vec.shape[0]:
        raise ValueError(f"mv(): size mismatch, got input {tuple(input.shape)} and vec {tuple(vec.shape)}")
    return _matmul(input, vec)


def tensordot(a, b, dims=2):
    """Sum of products over the last `dims` dims of a and the first `dims` of b, or over the paired dims
    ([dims_a], [dims_b]); done as one matrix product of permuted, reshaped operands."""
    _tensor(a, "tensordot", "a")
    _tensor(b, "tensordot", "b")
    if isinstance(dims, (int, np.integer)):
        if dims < 0:
            raise ValueError(f"tensordot(): dims must be a non-negative int, got {dims}")
        dims_a, dims_b = list(range(a.ndim - dims, a.ndim)), list(range(dims))
    else:
        dims_a, dims_b = ([d] if isinstance(d, int) else list(d) for d in dims)
    dims_a = [normalize_dim(d, a.ndim) for d in dims_a]
    dims_b = [normalize_dim(d, b.ndim) for d in dims_b]
    if len(dims_a) != len(dims_b) or builtins.any(a.shape[i] != b.shape[j] for i, j in zip(dims_a, dims_b)):
        raise ValueError(f"tensordot(): contracted dims {dims_a} of shape {tuple(a.shape)} and {dims_b} of shape "
                         f"{tuple(b.shape)} do not match")
    free_a = [d for d in range(a.ndim) if d not in dims_a]
    free_b = [d for d in range(b.ndim) if d not in dims_b]
    k = math.prod(a.shape[d] for d in dims_a)
    left = _sh.reshape(_sh.permute(a, free_a + dims_a), (-1, k))
    right = _sh.reshape(_sh.permute(b, dims_b + free_b), (k, -1))
    return _sh.reshape(_matmul(left, right), tuple(a.shape[d] for d in free_a) + tuple(b.shape[d] for d in free_b))


def inner(input, other):
    """Sum of products over the last dim of both (a product when either is 0-d)."""
    _tensor(input, "inner")
    _tensor(other, "inner", "other")
    if input.ndim == 0 or other.ndim == 0:
        return _ew.mul(input, other)
    return tensordot(input, other, ([-1], [-1]))


def kron(input, other):
    """The Kronecker product: block (i, j) of the result is input[i, j] * other (any number of dims)."""
    _tensor(input, "kron")
    _tensor(other, "kron", "other")
    n = builtins.max(input.ndim, other.ndim)
    a_shape = (1,) * (n - input.ndim) + tuple(input.shape)
    b_shape = (1,) * (n - other.ndim) + tuple(other.shape)
    a = _sh.reshape(input, tuple(s for d in a_shape for s in (d, 1)))
    b = _sh.reshape(other, tuple(s for d in b_shape for s in (1, d)))
    return _sh.reshape(_ew.mul(a, b), tuple(p * q for p, q in zip(a_shape, b_shape)))


def _beta_alpha(name, input, product, beta, alpha):
    """beta * input + alpha * product, the result of product's shape; beta == 0 ignores input (NaNs too)."""
    _tensor(input, name)
    try:
        shape = np.broadcast_shapes(tuple(input.shape), tuple(product.shape))
    except ValueError:
        shape = None
    if shape != tuple(product.shape):
        raise ValueError(f"{name}(): input of shape {tuple(input.shape)} does not broadcast to the product's "
                         f"shape {tuple(product.shape)}")
    out = _scaled(product, alpha)
    return out if beta == 0 else _ew.add(_scaled(input, beta), out)


def baddbmm(input, batch1, batch2, *, beta=1, alpha=1):
    """beta * input + alpha * bmm(batch1, batch2)."""
    return _beta_alpha("baddbmm", input, bmm(batch1, batch2), beta, alpha)


def addbmm(input, batch1, batch2, *, beta=1, alpha=1):
    """beta * input + alpha * the sum over the batch of batch1[i] @ batch2[i]."""
    return _beta_alpha("addbmm", input, _red.sum(bmm(batch1, batch2), 0), beta, alpha)


def addmv(input, mat, vec, *, beta=1, alpha=1):
    """beta * input + alpha * mat @ vec."""
    return _beta_alpha("addmv", input, mv(mat, vec), beta, alpha)


def addr(input, vec1, vec2, *, beta=1, alpha=1):
    """beta * input + alpha * outer(vec1, vec2)."""
    return _beta_alpha("addr", input, outer(vec1, vec2), beta, alpha)


def cdist(x1, x2, p=2.0, compute_mode="use_mm_for_euclid_dist_if_necessary"):
    """p-norm distances between the rows of x1 (..., P, M) and of x2 (..., R, M): shape (..., P, R). The gradient
    at a zero distance is 0, as in PyTorch."""
    for arg, t in (("x1", x1), ("x2", x2)):
        _tensor(t, "cdist", arg)
        if t.ndim < 2:
            raise ValueError(f"cdist(): {arg} must have at least 2 dimensions, got shape {tuple(t.shape)}")
    if x1.shape[-1] != x2.shape[-1]:
        raise ValueError(f"cdist(): x1 and x2 must have the same number of columns, got {x1.shape[-1]} and "
                         f"{x2.shape[-1]}")
    if not p >= 0:
        raise ValueError(f"cdist(): p must be non-negative, got {p}")
    diff = sub(_sh.unsqueeze(x1, -2), _sh.unsqueeze(x2, -3))
    return norm(diff, p, dim=-1)


def cross(input, other, dim=None):
    """The cross product of 3-vectors along dim (default: the first dim of size 3, PyTorch's deprecated default;
    linalg.cross uses -1)."""
    a, b = _binary(_tensor(input, "cross"), other)
    shape = np.broadcast_shapes(tuple(a.shape), tuple(b.shape))
    if dim is None:
        dim = next((d for d, n in enumerate(shape) if n == 3), None)
        if dim is None:
            raise ValueError(f"cross(): no dimension of size 3 in input of shape {shape}")
    axis = normalize_dim(dim, len(shape))
    if shape[axis] != 3:
        raise ValueError(f"cross(): dimension {dim} must have size 3, got {shape[axis]}")
    a, b = _sh.broadcast_to(a, shape), _sh.broadcast_to(b, shape)
    lead = (slice(None),) * axis
    ax = [_sh.getitem(a, lead + (i,)) for i in range(3)]
    bx = [_sh.getitem(b, lead + (i,)) for i in range(3)]
    parts = [sub(_ew.mul(ax[(i + 1) % 3], bx[(i + 2) % 3]), _ew.mul(ax[(i + 2) % 3], bx[(i + 1) % 3]))
             for i in range(3)]
    return _sh.stack(parts, axis)


def logcumsumexp(input, dim):
    """log(cumsum(exp(input), dim)) without overflow or underflow: a running logaddexp along dim. Its gradient
    runs the recurrence back (S_j = g_j + exp(out_j - out_{j+1}) S_{j+1}), never forming exp(input)."""
    x = _floating(input, "logcumsumexp")
    xp = x._backend.xp
    axis = normalize_dim(dim, x.ndim)
    data = x._data if x.ndim else x._data.reshape(1)
    moved = xp.moveaxis(data, axis if x.ndim else 0, 0)
    out = xp.empty_like(moved)
    if moved.shape[0]:
        out[0] = moved[0]
    for i in range(1, moved.shape[0]):
        out[i] = xp.logaddexp(out[i - 1], moved[i])
    result = xp.moveaxis(out, 0, axis if x.ndim else 0).reshape(x.shape)

    def backward(g):
        gm = xp.moveaxis(g if x.ndim else g.reshape(1), axis if x.ndim else 0, 0)
        s = xp.empty_like(gm)
        n = gm.shape[0]
        if n:
            s[n - 1] = gm[n - 1]
        for i in range(n - 2, -1, -1):
            # out is non-decreasing, so exp(out_i - out_{i+1}) <= 1; an all -inf prefix contributes nothing
            step = xp.where(xp.isneginf(out[i + 1]), 0, xp.exp(out[i] - xp.where(xp.isneginf(out[i + 1]), 0,
                                                                                out[i + 1])))
            s[i] = gm[i] + step * s[i + 1]
        gx = xp.where(xp.isneginf(moved), 0, s * xp.exp(moved - xp.where(xp.isneginf(out), 0, out)))
        return (xp.moveaxis(gx, 0, axis if x.ndim else 0).reshape(x.shape),)
    def tangent(t):  # sum_{j<=i} exp(x_j - out_i) t_j, shifted by the max along dim so exp(x - m) <= 1
        if x.ndim == 0:
            return t
        m = _red.amax(x, axis, keepdim=True).detach()
        return cumsum(t * (x - m).exp(), axis) * (m - logcumsumexp(x, axis)).exp()
    return make_result(scalar_array(result, xp), (x,), backward, "logcumsumexp", saved=(x,), saves_output=True,
                       tangent=tangent)


def _real_pair(input, other, name):
    a, b = _floating_pair(_tensor(input, name), other, name)
    return a, b


def logaddexp(input, other):
    """log(exp(input) + exp(other)), as max + log1p(exp(-|input - other|)) (no overflow)."""
    a, b = _real_pair(input, other, "logaddexp")
    return _ew.add(_ew.maximum(a, b), log1p(_ew.exp(_ew.neg(_ew.abs(sub(a, b))))))


def logaddexp2(input, other):
    """log2(2**input + 2**other), computed like logaddexp."""
    a, b = _real_pair(input, other, "logaddexp2")
    return _ew.add(_ew.maximum(a, b), _ew.div(log1p(exp2(_ew.neg(_ew.abs(sub(a, b))))), math.log(2)))


def hypot(input, other):
    """sqrt(input**2 + other**2) element-wise."""
    a, b = _real_pair(input, other, "hypot")
    return _ew.sqrt(_ew.add(_ew.mul(a, a), _ew.mul(b, b)))


def xlogy(input, other):
    """input * log(other), 0 where input is 0 (unless other is NaN), as scipy.special.xlogy."""
    x, y = _real_pair(input, other, "xlogy")
    zero = _ew.eq(x, 0) & ~isnan(y)
    safe = _ix.where(zero, _const(y, 1), y)  # log(1) = 0 keeps the unused branch (and its gradient) finite
    return _ix.where(zero, _const(x, 0), _ew.mul(x, _ew.log(safe)))


def logit(input, eps=None):
    """log(p / (1 - p)); with eps, p is first clamped to [eps, 1 - eps]."""
    p = _floating(input, "logit")
    if eps is not None:
        p = _ew.clamp(p, eps, 1 - eps)
    return sub(_ew.log(p), log1p(_ew.neg(p)))


def erfc(input):
    """1 - erf(input)."""
    return _ew.sub(1, erf(input))


def sinc(input):
    """sin(pi x) / (pi x), 1 at 0 (with gradient 0 there)."""
    x = _floating(input, "sinc")
    zero = _ew.eq(x, 0)
    pix = _ew.mul(_ix.where(zero, _const(x, 1), x), math.pi)
    return _ix.where(zero, _const(x, 1), _ew.div(sin(pix), pix))


def deg2rad(input):
    return _ew.mul(_floating(input, "deg2rad"), math.pi / 180)


def rad2deg(input):
    return _ew.mul(_floating(input, "rad2deg"), 180 / math.pi)


def frac(input):
    """input - trunc(input) (the fractional part, with input's sign)."""
    x = _tensor(input, "frac")
    if x.dtype.kind != "f":
        raise TypeError(f"frac(): expected a floating point tensor, got {x.dtype}")
    return sub(x, trunc(x))


def _nan_ignoring(name, pick):
    def op(input, other):
        a, b = _binary(_tensor(input, name), other)
        if a.dtype.kind != "f":
            return pick(a, b)
        return _ix.where(isnan(b), a, _ix.where(isnan(a), b, pick(a, b)))
    op.__name__ = op.__qualname__ = name
    op.__doc__ = f"Element-wise {name[1:]}imum that ignores NaN (NaN only where both are NaN)."
    return op


fmax = _nan_ignoring("fmax", _ew.maximum)
fmin = _nan_ignoring("fmin", _ew.minimum)


def signbit(input):
    """True where the sign bit is set (negative numbers and -0.0)."""
    x = _tensor(input, "signbit")
    xp = x._backend.xp
    return Tensor._wrap(scalar_array(xp.signbit(x._data) if x.dtype.kind == "f" else x._data < 0, xp), x._backend)


def copysign(input, other):
    """|input| with the sign of other (including -0.0's); the gradient to other is 0."""
    a, b = _real_pair(input, other, "copysign")
    return _ix.where(signbit(b), _ew.neg(_ew.abs(a)), _ew.abs(a))


def heaviside(input, values):
    """0 where input < 0, values where input == 0, 1 where input > 0 (no gradient, as in PyTorch)."""
    x, v = _binary(_tensor(input, "heaviside"), values)
    xp = x._backend.xp
    out = xp.where(x._data == 0, v._data, (x._data > 0).astype(x.dtype))
    return Tensor._wrap(scalar_array(xp.broadcast_to(out, np.broadcast_shapes(x.shape, v.shape)).copy(), xp),
                        x._backend)


def isclose(input, other, rtol=1e-05, atol=1e-08, equal_nan=False):
    """|input - other| <= atol + rtol * |other| element-wise (infinities equal when equal)."""
    a, b = _binary(_tensor(input, "isclose"), other)
    xp = a._backend.xp
    x, y = a._data, b._data
    if a.dtype.kind != "f":
        return Tensor._wrap(scalar_array(xp.abs(x - y) <= atol + rtol * xp.abs(y), xp), a._backend)
    with np.errstate(invalid="ignore"):
        close = (x == y) | (xp.isfinite(x) & xp.isfinite(y) & (xp.abs(x - y) <= atol + rtol * xp.abs(y)))
    if equal_nan:
        close = close | (xp.isnan(x) & xp.isnan(y))
    return Tensor._wrap(scalar_array(close, xp), a._backend)


isposinf = _predicate("isposinf", lambda xp, a: xp.isposinf(a) if a.dtype.kind == "f"
                      else xp.zeros(a.shape, dtype=bool))
isneginf = _predicate("isneginf", lambda xp, a: xp.isneginf(a) if a.dtype.kind == "f"
                      else xp.zeros(a.shape, dtype=bool))


def logdet(input):
    """log(det(input)): NaN for a negative determinant, -inf for a singular matrix, as in PyTorch."""
    from fastnn import linalg
    sign, logabs = linalg.slogdet(input)
    return _ix.where(_ew.lt(sign, 0), _const(sign, math.nan), logabs)


asinh = _unary("asinh", lambda xp, x: xp.arcsinh(x), lambda xp, g, x, o: g / xp.sqrt(x * x + 1), "x")
acosh = _unary("acosh", lambda xp, x: xp.arccosh(x), lambda xp, g, x, o: g / xp.sqrt(x * x - 1), "x")
atanh = _unary("atanh", lambda xp, x: xp.arctanh(x), lambda xp, g, x, o: g / (1 - x * x), "x")
arcsinh, arccosh, arctanh = asinh, acosh, atanh
sgn = sign  # for real tensors


def float_power(input, exponent):
    """input ** exponent computed in float64 (PyTorch's float_power)."""
    a, b = _binary(_tensor(input, "float_power"), exponent)
    f64 = np.dtype(np.float64)
    return _ew.pow(astype(a, f64) if a.dtype != f64 else a, astype(b, f64) if b.dtype != f64 else b)


def matrix_power(input, n):
    """The n-th power of square matrices by repeated squaring (n < 0: of the inverse; n = 0: the identity)."""
    x = _tensor(input, "matrix_power")
    if x.ndim < 2 or x.shape[-1] != x.shape[-2]:
        raise ValueError(f"matrix_power(): expected a (batch of) square matrices, got shape {tuple(x.shape)}")
    if not isinstance(n, (int, np.integer)) or isinstance(n, bool):
        raise TypeError(f"matrix_power(): n must be an int, got {n!r}")
    if n == 0:
        xp = x._backend.xp
        return Tensor._wrap(xp.broadcast_to(xp.eye(x.shape[-1], dtype=x.dtype), x.shape).copy(), x._backend)
    if n < 0:
        from fastnn import linalg
        x, n = linalg.inv(x), -n
    result, square = None, x
    while n:
        if n & 1:
            result = square if result is None else _matmul(result, square)
        n >>= 1
        if n:
            square = _matmul(square, square)
    return result


def diag_embed(input, offset=0, dim1=-2, dim2=-1):
    """Matrices whose `offset` diagonal (in dims dim1, dim2 of the result) holds input's last dim."""
    x = _tensor(input, "diag_embed")
    n = x.shape[-1] if x.ndim else 1
    xp = x._backend.xp
    eye = Tensor._wrap(xp.eye(n, dtype=x.dtype), x._backend)
    square = _ew.mul(_sh.unsqueeze(x if x.ndim else _sh.reshape(x, (1,)), -1), eye)  # (..., n, n)
    k = abs(int(offset))
    if k:
        # shift the diagonal: pad columns before (offset > 0) or rows before (offset < 0), and the other side after
        widths = (k, 0, 0, k) if offset > 0 else (0, k, k, 0)
        square = _sh.pad(square, widths)
    out_ndim = square.ndim
    d1, d2 = normalize_dim(dim1, out_ndim), normalize_dim(dim2, out_ndim)
    if d1 == d2:
        raise ValueError(f"diag_embed(): diagonal dimensions cannot be identical {dim1}, {dim2}")
    return _sh.movedim(square, (out_ndim - 2, out_ndim - 1), (d1, d2))


def diagflat(input, offset=0):
    """The flattened input as the `offset` diagonal of a square matrix."""
    return diag(_sh.reshape(_tensor(input, "diagflat"), (-1,)), offset)


def cov(input, *, correction=1, fweights=None, aweights=None):
    """The covariance matrix of the variables in input's rows (observations in columns; a 1-D input is one
    variable), with frequency and/or observation weights, as numpy.cov."""
    x = _floating(input, "cov")
    if x.ndim > 2:
        raise ValueError(f"cov(): expected input to have two or fewer dimensions but got an input with {x.ndim}")
    x = _sh.reshape(x, (1, -1)) if x.ndim < 2 else x
    n = x.shape[1]
    weights = None
    for name, w in (("fweights", fweights), ("aweights", aweights)):
        if w is not None:
            if not isinstance(w, Tensor) or w.ndim != 1 or w.shape[0] != n:
                raise ValueError(f"cov(): expected {name} to be a 1-D tensor of {n} elements")
            if name == "fweights" and w.dtype.kind not in "iu":
                raise TypeError(f"cov(): expected fweights to have an integral dtype but got {w.dtype}")
            weights = w if weights is None else _ew.mul(weights, w)
    if weights is None:
        total = n
        mean = _red.mean(x, 1, True)
        centered = sub(x, mean)
        divisor = n - correction
        prod = _matmul(centered, _sh.transpose(centered, 0, 1))
    else:
        weights = astype(weights, x.dtype) if weights.dtype != x.dtype else weights
        total = _red.sum(weights)
        mean = _ew.div(_red.sum(_ew.mul(x, weights), 1, True), total)
        centered = sub(x, mean)
        prod = _matmul(_ew.mul(centered, weights), _sh.transpose(centered, 0, 1))
        if aweights is None:
            divisor = _ew.sub(total, correction)
        else:
            a = astype(aweights, x.dtype) if aweights.dtype != x.dtype else aweights
            divisor = _ew.sub(total, _ew.mul(_ew.div(_red.sum(_ew.mul(weights, a)), total), correction))
    out = _ew.div(prod, divisor if isinstance(divisor, Tensor) else builtins.max(divisor, 0))
    return _sh.reshape(out, ()) if input.ndim < 2 else out


def corrcoef(input):
    """Pearson correlation coefficients of input's rows (numpy.corrcoef), clipped to [-1, 1]."""
    c = cov(input)
    if c.ndim == 0:
        return _ew.div(c, c)
    d = _ew.sqrt(diagonal(c))
    return _ew.clamp(_ew.div(_ew.div(c, _sh.unsqueeze(d, 1)), _sh.unsqueeze(d, 0)), -1, 1)


def trapezoid(y, x=None, *, dx=None, dim=-1):
    """The trapezoidal rule along dim: spacing dx (default 1) or the sample points x."""
    y = _tensor(y, "trapezoid", "y")
    axis = normalize_dim(dim, y.ndim)
    n = y.shape[axis]
    if n == 0:
        return _red.sum(y, axis)
    pair = _ew.add(_sh.narrow(y, axis, 1, n - 1), _sh.narrow(y, axis, 0, n - 1))
    if x is None:
        return _ew.mul(_red.sum(pair, axis), 0.5 * (1.0 if dx is None else dx))
    if dx is not None:
        raise TypeError("trapezoid(): pass either x or dx, not both")
    spacing = _sh.diff(x, dim=-1 if x.ndim == 1 else axis)
    if x.ndim == 1:
        spacing = _sh.reshape(spacing, (n - 1,) + (1,) * (y.ndim - axis - 1))
    return _ew.mul(_red.sum(_ew.mul(pair, spacing), axis), 0.5)


trapz = trapezoid


def vander(x, N=None, increasing=False):
    """The Vandermonde matrix of a 1-D x: columns x**(N-1) .. x**0 (increasing=True: x**0 .. x**(N-1))."""
    x = _tensor(x, "vander", "x")
    if x.ndim != 1:
        raise ValueError(f"vander(): x must be a one-dimensional tensor, got shape {tuple(x.shape)}")
    n = x.shape[0] if N is None else int(N)
    powers = list(range(n)) if increasing else list(range(n - 1, -1, -1))
    xp = x._backend.xp
    dtype = x.dtype if x.dtype.kind == "f" else _INT64
    exps = Tensor._wrap(xp.asarray(powers, dtype=dtype), x._backend)
    base = astype(x, dtype) if x.dtype != dtype else x
    return _ew.pow(_sh.unsqueeze(base, 1), _sh.unsqueeze(exps, 0))


def msort(input):
    """input sorted along dim 0."""
    return _ix.sort(input, 0).values


def rsub(input, other, *, alpha=1):
    """other - alpha * input."""
    return sub(other, _scaled(input, alpha))


# ---- special functions, from elementary array functions (no kernel of their own) ------------------------------
_LANCZOS_G = 7.0
_LANCZOS = (0.99999999999980993, 676.5203681218851, -1259.1392167224028, 771.32342877765313, -176.61502916214059,
            12.507343278686905, -0.13857109526572012, 9.9843695780195716e-6, 1.5056327351493116e-7)
# Bernoulli numbers B2, B4, ..., B14 for the asymptotic series of the polygamma functions
_BERNOULLI = (1 / 6, -1 / 30, 1 / 42, -1 / 30, 5 / 66, -691 / 2730, 7 / 6)


def _lgamma_array(xp, x):
    """log|Gamma(x)|: Lanczos (g=7, 9 terms; ~1e-15 relative) for x >= 0.5, the reflection formula below."""
    small = x < 0.5
    z = xp.where(small, 1 - x, x) - 1
    series = _c(_LANCZOS[0], z) + sum(_c(p, z) / (z + i) for i, p in enumerate(_LANCZOS[1:], start=1))
    t = z + _c(_LANCZOS_G + 0.5, z)
    big = _c(0.5 * math.log(2 * math.pi), z) + (z + _c(0.5, z)) * xp.log(t) - t + xp.log(series)
    with np.errstate(divide="ignore"):
        reflected = _c(math.log(math.pi), x) - xp.log(xp.abs(xp.sin(_c(math.pi, x) * x))) - big
    pole = (x <= 0) & (x == xp.floor(x))  # 0, -1, -2, ...: +inf, as PyTorch (sin(pi x) is not exactly 0 there)
    return xp.where(pole, _c(math.inf, x), xp.where(small, reflected, big))


def _polygamma_array(xp, n, x):
    """The n-th derivative of digamma: the recurrence psi_n(x) = psi_n(x + 1) - (-1)^n n! / x^(n+1) lifts x to
    x + S >= 10 (S grows with how negative x is), where the asymptotic series with B2..B14 holds to ~1e-14."""
    lowest = float(x.min()) if x.size else 0.0
    shift = builtins.max(10, math.ceil(10 - lowest)) if math.isfinite(lowest) else 10
    total = xp.zeros_like(x)
    with np.errstate(divide="ignore", invalid="ignore"):
        for i in range(shift):
            total = total + 1 / (x + _c(i, x)) ** (n + 1)
        z = x + _c(shift, x)
        if n == 0:
            asym = xp.log(z) - 1 / (2 * z) - sum(_c(b / (2 * k), z) / z ** (2 * k)
                                              for k, b in enumerate(_BERNOULLI, start=1))
            return asym - total
        # (-1)^(n+1) psi_n(z) ~ (n-1)!/z^n + n!/(2 z^(n+1)) + sum_k B_2k (2k+n-1)! / ((2k)! z^(2k+n))
        asym = _c(math.factorial(n - 1), z) / z ** n + _c(math.factorial(n) / 2, z) / z ** (n + 1) + sum(
            _c(b * math.factorial(2 * k + n - 1) / math.factorial(2 * k), z) / z ** (2 * k + n)
            for k, b in enumerate(_BERNOULLI, start=1))
        sign = _c(-1.0 if n % 2 == 0 else 1.0, z)  # (-1)^(n+1)
        return sign * (asym + _c(math.factorial(n), z) * total)


_F64 = np.dtype(np.float64)


def _in_float64(fn, xp, data):
    """fn computed in float64 and cast back: float32 would lose the series' last digits (lgamma(1) != 0)."""
    return fn(xp, data.astype(_F64)).astype(data.dtype)


def _polygamma_op(n, input, name):
    x = _floating(input, name)
    xp = x._backend.xp
    data = x._data

    def values(xp, v):
        out = _polygamma_array(xp, n, v)
        if n == 0:  # digamma: -inf at 0, NaN at the negative integers (PyTorch's values)
            out = xp.where((v < 0) & (v == xp.floor(v)), _c(math.nan, v), out)
        return out
    out = scalar_array(_in_float64(values, xp, data), xp)
    return make_result(out, (x,), lambda g: (g * _in_float64(lambda xp, v: _polygamma_array(xp, n + 1, v), xp,
                                                                data),), name, saved=(x,),
                       tangent=lambda t: t * _polygamma_op(n + 1, x, "polygamma"))


def digamma(input):
    """d/dx log Gamma(x); its gradient is polygamma(1, x)."""
    return _polygamma_op(0, input, "digamma")


def polygamma(n, input):
    """The n-th derivative of digamma (n = 0 is digamma)."""
    if not isinstance(n, (int, np.integer)) or isinstance(n, bool) or n < 0:
        raise ValueError(f"polygamma(n, x) does not support negative n, got n={n!r}")
    return _polygamma_op(int(n), input, "polygamma")


def lgamma(input):
    """log|Gamma(input)|; its gradient is digamma(input)."""
    x = _floating(input, "lgamma")
    xp = x._backend.xp
    data = x._data
    out = scalar_array(_in_float64(_lgamma_array, xp, data), xp)
    return make_result(out, (x,), lambda g: (g * _in_float64(lambda xp, v: _polygamma_array(xp, 0, v), xp, data),),
                       "lgamma", saved=(x,), tangent=lambda t: t * digamma(x))


def erfinv(input):
    """The inverse of erf on (-1, 1) (+-inf at +-1, NaN outside): Giles' single-precision approximation refined
    by two Newton steps on erf. Its gradient is sqrt(pi)/2 * exp(erfinv(x)^2)."""
    y = _floating(input, "erfinv")
    backend = y._backend
    xp = backend.xp
    data = y._data
    with np.errstate(divide="ignore", invalid="ignore"):
        w = -xp.log((1 - data) * (1 + data))
        central, tail = w - _c(2.5, w), xp.sqrt(w) - _c(3.0, w)
        p = xp.where(w < 5, _c(2.81022636e-08, w), _c(-0.000200214257, w))
        for a, b in ((3.43273939e-07, 0.000100950558), (-3.5233877e-06, 0.00134934322),
                     (-4.39150654e-06, -0.00367342844), (0.00021858087, 0.00573950773),
                     (-0.00125372503, -0.0076224613), (-0.00417768164, 0.00943887047),
                     (0.246640727, 1.00167406), (1.50140941, 2.83297682)):
            p = xp.where(w < 5, _c(a, w) + p * central, _c(b, w) + p * tail)
        x = p * data
        finite = xp.abs(data) < 1
        for _ in range(2):
            safe = xp.where(finite, x, 0)
            err = backend.kernels.erf(xp.ascontiguousarray(safe)).reshape(safe.shape) - data
            x = xp.where(finite, safe - err / (_c(2 / math.sqrt(math.pi), safe) * xp.exp(-safe * safe)), x)
        x = xp.where(xp.abs(data) == 1, xp.sign(data) * _c(math.inf, data), xp.where(xp.abs(data) > 1,
                                                                                   _c(math.nan, data), x))
    out = scalar_array(x, xp)
    return make_result(out, (y,), lambda g: (g * _c(math.sqrt(math.pi) / 2, out) * xp.exp(out * out),), "erfinv",
                       saved=(), saves_output=True,
                       tangent=lambda t: t * (erfinv(y) ** 2).exp() * (math.sqrt(math.pi) / 2))

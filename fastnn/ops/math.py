"""Math ops with PyTorch's names: element-wise functions, matrix products and einsum, cumulative and product
reductions, norms, triangular/diagonal parts, tests on values (isnan, any, allclose, ...).

Integer inputs to floating functions (sin, exp2, erf, ...) compute in float32, as PyTorch does; rounding
functions and sign keep an integer tensor's dtype.
"""
import builtins
import math
import string

import numpy as np

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


reciprocal = _unary("reciprocal", lambda xp, x: 1 / x, lambda xp, g, x, o: -g * o * o, "out",
                    derivative=lambda x: -1 / (x * x))
rsqrt = _unary("rsqrt", lambda xp, x: 1 / xp.sqrt(x), lambda xp, g, x, o: _c(-0.5, o) * g * o * o * o, "out",
               derivative=lambda x: -0.5 * x ** -1.5)
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
log1p = _unary("log1p", lambda xp, x: xp.log1p(x), lambda xp, g, x, o: g / (1 + x), "x",
               derivative=lambda x: 1 / (1 + x))
expm1 = _unary("expm1", lambda xp, x: xp.expm1(x), lambda xp, g, x, o: g * (o + 1), "out",
               derivative=lambda x: x.exp())
log2 = _unary("log2", lambda xp, x: xp.log2(x), lambda xp, g, x, o: g / (x * _c(math.log(2), x)), "x",
              derivative=lambda x: 1 / (x * math.log(2)))
log10 = _unary("log10", lambda xp, x: xp.log10(x), lambda xp, g, x, o: g / (x * _c(math.log(10), x)), "x",
               derivative=lambda x: 1 / (x * math.log(10)))
exp2 = _unary("exp2", lambda xp, x: xp.exp2(x), lambda xp, g, x, o: g * o * _c(math.log(2), o), "out",
              derivative=lambda x: exp2(x) * math.log(2))
square = _unary("square", lambda xp, x: x * x, lambda xp, g, x, o: 2 * g * x, "x", floating=False,
                derivative=lambda x: 2 * x)


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


sign = _step("sign", lambda xp, x: xp.sign(x))
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


def mm(input, mat2):
    _matrix_operands("mm", input, mat2, 2)
    return _product("mm", input, mat2)


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

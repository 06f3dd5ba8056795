"""Element-wise differentiable ops with NumPy broadcasting; gradients are summed back over broadcast axes.

Operands follow PyTorch's type promotion (fastnn.ops._util.result_type); a mixed-dtype operand is cast by the
differentiable `astype`, so each gradient comes back in its input's dtype. The arithmetic of add, sub, mul and
div goes through the backend's `binary` (the CPU backend splits large same-shape float arrays over its threads).
"""
import operator

import numpy as np

from fastnn._tracing import traced
from fastnn.autograd import Node, _forward, is_grad_enabled, make_result, propagate_tangents, unbroadcast
from fastnn.ops._util import add_tangents, as_tensor, check_same_device, product_saved, result_type, scalar_array
from fastnn.tensor import Tensor


def _binary(a, b):
    if not isinstance(a, Tensor):
        a = as_tensor(a, b if isinstance(b, Tensor) else None)
    if not isinstance(b, Tensor):
        b = as_tensor(b, a)
    elif a._backend is not b._backend:  # tested inline: every binary op passes here
        check_same_device(a, b)
    if a.dtype != b.dtype:
        dtype = result_type(a, b)
        if a.dtype != dtype:
            a = astype(a, dtype)
        if b.dtype != dtype:
            b = astype(b, dtype)
    return a, b


@traced
def add(a, b):
    a, b = _binary(a, b)
    out = scalar_array(a._backend.binary("add", a._data, b._data), a._backend.xp)

    def backward(g):
        return (unbroadcast(g, a.shape) if a.requires_grad else None,
                unbroadcast(g, b.shape) if b.requires_grad else None)
    return make_result(out, (a, b), backward, "add", saved=(), tangent=add_tangents)


@traced
def sub(a, b):
    a, b = _binary(a, b)
    out = scalar_array(a._backend.binary("sub", a._data, b._data), a._backend.xp)

    def backward(g):
        return (unbroadcast(g, a.shape) if a.requires_grad else None,
                unbroadcast(-g, b.shape) if b.requires_grad else None)
    return make_result(out, (a, b), backward, "sub", saved=(),
                       tangent=lambda ta, tb: add_tangents(ta, None if tb is None else neg(tb)))


@traced
def mul(a, b):
    a, b = _binary(a, b)
    binary = a._backend.binary
    out = scalar_array(binary("mul", a._data, b._data), a._backend.xp)

    def backward(g):
        return (unbroadcast(binary("mul", g, b._data), a.shape) if a.requires_grad else None,
                unbroadcast(binary("mul", g, a._data), b.shape) if b.requires_grad else None)
    return make_result(out, (a, b), backward, "mul", saved=product_saved(a, b),
                       tangent=lambda ta, tb: add_tangents(None if ta is None else ta * b,
                                                           None if tb is None else a * tb))


@traced
def div(a, b):
    a, b = _binary(a, b)
    if a.dtype.kind in "biu":  # true division of integers gives the default float dtype, as in PyTorch
        a, b = astype(a, np.dtype(np.float32)), astype(b, np.dtype(np.float32))
    binary = a._backend.binary
    out = scalar_array(binary("div", a._data, b._data), a._backend.xp)

    def backward(g):
        return (unbroadcast(binary("div", g, b._data), a.shape) if a.requires_grad else None,
                unbroadcast(-g * out / b._data, b.shape) if b.requires_grad else None)
    def tangent(ta, tb):  # (ta - (a / b) tb) / b
        return div(add_tangents(ta, None if tb is None else -(div(a, b) * tb)), b)
    return make_result(out, (a, b), backward, "div", saved=(b,), saves_output=b.requires_grad, tangent=tangent)


@traced
def pow(a, b):
    a, b = _binary(a, b)
    xp = a._backend.xp
    out = scalar_array(a._data ** b._data, xp)

    def backward(g):
        ga = gb = None
        if a.requires_grad:
            ga = unbroadcast(g * b._data * a._data ** (b._data - 1), a.shape)
        if b.requires_grad:
            # d/db a**b = a**b * log(a); defined as 0 where a <= 0 (as PyTorch does) instead of NaN.
            positive = a._data > 0
            log_a = xp.where(positive, xp.log(xp.where(positive, a._data, 1)), 0).astype(out.dtype)
            gb = unbroadcast(g * out * log_a, b.shape)
        return ga, gb
    def tangent(ta, tb):
        da = None if ta is None else ta * b * pow(a, b - 1)
        if tb is None:
            return da
        positive = gt(a, 0)
        return add_tangents(da, tb * pow(a, b) * where(positive, log(where(positive, a, 1)), 0))
    return make_result(out, (a, b), backward, "pow", saved=(a, b), saves_output=b.requires_grad, tangent=tangent)


@traced
def neg(x):
    return make_result(scalar_array(-x._data, x._backend.xp), (x,), lambda g: (-g,), "neg", saved=(), tangent=neg)


@traced
def exp(x):
    out = scalar_array(x._backend.xp.exp(x._data), x._backend.xp)
    return make_result(out, (x,), lambda g: (g * out,), "exp", saved=(), saves_output=True,
                       tangent=lambda t: t * exp(x))


@traced
def log(x):
    out = scalar_array(x._backend.xp.log(x._data), x._backend.xp)
    return make_result(out, (x,), lambda g: (g / x._data,), "log", tangent=lambda t: t / x)


@traced
def sqrt(x):
    out = scalar_array(x._backend.xp.sqrt(x._data), x._backend.xp)
    return make_result(out, (x,), lambda g: (g / (2 * out),), "sqrt", saved=(), saves_output=True,
                       tangent=lambda t: t / (2 * sqrt(x)))


@traced
def abs(x):
    xp = x._backend.xp
    return make_result(scalar_array(xp.abs(x._data), xp), (x,), lambda g: (g * xp.sign(x._data),), "abs",
                       tangent=lambda t: t * Tensor._wrap(xp.sign(x._data), x._backend))


def _bound(value, x):
    """A clamp bound as something x's array accepts: a same-device array or a scalar of x's dtype."""
    if value is None or isinstance(value, Tensor):
        return None if value is None else value._data
    return x.dtype.type(value)


@traced
def clamp(x, min=None, max=None):
    if min is None and max is None:
        raise ValueError("clamp: at least one of 'min' or 'max' must not be None")
    xp = x._backend.xp
    lo, hi = _bound(min, x), _bound(max, x)
    out = scalar_array(xp.clip(x._data, lo, hi), xp)

    def backward(g):
        inside = None if lo is None else x._data >= lo
        if hi is not None:
            inside = x._data <= hi if inside is None else inside & (x._data <= hi)
        return (g * inside,)

    def tangent(t):
        inside = (x._data >= lo) if lo is not None else xp.ones(x.shape, bool)
        if hi is not None:
            inside &= x._data <= hi
        return t * Tensor._wrap(inside, x._backend)
    return make_result(out, (x,), backward, "clamp", tangent=tangent)


def _tie_weights(wins, ties, dtype):
    """Share of the gradient going to the first input: 1 where it wins, 1/2 on ties (as PyTorch)."""
    return wins.astype(dtype) + ties.astype(dtype) * dtype.type(0.5)


def _tie_tangent(a, b, ta, tb, wa):
    """maximum's/minimum's tangent: each input's tangent weighted by its share of the gradient (wa, 1 - wa)."""
    wa = Tensor._wrap(wa, a._backend)
    return add_tangents(None if ta is None else ta * wa, None if tb is None else tb * (1 - wa))


@traced
def maximum(a, b):
    a, b = _binary(a, b)
    out = scalar_array(a._backend.xp.maximum(a._data, b._data), a._backend.xp)

    def backward(g):
        # Ties split the gradient evenly between both inputs, as PyTorch does.
        wa = _tie_weights(a._data > b._data, a._data == b._data, g.dtype)
        return unbroadcast(g * wa, a.shape), unbroadcast(g * (1 - wa), b.shape)
    return make_result(out, (a, b), backward, "maximum", tangent=lambda ta, tb: _tie_tangent(
        a, b, ta, tb, _tie_weights(a._data > b._data, a._data == b._data, out.dtype)))


@traced
def minimum(a, b):
    a, b = _binary(a, b)
    out = scalar_array(a._backend.xp.minimum(a._data, b._data), a._backend.xp)

    def backward(g):
        wa = _tie_weights(a._data < b._data, a._data == b._data, g.dtype)
        return unbroadcast(g * wa, a.shape), unbroadcast(g * (1 - wa), b.shape)
    return make_result(out, (a, b), backward, "minimum", tangent=lambda ta, tb: _tie_tangent(
        a, b, ta, tb, _tie_weights(a._data < b._data, a._data == b._data, out.dtype)))


def where(condition, a, b):
    if not isinstance(a, Tensor) and not isinstance(b, Tensor):  # two numbers: on the condition's device
        a = as_tensor(a, condition if isinstance(condition, Tensor) else None)
    a, b = _binary(a, b)
    xp = a._backend.xp
    cond = condition._data if isinstance(condition, Tensor) else a._backend.asarray(condition)
    if cond.dtype != np.bool_:
        raise TypeError(f"where expects a bool condition, got {cond.dtype}")
    out = scalar_array(xp.where(cond, a._data, b._data), xp)

    def backward(g):
        return (unbroadcast(xp.where(cond, g, 0), a.shape) if a.requires_grad else None,
                unbroadcast(xp.where(cond, 0, g), b.shape) if b.requires_grad else None)
    def tangent(ta, tb):
        c = Tensor._wrap(cond, a._backend)
        return where(c, 0.0 if ta is None else ta, 0.0 if tb is None else tb)
    return make_result(out, (a, b), backward, "where", saved=(), tangent=tangent)


@traced
def astype(x, dtype):
    out = x._data.astype(dtype)
    if dtype.kind not in "fc":
        return Tensor._wrap(out, x._backend)
    return make_result(out, (x,), lambda g: (g.astype(x.dtype),), "astype", saved=(),
                       tangent=lambda t: astype(t, dtype))


@traced
def clone(x):
    return make_result(x._data.copy(), (x,), lambda g: (g,), "clone", saved=(), tangent=clone)


def to_device(x, device):
    """x on `device`, through the host; the gradient goes back the same way."""
    from fastnn import _dispatch
    source, target = x._backend, _dispatch.backend(device)
    out = Tensor._wrap(target.from_host(source.to_host(x._data)), target)
    if x.requires_grad and is_grad_enabled():
        out.requires_grad = True
        out._node = Node((x,), lambda g: (source.from_host(target.to_host(g)),), "to_device", [])
    if _forward.visible:  # not through make_result (two devices): propagate tangents here
        propagate_tangents(out, (x,), lambda t: to_device(t, device), "to_device")
    return out


def _compare(op, name):
    def compare(a, b):
        a, b = _binary(a, b)
        return Tensor._wrap(scalar_array(op(a._data, b._data), a._backend.xp), a._backend)
    compare.__name__ = compare.__qualname__ = name
    return compare


eq = _compare(operator.eq, "eq")
ne = _compare(operator.ne, "ne")
lt = _compare(operator.lt, "lt")
le = _compare(operator.le, "le")
gt = _compare(operator.gt, "gt")
ge = _compare(operator.ge, "ge")

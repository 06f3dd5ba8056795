"""Element-wise differentiable ops with NumPy broadcasting; gradients are summed back over broadcast axes."""
import numpy as np

from fastnn.autograd import Node, is_grad_enabled, make_result, unbroadcast
from fastnn.ops._util import as_tensor
from fastnn.tensor import Tensor


def _binary(a, b):
    a = as_tensor(a, b if isinstance(b, Tensor) else None)
    b = as_tensor(b, a)
    # An integer/bool tensor meeting a float one takes the float dtype, as in PyTorch (NumPy would give float64).
    if a.dtype.kind in "biu" and b.dtype.kind == "f":
        a = Tensor(a.data.astype(b.dtype), device=a.device)
    elif b.dtype.kind in "biu" and a.dtype.kind == "f":
        b = Tensor(b.data.astype(a.dtype), device=b.device)
    return a, b


def add(a, b):
    a, b = _binary(a, b)
    out = a.data + b.data

    def backward(g):
        return (unbroadcast(g, a.shape) if a.requires_grad else None,
                unbroadcast(g, b.shape) if b.requires_grad else None)
    return make_result(out, (a, b), backward)


def sub(a, b):
    a, b = _binary(a, b)
    out = a.data - b.data

    def backward(g):
        return (unbroadcast(g, a.shape) if a.requires_grad else None,
                unbroadcast(-g, b.shape) if b.requires_grad else None)
    return make_result(out, (a, b), backward)


def mul(a, b):
    a, b = _binary(a, b)
    out = a.data * b.data

    def backward(g):
        return (unbroadcast(g * b.data, a.shape) if a.requires_grad else None,
                unbroadcast(g * a.data, b.shape) if b.requires_grad else None)
    return make_result(out, (a, b), backward)


def div(a, b):
    a, b = _binary(a, b)
    if a.dtype.kind in "biu" and b.dtype.kind in "biu":
        a, b = a.to(dtype="float32"), b.to(dtype="float32")
    out = a.data / b.data

    def backward(g):
        return (unbroadcast(g / b.data, a.shape) if a.requires_grad else None,
                unbroadcast(-g * out / b.data, b.shape) if b.requires_grad else None)
    return make_result(out, (a, b), backward)


def pow(a, b):
    a, b = _binary(a, b)
    out = np.power(a.data, b.data)

    def backward(g):
        ga = gb = None
        if a.requires_grad:
            ga = unbroadcast(g * b.data * np.power(a.data, b.data - 1), a.shape)
        if b.requires_grad:
            # d/db a**b = a**b * log(a); define it as 0 where a == 0 (as PyTorch does) instead of NaN.
            with np.errstate(divide="ignore", invalid="ignore"):
                log_a = np.where(a.data > 0, np.log(np.where(a.data > 0, a.data, 1)), 0).astype(out.dtype)
            gb = unbroadcast(g * out * log_a, b.shape)
        return ga, gb
    return make_result(out, (a, b), backward)


def neg(x):
    return make_result(-x.data, (x,), lambda g: (-g,), "neg")


def exp(x):
    out = np.exp(x.data)
    return make_result(out, (x,), lambda g: (g * out,), "exp")


def log(x):
    return make_result(np.log(x.data), (x,), lambda g: (g / x.data,), "log")


def sqrt(x):
    out = np.sqrt(x.data)
    return make_result(out, (x,), lambda g: (g / (2 * out),), "sqrt")


def abs(x):
    return make_result(np.abs(x.data), (x,), lambda g: (g * np.sign(x.data),), "abs")


def clamp(x, min=None, max=None):
    if min is None and max is None:
        raise ValueError("clamp: at least one of 'min' or 'max' must not be None")
    lo = None if min is None else (min.data if isinstance(min, Tensor) else np.asarray(min, x.dtype))
    hi = None if max is None else (max.data if isinstance(max, Tensor) else np.asarray(max, x.dtype))
    out = np.clip(x.data, lo, hi)

    def backward(g):
        inside = np.ones(x.shape, dtype=bool)
        if lo is not None:
            inside &= x.data >= lo
        if hi is not None:
            inside &= x.data <= hi
        return (g * inside,)
    return make_result(out, (x,), backward, "clamp")


def _tie_weights(wins, ties, dtype):
    """Share of the gradient going to the first input: 1 where it wins, 1/2 on ties (as PyTorch)."""
    return wins.astype(dtype) + ties.astype(dtype) * dtype.type(0.5)


def maximum(a, b):
    a, b = _binary(a, b)
    out = np.maximum(a.data, b.data)

    def backward(g):
        # Ties split the gradient evenly between both inputs, as PyTorch does.
        wa = _tie_weights(a.data > b.data, a.data == b.data, g.dtype)
        return unbroadcast(g * wa, a.shape), unbroadcast(g * (1 - wa), b.shape)
    return make_result(out, (a, b), backward, "maximum")


def minimum(a, b):
    a, b = _binary(a, b)
    out = np.minimum(a.data, b.data)

    def backward(g):
        wa = _tie_weights(a.data < b.data, a.data == b.data, g.dtype)
        return unbroadcast(g * wa, a.shape), unbroadcast(g * (1 - wa), b.shape)
    return make_result(out, (a, b), backward, "minimum")


def where(condition, a, b):
    cond = condition.data if isinstance(condition, Tensor) else np.asarray(condition)
    if cond.dtype != np.bool_:
        raise TypeError(f"where expects a bool condition, got {cond.dtype}")
    a, b = _binary(a, b)
    out = np.where(cond, a.data, b.data)

    def backward(g):
        return (unbroadcast(np.where(cond, g, 0), a.shape) if a.requires_grad else None,
                unbroadcast(np.where(cond, 0, g), b.shape) if b.requires_grad else None)
    return make_result(out, (a, b), backward, "where")


def astype(x, dtype):
    out = x.data.astype(dtype)
    if dtype.kind not in "fc":
        return Tensor(out, device=x.device)
    return make_result(out, (x,), lambda g: (g.astype(x.dtype),), "astype")


def clone(x):
    return make_result(x.data.copy(), (x,), lambda g: (g,), "clone")


def to_device(x, device):
    """x on `device`, through the host; the gradient goes back the same way."""
    from fastnn import _dispatch
    source, target = x._backend, _dispatch.backend(device)
    out = Tensor._wrap(target.from_host(source.to_host(x.data)), target)
    if not (x.requires_grad and is_grad_enabled()):
        return out
    out.requires_grad = True
    out._node = Node((x,), lambda g: (source.from_host(target.to_host(g)),), "to_device", [])
    return out


def _compare(ufunc):
    def compare(a, b):
        a, b = _binary(a, b)
        return Tensor(ufunc(a.data, b.data), device=a.device)
    compare.__name__ = ufunc.__name__
    return compare


eq = _compare(np.equal)
ne = _compare(np.not_equal)
lt = _compare(np.less)
le = _compare(np.less_equal)
gt = _compare(np.greater)
ge = _compare(np.greater_equal)

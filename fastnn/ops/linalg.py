"""Matrix products: matmul (NumPy semantics, batched, broadcasting) and the fused affine map of Linear."""
import numpy as np

from fastnn._tracing import traced
from fastnn.autograd import make_result, unbroadcast
from fastnn.ops._util import add_tangents, as_tensor, check_same_device, product_saved, scalar_array
from fastnn.tensor import Tensor


@traced
def matmul(a, b):
    a = as_tensor(a, b if isinstance(b, Tensor) else None)
    b = as_tensor(b, a)
    check_same_device(a, b)
    if a.ndim == 0 or b.ndim == 0:
        raise ValueError(f"matmul: both arguments must be at least 1-D, got shapes {tuple(a.shape)} and "
                         f"{tuple(b.shape)}")
    k_a = a.shape[-1]
    k_b = b.shape[0] if b.ndim == 1 else b.shape[-2]
    if k_a != k_b:
        raise ValueError(f"matmul: shapes {tuple(a.shape)} and {tuple(b.shape)} cannot be multiplied "
                         f"({k_a} != {k_b})")
    try:
        np.broadcast_shapes(a.shape[:-2], b.shape[:-2])
    except ValueError:
        raise ValueError(f"matmul: batch dimensions of shapes {tuple(a.shape)} and {tuple(b.shape)} do not "
                         "broadcast") from None
    if a.dtype != b.dtype:
        raise TypeError(f"matmul: expected both operands to have the same dtype, got {a.dtype} and {b.dtype}")
    out = scalar_array(a._data @ b._data, a._backend.xp)

    def backward(g):
        # Promote 1-D operands to matrices so one rule covers every case.
        a2 = a._data[None, :] if a.ndim == 1 else a._data
        b2 = b._data[:, None] if b.ndim == 1 else b._data
        g2 = g
        if b.ndim == 1:  # first: when both are 1-D, g is 0-d and only axis -1 exists to expand
            g2 = g2[..., None]
        if a.ndim == 1:
            g2 = g2[..., None, :]
        ga = gb = None
        if a.requires_grad:
            ga = unbroadcast(g2 @ b2.swapaxes(-1, -2), a2.shape).reshape(a.shape)
        if b.requires_grad:
            gb = unbroadcast(a2.swapaxes(-1, -2) @ g2, b2.shape).reshape(b.shape)
        return ga, gb
    return make_result(out, (a, b), backward, "matmul", saved=product_saved(a, b), tangent=lambda ta, tb: add_tangents(
        None if ta is None else matmul(ta, b), None if tb is None else matmul(a, tb)))


@traced
def linear(input, weight, bias=None):
    """y = x W^T + b over the last dimension of x (PyTorch's F.linear)."""
    if input.ndim < 1 or weight.ndim != 2:
        raise ValueError(f"linear: expected input (*, in_features) and weight (out_features, in_features), got "
                         f"{tuple(input.shape)} and {tuple(weight.shape)}")
    if input.shape[-1] != weight.shape[1]:
        raise ValueError(f"linear: input has {input.shape[-1]} features (shape {tuple(input.shape)}) but weight "
                         f"expects {weight.shape[1]} (shape {tuple(weight.shape)})")
    if bias is not None and bias.shape != (weight.shape[0],):
        raise ValueError(f"linear: bias shape {tuple(bias.shape)} does not match out_features {weight.shape[0]}")
    check_same_device(input, weight)
    if bias is not None:
        check_same_device(input, bias)
    if input.dtype != weight.dtype:
        raise TypeError(f"linear: input dtype {input.dtype} does not match weight dtype {weight.dtype}")
    x2 = input._data.reshape(-1, input.shape[-1])
    out = x2 @ weight._data.T
    if bias is not None:
        out += bias._data
    out = out.reshape(input.shape[:-1] + (weight.shape[0],))

    def backward(g):
        g2 = g.reshape(-1, weight.shape[0])
        gx = (g2 @ weight._data).reshape(input.shape) if input.requires_grad else None
        gw = g2.T @ x2 if weight.requires_grad else None
        gb = g2.sum(axis=0) if bias is not None and bias.requires_grad else None
        return (gx, gw, gb) if bias is not None else (gx, gw)
    inputs = (input, weight, bias) if bias is not None else (input, weight)
    def tangent(tx, tw, tb=None):
        return add_tangents(None if tx is None else linear(tx, weight), None if tw is None else linear(input, tw), tb)
    return make_result(out, inputs, backward, "linear", saved=product_saved(input, weight), tangent=tangent,
                       fresh_grads=True)

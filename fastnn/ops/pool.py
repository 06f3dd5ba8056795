"""2-D max and average pooling (PyTorch's F.max_pool2d / F.avg_pool2d) with their backward passes.

Inputs are (N, C, H, W) or unbatched (C, H, W); the kernels see them as N*C independent planes.
"""
import math
import numbers

from fastnn._tracing import traced
from fastnn._validation import pool_window
from fastnn.autograd import make_result
from fastnn.tensor import Tensor


def _planes(input, spatial):
    """The input as a contiguous (planes, *sizes) stack, the layout the pool kernels take."""
    return input._backend.xp.ascontiguousarray(input._data).reshape((-1,) + input.shape[-spatial:])


def _max_result(op, input, out, indices, out_shape, return_indices):
    """The result of a max-type pooling (and its int64 indices as a Tensor when asked). Indices are flat inside
    each input plane, so the backward is max_pool2d_backward's scatter into planes seen as 1 x plane-size images
    (interface.py declares it for every max-type pool). Pool backwards read indices and shapes, never the input's
    values (saved=())."""
    backend = input._backend
    plane_size = math.prod(input.shape[1 - indices.ndim:])
    count = math.prod(indices.shape[1:])

    def backward(g):
        g = backend.xp.ascontiguousarray(g).reshape(-1, 1, count)
        grad = backend.kernels.max_pool2d_backward(g, indices.reshape(-1, 1, count), 1, plane_size)
        return (grad.reshape(input.shape),)

    def tangent(t):  # the tangent at each window's argmax
        from fastnn.ops.indexing import _pick
        return _pick(t.reshape(-1, plane_size), indices.reshape(-1, count), 1, op).reshape(out_shape)

    result = make_result(out.reshape(out_shape), (input,), backward, op, saved=(), tangent=tangent)
    if return_indices:
        return result, Tensor._wrap(indices.reshape(out_shape), backend)
    return result


@traced
def max_pool2d(input, kernel_size, stride=None, padding=0, dilation=1, ceil_mode=False, return_indices=False):
    """Max over kernel_size windows (int or (kh, kw)); stride defaults to kernel_size; padded positions
    never win. With return_indices, also returns int64 flat indices h*W + w of each max inside its plane."""
    kernel, stride, padding, dilation, out_hw = pool_window("max_pool2d", input, 2, kernel_size, stride, padding,
                                                            dilation, ceil_mode)
    out, indices = input._backend.kernels.max_pool2d_forward(_planes(input, 2), *kernel, *stride, *padding,
                                                             *dilation, *out_hw)
    return _max_result("max_pool2d", input, out, indices, input.shape[:-2] + out_hw, return_indices)


def divisor_code(op, divisor_override):
    """divisor_override as the avg-pool kernels take it: a non-zero int, or 0 for "no override"."""
    if divisor_override is None:
        return 0
    if not isinstance(divisor_override, numbers.Integral) or isinstance(divisor_override, bool):
        raise TypeError(f"{op}: divisor_override must be an int or None, got {divisor_override!r}")
    if divisor_override == 0:
        raise ValueError(f"{op}: divisor must be not zero (divisor_override must be a non-zero int)")
    return int(divisor_override)


@traced
def avg_pool2d(input, kernel_size, stride=None, padding=0, ceil_mode=False, count_include_pad=True,
               divisor_override=None):
    """Mean over kernel_size windows; the divisor is the window's size including padding
    (count_include_pad=True), excluding it, or divisor_override when given."""
    kernel, stride, padding, _, (oh, ow) = pool_window("avg_pool2d", input, 2, kernel_size, stride, padding, 1,
                                                       ceil_mode)
    divisor = divisor_code("avg_pool2d", divisor_override)
    count_include_pad = bool(count_include_pad)
    backend = input._backend
    out = backend.kernels.avg_pool2d_forward(_planes(input, 2), *kernel, *stride, *padding, oh, ow,
                                             count_include_pad, divisor)
    height, width = input.shape[-2:]

    def backward(g):
        g = backend.xp.ascontiguousarray(g).reshape(-1, oh, ow)
        grad = backend.kernels.avg_pool2d_backward(g, height, width, *kernel, *stride, *padding, count_include_pad,
                                                   divisor)
        return (grad.reshape(input.shape),)

    return make_result(out.reshape(input.shape[:-2] + (oh, ow)), (input,), backward, "avg_pool2d", saved=(),
                       tangent=lambda t: avg_pool2d(t, kernel_size, stride, padding, ceil_mode, count_include_pad,
                                                    divisor_override))

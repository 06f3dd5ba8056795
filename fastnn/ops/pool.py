"""2-D max and average pooling (PyTorch's F.max_pool2d / F.avg_pool2d) with their backward passes.

Inputs are (N, C, H, W) or unbatched (C, H, W); the kernels see them as N*C independent planes.
"""
import numbers

import numpy as np

from fastnn._dispatch import kernels
from fastnn.autograd import make_result
from fastnn.tensor import Tensor

_KERNEL_DTYPES = (np.dtype(np.float32), np.dtype(np.float64))


def _pair(value, name, op, allow_none=False):
    if allow_none and (value is None or (isinstance(value, (tuple, list)) and len(value) == 0)):
        return None
    pair = tuple(value) if isinstance(value, (tuple, list)) else (value, value)
    if len(pair) == 1:
        pair = pair * 2
    if len(pair) != 2 or not all(isinstance(v, numbers.Integral) and not isinstance(v, bool) for v in pair):
        omitted = "be omitted, " if allow_none else ""
        raise TypeError(f"{op}: {name} must either {omitted}be a single int, or a tuple of two ints, got {value!r}")
    return int(pair[0]), int(pair[1])


def _output_size(size, kernel, pad, stride, dilation, ceil_mode):
    """PyTorch's pooling_output_shape: in ceil mode the last window must start inside the input or the
    left padding, so a window that would lie entirely in the right padding is dropped."""
    out = (size + 2 * pad - dilation * (kernel - 1) - 1 + (stride - 1 if ceil_mode else 0)) // stride + 1
    if ceil_mode and (out - 1) * stride >= size + pad:
        out -= 1
    return out


def _geometry(op, input, kernel_size, stride, padding, dilation, ceil_mode):
    """Validate the arguments; return (planes view of the input, kernel, stride, padding, dilation, out_hw)."""
    if not isinstance(input, Tensor):
        raise TypeError(f"{op}: input must be a Tensor, got {type(input).__name__}")
    if input.dtype not in _KERNEL_DTYPES:
        raise TypeError(f"{op}: input must be a float32 or float64 tensor, got dtype {input.dtype}")
    if input.ndim not in (3, 4):
        raise ValueError(f"{op}: expected a 4-D input (N, C, H, W) or a 3-D unbatched one (C, H, W), got shape "
                         f"{tuple(input.shape)}")
    if min(input.shape[-3:]) < 1:
        raise ValueError(f"{op}: expected an input with non-zero channels, height and width, got shape "
                         f"{tuple(input.shape)}")
    kernel = _pair(kernel_size, "kernel_size", op)
    stride = _pair(stride, "stride", op, allow_none=True)
    stride = kernel if stride is None else stride
    padding = _pair(padding, "padding", op)
    dilation = _pair(dilation, "dilation", op)
    if min(kernel) < 1:
        raise ValueError(f"{op}: kernel size should be greater than zero, but got kH: {kernel[0]} kW: {kernel[1]}")
    if min(stride) < 1:
        raise ValueError(f"{op}: stride should be greater than zero, but got dH: {stride[0]} dW: {stride[1]}")
    if min(dilation) < 1:
        raise ValueError(f"{op}: dilation should be greater than zero, but got dilationH: {dilation[0]} "
                         f"dilationW: {dilation[1]}")
    if min(padding) < 0:
        raise ValueError(f"{op}: pad must be non-negative, but got padH: {padding[0]} padW: {padding[1]}")
    if padding[0] > kernel[0] // 2 or padding[1] > kernel[1] // 2:
        raise ValueError(f"{op}: pad should be smaller than or equal to half of kernel size, but got "
                         f"padW = {padding[1]}, padH = {padding[0]}, kW = {kernel[1]}, kH = {kernel[0]}")
    height, width = input.shape[-2:]
    out_hw = tuple(_output_size(n, k, p, s, d, ceil_mode)
                   for n, k, p, s, d in zip((height, width), kernel, padding, stride, dilation))
    if min(out_hw) < 1:
        channels = input.shape[-3]
        raise ValueError(f"{op}: given input size ({channels}x{height}x{width}), calculated output size "
                         f"({channels}x{out_hw[0]}x{out_hw[1]}) is too small (input shape {tuple(input.shape)}, "
                         f"kernel_size {kernel}, stride {stride}, padding {padding}, dilation {dilation})")
    planes = np.ascontiguousarray(input.data).reshape(-1, height, width)
    return planes, kernel, stride, padding, dilation, out_hw


def max_pool2d(input, kernel_size, stride=None, padding=0, dilation=1, ceil_mode=False, return_indices=False):
    """Max over kernel_size windows (int or (kh, kw)); stride defaults to kernel_size; padded positions
    never win. With return_indices, also returns int64 flat indices h*W + w of each max inside its plane."""
    planes, kernel, stride, padding, dilation, (oh, ow) = _geometry(
        "max_pool2d", input, kernel_size, stride, padding, dilation, ceil_mode)
    backend = kernels(input.device)
    out, indices = backend.max_pool2d_forward(planes, *kernel, *stride, *padding, *dilation, oh, ow)
    out_shape = input.shape[:-2] + (oh, ow)
    height, width = input.shape[-2:]

    def backward(g):
        g = np.ascontiguousarray(g).reshape(-1, oh, ow)
        return (backend.max_pool2d_backward(g, indices, height, width).reshape(input.shape),)

    result = make_result(out.reshape(out_shape), (input,), backward, "max_pool2d")
    if return_indices:
        return result, Tensor(indices.reshape(out_shape), device=input.device)
    return result


def divisor_code(op, divisor_override):
    """divisor_override as the avg-pool kernels take it: a non-zero int, or 0 for "no override"."""
    if divisor_override is None:
        return 0
    if not isinstance(divisor_override, numbers.Integral) or isinstance(divisor_override, bool):
        raise TypeError(f"{op}: divisor_override must be an int or None, got {divisor_override!r}")
    if divisor_override == 0:
        raise ValueError(f"{op}: divisor must be not zero (divisor_override must be a non-zero int)")
    return int(divisor_override)


def avg_pool2d(input, kernel_size, stride=None, padding=0, ceil_mode=False, count_include_pad=True,
               divisor_override=None):
    """Mean over kernel_size windows; the divisor is the window's size including padding
    (count_include_pad=True), excluding it, or divisor_override when given."""
    planes, kernel, stride, padding, _, (oh, ow) = _geometry(
        "avg_pool2d", input, kernel_size, stride, padding, 1, ceil_mode)
    divisor = divisor_code("avg_pool2d", divisor_override)
    count_include_pad = bool(count_include_pad)
    backend = kernels(input.device)
    out = backend.avg_pool2d_forward(planes, *kernel, *stride, *padding, oh, ow, count_include_pad, divisor)
    height, width = input.shape[-2:]

    def backward(g):
        g = np.ascontiguousarray(g).reshape(-1, oh, ow)
        grad = backend.avg_pool2d_backward(g, height, width, *kernel, *stride, *padding, count_include_pad,
                                           divisor)
        return (grad.reshape(input.shape),)

    return make_result(out.reshape(input.shape[:-2] + (oh, ow)), (input,), backward, "avg_pool2d")

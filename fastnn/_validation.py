"""Argument checks shared by ops, layers, optimizers and data code: one place, one wording.

Each raises a TypeError or ValueError that names the argument and the value it got.
"""
import functools
import numbers

import numpy as np

from fastnn.tensor import Tensor

_SPATIAL_NAMES = {1: "L", 2: "H, W", 3: "D, H, W"}
_REDUCTIONS = ("none", "mean", "sum")


def positive_int(name, value):
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value <= 0:
        raise ValueError(f"{name} must be a positive integer, got {value!r}")
    return int(value)


def check_reduction(reduction):
    if reduction not in _REDUCTIONS:
        raise ValueError(f"reduction must be one of {_REDUCTIONS}, got {reduction!r}")


def int_tuple(op, name, value, n, minimum):
    """`value` (an int, or a tuple/list of n ints) as an n-tuple of ints >= minimum (None: any int); errors name op
    and name."""
    # Fast path for what layers pass on every call (an exact int, or a tuple of n exact ints, in range): the
    # generic checks below cost ~3-5 us per argument, a noticeable share of a small convolution.
    if type(value) is int:
        if minimum is None or value >= minimum:
            return (value,) * n
    elif type(value) is tuple and len(value) == n:
        for v in value:
            if type(v) is not int or minimum is not None and v < minimum:
                break
        else:
            return value
    values = tuple(value) if isinstance(value, (tuple, list)) else (value,) * n
    if len(values) != n or not all(isinstance(v, numbers.Integral) and not isinstance(v, bool) for v in values):
        raise TypeError(f"{op}: {name} must be an int or a tuple of {n} ints, got {value!r}")
    if minimum is not None and any(v < minimum for v in values):
        raise ValueError(f"{op}: {name} must be >= {minimum}, got {value!r}")
    return tuple(int(v) for v in values)


def check_conv_args(op, input, weight, bias, groups, spatial, transposed):
    """Validate tensors and channel counts of a convolution with `spatial` spatial dims; return out_channels.

    The weight is (out_channels, in_channels/groups, *kernel), or for a transposed convolution
    (in_channels, out_channels/groups, *kernel), as in PyTorch.
    """
    # Called on every convolution: shapes and dtypes read once from the arrays (Tensor properties cost a call each).
    if not isinstance(input, Tensor):
        raise TypeError(f"{op}: input must be a Tensor, got {type(input).__name__}")
    if not isinstance(weight, Tensor):
        raise TypeError(f"{op}: weight must be a Tensor, got {type(weight).__name__}")
    if bias is not None and not isinstance(bias, Tensor):
        raise TypeError(f"{op}: bias must be a Tensor or None, got {type(bias).__name__}")
    check_kernel_dtype(op, input)
    in_shape, w_shape, dtype = input._data.shape, weight._data.shape, input._data.dtype
    if weight._data.dtype != dtype:
        raise TypeError(f"{op}: weight dtype {weight.dtype} does not match input dtype {dtype}")
    if bias is not None and bias._data.dtype != dtype:
        raise TypeError(f"{op}: bias dtype {bias.dtype} does not match input dtype {dtype}")
    if not spatial + 1 <= len(in_shape) <= spatial + 2:
        dims = _SPATIAL_NAMES[spatial]
        raise ValueError(f"{op}: expected a {spatial + 2}-D input (N, C, {dims}) or a {spatial + 1}-D unbatched one "
                         f"(C, {dims}), got shape {tuple(in_shape)}")
    layout = "in_channels, out_channels/groups" if transposed else "out_channels, in_channels/groups"
    if len(w_shape) != spatial + 2:
        raise ValueError(f"{op}: expected a {spatial + 2}-D weight ({layout}, kernel {_SPATIAL_NAMES[spatial]}), got "
                         f"shape {tuple(w_shape)}")
    if type(groups) is not int and (not isinstance(groups, numbers.Integral) or isinstance(groups, bool)) \
            or groups < 1:
        raise ValueError(f"{op}: groups must be a positive int, got {groups!r}")
    if min(in_shape[-spatial - 1:]) < 1 or min(w_shape) < 1:  # an empty batch is fine
        raise ValueError(f"{op}: empty input shape {tuple(in_shape)} or weight shape {tuple(w_shape)}")
    cin = in_shape[-spatial - 1]
    expected_cin = w_shape[0] if transposed else w_shape[1] * groups
    cout = w_shape[1] * groups if transposed else w_shape[0]
    if cin % groups or cout % groups:
        raise ValueError(f"{op}: in_channels ({cin}) and out_channels ({cout}) must both be divisible by groups "
                         f"({groups})")
    if cin != expected_cin:
        raise ValueError(f"{op}: input shape {tuple(in_shape)} has {cin} channels but weight shape "
                         f"{tuple(w_shape)} ({layout}, ...) with groups={groups} expects {expected_cin}")
    if bias is not None and bias._data.shape != (cout,):
        raise ValueError(f"{op}: bias shape {tuple(bias.shape)} does not match out_channels: expected ({cout},)")
    return cout


def padding_pairs(op, padding, kernel, stride, dilation):
    """Zero padding as (before, after) per spatial dim, from an int/tuple or 'valid'/'same'; 'same' splits the
    total padding as PyTorch does, the odd one out after."""
    if isinstance(padding, str):
        if padding == "valid":
            return ((0, 0),) * len(kernel)
        if padding == "same":
            if any(s != 1 for s in stride):
                raise ValueError(f"{op}: padding='same' is not supported for strided convolutions (stride={stride})")
            totals = [d * (k - 1) for d, k in zip(dilation, kernel)]
            return tuple((t // 2, t - t // 2) for t in totals)
        raise ValueError(f"{op}: padding string must be 'valid' or 'same', got {padding!r}")
    return tuple((p, p) for p in int_tuple(op, "padding", padding, len(kernel), 0))


def output_sizes(op, input_shape, weight_shape, pads, stride, dilation):
    """Spatial output sizes of a convolution; a ValueError naming the shapes when one would be empty."""
    spatial = len(stride)
    sizes = tuple((n + lo + hi - d * (k - 1) - 1) // s + 1 for n, (lo, hi), k, s, d
                  in zip(input_shape[-spatial:], pads, weight_shape[2:], stride, dilation))
    if min(sizes) < 1:
        raise ValueError(f"{op}: output size {sizes} is empty for input shape {tuple(input_shape)}, weight shape "
                         f"{tuple(weight_shape)}, stride {stride}, padding {pads}, dilation {dilation}")
    return sizes


def conv_geometry(op, input_shape, weight_shape, stride, padding, dilation):
    """(stride, dilation, padding pairs, output sizes) of a convolution with a (Cout, Cin/groups, *kernel)
    weight, each argument checked as int_tuple, padding_pairs and output_sizes check it."""
    spatial = len(weight_shape) - 2
    stride = int_tuple(op, "stride", stride, spatial, 1)
    dilation = int_tuple(op, "dilation", dilation, spatial, 1)
    if type(padding) is not str:
        padding = int_tuple(op, "padding", padding, spatial, 0)
    return (stride, dilation) + _checked_conv_geometry(op, input_shape, weight_shape, stride, padding, dilation)


@functools.lru_cache(maxsize=512)
def _checked_conv_geometry(op, input_shape, weight_shape, stride, padding, dilation):
    # Cached (~0.2 us a hit against ~5 us): the arguments are exact ints, tuples of them or a str by now, so
    # arguments equal as keys (1 == True == 1.0) give the same result. An error is raised again each call.
    pads = padding_pairs(op, padding, weight_shape[2:], stride, dilation)
    return pads, output_sizes(op, input_shape, weight_shape, pads, stride, dilation)


def check_kernel_dtype(op, input):
    """A TypeError unless the input's dtype is one its device's kernels take (Backend.kernel_dtypes)."""
    dtypes = input._backend.kernel_dtypes
    if input.dtype not in dtypes:
        raise TypeError(f"{op}: input must be a {' or '.join(d.name for d in dtypes)} tensor, got dtype "
                        f"{input.dtype}")


def check_pool_input(op, input, spatial):
    """A pooling input: a Tensor (N, C, *sizes) or unbatched (C, *sizes) of a kernel dtype, with C and sizes >= 1."""
    if not isinstance(input, Tensor):
        raise TypeError(f"{op}: input must be a Tensor, got {type(input).__name__}")
    check_kernel_dtype(op, input)
    dims = _SPATIAL_NAMES[spatial]
    if input.ndim not in (spatial + 1, spatial + 2):
        raise ValueError(f"{op}: expected a {spatial + 2}-D input (N, C, {dims}) or a {spatial + 1}-D unbatched one "
                         f"(C, {dims}), got shape {tuple(input.shape)}")
    if min(input.shape[-spatial - 1:]) < 1:
        raise ValueError(f"{op}: expected an input with non-zero channels and sizes ({dims}), got shape "
                         f"{tuple(input.shape)}")


def _pool_ints(op, name, value, n):
    # PyTorch's pools take an int, or a sequence of 1 or n ints.
    if type(value) is int:  # the common case, first: pooling runs per step (bool is not int here)
        return (value,) * n
    if isinstance(value, (tuple, list)) and len(value) == 1:
        value = value[0]
    return int_tuple(op, name, value, n, None)


def pool_args(op, spatial, kernel_size, stride=None, padding=0, dilation=1):
    """(kernel, stride, padding, dilation) of a max/avg pooling over `spatial` dims, each a tuple of ints.

    stride None (or an empty sequence) means kernel_size, as in PyTorch; a zero stride is an error (PyTorch:
    "stride should not be zero"), never a silent kernel_size."""
    kernel = _pool_ints(op, "kernel_size", kernel_size, spatial)
    if min(kernel) < 1:
        raise ValueError(f"{op}: kernel size should be greater than zero, but got kernel_size={kernel_size!r}")
    if stride is None or (isinstance(stride, (tuple, list)) and len(stride) == 0):
        strides = kernel
    else:
        strides = _pool_ints(op, "stride", stride, spatial)
        if 0 in strides:
            raise ValueError(f"{op}: stride should not be zero, got stride={stride!r}")
        if min(strides) < 0:
            raise ValueError(f"{op}: stride should be greater than zero, but got stride={stride!r}")
    dilation = _pool_ints(op, "dilation", dilation, spatial)
    if min(dilation) < 1:
        raise ValueError(f"{op}: dilation should be greater than zero, but got dilation={dilation!r}")
    padding = _pool_ints(op, "padding", padding, spatial)
    if min(padding) < 0:
        raise ValueError(f"{op}: pad must be non-negative, but got padding={padding!r}")
    if any(p > k // 2 for p, k in zip(padding, kernel)):
        raise ValueError(f"{op}: pad should be smaller than or equal to half of kernel size, but got padding="
                         f"{padding} for kernel_size={kernel}")
    return kernel, strides, padding, dilation


def pool_output_size(size, kernel, pad, stride, dilation, ceil_mode):
    """PyTorch's pooling_output_shape: in ceil mode the last window must start inside the input or the
    left padding, so a window that would lie entirely in the right padding is dropped."""
    out = (size + 2 * pad - dilation * (kernel - 1) - 1 + (stride - 1 if ceil_mode else 0)) // stride + 1
    if ceil_mode and (out - 1) * stride >= size + pad:
        out -= 1
    return out


def pool_window(op, input, spatial, kernel_size, stride, padding, dilation, ceil_mode):
    """Validated input and arguments of a max/avg pooling: (kernel, stride, padding, dilation, output sizes)."""
    check_pool_input(op, input, spatial)
    kernel, stride, padding, dilation = pool_args(op, spatial, kernel_size, stride, padding, dilation)
    out = tuple(pool_output_size(n, k, p, s, d, ceil_mode)
                for n, k, p, s, d in zip(input.shape[-spatial:], kernel, padding, stride, dilation))
    if min(out) < 1:
        raise ValueError(f"{op}: calculated output size {out} is too small for input shape {tuple(input.shape)}, "
                         f"kernel_size {kernel}, stride {stride}, padding {padding}, dilation {dilation}")
    return kernel, stride, padding, dilation, out


def check_eps(eps, op):
    """eps as a float > 0: with eps <= 0 a constant input (variance 0) would normalise to 0/0 = NaN, so it is
    refused up front, whatever the input (a deliberate difference from PyTorch, which accepts eps=0)."""
    if isinstance(eps, bool) or not isinstance(eps, numbers.Real):
        raise TypeError(f"{op}: eps must be a positive number, got {eps!r}")
    if not eps > 0:
        raise ValueError(f"{op}: eps must be > 0 (a constant input would give 0/0 = NaN), got eps={eps!r}")
    return float(eps)

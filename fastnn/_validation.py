"""Argument checks shared by ops, layers, optimizers and data code: one place, one wording.

Each raises a TypeError or ValueError that names the argument and the value it got.
"""
import numbers

import numpy as np

from fastnn.tensor import Tensor

_KERNEL_DTYPES = (np.dtype(np.float32), np.dtype(np.float64))
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
    """`value` (an int, or a tuple/list of n ints) as an n-tuple of ints >= minimum; errors name op and name."""
    values = tuple(value) if isinstance(value, (tuple, list)) else (value,) * n
    if len(values) != n or not all(isinstance(v, numbers.Integral) and not isinstance(v, bool) for v in values):
        raise TypeError(f"{op}: {name} must be an int or a tuple of {n} ints, got {value!r}")
    if any(v < minimum for v in values):
        raise ValueError(f"{op}: {name} must be >= {minimum}, got {value!r}")
    return tuple(int(v) for v in values)


def check_conv_args(op, input, weight, bias, groups, spatial, transposed):
    """Validate tensors and channel counts of a convolution with `spatial` spatial dims; return out_channels.

    The weight is (out_channels, in_channels/groups, *kernel), or for a transposed convolution
    (in_channels, out_channels/groups, *kernel), as in PyTorch.
    """
    for name, value in (("input", input), ("weight", weight)):
        if not isinstance(value, Tensor):
            raise TypeError(f"{op}: {name} must be a Tensor, got {type(value).__name__}")
    if bias is not None and not isinstance(bias, Tensor):
        raise TypeError(f"{op}: bias must be a Tensor or None, got {type(bias).__name__}")
    if input.dtype not in _KERNEL_DTYPES:
        raise TypeError(f"{op}: input must be a float32 or float64 tensor, got dtype {input.dtype}")
    if weight.dtype != input.dtype:
        raise TypeError(f"{op}: weight dtype {weight.dtype} does not match input dtype {input.dtype}")
    if bias is not None and bias.dtype != input.dtype:
        raise TypeError(f"{op}: bias dtype {bias.dtype} does not match input dtype {input.dtype}")
    dims = _SPATIAL_NAMES[spatial]
    if input.ndim not in (spatial + 1, spatial + 2):
        raise ValueError(f"{op}: expected a {spatial + 2}-D input (N, C, {dims}) or a {spatial + 1}-D unbatched one "
                         f"(C, {dims}), got shape {tuple(input.shape)}")
    layout = "in_channels, out_channels/groups" if transposed else "out_channels, in_channels/groups"
    if weight.ndim != spatial + 2:
        raise ValueError(f"{op}: expected a {spatial + 2}-D weight ({layout}, kernel {dims}), got shape "
                         f"{tuple(weight.shape)}")
    if not isinstance(groups, numbers.Integral) or isinstance(groups, bool) or groups < 1:
        raise ValueError(f"{op}: groups must be a positive int, got {groups!r}")
    if min(input.shape[-spatial - 1:]) < 1 or min(weight.shape) < 1:  # an empty batch is fine
        raise ValueError(f"{op}: empty input shape {tuple(input.shape)} or weight shape {tuple(weight.shape)}")
    cin = input.shape[-spatial - 1]
    expected_cin = weight.shape[0] if transposed else weight.shape[1] * groups
    cout = weight.shape[1] * groups if transposed else weight.shape[0]
    if cin % groups or cout % groups:
        raise ValueError(f"{op}: in_channels ({cin}) and out_channels ({cout}) must both be divisible by groups "
                         f"({groups})")
    if cin != expected_cin:
        raise ValueError(f"{op}: input shape {tuple(input.shape)} has {cin} channels but weight shape "
                         f"{tuple(weight.shape)} ({layout}, ...) with groups={groups} expects {expected_cin}")
    if bias is not None and bias.shape != (cout,):
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

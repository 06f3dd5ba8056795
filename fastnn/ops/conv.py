"""2-D convolution (PyTorch's F.conv2d) with its backward, on the device's direct or im2col kernels."""
import numbers

import numpy as np

from fastnn.autograd import make_result
from fastnn.tensor import Tensor

_KERNEL_DTYPES = (np.dtype(np.float32), np.dtype(np.float64))
_SPATIAL_NAMES = {1: "L", 2: "H, W", 3: "D, H, W"}


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


def conv2d_output_shape(input_shape, weight_shape, stride=1, padding=0, dilation=1):
    """(N, Cout, Hout, Wout) of conv2d for an (N, Cin, H, W) input and a (Cout, Cin/groups, kh, kw) weight."""
    stride = int_tuple("conv2d", "stride", stride, 2, 1)
    dilation = int_tuple("conv2d", "dilation", dilation, 2, 1)
    pads = padding_pairs("conv2d", padding, weight_shape[2:], stride, dilation)
    return (input_shape[0], weight_shape[0]) + output_sizes("conv2d", input_shape, weight_shape, pads, stride,
                                                            dilation)


def conv2d(input, weight, bias=None, stride=1, padding=0, dilation=1, groups=1, algorithm="auto"):
    """Cross-correlation of input (N, Cin, H, W) with weight (Cout, Cin/groups, kh, kw), plus bias (Cout,).

    Arguments as in PyTorch's F.conv2d (stride/padding/dilation: int or (h, w); padding also 'valid' or
    'same'); `algorithm` picks the kernel: one of the device's algorithms (CPU: 'direct', 'im2col'),
    or 'auto' (the backend's measured choice, fastnn/_kernels/cpu_conv.choose_algorithm).
    """
    check_conv_args("conv2d", input, weight, bias, groups, 2, transposed=False)
    backend = input._backend
    if algorithm != "auto" and algorithm not in backend.conv_algorithms:
        raise ValueError(f"conv2d: algorithm must be one of {('auto',) + backend.conv_algorithms} on device "
                         f"{input.device}, got {algorithm!r}")
    stride = int_tuple("conv2d", "stride", stride, 2, 1)
    dilation = int_tuple("conv2d", "dilation", dilation, 2, 1)
    pads = padding_pairs("conv2d", padding, weight.shape[2:], stride, dilation)
    output_hw = output_sizes("conv2d", input.shape, weight.shape, pads, stride, dilation)
    # The kernels pad symmetrically; the odd one out of 'same' padding is an extra zero row/column at the end.
    pad = (pads[0][0], pads[1][0])
    extra = (pads[0][1] - pads[0][0], pads[1][1] - pads[1][0])
    unbatched = input.ndim == 3
    x = input.data[None] if unbatched else input.data
    if extra != (0, 0):
        x = backend.xp.pad(x, ((0, 0), (0, 0), (0, extra[0]), (0, extra[1])))
    if algorithm == "auto":
        algorithm = backend.conv_algorithm(weight.shape, groups, stride, output_hw)
    kernels = backend.kernels
    b = None if bias is None else bias.data
    out = kernels.conv2d_forward(x, weight.data, b, stride, pad, dilation, groups, algorithm)

    def backward(g):
        if unbatched:
            g = g[None]
        gx, gw, gb = kernels.conv2d_backward(g, x, weight.data, stride, pad, dilation, groups, input.requires_grad,
                                             weight.requires_grad, bias is not None and bias.requires_grad,
                                             algorithm)
        if gx is not None:
            gx = gx[:, :, :gx.shape[2] - extra[0], :gx.shape[3] - extra[1]]
            gx = gx[0] if unbatched else gx
        return (gx, gw) if bias is None else (gx, gw, gb)

    inputs = (input, weight) if bias is None else (input, weight, bias)
    return make_result(out[0] if unbatched else out, inputs, backward, "conv2d")

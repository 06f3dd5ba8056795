"""Convolutions beyond conv2d (PyTorch's F.conv1d, F.conv3d, F.conv_transpose1d, F.conv_transpose2d).

All of them run on the conv2d kernels, so each gets conv2d's tuned algorithms:

* conv1d is conv2d on a unit-height image.
* conv3d folds the depth taps into channels: for each output depth z, channel (c, a) of a stacked input holds
  input depth z*stride + a*dilation - padding, and a 2-D convolution of that stack (batch N*Do) with the
  weight viewed as (Cout, Cin/groups*kd, kh, kw) sums over (c, a, i, j) exactly as the 3-D convolution does.
  conv2d's im2col then builds the same column matrix a 3-D im2col would.
* conv_transpose2d is the adjoint of conv2d: its forward is conv2d's input gradient, and its backward is
  conv2d's forward (input gradient) and conv2d's weight gradient. conv_transpose1d is it at unit height.
"""
import numbers

import numpy as np

from fastnn._dispatch import kernels
from fastnn.autograd import make_result
from fastnn.ops.conv import choose_algorithm, conv2d
from fastnn.ops.shape import permute, reshape, squeeze, unsqueeze
from fastnn.tensor import Tensor

_KERNEL_DTYPES = (np.dtype(np.float32), np.dtype(np.float64))
_SPATIAL_NAMES = {1: "L", 2: "H, W", 3: "D, H, W"}
_ALGORITHMS = ("auto", "direct", "im2col")


def int_tuple(op, name, value, n, minimum):
    """`value` (an int, or a tuple/list of n ints) as an n-tuple of ints >= minimum; errors name op and name."""
    values = tuple(value) if isinstance(value, (tuple, list)) else (value,) * n
    if len(values) != n or not all(isinstance(v, numbers.Integral) and not isinstance(v, bool) for v in values):
        raise TypeError(f"{op}: {name} must be an int or a tuple of {n} ints, got {value!r}")
    if any(v < minimum for v in values):
        raise ValueError(f"{op}: {name} must be >= {minimum}, got {value!r}")
    return tuple(int(v) for v in values)


def _check_args(op, input, weight, bias, groups, spatial, transposed):
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
    if min(input.shape) < 1 or min(weight.shape) < 1:
        raise ValueError(f"{op}: empty input shape {tuple(input.shape)} or weight shape {tuple(weight.shape)}")
    cin = input.shape[-spatial - 1]
    expected_cin = weight.shape[0] if transposed else weight.shape[1] * groups
    cout = weight.shape[1] * groups if transposed else weight.shape[0]
    if cin != expected_cin:
        raise ValueError(f"{op}: input shape {tuple(input.shape)} has {cin} channels but weight shape "
                         f"{tuple(weight.shape)} ({layout}, ...) with groups={groups} expects {expected_cin}")
    if cin % groups or cout % groups:
        raise ValueError(f"{op}: in_channels ({cin}) and out_channels ({cout}) must both be divisible by groups "
                         f"({groups})")
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


def _output_sizes(op, input, weight, pads, stride, dilation):
    spatial = len(stride)
    sizes = tuple((n + lo + hi - d * (k - 1) - 1) // s + 1 for n, (lo, hi), k, s, d
                  in zip(input.shape[-spatial:], pads, weight.shape[2:], stride, dilation))
    if min(sizes) < 1:
        raise ValueError(f"{op}: output size {sizes} is empty for input shape {tuple(input.shape)}, weight shape "
                         f"{tuple(weight.shape)}, stride {stride}, padding {pads}, dilation {dilation}")
    return sizes


def conv1d(input, weight, bias=None, stride=1, padding=0, dilation=1, groups=1):
    """Cross-correlation of input (N, Cin, L) with weight (Cout, Cin/groups, k), plus bias (Cout,); arguments
    as in PyTorch's F.conv1d (padding: int, 'valid' or 'same')."""
    _check_args("conv1d", input, weight, bias, groups, 1, transposed=False)
    stride = int_tuple("conv1d", "stride", stride, 1, 1)
    dilation = int_tuple("conv1d", "dilation", dilation, 1, 1)
    pads = padding_pairs("conv1d", padding, weight.shape[2:], stride, dilation)
    _output_sizes("conv1d", input, weight, pads, stride, dilation)
    # A padding string means the same at unit height (a height-1 kernel needs no padding there).
    padding_2d = padding if isinstance(padding, str) else (0, pads[0][0])
    out = conv2d(unsqueeze(input, -2), unsqueeze(weight, -2), bias, (1,) + stride, padding_2d, (1,) + dilation,
                 groups)
    return squeeze(out, -2)


def _depth_taps(x, kernel, stride, pad, dilation, out_depth):
    """(N, C, D, H, W) -> (N*Do, C*kd, H, W): row (n, z), channel c*kd + a holds input depth
    z*stride + a*dilation - pad[0] of channel c (zeros in the padding)."""
    n, channels, depth, height, width = x.shape
    padded = np.pad(x.data, ((0, 0), (0, 0), pad, (0, 0), (0, 0))) if any(pad) else x.data
    padded_shape = padded.shape
    taps = np.empty((n, out_depth, channels, kernel, height, width), x.dtype)
    span = stride * (out_depth - 1) + 1
    for a in range(kernel):
        taps[:, :, :, a] = padded[:, :, a * dilation:a * dilation + span:stride].transpose(0, 2, 1, 3, 4)
    taps_shape = taps.shape

    def backward(g):
        g = g.reshape(taps_shape)
        grad = np.zeros(padded_shape, g.dtype)
        for a in range(kernel):
            grad[:, :, a * dilation:a * dilation + span:stride] += g[:, :, :, a].transpose(0, 2, 1, 3, 4)
        return (grad[:, :, pad[0]:pad[0] + depth],)

    return make_result(taps.reshape(n * out_depth, channels * kernel, height, width), (x,), backward, "conv3d")


def conv3d(input, weight, bias=None, stride=1, padding=0, dilation=1, groups=1):
    """Cross-correlation of input (N, Cin, D, H, W) with weight (Cout, Cin/groups, kd, kh, kw), plus bias
    (Cout,); arguments as in PyTorch's F.conv3d (padding: int, triple, 'valid' or 'same')."""
    _check_args("conv3d", input, weight, bias, groups, 3, transposed=False)
    stride = int_tuple("conv3d", "stride", stride, 3, 1)
    dilation = int_tuple("conv3d", "dilation", dilation, 3, 1)
    pads = padding_pairs("conv3d", padding, weight.shape[2:], stride, dilation)
    out_depth = _output_sizes("conv3d", input, weight, pads, stride, dilation)[0]
    unbatched = input.ndim == 4
    x = unsqueeze(input, 0) if unbatched else input
    cout, cin_g, kd, kh, kw = weight.shape
    taps = _depth_taps(x, kd, stride[0], pads[0], dilation[0], out_depth)
    planar_weight = reshape(weight, (cout, cin_g * kd, kh, kw))
    padding_hw = padding if isinstance(padding, str) else (pads[1][0], pads[2][0])
    planes = conv2d(taps, planar_weight, bias, stride[1:], padding_hw, dilation[1:], groups)
    out = permute(reshape(planes, (x.shape[0], out_depth) + planes.shape[1:]), (0, 2, 1, 3, 4))
    return squeeze(out, 0) if unbatched else out


def _zero_extend(array, sizes):
    """array (N, C, h, w) zero-padded at the bottom/right to (N, C, *sizes)."""
    extra = [(0, 0), (0, 0)] + [(0, s - n) for n, s in zip(array.shape[2:], sizes)]
    return np.pad(array, extra) if any(hi for _, hi in extra) else array


def conv_transpose2d(input, weight, bias=None, stride=1, padding=0, output_padding=0, groups=1, dilation=1,
                     algorithm="auto"):
    """Transposed convolution of input (N, Cin, H, W) with weight (Cin, Cout/groups, kh, kw), plus bias (Cout,).

    Arguments as in PyTorch's F.conv_transpose2d; output size (H-1)*stride - 2*padding + dilation*(kh-1) +
    output_padding + 1. `algorithm` picks the conv2d kernels ('direct', 'im2col' or 'auto').
    """
    op = "conv_transpose2d"
    cout = _check_args(op, input, weight, bias, groups, 2, transposed=True)
    if algorithm not in _ALGORITHMS:
        raise ValueError(f"{op}: algorithm must be one of {_ALGORITHMS}, got {algorithm!r}")
    stride = int_tuple(op, "stride", stride, 2, 1)
    padding = int_tuple(op, "padding", padding, 2, 0)
    output_padding = int_tuple(op, "output_padding", output_padding, 2, 0)
    dilation = int_tuple(op, "dilation", dilation, 2, 1)
    if any(p >= s and p >= d for p, s, d in zip(output_padding, stride, dilation)):
        raise ValueError(f"{op}: output_padding {output_padding} must be smaller than either stride {stride} or "
                         f"dilation {dilation} in each dimension")
    kernel = weight.shape[2:]
    out_hw = tuple((n - 1) * s - 2 * p + d * (k - 1) + q + 1 for n, s, p, d, k, q
                   in zip(input.shape[-2:], stride, padding, dilation, kernel, output_padding))
    if min(out_hw) < 1:
        raise ValueError(f"{op}: output size {out_hw} is empty for input shape {tuple(input.shape)}, weight shape "
                         f"{tuple(weight.shape)}, stride {stride}, padding {padding}, dilation {dilation}")
    unbatched = input.ndim == 3
    x = input.data[None] if unbatched else input.data
    in_hw = x.shape[2:]
    out_shape = (x.shape[0], cout) + out_hw
    # conv2d of the output has this size; it exceeds the input's only where output_padding >= stride, and the
    # extra rows/columns are positions no output element reaches (zero gradient).
    conv_hw = tuple((n + 2 * p - d * (k - 1) - 1) // s + 1 for n, p, d, k, s
                    in zip(out_hw, padding, dilation, kernel, stride))
    # The forward is a gather of Cin/groups*kh*kw taps per output, like a conv2d with weight (Cout, Cin/groups,
    # kh, kw); the backward runs conv2d with the weight as it is.
    forward_algorithm = backward_algorithm = algorithm
    if algorithm == "auto":
        forward_algorithm = choose_algorithm(out_shape, (cout, weight.shape[0] // groups) + kernel, groups)
        backward_algorithm = choose_algorithm(out_shape, weight.shape, groups)
    backend = kernels(input.device)
    w = weight.data
    grad_input_kernel = getattr(backend, f"conv2d_backward_{forward_algorithm}")
    out, _, _ = grad_input_kernel(_zero_extend(x, conv_hw), np.zeros(out_shape, x.dtype), w, stride, padding,
                                  dilation, groups, True, False, False)
    if bias is not None:
        out += bias.data[:, None, None]

    def backward(g):
        g = np.ascontiguousarray(g[None] if unbatched else g)
        gx = gw = gb = None
        if input.requires_grad:
            conv_forward = getattr(backend, f"conv2d_forward_{backward_algorithm}")
            gx = conv_forward(g, w, None, stride, padding, dilation, groups)[:, :, :in_hw[0], :in_hw[1]]
            gx = gx[0] if unbatched else gx
        if weight.requires_grad:
            conv_backward = getattr(backend, f"conv2d_backward_{backward_algorithm}")
            _, gw, _ = conv_backward(_zero_extend(x, conv_hw), g, w, stride, padding, dilation, groups,
                                     False, True, False)
        if bias is not None and bias.requires_grad:
            gb = g.sum(axis=(0, 2, 3))
        return (gx, gw) if bias is None else (gx, gw, gb)

    inputs = (input, weight) if bias is None else (input, weight, bias)
    return make_result(out[0] if unbatched else out, inputs, backward, op)


def conv_transpose1d(input, weight, bias=None, stride=1, padding=0, output_padding=0, groups=1, dilation=1):
    """Transposed convolution of input (N, Cin, L) with weight (Cin, Cout/groups, k), plus bias (Cout,);
    arguments as in PyTorch's F.conv_transpose1d. Runs as conv_transpose2d at unit height."""
    op = "conv_transpose1d"
    _check_args(op, input, weight, bias, groups, 1, transposed=True)
    args = [int_tuple(op, name, value, 1, minimum) for name, value, minimum in
            (("stride", stride, 1), ("padding", padding, 0), ("output_padding", output_padding, 0),
             ("dilation", dilation, 1))]
    stride, padding, output_padding, dilation = [(unit,) + value for unit, value in zip((1, 0, 0, 1), args)]
    out = conv_transpose2d(unsqueeze(input, -2), unsqueeze(weight, -2), bias, stride, padding, output_padding,
                           groups, dilation)
    return squeeze(out, -2)

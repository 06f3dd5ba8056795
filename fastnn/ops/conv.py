"""2-D convolution (PyTorch's F.conv2d) with its backward, on the device's direct or im2col kernels."""
import numbers

import numpy as np

from fastnn._dispatch import kernels
from fastnn.autograd import make_result
from fastnn.tensor import Tensor

_KERNEL_DTYPES = (np.dtype(np.float32), np.dtype(np.float64))
_ALGORITHMS = ("auto", "direct", "im2col")


def _pair(value, name, minimum):
    pair = tuple(value) if isinstance(value, (tuple, list)) else (value, value)
    if len(pair) != 2 or not all(isinstance(v, numbers.Integral) and not isinstance(v, bool) for v in pair):
        raise TypeError(f"conv2d: {name} must be an int or a pair of ints, got {value!r}")
    if any(v < minimum for v in pair):
        raise ValueError(f"conv2d: {name} must be >= {minimum}, got {value!r}")
    return int(pair[0]), int(pair[1])


def _padding(padding, stride, dilation, kernel_hw):
    """Symmetric (h, w) padding plus the (h, w) extra zeros after the end that odd 'same' padding needs."""
    if isinstance(padding, str):
        if padding == "valid":
            return (0, 0), (0, 0)
        if padding == "same":
            if stride != (1, 1):
                raise ValueError(f"conv2d: padding='same' is not supported for strided convolutions "
                                 f"(stride={stride})")
            # As in PyTorch: half the total padding on each side, the odd one out at the bottom/right.
            total = [d * (k - 1) for d, k in zip(dilation, kernel_hw)]
            return (total[0] // 2, total[1] // 2), (total[0] % 2, total[1] % 2)
        raise ValueError(f"conv2d: padding string must be 'valid' or 'same', got {padding!r}")
    return _pair(padding, "padding", 0), (0, 0)


def conv2d_output_shape(input_shape, weight_shape, stride=1, padding=0, dilation=1):
    """(N, Cout, Hout, Wout) of conv2d for an (N, Cin, H, W) input and a (Cout, Cin/groups, kh, kw) weight."""
    stride = _pair(stride, "stride", 1)
    dilation = _pair(dilation, "dilation", 1)
    kernel_hw = tuple(weight_shape[2:])
    pad, extra = _padding(padding, stride, dilation, kernel_hw)
    n, _, h, w = input_shape
    out_h = (h + extra[0] + 2 * pad[0] - dilation[0] * (kernel_hw[0] - 1) - 1) // stride[0] + 1
    out_w = (w + extra[1] + 2 * pad[1] - dilation[1] * (kernel_hw[1] - 1) - 1) // stride[1] + 1
    return n, weight_shape[0], out_h, out_w


# When a group's GEMM is big enough to amortise building the column matrix, im2col wins: measured on the
# 2-core AVX2 host (single thread, fwd+bwd) im2col/direct time is 0.57-0.99 for Cin/groups*kh*kw >= 144
# with Cout/groups >= 32, 0.77 for 576 with 16, but 1.03-2.05 for shorter reductions or narrower
# outputs (e.g. 1.35 at 144 with 16), and direct needs fewer thread hand-offs per call.
_IM2COL_MIN_REDUCTION = 128
_IM2COL_MIN_OUT_CHANNELS = 32
_IM2COL_ALWAYS_REDUCTION = 512


def choose_algorithm(input_shape, weight_shape, groups):
    """'direct' or 'im2col' for conv2d of an input_shape input with a weight_shape weight.

    The direct kernel does one multiply-add per tap with no data reshuffling, at a fixed fraction of the
    core's peak, so it wins when a group's GEMM would be thin: first layers with 1 or 3 input channels,
    small LeNet-style layers, depthwise and narrow grouped convolutions. Wide layers go to im2col, where
    one large BLAS GEMM per group runs near peak and the unfolding costs little by comparison. The choice
    depends only on that per-group GEMM shape (weight and groups); input_shape completes the problem
    description callers pass.
    """
    cout, cin_g, kh, kw = weight_shape
    reduction = cin_g * kh * kw
    wide = reduction >= _IM2COL_MIN_REDUCTION and cout // groups >= _IM2COL_MIN_OUT_CHANNELS
    return "im2col" if wide or reduction >= _IM2COL_ALWAYS_REDUCTION else "direct"


def _check_args(input, weight, bias, groups, algorithm):
    if not isinstance(input, Tensor):
        raise TypeError(f"conv2d: input must be a Tensor, got {type(input).__name__}")
    if not isinstance(weight, Tensor):
        raise TypeError(f"conv2d: weight must be a Tensor, got {type(weight).__name__}")
    if bias is not None and not isinstance(bias, Tensor):
        raise TypeError(f"conv2d: bias must be a Tensor or None, got {type(bias).__name__}")
    if input.dtype not in _KERNEL_DTYPES:
        raise TypeError(f"conv2d: input must be a float32 or float64 tensor, got dtype {input.dtype}")
    if weight.dtype != input.dtype:
        raise TypeError(f"conv2d: weight dtype {weight.dtype} does not match input dtype {input.dtype}")
    if bias is not None and bias.dtype != input.dtype:
        raise TypeError(f"conv2d: bias dtype {bias.dtype} does not match input dtype {input.dtype}")
    if input.ndim not in (3, 4):
        raise ValueError(f"conv2d: expected a 4-D input (N, C, H, W) or a 3-D unbatched one (C, H, W), got shape "
                         f"{tuple(input.shape)}")
    if weight.ndim != 4:
        raise ValueError(f"conv2d: expected a 4-D weight (out_channels, in_channels/groups, kh, kw), got shape "
                         f"{tuple(weight.shape)}")
    if not isinstance(groups, numbers.Integral) or isinstance(groups, bool) or groups < 1:
        raise ValueError(f"conv2d: groups must be a positive int, got {groups!r}")
    if algorithm not in _ALGORITHMS:
        raise ValueError(f"conv2d: algorithm must be one of {_ALGORITHMS}, got {algorithm!r}")
    cin = input.shape[-3]
    cout = weight.shape[0]
    if cin % groups or cout % groups:
        raise ValueError(f"conv2d: in_channels ({cin}, input shape {tuple(input.shape)}) and out_channels ({cout}, "
                         f"weight shape {tuple(weight.shape)}) must both be divisible by groups ({groups})")
    if cin != weight.shape[1] * groups:
        raise ValueError(f"conv2d: input shape {tuple(input.shape)} has {cin} channels but weight shape "
                         f"{tuple(weight.shape)} with groups={groups} expects {weight.shape[1] * groups}")
    if min(weight.shape) < 1:
        raise ValueError(f"conv2d: weight shape {tuple(weight.shape)} has an empty dimension")
    if bias is not None and bias.shape != (cout,):
        raise ValueError(f"conv2d: bias shape {tuple(bias.shape)} does not match out_channels: expected ({cout},)")


def conv2d(input, weight, bias=None, stride=1, padding=0, dilation=1, groups=1, algorithm="auto"):
    """Cross-correlation of input (N, Cin, H, W) with weight (Cout, Cin/groups, kh, kw), plus bias (Cout,).

    Arguments as in PyTorch's F.conv2d (stride/padding/dilation: int or (h, w); padding also 'valid' or
    'same'); `algorithm` picks the kernel: 'direct', 'im2col', or 'auto' (see choose_algorithm).
    """
    _check_args(input, weight, bias, groups, algorithm)
    stride = _pair(stride, "stride", 1)
    dilation = _pair(dilation, "dilation", 1)
    pad, extra = _padding(padding, stride, dilation, weight.shape[2:])
    unbatched = input.ndim == 3
    x = input.data[None] if unbatched else input.data
    if extra != (0, 0):
        x = np.pad(x, ((0, 0), (0, 0), (0, extra[0]), (0, extra[1])))
    out_shape = conv2d_output_shape(x.shape, weight.shape, stride, pad, dilation)
    if min(out_shape[2:]) < 1:
        raise ValueError(f"conv2d: output size {out_shape[2:]} is empty for input shape {tuple(input.shape)}, "
                         f"weight shape {tuple(weight.shape)}, stride {stride}, padding {pad}, dilation {dilation}")
    if algorithm == "auto":
        algorithm = choose_algorithm(x.shape, weight.shape, groups)
    backend = kernels(input.device)
    forward = getattr(backend, f"conv2d_forward_{algorithm}")
    backward_kernel = getattr(backend, f"conv2d_backward_{algorithm}")
    b = None if bias is None else bias.data
    out = forward(x, weight.data, b, stride, pad, dilation, groups)

    def backward(g):
        if unbatched:
            g = g[None]
        gx, gw, gb = backward_kernel(g, x, weight.data, stride, pad, dilation, groups, input.requires_grad,
                                     weight.requires_grad, bias is not None and bias.requires_grad)
        if gx is not None:
            gx = gx[:, :, :gx.shape[2] - extra[0], :gx.shape[3] - extra[1]]
            gx = gx[0] if unbatched else gx
        return (gx, gw) if bias is None else (gx, gw, gb)

    inputs = (input, weight) if bias is None else (input, weight, bias)
    return make_result(out[0] if unbatched else out, inputs, backward, "conv2d")

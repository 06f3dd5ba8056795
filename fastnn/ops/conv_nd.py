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

from fastnn._tracing import traced
from fastnn.autograd import make_result
from fastnn._validation import check_conv_args, conv_geometry, int_tuple
from fastnn.ops.conv import conv2d
from fastnn.ops.shape import permute, reshape, squeeze, unsqueeze


@traced
def conv1d(input, weight, bias=None, stride=1, padding=0, dilation=1, groups=1):
    """Cross-correlation of input (N, Cin, L) with weight (Cout, Cin/groups, k), plus bias (Cout,); arguments
    as in PyTorch's F.conv1d (padding: int, 'valid' or 'same')."""
    check_conv_args("conv1d", input, weight, bias, groups, 1, transposed=False)
    stride, dilation, pads, _ = conv_geometry("conv1d", input.shape, weight.shape, stride, padding, dilation)
    # A padding string means the same at unit height (a height-1 kernel needs no padding there).
    padding_2d = padding if isinstance(padding, str) else (0, pads[0][0])
    out = conv2d(unsqueeze(input, -2), unsqueeze(weight, -2), bias, (1,) + stride, padding_2d, (1,) + dilation,
                 groups)
    return squeeze(out, -2)


def _depth_taps(x, kernel, stride, pad, dilation, out_depth):
    """(N, C, D, H, W) -> (N*Do, C*kd, H, W): row (n, z), channel c*kd + a holds input depth
    z*stride + a*dilation - pad[0] of channel c (zeros in the padding)."""
    xp = x._backend.xp
    n, channels, depth, height, width = x.shape
    padded = xp.pad(x._data, ((0, 0), (0, 0), pad, (0, 0), (0, 0))) if any(pad) else x._data
    padded_shape = padded.shape
    taps = xp.empty((n, out_depth, channels, kernel, height, width), x.dtype)
    span = stride * (out_depth - 1) + 1
    for a in range(kernel):
        taps[:, :, :, a] = padded[:, :, a * dilation:a * dilation + span:stride].transpose(0, 2, 1, 3, 4)
    taps_shape = taps.shape

    def backward(g):
        g = g.reshape(taps_shape)
        grad = xp.zeros(padded_shape, g.dtype)
        for a in range(kernel):
            grad[:, :, a * dilation:a * dilation + span:stride] += g[:, :, :, a].transpose(0, 2, 1, 3, 4)
        return (grad[:, :, pad[0]:pad[0] + depth],)

    return make_result(taps.reshape(n * out_depth, channels * kernel, height, width), (x,), backward, "conv3d",
                       saved=(), tangent=lambda t: _depth_taps(t, kernel, stride, pad, dilation, out_depth))


@traced
def conv3d(input, weight, bias=None, stride=1, padding=0, dilation=1, groups=1):
    """Cross-correlation of input (N, Cin, D, H, W) with weight (Cout, Cin/groups, kd, kh, kw), plus bias
    (Cout,); arguments as in PyTorch's F.conv3d (padding: int, triple, 'valid' or 'same')."""
    check_conv_args("conv3d", input, weight, bias, groups, 3, transposed=False)
    stride, dilation, pads, (out_depth, _, _) = conv_geometry("conv3d", input.shape, weight.shape, stride, padding,
                                                              dilation)
    unbatched = input.ndim == 4
    x = unsqueeze(input, 0) if unbatched else input
    cout, cin_g, kd, kh, kw = weight.shape
    taps = _depth_taps(x, kd, stride[0], pads[0], dilation[0], out_depth)
    planar_weight = reshape(weight, (cout, cin_g * kd, kh, kw))
    padding_hw = padding if isinstance(padding, str) else (pads[1][0], pads[2][0])
    planes = conv2d(taps, planar_weight, bias, stride[1:], padding_hw, dilation[1:], groups)
    out = permute(reshape(planes, (x.shape[0], out_depth) + planes.shape[1:]), (0, 2, 1, 3, 4))
    return squeeze(out, 0) if unbatched else out


def _zero_extend(xp, array, sizes):
    """array (N, C, h, w) zero-padded at the bottom/right to (N, C, *sizes)."""
    extra = [(0, 0), (0, 0)] + [(0, s - n) for n, s in zip(array.shape[2:], sizes)]
    return xp.pad(array, extra) if any(hi for _, hi in extra) else array


@traced
def conv_transpose2d(input, weight, bias=None, stride=1, padding=0, output_padding=0, groups=1, dilation=1,
                     algorithm="auto"):
    """Transposed convolution of input (N, Cin, H, W) with weight (Cin, Cout/groups, kh, kw), plus bias (Cout,).

    Arguments as in PyTorch's F.conv_transpose2d; output size (H-1)*stride - 2*padding + dilation*(kh-1) +
    output_padding + 1. `algorithm` picks the conv2d kernels ('direct', 'im2col' or 'auto').
    """
    op = "conv_transpose2d"
    cout = check_conv_args(op, input, weight, bias, groups, 2, transposed=True)
    backend = input._backend
    xp = backend.xp
    if algorithm != "auto" and algorithm not in backend.conv_algorithms:
        raise ValueError(f"{op}: algorithm must be one of {('auto',) + backend.conv_algorithms} on device "
                         f"{input.device}, got {algorithm!r}")
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
    x = xp.ascontiguousarray(input._data[None] if unbatched else input._data)
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
        forward_algorithm = backend.conv_algorithm((cout, weight.shape[0] // groups) + kernel, groups, stride,
                                                   conv_hw)
        backward_algorithm = backend.conv_algorithm(weight.shape, groups, stride, conv_hw)
    kernels = backend.kernels
    w = xp.ascontiguousarray(weight._data)
    out, _, _ = kernels.conv2d_backward(_zero_extend(xp, x, conv_hw), xp.zeros(out_shape, x.dtype), w, stride,
                                        padding, dilation, groups, True, False, False, forward_algorithm)
    if bias is not None:
        out += bias._data[:, None, None]

    def backward(g):
        g = xp.ascontiguousarray(g[None] if unbatched else g)
        gx = gw = gb = None
        if input.requires_grad:
            gx = kernels.conv2d_forward(g, w, None, stride, padding, dilation, groups,
                                        backward_algorithm)[:, :, :in_hw[0], :in_hw[1]]
            gx = gx[0] if unbatched else gx
        if weight.requires_grad:
            _, gw, _ = kernels.conv2d_backward(_zero_extend(xp, x, conv_hw), g, w, stride, padding, dilation,
                                               groups, False, True, False, backward_algorithm)
        if bias is not None and bias.requires_grad:
            gb = g.sum(axis=(0, 2, 3))
        return (gx, gw) if bias is None else (gx, gw, gb)

    def tangent(tx, tw, tb=None):  # linear in each argument, as conv2d
        from fastnn.ops._util import add_tangents
        return add_tangents(
            None if tx is None else conv_transpose2d(tx, weight, None, stride, padding, output_padding, groups,
                                                     dilation, algorithm),
            None if tw is None else conv_transpose2d(input, tw, None, stride, padding, output_padding, groups,
                                                     dilation, algorithm),
            None if tb is None else tb.reshape((-1, 1, 1)))

    inputs = (input, weight) if bias is None else (input, weight, bias)
    return make_result(out[0] if unbatched else out, inputs, backward, op, saved=(input, weight), tangent=tangent)


@traced
def conv_transpose1d(input, weight, bias=None, stride=1, padding=0, output_padding=0, groups=1, dilation=1):
    """Transposed convolution of input (N, Cin, L) with weight (Cin, Cout/groups, k), plus bias (Cout,);
    arguments as in PyTorch's F.conv_transpose1d. Runs as conv_transpose2d at unit height."""
    op = "conv_transpose1d"
    check_conv_args(op, input, weight, bias, groups, 1, transposed=True)
    args = [int_tuple(op, name, value, 1, minimum) for name, value, minimum in
            (("stride", stride, 1), ("padding", padding, 0), ("output_padding", output_padding, 0),
             ("dilation", dilation, 1))]
    stride, padding, output_padding, dilation = [(unit,) + value for unit, value in zip((1, 0, 0, 1), args)]
    out = conv_transpose2d(unsqueeze(input, -2), unsqueeze(weight, -2), bias, stride, padding, output_padding,
                           groups, dilation)
    return squeeze(out, -2)

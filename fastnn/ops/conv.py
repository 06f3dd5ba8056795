"""2-D convolution (PyTorch's F.conv2d) with its backward, on the device's direct or im2col kernels."""
from fastnn._tracing import traced
from fastnn._validation import check_conv_args, conv_geometry
from fastnn.autograd import is_grad_enabled, make_result


def conv2d_output_shape(input_shape, weight_shape, stride=1, padding=0, dilation=1):
    """(N, Cout, Hout, Wout) of conv2d for an (N, Cin, H, W) input and a (Cout, Cin/groups, kh, kw) weight."""
    output_hw = conv_geometry("conv2d", tuple(input_shape), tuple(weight_shape), stride, padding, dilation)[3]
    return (input_shape[0], weight_shape[0]) + output_hw


@traced
def conv2d(input, weight, bias=None, stride=1, padding=0, dilation=1, groups=1, algorithm="auto"):
    """Cross-correlation of input (N, Cin, H, W) with weight (Cout, Cin/groups, kh, kw), plus bias (Cout,).

    Arguments as in PyTorch's F.conv2d (stride/padding/dilation: int or (h, w); padding also 'valid' or
    'same'); `algorithm` picks the kernel: one of the device's algorithms (CPU: 'direct', 'im2col', 'winograd'),
    or 'auto' (the backend's measured choice, fastnn/_kernels/cpu_conv.choose_algorithm; the forward's own
    fastest where no backward will follow: grad disabled, or neither input nor weight requiring grad).
    """
    check_conv_args("conv2d", input, weight, bias, groups, 2, transposed=False)
    backend = input._backend
    if algorithm != "auto" and algorithm not in backend.conv_algorithms:
        raise ValueError(f"conv2d: algorithm must be one of {('auto',) + backend.conv_algorithms} on device "
                         f"{input.device}, got {algorithm!r}")
    stride, dilation, pads, output_hw = conv_geometry("conv2d", input._data.shape, weight._data.shape, stride,
                                                      padding, dilation)
    # The kernels pad symmetrically; the odd one out of 'same' padding is an extra zero row/column at the end.
    pad = (pads[0][0], pads[1][0])
    extra = (pads[0][1] - pads[0][0], pads[1][1] - pads[1][0])
    unbatched = input.ndim == 3
    xp = backend.xp
    x = input._data[None] if unbatched else input._data
    if extra != (0, 0):
        x = xp.pad(x, ((0, 0), (0, 0), (0, extra[0]), (0, extra[1])))
    x = xp.ascontiguousarray(x)
    w = xp.ascontiguousarray(weight._data)
    if algorithm == "auto":
        # Without a backward to follow (no_grad, or frozen input and weight: a bias-only gradient is the same sum
        # whatever the algorithm) the policy may pick the forward's fastest algorithm.
        will_backward = is_grad_enabled() and (input.requires_grad or weight.requires_grad)
        algorithm = backend.conv_algorithm(weight.shape, groups, stride, output_hw, backward=will_backward)
    kernels = backend.kernels
    b = None if bias is None else xp.ascontiguousarray(bias._data)
    out = kernels.conv2d_forward(x, w, b, stride, pad, dilation, groups, algorithm)

    def backward(g):
        g = xp.ascontiguousarray(g[None] if unbatched else g)
        gx, gw, gb = kernels.conv2d_backward(g, x, w, stride, pad, dilation, groups, input.requires_grad,
                                             weight.requires_grad, bias is not None and bias.requires_grad,
                                             algorithm)
        if gx is not None:
            gx = gx[:, :, :gx.shape[2] - extra[0], :gx.shape[3] - extra[1]]
            gx = gx[0] if unbatched else gx
        return (gx, gw) if bias is None else (gx, gw, gb)

    def tangent(tx, tw, tb=None):  # conv is linear in each argument
        from fastnn.ops._util import add_tangents
        return add_tangents(
            None if tx is None else conv2d(tx, weight, None, stride, padding, dilation, groups, algorithm),
            None if tw is None else conv2d(input, tw, None, stride, padding, dilation, groups, algorithm),
            None if tb is None else tb.reshape((-1, 1, 1)))

    inputs = (input, weight) if bias is None else (input, weight, bias)
    # The backward reads the input and weight values, never the bias's.
    return make_result(out[0] if unbatched else out, inputs, backward, "conv2d", saved=(input, weight),
                       tangent=tangent)

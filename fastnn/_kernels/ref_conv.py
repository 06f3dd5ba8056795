"""Plain-NumPy reference for 2-D convolution (NCHW), the ground truth the Numba kernels are tested against.

Each kernel tap (i, j) reads one strided window of the zero-padded input; the convolution is the sum over
taps of a channel contraction of that window with the tap's weights, done per group.
"""
import numpy as np


def conv2d_output_size(size, kernel, stride, padding, dilation):
    return (size + 2 * padding - dilation * (kernel - 1) - 1) // stride + 1


def _tap_window(xp, i, j, out_h, out_w, stride, dilation):
    """The (N, C, out_h, out_w) view of padded input `xp` that kernel tap (i, j) multiplies."""
    sh, sw = stride
    dh, dw = dilation
    return xp[:, :, i * dh:i * dh + sh * (out_h - 1) + 1:sh, j * dw:j * dw + sw * (out_w - 1) + 1:sw]


def conv2d_forward(x, w, b, stride, padding, dilation, groups):
    n, _, h, wd = x.shape
    cout, cin_g, kh, kw = w.shape
    cout_g = cout // groups
    out_h = conv2d_output_size(h, kh, stride[0], padding[0], dilation[0])
    out_w = conv2d_output_size(wd, kw, stride[1], padding[1], dilation[1])
    ph, pw = padding
    xp = np.pad(x, ((0, 0), (0, 0), (ph, ph), (pw, pw)))
    out = np.zeros((n, cout, out_h, out_w), x.dtype)
    for g in range(groups):
        xg = xp[:, g * cin_g:(g + 1) * cin_g]
        wg = w[g * cout_g:(g + 1) * cout_g]
        for i in range(kh):
            for j in range(kw):
                window = _tap_window(xg, i, j, out_h, out_w, stride, dilation)
                out[:, g * cout_g:(g + 1) * cout_g] += np.einsum("nchw,oc->nohw", window, wg[:, :, i, j])
    if b is not None:
        out += b[None, :, None, None]
    return out


def conv2d_backward(grad_out, x, w, stride, padding, dilation, groups):
    """(grad_input, grad_weight, grad_bias) of conv2d_forward for the output gradient `grad_out`."""
    h, wd = x.shape[2:]
    cout, cin_g, kh, kw = w.shape
    cout_g = cout // groups
    out_h, out_w = grad_out.shape[2:]
    ph, pw = padding
    sh, sw = stride
    dh, dw = dilation
    xp = np.pad(x, ((0, 0), (0, 0), (ph, ph), (pw, pw)))
    grad_xp = np.zeros_like(xp)
    grad_w = np.zeros_like(w)
    for g in range(groups):
        xg = xp[:, g * cin_g:(g + 1) * cin_g]
        gxg = grad_xp[:, g * cin_g:(g + 1) * cin_g]
        gout_g = grad_out[:, g * cout_g:(g + 1) * cout_g]
        wg = w[g * cout_g:(g + 1) * cout_g]
        for i in range(kh):
            for j in range(kw):
                window = _tap_window(xg, i, j, out_h, out_w, stride, dilation)
                grad_w[g * cout_g:(g + 1) * cout_g, :, i, j] = np.einsum("nohw,nchw->oc", gout_g, window)
                gxg[:, :, i * dh:i * dh + sh * (out_h - 1) + 1:sh, j * dw:j * dw + sw * (out_w - 1) + 1:sw] += (
                    np.einsum("nohw,oc->nchw", gout_g, wg[:, :, i, j]))
    grad_x = grad_xp[:, :, ph:ph + h, pw:pw + wd].copy()
    grad_b = grad_out.sum(axis=(0, 2, 3))
    return grad_x, grad_w, grad_b

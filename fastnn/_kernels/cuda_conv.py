"""2-D convolution for the CUDA backend: GEMMs through the array module's matmul (cuBLAS under CuPy), written
against the inputs' array module so that it runs, and is tested, on NumPy too. No numba.cuda kernel here.

Both algorithms contract one kernel tap at a time over the zero-padded input's strided window of that tap:
- "im2col" stacks the kh*kw tap windows into a column matrix (N, G, Cin/G*kh*kw, L) and does one batched GEMM
  per direction (the fastest on a GPU whenever the column buffer fits);
- "direct" runs one GEMM per tap and accumulates, never materialising the columns (kh*kw times less memory;
  chosen for large inputs and depthwise convolutions, where the column matrix is mostly copies).
The backward's input gradient is col2im: each tap's window of the padded gradient receives its product; a
tap's window positions are distinct, so the slice addition accumulates nothing twice.
"""
from fastnn._kernels.cuda_common import array_module

__all__ = ["ALGORITHMS", "choose_algorithm", "conv2d_forward", "conv2d_backward"]

ALGORITHMS = ("im2col", "direct")
# Column buffers above this many bytes go tap by tap instead (not yet measured on a GPU: see bench/bench_cuda.py)
_IM2COL_BYTES = 1 << 28


def choose_algorithm(weight_shape, groups, stride, output_hw, batch=None, itemsize=4, backward=True):
    # `backward` (whether a backward follows) is the CPU policy's seam; unmeasured on a GPU, it changes nothing here.
    cout, cin_g, kh, kw = weight_shape
    if cin_g == 1 and groups > 1:  # depthwise: per-tap products are already the whole work
        return "direct"
    cols = (batch or 1) * cin_g * groups * kh * kw * output_hw[0] * output_hw[1] * itemsize
    return "direct" if cols > _IM2COL_BYTES else "im2col"


def _geometry(x_shape, w_shape, stride, padding, dilation):
    h, w = x_shape[2:]
    kh, kw = w_shape[2:]
    oh = (h + 2 * padding[0] - dilation[0] * (kh - 1) - 1) // stride[0] + 1
    ow = (w + 2 * padding[1] - dilation[1] * (kw - 1) - 1) // stride[1] + 1
    return oh, ow


def _tap(padded, i, j, oh, ow, stride, dilation):
    """The (N, C, oh, ow) window of the padded input (or its gradient) that tap (i, j) multiplies."""
    r, c = i * dilation[0], j * dilation[1]
    return padded[:, :, r:r + stride[0] * (oh - 1) + 1:stride[0], c:c + stride[1] * (ow - 1) + 1:stride[1]]


def _pad(xp, x, padding):
    ph, pw = padding
    return xp.pad(x, ((0, 0), (0, 0), (ph, ph), (pw, pw))) if ph or pw else x


def _columns(xp, padded, kh, kw, oh, ow, stride, dilation, groups):
    n, cin = padded.shape[:2]
    taps = [_tap(padded, i, j, oh, ow, stride, dilation) for i in range(kh) for j in range(kw)]
    # (N, Cin, taps, oh, ow): per group the row order is (channel, i, j), the weight's own layout
    return xp.stack(taps, axis=2).reshape(n, groups, cin // groups * kh * kw, oh * ow)


def conv2d_forward(x, w, b, stride, padding, dilation, groups, algorithm):
    xp = array_module(x)
    n = x.shape[0]
    cout, cin_g, kh, kw = w.shape
    oh, ow = _geometry(x.shape, w.shape, stride, padding, dilation)
    padded = _pad(xp, x, padding)
    wg = w.reshape(groups, cout // groups, cin_g * kh * kw)
    if algorithm == "im2col":
        out = xp.matmul(wg, _columns(xp, padded, kh, kw, oh, ow, stride, dilation, groups))
    else:
        out = xp.zeros((n, groups, cout // groups, oh * ow), x.dtype)
        taps = w.reshape(groups, cout // groups, cin_g, kh, kw)
        for i in range(kh):
            for j in range(kw):
                window = _tap(padded, i, j, oh, ow, stride, dilation).reshape(n, groups, cin_g, oh * ow)
                out += xp.matmul(xp.ascontiguousarray(taps[:, :, :, i, j]), window)
    out = out.reshape(n, cout, oh, ow)
    if b is not None:
        out += b.reshape(1, cout, 1, 1)
    return out


def conv2d_backward(grad_out, x, w, stride, padding, dilation, groups, need_input, need_weight, need_bias,
                    algorithm):
    xp = array_module(x)
    n, cin, h, wd = x.shape
    cout, cin_g, kh, kw = w.shape
    oh, ow = grad_out.shape[2:]
    ph, pw = padding
    g = grad_out.reshape(n, groups, cout // groups, oh * ow)
    padded = _pad(xp, x, padding) if need_weight else None
    grad_x = grad_w = grad_b = None
    if need_bias:
        grad_b = grad_out.sum(axis=(0, 2, 3))
    if algorithm == "im2col":
        if need_weight:
            cols = _columns(xp, padded, kh, kw, oh, ow, stride, dilation, groups)
            grad_w = xp.matmul(g, cols.swapaxes(-1, -2)).sum(axis=0).reshape(w.shape)
        if need_input:
            grad_cols = xp.matmul(w.reshape(groups, cout // groups, cin_g * kh * kw).swapaxes(-1, -2), g)
            grad_cols = grad_cols.reshape(n, cin, kh * kw, oh, ow)
    if need_input:
        grad_padded = xp.zeros((n, cin, h + 2 * ph, wd + 2 * pw), x.dtype)
    if algorithm != "im2col" and need_weight:
        grad_w = xp.empty(w.shape, w.dtype)
    taps = w.reshape(groups, cout // groups, cin_g, kh, kw)
    for i in range(kh):
        for j in range(kw):
            if algorithm == "im2col":
                if need_input:
                    _tap(grad_padded, i, j, oh, ow, stride, dilation)[...] += grad_cols[:, :, i * kw + j]
                continue
            if need_weight:
                window = _tap(padded, i, j, oh, ow, stride, dilation).reshape(n, groups, cin_g, oh * ow)
                grad_w[:, :, i, j] = xp.matmul(g, window.swapaxes(-1, -2)).sum(axis=0).reshape(cout, cin_g)
            if need_input:
                tap_w = xp.ascontiguousarray(taps[:, :, :, i, j]).swapaxes(-1, -2)
                _tap(grad_padded, i, j, oh, ow, stride, dilation)[...] += xp.matmul(tap_w, g).reshape(n, cin, oh, ow)
    if need_input:
        grad_x = xp.ascontiguousarray(grad_padded[:, :, ph:ph + h, pw:pw + wd])
    return grad_x, grad_w, grad_b

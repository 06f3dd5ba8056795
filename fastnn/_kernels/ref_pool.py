"""Plain-NumPy references for the pooling kernels in cpu_pool.py (same signatures, same (P, H, W) layout)."""
import numpy as np


def _max_window(i, j, kh, kw, sh, sw, ph, pw, dh, dw, height, width):
    """Input rows and columns of window (i, j): the dilated taps that fall inside the input."""
    rows = [y for y in range(i * sh - ph, i * sh - ph + (kh - 1) * dh + 1, dh) if 0 <= y < height]
    cols = [x for x in range(j * sw - pw, j * sw - pw + (kw - 1) * dw + 1, dw) if 0 <= x < width]
    return rows, cols


def max_pool2d_forward(x, kh, kw, sh, sw, ph, pw, dh, dw, oh, ow):
    planes, height, width = x.shape
    out = np.full((planes, oh, ow), -np.inf, dtype=x.dtype)
    indices = np.zeros((planes, oh, ow), dtype=np.int64)
    for i in range(oh):
        for j in range(ow):
            rows, cols = _max_window(i, j, kh, kw, sh, sw, ph, pw, dh, dw, height, width)
            if not (rows and cols):
                indices[:, i, j] = -1
                continue
            indices[:, i, j] = rows[0] * width + cols[0]
            for y in rows:
                for x_ in cols:
                    v = x[:, y, x_]
                    wins = (v > out[:, i, j]) | np.isnan(v)
                    out[wins, i, j] = v[wins]
                    indices[wins, i, j] = y * width + x_
    return out, indices


def max_pool2d_backward(grad_out, indices, height, width):
    planes = grad_out.shape[0]
    grad_in = np.zeros((planes, height * width), dtype=grad_out.dtype)
    flat_index = indices.reshape(planes, -1)
    inside = (flat_index >= 0) & (flat_index < height * width)
    plane_index = np.broadcast_to(np.arange(planes)[:, None], flat_index.shape)
    np.add.at(grad_in, (plane_index[inside], flat_index[inside]), grad_out.reshape(planes, -1)[inside])
    return grad_in.reshape(planes, height, width)


def _avg_window(i, j, kh, kw, sh, sw, ph, pw, height, width, count_include_pad, divisor_override):
    h0, w0 = i * sh - ph, j * sw - pw
    h1, w1 = min(h0 + kh, height + ph), min(w0 + kw, width + pw)
    padded_size = (h1 - h0) * (w1 - w0)
    h0, w0, h1, w1 = max(h0, 0), max(w0, 0), min(h1, height), min(w1, width)
    if divisor_override:
        divisor = divisor_override
    elif count_include_pad:
        divisor = padded_size
    else:
        divisor = (h1 - h0) * (w1 - w0)
    return h0, h1, w0, w1, divisor


def avg_pool2d_forward(x, kh, kw, sh, sw, ph, pw, oh, ow, count_include_pad, divisor_override):
    planes, height, width = x.shape
    out = np.zeros((planes, oh, ow), dtype=x.dtype)
    for i in range(oh):
        for j in range(ow):
            h0, h1, w0, w1, divisor = _avg_window(i, j, kh, kw, sh, sw, ph, pw, height, width,
                                                  count_include_pad, divisor_override)
            out[:, i, j] = x[:, h0:h1, w0:w1].sum(axis=(1, 2)) / divisor
    return out


def avg_pool2d_backward(grad_out, height, width, kh, kw, sh, sw, ph, pw, count_include_pad,
                        divisor_override):
    planes, oh, ow = grad_out.shape
    grad_in = np.zeros((planes, height, width), dtype=grad_out.dtype)
    for i in range(oh):
        for j in range(ow):
            h0, h1, w0, w1, divisor = _avg_window(i, j, kh, kw, sh, sw, ph, pw, height, width,
                                                  count_include_pad, divisor_override)
            grad_in[:, h0:h1, w0:w1] += (grad_out[:, i, j] / divisor)[:, None, None]
    return grad_in

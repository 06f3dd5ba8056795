"""Plain-NumPy references for the kernels in cpu_pool_nd.py (same signatures, same plane layouts)."""
import itertools

import numpy as np


def _taps(o, k, s, pad, d, size):
    """Input positions of window o's dilated taps that fall inside [0, size)."""
    return [t for t in range(o * s - pad, o * s - pad + (k - 1) * d + 1, d) if 0 <= t < size]


def _window_max(x, positions, flat_index):
    """Running max over `positions` (tuples of plane coordinates) for every plane at once; NaN wins."""
    planes = x.shape[0]
    best = np.full(planes, -np.inf, x.dtype)
    index = np.full(planes, flat_index(positions[0]) if positions else -1, np.int64)
    for position in positions:
        v = x[(slice(None),) + position]
        wins = (v > best) | np.isnan(v)
        best[wins] = v[wins]
        index[wins] = flat_index(position)
    return best, index


def max_pool3d_forward(x, kd, kh, kw, sd, sh, sw, pd, ph, pw, dd, dh, dw, od, oh, ow):
    planes, depth, height, width = x.shape
    out = np.empty((planes, od, oh, ow), x.dtype)
    indices = np.empty((planes, od, oh, ow), np.int64)
    for z, i, j in itertools.product(range(od), range(oh), range(ow)):
        positions = list(itertools.product(_taps(z, kd, sd, pd, dd, depth), _taps(i, kh, sh, ph, dh, height),
                                           _taps(j, kw, sw, pw, dw, width)))
        out[:, z, i, j], indices[:, z, i, j] = _window_max(
            x, positions, lambda position: (position[0] * height + position[1]) * width + position[2])
    return out, indices


def _avg_window(o, k, s, pad, size):
    lo = o * s - pad
    hi = min(lo + k, size + pad)
    return slice(max(lo, 0), min(hi, size)), hi - lo


def _avg_windows(od, oh, ow, kernel, stride, padding, sizes, count_include_pad, divisor_override):
    """Yield (z, i, j, window slices, divisor) for every output of a 3-D average pooling."""
    for z, i, j in itertools.product(range(od), range(oh), range(ow)):
        ranges = [_avg_window(o, k, s, p, n) for o, k, s, p, n in zip((z, i, j), kernel, stride, padding, sizes)]
        window = tuple(r for r, _ in ranges)
        if divisor_override:
            divisor = divisor_override
        elif count_include_pad:
            divisor = int(np.prod([n for _, n in ranges]))
        else:
            divisor = int(np.prod([r.stop - r.start for r in window]))
        yield z, i, j, window, divisor


def avg_pool3d_forward(x, kd, kh, kw, sd, sh, sw, pd, ph, pw, od, oh, ow, count_include_pad, divisor_override):
    out = np.empty((x.shape[0], od, oh, ow), x.dtype)
    for z, i, j, window, divisor in _avg_windows(od, oh, ow, (kd, kh, kw), (sd, sh, sw), (pd, ph, pw), x.shape[1:],
                                                 count_include_pad, divisor_override):
        out[:, z, i, j] = x[(slice(None),) + window].sum(axis=(1, 2, 3)) / divisor
    return out


def avg_pool3d_backward(grad_out, depth, height, width, kd, kh, kw, sd, sh, sw, pd, ph, pw, count_include_pad,
                        divisor_override):
    planes, od, oh, ow = grad_out.shape
    grad_in = np.zeros((planes, depth, height, width), grad_out.dtype)
    for z, i, j, window, divisor in _avg_windows(od, oh, ow, (kd, kh, kw), (sd, sh, sw), (pd, ph, pw),
                                                 (depth, height, width), count_include_pad, divisor_override):
        grad_in[(slice(None),) + window] += (grad_out[:, z, i, j] / divisor)[:, None, None, None]
    return grad_in


def adaptive_regions(size, out_size):
    """PyTorch's adaptive pooling regions along one axis: [floor(i*n/out), ceil((i+1)*n/out))."""
    return [slice(i * size // out_size, -(-(i + 1) * size // out_size)) for i in range(out_size)]


def adaptive_avg_pool2d_forward(x, oh, ow):
    planes, height, width = x.shape
    out = np.empty((planes, oh, ow), x.dtype)
    for (i, rows), (j, cols) in itertools.product(enumerate(adaptive_regions(height, oh)),
                                                  enumerate(adaptive_regions(width, ow))):
        out[:, i, j] = x[:, rows, cols].mean(axis=(1, 2))
    return out


def adaptive_avg_pool2d_backward(grad_out, height, width):
    planes, oh, ow = grad_out.shape
    grad_in = np.zeros((planes, height, width), grad_out.dtype)
    for (i, rows), (j, cols) in itertools.product(enumerate(adaptive_regions(height, oh)),
                                                  enumerate(adaptive_regions(width, ow))):
        count = (rows.stop - rows.start) * (cols.stop - cols.start)
        grad_in[:, rows, cols] += (grad_out[:, i, j] / count)[:, None, None]
    return grad_in


def _region_max(x, rows, cols):
    """Max and flat index of every plane over a block of rows and columns (first max in raster order)."""
    width = x.shape[2]
    positions = list(itertools.product(range(rows.start, rows.stop), range(cols.start, cols.stop)))
    return _window_max(x, positions, lambda position: position[0] * width + position[1])


def adaptive_max_pool2d_forward(x, oh, ow):
    planes, height, width = x.shape
    out = np.empty((planes, oh, ow), x.dtype)
    indices = np.empty((planes, oh, ow), np.int64)
    for (i, rows), (j, cols) in itertools.product(enumerate(adaptive_regions(height, oh)),
                                                  enumerate(adaptive_regions(width, ow))):
        out[:, i, j], indices[:, i, j] = _region_max(x, rows, cols)
    return out, indices


def fractional_starts(sample, size, out_size, k):
    """Window starts along one axis; `sample` is a NumPy scalar whose dtype the arithmetic keeps (PyTorch's)."""
    real = type(sample)
    starts = np.empty(out_size, np.int64)
    if out_size > 1:
        alpha = real(size - k) / real(out_size - 1)
        starts[:-1] = [int((real(i) + sample) * alpha) - int(sample * alpha) for i in range(out_size - 1)]
    starts[-1] = size - k
    return starts


def fractional_max_pool2d_forward(x, samples, kh, kw, oh, ow):
    planes = x.shape[0]
    out = np.empty((planes, oh, ow), x.dtype)
    indices = np.empty((planes, oh, ow), np.int64)
    for p in range(planes):
        rows = fractional_starts(samples[p, 1], x.shape[1], oh, kh)
        cols = fractional_starts(samples[p, 0], x.shape[2], ow, kw)
        for i, j in itertools.product(range(oh), range(ow)):
            best, index = _region_max(x[p:p + 1], slice(rows[i], rows[i] + kh), slice(cols[j], cols[j] + kw))
            out[p, i, j], indices[p, i, j] = best[0], index[0]
    return out, indices

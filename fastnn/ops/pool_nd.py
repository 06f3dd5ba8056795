"""1-D, 3-D, adaptive and fractional pooling with their backward passes: PyTorch's F.max_pool1d/3d,
F.avg_pool1d/3d, F.adaptive_avg_pool1d/2d, F.adaptive_max_pool1d/2d and F.fractional_max_pool2d.

1-D pooling runs as 2-D pooling at unit height; the others on the device's pool kernels, which see the input
as N*C independent planes. Inputs are batched (N, C, *spatial) or unbatched (C, *spatial).
"""
import math
import numbers

from fastnn._tracing import traced
from fastnn._validation import check_pool_input, int_tuple, pool_window
from fastnn.autograd import make_result
from fastnn.ops.pool import _max_result, _planes, avg_pool2d, divisor_code, max_pool2d
from fastnn.ops.reduce import mean
from fastnn.ops.shape import squeeze, unsqueeze
from fastnn.tensor import Tensor


def _squeeze_height(result, return_indices):
    """Drop the unit height that 1-D pooling ran with, from the result (and its indices)."""
    if return_indices:
        return squeeze(result[0], -2), squeeze(result[1], -2)
    return squeeze(result, -2)


@traced
def max_pool1d(input, kernel_size, stride=None, padding=0, dilation=1, ceil_mode=False, return_indices=False):
    """Max over windows of an (N, C, L) input; indices (with return_indices) are positions along L."""
    kernel, stride, padding, dilation, _ = pool_window("max_pool1d", input, 1, kernel_size, stride, padding,
                                                       dilation, ceil_mode)
    result = max_pool2d(unsqueeze(input, -2), (1,) + kernel, (1,) + stride, (0,) + padding, (1,) + dilation,
                        ceil_mode, return_indices)
    return _squeeze_height(result, return_indices)


@traced
def avg_pool1d(input, kernel_size, stride=None, padding=0, ceil_mode=False, count_include_pad=True):
    """Mean over windows of an (N, C, L) input (the divisor counts padding when count_include_pad)."""
    kernel, stride, padding, _, _ = pool_window("avg_pool1d", input, 1, kernel_size, stride, padding, 1, ceil_mode)
    out = avg_pool2d(unsqueeze(input, -2), (1,) + kernel, (1,) + stride, (0,) + padding, ceil_mode,
                     count_include_pad)
    return squeeze(out, -2)


@traced
def max_pool3d(input, kernel_size, stride=None, padding=0, dilation=1, ceil_mode=False, return_indices=False):
    """Max over windows of an (N, C, D, H, W) input; padded positions never win. With return_indices, also
    the int64 flat indices d*H*W + h*W + w of each max inside its plane."""
    kernel, stride, padding, dilation, out_size = pool_window("max_pool3d", input, 3, kernel_size, stride, padding,
                                                              dilation, ceil_mode)
    out, indices = input._backend.kernels.max_pool3d_forward(_planes(input, 3), *kernel, *stride, *padding,
                                                             *dilation, *out_size)
    return _max_result("max_pool3d", input, out, indices, input.shape[:-3] + out_size, return_indices)


@traced
def avg_pool3d(input, kernel_size, stride=None, padding=0, ceil_mode=False, count_include_pad=True,
               divisor_override=None):
    """Mean over windows of an (N, C, D, H, W) input; the divisor is the window size including padding
    (count_include_pad=True), excluding it, or divisor_override when given."""
    kernel, stride, padding, _, out_size = pool_window("avg_pool3d", input, 3, kernel_size, stride, padding, 1,
                                                       ceil_mode)
    divisor = divisor_code("avg_pool3d", divisor_override)
    count_include_pad = bool(count_include_pad)
    backend = input._backend
    out = backend.kernels.avg_pool3d_forward(_planes(input, 3), *kernel, *stride, *padding, *out_size,
                                             count_include_pad, divisor)

    def backward(g):
        g = backend.xp.ascontiguousarray(g).reshape((-1,) + out_size)
        grad = backend.kernels.avg_pool3d_backward(g, *input.shape[-3:], *kernel, *stride, *padding,
                                                   count_include_pad, divisor)
        return (grad.reshape(input.shape),)

    return make_result(out.reshape(input.shape[:-3] + out_size), (input,), backward, "avg_pool3d", saved=(),
                       tangent=lambda t: avg_pool3d(t, kernel_size, stride, padding, ceil_mode, count_include_pad,
                                                    divisor_override))


def _adaptive_size(op, input, output_size, spatial):
    """output_size (an int, or a tuple whose None entries keep the input's size) as a tuple of ints >= 1."""
    check_pool_input(op, input, spatial)
    sizes = tuple(output_size) if isinstance(output_size, (tuple, list)) else (output_size,) * spatial
    if len(sizes) != spatial:
        raise TypeError(f"{op}: output_size must be an int or a tuple of {spatial} ints or None, got {output_size!r}")
    sizes = tuple(n if s is None else s for s, n in zip(sizes, input.shape[-spatial:]))
    return int_tuple(op, "output_size", sizes, spatial, 1)


@traced
def adaptive_avg_pool2d(input, output_size):
    """Mean over PyTorch's adaptive regions: output (i, j) pools rows [floor(i*H/oh), ceil((i+1)*H/oh)) and
    the matching columns. output_size (1, 1), global average pooling, is a plain mean."""
    oh, ow = _adaptive_size("adaptive_avg_pool2d", input, output_size, 2)
    if (oh, ow) == (1, 1):
        return mean(input, dim=(-2, -1), keepdim=True)
    backend = input._backend
    out = backend.kernels.adaptive_avg_pool2d_forward(_planes(input, 2), oh, ow)
    height, width = input.shape[-2:]

    def backward(g):
        g = backend.xp.ascontiguousarray(g).reshape(-1, oh, ow)
        return (backend.kernels.adaptive_avg_pool2d_backward(g, height, width).reshape(input.shape),)

    return make_result(out.reshape(input.shape[:-2] + (oh, ow)), (input,), backward, "adaptive_avg_pool2d",
                       saved=(), tangent=lambda t: adaptive_avg_pool2d(t, (oh, ow)))


@traced
def adaptive_max_pool2d(input, output_size, return_indices=False):
    """Max over PyTorch's adaptive regions (see adaptive_avg_pool2d); indices are flat h*W + w."""
    oh, ow = _adaptive_size("adaptive_max_pool2d", input, output_size, 2)
    out, indices = input._backend.kernels.adaptive_max_pool2d_forward(_planes(input, 2), oh, ow)
    return _max_result("adaptive_max_pool2d", input, out, indices, input.shape[:-2] + (oh, ow), return_indices)


@traced
def adaptive_avg_pool1d(input, output_size):
    """adaptive_avg_pool2d along L of an (N, C, L) input."""
    (size,) = _adaptive_size("adaptive_avg_pool1d", input, output_size, 1)
    return squeeze(adaptive_avg_pool2d(unsqueeze(input, -2), (1, size)), -2)


@traced
def adaptive_max_pool1d(input, output_size, return_indices=False):
    """adaptive_max_pool2d along L of an (N, C, L) input; indices are positions along L."""
    (size,) = _adaptive_size("adaptive_max_pool1d", input, output_size, 1)
    return _squeeze_height(adaptive_max_pool2d(unsqueeze(input, -2), (1, size), return_indices), return_indices)


def _fractional_output_size(op, input, output_size, output_ratio):
    height, width = input.shape[-2:]
    if output_size is not None:
        return int_tuple(op, "output_size", output_size, 2, 1)
    if output_ratio is None:
        raise ValueError(f"{op} requires specifying either an output_size or an output_ratio")
    ratios = tuple(output_ratio) if isinstance(output_ratio, (tuple, list)) else (output_ratio,) * 2
    if len(ratios) != 2 or not all(isinstance(r, numbers.Real) and not isinstance(r, bool) for r in ratios):
        raise TypeError(f"{op}: output_ratio must be a number or a pair of numbers, got {output_ratio!r}")
    sizes = (int(height * ratios[0]), int(width * ratios[1]))
    if min(sizes) < 1:
        raise ValueError(f"{op}: output_ratio {output_ratio} gives an empty output {sizes} for input shape "
                         f"{tuple(input.shape)}")
    return sizes


def _fractional_samples(op, input, samples, generator):
    """The (N, C, 2) samples u in [0, 1] (width, height) as a contiguous (N*C, 2) array of the input's dtype and
    device; drawn from `generator` (default: fastnn's global one) when not given."""
    backend = input._backend
    shape = (1 if input.ndim == 3 else input.shape[0], input.shape[-3], 2)
    if samples is None:
        return backend.draw("random", shape, input.dtype, generator=generator).reshape(-1, 2)
    if not (isinstance(samples, Tensor) and samples._backend is backend):
        samples = Tensor(samples, device=input.device)  # host data or another device's tensor, moved
    data = samples._data
    if data.shape != shape:
        raise ValueError(f"{op}: _random_samples must have shape {shape} (N, C, 2) for input shape "
                         f"{tuple(input.shape)}, got {data.shape}")
    if data.dtype.kind not in "fiu" or not bool(((data >= 0) & (data <= 1)).all()):
        raise ValueError(f"{op}: _random_samples must be real numbers in [0, 1]")
    return backend.xp.ascontiguousarray(data, dtype=input.dtype).reshape(-1, 2)


def fractional_max_pool2d(input, kernel_size, output_size=None, output_ratio=None, return_indices=False,
                          _random_samples=None, generator=None):
    """Fractional max pooling (Graham, 2014) as PyTorch's F.fractional_max_pool2d: kernel_size windows at
    pseudo-random starts chosen per sample and channel, giving output_size, or int(input size * output_ratio).

    The randomness is `_random_samples` (N, C, 2) when given, else a draw from `generator` (default: fastnn's
    global generator, so fastnn.manual_seed makes it reproducible).
    """
    op = "fractional_max_pool2d"
    check_pool_input(op, input, 2)
    kh, kw = int_tuple(op, "kernel_size", kernel_size, 2, 1)
    oh, ow = _fractional_output_size(op, input, output_size, output_ratio)
    height, width = input.shape[-2:]
    for axis, out_n, k, n in (("height", oh, kh, height), ("width", ow, kw, width)):
        if out_n + k - 1 > n:
            raise ValueError(f"{op}: pool {axis} {k} too large relative to input {axis} {n} for output {axis} "
                             f"{out_n} (output + kernel - 1 must not exceed the input)")
    samples = _fractional_samples(op, input, _random_samples, generator)
    out, indices = input._backend.kernels.fractional_max_pool2d_forward(_planes(input, 2), samples, kh, kw, oh, ow)
    return _max_result(op, input, out, indices, input.shape[:-2] + (oh, ow), return_indices)


# ---- issue 14, part B: unpooling, power-average pooling, 3-D adaptive pooling ----------------------------------
@traced
def max_unpool(input, indices, kernel_size, stride, padding, output_size, spatial):
    """The partial inverse of max pooling over `spatial` dims: each input value is written at its flat index
    (as max_pool returned it) inside a zero plane of the output size (in - 1) * stride - 2 * padding + kernel,
    or `output_size`. The gradient reads the output gradient back at the same indices."""
    op = f"max_unpool{spatial}d"
    check_pool_input(op, input, spatial)
    if not isinstance(indices, Tensor) or indices.dtype.kind not in "iu":
        raise TypeError(f"{op}: indices must be an integer Tensor (as max_pool{spatial}d(return_indices=True) "
                        f"returns), got {getattr(indices, 'dtype', type(indices).__name__)}")
    if indices.shape != input.shape:
        raise ValueError(f"{op}: indices of shape {tuple(indices.shape)} must have the input's shape "
                         f"{tuple(input.shape)}")
    kernel = int_tuple(op, "kernel_size", kernel_size, spatial, 1)
    stride = kernel if stride is None else int_tuple(op, "stride", stride, spatial, 1)
    padding = int_tuple(op, "padding", padding, spatial, 0)
    if output_size is None:
        sizes = tuple((n - 1) * s - 2 * p + k for n, s, p, k in zip(input.shape[-spatial:], stride, padding, kernel))
    else:
        sizes = tuple(output_size)[-spatial:]
        if len(sizes) != spatial:
            raise ValueError(f"{op}: output_size must hold the {spatial} output sizes (or the whole output shape), "
                             f"got {output_size!r}")
        sizes = int_tuple(op, "output_size", sizes, spatial, 1)
    plane = math.prod(sizes)
    xp = input._backend.xp
    flat = indices._backend.xp.ascontiguousarray(indices._data).reshape(-1, math.prod(input.shape[-spatial:]))
    if flat.size and bool(((flat < 0) | (flat >= plane)).any()):
        raise ValueError(f"{op}: found an index outside the output plane of size {sizes} (indices must come from "
                         f"the matching max pool)")
    rows = xp.arange(flat.shape[0]).reshape(-1, 1)
    out = xp.zeros((flat.shape[0], plane), input.dtype)
    out[rows, flat] = input._data.reshape(flat.shape)

    def backward(g):
        return (xp.ascontiguousarray(g).reshape(out.shape)[rows, flat].reshape(input.shape),)
    return make_result(out.reshape(input.shape[:-spatial] + sizes), (input,), backward, op, saved=(),
                       tangent=lambda t: max_unpool(t, indices, kernel_size, stride, padding, output_size, spatial))


def lp_pool(input, norm_type, kernel_size, stride, ceil_mode, spatial):
    """(sum over each window of x^p)^(1/p), PyTorch's formula: the window's mean of x^p from avg pooling,
    times the window size, with negative sums clamped to 0 before the root."""
    from fastnn.ops.elementwise import abs as _abs, mul, pow
    from fastnn.ops.math import sign
    from fastnn.ops.activation import relu
    op = f"lp_pool{spatial}d"
    check_pool_input(op, input, spatial)
    if isinstance(norm_type, bool) or not isinstance(norm_type, numbers.Real) or norm_type == 0:
        raise ValueError(f"{op}: norm_type must be a non-zero real number, got {norm_type!r}")
    kernel = int_tuple(op, "kernel_size", kernel_size, spatial, 1)
    pool = (avg_pool1d, avg_pool2d, avg_pool3d)[spatial - 1]
    out = pool(pow(input, norm_type), kernel, kernel if stride is None else stride, 0, ceil_mode)
    return pow(mul(mul(sign(out), relu(_abs(out))), math.prod(kernel)), 1.0 / norm_type)


def _separable_3d(op, input, output_size, pool2d, pool1d):
    """A 3-D adaptive pool from a 2-D one over (H, W), then a 1-D one over D: the adaptive regions are products
    of per-axis intervals, so a mean (or max) over one is the mean (max) over D of the means over H, W."""
    od, oh, ow = _adaptive_size(op, input, output_size, 3)
    batched = input if input.ndim == 5 else unsqueeze(input, 0)
    n, c, d, h, w = batched.shape
    x = pool2d(batched.reshape(n, c * d, h, w), (oh, ow)).reshape(n, c, d, oh * ow)
    x = pool1d(x.transpose(2, 3).reshape(n, c * oh * ow, d), od)
    out = x.reshape(n, c, oh * ow, od).transpose(2, 3).reshape(n, c, od, oh, ow)
    return out if input.ndim == 5 else squeeze(out, 0)


def adaptive_avg_pool3d(input, output_size):
    """Mean over PyTorch's adaptive regions of (N, C, D, H, W) (see adaptive_avg_pool2d)."""
    return _separable_3d("adaptive_avg_pool3d", input, output_size, adaptive_avg_pool2d, adaptive_avg_pool1d)


def adaptive_max_pool3d(input, output_size, return_indices=False):
    """Max over PyTorch's adaptive regions of (N, C, D, H, W)."""
    if return_indices:
        raise NotImplementedError("adaptive_max_pool3d(return_indices=True) is not implemented in fastnn yet")
    return _separable_3d("adaptive_max_pool3d", input, output_size, adaptive_max_pool2d, adaptive_max_pool1d)

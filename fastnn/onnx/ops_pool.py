"""Converters of the pooling ops (fastnn/ops/pool.py, pool_nd.py).

ceil_mode's last, partial window is exported as extra end padding (padding never wins a max, and is left out of
an average's count), which gives PyTorch's output size on every runtime. Adaptive average pooling is a global or
plain average pool when the sizes allow, otherwise a product with constant averaging matrices (exact for every
size pair, in and out).
"""
import math

import numpy as np

from fastnn._validation import pool_args
from fastnn.onnx._registry import register_converter


def _pads(x, out, kernel, stride, padding, dilation):
    """ONNX pads (all begins, then all ends) giving PyTorch's output sizes `out` (ceil_mode included)."""
    ends = [p + max(0, (o - 1) * s + d * (k - 1) + 1 - n - 2 * p)
            for n, o, k, s, p, d in zip(x.shape[-len(kernel):], out, kernel, stride, padding, dilation)]
    return list(padding) + ends


def _max_pool(spatial):
    def convert(g, call):
        a = call.arguments
        x = a["input"]
        out = (call.result[0] if a["return_indices"] else call.result).shape[-spatial:]
        kernel, stride, padding, dilation = pool_args(call.name, spatial, a["kernel_size"], a["stride"],
                                                      a["padding"], a["dilation"])
        attributes = dict(kernel_shape=list(kernel), strides=list(stride), dilations=list(dilation),
                          pads=_pads(x, out, kernel, stride, padding, dilation))
        if a["return_indices"]:
            if x.ndim != spatial + 2:
                g.unsupported("return_indices=True on an unbatched input")
            values, flat = g.op("MaxPool", g.name(x), outputs=2, **attributes)
            # ONNX counts the indices over the whole (N, C, *spatial) tensor, PyTorch within each plane
            return [values, g.op("Mod", flat, g.ints([math.prod(x.shape[-spatial:])]))]
        return g.batched(x, spatial, lambda name: g.op("MaxPool", name, **attributes))
    return convert


@register_converter("max_unpool")
def max_unpool(g, call):
    """Each plane's values scattered (ScatterElements) at their in-plane indices into a plane of zeros; the
    zeros take N and C from the input's shape, so a dynamic batch stays dynamic."""
    a = call.arguments
    x, spatial = a["input"], a["spatial"]
    sizes = call.result.shape[-spatial:]
    if x.ndim != spatial + 2:
        g.unsupported("an unbatched input")
    rows = g.op("Reshape", g.name(x), g.ints([0, 0, -1]))
    index = g.op("Reshape", g.name(a["indices"]), g.ints([0, 0, -1]))
    lead = g.op("Slice", g.op("Shape", g.name(x)), g.ints([0]), g.ints([2]))
    zeros = g.op("ConstantOfShape", g.op("Concat", lead, g.ints([math.prod(sizes)]), axis=0),
                 value=g.onnx.numpy_helper.from_array(np.zeros(1, x.dtype)))
    planes = g.op("ScatterElements", zeros, index, rows, axis=2)
    return g.op("Reshape", planes, g.ints([0, 0, *sizes]))


def _avg_pool(spatial):
    def convert(g, call):
        a = call.arguments
        if a.get("divisor_override") is not None:
            g.unsupported("divisor_override has no ONNX equivalent")
        x, out = a["input"], call.result.shape[-spatial:]
        kernel, stride, padding, _ = pool_args(call.name, spatial, a["kernel_size"], a["stride"], a["padding"])
        pads = _pads(x, out, kernel, stride, padding, (1,) * spatial)
        include_pad = bool(a["count_include_pad"])
        if pads[spatial:] != list(padding):  # a ceil_mode window past the padding
            if include_pad and any(padding):
                g.unsupported("ceil_mode=True with padding and count_include_pad=True divides the last windows "
                              "by a count ONNX's AveragePool cannot reproduce")
            include_pad = False  # without padding, PyTorch counts only the input positions
        return g.batched(x, spatial, lambda name: g.op(
            "AveragePool", name, kernel_shape=list(kernel), strides=list(stride), pads=pads,
            count_include_pad=int(include_pad)))
    return convert


for _spatial in (1, 2, 3):
    register_converter(f"max_pool{_spatial}d")(_max_pool(_spatial))
    register_converter(f"avg_pool{_spatial}d")(_avg_pool(_spatial))


def _averaging_matrix(n_in, n_out, dtype):
    """(n_out, n_in): row i averages PyTorch's adaptive region [floor(i n_in/n_out), ceil((i+1) n_in/n_out))."""
    matrix = np.zeros((n_out, n_in), dtype)
    for i in range(n_out):
        start, end = i * n_in // n_out, -(-(i + 1) * n_in // n_out)
        matrix[i, start:end] = 1 / (end - start)
    return matrix


def adaptive_avg(g, x, out):
    """Name of PyTorch's adaptive average pooling of x (N, C, *sizes) or (C, *sizes) to spatial sizes `out`."""
    spatial, sizes = len(out), x.shape[-len(out):]
    if all(o == 1 for o in out):
        return g.batched(x, spatial, lambda name: g.op("GlobalAveragePool", name))
    if all(n % o == 0 for n, o in zip(sizes, out)):
        kernel = [n // o for n, o in zip(sizes, out)]
        return g.batched(x, spatial, lambda name: g.op("AveragePool", name, kernel_shape=kernel, strides=kernel))
    if spatial > 2:
        g.unsupported(f"adaptive average pooling of sizes {sizes} to {out} (not divisible) over 3 dims")
    name = g.name(x)
    if spatial == 2:  # rows: (oh, H) @ x, broadcast over the leading dims
        name = g.op("MatMul", g.const(_averaging_matrix(sizes[0], out[0], x.dtype)), name)
    return g.op("MatMul", name, g.const(_averaging_matrix(sizes[-1], out[-1], x.dtype).T.copy()))


def _adaptive_avg_pool(spatial):
    def convert(g, call):
        return adaptive_avg(g, call.arguments["input"], call.result.shape[-spatial:])
    return convert


def _adaptive_max_pool(spatial):
    def convert(g, call):
        a = call.arguments
        if a["return_indices"]:
            g.unsupported("return_indices=True (PyTorch's flat indices have no ONNX equivalent)")
        x, out = a["input"], call.result.shape[-spatial:]
        sizes = x.shape[-spatial:]
        if all(o == 1 for o in out):
            return g.batched(x, spatial, lambda name: g.op("GlobalMaxPool", name))
        if any(n % o for n, o in zip(sizes, out)):
            g.unsupported(f"adaptive max pooling of sizes {sizes} to {out}: regions of unequal sizes")
        kernel = [n // o for n, o in zip(sizes, out)]
        return g.batched(x, spatial, lambda name: g.op("MaxPool", name, kernel_shape=kernel, strides=kernel))
    return convert


for _spatial in (1, 2):
    register_converter(f"adaptive_avg_pool{_spatial}d")(_adaptive_avg_pool(_spatial))
    register_converter(f"adaptive_max_pool{_spatial}d")(_adaptive_max_pool(_spatial))

"""Converters of interpolate and pixel_shuffle (fastnn/ops/resample.py): Resize and DepthToSpace.

Each interpolate mode maps to Resize attributes that reproduce PyTorch's sampling positions: nearest picks
floor(out * in/size) ('asymmetric', 'floor'), nearest-exact floor((out + 0.5) in/size) ('half_pixel',
'round_prefer_ceil'), the linear and cubic modes use 'align_corners' or 'pytorch_half_pixel' (cubic a = -0.75).
"""
import numpy as np

from fastnn.onnx._registry import register_converter
from fastnn.onnx.ops_pool import adaptive_avg

_MODES = {"nearest": dict(mode="nearest", nearest_mode="floor"),
          "nearest-exact": dict(mode="nearest", nearest_mode="round_prefer_ceil"),
          "linear": dict(mode="linear"), "bilinear": dict(mode="linear"), "trilinear": dict(mode="linear"),
          "bicubic": dict(mode="cubic", cubic_coeff_a=-0.75)}


@register_converter("interpolate")
def interpolate(g, call):
    a = call.arguments
    x, mode = a["input"], a["mode"]
    spatial = x.ndim - 2
    out = call.result.shape[2:]
    if mode == "area":
        return adaptive_avg(g, x, out)
    attributes = dict(_MODES[mode])
    if mode == "nearest":
        attributes["coordinate_transformation_mode"] = "asymmetric"
    elif mode == "nearest-exact":
        attributes["coordinate_transformation_mode"] = "half_pixel"
    else:
        attributes["coordinate_transformation_mode"] = "align_corners" if a["align_corners"] else "pytorch_half_pixel"
    if a["scale_factor"] is not None and not a["recompute_scale_factor"]:
        # PyTorch maps positions with the given factor (not out/in), and so does Resize given scales
        factors = a["scale_factor"]
        factors = tuple(factors) if isinstance(factors, (tuple, list)) else (factors,) * spatial
        scales = g.const(np.array((1.0, 1.0) + tuple(float(f) for f in factors), np.float32))
        return g.op("Resize", g.name(x), None, scales, **attributes)
    # sizes: the input's own N and C (dynamic batch stays dynamic), then the output's spatial sizes
    sizes = g.op("Concat", g.op("Shape", g.name(x), start=0, end=2), g.ints(out), axis=0)
    return g.op("Resize", g.name(x), None, None, sizes, **attributes)


@register_converter("pixel_shuffle")
def pixel_shuffle(g, call):
    x = call.arguments["input"]
    if x.ndim != 4:
        g.unsupported(f"pixel_shuffle is exported for 4-D inputs (DepthToSpace), got shape {tuple(x.shape)}")
    return g.op("DepthToSpace", g.name(x), blocksize=int(call.arguments["upscale_factor"]), mode="CRD")


@register_converter("grid_sample")
def grid_sample(g, call):
    """GridSample (opset 16; its 'bilinear' mode is named 'linear' from opset 20)."""
    a = call.arguments
    mode = "linear" if a["mode"] == "bilinear" and g.opset >= 20 else a["mode"]
    return g.op("GridSample", g.name(a["input"]), g.name(a["grid"]), mode=mode, padding_mode=a["padding_mode"],
                align_corners=int(bool(a["align_corners"])))

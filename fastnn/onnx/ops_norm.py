"""Converters of the normalization ops (fastnn/ops/norm.py). Export runs in eval mode, so batch norm reads its
running statistics (BatchNormalization); group norm is instance norm over (N, groups, -1) then the affine, as
ONNX's GroupNormalization changed meaning between opsets 18 and 21."""
import numpy as np

from fastnn.onnx._registry import register_converter


def _affine(g, tensor, shape, fill, dtype):
    """The name of an affine parameter, or a constant `fill` of `shape` when it is None."""
    return g.name(tensor) if tensor is not None else g.const(np.full(shape, fill, dtype))


@register_converter("batch_norm")
def batch_norm(g, call):
    a = call.arguments
    x = a["input"]
    if a["training"] or a["running_mean"] is None:
        g.unsupported("batch statistics (training=True or no running statistics) are not exported; export a "
                      "model in eval mode with running statistics")
    c = x.shape[1]
    return g.op("BatchNormalization", g.name(x), _affine(g, a["weight"], c, 1, x.dtype),
                _affine(g, a["bias"], c, 0, x.dtype), g.name(a["running_mean"]), g.name(a["running_var"]),
                epsilon=float(a["eps"]))


@register_converter("instance_norm")
def instance_norm(g, call):
    a = call.arguments
    x = a["input"]
    c = x.shape[1]
    scale, bias = _affine(g, a["weight"], c, 1, x.dtype), _affine(g, a["bias"], c, 0, x.dtype)
    if a["use_input_stats"]:
        return g.op("InstanceNormalization", g.name(x), scale, bias, epsilon=float(a["eps"]))
    if a["running_mean"] is None:
        g.unsupported("use_input_stats=False needs running_mean and running_var")
    return g.op("BatchNormalization", g.name(x), scale, bias, g.name(a["running_mean"]), g.name(a["running_var"]),
                epsilon=float(a["eps"]))


@register_converter("group_norm")
def group_norm(g, call):
    a = call.arguments
    x, groups = a["input"], int(a["num_groups"])
    grouped = g.op("Reshape", g.name(x), g.ints([0, groups, -1]))
    normed = g.op("InstanceNormalization", grouped, g.const(np.ones(groups, x.dtype)),
                  g.const(np.zeros(groups, x.dtype)), epsilon=float(a["eps"]))
    out = g.op("Reshape", normed, g.op("Shape", g.name(x)))
    channel_shape = g.ints((x.shape[1],) + (1,) * (x.ndim - 2))
    if a["weight"] is not None:
        out = g.op("Mul", out, g.op("Reshape", g.name(a["weight"]), channel_shape))
    if a["bias"] is not None:
        out = g.op("Add", out, g.op("Reshape", g.name(a["bias"]), channel_shape))
    return out


@register_converter("layer_norm")
def layer_norm(g, call):
    a = call.arguments
    x = a["input"]
    shape = (a["normalized_shape"],) if isinstance(a["normalized_shape"], int) else tuple(a["normalized_shape"])
    return g.op("LayerNormalization", g.name(x), _affine(g, a["weight"], shape, 1, x.dtype),
                None if a["bias"] is None else g.name(a["bias"]), axis=-len(shape), epsilon=float(a["eps"]))


@register_converter("local_response_norm")
def local_response_norm(g, call):
    a = call.arguments
    size = int(a["size"])
    if size % 2 == 0 or a["input"].ndim != 4:
        # PyTorch's window for an even size has one more channel before than after, ONNX's LRN one more after
        g.unsupported(f"LRN is exported for 4-D inputs and odd sizes, got size={size}, input shape "
                      f"{tuple(a['input'].shape)}")
    return g.op("LRN", g.name(a["input"]), size=size, alpha=float(a["alpha"]), beta=float(a["beta"]),
                bias=float(a["k"]))

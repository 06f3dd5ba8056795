"""Converters of the convolutions (fastnn/ops/conv.py, conv_nd.py): Conv and ConvTranspose, 1-3 spatial dims.

Arguments are normalised by the same helpers the ops validate them with, so 'same'/'valid' padding and int or
tuple forms mean what they mean to fastnn.
"""
from fastnn._validation import int_tuple, padding_pairs
from fastnn.onnx._registry import register_converter


def _conv(spatial):
    def convert(g, call):
        a = call.arguments
        x, weight, bias = a["input"], a["weight"], a["bias"]
        stride = int_tuple(call.name, "stride", a["stride"], spatial, 1)
        dilation = int_tuple(call.name, "dilation", a["dilation"], spatial, 1)
        pads = padding_pairs(call.name, a["padding"], weight.shape[2:], stride, dilation)
        inputs = [g.name(weight)] + ([] if bias is None else [g.name(bias)])
        return g.batched(x, spatial, lambda name: g.op(
            "Conv", name, *inputs, kernel_shape=list(weight.shape[2:]), strides=list(stride),
            dilations=list(dilation), group=int(a["groups"]), pads=[p[0] for p in pads] + [p[1] for p in pads]))
    return convert


def _conv_transpose(spatial):
    def convert(g, call):
        a = call.arguments
        x, weight, bias = a["input"], a["weight"], a["bias"]
        stride, padding, output_padding, dilation = (
            int_tuple(call.name, name, a[name], spatial, None)
            for name in ("stride", "padding", "output_padding", "dilation"))
        inputs = [g.name(weight)] + ([] if bias is None else [g.name(bias)])
        return g.batched(x, spatial, lambda name: g.op(
            "ConvTranspose", name, *inputs, kernel_shape=list(weight.shape[2:]), strides=list(stride),
            dilations=list(dilation), group=int(a["groups"]), pads=list(padding) * 2,
            output_padding=list(output_padding)))
    return convert


for _spatial in (1, 2, 3):
    register_converter(f"conv{_spatial}d")(_conv(_spatial))
for _spatial in (1, 2):
    register_converter(f"conv_transpose{_spatial}d")(_conv_transpose(_spatial))

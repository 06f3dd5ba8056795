"""Converters of the activation and softmax ops (fastnn/ops/activation.py).

GELU and Mish are ONNX operators only from opsets 20 and 18: below those they are written out from Erf/Tanh and
Softplus, as PyTorch's exporter does.
"""
import math

from fastnn.onnx._registry import register_converter
from fastnn.ops.activation import SELU_ALPHA, SELU_SCALE


def _x(g, call):
    return g.name(call.arguments["x"])


def _scalar(g, call, value):
    return g.value(value, call.arguments["x"].dtype)


@register_converter("relu")
def relu(g, call):
    return g.op("Relu", _x(g, call))


@register_converter("hardtanh")
def hardtanh(g, call):
    return g.op("Clip", _x(g, call), _scalar(g, call, call.arguments["min_val"]),
                _scalar(g, call, call.arguments["max_val"]))


@register_converter("relu6")
def relu6(g, call):
    return g.op("Clip", _x(g, call), _scalar(g, call, 0.0), _scalar(g, call, 6.0))


@register_converter("leaky_relu")
def leaky_relu(g, call):
    return g.op("LeakyRelu", _x(g, call), alpha=float(call.arguments["negative_slope"]))


@register_converter("prelu")
def prelu(g, call):
    x, weight = call.arguments["x"], call.arguments["weight"]
    slope = g.name(weight)
    if weight.numel() > 1 and x.ndim > 2:  # one slope per channel (dim 1): shape (C, 1, ..., 1) to broadcast
        slope = g.op("Reshape", slope, g.ints((weight.numel(),) + (1,) * (x.ndim - 2)))
    return g.op("PRelu", g.name(x), slope)


@register_converter("elu")
def elu(g, call):
    return g.op("Elu", _x(g, call), alpha=float(call.arguments["alpha"]))


@register_converter("selu")
def selu(g, call):
    return g.op("Selu", _x(g, call), alpha=SELU_ALPHA, gamma=SELU_SCALE)


@register_converter("gelu")
def gelu(g, call):
    x, approximate = _x(g, call), call.arguments["approximate"]
    if g.opset >= 20:
        return g.op("Gelu", x, approximate=approximate)
    if approximate == "tanh":  # 0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3)))
        cube = g.op("Mul", g.op("Mul", x, x), x)
        inner = g.op("Mul", g.op("Add", x, g.op("Mul", cube, _scalar(g, call, 0.044715))),
                     _scalar(g, call, math.sqrt(2 / math.pi)))
        gate = g.op("Tanh", inner)
    else:  # 0.5 x (1 + erf(x / sqrt(2)))
        gate = g.op("Erf", g.op("Div", x, _scalar(g, call, math.sqrt(2))))
    return g.op("Mul", g.op("Mul", x, g.op("Add", gate, _scalar(g, call, 1.0))), _scalar(g, call, 0.5))


@register_converter("sigmoid")
def sigmoid(g, call):
    return g.op("Sigmoid", _x(g, call))


@register_converter("tanh")
def tanh(g, call):
    return g.op("Tanh", _x(g, call))


@register_converter("silu")
def silu(g, call):
    x = _x(g, call)
    return g.op("Mul", x, g.op("Sigmoid", x))


@register_converter("swish")
def swish(g, call):
    x, beta = _x(g, call), call.arguments["beta"]
    return g.op("Mul", x, g.op("Sigmoid", g.op("Mul", x, g.value(beta, call.arguments["x"].dtype))))


@register_converter("softplus")
def softplus(g, call):
    """log(1 + exp(beta x)) / beta, and x itself where beta x > threshold (PyTorch's linear regime)."""
    x, beta, threshold = _x(g, call), call.arguments["beta"], call.arguments["threshold"]
    scaled = x if beta == 1 else g.op("Mul", x, _scalar(g, call, beta))
    smooth = g.op("Softplus", scaled)
    smooth = smooth if beta == 1 else g.op("Div", smooth, _scalar(g, call, beta))
    return g.op("Where", g.op("Greater", scaled, _scalar(g, call, threshold)), x, smooth)


@register_converter("mish")
def mish(g, call):
    x = _x(g, call)
    if g.opset >= 18:
        return g.op("Mish", x)
    return g.op("Mul", x, g.op("Tanh", g.op("Softplus", x)))


@register_converter("hardswish")
def hardswish(g, call):
    return g.op("HardSwish", _x(g, call))


@register_converter("hardsigmoid")
def hardsigmoid(g, call):
    return g.op("HardSigmoid", _x(g, call), alpha=1 / 6, beta=0.5)


@register_converter("softsign")
def softsign(g, call):
    return g.op("Softsign", _x(g, call))


@register_converter("celu")
def celu(g, call):
    return g.op("Celu", _x(g, call), alpha=float(call.arguments["alpha"]))


@register_converter("hardshrink")
def hardshrink(g, call):
    return g.op("Shrink", _x(g, call), lambd=float(call.arguments["lambd"]))


@register_converter("softshrink")
def softshrink(g, call):
    lambd = float(call.arguments["lambd"])
    return g.op("Shrink", _x(g, call), lambd=lambd, bias=lambd)


@register_converter("tanhshrink")
def tanhshrink(g, call):
    x = _x(g, call)
    return g.op("Sub", x, g.op("Tanh", x))


@register_converter("logsigmoid")
def logsigmoid(g, call):  # log(sigmoid(x)) = -softplus(-x); ONNX Runtime's Softplus is finite for large inputs
    return g.op("Neg", g.op("Softplus", g.op("Neg", _x(g, call))))


@register_converter("threshold")
def threshold(g, call):
    x = _x(g, call)
    return g.op("Where", g.op("Greater", x, _scalar(g, call, call.arguments["threshold"])), x,
                _scalar(g, call, call.arguments["value"]))


@register_converter("glu")
def glu(g, call):
    x = call.arguments["x"]
    a, b = g.op("Split", g.name(x), g.ints([x.shape[call.arguments["dim"] % x.ndim] // 2] * 2), outputs=2,
                axis=call.arguments["dim"] % x.ndim)
    return g.op("Mul", a, g.op("Sigmoid", b))


def _softmax(op_type):
    def convert(g, call):
        x = call.arguments["x"]
        return g.op(op_type, g.cast(g.name(x), x.dtype, call.result.dtype), axis=call.arguments["dim"] % x.ndim)
    return convert


register_converter("softmax")(_softmax("Softmax"))
register_converter("log_softmax")(_softmax("LogSoftmax"))

"""Converters of the element-wise arithmetic and linear-algebra ops (fastnn/ops/elementwise.py, linalg.py, math.py).

Operands are cast to the result's dtype first: fastnn promotes types as PyTorch does, ONNX operators do not.
"""
import math

from fastnn.onnx._registry import register_converter

_BINARY = {"add": "Add", "sub": "Sub", "mul": "Mul", "div": "Div", "pow": "Pow", "maximum": "Max",
           "minimum": "Min"}
_UNARY = {"neg": ("Neg", "x"), "exp": ("Exp", "x"), "log": ("Log", "x"), "sqrt": ("Sqrt", "x"), "abs": ("Abs", "x"),
          "erf": ("Erf", "input")}


def _binary(op_type):
    def convert(g, call):
        dtype = call.result.dtype
        return g.op(op_type, g.value(call.arguments["a"], dtype), g.value(call.arguments["b"], dtype))
    return convert


def _unary(op_type, arg):
    def convert(g, call):
        return g.op(op_type, g.name(call.arguments[arg]))
    return convert


for _name, _op_type in _BINARY.items():
    register_converter(_name)(_binary(_op_type))
for _name, (_op_type, _arg) in _UNARY.items():
    register_converter(_name)(_unary(_op_type, _arg))


@register_converter("clamp")
def clamp(g, call):
    x, low, high = call.arguments["x"], call.arguments["min"], call.arguments["max"]
    out = g.name(x)
    for bound, op_type in ((low, "Max"), (high, "Min")):
        if bound is not None:  # Max/Min broadcast a tensor bound (Clip takes scalars only)
            out = g.op(op_type, out, g.value(bound, x.dtype))
    return out


@register_converter("astype")
def astype(g, call):
    return g.cast(g.name(call.arguments["x"]), call.arguments["x"].dtype, call.result.dtype)


@register_converter("clone")
def clone(g, call):
    return g.op("Identity", g.name(call.arguments["x"]))


@register_converter("matmul")
def matmul(g, call):
    dtype = call.result.dtype
    return g.op("MatMul", g.value(call.arguments["a"], dtype), g.value(call.arguments["b"], dtype))


@register_converter("mm")
@register_converter("bmm")
def mm(g, call):
    return g.op("MatMul", g.name(call.arguments["input"]), g.name(call.arguments["mat2"]))


@register_converter("linear")
def linear(g, call):
    x, weight, bias = (call.arguments[k] for k in ("input", "weight", "bias"))
    if x.ndim == 2:
        return g.op("Gemm", g.name(x), g.name(weight), None if bias is None else g.name(bias), transB=1)
    out = g.op("MatMul", g.name(x), g.op("Transpose", g.name(weight), perm=[1, 0]))
    return out if bias is None else g.op("Add", out, g.name(bias))


def _floating_x(g, call):
    """The op's input, cast to the result's dtype (integers compute in float32, as fastnn does)."""
    x = call.arguments["input"]
    return g.cast(g.name(x), x.dtype, call.result.dtype)


def _unary_expression(build):
    def convert(g, call):
        x = _floating_x(g, call)
        return build(g, x, lambda v: g.value(v, call.result.dtype))
    return convert


for _name, _build in {
        "reciprocal": lambda g, x, c: g.op("Reciprocal", x),
        "rsqrt": lambda g, x, c: g.op("Reciprocal", g.op("Sqrt", x)),
        "log1p": lambda g, x, c: g.op("Log", g.op("Add", x, c(1.0))),
        "expm1": lambda g, x, c: g.op("Sub", g.op("Exp", x), c(1.0)),
        "square": lambda g, x, c: g.op("Mul", x, x),
        "sign": lambda g, x, c: g.op("Sign", x),
        "log2": lambda g, x, c: g.op("Div", g.op("Log", x), c(math.log(2))),
        "exp2": lambda g, x, c: g.op("Pow", c(2.0), x)}.items():
    register_converter(_name)(_unary_expression(_build))


@register_converter("einsum")
def einsum(g, call):
    operands = call.arguments["operands"]
    if len(operands) == 1 and isinstance(operands[0], (list, tuple)):
        operands = operands[0]
    dtype = call.result.dtype
    return g.op("Einsum", *(g.value(x, dtype) for x in operands), equation=call.arguments["equation"].replace(" ", ""))


@register_converter("det")
def det(g, call):
    return g.op("Det", g.name(call.arguments["A"]))

"""Converters of the element-wise arithmetic and linear-algebra ops (fastnn/ops/elementwise.py, linalg.py, math.py).

Operands are cast to the result's dtype first: fastnn promotes types as PyTorch does, ONNX operators do not.
"""
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

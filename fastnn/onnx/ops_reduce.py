"""Converters of the reductions (fastnn/ops/reduce.py)."""
import numpy as np

from fastnn.onnx._registry import register_converter
from fastnn.ops._util import normalize_dim


def _axes(x, dim):
    """dim (None, an int or a tuple) as a sorted list of axes, or None for all of them."""
    if dim is None:
        return None
    dims = dim if isinstance(dim, (tuple, list)) else (dim,)
    return sorted(normalize_dim(d, x.ndim) for d in dims)


def _reduction(op_type):
    def convert(g, call):
        a = call.arguments
        x = a["x"]
        name = g.cast(g.name(x), x.dtype, call.result.dtype)  # integer sums are int64, as in PyTorch
        return g.reduce(op_type, name, _axes(x, a["dim"]), a["keepdim"])
    return convert


for _name, _op_type in (("sum", "ReduceSum"), ("mean", "ReduceMean"), ("amax", "ReduceMax"), ("amin", "ReduceMin"),
                        ("logsumexp", "ReduceLogSumExp")):
    register_converter(_name)(_reduction(_op_type))


def _arg(g, op_type, x, dim, keepdim):
    if dim is None:  # over the flattened tensor
        return g.op(op_type, g.op("Reshape", g.name(x), g.ints([-1])), axis=0, keepdims=0)
    return g.op(op_type, g.name(x), axis=normalize_dim(dim, x.ndim), keepdims=int(keepdim))


def _extreme(op_type, arg_type):
    """max/min: over everything (one value), or along dim (values, indices)."""
    def convert(g, call):
        a = call.arguments
        x, dim, keepdim = a["x"], a["dim"], a["keepdim"]
        if dim is None:
            return g.reduce(op_type, g.name(x), None, False)
        return [g.reduce(op_type, g.name(x), [normalize_dim(dim, x.ndim)], keepdim), _arg(g, arg_type, x, dim, keepdim)]
    return convert


register_converter("max")(_extreme("ReduceMax", "ArgMax"))
register_converter("min")(_extreme("ReduceMin", "ArgMin"))
def _arg_converter(op_type):
    def convert(g, call):
        return _arg(g, op_type, call.arguments["x"], call.arguments["dim"], call.arguments["keepdim"])
    return convert


register_converter("argmax")(_arg_converter("ArgMax"))
register_converter("argmin")(_arg_converter("ArgMin"))


@register_converter("cumsum")
def cumsum(g, call):
    x = call.arguments["input"]
    name = g.cast(g.name(x), x.dtype, call.result.dtype)
    if x.ndim == 0:
        return g.op("Identity", name)
    axis = np.asarray(normalize_dim(call.arguments["dim"], x.ndim), np.int64)  # CumSum's axis is a 0-D tensor
    return g.op("CumSum", name, g.const(axis))

"""The converter registry: op name -> function(g, call) that emits the op's ONNX nodes."""

CONVERTERS = {}


class UnsupportedOperatorError(RuntimeError):
    """An op (or an op's arguments) that fastnn cannot express in ONNX; the message names the op and module."""


def register_converter(op_name):
    """Decorator registering `fn(g, call)` as the ONNX converter of op `op_name` (replacing any existing one).

    `call.arguments` maps the op's parameter names to the traced values, `call.result` is its result; `fn` emits
    nodes with `g.op(...)` (see fastnn/onnx/_graph.py) and returns the output value name, or a list of names for
    an op returning several tensors. A user op is traced once it is decorated with `fastnn._tracing.traced`.
    """
    if not isinstance(op_name, str) or not op_name:
        raise TypeError(f"register_converter: op_name must be a non-empty str, got {op_name!r}")

    def register(fn):
        CONVERTERS[op_name] = fn
        return fn
    return register

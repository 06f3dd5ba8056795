"""GraphBuilder: what a converter uses to emit ONNX nodes for one traced op call.

Values are named per fastnn tensor: a tensor made by a traced op is keyed by the autograd node it had when the
op being converted ran (an in-place op later rebinds the same Tensor object to a new node and value), any other
tensor by identity. A tensor the trace never made
is a parameter or buffer (an initializer under its state_dict name, or a graph input with export_params=False) or
a constant created inside forward (an initializer holding its value). `dynamic(t)` says which dims of a value
changed between the two traces of an export with dynamic_axes.
"""
import itertools

import numpy as np

from fastnn.onnx._registry import UnsupportedOperatorError
from fastnn.tensor import Tensor

INT64_MAX = np.iinfo(np.int64).max


def flat_tensors(value):
    """The Tensors in a (nested) tuple/list result, in order."""
    if isinstance(value, Tensor):
        return [value]
    if isinstance(value, (tuple, list)):
        return [t for v in value for t in flat_tensors(v)]
    return []


class GraphBuilder:
    def __init__(self, onnx, opset, export_params, param_names):
        self.onnx, self.opset, self.export_params = onnx, opset, export_params
        self.nodes, self.initializers, self.inputs = [], [], []
        self.call = None  # the OpCall being converted
        self._param_names = param_names  # id(tensor) -> state_dict name
        self._values = {}  # _key -> ONNX value name
        self._shapes_b = {}  # _key -> shape in the second trace
        self._counter = itertools.count()

    # ---- values ---------------------------------------------------------------------------------------------
    def _node(self, t):
        """t's autograd node when the current call ran (after the trace: its final one)."""
        return t._node if self.call is None else self.call.nodes.get(id(t), t._node)

    def _key(self, t):
        node = self._node(t)
        return ("node", id(node)) if node is not None else ("tensor", id(t))

    def bind(self, t, name, shape_b=None):
        self._values[self._key(t)] = name
        if shape_b is not None:
            self._shapes_b[self._key(t)] = tuple(shape_b)

    def note_twin(self, t, twin):
        """Record the second trace's shape of t (a tensor argument of the current call) if not known yet."""
        self._shapes_b.setdefault(self._key(t), tuple(twin.shape))

    def dynamic(self, t):
        """The dims of t whose size differs between the two traces (empty without dynamic_axes)."""
        other = self._shapes_b.get(self._key(t))
        return frozenset() if other is None else frozenset(i for i, (a, b) in enumerate(zip(t.shape, other))
                                                           if a != b)

    def is_constant(self, value):
        """Whether every Tensor in value (an argument dict, tuple or list) is a parameter, buffer or constant: no
        autograd node (inputs are traced requiring grad), bound to no graph value yet and, with
        export_params=False, not a parameter."""
        if isinstance(value, Tensor):
            return (self._node(value) is None and self._key(value) not in self._values
                    and (self.export_params or id(value) not in self._param_names))
        items = value.values() if isinstance(value, dict) else value if isinstance(value, (tuple, list)) else ()
        return all(self.is_constant(v) for v in items)

    def name(self, t):
        """The ONNX value name of Tensor t, adding an initializer for a parameter, buffer or constant."""
        key = self._key(t)
        if key in self._values:
            return self._values[key]
        if self._node(t) is not None:
            self.unsupported(f"it reads a tensor made by op '{self._node(t).name}', which fastnn cannot trace "
                             f"(decorate that op with fastnn._tracing.traced and register a converter for it)")
        if self.dynamic(t):
            self.unsupported(f"it reads a tensor of shape {tuple(t.shape)} created inside forward whose size "
                             f"depends on the input size (dims {sorted(self.dynamic(t))}); build it from the input "
                             f"with traced ops instead")
        array = np.ascontiguousarray(t.detach().numpy())
        if id(t) in self._param_names:
            name = self._param_names[id(t)]
            if not self.export_params:
                self.inputs.append(self.onnx.helper.make_tensor_value_info(
                    name, self.onnx.helper.np_dtype_to_tensor_dtype(array.dtype), array.shape))
                self._values[key] = name
                return name
            self.initializers.append(self.onnx.numpy_helper.from_array(array, name))
        else:
            name = self.const(array)
        self._values[key] = name
        return name

    def value(self, x, dtype):
        """The name of x, a Tensor (cast to `dtype` if it differs) or a Python/NumPy number (a constant of dtype)."""
        dtype = np.dtype(dtype)
        if isinstance(x, Tensor):
            return self.cast(self.name(x), x.dtype, dtype)
        return self.const(np.asarray(x, dtype))

    def const(self, array, hint="const"):
        name = f"{hint}_{next(self._counter)}"
        self.initializers.append(self.onnx.numpy_helper.from_array(np.asarray(array), name))
        return name

    def ints(self, values):
        return self.const(np.asarray(values, np.int64).reshape(-1))

    # ---- nodes ----------------------------------------------------------------------------------------------
    def op(self, op_type, *inputs, outputs=1, **attributes):
        """Add one node; inputs are value names (None for an omitted optional input). Returns the output name,
        or the list of them when outputs > 1."""
        where = self.call.module.replace(" ", "") if self.call is not None and self.call.module else "graph"
        index = next(self._counter)
        names = [f"{op_type}_{index}" + (f"_{k}" if outputs > 1 else "") for k in range(outputs)]
        self.nodes.append(self.onnx.helper.make_node(
            op_type, ["" if i is None else i for i in inputs], names, name=f"{where}/{op_type}_{index}",
            **{k: v for k, v in attributes.items() if v is not None}))
        return names[0] if outputs == 1 else names

    def cast(self, name, from_dtype, to_dtype):
        if np.dtype(from_dtype) == np.dtype(to_dtype):
            return name
        return self.op("Cast", name, to=self.onnx.helper.np_dtype_to_tensor_dtype(np.dtype(to_dtype)))

    def batched(self, x, spatial, emit):
        """emit(name of an (N, C, *spatial) value) -> output name, applied to x that may be unbatched (C, *spatial)."""
        if x.ndim == spatial + 2:
            return emit(self.name(x))
        return self.op("Squeeze", emit(self.op("Unsqueeze", self.name(x), self.ints([0]))), self.ints([0]))

    def reduce(self, op_type, name, axes, keepdims):
        """A Reduce* node over `axes` (None: all); axes are an input from opset 18 (ReduceSum: 13) on."""
        if op_type == "ReduceSum" or self.opset >= 18:
            return self.op(op_type, name, None if axes is None else self.ints(axes), keepdims=int(keepdims))
        return self.op(op_type, name, axes=None if axes is None else list(axes), keepdims=int(keepdims))

    def reshape_target(self, x, out):
        """The Reshape shape taking x to out's shape that keeps dynamic dims dynamic: a dim copied unchanged
        from the same position of x is 0 (copy), one other dynamic dim is -1, the rest are static sizes."""
        dyn_x, dyn_out = self.dynamic(x), self.dynamic(out)
        shape_b_x, shape_b_out = self._shapes_b.get(self._key(x)), self._shapes_b.get(self._key(out))
        target = []
        for i, n in enumerate(out.shape):
            if i not in dyn_out:
                target.append(n)
            elif i in dyn_x and x.shape[i] == n and shape_b_x[i] == shape_b_out[i]:
                target.append(0)
            elif -1 not in target:
                target.append(-1)
            else:
                self.unsupported(f"the target shape {tuple(out.shape)} has several dims that depend on the "
                                 f"dynamic axes in ways a Reshape cannot express")
        if 0 in target and 0 in out.shape:
            target = list(out.shape)  # a real size-0 dim: 0 would mean "copy"
        return self.ints(target)

    def unsupported(self, reason):
        call = self.call
        if call is None:  # writing the graph's outputs
            raise UnsupportedOperatorError(f"ONNX export of the model's outputs: {reason}")
        where = f" in module {call.module}" if call.module else ""
        raise UnsupportedOperatorError(f"ONNX export of op '{call.name}'{where}: {reason}")

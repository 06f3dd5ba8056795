"""fastnn.onnx.export: trace one forward pass over fastnn's ops, convert each op call, check, save.

With dynamic_axes the model is traced twice, the second time with every dynamic axis one longer; a dim that
differs between the two traces is dynamic. That tells a Reshape built from `x.size(0)` that its first size is
the batch, without a symbolic-shape pass over each op.
"""
import os

import numpy as np

from fastnn import autograd
from fastnn._tracing import Tracer
from fastnn.onnx._graph import GraphBuilder, flat_tensors
from fastnn.onnx._registry import CONVERTERS, UnsupportedOperatorError
from fastnn.tensor import Tensor

MIN_OPSET = 17


def _import_onnx():
    try:
        import onnx
    except ImportError:
        raise ImportError("fastnn.onnx.export needs the onnx package: pip install 'fastnn[onnx]'") from None
    return onnx


def _as_inputs(args):
    args = args if isinstance(args, (tuple, list)) else (args,)
    for i, a in enumerate(args):
        if not isinstance(a, Tensor):
            raise TypeError(f"export: args must be a Tensor or a tuple of Tensors, got {type(a).__name__} at "
                            f"position {i}")
    return tuple(args)


def _dynamic_axes(dynamic_axes, names):
    """{value name: {axis: dim name}} from torch's forms ({name: [axes]} or {name: {axis: dim name}})."""
    result = {}
    for name, axes in (dynamic_axes or {}).items():
        if name not in names:
            raise ValueError(f"export: dynamic_axes names {name!r}, which is not one of the input or output names "
                             f"{names}")
        if isinstance(axes, dict):
            result[name] = {int(a): str(d) for a, d in axes.items()}
        elif isinstance(axes, (list, tuple)):
            result[name] = {int(a): f"{name}_dim_{int(a)}" for a in axes}
        else:
            raise TypeError(f"export: dynamic_axes[{name!r}] must be a list of axes or a dict axis -> name, got "
                            f"{axes!r}")
    return result


def _trace(model, inputs):
    """Run model(*inputs) under a Tracer with module-path hooks; return (calls, output)."""
    tracer = Tracer()

    def leave(module, args, output):  # returns None: a forward hook's return value would replace the output
        tracer.modules.pop()
    handles = []
    for path, module in model.named_modules():
        label = f"{path} ({type(module).__name__})" if path else type(module).__name__
        handles.append(module.register_forward_pre_hook(lambda m, a, label=label: tracer.modules.append(label)))
        handles.append(module.register_forward_hook(leave))
    try:
        with tracer, autograd.enable_grad():
            output = model(*inputs)
    finally:
        for h in handles:
            h.remove()
    return tracer.calls, output


def _traced_inputs(inputs, grow=None):
    """Fresh leaf copies of the inputs (floating ones requiring grad, so that a tensor computed from them by an
    untraced op carries an autograd node and is caught); `grow` maps input index -> axes made one longer by
    repeating the first row (valid values, e.g. embedding indices)."""
    result = []
    for i, x in enumerate(inputs):
        array = x.detach().numpy()
        for axis in (grow or {}).get(i, ()):
            n = array.shape[axis]
            array = np.take(array, np.arange(n + 1) % n, axis=axis)
        t = Tensor(np.array(array), device=x.device)
        if t.dtype.kind == "f":
            t.requires_grad_(True)
        result.append(t)
    return result


def _pair(a, b, g):
    """Note the second trace's shape of every Tensor in argument a (b: the same argument there)."""
    if isinstance(a, Tensor) and isinstance(b, Tensor):
        g.note_twin(a, b)
    elif isinstance(a, (tuple, list)) and isinstance(b, (tuple, list)) and len(a) == len(b):
        for x, y in zip(a, b):
            _pair(x, y, g)


def _record(model, params, inputs, input_names, output_names, dynamic_axes):
    """Trace the model in eval mode (twice with dynamic axes); restore its mode and requires_grad flags after.
    Returns (traced inputs, calls, outputs, output names, dynamic axes, second-trace inputs and outputs)."""
    was_training = model.training
    grad_flags = [(p, p.requires_grad) for _, p in params]
    model.eval()
    try:
        for p, _ in grad_flags:  # only input-derived tensors get autograd nodes during the trace
            p.requires_grad = False
        traced_inputs = _traced_inputs(inputs)
        calls, output = _trace(model, traced_inputs)
        outputs = flat_tensors(output)
        output_names = list(output_names or [f"output_{i}" for i in range(len(outputs))])
        if len(output_names) != len(outputs):
            raise ValueError(f"export: {len(output_names)} output_names for {len(outputs)} outputs")
        axes = _dynamic_axes(dynamic_axes, input_names + output_names)
        grow = {i: list(axes[n]) for i, n in enumerate(input_names) if n in axes}
        twin_inputs = twin_outputs = None
        if grow:
            twin_inputs = _traced_inputs(inputs, grow)
            twin_calls, twin_output = _trace(model, twin_inputs)
            if [c.name for c in twin_calls] != [c.name for c in calls]:
                raise UnsupportedOperatorError("ONNX export: the model runs different ops when the dynamic axes "
                                               "change size, which one ONNX graph cannot express")
            for c, t in zip(calls, twin_calls):
                c.twin = t
            twin_outputs = flat_tensors(twin_output)
    finally:
        for p, flag in grad_flags:
            p.requires_grad = flag
        model.train(was_training)
    return traced_inputs, calls, outputs, output_names, axes, twin_inputs, twin_outputs


def _convert(g, calls, do_constant_folding):
    """Emit the nodes of every recorded call through its converter and name its results."""
    for call in calls:
        g.call = call
        if do_constant_folding and g.is_constant(call.arguments):
            continue  # its results become initializers holding their traced values when something reads them
        convert = CONVERTERS.get(call.name)
        if convert is None:
            g.unsupported(f"no converter is registered for it; add one with "
                          f"fastnn.onnx.register_converter({call.name!r})")
        if call.twin is not None:
            for key, value in call.arguments.items():
                _pair(value, call.twin.arguments[key], g)
            _pair(call.result, call.twin.result, g)  # converters read which result dims are dynamic
        names = convert(g, call)
        names = [names] if isinstance(names, str) else list(names)
        results = flat_tensors(call.result)
        if len(names) != len(results):
            g.unsupported(f"its converter returned {len(names)} outputs for {len(results)} result tensors")
        for t, name in zip(results, names):
            g.bind(t, name)
    g.call = None


def export(model, args, f, *, export_params=True, verbose=False, input_names=None, output_names=None,
           opset_version=MIN_OPSET, do_constant_folding=True, dynamic_axes=None, keep_initializers_as_inputs=False):
    """Export `model` (a fastnn Module, traced in eval mode) to ONNX file `f` (a path or a binary file object)
    with torch.onnx.export's arguments; returns the ModelProto, which onnx.checker.check_model(full_check=True)
    has accepted.

    args: the example input(s), a Tensor or a tuple of Tensors. dynamic_axes: {input/output name: [axes] or
    {axis: dim name}}. opset_version: 17 or newer. do_constant_folding: an op call that reads only parameters,
    buffers and constants is replaced by its traced result (export_params=False keeps parameters as inputs, so
    nothing reading them is folded); keep_initializers_as_inputs=True also lists initializers as graph inputs.
    """
    onnx = _import_onnx()
    if not isinstance(opset_version, int) or not MIN_OPSET <= opset_version <= onnx.defs.onnx_opset_version():
        raise ValueError(f"export: opset_version must be an int from {MIN_OPSET} to "
                         f"{onnx.defs.onnx_opset_version()} (this onnx), got {opset_version!r}")
    inputs = _as_inputs(args)
    input_names = list(input_names or [f"input_{i}" for i in range(len(inputs))])
    if len(input_names) != len(inputs):
        raise ValueError(f"export: {len(input_names)} input_names for {len(inputs)} inputs")

    params = list(model.named_parameters()) + list(model.named_buffers())
    traced_inputs, calls, outputs, output_names, axes, twin_inputs, twin_outputs = _record(
        model, params, inputs, input_names, output_names, dynamic_axes)

    g = GraphBuilder(onnx, opset_version, export_params, {id(p): name for name, p in params})
    dim_names = {}  # (size in trace 1, size in trace 2) -> symbolic dim name, to reuse input dim names on outputs
    graph_inputs = []
    for i, (x, name) in enumerate(zip(traced_inputs, input_names)):
        shape = list(x.shape)
        for axis, dim in axes.get(name, {}).items():
            dim_names[(x.shape[axis], twin_inputs[i].shape[axis])] = dim
            shape[axis] = dim
        g.bind(x, name, None if twin_inputs is None else twin_inputs[i].shape)
        graph_inputs.append(onnx.helper.make_tensor_value_info(
            name, onnx.helper.np_dtype_to_tensor_dtype(x.dtype), shape))

    _convert(g, calls, do_constant_folding)

    graph_outputs = []
    taken = {v.name for v in graph_inputs} | {i.name for i in g.initializers}
    for i, (t, name) in enumerate(zip(outputs, output_names)):
        value = g.name(t)
        # an output must be a node's own output under its own name (a model may return an input or a weight)
        g.op("Identity", value)
        g.nodes[-1].output[0] = name
        if name in taken:
            raise ValueError(f"export: output name {name!r} is already the name of an input or initializer")
        shape = list(t.shape)
        if twin_outputs is not None:
            for axis, (a, b) in enumerate(zip(t.shape, twin_outputs[i].shape)):
                if a != b:
                    shape[axis] = axes.get(name, {}).get(axis) or dim_names.get((a, b), f"{name}_dim_{axis}")
        graph_outputs.append(onnx.helper.make_tensor_value_info(
            name, onnx.helper.np_dtype_to_tensor_dtype(t.dtype), shape))

    if keep_initializers_as_inputs:
        graph_inputs += [onnx.helper.make_tensor_value_info(i.name, i.data_type, i.dims) for i in g.initializers]
    graph = onnx.helper.make_graph(g.nodes, type(model).__name__, graph_inputs + g.inputs, graph_outputs,
                                   g.initializers)
    model_proto = onnx.helper.make_model(graph, producer_name="fastnn",
                                         opset_imports=[onnx.helper.make_opsetid("", opset_version)])
    # the oldest IR version the opset allows (make_model writes the newest, which older runtimes refuse)
    model_proto.ir_version = onnx.helper.find_min_ir_version_for(model_proto.opset_import)
    onnx.checker.check_model(model_proto, full_check=True)
    if verbose:
        print(onnx.helper.printable_graph(model_proto.graph))
    if isinstance(f, (str, os.PathLike)):
        onnx.save(model_proto, os.fspath(f))
    else:
        f.write(model_proto.SerializeToString())
    return model_proto

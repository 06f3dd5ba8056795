"""Recording op calls for exporters (fastnn.onnx): `@traced` above a public op function in fastnn/ops.

Outside an export a traced op costs a wrapper call and one global read (~50-150 ns): the wrapper is generated with
the op's own signature, because a generic `*args, **kwargs` wrapper costs ~250-320 ns per call, several percent
of a small op. While a `Tracer` is active it records the outermost traced call (op name, arguments by
parameter name with defaults filled in, result, the module being run) and lets the ops called inside it run
unrecorded, so a converter sees `linear`, not the matmul and add it may be made of.
"""
import functools
import inspect

_active = None  # the Tracer recording now, or None


def traced(fn):
    """Decorator: record calls of op `fn`, under its __name__, while a Tracer is active."""
    # the wrapper's parameters; its call of fn (positional part, keyword part); the keyword part as dict items
    params, positional, call_keywords, keywords, defaults = [], [], [], [], {}
    for p in inspect.signature(fn).parameters.values():
        if p.kind is p.POSITIONAL_ONLY:
            raise TypeError(f"traced: positional-only parameters are not supported ({fn.__name__})")
        if p.kind is p.VAR_POSITIONAL:
            params.append("*" + p.name)
            positional.append("*" + p.name)
            continue
        if p.kind is p.VAR_KEYWORD:
            params.append("**" + p.name)
            call_keywords.append("**" + p.name)
            keywords.append("**" + p.name)
            continue
        if p.kind is p.KEYWORD_ONLY and not any(s.startswith("*") for s in params):
            params.append("*")
        if p.default is p.empty:
            params.append(p.name)
        else:
            defaults["_d_" + p.name] = p.default
            params.append(f"{p.name}=_d_{p.name}")
        if p.kind is p.KEYWORD_ONLY:
            call_keywords.append(f"{p.name}={p.name}")
            keywords.append(f"{p.name!r}: {p.name}")
        else:
            positional.append(p.name)
    names = [p.lstrip("*").split("=")[0] for p in params if p != "*"]
    args = ", ".join(positional + call_keywords)
    # No closure over the arguments in the wrapper: captured arguments would become cells, costing ~150 ns per call.
    source = (f"def _make({', '.join(['_fn', '_name'] + list(defaults))}):\n"
              f"    def {fn.__name__}({', '.join(params)}):\n"
              f"        if _active is None:\n"
              f"            return _fn({args})\n"
              f"        return _active.call(_name, _fn, ({''.join(a + ', ' for a in positional)}), "
              f"{{{', '.join(keywords)}}}, {{{', '.join(f'{n!r}: {n}' for n in names)}}})\n"
              f"    return {fn.__name__}\n")
    namespace = {}
    # globals: `_active` is read from this module; the file name tells a traceback where the wrapper comes from
    exec(compile(source, f"<traced wrapper of {fn.__module__}.{fn.__name__}>", "exec"), globals(), namespace)
    return functools.update_wrapper(namespace["_make"](fn, fn.__name__, **defaults), fn)


class OpCall:
    """One recorded op call: `arguments` maps each parameter name to its value; `twin` is the same call in a
    second trace at other input sizes (or None)."""
    __slots__ = ("name", "arguments", "result", "module", "nodes", "twin")

    def __init__(self, name, arguments, result, module, nodes):
        self.name, self.arguments, self.result, self.module = name, arguments, result, module
        self.nodes = nodes  # id(tensor) -> its autograd node at the call (an in-place op later rebinds it)
        self.twin = None


def _note_nodes(value, nodes):
    if hasattr(value, "_node"):
        nodes[id(value)] = value._node
    elif isinstance(value, (tuple, list)):
        for v in value:
            _note_nodes(v, nodes)


class Tracer:
    """Context manager that records the outermost traced op calls into `self.calls`; `self.modules` is the stack
    of module paths that the exporter's forward hooks maintain, for error messages."""

    def __init__(self):
        self.calls = []
        self.modules = []
        self._depth = 0

    def call(self, name, fn, args, kwargs, arguments):
        if self._depth:
            return fn(*args, **kwargs)
        # lists are copied: a model may append to a list it passed (DenseNet's features list)
        arguments = {k: list(v) if type(v) is list else v for k, v in arguments.items()}
        nodes = {}
        _note_nodes(list(arguments.values()), nodes)
        self._depth += 1
        try:
            result = fn(*args, **kwargs)
        finally:
            self._depth -= 1
        _note_nodes(result, nodes)
        self.calls.append(OpCall(name, arguments, result, self.modules[-1] if self.modules else "", nodes))
        return result

    def __enter__(self):
        global _active
        if _active is not None:
            raise RuntimeError("a trace is already running (exports cannot nest)")
        _active = self
        return self

    def __exit__(self, *exc):
        global _active
        _active = None

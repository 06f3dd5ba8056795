"""Autodiff: graph nodes, an iterative topological backward pass, grad mode, gradcheck; the forward-mode tangent
propagation that fastnn.autograd.forward_ad drives.

Each op builds its output with `make_result(data, inputs, backward, tangent=...)`, where `backward(grad_out)`
returns one gradient array (or None) per input. The closure keeps what the backward pass needs; it is dropped after
`backward()` so intermediate buffers are freed unless `retain_graph=True`. `tangent(*input_tangents)` (Tensors,
None for an input without one) returns the output's tangent built from fastnn ops, so that it is itself recorded
by reverse mode; it runs only while a dual level is entered.

Every tensor carries a version counter that in-place edits bump. A node records the versions of the tensors its
backward reads (`saved`: by default all inputs, plus the output when `saves_output`), and backward raises
PyTorch's error if one has changed since, instead of computing a wrong gradient.
"""
import contextlib
import threading
import weakref

class _GradState(threading.local):
    enabled = True  # each thread starts in grad mode; a class default, so reading it never raises AttributeError


_state = _GradState()


def is_grad_enabled():
    return _state.enabled


class set_grad_enabled:
    """set_grad_enabled(mode) switches grad mode now; used in a `with` block, the previous mode returns at exit."""

    def __init__(self, mode):
        self._prev = is_grad_enabled()
        _state.enabled = bool(mode)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        _state.enabled = self._prev
        return False


class _GradMode(contextlib.ContextDecorator):
    _mode = True

    def __new__(cls, func=None):
        if func is None:
            return super().__new__(cls)
        return cls()(func)  # bare `@no_grad` without parentheses, as PyTorch allows

    def _recreate_cm(self):
        # A fresh instance per decorated call: nested and recursive calls each restore their own previous mode.
        return type(self)()

    def __enter__(self):
        self._prev = is_grad_enabled()
        _state.enabled = self._mode
        return self

    def __exit__(self, *exc):
        _state.enabled = self._prev
        return False


class no_grad(_GradMode):
    """Context manager / decorator: ops inside record no graph."""
    _mode = False


class enable_grad(_GradMode):
    """Context manager / decorator: re-enable graph recording inside a no_grad region."""
    _mode = True


class Node:
    """One recorded op: the inputs it read, the closure that maps grad_out to input grads, the
    (version counter, version) of each tensor the closure reads, and whether the closure's gradient arrays are
    new ones that nothing else references (`fresh`: a leaf may then take one as its .grad without a copy)."""
    __slots__ = ("inputs", "backward", "name", "saved", "fresh")

    def __init__(self, inputs, backward, name, saved, fresh=False):
        self.inputs = inputs
        self.backward = backward
        self.name = name
        self.saved = saved
        self.fresh = fresh


def make_result(data, inputs, backward, name=None, saved=None, saves_output=False, shares_storage=None,
                tangent=None, fresh_grads=False):
    """Wrap `data` (an array of the inputs' backend) in a Tensor; record a node when grad mode is on and an input
    requires grad. `saved`: the inputs whose values `backward` reads (default: all); `saves_output`: it reads the
    output too; `shares_storage`: the input whose storage the output views (it then shares its version counter);
    `tangent`: the op's forward-mode rule (see the module docstring), called only inside a dual level;
    `fresh_grads`: `backward` returns newly allocated arrays, each referenced by nothing else (not grad_out, not a
    saved array, not one another), so a leaf's first gradient is taken without a copy, as PyTorch steals it."""
    backend = inputs[0]._backend
    for t in inputs:
        if t._backend is not backend:
            raise RuntimeError(f"expected all tensors on the same device, got {backend.device} and {t.device}")
    counter = None if shares_storage is None else shares_storage._version_counter
    # a plain loop, not any(generator): this runs once per op
    if _state.enabled and _any_requires_grad(inputs):
        kept = inputs if saved is None else saved
        node = Node(inputs, backward, name or _op_name(backward),
                    [(t._version_counter, t._version_counter[0]) for t in kept], fresh_grads)
        out = Tensor._wrap(data, backend, node, counter)
        out._view_of = shares_storage
        if saves_output:
            node.saved.append((out._version_counter, out._version_counter[0]))
    else:
        out = Tensor._wrap(data, backend, None, counter)
    if _forward.visible:  # the only cost of forward mode outside a dual level
        propagate_tangents(out, inputs, tangent, name or _op_name(backward))
    return out


def _any_requires_grad(inputs):
    for t in inputs:
        if t.requires_grad:
            return True
    return False


def _op_name(backward):
    """The name of an op that passed none: its backward's qualified name up to the first dot."""
    return getattr(backward, "__qualname__", "op").split(".")[0]


class _ForwardLevels:
    """The dual levels entered (innermost last) and those whose tangents ops propagate now: a tangent rule runs
    with its own level hidden, so the ops inside it compute values (and tangents of the other levels) instead of
    recursing into the same level."""
    __slots__ = ("entered", "visible", "duals")

    def __init__(self):
        self.entered = []    # level ids, innermost last; ids are never reused
        self.visible = ()
        self.duals = {}      # level -> weak references to the tensors holding a tangent at it (cleared on exit)


_forward = _ForwardLevels()


@contextlib.contextmanager
def hidden_level(level):
    """Ops inside ignore (and give no) tangents of `level`."""
    previous = _forward.visible
    _forward.visible = tuple(v for v in previous if v != level)
    try:
        yield
    finally:
        _forward.visible = previous


def set_tangent(tensor, level, tangent):
    tangents = dict(tensor._fw_tangents) if tensor._fw_tangents else {}
    tangents[level] = tangent
    tensor._fw_tangents = tangents
    _forward.duals[level].append(weakref.ref(tensor))


def propagate_tangents(out, inputs, rule, name):
    """Give `out` a tangent at every visible level where an input has one, by the op's rule."""
    for level in _forward.visible:
        tangents = [t._fw_tangents.get(level) if t._fw_tangents else None for t in inputs]
        if all(v is None for v in tangents) or out.dtype.kind != "f":
            continue
        if rule is None:
            raise NotImplementedError(f"forward-mode AD: the op '{name}' has no tangent rule; it cannot take a dual "
                                      f"tensor (use reverse mode, or compose it from ops that have one)")
        with hidden_level(level):
            tangent = rule(*tangents)
            if tangent.shape != out.shape:  # e.g. the tangent of a + b when only the smaller operand is dual
                tangent = tangent.expand(out.shape)
            if tangent.dtype != out.dtype:  # e.g. a float64 loss weight with a float32 input: the output's dtype
                tangent = tangent.to(out.dtype)
        set_tangent(out, level, tangent)


def _check_versions(node):
    for counter, version in node.saved:
        if counter[0] != version:
            raise RuntimeError(
                f"one of the variables needed for gradient computation has been modified by an inplace operation: "
                f"the {node.name} node's saved tensor is at version {counter[0]}; expected version {version} "
                f"instead. Hint: an in-place edit (+=, [...] =, an optimizer step) happened between forward and "
                f"backward")


def unbroadcast(grad, shape):
    """Sum `grad` over the axes NumPy broadcasting added or stretched to reach it from `shape`."""
    if grad.shape == tuple(shape):
        return grad
    extra = grad.ndim - len(shape)
    axes = tuple(range(extra)) + tuple(
        extra + i for i, n in enumerate(shape) if n == 1 and grad.shape[extra + i] != 1)
    if axes:
        grad = grad.sum(axis=axes, keepdims=True)
    return grad.reshape(shape)


def _topological_order(roots, wanted=None):
    """Non-leaf tensors reachable from roots, each after every tensor that consumes it (iterative DFS); and, for
    each leaf with hooks (among `wanted` ids when given), [leaf, number of graph edges into it, gradient so far]."""
    order, visited, hooked = [], set(), {}
    for root in roots:
        if root._node is None:
            _count_hooked_edge(hooked, root, wanted)
    stack = [(root, False) for root in reversed(roots) if root._node is not None]
    while stack:
        tensor, expanded = stack.pop()
        if expanded:
            order.append(tensor)
            continue
        # Mark on expansion, not on push: a tensor pushed early may be reached again through a longer path,
        # and it must be emitted only after every input below that path.
        if id(tensor) in visited:
            continue
        visited.add(id(tensor))
        stack.append((tensor, True))
        for parent in tensor._node.inputs:
            if parent._node is not None:
                if id(parent) not in visited:
                    stack.append((parent, False))
            elif parent._hooks is not None:
                _count_hooked_edge(hooked, parent, wanted)
    order.reverse()
    return order, hooked


def _count_hooked_edge(hooked, leaf, wanted):
    if leaf._hooks is not None and leaf.requires_grad and (wanted is None or id(leaf) in wanted):
        hooked.setdefault(id(leaf), [leaf, 0, None])[1] += 1


def _seed(root, gradient, what):
    """The starting gradient array for `root`: ones for a one-element output, else `gradient` checked."""
    if not root.requires_grad:
        raise RuntimeError(f"{what} does not require grad and does not have a grad_fn")
    backend = root._backend
    if gradient is None:
        if root._data.size != 1:
            raise RuntimeError(f"grad can be implicitly created only for scalar outputs, got shape {root.shape}")
        return backend.xp.ones_like(root._data)
    if isinstance(gradient, Tensor):
        if gradient._backend is not backend:
            raise RuntimeError(f"gradient is on {gradient.device} but the tensor is on {root.device}")
        gradient = gradient._data
    grad = backend.asarray(gradient, dtype=root.dtype)
    if grad.shape != root.shape:
        raise ValueError(f"gradient shape {grad.shape} does not match tensor shape {root.shape}")
    return grad


def _run_backward(roots, seeds, retain_graph, leaf_sink, captured=None, wanted=None):
    """Propagate `seeds` (one array per root) through the graph below `roots`. Leaf gradients go to
    leaf_sink(tensor, grad, owned) (`wanted`: the ids of the leaves it uses, None for all; `owned`: see
    Node.fresh); for the non-leaf tensors whose ids are keys of `captured`, their total gradient is stored there
    too. A tensor's hooks (register_hook) see its
    total gradient and may replace it: a non-leaf's when it is reached, a leaf's once every edge into it is done."""
    order, hooked = _topological_order(roots, wanted)
    grads = {}
    for root, grad in zip(roots, seeds):
        if root._node is None:
            if hooked and id(root) in hooked:
                _deliver_hooked(hooked, root, grad, leaf_sink)
            else:
                leaf_sink(root, grad)
        else:
            key = id(root)
            grads[key] = grads[key] + grad if key in grads else grad
    for tensor in order:
        node = tensor._node
        g = grads.pop(id(tensor), None)
        if g is None:
            if hooked:  # the edges of a node that gets no gradient still count as done for the leaves below
                for parent in node.inputs:
                    if id(parent) in hooked:
                        _deliver_hooked(hooked, parent, None, leaf_sink)
            continue
        if tensor._hooks is not None:
            g = _run_hooks(tensor, g)
        if captured is not None and id(tensor) in captured:
            captured[id(tensor)] = g
        if node.backward is None:
            raise RuntimeError(
                f"trying to backward through the graph a second time (through {node.name}): its saved buffers "
                "were freed after the first backward; pass retain_graph=True to the first backward() call")
        _check_versions(node)
        if tensor._retains_grad:
            _accumulate_leaf(tensor, g)
        input_grads = node.backward(g)
        inputs = node.inputs
        if not retain_graph:
            # Drop the saved buffers and the references to input tensors: a kept output (e.g. a logged loss)
            # must not keep every intermediate activation of its graph alive.
            node.backward, node.inputs = None, ()
        for parent, pg in zip(inputs, input_grads):
            if hooked and id(parent) in hooked:
                _deliver_hooked(hooked, parent, pg, leaf_sink)
            elif pg is None or not parent.requires_grad:
                continue
            elif parent._node is None:
                leaf_sink(parent, pg, node.fresh)
            else:
                key = id(parent)
                grads[key] = parent._backend.binary("add", grads[key], pg) if key in grads else pg


def _deliver_hooked(hooked, leaf, g, leaf_sink):
    """One edge into a leaf with hooks is done: sum its gradient; after the last edge, run the hooks on the total
    and hand it to the sink (as PyTorch runs a leaf's hooks once, on its whole gradient)."""
    entry = hooked[id(leaf)]
    if g is not None:
        entry[2] = g if entry[2] is None else entry[2] + g
    entry[1] -= 1
    if entry[1] == 0:
        del hooked[id(leaf)]
        if entry[2] is not None:
            leaf_sink(leaf, _run_hooks(leaf, entry[2]))


class _TensorHooks:
    """A tensor's hooks, by handle id in registration order: `pre` (register_hook, hook(grad) -> new grad or
    None) and `post` (register_post_accumulate_grad_hook, hook(tensor) after .grad is accumulated)."""
    __slots__ = ("pre", "post")

    def __init__(self):
        self.pre, self.post = {}, {}


def _run_hooks(tensor, g):
    for hook in list(tensor._hooks.pre.values()):
        with no_grad():  # as in PyTorch, hooks run in no_grad mode
            new = hook(Tensor._wrap(g, tensor._backend))
        if new is None:
            continue
        if not isinstance(new, Tensor):
            raise TypeError(f"a tensor hook must return a Tensor or None, got {type(new).__name__}")
        if new.shape != tensor.shape:
            raise RuntimeError(f"hook '{getattr(hook, '__name__', 'hook')}' has changed the size of value: "
                               f"expected {tensor.shape}, got {new.shape}")
        if new.dtype != tensor.dtype:
            raise RuntimeError(f"hook '{getattr(hook, '__name__', 'hook')}' has changed the type of value: "
                               f"expected {tensor.dtype}, got {new.dtype}")
        if new._backend is not tensor._backend:
            raise RuntimeError(f"a hook returned a gradient on {new.device} for a tensor on {tensor.device}")
        g = new._data
    return g


def backward(root, gradient=None, retain_graph=False, inputs=None):
    """Accumulate d(root)/d(leaf) into every leaf's .grad (only into `inputs`' when given)."""
    seed = _seed(root, gradient, "element 0 of tensors")
    if inputs is None:
        _run_backward([root], [seed], retain_graph, _accumulate_leaf)
        return
    inputs = [inputs] if isinstance(inputs, Tensor) else list(inputs)
    found = grad([root], inputs, [seed], retain_graph=retain_graph, allow_unused=True)
    for t, g in zip(inputs, found):
        if g is not None:
            _accumulate_leaf(t, g._data)


def grad(outputs, inputs, grad_outputs=None, retain_graph=None, create_graph=False, allow_unused=False):
    """torch.autograd.grad: the gradients of `outputs` with respect to `inputs` (a tuple of Tensors), weighted by
    `grad_outputs`, without touching any .grad. retain_graph defaults to create_graph, as in PyTorch."""
    if create_graph:
        raise NotImplementedError("autograd.grad(create_graph=True): fastnn's backward closures compute on arrays, "
                                  "so gradients of gradients are not recorded")
    outputs = [outputs] if isinstance(outputs, Tensor) else list(outputs)
    inputs = [inputs] if isinstance(inputs, Tensor) else list(inputs)
    for i, t in enumerate(inputs):
        if not isinstance(t, Tensor):
            raise TypeError(f"autograd.grad: inputs[{i}] must be a Tensor, got {type(t).__name__}")
        if not t.requires_grad:
            raise RuntimeError(f"autograd.grad: inputs[{i}] does not require grad")
    if grad_outputs is None:
        grad_outputs = [None] * len(outputs)
    elif isinstance(grad_outputs, Tensor):
        grad_outputs = [grad_outputs]
    if len(grad_outputs) != len(outputs):
        raise ValueError(f"autograd.grad: got {len(grad_outputs)} grad_outputs for {len(outputs)} outputs")
    seeds = [_seed(o, g, f"output {i}") for i, (o, g) in enumerate(zip(outputs, grad_outputs))]
    leaf_ids = {id(t) for t in inputs if t._node is None}
    captured = {id(t): None for t in inputs if t._node is not None}
    leaf_grads = {}

    def sink(tensor, g, owned=False):
        if id(tensor) in leaf_ids:
            key = id(tensor)
            leaf_grads[key] = leaf_grads[key] + g if key in leaf_grads else g
    _run_backward(outputs, seeds, bool(retain_graph), sink, captured, leaf_ids)
    result = []
    for i, t in enumerate(inputs):
        g = leaf_grads.get(id(t)) if t._node is None else captured.get(id(t))
        if g is None and not allow_unused:
            raise RuntimeError(f"autograd.grad: inputs[{i}] was not used in the graph of the outputs; pass "
                               f"allow_unused=True to get None for it")
        result.append(None if g is None else Tensor._wrap(g.astype(t.dtype, copy=True), t._backend))
    return tuple(result)


def _accumulate_leaf(tensor, g, owned=False):
    """Add g to tensor.grad. `owned`: nothing else references g, so it may become the .grad array itself."""
    if g.shape != tensor.shape:
        raise RuntimeError(f"internal error: gradient shape {g.shape} != tensor shape {tensor.shape}")
    if tensor.grad is None:
        # Otherwise own a copy: `g` may be shared with other branches of the graph, or be the caller's array.
        kept = g if owned and g.dtype == tensor.dtype else g.astype(tensor.dtype, copy=True)
        tensor.grad = Tensor._wrap(kept, tensor._backend)
    else:
        tensor.grad._data = tensor._backend.accumulate(tensor.grad._data, g)
    if tensor._hooks is not None:
        with no_grad():  # e.g. a fused optimizer step `p.add_(p.grad, alpha=-lr)` on a leaf that requires grad
            for hook in list(tensor._hooks.post.values()):
                hook(tensor)


# Bottom imports: fastnn/__init__.py imports this module first, so tensor.py finds it initialised.
from fastnn.tensor import Tensor  # noqa: E402
from fastnn.gradcheck import gradcheck  # noqa: E402,F401  (autograd.gradcheck, as in PyTorch)
from fastnn.autograd import forward_ad  # noqa: E402,F401  (autograd.forward_ad, as in PyTorch)

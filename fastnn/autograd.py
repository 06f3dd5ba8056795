"""Reverse-mode autodiff: graph nodes, an iterative topological backward pass, grad mode, gradcheck.

Each op builds its output with `make_result(data, inputs, backward)`, where `backward(grad_out)` returns one
gradient array (or None) per input. The closure keeps what the backward pass needs; it is dropped after
`backward()` so intermediate buffers are freed unless `retain_graph=True`.
"""
import contextlib
import threading

import numpy as np

_state = threading.local()


def is_grad_enabled():
    return getattr(_state, "enabled", True)


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
    """One recorded op: the inputs it read and the closure that maps grad_out to input grads."""
    __slots__ = ("inputs", "backward", "name")

    def __init__(self, inputs, backward, name):
        self.inputs = inputs
        self.backward = backward
        self.name = name


def make_result(data, inputs, backward, name=None):
    """Wrap `data` in a Tensor; record a node when grad mode is on and an input requires grad."""
    device = inputs[0].device if inputs else "cpu"
    for t in inputs:
        if t.device != device:
            raise RuntimeError(f"expected all tensors on the same device, got {device} and {t.device}")
    if is_grad_enabled() and any(t.requires_grad for t in inputs):
        node = Node(inputs, backward, name or getattr(backward, "__qualname__", "op").split(".")[0])
        return Tensor(data, requires_grad=True, device=device, _node=node)
    return Tensor(data, device=device)


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


def _topological_order(root):
    """Non-leaf tensors reachable from root, each after every tensor that consumes it (iterative DFS)."""
    order, visited = [], set()
    stack = [(root, False)]
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
            if parent._node is not None and id(parent) not in visited:
                stack.append((parent, False))
    order.reverse()
    return order


def backward(root, gradient=None, retain_graph=False):
    if not root.requires_grad:
        raise RuntimeError("element 0 of tensors does not require grad and does not have a grad_fn")
    if gradient is None:
        if root.data.size != 1:
            raise RuntimeError(f"grad can be implicitly created only for scalar outputs, got shape {root.shape}")
        grad = np.ones_like(root.data)
    else:
        grad = np.asarray(gradient.data if isinstance(gradient, Tensor) else gradient, dtype=root.dtype)
        if grad.shape != root.shape:
            raise ValueError(f"gradient shape {grad.shape} does not match tensor shape {root.shape}")
    if root._node is None:
        _accumulate_leaf(root, grad)
        return
    grads = {id(root): grad}
    for tensor in _topological_order(root):
        node = tensor._node
        g = grads.pop(id(tensor), None)
        if g is None:
            continue
        if node.backward is None:
            raise RuntimeError(
                f"trying to backward through the graph a second time (through {node.name}): its saved buffers "
                "were freed after the first backward; pass retain_graph=True to the first backward() call")
        if tensor._retains_grad:
            _accumulate_leaf(tensor, g)
        input_grads = node.backward(g)
        inputs = node.inputs
        if not retain_graph:
            # Drop the saved buffers and the references to input tensors: a kept output (e.g. a logged loss)
            # must not keep every intermediate activation of its graph alive.
            node.backward, node.inputs = None, ()
        for parent, pg in zip(inputs, input_grads):
            if pg is None or not parent.requires_grad:
                continue
            if parent._node is None:
                _accumulate_leaf(parent, pg)
            else:
                key = id(parent)
                grads[key] = grads[key] + pg if key in grads else pg


def _accumulate_leaf(tensor, g):
    if g.shape != tensor.shape:
        raise RuntimeError(f"internal error: gradient shape {g.shape} != tensor shape {tensor.shape}")
    if tensor.grad is None:
        # Own a fresh array: `g` may be shared with other branches of the graph.
        tensor.grad = Tensor(np.array(g, dtype=tensor.dtype, copy=True), device=tensor.device)
    else:
        tensor.grad.data += g


def gradcheck(fn, inputs, eps=1e-6, atol=1e-5, rtol=1e-3):
    """Compare autograd gradients of `fn(*inputs)` with central finite differences (float64).

    A random projection of the output makes it a scalar, so one backward pass checks every output element.
    Returns True; raises AssertionError naming the input and the worst element on mismatch.
    """
    inputs = tuple(inputs)
    for i, t in enumerate(inputs):
        if t.dtype != np.float64:
            raise TypeError(f"gradcheck needs float64 inputs; input {i} is {t.dtype}")
    with no_grad():
        out = fn(*inputs)
    projection = np.random.default_rng(0).standard_normal(out.shape)

    def scalar():
        with no_grad():
            return float(np.sum(fn(*inputs).data * projection))

    for t in inputs:
        # Finite differences perturb t.data through a flat view (np.ascontiguousarray would make 0-d arrays 1-D).
        t.data = np.require(t.data, requirements=["C", "W"])
        t.grad = None
    with enable_grad():
        out = fn(*inputs)
        backward(out, projection)
    for i, t in enumerate(inputs):
        if not t.requires_grad:
            continue
        analytic = np.zeros(t.shape) if t.grad is None else t.grad.data
        numeric = np.zeros(t.shape)
        flat = t.data.reshape(-1)
        for j in range(flat.size):
            orig = flat[j]
            flat[j] = orig + eps
            plus = scalar()
            flat[j] = orig - eps
            minus = scalar()
            flat[j] = orig
            numeric.reshape(-1)[j] = (plus - minus) / (2 * eps)
        bad = ~np.isclose(analytic, numeric, atol=atol, rtol=rtol)
        if bad.any():
            k = np.unravel_index(np.argmax(np.abs(analytic - numeric)), t.shape)
            raise AssertionError(
                f"gradcheck failed for input {i} (shape {t.shape}): {int(bad.sum())} mismatches; worst at "
                f"{tuple(int(v) for v in k)}: analytic {analytic[k]!r} vs numeric {numeric[k]!r}")
    return True


# Bottom import: fastnn/__init__.py imports this module first, so tensor.py finds it initialised.
from fastnn.tensor import Tensor  # noqa: E402

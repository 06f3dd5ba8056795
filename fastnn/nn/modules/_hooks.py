"""Module.register_full_backward_hook's machinery: identity nodes on a module call's tensor inputs and outputs.

The output nodes record grad_output as backward passes through them; the input nodes see grad_input. The graph
is walked in topological order, so every output node runs before any input node. The hooks fire once per
backward, when the last input node that requires grad has run (at the first output node when no input requires
grad, with grad_input all None, as in PyTorch).
"""
from fastnn.autograd import is_grad_enabled, make_result
from fastnn.tensor import Tensor


class BackwardHookCall:
    def __init__(self, module, hooks, pre_hooks=()):
        self.module, self.hooks, self.pre_hooks = module, list(hooks), list(pre_hooks)
        self.n_inputs, self.n_outputs, self.pending = 0, 0, 0
        self.grad_inputs, self.grad_outputs, self.waiting = [], [], []

    def _identity(self, t, backward):
        self._backend = t._backend
        return make_result(t._data, (t,), backward, "BackwardHookFunctionBackward", saved=(), shares_storage=t,
                           tangent=lambda v: v)

    def setup_inputs(self, args):
        args = list(args)
        tensors = [i for i, a in enumerate(args) if isinstance(a, Tensor)]
        self.n_inputs = len(tensors)
        self.grad_inputs = [None] * self.n_inputs
        self.waiting = [k for k, i in enumerate(tensors) if args[i].requires_grad and is_grad_enabled()]
        self.pending = len(self.waiting)
        for k in self.waiting:
            args[tensors[k]] = self._identity(args[tensors[k]], self._input_backward(k))
        return tuple(args)

    def setup_outputs(self, out):
        single = isinstance(out, Tensor)
        outs = [out] if single else list(out) if isinstance(out, (tuple, list)) else None
        if outs is None or not is_grad_enabled():
            return out
        positions = [i for i, o in enumerate(outs) if isinstance(o, Tensor) and o.requires_grad]
        if self.pre_hooks and len(positions) > 1:
            raise RuntimeError(f"register_full_backward_pre_hook: fastnn supports it on modules with one tensor "
                               f"output that requires grad; {type(self.module).__name__} returned {len(positions)}")
        self.n_outputs = sum(isinstance(o, Tensor) for o in outs)
        self.grad_outputs = [None] * self.n_outputs
        for j, i in enumerate(positions):
            outs[i] = self._identity(outs[i], self._output_backward(j))
        return outs[0] if single else type(out)(outs)

    def _output_backward(self, j):
        def backward(g):
            for hook in self.pre_hooks:  # one output (setup_outputs checks): its gradient is all of grad_output
                result = hook(self.module, (self._wrap(g),))
                if result is not None:
                    result = result[0] if isinstance(result, (tuple, list)) else result
                    g = result._data if isinstance(result, Tensor) else result
            self.grad_outputs[j] = g
            if not self.pending:  # nothing below needs grad: fire now, grad_input all None
                self._fire()
            return (g,)
        return backward

    def _input_backward(self, k):
        def backward(g):
            self.grad_inputs[k] = g
            self.pending -= 1
            if self.pending:
                return (g,)
            replaced = self._fire()
            if replaced is not None:
                if len(self.waiting) > 1:
                    raise RuntimeError("register_full_backward_hook: a hook may replace grad_input only for a "
                                       "module with one tensor input that requires grad in fastnn")
                g = replaced[k]
            return (g,)
        return backward

    def _fire(self):
        wrap = self._wrap
        replaced = None
        for hook in self.hooks:
            result = hook(self.module, tuple(wrap(g) for g in self.grad_inputs),
                          tuple(wrap(g) for g in self.grad_outputs))
            if result is not None:
                result = tuple(result) if isinstance(result, (tuple, list)) else (result,)
                if len(result) != self.n_inputs:
                    raise RuntimeError(f"backward hook returned {len(result)} gradients for "
                                       f"{type(self.module).__name__}'s {self.n_inputs} inputs")
                self.grad_inputs = [None if r is None else (r._data if isinstance(r, Tensor) else r)
                                    for r in result]
                replaced = self.grad_inputs
        self.pending = len(self.waiting)  # ready for another backward through a retained graph
        return replaced

    def _wrap(self, g):
        if g is None:
            return None
        return Tensor._wrap(g, self._backend)

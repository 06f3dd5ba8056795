"""Optimizer base class: parameter groups, per-parameter state, state_dict round trips (PyTorch's API).

A concrete optimizer validates its hyperparameters in `_check_options` and implements `_update`, which
receives one parameter, flat contiguous 1-D views of its data and gradient, and its state dict, and calls
a device kernel; the base class does the bookkeeping around it (closure, grads that are None,
non-contiguous parameters, dtype checks). Optimizers whose step is not one independent update per
parameter (LBFGS) override `step` instead.
"""
import functools
import numbers
import warnings
from collections import OrderedDict, defaultdict

from fastnn.autograd import enable_grad
from fastnn.tensor import Tensor


def check_number(options, name, low=0.0, high=None, message=None):
    """Raise PyTorch's "Invalid <what>: value" ValueError unless low <= options[name] (< high)."""
    value = options[name]
    if not isinstance(value, numbers.Real) or isinstance(value, bool):
        raise TypeError(f"{name} must be a real number, got {value!r}")
    if value < low or (high is not None and value >= high):
        raise ValueError(f"{message or 'Invalid ' + name + ' value'}: {value}")


def _with_step_hooks(step):
    """`step` running the optimizer's step pre-hooks before it and post-hooks after it, as PyTorch's
    Optimizer.profile_hook_step: each hook gets (optimizer, args, kwargs), args holding the optimizer first; a
    pre-hook may return (new_args, new_kwargs). A step reached through super().step() runs them only once."""
    @functools.wraps(step)
    def wrapper(*args, **kwargs):
        self = args[0]
        pre, post = self.__dict__.get("_optimizer_step_pre_hooks"), self.__dict__.get("_optimizer_step_post_hooks")
        if not (pre or post) or self.__dict__.get("_in_hooked_step"):
            return step(*args, **kwargs)
        self._in_hooked_step = True
        try:
            for hook in list(pre.values()):
                result = hook(self, args, kwargs)
                if result is not None:
                    if not (isinstance(result, tuple) and len(result) == 2):
                        raise RuntimeError(f"{step} must return None or a tuple of (new_args, new_kwargs), but got "
                                           f"{result}.")
                    args, kwargs = result
            out = step(*args, **kwargs)
            for hook in list(post.values()):
                hook(self, args, kwargs)
        finally:
            self._in_hooked_step = False
        return out
    return wrapper


class Optimizer:
    """Base class. `params`: an iterable of Tensors, or of dicts (parameter groups) each holding 'params'
    and any per-group option overriding `defaults`."""

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        if "step" in cls.__dict__:  # subclasses with their own step (LBFGS) run the hooks too
            cls.step = _with_step_hooks(cls.__dict__["step"])

    def __init__(self, params, defaults):
        self._optimizer_step_pre_hooks = OrderedDict()
        self._optimizer_step_post_hooks = OrderedDict()
        self._check_options(defaults)
        self.defaults = defaults
        if isinstance(params, Tensor):
            raise TypeError("params argument given to the optimizer should be an iterable of Tensors or dicts, "
                            "but got a Tensor")
        self.state = defaultdict(dict)
        self.param_groups = []
        groups = list(params)
        if not groups:
            raise ValueError("optimizer got an empty parameter list")
        if not isinstance(groups[0], dict):
            groups = [{"params": groups}]
        for group in groups:
            self.add_param_group(group)

    def _check_options(self, options):
        """Raise ValueError/TypeError for an invalid hyperparameter in `options` (defaults or one group)."""

    def _update(self, p, param, grad, state, group, kernels):
        """Update `param` (flat 1-D view of p's data) in place from `grad` (flat) with p's device `kernels`,
        lazily initialising `state` (arrays shaped like p, see `zeros_like_param`)."""
        raise NotImplementedError

    @staticmethod
    def zeros_like_param(p):
        """A zeroed C-contiguous state array with p's shape, dtype and device."""
        return p._backend.xp.zeros_like(p._data, order="C")

    def add_param_group(self, param_group):
        """Append a group: {'params': tensors, option: value, ...}; missing options take the defaults."""
        if not isinstance(param_group, dict):
            raise TypeError(f"param_group must be a dict, but got {type(param_group).__name__}")
        if "params" not in param_group:
            raise ValueError("param_group must have a 'params' entry")
        params = param_group["params"]
        if isinstance(params, Tensor):
            params = [params]
        elif isinstance(params, set):
            raise TypeError("optimizer parameters need to be organized in ordered collections, but the ordering of "
                            "tensors in sets will change between runs. Please use a list instead.")
        else:
            params = list(params)
        for p in params:
            if not isinstance(p, Tensor):
                raise TypeError(f"optimizer can only optimize Tensors, but one of the params is "
                                f"{type(p).__name__}")
            if not p.is_leaf:
                raise ValueError("can't optimize a non-leaf Tensor")
        group = dict(param_group, params=params)
        for name, default in self.defaults.items():
            group.setdefault(name, default)
        self._check_options(group)
        ids = [id(p) for p in params]
        if len(set(ids)) != len(ids):
            warnings.warn("optimizer contains a parameter group with duplicate parameters; in future, this will "
                          "cause an error", stacklevel=2)
        existing = {id(p) for g in self.param_groups for p in g["params"]}
        if not existing.isdisjoint(ids):
            raise ValueError("some parameters appear in more than one parameter group")
        self.param_groups.append(group)

    def register_step_pre_hook(self, hook):
        """Call hook(optimizer, args, kwargs) before every step; it may return (new_args, new_kwargs), the
        arguments step then gets. Returns a handle whose remove() unregisters it."""
        from fastnn.nn.modules.module import _HookHandle
        return _HookHandle(self._optimizer_step_pre_hooks, hook)

    def register_step_post_hook(self, hook):
        """Call hook(optimizer, args, kwargs) after every step. Returns a handle whose remove() unregisters it."""
        from fastnn.nn.modules.module import _HookHandle
        return _HookHandle(self._optimizer_step_post_hooks, hook)

    def zero_grad(self, set_to_none=True):
        """Drop every parameter's gradient (set_to_none=True) or fill it with zeros."""
        for group in self.param_groups:
            for p in group["params"]:
                if p.grad is None:
                    continue
                if set_to_none:
                    p.grad = None
                else:
                    p.grad._data[...] = 0
                    p.grad._bump_version()

    @_with_step_hooks
    def step(self, closure=None):
        """Update every parameter that has a gradient. `closure` (re-evaluates the model and returns the
        loss) runs first with grad enabled; its loss is returned."""
        loss = None
        if closure is not None:
            with enable_grad():
                loss = closure()
        for group in self.param_groups:
            for p in group["params"]:
                if p.grad is None:
                    continue
                self._step_param(p, group)
        return loss

    def _step_param(self, p, group):
        """Check everything the kernel would otherwise trust (dtypes, shapes of grad and state, device,
        writability, byte order), then run one update and bump p's version (backward refuses stale graphs)."""
        name = type(self).__name__
        backend = p._backend
        data, grad = p._data, p.grad._data
        if not p.dtype.isnative:
            raise TypeError(f"{name}: parameter of shape {tuple(p.shape)} has non-native byte order ({p.dtype.str}); "
                            f"load it through fastnn.Tensor, which converts to native byte order")
        if p.dtype not in backend.kernel_dtypes:
            raise TypeError(f"{name}: parameters must be float32 or float64, got dtype {p.dtype} "
                            f"(shape {tuple(p.shape)})")
        if p.grad._backend is not backend:
            raise RuntimeError(f"{name}: gradient is on {p.grad.device} but its parameter is on {p.device}")
        if grad.shape != data.shape:
            raise RuntimeError(f"{name}: gradient shape {tuple(grad.shape)} does not match parameter shape "
                               f"{tuple(data.shape)}")
        if grad.dtype != data.dtype:
            raise TypeError(f"{name}: gradient dtype {grad.dtype} does not match parameter dtype {data.dtype} "
                            f"(shape {tuple(data.shape)})")
        if not getattr(data.flags, "writeable", True):
            raise ValueError(f"{name}: parameter of shape {tuple(data.shape)} is read-only; give it a writable array")
        state = self.state[p]
        for key, value in state.items():
            if isinstance(value, backend.array_types) and value.size and value.shape != data.shape:
                raise RuntimeError(f"{name}: optimizer state {key!r} has shape {tuple(value.shape)} but its parameter "
                                   f"now has shape {tuple(data.shape)}: the parameter's data was replaced by an array "
                                   f"of another shape after the first step; build a new optimizer for it")
        xp = backend.xp
        contiguous = data.flags.c_contiguous
        flat = data.reshape(-1) if contiguous else xp.ascontiguousarray(data).reshape(-1)
        flat_grad = xp.ascontiguousarray(grad).reshape(-1)
        self._update(p, flat, flat_grad, state, group, backend.kernels)
        if not contiguous:
            data[...] = flat.reshape(data.shape)
        p._bump_version()

    def state_dict(self):
        """{'state': {index: {name: array copy or scalar}}, 'param_groups': [options + 'params': indices]};
        parameters are numbered in group order, as PyTorch does."""
        index_of = {}
        groups = []
        for group in self.param_groups:
            for p in group["params"]:
                index_of.setdefault(id(p), len(index_of))
            packed = {k: v for k, v in group.items() if k != "params"}
            packed["params"] = [index_of[id(p)] for p in group["params"]]
            groups.append(packed)
        state = {}
        for group in self.param_groups:
            for p in group["params"]:
                if p in self.state and self.state[p]:
                    state[index_of[id(p)]] = {k: v.copy() if isinstance(v, p._backend.array_types) else v
                                              for k, v in self.state[p].items()}
        return {"state": state, "param_groups": groups}

    def load_state_dict(self, state_dict):
        """Restore options and state saved by `state_dict` into this optimizer's parameters (matched by
        position); raises ValueError when the groups or the state's shapes do not match."""
        if not isinstance(state_dict, dict) or "state" not in state_dict or "param_groups" not in state_dict:
            raise ValueError("optimizer state dict must be a dict with 'state' and 'param_groups' entries")
        saved_groups = state_dict["param_groups"]
        if len(saved_groups) != len(self.param_groups):
            raise ValueError(f"loaded state dict has a different number of parameter groups "
                             f"({len(saved_groups)}) than the optimizer ({len(self.param_groups)})")
        for i, (group, saved) in enumerate(zip(self.param_groups, saved_groups)):
            if len(group["params"]) != len(saved["params"]):
                raise ValueError(f"loaded state dict contains a parameter group that doesn't match the size of "
                                 f"optimizer's group: group {i} has {len(saved['params'])} parameters in the state "
                                 f"dict, {len(group['params'])} in the optimizer")
        param_of = {}
        for group, saved in zip(self.param_groups, saved_groups):
            param_of.update(zip(saved["params"], group["params"]))
        state = defaultdict(dict)
        for index, saved_state in state_dict["state"].items():
            if index not in param_of:
                raise ValueError(f"loaded state dict has state for parameter index {index}, which is in none of "
                                 f"its parameter groups")
            p = param_of[index]
            state[p] = {name: self._restore_value(p, index, name, value) for name, value in saved_state.items()}
        new_groups = []
        for group, saved in zip(self.param_groups, saved_groups):
            restored = {k: v for k, v in saved.items() if k != "params"}
            restored["params"] = group["params"]
            self._check_options(restored)
            new_groups.append(restored)
        self.state = state
        self.param_groups = new_groups

    @staticmethod
    def _restore_value(p, index, name, value):
        """A saved state value for parameter p: arrays (host, any device, or Tensors) become fresh C-contiguous
        arrays of p's dtype on p's device; scalars stay as they are."""
        backend = p._backend
        if isinstance(value, Tensor):
            value = backend.from_host(value._backend.to_host(value._data))
        elif not isinstance(value, backend.array_types):
            if not hasattr(value, "__array_interface__") or getattr(value, "ndim", 0) == 0:
                return value
            value = backend.asarray(value)
        if value.shape != p.shape:
            raise ValueError(f"loaded state dict has {name!r} of shape {tuple(value.shape)} for parameter {index}, "
                             f"whose shape is {tuple(p.shape)}")
        return backend.xp.array(value, dtype=p.dtype, order="C", copy=True)

    def __repr__(self):
        lines = [type(self).__name__ + " ("]
        for i, group in enumerate(self.param_groups):
            lines.append(f"Parameter Group {i}")
            lines.extend(f"    {key}: {group[key]}" for key in sorted(group) if key != "params")
        lines.append(")")
        return "\n".join(lines)

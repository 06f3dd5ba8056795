"""Module: the base class of layers and models (parameters, buffers, submodules, train/eval, state_dict)."""
from collections import OrderedDict, namedtuple
from collections.abc import Mapping

import numpy as np

from fastnn import _dispatch
from fastnn.nn.modules._hooks import BackwardHookCall
from fastnn.nn.parameter import Parameter
from fastnn.tensor import Tensor, as_dtype

IncompatibleKeys = namedtuple("IncompatibleKeys", ["missing_keys", "unexpected_keys"])


class Module:
    training: bool

    def __init__(self):
        object.__setattr__(self, "training", True)
        object.__setattr__(self, "_parameters", OrderedDict())
        object.__setattr__(self, "_buffers", OrderedDict())
        object.__setattr__(self, "_non_persistent_buffers", set())
        object.__setattr__(self, "_modules", OrderedDict())
        object.__setattr__(self, "_forward_hooks", OrderedDict())
        object.__setattr__(self, "_forward_pre_hooks", OrderedDict())

    def forward(self, *args, **kwargs):
        raise NotImplementedError(f"{type(self).__name__} has no forward() method")

    def __call__(self, *args, **kwargs):
        d = self.__dict__
        # Most calls have no hooks at all: straight to forward (the hook machinery below costs ~0.6 us a call).
        if not (self._forward_pre_hooks or self._forward_hooks or d.get("_backward_hooks")
                or d.get("_backward_pre_hooks")):
            return self.forward(*args, **kwargs)
        return self._call_with_hooks(args, kwargs)

    def _call_with_hooks(self, args, kwargs):
        kwarg_hooks = self.__dict__.get("_hooks_with_kwargs", ())
        for key, hook in self._forward_pre_hooks.items():
            if key in kwarg_hooks:
                result = hook(self, args, kwargs)
                if result is not None:
                    if not (isinstance(result, tuple) and len(result) == 2):
                        raise RuntimeError(f"forward pre-hook must return None or a tuple of (new_args, new_kwargs), "
                                           f"but got {result!r}")
                    args, kwargs = result
            else:
                result = hook(self, args)
                if result is not None:
                    args = result if isinstance(result, tuple) else (result,)
        backward_hooks = self.__dict__.get("_backward_hooks")
        backward_pre_hooks = self.__dict__.get("_backward_pre_hooks")
        if backward_hooks or backward_pre_hooks:
            call = BackwardHookCall(self, (backward_hooks or {}).values(), (backward_pre_hooks or {}).values())
            args = call.setup_inputs(args)
        try:
            out = self.forward(*args, **kwargs)
        except Exception:
            for key, hook in self._forward_hooks.items():
                if key in self.__dict__.get("_always_called_hooks", ()):
                    # PyTorch calls these even when forward raised; their result is ignored, the error re-raised
                    if key in kwarg_hooks:
                        hook(self, args, kwargs, None)
                    else:
                        hook(self, args, None)
            raise
        for key, hook in self._forward_hooks.items():
            result = hook(self, args, kwargs, out) if key in kwarg_hooks else hook(self, args, out)
            if result is not None:
                out = result
        if backward_hooks or backward_pre_hooks:
            out = call.setup_outputs(out)
        return out

    def _add_hook(self, registry, hook, prepend, with_kwargs=False, always_call=False):
        """A handle for `hook` in `registry` (first when prepend); flags kept by id, removed with the handle."""
        flags = []
        for wanted, name in ((with_kwargs, "_hooks_with_kwargs"), (always_call, "_always_called_hooks")):
            if wanted:
                if name not in self.__dict__:
                    object.__setattr__(self, name, set())
                flags.append(self.__dict__[name])
        handle = _HookHandle(registry, hook, flags)
        if prepend:
            registry.move_to_end(handle.id, last=False)
        return handle

    def register_forward_hook(self, hook, *, prepend=False, with_kwargs=False, always_call=False):
        """hook(module, args, output) (or hook(module, args, kwargs, output) with_kwargs) after forward; a non-None
        result replaces the output. always_call: also called (with output None) when forward raises."""
        return self._add_hook(self._forward_hooks, hook, prepend, with_kwargs, always_call)

    def register_forward_pre_hook(self, hook, *, prepend=False, with_kwargs=False):
        """hook(module, args) -> None or new args; with_kwargs, hook(module, args, kwargs) -> None or
        (new_args, new_kwargs)."""
        return self._add_hook(self._forward_pre_hooks, hook, prepend, with_kwargs)

    def register_full_backward_hook(self, hook, prepend=False):
        """hook(module, grad_input, grad_output) -> None or new grad_input, called during backward with the
        gradients of this call's tensor inputs and outputs (through identity nodes around the call)."""
        if "_backward_hooks" not in self.__dict__:
            object.__setattr__(self, "_backward_hooks", OrderedDict())
        return self._add_hook(self._backward_hooks, hook, prepend)

    def register_full_backward_pre_hook(self, hook, prepend=False):
        """hook(module, grad_output) -> None or new grad_output, called during backward before the gradient
        enters the module (fastnn: modules with one tensor output)."""
        if "_backward_pre_hooks" not in self.__dict__:
            object.__setattr__(self, "_backward_pre_hooks", OrderedDict())
        return self._add_hook(self._backward_pre_hooks, hook, prepend)

    # ---- registration -----------------------------------------------------------------------------------
    def __setattr__(self, name, value):
        if "_parameters" not in self.__dict__:
            raise AttributeError(f"cannot assign {name!r} before Module.__init__() call")
        if isinstance(value, (Parameter, Module)):
            registry = self._parameters if isinstance(value, Parameter) else self._modules
            self.__dict__.pop(name, None)
            for other in (self._parameters, self._buffers, self._modules):
                if other is not registry:
                    other.pop(name, None)
            registry[name] = value
        elif name in self._parameters or name in self._modules:
            kind = "parameter" if name in self._parameters else "child module"
            if value is not None:
                raise TypeError(f"cannot assign {type(value).__name__} as {kind} {name!r} "
                                f"({'fastnn.nn.Parameter' if kind == 'parameter' else 'Module'} or None expected)")
            (self._parameters if kind == "parameter" else self._modules)[name] = None
        elif name in self._buffers:
            if value is not None and not isinstance(value, Tensor):
                raise TypeError(f"cannot assign {type(value).__name__} as buffer {name!r} (Tensor or None expected)")
            self._buffers[name] = value
        else:
            object.__setattr__(self, name, value)

    def __getattr__(self, name):
        # Every parameter, buffer and submodule read in a forward comes here: registries unrolled, each read once.
        d = self.__dict__
        registry = d.get("_parameters")
        if registry is not None and name in registry:
            return registry[name]
        registry = d.get("_buffers")
        if registry is not None and name in registry:
            return registry[name]
        registry = d.get("_modules")
        if registry is not None and name in registry:
            return registry[name]
        raise AttributeError(f"'{type(self).__name__}' object has no attribute '{name}'")

    def __delattr__(self, name):
        for registry in (self._parameters, self._buffers, self._modules):
            if name in registry:
                del registry[name]
                self._non_persistent_buffers.discard(name)
                return
        object.__delattr__(self, name)

    def register_parameter(self, name, param):
        if param is not None and not isinstance(param, Parameter):
            raise TypeError(f"cannot assign {type(param).__name__} as parameter {name!r} (Parameter expected)")
        self._check_name(name, self._parameters)
        self._parameters[name] = param

    def register_buffer(self, name, tensor, persistent=True):
        if tensor is not None and not isinstance(tensor, Tensor):
            raise TypeError(f"cannot assign {type(tensor).__name__} as buffer {name!r} (Tensor or None expected)")
        self._check_name(name, self._buffers)
        self._buffers[name] = tensor
        if persistent:
            self._non_persistent_buffers.discard(name)
        else:
            self._non_persistent_buffers.add(name)

    def add_module(self, name, module):
        if module is not None and not isinstance(module, Module):
            raise TypeError(f"{type(module).__name__} is not a Module subclass")
        self._check_name(name, self._modules)
        self._modules[name] = module

    register_module = add_module

    def _check_name(self, name, registry):
        if not isinstance(name, str) or not name or "." in name:
            raise KeyError(f"module/parameter/buffer name must be a non-empty string without '.', got {name!r}")
        if name in self.__dict__ or any(name in r for r in (self._parameters, self._buffers, self._modules)
                                        if r is not registry):
            raise KeyError(f"attribute {name!r} already exists")

    # ---- traversal --------------------------------------------------------------------------------------
    def named_modules(self, memo=None, prefix="", remove_duplicate=True):
        memo = set() if memo is None else memo
        stack = [(prefix, self)]
        while stack:
            name, module = stack.pop()
            if remove_duplicate:
                if id(module) in memo:
                    continue
                memo.add(id(module))
            yield name, module
            children = [(name + ("." if name else "") + n, m) for n, m in module._modules.items() if m is not None]
            stack.extend(reversed(children))

    def modules(self):
        for _, m in self.named_modules():
            yield m

    def named_children(self):
        seen = set()
        for name, m in self._modules.items():
            if m is not None and id(m) not in seen:
                seen.add(id(m))
                yield name, m

    def children(self):
        for _, m in self.named_children():
            yield m

    def _named_members(self, registry, prefix, recurse, remove_duplicate=True):
        seen = set()
        modules = self.named_modules(prefix=prefix, remove_duplicate=remove_duplicate) if recurse \
            else [(prefix, self)]
        for mod_prefix, module in modules:
            for name, value in getattr(module, registry).items():
                if value is None or (remove_duplicate and id(value) in seen):
                    continue
                seen.add(id(value))
                yield mod_prefix + ("." if mod_prefix else "") + name, value

    def named_parameters(self, prefix="", recurse=True, remove_duplicate=True):
        return self._named_members("_parameters", prefix, recurse, remove_duplicate)

    def parameters(self, recurse=True):
        for _, p in self.named_parameters(recurse=recurse):
            yield p

    def named_buffers(self, prefix="", recurse=True, remove_duplicate=True):
        return self._named_members("_buffers", prefix, recurse, remove_duplicate)

    def buffers(self, recurse=True):
        for _, b in self.named_buffers(recurse=recurse):
            yield b

    def get_submodule(self, target):
        module = self
        for part in target.split(".") if target else []:
            if part not in module._modules:
                raise AttributeError(f"{type(module).__name__} has no submodule {part!r} (looking up {target!r})")
            module = module._modules[part]
        return module

    def get_parameter(self, target):
        prefix, _, name = target.rpartition(".")
        module = self.get_submodule(prefix)
        if name not in module._parameters:
            raise AttributeError(f"{type(module).__name__} has no parameter {name!r} (looking up {target!r})")
        return module._parameters[name]

    def get_buffer(self, target):
        prefix, _, name = target.rpartition(".")
        module = self.get_submodule(prefix)
        if name not in module._buffers:
            raise AttributeError(f"{type(module).__name__} has no buffer {name!r} (looking up {target!r})")
        return module._buffers[name]

    def apply(self, fn):
        for child in self.children():
            child.apply(fn)
        fn(self)
        return self

    # ---- modes and gradients ----------------------------------------------------------------------------
    def train(self, mode=True):
        if not isinstance(mode, bool):
            raise ValueError("training mode is expected to be boolean")
        for m in self.modules():
            object.__setattr__(m, "training", mode)
        return self

    def eval(self):
        return self.train(False)

    def requires_grad_(self, requires_grad=True):
        for p in self.parameters():
            p.requires_grad_(requires_grad)
        return self

    def zero_grad(self, set_to_none=True):
        for p in self.parameters():
            if p.grad is not None:
                if set_to_none:
                    p.grad = None
                else:
                    p.grad._data[...] = 0

    # ---- dtype / device ---------------------------------------------------------------------------------
    def _apply_to_tensors(self, fn):
        for module in self.modules():
            for registry in (module._parameters, module._buffers):
                for t in registry.values():
                    if t is not None:
                        fn(t)
        return self

    def to(self, *args, dtype=None, device=None):
        """Move (device) and/or cast (floating point dtype) every parameter and buffer in place, as PyTorch does;
        a device is a fastnn.device or a device string ('cpu', 'cuda:0', any registered device)."""
        for a in args:
            if isinstance(a, _dispatch.device) or (isinstance(a, str) and _dispatch.is_device_name(a)):
                device = a
            else:
                dtype = a

        def convert(t):
            new = t.to(dtype=dtype if t.dtype.kind == "f" else None, device=device)
            if new is not t:
                t._data, t._backend = new._data, new._backend
                if t.grad is not None:
                    t.grad = t.grad.to(dtype=t.dtype, device=t.device)
        return self._apply_to_tensors(convert)

    def float(self):
        return self.to(dtype=as_dtype("float32"))

    def double(self):
        return self.to(dtype=as_dtype("float64"))

    def half(self):
        return self.to(dtype=as_dtype("float16"))

    def cpu(self):
        return self.to(device="cpu")

    def to_empty(self, *, device, recurse=True):
        """Give every parameter and buffer new, uninitialised storage of its shape and dtype on `device` (PyTorch's
        way to leave the meta device; values must then be loaded or initialised)."""
        backend = _dispatch.backend(device)
        modules = self.modules() if recurse else [self]
        for module in modules:
            for registry in (module._parameters, module._buffers):
                for t in registry.values():
                    if t is not None:
                        t._data, t._backend = backend.xp.empty(t.shape, t.dtype), backend
                        t.grad = None
        return self

    # ---- state ------------------------------------------------------------------------------------------
    def state_dict(self, destination=None, prefix="", keep_vars=False):
        """Parameters and persistent buffers by dotted name (tensors share memory with the module)."""
        destination = OrderedDict() if destination is None else destination
        for mod_prefix, module in self.named_modules(prefix=prefix.rstrip(".")):
            dot = mod_prefix + ("." if mod_prefix else "")
            for name, p in module._parameters.items():
                if p is not None:
                    destination[dot + name] = p if keep_vars else p.detach()
            for name, b in module._buffers.items():
                if b is not None and name not in module._non_persistent_buffers:
                    destination[dot + name] = b if keep_vars else b.detach()
        return destination

    def load_state_dict(self, state_dict, strict=True, assign=False):
        """Copy tensors from `state_dict` into this module's parameters and buffers (assign=True: make the
        state_dict's tensors the module's, parameters keeping their requires_grad, as PyTorch does).

        Every shape is checked before anything is copied, so a failed load leaves the module unchanged.
        With strict=True, missing or unexpected keys are an error. Returns (missing_keys, unexpected_keys), after
        the hooks of register_load_state_dict_post_hook have seen them.
        """
        if not isinstance(state_dict, Mapping):
            raise TypeError(f"load_state_dict: state_dict must be a mapping of names to tensors (e.g. the result "
                            f"of fastnn.load), got {type(state_dict).__name__}")
        own = self.state_dict(keep_vars=True)
        missing = [k for k in own if k not in state_dict]
        unexpected = [k for k in state_dict if k not in own]
        problems = []
        if strict and missing:
            problems.append("missing key(s): " + ", ".join(repr(k) for k in missing))
        if strict and unexpected:
            problems.append("unexpected key(s): " + ", ".join(repr(k) for k in unexpected))
        arrays = {}
        for key, target in own.items():
            if key not in state_dict:
                continue
            value = state_dict[key]
            if isinstance(value, Tensor):
                array = value._data if value._backend is target._backend else value._backend.to_host(value._data)
            elif isinstance(value, target._backend.array_types):
                array = value
            else:
                try:
                    array = np.asarray(value)
                except (TypeError, ValueError):
                    array = np.asarray(None)
                if array.dtype == object:
                    problems.append(f"value for {key!r} is a {type(value).__name__}, not a tensor or array")
                    continue
            if array.shape != target.shape:
                problems.append(f"size mismatch for {key!r}: copying a param with shape {tuple(array.shape)}, the "
                                f"shape in the current model is {tuple(target.shape)}")
            elif target.dtype.kind in "fc" and array.dtype.kind not in "fciu":
                problems.append(f"dtype mismatch for {key!r}: got {array.dtype}, expected a number type")
            else:
                arrays[key] = array
        if problems:
            raise RuntimeError(f"error(s) in loading state_dict for {type(self).__name__}:\n  " +
                               "\n  ".join(problems))
        for key, array in arrays.items():
            target = own[key]
            if assign:
                self._assign(key, target, state_dict[key])
            else:
                target._data[...] = target._backend.asarray(array)
                target._bump_version()
        result = IncompatibleKeys(missing, unexpected)
        for module in self.modules():
            for hook in module.__dict__.get("_load_state_dict_post_hooks", {}).values():
                hook(module, result)
        return result

    def _assign(self, key, target, value):
        """load_state_dict(assign=True): `value` (a Tensor or array) replaces the parameter or buffer at `key`."""
        prefix, _, name = key.rpartition(".")
        module = self.get_submodule(prefix)
        value = value if isinstance(value, Tensor) else Tensor(value, device=target.device)
        if name in module._parameters:
            module._parameters[name] = value if isinstance(value, Parameter) else Parameter(
                value, requires_grad=target.requires_grad)
        else:
            module._buffers[name] = value

    def register_load_state_dict_post_hook(self, hook):
        """hook(module, incompatible_keys) after load_state_dict, which may edit the keys' lists in place."""
        if "_load_state_dict_post_hooks" not in self.__dict__:
            object.__setattr__(self, "_load_state_dict_post_hooks", OrderedDict())
        return _HookHandle(self._load_state_dict_post_hooks, hook)

    # ---- repr -------------------------------------------------------------------------------------------
    def extra_repr(self):
        return ""

    def __repr__(self):
        lines = []
        extra = self.extra_repr()
        if extra:
            lines.extend(extra.split("\n"))
        for name, m in self._modules.items():
            body = repr(m).replace("\n", "\n  ")
            lines.append(f"({name}): {body}")
        if not lines:
            return f"{type(self).__name__}()"
        if len(lines) == 1 and not self._modules:
            return f"{type(self).__name__}({lines[0]})"
        return f"{type(self).__name__}(\n  " + "\n  ".join(lines) + "\n)"

    def __dir__(self):
        return sorted(set(super().__dir__()) | set(self._parameters) | set(self._buffers) | set(self._modules))


class _HookHandle:
    _next_id = 0

    def __init__(self, registry, hook, flags=()):
        self.registry, self.id, self.flags = registry, _HookHandle._next_id, flags
        _HookHandle._next_id += 1
        registry[self.id] = hook
        for flag_set in flags:
            flag_set.add(self.id)

    def remove(self):
        self.registry.pop(self.id, None)
        for flag_set in self.flags:
            flag_set.discard(self.id)

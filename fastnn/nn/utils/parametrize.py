"""torch.nn.utils.parametrize: a parameter computed from another by a module, PyTorch's way.

register_parametrization(module, "weight", p) moves the parameter to module.parametrizations.weight.original
(PyTorch's state_dict key `parametrizations.weight.original`) and makes module.weight a property that returns
p(original) on every access, so gradients flow to `original`. If p has right_inverse, `original` starts as
p.right_inverse(weight) and assigning module.weight = value stores right_inverse(value). Several
parametrizations on one tensor apply in registration order. The module's class is swapped for a subclass that
holds the properties, as PyTorch does.
"""
import contextlib

from fastnn.autograd import no_grad
from fastnn.nn.modules.container import ModuleDict, ModuleList
from fastnn.nn.modules.module import Module
from fastnn.nn.parameter import Parameter

_cache = {"enabled": False, "values": {}}


@contextlib.contextmanager
def cached():
    """Inside the block, each parametrized tensor is computed once and reused (e.g. one weight for an RNN's steps)."""
    _cache["enabled"] = True
    try:
        yield
    finally:
        _cache["enabled"] = False
        _cache["values"].clear()


class ParametrizationList(ModuleList):
    """The parametrizations of one tensor and its `original` parameter, or `original0`, `original1`, ... when the
    first parametrization's right_inverse returns several tensors (its forward then takes them all)."""

    def __init__(self, modules, original, unsafe=False):
        super().__init__(modules)
        self.unsafe = unsafe
        with no_grad():
            value = original
            for module in reversed(list(self._modules.values())):
                if hasattr(module, "right_inverse"):
                    value = module.right_inverse(value)
        self.is_tensor = not isinstance(value, (tuple, list))
        if self.is_tensor:
            # without a right_inverse the original Parameter itself moves here (an optimizer holding it keeps
            # working)
            self.original = original if value is original else Parameter(value.detach(),
                                                                         requires_grad=original.requires_grad)
        else:
            for i, part in enumerate(value):
                setattr(self, f"original{i}", Parameter(part.detach(), requires_grad=original.requires_grad))
            self.ntensors = len(value)

    def _originals(self):
        return [self.original] if self.is_tensor else [getattr(self, f"original{i}") for i in range(self.ntensors)]

    def right_inverse(self, value):
        """module.<name> = value: store the original(s) that give `value` (exact only with right_inverse)."""
        with no_grad():
            for module in reversed(list(self._modules.values())):
                if not hasattr(module, "right_inverse"):
                    raise RuntimeError(f"parametrization {type(module).__name__} does not implement right_inverse")
                value = module.right_inverse(value)
            values = [value] if self.is_tensor else list(value)
            for original, new in zip(self._originals(), values):
                if tuple(new.shape) != tuple(original.shape) and not self.unsafe:
                    raise ValueError(f"right_inverse gave shape {tuple(new.shape)}, the original has "
                                     f"{tuple(original.shape)}")
                original.copy_(new)

    def forward(self):
        modules = list(self._modules.values())
        x = modules[0](*self._originals())
        for module in modules[1:]:
            x = module(x)
        return x


def _parametrized_class(module):
    """module's class, or a subclass made once per module whose __setattr__ routes assignments of parametrized
    names to their right_inverse (Module.__setattr__ would otherwise register a new parameter)."""
    cls = type(module)
    if getattr(cls, "_is_parametrized_class", False):
        return cls

    def __setattr__(self, name, value):
        if "parametrizations" in self._modules and name in self._modules["parametrizations"]._modules:
            self.parametrizations[name].right_inverse(value)
        else:
            cls.__setattr__(self, name, value)
    return type(f"Parametrized{cls.__name__}", (cls,), {"_is_parametrized_class": True, "_original_class": cls,
                                                        "__setattr__": __setattr__})


def _property(name):
    def get(self):
        plist = self.parametrizations[name]
        if not _cache["enabled"]:
            return plist()
        key = (id(plist), name)
        if key not in _cache["values"]:
            _cache["values"][key] = plist()
        return _cache["values"][key]
    return property(get)


def register_parametrization(module, tensor_name, parametrization, *, unsafe=False):
    if not isinstance(parametrization, Module):
        raise TypeError(f"parametrization must be a Module, got {type(parametrization).__name__}")
    if is_parametrized(module, tensor_name):
        plist = module.parametrizations[tensor_name]
        if not unsafe:
            _check_shape(parametrization(plist().detach()), plist().detach(), tensor_name)
        plist.append(parametrization)
        return module
    original = module._parameters.get(tensor_name)
    if original is None:
        raise ValueError(f"Module '{type(module).__name__}' has no parameter '{tensor_name}' to parametrize")
    plist = ParametrizationList([parametrization], original, unsafe)
    if not unsafe:
        with no_grad():
            _check_shape(plist(), original, tensor_name)
    del module._parameters[tensor_name]
    if "parametrizations" not in module._modules:
        module.__class__ = _parametrized_class(module)
        module._modules["parametrizations"] = ModuleDict()
    module.parametrizations[tensor_name] = plist
    setattr(type(module), tensor_name, _property(tensor_name))
    return module


def _check_shape(value, original, name):
    if tuple(value.shape) != tuple(original.shape) or value.dtype != original.dtype:
        raise ValueError(f"registering a parametrization may not change the shape or dtype of the tensor "
                         f"'{name}' (unless unsafe=True): {tuple(original.shape)} {original.dtype} -> "
                         f"{tuple(value.shape)} {value.dtype}")


def is_parametrized(module, tensor_name=None):
    plists = module._modules.get("parametrizations")
    if plists is None or not getattr(type(module), "_is_parametrized_class", False):
        return False
    return bool(plists._modules) if tensor_name is None else tensor_name in plists._modules


def remove_parametrizations(module, tensor_name, leave_parametrized=True):
    """Make `tensor_name` a plain parameter again: its current parametrized value (leave_parametrized) or the
    original."""
    if not is_parametrized(module, tensor_name):
        raise ValueError(f"Module {type(module).__name__} does not have a parametrization on {tensor_name}")
    plist = module.parametrizations[tensor_name]
    if not leave_parametrized and not plist.is_tensor:
        raise ValueError("remove_parametrizations(leave_parametrized=False) needs a single original tensor, but "
                         f"{tensor_name} has {plist.ntensors}")
    with no_grad():
        value = plist() if leave_parametrized else plist.original
    parameter = Parameter(value.detach().clone(), requires_grad=plist._originals()[0].requires_grad)
    del module.parametrizations._modules[tensor_name]
    delattr(type(module), tensor_name)
    if not module.parametrizations._modules:
        del module._modules["parametrizations"]
        module.__class__ = type(module)._original_class
    module.register_parameter(tensor_name, parameter)
    return module

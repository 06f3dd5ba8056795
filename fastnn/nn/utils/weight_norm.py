"""torch.nn.utils.weight_norm / remove_weight_norm (the classic hook form): w = g * v / ||v||.

The parameter `name` is replaced by `name_g` (the norms, one per slice along `dim`, kept dims of size 1) and
`name_v` (the direction); a forward pre-hook recomputes `name` from them before every call, differentiably.
"""
from fastnn import ops
from fastnn.ops.math import norm as _norm
from fastnn.nn.parameter import Parameter


def _norm_except_dim(v, dim):
    if dim is None:
        return _norm(v)
    axes = tuple(i for i in range(v.ndim) if i != dim)
    return _norm(v, 2, axes, keepdim=True) if axes else ops.abs(v)


class WeightNorm:
    def __init__(self, name, dim):
        self.name, self.dim = name, dim

    def compute_weight(self, module):
        g, v = getattr(module, self.name + "_g"), getattr(module, self.name + "_v")
        return ops.mul(v, ops.div(g, _norm_except_dim(v, self.dim)))

    def __call__(self, module, inputs):
        object.__setattr__(module, self.name, self.compute_weight(module))


def weight_norm(module, name="weight", dim=0):
    """Reparameterize module.`name` as `name`_g * `name`_v / ||`name`_v|| (dim=None: one norm for the tensor)."""
    for hook in module._forward_pre_hooks.values():
        if isinstance(hook, WeightNorm) and hook.name == name:
            raise RuntimeError(f"Cannot register two weight_norm hooks on the same parameter {name}")
    weight = module._parameters.get(name)
    if weight is None:
        raise AttributeError(f"{type(module).__name__} has no parameter {name!r} to apply weight_norm to")
    if dim is not None:
        if dim < -weight.ndim or dim >= weight.ndim:
            raise IndexError(f"weight_norm: dim {dim} is out of range for a {weight.ndim}-D parameter")
        dim %= weight.ndim
    fn = WeightNorm(name, dim)
    del module._parameters[name]
    module.register_parameter(name + "_g", Parameter(_norm_except_dim(weight.detach(), dim).detach()))
    module.register_parameter(name + "_v", Parameter(weight.detach()))
    fn(module, ())
    module.register_forward_pre_hook(fn)
    return module


def remove_weight_norm(module, name="weight"):
    for key, hook in list(module._forward_pre_hooks.items()):
        if isinstance(hook, WeightNorm) and hook.name == name:
            weight = hook.compute_weight(module).detach()
            del module._forward_pre_hooks[key]
            del module._parameters[name + "_g"], module._parameters[name + "_v"]
            module.__dict__.pop(name, None)
            module.register_parameter(name, Parameter(weight))
            return module
    raise ValueError(f"weight_norm of '{name}' not found in {module}")

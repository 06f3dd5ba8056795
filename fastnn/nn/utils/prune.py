"""torch.nn.utils.prune: zero parts of a parameter with a mask, PyTorch's way.

Pruning `name` moves the parameter to `name_orig`, adds the buffer `name_mask`, and a forward pre-hook sets
module.`name` = `name_orig` * `name_mask` before every call (so gradients reach only the kept entries and the
optimizer keeps training `name_orig`). Pruning the same tensor again prunes among the entries still kept and
multiplies the masks. `remove` makes the pruned tensor a plain parameter again.
"""
import math
import numbers

from fastnn import ops
from fastnn.nn.parameter import Parameter
from fastnn.tensor import Tensor


class BasePruningMethod:
    """A pruning method: compute_mask(t, default_mask) gives the new mask; apply() installs it on a module."""
    PRUNING_TYPE = "unstructured"

    def __init__(self, name=None):
        self._tensor_name = name

    def compute_mask(self, t, default_mask):
        raise NotImplementedError

    def __call__(self, module, inputs):
        name = self._tensor_name
        object.__setattr__(module, name, ops.mul(getattr(module, name + "_orig"), getattr(module, name + "_mask")))

    @classmethod
    def apply(cls, module, name, *args, importance_scores=None, **kwargs):
        method = cls(*args, **kwargs)
        method._tensor_name = name
        existing = _hook_of(module, name)
        if existing is None:
            param = module._parameters.get(name)
            if param is None:
                raise AttributeError(f"{type(module).__name__} has no parameter {name!r} to prune")
            xp = param._backend.xp
            mask = xp.ones(param.shape, param.dtype)
            del module._parameters[name]
            module.register_parameter(name + "_orig", param)
            module.register_buffer(name + "_mask", Tensor(mask, device=param.device))
            module.register_forward_pre_hook(method)
        else:
            method = existing
        orig, mask = getattr(module, name + "_orig"), getattr(module, name + "_mask")
        scores = orig if importance_scores is None else importance_scores
        if tuple(scores.shape) != tuple(orig.shape):
            raise ValueError(f"importance_scores of shape {tuple(scores.shape)} must match the parameter's "
                             f"{tuple(orig.shape)}")
        new = cls(*args, **kwargs).compute_mask(scores.detach()._data, mask._data)
        mask._data[...] = new
        method(module, ())
        return method

    def remove(self, module):
        name = self._tensor_name
        weight = ops.mul(getattr(module, name + "_orig"), getattr(module, name + "_mask")).detach()
        del module._parameters[name + "_orig"], module._buffers[name + "_mask"]
        module.__dict__.pop(name, None)
        module.register_parameter(name, Parameter(weight))


def _hook_of(module, name):
    for hook in module._forward_pre_hooks.values():
        if isinstance(hook, BasePruningMethod) and hook._tensor_name == name:
            return hook
    return None


def _count(amount, size):
    """The number of entries (or channels) to prune: an int count, or a fraction in [0, 1] of `size`, rounded."""
    if isinstance(amount, bool) or not isinstance(amount, numbers.Real) or amount < 0:
        raise ValueError(f"amount={amount!r} should be a non-negative int or a float in [0, 1]")
    if isinstance(amount, numbers.Integral):
        if amount > size:
            raise ValueError(f"amount={amount} should be smaller than the number of parameters to prune={size}")
        return int(amount)
    if amount > 1:
        raise ValueError(f"amount={amount} should be a float in [0, 1] (a fraction) or an int (a count)")
    return round(amount * size)


class Identity(BasePruningMethod):
    def compute_mask(self, t, default_mask):
        return default_mask


class _Unstructured(BasePruningMethod):
    """Prune `amount` of the entries still kept, chosen by `_order` (lowest first)."""

    def __init__(self, amount):
        super().__init__()
        self.amount = amount
        _count(amount, math.inf if isinstance(amount, numbers.Integral) else 1)   # checks its type and range now

    def compute_mask(self, t, default_mask):
        xp = _xp(t)
        kept = xp.nonzero(default_mask.reshape(-1))[0]
        k = _count(self.amount, kept.size)
        mask = default_mask.copy()
        if k:
            order = xp.argsort(self._order(t.reshape(-1)[kept]), kind="stable")
            mask.reshape(-1)[kept[order[:k]]] = 0
        return mask


class RandomUnstructured(_Unstructured):
    def _order(self, values):
        from fastnn import random as _random
        return _random.default_generator().random(values.shape)


class L1Unstructured(_Unstructured):
    def _order(self, values):
        return _xp(values).abs(values)


class _Structured(BasePruningMethod):
    """Prune `amount` of the slices along `dim` (channels) still kept, chosen by `_order` (lowest first)."""
    PRUNING_TYPE = "structured"

    def __init__(self, amount, dim=-1):
        super().__init__()
        self.amount, self.dim = amount, dim

    def compute_mask(self, t, default_mask):
        xp = _xp(t)
        dim = self.dim % t.ndim
        others = tuple(i for i in range(t.ndim) if i != dim)
        kept_slices = xp.nonzero(default_mask.any(axis=others) if others else default_mask)[0]
        k = _count(self.amount, kept_slices.size)
        mask = default_mask.copy()
        if k:
            scores = self._order(t, others)[kept_slices]
            pruned = kept_slices[xp.argsort(scores, kind="stable")[:k]]
            index = [slice(None)] * t.ndim
            index[dim] = pruned
            mask[tuple(index)] = 0
        return mask


class RandomStructured(_Structured):
    def _order(self, t, others):
        from fastnn import random as _random
        return _random.default_generator().random(t.shape[self.dim % t.ndim])


class LnStructured(_Structured):
    def __init__(self, amount, n, dim=-1):
        super().__init__(amount, dim)
        self.n = n

    def _order(self, t, others):
        xp = _xp(t)
        if self.n in (math.inf, "inf"):
            return xp.abs(t).max(axis=others) if others else xp.abs(t)
        if self.n in ("fro", 2):
            return xp.sqrt((t * t).sum(axis=others)) if others else xp.abs(t)
        return (xp.abs(t) ** self.n).sum(axis=others) ** (1 / self.n) if others else xp.abs(t)


class CustomFromMask(BasePruningMethod):
    def __init__(self, mask):
        super().__init__()
        self.mask = mask

    def compute_mask(self, t, default_mask):
        mask = self.mask._data if isinstance(self.mask, Tensor) else _xp(t).asarray(self.mask)
        if mask.shape != default_mask.shape:
            raise ValueError(f"mask of shape {mask.shape} must match the parameter's {default_mask.shape}")
        return default_mask * mask.astype(default_mask.dtype)


def _xp(array):
    from fastnn import _dispatch
    for name in _dispatch.registered():
        backend = _dispatch.backend(name)
        if isinstance(array, backend.array_types):
            return backend.xp
    raise TypeError(f"no fastnn backend holds arrays of type {type(array).__name__}")


# ---- the functional forms -------------------------------------------------------------------------------------
def identity(module, name):
    Identity.apply(module, name)
    return module


def random_unstructured(module, name, amount):
    RandomUnstructured.apply(module, name, amount)
    return module


def l1_unstructured(module, name, amount, importance_scores=None):
    L1Unstructured.apply(module, name, amount, importance_scores=importance_scores)
    return module


def random_structured(module, name, amount, dim):
    RandomStructured.apply(module, name, amount, dim)
    return module


def ln_structured(module, name, amount, n, dim, importance_scores=None):
    LnStructured.apply(module, name, amount, n, dim, importance_scores=importance_scores)
    return module


def custom_from_mask(module, name, mask):
    CustomFromMask.apply(module, name, mask)
    return module


def global_unstructured(parameters, pruning_method, importance_scores=None, **kwargs):
    """Prune across several tensors at once: `parameters` is a list of (module, name); the mask is computed on
    their concatenation (so the smallest entries overall go), then split back."""
    if pruning_method not in (L1Unstructured, RandomUnstructured):
        raise NotImplementedError("global_unstructured: fastnn supports L1Unstructured and RandomUnstructured")
    parameters = list(parameters)
    for module, name in parameters:            # install the hooks (identity masks) first
        if _hook_of(module, name) is None:
            Identity.apply(module, name)
    tensors = [getattr(module, name + "_orig") for module, name in parameters]
    scores = [t if importance_scores is None else importance_scores[(m, n)]
              for t, (m, n) in zip(tensors, parameters)]
    masks = [getattr(module, name + "_mask") for module, name in parameters]
    xp = tensors[0]._backend.xp
    flat_scores = xp.concatenate([s.detach()._data.reshape(-1) for s in scores])
    flat_mask = xp.concatenate([m._data.reshape(-1) for m in masks])
    new = pruning_method(**kwargs).compute_mask(flat_scores, flat_mask)
    start = 0
    for (module, name), mask in zip(parameters, masks):
        mask._data[...] = new[start:start + mask._data.size].reshape(mask.shape)
        start += mask._data.size
        _hook_of(module, name)(module, ())


def remove(module, name):
    hook_key = next((k for k, h in module._forward_pre_hooks.items()
                     if isinstance(h, BasePruningMethod) and h._tensor_name == name), None)
    if hook_key is None:
        raise ValueError(f"Parameter '{name}' of module {module} has to be pruned before pruning can be removed")
    module._forward_pre_hooks.pop(hook_key).remove(module)
    return module


def is_pruned(module):
    return any(isinstance(h, BasePruningMethod) for m in module.modules() for h in m._forward_pre_hooks.values())

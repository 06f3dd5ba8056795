"""Transfer learning helpers: freeze and unfreeze parts of a model, replace its classifier head, give parameter
groups their own learning rates, and start from a saved checkpoint.

    model = build_backbone_and_head()
    load_pretrained(model, "source.ckpt", exclude=["fc"])      # everything but the old head
    replace_head(model, num_classes=5)                         # a fresh Linear for the new classes
    freeze(model)                                              # the whole model ...
    unfreeze(model, "fc")                                      # ... but the new head
    optimizer = optim.SGD(param_groups(model, {"fc": 0.1}), lr=0.01, momentum=0.9)
"""
import numpy as np

import fastnn
from fastnn import nn

__all__ = ["freeze", "unfreeze", "frozen_parameters", "trainable_parameters", "replace_head", "find_head",
           "param_groups", "load_pretrained"]


def _selected(model, targets):
    """(name, parameter) pairs of `model` under any of `targets`: submodules of `model`, or name prefixes
    ("features" selects "features.0.weight", "features.3.bias", ...; a full parameter name selects it). No
    targets: every parameter."""
    named = list(model.named_parameters())
    if not targets:
        return named
    chosen, ids = [], set()
    for target in targets:
        if isinstance(target, nn.Module):
            found = [(n, p) for n, p in named if any(p is q for q in target.parameters())]
            if not any(m is target for m in model.modules()):
                raise ValueError(f"{type(target).__name__} module is not a submodule of the model")
        elif isinstance(target, str):
            found = [(n, p) for n, p in named if n == target or n.startswith(target + ".")]
            if not found:
                names = list(dict.fromkeys(n.rpartition(".")[0] or n for n, _ in named))
                raise ValueError(f"no parameter of the model is named {target!r} or under it; module names with "
                                 f"parameters: {', '.join(names)}")
        else:
            raise TypeError(f"freeze/unfreeze targets are submodules or name prefixes (str), got "
                            f"{type(target).__name__}")
        for n, p in found:
            if id(p) not in ids:
                ids.add(id(p))
                chosen.append((n, p))
    return chosen


def freeze(model, *targets):
    """Stop training the parameters under `targets` (submodules or name prefixes; none: the whole model):
    requires_grad=False, so they get no gradients and optimizers skip them. Returns the frozen names.
    BatchNorm running statistics still move in train mode: put frozen BN layers in eval() to fix them too."""
    chosen = _selected(model, targets)
    for _, p in chosen:
        p.requires_grad_(False)
        p.grad = None
    return [n for n, _ in chosen]


def unfreeze(model, *targets):
    """Train the parameters under `targets` (submodules or name prefixes; none: the whole model) again.
    Returns their names."""
    chosen = _selected(model, targets)
    for _, p in chosen:
        p.requires_grad_(True)
    return [n for n, _ in chosen]


def trainable_parameters(model):
    """The parameters with requires_grad=True (what to hand to an optimizer)."""
    return [p for p in model.parameters() if p.requires_grad]


def frozen_parameters(model):
    """Names of the parameters with requires_grad=False."""
    return [n for n, p in model.named_parameters() if not p.requires_grad]


def find_head(model):
    """The dotted name of the model's classifier head: its last Linear module in registration order."""
    name = None
    for n, m in model.named_modules():
        if isinstance(m, nn.Linear):
            name = n
    if name is None:
        raise ValueError(f"{type(model).__name__} has no Linear layer to act as its head; pass name= explicitly")
    return name


def replace_head(model, num_classes, name=None, bias=True):
    """Replace the classifier head `name` (default: find_head(model)) with a fresh nn.Linear of the same input
    width and `num_classes` outputs, initialised as PyTorch's Linear is; returns the new layer."""
    if isinstance(num_classes, bool) or not isinstance(num_classes, int) or num_classes < 1:
        raise ValueError(f"num_classes must be a positive integer, got {num_classes!r}")
    name = find_head(model) if name is None else name
    old = model.get_submodule(name)
    if not isinstance(old, nn.Linear):
        raise ValueError(f"module {name!r} is a {type(old).__name__}, not a Linear head")
    parent_name, _, attr = name.rpartition(".")
    parent = model.get_submodule(parent_name)
    head = nn.Linear(old.in_features, num_classes, bias=bias)
    setattr(parent, attr, head)
    return head


def param_groups(model, lrs, default_lr=None, **options):
    """Optimizer parameter groups with their own learning rates: `lrs` maps name prefixes (or submodules) to a
    learning rate; the trainable parameters under none of them form a last group with `default_lr` (omitted when
    default_lr is None and they are all covered; else the optimizer's lr applies to that group). Frozen
    parameters are left out. `options` (momentum=..., weight_decay=...) are added to every group. A parameter
    under several prefixes goes to the first one listed."""
    groups, taken = [], set()
    for target, lr in lrs.items():
        params = [p for _, p in _selected(model, [target]) if p.requires_grad and id(p) not in taken]
        taken.update(id(p) for p in params)
        if params:
            groups.append({"params": params, "lr": lr, **options})
    rest = [p for p in model.parameters() if p.requires_grad and id(p) not in taken]
    if rest:
        group = {"params": rest, **options}
        if default_lr is not None:
            group["lr"] = default_lr
        groups.append(group)
    if not groups:
        raise ValueError("the model has no trainable parameters: unfreeze some first")
    return groups


def load_pretrained(model, path_or_state_dict, exclude=(), strict=False):
    """Load a checkpoint (a path for fastnn.load, or a state dict) into `model` to fine-tune from it. Keys
    under the `exclude` prefixes (e.g. the old head) and keys whose shape differs from the model's are skipped
    (with strict=False); returns (missing_keys, unexpected_keys, skipped_keys)."""
    state = fastnn.load(path_or_state_dict) if not isinstance(path_or_state_dict, dict) else path_or_state_dict
    if isinstance(state, dict) and "model" in state and isinstance(state["model"], dict):
        state = state["model"]  # a training checkpoint holding the model's state_dict under "model"
    own = model.state_dict()
    skipped, kept = [], {}
    for key, value in state.items():
        excluded = any(key == p or key.startswith(p + ".") for p in exclude)
        shape = tuple(getattr(value, "shape", ()))
        if key in own and shape != tuple(own[key].shape) and _squeezed(shape) == _squeezed(own[key].shape):
            # Same values, other singleton axes (a 0-d counter stored as shape (1,), say): take them as they are.
            value = np.asarray(value.detach().numpy() if hasattr(value, "detach") else value).reshape(own[key].shape)
            shape = tuple(own[key].shape)
        if excluded or (key in own and shape != tuple(own[key].shape) and not strict):
            skipped.append(key)
        else:
            kept[key] = value
    missing, unexpected = model.load_state_dict(kept, strict=strict)
    return list(missing), list(unexpected), skipped


def _squeezed(shape):
    return tuple(d for d in shape if d != 1)

"""Forward-mode automatic differentiation with PyTorch's names (torch.autograd.forward_ad).

Inside `dual_level()`, `make_dual(x, v)` gives a tensor that carries the tangent v; every op applied to it
computes its output's tangent (the Jacobian-vector product) by the tangent rule it defines beside its backward
(see fastnn.autograd.make_result), and `unpack_dual(y)` returns (primal, tangent). Levels nest: a tangent rule runs
with its own level hidden, so inner levels see tangents of outer ones (forward-over-forward gives second
derivatives). Tangent rules are built from fastnn ops, so reverse mode differentiates through them
(reverse-over-forward); the reverse: forward-over-reverse, is impossible because backward closures compute on
arrays.
"""
from collections import namedtuple

from fastnn.autograd import _forward, hidden_level, make_result, set_tangent

__all__ = ["UnpackedDualTensor", "dual_level", "enter_dual_level", "exit_dual_level", "make_dual", "unpack_dual"]

UnpackedDualTensor = namedtuple("UnpackedDualTensor", ["primal", "tangent"])
_next_level = [0]


def enter_dual_level():
    """Enter a new (innermost) dual level and return its id."""
    level = _next_level[0]
    _next_level[0] += 1
    _forward.entered.append(level)
    _forward.duals[level] = []
    _forward.visible = _forward.visible + (level,)
    return level


def exit_dual_level(*, level=None):
    """Exit the innermost dual level (`level` must be it when given); the tangents at it are dropped."""
    if not _forward.entered:
        raise RuntimeError("exit_dual_level: no dual level is entered")
    innermost = _forward.entered[-1]
    if level is not None and level != innermost:
        raise RuntimeError(f"exit_dual_level: trying to exit level {level} but the innermost level is {innermost}; "
                           f"exit levels in the reverse order of entering them")
    _forward.entered.pop()
    _forward.visible = tuple(v for v in _forward.visible if v != innermost)
    for ref in _forward.duals.pop(innermost):
        tensor = ref()
        if tensor is not None and tensor._fw_tangents:
            tangents = {k: v for k, v in tensor._fw_tangents.items() if k != innermost}
            tensor._fw_tangents = tangents or None


class dual_level:
    """Context manager: `with dual_level():` enters a level (the value of the `as` target) and exits it."""

    def __enter__(self):
        self._level = enter_dual_level()
        return self._level

    def __exit__(self, *exc):
        exit_dual_level(level=self._level)
        return False


def _level_or_current(level, what):
    if level is None:
        if not _forward.entered:
            return None
        return _forward.entered[-1]
    if level not in _forward.entered:
        raise RuntimeError(f"{what}: level {level} is not an entered dual level (entered: {_forward.entered})")
    return level


def make_dual(tensor, tangent, *, level=None):
    """A view of `tensor` carrying `tangent` at `level` (the innermost by default); `tensor` itself is unchanged."""
    from fastnn.tensor import Tensor
    for name, t in (("tensor", tensor), ("tangent", tangent)):
        if not isinstance(t, Tensor):
            raise TypeError(f"make_dual: {name} must be a Tensor, got {type(t).__name__}")
        if t.dtype.kind != "f":
            raise TypeError(f"make_dual: expected {name} to be floating point, got {t.dtype}")
    level = _level_or_current(level, "make_dual")
    if level is None:
        raise RuntimeError("make_dual: no dual level is entered; use `with forward_ad.dual_level():` first")
    if tangent.shape != tensor.shape:
        raise ValueError(f"make_dual: the tangent's shape {tuple(tangent.shape)} differs from the primal's shape "
                         f"{tuple(tensor.shape)}")
    if tangent.dtype != tensor.dtype:
        raise TypeError(f"make_dual: the tangent's dtype {tangent.dtype} differs from the primal's dtype "
                        f"{tensor.dtype}")
    if tangent._backend is not tensor._backend:
        raise RuntimeError(f"make_dual: the tangent is on {tangent.device} but the primal is on {tensor.device}")
    dual = _alias(tensor, level, "make_dual")
    set_tangent(dual, level, tangent)
    return dual


def unpack_dual(tensor, *, level=None):
    """(primal, tangent) of `tensor` at `level` (the innermost by default): the primal is a view without that
    tangent (reverse mode still flows through it); the tangent is None when it has none or no level is entered."""
    level = _level_or_current(level, "unpack_dual")
    tangent = tensor._fw_tangents.get(level) if level is not None and tensor._fw_tangents else None
    if tangent is None:
        return UnpackedDualTensor(tensor, None)
    return UnpackedDualTensor(_alias(tensor, level, "unpack_dual"), tangent)


def composite_tangent(fn, inputs, tangents):
    """The tangent of fn(*inputs) along `tangents` (None for an input without one), fn being built from ops that
    have tangent rules: the rule of a fused op with no short derivative (a recurrent layer's time loop) evaluates
    the op's composite form at a fresh dual level."""
    with dual_level() as level:
        duals = [x if t is None else make_dual(x, t, level=level) for x, t in zip(inputs, tangents)]
        return unpack_dual(fn(*duals), level=level).tangent


def _alias(tensor, level, name):
    """A view of `tensor` that keeps its reverse-mode graph and its tangents at every level but `level`."""
    with hidden_level(level):
        return make_result(tensor._data, (tensor,), lambda g: (g,), name, saved=(), shares_storage=tensor,
                           tangent=lambda t: t)

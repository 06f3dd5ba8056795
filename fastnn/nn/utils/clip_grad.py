"""Gradient clipping, as torch.nn.utils.clip_grad_norm_ / clip_grad_value_: rescale or clamp the gradients
of parameters in place, before the optimizer step. The arithmetic runs on the gradients' device."""
import math

from fastnn.tensor import Tensor

__all__ = ["clip_grad_norm_", "clip_grad_value_"]


def _grads(parameters):
    if isinstance(parameters, Tensor):
        parameters = [parameters]
    grads = []
    for p in parameters:
        if not isinstance(p, Tensor):
            raise TypeError(f"parameters must be Tensors (or an iterable of them), got {type(p).__name__}")
        if p.grad is not None:
            grads.append(p.grad)
    return grads


def _vector_norm(xp, values, norm_type):
    if math.isinf(norm_type):
        return abs(values).max()
    return (abs(values) ** norm_type).sum() ** (1.0 / norm_type)


def clip_grad_norm_(parameters, max_norm, norm_type=2.0, error_if_nonfinite=False, foreach=None):
    """Scale all gradients by min(1, max_norm / (total_norm + 1e-6)), where total_norm is the `norm_type`-norm
    of all gradients seen as one vector (the norm of the per-gradient norms; norm_type may be inf). Returns
    total_norm as a 0-d Tensor on the gradients' device; raises RuntimeError if it is nan or inf and
    error_if_nonfinite. `foreach` is accepted for PyTorch compatibility (one fused path here)."""
    grads = _grads(parameters)
    max_norm, norm_type = float(max_norm), float(norm_type)
    if not grads:
        return Tensor(0.0)
    backend = grads[0]._backend
    if any(g._backend is not backend for g in grads):
        raise RuntimeError("clip_grad_norm_: all gradients must be on the same device, got "
                           f"{sorted({str(g.device) for g in grads})}")
    xp = backend.xp
    dtype = xp.result_type(*[g.dtype for g in grads])
    norms = xp.stack([_vector_norm(xp, g._data.reshape(-1).astype(dtype), norm_type) for g in grads])
    total_norm = _vector_norm(xp, norms, norm_type)
    if error_if_nonfinite and not math.isfinite(float(total_norm)):
        raise RuntimeError(f"The total norm of order {norm_type} for gradients from `parameters` is non-finite, so "
                           f"it cannot be clipped. To disable this error and scale the gradients by the non-finite "
                           f"norm anyway, set `error_if_nonfinite=False`")
    clip_coef = xp.minimum(dtype.type(max_norm) / (total_norm + dtype.type(1e-6)), dtype.type(1.0))
    # A coefficient of exactly 1 leaves the gradients unchanged (nan still propagates, as in PyTorch).
    if float(clip_coef) != 1.0:
        for g in grads:
            g._data *= clip_coef.astype(g.dtype)
            g._bump_version()
    return Tensor._wrap(xp.asarray(total_norm, dtype=dtype), backend)


def clip_grad_value_(parameters, clip_value, foreach=None):
    """Clamp every gradient element to [-clip_value, clip_value]."""
    clip_value = float(clip_value)
    for g in _grads(parameters):
        g._backend.xp.clip(g._data, -clip_value, clip_value, out=g._data)
        g._bump_version()

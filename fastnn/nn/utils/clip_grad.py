"""Gradient clipping, as torch.nn.utils.clip_grad_norm_ / clip_grad_value_: rescale or clamp the gradients
of parameters in place, before the optimizer step."""
import numpy as np

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
            grads.append(p.grad.data)
    return grads


def clip_grad_norm_(parameters, max_norm, norm_type=2.0, error_if_nonfinite=False):
    """Scale all gradients by min(1, max_norm / (total_norm + 1e-6)), where total_norm is the `norm_type`-norm
    of all gradients seen as one vector (the norm of the per-gradient norms; norm_type may be inf). Returns
    total_norm as a 0-d Tensor; raises RuntimeError if it is nan or inf and error_if_nonfinite."""
    grads = _grads(parameters)
    max_norm, norm_type = float(max_norm), float(norm_type)
    if not grads:
        return Tensor(np.array(0.0, dtype=np.float32))
    dtype = np.result_type(*grads)
    norms = np.array([np.linalg.norm(g.reshape(-1), norm_type) for g in grads], dtype=dtype)
    total_norm = np.linalg.norm(norms, norm_type)
    if error_if_nonfinite and not np.isfinite(total_norm):
        raise RuntimeError(f"The total norm of order {norm_type} for gradients from `parameters` is non-finite, so "
                           f"it cannot be clipped. To disable this error and scale the gradients by the non-finite "
                           f"norm anyway, set `error_if_nonfinite=False`")
    clip_coef = np.minimum(dtype.type(max_norm) / (total_norm + dtype.type(1e-6)), dtype.type(1.0))
    # A coefficient of exactly 1 leaves the gradients unchanged (nan still propagates, as in PyTorch).
    if clip_coef != 1.0:
        for g in grads:
            g *= clip_coef
    return Tensor(np.asarray(total_norm, dtype=dtype))


def clip_grad_value_(parameters, clip_value):
    """Clamp every gradient element to [-clip_value, clip_value]."""
    clip_value = float(clip_value)
    for g in _grads(parameters):
        np.clip(g, -clip_value, clip_value, out=g)

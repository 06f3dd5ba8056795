"""Optimizer update kernels (Numba, CPU): update flat contiguous 1-D param and state arrays IN PLACE.

The math is PyTorch's single-tensor path (torch/optim/sgd.py, adam.py). The public functions take Python
scalars, derive the per-step constants in float64 as PyTorch does, then cast every scalar to the param's
dtype so the element loops stay in float32 for float32 params. One `prange` over elements per loop (no
manual chunking: measured 3-10x slower); each element is read and written by exactly one iteration.
"""
import numpy as np
from numba import njit, prange

__all__ = ["sgd_step", "adam_step"]


@njit(parallel=True, nogil=True, cache=True)
def _sgd_plain(param, grad, lr, weight_decay, maximize):
    for i in prange(param.size):
        g = -grad[i] if maximize else grad[i]
        g = g + weight_decay * param[i]
        param[i] = param[i] - lr * g


@njit(parallel=True, nogil=True, cache=True)
def _sgd_momentum(param, grad, buf, lr, momentum, keep, weight_decay, nesterov, maximize, first_step):
    for i in prange(param.size):
        g = -grad[i] if maximize else grad[i]
        g = g + weight_decay * param[i]
        # PyTorch's first step starts the buffer at the gradient itself, without dampening.
        b = g if first_step else buf[i] * momentum + keep * g
        buf[i] = b
        step = g + momentum * b if nesterov else b
        param[i] = param[i] - lr * step


def sgd_step(param, grad, momentum_buf, lr, momentum, dampening, weight_decay, nesterov, maximize, first_step):
    """One SGD step. `momentum_buf` is ignored (may be an empty array) when momentum == 0."""
    dtype = param.dtype.type
    if momentum == 0:
        _sgd_plain(param, grad, dtype(lr), dtype(weight_decay), maximize)
    else:
        _sgd_momentum(param, grad, momentum_buf, dtype(lr), dtype(momentum), dtype(1 - dampening),
                      dtype(weight_decay), nesterov, maximize, first_step)


@njit(parallel=True, nogil=True, cache=True, error_model="numpy")
def _adam(param, grad, exp_avg, exp_avg_sq, max_exp_avg_sq, weight_decay, decay, one_minus_beta1, beta2,
          one_minus_beta2, eps, step_size, bias_correction2_sqrt, amsgrad, maximize):
    lerp_low = one_minus_beta1 < 0.5
    one = param.dtype.type(1)
    for i in prange(param.size):
        g = -grad[i] if maximize else grad[i]
        p = param[i] * decay
        g = g + weight_decay * p
        m = exp_avg[i]
        # torch.lerp's two formulas (chosen by the weight) keep exp_avg bit-close to PyTorch.
        m = m + one_minus_beta1 * (g - m) if lerp_low else g - (g - m) * (one - one_minus_beta1)
        exp_avg[i] = m
        v = exp_avg_sq[i] * beta2 + one_minus_beta2 * g * g
        exp_avg_sq[i] = v
        if amsgrad:
            v = max(max_exp_avg_sq[i], v)
            max_exp_avg_sq[i] = v
        param[i] = p - step_size * (m / (np.sqrt(v) / bias_correction2_sqrt + eps))


def adam_step(param, grad, exp_avg, exp_avg_sq, max_exp_avg_sq, step, lr, beta1, beta2, eps, weight_decay,
              amsgrad, decoupled_weight_decay, maximize):
    """One Adam/AdamW step; `step` is the 1-based step count after incrementing.

    `max_exp_avg_sq` is ignored (may be an empty array) unless amsgrad. Decoupled weight decay (AdamW)
    scales the param by (1 - lr*weight_decay) before the update; coupled (Adam) adds weight_decay*param
    to the gradient.
    """
    dtype = param.dtype.type
    bias_correction1 = 1 - beta1 ** step
    bias_correction2 = 1 - beta2 ** step
    decay, coupled = (1 - lr * weight_decay, 0.0) if decoupled_weight_decay else (1.0, weight_decay)
    _adam(param, grad, exp_avg, exp_avg_sq, max_exp_avg_sq, dtype(coupled), dtype(decay), dtype(1 - beta1),
          dtype(beta2), dtype(1 - beta2), dtype(eps), dtype(lr / bias_correction1),
          dtype(bias_correction2 ** 0.5), amsgrad, maximize)

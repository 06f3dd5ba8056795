"""Update kernels of Adadelta, Adamax, RAdam, ASGD, Rprop and SparseAdam (Numba, CPU), on flat contiguous 1-D
param and state arrays updated IN PLACE.

The math is PyTorch 2.13's single-tensor path (torch/optim/adadelta.py, adamax.py, radam.py, asgd.py, rprop.py,
_functional.py's sparse_adam). The public functions take Python scalars, derive the per-step constants in
float64 as PyTorch does, then cast every scalar to the param's dtype so the element loops stay in float32 for
float32 params. One `prange` per loop over independent elements (SparseAdam: over rows); each element is read
and written by exactly one iteration, so results do not depend on the thread count.
"""
import numpy as np
from numba import njit, prange

from fastnn._kernels.cpu_optim_adaptive import _lerp

__all__ = ["adadelta_step", "adamax_step", "radam_step", "asgd_step", "rprop_step", "sparse_adam_step"]


@njit(parallel=True, nogil=True, cache=True, error_model="numpy")
def _adadelta(param, grad, square_avg, acc_delta, lr, rho, one_minus_rho, eps, weight_decay, maximize):
    for i in prange(param.size):
        g = -grad[i] if maximize else grad[i]
        g = g + weight_decay * param[i]
        sq = square_avg[i] * rho + one_minus_rho * g * g
        square_avg[i] = sq
        # PyTorch's order: sqrt(acc + eps) / sqrt(sq + eps) * g
        delta = np.sqrt(acc_delta[i] + eps) / np.sqrt(sq + eps) * g
        acc_delta[i] = acc_delta[i] * rho + one_minus_rho * delta * delta
        param[i] = param[i] - lr * delta


def adadelta_step(param, grad, square_avg, acc_delta, lr, rho, eps, weight_decay, maximize):
    """One Adadelta step. g = grad + weight_decay*p; square_avg = rho*square_avg + (1-rho)*g^2;
    delta = sqrt(acc_delta + eps) / sqrt(square_avg + eps) * g; acc_delta = rho*acc_delta + (1-rho)*delta^2;
    p -= lr*delta."""
    dtype = param.dtype.type
    _adadelta(param, grad, square_avg, acc_delta, dtype(lr), dtype(rho), dtype(1 - rho), dtype(eps),
              dtype(weight_decay), maximize)


@njit(parallel=True, nogil=True, cache=True, error_model="numpy")
def _adamax(param, grad, exp_avg, exp_inf, weight_decay, one_minus_beta1, beta2, eps, clr, maximize):
    lerp_complement = param.dtype.type(1) - one_minus_beta1
    for i in prange(param.size):
        g = -grad[i] if maximize else grad[i]
        g = g + weight_decay * param[i]
        m = _lerp(exp_avg[i], g, one_minus_beta1, lerp_complement)
        exp_avg[i] = m
        u = max(exp_inf[i] * beta2, abs(g) + eps)
        exp_inf[i] = u
        param[i] = param[i] - clr * (m / u)


def adamax_step(param, grad, exp_avg, exp_inf, step, lr, beta1, beta2, eps, weight_decay, maximize):
    """One Adamax step; `step` is the 1-based step count after incrementing. exp_avg = lerp(exp_avg, g, 1-beta1);
    exp_inf = max(beta2*exp_inf, |g| + eps); p -= lr/(1-beta1^t) * exp_avg/exp_inf."""
    dtype = param.dtype.type
    _adamax(param, grad, exp_avg, exp_inf, dtype(weight_decay), dtype(1 - beta1), dtype(beta2), dtype(eps),
            dtype(lr / (1 - beta1 ** step)), maximize)


@njit(parallel=True, nogil=True, cache=True, error_model="numpy")
def _radam(param, grad, exp_avg, exp_avg_sq, weight_decay, decay, one_minus_beta1, beta2, one_minus_beta2,
           bias_correction1, lr, bias_correction2_sqrt, eps, rect, rectified, maximize):
    lerp_complement = param.dtype.type(1) - one_minus_beta1
    for i in prange(param.size):
        g = -grad[i] if maximize else grad[i]
        p = param[i] * decay
        g = g + weight_decay * p
        m = _lerp(exp_avg[i], g, one_minus_beta1, lerp_complement)
        exp_avg[i] = m
        v = exp_avg_sq[i] * beta2 + one_minus_beta2 * g * g
        exp_avg_sq[i] = v
        update = m / bias_correction1 * lr
        if rectified:
            update = update * (bias_correction2_sqrt / (np.sqrt(v) + eps)) * rect
        param[i] = p - update


def radam_step(param, grad, exp_avg, exp_avg_sq, step, lr, beta1, beta2, eps, weight_decay, decoupled_weight_decay,
               maximize):
    """One RAdam step; `step` is the 1-based step count after incrementing. Moments as Adam's;
    rho_inf = 2/(1-beta2) - 1, rho_t = rho_inf - 2t*beta2^t/(1-beta2^t); when rho_t > 5:
    p -= lr * m_hat * r_t * sqrt(1-beta2^t)/(sqrt(v) + eps) with r_t = sqrt((rho_t-4)(rho_t-2)rho_inf /
    ((rho_inf-4)(rho_inf-2)rho_t)), else p -= lr * m_hat (SGD with momentum). Weight decay as Adam's (coupled)
    or AdamW's (decoupled)."""
    dtype = param.dtype.type
    bias_correction1 = 1 - beta1 ** step
    bias_correction2 = 1 - beta2 ** step
    rho_inf = 2 / (1 - beta2) - 1
    rho_t = rho_inf - 2 * step * beta2 ** step / bias_correction2
    rectified = rho_t > 5.0
    rect = ((rho_t - 4) * (rho_t - 2) * rho_inf / ((rho_inf - 4) * (rho_inf - 2) * rho_t)) ** 0.5 if rectified else 1.0
    decay, coupled = (1 - lr * weight_decay, 0.0) if decoupled_weight_decay else (1.0, weight_decay)
    _radam(param, grad, exp_avg, exp_avg_sq, dtype(coupled), dtype(decay), dtype(1 - beta1), dtype(beta2),
           dtype(1 - beta2), dtype(bias_correction1), dtype(lr), dtype(bias_correction2 ** 0.5), dtype(eps),
           dtype(rect), rectified, maximize)


@njit(parallel=True, nogil=True, cache=True, error_model="numpy")
def _asgd(param, grad, ax, decay, eta, weight_decay, mu, average, maximize):
    for i in prange(param.size):
        g = -grad[i] if maximize else grad[i]
        p = param[i]
        g = g + weight_decay * p
        p = p * decay - eta * g
        param[i] = p
        # PyTorch copies the param into ax while mu == 1 (before t0) and averages afterwards.
        ax[i] = ax[i] + (p - ax[i]) * mu if average else p


def asgd_step(param, grad, ax, step, eta, mu, lr, lambd, alpha, t0, weight_decay, maximize):
    """One ASGD step with the current `eta` and `mu`; `step` is the 1-based step count after incrementing.
    p = p*(1 - lambd*eta) - eta*g; ax += (p - ax)*mu (ax = p while mu == 1). Returns the next (eta, mu):
    eta = lr / (1 + lambd*lr*t)^alpha, mu = 1 / max(1, t - t0)."""
    dtype = param.dtype.type
    _asgd(param, grad, ax, dtype(1 - lambd * eta), dtype(eta), dtype(weight_decay), dtype(mu), mu != 1, maximize)
    return lr / ((1 + lambd * lr * step) ** alpha), 1 / max(1, step - t0)


@njit(parallel=True, nogil=True, cache=True, error_model="numpy")
def _rprop(param, grad, prev, step_size, etaminus, etaplus, step_size_min, step_size_max, maximize):
    zero, one = param.dtype.type(0), param.dtype.type(1)
    for i in prange(param.size):
        g = -grad[i] if maximize else grad[i]
        s = g * prev[i]
        factor = etaplus if s > zero else (etaminus if s < zero else one)
        size = min(max(step_size[i] * factor, step_size_min), step_size_max)
        step_size[i] = size
        if s < zero:  # the sign flipped: no move this step, and the next step counts as a fresh start
            g = zero
        direction = one if g > zero else (-one if g < zero else zero)
        param[i] = param[i] - direction * size
        prev[i] = g


def rprop_step(param, grad, prev, step_size, etaminus, etaplus, step_size_min, step_size_max, maximize):
    """One Rprop step. s = g*prev: s > 0 multiplies step_size by etaplus, s < 0 by etaminus (and zeroes g);
    step_size is clamped to [step_size_min, step_size_max]; p -= sign(g)*step_size; prev = g."""
    dtype = param.dtype.type
    _rprop(param, grad, prev, step_size, dtype(etaminus), dtype(etaplus), dtype(step_size_min),
           dtype(step_size_max), maximize)


@njit(parallel=True, nogil=True, cache=True, error_model="numpy")
def _sparse_adam(param, grad, exp_avg, exp_avg_sq, row_size, one_minus_beta1, one_minus_beta2, eps, step_size,
                 maximize):
    zero = param.dtype.type(0)
    for r in prange(param.size // row_size):
        start = r * row_size
        present = False
        for j in range(start, start + row_size):
            if grad[j] != zero:
                present = True
                break
        if not present:  # a row a sparse gradient would not hold: its moments and values stay
            continue
        for j in range(start, start + row_size):
            g = -grad[j] if maximize else grad[j]
            m_old = exp_avg[j]
            m_update = (g - m_old) * one_minus_beta1
            exp_avg[j] = m_old + m_update
            v_old = exp_avg_sq[j]
            v_update = (g * g - v_old) * one_minus_beta2
            exp_avg_sq[j] = v_old + v_update
            param[j] = param[j] + -step_size * ((m_update + m_old) / (np.sqrt(v_update + v_old) + eps))


def sparse_adam_step(param, grad, exp_avg, exp_avg_sq, row_size, step, lr, beta1, beta2, eps, maximize):
    """One SparseAdam step on the rows (consecutive runs of `row_size` elements: slices along the param's first
    dimension) whose gradient has a nonzero entry, the rows a sparse gradient would hold; other rows are left
    alone. On those rows: exp_avg += (g - exp_avg)*(1-beta1); exp_avg_sq += (g^2 - exp_avg_sq)*(1-beta2);
    p -= lr*sqrt(1-beta2^t)/(1-beta1^t) * exp_avg/(sqrt(exp_avg_sq) + eps)."""
    dtype = param.dtype.type
    step_size = lr * (1 - beta2 ** step) ** 0.5 / (1 - beta1 ** step)
    _sparse_adam(param, grad, exp_avg, exp_avg_sq, row_size, dtype(1 - beta1), dtype(1 - beta2), dtype(eps),
                 dtype(step_size), maximize)

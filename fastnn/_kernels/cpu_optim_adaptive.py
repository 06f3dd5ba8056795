"""Adaptive optimizer update kernels (Numba, CPU): Adagrad, RMSprop, NAdam on flat contiguous 1-D arrays,
updated IN PLACE.

The math is PyTorch's single-tensor path (torch/optim/adagrad.py, rmsprop.py, nadam.py). The public functions
take Python scalars, derive the per-step constants in float64 as PyTorch does, then cast every scalar to the
param's dtype so the element loops stay in float32 for float32 params. One `prange` over elements per loop;
each element is read and written by exactly one iteration, so results do not depend on the thread count.
"""
import numpy as np
from numba import njit, prange

__all__ = ["adagrad_step", "rmsprop_step", "nadam_step"]


@njit(inline="always")
def _lerp(start, end, weight, one_minus_weight):
    """torch.lerp's two formulas (chosen by the weight), so running averages stay bit-close to PyTorch's."""
    if weight < 0.5:
        return start + weight * (end - start)
    return end - (end - start) * one_minus_weight


@njit(parallel=True, nogil=True, cache=True, error_model="numpy")
def _adagrad(param, grad, state_sum, clr, weight_decay, eps, maximize):
    for i in prange(param.size):
        g = -grad[i] if maximize else grad[i]
        g = g + weight_decay * param[i]
        s = state_sum[i] + g * g
        state_sum[i] = s
        param[i] = param[i] - clr * (g / (np.sqrt(s) + eps))


def adagrad_step(param, grad, state_sum, step, lr, lr_decay, weight_decay, eps, maximize):
    """One Adagrad step; `step` is the 1-based step count after incrementing.
    sum += g*g; param -= lr / (1 + (step-1)*lr_decay) * g / (sqrt(sum) + eps), g = grad + weight_decay*param."""
    dtype = param.dtype.type
    clr = lr / (1 + (step - 1) * lr_decay)
    _adagrad(param, grad, state_sum, dtype(clr), dtype(weight_decay), dtype(eps), maximize)


@njit(inline="always")
def _rmsprop_apply(param, momentum_buffer, i, g, avg, lr, momentum, use_momentum):
    """The parameter update of RMSprop from g / avg, through the momentum buffer when use_momentum."""
    if use_momentum:
        b = momentum_buffer[i] * momentum + g / avg
        momentum_buffer[i] = b
        param[i] = param[i] - lr * b
    else:
        param[i] = param[i] - lr * (g / avg)


# Plain and centered RMSprop are separate loops: a `centered` branch inside one loop (a conditional load and
# store of grad_avg) kept LLVM from vectorizing it and made the plain case 2x slower.
@njit(parallel=True, nogil=True, cache=True, error_model="numpy")
def _rmsprop(param, grad, square_avg, momentum_buffer, lr, alpha, one_minus_alpha, eps, weight_decay, momentum,
             use_momentum, maximize):
    for i in prange(param.size):
        g = -grad[i] if maximize else grad[i]
        g = g + weight_decay * param[i]
        sq = square_avg[i] * alpha + one_minus_alpha * g * g
        square_avg[i] = sq
        _rmsprop_apply(param, momentum_buffer, i, g, np.sqrt(sq) + eps, lr, momentum, use_momentum)


@njit(parallel=True, nogil=True, cache=True, error_model="numpy")
def _rmsprop_centered(param, grad, square_avg, grad_avg, momentum_buffer, lr, alpha, one_minus_alpha, eps,
                      weight_decay, momentum, use_momentum, maximize):
    lerp_complement = param.dtype.type(1) - one_minus_alpha
    for i in prange(param.size):
        g = -grad[i] if maximize else grad[i]
        g = g + weight_decay * param[i]
        sq = square_avg[i] * alpha + one_minus_alpha * g * g
        square_avg[i] = sq
        a = _lerp(grad_avg[i], g, one_minus_alpha, lerp_complement)
        grad_avg[i] = a
        _rmsprop_apply(param, momentum_buffer, i, g, np.sqrt(sq - a * a) + eps, lr, momentum, use_momentum)


def rmsprop_step(param, grad, square_avg, grad_avg, momentum_buffer, lr, alpha, eps, weight_decay, momentum,
                 centered, maximize):
    """One RMSprop step. square_avg = alpha*square_avg + (1-alpha)*g*g; centered: grad_avg = lerp(grad_avg, g,
    1-alpha) and avg = sqrt(square_avg - grad_avg^2) + eps, else sqrt(square_avg) + eps; momentum > 0:
    buf = momentum*buf + g/avg, param -= lr*buf; else param -= lr*g/avg.

    `grad_avg` is ignored unless centered, `momentum_buffer` unless momentum > 0 (either may be empty).
    """
    dtype = param.dtype.type
    scalars = (dtype(lr), dtype(alpha), dtype(1 - alpha), dtype(eps), dtype(weight_decay), dtype(momentum),
               momentum > 0, maximize)
    if centered:
        _rmsprop_centered(param, grad, square_avg, grad_avg, momentum_buffer, *scalars)
    else:
        _rmsprop(param, grad, square_avg, momentum_buffer, *scalars)


@njit(parallel=True, nogil=True, cache=True, error_model="numpy")
def _nadam(param, grad, exp_avg, exp_avg_sq, weight_decay, decay, one_minus_beta1, beta2, one_minus_beta2,
           bias_correction2, eps, grad_coef, exp_avg_coef, maximize):
    lerp_complement = param.dtype.type(1) - one_minus_beta1
    for i in prange(param.size):
        g = -grad[i] if maximize else grad[i]
        p = param[i] * decay
        g = g + weight_decay * p
        m = _lerp(exp_avg[i], g, one_minus_beta1, lerp_complement)
        exp_avg[i] = m
        v = exp_avg_sq[i] * beta2 + one_minus_beta2 * g * g
        exp_avg_sq[i] = v
        denom = np.sqrt(v / bias_correction2) + eps
        # Two separate additions, as PyTorch's two addcdiv_ calls.
        p = p + grad_coef * (g / denom)
        param[i] = p + exp_avg_coef * (m / denom)


def nadam_step(param, grad, exp_avg, exp_avg_sq, step, mu_product, lr, beta1, beta2, eps, weight_decay,
               momentum_decay, decoupled_weight_decay, maximize):
    """One NAdam step; `step` is the 1-based step count after incrementing, `mu_product` the product of the
    momentum coefficients mu_1..mu_{step-1} (1.0 on the first step). Returns the new mu_product.

    mu_t = beta1 * (1 - 0.5 * 0.96^(t*momentum_decay)); exp_avg, exp_avg_sq as Adam's;
    param -= lr*(1-mu_t)/(1-prod mu_1..t) * g/denom + lr*mu_{t+1}/(1-prod mu_1..t+1) * exp_avg/denom with
    denom = sqrt(exp_avg_sq / (1-beta2^t)) + eps. Weight decay as Adam's (coupled) or AdamW's (decoupled).
    """
    dtype = param.dtype.type
    mu = beta1 * (1.0 - 0.5 * 0.96 ** (step * momentum_decay))
    mu_next = beta1 * (1.0 - 0.5 * 0.96 ** ((step + 1) * momentum_decay))
    mu_product = mu_product * mu
    mu_product_next = mu_product * mu_next
    decay, coupled = (1 - lr * weight_decay, 0.0) if decoupled_weight_decay else (1.0, weight_decay)
    _nadam(param, grad, exp_avg, exp_avg_sq, dtype(coupled), dtype(decay), dtype(1 - beta1), dtype(beta2),
           dtype(1 - beta2), dtype(1 - beta2 ** step), dtype(eps), dtype(-lr * (1.0 - mu) / (1.0 - mu_product)),
           dtype(-lr * mu_next / (1.0 - mu_product_next)), maximize)
    return mu_product

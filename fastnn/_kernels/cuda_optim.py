"""Optimizer update kernels (numba.cuda): SGD, Adam/AdamW/AMSGrad, Adagrad, RMSprop, NAdam, one launch per
parameter tensor, updating the flat param and state arrays IN PLACE (one thread per element, each element read
and written by its own thread only).

The per-step constants are derived on the host in float64 and cast to the param's dtype exactly as in
cpu_optim.py / cpu_optim_adaptive.py, whose element formulas (PyTorch's single-tensor path, torch.lerp's two
formulas) these kernels repeat; the tests hold both to the NumPy references.
"""
import math

from numba import cuda

from fastnn._kernels.cuda_common import THREADS, blocks

__all__ = ["sgd_step", "adam_step", "adagrad_step", "rmsprop_step", "nadam_step"]


def _unused(param):
    """An empty stand-in for a state array the update does not read (never an alias of a live array: under
    the simulator every argument is copied back after the launch, and a stale alias would overwrite it)."""
    return param[:0]


@cuda.jit(device=True)
def _lerp(start, end, weight, one_minus_weight):
    if weight < 0.5:
        return start + weight * (end - start)
    return end - (end - start) * one_minus_weight


@cuda.jit
def _sgd(param, grad, buf, lr, momentum, keep, weight_decay, use_momentum, nesterov, maximize, first_step):
    i = cuda.grid(1)
    if i < param.size:
        g = -grad[i] if maximize else grad[i]
        g = g + weight_decay * param[i]
        if use_momentum:
            # PyTorch's first step starts the buffer at the gradient itself, without dampening.
            b = g if first_step else buf[i] * momentum + keep * g
            buf[i] = b
            g = g + momentum * b if nesterov else b
        param[i] = param[i] - lr * g


def sgd_step(param, grad, momentum_buf, lr, momentum, dampening, weight_decay, nesterov, maximize, first_step):
    dtype = param.dtype.type
    buf = momentum_buf if momentum != 0 else _unused(param)
    _sgd[blocks(param.size), THREADS](param, grad, buf, dtype(lr), dtype(momentum), dtype(1 - dampening),
                                      dtype(weight_decay), momentum != 0, bool(nesterov), bool(maximize),
                                      bool(first_step))


@cuda.jit
def _adam(param, grad, exp_avg, exp_avg_sq, max_exp_avg_sq, weight_decay, decay, one_minus_beta1, beta2,
          one_minus_beta2, eps, step_size, bias_correction2_sqrt, amsgrad, maximize, one):
    i = cuda.grid(1)
    if i < param.size:
        g = -grad[i] if maximize else grad[i]
        p = param[i] * decay
        g = g + weight_decay * p
        m = _lerp(exp_avg[i], g, one_minus_beta1, one - one_minus_beta1)
        exp_avg[i] = m
        v = exp_avg_sq[i] * beta2 + one_minus_beta2 * g * g
        exp_avg_sq[i] = v
        if amsgrad:
            v = max(max_exp_avg_sq[i], v)
            max_exp_avg_sq[i] = v
        param[i] = p - step_size * (m / (math.sqrt(v) / bias_correction2_sqrt + eps))


def adam_step(param, grad, exp_avg, exp_avg_sq, max_exp_avg_sq, step, lr, beta1, beta2, eps, weight_decay,
              amsgrad, decoupled_weight_decay, maximize):
    dtype = param.dtype.type
    bias_correction1 = 1 - beta1 ** step
    bias_correction2 = 1 - beta2 ** step
    decay, coupled = (1 - lr * weight_decay, 0.0) if decoupled_weight_decay else (1.0, weight_decay)
    _adam[blocks(param.size), THREADS](
        param, grad, exp_avg, exp_avg_sq, max_exp_avg_sq if amsgrad else _unused(param), dtype(coupled), dtype(decay),
        dtype(1 - beta1), dtype(beta2), dtype(1 - beta2), dtype(eps), dtype(lr / bias_correction1),
        dtype(bias_correction2 ** 0.5), bool(amsgrad), bool(maximize), dtype(1))


@cuda.jit
def _adagrad(param, grad, state_sum, clr, weight_decay, eps, maximize):
    i = cuda.grid(1)
    if i < param.size:
        g = -grad[i] if maximize else grad[i]
        g = g + weight_decay * param[i]
        s = state_sum[i] + g * g
        state_sum[i] = s
        param[i] = param[i] - clr * (g / (math.sqrt(s) + eps))


def adagrad_step(param, grad, state_sum, step, lr, lr_decay, weight_decay, eps, maximize):
    dtype = param.dtype.type
    _adagrad[blocks(param.size), THREADS](param, grad, state_sum, dtype(lr / (1 + (step - 1) * lr_decay)),
                                          dtype(weight_decay), dtype(eps), bool(maximize))


@cuda.jit
def _rmsprop(param, grad, square_avg, grad_avg, momentum_buffer, lr, alpha, one_minus_alpha, eps, weight_decay,
             momentum, use_momentum, centered, maximize, one):
    i = cuda.grid(1)
    if i < param.size:
        g = -grad[i] if maximize else grad[i]
        g = g + weight_decay * param[i]
        sq = square_avg[i] * alpha + one_minus_alpha * g * g
        square_avg[i] = sq
        if centered:
            a = _lerp(grad_avg[i], g, one_minus_alpha, one - one_minus_alpha)
            grad_avg[i] = a
            avg = math.sqrt(sq - a * a) + eps
        else:
            avg = math.sqrt(sq) + eps
        if use_momentum:
            b = momentum_buffer[i] * momentum + g / avg
            momentum_buffer[i] = b
            param[i] = param[i] - lr * b
        else:
            param[i] = param[i] - lr * (g / avg)


def rmsprop_step(param, grad, square_avg, grad_avg, momentum_buffer, lr, alpha, eps, weight_decay, momentum,
                 centered, maximize):
    dtype = param.dtype.type
    _rmsprop[blocks(param.size), THREADS](
        param, grad, square_avg, grad_avg if centered else _unused(param),
        momentum_buffer if momentum > 0 else _unused(param), dtype(lr), dtype(alpha), dtype(1 - alpha), dtype(eps),
        dtype(weight_decay), dtype(momentum), momentum > 0, bool(centered), bool(maximize), dtype(1))


@cuda.jit
def _nadam(param, grad, exp_avg, exp_avg_sq, weight_decay, decay, one_minus_beta1, beta2, one_minus_beta2,
           bias_correction2, eps, grad_coef, exp_avg_coef, maximize, one):
    i = cuda.grid(1)
    if i < param.size:
        g = -grad[i] if maximize else grad[i]
        p = param[i] * decay
        g = g + weight_decay * p
        m = _lerp(exp_avg[i], g, one_minus_beta1, one - one_minus_beta1)
        exp_avg[i] = m
        v = exp_avg_sq[i] * beta2 + one_minus_beta2 * g * g
        exp_avg_sq[i] = v
        denom = math.sqrt(v / bias_correction2) + eps
        p = p + grad_coef * (g / denom)  # two additions, as PyTorch's two addcdiv_ calls
        param[i] = p + exp_avg_coef * (m / denom)


def nadam_step(param, grad, exp_avg, exp_avg_sq, step, mu_product, lr, beta1, beta2, eps, weight_decay,
               momentum_decay, decoupled_weight_decay, maximize):
    """Returns the new mu_product (see cpu_optim_adaptive.nadam_step)."""
    dtype = param.dtype.type
    mu = beta1 * (1.0 - 0.5 * 0.96 ** (step * momentum_decay))
    mu_next = beta1 * (1.0 - 0.5 * 0.96 ** ((step + 1) * momentum_decay))
    mu_product = mu_product * mu
    mu_product_next = mu_product * mu_next
    decay, coupled = (1 - lr * weight_decay, 0.0) if decoupled_weight_decay else (1.0, weight_decay)
    _nadam[blocks(param.size), THREADS](
        param, grad, exp_avg, exp_avg_sq, dtype(coupled), dtype(decay), dtype(1 - beta1), dtype(beta2),
        dtype(1 - beta2), dtype(1 - beta2 ** step), dtype(eps), dtype(-lr * (1.0 - mu) / (1.0 - mu_product)),
        dtype(-lr * mu_next / (1.0 - mu_product_next)), bool(maximize), dtype(1))
    return mu_product

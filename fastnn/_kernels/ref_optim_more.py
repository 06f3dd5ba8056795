"""Plain-NumPy references for the kernels in cpu_optim_more.py (same signatures, in-place updates)."""
import numpy as np


def _signed_grad(param, grad, weight_decay, maximize):
    g = -grad if maximize else grad.copy()
    return g + weight_decay * param if weight_decay != 0 else g


def adadelta_step(param, grad, square_avg, acc_delta, lr, rho, eps, weight_decay, maximize):
    g = _signed_grad(param, grad, weight_decay, maximize)
    square_avg *= rho
    square_avg += (1 - rho) * g * g
    delta = np.sqrt(acc_delta + eps) / np.sqrt(square_avg + eps) * g
    acc_delta *= rho
    acc_delta += (1 - rho) * delta * delta
    param -= lr * delta


def adamax_step(param, grad, exp_avg, exp_inf, step, lr, beta1, beta2, eps, weight_decay, maximize):
    g = _signed_grad(param, grad, weight_decay, maximize)
    exp_avg += (1 - beta1) * (g - exp_avg)
    np.maximum(exp_inf * beta2, np.abs(g) + eps, out=exp_inf)
    param -= lr / (1 - beta1 ** step) * exp_avg / exp_inf


def radam_step(param, grad, exp_avg, exp_avg_sq, step, lr, beta1, beta2, eps, weight_decay, decoupled_weight_decay,
               maximize):
    if decoupled_weight_decay:
        param *= 1 - lr * weight_decay
        g = _signed_grad(param, grad, 0.0, maximize)
    else:
        g = _signed_grad(param, grad, weight_decay, maximize)
    exp_avg += (1 - beta1) * (g - exp_avg)
    exp_avg_sq *= beta2
    exp_avg_sq += (1 - beta2) * g * g
    m_hat = exp_avg / (1 - beta1 ** step)
    rho_inf = 2 / (1 - beta2) - 1
    rho_t = rho_inf - 2 * step * beta2 ** step / (1 - beta2 ** step)
    if rho_t > 5:
        rect = np.sqrt((rho_t - 4) * (rho_t - 2) * rho_inf / ((rho_inf - 4) * (rho_inf - 2) * rho_t))
        param -= lr * m_hat * rect * np.sqrt(1 - beta2 ** step) / (np.sqrt(exp_avg_sq) + eps)
    else:
        param -= lr * m_hat


def asgd_step(param, grad, ax, step, eta, mu, lr, lambd, alpha, t0, weight_decay, maximize):
    g = _signed_grad(param, grad, weight_decay, maximize)
    param *= 1 - lambd * eta
    param -= eta * g
    if mu != 1:
        ax += (param - ax) * mu
    else:
        ax[...] = param
    return lr / (1 + lambd * lr * step) ** alpha, 1 / max(1, step - t0)


def rprop_step(param, grad, prev, step_size, etaminus, etaplus, step_size_min, step_size_max, maximize):
    g = -grad if maximize else grad.copy()
    s = g * prev
    factor = np.where(s > 0, etaplus, np.where(s < 0, etaminus, 1.0)).astype(param.dtype)
    np.clip(step_size * factor, step_size_min, step_size_max, out=step_size)
    g[s < 0] = 0
    param -= np.sign(g) * step_size
    prev[...] = g


def sparse_adam_step(param, grad, exp_avg, exp_avg_sq, row_size, step, lr, beta1, beta2, eps, maximize):
    rows = (grad.reshape(-1, row_size) != 0).any(axis=1)
    g = (-grad if maximize else grad).reshape(-1, row_size)[rows]
    m, v, p = (a.reshape(-1, row_size) for a in (exp_avg, exp_avg_sq, param))
    m[rows] = beta1 * m[rows] + (1 - beta1) * g
    v[rows] = beta2 * v[rows] + (1 - beta2) * g * g
    step_size = lr * np.sqrt(1 - beta2 ** step) / (1 - beta1 ** step)
    p[rows] -= step_size * m[rows] / (np.sqrt(v[rows]) + eps)

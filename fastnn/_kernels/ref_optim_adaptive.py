"""Plain-NumPy references for the kernels in cpu_optim_adaptive.py (same signatures, in-place updates)."""
import numpy as np


def _signed_grad(param, grad, weight_decay, maximize):
    g = -grad if maximize else grad.copy()
    return g + weight_decay * param if weight_decay != 0 else g


def adagrad_step(param, grad, state_sum, step, lr, lr_decay, weight_decay, eps, maximize):
    g = _signed_grad(param, grad, weight_decay, maximize)
    state_sum += g * g
    param -= lr / (1 + (step - 1) * lr_decay) * g / (np.sqrt(state_sum) + eps)


def rmsprop_step(param, grad, square_avg, grad_avg, momentum_buffer, lr, alpha, eps, weight_decay, momentum,
                 centered, maximize):
    g = _signed_grad(param, grad, weight_decay, maximize)
    square_avg *= alpha
    square_avg += (1 - alpha) * g * g
    if centered:
        grad_avg += (1 - alpha) * (g - grad_avg)
        avg = np.sqrt(square_avg - grad_avg * grad_avg) + eps
    else:
        avg = np.sqrt(square_avg) + eps
    if momentum > 0:
        momentum_buffer *= momentum
        momentum_buffer += g / avg
        param -= lr * momentum_buffer
    else:
        param -= lr * g / avg


def nadam_step(param, grad, exp_avg, exp_avg_sq, step, mu_product, lr, beta1, beta2, eps, weight_decay,
               momentum_decay, decoupled_weight_decay, maximize):
    if decoupled_weight_decay:
        param *= 1 - lr * weight_decay
        g = _signed_grad(param, grad, 0.0, maximize)
    else:
        g = _signed_grad(param, grad, weight_decay, maximize)
    mu = beta1 * (1 - 0.5 * 0.96 ** (step * momentum_decay))
    mu_next = beta1 * (1 - 0.5 * 0.96 ** ((step + 1) * momentum_decay))
    mu_product *= mu
    exp_avg += (1 - beta1) * (g - exp_avg)
    exp_avg_sq *= beta2
    exp_avg_sq += (1 - beta2) * g * g
    denom = np.sqrt(exp_avg_sq / (1 - beta2 ** step)) + eps
    param -= lr * (1 - mu) / (1 - mu_product) * g / denom
    param -= lr * mu_next / (1 - mu_product * mu_next) * exp_avg / denom
    return mu_product

"""Plain-NumPy references for the optimizer kernels in cpu_optim.py (same signatures, in-place updates)."""
import numpy as np


def sgd_step(param, grad, momentum_buf, lr, momentum, dampening, weight_decay, nesterov, maximize, first_step):
    g = -grad if maximize else grad.copy()
    if weight_decay != 0:
        g = g + weight_decay * param
    if momentum != 0:
        if first_step:
            momentum_buf[...] = g
        else:
            momentum_buf *= momentum
            momentum_buf += (1 - dampening) * g
        g = g + momentum * momentum_buf if nesterov else momentum_buf
    param -= lr * g


def adam_step(param, grad, exp_avg, exp_avg_sq, max_exp_avg_sq, step, lr, beta1, beta2, eps, weight_decay,
              amsgrad, decoupled_weight_decay, maximize):
    g = -grad if maximize else grad.copy()
    if weight_decay != 0:
        if decoupled_weight_decay:
            param *= 1 - lr * weight_decay
        else:
            g = g + weight_decay * param
    exp_avg += (1 - beta1) * (g - exp_avg)
    exp_avg_sq *= beta2
    exp_avg_sq += (1 - beta2) * g * g
    if amsgrad:
        np.maximum(max_exp_avg_sq, exp_avg_sq, out=max_exp_avg_sq)
        second_moment = max_exp_avg_sq
    else:
        second_moment = exp_avg_sq
    bias_correction1 = 1 - beta1 ** step
    bias_correction2 = 1 - beta2 ** step
    denom = np.sqrt(second_moment) / np.sqrt(bias_correction2) + eps
    param -= lr / bias_correction1 * exp_avg / denom

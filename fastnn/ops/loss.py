"""Loss functions with PyTorch's signatures and reductions."""
import numpy as np

from fastnn._validation import check_reduction
from fastnn.autograd import make_result
from fastnn.ops.activation import _log_softmax_array
from fastnn.tensor import Tensor



def _target_coefficients(input, target, weight, ignore_index, label_smoothing):
    """Per-element class coefficients `coef` (loss = -sum_c coef * log p) and the 'mean' denominator."""
    n_classes = input.shape[1]
    dtype = input.dtype
    w = np.ones(n_classes, dtype) if weight is None else weight.data.astype(dtype)
    if weight is not None and weight.shape != (n_classes,):
        raise ValueError(f"weight should have one entry per class ({n_classes}), got shape {tuple(weight.shape)}")
    class_shape = (1, n_classes) + (1,) * (input.ndim - 2)
    if target.dtype.kind in "iu":
        expected = input.shape[:1] + input.shape[2:]
        if target.shape != expected:
            raise ValueError(f"class-index target must have shape {expected} for input {tuple(input.shape)}, got "
                             f"{tuple(target.shape)}")
        labels = target.data
        valid = labels != ignore_index
        bad = valid & ((labels < 0) | (labels >= n_classes))
        if bad.any():
            raise ValueError(f"target {int(labels[bad][0])} is out of bounds: class indices must lie in "
                             f"[0, {n_classes - 1}] (or equal ignore_index={ignore_index})")
        safe = np.where(valid, labels, 0)
        onehot = np.zeros(input.shape, dtype)
        np.put_along_axis(onehot, np.expand_dims(safe, 1), 1, axis=1)
        coef = (1 - label_smoothing) * onehot * w.reshape(class_shape)
        if label_smoothing:
            coef += dtype.type(label_smoothing / n_classes) * w.reshape(class_shape)
        coef *= np.expand_dims(valid, 1)
        denom = np.sum(w[safe] * valid)
        return coef.astype(dtype), denom
    if target.dtype.kind == "f":
        if target.shape != input.shape:
            raise ValueError(f"probability target must have the input's shape {tuple(input.shape)}, got "
                             f"{tuple(target.shape)}")
        probs = target.data.astype(dtype)
        if label_smoothing:
            probs = probs * (1 - label_smoothing) + label_smoothing / n_classes
        return (probs * w.reshape(class_shape)).astype(dtype), input.data.size // n_classes
    raise TypeError(f"target must hold class indices (int64) or class probabilities (float), got {target.dtype}")


def _weighted_nll(input, logp, target, weight, ignore_index, reduction, label_smoothing, softmax_grad):
    if input.ndim < 2:
        raise ValueError(f"input must have shape (N, C) or (N, C, d1, ...), got {tuple(input.shape)}")
    if input.dtype.kind != "f":
        raise TypeError(f"input must be a floating point tensor, got {input.dtype}")
    if not isinstance(target, Tensor):
        target = Tensor(np.asarray(target))
    if not 0.0 <= label_smoothing <= 1.0:
        raise ValueError(f"label_smoothing must be in [0, 1], got {label_smoothing}")
    check_reduction(reduction)
    coef, denom = _target_coefficients(input, target, weight, ignore_index, label_smoothing)
    losses = -np.sum(coef * logp, axis=1)
    if reduction == "none":
        out = losses
    elif reduction == "sum":
        out = np.asarray(losses.sum(), dtype=input.dtype)
    else:
        out = np.asarray(losses.sum() / denom, dtype=input.dtype)

    def backward(g):
        g = np.expand_dims(g, 1) if reduction == "none" else g / (denom if reduction == "mean" else 1)
        if softmax_grad:
            grad = np.exp(logp) * np.sum(coef, axis=1, keepdims=True) - coef
        else:
            grad = -coef
        return ((grad * g).astype(input.dtype),)
    return make_result(out, (input,), backward, "cross_entropy" if softmax_grad else "nll_loss")


def cross_entropy(input, target, weight=None, ignore_index=-100, reduction="mean", label_smoothing=0.0):
    """Softmax cross-entropy on logits (N, C, ...); target = class indices (N, ...) or probabilities (N, C, ...).

    The log-softmax is computed with the max subtracted, so large logits never overflow.
    """
    if input.ndim < 2:
        raise ValueError(f"cross_entropy: input must have shape (N, C) or (N, C, d1, ...), got "
                         f"{tuple(input.shape)}")
    logp = _log_softmax_array(input.data, 1)
    return _weighted_nll(input, logp, target, weight, ignore_index, reduction, label_smoothing, True)


def nll_loss(input, target, weight=None, ignore_index=-100, reduction="mean"):
    """Negative log-likelihood on log-probabilities (e.g. the output of log_softmax)."""
    return _weighted_nll(input, input.data, target, weight, ignore_index, reduction, 0.0, False)


def _elementwise_loss(name, input, target, reduction, value, grad):
    check_reduction(reduction)
    target = target if isinstance(target, Tensor) else Tensor(np.asarray(target, dtype=input.dtype))
    if input.shape != target.shape:
        raise ValueError(f"{name}: input shape {tuple(input.shape)} and target shape {tuple(target.shape)} differ")
    diff = input.data - target.data
    losses = value(diff)
    out = losses if reduction == "none" else np.asarray(losses.sum() if reduction == "sum" else losses.mean(),
                                                        dtype=input.dtype)
    scale = 1 if reduction != "mean" else input.dtype.type(1 / max(diff.size, 1))

    def backward(g):
        d = grad(diff) * g * scale
        return d, -d
    return make_result(out, (input, target), backward, name)


def mse_loss(input, target, reduction="mean"):
    return _elementwise_loss("mse_loss", input, target, reduction, lambda d: d * d, lambda d: 2 * d)


def l1_loss(input, target, reduction="mean"):
    return _elementwise_loss("l1_loss", input, target, reduction, np.abs, np.sign)


def binary_cross_entropy_with_logits(input, target, weight=None, reduction="mean", pos_weight=None):
    """Sigmoid + binary cross-entropy in one stable expression: max(x,0) - x*y + log(1 + exp(-|x|))."""
    check_reduction(reduction)
    target = target if isinstance(target, Tensor) else Tensor(np.asarray(target, dtype=input.dtype))
    if input.shape != target.shape:
        raise ValueError(f"binary_cross_entropy_with_logits: target shape {tuple(target.shape)} differs from "
                         f"input shape {tuple(input.shape)}")
    x, y = input.data, target.data.astype(input.dtype)
    pw = 1 if pos_weight is None else pos_weight.data
    w = 1 if weight is None else weight.data
    log_sig_neg = np.minimum(-x, 0) - np.log1p(np.exp(-np.abs(x)))  # log(1 - sigmoid(x))
    log_sig = log_sig_neg + x                                         # log(sigmoid(x))
    losses = (-(pw * y * log_sig + (1 - y) * log_sig_neg) * w).astype(input.dtype)
    out = losses if reduction == "none" else np.asarray(
        losses.sum() if reduction == "sum" else losses.mean(), dtype=input.dtype)
    scale = 1 if reduction != "mean" else input.dtype.type(1 / max(x.size, 1))

    def backward(g):
        sig = np.exp(log_sig)
        return (((pw * y + 1 - y) * sig - pw * y) * w * g * scale).astype(input.dtype), None
    return make_result(out, (input, target), backward, "binary_cross_entropy_with_logits")

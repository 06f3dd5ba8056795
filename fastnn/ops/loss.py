"""Loss functions with PyTorch's signatures and reductions."""
import numpy as np

from fastnn._validation import check_reduction
from fastnn.autograd import make_result
from fastnn.ops.activation import _log_softmax_array
from fastnn.tensor import Tensor


def _as_target(target, input, dtype=None):
    """`target` as a tensor on input's device (a Tensor elsewhere is refused, as PyTorch does)."""
    if not isinstance(target, Tensor):
        return Tensor(input._backend.asarray(target, dtype=dtype), device=input.device)
    if target._backend is not input._backend:
        raise RuntimeError(f"expected target on the input's device {input.device}, got {target.device}")
    return target


def _check_float_input(name, input):
    if not isinstance(input, Tensor):
        raise TypeError(f"{name}: input must be a Tensor, got {type(input).__name__}")
    if input.dtype.kind != "f":
        raise TypeError(f"{name}: not implemented for input dtype {input.dtype} (PyTorch refuses integer inputs "
                        f"too): pass a floating point tensor")


def _class_index_losses(xp, input, logp, labels, w, ignore_index, label_smoothing):
    """Per-element losses for class-index targets, the 'mean' denominator and the coefficients `coef` of the
    gradient (loss = -sum_c coef * log p). The forward gathers the target's log-probability instead of summing
    coef * log p over all classes, so a -inf log-probability of another class never meets a zero (0 * -inf)."""
    n_classes, dtype = input.shape[1], input.dtype
    class_shape = (1, n_classes) + (1,) * (input.ndim - 2)
    valid = labels != ignore_index
    bad = valid & ((labels < 0) | (labels >= n_classes))
    if bad.any():
        raise ValueError(f"target {int(labels[bad][0])} is out of bounds: class indices must lie in "
                         f"[0, {n_classes - 1}] (or equal ignore_index={ignore_index})")
    safe = xp.where(valid, labels, 0)
    w_target = w[safe] * valid                                              # (N, d1, ...)
    # an ignored position reads class 0, whose log-probability may be -inf: zero it before any product
    picked = xp.where(valid, xp.take_along_axis(logp, xp.expand_dims(safe, 1), axis=1).squeeze(1), 0)
    losses = -(1 - label_smoothing) * w_target * picked
    w_classes = w.reshape(class_shape)
    if label_smoothing:
        smooth = (w_classes * logp).sum(axis=1)
        losses -= dtype.type(label_smoothing / n_classes) * xp.where(valid, smooth, 0)
    losses = losses.astype(dtype, copy=False)

    def coefficients():
        onehot = xp.expand_dims(safe, 1) == xp.arange(n_classes).reshape(class_shape)
        coef = onehot * xp.expand_dims((1 - label_smoothing) * w_target, 1)
        if label_smoothing:
            coef = coef + dtype.type(label_smoothing / n_classes) * w_classes * xp.expand_dims(valid, 1)
        return coef.astype(dtype, copy=False)
    return losses, w_target.sum(), coefficients


def _weighted_nll(name, input, logp, target, weight, ignore_index, reduction, label_smoothing, softmax_grad):
    xp = input._backend.xp
    target = _as_target(target, input)
    if not 0.0 <= label_smoothing <= 1.0:
        raise ValueError(f"label_smoothing must be in [0, 1], got {label_smoothing}")
    check_reduction(reduction)
    n_classes, dtype = input.shape[1], input.dtype
    if weight is not None and weight.shape != (n_classes,):
        raise ValueError(f"weight should have one entry per class ({n_classes}), got shape {tuple(weight.shape)}")
    w = xp.ones(n_classes, dtype) if weight is None else weight.data.astype(dtype)
    if target.dtype.kind in "iu":
        expected = input.shape[:1] + input.shape[2:]
        if target.shape != expected:
            raise ValueError(f"class-index target must have shape {expected} for input {tuple(input.shape)}, got "
                             f"{tuple(target.shape)}")
        losses, denom, coefficients = _class_index_losses(xp, input, logp, target.data, w, ignore_index,
                                                          label_smoothing)
    elif target.dtype.kind == "f":
        if target.shape != input.shape:
            raise ValueError(f"probability target must have the input's shape {tuple(input.shape)}, got "
                             f"{tuple(target.shape)}")
        probs = target.data.astype(dtype)
        if label_smoothing:
            probs = probs * (1 - label_smoothing) + label_smoothing / n_classes
        # PyTorch's formula too: a zero probability on a -inf log-probability gives NaN there as well
        coef = (probs * w.reshape((1, n_classes) + (1,) * (input.ndim - 2))).astype(dtype)
        losses, denom = -(coef * logp).sum(axis=1), input.data.size // n_classes

        def coefficients():
            return coef
    else:
        raise TypeError(f"target must hold class indices (int64) or class probabilities (float), got "
                        f"{target.dtype}")
    if reduction == "none":
        out = losses
    elif reduction == "sum":
        out = xp.asarray(losses.sum(), dtype=dtype)
    else:
        out = xp.asarray(losses.sum() / denom, dtype=dtype)

    def backward(g):
        g = xp.expand_dims(g, 1) if reduction == "none" else g / (denom if reduction == "mean" else 1)
        coef = coefficients()
        if softmax_grad:
            grad = xp.exp(logp) * coef.sum(axis=1, keepdims=True) - coef
        else:
            grad = -coef
        return ((grad * g).astype(dtype),)
    # the backward reads the target's coefficients and (cross_entropy) logp, a new array: never input's values
    return make_result(out, (input,), backward, name, saved=())


def _check_class_input(name, input):
    _check_float_input(name, input)
    if input.ndim < 2:
        raise ValueError(f"{name}: input must have shape (N, C) or (N, C, d1, ...), got {tuple(input.shape)}")
    if input.shape[1] == 0:
        raise ValueError(f"{name}: input has no classes (C = size of dim 1 is 0), got shape {tuple(input.shape)}")


def cross_entropy(input, target, weight=None, ignore_index=-100, reduction="mean", label_smoothing=0.0):
    """Softmax cross-entropy on logits (N, C, ...); target = class indices (N, ...) or probabilities (N, C, ...).

    The log-softmax is computed with the max subtracted, so large logits never overflow.
    """
    _check_class_input("cross_entropy", input)
    logp = _log_softmax_array(input._backend.xp, input.data, 1)
    return _weighted_nll("cross_entropy", input, logp, target, weight, ignore_index, reduction, label_smoothing,
                         True)


def nll_loss(input, target, weight=None, ignore_index=-100, reduction="mean"):
    """Negative log-likelihood on log-probabilities (e.g. the output of log_softmax)."""
    _check_class_input("nll_loss", input)
    return _weighted_nll("nll_loss", input, input.data, target, weight, ignore_index, reduction, 0.0, False)


def _elementwise_loss(name, input, target, reduction, value, grad):
    check_reduction(reduction)
    _check_float_input(name, input)
    xp = input._backend.xp
    target = _as_target(target, input, input.dtype)
    if input.shape != target.shape:
        raise ValueError(f"{name}: input shape {tuple(input.shape)} and target shape {tuple(target.shape)} differ")
    # an integer or bool target is compared in the input's dtype; float targets promote as in PyTorch
    t = target.data if target.dtype.kind == "f" else target.data.astype(input.dtype)
    diff = input.data - t
    losses = value(xp, diff)
    out = losses if reduction == "none" else xp.asarray(losses.sum() if reduction == "sum" else losses.mean(),
                                                        dtype=input.dtype)
    scale = 1 if reduction != "mean" else input.dtype.type(1 / max(diff.size, 1))

    def backward(g):
        d = grad(xp, diff) * g * scale
        return d, -d
    # the backward reads `diff`, computed here: in-place edits of input or target afterwards do not affect it
    return make_result(out, (input, target), backward, name, saved=())


def mse_loss(input, target, reduction="mean"):
    return _elementwise_loss("mse_loss", input, target, reduction, lambda xp, d: d * d, lambda xp, d: 2 * d)


def l1_loss(input, target, reduction="mean"):
    return _elementwise_loss("l1_loss", input, target, reduction, lambda xp, d: xp.abs(d), lambda xp, d: xp.sign(d))


def binary_cross_entropy_with_logits(input, target, weight=None, reduction="mean", pos_weight=None):
    """Sigmoid + binary cross-entropy in one stable expression: max(x,0) - x*y + log(1 + exp(-|x|))."""
    check_reduction(reduction)
    _check_float_input("binary_cross_entropy_with_logits", input)
    xp = input._backend.xp
    target = _as_target(target, input, input.dtype)
    if input.shape != target.shape:
        raise ValueError(f"binary_cross_entropy_with_logits: target shape {tuple(target.shape)} differs from "
                         f"input shape {tuple(input.shape)}")
    x, y = input.data, target.data.astype(input.dtype)
    pw = 1 if pos_weight is None else pos_weight.data
    w = 1 if weight is None else weight.data
    log_sig_neg = xp.minimum(-x, 0) - xp.log1p(xp.exp(-xp.abs(x)))  # log(1 - sigmoid(x))
    log_sig = log_sig_neg + x                                         # log(sigmoid(x))
    losses = (-(pw * y * log_sig + (1 - y) * log_sig_neg) * w).astype(input.dtype)
    out = losses if reduction == "none" else xp.asarray(
        losses.sum() if reduction == "sum" else losses.mean(), dtype=input.dtype)
    scale = 1 if reduction != "mean" else input.dtype.type(1 / max(x.size, 1))

    def backward(g):
        sig = xp.exp(log_sig)
        return (((pw * y + 1 - y) * sig - pw * y) * w * g * scale).astype(input.dtype), None
    # the backward reads log_sig and a copy of the target, computed here
    return make_result(out, (input, target), backward, "binary_cross_entropy_with_logits", saved=())

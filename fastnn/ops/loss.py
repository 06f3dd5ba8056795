"""Loss functions with PyTorch's signatures and reductions."""
import math
import warnings

import numpy as np

from fastnn._validation import check_reduction
from fastnn.autograd import make_result
from fastnn.ops.activation import _softmax_array
from fastnn.ops.elementwise import add, clamp, div, eq, exp, gt, log, maximum, minimum, mul, ne, neg, sqrt, sub, where
from fastnn.ops._util import add_tangents
from fastnn.ops.reduce import mean, sum as _sum
from fastnn.ops.shape import unsqueeze
from fastnn.ops.vector import pairwise_distance
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
    w = xp.ones(n_classes, dtype) if weight is None else weight._data.astype(dtype)
    if target.dtype.kind in "iu":
        expected = input.shape[:1] + input.shape[2:]
        if target.shape != expected:
            raise ValueError(f"class-index target must have shape {expected} for input {tuple(input.shape)}, got "
                             f"{tuple(target.shape)}")
        losses, denom, coefficients = _class_index_losses(xp, input, logp, target._data, w, ignore_index,
                                                          label_smoothing)
    elif target.dtype.kind == "f":
        if target.shape != input.shape:
            raise ValueError(f"probability target must have the input's shape {tuple(input.shape)}, got "
                             f"{tuple(target.shape)}")
        probs = target._data.astype(dtype)
        if label_smoothing:
            probs = probs * (1 - label_smoothing) + label_smoothing / n_classes
        # PyTorch's formula too: a zero probability on a -inf log-probability gives NaN there as well
        coef = (probs * w.reshape((1, n_classes) + (1,) * (input.ndim - 2))).astype(dtype)
        losses, denom = -(coef * logp).sum(axis=1), input._data.size // n_classes

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
    def tangent(t):  # loss = -sum_c coef log p, coef constant; d log p = t - sum_c softmax * t for cross_entropy
        from fastnn.ops.activation import softmax
        dlogp = t - (softmax(input, 1) * t).sum(1, keepdim=True) if softmax_grad else t
        losses_t = -(_constant(input, coefficients()) * dlogp).sum(1)
        return losses_t if reduction == "none" else losses_t.sum() / (denom if reduction == "mean" else 1)
    # the backward reads the target's coefficients and (cross_entropy) logp, a new array: never input's values
    return make_result(out, (input,), backward, name, saved=(), tangent=tangent)


def _check_class_input(name, input):
    _check_float_input(name, input)
    if input.ndim < 2:
        raise ValueError(f"{name}: input must have shape (N, C) or (N, C, d1, ...), got {tuple(input.shape)}")
    if input.shape[1] == 0:
        raise ValueError(f"{name}: input has no classes (C = size of dim 1 is 0), got shape {tuple(input.shape)}")


def cross_entropy(input, target, weight=None, size_average=None, ignore_index=-100, reduce=None, reduction="mean",
                  label_smoothing=0.0):
    """Softmax cross-entropy on logits (N, C, ...); target = class indices (N, ...) or probabilities (N, C, ...).

    The log-softmax is computed with the max subtracted, so large logits never overflow.
    """
    reduction = legacy_reduction(size_average, reduce, reduction)
    _check_class_input("cross_entropy", input)
    logp = _softmax_array(input._backend, input._data, 1, log=True)
    return _weighted_nll("cross_entropy", input, logp, target, weight, ignore_index, reduction, label_smoothing,
                         True)


def nll_loss(input, target, weight=None, size_average=None, ignore_index=-100, reduce=None, reduction="mean"):
    """Negative log-likelihood on log-probabilities (e.g. the output of log_softmax)."""
    reduction = legacy_reduction(size_average, reduce, reduction)
    _check_class_input("nll_loss", input)
    return _weighted_nll("nll_loss", input, input._data, target, weight, ignore_index, reduction, 0.0, False)


def _constant(like, array):
    """An array of like's device as a Tensor outside any graph, in a tangent rule (its derivative is 0)."""
    return Tensor._wrap(array, like._backend)


def _sign(d):
    return _constant(d, d._backend.xp.sign(d._data))


def _elementwise_loss(name, input, target, reduction, value, grad, derivative):
    """A loss value(input - target), reduced; grad(xp, d) is value's derivative on arrays (for backward),
    derivative(d) the same from ops on the Tensor d (for the tangent rule, which reverse mode differentiates)."""
    check_reduction(reduction)
    _check_float_input(name, input)
    xp = input._backend.xp
    target = _as_target(target, input, input.dtype)
    if input.shape != target.shape:
        raise ValueError(f"{name}: input shape {tuple(input.shape)} and target shape {tuple(target.shape)} differ")
    # an integer or bool target is compared in the input's dtype; float targets promote as in PyTorch
    t = target._data if target.dtype.kind == "f" else target._data.astype(input.dtype)
    diff = input._data - t
    losses = value(xp, diff)
    out = losses if reduction == "none" else xp.asarray(losses.sum() if reduction == "sum" else losses.mean(),
                                                        dtype=input.dtype)
    scale = 1 if reduction != "mean" else input.dtype.type(1 / max(diff.size, 1))

    def backward(g):
        d = grad(xp, diff) * g * scale
        return d, -d
    def tangent(tx, ty):
        return _reduce(derivative(input - target) * add_tangents(tx, None if ty is None else neg(ty)), reduction)
    # the backward reads `diff`, computed here: in-place edits of input or target afterwards do not affect it
    return make_result(out, (input, target), backward, name, saved=(), tangent=tangent)


def mse_loss(input, target, size_average=None, reduce=None, reduction="mean", weight=None):
    reduction = legacy_reduction(size_average, reduce, reduction)
    if weight is not None:
        return _weighted("mse_loss", mse_loss(input, target, reduction="none"), weight, reduction, True)
    return _elementwise_loss("mse_loss", input, target, reduction, lambda xp, d: d * d, lambda xp, d: 2 * d,
                             lambda d: 2 * d)


def l1_loss(input, target, size_average=None, reduce=None, reduction="mean", weight=None):
    reduction = legacy_reduction(size_average, reduce, reduction)
    if weight is not None:
        return _weighted("l1_loss", l1_loss(input, target, reduction="none"), weight, reduction, True)
    return _elementwise_loss("l1_loss", input, target, reduction, lambda xp, d: xp.abs(d), lambda xp, d: xp.sign(d),
                             _sign)


def binary_cross_entropy_with_logits(input, target, weight=None, size_average=None, reduce=None, reduction="mean",
                                     pos_weight=None):
    """Sigmoid + binary cross-entropy in one stable expression: max(x,0) - x*y + log(1 + exp(-|x|))."""
    reduction = legacy_reduction(size_average, reduce, reduction)
    check_reduction(reduction)
    _check_float_input("binary_cross_entropy_with_logits", input)
    xp = input._backend.xp
    target = _as_target(target, input, input.dtype)
    if input.shape != target.shape:
        raise ValueError(f"binary_cross_entropy_with_logits: target shape {tuple(target.shape)} differs from "
                         f"input shape {tuple(input.shape)}")
    x, y = input._data, target._data.astype(input.dtype)
    pw = 1 if pos_weight is None else pos_weight._data
    w = 1 if weight is None else weight._data
    log_sig_neg = xp.minimum(-x, 0) - xp.log1p(xp.exp(-xp.abs(x)))  # log(1 - sigmoid(x))
    log_sig = log_sig_neg + x                                         # log(sigmoid(x))
    losses = (-(pw * y * log_sig + (1 - y) * log_sig_neg) * w).astype(input.dtype)
    out = losses if reduction == "none" else xp.asarray(
        losses.sum() if reduction == "sum" else losses.mean(), dtype=input.dtype)
    scale = 1 if reduction != "mean" else input.dtype.type(1 / max(x.size, 1))

    def backward(g):
        sig = xp.exp(log_sig)
        return (((pw * y + 1 - y) * sig - pw * y) * w * g * scale).astype(input.dtype), None
    def tangent(tx, ty):  # the target's tangent is dropped, as backward gives the target no gradient
        from fastnn.ops.activation import sigmoid
        from fastnn.ops._util import tangent_or_zeros
        yt = _constant(input, y)
        pwt = 1 if pos_weight is None else pos_weight
        wt = 1 if weight is None else weight
        slope = ((pwt * yt + 1 - yt) * sigmoid(input) - pwt * yt) * wt
        return _reduce(slope * tangent_or_zeros(tx, input), reduction)
    # the backward reads log_sig and a copy of the target, computed here
    return make_result(out, (input, target), backward, "binary_cross_entropy_with_logits", saved=(),
                       tangent=tangent)


# ---- issue 14: the remaining losses of torch.nn.functional, by PyTorch's formulas ----------------------------
def legacy_reduction(size_average, reduce, reduction):
    """PyTorch's deprecated size_average/reduce arguments: when either is given they decide the reduction."""
    if size_average is None and reduce is None:
        return reduction
    for name, value in (("size_average", size_average), ("reduce", reduce)):
        if value is not None and not isinstance(value, (bool, np.bool_)):
            # e.g. a reduction name passed positionally where PyTorch's signature has the legacy flag
            raise TypeError(f"{name} must be a bool or None, got {value!r}; pass reduction={value!r} by keyword")
    warnings.warn("size_average and reduce args will be deprecated, please use reduction instead.",
                  DeprecationWarning, stacklevel=3)
    size_average = True if size_average is None else size_average
    reduce = True if reduce is None else reduce
    return "none" if not reduce else "mean" if size_average else "sum"


def _reduce(losses, reduction):
    """Tensor-level reduction for the losses composed of differentiable ops."""
    return losses if reduction == "none" else _sum(losses) if reduction == "sum" else mean(losses)


def _same_shape(name, input, target):
    if target.shape != input.shape:
        raise ValueError(f"{name}: Using a target size ({tuple(target.shape)}) that is different to the input size "
                         f"({tuple(input.shape)}) is deprecated. Please ensure they have the same size.")


def binary_cross_entropy(input, target, weight=None, size_average=None, reduce=None, reduction="mean"):
    """-w [y log x + (1 - y) log(1 - x)] on probabilities x, each log clamped at -100 as in PyTorch."""
    reduction = legacy_reduction(size_average, reduce, reduction)
    check_reduction(reduction)
    _check_float_input("binary_cross_entropy", input)
    xp = input._backend.xp
    target = _as_target(target, input, input.dtype)
    _same_shape("binary_cross_entropy", input, target)
    x, y = input._data, target._data.astype(input.dtype, copy=False)
    if x.size and bool(((x < 0) | (x > 1) | (x != x)).any()):
        raise RuntimeError("all elements of input should be between 0 and 1")
    w = 1 if weight is None else weight._data.astype(input.dtype, copy=False)
    t = input.dtype.type
    log_x, log_1mx = xp.maximum(xp.log(x), t(-100)), xp.maximum(xp.log1p(-x), t(-100))
    losses = (-w * (y * log_x + (1 - y) * log_1mx)).astype(input.dtype, copy=False)
    if weight is not None and losses.shape != x.shape:
        raise ValueError(f"binary_cross_entropy: weight of shape {tuple(weight.shape)} does not broadcast to the "
                         f"input's shape {tuple(input.shape)}")
    out = losses if reduction == "none" else xp.asarray(losses.sum() if reduction == "sum" else losses.mean(),
                                                        dtype=input.dtype)
    scale = 1 if reduction != "mean" else t(1 / max(x.size, 1))

    def backward(g):
        # PyTorch's gradient: w (x - y) / max(x (1 - x), 1e-12); the target's: w (log(1 - x) - log x)
        gx = (w * (x - y) / xp.maximum(x * (1 - x), t(1e-12)) * g * scale).astype(input.dtype, copy=False)
        gy = (w * (log_1mx - log_x) * g * scale).astype(input.dtype, copy=False)
        return gx, gy

    def tangent(tx, ty):
        wt = 1 if weight is None else weight
        dx = None if tx is None else wt * (input - target) / maximum(input * (1 - input), t(1e-12)) * tx
        dy = None if ty is None else wt * (maximum(log(1 - input), t(-100)) - maximum(log(input), t(-100))) * ty
        return _reduce(add_tangents(dx, dy), reduction)
    return make_result(out, (input, target), backward, "binary_cross_entropy", saved=(), tangent=tangent)


def smooth_l1_loss(input, target, size_average=None, reduce=None, reduction="mean", beta=1.0):
    """0.5 d^2 / beta where |d| < beta, |d| - 0.5 beta elsewhere (d = input - target); beta=0 is l1_loss."""
    reduction = legacy_reduction(size_average, reduce, reduction)
    if beta < 0:
        raise RuntimeError(f"smooth_l1_loss does not support negative values for beta, got beta={beta}")
    if beta == 0:
        return _elementwise_loss("smooth_l1_loss", input, target, reduction, lambda xp, d: xp.abs(d),
                                 lambda xp, d: xp.sign(d), _sign)
    return _elementwise_loss(
        "smooth_l1_loss", input, target, reduction,
        lambda xp, d: xp.where(xp.abs(d) < beta, 0.5 * d * d / beta, xp.abs(d) - 0.5 * beta).astype(d.dtype),
        lambda xp, d: xp.where(xp.abs(d) < beta, d / beta, xp.sign(d)).astype(d.dtype),
        lambda d: where(_constant(d, d._backend.xp.abs(d._data) < beta), d / beta, _sign(d)))


def huber_loss(input, target, reduction="mean", delta=1.0, weight=None):
    """0.5 d^2 where |d| <= delta, delta (|d| - 0.5 delta) elsewhere: smooth_l1_loss times delta at beta=delta."""
    if delta <= 0:
        raise RuntimeError(f"huber_loss does not support non-positive values for delta, got delta={delta}")
    if weight is not None:
        return _weighted("huber_loss", huber_loss(input, target, "none", delta), weight, reduction, False)
    return _elementwise_loss(
        "huber_loss", input, target, reduction,
        lambda xp, d: xp.where(xp.abs(d) <= delta, 0.5 * d * d, delta * (xp.abs(d) - 0.5 * delta)).astype(d.dtype),
        lambda xp, d: xp.where(xp.abs(d) <= delta, d, delta * xp.sign(d)).astype(d.dtype),
        lambda d: where(_constant(d, d._backend.xp.abs(d._data) <= delta), d, _sign(d) * delta))


def kl_div(input, target, size_average=None, reduce=None, reduction="mean", log_target=False):
    """Pointwise target (log target - input) (0 where target = 0), or exp(target) (target - input) when the
    target is given as log-probabilities; reduction 'batchmean' divides the sum by the batch size."""
    reduction = legacy_reduction(size_average, reduce, reduction)
    if reduction not in ("none", "mean", "sum", "batchmean"):
        raise ValueError(f"reduction must be one of ('none', 'batchmean', 'sum', 'mean'), got {reduction!r}")
    _check_float_input("kl_div", input)
    xp = input._backend.xp
    target = _as_target(target, input, input.dtype)
    _same_shape("kl_div", input, target)
    x, y = input._data, target._data.astype(input.dtype, copy=False)
    t = input.dtype.type
    if log_target:
        p = xp.exp(y)
        losses = p * (y - x)
    else:
        positive = y > 0
        log_y = xp.log(xp.where(positive, y, t(1)))  # xlogy: 0 * log 0 = 0
        losses = xp.where(positive, y * (log_y - x), t(0) * x)  # 0 * x keeps a NaN input NaN, as PyTorch
    losses = losses.astype(input.dtype, copy=False)
    if reduction == "none":
        out, scale = losses, 1
    elif reduction == "sum":
        out, scale = xp.asarray(losses.sum(), dtype=input.dtype), 1
    else:
        denom = (x.shape[0] if x.ndim else 1) if reduction == "batchmean" else max(x.size, 1)
        out, scale = xp.asarray(losses.sum() / denom, dtype=input.dtype), t(1 / denom)
        if reduction == "mean":
            warnings.warn("reduction: 'mean' divides the total loss by both the batch size and the support size."
                          "'batchmean' divides only by the batch size, and aligns with the KL div math definition."
                          "'mean' will be changed to behave the same as 'batchmean' in the next major release.",
                          UserWarning, stacklevel=2)

    def backward(g):
        g = g * scale
        if log_target:
            return (-p * g).astype(input.dtype), (p * (y - x + 1) * g).astype(input.dtype)
        return (-y * g).astype(input.dtype), (xp.where(positive, log_y + 1 - x, t(0)) * g).astype(input.dtype)

    def tangent(tx, ty):
        if log_target:
            p_t = exp(target)
            dx, dy = -p_t, p_t * (target - input + 1)
        else:
            pos = _constant(input, positive)
            dx, dy = -target, where(pos, log(where(pos, target, t(1))) + 1 - input, t(0))
        pointwise = add_tangents(None if tx is None else dx * tx, None if ty is None else dy * ty)
        return pointwise if reduction == "none" else pointwise.sum() * scale
    return make_result(out, (input, target), backward, "kl_div", saved=(), tangent=tangent)


def _check_same_size(name, *tensors):
    shapes = [tuple(t.shape) for t in tensors]
    if any(s != shapes[0] for s in shapes):
        raise RuntimeError(f"{name}: All input tensors should have same dimension but got sizes: "
                           + ", ".join(f"input{i + 1}: {s}" for i, s in enumerate(shapes)))


def margin_ranking_loss(input1, input2, target, margin=0, size_average=None, reduce=None, reduction="mean"):
    """max(0, -target (input1 - input2) + margin), target in {1, -1}."""
    reduction = legacy_reduction(size_average, reduce, reduction)
    check_reduction(reduction)
    _check_float_input("margin_ranking_loss", input1)
    target = _as_target(target, input1, input1.dtype)
    _check_same_size("margin_ranking_loss", input1, input2, target)
    return _reduce(clamp(add(neg(mul(target, sub(input1, input2))), margin), min=0), reduction)


def triplet_margin_loss(anchor, positive, negative, margin=1.0, p=2, eps=1e-6, swap=False, size_average=None,
                        reduce=None, reduction="mean"):
    """max(d(a, p) - d(a, n) + margin, 0) with d = pairwise_distance(., ., p, eps); swap uses min(d(a, n),
    d(p, n)) as the negative distance (Balntas et al.)."""
    reduction = legacy_reduction(size_average, reduce, reduction)
    check_reduction(reduction)
    for name, t in (("anchor", anchor), ("positive", positive), ("negative", negative)):
        _check_float_input(f"triplet_margin_loss ({name})", t)
    if not anchor.ndim == positive.ndim == negative.ndim:
        raise RuntimeError(f"The anchor, positive, and negative tensors are expected to have the same number of "
                           f"dimensions, but got: anchor {anchor.ndim}D, positive {positive.ndim}D, and negative "
                           f"{negative.ndim}D inputs")
    if margin <= 0:
        raise ValueError(f"triplet_margin_loss: margin must be greater than 0, got {margin}")
    d_pos = pairwise_distance(anchor, positive, p, eps)
    d_neg = pairwise_distance(anchor, negative, p, eps)
    if swap:
        d_neg = minimum(d_neg, pairwise_distance(positive, negative, p, eps))
    return _reduce(clamp(add(sub(d_pos, d_neg), margin), min=0), reduction)


def cosine_embedding_loss(input1, input2, target, margin=0, size_average=None, reduce=None, reduction="mean"):
    """1 - cos(x1, x2) where target = 1, max(0, cos(x1, x2) - margin) where target = -1; cos over the last dim
    with 1e-12 added to each squared norm, as PyTorch computes it."""
    reduction = legacy_reduction(size_average, reduce, reduction)
    check_reduction(reduction)
    _check_float_input("cosine_embedding_loss", input1)
    _check_float_input("cosine_embedding_loss", input2)
    if input1.shape != input2.shape:
        raise RuntimeError(f"cosine_embedding_loss: input1 {tuple(input1.shape)} and input2 "
                           f"{tuple(input2.shape)} should have the same size")
    if input1.ndim not in (1, 2):
        raise RuntimeError(f"cosine_embedding_loss: 1D target tensor expects 2D input tensors, but found inputs "
                           f"with sizes {tuple(input1.shape)}")
    target = _as_target(target, input1)
    if target.ndim != input1.ndim - 1 or target.shape != input1.shape[:-1]:
        raise RuntimeError(f"cosine_embedding_loss: target of shape {tuple(target.shape)} does not match inputs "
                           f"of shape {tuple(input1.shape)} (expected {tuple(input1.shape[:-1])})")
    dim = input1.ndim - 1
    prod = _sum(mul(input1, input2), dim)
    mag1 = add(_sum(mul(input1, input1), dim), 1e-12)
    mag2 = add(_sum(mul(input2, input2), dim), 1e-12)
    cos = div(prod, sqrt(mul(mag1, mag2)))
    pos = where(eq(target, 1), sub(1.0, cos), 0.0)
    neg = where(eq(target, -1), clamp(sub(cos, margin), min=0), 0.0)
    return _reduce(add(pos, neg), reduction)


def poisson_nll_loss(input, target, log_input=True, full=False, size_average=None, eps=1e-8, reduce=None,
                     reduction="mean"):
    """exp(input) - target input (log_input) or input - target log(input + eps); full adds Stirling's term
    target log target - target + 0.5 log(2 pi target) where target > 1."""
    reduction = legacy_reduction(size_average, reduce, reduction)
    check_reduction(reduction)
    _check_float_input("poisson_nll_loss", input)
    target = _as_target(target, input, input.dtype)
    _same_shape("poisson_nll_loss", input, target)
    if log_input:
        loss = sub(exp(input), mul(target, input))
    else:
        loss = sub(input, mul(target, log(add(input, eps))))
    if full:
        big = gt(target, 1)
        safe = where(big, target, 1.0)
        stirling = add(sub(mul(safe, log(safe)), safe), mul(log(mul(safe, 2 * math.pi)), 0.5))
        loss = add(loss, where(big, stirling, 0.0))
    return _reduce(loss, reduction)


def gaussian_nll_loss(input, target, var, full=False, eps=1e-6, reduction="mean"):
    """0.5 (log(max(var, eps)) + (input - target)^2 / max(var, eps)) (+ 0.5 log(2 pi) when full). var has the
    input's shape, or one dim fewer / a last dim of 1 (one variance per sample). The clamp changes the value
    only: the gradient reaches var as if unclamped, as in PyTorch (whose clamp runs under no_grad)."""
    check_reduction(reduction)
    _check_float_input("gaussian_nll_loss", input)
    target = _as_target(target, input, input.dtype)
    var = _as_target(var, input, input.dtype)
    if var.shape != input.shape:
        if input.shape[:-1] == var.shape:
            var = unsqueeze(var, -1)  # one variance per sample, without the trailing 1
        elif not (input.shape[:-1] == var.shape[:-1] and var.ndim == input.ndim and var.shape[-1] == 1):
            raise ValueError(f"var is of incorrect size: got {tuple(var.shape)} for input {tuple(input.shape)}")
    if reduction not in ("none", "mean", "sum"):
        raise ValueError(f"{reduction} is not a valid value for reduction")
    if bool((var._data < 0).any()):
        raise ValueError("var has negative entry/entries")
    clamped = add(var, sub(clamp(var.detach(), min=eps), var.detach()))
    diff = sub(input, target)
    loss = mul(add(log(clamped), div(mul(diff, diff), clamped)), 0.5)
    if full:
        loss = add(loss, 0.5 * math.log(2 * math.pi))
    return _reduce(loss, reduction)


def multilabel_soft_margin_loss(input, target, weight=None, size_average=None, reduce=None, reduction="mean"):
    """-(y log sigmoid(x) + (1 - y) log sigmoid(-x)) (times weight), averaged over the classes (last dim), then
    reduced over the samples."""
    reduction = legacy_reduction(size_average, reduce, reduction)
    check_reduction(reduction)
    _check_float_input("multilabel_soft_margin_loss", input)
    if input.ndim == 0:
        raise ValueError("multilabel_soft_margin_loss: input must have at least one dimension (the classes)")
    target = _as_target(target, input, input.dtype)
    if weight is not None and tuple(np.broadcast_shapes(weight.shape, input.shape)) != tuple(input.shape):
        raise ValueError(f"multilabel_soft_margin_loss: weight of shape {tuple(weight.shape)} does not broadcast "
                         f"to the input's shape {tuple(input.shape)}")
    w = None if weight is None else weight.expand(input.shape)
    per_class = binary_cross_entropy_with_logits(input, target, w, reduction="none")
    return _reduce(div(_sum(per_class, input.ndim - 1), input.shape[-1]), reduction)


# ---- issue 14, part B: the margin losses --------------------------------------------------------------------
def hinge_embedding_loss(input, target, margin=1.0, size_average=None, reduce=None, reduction="mean"):
    """x where target = 1, max(0, margin - x) where target = -1 (PyTorch adds both terms for any other target
    value, which this follows)."""
    reduction = legacy_reduction(size_average, reduce, reduction)
    check_reduction(reduction)
    _check_float_input("hinge_embedding_loss", input)
    target = _as_target(target, input)
    _same_shape("hinge_embedding_loss", input, target)
    margin_term = where(ne(target, 1), clamp(sub(margin, input), min=0), 0.0)
    self_term = where(ne(target, -1), input, 0.0)
    return _reduce(add(margin_term, self_term), reduction)


def soft_margin_loss(input, target, size_average=None, reduce=None, reduction="mean"):
    """log(1 + exp(-target * input)) per element (targets in {1, -1}), computed as -logsigmoid(target * input)."""
    from fastnn.ops.activation import logsigmoid
    reduction = legacy_reduction(size_average, reduce, reduction)
    check_reduction(reduction)
    _check_float_input("soft_margin_loss", input)
    target = _as_target(target, input, input.dtype)
    _same_shape("soft_margin_loss", input, target)
    return _reduce(neg(logsigmoid(mul(target, input))), reduction)


def _class_targets(name, input, target):
    """(input as (N, C), target as int64 (N,) on input's device, whether input was 1-D) with the targets checked."""
    _check_float_input(name, input)
    if input.ndim not in (1, 2) or input.shape[-1] == 0:
        raise ValueError(f"{name}: expected a non-empty 1-D (C) or 2-D (N, C) input, got shape {tuple(input.shape)}")
    target = _as_target(target, input)
    if target.dtype.kind not in "iu":
        raise TypeError(f"{name}: target must hold integer class indices, got dtype {target.dtype}")
    single = input.ndim == 1
    if single:
        input, target = unsqueeze(input, 0), target.reshape(1, *target.shape)
    return input, target, single


def multi_margin_loss(input, target, p=1, margin=1.0, weight=None, size_average=None, reduce=None,
                      reduction="mean"):
    """Multi-class hinge loss: for each sample, sum over classes i != y of max(0, margin - x[y] + x[i])^p
    (times weight[y]), divided by the number of classes C. p is 1 or 2."""
    from fastnn.ops.indexing import gather
    reduction = legacy_reduction(size_average, reduce, reduction)
    check_reduction(reduction)
    if p not in (1, 2):
        raise ValueError(f"multi_margin_loss: only p == 1 and p == 2 supported, got p={p!r}")
    input, target, single = _class_targets("multi_margin_loss", input, target)
    n, classes = input.shape
    if target.shape != (n,):
        raise ValueError(f"multi_margin_loss: inconsistent target size {tuple(target.shape)} for input of size "
                         f"{(classes,) if single else (n, classes)}")
    labels = target._data
    if labels.size and bool(((labels < 0) | (labels >= classes)).any()):
        raise ValueError(f"multi_margin_loss: target values must lie in [0, {classes - 1}], got "
                         f"{labels.min().item()}..{labels.max().item()}")
    xp = input._backend.xp
    index = target.reshape(n, 1)
    terms = clamp(add(sub(input, gather(input, 1, index)), margin), min=0)
    if p == 2:
        terms = mul(terms, terms)
    if weight is not None:
        if weight.shape != (classes,):
            raise ValueError(f"multi_margin_loss: weight must have shape ({classes},), got {tuple(weight.shape)}")
        terms = mul(terms, gather(weight.to(dtype=input.dtype), 0, target).reshape(n, 1))
    others = Tensor(labels.reshape(n, 1) != xp.arange(classes).reshape(1, classes), device=input.device)
    losses = div(_sum(where(others, terms, 0.0), 1), classes)
    return _reduce(losses.reshape(()) if single else losses, reduction)


def multilabel_margin_loss(input, target, size_average=None, reduce=None, reduction="mean"):
    """Multi-label hinge loss: target row n lists sample n's classes, ended by the first -1; the loss sums
    max(0, 1 - (x[j] - x[i])) over its classes j and the other classes i, divided by C."""
    reduction = legacy_reduction(size_average, reduce, reduction)
    check_reduction(reduction)
    input, target, single = _class_targets("multilabel_margin_loss", input, target)
    n, classes = input.shape
    if target.shape != (n, classes):
        raise ValueError(f"multilabel_margin_loss: target must have the input's shape {tuple(input.shape)}, "
                         f"got {tuple(target.shape)}")
    labels = target._data
    xp = input._backend.xp
    if labels.size and bool(((labels < -1) | (labels >= classes)).any()):
        raise ValueError(f"multilabel_margin_loss: target values must be -1 or lie in [0, {classes - 1}]")
    listed = xp.cumprod(labels != -1, axis=1).astype(bool)  # entries before the row's first -1
    is_target = ((labels[:, :, None] == xp.arange(classes)) & listed[:, :, None]).any(axis=1)   # (N, C)
    pairs = Tensor(is_target[:, :, None] & ~is_target[:, None, :], device=input.device)      # (N, j, i)
    hinge = clamp(sub(1.0, sub(unsqueeze(input, 2), unsqueeze(input, 1))), min=0)
    losses = div(_sum(where(pairs, hinge, 0.0), (1, 2)), classes)
    return _reduce(losses.reshape(()) if single else losses, reduction)


def triplet_margin_with_distance_loss(anchor, positive, negative, *, distance_function=None, margin=1.0,
                                      swap=False, reduction="mean"):
    """max(d(a, p) - d(a, n) + margin, 0) for any distance function (default: pairwise_distance)."""
    check_reduction(reduction)
    if margin <= 0:
        raise ValueError(f"triplet_margin_with_distance_loss: margin must be greater than 0, got {margin}")
    distance = pairwise_distance if distance_function is None else distance_function
    d_pos, d_neg = distance(anchor, positive), distance(anchor, negative)
    if swap:
        d_neg = minimum(d_neg, distance(positive, negative))
    return _reduce(clamp(add(sub(d_pos, d_neg), margin), min=0), reduction)


# ---- CTC (issue 14, part B) -----------------------------------------------------------------------------------
def _host_ints(name, values, n):
    """`values` (a Tensor, sequence or int) as a host int64 array of n entries."""
    host = values._backend.to_host(values._data) if isinstance(values, Tensor) else values
    host = np.asarray(host).reshape(-1)  # host: lengths given by the caller, copied to the host
    if host.dtype.kind not in "iu" or host.shape != (n,):
        raise ValueError(f"ctc_loss: {name} must hold {n} integer lengths (one per sample), got {values!r}")
    return host.astype(np.int64)


def _logaddexp(xp, *arrays):
    """log(sum(exp(a))) element-wise over the arrays; -inf where all are -inf, without warnings."""
    top = arrays[0]
    for a in arrays[1:]:
        top = xp.maximum(top, a)
    shift = xp.where(xp.isfinite(top), top, 0)
    with np.errstate(divide="ignore"):
        return xp.log(sum(xp.exp(a - shift) for a in arrays)) + shift


def _shift(xp, a, k, fill):
    """out[:, s] = a[:, s - k] (k > 0: from the left, k < 0: from the right), `fill` where that is outside."""
    if abs(k) >= a.shape[1]:
        return xp.full(a.shape, fill, a.dtype)
    pad = xp.full((a.shape[0], abs(k)), fill, a.dtype)
    return xp.concatenate([pad, a[:, :-k]] if k > 0 else [a[:, -k:], pad], axis=1)


def _ctc_targets(targets, tg_lens, n, blank, classes, unbatched):
    """The (N, 2 * max length + 1) extended label rows blank, l1, blank, l2, ..., blank, on the host."""
    host = targets._backend.to_host(targets._data) if isinstance(targets, Tensor) else targets
    host = np.asarray(host)  # host: the labels, a host copy
    if host.dtype.kind not in "iu":
        raise TypeError(f"ctc_loss: targets must hold integer class indices, got dtype {host.dtype}")
    longest = int(tg_lens.max())
    padded = np.full((n, longest), blank, np.int64)  # host: the label layout, from host copies
    if unbatched:
        host = host.reshape(1, -1)
    if host.ndim == 1:                                   # the N targets concatenated
        if host.size != tg_lens.sum():
            raise ValueError(f"ctc_loss: 1-D targets must hold sum(target_lengths) = {tg_lens.sum()} labels, got "
                             f"{host.size}")
        rows = np.split(host, np.cumsum(tg_lens)[:-1])  # host: the concatenated targets, split
    elif host.ndim == 2 and host.shape[0] == n and host.shape[1] >= longest:
        rows = [row[:length] for row, length in zip(host, tg_lens)]
    else:
        raise ValueError(f"ctc_loss: targets must be (N, S) with S >= max(target_lengths) = {longest}, or 1-D, got "
                         f"shape {host.shape}")
    for i, row in enumerate(rows):
        padded[i, :len(row)] = row
    used = np.arange(longest) < tg_lens[:, None]  # host: which padded entries are labels
    if ((padded[used] < 0) | (padded[used] >= classes) | (padded[used] == blank)).any():
        raise ValueError(f"ctc_loss: target labels must be class indices in [0, {classes - 1}] other than "
                         f"blank={blank}")
    extended = np.full((n, 2 * longest + 1), blank, np.int64)  # host: sent to the device once
    extended[:, 1::2] = padded
    return extended


def ctc_loss(log_probs, targets, input_lengths, target_lengths, blank=0, reduction="mean", zero_infinity=False):
    """Connectionist temporal classification (Graves et al., 2006): -log of the summed probability of every
    alignment of each target to its input, by the forward-backward recursions in log space.

    log_probs (T, N, C) (or unbatched (T, C)) are log-probabilities, usually log_softmax over C; targets are
    (N, S) padded or the 1-D concatenation of the N targets. 'mean' divides each loss by its target length, then
    averages over the batch (PyTorch's). The gradient is the exact one for log_probs; after a log_softmax it
    equals PyTorch's (whose formula folds that log_softmax in)."""
    check_reduction(reduction)
    _check_float_input("ctc_loss", log_probs)
    if log_probs.ndim not in (2, 3):
        raise ValueError(f"ctc_loss: log_probs must be (T, N, C) or (T, C), got shape {tuple(log_probs.shape)}")
    backend, xp = log_probs._backend, log_probs._backend.xp
    unbatched = log_probs.ndim == 2
    lp = log_probs._data[:, None, :] if unbatched else log_probs._data
    steps, n, classes = lp.shape
    if isinstance(blank, bool) or not isinstance(blank, (int, np.integer)) or not 0 <= blank < classes:
        raise ValueError(f"ctc_loss: blank must be a class index in [0, {classes - 1}], got {blank!r}")
    in_lens = _host_ints("input_lengths", input_lengths, n)
    tg_lens = _host_ints("target_lengths", target_lengths, n)
    if (in_lens < 1).any() or (in_lens > steps).any() or (tg_lens < 0).any():
        raise ValueError(f"ctc_loss: input_lengths must lie in [1, {steps}] (T) and target_lengths be >= 0, got "
                         f"{in_lens.tolist()} and {tg_lens.tolist()}")
    extended = _ctc_targets(targets, tg_lens, n, blank, classes, unbatched)
    width = extended.shape[1]
    # s may also be reached from s - 2: a label (not blank) unlike the label before it
    skip_host = np.zeros((n, width), bool)  # host: from the host label rows
    skip_host[:, 2:] = (extended[:, 2:] != blank) & (extended[:, 2:] != extended[:, :-2])
    ext, skip = backend.asarray(extended), backend.asarray(skip_host)
    dtype = lp.dtype
    neg_inf = dtype.type(-np.inf)
    emit = xp.take_along_axis(lp, xp.broadcast_to(ext[None], (steps, n, width)), axis=2)   # (T, N, S')
    positions = xp.arange(width)[None, :]
    last = backend.asarray(2 * tg_lens)[:, None]            # the final blank's position
    t_end = backend.asarray(in_lens)[:, None] - 1          # each sample's last step

    alpha = xp.full((steps, n, width), neg_inf, dtype)
    alpha[0] = xp.where(positions < 2, emit[0], neg_inf)
    for t_ in range(1, steps):
        prev = alpha[t_ - 1]
        step = emit[t_] + _logaddexp(xp, prev, _shift(xp, prev, 1, neg_inf),
                                     xp.where(skip, _shift(xp, prev, 2, neg_inf), neg_inf))
        alpha[t_] = xp.where(t_ <= t_end, step, prev)           # past its input, a sample keeps its alphas
    # alpha[-1] holds each sample's alphas at its last step; the paths end on the last label or the final blank
    log_likelihood = _log_sum_where(xp, alpha[-1], (positions == last) | (positions == last - 1))
    losses = -log_likelihood
    infinite = ~xp.isfinite(losses)
    if zero_infinity:
        losses = xp.where(infinite, 0, losses)
    lengths = xp.maximum(backend.asarray(tg_lens), 1).astype(dtype)
    if reduction == "none":
        out = losses[0] if unbatched else losses
    else:
        out = losses.sum() if reduction == "sum" else (losses / lengths).mean()

    def backward(g):
        skip_next = _shift(xp, skip, -2, False)             # s + 2 may be reached from s
        beta = xp.full((steps, n, width), neg_inf, dtype)
        for t_ in range(steps - 1, -1, -1):
            if t_ + 1 < steps:
                nxt = beta[t_ + 1]
                later = emit[t_] + _logaddexp(xp, nxt, _shift(xp, nxt, -1, neg_inf),
                                              xp.where(skip_next, _shift(xp, nxt, -2, neg_inf), neg_inf))
            else:
                later = xp.full((n, width), neg_inf, dtype)
            start = xp.where((positions == last) | (positions == last - 1), emit[t_], neg_inf)
            beta[t_] = xp.where(t_ == t_end, start, xp.where(t_ < t_end, later, neg_inf))
        both = alpha + beta                                   # alpha_t(s) beta_t(s), y_t(l'_s) counted twice
        top = both.max(axis=2, keepdims=True)
        top = xp.where(xp.isfinite(top), top, 0)
        onehot = (ext[:, :, None] == xp.arange(classes)).astype(dtype)          # (N, S', C)
        summed = xp.einsum("tns,nsc->tnc", xp.exp(both - top), onehot)
        with np.errstate(divide="ignore"):
            log_ab = xp.log(summed) + top
        # d(-log p) / d lp[t, c] = -sum over s with l'_s = c of alpha_t(s) beta_t(s) / (y_t(c) p); an
        # impossible target (p = 0) gives NaN here, zeroed below
        with np.errstate(invalid="ignore"):
            grad = -xp.exp(log_ab - lp - log_likelihood[None, :, None])
        if reduction == "none":
            scale = xp.asarray(g, dtype).reshape(n)
        elif reduction == "sum":
            scale = xp.broadcast_to(xp.asarray(g, dtype).reshape(1), (n,))
        else:
            scale = g / (lengths * n)
        if zero_infinity:
            scale = xp.where(infinite, 0, scale)
        grad = xp.where(xp.isfinite(grad), grad, 0) * scale[None, :, None]
        return ((grad[:, 0] if unbatched else grad).astype(dtype, copy=False),)
    return make_result(xp.asarray(out, dtype), (log_probs,), backward, "ctc_loss", saved=())


def _log_sum_where(xp, values, mask):
    """log(sum(exp(values))) over the last axis where mask is True; -inf where no entry is."""
    masked = xp.where(mask, values, -np.inf)
    top = masked.max(axis=1)
    shift = xp.where(xp.isfinite(top), top, 0)
    with np.errstate(divide="ignore"):
        return xp.log(xp.exp(masked - shift[:, None]).sum(axis=1)) + shift


def _weighted(name, losses, weight, reduction, mean_by_weight):
    """PyTorch's `weight=` of mse_loss, l1_loss and huber_loss: per-element weights of the input's shape; 'mean'
    is sum(w * loss) / sum(w) for the first two and mean(w * loss) for huber_loss (as PyTorch computes them)."""
    check_reduction(reduction)
    weight = _as_target(weight, losses, losses.dtype)
    if weight.shape != losses.shape:
        raise ValueError(f"{name}: weights and input must have the same size, got weight {tuple(weight.shape)} and "
                         f"input {tuple(losses.shape)}")
    weighted = mul(losses, weight)
    if reduction == "mean" and mean_by_weight:
        return div(_sum(weighted), _sum(weight))
    return _reduce(weighted, reduction)

"""Dropout family: inverted dropout, channel dropout, alpha dropout and stochastic depth (drop path).

Every mask is a Bernoulli(keep = 1 - p) draw `generator.random(shape, dtype=float32) < keep` from
fastnn.random.default_generator(), so fastnn.manual_seed makes it reproducible. Each op multiplies its input by a
factor (0 where dropped, the rescaling where kept) and its backward multiplies the gradient by that same factor.
With p == 1 everything is dropped: the output is all zeros (no 1/(1 - p) = inf scale, hence no NaN).
"""
import math
import numbers

import numpy as np

from fastnn._tracing import traced
from fastnn.autograd import make_result
from fastnn.tensor import Tensor

# SELU's negative saturation value is -scale * alpha; alpha dropout sets dropped units to it (PyTorch's constant).
_SELU_SATURATION = 1.7580993408473766
_STOCHASTIC_DEPTH_MODES = ("row", "batch")


def check_probability(p):
    """p as a float, or ValueError naming p unless it is a real number in [0, 1]."""
    if isinstance(p, bool) or not isinstance(p, numbers.Real) or not 0.0 <= p <= 1.0:
        raise ValueError(f"dropout probability has to be between 0 and 1, but got p={p!r}")
    return float(p)


def check_stochastic_depth_mode(mode):
    if mode not in _STOCHASTIC_DEPTH_MODES:
        raise ValueError(f"stochastic depth mode must be one of {_STOCHASTIC_DEPTH_MODES}, got {mode!r}")
    return mode


def _check_input(input, name):
    if not isinstance(input, Tensor):
        raise TypeError(f"{name}: input must be a Tensor, got {type(input).__name__}")
    if input.dtype.kind != "f":
        raise TypeError(f"{name}: input must be a floating point tensor, got {input.dtype}")


def _keep_mask(input, shape, keep):
    """Bernoulli(keep) booleans of `shape` (broadcastable to input) on input's device."""
    return input._backend.draw("random", shape, np.float32) < np.float32(keep)


def _masked_scale(input, p, mask_shape, name, _inplace=False):
    """input * factor, factor = mask / (1 - p) over `mask_shape` (broadcast over the remaining dims); with
    `_inplace` (from Tensor._write_through) written into input's storage."""
    keep = 1.0 - p
    dtype = input.dtype.type
    xp = input._backend.xp
    if keep == 0.0:
        factor = xp.zeros(mask_shape, input.dtype)
    else:
        # A bool array times a scalar: several times faster than where() with two scalars.
        factor = xp.multiply(_keep_mask(input, mask_shape, keep), dtype(1.0 / keep), dtype=input.dtype)
    out = xp.multiply(input._data, factor, out=input._data) if _inplace else input._data * factor
    # the tangent goes through the same mask (a constant: the draw is not redone)
    return make_result(out, (input,), lambda g: (g * factor,), name, saved=(),
                       shares_storage=input if _inplace else None,
                       tangent=lambda t: t * Tensor._wrap(factor, input._backend))


def _apply(input, inplace, scale, p, mask_shape, name):
    """scale(input, p, mask_shape, name), or with `inplace` PyTorch's in-place form: input itself, holding the
    result (the backward reads only the mask, so nothing is copied)."""
    if inplace:
        return input._write_through(name + "_", scale, p, mask_shape, name)
    return scale(input, p, mask_shape, name)


@traced
def dropout(input, p=0.5, training=True, inplace=False):
    """Inverted dropout: zero each element with probability p and scale the survivors by 1/(1 - p) in training,
    so the expected activation is unchanged and evaluation (training=False) is the identity. With `inplace`
    the result is written into input, which is returned (in evaluation, too, input is returned as it is).
    """
    _check_input(input, "dropout")
    p = check_probability(p)
    if not training or p == 0.0:
        return input
    return _apply(input, inplace, _masked_scale, p, input.shape, "dropout")


@traced
def dropout2d(input, p=0.5, training=True, inplace=False):
    """Channel dropout for (N, C, H, W): each whole feature map input[n, c] is zeroed with probability p and the
    kept maps are scaled by 1/(1 - p) (Tompson et al.; neighbouring pixels are correlated, so per-pixel dropout
    would barely regularise convolutions)."""
    _check_input(input, "dropout2d")
    if input.ndim != 4:
        raise ValueError(f"dropout2d expects a 4-D input (N, C, H, W), got shape {tuple(input.shape)}")
    p = check_probability(p)
    if not training or p == 0.0:
        return input
    return _apply(input, inplace, _masked_scale, p, input.shape[:2] + (1, 1), "dropout2d")


@traced
def alpha_dropout(input, p=0.5, training=False, inplace=False):
    """Dropout for SELU networks (Klambauer et al.): dropped units are set to SELU's saturation value
    -alpha' = -1.7581 and the result goes through the affine map a * x + b that restores zero mean and unit
    variance, with a = ((1 - p) * (1 + p * alpha'^2))^(-1/2) and b = a * alpha' * p (PyTorch's formula):
    kept -> a * (x + alpha' * p), dropped -> -a * alpha' * (1 - p)."""
    _check_input(input, "alpha_dropout")
    p = check_probability(p)
    if not training or p == 0.0:
        return input
    return _apply(input, inplace, _alpha_scale, p, input.shape, "alpha_dropout")


@traced
def drop_path(input, p, training=True, mode="row"):
    """Stochastic depth (Huang et al., 2016) for the output of a residual branch, as torchvision's
    stochastic_depth: mode="row" drops each sample's branch (dim 0) independently with probability p,
    mode="batch" drops the branch for the whole batch at once.

    This is the inverted form: during training the surviving branches are scaled by 1/(1 - p) and at test time
    (training=False) the branch passes unchanged. Huang et al. instead leave training unscaled and multiply the
    branch by its survival probability 1 - p at test time; both give the same expected output.
    """
    _check_input(input, "drop_path")
    if input.ndim < 1:
        raise ValueError("drop_path expects an input with a batch dimension, got a 0-d tensor")
    check_stochastic_depth_mode(mode)
    p = check_probability(p)
    if not training or p == 0.0:
        return input
    mask_shape = (input.shape[0] if mode == "row" else 1,) + (1,) * (input.ndim - 1)
    return _masked_scale(input, p, mask_shape, "drop_path")


# ---- issue 14, part B: the other channel dropouts -----------------------------------------------------------
def _feature_dropout(input, p, training, name, spatial, inplace):
    """Dropout of whole channels of an (N, C, *spatial) or unbatched (C, *spatial) input."""
    _check_input(input, name)
    if input.ndim not in (spatial + 1, spatial + 2):
        raise ValueError(f"{name} expects a {spatial + 1}-D (C, ...) or {spatial + 2}-D (N, C, ...) input, got "
                         f"shape {tuple(input.shape)}")
    p = check_probability(p)
    if not training or p == 0.0:
        return input
    channels = input.ndim - spatial
    return _apply(input, inplace, _masked_scale, p, input.shape[:channels] + (1,) * spatial, name)


def dropout1d(input, p=0.5, training=True, inplace=False):
    """Channel dropout for (N, C, L) or (C, L): each input[n, c] is zeroed with probability p, the rest scaled by
    1/(1 - p)."""
    return _feature_dropout(input, p, training, "dropout1d", 1, inplace)


def dropout3d(input, p=0.5, training=True, inplace=False):
    """Channel dropout for (N, C, D, H, W) or (C, D, H, W)."""
    return _feature_dropout(input, p, training, "dropout3d", 3, inplace)


def feature_alpha_dropout(input, p=0.5, training=False, inplace=False):
    """Alpha dropout (see alpha_dropout) that drops whole channels: one keep/drop draw per input[n, c], shared by
    the channel's spatial positions, with the same affine correction."""
    _check_input(input, "feature_alpha_dropout")
    if input.ndim < 2:
        raise ValueError(f"feature_alpha_dropout expects an (N, C, *) input, got shape {tuple(input.shape)}")
    p = check_probability(p)
    if not training or p == 0.0:
        return input
    return _apply(input, inplace, _alpha_scale, p, input.shape[:2] + (1,) * (input.ndim - 2),
                  "feature_alpha_dropout")


def _alpha_scale(input, p, mask_shape, name, _inplace=False):
    """alpha dropout's a * (kept ? x : -alpha') + b with one keep/drop draw per element of `mask_shape`."""
    dtype = input.dtype.type
    xp = input._backend.xp
    if p == 1.0:
        factor = shift = xp.zeros(mask_shape, input.dtype)
    else:
        keep = _keep_mask(input, mask_shape, 1.0 - p)
        a = 1.0 / math.sqrt((_SELU_SATURATION ** 2 * p + 1.0) * (1.0 - p))
        factor = xp.multiply(keep, dtype(a), dtype=input.dtype)
        shift = xp.multiply(keep, dtype(a * _SELU_SATURATION), dtype=input.dtype)
        shift += dtype(-a * _SELU_SATURATION * (1.0 - p))
    if _inplace:
        out = xp.add(xp.multiply(input._data, factor, out=input._data), shift, out=input._data)
    else:
        out = input._data * factor + shift
    return make_result(out, (input,), lambda g: (g * factor,), name, saved=(),
                       shares_storage=input if _inplace else None,
                       tangent=lambda t: t * Tensor._wrap(factor, input._backend))

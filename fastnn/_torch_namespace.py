"""The torch.* forms of functional ops (torch.conv2d, torch.dropout, torch.batch_norm, torch.exp_, ...) that
scripts call on the torch namespace; fastnn/__init__.py re-exports every name in __all__.

Each is nn.functional's op (or a Tensor method) under PyTorch's torch.* signature, which is ATen's: it sometimes
differs from F.*'s (torch.dropout(input, p, train) has no defaults; torch.batch_norm and torch.instance_norm take
weight and bias before the running statistics; torch.embedding takes the weight first; losses take `reduction` as
ATen's enum, 0 'none', 1 'mean', 2 'sum', without size_average/reduce). `cudnn_enabled` is accepted and ignored.
"""
import warnings

from fastnn.nn import functional as F
from fastnn.tensor import Tensor

# Same signature on both namespaces: the F op itself.
conv1d, conv2d, conv3d = F.conv1d, F.conv2d, F.conv3d
conv_transpose1d, conv_transpose2d = F.conv_transpose1d, F.conv_transpose2d
max_pool1d, max_pool2d, max_pool3d = F.max_pool1d, F.max_pool2d, F.max_pool3d
max_pool1d_with_indices, log_softmax, rms_norm = F.max_pool1d_with_indices, F.log_softmax, F.rms_norm
avg_pool1d, adaptive_avg_pool1d, adaptive_max_pool1d = F.avg_pool1d, F.adaptive_avg_pool1d, F.adaptive_max_pool1d
pixel_shuffle, pixel_unshuffle, channel_shuffle = F.pixel_shuffle, F.pixel_unshuffle, F.channel_shuffle
cosine_similarity, pairwise_distance, pdist = F.cosine_similarity, F.pairwise_distance, F.pdist
prelu, hardshrink, bilinear = F.prelu, F.hardshrink, F.bilinear
selu_, celu_, threshold_ = F.selu_, F.celu_, F.threshold_

# torch.<name>_(input, ...) is the Tensor method input.<name>_(...).
_TENSOR_IN_PLACE = (
    "abs_", "acos_", "acosh_", "addmv_", "arccos_", "arccosh_", "arcsin_", "arcsinh_", "arctan_", "arctanh_", "asin_",
    "asinh_", "atan_", "atanh_", "ceil_", "clamp_", "clamp_max_", "clamp_min_", "clip_", "cos_", "cosh_", "deg2rad_",
    "detach_", "erf_", "erfc_", "exp2_", "exp_", "expm1_", "fill_", "fix_", "floor_", "frac_", "index_put_",
    "log10_", "log1p_", "log2_", "log_", "logit_", "nan_to_num_", "neg_", "negative_", "rad2deg_", "reciprocal_",
    "relu_", "round_", "rsqrt_", "sigmoid_", "sin_", "sinc_", "sinh_", "sqrt_", "square_", "tan_", "tanh_", "trunc_",
    "xlogy_", "zero_")
globals().update({name: getattr(Tensor, name) for name in _TENSOR_IN_PLACE})

_REDUCTIONS = ("none", "mean", "sum")   # ATen's Reduction enum, by value


def _reduction(reduction):
    """ATen's reduction enum (0, 1, 2) as nn.functional's name; a name passes through (F checks it)."""
    if isinstance(reduction, int) and not isinstance(reduction, bool):
        if not 0 <= reduction < len(_REDUCTIONS):
            raise ValueError(f"reduction must be 0 ('none'), 1 ('mean') or 2 ('sum'), got {reduction}")
        return _REDUCTIONS[reduction]
    return reduction


def batch_norm(input, weight, bias, running_mean, running_var, training, momentum, eps, cudnn_enabled):
    return F.batch_norm(input, running_mean, running_var, weight, bias, training, momentum, eps)


def instance_norm(input, weight, bias, running_mean, running_var, use_input_stats, momentum, eps, cudnn_enabled):
    return F.instance_norm(input, running_mean, running_var, weight, bias, use_input_stats, momentum, eps)


def layer_norm(input, normalized_shape, weight=None, bias=None, eps=1e-05, cudnn_enable=True):
    return F.layer_norm(input, normalized_shape, weight, bias, eps)


def group_norm(input, num_groups, weight=None, bias=None, eps=1e-05, cudnn_enabled=True):
    return F.group_norm(input, num_groups, weight, bias, eps)


def dropout(input, p, train):
    return F.dropout(input, p, train)


def dropout_(input, p, train):
    return _into(input, F.dropout(input, p, train))


def alpha_dropout(input, p, train):
    return F.alpha_dropout(input, p, train)


def alpha_dropout_(input, p, train):
    return _into(input, F.alpha_dropout(input, p, train))


def feature_alpha_dropout(input, p, train):
    return F.feature_alpha_dropout(input, p, train)


def feature_alpha_dropout_(input, p, train):
    return _into(input, F.feature_alpha_dropout(input, p, train))


def _into(input, out):
    """The in-place form: F's dropouts return a new tensor (their `inplace` flag is only accepted)."""
    return input if out is input else input.copy_(out)


def embedding(weight, indices, padding_idx=-1, scale_grad_by_freq=False, sparse=False):
    """ATen's embedding: the weight first; a negative padding_idx means none."""
    if scale_grad_by_freq or sparse:
        raise ValueError(f"embedding: scale_grad_by_freq={scale_grad_by_freq!r} and sparse={sparse!r}: fastnn "
                         f"supports only dense gradients without frequency scaling (pass False)")
    return F.embedding(indices, weight, None if padding_idx is None or padding_idx < 0 else padding_idx)


def selu(input):
    return F.selu(input)


def celu(input, alpha=1.0):
    return F.celu(input, alpha)


def threshold(input, threshold, value):
    return F.threshold(input, threshold, value)


def rrelu(input, lower=1.0 / 8, upper=1.0 / 3, training=False, generator=None):
    _no_generator(generator)
    return F.rrelu(input, lower, upper, training)


def rrelu_(input, lower=1.0 / 8, upper=1.0 / 3, training=False, generator=None):
    _no_generator(generator)
    return F.rrelu_(input, lower, upper, training)


def _no_generator(generator):
    if generator is not None:
        raise ValueError("rrelu: generator= is not supported; seed the global generator with fastnn.manual_seed")


def kl_div(input, target, reduction=1, *, log_target=False):
    with warnings.catch_warnings():  # ATen's kl_div has no F.kl_div warning about 'mean' vs 'batchmean'
        warnings.filterwarnings("ignore", "reduction: 'mean' divides", UserWarning)
        return F.kl_div(input, target, reduction=_reduction(reduction), log_target=log_target)


def binary_cross_entropy_with_logits(input, target, weight=None, pos_weight=None, reduction=1):
    return F.binary_cross_entropy_with_logits(input, target, weight, reduction=_reduction(reduction),
                                              pos_weight=pos_weight)


def cosine_embedding_loss(input1, input2, target, margin=0.0, reduction=1):
    return F.cosine_embedding_loss(input1, input2, target, margin, reduction=_reduction(reduction))


def margin_ranking_loss(input1, input2, target, margin=0.0, reduction=1):
    return F.margin_ranking_loss(input1, input2, target, margin, reduction=_reduction(reduction))


def hinge_embedding_loss(input, target, margin=1.0, reduction=1):
    return F.hinge_embedding_loss(input, target, margin, reduction=_reduction(reduction))


def triplet_margin_loss(anchor, positive, negative, margin=1.0, p=2, eps=1e-06, swap=False, reduction=1):
    return F.triplet_margin_loss(anchor, positive, negative, margin, p, eps, swap, reduction=_reduction(reduction))


def poisson_nll_loss(input, target, log_input, full, eps, reduction):
    return F.poisson_nll_loss(input, target, log_input, full, eps=eps, reduction=_reduction(reduction))


def ctc_loss(log_probs, targets, input_lengths, target_lengths, blank=0, reduction=1, zero_infinity=False):
    return F.ctc_loss(log_probs, targets, input_lengths, target_lengths, blank, _reduction(reduction),
                      zero_infinity)


__all__ = [name for name in globals() if not name.startswith("_") and name not in ("F", "Tensor", "warnings")]

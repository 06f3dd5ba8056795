"""fastnn.nn.functional: the stateless form of every layer, with PyTorch's names and signatures.

The math lives in fastnn.ops; this module is the public face layers and users call.
"""
from fastnn import ops
from fastnn.tensor import Tensor
from fastnn.ops import (binary_cross_entropy_with_logits, cross_entropy, l1_loss, linear, mse_loss, nll_loss,
                        pad, sigmoid, tanh)
from fastnn.ops import activation as _activation
from fastnn.ops.activation import gelu, maxout, prelu, softplus, swish
from fastnn.ops.conv import conv2d
from fastnn.ops.conv_nd import conv1d, conv3d, conv_transpose1d, conv_transpose2d
from fastnn.ops.dropout import alpha_dropout, drop_path, dropout, dropout2d
from fastnn.ops.embedding import embedding
from fastnn.ops.norm import batch_norm, group_norm, instance_norm, layer_norm, local_response_norm
from fastnn.ops.pool import avg_pool2d, max_pool2d
from fastnn.ops.pool_nd import (adaptive_avg_pool1d, adaptive_avg_pool2d, adaptive_max_pool1d, adaptive_max_pool2d,
                                avg_pool1d, avg_pool3d, fractional_max_pool2d, max_pool1d, max_pool3d)

__all__ = ["avg_pool2d", "binary_cross_entropy_with_logits", "conv2d", "cross_entropy", "flatten", "l1_loss",
           "linear", "log_softmax", "max_pool2d", "mse_loss", "nll_loss", "pad", "relu", "sigmoid", "softmax",
           "tanh"]
__all__ += ["alpha_dropout", "drop_path", "dropout", "dropout2d", "embedding"]
__all__ += ["batch_norm", "group_norm", "instance_norm", "layer_norm", "local_response_norm"]
__all__ += ["conv1d", "conv3d", "conv_transpose1d", "conv_transpose2d"]
__all__ += ["adaptive_avg_pool1d", "adaptive_avg_pool2d", "adaptive_max_pool1d", "adaptive_max_pool2d", "avg_pool1d",
            "avg_pool3d", "fractional_max_pool2d", "max_pool1d", "max_pool3d"]
__all__ += ["elu", "gelu", "hardtanh", "leaky_relu", "maxout", "mish", "prelu", "relu6", "selu", "silu",
            "softplus", "swish"]


# With inplace=True an activation writes into `input` and returns that same tensor, as PyTorch's do (see
# _inplace below); otherwise it returns a new tensor.
def relu(input, inplace=False):
    return _inplace(input, "relu_", ops.relu) if inplace else ops.relu(input)


def relu6(input, inplace=False):
    return _inplace(input, "relu6_", _activation.relu6) if inplace else _activation.relu6(input)


def hardtanh(input, min_val=-1.0, max_val=1.0, inplace=False):
    if inplace:
        return _inplace(input, "hardtanh_", _activation.hardtanh, min_val, max_val)
    return _activation.hardtanh(input, min_val, max_val)


def leaky_relu(input, negative_slope=0.01, inplace=False):
    if inplace:
        return _inplace(input, "leaky_relu_", _activation.leaky_relu, negative_slope)
    return _activation.leaky_relu(input, negative_slope)


def elu(input, alpha=1.0, inplace=False):
    return _inplace(input, "elu_", _activation.elu, alpha) if inplace else _activation.elu(input, alpha)


def selu(input, inplace=False):
    return _inplace(input, "selu_", _activation.selu) if inplace else _activation.selu(input)


def silu(input, inplace=False):
    return _inplace(input, "silu_", _activation.silu) if inplace else _activation.silu(input)


def mish(input, inplace=False):
    return _inplace(input, "mish_", _activation.mish) if inplace else _activation.mish(input)


def softmax(input, dim, dtype=None):
    return ops.softmax(input, dim, dtype=dtype)


def log_softmax(input, dim, dtype=None):
    return ops.log_softmax(input, dim, dtype=dtype)


def flatten(input, start_dim=1, end_dim=-1):
    return ops.flatten(input, start_dim, end_dim)


# ---- resampling, padding layers' ops, vectors (issue 14) ------------------------------------------------------
from fastnn.ops.resample import fold, interpolate, pixel_shuffle, pixel_unshuffle, unfold  # noqa: E402
from fastnn.ops.vector import cosine_similarity, normalize, one_hot, pairwise_distance  # noqa: E402

__all__ += ["cosine_similarity", "fold", "interpolate", "normalize", "one_hot", "pairwise_distance",
            "pixel_shuffle", "pixel_unshuffle", "unfold", "upsample", "upsample_bilinear", "upsample_nearest"]


def upsample(input, size=None, scale_factor=None, mode="nearest", align_corners=None):
    """Deprecated in PyTorch in favour of interpolate, which it calls."""
    return interpolate(input, size, scale_factor, mode, align_corners)


def upsample_nearest(input, size=None, scale_factor=None):
    return interpolate(input, size, scale_factor, mode="nearest")


def upsample_bilinear(input, size=None, scale_factor=None):
    return interpolate(input, size, scale_factor, mode="bilinear", align_corners=True)


# ---- attention (issue 14) ------------------------------------------------------------------------------------
from fastnn.ops.attention import multi_head_attention_forward, scaled_dot_product_attention  # noqa: E402

__all__ += ["multi_head_attention_forward", "scaled_dot_product_attention"]

# ---- losses (issue 14) -----------------------------------------------------------------------------------------
from fastnn.ops.loss import (binary_cross_entropy, cosine_embedding_loss, gaussian_nll_loss,  # noqa: E402
                             huber_loss, kl_div, margin_ranking_loss, multilabel_soft_margin_loss,
                             poisson_nll_loss, smooth_l1_loss, triplet_margin_loss)

__all__ += ["binary_cross_entropy", "cosine_embedding_loss", "gaussian_nll_loss", "huber_loss", "kl_div",
            "margin_ranking_loss", "multilabel_soft_margin_loss", "poisson_nll_loss", "smooth_l1_loss",
            "triplet_margin_loss"]

# ---- more activations and their in-place forms (issue 14) ------------------------------------------------------
from fastnn.ops.activation import (celu as _celu, glu, hardshrink, hardsigmoid as _hardsigmoid,  # noqa: E402
                                   hardswish as _hardswish, logsigmoid, rrelu as _rrelu, softmin, softshrink,
                                   softsign, tanhshrink, threshold as _threshold)

__all__ += ["celu", "celu_", "elu_", "glu", "hardshrink", "hardsigmoid", "hardswish", "hardtanh_", "leaky_relu_",
            "logsigmoid", "relu_", "rrelu", "rrelu_", "selu_", "softmin", "softshrink", "softsign", "tanhshrink",
            "threshold", "threshold_"]


def hardswish(input, inplace=False):
    return _inplace(input, "hardswish_", _hardswish) if inplace else _hardswish(input)


def hardsigmoid(input, inplace=False):
    return _inplace(input, "hardsigmoid_", _hardsigmoid) if inplace else _hardsigmoid(input)


def celu(input, alpha=1.0, inplace=False):
    return _inplace(input, "celu_", _celu, alpha) if inplace else _celu(input, alpha)


def threshold(input, threshold, value, inplace=False):
    if inplace:
        return _inplace(input, "threshold_", _threshold, threshold, value)
    return _threshold(input, threshold, value)


def rrelu(input, lower=1.0 / 8, upper=1.0 / 3, training=False, inplace=False):
    if inplace:
        return _inplace(input, "rrelu_", _rrelu, lower, upper, training)
    return _rrelu(input, lower, upper, training)


# The in-place forms (inplace=True and the trailing-underscore names) write into `input` and return it, recorded
# by autograd as PyTorch does (a leaf that requires grad is refused, a later edit of a saved output is caught at
# backward); the op writes straight into input's storage, see Tensor._write_through.
def _inplace(input, name, fn, *args):
    if not isinstance(input, Tensor):
        raise TypeError(f"{name}(): input must be a Tensor, got {type(input).__name__}")
    return input._write_through(name, fn, *args)


def relu_(input):
    return _inplace(input, "relu_", ops.relu)


def elu_(input, alpha=1.0):
    return _inplace(input, "elu_", _activation.elu, alpha)


def leaky_relu_(input, negative_slope=0.01):
    return _inplace(input, "leaky_relu_", _activation.leaky_relu, negative_slope)


def hardtanh_(input, min_val=-1.0, max_val=1.0):
    return _inplace(input, "hardtanh_", _activation.hardtanh, min_val, max_val)


def selu_(input):
    return _inplace(input, "selu_", _activation.selu)


def celu_(input, alpha=1.0):
    return _inplace(input, "celu_", _celu, alpha)


def threshold_(input, threshold, value):
    return _inplace(input, "threshold_", _threshold, threshold, value)


def rrelu_(input, lower=1.0 / 8, upper=1.0 / 3, training=False):
    return _inplace(input, "rrelu_", _rrelu, lower, upper, training)

# ---- margin losses (issue 14, part B) --------------------------------------------------------------------------
from fastnn.ops.loss import (hinge_embedding_loss, multi_margin_loss, multilabel_margin_loss,  # noqa: E402
                             soft_margin_loss, triplet_margin_with_distance_loss)

__all__ += ["hinge_embedding_loss", "multi_margin_loss", "multilabel_margin_loss", "soft_margin_loss",
            "triplet_margin_with_distance_loss"]

# ---- layers of issue 14, part B --------------------------------------------------------------------------------
from fastnn.ops.norm import rms_norm  # noqa: E402

__all__ += ["rms_norm"]
from fastnn.ops.dropout import dropout1d, dropout3d, feature_alpha_dropout  # noqa: E402
from fastnn.ops.resample import channel_shuffle  # noqa: E402

native_channel_shuffle = channel_shuffle  # PyTorch's F has both names for the same op

__all__ += ["bilinear", "channel_shuffle", "dropout1d", "dropout3d", "feature_alpha_dropout", "gumbel_softmax",
            "native_channel_shuffle", "pdist"]


def bilinear(input1, input2, weight, bias=None):
    """y[..., o] = sum_ij input1[..., i] weight[o, i, j] input2[..., j] + bias[o]."""
    for name, t in (("input1", input1), ("input2", input2), ("weight", weight)):
        if not isinstance(t, Tensor):
            raise TypeError(f"bilinear(): {name} must be a Tensor, got {type(t).__name__}")
    if weight.ndim != 3 or input1.shape[-1:] != weight.shape[1:2] or input2.shape[-1:] != weight.shape[2:]:
        raise ValueError(f"bilinear(): weight of shape (out, in1, in2) must match the last dims of input1 "
                         f"{tuple(input1.shape)} and input2 {tuple(input2.shape)}, got weight {tuple(weight.shape)}")
    if input1.shape[:-1] != input2.shape[:-1]:
        raise ValueError(f"bilinear(): input1 {tuple(input1.shape)} and input2 {tuple(input2.shape)} must have the "
                         f"same batch dimensions")
    out = ops.einsum("...i,oij,...j->...o", input1, weight, input2)
    return out if bias is None else out + bias


def pdist(input, p=2):
    """The p-norm distance between every pair of rows i < j of an (N, M) input, in row-major order of the pairs
    (N * (N - 1) / 2 values); the gradient at a zero distance is 0, as in PyTorch."""
    from fastnn.ops.math import norm
    if not isinstance(input, Tensor):
        raise TypeError(f"pdist(): input must be a Tensor, got {type(input).__name__}")
    if input.ndim != 2:
        raise ValueError(f"pdist(): only supports 2D tensors, got: {input.ndim}D")
    if isinstance(p, bool) or not isinstance(p, (int, float)) or p < 0:
        raise ValueError(f"pdist(): only supports non-negative p values, got p={p!r}")
    xp = input._backend.xp
    i, j = xp.triu_indices(input.shape[0], 1)
    return norm(input[i] - input[j], p, dim=1)


def gumbel_softmax(logits, tau=1, hard=False, eps=1e-10, dim=-1):
    """softmax((logits + g) / tau) with g ~ Gumbel(0, 1) from fastnn's generator; hard=True returns the one-hot of
    its argmax, with the soft sample's gradient (straight-through estimator). `eps` is unused, as in PyTorch."""
    if not isinstance(logits, Tensor):
        raise TypeError(f"gumbel_softmax(): logits must be a Tensor, got {type(logits).__name__}")
    if logits.dtype.kind != "f":
        raise TypeError(f"gumbel_softmax(): logits must be a floating point tensor, got {logits.dtype}")
    backend = logits._backend
    gumbels = -backend.xp.log(backend.draw("standard_exponential", logits.shape, logits.dtype))
    soft = softmax((logits + Tensor(gumbels, device=logits.device)) / tau, dim)
    if not hard:
        return soft
    xp = backend.xp
    axis = dim % logits.ndim
    index = xp.expand_dims(soft._data.argmax(axis=axis), axis)
    onehot = (xp.arange(logits.shape[axis]).reshape((-1,) + (1,) * (logits.ndim - axis - 1)) == index)
    return Tensor(onehot.astype(logits.dtype), device=logits.device) - soft.detach() + soft

# ---- pooling: the *_with_indices forms, unpooling, power-average and 3-D adaptive pooling ------------------------
from fastnn.ops import pool_nd as _pool_nd  # noqa: E402
from fastnn.ops.pool_nd import adaptive_avg_pool3d, adaptive_max_pool3d  # noqa: E402

__all__ += ["adaptive_avg_pool3d", "adaptive_max_pool1d_with_indices", "adaptive_max_pool2d_with_indices",
            "adaptive_max_pool3d", "fractional_max_pool2d_with_indices", "lp_pool1d", "lp_pool2d", "lp_pool3d",
            "max_pool1d_with_indices", "max_pool2d_with_indices", "max_pool3d_with_indices", "max_unpool1d",
            "max_unpool2d", "max_unpool3d"]


def max_pool1d_with_indices(input, kernel_size, stride=None, padding=0, dilation=1, ceil_mode=False,
                            return_indices=True):
    return max_pool1d(input, kernel_size, stride, padding, dilation, ceil_mode, return_indices=True)


def max_pool2d_with_indices(input, kernel_size, stride=None, padding=0, dilation=1, ceil_mode=False,
                            return_indices=True):
    return max_pool2d(input, kernel_size, stride, padding, dilation, ceil_mode, return_indices=True)


def max_pool3d_with_indices(input, kernel_size, stride=None, padding=0, dilation=1, ceil_mode=False,
                            return_indices=True):
    return max_pool3d(input, kernel_size, stride, padding, dilation, ceil_mode, return_indices=True)


def adaptive_max_pool1d_with_indices(input, output_size, return_indices=True):
    return adaptive_max_pool1d(input, output_size, return_indices=True)


def adaptive_max_pool2d_with_indices(input, output_size, return_indices=True):
    return adaptive_max_pool2d(input, output_size, return_indices=True)


def fractional_max_pool2d_with_indices(input, kernel_size, output_size=None, output_ratio=None,
                                       return_indices=True, _random_samples=None):
    return fractional_max_pool2d(input, kernel_size, output_size, output_ratio, True, _random_samples)


def max_unpool1d(input, indices, kernel_size, stride=None, padding=0, output_size=None):
    return _pool_nd.max_unpool(input, indices, kernel_size, stride, padding, output_size, 1)


def max_unpool2d(input, indices, kernel_size, stride=None, padding=0, output_size=None):
    return _pool_nd.max_unpool(input, indices, kernel_size, stride, padding, output_size, 2)


def max_unpool3d(input, indices, kernel_size, stride=None, padding=0, output_size=None):
    return _pool_nd.max_unpool(input, indices, kernel_size, stride, padding, output_size, 3)


def lp_pool1d(input, norm_type, kernel_size, stride=None, ceil_mode=False):
    return _pool_nd.lp_pool(input, norm_type, kernel_size, stride, ceil_mode, 1)


def lp_pool2d(input, norm_type, kernel_size, stride=None, ceil_mode=False):
    return _pool_nd.lp_pool(input, norm_type, kernel_size, stride, ceil_mode, 2)


def lp_pool3d(input, norm_type, kernel_size, stride=None, ceil_mode=False):
    return _pool_nd.lp_pool(input, norm_type, kernel_size, stride, ceil_mode, 3)
from fastnn.ops.resample import affine_grid, grid_sample  # noqa: E402

__all__ += ["affine_grid", "grid_sample"]
from fastnn.ops.loss import ctc_loss  # noqa: E402

__all__ += ["ctc_loss"]

# ---- embedding bags (issue 14, part B) ---------------------------------------------------------------------------
__all__ += ["embedding_bag"]


def _bag_layout(input, offsets, include_last_offset):
    """(flat indices, bag id of each, number of bags) on the host, from a 2-D input (one bag per row) or a 1-D input
    cut at `offsets` (with include_last_offset, offsets also holds the end of the last bag)."""
    import numpy as np
    flat = input._backend.to_host(input._data)
    if flat.ndim == 2:
        if offsets is not None:
            raise ValueError("embedding_bag: offsets must be None when input is 2-D (one bag per row)")
        return flat.reshape(-1), np.repeat(np.arange(flat.shape[0]), flat.shape[1]), flat.shape[0]
    if flat.ndim != 1 or offsets is None:
        raise ValueError(f"embedding_bag: input must be 2-D (B, N), or 1-D with offsets, got shape {flat.shape} and "
                         f"offsets={offsets!r}")
    starts = np.asarray(offsets._backend.to_host(offsets._data) if isinstance(offsets, Tensor) else offsets)
    bounds = starts if include_last_offset else np.append(starts, flat.size)
    if starts.ndim != 1 or starts.dtype.kind not in "iu" or not starts.size or starts[0] != 0 \
            or (np.diff(bounds) < 0).any() or bounds[-1] > flat.size:
        raise ValueError(f"embedding_bag: offsets must be a 1-D non-decreasing integer sequence starting at 0 and "
                         f"at most len(input) = {flat.size}, got {offsets!r}")
    return flat, np.repeat(np.arange(len(bounds) - 1), np.diff(bounds)), len(bounds) - 1


def embedding_bag(input, weight, offsets=None, max_norm=None, norm_type=2, scale_grad_by_freq=False, mode="mean",
                  sparse=False, per_sample_weights=None, include_last_offset=False, padding_idx=None):
    """The sum, mean or max of the embeddings of each bag of indices: bags are the rows of a 2-D input, or the
    runs of a 1-D input that start at `offsets`. Entries equal to padding_idx are left out (and not counted by
    'mean'); an empty bag gives zeros. per_sample_weights (mode 'sum' only) scale each embedding first."""
    import numpy as np
    if mode not in ("sum", "mean", "max"):
        raise ValueError(f"embedding_bag: mode must be 'sum', 'mean' or 'max', got {mode!r}")
    if max_norm is not None or scale_grad_by_freq:
        raise NotImplementedError("embedding_bag: max_norm and scale_grad_by_freq are not implemented in fastnn")
    if per_sample_weights is not None and mode != "sum":
        raise NotImplementedError(f"embedding_bag: per_sample_weights was not None. per_sample_weights is only "
                                  f"supported for mode='sum' (got mode='{mode}')")
    if not isinstance(input, Tensor) or input.dtype.kind not in "iu":
        raise TypeError(f"embedding_bag: input must be an integer Tensor of indices, got "
                        f"{getattr(input, 'dtype', type(input).__name__)}")
    flat, bags, count = _bag_layout(input, offsets, include_last_offset)
    kept = np.arange(flat.size) if padding_idx is None else np.nonzero(flat != padding_idx)[0]

    def device_tensor(host_array):
        return Tensor(weight._backend.asarray(host_array), device=weight.device)
    rows = embedding(device_tensor(flat[kept]), weight)                       # (kept entries, D)
    if per_sample_weights is not None:
        if tuple(per_sample_weights.shape) != tuple(input.shape):
            raise ValueError(f"embedding_bag: per_sample_weights of shape {tuple(per_sample_weights.shape)} must "
                             f"have the input's shape {tuple(input.shape)}")
        rows = rows * per_sample_weights.reshape(-1)[device_tensor(kept)].reshape(-1, 1)
    bag_of_row = bags[kept]
    zeros = device_tensor(np.zeros((count, weight.shape[1]), weight.dtype))
    if mode == "max":
        pieces = []
        for b in range(count):
            members = np.nonzero(bag_of_row == b)[0]
            pieces.append(rows[device_tensor(members)].amax(0) if members.size else zeros[b])
        return ops.stack(pieces) if pieces else zeros
    out = ops.index_add(zeros, 0, device_tensor(bag_of_row), rows)
    if mode == "mean":
        sizes = np.maximum(np.bincount(bag_of_row, minlength=count), 1).astype(weight.dtype).reshape(-1, 1)
        out = out / device_tensor(sizes)
    return out

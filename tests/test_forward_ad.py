"""Forward-mode AD (fastnn.autograd.forward_ad): every op with a tangent rule gives J v equal to central finite
differences in float64 over Hypothesis-drawn shapes, on every registered device; dual levels, unpack_dual and the
error cases."""
import numpy as np
import pytest
from hypothesis import given, settings, strategies as st
from hypothesis.extra import numpy as hnp

import fastnn
import fastnn.nn.functional as F
from fastnn import autograd
from fastnn.autograd import forward_ad as fwAD
from conftest import DEVICES, host, t as tensor


def sample(shape, rng, kind):
    """float64 values: 'any' (normal), 'positive' (>= 0.5), 'nonzero' (|v| >= 0.2), 'unit' (in (0.1, 0.9))."""
    a = rng.standard_normal(shape)
    if kind == "positive":
        return np.abs(a) + 0.5
    if kind == "nonzero":
        return np.where(a >= 0, a + 0.2, a - 0.2)
    if kind == "unit":
        return 0.1 + 0.8 * rng.random(shape)
    return a


def forward_jvp(fn, arrays, tangents, device):
    with fwAD.dual_level():
        duals = [fwAD.make_dual(tensor(a, device), tensor(v, device)) for a, v in zip(arrays, tangents)]
        out = fn(*duals)
        primal, tangent = fwAD.unpack_dual(out)
    assert tangent is not None and tangent.shape == out.shape and tangent.dtype == out.dtype
    assert tangent.device == out.device
    return host(primal), host(tangent)


def finite_difference_jvp(fn, arrays, tangents, device, eps=1e-6):
    def at(sign):
        return host(fn(*[tensor(a + sign * eps * v, device) for a, v in zip(arrays, tangents)]))
    return (at(1) - at(-1)) / (2 * eps)


def _seeded(fn, seed=7):
    """fn after fastnn.manual_seed(seed): a random op then draws the same mask at every evaluation."""
    def run(*args, **kwargs):
        fastnn.manual_seed(seed)
        return fn(*args, **kwargs)
    return run


def _recurrent(gates, w, b, h, c):
    """Every recurrent op: LSTM/GRU/RNN layers (both directions) and cells, on slices of the same tensors."""
    from fastnn.ops import rnn
    n = h.shape[-1]
    out = rnn.lstm_layer(gates, w, b, h, c)[0].sum(0) + rnn.lstm_layer(gates, w, None, h, c, reverse=True)[2]
    out = out + rnn.gru_layer(gates[..., :3 * n], w[:3 * n], b[:3 * n], h)[1]
    out = out + rnn.rnn_layer(gates[..., :n], w[:n], b[:n], h, reverse=True)[0].sum(0)
    out = out + sum(rnn.lstm_cell(gates[0], h @ w.t(), c, b, b))
    out = out + rnn.gru_cell(gates[0, :, :3 * n], h @ w[:3 * n].t(), h)
    return out + rnn.rnn_tanh_cell(gates[0, :, :n], h @ w[:n].t(), b[:n]) + rnn.rnn_relu_cell(gates[-1, :, :n], h)


def _zero_index(like):
    """Index 0 along dim 0 for every position of `like` (scatter's and index_add's index)."""
    return fastnn.zeros(like.shape, dtype=fastnn.int64, device=like.device)


def _fixed(like):
    """A constant of like's shape and device, different at each position (a target that is not an input)."""
    values = np.sin(np.arange(max(like.numel(), 1)) * 1.7).reshape(like.shape)
    return tensor(values, like.device)


def _partner(shape, draw):
    """A shape that broadcasts with `shape`: the same, without its leading dim, or with it set to 1."""
    options = [shape] + ([shape[1:], (1,) + shape[1:]] if shape else [])
    return draw(st.sampled_from(options))


def _conditioned(a):
    """a + 3 I: far from singular for standard-normal entries of these sizes."""
    return a + 3 * fastnn.eye(a.shape[-1], dtype=a.dtype, device=a.device)


def _spd(a):
    """A symmetric positive-definite matrix from a (its tangent is symmetric too)."""
    return a @ a.mT + 0.5 * fastnn.eye(a.shape[-1], dtype=a.dtype, device=a.device)


def _sign_fixed(vectors):
    """Columns with a positive first row: a loss blind to the eigen/singular vectors' arbitrary signs."""
    return vectors * vectors[..., :1, :].sign()


def _joined(*matrices):
    """Several (batches of) matrices as one tensor: each flattened over its last two dims, concatenated."""
    return fastnn.cat([m.flatten(-2) for m in matrices], -1)


_LABELS = np.array([2, 0, 1, 1, 0, 2])
_RUNNING = (np.array([0.1, -0.2, 0.3, 0.0]), np.array([1.5, 0.7, 2.0, 1.1]))

# name -> (fn, input shapes from (base shape, draw), (min_dims, max_dims) of the base shape, value kind)
SAME = (lambda s, d: [s])
OPS = {
    # element-wise
    "add": (lambda a, b: a + b, lambda s, d: [s, _partner(s, d)], (0, 3), "any"),
    "sub": (lambda a, b: a - b, lambda s, d: [_partner(s, d), s], (0, 3), "any"),
    "mul": (lambda a, b: a * b, lambda s, d: [s, _partner(s, d)], (0, 3), "any"),
    "div": (lambda a, b: a / b, lambda s, d: [s, _partner(s, d)], (0, 3), "nonzero"),
    "pow": (lambda a, b: a ** b, lambda s, d: [s, _partner(s, d)], (0, 3), "positive"),
    "pow_scalar": (lambda a: a ** 3 + 2.0 ** a, SAME, (0, 3), "any"),
    "neg_exp_log_sqrt": (lambda a: (-a).exp() + a.log() * a.sqrt(), SAME, (0, 3), "positive"),
    "abs": (fastnn.abs, SAME, (0, 3), "nonzero"),
    "clamp": (lambda a: fastnn.clamp(a, -0.5, 0.7), SAME, (0, 3), "any"),
    "maximum": (fastnn.maximum, lambda s, d: [s, _partner(s, d)], (0, 3), "any"),
    "minimum": (fastnn.minimum, lambda s, d: [s, _partner(s, d)], (0, 3), "any"),
    "where": (lambda a, b: fastnn.where(a > 0, a * b, b), lambda s, d: [s, _partner(s, d)], (0, 3), "any"),
    "clone": (lambda a: a.clone() * a, SAME, (0, 3), "any"),
    "erf": (fastnn.erf, SAME, (0, 3), "any"),
    "trigonometric_hyperbolic": (lambda a: a.sin() + a.cos() + (a * 0.3).tan() + a.sinh() + a.cosh() + a.atan()
                                 + (a.tanh() * 0.9).asin() + (a.tanh() * 0.9).acos(), SAME, (0, 3), "any"),
    "logs_exps_powers": (lambda a: a.log1p() + a.log2() + a.log10() + a.expm1() + a.exp2() + a.square()
                         + a.reciprocal() + a.rsqrt(), SAME, (0, 3), "positive"),
    "piecewise_constant": (lambda a: a.floor() * a + a.ceil() + a.round() + a.trunc() + a.sign() * a
                           + fastnn.floor_divide(a, 0.7), SAME, (0, 3), "any"),
    "atan2_fmod_remainder_lerp": (lambda a, b: fastnn.atan2(a, b) + fastnn.fmod(a, b) + fastnn.remainder(a, 0.7)
                                  + fastnn.lerp(a, b, a.sigmoid()), lambda s, d: [s, _partner(s, d)], (0, 3),
                                  "nonzero"),
    "nan_to_num": (fastnn.nan_to_num, SAME, (0, 3), "any"),
    # reductions
    "sum": (lambda a: a.sum(-1) + a.sum(), SAME, (1, 3), "any"),
    "mean": (lambda a: a.mean(0, keepdim=True), SAME, (1, 3), "any"),
    "amax_amin": (lambda a: a.amax(-1) - a.amin(0).sum(), SAME, (1, 3), "any"),
    "max_min_dim": (lambda a: a.max(-1)[0] + a.min(-1).values, SAME, (1, 3), "any"),
    "max_all": (lambda a: a.max(), SAME, (0, 3), "any"),
    "var": (lambda a: a.var(-1, keepdim=True), lambda s, d: [s[:-1] + (s[-1] + 1,)], (1, 3), "any"),
    "std": (lambda a: a.std(0, correction=0), SAME, (1, 3), "any"),
    "logsumexp": (lambda a: fastnn.logsumexp(a, -1), SAME, (1, 3), "any"),
    "prod": (lambda a: a.prod(-1) + a.prod(), SAME, (1, 3), "any"),
    # shape ops
    "reshape_view": (lambda a: a.reshape(-1) * a.view(a.numel()), SAME, (0, 3), "any"),
    "permute_transpose": (lambda a: a.permute(*range(a.ndim)[::-1]) + a.transpose(0, -1), SAME, (1, 3), "any"),
    "getitem_basic": (lambda a: a[0] * 2 + a[-1:].sum(), SAME, (1, 3), "any"),
    "getitem_advanced": (lambda a: a[[0, -1, 0]], SAME, (1, 3), "any"),
    "getitem_mask": (lambda a: a[a > 0].sum(), SAME, (1, 3), "any"),
    "cat_stack": (lambda a, b: fastnn.cat([a, b * a], 0).sum(0) + fastnn.stack([a, b], -1).sum(-1),
                  lambda s, d: [s, s], (1, 3), "any"),
    "expand": (lambda a: a[:1].expand(3, *a.shape[1:]) if a.ndim else a.expand(2), SAME, (0, 3), "any"),
    "squeeze_unsqueeze_flatten": (lambda a: a.unsqueeze(0).squeeze(0).flatten() + F.flatten(a.unsqueeze(-1), 0),
                                  SAME, (1, 3), "any"),
    "pad_constant": (lambda a: F.pad(a, (1, 2), value=3.0), SAME, (1, 3), "any"),
    "pad_reflect": (lambda a: F.pad(a, (1, 1), "reflect"), lambda s, d: [s[:-1] + (s[-1] + 1,)], (1, 3), "any"),
    "pad_replicate_circular": (lambda a: F.pad(a, (1, 1), "replicate") + F.pad(a, (1, 1), "circular"),
                               SAME, (1, 3), "any"),
    "split_chunk": (lambda a: a.split(1, 0)[-1] * 2 + a.chunk(2, 0)[0].sum(0), SAME, (1, 3), "any"),
    "repeat_roll_flip": (lambda a: a.repeat(2, *([1] * a.ndim)).sum(0) + a.roll(1, 0) + a.flip(0), SAME, (1, 3),
                         "any"),
    "index_put": (lambda a, b: fastnn.ops.index_put(a, (0,), b[0] * 3), lambda s, d: [s, s], (1, 3), "any"),
    "gather_sort_topk": (lambda a: a.sort(-1)[0] + a.gather(-1, fastnn.zeros(a.shape, dtype=fastnn.int64,
                                                                             device=a.device))
                         + a.topk(1, -1)[0], SAME, (1, 3), "any"),
    "cumsum_cumprod_tril_triu_diag": (lambda a: a.cumsum(-1) + a.cumprod(0) + a.tril(1) + a.triu()
                                      + fastnn.diag(fastnn.diag(a[0])) + fastnn.diagonal(a, 0, -2, -1).sum(), SAME,
                                      (2, 2), "any"),
    "scatter_index_add": (lambda a, b: fastnn.scatter(a, 0, _zero_index(a), b) + fastnn.scatter(a, 0, _zero_index(a),
                                                                                               value=2.0)
                          + fastnn.scatter_add(a, 0, _zero_index(a), b)
                          + fastnn.index_add(a, 0, _zero_index(a)[:, 0], b, alpha=2.0),
                          lambda s, d: [s, s], (2, 2), "any"),
    "masked_fill_select": (lambda a, b: fastnn.masked_fill(a, a > 0, b.sum()) * a + fastnn.masked_fill(a, a < 0, 1.0)
                           + fastnn.masked_select(a, a > 0).sum(), lambda s, d: [s, (2,)], (1, 3), "any"),
    "embedding": (lambda w: F.embedding(tensor(np.array([[0, 1], [1, 0]]), w.device), w),
                  lambda s, d: [(2,) + s[1:]], (2, 2), "any"),
    "interpolate_unfold_fold": (lambda x: F.interpolate(x, scale_factor=2, mode="bilinear").sum()
                                + F.interpolate(x, size=(3, 2)).sum() + F.unfold(x, 2, padding=1).sum(-1)
                                .sum() + F.fold(F.unfold(x, 1), x.shape[2:], 1).sum()
                                + F.pixel_shuffle(x.repeat(1, 4, 1, 1), 2).sum(), SAME, (4, 4), "any"),
    "index_select": (lambda a: a.index_select(0, fastnn.tensor([0, 0], device=a.device)), SAME, (1, 3), "any"),
    # products
    "matmul": (lambda a, b: a @ b, lambda s, d: [s, s[-1:] + (d(st.integers(1, 3)),)], (1, 3), "any"),
    "linear": (F.linear, lambda s, d: [s, (3, s[-1]), (3,)], (1, 3), "any"),
    "mm_bmm": (lambda a, b: fastnn.mm(a, b) + fastnn.bmm(a[None], b[None])[0], lambda s, d: [s, s[::-1]], (2, 2),
               "any"),
    "addmm_outer": (lambda c, a, b: fastnn.addmm(c, a, b, beta=0.5, alpha=2.0) + fastnn.outer(a[:, 0], b[0]),
                    lambda s, d: [(s[0],), s, s[::-1]], (2, 2), "any"),
    "einsum": (lambda a, b: fastnn.einsum("ij,jk->ik", a, b) + fastnn.einsum("ii->i", a @ b), lambda s, d: [s, s[::-1]],
               (2, 2), "any"),
    # convolutions and pooling
    "conv2d": (lambda x, w, b: F.conv2d(x, w, b, stride=2, padding=1), lambda s, d: [s, (3, s[1], 2, 2), (3,)],
               (4, 4), "any"),
    "conv2d_groups_same": (lambda x, w: F.conv2d(x, w, padding="same", groups=2),
                           lambda s, d: [(s[0], 2, s[2], s[3]), (4, 1, 3, 2)], (4, 4), "any"),
    "conv1d_conv3d": (lambda x, w, v: F.conv1d(x, w, padding=1).sum() + F.conv3d(x[..., None, None], v).sum(),
                      lambda s, d: [s, (2, s[1], 3), (2, s[1], 1, 1, 1)], (3, 3), "any"),
    "conv_transpose": (lambda x, w, b: F.conv_transpose2d(x, w, b, stride=2, output_padding=1),
                       lambda s, d: [s, (s[1], 2, 2, 2), (2,)], (4, 4), "any"),
    "conv_transpose1d": (lambda x, w: F.conv_transpose1d(x, w, stride=2), lambda s, d: [s, (s[1], 2, 3)], (3, 3),
                         "any"),
    "max_pool": (lambda x: F.max_pool2d(x, 2, 1, padding=1).sum() + F.max_pool1d(x[0], 2, 1, 1).sum()
                 + F.adaptive_max_pool2d(x, 1).sum(), SAME, (4, 4), "any"),
    "max_pool3d": (lambda x: F.max_pool3d(x, 2, 1, padding=1), lambda s, d: [(1,) + s], (4, 4), "any"),
    "avg_pool": (lambda x: F.avg_pool2d(x, 2, 1, padding=1, count_include_pad=False).sum() + F.avg_pool1d(x[0], 2, 1, 1)
                 .sum() + F.adaptive_avg_pool2d(x, (2, 3)).sum() + F.avg_pool3d(x[None], 1).sum(), SAME, (4, 4),
                 "any"),
    "attention": (lambda q, k, v: F.scaled_dot_product_attention(q, k, v)
                  + F.scaled_dot_product_attention(q, q, v, is_causal=True, scale=0.7),
                  lambda s, d: [s, s, s[:-1] + (2,)], (2, 3), "any"),
    "attention_masks_gqa_dropout": (
        lambda q, k, v, m: F.scaled_dot_product_attention(q, k, v, attn_mask=m)
        + F.scaled_dot_product_attention(q, k, v, attn_mask=m > 0)
        + F.scaled_dot_product_attention(q.repeat(1, 2, 1, 1), k, v, enable_gqa=True).sum(1, keepdim=True)
        + _seeded(F.scaled_dot_product_attention)(q, k, v, dropout_p=0.3),
        lambda s, d: [s, s[:-2] + (s[-2] + 1, s[-1]), s[:-2] + (s[-2] + 1, 2), (s[-2], s[-2] + 1)], (4, 4), "any"),
    "recurrent_layers_and_cells": (_recurrent, lambda s, d: [(s[0], s[1], 4 * s[2]), (4 * s[2], s[2]), (4 * s[2],),
                                                             (s[1], s[2]), (s[1], s[2])], (3, 3), "any"),
    # normalization
    "batch_norm_train": (lambda x, w, b: F.batch_norm(x, None, None, w, b, training=True),
                         lambda s, d: [(s[0] + 1,) + s[1:], (s[1],), (s[1],)], (2, 4), "any"),
    "batch_norm_eval": (lambda x, w, b: F.batch_norm(x, tensor(_RUNNING[0][:x.shape[1]], x.device),
                                                     tensor(_RUNNING[1][:x.shape[1]], x.device), w, b),
                        lambda s, d: [s, (s[1],), (s[1],)], (2, 4), "any"),
    "layer_norm": (lambda x, w, b: F.layer_norm(x, x.shape[-1:], w, b), lambda s, d: [s, s[-1:], s[-1:]], (1, 3),
                   "any"),
    "group_instance_norm": (lambda x, w, b: F.group_norm(x, 2, w, b) + F.instance_norm(x, weight=w, bias=b),
                            lambda s, d: [(s[0], 2 * s[1], s[2] + 1), (2 * s[1],), (2 * s[1],)], (3, 3), "any"),
    "local_response_norm": (lambda x: F.local_response_norm(x, 3, alpha=0.5, beta=0.7, k=1.5)
                            + F.local_response_norm(x, 2), SAME, (3, 4), "any"),
    # activations
    "relu_family": (lambda a: F.relu(a) + F.relu6(3 * a) + F.hardtanh(a, -0.5, 0.7) + F.leaky_relu(a, 0.2),
                    SAME, (0, 3), "nonzero"),
    "smooth_activations": (lambda a: F.elu(a) + F.selu(a) + F.gelu(a) + F.gelu(a, approximate="tanh")
                           + F.sigmoid(a) + F.tanh(a) + F.silu(a) + F.swish(a, 1.5) + F.softplus(a, 2.0, 1.0)
                           + F.mish(a), SAME, (0, 3), "any"),
    "prelu_swish_parameters": (lambda a, w, beta: F.prelu(a, w) + F.swish(a, beta),
                               lambda s, d: [s, (s[1],), (1,)], (2, 3), "any"),
    "maxout": (lambda a: F.maxout(a, 2, -1), lambda s, d: [s[:-1] + (2 * s[-1],)], (1, 3), "any"),
    "softmax_log_softmax": (lambda a: F.softmax(a, -1) + F.log_softmax(a, 0), SAME, (1, 3), "any"),
    "hard_shrink_threshold_family": (lambda a: F.hardswish(a * 4) + F.hardsigmoid(a * 4) + F.hardshrink(a, 0.1)
                                     + F.softshrink(a, 0.1) + F.threshold(a, 0.1, -2.0)
                                     + _seeded(F.rrelu)(a, training=True) + F.rrelu(a), SAME, (0, 3), "nonzero"),
    "smooth_pointwise_activations": (lambda a: F.tanhshrink(a) + F.softsign(a) + F.logsigmoid(a) + F.celu(a, 0.7)
                                     + F.glu(fastnn.cat([a, a * 2], -1)), SAME, (1, 3), "any"),
    # losses
    "mse_l1": (lambda a, b: F.mse_loss(a, b) + F.l1_loss(a, b, reduction="sum"), lambda s, d: [s, s], (0, 3),
               "nonzero"),
    "smooth_l1_huber": (lambda a, b: F.smooth_l1_loss(a, b, beta=0.5, reduction="none")
                        + F.huber_loss(a, b, delta=0.7, reduction="none"), lambda s, d: [s, s], (0, 3), "any"),
    "cross_entropy_nll": (lambda a: F.cross_entropy(a, tensor(_LABELS[:a.shape[0]], a.device))
                          + F.cross_entropy(a, tensor(_LABELS[:a.shape[0]], a.device), label_smoothing=0.1,
                                            reduction="sum")
                          + F.nll_loss(F.log_softmax(a, 1), tensor(_LABELS[:a.shape[0]], a.device)),
                          lambda s, d: [(s[0], 3)], (1, 1), "any"),
    "cross_entropy_probabilities": (lambda a: F.cross_entropy(a, F.softmax(_fixed(a), 1), reduction="none"),
                                    SAME, (2, 2), "any"),
    "bce_bce_with_logits": (lambda a, b: F.binary_cross_entropy(F.sigmoid(a), F.sigmoid(b))
                            + F.binary_cross_entropy_with_logits(a, F.sigmoid(_fixed(a)), pos_weight=_fixed(a).exp()),
                            lambda s, d: [s, s], (0, 3), "any"),
    "kl_div": (lambda a, b: F.kl_div(F.log_softmax(a, -1), F.softmax(b, -1), reduction="batchmean")
               + F.kl_div(F.log_softmax(a, -1), F.log_softmax(b, -1), reduction="sum", log_target=True),
               lambda s, d: [s, s], (1, 3), "any"),
    "grid_sample": (lambda x, g: F.grid_sample(x, g.tanh() * 1.2, align_corners=False)
                    + F.grid_sample(x, g.tanh() * 1.2, padding_mode="border", align_corners=True)
                    + F.grid_sample(x, g.tanh() * 1.2, mode="nearest", align_corners=False),
                    lambda s, d: [s, (s[0], 2, 3, 2)], (4, 4), "any"),
    # special functions and cumulative ops
    "special_functions": (lambda a: fastnn.lgamma(a) + fastnn.digamma(a) + fastnn.polygamma(2, a)
                          + fastnn.erfinv(a.tanh() * 0.9), SAME, (0, 3), "positive"),
    "logcumsumexp": (lambda a: fastnn.logcumsumexp(a, -1) + fastnn.logcumsumexp(a * 30, 0), SAME, (0, 3), "any"),
    "scatter_reduce": (lambda a, b: sum(fastnn.scatter_reduce(a, 0, _zero_index(b) + (b > 0).long(), b, r,
                                                              include_self=r != "mean")
                                        for r in ("sum", "prod", "mean", "amax", "amin")),
                       lambda s, d: [(s[0] + 1, s[1]), s], (2, 2), "nonzero"),
    "max_unpool": (lambda x: F.max_unpool2d(*F.max_pool2d(x, 2, return_indices=True), 2)
                   + F.max_unpool1d(*F.max_pool1d(x[0], 2, return_indices=True), 2, output_size=x.shape[-1:])[None],
                   lambda s, d: [s[:2] + (2 * s[2], 2 * s[3])], (4, 4), "any"),
    # linear algebra (well-conditioned inputs: a sample plus 3 I, symmetrised where the op reads a triangle)
    "linalg_inv_det_slogdet_solve": (lambda a, b: fastnn.linalg.inv(_conditioned(a))
                                     + fastnn.linalg.det(_conditioned(a))[..., None, None]
                                     + fastnn.linalg.slogdet(_conditioned(a)).logabsdet[..., None, None]
                                     + fastnn.linalg.solve(_conditioned(a), b)
                                     + fastnn.linalg.solve(_conditioned(a), b[..., 0])[..., None]
                                     + fastnn.linalg.solve(_conditioned(a), b, left=False),
                                     lambda s, d: [s[:-1] + (s[-2],), s[:-1] + (s[-2],)], (2, 3), "any"),
    "linalg_cholesky_eigh": (lambda a: fastnn.linalg.cholesky(_spd(a)) + fastnn.linalg.cholesky(_spd(a), upper=True)
                             + fastnn.linalg.eigh(_spd(a)).eigenvalues[..., None]
                             + _sign_fixed(fastnn.linalg.eigh(_spd(a), "U").eigenvectors),
                             lambda s, d: [s[:-1] + (s[-2],)], (2, 3), "any"),
    "linalg_qr_svd_pinv": (lambda a: _joined(*fastnn.linalg.qr(a), fastnn.linalg.qr(a, "r").R,
                                             fastnn.linalg.svd(a, full_matrices=False).S[..., None],
                                             _sign_fixed(fastnn.linalg.svd(a, full_matrices=False).U),
                                             _sign_fixed(fastnn.linalg.svd(a, full_matrices=False).Vh.mT),
                                             _sign_fixed(fastnn.linalg.svd(a.mT, full_matrices=False).U),
                                             fastnn.linalg.svd(a[..., :-1, :]).S[..., None], fastnn.linalg.pinv(a)),
                           lambda s, d: [s[:-2] + (s[-2] + 1, s[-2])], (2, 3), "any"),
    # random ops: PyTorch's tangent of a draw with respect to mean and std is zero
    "normal": (lambda m, s: _seeded(fastnn.normal)(m, s.abs() + 0.5) * 0 + m, lambda s, d: [s, s], (1, 3), "any"),
    # dropout: the same mask for the primal and the tangent
    "dropout": (_seeded(lambda a: F.dropout(a, 0.3) + F.alpha_dropout(a, 0.3, True)), SAME, (1, 3), "any"),
    "dropout2d_drop_path": (_seeded(lambda a: F.dropout2d(a, 0.5) + F.drop_path(a, 0.5)), SAME, (4, 4), "any"),
    # composites get forward mode from the ops they are built of
    "norms": (lambda a: fastnn.norm(a) + fastnn.norm(a, 1) + fastnn.norm(a, 3, dim=-1) + fastnn.norm(a, float("inf"))
              + fastnn.norm(a, 0), SAME, (1, 3), "nonzero"),
    "composed_new_ops": (lambda x: F.affine_grid(x[:, 0, :2, :3], (x.shape[0], 1, 2, 3), align_corners=False).sum()
                         + F.lp_pool2d(x.abs() + 0.5, 2, 2).sum() + F.max_pool2d_with_indices(x, 2)[0].sum()
                         + F.embedding_bag(tensor(np.array([[0, 1], [1, 1]]), x.device), x[0, 0, :2], mode="max")
                         .sum(), lambda s, d: [s[:2] + (s[2] + 2, s[3] + 2)], (4, 4), "nonzero"),
    "composites": (lambda a, b: F.cosine_similarity(a, b, -1) + F.normalize(a, dim=-1).sum(-1)
                   + F.pairwise_distance(a, b), lambda s, d: [s, s], (1, 3), "nonzero"),
}


@pytest.mark.parametrize("name", sorted(OPS))
@pytest.mark.parametrize("device", DEVICES)
@settings(max_examples=6, deadline=None)
@given(data=st.data(), seed=st.integers(0, 2 ** 32 - 1))
def test_jvp_matches_finite_differences(name, device, data, seed):
    fn, make_shapes, (lo, hi), kind = OPS[name]
    base = data.draw(hnp.array_shapes(min_dims=lo, max_dims=hi, min_side=1, max_side=3), label="shape")
    shapes = make_shapes(base, data.draw)
    rng = np.random.default_rng(seed)
    arrays = [sample(s, rng, kind) for s in shapes]
    if name == "bce_bce_with_logits":  # keep sigmoid away from 0 and 1, where log clamps at -100
        arrays = [np.clip(a, -3, 3) for a in arrays]
    tangents = [rng.standard_normal(s) for s in shapes]
    primal, tangent = forward_jvp(fn, arrays, tangents, device)
    np.testing.assert_allclose(primal, host(fn(*[tensor(a, device) for a in arrays])), rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(tangent, finite_difference_jvp(fn, arrays, tangents, device), rtol=1e-5, atol=1e-6)


def test_jvp_of_each_input_separately():
    """Tangents on only some inputs: the others count as constants (a None tangent inside the rules)."""
    rng = np.random.default_rng(0)
    x, w, b = rng.standard_normal((2, 3, 5, 5)), rng.standard_normal((4, 3, 3, 3)), rng.standard_normal(4)
    arrays = [x, w, b]
    for i in range(3):
        def only_i(v, i=i):
            args = [tensor(a) for a in arrays]
            args[i] = v
            return F.conv2d(*args, padding=1)
        tangent = rng.standard_normal(arrays[i].shape)
        _, jvp = forward_jvp(only_i, [arrays[i]], [tangent], "cpu")
        np.testing.assert_allclose(jvp, finite_difference_jvp(only_i, [arrays[i]], [tangent], "cpu"), rtol=1e-6,
                                   atol=1e-7)


def test_float32_tangents_keep_dtype():
    x = fastnn.tensor([1.0, -2.0, 3.0])
    with fwAD.dual_level():
        y = F.softmax(fwAD.make_dual(x, fastnn.ones(3)) * 2, 0)
        tangent = fwAD.unpack_dual(y).tangent
    assert tangent.dtype == fastnn.float32
    s = host(y)
    np.testing.assert_allclose(host(tangent), 2 * s * (1 - s.sum()), atol=1e-6)  # softmax' @ 2*ones = 0


# ---- dual levels ------------------------------------------------------------------------------------------------
def test_unpack_dual_outside_a_level_and_of_plain_tensors():
    x = fastnn.tensor([1.0, 2.0])
    primal, tangent = fwAD.unpack_dual(x)
    assert primal is x and tangent is None
    with fwAD.dual_level():
        assert fwAD.unpack_dual(x * 2).tangent is None
        assert fwAD.unpack_dual(x).primal is x


def test_make_dual_leaves_the_primal_unchanged_and_tangents_vanish_on_exit():
    x, v = fastnn.tensor([1.0, 2.0]), fastnn.tensor([0.5, -1.0])
    with fwAD.dual_level():
        dual = fwAD.make_dual(x, v)
        y = dual * dual
        assert fwAD.unpack_dual(x).tangent is None
        assert fwAD.unpack_dual(dual).tangent is v
        np.testing.assert_array_equal(host(fwAD.unpack_dual(y).tangent), [1.0, -4.0])
    assert fwAD.unpack_dual(y).tangent is None and fwAD.unpack_dual(dual).tangent is None
    assert autograd._forward.visible == () and autograd._forward.entered == []
    np.testing.assert_array_equal(host(y), [1.0, 4.0])


def test_levels_nest_and_exit_in_order():
    x = fastnn.tensor([2.0, 3.0])
    outer = fwAD.enter_dual_level()
    inner = fwAD.enter_dual_level()
    assert inner != outer
    with pytest.raises(RuntimeError, match="innermost"):
        fwAD.exit_dual_level(level=outer)
    dual = fwAD.make_dual(fwAD.make_dual(x, fastnn.tensor([1.0, 0.5]), level=outer), fastnn.tensor([0.0, 1.0]))
    y = dual ** 3
    # the tangent at each level (3 x^2 v), and the outer level's tangent of the inner one (6 x v_outer v_inner)
    inner_tangent = fwAD.unpack_dual(y).tangent
    np.testing.assert_allclose(host(inner_tangent), [0.0, 27.0])
    np.testing.assert_allclose(host(fwAD.unpack_dual(y, level=outer).tangent), [12.0, 13.5])
    np.testing.assert_allclose(host(fwAD.unpack_dual(inner_tangent, level=outer).tangent), [0.0, 9.0])
    d2 = fwAD.unpack_dual(fwAD.unpack_dual(fwAD.make_dual(x, fastnn.tensor([0.0, 1.0])), level=inner).primal)
    assert d2.tangent is None
    fwAD.exit_dual_level()
    assert fwAD.unpack_dual(y).tangent is not None  # the outer level's, now the innermost
    with pytest.raises(RuntimeError, match="not an entered dual level"):
        fwAD.unpack_dual(y, level=inner)
    fwAD.exit_dual_level(level=outer)
    with pytest.raises(RuntimeError, match="no dual level"):
        fwAD.exit_dual_level()


def test_forward_over_forward_gives_second_derivatives():
    x = fastnn.tensor(np.array([0.3, -1.2, 2.0]))
    with fwAD.dual_level() as outer:
        with fwAD.dual_level():
            dual = fwAD.make_dual(fwAD.make_dual(x, fastnn.ones(3, dtype=fastnn.float64), level=outer),
                                  fastnn.ones(3, dtype=fastnn.float64))
            first = fwAD.unpack_dual(F.tanh(dual)).tangent  # tanh'(x)
        second = fwAD.unpack_dual(first).tangent  # tanh''(x) = -2 tanh(x) (1 - tanh(x)^2)
    th = np.tanh(host(x))
    np.testing.assert_allclose(host(second), -2 * th * (1 - th ** 2), rtol=1e-12)


def test_reverse_mode_differentiates_tangents():
    """Tangent rules are built from recorded ops: d/dx (J(x) v) by backward is the Hessian-vector product."""
    rng = np.random.default_rng(1)
    a, v = rng.standard_normal(4), rng.standard_normal(4)
    x = fastnn.tensor(a, requires_grad=True)
    with fwAD.dual_level():
        y = fastnn.logsumexp(fwAD.make_dual(x, fastnn.tensor(v)) ** 2, 0)
        directional = fwAD.unpack_dual(y).tangent
    directional.backward()
    eps = 1e-6

    def gradient(point):
        p = fastnn.tensor(point, requires_grad=True)
        fastnn.logsumexp(p ** 2, 0).backward()
        return host(p.grad)
    np.testing.assert_allclose(host(x.grad), (gradient(a + eps * v) - gradient(a - eps * v)) / (2 * eps),
                               rtol=1e-6, atol=1e-8)


_SECOND_ORDER = {  # scalar functions of a (3, 3) input whose rules hold ops reverse mode must differentiate
    "smooth_pointwise": lambda a: (F.tanhshrink(a) + F.softsign(a) * F.logsigmoid(a) + F.celu(a, 0.7)
                                   + F.hardswish(a * 4) * a).sum(),
    "special_logcumsumexp": lambda a: (fastnn.lgamma(a.exp()) + fastnn.digamma(a.exp())
                                       + fastnn.erfinv(a.tanh() * 0.9) + fastnn.logcumsumexp(a, 1)).sum(),
    "scatter_reduce_prod": lambda a: fastnn.scatter_reduce(a, 0, _zero_index(a[:2]) + (a[:2] > 0).long(), a[1:] * 2,
                                                           "prod").sum(),
    "linalg": lambda a: (fastnn.linalg.inv(_conditioned(a)).sum() + fastnn.linalg.det(_conditioned(a))
                         + fastnn.linalg.eigh(_spd(a)).eigenvalues.sum() + fastnn.linalg.svd(a).S.sum()
                         + fastnn.linalg.qr(_conditioned(a)).R.sum() + fastnn.linalg.cholesky(_spd(a)).sum()),
    "grid_sample": lambda a: (F.grid_sample(a[None, None], a[None, :2, :, None].repeat(1, 1, 1, 2).tanh(),
                                            align_corners=False) ** 2).sum(),
}


@pytest.mark.parametrize("name", sorted(_SECOND_ORDER))
def test_reverse_mode_differentiates_the_new_rules(name):
    """Hessian-vector products (backward through the tangent) of the rules written today, against central
    differences of the gradient."""
    fn = _SECOND_ORDER[name]
    rng = np.random.default_rng(3)
    a, v = rng.standard_normal((3, 3)), rng.standard_normal((3, 3))
    x = fastnn.tensor(a, requires_grad=True)
    with fwAD.dual_level():
        fwAD.unpack_dual(fn(fwAD.make_dual(x, fastnn.tensor(v)))).tangent.backward()
    eps = 1e-6

    def gradient(point):
        p = fastnn.tensor(point, requires_grad=True)
        fn(p).backward()
        return host(p.grad)
    np.testing.assert_allclose(host(x.grad), (gradient(a + eps * v) - gradient(a - eps * v)) / (2 * eps),
                               rtol=1e-5, atol=1e-6)


# ---- errors -----------------------------------------------------------------------------------------------------
def test_make_dual_errors_name_both_shapes_and_dtypes():
    x = fastnn.zeros(2, 3)
    with pytest.raises(RuntimeError, match="no dual level"):
        fwAD.make_dual(x, fastnn.zeros(2, 3))
    with fwAD.dual_level():
        with pytest.raises(ValueError, match=r"\(3, 2\).*\(2, 3\)"):
            fwAD.make_dual(x, fastnn.zeros(3, 2))
        with pytest.raises(TypeError, match="float64.*float32"):
            fwAD.make_dual(x, fastnn.zeros(2, 3, dtype=fastnn.float64))
        with pytest.raises(TypeError, match="floating point"):
            fwAD.make_dual(fastnn.zeros(2, dtype=fastnn.int64), fastnn.zeros(2, dtype=fastnn.int64))
        with pytest.raises(TypeError, match="must be a Tensor"):
            fwAD.make_dual(x, np.zeros((2, 3), np.float32))


def test_op_without_tangent_rule_names_itself():
    def double_without_rule(x):
        return autograd.make_result(x._data * 2, (x,), lambda g: (2 * g,), "double_without_rule")
    x = fastnn.ones(2)
    assert host(double_without_rule(x)).tolist() == [2.0, 2.0]  # fine without a dual input
    with fwAD.dual_level():
        double_without_rule(x)  # an input without tangent: no rule needed
        with pytest.raises(NotImplementedError, match="double_without_rule"):
            double_without_rule(fwAD.make_dual(x, fastnn.ones(2)))


def test_non_float_outputs_and_inplace_edits_of_duals():
    with fwAD.dual_level():
        dual = fwAD.make_dual(fastnn.tensor([1.0, 3.0, 2.0]), fastnn.ones(3))
        assert fwAD.unpack_dual(dual.argmax()).tangent is None
        assert fwAD.unpack_dual(dual > 1).tangent is None
        y = dual * 2
        with pytest.raises(NotImplementedError, match="in-place"):
            y += 1


def test_no_dual_level_means_no_tangent_work(monkeypatch):
    """Outside a level make_result never reaches the propagation (its one check is `_forward.visible`)."""
    def fail(*args):
        raise AssertionError("tangent propagation ran outside a dual level")
    monkeypatch.setattr(autograd, "propagate_tangents", fail)
    x = fastnn.randn(3, 4, requires_grad=True)
    F.cross_entropy(F.relu(x @ fastnn.randn(4, 5)), fastnn.tensor([0, 1, 4])).backward()
    assert x.grad is not None

"""Attention: scaled_dot_product_attention as one op (forward and backward side by side) and PyTorch's
multi_head_attention_forward built from differentiable ops.

scaled_dot_product_attention follows PyTorch's math backend: softmax(q k^T * scale + mask) v, where a bool mask
(and is_causal's lower-triangular mask) marks the positions that TAKE PART with True, and a float mask is added
to the scores. A query row whose keys are all masked gets zero weights (PyTorch's "safe softmax"), never NaN.
Dropout is applied to the attention weights whenever dropout_p > 0 (the function has no training flag), with a
mask drawn from the backend's random stream (fastnn.manual_seed makes it reproducible).
"""
import math
import numbers

import numpy as np

from fastnn.autograd import make_result, unbroadcast
from fastnn.ops.dropout import _keep_mask, check_probability
from fastnn.tensor import Tensor


def _check_qkv(query, key, value):
    for name, t in (("query", query), ("key", key), ("value", value)):
        if not isinstance(t, Tensor):
            raise TypeError(f"scaled_dot_product_attention(): {name} must be a Tensor, got {type(t).__name__}")
        if t.ndim < 2:
            raise ValueError(f"scaled_dot_product_attention(): {name} must have at least 2 dimensions "
                             f"(..., sequence, features), got shape {tuple(t.shape)}")
        if t.dtype.kind != "f":
            raise TypeError(f"scaled_dot_product_attention(): {name} must be a floating point tensor, got "
                            f"{t.dtype}")
        if t._backend is not query._backend:
            raise RuntimeError(f"expected all tensors on the same device, got {query.device} and {t.device}")
    if key.dtype != query.dtype or value.dtype != query.dtype:
        raise TypeError(f"scaled_dot_product_attention(): query, key and value must have the same dtype, got "
                        f"{query.dtype}, {key.dtype} and {value.dtype}")
    if key.shape[-1] != query.shape[-1]:
        raise ValueError(f"scaled_dot_product_attention(): query and key must have the same embedding size, got "
                         f"query {tuple(query.shape)} and key {tuple(key.shape)}")
    if key.shape[-2] != value.shape[-2]:
        raise ValueError(f"scaled_dot_product_attention(): key and value must have the same sequence length, got "
                         f"key {tuple(key.shape)} and value {tuple(value.shape)}")


def _gqa_repeat(query, key, value, enable_gqa):
    """How many query heads share one key/value head (dim -3); 1 without grouped-query attention."""
    if not enable_gqa:
        return 1
    if query.ndim < 3 or key.ndim < 3 or value.ndim < 3 or key.shape[-3] != value.shape[-3]:
        raise ValueError(f"scaled_dot_product_attention(enable_gqa=True): query, key and value need a head "
                         f"dimension (-3), the same for key and value; got {tuple(query.shape)}, "
                         f"{tuple(key.shape)}, {tuple(value.shape)}")
    if query.shape[-3] % key.shape[-3]:
        raise ValueError(f"scaled_dot_product_attention(enable_gqa=True): the number of query heads "
                         f"({query.shape[-3]}) must be a multiple of the number of key/value heads "
                         f"({key.shape[-3]})")
    return query.shape[-3] // key.shape[-3]


def scaled_dot_product_attention(query, key, value, attn_mask=None, dropout_p=0.0, is_causal=False, scale=None,
                                 enable_gqa=False):
    """softmax(query @ key^T * scale + mask) @ value over (..., L, E), (..., S, E), (..., S, Ev) -> (..., L, Ev).

    attn_mask: None, a bool Tensor (True = take part in attention) or a float Tensor added to the scores,
    broadcastable to (..., L, S); a float mask that requires grad gets one. is_causal: the query at position i
    attends to keys 0..i (top-left aligned tril); not together with attn_mask. scale defaults to 1/sqrt(E).
    """
    _check_qkv(query, key, value)
    dropout_p = check_probability(dropout_p)
    if is_causal and attn_mask is not None:
        raise ValueError("scaled_dot_product_attention(): explicit attn_mask should not be set when is_causal=True")
    if scale is None:
        scale = 1.0 / math.sqrt(query.shape[-1])
    elif isinstance(scale, bool) or not isinstance(scale, numbers.Real):
        raise TypeError(f"scaled_dot_product_attention(): scale must be a number or None, got {scale!r}")
    repeat = _gqa_repeat(query, key, value, enable_gqa)
    L, S = query.shape[-2], key.shape[-2]
    xp = query._backend.xp
    dtype = query.dtype
    q, k, v = query._data, key._data, value._data
    if repeat > 1:
        k, v = xp.repeat(k, repeat, axis=-3), xp.repeat(v, repeat, axis=-3)
    scores = (q @ k.swapaxes(-1, -2)) * dtype.type(scale)
    mask_is_float = False
    if attn_mask is not None:
        if not isinstance(attn_mask, Tensor):
            raise TypeError(f"scaled_dot_product_attention(): attn_mask must be a Tensor or None, got "
                            f"{type(attn_mask).__name__}")
        if attn_mask._backend is not query._backend:
            raise RuntimeError(f"expected all tensors on the same device, got {query.device} and "
                               f"{attn_mask.device}")
        try:
            np.broadcast_shapes(attn_mask.shape, scores.shape)
        except ValueError:
            raise ValueError(f"scaled_dot_product_attention(): attn_mask of shape {tuple(attn_mask.shape)} does "
                             f"not broadcast to the attention scores' shape {tuple(scores.shape)}") from None
        if attn_mask.dtype == np.bool_:
            scores = xp.where(attn_mask._data, scores, dtype.type(-np.inf))
        elif attn_mask.dtype.kind == "f":
            mask_is_float = True
            scores = scores + attn_mask._data.astype(dtype, copy=False)
        else:
            raise TypeError(f"scaled_dot_product_attention(): attn_mask must be bool or floating point, got "
                            f"{attn_mask.dtype}")
    elif is_causal:
        scores = xp.where(xp.tril(xp.ones((L, S), dtype=bool)), scores, dtype.type(-np.inf))
    # Safe softmax: a row with no allowed key has max -inf; shifting by 0 there makes every weight exp(-inf) = 0.
    row_max = scores.max(axis=-1, keepdims=True)
    row_max = xp.where(xp.isfinite(row_max), row_max, dtype.type(0))
    weights = xp.exp(scores - row_max)
    total = weights.sum(axis=-1, keepdims=True)
    weights /= xp.where(total > 0, total, dtype.type(1))
    if dropout_p > 0.0:
        keep = 1.0 - dropout_p
        if keep == 0.0:
            factor = xp.zeros(weights.shape, dtype)
        else:
            factor = xp.multiply(_keep_mask(query, weights.shape, keep), dtype.type(1.0 / keep), dtype=dtype)
        dropped = weights * factor
    else:
        factor, dropped = None, weights
    out = dropped @ v

    def backward(g):
        grad_v = dropped.swapaxes(-1, -2) @ g
        grad_dropped = g @ v.swapaxes(-1, -2)
        if factor is not None:
            grad_dropped *= factor
        grad_scores = weights * (grad_dropped - (grad_dropped * weights).sum(axis=-1, keepdims=True))
        grad_q = (grad_scores @ k) * dtype.type(scale)
        grad_k = (grad_scores.swapaxes(-1, -2) @ q) * dtype.type(scale)
        if repeat > 1:  # each key/value head served `repeat` query heads: sum their gradients
            grad_k = grad_k.reshape(grad_k.shape[:-3] + (-1, repeat) + grad_k.shape[-2:]).sum(axis=-3)
            grad_v = grad_v.reshape(grad_v.shape[:-3] + (-1, repeat) + grad_v.shape[-2:]).sum(axis=-3)
        grads = (unbroadcast(grad_q, query.shape), unbroadcast(grad_k, key.shape), unbroadcast(grad_v, value.shape))
        if mask_is_float:
            grads += (unbroadcast(grad_scores, attn_mask.shape).astype(attn_mask.dtype, copy=False),)
        return grads
    def tangent(tq, tk, tv, tm=None):
        # the forward again from ops (its shift and normaliser's guard as constants: they change no value), then
        # d scores = (tq k^T + q tk^T) scale + tm, d weights = W (d scores - sum(W d scores)), d out = dW v + W tv
        from fastnn.ops._util import add_tangents
        from fastnn.ops.elementwise import where
        from fastnn.ops.shape import repeat_interleave

        def heads(t):  # key/value heads repeated for grouped-query attention, as the forward
            return t if repeat == 1 else repeat_interleave(t, repeat, dim=-3)

        def constant(array):
            return Tensor._wrap(array, query._backend)
        key_r, value_r = heads(key), heads(value)
        s = (query @ key_r.transpose(-1, -2)) * scale + (attn_mask if mask_is_float else 0)
        if attn_mask is not None and attn_mask.dtype == np.bool_:
            s = where(attn_mask, s, -math.inf)
        elif is_causal:
            s = where(constant(xp.tril(xp.ones((L, S), dtype=bool))), s, -math.inf)
        e = (s - constant(row_max)).exp()
        w = e / where(constant(total > 0), e.sum(-1, keepdim=True), 1)
        d_scores = add_tangents(None if tq is None else (tq @ key_r.transpose(-1, -2)) * scale,
                                None if tk is None else (query @ heads(tk).transpose(-1, -2)) * scale, tm)
        kept = (lambda a: a) if factor is None else (lambda a: a * constant(factor))
        return add_tangents(
            None if d_scores is None else kept(w * (d_scores - (w * d_scores).sum(-1, keepdim=True))) @ value_r,
            None if tv is None else kept(w) @ heads(tv))

    inputs = (query, key, value) + ((attn_mask,) if mask_is_float else ())
    return make_result(out, inputs, backward, "scaled_dot_product_attention", saved=(query, key, value),
                       tangent=tangent)


def _merge_masks(attn_mask, key_padding_mask, batch, heads, L, S, dtype, op):
    """MHA's two masks as one float mask broadcastable to (batch, heads, L, S), or None. Bool masks mark the
    positions NOT allowed to attend (True -> -inf); float masks are added."""
    from fastnn.ops.elementwise import add
    from fastnn.ops.shape import reshape
    merged = None
    if attn_mask is not None:
        if attn_mask.ndim == 2:
            if tuple(attn_mask.shape) != (L, S):
                raise ValueError(f"{op}: the shape of the 2D attn_mask is {tuple(attn_mask.shape)}, but should be "
                                 f"{(L, S)}")
        elif attn_mask.ndim == 3:
            if tuple(attn_mask.shape) != (batch * heads, L, S):
                raise ValueError(f"{op}: the shape of the 3D attn_mask is {tuple(attn_mask.shape)}, but should be "
                                 f"{(batch * heads, L, S)}")
            attn_mask = reshape(attn_mask, (batch, heads, L, S))
        else:
            raise ValueError(f"{op}: attn_mask's dimension {attn_mask.ndim} is not supported (2 or 3)")
        merged = _as_float_mask(attn_mask, dtype, "attn_mask", op)
    if key_padding_mask is not None:
        if tuple(key_padding_mask.shape) != (batch, S):
            raise ValueError(f"{op}: expected key_padding_mask of shape {(batch, S)}, got "
                             f"{tuple(key_padding_mask.shape)}")
        padding = reshape(_as_float_mask(key_padding_mask, dtype, "key_padding_mask", op), (batch, 1, 1, S))
        merged = padding if merged is None else add(merged, padding)
    return merged


def _as_float_mask(mask, dtype, name, op):
    if not isinstance(mask, Tensor):
        raise TypeError(f"{op}: {name} must be a Tensor or None, got {type(mask).__name__}")
    if mask.dtype == np.bool_:
        xp = mask._backend.xp
        return Tensor._wrap(xp.where(mask._data, dtype.type(-np.inf), dtype.type(0)), mask._backend)
    if mask.dtype.kind != "f":
        raise TypeError(f"{op}: only bool and floating types of {name} are supported, got {mask.dtype}")
    if mask.dtype != dtype:
        from fastnn.ops.elementwise import astype
        mask = astype(mask, dtype)
    return mask


def multi_head_attention_forward(query, key, value, embed_dim_to_check, num_heads, in_proj_weight, in_proj_bias,
                                 bias_k, bias_v, add_zero_attn, dropout_p, out_proj_weight, out_proj_bias,
                                 training=True, key_padding_mask=None, need_weights=True, attn_mask=None,
                                 use_separate_proj_weight=False, q_proj_weight=None, k_proj_weight=None,
                                 v_proj_weight=None, static_k=None, static_v=None, average_attn_weights=True,
                                 is_causal=False):
    """PyTorch's F.multi_head_attention_forward on sequence-first inputs: query (L, N, E) or unbatched (L, E),
    key/value (S, N, kdim/vdim). Returns (attn_output (L, N, E), attn_weights (N, L, S) averaged over heads, or
    (N, num_heads, L, S), or None when need_weights is False)."""
    from fastnn.ops import activation
    from fastnn.ops.dropout import dropout
    from fastnn.ops.elementwise import mul
    from fastnn.ops.linalg import linear, matmul
    from fastnn.ops.reduce import mean
    from fastnn.ops.shape import cat, expand, pad, permute, reshape, squeeze, transpose, unsqueeze
    op = "multi_head_attention_forward"
    if static_k is not None or static_v is not None:
        raise NotImplementedError(f"{op}: static_k/static_v are not supported")
    for name, t in (("query", query), ("key", key), ("value", value)):
        if not isinstance(t, Tensor):
            raise TypeError(f"{op}: {name} must be a Tensor, got {type(t).__name__}")
    batched = query.ndim == 3
    if query.ndim not in (2, 3) or key.ndim != query.ndim or value.ndim != query.ndim:
        raise ValueError(f"{op}: query, key and value must all be 3-D (batched) or 2-D (unbatched), got shapes "
                         f"{tuple(query.shape)}, {tuple(key.shape)}, {tuple(value.shape)}")
    if not batched:
        query, key, value = unsqueeze(query, 1), unsqueeze(key, 1), unsqueeze(value, 1)
        if key_padding_mask is not None:
            key_padding_mask = unsqueeze(key_padding_mask, 0)
    L, N, E = query.shape
    if E != embed_dim_to_check:
        raise ValueError(f"{op}: was expecting embedding dimension of {embed_dim_to_check}, but got {E}")
    if E % num_heads:
        raise ValueError(f"{op}: embed_dim {E} not divisible by num_heads {num_heads}")
    if key.shape[:2] != value.shape[:2] or key.shape[1] != N:
        raise ValueError(f"{op}: key shape {tuple(key.shape)} does not match value shape {tuple(value.shape)} "
                         f"and batch size {N}")
    if is_causal and attn_mask is None:
        raise ValueError(f"{op}: need attn_mask if specifying the is_causal hint (is_causal is only a hint that "
                         "attn_mask is the causal mask)")
    head_dim = E // num_heads
    # bool masks become float masks first (True -> -inf), so bias_kv / zero-attn padding adds allowed columns
    if attn_mask is not None:
        attn_mask = _as_float_mask(attn_mask, query.dtype, "attn_mask", op)
    if key_padding_mask is not None:
        key_padding_mask = _as_float_mask(key_padding_mask, query.dtype, "key_padding_mask", op)
    if use_separate_proj_weight:
        b_q = b_k = b_v = None
        if in_proj_bias is not None:
            b_q, b_k, b_v = in_proj_bias[0:E], in_proj_bias[E:2 * E], in_proj_bias[2 * E:]
        q = linear(query, q_proj_weight, b_q)
        k = linear(key, k_proj_weight, b_k)
        v = linear(value, v_proj_weight, b_v)
    elif key is query and value is query:  # self-attention: one GEMM for the three projections
        q, k, v = _split3(linear(query, in_proj_weight, in_proj_bias), E)
    else:
        w_q, w_k, w_v = in_proj_weight[0:E], in_proj_weight[E:2 * E], in_proj_weight[2 * E:]
        b_q = b_k = b_v = None
        if in_proj_bias is not None:
            b_q, b_k, b_v = in_proj_bias[0:E], in_proj_bias[E:2 * E], in_proj_bias[2 * E:]
        q, k, v = linear(query, w_q, b_q), linear(key, w_k, b_k), linear(value, w_v, b_v)
    if bias_k is not None and bias_v is not None:
        k = cat([k, expand(bias_k, (1, N, E))], 0)
        v = cat([v, expand(bias_v, (1, N, E))], 0)
        if attn_mask is not None:
            attn_mask = pad(attn_mask, (0, 1))
        if key_padding_mask is not None:
            key_padding_mask = pad(key_padding_mask, (0, 1))
    elif (bias_k is None) != (bias_v is None):
        raise ValueError(f"{op}: bias_k and bias_v must both be given or both be None")
    if add_zero_attn:
        zeros = Tensor._wrap(k._backend.xp.zeros((1, N, E), k.dtype), k._backend)
        k, v = cat([k, zeros], 0), cat([v, zeros], 0)
        if attn_mask is not None:
            attn_mask = pad(attn_mask, (0, 1))
        if key_padding_mask is not None:
            key_padding_mask = pad(key_padding_mask, (0, 1))
    S = k.shape[0]
    # (L, N, E) -> (N, heads, L, head_dim)
    q = permute(reshape(q, (L, N, num_heads, head_dim)), (1, 2, 0, 3))
    k = permute(reshape(k, (S, N, num_heads, head_dim)), (1, 2, 0, 3))
    v = permute(reshape(v, (S, N, num_heads, head_dim)), (1, 2, 0, 3))
    mask = _merge_masks(attn_mask, key_padding_mask, N, num_heads, L, S, query.dtype, op)
    if not training:
        dropout_p = 0.0
    weights = None
    if need_weights:
        # PyTorch's explicit path: the weights it returns are those after dropout
        scores = matmul(mul(q, 1.0 / math.sqrt(head_dim)), transpose(k, -1, -2))
        if mask is not None:
            scores = scores + mask
        weights = activation.softmax(scores, -1)
        if dropout_p > 0.0:
            weights = dropout(weights, dropout_p)
        attn = matmul(weights, v)
    else:
        attn = scaled_dot_product_attention(q, k, v, mask, dropout_p)
    # (N, heads, L, head_dim) -> (L, N, E)
    attn = reshape(permute(attn, (2, 0, 1, 3)), (L, N, E))
    out = linear(attn, out_proj_weight, out_proj_bias)
    if need_weights and average_attn_weights:
        weights = mean(weights, 1)
    if not batched:
        out = squeeze(out, 1)
        if weights is not None:
            weights = squeeze(weights, 0)
    return out, weights


def _split3(packed, E):
    return packed[..., 0:E], packed[..., E:2 * E], packed[..., 2 * E:]

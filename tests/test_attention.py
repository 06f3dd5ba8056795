"""scaled_dot_product_attention, MultiheadAttention and the Transformer layers: forward against NumPy references
of PyTorch's equations (masked softmax), gradients against finite differences (float64) on every device,
PyTorch's state_dict layouts and initialisation written down as facts, and, when torch is importable, outputs
equal to torch's with copied weights."""
import math

import numpy as np
import pytest
from hypothesis import given, strategies as st

import fastnn
from fastnn import nn
from fastnn.autograd import gradcheck
from fastnn.ops.attention import scaled_dot_product_attention as sdpa
from conftest import host


def ref_sdpa(q, k, v, mask=None, is_causal=False, scale=None):
    """softmax(q k^T * scale + mask) v with bool masks (True = attend) as -inf elsewhere; rows with no allowed
    key give zeros (PyTorch's safe softmax)."""
    scale = 1 / math.sqrt(q.shape[-1]) if scale is None else scale
    s = q @ np.swapaxes(k, -1, -2) * scale
    allowed = np.ones(s.shape, bool)
    if is_causal:
        allowed &= np.tril(np.ones(s.shape[-2:], bool))
    if mask is not None and mask.dtype == bool:
        allowed &= mask
    elif mask is not None:
        s = s + mask
    s = np.where(allowed, s, -np.inf)
    m = s.max(-1, keepdims=True)
    m = np.where(np.isfinite(m), m, 0)
    e = np.exp(s - m)
    total = e.sum(-1, keepdims=True)
    return (e / np.where(total > 0, total, 1)) @ v


def t(a, device="cpu", grad=False):
    return fastnn.tensor(a, requires_grad=grad, device=device)


# ---- scaled_dot_product_attention --------------------------------------------------------------------------------
@given(batch=st.lists(st.integers(1, 3), min_size=0, max_size=2), L=st.integers(1, 5), S=st.integers(1, 5),
       E=st.integers(1, 4), Ev=st.integers(1, 4), seed=st.integers(0, 2 ** 31),
       mask_kind=st.sampled_from(["none", "bool", "float", "causal"]))
def test_sdpa_matches_masked_softmax_reference(batch, L, S, E, Ev, seed, mask_kind):
    rng = np.random.default_rng(seed)
    batch = tuple(batch)
    q, k, v = (rng.standard_normal(batch + s) for s in ((L, E), (S, E), (S, Ev)))
    mask = None
    if mask_kind == "bool":
        mask = rng.random((L, S)) > 0.3
    elif mask_kind == "float":
        mask = rng.standard_normal(batch + (L, S))
    out = sdpa(t(q), t(k), t(v), None if mask is None else t(mask), is_causal=mask_kind == "causal")
    assert out.shape == batch + (L, Ev)
    np.testing.assert_allclose(host(out), ref_sdpa(q, k, v, mask, mask_kind == "causal"), atol=1e-12)


def test_causal_sdpa_is_the_lower_triangular_masked_softmax_and_scale_is_used():
    rng = np.random.default_rng(0)
    q, k, v = rng.standard_normal((2, 4, 3)), rng.standard_normal((2, 6, 3)), rng.standard_normal((2, 6, 5))
    out = host(sdpa(t(q), t(k), t(v), is_causal=True, scale=0.7))
    tril = np.tril(np.ones((4, 6), bool))  # top-left aligned: query i sees keys 0..i
    np.testing.assert_allclose(out, ref_sdpa(q, k, v, tril, scale=0.7), atol=1e-12)
    # the first query attends to key 0 only: its output is value row 0
    np.testing.assert_allclose(out[:, 0], v[:, 0], atol=1e-12)


@pytest.mark.parametrize("mask_kind", ["none", "float", "bool", "causal", "gqa"])
def test_sdpa_gradcheck(device, mask_kind):
    rng = np.random.default_rng(1)
    heads_kv = 1 if mask_kind == "gqa" else 2
    q = t(rng.standard_normal((2, 2, 3, 4)), device, True)
    k = t(rng.standard_normal((2, heads_kv, 5, 4)), device, True)
    v = t(rng.standard_normal((2, heads_kv, 5, 3)), device, True)
    if mask_kind == "float":
        m = t(rng.standard_normal((3, 5)), device, True)
        assert gradcheck(lambda q, k, v, m: sdpa(q, k, v, m), (q, k, v, m))
        return
    mask = t(rng.random((2, 1, 3, 5)) > 0.4, device) if mask_kind == "bool" else None
    assert gradcheck(lambda q, k, v: sdpa(q, k, v, mask, is_causal=mask_kind == "causal",
                                          enable_gqa=mask_kind == "gqa"), (q, k, v))
    out = sdpa(q, k, v, mask, is_causal=mask_kind == "causal", enable_gqa=mask_kind == "gqa")
    assert out.device == device
    kk, vv = host(k), host(v)
    if mask_kind == "gqa":  # every query head reads the one key/value head
        kk, vv = np.repeat(kk, 2, axis=1), np.repeat(vv, 2, axis=1)
    np.testing.assert_allclose(host(out), ref_sdpa(host(q), kk, vv, None if mask is None else host(mask),
                                                   mask_kind == "causal"), atol=1e-12)


def test_fully_masked_rows_give_zeros_and_finite_gradients():
    rng = np.random.default_rng(2)
    q, k, v = (t(rng.standard_normal(s), grad=True) for s in ((3, 2), (4, 2), (4, 2)))
    mask = np.ones((3, 4), bool)
    mask[1] = False
    out = sdpa(q, k, v, t(mask))
    np.testing.assert_array_equal(host(out)[1], 0.0)
    out.sum().backward()
    assert all(np.isfinite(host(x.grad)).all() for x in (q, k, v))
    np.testing.assert_array_equal(host(q.grad)[1], 0.0)


def test_sdpa_dropout_uses_the_backend_draw_and_is_seeded(device):
    rng = np.random.default_rng(3)
    q, k, v = (t(rng.standard_normal(s), device) for s in ((2, 3, 4), (2, 5, 4), (2, 5, 6)))
    fastnn.manual_seed(7)
    out = host(sdpa(q, k, v, dropout_p=0.4))
    fastnn.manual_seed(7)
    backend = fastnn._dispatch.backend(device)
    keep = backend.to_host(backend.draw("random", (2, 3, 5), np.float32)) < np.float32(0.6)
    s = host(q) @ np.swapaxes(host(k), -1, -2) / 2.0
    w = np.exp(s - s.max(-1, keepdims=True))
    w /= w.sum(-1, keepdims=True)
    np.testing.assert_allclose(out, (w * keep / 0.6) @ host(v), atol=1e-12)
    assert 0 < keep.mean() < 1
    np.testing.assert_array_equal(host(sdpa(q, k, v, dropout_p=1.0)), 0.0)
    # the dropped weights stay in the gradient path
    qg = t(host(q), device, True)
    fastnn.manual_seed(7)
    assert gradcheck(lambda q: (fastnn.manual_seed(7), sdpa(q, k, v, dropout_p=0.4))[1], (qg,))


def test_sdpa_argument_errors():
    q = fastnn.randn(2, 3, 4)
    with pytest.raises(ValueError, match="is_causal"):
        sdpa(q, q, q, attn_mask=fastnn.ones(3, 3), is_causal=True)
    with pytest.raises(ValueError, match="embedding size"):
        sdpa(q, fastnn.randn(2, 3, 5), q)
    with pytest.raises(ValueError, match="dropout probability"):
        sdpa(q, q, q, dropout_p=1.5)
    with pytest.raises(TypeError, match="attn_mask must be bool or floating point"):
        sdpa(q, q, q, attn_mask=fastnn.zeros(3, 3, dtype=fastnn.int64))
    with pytest.raises(ValueError, match="does not broadcast"):
        sdpa(q, q, q, attn_mask=fastnn.zeros(4, 3))
    with pytest.raises(ValueError, match="multiple of the number of key/value heads"):
        sdpa(fastnn.randn(1, 3, 2, 4), fastnn.randn(1, 2, 2, 4), fastnn.randn(1, 2, 2, 4), enable_gqa=True)


# ---- MultiheadAttention ------------------------------------------------------------------------------------------
def ref_mha(query, key, value, p, heads, mask=None):
    """Sequence-first (L, N, E) MHA by PyTorch's equations; mask: float, broadcastable to (N, heads, L, S)."""
    E = query.shape[-1]
    w, b = p["in_proj_weight"], p["in_proj_bias"]
    q, k, v = query @ w[:E].T + b[:E], key @ w[E:2 * E].T + b[E:2 * E], value @ w[2 * E:].T + b[2 * E:]
    split = lambda x: x.reshape(x.shape[0], x.shape[1], heads, E // heads).transpose(1, 2, 0, 3)  # noqa: E731
    q, k, v = split(q), split(k), split(v)
    s = q @ np.swapaxes(k, -1, -2) / math.sqrt(E // heads)
    if mask is not None:
        s = s + mask
    w_att = np.exp(s - s.max(-1, keepdims=True))
    w_att /= w_att.sum(-1, keepdims=True)
    out = (w_att @ v).transpose(2, 0, 1, 3).reshape(query.shape)
    return out @ p["out_proj.weight"].T + p["out_proj.bias"], w_att


def test_mha_state_dict_layout_and_init_are_pytorchs():
    m = nn.MultiheadAttention(16, 4)
    sd = m.state_dict()
    assert [(k, tuple(v.shape)) for k, v in sd.items()] == [
        ("in_proj_weight", (48, 16)), ("in_proj_bias", (48,)), ("out_proj.weight", (16, 16)),
        ("out_proj.bias", (16,))]
    np.testing.assert_array_equal(host(sd["in_proj_bias"]), 0.0)
    np.testing.assert_array_equal(host(sd["out_proj.bias"]), 0.0)
    bound = math.sqrt(6 / (16 + 48))  # xavier_uniform_ on (3E, E)
    w = host(sd["in_proj_weight"])
    assert np.abs(w).max() <= bound and np.abs(w).max() > 0.95 * bound
    separate = nn.MultiheadAttention(8, 2, kdim=3, vdim=5, bias=False, add_bias_kv=True)
    assert [(k, tuple(v.shape)) for k, v in separate.state_dict().items()] == [
        ("q_proj_weight", (8, 8)), ("k_proj_weight", (8, 3)), ("v_proj_weight", (8, 5)), ("bias_k", (1, 1, 8)),
        ("bias_v", (1, 1, 8)), ("out_proj.weight", (8, 8))]
    assert separate.in_proj_weight is None and separate.in_proj_bias is None
    with pytest.raises(ValueError, match="divisible by num_heads"):
        nn.MultiheadAttention(10, 3)


def test_mha_matches_reference_with_masks_and_batch_first_both_ways():
    rng = np.random.default_rng(4)
    L, S, N, E, H = 4, 5, 2, 6, 3
    m = nn.MultiheadAttention(E, H, dtype=np.float64)
    fastnn.nn.init.normal_(m.in_proj_bias)
    p = {k: host(v) for k, v in m.state_dict().items()}
    query, key = rng.standard_normal((L, N, E)), rng.standard_normal((S, N, E))
    attn_bool = rng.random((L, S)) > 0.7
    attn_bool[:, 0] = False  # every query keeps one key
    pad = np.zeros((N, S), bool)
    pad[1, -2:] = True
    mask = np.where(attn_bool, -np.inf, 0.0)[None, None] + np.where(pad, -np.inf, 0.0)[:, None, None, :]
    ref_out, ref_w = ref_mha(query, key, key, p, H, mask)
    out, w = m(t(query), t(key), t(key), key_padding_mask=t(pad), attn_mask=t(attn_bool))
    np.testing.assert_allclose(host(out), ref_out, atol=1e-12)
    np.testing.assert_allclose(host(w), ref_w.mean(1), atol=1e-12)
    # a float mask with -inf equals the bool mask; per-head weights; the SDPA path (need_weights=False)
    out_f, w_heads = m(t(query), t(key), t(key), key_padding_mask=t(np.where(pad, -np.inf, 0.0)),
                       attn_mask=t(np.where(attn_bool, -np.inf, 0.0)), average_attn_weights=False)
    np.testing.assert_allclose(host(out_f), ref_out, atol=1e-12)
    np.testing.assert_allclose(host(w_heads), ref_w, atol=1e-12)
    out_s, none = m(t(query), t(key), t(key), key_padding_mask=t(pad), attn_mask=t(attn_bool), need_weights=False)
    assert none is None
    np.testing.assert_allclose(host(out_s), ref_out, atol=1e-12)
    # batch_first: the same module weights on (N, L, E) inputs give the transposed result
    bf = nn.MultiheadAttention(E, H, batch_first=True, dtype=np.float64)
    bf.load_state_dict(m.state_dict())
    out_bf, w_bf = bf(t(query.transpose(1, 0, 2)), t(key.transpose(1, 0, 2)), t(key.transpose(1, 0, 2)),
                      key_padding_mask=t(pad), attn_mask=t(attn_bool))
    assert out_bf.shape == (N, L, E)
    np.testing.assert_allclose(host(out_bf), ref_out.transpose(1, 0, 2), atol=1e-12)
    np.testing.assert_allclose(host(w_bf), ref_w.mean(1), atol=1e-12)
    # self-attention (one packed projection) equals the same call with distinct but equal tensors
    x = rng.standard_normal((N, L, E))
    xt = t(x)
    np.testing.assert_allclose(host(bf(xt, xt, xt)[0]), host(bf(t(x), t(x), t(x))[0]), atol=1e-12)
    # unbatched (L, E)
    np.testing.assert_allclose(host(m(t(query[:, 0]), t(key[:, 0]), t(key[:, 0]))[0]),
                               ref_mha(query[:, :1], key[:, :1], key[:, :1], p, H)[0][:, 0], atol=1e-12)


def test_mha_gradcheck_through_module():
    rng = np.random.default_rng(5)
    m = nn.MultiheadAttention(4, 2, kdim=3, vdim=2, batch_first=True, dtype=np.float64)
    q, k, v = (t(rng.standard_normal(s), grad=True) for s in ((2, 3, 4), (2, 5, 3), (2, 5, 2)))
    pad = t(np.array([[False] * 5, [False, False, False, True, True]]))
    assert gradcheck(lambda q, k, v: m(q, k, v, key_padding_mask=pad, need_weights=False)[0], (q, k, v))
    assert gradcheck(lambda q, k, v: m(q, k, v, key_padding_mask=pad)[1], (q, k, v))


# ---- Transformer layers -------------------------------------------------------------------------------------------
def _layer_norm(x, w, b, eps=1e-5):
    mu, var = x.mean(-1, keepdims=True), x.var(-1, keepdims=True)
    return (x - mu) / np.sqrt(var + eps) * w + b


@pytest.mark.parametrize("norm_first", [False, True])
def test_encoder_layer_matches_reference(norm_first):
    rng = np.random.default_rng(6)
    layer = nn.TransformerEncoderLayer(8, 2, dim_feedforward=16, dropout=0.0, norm_first=norm_first,
                                       dtype=np.float64)
    p = {k: host(v) for k, v in layer.state_dict().items()}
    attn = {k[len("self_attn."):]: v for k, v in p.items() if k.startswith("self_attn.")}
    x = rng.standard_normal((5, 2, 8))

    def sa(y):
        return ref_mha(y, y, y, attn, 2)[0]

    def ff(y):
        return np.maximum(y @ p["linear1.weight"].T + p["linear1.bias"], 0) @ p["linear2.weight"].T + \
            p["linear2.bias"]

    def n1(y):
        return _layer_norm(y, p["norm1.weight"], p["norm1.bias"])

    def n2(y):
        return _layer_norm(y, p["norm2.weight"], p["norm2.bias"])

    if norm_first:
        y = x + sa(n1(x))
        expected = y + ff(n2(y))
    else:
        y = n1(x + sa(x))
        expected = n2(y + ff(y))
    np.testing.assert_allclose(host(layer(t(x))), expected, atol=1e-10)


def test_transformer_state_dict_layouts_are_pytorchs():
    enc = nn.TransformerEncoder(nn.TransformerEncoderLayer(8, 2, dim_feedforward=16), 2, norm=nn.LayerNorm(8))
    layer_keys = [("self_attn.in_proj_weight", (24, 8)), ("self_attn.in_proj_bias", (24,)),
                  ("self_attn.out_proj.weight", (8, 8)), ("self_attn.out_proj.bias", (8,)),
                  ("linear1.weight", (16, 8)), ("linear1.bias", (16,)), ("linear2.weight", (8, 16)),
                  ("linear2.bias", (8,)), ("norm1.weight", (8,)), ("norm1.bias", (8,)), ("norm2.weight", (8,)),
                  ("norm2.bias", (8,))]
    assert [(k, tuple(v.shape)) for k, v in enc.state_dict().items()] == (
        [(f"layers.0.{k}", s) for k, s in layer_keys] + [(f"layers.1.{k}", s) for k, s in layer_keys]
        + [("norm.weight", (8,)), ("norm.bias", (8,))])
    # the clones are independent copies
    assert enc.layers[0].linear1.weight is not enc.layers[1].linear1.weight
    dec = nn.TransformerDecoderLayer(8, 2, dim_feedforward=16)
    assert list(dec.state_dict()) == [
        "self_attn.in_proj_weight", "self_attn.in_proj_bias", "self_attn.out_proj.weight", "self_attn.out_proj.bias",
        "multihead_attn.in_proj_weight", "multihead_attn.in_proj_bias", "multihead_attn.out_proj.weight",
        "multihead_attn.out_proj.bias", "linear1.weight", "linear1.bias", "linear2.weight", "linear2.bias",
        "norm1.weight", "norm1.bias", "norm2.weight", "norm2.bias", "norm3.weight", "norm3.bias"]
    assert nn.TransformerEncoderLayer(8, 2).linear1.weight.shape == (2048, 8)  # dim_feedforward=2048
    with pytest.raises(RuntimeError, match="relu/gelu"):
        nn.TransformerEncoderLayer(8, 2, activation="tanh")


# ---- torch: same weights, same outputs ----------------------------------------------------------------------------
def _copy(module, torch_module):
    module.load_state_dict({k: fastnn.tensor(v.detach().numpy()) for k, v in torch_module.state_dict().items()})


def test_sdpa_equals_torch():
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(7)
    q, k, v = (rng.standard_normal(s).astype(np.float32) for s in ((2, 3, 4, 8), (2, 3, 6, 8), (2, 3, 6, 5)))
    bool_mask = rng.random((4, 6)) > 0.3
    float_mask = rng.standard_normal((2, 1, 4, 6)).astype(np.float32)
    T = torch.from_numpy
    F = torch.nn.functional
    for kwargs, ours in (({"is_causal": True}, {"is_causal": True}),
                         ({"attn_mask": T(bool_mask)}, {"attn_mask": t(bool_mask)}),
                         ({"attn_mask": T(float_mask), "scale": 0.3}, {"attn_mask": t(float_mask), "scale": 0.3})):
        expected = F.scaled_dot_product_attention(T(q), T(k), T(v), **kwargs).numpy()
        np.testing.assert_allclose(host(sdpa(t(q), t(k), t(v), **ours)), expected, atol=1e-5)


@pytest.mark.parametrize("batch_first", [False, True])
def test_mha_equals_torch(batch_first):
    torch = pytest.importorskip("torch")
    torch.manual_seed(0)
    tm = torch.nn.MultiheadAttention(8, 2, batch_first=batch_first)
    with torch.no_grad():
        tm.in_proj_bias.normal_()
        tm.out_proj.bias.normal_()
    m = nn.MultiheadAttention(8, 2, batch_first=batch_first)
    _copy(m, tm)
    rng = np.random.default_rng(8)
    shape_q, shape_k = ((2, 4, 8), (2, 5, 8)) if batch_first else ((4, 2, 8), (5, 2, 8))
    q, k = rng.standard_normal(shape_q).astype(np.float32), rng.standard_normal(shape_k).astype(np.float32)
    pad = np.array([[False] * 5, [False, False, False, True, True]])
    causal = np.triu(np.ones((4, 5), bool), 1)
    for need_weights in (True, False):
        t_out, t_w = tm(torch.from_numpy(q), torch.from_numpy(k), torch.from_numpy(k),
                        key_padding_mask=torch.from_numpy(pad), attn_mask=torch.from_numpy(causal),
                        need_weights=need_weights)
        out, w = m(t(q), t(k), t(k), key_padding_mask=t(pad), attn_mask=t(causal), need_weights=need_weights)
        np.testing.assert_allclose(host(out), t_out.detach().numpy(), atol=1e-5)
        if need_weights:
            np.testing.assert_allclose(host(w), t_w.detach().numpy(), atol=1e-5)


@pytest.mark.parametrize("norm_first,activation", [(False, "relu"), (True, "gelu")])
def test_transformer_layers_equal_torch(norm_first, activation):
    torch = pytest.importorskip("torch")
    torch.manual_seed(0)
    kwargs = dict(dim_feedforward=32, dropout=0.0, activation=activation, batch_first=True, norm_first=norm_first)
    t_enc = torch.nn.TransformerEncoder(torch.nn.TransformerEncoderLayer(16, 4, **kwargs), 2,
                                        norm=torch.nn.LayerNorm(16), enable_nested_tensor=False)
    t_dec = torch.nn.TransformerDecoderLayer(16, 4, **kwargs)
    enc = nn.TransformerEncoder(nn.TransformerEncoderLayer(16, 4, **kwargs), 2, norm=nn.LayerNorm(16))
    dec = nn.TransformerDecoderLayer(16, 4, **kwargs)
    _copy(enc, t_enc)
    _copy(dec, t_dec)
    rng = np.random.default_rng(9)
    src, tgt = rng.standard_normal((2, 6, 16)).astype(np.float32), rng.standard_normal((2, 3, 16)).astype(np.float32)
    causal = np.triu(np.full((6, 6), -np.inf, np.float32), 1)
    memory = t_enc(torch.from_numpy(src), mask=torch.from_numpy(causal))
    ours = enc(t(src), mask=t(causal))
    np.testing.assert_allclose(host(ours), memory.detach().numpy(), atol=1e-5)
    expected = t_dec(torch.from_numpy(tgt), memory).detach().numpy()
    np.testing.assert_allclose(host(dec(t(tgt), ours)), expected, atol=1e-5)


@pytest.mark.parametrize("kwargs", [dict(kdim=3, vdim=5), dict(add_bias_kv=True, add_zero_attn=True),
                                    dict(bias=False, kdim=3, vdim=5, add_zero_attn=True)])
def test_mha_variants_equal_torch(kwargs):
    torch = pytest.importorskip("torch")
    torch.manual_seed(1)
    tm = torch.nn.MultiheadAttention(8, 2, **kwargs)
    m = nn.MultiheadAttention(8, 2, **kwargs)
    assert list(m.state_dict()) == list(tm.state_dict())
    _copy(m, tm)
    rng = np.random.default_rng(10)
    q = rng.standard_normal((4, 2, 8)).astype(np.float32)
    k = rng.standard_normal((5, 2, kwargs.get("kdim", 8))).astype(np.float32)
    v = rng.standard_normal((5, 2, kwargs.get("vdim", 8))).astype(np.float32)
    pad = np.array([[False] * 5, [False, False, True, True, True]])
    t_out, t_w = tm(torch.from_numpy(q), torch.from_numpy(k), torch.from_numpy(v),
                    key_padding_mask=torch.from_numpy(pad), average_attn_weights=False)
    out, w = m(t(q), t(k), t(v), key_padding_mask=t(pad), average_attn_weights=False)
    np.testing.assert_allclose(host(out), t_out.detach().numpy(), atol=1e-5)
    np.testing.assert_allclose(host(w), t_w.detach().numpy(), atol=1e-5)


def test_functional_exports():
    F = nn.functional
    assert F.scaled_dot_product_attention is sdpa
    rng = np.random.default_rng(11)
    q = rng.standard_normal((3, 4))
    np.testing.assert_allclose(host(F.scaled_dot_product_attention(t(q), t(q), t(q), is_causal=True)),
                               ref_sdpa(q, q, q, is_causal=True), atol=1e-12)
    assert callable(F.multi_head_attention_forward)


def test_encoder_layer_on_another_device_equals_cpu(device):
    layer = nn.TransformerEncoderLayer(8, 2, dim_feedforward=16, dropout=0.0, batch_first=True, dtype=np.float64)
    x = np.random.default_rng(12).standard_normal((2, 5, 8))
    pad = np.array([[False] * 5, [False, False, False, True, True]])
    expected = layer(t(x), src_key_padding_mask=t(pad))
    (expected * expected).sum().backward()
    grads = {k: host(p.grad) for k, p in layer.named_parameters()}
    layer.zero_grad()
    layer.to(device)
    out = layer(t(x, device), src_key_padding_mask=t(pad, device))
    (out * out).sum().backward()
    assert out.device == device
    np.testing.assert_allclose(host(out), host(expected), atol=1e-12)
    for k, p in layer.named_parameters():
        np.testing.assert_allclose(host(p.grad), grads[k], atol=1e-10)

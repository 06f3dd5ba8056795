"""Dropout family, DropConnect, stochastic depth, Embedding and the weight penalties."""
import math

import numpy as np
import pytest
from hypothesis import given, strategies as st
from hypothesis.extra import numpy as hnp

import fastnn
from fastnn import nn
from fastnn.autograd import gradcheck
from fastnn.nn import functional as F

from conftest import DEVICES, host

SELU_ALPHA = 1.6732632423543772
SELU_SCALE = 1.0507009873554805


def seeded(fn, seed=1):
    """fn with the global generator reseeded before each call, so repeated calls (gradcheck) see one mask."""
    def call(*args):
        fastnn.manual_seed(seed)
        return fn(*args)
    return call


def positive_input(shape, dtype="float32", seed=0, device="cpu"):
    """Values in [0.5, 1.5): an output zero can only come from dropping."""
    data = np.random.default_rng(seed).random(shape) + 0.5
    return fastnn.tensor(data.astype(dtype), requires_grad=True, device=device)


# ---- Dropout -----------------------------------------------------------------------------------------------
@pytest.mark.parametrize("p", [0.1, 0.5, 0.8])
def test_dropout_keeps_expected_activation_and_drops_fraction_p(p, device):
    x = positive_input((1000, 1000), device=device)
    out, values = host(F.dropout(x, p)), host(x)
    dropped = out == 0
    assert abs(dropped.mean() - p) < 3e-3  # binomial std sqrt(p(1-p)/1e6) <= 5e-4
    assert abs(out.mean() / values.mean() - 1) < 1e-2
    np.testing.assert_allclose(out[~dropped], values[~dropped] / np.float32(1 - p), rtol=1e-6)
    assert out.dtype == np.float32


def test_dropout_gradient_is_mask_times_scale(device):
    p = 0.3
    x = positive_input((50, 40), device=device)
    out = F.dropout(x, p)
    g = np.random.default_rng(1).standard_normal(x.shape).astype(np.float32)
    out.backward(fastnn.tensor(g, device=device))
    expected = g * (host(out) != 0) / np.float32(1 - p)
    np.testing.assert_allclose(host(x.grad), expected, rtol=1e-6)


@pytest.mark.parametrize("fn", [lambda x: F.dropout(x, 0.4), lambda x: F.dropout2d(x, 0.4),
                                lambda x: F.alpha_dropout(x, 0.4, training=True), lambda x: F.drop_path(x, 0.4)])
def test_masks_are_the_same_on_every_device(fn):
    # every device draws from fastnn's seeded stream, so a seed gives one mask whatever the device
    data = np.random.default_rng(5).standard_normal((3, 4, 2, 3)).astype(np.float32)
    outs = [host(seeded(fn, 3)(fastnn.tensor(data, device=device))) for device in DEVICES]
    assert not np.allclose(outs[0], data)  # something was dropped
    for out in outs[1:]:
        np.testing.assert_allclose(out, outs[0], rtol=1e-6)


@pytest.mark.parametrize("fn", [lambda x: F.dropout(x, 0.4), lambda x: F.dropout2d(x, 0.4),
                                lambda x: F.alpha_dropout(x, 0.4, training=True),
                                lambda x: F.drop_path(x, 0.4), lambda x: F.drop_path(x, 0.4, mode="batch")])
def test_dropout_family_gradcheck(fn, device):
    x = fastnn.tensor(np.random.default_rng(2).standard_normal((3, 4, 2, 3)), requires_grad=True, device=device)
    assert gradcheck(seeded(fn), [x])


def test_dropout_eval_mode_is_identity():
    x = positive_input((20, 30))
    layer = nn.Dropout(0.5).eval()
    assert layer(x) is x
    assert F.dropout(x, 0.5, training=False) is x
    assert F.dropout(x, 0.0) is x


def test_dropout_module_follows_train_mode():
    layer = nn.Dropout(0.5)
    x = positive_input((40, 40))
    assert (layer(x).detach().numpy() == 0).any()
    layer.eval()
    np.testing.assert_array_equal(layer(x).detach().numpy(), x._data)


def test_dropout_masks_are_reproducible_with_manual_seed(device):
    x = positive_input((30, 30), device=device)
    fastnn.manual_seed(7)
    first = host(F.dropout(x, 0.5))
    fastnn.manual_seed(7)
    second = host(F.dropout(x, 0.5))
    third = host(F.dropout(x, 0.5))
    np.testing.assert_array_equal(first, second)
    assert not np.array_equal(first, third)


@pytest.mark.parametrize("fn", [lambda x: F.dropout(x, 1.0), lambda x: F.dropout2d(x, 1.0),
                                lambda x: F.alpha_dropout(x, 1.0, training=True), lambda x: F.drop_path(x, 1.0)])
def test_p_one_gives_zeros_without_nan(fn, device):
    x = positive_input((4, 3, 5, 5), device=device)
    out = fn(x)
    out.backward(fastnn.ones(x.shape, device=device))
    assert np.array_equal(host(out), np.zeros(x.shape))
    assert np.array_equal(host(x.grad), np.zeros(x.shape))


@pytest.mark.parametrize("p", [-0.1, 1.5, float("nan"), "0.5", None, True])
@pytest.mark.parametrize("make", [lambda p: F.dropout(fastnn.ones(3), p), lambda p: nn.Dropout(p),
                                  lambda p: nn.Dropout2d(p), lambda p: nn.AlphaDropout(p),
                                  lambda p: nn.StochasticDepth(p), lambda p: nn.DropConnect(3, 2, p=p),
                                  lambda p: F.drop_path(fastnn.ones(3), p)])
def test_invalid_probability_raises_value_error_naming_p(make, p):
    with pytest.raises(ValueError, match="p="):
        make(p)


def test_dropout_rejects_integer_input_and_keeps_float64():
    with pytest.raises(TypeError, match="floating point"):
        F.dropout(fastnn.tensor([1, 2, 3]), 0.5)
    assert F.dropout(positive_input((4, 4), "float64"), 0.5).dtype == np.float64


# ---- Dropout2d ---------------------------------------------------------------------------------------------
def test_dropout2d_zeroes_whole_channels():
    p = 0.3
    x = positive_input((100, 40, 5, 6))
    out = nn.Dropout2d(p)(x).detach().numpy()
    channel_dropped = (out == 0).all(axis=(2, 3))
    channel_kept = (out != 0).all(axis=(2, 3))
    assert (channel_dropped | channel_kept).all()
    np.testing.assert_allclose(out[channel_kept], x._data[channel_kept] / np.float32(1 - p), rtol=1e-6)
    assert abs(channel_dropped.mean() - p) < 0.04  # 4000 channels: std ~ 0.007


def test_dropout2d_needs_4d_input():
    with pytest.raises(ValueError, match="N, C, H, W"):
        F.dropout2d(fastnn.ones(3, 4, 5), 0.5)


# ---- AlphaDropout ------------------------------------------------------------------------------------------
@pytest.mark.parametrize("p", [0.1, 0.2, 0.5])
def test_alpha_dropout_keeps_zero_mean_unit_std(p):
    x = fastnn.tensor(np.random.default_rng(3).standard_normal(1_000_000).astype(np.float32))
    out = nn.AlphaDropout(p)(x).numpy()
    assert abs(out.mean()) < 0.01
    assert abs(out.std() - 1) < 0.01
    a = 1 / math.sqrt((1 + p * (SELU_ALPHA * SELU_SCALE) ** 2) * (1 - p))
    dropped_value = -a * SELU_ALPHA * SELU_SCALE * (1 - p)
    dropped = np.isclose(out, dropped_value, rtol=0, atol=1e-6)
    assert abs(dropped.mean() - p) < 3e-3


def test_alpha_dropout_keeps_selu_fixed_point():
    selu = F.selu(fastnn.tensor(np.random.default_rng(4).standard_normal(1_000_000)))
    out = F.alpha_dropout(selu, 0.2, training=True).numpy()
    assert abs(out.mean()) < 0.01 and abs(out.std() - 1) < 0.01


def test_alpha_dropout_is_identity_in_eval_and_by_default():
    x = positive_input((10,))
    assert F.alpha_dropout(x, 0.5) is x  # PyTorch's default training=False
    assert nn.AlphaDropout(0.5).eval()(x) is x


# ---- DropConnect -------------------------------------------------------------------------------------------
def test_dropconnect_training_masks_weights_and_eval_uses_plain_weights():
    p = 0.4
    layer = nn.DropConnect(30, 20, p=p)
    x = fastnn.tensor(np.random.default_rng(5).standard_normal((8, 30)).astype(np.float32))
    fastnn.manual_seed(11)
    out = layer(x)
    fastnn.manual_seed(11)
    masked = F.dropout(layer.weight.detach(), p).numpy()
    assert abs((masked == 0).mean() - p) < 0.1
    np.testing.assert_allclose(out.detach().numpy(), x._data @ masked.T + layer.bias._data, rtol=1e-5, atol=1e-5)
    out.sum().backward()
    assert (layer.weight.grad.numpy()[masked == 0] == 0).all()
    layer.eval()
    np.testing.assert_allclose(layer(x).detach().numpy(), x._data @ layer.weight._data.T + layer.bias._data,
                               rtol=1e-5, atol=1e-6)


def test_dropconnect_is_unbiased():
    layer = nn.DropConnect(6, 3, p=0.5, dtype="float64")
    x = fastnn.tensor(np.random.default_rng(6).standard_normal((2, 6)))
    with fastnn.no_grad():
        mean = np.mean([layer(x).numpy() for _ in range(4000)], axis=0)
        expected = layer.eval()(x).numpy()
    np.testing.assert_allclose(mean, expected, atol=0.05)


def test_dropconnect_gradcheck():
    layer = nn.DropConnect(4, 3, p=0.5, dtype="float64")
    x = fastnn.tensor(np.random.default_rng(7).standard_normal((2, 4)), requires_grad=True)
    assert gradcheck(seeded(lambda x, w, b: F.linear(x, F.dropout(w, 0.5), b)), [x, layer.weight, layer.bias])
    assert gradcheck(seeded(layer), [x])


# ---- Stochastic depth --------------------------------------------------------------------------------------
def test_drop_path_drops_whole_samples(device):
    p = 0.3
    x = positive_input((2000, 3, 4), device=device)
    out = host(nn.StochasticDepth(p)(x))
    sample_dropped = (out == 0).all(axis=(1, 2))
    sample_kept = (out != 0).all(axis=(1, 2))
    assert (sample_dropped | sample_kept).all()
    assert 0.25 < sample_dropped.mean() < 0.35
    np.testing.assert_allclose(out[sample_kept], host(x)[sample_kept] / np.float32(1 - p), rtol=1e-6)


def test_drop_path_batch_mode_drops_all_or_nothing():
    x = positive_input((16, 5))
    outcomes = [(F.drop_path(x, 0.5, mode="batch").detach().numpy() == 0).mean() for _ in range(40)]
    assert set(outcomes) == {0.0, 1.0}


def test_drop_path_is_identity_at_test_time():
    x = positive_input((8, 4))
    assert nn.DropPath(0.5).eval()(x) is x
    assert F.drop_path(x, 0.5, training=False) is x
    with pytest.raises(ValueError, match="mode"):
        F.drop_path(x, 0.5, mode="column")
    with pytest.raises(ValueError, match="mode"):
        nn.StochasticDepth(0.5, mode="sample")


# ---- Embedding ---------------------------------------------------------------------------------------------
def test_embedding_forward_picks_rows(device):
    emb = nn.Embedding(10, 4).to(device)
    idx = [[1, 2, 1], [9, 0, 3]]
    out = emb(fastnn.tensor(idx, device=device))
    assert out.shape == (2, 3, 4)
    np.testing.assert_array_equal(host(out), host(emb.weight)[np.array(idx)])
    assert emb(fastnn.tensor(np.array([4, 5], np.int32), device=device)).shape == (2, 4)


def test_embedding_init_is_standard_normal():
    w = nn.Embedding(1000, 200).weight._data
    assert abs(w.mean()) < 0.01 and abs(w.std() - 1) < 0.01


def test_embedding_gradient_accumulates_repeated_indices(device):
    emb = nn.Embedding(5, 3).to(device)
    idx = np.array([[1, 2, 1], [4, 1, 2]])
    g = np.random.default_rng(8).standard_normal((2, 3, 3)).astype(np.float32)
    emb(fastnn.tensor(idx, device=device)).backward(fastnn.tensor(g, device=device))
    expected = np.zeros((5, 3), np.float32)
    np.add.at(expected, idx.reshape(-1), g.reshape(-1, 3))
    np.testing.assert_allclose(host(emb.weight.grad), expected, rtol=1e-6, atol=1e-6)
    np.testing.assert_allclose(host(emb.weight.grad)[1], g[0, 0] + g[0, 2] + g[1, 1], rtol=1e-6)


@pytest.mark.parametrize("device", DEVICES)
@given(idx=hnp.arrays(np.int64, hnp.array_shapes(min_dims=0, max_dims=3, max_side=6), elements=st.integers(0, 6)),
       padding=st.one_of(st.none(), st.integers(-7, 6)))
def test_embedding_backward_matches_add_at_reference(idx, padding, device):
    weight = fastnn.tensor(np.random.default_rng(9).standard_normal((7, 3)), requires_grad=True, device=device)
    out = F.embedding(fastnn.tensor(idx, device=device), weight, padding)
    g = np.random.default_rng(10).standard_normal(out.shape)
    out.backward(fastnn.tensor(g, device=device))
    expected = np.zeros((7, 3))
    np.add.at(expected, idx.reshape(-1), g.reshape(-1, 3))
    if padding is not None:
        expected[padding] = 0
    np.testing.assert_allclose(host(weight.grad), expected, atol=1e-12)


def test_embedding_padding_idx_is_zero_and_gets_no_gradient():
    emb = nn.Embedding(6, 4, padding_idx=0)
    assert np.array_equal(emb.weight._data[0], np.zeros(4))
    idx = fastnn.tensor([0, 2, 0, 5])
    out = emb(idx)
    np.testing.assert_array_equal(out.detach().numpy()[[0, 2]], np.zeros((2, 4)))
    out.sum().backward()
    grad = emb.weight.grad.numpy()
    np.testing.assert_array_equal(grad[0], np.zeros(4))
    np.testing.assert_array_equal(grad[[2, 5]], np.ones((2, 4)))
    assert nn.Embedding(6, 4, padding_idx=-1).padding_idx == 5


def test_embedding_gradcheck(device):
    weight = fastnn.tensor(np.random.default_rng(11).standard_normal((5, 3)), requires_grad=True, device=device)
    idx = fastnn.tensor([[0, 4, 4], [2, 1, 0]], device=device)
    assert gradcheck(lambda w: F.embedding(idx, w), [weight])


@pytest.mark.parametrize("idx, error, match", [
    ([0, 10], ValueError, "index 10 is out of range"),
    ([-1, 2], ValueError, "index -1 is out of range"),
    ([0.0, 1.0], TypeError, "integer"),
    ([True, False], TypeError, "integer"),
])
def test_embedding_rejects_bad_indices(idx, error, match):
    emb = nn.Embedding(10, 2)
    with pytest.raises(error, match=match):
        emb(fastnn.tensor(idx))


@pytest.mark.parametrize("kwargs, match", [({"padding_idx": 10}, "padding_idx"), ({"padding_idx": -11}, "padding_idx"),
                                           ({"num_embeddings": 0}, "num_embeddings"),
                                           ({"embedding_dim": 2.5}, "embedding_dim")])
def test_embedding_rejects_bad_arguments(kwargs, match):
    args = {"num_embeddings": 10, "embedding_dim": 2} | kwargs
    with pytest.raises(ValueError, match=match):
        nn.Embedding(**args)


def test_embedding_from_pretrained():
    table = np.arange(12, dtype=np.float32).reshape(4, 3)
    emb = nn.Embedding.from_pretrained(table)
    np.testing.assert_array_equal(emb(fastnn.tensor([3, 0])).numpy(), table[[3, 0]])
    assert not emb.weight.requires_grad
    assert nn.Embedding.from_pretrained(table, freeze=False).weight.requires_grad


# ---- Penalties and weight decay ----------------------------------------------------------------------------
def params(dtype="float64"):
    rng = np.random.default_rng(12)
    return [fastnn.tensor(rng.standard_normal(shape).astype(dtype), requires_grad=True) for shape in ((3, 4), (4,))]


def test_penalty_values_and_gradients():
    ps = params()
    flat = np.concatenate([p._data.ravel() for p in ps])
    l1, l2 = nn.l1_penalty(ps), nn.l2_penalty(ps)
    assert l1.shape == () and l2.shape == ()
    np.testing.assert_allclose(l1.item(), np.abs(flat).sum())
    np.testing.assert_allclose(l2.item(), (flat ** 2).sum())
    np.testing.assert_allclose(nn.elastic_net_penalty(ps, 0.3).item(),
                               0.3 * np.abs(flat).sum() + 0.7 * (flat ** 2).sum())
    (l1 + l2).backward()
    for p in ps:
        np.testing.assert_allclose(p.grad.numpy(), np.sign(p._data) + 2 * p._data)
    for penalty in (nn.l1_penalty, nn.l2_penalty, lambda ps: nn.elastic_net_penalty(ps, 0.6)):
        assert gradcheck(lambda *ps: penalty(ps), params())


def test_penalty_accepts_module_parameters_a_tensor_and_nothing():
    model = nn.Linear(3, 2)
    expected = sum(float((p._data.astype(np.float64) ** 2).sum()) for p in model.parameters())
    np.testing.assert_allclose(nn.l2_penalty(model.parameters()).item(), expected, rtol=1e-6)
    np.testing.assert_allclose(nn.l1_penalty(model.weight).item(), np.abs(model.weight._data).sum(), rtol=1e-6)
    assert nn.l2_penalty([]).item() == 0.0
    assert nn.elastic_net_penalty(model.parameters(), 1.0).item() == pytest.approx(
        nn.l1_penalty(model.parameters()).item())


def test_penalty_argument_errors():
    with pytest.raises(TypeError, match="parameter 1"):
        nn.l2_penalty([fastnn.ones(2), np.ones(2)])
    with pytest.raises(ValueError, match="l1_ratio"):
        nn.elastic_net_penalty(params(), 1.5)


def test_coupled_weight_decay_gradient_is_half_lambda_l2_penalty_gradient():
    """Coupled weight decay adds lam * theta to the gradient: exactly the gradient of (lam / 2) * ||theta||^2."""
    lam = 0.1
    ps = params()
    x = fastnn.tensor(np.random.default_rng(13).standard_normal((5, 4)))
    loss = lambda: ((x @ ps[0].T + ps[1][:3]) ** 2).sum()  # noqa: E731
    loss().backward()
    decayed = [p.grad.numpy() + lam * p._data for p in ps]
    for p in ps:
        p.grad = None
    (loss() + lam / 2 * nn.l2_penalty(ps)).backward()
    for p, expected in zip(ps, decayed):
        np.testing.assert_allclose(p.grad.numpy(), expected, rtol=1e-12)


def test_sgd_weight_decay_equals_half_lambda_l2_penalty_in_the_loss():
    from fastnn.optim import SGD
    lam, lr = 0.05, 0.1
    x = fastnn.tensor(np.random.default_rng(14).standard_normal((16, 5)))
    y = fastnn.tensor(np.random.default_rng(15).standard_normal((16, 2)))
    fastnn.manual_seed(3)
    decayed = nn.Linear(5, 2, dtype="float64")
    fastnn.manual_seed(3)
    penalised = nn.Linear(5, 2, dtype="float64")
    opt_decayed = SGD(decayed.parameters(), lr=lr, weight_decay=lam)
    opt_penalised = SGD(penalised.parameters(), lr=lr)
    for _ in range(5):
        for model, opt, penalty in ((decayed, opt_decayed, 0.0), (penalised, opt_penalised, lam / 2)):
            opt.zero_grad()
            loss = F.mse_loss(model(x), y)
            if penalty:
                loss = loss + penalty * nn.l2_penalty(model.parameters())
            loss.backward()
            opt.step()
    for a, b in zip(decayed.parameters(), penalised.parameters()):
        np.testing.assert_allclose(a._data, b._data, rtol=1e-12, atol=1e-14)

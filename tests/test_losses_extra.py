"""The losses added for issue 14 (BCE, SmoothL1, Huber, KLDiv, MarginRanking, TripletMargin, CosineEmbedding,
PoissonNLL, GaussianNLL, MultiLabelSoftMargin): values against NumPy references written from PyTorch's
documented formulas, one worked number per loss, reductions and the deprecated size_average/reduce, gradients
against finite differences in float64, on every device."""
import math
import warnings

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

import fastnn
from fastnn import nn
from fastnn.autograd import gradcheck
from fastnn.nn import functional as F
from conftest import host

few = settings(max_examples=8, suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
REDUCTIONS = ["none", "mean", "sum"]


def T(a, device="cpu", grad=False):
    return fastnn.tensor(np.asarray(a, dtype=np.float64), requires_grad=grad, device=device)


def reduce_ref(losses, reduction):
    return losses if reduction == "none" else losses.sum() if reduction == "sum" else losses.mean()


def rng(seed):
    return np.random.default_rng(seed)


# ---- NumPy references (PyTorch's documented formulas) -------------------------------------------------------
def bce_ref(x, y, w=1.0):
    return -w * (y * np.maximum(np.log(x), -100) + (1 - y) * np.maximum(np.log(1 - x), -100))


def smooth_l1_ref(d, beta):
    return np.where(np.abs(d) < beta, 0.5 * d * d / beta, np.abs(d) - 0.5 * beta)


def huber_ref(d, delta):
    return np.where(np.abs(d) <= delta, 0.5 * d * d, delta * (np.abs(d) - 0.5 * delta))


def kl_ref(x, y, log_target):
    if log_target:
        return np.exp(y) * (y - x)
    return np.where(y > 0, y * (np.log(np.where(y > 0, y, 1)) - x), 0.0)


def cos_ref(a, b):
    return (a * b).sum(-1) / np.sqrt(((a * a).sum(-1) + 1e-12) * ((b * b).sum(-1) + 1e-12))


# ---- worked numbers -------------------------------------------------------------------------------------------
def test_worked_numbers():
    # BCE: x = (0.2, 0.9), y = (0, 1): -(log 0.8 + log 0.9) / 2
    assert F.binary_cross_entropy(T([0.2, 0.9]), T([0.0, 1.0])).item() == pytest.approx(0.16425203348601802,
                                                                                       rel=1e-12)
    # SmoothL1 (beta=1) of d = (0.5, 2): (0.5 * 0.25 + (2 - 0.5)) / 2 = 0.8125; Huber (delta=2) 0.5 d^2: 1.0625
    assert F.smooth_l1_loss(T([0.5, 2.0]), T([0.0, 0.0])).item() == pytest.approx(0.8125)
    assert F.huber_loss(T([0.5, 2.0]), T([0.0, 0.0]), delta=2.0).item() == pytest.approx(1.0625)
    # Huber(delta) == delta * SmoothL1(beta=delta)
    assert F.huber_loss(T([3.0]), T([0.0]), delta=0.5).item() == pytest.approx(0.5 * 2.75)
    # KL(P || Q) with log Q = log(0.5, 0.5), P = (0.25, 0.75), batchmean over 1 sample
    assert F.kl_div(T([[math.log(0.5)] * 2]), T([[0.25, 0.75]]), reduction="batchmean").item() == pytest.approx(
        0.25 * math.log(0.5) + 0.75 * math.log(1.5), rel=1e-12)
    # margin ranking: max(0, -(1 - 2) + 0.5) = 1.5, max(0, -(2 - 1) + 0.5) = 0
    assert F.margin_ranking_loss(T([1.0, 2.0]), T([2.0, 1.0]), T([1.0, 1.0]), margin=0.5).item() == 0.75
    # triplet: d(a, p) = 5, d(a, n) = 1 (eps=0), margin 1: 5 - 1 + 1
    assert F.triplet_margin_loss(T([[0.0, 0.0]]), T([[3.0, 4.0]]), T([[1.0, 0.0]]), eps=0).item() == \
        pytest.approx(5.0)
    # cosine embedding: cos = 1/sqrt(2); y=1: 1 - cos; y=-1, margin .5: cos - .5; mean = 0.25
    assert F.cosine_embedding_loss(T([[1.0, 0.0]] * 2), T([[1.0, 1.0]] * 2), fastnn.tensor([1, -1]),
                                   margin=0.5).item() == pytest.approx(0.25, rel=1e-10)
    # Poisson with full: exp(0) - 0 + (2 log 2 - 2 + 0.5 log(4 pi)), exp(1) - 3 + (3 log 3 - 3 + 0.5 log(6 pi))
    expected = (1 + 2 * math.log(2) - 2 + 0.5 * math.log(4 * math.pi)
                + math.e - 3 + 3 * math.log(3) - 3 + 0.5 * math.log(6 * math.pi)) / 2
    assert F.poisson_nll_loss(T([0.0, 1.0]), T([2.0, 3.0]), full=True).item() == pytest.approx(expected,
                                                                                              rel=1e-12)
    # Gaussian: 0.5 (log 0.5 + 1 / 0.5) and 0.5 (log 2 + 0): mean 0.5
    assert F.gaussian_nll_loss(T([1.0, 2.0]), T([2.0, 2.0]), T([0.5, 2.0])).item() == pytest.approx(0.5)
    # multilabel soft margin: (-log sigmoid(0) - log sigmoid(-1)) / 2 classes
    assert F.multilabel_soft_margin_loss(T([[0.0, 1.0]]), T([[1.0, 0.0]])).item() == pytest.approx(
        (math.log(2) + math.log1p(math.e)) / 2, rel=1e-12)


# ---- against references, over Hypothesis-drawn shapes -----------------------------------------------------------
shapes = st.lists(st.integers(1, 4), min_size=1, max_size=3).map(tuple)


@few
@given(shape=shapes, seed=st.integers(0, 2 ** 16), reduction=st.sampled_from(REDUCTIONS), weighted=st.booleans())
def test_bce_matches_reference(device, shape, seed, reduction, weighted):
    x = rng(seed).uniform(0.02, 0.98, shape)
    y = rng(seed + 1).uniform(0, 1, shape)
    w = rng(seed + 2).uniform(0.5, 2, shape[-1:]) if weighted else None
    out = F.binary_cross_entropy(T(x, device), T(y, device), None if w is None else T(w, device),
                                 reduction=reduction)
    np.testing.assert_allclose(host(out), reduce_ref(bce_ref(x, y, 1.0 if w is None else w), reduction),
                               rtol=1e-12)


@few
@given(shape=shapes, seed=st.integers(0, 2 ** 16), reduction=st.sampled_from(REDUCTIONS),
       beta=st.sampled_from([0.0, 0.5, 1.0, 2.0]))
def test_smooth_l1_and_huber_match_reference(device, shape, seed, reduction, beta):
    x, y = rng(seed).standard_normal(shape) * 2, rng(seed + 1).standard_normal(shape)
    out = F.smooth_l1_loss(T(x, device), T(y, device), reduction=reduction, beta=beta)
    ref = np.abs(x - y) if beta == 0 else smooth_l1_ref(x - y, beta)
    np.testing.assert_allclose(host(out), reduce_ref(ref, reduction), rtol=1e-12)
    if beta:
        out = F.huber_loss(T(x, device), T(y, device), reduction=reduction, delta=beta)
        np.testing.assert_allclose(host(out), reduce_ref(huber_ref(x - y, beta), reduction), rtol=1e-12)


@few
@given(shape=st.lists(st.integers(1, 4), min_size=2, max_size=3).map(tuple), seed=st.integers(0, 2 ** 16),
       reduction=st.sampled_from(REDUCTIONS + ["batchmean"]), log_target=st.booleans())
def test_kl_div_matches_reference(device, shape, seed, reduction, log_target):
    x = np.log(rng(seed).dirichlet(np.ones(shape[-1]), shape[:-1]))
    p = rng(seed + 1).dirichlet(np.ones(shape[-1]), shape[:-1])
    p[..., 0] = 0.0  # a zero probability contributes 0 (xlogy), not NaN
    y = np.log(p + 1e-3) if log_target else p
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # PyTorch's warning on reduction='mean'
        out = F.kl_div(T(x, device), T(y, device), reduction=reduction, log_target=log_target)
    losses = kl_ref(x, y, log_target)
    expected = losses.sum() / shape[0] if reduction == "batchmean" else reduce_ref(losses, reduction)
    np.testing.assert_allclose(host(out), expected, rtol=1e-12, atol=1e-15)


@few
@given(n=st.integers(1, 5), d=st.integers(1, 4), seed=st.integers(0, 2 ** 16), reduction=st.sampled_from(REDUCTIONS),
       margin=st.sampled_from([0.0, 0.3]), swap=st.booleans(), p=st.sampled_from([1, 2]))
def test_pair_and_triplet_losses_match_reference(device, n, d, seed, reduction, margin, swap, p):
    r = rng(seed)
    a, b, c = r.standard_normal((n, d)), r.standard_normal((n, d)), r.standard_normal((n, d))
    s1, s2, sign = r.standard_normal(n), r.standard_normal(n), np.where(r.uniform(size=n) > 0.5, 1.0, -1.0)
    out = F.margin_ranking_loss(T(s1, device), T(s2, device), T(sign, device), margin=margin, reduction=reduction)
    np.testing.assert_allclose(host(out), reduce_ref(np.maximum(0, -sign * (s1 - s2) + margin), reduction),
                               rtol=1e-12)

    def dist(u, v):
        return (np.abs(u - v + 1e-6) ** p).sum(-1) ** (1 / p)
    d_neg = np.minimum(dist(a, c), dist(b, c)) if swap else dist(a, c)
    out = F.triplet_margin_loss(T(a, device), T(b, device), T(c, device), margin=margin + 1, p=p, swap=swap,
                                reduction=reduction)
    np.testing.assert_allclose(host(out), reduce_ref(np.maximum(dist(a, b) - d_neg + margin + 1, 0), reduction),
                               rtol=1e-10)
    labels = sign.astype(np.int64)
    out = F.cosine_embedding_loss(T(a, device), T(b, device), fastnn.tensor(labels, device=device), margin=margin,
                                  reduction=reduction)
    cos = cos_ref(a, b)
    np.testing.assert_allclose(host(out), reduce_ref(np.where(labels == 1, 1 - cos, np.maximum(0, cos - margin)),
                                                     reduction), rtol=1e-10, atol=1e-14)


@few
@given(shape=shapes, seed=st.integers(0, 2 ** 16), reduction=st.sampled_from(REDUCTIONS), log_input=st.booleans(),
       full=st.booleans())
def test_poisson_nll_matches_reference(device, shape, seed, reduction, log_input, full):
    x = rng(seed).uniform(0.1, 2, shape)
    y = rng(seed + 1).integers(0, 5, shape).astype(np.float64)
    out = F.poisson_nll_loss(T(x, device), T(y, device), log_input=log_input, full=full, reduction=reduction)
    losses = np.exp(x) - y * x if log_input else x - y * np.log(x + 1e-8)
    if full:
        safe = np.where(y > 1, y, 1)
        losses = losses + np.where(y > 1, safe * np.log(safe) - safe + 0.5 * np.log(2 * np.pi * safe), 0)
    np.testing.assert_allclose(host(out), reduce_ref(losses, reduction), rtol=1e-12)


@few
@given(n=st.integers(1, 4), d=st.integers(1, 3), seed=st.integers(0, 2 ** 16), reduction=st.sampled_from(REDUCTIONS),
       full=st.booleans(), var_kind=st.sampled_from(["same", "per_sample", "per_sample_kept"]))
def test_gaussian_nll_matches_reference(device, n, d, seed, reduction, full, var_kind):
    r = rng(seed)
    x, y = r.standard_normal((n, d)), r.standard_normal((n, d))
    var = r.uniform(0, 2, (n, d) if var_kind == "same" else (n,) if var_kind == "per_sample" else (n, 1))
    var.flat[0] = 1e-9  # below eps: clamped to eps
    v = var if var_kind != "per_sample" else var[:, None]
    vc = np.maximum(v, 1e-6)
    losses = 0.5 * (np.log(vc) + (x - y) ** 2 / vc) + (0.5 * np.log(2 * np.pi) if full else 0)
    out = F.gaussian_nll_loss(T(x, device), T(y, device), T(var, device), full=full, reduction=reduction)
    np.testing.assert_allclose(host(out), reduce_ref(losses, reduction), rtol=1e-12)


@few
@given(n=st.integers(1, 4), c=st.integers(1, 5), seed=st.integers(0, 2 ** 16), reduction=st.sampled_from(REDUCTIONS),
       weighted=st.booleans())
def test_multilabel_soft_margin_matches_reference(device, n, c, seed, reduction, weighted):
    x = rng(seed).standard_normal((n, c)) * 3
    y = (rng(seed + 1).uniform(size=(n, c)) > 0.5).astype(np.float64)
    w = rng(seed + 2).uniform(0.5, 2, c) if weighted else np.ones(c)
    losses = -(y * -np.logaddexp(0, -x) + (1 - y) * -np.logaddexp(0, x)) * w
    out = F.multilabel_soft_margin_loss(T(x, device), T(y, device), T(w, device) if weighted else None,
                                        reduction=reduction)
    np.testing.assert_allclose(host(out), reduce_ref(losses.sum(1) / c, reduction), rtol=1e-12)


# ---- gradients ------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("reduction", ["none", "mean"])
def test_loss_gradchecks(device, reduction):
    r = rng(3)
    x, y = T(r.uniform(0.1, 0.9, (3, 4)), device, True), T(r.uniform(0, 1, (3, 4)), device, True)
    assert gradcheck(lambda a, b: F.binary_cross_entropy(a, b, reduction=reduction), [x, y])
    a, b = T(r.standard_normal((3, 4)) * 2, device, True), T(r.standard_normal((3, 4)), device, True)
    assert gradcheck(lambda u, v: F.smooth_l1_loss(u, v, reduction=reduction, beta=0.7), [a, b])
    assert gradcheck(lambda u, v: F.huber_loss(u, v, reduction=reduction, delta=0.7), [a, b])
    logq = T(np.log(r.dirichlet(np.ones(4), 3)), device, True)
    p = T(r.dirichlet(np.ones(4), 3), device, True)
    for log_target in (False, True):
        assert gradcheck(lambda u, v: F.kl_div(u, v, reduction="sum" if reduction == "mean" else "none",
                                               log_target=log_target), [logq, p])
    c = T(r.standard_normal((3, 4)), device, True)
    sign = T([1.0, -1.0, 1.0], device)
    s1, s2 = T(r.standard_normal(3), device, True), T(r.standard_normal(3), device, True)
    assert gradcheck(lambda u, v: F.margin_ranking_loss(u, v, sign, margin=0.1, reduction=reduction), [s1, s2])
    assert gradcheck(lambda u, v, w: F.triplet_margin_loss(u, v, w, margin=3.0, swap=True, reduction=reduction),
                     [a, b, c])
    labels = fastnn.tensor(np.array([1, -1, -1]), device=device)
    assert gradcheck(lambda u, v: F.cosine_embedding_loss(u, v, labels, margin=-0.5, reduction=reduction), [a, b])
    rate = T(r.uniform(0.5, 2, (3, 4)), device, True)
    counts = T(r.integers(0, 4, (3, 4)), device)
    assert gradcheck(lambda u: F.poisson_nll_loss(u, counts, log_input=False, full=True, reduction=reduction),
                     [rate])
    var = T(r.uniform(0.5, 2, (3, 1)), device, True)
    assert gradcheck(lambda u, v, s: F.gaussian_nll_loss(u, v, s, reduction=reduction), [a, b, var])
    targets = T((r.uniform(size=(3, 4)) > 0.5).astype(float), device)
    assert gradcheck(lambda u: F.multilabel_soft_margin_loss(u, targets, reduction=reduction), [a])


def test_gaussian_nll_gradient_ignores_the_clamp():
    # PyTorch clamps var under no_grad: below eps the value uses eps, the gradient is still d/dvar of the formula
    var = T([1e-9], grad=True)
    loss = F.gaussian_nll_loss(T([1.0]), T([0.0]), var)
    loss.backward()
    vc = 1e-6
    assert loss.item() == pytest.approx(0.5 * (math.log(vc) + 1 / vc))
    assert host(var.grad)[0] == pytest.approx(0.5 * (1 / vc - 1 / vc ** 2))


# ---- layers, reductions, errors ------------------------------------------------------------------------------
def test_layers_match_functional_and_keep_pytorch_state_dicts():
    r = rng(5)
    x, y = T(r.uniform(0.1, 0.9, (2, 3))), T(r.uniform(0, 1, (2, 3)))
    w = T([1.0, 2.0, 0.5])
    assert nn.BCELoss(weight=w)(x, y).item() == F.binary_cross_entropy(x, y, w).item()
    # PyTorch: BCELoss(weight=w) and MultiLabelSoftMarginLoss(weight=w) hold it as the buffer 'weight'
    assert list(nn.BCELoss(weight=w).state_dict()) == ["weight"]
    assert list(nn.MultiLabelSoftMarginLoss(weight=w).state_dict()) == ["weight"]
    assert nn.BCELoss().state_dict() == {} and nn.KLDivLoss().state_dict() == {}
    assert nn.SmoothL1Loss(beta=0.5)(x, y).item() == F.smooth_l1_loss(x, y, beta=0.5).item()
    assert nn.HuberLoss(delta=0.3, reduction="sum")(x, y).item() == F.huber_loss(x, y, "sum", 0.3).item()
    assert nn.KLDivLoss(reduction="batchmean", log_target=True)(x, y).item() == pytest.approx(
        F.kl_div(x, y, reduction="batchmean", log_target=True).item())
    assert nn.MarginRankingLoss(0.2)(x[0], y[0], T([1.0, -1.0, 1.0])).item() == pytest.approx(
        F.margin_ranking_loss(x[0], y[0], T([1.0, -1.0, 1.0]), 0.2).item())
    assert nn.TripletMarginLoss(p=1.0)(x, y, x * 2).item() == F.triplet_margin_loss(x, y, x * 2, p=1.0).item()
    assert nn.CosineEmbeddingLoss()(x, y, fastnn.tensor([1, -1])).item() == pytest.approx(
        F.cosine_embedding_loss(x, y, fastnn.tensor([1, -1])).item())
    assert nn.PoissonNLLLoss(log_input=False)(x, y).item() == F.poisson_nll_loss(x, y, False).item()
    assert nn.GaussianNLLLoss(full=True)(x, y, x).item() == F.gaussian_nll_loss(x, y, x, full=True).item()
    assert nn.MultiLabelSoftMarginLoss()(x, y).item() == F.multilabel_soft_margin_loss(x, y).item()
    # the deprecated pair decides: size_average=False -> 'sum', reduce=False -> 'none'
    with pytest.warns(DeprecationWarning):
        assert nn.SmoothL1Loss(size_average=False).reduction == "sum"
    with pytest.warns(DeprecationWarning):
        assert nn.BCELoss(reduce=False).reduction == "none"
    with pytest.warns(DeprecationWarning):
        assert F.binary_cross_entropy(x, y, size_average=False).item() == pytest.approx(
            F.binary_cross_entropy(x, y, reduction="sum").item())
    with pytest.warns(UserWarning, match="batchmean"):
        F.kl_div(x, y)
    assert repr(nn.KLDivLoss(reduction="batchmean")) == "KLDivLoss(reduction='batchmean')"


def test_loss_errors():
    x = T([0.5, 0.5])
    with pytest.raises(RuntimeError, match="between 0 and 1"):
        F.binary_cross_entropy(T([1.5, 0.5]), x)
    with pytest.raises(ValueError, match="different to the input size"):
        F.binary_cross_entropy(x, T([0.5]))
    with pytest.raises(RuntimeError, match="negative values for beta"):
        F.smooth_l1_loss(x, x, beta=-1)
    with pytest.raises(RuntimeError, match="non-positive values for delta"):
        F.huber_loss(x, x, delta=0)
    with pytest.raises(ValueError, match="reduction must be one of"):
        F.kl_div(x, x, reduction="average")
    with pytest.raises(ValueError, match="reduction must be one of"):
        nn.SmoothL1Loss(reduction="batchmean")
    with pytest.raises(RuntimeError, match="same dimension"):
        F.margin_ranking_loss(x, T([1.0]), T([1.0, 1.0]))
    with pytest.raises(ValueError, match="margin"):
        nn.TripletMarginLoss(margin=0)
    with pytest.raises(ValueError, match="var is of incorrect size"):
        F.gaussian_nll_loss(T([[1.0, 2.0]]), T([[1.0, 2.0]]), T([[1.0, 2.0, 3.0]]))
    with pytest.raises(ValueError, match="var has negative entry"):
        F.gaussian_nll_loss(x, x, T([1.0, -1.0]))
    with pytest.raises(TypeError, match="floating point"):
        F.binary_cross_entropy(fastnn.tensor([0, 1]), x)


def test_against_torch_if_installed():
    torch = pytest.importorskip("torch")
    r = rng(9)
    a, b = r.standard_normal((4, 3)), r.standard_normal((4, 3))
    tf = torch.nn.functional
    ta, tb = torch.tensor(a), torch.tensor(b)
    assert F.smooth_l1_loss(T(a), T(b), beta=0.5).item() == pytest.approx(tf.smooth_l1_loss(ta, tb, beta=0.5).item())
    assert F.triplet_margin_loss(T(a), T(b), T(a * 2), swap=True).item() == pytest.approx(
        tf.triplet_margin_loss(ta, tb, ta * 2, swap=True).item())
    assert F.cosine_embedding_loss(T(a), T(b), fastnn.tensor([1, -1, 1, -1])).item() == pytest.approx(
        tf.cosine_embedding_loss(ta, tb, torch.tensor([1, -1, 1, -1])).item())


def test_signatures_in_pytorch_order():
    import inspect

    def params(f):
        return list(inspect.signature(f).parameters)
    # PyTorch 2.x's positional order, legacy size_average/reduce included
    assert params(F.cross_entropy) == ["input", "target", "weight", "size_average", "ignore_index", "reduce",
                                       "reduction", "label_smoothing"]
    assert params(F.nll_loss) == ["input", "target", "weight", "size_average", "ignore_index", "reduce", "reduction"]
    assert params(F.mse_loss)[:5] == params(F.l1_loss)[:5] == ["input", "target", "size_average", "reduce",
                                                               "reduction"]
    assert params(F.binary_cross_entropy_with_logits) == ["input", "target", "weight", "size_average", "reduce",
                                                          "reduction", "pos_weight"]
    assert params(F.kl_div) == ["input", "target", "size_average", "reduce", "reduction", "log_target"]
    assert params(F.poisson_nll_loss) == ["input", "target", "log_input", "full", "size_average", "eps", "reduce",
                                          "reduction"]
    assert params(nn.CrossEntropyLoss) == ["weight", "size_average", "ignore_index", "reduce", "reduction",
                                           "label_smoothing"]
    assert params(nn.TripletMarginLoss) == ["margin", "p", "eps", "swap", "size_average", "reduce", "reduction"]


def test_nll_weights_and_ignore_index_everywhere(device):
    # log-probs of 3 samples over 3 classes; targets (0, 2, 1), class weights (1, 2, 3), sample 3 ignored (1)
    logp = np.log(np.array([[0.5, 0.25, 0.25], [0.2, 0.2, 0.6], [0.1, 0.8, 0.1]]))
    lt, t, w = T(logp, device), fastnn.tensor(np.array([0, 2, 1]), device=device), T([1.0, 2.0, 3.0], device)
    # weighted mean: sum_i w[t_i] * -logp[i, t_i] / sum_i w[t_i] over non-ignored i = (log 2 + 3 log(1/0.6)) / 4
    expected = (math.log(2) + 3 * -math.log(0.6)) / 4
    assert F.nll_loss(lt, t, w, ignore_index=1).item() == pytest.approx(expected, rel=1e-12)
    assert F.nll_loss(lt, t, w, None, 1).item() == pytest.approx(expected, rel=1e-12)  # positional, as PyTorch
    assert nn.NLLLoss(weight=w, ignore_index=1)(lt, t).item() == pytest.approx(expected, rel=1e-12)
    # cross_entropy on those log-probs (softmax of a log-softmax is itself) gives the same, spatial (N, C, d) too
    assert nn.CrossEntropyLoss(w, ignore_index=1)(lt, t).item() == pytest.approx(expected, rel=1e-12)
    spatial = T(logp.T[None], device)  # (1, C=3, d=3)
    assert F.nll_loss(spatial, fastnn.tensor(np.array([[0, 2, 1]]), device=device), w,
                      ignore_index=1).item() == pytest.approx(expected, rel=1e-12)
    with pytest.warns(DeprecationWarning):
        summed = nn.NLLLoss(w, size_average=False, ignore_index=1)(lt, t).item()
    assert summed == pytest.approx(expected * 4, rel=1e-12)


def test_a_reduction_passed_where_the_legacy_flag_sits_is_refused():
    x = T([1.0, 2.0])
    with pytest.raises(TypeError, match="size_average must be a bool or None, got 'sum'; pass reduction='sum'"):
        F.mse_loss(x, x, "sum")

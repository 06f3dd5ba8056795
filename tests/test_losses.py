"""Loss functions against straightforward NumPy references, gradients by finite differences, stability, errors."""
import numpy as np
import pytest
from hypothesis import assume, given, strategies as st

import fastnn
from fastnn import nn, ops
from fastnn.autograd import gradcheck

from conftest import DEVICES, host

seeds = st.integers(0, 2 ** 32 - 1)
REDUCTIONS = ["none", "sum", "mean"]


def log_softmax_ref(x, axis=1):
    shifted = x - x.max(axis=axis, keepdims=True)
    return shifted - np.log(np.exp(shifted).sum(axis=axis, keepdims=True))


def cross_entropy_ref(x, target, weight=None, ignore_index=-100, reduction="mean", label_smoothing=0.0):
    """PyTorch's definition, one sample at a time. x: (N, C, *d) float64."""
    n_classes = x.shape[1]
    w = np.ones(n_classes) if weight is None else weight
    logp = np.moveaxis(log_softmax_ref(x), 1, -1).reshape(-1, n_classes)  # one row per sample position
    if target.dtype.kind == "f":
        probs = np.moveaxis(target, 1, -1).reshape(-1, n_classes)
        probs = probs * (1 - label_smoothing) + label_smoothing / n_classes
        losses = np.array([-np.sum(w * p * lp) for p, lp in zip(probs, logp)])
        shape, denom = (x.shape[0],) + x.shape[2:], len(losses)
    else:
        labels = target.reshape(-1)
        losses, denom = [], 0.0
        for lp, t in zip(logp, labels):
            if t == ignore_index:
                losses.append(0.0)
                continue
            nll = -w[t] * lp[t]
            smooth = -np.sum(w * lp) / n_classes
            losses.append((1 - label_smoothing) * nll + label_smoothing * smooth)
            denom += w[t]
        losses, shape = np.array(losses), target.shape
    if reduction == "none":
        return losses.reshape(shape)
    return losses.sum() if reduction == "sum" else losses.sum() / denom


def nll_ref(logp, target, weight=None, ignore_index=-100, reduction="mean"):
    n_classes = logp.shape[1]
    w = np.ones(n_classes) if weight is None else weight
    rows = np.moveaxis(logp, 1, -1).reshape(-1, n_classes)
    labels = target.reshape(-1)
    losses = np.array([0.0 if t == ignore_index else -w[t] * r[t] for r, t in zip(rows, labels)])
    denom = sum(w[t] for t in labels if t != ignore_index)
    if reduction == "none":
        return losses.reshape(target.shape)
    return losses.sum() if reduction == "sum" else losses.sum() / denom


def bce_with_logits_ref(x, y, weight=None, pos_weight=None, reduction="mean"):
    sig = 1 / (1 + np.exp(-x))
    pw = 1.0 if pos_weight is None else pos_weight
    w = 1.0 if weight is None else weight
    losses = -w * (pw * y * np.log(sig) + (1 - y) * np.log(1 - sig))
    return {"none": losses, "sum": losses.sum(), "mean": losses.mean()}[reduction]


def reduce_ref(losses, reduction):
    return {"none": losses, "sum": losses.sum(), "mean": losses.mean()}[reduction]


@st.composite
def ce_case(draw):
    """Logits (N, C, *d) and a class-index target with some positions set to ignore_index."""
    n, c = draw(st.integers(1, 4)), draw(st.integers(2, 5))
    spatial = tuple(draw(st.lists(st.integers(1, 3), max_size=2)))
    seed = draw(seeds)
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((n, c) + spatial) * 2
    target = rng.integers(0, c, size=(n,) + spatial)
    ignore_index = draw(st.sampled_from([-100, 0, 1]))
    if draw(st.booleans()):
        target.reshape(-1)[0] = ignore_index if ignore_index >= 0 else -100
    weight = rng.uniform(0.5, 2.0, c) if draw(st.booleans()) else None
    probs = np.exp(log_softmax_ref(rng.standard_normal(x.shape)))
    return x, target, weight, ignore_index, probs


# ---- cross_entropy --------------------------------------------------------------------------------------------
@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("reduction", REDUCTIONS)
@given(case=ce_case(), label_smoothing=st.sampled_from([0.0, 0.1, 0.35]))
def test_cross_entropy_class_indices(reduction, case, label_smoothing, device):
    x, target, weight, ignore_index, _ = case
    assume(reduction != "mean" or np.any(target != ignore_index))  # all ignored: mean is 0/0
    kwargs = dict(weight=None if weight is None else fastnn.tensor(weight, device=device),
                  ignore_index=ignore_index, reduction=reduction, label_smoothing=label_smoothing)
    xt, tt = fastnn.tensor(x, requires_grad=True, device=device), fastnn.tensor(target, device=device)
    out = ops.cross_entropy(xt, tt, **kwargs)
    expected = cross_entropy_ref(x, target, weight, ignore_index, reduction, label_smoothing)
    assert out.dtype == np.float64 and out.shape == np.shape(expected) and out.device == device
    np.testing.assert_allclose(host(out), expected, rtol=1e-10, atol=1e-12)
    assert gradcheck(lambda t: ops.cross_entropy(t, tt, **kwargs), (xt,))


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("reduction", REDUCTIONS)
@given(case=ce_case(), label_smoothing=st.sampled_from([0.0, 0.2]))
def test_cross_entropy_class_probabilities(reduction, case, label_smoothing, device):
    x, _, weight, _, probs = case
    kwargs = dict(weight=None if weight is None else fastnn.tensor(weight, device=device), reduction=reduction,
                  label_smoothing=label_smoothing)
    xt, pt = fastnn.tensor(x, requires_grad=True, device=device), fastnn.tensor(probs, device=device)
    out = ops.cross_entropy(xt, pt, **kwargs)
    expected = cross_entropy_ref(x, probs, weight, reduction=reduction, label_smoothing=label_smoothing)
    np.testing.assert_allclose(host(out), expected, rtol=1e-10, atol=1e-12)
    assert gradcheck(lambda t: ops.cross_entropy(t, pt, **kwargs), (xt,))


def test_cross_entropy_exact_numbers(device):
    x = fastnn.tensor([[0.0, 0.0], [0.0, np.log(3.0)]], dtype=fastnn.float64, requires_grad=True, device=device)
    target = fastnn.tensor([0, 1], device=device)
    loss = ops.cross_entropy(x, target)
    assert loss.item() == pytest.approx((np.log(2) + np.log(4 / 3)) / 2, rel=1e-12)
    loss.backward()
    np.testing.assert_allclose(x.grad.numpy(), [[-0.25, 0.25], [0.125, -0.125]], rtol=1e-12)


def test_cross_entropy_float32_keeps_dtype_and_module_matches():
    x = fastnn.randn(6, 4)
    target = fastnn.tensor([0, 3, 1, 2, 2, 0])
    weight = fastnn.tensor([1.0, 2.0, 0.5, 1.5])
    loss = ops.cross_entropy(x, target, weight=weight, label_smoothing=0.1)
    assert loss.dtype == np.float32
    expected = cross_entropy_ref(x.numpy().astype(np.float64), target.numpy(), weight.numpy().astype(np.float64),
                                 label_smoothing=0.1)
    assert loss.item() == pytest.approx(expected, rel=1e-5)
    module = nn.CrossEntropyLoss(weight=weight, label_smoothing=0.1)
    assert module(x, target).item() == loss.item()
    assert repr(nn.CrossEntropyLoss()) == "CrossEntropyLoss()"


def test_cross_entropy_all_ignored_sum_is_zero():
    x = fastnn.randn(2, 3, requires_grad=True)
    loss = ops.cross_entropy(x, fastnn.tensor([-100, -100]), reduction="sum")
    assert loss.item() == 0.0
    loss.backward()
    assert np.all(x.grad.numpy() == 0)


@pytest.mark.parametrize("dtype", [fastnn.float32, fastnn.float64])
def test_cross_entropy_stable_for_huge_logits(dtype, device):
    x = fastnn.tensor([[1e4, -1e4, 0.0], [-1e4, 1e4, 1e4], [5e3, -5e3, 1e4]], dtype=dtype, requires_grad=True,
                      device=device)
    target = fastnn.tensor([1, 0, 2], device=device)
    loss = ops.cross_entropy(x, target, reduction="none")
    values = loss.detach().numpy()
    assert np.all(np.isfinite(values))
    np.testing.assert_allclose(values, [2e4, 2e4 + np.log(2), 0.0], rtol=1e-6, atol=1e-6)
    loss.sum().backward()
    assert np.all(np.isfinite(x.grad.numpy()))
    probs = fastnn.tensor([[0.2, 0.3, 0.5]] * 3, dtype=dtype, device=device)
    assert np.isfinite(ops.cross_entropy(x, probs, label_smoothing=0.1).item())


def test_cross_entropy_errors():
    x = fastnn.randn(4, 3)
    with pytest.raises(ValueError, match=r"target must have shape \(4,\).*got \(4, 1\)"):
        ops.cross_entropy(x, fastnn.tensor([[0], [1], [2], [0]]))
    with pytest.raises(ValueError, match=r"target 3 is out of bounds.*\[0, 2\]"):
        ops.cross_entropy(x, fastnn.tensor([0, 1, 3, 0]))
    with pytest.raises(ValueError, match="out of bounds"):
        ops.cross_entropy(x, fastnn.tensor([0, -1, 2, 0]))
    with pytest.raises(ValueError, match=r"probability target must have the input's shape \(4, 3\).*\(4, 2\)"):
        ops.cross_entropy(x, fastnn.rand(4, 2))
    with pytest.raises(ValueError, match=r"\(N, C\)"):
        ops.cross_entropy(fastnn.randn(3), fastnn.tensor([0, 1, 2]))
    with pytest.raises(ValueError, match="reduction"):
        ops.cross_entropy(x, fastnn.tensor([0, 1, 2, 0]), reduction="average")
    with pytest.raises(ValueError, match="label_smoothing"):
        ops.cross_entropy(x, fastnn.tensor([0, 1, 2, 0]), label_smoothing=1.5)
    with pytest.raises(ValueError, match=r"weight.*\(2,\)"):
        ops.cross_entropy(x, fastnn.tensor([0, 1, 2, 0]), weight=fastnn.ones(2))


# ---- nll_loss -------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("reduction", REDUCTIONS)
@given(case=ce_case())
def test_nll_loss(reduction, case, device):
    x, target, weight, ignore_index, _ = case
    assume(reduction != "mean" or np.any(target != ignore_index))
    logp = log_softmax_ref(x)
    kwargs = dict(weight=None if weight is None else fastnn.tensor(weight, device=device),
                  ignore_index=ignore_index, reduction=reduction)
    lt, tt = fastnn.tensor(logp, requires_grad=True, device=device), fastnn.tensor(target, device=device)
    out = ops.nll_loss(lt, tt, **kwargs)
    np.testing.assert_allclose(host(out), nll_ref(logp, target, weight, ignore_index, reduction),
                               rtol=1e-10, atol=1e-12)
    assert gradcheck(lambda t: ops.nll_loss(t, tt, **kwargs), (lt,))


def test_log_softmax_then_nll_equals_cross_entropy():
    x = fastnn.randn(5, 4, dtype=fastnn.float64)
    target = fastnn.tensor([0, 1, 3, 2, 1])
    np.testing.assert_allclose(nn.NLLLoss()(x.log_softmax(1), target).item(), ops.cross_entropy(x, target).item(),
                               rtol=1e-12)


# ---- mse, l1, bce with logits ---------------------------------------------------------------------------------
@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("reduction", REDUCTIONS)
@given(shape=st.lists(st.integers(1, 4), min_size=0, max_size=3).map(tuple), seed=seeds)
def test_mse_and_l1(reduction, shape, seed, device):
    rng = np.random.default_rng(seed)
    x, y = rng.standard_normal(shape), rng.standard_normal(shape)
    xt, yt = (fastnn.tensor(a, requires_grad=True, device=device) for a in (x, y))
    np.testing.assert_allclose(host(ops.mse_loss(xt, yt, reduction=reduction)),
                               reduce_ref((x - y) ** 2, reduction),
                               rtol=1e-12)
    np.testing.assert_allclose(host(ops.l1_loss(xt, yt, reduction=reduction)),
                               reduce_ref(np.abs(x - y), reduction),
                               rtol=1e-12)
    assert gradcheck(lambda a, b: ops.mse_loss(a, b, reduction=reduction), (xt, yt))
    assert gradcheck(lambda a, b: ops.l1_loss(a, b, reduction=reduction), (xt, yt))


def test_mse_l1_modules_and_exact_numbers():
    x = fastnn.tensor([1.0, 2.0, 4.0], requires_grad=True)
    y = fastnn.tensor([1.0, 0.0, 1.0])
    loss = nn.MSELoss()(x, y)
    assert loss.item() == pytest.approx(13 / 3) and loss.dtype == np.float32
    loss.backward()
    np.testing.assert_allclose(x.grad.numpy(), [0.0, 4 / 3, 2.0], rtol=1e-6)
    assert nn.L1Loss(reduction="sum")(x, y).item() == 5.0
    with pytest.raises(ValueError, match=r"input shape \(3,\) and target shape \(2,\)"):
        ops.mse_loss(x, fastnn.ones(2))
    with pytest.raises(ValueError, match="reduction"):
        nn.L1Loss(reduction="max")


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("reduction", REDUCTIONS)
@given(shape=st.lists(st.integers(1, 4), min_size=1, max_size=3).map(tuple), seed=seeds,
       weighted=st.booleans(), pos_weighted=st.booleans())
def test_bce_with_logits(reduction, shape, seed, weighted, pos_weighted, device):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal(shape) * 3
    y = rng.uniform(0, 1, shape)
    w = rng.uniform(0.5, 2, shape[-1:]) if weighted else None
    pw = rng.uniform(0.5, 3, shape[-1:]) if pos_weighted else None
    kwargs = dict(weight=None if w is None else fastnn.tensor(w, device=device), reduction=reduction,
                  pos_weight=None if pw is None else fastnn.tensor(pw, device=device))
    xt, yt = fastnn.tensor(x, requires_grad=True, device=device), fastnn.tensor(y, device=device)
    out = ops.binary_cross_entropy_with_logits(xt, yt, **kwargs)
    np.testing.assert_allclose(host(out), bce_with_logits_ref(x, y, w, pw, reduction), rtol=1e-10)
    assert gradcheck(lambda t: ops.binary_cross_entropy_with_logits(t, yt, **kwargs), (xt,))


@pytest.mark.parametrize("dtype", [fastnn.float32, fastnn.float64])
def test_bce_with_logits_stable_for_huge_logits(dtype, device):
    x = fastnn.tensor([1e4, -1e4, 1e4, -1e4], dtype=dtype, requires_grad=True, device=device)
    y = fastnn.tensor([1.0, 0.0, 0.0, 1.0], dtype=dtype, device=device)
    loss = nn.BCEWithLogitsLoss(reduction="none")(x, y)
    np.testing.assert_allclose(loss.detach().numpy(), [0.0, 0.0, 1e4, 1e4], rtol=1e-6)
    loss.sum().backward()
    np.testing.assert_allclose(x.grad.numpy(), [0.0, 0.0, 1.0, -1.0], atol=1e-7)
    with pytest.raises(ValueError, match=r"target shape \(3,\) differs from input shape \(4,\)"):
        ops.binary_cross_entropy_with_logits(x, fastnn.ones(3, dtype=dtype, device=device))

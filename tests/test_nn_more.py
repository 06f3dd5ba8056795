"""Issue 14, part B: the rest of PyTorch's activations, margin losses, layers and Module API.

Each functional op: forward against a NumPy reference and gradients against finite differences (float64) over
Hypothesis-drawn shapes, on every registered device; facts about PyTorch written into the tests; state_dict keys
and shapes as PyTorch's. With torch installed, a last test compares the same calls number for number."""
import itertools
import math

import numpy as np
import pytest
from hypothesis import assume, given, settings, strategies as st
from hypothesis.extra import numpy as hnp

import fastnn
import fastnn.nn.functional as F
from fastnn import nn, optim
from fastnn.autograd import gradcheck

from conftest import DEVICES, check, host, leaf

seeds = st.integers(0, 2 ** 32 - 1)
shapes = hnp.array_shapes(min_dims=1, max_dims=3, min_side=1, max_side=4)


def away_from(a, kinks, gap=0.05):
    """a with every value within `gap` of a kink moved 2 * gap away, so finite differences never straddle one."""
    for k in kinks:
        a = np.where(np.abs(a - k) < gap, a + 2 * gap, a)
    return a


def sample(shape, seed, scale=2.0, kinks=()):
    return away_from(np.random.default_rng(seed).standard_normal(shape) * scale, kinks)


def t(a, device="cpu", **kw):
    """A tensor of `a`; Python floats become float64, as NumPy makes them."""
    return fastnn.tensor(np.asarray(a), device=device, **kw)


# ---- activations -------------------------------------------------------------------------------------------
def _sigmoid(a):
    return 1 / (1 + np.exp(-a))


# name: (fastnn function, NumPy reference, kinks to keep finite differences away from)
ACTIVATIONS = {
    "hardswish": (F.hardswish, lambda a: a * np.clip(a + 3, 0, 6) / 6, (-3, 3)),
    "hardsigmoid": (F.hardsigmoid, lambda a: np.clip(a / 6 + 0.5, 0, 1), (-3, 3)),
    "hardshrink": (F.hardshrink, lambda a: np.where(np.abs(a) > 0.5, a, 0), (-0.5, 0.5)),
    "hardshrink_1.2": (lambda x: F.hardshrink(x, 1.2), lambda a: np.where(np.abs(a) > 1.2, a, 0), (-1.2, 1.2)),
    "softshrink": (F.softshrink, lambda a: np.where(a > 0.5, a - 0.5, np.where(a < -0.5, a + 0.5, 0)), (-.5, .5)),
    "tanhshrink": (F.tanhshrink, lambda a: a - np.tanh(a), ()),
    "softsign": (F.softsign, lambda a: a / (1 + np.abs(a)), ()),
    "logsigmoid": (F.logsigmoid, lambda a: np.log(_sigmoid(a)), ()),
    "celu": (F.celu, lambda a: np.maximum(a, 0) + np.minimum(0, np.exp(a) - 1), (0,)),
    "celu_0.5": (lambda x: F.celu(x, 0.5), lambda a: np.maximum(a, 0) + np.minimum(0, 0.5 * (np.exp(a / .5) - 1)),
                 (0,)),
    "threshold": (lambda x: F.threshold(x, 0.3, -2.0), lambda a: np.where(a > 0.3, a, -2.0), (0.3,)),
    "rrelu_eval": (F.rrelu, lambda a: np.where(a >= 0, a, a * (1 / 8 + 1 / 3) / 2), (0,)),
    "glu": (F.glu, lambda a: None, ()),  # shape-dependent: tested below
    "softmin": (lambda x: F.softmin(x, -1), lambda a: np.exp(-a) / np.exp(-a).sum(-1, keepdims=True), ()),
}


@pytest.mark.parametrize("name", sorted(n for n in ACTIVATIONS if n != "glu"))
@pytest.mark.parametrize("device", DEVICES)
@given(shape=shapes, seed=seeds)
def test_activation_matches_reference_and_finite_differences(name, shape, seed, device):
    fn, reference, kinks = ACTIVATIONS[name]
    a = sample(shape, seed, kinks=kinks)
    check(fn, (a,), reference(a), device)


@pytest.mark.parametrize("device", DEVICES)
@given(shape=shapes, seed=seeds, pick=st.integers(0, 2), negative=st.booleans())
def test_glu_halves_dim(shape, seed, pick, negative, device):
    axis = pick % len(shape)
    shape = shape[:axis] + (2 * shape[axis],) + shape[axis + 1:]
    dim = axis - len(shape) if negative else axis
    a = sample(shape, seed)
    first, second = np.split(a, 2, axis=dim)
    check(lambda x: F.glu(x, dim), (a,), first * _sigmoid(second), device)


def test_activation_facts_from_pytorch():
    x = t([-4.0, -3.0, 0.0, 3.0, 4.0])
    assert host(F.hardswish(x)).tolist() == [0.0, 0.0, 0.0, 3.0, 4.0]
    assert host(F.hardsigmoid(x)).tolist() == [0.0, 0.0, 0.5, 1.0, 1.0]
    assert host(F.softsign(t([1.0, -3.0]))).tolist() == [0.5, -0.75]
    assert host(F.hardshrink(t([0.5, -0.75]))).tolist() == [0.0, -0.75]   # |x| must exceed lambd
    assert host(F.softshrink(t([1.0, -0.2]))).tolist() == [0.5, 0.0]
    assert F.logsigmoid(t([0.0])).item() == pytest.approx(-math.log(2), abs=1e-15)
    assert F.logsigmoid(t([-1000.0])).item() == -1000.0   # no overflow: log(sigmoid(x)) ~ x far left
    assert F.glu(fastnn.ones(4, 6)).shape == (4, 3)       # dim=-1 by default
    assert nn.GLU()(fastnn.ones(2, 8)).shape == (2, 4)
    assert host(F.threshold(t([0.1, 0.2, 0.3]), 0.2, 20.0)).tolist() == [20.0, 20.0, 0.3]  # x > threshold kept
    # hardswish's derivative is x/3 + 1/2 on [-3, 3] (both ends included) and 0 / 1 outside
    x = t([-3.0, 3.0, -3.5, 3.5], requires_grad=True)
    F.hardswish(x).sum().backward()
    assert host(x.grad).tolist() == [-0.5, 1.5, 0.0, 1.0]


def test_activation_modules_and_their_defaults():
    x = t(np.linspace(-5, 5, 11))
    assert np.allclose(host(nn.Hardswish()(x)), host(F.hardswish(x)))
    assert np.allclose(host(nn.Softshrink(1.5)(x)), host(F.softshrink(x, 1.5)))
    assert nn.Hardshrink().lambd == 0.5 and nn.Softshrink().lambd == 0.5 and nn.CELU().alpha == 1.0
    assert (nn.RReLU().lower, nn.RReLU().upper) == (1 / 8, 1 / 3)
    assert np.allclose(host(nn.Threshold(0.0, -1.0)(x)), np.where(host(x) > 0, host(x), -1.0))
    for module in (nn.Tanhshrink(), nn.Softsign(), nn.LogSigmoid(), nn.Hardsigmoid(), nn.CELU(2.0)):
        assert module(x).shape == x.shape
    assert repr(nn.Softshrink(0.3)) == "Softshrink(0.3)" and repr(nn.GLU()) == "GLU(dim=-1)"
    with pytest.warns(UserWarning, match="Implicit dimension"):
        out = nn.Softmin()(fastnn.ones(2, 3))
    assert np.allclose(host(out), 1 / 3)


def test_softmax2d_normalises_over_channels(device):
    a = np.random.default_rng(0).standard_normal((2, 3, 4, 5))
    out = host(nn.Softmax2d()(t(a, device)))
    assert np.allclose(out, np.exp(a) / np.exp(a).sum(1, keepdims=True))
    assert np.allclose(host(nn.Softmax2d()(t(a[0], device))), out[0])   # unbatched (C, H, W)
    with pytest.raises(ValueError, match="3 or 4 dimensions"):
        nn.Softmax2d()(t(a[0, 0], device))


def test_rrelu_training_draws_one_slope_per_negative_element(device):
    a = -np.abs(np.random.default_rng(1).standard_normal(4000)) - 0.1
    x = leaf(a, device)
    fastnn.manual_seed(3)
    y = F.rrelu(x, 0.1, 0.3, training=True)
    slopes = host(y) / a
    assert slopes.min() >= 0.1 and slopes.max() <= 0.3 and abs(slopes.mean() - 0.2) < 0.005
    assert len(np.unique(slopes)) > 3900                        # independent draws
    y.sum().backward()
    assert np.allclose(host(x.grad), slopes)                    # the gradient is the drawn slope
    fastnn.manual_seed(3)
    assert np.array_equal(host(F.rrelu(t(a, device), 0.1, 0.3, training=True)), host(y))  # fastnn's generator
    positive = t(np.abs(a), device)
    assert np.array_equal(host(nn.RReLU().train()(positive)), np.abs(a))   # x > 0 passes unchanged
    with pytest.raises(ValueError, match="lower bound"):
        F.rrelu(positive, 0.5, 0.1)


@pytest.mark.parametrize("name, args, out_of_place", [
    ("relu_", (), F.relu), ("elu_", (0.7,), F.elu), ("leaky_relu_", (0.2,), F.leaky_relu),
    ("hardtanh_", (-0.5, 0.5), F.hardtanh), ("selu_", (), F.selu), ("celu_", (0.5,), F.celu),
    ("threshold_", (0.1, -3.0), F.threshold)])
def test_inplace_functional_forms_write_into_input_and_backpropagate(name, args, out_of_place, device):
    a = sample((3, 4), 5, kinks=(0, 0.1, -0.5, 0.5))
    x = leaf(a, device)
    y = x * 1.0                                   # a non-leaf: in-place is allowed and recorded
    result = getattr(F, name)(y, *args)
    assert result is y
    expected = out_of_place(leaf(a, device), *args)
    np.testing.assert_allclose(host(y), host(expected), rtol=1e-15)
    y.sum().backward()
    reference = leaf(a, device)
    out_of_place(reference, *args).sum().backward()
    # the ELU family's in-place backward reads the output (f'(x) from f(x), as PyTorch's): a few ulp apart
    np.testing.assert_allclose(host(x.grad), host(reference.grad), rtol=1e-13)
    with pytest.raises(RuntimeError, match="leaf Variable that requires grad"):
        getattr(F, name)(leaf(a, device), *args)
    with pytest.raises(TypeError, match="must be a Tensor"):
        getattr(F, name)([1.0, 2.0], *args)


def test_activation_errors_name_the_argument():
    x = fastnn.ones(3)
    with pytest.raises(ValueError, match="lambd"):
        F.softshrink(x, -1.0)
    with pytest.raises(ValueError, match="alpha"):
        F.celu(x, 0.0)
    with pytest.raises(ValueError, match="halving dimension must be even"):
        F.glu(fastnn.ones(2, 3))
    with pytest.raises(TypeError, match="floating point"):
        F.hardswish(fastnn.tensor([1, 2]))
    with pytest.raises(TypeError, match="threshold must be a real number"):
        F.threshold(x, "a", 1.0)


# ---- margin losses -------------------------------------------------------------------------------------------
def _reduce(values, reduction):
    return values if reduction == "none" else values.sum() if reduction == "sum" else values.mean()


reductions = st.sampled_from(["none", "mean", "sum"])


@pytest.mark.parametrize("device", DEVICES)
@given(shape=shapes, seed=seeds, reduction=reductions, margin=st.floats(0.2, 2.0))
def test_hinge_embedding_loss(shape, seed, reduction, margin, device):
    rng = np.random.default_rng(seed)
    a = away_from(rng.standard_normal(shape), (margin,))
    y = rng.choice([-1.0, 1.0], shape)
    expected = _reduce(np.where(y == 1, a, np.maximum(0, margin - a)), reduction)
    check(lambda x: F.hinge_embedding_loss(x, t(y, device), margin, reduction=reduction), (a,), expected, device)


@pytest.mark.parametrize("device", DEVICES)
@given(shape=shapes, seed=seeds, reduction=reductions)
def test_soft_margin_loss(shape, seed, reduction, device):
    rng = np.random.default_rng(seed)
    a, y = rng.standard_normal(shape) * 3, rng.choice([-1.0, 1.0], shape)
    expected = _reduce(np.log1p(np.exp(-y * a)), reduction)
    check(lambda x: F.soft_margin_loss(x, t(y, device), reduction=reduction), (a,), expected, device)


def _multi_margin_reference(x, y, p, margin, w):
    n, c = x.shape
    losses = np.zeros(n)
    for i in range(n):
        for j in range(c):
            if j != y[i]:
                z = max(0.0, margin - x[i, y[i]] + x[i, j]) ** p
                losses[i] += z * (1 if w is None else w[y[i]])
    return losses / c


@pytest.mark.parametrize("device", DEVICES)
@given(n=st.integers(1, 4), c=st.integers(2, 5), seed=seeds, p=st.sampled_from([1, 2]), weighted=st.booleans(),
       reduction=reductions)
def test_multi_margin_loss(n, c, seed, p, weighted, reduction, device):
    rng = np.random.default_rng(seed)
    # halves plus small noise: every hinge argument 0.8 - x[y] + x[j] stays >= 0.2 away from its kink at 0
    a = rng.integers(-6, 6, (n, c)) / 2 + rng.random((n, c)) * 0.05
    y = rng.integers(0, c, n)
    margin = 0.8
    w = rng.random(c) + 0.5 if weighted else None
    expected = _reduce(_multi_margin_reference(a, y, p, margin, w), reduction)
    check(lambda x: F.multi_margin_loss(x, t(y, device), p, margin, None if w is None else t(w, device),
                                        reduction=reduction), (a,), expected, device)


def _multilabel_margin_reference(x, y):
    n, c = x.shape
    losses = np.zeros(n)
    for i in range(n):
        targets = []
        for k in y[i]:
            if k == -1:
                break
            targets.append(k)
        for j in targets:
            for other in range(c):
                if other not in targets:
                    losses[i] += max(0.0, 1 - (x[i, j] - x[i, other]))
    return losses / c


@pytest.mark.parametrize("device", DEVICES)
@given(n=st.integers(1, 4), c=st.integers(2, 5), seed=seeds, reduction=reductions)
def test_multilabel_margin_loss(n, c, seed, reduction, device):
    rng = np.random.default_rng(seed)
    # steps of 0.4 plus small noise: every hinge argument 1 - (x[j] - x[i]) stays >= 0.15 away from 0
    a = rng.integers(-5, 5, (n, c)) * 0.4 + rng.random((n, c)) * 0.05
    y = np.full((n, c), -1)
    for row in y:
        listed = rng.integers(0, c + 1)
        row[:listed] = rng.permutation(c)[:listed]
        row[listed + 1:] = rng.integers(0, c, max(c - listed - 1, 0))   # after the first -1: ignored
    expected = _reduce(_multilabel_margin_reference(a, y), reduction)
    check(lambda x: F.multilabel_margin_loss(x, t(y, device), reduction=reduction), (a,), expected, device,
          rtol=1e-10, atol=1e-10)


def test_margin_loss_facts_from_pytorch():
    # PyTorch's documented MultiLabelMarginLoss example: 0.85
    loss = nn.MultiLabelMarginLoss()(t([[0.1, 0.2, 0.4, 0.8]]), t([[3, 0, -1, 1]]))
    assert loss.item() == pytest.approx(0.85, abs=1e-12)
    # one sample, 1-D input: MultiMarginLoss([0.1, 0.2, 0.4, 0.8], 3) = (0.3 + 0.4 + 0.6... ) / 4 with margin 1
    x = t([0.1, 0.2, 0.4, 0.8])
    assert nn.MultiMarginLoss()(x, t(3)).item() == pytest.approx((0.3 + 0.4 + 0.6) / 4, abs=1e-12)
    # hinge embedding: target 1 -> x, target -1 -> max(0, margin - x)
    assert F.hinge_embedding_loss(t([0.3, 0.3]), t([1, -1]), reduction="sum").item() == pytest.approx(1.0)
    assert F.soft_margin_loss(t([0.0]), t([1.0])).item() == pytest.approx(math.log(2))


def test_margin_loss_errors():
    with pytest.raises(ValueError, match="only p == 1 and p == 2"):
        nn.MultiMarginLoss(p=3)
    with pytest.raises(ValueError, match=r"target values must lie in \[0, 2\]"):
        F.multi_margin_loss(fastnn.ones(2, 3), t([0, 3]))
    with pytest.raises(TypeError, match="integer class indices"):
        F.multi_margin_loss(fastnn.ones(2, 3), t([0.0, 1.0]))
    with pytest.raises(ValueError, match="target must have the input's shape"):
        F.multilabel_margin_loss(fastnn.ones(2, 3), t([[0, -1]]))
    with pytest.raises(ValueError, match="reduction"):
        F.soft_margin_loss(fastnn.ones(2), fastnn.ones(2), reduction="avg")
    with pytest.raises(ValueError, match="margin must be greater than 0"):
        nn.TripletMarginWithDistanceLoss(margin=0)


def test_triplet_margin_with_distance_loss(device):
    rng = np.random.default_rng(0)
    a, p, n = (rng.standard_normal((5, 4)) for _ in range(3))
    ta, tp, tn = (leaf(v, device) for v in (a, p, n))
    # the default distance is pairwise_distance: the same numbers as triplet_margin_loss
    assert np.allclose(host(F.triplet_margin_with_distance_loss(ta, tp, tn, margin=2.0)),
                       host(F.triplet_margin_loss(ta, tp, tn, margin=2.0)), rtol=1e-15)

    def cosine_distance(x, y):
        return 1.0 - F.cosine_similarity(x, y)

    def cos(x, y):
        return (x * y).sum(1) / np.maximum(np.linalg.norm(x, axis=1) * np.linalg.norm(y, axis=1), 1e-8)
    d_pos, d_neg, d_swap = 1 - cos(a, p), 1 - cos(a, n), 1 - cos(p, n)
    expected = np.maximum(d_pos - np.minimum(d_neg, d_swap) + 0.5, 0).mean()
    loss = nn.TripletMarginWithDistanceLoss(distance_function=cosine_distance, margin=0.5, swap=True)
    check(lambda x, y, z: loss(x, y, z), (a, p, n), expected, device)


def _ctc_brute_force(log_probs, target, blank=0):
    """-log of the summed probability of every path over T steps that collapses (merge repeats, drop blanks)
    to the target: the definition, by enumeration."""
    steps, classes = log_probs.shape
    total = 0.0
    for path in itertools.product(range(classes), repeat=steps):
        collapsed = [c for i, c in enumerate(path) if c != blank and (i == 0 or c != path[i - 1])]
        if collapsed == list(target):
            total += math.exp(sum(log_probs[i, c] for i, c in enumerate(path)))
    return -math.log(total) if total else math.inf


@pytest.mark.parametrize("device", DEVICES)
@settings(max_examples=10)
@given(seed=seeds, steps=st.integers(1, 5), lengths=st.lists(st.integers(0, 3), min_size=1, max_size=3),
       reduction=reductions, blank=st.integers(0, 2))
def test_ctc_loss_against_enumerated_alignments(seed, steps, lengths, reduction, blank, device):
    rng = np.random.default_rng(seed)
    n, classes = len(lengths), 3
    logits = rng.standard_normal((steps, n, classes))
    log_probs = logits - np.log(np.exp(logits).sum(-1, keepdims=True))
    labels = [c for c in range(classes) if c != blank]
    targets = [list(rng.choice(labels, k)) for k in lengths]
    input_lengths = rng.integers(1, steps + 1, n)
    losses = np.array([_ctc_brute_force(log_probs[:input_lengths[i], i], targets[i], blank) for i in range(n)])
    possible = np.isfinite(losses)
    padded = np.array([row + [labels[0]] * (3 - len(row)) for row in targets])
    expected = _reduce(np.where(possible, losses, 0) / (np.maximum(lengths, 1) if reduction == "mean" else 1),
                       reduction)

    def fn(x):
        return F.ctc_loss(x, t(padded, device), t(input_lengths, device), t(lengths, device), blank, reduction,
                          zero_infinity=True)
    check(fn, (log_probs,), expected, device, rtol=1e-10, atol=1e-12)
    # 1-D concatenated targets give the same numbers
    flat = t(np.array(sum(targets, []), np.int64), device)
    same = F.ctc_loss(t(log_probs, device), flat, input_lengths.tolist(), lengths, blank, reduction, True)
    np.testing.assert_allclose(host(same), expected, rtol=1e-10, atol=1e-12)


def test_ctc_loss_facts_and_errors():
    # one step, target [1]: the only path is "1", so the loss is -log p(1); 'mean' divides by the target length
    log_probs = t(np.log([[[0.2, 0.5, 0.3]]]))
    loss = nn.CTCLoss()(log_probs, t([[1]]), [1], [1])
    assert loss.item() == pytest.approx(-math.log(0.5), abs=1e-15)
    impossible = F.ctc_loss(log_probs, t([[1, 2]]), [1], [2], reduction="none")
    assert host(impossible).tolist() == [math.inf]                       # a target longer than its input
    assert F.ctc_loss(log_probs, t([[1, 2]]), [1], [2], zero_infinity=True).item() == 0.0
    unbatched = F.ctc_loss(t(np.log([[0.2, 0.5, 0.3]])), t([1]), 1, 1)
    assert unbatched.item() == pytest.approx(-math.log(0.5), abs=1e-15)
    with pytest.raises(ValueError, match="other than blank=0"):
        F.ctc_loss(log_probs, t([[0]]), [1], [1])
    with pytest.raises(ValueError, match="input_lengths"):
        F.ctc_loss(log_probs, t([[1]]), [2], [1])
    with pytest.raises(TypeError, match="integer class indices"):
        F.ctc_loss(log_probs, t([[1.0]]), [1], [1])


@pytest.mark.parametrize("name", ["mse_loss", "l1_loss", "huber_loss"])
@pytest.mark.parametrize("reduction", ["none", "mean", "sum"])
def test_elementwise_losses_take_weight(name, reduction, device):
    rng = np.random.default_rng(0)
    a, y, w = rng.standard_normal((3, 4)) * 2, rng.standard_normal((3, 4)), rng.random((3, 4)) + 0.1
    a = away_from(a - y, (-1, 0, 1)) + y          # differences away from the kinks of l1 and huber
    d = a - y
    per_element = {"mse_loss": d * d, "l1_loss": np.abs(d),
                   "huber_loss": np.where(np.abs(d) <= 1, 0.5 * d * d, np.abs(d) - 0.5)}[name] * w
    # PyTorch 2.13: 'mean' is sum(w * loss) / sum(w) for mse_loss and l1_loss, mean(w * loss) for huber_loss
    expected = {"none": per_element, "sum": per_element.sum(),
                "mean": per_element.mean() if name == "huber_loss" else per_element.sum() / w.sum()}[reduction]
    check(lambda x, weight: getattr(F, name)(x, t(y, device), reduction=reduction, weight=weight), (a, w), expected,
          device)
    with pytest.raises(ValueError, match="same size"):
        getattr(F, name)(t(a, device), t(y, device), weight=t(w[0], device))


# ---- normalisation layers -------------------------------------------------------------------------------------
@pytest.mark.parametrize("device", DEVICES)
@given(shape=hnp.array_shapes(min_dims=2, max_dims=4, min_side=1, max_side=4), seed=seeds,
       trailing=st.integers(1, 2), weighted=st.booleans())
def test_rms_norm(shape, seed, trailing, weighted, device):
    rng = np.random.default_rng(seed)
    a = rng.standard_normal(shape)
    normalized = shape[-trailing:]
    w = rng.standard_normal(normalized)
    axes = tuple(range(-trailing, 0))
    expected = a / np.sqrt((a * a).mean(axes, keepdims=True) + 1e-6) * (w if weighted else 1)
    if weighted:
        check(lambda x, weight: F.rms_norm(x, normalized, weight, 1e-6), (a, w), expected, device)
    else:
        check(lambda x: F.rms_norm(x, normalized, eps=1e-6), (a,), expected, device)


def test_rms_norm_layer_facts():
    m = nn.RMSNorm([2, 3])
    assert {k: v.shape for k, v in m.state_dict().items()} == {"weight": (2, 3)}   # PyTorch: weight only
    assert list(nn.RMSNorm(3, elementwise_affine=False).state_dict()) == []
    # eps=None is the dtype's machine epsilon: rms of zeros is sqrt(eps), so the output stays 0, not NaN
    assert np.array_equal(host(m(fastnn.zeros(4, 2, 3))), np.zeros((4, 2, 3), np.float32))
    x = np.full((1, 3), 1e-4, np.float32)
    expected = x / np.sqrt(1e-8 + np.finfo(np.float32).eps)
    assert np.allclose(host(nn.RMSNorm(3)(t(x))), expected, rtol=1e-6)
    with pytest.raises(ValueError, match="trailing dimensions"):
        F.rms_norm(fastnn.ones(2, 4), (3,))


@pytest.mark.parametrize("cls, shape", [(nn.InstanceNorm1d, (2, 3, 5)), (nn.InstanceNorm1d, (3, 5)),
                                        (nn.InstanceNorm3d, (2, 3, 2, 3, 2)), (nn.InstanceNorm3d, (3, 2, 2, 3))])
def test_instance_norm_1d_3d(cls, shape, device):
    a = np.random.default_rng(0).standard_normal(shape)
    m = cls(3, affine=True, track_running_stats=True, dtype="float64").to(device)
    spatial = 1 if cls is nn.InstanceNorm1d else 3
    axes = tuple(range(-spatial, 0))
    expected = (a - a.mean(axes, keepdims=True)) / np.sqrt(a.var(axes, keepdims=True) + 1e-5)
    np.testing.assert_allclose(host(m(t(a, device))), expected, rtol=1e-10, atol=1e-10)
    assert {k: v.shape for k, v in m.state_dict().items()} == {
        "weight": (3,), "bias": (3,), "running_mean": (3,), "running_var": (3,), "num_batches_tracked": ()}
    with pytest.raises(ValueError, match="expected"):
        m(t(np.ones((2, 3)), device))


def test_batch_norm_3d(device):
    a = np.random.default_rng(0).standard_normal((4, 3, 2, 2, 3)) * 2 + 1
    m = nn.BatchNorm3d(3, dtype="float64").to(device)
    out = host(m(t(a, device)))
    axes = (0, 2, 3, 4)
    expected = (a - a.mean(axes, keepdims=True)) / np.sqrt(a.var(axes, keepdims=True) + 1e-5)
    np.testing.assert_allclose(out, expected, rtol=1e-10, atol=1e-10)
    np.testing.assert_allclose(host(m.running_mean), 0.1 * a.mean(axes), rtol=1e-10)
    assert list(m.state_dict()) == ["weight", "bias", "running_mean", "running_var", "num_batches_tracked"]
    with pytest.raises(ValueError, match="expected 5D input"):
        m(t(a[0], device))


# ---- linear-family and reshaping layers -----------------------------------------------------------------------
@pytest.mark.parametrize("device", DEVICES)
@given(batch=hnp.array_shapes(min_dims=0, max_dims=2, max_side=3), n1=st.integers(1, 3), n2=st.integers(1, 3),
       out=st.integers(1, 3), seed=seeds)
def test_bilinear(batch, n1, n2, out, seed, device):
    rng = np.random.default_rng(seed)
    x1, x2 = rng.standard_normal(batch + (n1,)), rng.standard_normal(batch + (n2,))
    w, b = rng.standard_normal((out, n1, n2)), rng.standard_normal(out)
    expected = np.einsum("...i,oij,...j->...o", x1, w, x2) + b
    check(F.bilinear, (x1, x2, w, b), expected, device)


def test_bilinear_layer_state_dict_and_init():
    m = nn.Bilinear(20, 30, 40)
    assert {k: v.shape for k, v in m.state_dict().items()} == {"weight": (40, 20, 30), "bias": (40,)}
    bound = 1 / math.sqrt(20)   # PyTorch: U(-1/sqrt(in1_features), 1/sqrt(in1_features)) for both
    w = host(m.weight.detach())
    assert w.min() >= -bound and w.max() <= bound and w.max() > 0.9 * bound
    assert m(fastnn.ones(5, 20), fastnn.ones(5, 30)).shape == (5, 40)
    assert nn.Bilinear(2, 3, 4, bias=False).bias is None
    with pytest.raises(ValueError, match="must match"):
        m(fastnn.ones(5, 21), fastnn.ones(5, 30))


def test_unflatten_channel_shuffle_zero_pad3d(device):
    x = fastnn.arange(24.0, device=device).reshape(2, 12)
    assert nn.Unflatten(1, (3, 4))(x).shape == (2, 3, 4)
    assert repr(nn.Unflatten(1, (3, 4))) == "Unflatten(dim=1, unflattened_size=(3, 4))"
    # ShuffleNet: 6 channels in 2 groups of 3 -> 0, 3, 1, 4, 2, 5
    c = fastnn.arange(6.0, device=device).reshape(1, 6, 1, 1)
    assert host(nn.ChannelShuffle(2)(c)).ravel().tolist() == [0, 3, 1, 4, 2, 5]
    assert host(F.channel_shuffle(c, 3)).ravel().tolist() == [0, 2, 4, 1, 3, 5]
    assert F.native_channel_shuffle is F.channel_shuffle
    with pytest.raises(ValueError, match="divisible by groups"):
        F.channel_shuffle(c, 4)
    a = np.random.default_rng(0).standard_normal((1, 6, 2, 2))
    check(lambda v: F.channel_shuffle(v, 2), (a,), a.reshape(1, 2, 3, 2, 2).transpose(0, 2, 1, 3, 4).reshape(a.shape),
          device)
    padded = nn.ZeroPad3d((1, 0, 2, 0, 0, 1))(fastnn.ones(1, 1, 2, 3, 4, device=device))  # (W, H, D) pairs
    assert padded.shape == (1, 1, 3, 5, 5) and host(padded).sum() == 24
    cube = np.arange(24.0).reshape(1, 2, 3, 4)          # unbatched (C, D, H, W)
    wrapped = host(nn.CircularPad3d(1)(t(cube, device)))
    assert np.array_equal(wrapped, np.pad(cube, ((0, 0), (1, 1), (1, 1), (1, 1)), mode="wrap"))


@pytest.mark.parametrize("device", DEVICES)
@given(n=st.integers(2, 5), m=st.integers(1, 3), seed=seeds, p=st.sampled_from([1.0, 2.0, 3.0, 1.5]))
def test_pdist(n, m, seed, p, device):
    a = np.random.default_rng(seed).standard_normal((n, m))
    i, j = np.triu_indices(n, 1)
    expected = (np.abs(a[i] - a[j]) ** p).sum(1) ** (1 / p)
    check(lambda x: F.pdist(x, p), (a,), expected, device)


def test_pdist_gradient_at_equal_rows_is_zero():
    x = t(np.ones((3, 2)), requires_grad=True)
    F.pdist(x).sum().backward()
    assert np.array_equal(host(x.grad), np.zeros((3, 2)))


def test_gumbel_softmax(device):
    logits = np.log(np.array([0.1, 0.2, 0.3, 0.4]))
    x = t(np.tile(logits, (4000, 1)), device)
    soft = F.gumbel_softmax(x, tau=0.5)
    assert np.allclose(host(soft).sum(1), 1)
    hard = F.gumbel_softmax(x, hard=True)
    values = host(hard)
    assert set(np.unique(values)) == {0.0, 1.0} and np.array_equal(values.sum(1), np.ones(4000))
    frequencies = values.mean(0)                   # argmax of logits + Gumbel noise ~ Categorical(softmax(logits))
    assert np.abs(frequencies - [0.1, 0.2, 0.3, 0.4]).max() < 0.03
    # straight-through: the gradient of the hard sample is the soft sample's
    leaf_logits = leaf(np.random.default_rng(0).standard_normal((3, 5)), device)
    weights = t(np.random.default_rng(1).standard_normal((3, 5)), device)
    fastnn.manual_seed(7)
    (F.gumbel_softmax(leaf_logits, tau=0.7, hard=True, dim=1) * weights).sum().backward()
    hard_grad = host(leaf_logits.grad)
    leaf_logits.grad = None
    fastnn.manual_seed(7)
    (F.gumbel_softmax(leaf_logits, tau=0.7, dim=1) * weights).sum().backward()
    np.testing.assert_allclose(hard_grad, host(leaf_logits.grad), rtol=1e-12)


@pytest.mark.parametrize("device", DEVICES)
@settings(max_examples=10)
@given(seed=seeds, sizes=st.lists(st.integers(0, 3), min_size=1, max_size=4), mode=st.sampled_from(["sum", "mean",
       "max"]), padded=st.booleans(), weighted=st.booleans())
def test_embedding_bag(seed, sizes, mode, padded, weighted, device):
    rng = np.random.default_rng(seed)
    table = rng.standard_normal((6, 3))
    flat = rng.integers(0, 6, sum(sizes))
    offsets = np.concatenate([[0], np.cumsum(sizes)[:-1]]).astype(np.int64)
    padding_idx = 2 if padded else None
    psw = rng.random(flat.size) + 0.5 if weighted and mode == "sum" else None
    expected = np.zeros((len(sizes), 3))
    for b, (start, size) in enumerate(zip(offsets, sizes)):
        members = [i for i in range(start, start + size) if flat[i] != padding_idx]
        if members:
            rows = table[flat[members]] * (psw[members, None] if psw is not None else 1)
            expected[b] = {"sum": rows.sum(0), "mean": rows.mean(0), "max": rows.max(0)}[mode]
    assume((flat != padding_idx).any())        # else no output depends on the table (nothing to differentiate)

    def fn(weight, *per_sample):
        return F.embedding_bag(t(flat, device), weight, t(offsets, device), mode=mode, padding_idx=padding_idx,
                               per_sample_weights=per_sample[0] if per_sample else None)
    check(fn, (table,) if psw is None else (table, psw), expected, device)


def test_embedding_bag_layer_as_in_the_text_classification_tutorial():
    """PyTorch's text classification tutorial: EmbeddingBag(vocab, dim) over concatenated token ids + offsets,
    then a Linear; trained a few steps on two separable 'topics', it learns them."""
    fastnn.manual_seed(0)
    bag = nn.EmbeddingBag(20, 8, mode="mean")
    assert {k: v.shape for k, v in bag.state_dict().items()} == {"weight": (20, 8)}
    assert repr(bag) == "EmbeddingBag(20, 8, mode='mean')"
    fc = nn.Linear(8, 2)
    opt = optim.SGD(list(bag.parameters()) + list(fc.parameters()), lr=2.0)
    rng = np.random.default_rng(0)
    labels = rng.integers(0, 2, 32)
    texts = [rng.integers(0, 10, rng.integers(2, 6)) + 10 * y for y in labels]    # topic y uses ids 10y..10y+9
    tokens = fastnn.tensor(np.concatenate(texts))
    offsets = fastnn.tensor(np.cumsum([0] + [len(x) for x in texts[:-1]]))
    for _ in range(30):
        loss = F.cross_entropy(fc(bag(tokens, offsets)), fastnn.tensor(labels))
        opt.zero_grad()
        loss.backward()
        opt.step()
    assert loss.item() < 0.1
    assert (host(fc(bag(tokens, offsets)).argmax(1)) == labels).all()
    with pytest.raises(NotImplementedError, match="only supported for mode='sum'"):
        bag(tokens, offsets, per_sample_weights=fastnn.ones(len(tokens)))
    with pytest.raises(ValueError, match="offsets"):
        bag(tokens, fastnn.tensor([1, 3]))


# ---- channel dropouts ---------------------------------------------------------------------------------------
@pytest.mark.parametrize("layer, shape", [(nn.Dropout1d, (8, 16, 5)), (nn.Dropout1d, (16, 5)),
                                          (nn.Dropout3d, (4, 16, 2, 2, 3)), (nn.Dropout3d, (16, 2, 2, 3))])
def test_channel_dropout_drops_whole_channels(layer, shape, device):
    m = layer(p=0.25)
    out = host(m(fastnn.ones(*shape, device=device)))
    channels = out.reshape(out.shape[:len(shape) - (1 if layer is nn.Dropout1d else 3)] + (-1,))
    assert np.isin(channels, [0.0, np.float32(1 / 0.75)]).all()
    assert (channels.min(-1) == channels.max(-1)).all()          # a channel is all kept or all dropped
    assert 0.05 < (channels[..., 0] == 0).mean() < 0.5
    assert np.array_equal(host(m.eval()(fastnn.ones(*shape, device=device))), np.ones(shape))
    with pytest.raises(ValueError, match="input"):
        m.train()(fastnn.ones(3, device=device))


def test_feature_alpha_dropout(device):
    m = nn.FeatureAlphaDropout(0.4)
    x = np.random.default_rng(0).standard_normal((400, 8, 3, 3))
    out = host(m(t(x, device)))
    a = 1 / math.sqrt((1.7580993408473766 ** 2 * 0.4 + 1) * 0.6)
    dropped_value = -a * 1.7580993408473766 * 0.6           # PyTorch's alpha dropout constants
    kept = a * (x + 1.7580993408473766 * 0.4)
    per_channel = np.isclose(out, dropped_value).all(axis=(2, 3))
    assert 0.3 < per_channel.mean() < 0.5
    np.testing.assert_allclose(out[~per_channel], kept[~per_channel], rtol=1e-12)
    assert np.array_equal(host(m.eval()(t(x, device))), x)
    # standard-normal input keeps (about) zero mean and unit variance: the point of alpha dropout
    assert abs(out.mean()) < 0.05 and abs(out.std() - 1) < 0.05


# ---- pooling ------------------------------------------------------------------------------------------------
def test_with_indices_forms_equal_return_indices(device):
    x = t(np.random.default_rng(0).standard_normal((2, 3, 6, 7)), device)
    for with_indices, plain, args in [(F.max_pool2d_with_indices, F.max_pool2d, (3, 2, 1)),
                                      (F.adaptive_max_pool2d_with_indices, F.adaptive_max_pool2d, ((3, 2),))]:
        out, idx = with_indices(x, *args)
        ref_out, ref_idx = plain(x, *args, return_indices=True)
        assert np.array_equal(host(out), host(ref_out)) and np.array_equal(host(idx), host(ref_idx))
    x1 = x.reshape(2, 3, 42)
    assert np.array_equal(host(F.max_pool1d_with_indices(x1, 4)[1]), host(F.max_pool1d(x1, 4, return_indices=True)[1]))


@pytest.mark.parametrize("spatial, shape, kernel, stride, padding", [
    (1, (2, 3, 9), 3, 2, 1), (2, (2, 2, 6, 7), 2, 2, 0), (2, (3, 5, 5), 3, 2, 1), (3, (1, 2, 4, 4, 5), 2, None, 0)])
def test_max_unpool_inverts_max_pool(spatial, shape, kernel, stride, padding, device):
    a = np.random.default_rng(0).standard_normal(shape)
    pool = (F.max_pool1d, F.max_pool2d, F.max_pool3d)[spatial - 1]
    unpool = (F.max_unpool1d, F.max_unpool2d, F.max_unpool3d)[spatial - 1]
    out, idx = pool(t(a, device), kernel, stride, padding, return_indices=True)
    restored = unpool(out, idx, kernel, stride, padding, output_size=shape[-spatial:])
    assert restored.shape == shape
    # every pooled maximum back at its place, zeros elsewhere
    expected = np.zeros(shape).reshape(-1, int(np.prod(shape[-spatial:])))
    np.put_along_axis(expected, host(idx).reshape(expected.shape[0], -1), host(out).reshape(expected.shape[0], -1), 1)
    np.testing.assert_array_equal(host(restored), expected.reshape(shape))
    rows = host(idx).reshape(expected.shape[0], -1)
    if all(len(set(r)) == len(r) for r in rows):   # overlapping windows may share a maximum: no gradient then
        check(lambda v: unpool(v, idx, kernel, stride, padding, output_size=shape[-spatial:]), (host(out),),
              expected.reshape(shape), device)
    layer = (nn.MaxUnpool1d, nn.MaxUnpool2d, nn.MaxUnpool3d)[spatial - 1](kernel, stride, padding)
    np.testing.assert_array_equal(host(layer(out, idx, output_size=shape)), expected.reshape(shape))


def test_max_unpool_default_size_and_errors():
    out, idx = F.max_pool2d(fastnn.randn(1, 1, 4, 4), 2, return_indices=True)
    assert F.max_unpool2d(out, idx, 2).shape == (1, 1, 4, 4)    # (in - 1) * stride - 2 * padding + kernel
    with pytest.raises(ValueError, match="outside the output plane"):
        F.max_unpool2d(out, idx + 100, 2)
    with pytest.raises(TypeError, match="integer Tensor"):
        F.max_unpool2d(out, idx.float(), 2)
    with pytest.raises(ValueError, match="input's shape"):
        F.max_unpool2d(out, idx[..., :1], 2)


# each example runs a gradcheck of many small parallel kernel calls: a few examples cover the shapes
@pytest.mark.parametrize("device", DEVICES)
@settings(max_examples=8)
@given(h=st.integers(2, 6), w=st.integers(2, 6), seed=seeds, p=st.sampled_from([1.0, 2.0, 3.0]))
def test_lp_pool2d(h, w, seed, p, device):
    a = np.abs(np.random.default_rng(seed).standard_normal((2, 2, h, w))) + 0.2
    oh, ow = h // 2, w // 2
    blocks = a[:, :, :2 * oh, :2 * ow].reshape(2, 2, oh, 2, ow, 2)
    expected = ((blocks ** p).sum((3, 5))) ** (1 / p)
    check(lambda x: F.lp_pool2d(x, p, 2), (a,), expected, device, rtol=1e-10, atol=1e-12)


def test_lp_pool_layers(device):
    a = np.abs(np.random.default_rng(0).standard_normal((2, 3, 8))) + 0.1
    expected = np.sqrt((a.reshape(2, 3, 2, 4) ** 2).sum(-1))
    np.testing.assert_allclose(host(nn.LPPool1d(2, 4)(t(a, device))), expected, rtol=1e-12)
    a3 = np.abs(np.random.default_rng(1).standard_normal((1, 2, 4, 4, 4))) + 0.1
    expected3 = (a3.reshape(1, 2, 2, 2, 2, 2, 2, 2) ** 3).sum((3, 5, 7)) ** (1 / 3)
    np.testing.assert_allclose(host(nn.LPPool3d(3, 2)(t(a3, device))), expected3, rtol=1e-12)
    assert repr(nn.LPPool2d(2, 3)) == "LPPool2d(norm_type=2, kernel_size=3, stride=None, ceil_mode=False)"


def _adaptive_reference(a, sizes, reduce):
    """PyTorch's adaptive regions: [floor(i * n / o), ceil((i + 1) * n / o)) along each spatial axis."""
    out = np.empty(a.shape[:-3] + tuple(sizes))
    d, h, w = a.shape[-3:]
    for i in range(sizes[0]):
        for j in range(sizes[1]):
            for k in range(sizes[2]):
                region = a[..., i * d // sizes[0]:-(-(i + 1) * d // sizes[0]),
                           j * h // sizes[1]:-(-(j + 1) * h // sizes[1]),
                           k * w // sizes[2]:-(-(k + 1) * w // sizes[2])]
                out[..., i, j, k] = reduce(region.reshape(region.shape[:-3] + (-1,)), axis=-1)
    return out


@pytest.mark.parametrize("device", DEVICES)
@settings(max_examples=8)
@given(dims=st.tuples(st.integers(1, 4), st.integers(1, 4), st.integers(1, 4)),
       out=st.tuples(st.integers(1, 3), st.integers(1, 3), st.integers(1, 3)), seed=seeds, batched=st.booleans())
def test_adaptive_pool3d(dims, out, seed, batched, device):
    # one plane per example keeps the two gradchecks (2 * size forward calls each) short
    shape = ((1,) if batched else ()) + (1,) + dims
    a = np.random.default_rng(seed).standard_normal(shape)
    check(lambda x: F.adaptive_avg_pool3d(x, out), (a,), _adaptive_reference(a, out, np.mean), device)
    # distinct values: the max is unique, so its gradient is well defined
    a = np.random.default_rng(seed).permutation(a.size).reshape(shape) / 7.0
    check(lambda x: F.adaptive_max_pool3d(x, out), (a,), _adaptive_reference(a, out, np.max), device)


def test_adaptive_pool3d_layers():
    x = fastnn.randn(2, 3, 4, 5, 6)
    for fn, reduce in ((F.adaptive_avg_pool3d, np.mean), (F.adaptive_max_pool3d, np.max)):   # several planes
        np.testing.assert_allclose(host(fn(x, (3, 2, 4))), _adaptive_reference(host(x), (3, 2, 4), reduce),
                                   rtol=1e-5, atol=1e-6)
    assert nn.AdaptiveAvgPool3d((2, None, 3))(x).shape == (2, 3, 2, 5, 3)
    assert nn.AdaptiveMaxPool3d(1)(x).shape == (2, 3, 1, 1, 1)
    with pytest.raises(NotImplementedError, match="return_indices"):
        nn.AdaptiveMaxPool3d(1, return_indices=True)(x)


# ---- spatial transformer: affine_grid + grid_sample -----------------------------------------------------------
def _grid_sample_reference(image, grid, mode, padding_mode, align_corners):
    n, c, h, w = image.shape
    out = np.zeros((n, c) + grid.shape[1:3])

    def pixel(coord, size):
        p = (coord + 1) / 2 * (size - 1) if align_corners else ((coord + 1) * size - 1) / 2
        return np.clip(p, 0, size - 1) if padding_mode == "border" else p

    def read(b, y, x):
        return image[b, :, y, x] if 0 <= y < h and 0 <= x < w else np.zeros(c)
    for b in range(n):
        for i in range(grid.shape[1]):
            for j in range(grid.shape[2]):
                x, y = pixel(grid[b, i, j, 0], w), pixel(grid[b, i, j, 1], h)
                if mode == "nearest":
                    out[b, :, i, j] = read(b, int(np.rint(y)), int(np.rint(x)))
                    continue
                x0, y0 = int(np.floor(x)), int(np.floor(y))
                fx, fy = x - x0, y - y0
                out[b, :, i, j] = ((1 - fx) * (1 - fy) * read(b, y0, x0) + fx * (1 - fy) * read(b, y0, x0 + 1)
                                   + (1 - fx) * fy * read(b, y0 + 1, x0) + fx * fy * read(b, y0 + 1, x0 + 1))
    return out


@pytest.mark.parametrize("mode", ["bilinear", "nearest"])
@pytest.mark.parametrize("padding_mode", ["zeros", "border"])
@pytest.mark.parametrize("align_corners", [False, True])
@pytest.mark.parametrize("device", DEVICES)
@settings(max_examples=8)
@given(seed=seeds, size=st.tuples(st.integers(1, 4), st.integers(1, 4)),
       out=st.tuples(st.integers(1, 3), st.integers(1, 3)))
def test_grid_sample(mode, padding_mode, align_corners, seed, size, out, device):
    rng = np.random.default_rng(seed)
    image = rng.standard_normal((2, 2) + size)
    grid = rng.uniform(-1.2, 1.2, (2,) + out + (2,))
    expected = _grid_sample_reference(image, grid, mode, padding_mode, align_corners)
    if mode == "nearest":                # piecewise constant: check values and the input's gradient only
        inputs = [leaf(image, device)]
        fn = lambda x: F.grid_sample(x, t(grid, device), mode, padding_mode, align_corners)  # noqa: E731
        np.testing.assert_allclose(host(fn(*inputs)), expected, rtol=1e-12, atol=1e-12)
        assert gradcheck(fn, inputs)
        return
    # keep sample positions off pixel boundaries (where bilinear weights have kinks) for finite differences
    h, w = size
    for axis, n in ((0, w), (1, h)):
        p = (grid[..., axis] + 1) / 2 * (n - 1) if align_corners else ((grid[..., axis] + 1) * n - 1) / 2
        near = np.abs(p - np.rint(p)) < 0.05
        grid[..., axis] += np.where(near, 0.2 / n, 0)
    expected = _grid_sample_reference(image, grid, mode, padding_mode, align_corners)
    check(lambda x, g: F.grid_sample(x, g, mode, padding_mode, align_corners), (image, grid), expected, device,
          rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("align_corners", [False, True])
def test_affine_grid_identity_reproduces_the_image(align_corners, device):
    image = np.random.default_rng(0).standard_normal((2, 3, 5, 4))
    theta = np.tile(np.array([[1.0, 0, 0], [0, 1.0, 0]]), (2, 1, 1))
    grid = F.affine_grid(t(theta, device), (2, 3, 5, 4), align_corners=align_corners)
    assert grid.shape == (2, 5, 4, 2)
    # PyTorch's base grid: x along W, y along H; -1 and 1 at the corner pixels' centres or at the image edges
    xs = np.linspace(-1, 1, 4) * (1 if align_corners else 3 / 4)
    assert np.allclose(host(grid)[0, 0, :, 0], xs) and np.allclose(host(grid)[0, :, 0, 1],
                                                                   np.linspace(-1, 1, 5) * (1 if align_corners else .8))
    out = F.grid_sample(t(image, device), grid, align_corners=align_corners)
    np.testing.assert_allclose(host(out), image, rtol=1e-12, atol=1e-12)


def test_affine_grid_is_differentiable_in_theta(device):
    theta = np.random.default_rng(0).standard_normal((2, 2, 3))
    ys, xs = np.meshgrid(np.linspace(-1, 1, 3) * 2 / 3, np.linspace(-1, 1, 4) * 3 / 4, indexing="ij")
    base = np.stack([xs, ys, np.ones_like(xs)], -1)                     # (H, W, 3)
    expected = np.einsum("hwk,njk->nhwj", base, theta)
    check(lambda th: F.affine_grid(th, (2, 1, 3, 4), align_corners=False), (theta,), expected, device)
    theta3 = np.random.default_rng(1).standard_normal((1, 3, 4))
    assert F.affine_grid(t(theta3, device), (1, 1, 2, 3, 4)).shape == (1, 2, 3, 4, 3)
    with pytest.raises(ValueError, match="theta of shape"):
        F.affine_grid(t(theta3, device), (1, 1, 3, 4))


def test_spatial_transformer_end_to_end(device):
    """The spatial transformer tutorial's pattern: a localisation net predicts theta, grid_sample warps the image,
    and the loss trains theta's producer (gradients through both functions)."""
    fastnn.manual_seed(0)
    loc = nn.Linear(16, 6).to(device)
    nn.init.zeros_(loc.weight)
    with fastnn.no_grad():
        loc.bias.copy_(fastnn.tensor([1.0, 0, 0, 0, 1.0, 0], device=device))
    image = fastnn.randn(4, 1, 4, 4, device=device)
    theta = loc(image.reshape(4, 16)).reshape(4, 2, 3)
    warped = F.grid_sample(image, F.affine_grid(theta, (4, 1, 4, 4), align_corners=False), align_corners=False)
    assert np.allclose(host(warped), host(image), atol=1e-5)            # identity transform at init
    ((warped - image.flip(-1)) ** 2).mean().backward()
    assert loc.bias.grad is not None and float(loc.bias.grad.abs().sum()) > 0


def test_grid_sample_errors():
    x, g = fastnn.ones(1, 1, 3, 3), fastnn.zeros(1, 2, 2, 2)
    with pytest.raises(NotImplementedError, match="mode"):
        F.grid_sample(x, g, mode="bicubic")
    with pytest.raises(ValueError, match="padding_mode"):
        F.grid_sample(x, g, padding_mode="wrap")
    with pytest.raises(ValueError, match="grid of shape"):
        F.grid_sample(x, fastnn.zeros(2, 2, 2, 2))
    with pytest.raises(TypeError, match="dtype"):
        F.grid_sample(x, g.double())


# ---- lazy modules -------------------------------------------------------------------------------------------
@pytest.mark.parametrize("optimizer_first", [True, False])
def test_lazy_modules_materialize_on_first_forward(optimizer_first):
    model = nn.Sequential(nn.LazyConv2d(4, 3, padding=1), nn.ReLU(), nn.Flatten(), nn.LazyLinear(2))
    assert isinstance(model[0].weight, nn.UninitializedParameter)
    if optimizer_first:          # PyTorch materialises the same tensors in place: an optimizer built now works
        opt = optim.SGD(model.parameters(), lr=0.1)
    x = fastnn.randn(3, 5, 6, 6)
    model(x)
    if not optimizer_first:
        opt = optim.SGD(model.parameters(), lr=0.1)
    assert type(model[0]) is nn.Conv2d and type(model[3]) is nn.Linear      # PyTorch's cls_to_become
    assert model[0].in_channels == 5 and model[3].in_features == 4 * 36
    assert {k: v.shape for k, v in model.state_dict().items()} == {
        "0.weight": (4, 5, 3, 3), "0.bias": (4,), "3.weight": (2, 144), "3.bias": (2,)}
    bound = 1 / math.sqrt(5 * 9)      # the plain layer's default init ran with the real fan-in
    w = host(model[0].weight.detach())
    assert w.max() <= bound and w.max() > 0.5 * bound
    before = host(model[3].weight.detach()).copy()
    model(x).sum().backward()
    opt.step()
    assert not np.array_equal(host(model[3].weight.detach()), before)


def test_lazy_conv_variants():
    assert nn.LazyConv1d(4, 3)(fastnn.randn(2, 6, 9)).shape == (2, 4, 7)
    m = nn.LazyConvTranspose2d(6, 3, stride=2, groups=2)
    assert m(fastnn.randn(1, 4, 5, 5)).shape == (1, 6, 11, 11) and m.weight.shape == (4, 3, 3, 3)
    assert nn.LazyConv3d(2, 1, bias=False)(fastnn.randn(3, 2, 2, 2)).shape == (2, 2, 2, 2)   # unbatched
    with pytest.raises(ValueError, match="divisible by groups"):
        nn.LazyConv2d(4, 3, groups=2)(fastnn.randn(1, 3, 5, 5))


@pytest.mark.parametrize("lazy, plain, shape", [
    (nn.LazyBatchNorm1d, nn.BatchNorm1d, (4, 3)), (nn.LazyBatchNorm2d, nn.BatchNorm2d, (2, 3, 4, 4)),
    (nn.LazyBatchNorm3d, nn.BatchNorm3d, (2, 3, 2, 2, 2)), (nn.LazyInstanceNorm1d, nn.InstanceNorm1d, (2, 3, 5)),
    (nn.LazyInstanceNorm2d, nn.InstanceNorm2d, (3, 4, 4)), (nn.LazyInstanceNorm3d, nn.InstanceNorm3d, (1, 3, 2, 2, 2))])
def test_lazy_norms_take_num_features_from_the_first_input(lazy, plain, shape):
    m = lazy()
    assert isinstance(m.weight, nn.UninitializedParameter) and isinstance(m.running_mean, nn.UninitializedBuffer)
    x = fastnn.randn(*shape)
    out = m(x)
    # PyTorch's lazy norms default to affine=True, track_running_stats=True (the instance norms too)
    reference = plain(3, affine=True, track_running_stats=True)
    np.testing.assert_allclose(host(out), host(reference(x)), rtol=1e-5, atol=1e-6)
    assert type(m) is plain and m.num_features == 3
    assert {k: v.shape for k, v in m.state_dict().items()} == {k: v.shape for k, v in reference.state_dict().items()}
    np.testing.assert_allclose(host(m.running_var), host(reference.running_var), rtol=1e-6)


# ---- Transformer --------------------------------------------------------------------------------------------
def test_transformer_state_dict_layout_is_pytorchs():
    m = nn.Transformer(d_model=8, nhead=2, num_encoder_layers=2, num_decoder_layers=1, dim_feedforward=16)
    sd = {k: v.shape for k, v in m.state_dict().items()}
    # facts from torch.nn.Transformer(8, 2, 2, 1, 16).state_dict(): 12 keys per encoder layer, 18 per decoder
    # layer, and the two final norms
    assert len(sd) == 2 * 12 + 18 + 4
    assert sd["encoder.layers.0.self_attn.in_proj_weight"] == (24, 8)
    assert sd["encoder.layers.1.linear1.weight"] == (16, 8)
    assert sd["decoder.layers.0.multihead_attn.out_proj.weight"] == (8, 8)
    assert sd["decoder.layers.0.norm3.bias"] == (8,)
    assert sd["encoder.norm.weight"] == (8,) and sd["decoder.norm.bias"] == (8,)


def test_transformer_forward_and_causal_mask():
    fastnn.manual_seed(0)
    m = nn.Transformer(8, 2, 1, 2, 16, dropout=0.0, batch_first=True, dtype="float64")
    mask = nn.Transformer.generate_square_subsequent_mask(5, dtype="float64")
    assert np.array_equal(host(mask), np.triu(np.full((5, 5), -np.inf), 1))
    src = fastnn.randn(2, 6, 8, dtype="float64")
    tgt = host(fastnn.randn(2, 5, 8, dtype="float64"))
    out = host(m(src, t(tgt), tgt_mask=mask))
    assert out.shape == (2, 5, 8)
    changed = tgt.copy()
    changed[:, 3:] += 1.0                         # future target tokens do not change earlier outputs
    out2 = host(m(src, t(changed), tgt_mask=mask))
    np.testing.assert_allclose(out2[:, :3], out[:, :3], rtol=1e-12, atol=1e-12)
    assert not np.allclose(out2[:, 3:], out[:, 3:])
    with pytest.raises(RuntimeError, match="batch number"):
        m(src, t(tgt[:1]))


# ---- Module API ---------------------------------------------------------------------------------------------
def test_forward_hooks_with_kwargs_prepend_and_always_call():
    class Scale(nn.Module):
        def forward(self, x, factor=1.0):
            return x * factor
    m, order = Scale(), []
    m.register_forward_pre_hook(lambda mod, args, kwargs: (args, {"factor": kwargs.get("factor", 1.0) * 3}),
                                with_kwargs=True)
    m.register_forward_hook(lambda mod, args, out: order.append("second"))
    m.register_forward_hook(lambda mod, args, out: order.append("first"), prepend=True)
    handle = m.register_forward_hook(lambda mod, args, kwargs, out: out + kwargs["factor"], with_kwargs=True)
    assert m(fastnn.ones(2), factor=2.0).tolist() == [12.0, 12.0]       # 1 * 6, then + 6
    assert order == ["first", "second"]
    handle.remove()
    assert m(fastnn.ones(2)).tolist() == [3.0, 3.0]
    seen = []
    m.register_forward_hook(lambda mod, args, out: seen.append(out), always_call=True)
    m.register_forward_pre_hook(lambda mod, args: ("not a tensor",))
    with pytest.raises(TypeError):
        m(fastnn.ones(2))
    assert seen == [None]                      # called although forward raised


def test_full_backward_pre_hook_rescales_grad_output():
    lin = nn.Linear(3, 2, dtype="float64")
    x = leaf(np.ones((1, 3)))
    seen = []

    def hook(module, grad_output):
        seen.append(host(grad_output[0]).copy())
        return (grad_output[0] * 10,)
    handle = lin.register_full_backward_pre_hook(hook)
    lin(x).sum().backward()
    assert np.array_equal(seen[0], np.ones((1, 2)))
    np.testing.assert_allclose(host(x.grad), 10 * host(lin.weight.detach()).sum(0, keepdims=True))
    handle.remove()
    x.grad = None
    lin(x).sum().backward()
    np.testing.assert_allclose(host(x.grad), host(lin.weight.detach()).sum(0, keepdims=True))


def test_load_state_dict_assign_and_post_hook():
    m = nn.Sequential(nn.Linear(2, 3), nn.BatchNorm1d(3))
    m[0].weight.requires_grad_(False)
    source = {k: v.clone() + 1 for k, v in m.state_dict().items()}
    seen = []
    m.register_load_state_dict_post_hook(lambda module, keys: seen.append(keys))
    keys = m.load_state_dict(source, assign=True)
    assert keys.missing_keys == [] and keys.unexpected_keys == [] and seen == [keys]
    assert isinstance(m[0].weight, nn.Parameter) and m[0].weight.requires_grad is False
    assert isinstance(m[0].bias, nn.Parameter) and m[0].bias.requires_grad is True
    source["0.bias"]._data[...] = 7             # assign shares the given tensors' storage
    assert host(m[0].bias.detach()).tolist() == [7.0, 7.0, 7.0]
    assert m[1].running_mean is source["1.running_mean"]
    assert m.get_parameter("1.weight") is m[1].weight and m.get_buffer("1.num_batches_tracked").shape == ()
    with pytest.raises(AttributeError, match="no parameter"):
        m.get_parameter("1.running_mean")


def test_to_empty_reallocates_every_tensor():
    m = nn.Linear(3, 2)
    old = m.weight._data
    assert m.to_empty(device="cpu") is m
    assert m.weight._data is not old and m.weight.shape == (2, 3) and m.weight.dtype == np.float32


# ---- init ---------------------------------------------------------------------------------------------------
def test_dirac_init_is_the_identity_convolution():
    w = fastnn.empty(3, 3, 3, 3)
    nn.init.dirac_(w)
    x = fastnn.randn(2, 3, 5, 5)
    np.testing.assert_allclose(host(F.conv2d(x, w, padding=1)), host(x), rtol=1e-6)
    grouped = fastnn.empty(4, 2, 3)
    nn.init.dirac_(grouped, groups=2)          # PyTorch: out channel g * 2 + d reads in channel d of its group
    expected = np.zeros((4, 2, 3))
    expected[[0, 1, 2, 3], [0, 1, 0, 1], 1] = 1
    assert np.array_equal(host(grouped), expected)
    with pytest.raises(ValueError, match="3, 4, or 5 dimensions"):
        nn.init.dirac_(fastnn.empty(3, 3))


def test_sparse_init():
    w = fastnn.empty(20, 6)
    nn.init.sparse_(w, 0.25, std=0.5, generator=np.random.default_rng(0))
    values = host(w)
    assert ((values == 0).sum(0) == 5).all()           # ceil(0.25 * 20) zeros per column
    assert 0.3 < values[values != 0].std() < 0.7
    again = fastnn.empty(20, 6)
    nn.init.sparse_(again, 0.25, std=0.5, generator=np.random.default_rng(0))
    assert np.array_equal(host(again), values)
    with pytest.raises(ValueError, match="2 dimensions"):
        nn.init.sparse_(fastnn.empty(2, 2, 2), 0.1)


# ---- the same numbers as PyTorch, where torch is installed ------------------------------------------------------
def test_same_numbers_as_pytorch():
    torch = pytest.importorskip("torch")
    tf = torch.nn.functional
    rng = np.random.default_rng(0)
    x = rng.standard_normal((3, 4, 5, 6))
    labels = rng.integers(0, 6, 3)
    cases = [
        ("hardswish", lambda f, a: f.hardswish(a)), ("hardsigmoid", lambda f, a: f.hardsigmoid(a)),
        ("softshrink", lambda f, a: f.softshrink(a, 0.3)), ("hardshrink", lambda f, a: f.hardshrink(a)),
        ("tanhshrink", lambda f, a: f.tanhshrink(a)), ("softsign", lambda f, a: f.softsign(a)),
        ("logsigmoid", lambda f, a: f.logsigmoid(a)), ("celu", lambda f, a: f.celu(a, 0.7)),
        ("glu", lambda f, a: f.glu(a, 1)), ("softmin", lambda f, a: f.softmin(a, 2)),
        ("rrelu", lambda f, a: f.rrelu(a)), ("threshold", lambda f, a: f.threshold(a, 0.1, 5.0)),
        ("rms_norm", lambda f, a: f.rms_norm(a, (5, 6))), ("lp_pool2d", lambda f, a: f.lp_pool2d(a.abs(), 2, 2)),
        ("adaptive_avg_pool3d", lambda f, a: f.adaptive_avg_pool3d(a, (3, 2, 4))),
        ("adaptive_max_pool3d", lambda f, a: f.adaptive_max_pool3d(a, (2, 3, 4))),
        ("pdist", lambda f, a: f.pdist(a.reshape(12, 30))), ("channel_shuffle", lambda f, a: f.channel_shuffle(a, 2)),
        ("multi_margin_loss", lambda f, a: f.multi_margin_loss(a[:, 0, 0], labels_of(a), p=2, margin=0.5)),
        ("soft_margin_loss", lambda f, a: f.soft_margin_loss(a, a.sign())),
        ("hinge_embedding_loss", lambda f, a: f.hinge_embedding_loss(a, a.sign(), 0.4)),
        ("embedding_bag", lambda f, a: f.embedding_bag(ints(a, [1, 2, 4, 0, 4, 3]), a[0, 0], ints(a, [0, 2, 2]),
                                                       mode="max", padding_idx=3)),
        ("ctc_loss", lambda f, a: f.ctc_loss(f.log_softmax(a[0], 2), ints(a, [[1, 2], [3, 3], [1, 1], [5, 4], [2, 2]]),
                                             ints(a, [4, 3, 2, 4, 1]), ints(a, [1, 2, 0, 2, 1]), reduction="none")),
        ("grid_sample", lambda f, a: f.grid_sample(a, f.affine_grid(a[:, 0, :2, :3] * 0.7, (3, 4, 3, 5),
                                                                    align_corners=False), align_corners=False)),
    ]

    def labels_of(a):
        return (torch.tensor(labels) if isinstance(a, torch.Tensor) else fastnn.tensor(labels))

    def ints(a, values):
        return (torch.tensor(values) if isinstance(a, torch.Tensor) else fastnn.tensor(values))
    for name, call in cases:
        ours = host(call(F, fastnn.tensor(x)))
        theirs = call(tf, torch.tensor(x)).numpy()
        np.testing.assert_allclose(ours, theirs, rtol=1e-12, atol=1e-12, err_msg=name)


# ---- nn.utils.prune -----------------------------------------------------------------------------------------
def test_prune_l1_unstructured_iterative_and_remove():
    from fastnn.nn.utils import prune
    m = nn.Linear(5, 4)
    rng = np.random.default_rng(0)
    values = ((rng.permutation(20) + 1) * rng.choice([-1, 1], 20)).reshape(4, 5).astype(np.float32)  # distinct |w|
    with fastnn.no_grad():
        m.weight.copy_(fastnn.tensor(values))
    prune.l1_unstructured(m, "weight", amount=0.25)               # 5 smallest |w| of 20
    assert list(m.state_dict()) == ["bias", "weight_orig", "weight_mask"]   # PyTorch's names and order
    order = np.argsort(np.abs(values).ravel())
    assert set(np.flatnonzero(host(m.weight_mask) == 0)) == set(order[:5])
    prune.l1_unstructured(m, "weight", amount=3)                  # 3 more, among the 15 still kept
    assert set(np.flatnonzero(host(m.weight_mask) == 0)) == set(order[:8])
    np.testing.assert_array_equal(host(m.weight), values * host(m.weight_mask))
    m(fastnn.randn(2, 5)).sum().backward()
    assert (host(m.weight_orig.grad)[host(m.weight_mask) == 0] == 0).all()   # pruned entries get no gradient
    assert prune.is_pruned(m)
    prune.remove(m, "weight")
    assert list(m.state_dict()) == ["bias", "weight"] and not prune.is_pruned(m)
    assert (host(m.weight.detach()) == 0).sum() == 8 and isinstance(m.weight, nn.Parameter)
    with pytest.raises(ValueError, match="has to be pruned"):
        prune.remove(m, "weight")
    with pytest.raises(ValueError, match="amount"):
        prune.l1_unstructured(m, "weight", amount=1.5)


def test_prune_structured_global_and_custom():
    from fastnn.nn.utils import prune
    conv = nn.Conv2d(2, 4, 3)
    with fastnn.no_grad():
        conv.weight.copy_(fastnn.tensor(np.arange(1, 5, dtype=np.float32).reshape(4, 1, 1, 1) * np.ones((4, 2, 3, 3),
                                                                                                       np.float32)))
    prune.ln_structured(conv, "weight", amount=0.5, n=2, dim=0)   # the 2 output channels of smallest L2 norm
    assert host(conv.weight_mask).reshape(4, -1).max(1).tolist() == [0.0, 0.0, 1.0, 1.0]
    a, b = nn.Linear(3, 3), nn.Linear(3, 2)
    prune.global_unstructured([(a, "weight"), (b, "weight")], prune.L1Unstructured, amount=6)
    both = np.concatenate([host(a.weight_orig.detach()).ravel(), host(b.weight_orig.detach()).ravel()])
    pruned = np.concatenate([host(a.weight_mask).ravel(), host(b.weight_mask).ravel()]) == 0
    assert pruned.sum() == 6 and np.abs(both[pruned]).max() <= np.abs(both[~pruned]).min()
    lin = nn.Linear(2, 2)
    prune.custom_from_mask(lin, "bias", fastnn.tensor([1.0, 0.0]))
    assert host(lin.bias.detach())[1] == 0
    prune.random_unstructured(lin, "weight", amount=2)
    assert (host(lin.weight_mask) == 0).sum() == 2


# ---- nn.utils.parametrize -----------------------------------------------------------------------------------
class Symmetric(nn.Module):          # the PyTorch parametrizations tutorial's first example
    def forward(self, X):
        return X.triu() + X.triu(1).transpose(-1, -2)


class Scale(nn.Module):
    def forward(self, X):
        return X * 2.0

    def right_inverse(self, A):
        return A / 2.0


def test_register_parametrization_symmetric_as_in_the_tutorial():
    from fastnn.nn.utils import parametrize
    layer = nn.Linear(3, 3)
    original = layer.weight
    opt = optim.SGD(layer.parameters(), lr=0.1)           # built before: the same Parameter becomes `original`
    parametrize.register_parametrization(layer, "weight", Symmetric())
    w = host(layer.weight.detach())
    assert np.array_equal(w, w.T) and parametrize.is_parametrized(layer, "weight")
    assert layer.parametrizations.weight.original is original
    assert list(layer.state_dict()) == ["bias", "parametrizations.weight.original"]   # PyTorch's keys
    assert type(layer).__name__ == "ParametrizedLinear" and isinstance(layer, nn.Linear)
    layer(fastnn.randn(4, 3)).sum().backward()
    opt.step()
    w = host(layer.weight.detach())
    assert np.array_equal(w, w.T)                        # still symmetric after training the original
    parametrize.remove_parametrizations(layer, "weight")
    assert type(layer) is nn.Linear and list(layer.state_dict()) == ["bias", "weight"]
    assert np.array_equal(host(layer.weight.detach()), w)


def test_parametrization_right_inverse_chaining_and_cache():
    from fastnn.nn.utils import parametrize
    layer = nn.Linear(2, 2, dtype="float64")
    start = host(layer.weight.detach()).copy()
    parametrize.register_parametrization(layer, "weight", Scale())
    np.testing.assert_allclose(host(layer.parametrizations.weight.original), start / 2)   # right_inverse
    np.testing.assert_allclose(host(layer.weight), start)
    layer.weight = fastnn.tensor(np.eye(2))              # assignment goes through right_inverse
    np.testing.assert_allclose(host(layer.parametrizations.weight.original), np.eye(2) / 2)
    parametrize.register_parametrization(layer, "weight", Symmetric())
    assert len(layer.parametrizations.weight) == 2
    with parametrize.cached():
        assert layer.weight is layer.weight
    assert layer.weight is not layer.weight
    parametrize.remove_parametrizations(layer, "weight", leave_parametrized=False)
    np.testing.assert_allclose(host(layer.weight.detach()), np.eye(2) / 2)
    with pytest.raises(ValueError, match="shape"):
        parametrize.register_parametrization(nn.Linear(3, 2), "weight", Symmetric())
    with pytest.raises(ValueError, match="does not have a parametrization"):
        parametrize.remove_parametrizations(layer, "weight")


def test_parametrizations_weight_norm_layout_and_values(device):
    from fastnn.nn.utils import parametrizations, parametrize
    fastnn.manual_seed(0)
    layer = nn.Linear(3, 2, dtype="float64").to(device)
    w = host(layer.weight.detach()).copy()
    parametrizations.weight_norm(layer)
    # torch.nn.utils.parametrizations.weight_norm(Linear(3, 2)).state_dict(): g (2, 1), v (2, 3)
    assert {k: v.shape for k, v in layer.state_dict().items()} == {
        "bias": (2,), "parametrizations.weight.original0": (2, 1), "parametrizations.weight.original1": (2, 3)}
    np.testing.assert_allclose(host(layer.parametrizations.weight.original0), np.linalg.norm(w, axis=1,
                                                                                            keepdims=True))
    np.testing.assert_allclose(host(layer.weight), w, rtol=1e-12)
    x = t(np.random.default_rng(0).standard_normal((4, 3)), device)
    np.testing.assert_allclose(host(layer(x)), host(x) @ w.T + host(layer.bias.detach()), rtol=1e-12)
    # gradients reach g and v through the parametrized weight (gradcheck perturbs the originals in place)
    originals = [layer.parametrizations.weight.original0, layer.parametrizations.weight.original1]
    assert gradcheck(lambda g, v: layer(x), originals)
    parametrize.remove_parametrizations(layer, "weight")
    np.testing.assert_allclose(host(layer.weight.detach()), w, rtol=1e-12)
    with pytest.raises(ValueError, match="single original"):
        parametrizations.weight_norm(layer)
        parametrize.remove_parametrizations(layer, "weight", leave_parametrized=False)

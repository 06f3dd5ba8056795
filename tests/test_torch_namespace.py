"""torch.* forms of functional ops: each equals its nn.functional twin and takes torch's (ATen's) positional order,
which sometimes differs from F's (the facts are written in each case: weight before running statistics, weight
first for embedding, `reduction` as ATen's enum 0 none / 1 mean / 2 sum, no defaults for dropout's p/train)."""
import numpy as np
import pytest

import fastnn
import fastnn.nn.functional as F


def t(*shape, seed=0, requires_grad=False, positive=False):
    a = np.random.default_rng(seed).normal(size=shape)
    return fastnn.tensor(np.abs(a) + 0.1 if positive else a, requires_grad=requires_grad)


def close(a, b):
    np.testing.assert_allclose(a.detach().numpy(), b.detach().numpy(), rtol=1e-12, atol=1e-12)


X4, W4 = t(2, 3, 6, 6), t(4, 3, 3, 3, seed=1)
X3 = t(2, 3, 8)
A, B = t(5, 4, seed=2), t(5, 4, seed=3)
Y = fastnn.tensor([1.0, -1.0, 1.0, 1.0, -1.0])

# (torch.* call, its F twin): same positional arguments where the signatures agree.
SAME = {
    "conv1d": ((X3, t(4, 3, 3, seed=1), t(4, seed=2), 2, 1, 1, 1), {}),
    "conv2d": ((X4, W4, None, 1, 1, 1, 1), {}),
    "conv3d": ((t(1, 2, 4, 4, 4), t(3, 2, 2, 2, 2, seed=1)), {}),
    "conv_transpose1d": ((X3, t(3, 2, 3, seed=1), None, 2, 1, 1, 1, 1), {}),
    "conv_transpose2d": ((X4, t(3, 2, 3, 3, seed=1), None, 2, 1, 1, 1, 1), {}),
    "max_pool1d": ((X3, 3, 2, 1, 1, True), {}),
    "max_pool2d": ((X4, 2, 2, 0, 1, False), {}),
    "max_pool3d": ((t(1, 2, 4, 4, 4), 2), {}),
    "max_pool1d_with_indices": ((X3, 3, 2, 1, 1, False), {}),
    "log_softmax": ((A, 0), {}),
    "rms_norm": ((X3, [8], t(8, seed=1), 1e-4), {}),
    "avg_pool1d": ((X3, 3, 2, 1, True, False), {}),
    "adaptive_avg_pool1d": ((X3, 3), {}),
    "pixel_shuffle": ((t(1, 8, 2, 2), 2), {}),
    "pixel_unshuffle": ((t(1, 2, 4, 4), 2), {}),
    "channel_shuffle": ((t(1, 6, 2, 2), 3), {}),
    "cosine_similarity": ((A, B, 0, 1e-6), {}),
    "pairwise_distance": ((A, B, 1.0, 1e-6, True), {}),
    "pdist": ((A, 3), {}),
    "prelu": ((X4, fastnn.tensor([0.1, 0.2, 0.3], dtype=fastnn.float64)), {}),
    "hardshrink": ((A, 0.3), {}),
    "bilinear": ((A, B, t(2, 4, 4, seed=4), t(2, seed=5)), {}),
}


@pytest.mark.parametrize("name", sorted(SAME))
def test_same_signature_aliases_equal_functional(name):
    args, kwargs = SAME[name]
    ours, twin = getattr(fastnn, name)(*args, **kwargs), getattr(F, name)(*args, **kwargs)
    for a, b in zip(*((ours, twin) if isinstance(ours, tuple) else ((ours,), (twin,)))):
        close(a, b)


def test_norms_take_atens_positional_order():
    w, b, rm, rv = t(3, seed=1), t(3, seed=2), t(3, seed=3), t(3, seed=4, positive=True)
    # torch.batch_norm(input, weight, bias, running_mean, running_var, training, momentum, eps, cudnn_enabled)
    close(fastnn.batch_norm(X4, w, b, rm, rv, False, 0.1, 1e-3, True), F.batch_norm(X4, rm, rv, w, b, False, 0.1, 1e-3))
    rm1, rm2, rv1, rv2 = rm.clone(), rm.clone(), rv.clone(), rv.clone()
    close(fastnn.batch_norm(X4, w, b, rm1, rv1, True, 0.3, 1e-5, False), F.batch_norm(X4, rm2, rv2, w, b, True, 0.3))
    close(rm1, rm2)   # the running statistics are updated in place, as F does
    # torch.instance_norm(input, weight, bias, running_mean, running_var, use_input_stats, momentum, eps, cudnn)
    close(fastnn.instance_norm(X4, w, b, None, None, True, 0.1, 1e-5, True),
          F.instance_norm(X4, None, None, w, b, True, 0.1, 1e-5))
    # torch.layer_norm(input, normalized_shape, weight, bias, eps, cudnn_enable)
    close(fastnn.layer_norm(X4, [6, 6], t(6, 6), t(6, 6, seed=1), 1e-3, True),
          F.layer_norm(X4, [6, 6], t(6, 6), t(6, 6, seed=1), 1e-3))
    close(fastnn.group_norm(X4, 3, w, b, 1e-4, True), F.group_norm(X4, 3, w, b, 1e-4))
    with pytest.raises(TypeError):   # no defaults in torch.batch_norm
        fastnn.batch_norm(X4, w, b, rm, rv)


def test_dropout_takes_p_and_train_positionally():
    x = t(1000)
    close(fastnn.dropout(x, 0.5, False), x)   # train=False: the identity
    fastnn.manual_seed(3)
    ours = fastnn.dropout(x, 0.25, True)
    fastnn.manual_seed(3)
    close(ours, F.dropout(x, 0.25, True))
    zeros = (ours.numpy() == 0).mean()
    assert 0.2 < zeros < 0.3
    for name in ("alpha_dropout", "feature_alpha_dropout"):
        fastnn.manual_seed(4)
        ours = getattr(fastnn, name)(X4, 0.2, True)
        fastnn.manual_seed(4)
        close(ours, getattr(F, name)(X4, 0.2, True))
    y = x.clone()
    fastnn.manual_seed(5)
    assert fastnn.dropout_(y, 0.5, True) is y
    fastnn.manual_seed(5)
    close(y, F.dropout(x, 0.5, True))
    with pytest.raises(TypeError):   # torch.dropout(input, p, train): no defaults
        fastnn.dropout(x)


def test_embedding_takes_the_weight_first():
    weight = t(10, 3, requires_grad=True)
    idx = fastnn.tensor([[1, 2, 4], [4, 3, 9]])
    close(fastnn.embedding(weight, idx), F.embedding(idx, weight))
    # padding_idx: no gradient into that row; a negative one (ATen's default -1) means none
    fastnn.embedding(weight, idx, 4).sum().backward()
    assert weight.grad.numpy()[4].tolist() == [0.0, 0.0, 0.0] and weight.grad.numpy()[2].tolist() == [1.0] * 3
    weight.grad = None
    fastnn.embedding(weight, idx, -1).sum().backward()
    assert weight.grad.numpy()[4].tolist() == [2.0] * 3
    with pytest.raises(ValueError, match="sparse"):
        fastnn.embedding(weight, idx, -1, False, True)


def test_activations():
    close(fastnn.selu(A), F.selu(A))
    close(fastnn.celu(A, 0.5), F.celu(A, alpha=0.5))
    close(fastnn.threshold(A, 0.1, -2.0), F.threshold(A, 0.1, -2.0))
    close(fastnn.rrelu(A, 0.1, 0.3, False), F.rrelu(A, 0.1, 0.3, False))
    for name, args in [("selu_", ()), ("celu_", (0.5,)), ("threshold_", (0.1, -2.0)), ("rrelu_", (0.1, 0.3)),
                       ("relu_", ()), ("sigmoid_", ()), ("tanh_", ())]:
        y = A.clone()
        assert getattr(fastnn, name)(y, *args) is y
        base = name[:-1]
        expected = getattr(F, base)(A, *args) if hasattr(F, base) else getattr(A, base)(*args)
        close(y, expected)
    with pytest.raises(ValueError, match="generator"):
        fastnn.rrelu(A, 0.1, 0.3, True, fastnn.Generator())


@pytest.mark.filterwarnings("ignore:reduction. 'mean' divides")   # F.kl_div's own warning (the twin's)
def test_losses_take_reduction_as_atens_enum():
    logits, target01 = t(5, 4), fastnn.tensor((np.arange(20).reshape(5, 4) % 3 == 0).astype(float))
    for enum, name in enumerate(("none", "mean", "sum")):
        # torch.binary_cross_entropy_with_logits(input, target, weight, pos_weight, reduction)
        pos_weight = fastnn.tensor([1.0, 2.0, 0.5, 3.0])
        close(fastnn.binary_cross_entropy_with_logits(logits, target01, None, pos_weight, enum),
              F.binary_cross_entropy_with_logits(logits, target01, reduction=name, pos_weight=pos_weight))
        lp, q = A.log_softmax(1), B.softmax(1)
        close(fastnn.kl_div(lp, q, enum), F.kl_div(lp, q, reduction=name))
        close(fastnn.kl_div(lp, q.log(), enum, log_target=True), F.kl_div(lp, q.log(), reduction=name,
                                                                          log_target=True))
        close(fastnn.cosine_embedding_loss(A, B, Y, 0.2, enum), F.cosine_embedding_loss(A, B, Y, 0.2, reduction=name))
        a1, b1 = A[:, 0], B[:, 0]
        close(fastnn.margin_ranking_loss(a1, b1, Y, 0.1, enum), F.margin_ranking_loss(a1, b1, Y, 0.1, reduction=name))
        close(fastnn.hinge_embedding_loss(a1, Y, 0.5, enum), F.hinge_embedding_loss(a1, Y, 0.5, reduction=name))
        c = t(5, 4, seed=9)
        close(fastnn.triplet_margin_loss(A, B, c, 0.5, 1, 1e-6, True, enum),
              F.triplet_margin_loss(A, B, c, 0.5, 1, 1e-6, True, reduction=name))
        # torch.poisson_nll_loss(input, target, log_input, full, eps, reduction): all required
        counts = fastnn.tensor(np.arange(20.0).reshape(5, 4) % 4)
        close(fastnn.poisson_nll_loss(A, counts, True, True, 1e-8, enum),
              F.poisson_nll_loss(A, counts, True, True, eps=1e-8, reduction=name))
        lps = t(6, 2, 5).log_softmax(2)
        targets = fastnn.tensor([[1, 2], [3, 3]])
        lengths, tlengths = fastnn.tensor([6, 5]), fastnn.tensor([2, 2])
        close(fastnn.ctc_loss(lps, targets, lengths, tlengths, 0, enum, False),
              F.ctc_loss(lps, targets, lengths, tlengths, 0, name, False))
    with pytest.raises(ValueError, match="reduction"):
        fastnn.kl_div(lp, q, 3)


def test_in_place_forms_are_the_tensor_methods():
    x = t(4, positive=True)
    for name in ("exp_", "sqrt_", "log_", "sin_", "neg_", "reciprocal_", "floor_", "square_"):
        y = x.clone()
        assert getattr(fastnn, name)(y) is y
        close(y, getattr(x, name[:-1])())
    y = x.clone()
    close(fastnn.clamp_(y, 0.2, 0.5), x.clamp(0.2, 0.5))
    assert fastnn.zero_(y).tolist() == [0.0] * 4 and fastnn.fill_(y, 2.5).tolist() == [2.5] * 4


def test_against_torch():
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(0)
    a, b = rng.normal(size=(3, 4)), rng.normal(size=(3, 4))
    w, rm, rv = rng.normal(size=4), rng.normal(size=4), rng.random(4) + 0.5
    cases = [("batch_norm", lambda m, T: m.batch_norm(T(a), T(w), None, T(rm), T(rv), False, 0.1, 1e-5, False)),
             ("layer_norm", lambda m, T: m.layer_norm(T(a), [4], T(w), None, 1e-5, False)),
             ("kl_div", lambda m, T: m.kl_div(T(a).log_softmax(1), T(b).softmax(1), 2)),
             ("bce_logits", lambda m, T: m.binary_cross_entropy_with_logits(T(a), (T(b) > 0).double(), None,
                                                                             T(w).abs(), 0)),
             ("embedding", lambda m, T: m.embedding(T(a), m.tensor([[2, 0], [1, 1]]), 1)),
             ("poisson", lambda m, T: m.poisson_nll_loss(T(a), T(b).abs(), True, True, 1e-8, 1)),
             ("triplet", lambda m, T: m.triplet_margin_loss(T(a), T(b), T(a) * 2, 1.0, 2, 1e-6, False, 2)),
             ("celu", lambda m, T: m.celu(T(a), 0.7)),
             ("cdist", lambda m, T: m.cdist(T(a), T(b), 1.0)),
             ("threshold", lambda m, T: m.threshold(T(a), 0.1, 5.0))]
    for name, call in cases:
        ours = call(fastnn, lambda v: fastnn.tensor(v))
        theirs = call(torch, lambda v: torch.tensor(v))
        np.testing.assert_allclose(ours.numpy(), theirs.numpy(), rtol=1e-12, atol=1e-12, err_msg=name)

"""fastnn.func: jvp equals the vjp/jacrev Jacobian times v, jacfwd equals jacrev (an MLP, a small convnet, several
arguments and outputs), hessian against finite differences of the gradient and against a closed form, grad and
vjp with argnums/has_aux, and the compositions fastnn cannot run raising instead of returning zeros."""
import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

import fastnn
import fastnn.nn.functional as F
from fastnn import func, nn
from conftest import host, t as tensor

seeds = st.integers(0, 2 ** 32 - 1)


def _params(rng, *shapes):
    return [tensor(rng.standard_normal(s) * 0.5) for s in shapes]


def mlp(rng):
    w1, b1, w2, b2 = _params(rng, (5, 4), (5,), (3, 5), (3,))
    return lambda x: F.log_softmax(F.linear(F.tanh(F.linear(x, w1, b1)), w2, b2), -1)


def convnet(rng):
    w1, b1, w2 = _params(rng, (3, 2, 3, 3), (3,), (4, 12))

    def net(x):
        h = F.max_pool2d(F.gelu(F.conv2d(x, w1, b1, padding=1)), 2)
        h = F.batch_norm(h, None, None, training=True)
        return F.linear(F.flatten(h), w2)
    return net


MODELS = {"mlp": (mlp, (2, 4)), "convnet": (convnet, (1, 2, 4, 4))}


@pytest.mark.parametrize("model", sorted(MODELS))
@settings(max_examples=3, deadline=None)
@given(seed=seeds)
def test_jacfwd_equals_jacrev_and_jvp_is_jacobian_times_v(model, seed):
    build, shape = MODELS[model]
    rng = np.random.default_rng(seed)
    f = build(rng)
    x, v = tensor(rng.standard_normal(shape)), tensor(rng.standard_normal(shape))
    forward, reverse = func.jacfwd(f)(x), func.jacrev(f)(x)
    out = f(x)
    assert forward.shape == reverse.shape == out.shape + x.shape
    np.testing.assert_allclose(host(forward), host(reverse), rtol=1e-10, atol=1e-12)
    value, jvp_out = func.jvp(f, (x,), (v,))
    np.testing.assert_allclose(host(value), host(out), rtol=1e-12, atol=1e-12)
    jacobian = host(reverse).reshape(out.numel(), x.numel())
    np.testing.assert_allclose(host(jvp_out).reshape(-1), jacobian @ host(v).reshape(-1), rtol=1e-10, atol=1e-12)
    # and vjp's u^T J, the transpose side
    u = rng.standard_normal(out.shape)
    value, vjp_fn = func.vjp(f, x)
    (vjp_out,) = vjp_fn(tensor(u))
    np.testing.assert_allclose(host(vjp_out).reshape(-1), u.reshape(-1) @ jacobian, rtol=1e-10, atol=1e-12)


def test_jacobians_over_several_arguments_and_outputs():
    rng = np.random.default_rng(3)
    a, b = tensor(rng.standard_normal(3)), tensor(rng.standard_normal((2, 3)))

    def f(a, b, scale):
        return (b @ a) * scale, (a * a).sum() + b.exp().sum()
    fwd = func.jacfwd(f, argnums=(0, 1))(a, b, 2.0)
    rev = func.jacrev(f, argnums=(0, 1))(a, b, 2.0)
    assert [[j.shape for j in per_out] for per_out in fwd] == [[(2, 3), (2, 2, 3)], [(3,), (2, 3)]]
    for per_fwd, per_rev in zip(fwd, rev):
        for jf, jr in zip(per_fwd, per_rev):
            np.testing.assert_allclose(host(jf), host(jr), rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(host(fwd[0][0]), 2 * host(b))          # d(b a)/da = b
    np.testing.assert_allclose(host(fwd[1][1]), np.exp(host(b)))      # d(sum exp b)/db
    np.testing.assert_allclose(host(func.jacrev(f, argnums=-2)(a, b, 2.0)[0]), host(rev[0][1]))


def test_hessian_of_a_quadratic_form_is_a_plus_a_transpose():
    rng = np.random.default_rng(0)
    a = rng.standard_normal((4, 4))
    x = tensor(rng.standard_normal(4))
    h = func.hessian(lambda x: x @ tensor(a) @ x)(x)
    np.testing.assert_allclose(host(h), a + a.T, rtol=1e-12, atol=1e-12)
    # forward-over-forward (nested dual levels) agrees
    np.testing.assert_allclose(host(func.jacfwd(func.jacfwd(lambda x: x @ tensor(a) @ x))(x)), a + a.T,
                               rtol=1e-12, atol=1e-12)


@settings(max_examples=3, deadline=None)
@given(seed=seeds)
def test_hessian_matches_finite_differences_of_the_gradient(seed):
    rng = np.random.default_rng(seed)
    net = mlp(rng)
    labels = tensor(np.array([1, 2]))

    def loss(x):
        return F.cross_entropy(net(x), labels) + F.softplus(x).pow(2).sum() * 0.1

    x0 = rng.standard_normal((2, 4))
    h = host(func.hessian(loss)(tensor(x0))).reshape(8, 8)
    gradient = func.grad(loss)
    eps = 1e-6
    columns = []
    for k in range(8):
        e = np.zeros(8)
        e[k] = eps
        plus, minus = (host(gradient(tensor(x0 + s * e.reshape(2, 4)))).reshape(-1) for s in (1, -1))
        columns.append((plus - minus) / (2 * eps))
    np.testing.assert_allclose(h, np.stack(columns, 1), rtol=1e-5, atol=1e-7)
    np.testing.assert_allclose(h, h.T, rtol=1e-9, atol=1e-11)


def test_hessian_over_two_arguments():
    x, y = tensor(np.array([0.5, -1.0])), tensor(np.array([2.0, 0.3]))
    (hxx, hxy), (hyx, hyy) = func.hessian(lambda x, y: (x * y.exp()).sum() + (x ** 3).sum(), argnums=(0, 1))(x, y)
    ey = np.exp(host(y))
    np.testing.assert_allclose(host(hxx), np.diag(6 * host(x)))
    np.testing.assert_allclose(host(hxy), np.diag(ey))
    np.testing.assert_allclose(host(hyx), np.diag(ey))
    np.testing.assert_allclose(host(hyy), np.diag(host(x) * ey))


def test_grad_argnums_has_aux_and_scalar_check():
    x, y = tensor(np.array([1.0, 2.0])), tensor(np.array([3.0, -1.0]))

    def f(x, y):
        return (x * x * y).sum(), {"value": x.sum()}
    (gx, gy), aux = func.grad(f, argnums=(0, 1), has_aux=True)(x, y)
    np.testing.assert_allclose(host(gx), 2 * host(x) * host(y))
    np.testing.assert_allclose(host(gy), host(x) ** 2)
    assert float(aux["value"]) == 3.0
    np.testing.assert_allclose(host(func.grad(lambda x, y: (x * y).sum(), argnums=1)(x, y)), host(x))
    with pytest.raises(RuntimeError, match=r"one-element Tensor, got \(2,\)"):
        func.grad(lambda x: x * 2)(x)
    with pytest.raises(ValueError, match="argnums 2 is out of range"):
        func.grad(lambda x, y: (x * y).sum(), argnums=2)(x, y)
    with pytest.raises(TypeError, match="argument 1 must be a Tensor"):
        func.grad(lambda x, s: (x * s).sum(), argnums=1)(x, 2.0)


def test_grad_leaves_inputs_and_their_grads_alone():
    x = tensor(np.array([1.0, 2.0]), requires_grad=True)
    g = func.grad(lambda x: (x ** 3).sum())(x)
    np.testing.assert_allclose(host(g), 3 * host(x) ** 2)
    assert x.grad is None and not g.requires_grad


def test_vjp_has_aux_unused_inputs_and_shape_errors():
    x, y = tensor(np.array([1.0, 2.0])), tensor(np.array([3.0]))
    out, vjp_fn, aux = func.vjp(lambda x, y: (x * 2, x.sum()), x, y, has_aux=True)
    assert host(aux).tolist() == 3.0
    gx, gy = vjp_fn(tensor(np.array([1.0, -1.0])))
    np.testing.assert_allclose(host(gx), [2.0, -2.0])
    np.testing.assert_array_equal(host(gy), [0.0])  # y unused: zeros, as torch.func
    assert host(vjp_fn(tensor(np.array([0.5, 0.5])))[0]).tolist() == [1.0, 1.0]  # vjp_fn may be called again
    with pytest.raises(ValueError, match=r"cotangent shape \(3,\) does not match the output shape \(2,\)"):
        vjp_fn(tensor(np.zeros(3)))


def test_jvp_tuples_aux_and_errors():
    x, v = tensor(np.array([1.0, 2.0])), tensor(np.array([1.0, 0.0]))
    (a, b), (ta, tb), aux = func.jvp(lambda x: ((x ** 2, x.sum() * 0 + 5.0), "aux"), (x,), (v,), has_aux=True)
    np.testing.assert_allclose(host(ta), [2.0, 0.0])
    assert host(tb).tolist() == 0.0 and aux == "aux"
    const, tangent = func.jvp(lambda x: fastnn.ones(2, dtype=fastnn.float64), (x,), (v,))
    np.testing.assert_array_equal(host(tangent), [0.0, 0.0])
    with pytest.raises(RuntimeError, match="independent of the inputs"):
        func.jvp(lambda x: fastnn.ones(2, dtype=fastnn.float64), (x,), (v,), strict=True)
    with pytest.raises(ValueError, match=r"\(3,\).*\(2,\)"):
        func.jvp(lambda x: x, (x,), (tensor(np.zeros(3)),))
    with pytest.raises(TypeError, match="must be tuples"):
        func.jvp(lambda x: x, x, v)


def test_compositions_fastnn_cannot_run_raise():
    x = tensor(np.array([1.0, 2.0]))

    def f(x):
        return (x ** 3).sum()
    with pytest.raises(NotImplementedError, match="reverse-over-reverse"):
        func.jacrev(func.jacrev(f))(x)
    with pytest.raises(NotImplementedError, match="reverse-over-reverse"):
        func.grad(lambda x: func.grad(f)(x).sum())(x)
    with pytest.raises(NotImplementedError, match="forward-over-reverse"):
        func.jacfwd(func.jacrev(f))(x)


def test_jacfwd_equals_jacrev_on_modules():
    """Layers get forward mode from their functional ops: a conv stack in eval mode and a transformer layer."""
    fastnn.manual_seed(0)
    conv = nn.Sequential(nn.Conv2d(1, 3, 3, padding=1), nn.BatchNorm2d(3), nn.ReLU(), nn.MaxPool2d(2), nn.Flatten(),
                         nn.Linear(12, 5), nn.Dropout(0.2)).double().eval()
    transformer = nn.TransformerEncoderLayer(4, 2, 8, dropout=0.0, batch_first=True).double()
    for model, shape in ((conv, (1, 1, 4, 4)), (transformer, (1, 3, 4))):
        x = fastnn.randn(*shape, dtype=fastnn.float64)
        forward = func.jacfwd(model)(x)
        assert forward.shape == model(x).shape + x.shape
        np.testing.assert_allclose(host(forward), host(func.jacrev(model)(x)), rtol=1e-10, atol=1e-12)


def test_jacfwd_equals_jacrev_on_a_recurrent_layer():
    lstm = nn.LSTM(3, 2, batch_first=True, bidirectional=True).double()
    x = fastnn.randn(1, 3, 3, dtype=fastnn.float64)
    np.testing.assert_allclose(host(func.jacfwd(lambda x: lstm(x)[0])(x)), host(func.jacrev(lambda x: lstm(x)[0])(x)),
                               rtol=1e-10, atol=1e-12)


def test_an_op_without_tangent_rule_fails_loudly_inside_jacfwd():
    # ctc_loss has no tangent rule (PyTorch 2.13 has no forward-mode formula for it either)
    targets, input_lengths, target_lengths = fastnn.tensor([[1, 2]]), fastnn.tensor([5]), fastnn.tensor([2])
    loss = lambda log_probs: F.ctc_loss(log_probs, targets, input_lengths, target_lengths)  # noqa: E731
    log_probs = F.log_softmax(fastnn.randn(5, 1, 3, dtype=fastnn.float64), 2)
    with pytest.raises(NotImplementedError, match="'ctc_loss' has no tangent rule"):
        func.jacfwd(loss)(log_probs)

"""Adagrad, RMSprop, NAdam, LBFGS and gradient clipping: kernels vs NumPy references, classes vs hand-written
update loops, convergence on an ill-conditioned quadratic and on convex problems, state dicts, validation."""
import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

import fastnn
from fastnn import optim
from fastnn._kernels import cpu_optim_adaptive, ref_optim_adaptive
from fastnn.nn import Parameter
from fastnn.nn.utils import clip_grad_norm_, clip_grad_value_
# The gradient sequence, run helper, convergence and round-trip checks shared with the SGD/Adam tests.
from test_optim import STEPS, _grads, _run, _tolerance
from test_optim import test_state_dict_round_trip_resumes_identically as _check_state_dict_round_trip
from test_optim import test_optimizers_decrease_an_ill_conditioned_quadratic as _check_ill_conditioned_quadratic


# ---- kernels vs references ---------------------------------------------------------------------------------

def _compare_kernel(step_fn, n_state, dtype, options, n=1000):
    """Run the Numba and the NumPy version of one kernel side by side for STEPS steps; compare everything.
    `step_fn(module, step, param, grad, state, extra)` calls the kernel and returns `extra` for the next step."""
    param = np.random.default_rng(1).standard_normal(n).astype(dtype)
    expected = param.copy()
    state = [np.full(n, 0.1, dtype) for _ in range(n_state)]
    expected_state = [s.copy() for s in state]
    extra = expected_extra = 1.0
    for step, g in enumerate(_grads(n, dtype), start=1):
        extra = step_fn(cpu_optim_adaptive, step, param, g, state, extra, options)
        expected_extra = step_fn(ref_optim_adaptive, step, expected, g, expected_state, expected_extra, options)
    np.testing.assert_allclose(param, expected, **_tolerance(dtype))
    for got, want in zip(state, expected_state):
        np.testing.assert_allclose(got, want, **_tolerance(dtype))
    np.testing.assert_allclose(extra, expected_extra, rtol=1e-12)
    assert param.dtype == dtype and all(s.dtype == dtype for s in state)


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("options", [
    dict(lr=0.1, lr_decay=0.0, weight_decay=0.0, eps=1e-10, maximize=False),
    dict(lr=0.05, lr_decay=0.1, weight_decay=0.2, eps=1e-6, maximize=True),
])
def test_adagrad_kernel_matches_reference(dtype, options):
    def step_fn(module, step, param, g, state, extra, options):
        module.adagrad_step(param, g, state[0], step, **options)
        return extra
    _compare_kernel(step_fn, 1, dtype, options)


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("options", [
    dict(alpha=0.99, weight_decay=0.0, momentum=0.0, centered=False, maximize=False),
    dict(alpha=0.9, weight_decay=0.1, momentum=0.0, centered=True, maximize=True),
    dict(alpha=0.99, weight_decay=0.0, momentum=0.9, centered=False, maximize=False),
    dict(alpha=0.3, weight_decay=0.05, momentum=0.5, centered=True, maximize=False),
])
def test_rmsprop_kernel_matches_reference(dtype, options):
    def step_fn(module, step, param, g, state, extra, options):
        module.rmsprop_step(param, g, *state, 0.01, eps=1e-8, **options)
        return extra
    _compare_kernel(step_fn, 3, dtype, options)


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("options", [
    dict(beta1=0.9, weight_decay=0.0, decoupled_weight_decay=False, maximize=False),
    dict(beta1=0.9, weight_decay=0.1, decoupled_weight_decay=False, maximize=True),
    dict(beta1=0.3, weight_decay=0.1, decoupled_weight_decay=True, maximize=False),
])
def test_nadam_kernel_matches_reference(dtype, options):
    def step_fn(module, step, param, g, state, mu_product, options):
        return module.nadam_step(param, g, *state, step, mu_product, 0.01, beta2=0.99, eps=1e-8,
                                 momentum_decay=4e-3, **options)
    _compare_kernel(step_fn, 2, dtype, options)


@settings(max_examples=20, deadline=None)
@given(n=st.integers(0, 70), lr=st.floats(1e-4, 1.0), decay=st.floats(0.05, 0.99),
       weight_decay=st.floats(0.0, 0.5), flags=st.tuples(st.booleans(), st.booleans(), st.booleans()))
def test_kernels_match_references_for_any_size_and_hyperparameters(n, lr, decay, weight_decay, flags):
    # `decay` serves as Adagrad's lr_decay, RMSprop's alpha and momentum, and NAdam's beta1.
    centered, decoupled, maximize = flags
    rng = np.random.default_rng(n)
    start, grads = rng.standard_normal(n), [rng.standard_normal(n) for _ in range(3)]
    results = []
    for module in (cpu_optim_adaptive, ref_optim_adaptive):
        param, state = start.copy(), [np.full(n, 0.5) for _ in range(6)]
        mu_product = 1.0
        for step, g in enumerate(grads, start=1):
            module.adagrad_step(param, g, state[0], step, lr, decay, weight_decay, 1e-10, maximize)
            module.rmsprop_step(param, g, *state[1:4], lr, decay, 1e-8, weight_decay, decay, centered, maximize)
            mu_product = module.nadam_step(param, g, *state[4:6], step, mu_product, lr, decay, 0.999, 1e-8,
                                           weight_decay, 4e-3, decoupled, maximize)
        results.append((param, state, mu_product))
    (got, got_state, got_mu), (want, want_state, want_mu) = results
    np.testing.assert_allclose(got, want, rtol=1e-9, atol=1e-12)
    for a, b in zip(got_state, want_state):
        np.testing.assert_allclose(a, b, rtol=1e-9, atol=1e-12)
    assert got_mu == pytest.approx(want_mu, rel=1e-15)


def test_float32_kernels_get_float32_scalars():
    # A float64 scalar would promote the whole float32 element loop to float64 (slower, and not PyTorch's math).
    param, grad = np.ones(64, np.float32), np.ones(64, np.float32)
    state = [np.zeros(64, np.float32) for _ in range(3)]
    cpu_optim_adaptive.adagrad_step(param, grad, state[0], 1, 0.1, 0.0, 0.0, 1e-10, False)
    for centered in (False, True):
        cpu_optim_adaptive.rmsprop_step(param, grad, *state, 0.1, 0.99, 1e-8, 0.0, 0.9, centered, False)
    cpu_optim_adaptive.nadam_step(param, grad, *state[:2], 1, 1.0, 0.1, 0.9, 0.999, 1e-8, 0.0, 4e-3, False, False)
    kernels = ("_adagrad", "_rmsprop", "_rmsprop_centered", "_nadam")
    for kernel in (getattr(cpu_optim_adaptive, name) for name in kernels):
        float32_signatures = [sig for sig in kernel.signatures if sig[0].dtype.name == "float32"]
        assert float32_signatures
        for sig in float32_signatures:
            scalars = [str(t) for t in sig if not hasattr(t, "ndim")]
            assert set(scalars) <= {"float32", "bool"}, (kernel, scalars)


# ---- optimizer classes vs hand-written loops (float64) -----------------------------------------------------

def _numpy_adagrad(p, grads, lr=1e-2, lr_decay=0.0, weight_decay=0.0, initial_accumulator_value=0.0, eps=1e-10,
                   maximize=False):
    p, total = p.copy(), np.full_like(p, initial_accumulator_value)
    for t, g in enumerate(grads, start=1):
        g = (-g if maximize else g) + weight_decay * p
        total = total + g ** 2
        p = p - lr / (1 + (t - 1) * lr_decay) * g / (np.sqrt(total) + eps)
    return p


def _numpy_rmsprop(p, grads, lr=1e-2, alpha=0.99, eps=1e-8, weight_decay=0.0, momentum=0.0, centered=False,
                   maximize=False):
    p = p.copy()
    v, mean, buf = np.zeros_like(p), np.zeros_like(p), np.zeros_like(p)
    for g in grads:
        g = (-g if maximize else g) + weight_decay * p
        v = alpha * v + (1 - alpha) * g ** 2
        mean = alpha * mean + (1 - alpha) * g
        denom = np.sqrt(v - mean ** 2 if centered else v) + eps
        if momentum > 0:
            buf = momentum * buf + g / denom
            p = p - lr * buf
        else:
            p = p - lr * g / denom
    return p


def _numpy_nadam(p, grads, lr=2e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.0, momentum_decay=4e-3,
                 decoupled_weight_decay=False, maximize=False):
    beta1, beta2 = betas
    mus = [beta1 * (1 - 0.5 * 0.96 ** (t * momentum_decay)) for t in range(1, len(grads) + 2)]
    p, m, v = p.copy(), np.zeros_like(p), np.zeros_like(p)
    for t, g in enumerate(grads, start=1):
        g = -g if maximize else g
        if decoupled_weight_decay:
            p = p * (1 - lr * weight_decay)
        else:
            g = g + weight_decay * p
        m = beta1 * m + (1 - beta1) * g
        v = beta2 * v + (1 - beta2) * g ** 2
        v_hat = v / (1 - beta2 ** t)
        product_t, product_next = np.prod(mus[:t]), np.prod(mus[:t + 1])
        p = p - lr * ((1 - mus[t - 1]) / (1 - product_t) * g + mus[t] / (1 - product_next) * m) / (np.sqrt(v_hat) + eps)
    return p


@pytest.mark.parametrize("name, reference, options", [
    ("Adagrad", _numpy_adagrad, dict()),
    ("Adagrad", _numpy_adagrad, dict(lr=0.1, lr_decay=0.05, weight_decay=0.1)),
    ("Adagrad", _numpy_adagrad, dict(initial_accumulator_value=0.5, eps=1e-3, maximize=True)),
    ("RMSprop", _numpy_rmsprop, dict()),
    ("RMSprop", _numpy_rmsprop, dict(weight_decay=0.1, momentum=0.9)),
    ("RMSprop", _numpy_rmsprop, dict(centered=True, alpha=0.9)),
    ("RMSprop", _numpy_rmsprop, dict(centered=True, momentum=0.5, weight_decay=0.05, maximize=True)),
    ("NAdam", _numpy_nadam, dict()),
    ("NAdam", _numpy_nadam, dict(weight_decay=0.1, lr=0.01)),
    ("NAdam", _numpy_nadam, dict(weight_decay=0.1, decoupled_weight_decay=True, maximize=True)),
    ("NAdam", _numpy_nadam, dict(betas=(0.5, 0.9), momentum_decay=0.05, eps=1e-3)),
])
def test_optimizer_matches_numpy_loop(name, reference, options):
    init, got = _run(lambda params: getattr(optim, name)(params, **options))
    want = reference(init, _grads(init.shape, np.float64), **options)
    np.testing.assert_allclose(got, want, rtol=1e-6, atol=1e-6)
    np.testing.assert_allclose(got, want, rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("name", ["Adagrad", "RMSprop", "NAdam"])
def test_float32_params_stay_float32_and_match_float64_closely(name):
    _, got32 = _run(lambda params: getattr(optim, name)(params, lr=0.01), dtype=np.float32)
    _, got64 = _run(lambda params: getattr(optim, name)(params, lr=0.01), dtype=np.float64)
    assert got32.dtype == np.float32
    np.testing.assert_allclose(got32, got64, rtol=1e-4, atol=1e-5)


def test_per_group_hyperparameters():
    rng = np.random.default_rng(3)
    a0, b0 = rng.standard_normal(4), rng.standard_normal(3)
    grads = [(rng.standard_normal(4), rng.standard_normal(3)) for _ in range(STEPS)]
    a, b = Parameter(a0.copy()), Parameter(b0.copy())
    opt = optim.RMSprop([{"params": [a]}, {"params": [b], "lr": 0.05, "centered": True, "momentum": 0.8}], lr=0.01)
    for ga, gb in grads:
        a.grad, b.grad = fastnn.tensor(ga), fastnn.tensor(gb)
        opt.step()
    np.testing.assert_allclose(a._data, _numpy_rmsprop(a0, [g[0] for g in grads], lr=0.01), rtol=1e-10)
    np.testing.assert_allclose(b._data, _numpy_rmsprop(b0, [g[1] for g in grads], lr=0.05, centered=True,
                                                      momentum=0.8), rtol=1e-10)


# ---- behaviour on a real objective -------------------------------------------------------------------------

@pytest.mark.parametrize("factory, steps", [
    (lambda p: optim.Adagrad(p, lr=0.5), 100),
    (lambda p: optim.RMSprop(p, lr=0.01), 100),
    (lambda p: optim.RMSprop(p, lr=0.01, momentum=0.9, centered=True), 100),
    (lambda p: optim.NAdam(p, lr=0.1), 100),
    # LBFGS.step returns the loss before its iterations: the second step reports where the first ended.
    (lambda p: optim.LBFGS(p), 2),
    (lambda p: optim.LBFGS(p, line_search_fn="strong_wolfe"), 2),
])
def test_optimizers_decrease_an_ill_conditioned_quadratic(factory, steps):
    _check_ill_conditioned_quadratic(factory, steps)


# ---- LBFGS on convex problems ------------------------------------------------------------------------------

def _least_squares(dtype=np.float64):
    rng = np.random.default_rng(7)
    a = rng.standard_normal((80, 12)) @ np.diag(np.linspace(1.0, 10.0, 12))
    b = rng.standard_normal(80)
    return a.astype(dtype), b.astype(dtype)


def _lbfgs_minimize(loss_fn, x, steps=1, **options):
    opt = optim.LBFGS([x], **options)

    def closure():
        opt.zero_grad()
        loss = loss_fn()
        loss.backward()
        return loss

    for _ in range(steps):
        opt.step(closure)
    return opt


@pytest.mark.parametrize("line_search_fn", [None, "strong_wolfe"])
def test_lbfgs_solves_least_squares(line_search_fn):
    a, b = _least_squares()
    x = Parameter(np.zeros(12))
    at, bt = fastnn.tensor(a), fastnn.tensor(b)

    def loss_fn():
        r = at @ x - bt
        return (r * r).sum() * 0.5

    # A fixed step of lr=1 needs the smaller lr to stay stable on this conditioning (the line search does not).
    lr = 1.0 if line_search_fn else 0.5
    _lbfgs_minimize(loss_fn, x, max_iter=200, tolerance_grad=1e-10, tolerance_change=0.0, lr=lr,
                    line_search_fn=line_search_fn)
    np.testing.assert_allclose(x._data, np.linalg.lstsq(a, b, rcond=None)[0], rtol=0, atol=1e-9)


def _newton_logistic(a, y, l2):
    w = np.zeros(a.shape[1])
    for _ in range(50):
        p = 1 / (1 + np.exp(-a @ w))
        grad = a.T @ (p - y) / len(y) + 2 * l2 * w
        hess = a.T @ (a * (p * (1 - p))[:, None]) / len(y) + 2 * l2 * np.eye(len(w))
        w -= np.linalg.solve(hess, grad)
    return w


@pytest.mark.parametrize("line_search_fn", [None, "strong_wolfe"])
def test_lbfgs_solves_regularised_logistic_regression(line_search_fn):
    rng = np.random.default_rng(11)
    a = rng.standard_normal((200, 6))
    y = (a @ rng.standard_normal(6) + 0.5 * rng.standard_normal(200) > 0).astype(np.float64)
    l2 = 1e-2
    w = Parameter(np.zeros(6))
    at, yt = fastnn.tensor(a), fastnn.tensor(y)

    def loss_fn():
        z = at @ w
        return (fastnn.log(1 + fastnn.exp(z)) - yt * z).mean() + l2 * (w * w).sum()

    _lbfgs_minimize(loss_fn, w, steps=3, max_iter=100, tolerance_grad=1e-12, tolerance_change=0.0,
                    line_search_fn=line_search_fn)
    np.testing.assert_allclose(w._data, _newton_logistic(a, y, l2), rtol=0, atol=1e-8)


def test_lbfgs_over_several_parameters_of_any_shape_float32():
    a, b = _least_squares(np.float32)
    w1, w2 = Parameter(np.zeros((3, 4), np.float32)), Parameter(np.zeros(1, np.float32))
    at, bt = fastnn.tensor(a), fastnn.tensor(b)

    def loss_fn():
        r = at @ w1.reshape(12) + w2 - bt
        return (r * r).mean()

    opt = optim.LBFGS([w1, w2], max_iter=100, line_search_fn="strong_wolfe")

    def closure():
        opt.zero_grad()
        loss = loss_fn()
        loss.backward()
        return loss

    opt.step(closure)
    design = np.hstack([a.astype(np.float64), np.ones((80, 1))])
    solution = np.linalg.lstsq(design, b.astype(np.float64), rcond=None)[0]
    assert w1.dtype == np.float32 and w2.dtype == np.float32
    np.testing.assert_allclose(np.concatenate([w1._data.reshape(-1), w2._data]), solution, atol=2e-3)


def test_lbfgs_stops_at_once_when_the_gradient_is_zero():
    x = Parameter(np.zeros(3))
    calls = []

    def closure():
        calls.append(1)
        opt.zero_grad()
        loss = (x * x).sum()
        loss.backward()
        return loss

    opt = optim.LBFGS([x])
    assert opt.step(closure).item() == 0.0
    assert len(calls) == 1 and opt.state[x] == {"func_evals": 1, "n_iter": 0}


@pytest.mark.parametrize("line_search_fn", [None, "strong_wolfe"])
def test_lbfgs_state_dict_resume_gives_the_identical_continuation(line_search_fn, tmp_path):
    a, b = _least_squares()
    at, bt = fastnn.tensor(a), fastnn.tensor(b)

    def make(init):
        x = Parameter(init.copy())

        def loss_fn():
            r = at @ x - bt
            return (r * r).sum() * 0.5
        opt = optim.LBFGS([x], lr=0.5, max_iter=4, history_size=3, line_search_fn=line_search_fn)

        def closure():
            opt.zero_grad()
            loss = loss_fn()
            loss.backward()
            return loss
        return x, opt, closure

    x, opt, closure = make(np.zeros(12))
    for _ in range(2):
        opt.step(closure)
    fastnn.save({"optimizer": opt.state_dict(), "x": x._data.copy()}, tmp_path / "ckpt")
    for _ in range(3):
        opt.step(closure)

    checkpoint = fastnn.load(tmp_path / "ckpt")
    resumed_x, resumed, resumed_closure = make(checkpoint["x"])
    resumed.load_state_dict(checkpoint["optimizer"])
    for _ in range(3):
        resumed.step(resumed_closure)
    np.testing.assert_array_equal(resumed_x._data, x._data)
    assert resumed.state[resumed_x]["n_iter"] == opt.state[x]["n_iter"]
    assert len(resumed.state[resumed_x]["old_dirs"]) == 3


def test_lbfgs_state_dict_copies_the_history():
    x = Parameter(np.array([3.0, -2.0]))
    opt = _lbfgs_minimize(lambda: (x * x * fastnn.tensor(np.array([1.0, 5.0]))).sum(), x, max_iter=3)
    saved = opt.state_dict()["state"][0]
    saved["old_dirs"][0][:] = 42.0
    assert not np.any(opt.state[x]["old_dirs"][0] == 42.0)
    with pytest.raises(ValueError, match=r"'d' of shape \(3,\).*2 elements"):
        bad = opt.state_dict()
        bad["state"][0]["d"] = np.zeros(3)
        optim.LBFGS([x]).load_state_dict(bad)


# ---- state dicts of the per-parameter optimizers -----------------------------------------------------------

@pytest.mark.parametrize("factory", [
    lambda p: optim.Adagrad(p, lr=0.1, lr_decay=0.01, initial_accumulator_value=0.1),
    lambda p: optim.RMSprop([{"params": p[:1], "centered": True}, {"params": p[1:]}], momentum=0.9),
    lambda p: optim.NAdam(p, lr=0.01, weight_decay=0.1, decoupled_weight_decay=True),
])
def test_state_dict_round_trip_resumes_identically(factory, tmp_path):
    _check_state_dict_round_trip(factory, tmp_path)


# ---- validation --------------------------------------------------------------------------------------------

@pytest.mark.parametrize("call, error, match", [
    (lambda p: optim.Adagrad(p, lr=-0.1), ValueError, "Invalid learning rate: -0.1"),
    (lambda p: optim.Adagrad(p, lr_decay=-1), ValueError, "Invalid lr_decay value: -1"),
    (lambda p: optim.Adagrad(p, weight_decay=-1), ValueError, "Invalid weight_decay value: -1"),
    (lambda p: optim.Adagrad(p, initial_accumulator_value=-1), ValueError,
     "Invalid initial_accumulator_value value: -1"),
    (lambda p: optim.Adagrad(p, eps=-1), ValueError, "Invalid epsilon value: -1"),
    (lambda p: optim.RMSprop(p, lr=-1), ValueError, "Invalid learning rate"),
    (lambda p: optim.RMSprop(p, eps=-1), ValueError, "Invalid epsilon value"),
    (lambda p: optim.RMSprop(p, momentum=-1), ValueError, "Invalid momentum value: -1"),
    (lambda p: optim.RMSprop(p, weight_decay=-1), ValueError, "Invalid weight_decay value"),
    (lambda p: optim.RMSprop(p, alpha=-0.5), ValueError, "Invalid alpha value: -0.5"),
    (lambda p: optim.RMSprop(p, alpha="high"), TypeError, "alpha must be a real number"),
    (lambda p: optim.NAdam(p, lr=-1), ValueError, "Invalid learning rate"),
    (lambda p: optim.NAdam(p, betas=(0.9, 1.0)), ValueError, "Invalid beta parameter at index 1: 1.0"),
    (lambda p: optim.NAdam(p, eps=-1), ValueError, "Invalid epsilon value"),
    (lambda p: optim.NAdam(p, momentum_decay=-1), ValueError, "Invalid momentum_decay value: -1"),
    (lambda p: optim.LBFGS(p, lr=-1), ValueError, "Invalid learning rate"),
    (lambda p: optim.LBFGS(p, max_iter=0), ValueError, "max_iter must be a positive integer"),
    (lambda p: optim.LBFGS(p, history_size=2.5), ValueError, "history_size must be a positive integer"),
    (lambda p: optim.LBFGS(p, line_search_fn="armijo"), ValueError, "only 'strong_wolfe' is supported"),
    (lambda p: optim.LBFGS([{"params": p[:1]}, {"params": p[1:]}]), ValueError,
     "LBFGS doesn't support per-parameter options"),
    (lambda p: optim.LBFGS(p).step(None), ValueError, "needs a closure"),
])
def test_invalid_arguments(call, error, match):
    with pytest.raises(error, match=match):
        call([Parameter(np.ones(2)), Parameter(np.ones(3))])


def test_defaults_are_pytorchs():
    p = [Parameter(np.ones(1))]
    assert optim.Adagrad(p).defaults == dict(lr=1e-2, lr_decay=0, weight_decay=0, initial_accumulator_value=0,
                                             eps=1e-10, maximize=False)
    assert optim.RMSprop(p).defaults == dict(lr=1e-2, alpha=0.99, eps=1e-8, weight_decay=0, momentum=0,
                                             centered=False, maximize=False)
    assert optim.NAdam(p).defaults == dict(lr=2e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0,
                                           momentum_decay=4e-3, decoupled_weight_decay=False, maximize=False)
    assert optim.LBFGS(p).defaults == dict(lr=1, max_iter=20, max_eval=25, tolerance_grad=1e-7,
                                           tolerance_change=1e-9, history_size=100, line_search_fn=None)


# ---- gradient clipping -------------------------------------------------------------------------------------

def _params_with_grads(*grads):
    params = []
    for g in grads:
        p = Parameter(np.zeros_like(g))
        p.grad = fastnn.tensor(np.array(g))
        params.append(p)
    return params


def test_clip_grad_norm_scales_to_max_norm_and_returns_the_total_norm():
    params = _params_with_grads(np.array([3.0, 0.0]), np.array([[4.0], [0.0]]))
    total = clip_grad_norm_(params, max_norm=1.0)
    assert isinstance(total, fastnn.Tensor) and total.shape == () and total.item() == 5.0
    coef = 1.0 / (5.0 + 1e-6)
    np.testing.assert_allclose(params[0].grad._data, [3.0 * coef, 0.0], rtol=1e-15)
    np.testing.assert_allclose(params[1].grad._data, [[4.0 * coef], [0.0]], rtol=1e-15)


@pytest.mark.parametrize("norm_type, expected", [(1.0, 9.0), (2.0, np.sqrt(29.0)), (3, 99 ** (1 / 3)),
                                                 (float("inf"), 4.0), ("inf", 4.0)])
def test_clip_grad_norm_types(norm_type, expected):
    params = _params_with_grads(np.array([2.0, -3.0]), np.array([-4.0]))
    total = clip_grad_norm_(params, max_norm=0.5, norm_type=norm_type)
    np.testing.assert_allclose(total.item(), expected, rtol=1e-12)
    scaled = np.concatenate([p.grad._data for p in params])
    np.testing.assert_allclose(scaled, np.array([2.0, -3.0, -4.0]) * 0.5 / (expected + 1e-6), rtol=1e-12)


def test_clip_grad_norm_leaves_small_gradients_and_skips_missing_ones():
    small, no_grad = _params_with_grads(np.array([0.3, 0.4]))[0], Parameter(np.ones(2))
    total = clip_grad_norm_([small, no_grad], max_norm=1.0)
    np.testing.assert_allclose(total.item(), 0.5)
    np.testing.assert_array_equal(small.grad._data, [0.3, 0.4])
    assert no_grad.grad is None
    single = _params_with_grads(np.array([6.0, 8.0], np.float32))[0]
    total = clip_grad_norm_(single, 5.0)  # a single Tensor works too
    assert total.dtype == np.float32 and single.grad.dtype == np.float32
    np.testing.assert_allclose(single.grad._data, [3.0, 4.0], rtol=1e-6)
    assert clip_grad_norm_([], 1.0).item() == 0.0


@pytest.mark.filterwarnings("ignore:invalid value encountered in multiply:RuntimeWarning")
def test_clip_grad_norm_non_finite():
    params = _params_with_grads(np.array([np.inf, 1.0]))
    with pytest.raises(RuntimeError, match="non-finite"):
        clip_grad_norm_(params, 1.0, error_if_nonfinite=True)
    np.testing.assert_array_equal(params[0].grad._data, [np.inf, 1.0])
    assert clip_grad_norm_(params, 1.0).item() == np.inf
    assert np.isnan(params[0].grad._data[0]) and params[0].grad._data[1] == 0.0  # inf * 0, as in PyTorch


def test_clip_grad_value():
    params = _params_with_grads(np.array([-3.0, 0.5, 2.0]), np.array([[0.1, -0.2]]))
    assert clip_grad_value_(params, 1.0) is None
    np.testing.assert_array_equal(params[0].grad._data, [-1.0, 0.5, 1.0])
    np.testing.assert_array_equal(params[1].grad._data, [[0.1, -0.2]])
    with pytest.raises(TypeError, match="parameters must be Tensors"):
        clip_grad_value_([np.ones(2)], 1.0)

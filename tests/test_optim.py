"""Optimizers: kernels vs NumPy references, classes vs hand-written update loops, convergence, state dicts,
parameter groups and argument validation."""
import numpy as np
import pytest

import fastnn
from fastnn import optim
from fastnn._kernels import cpu_optim, ref_optim
from fastnn.nn import Parameter

STEPS = 20


def _grads(shape, dtype, seed=0):
    rng = np.random.default_rng(seed)
    return [rng.standard_normal(shape).astype(dtype) for _ in range(STEPS)]


def _tolerance(dtype):
    return dict(rtol=1e-6, atol=1e-6) if dtype == np.float64 else dict(rtol=2e-5, atol=2e-6)


# ---- kernels vs references ---------------------------------------------------------------------------------

SGD_OPTIONS = [
    dict(momentum=0.0, dampening=0.0, weight_decay=0.0, nesterov=False, maximize=False),
    dict(momentum=0.0, dampening=0.0, weight_decay=0.1, nesterov=False, maximize=True),
    dict(momentum=0.9, dampening=0.0, weight_decay=0.0, nesterov=False, maximize=False),
    dict(momentum=0.9, dampening=0.3, weight_decay=0.05, nesterov=False, maximize=True),
    dict(momentum=0.8, dampening=0.0, weight_decay=0.05, nesterov=True, maximize=False),
]
ADAM_OPTIONS = [
    dict(weight_decay=0.0, amsgrad=False, decoupled_weight_decay=False, maximize=False),
    dict(weight_decay=0.1, amsgrad=False, decoupled_weight_decay=False, maximize=True),
    dict(weight_decay=0.1, amsgrad=True, decoupled_weight_decay=False, maximize=False),
    dict(weight_decay=0.1, amsgrad=True, decoupled_weight_decay=True, maximize=True),
]


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("options", SGD_OPTIONS)
def test_sgd_kernel_matches_reference(dtype, options):
    param = np.random.default_rng(1).standard_normal(1000).astype(dtype)
    expected, buf, expected_buf = param.copy(), np.zeros_like(param), np.zeros_like(param)
    for step, g in enumerate(_grads(1000, dtype)):
        cpu_optim.sgd_step(param, g, buf, 0.05, first_step=step == 0, **options)
        ref_optim.sgd_step(expected, g, expected_buf, 0.05, first_step=step == 0, **options)
    np.testing.assert_allclose(param, expected, **_tolerance(dtype))
    np.testing.assert_allclose(buf, expected_buf, **_tolerance(dtype))


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("options", ADAM_OPTIONS)
def test_adam_kernel_matches_reference(dtype, options):
    param = np.random.default_rng(1).standard_normal(1000).astype(dtype)
    expected = param.copy()
    state = [np.zeros_like(param) for _ in range(3)]
    expected_state = [np.zeros_like(param) for _ in range(3)]
    for step, g in enumerate(_grads(1000, dtype), start=1):
        cpu_optim.adam_step(param, g, *state, step, 0.01, 0.9, 0.99, 1e-8, **options)
        ref_optim.adam_step(expected, g, *expected_state, step, 0.01, 0.9, 0.99, 1e-8, **options)
    np.testing.assert_allclose(param, expected, **_tolerance(dtype))
    for got, want in zip(state, expected_state):
        np.testing.assert_allclose(got, want, **_tolerance(dtype))


def test_adam_kernel_lerp_branch_for_small_beta1():
    # beta1 < 0.5 makes torch.lerp use its second formula; the result must still be the same average.
    param = np.linspace(-1, 1, 64)
    expected = param.copy()
    state = [np.zeros_like(param) for _ in range(3)]
    expected_state = [np.zeros_like(param) for _ in range(3)]
    for step, g in enumerate(_grads(64, np.float64), start=1):
        cpu_optim.adam_step(param, g, *state, step, 0.01, 0.2, 0.9, 1e-8, 0.0, False, False, False)
        ref_optim.adam_step(expected, g, *expected_state, step, 0.01, 0.2, 0.9, 1e-8, 0.0, False, False, False)
    np.testing.assert_allclose(param, expected, rtol=1e-12, atol=1e-12)


# ---- optimizer classes vs hand-written loops ---------------------------------------------------------------

def _run(optimizer_factory, shape=(7, 5), dtype=np.float64, seed=0):
    """Params after STEPS steps of the optimizer on a fixed gradient sequence; also the initial value."""
    init = np.random.default_rng(seed + 100).standard_normal(shape).astype(dtype)
    p = Parameter(init.copy())
    opt = optimizer_factory([p])
    for g in _grads(shape, dtype, seed):
        p.grad = fastnn.tensor(g)
        opt.step()
    return init, p._data


def _numpy_sgd(p, grads, lr, momentum=0.0, dampening=0.0, weight_decay=0.0, nesterov=False, maximize=False):
    p, buf = p.copy(), None
    for g in grads:
        g = (-g if maximize else g) + weight_decay * p
        if momentum:
            buf = g.copy() if buf is None else momentum * buf + (1 - dampening) * g
            g = g + momentum * buf if nesterov else buf
        p = p - lr * g
    return p


def _numpy_adam(p, grads, lr, beta1, beta2, eps, weight_decay=0.0, amsgrad=False, maximize=False,
                decoupled=False):
    p = p.copy()
    m, v, v_max = np.zeros_like(p), np.zeros_like(p), np.zeros_like(p)
    for t, g in enumerate(grads, start=1):
        g = -g if maximize else g
        if decoupled:
            p = p * (1 - lr * weight_decay)
        else:
            g = g + weight_decay * p
        m = beta1 * m + (1 - beta1) * g
        v = beta2 * v + (1 - beta2) * g * g
        v_max = np.maximum(v_max, v)
        m_hat = m / (1 - beta1 ** t)
        v_hat = (v_max if amsgrad else v) / (1 - beta2 ** t)
        p = p - lr * m_hat / (np.sqrt(v_hat) + eps)
    return p


@pytest.mark.parametrize("options", [
    dict(),
    dict(weight_decay=0.1),
    dict(momentum=0.9),
    dict(momentum=0.9, dampening=0.5, weight_decay=0.01),
    dict(momentum=0.9, nesterov=True),
    dict(momentum=0.5, nesterov=True, weight_decay=0.1, maximize=True),
])
def test_sgd_matches_numpy_loop(options):
    init, got = _run(lambda params: optim.SGD(params, lr=0.03, **options))
    np.testing.assert_allclose(got, _numpy_sgd(init, _grads(init.shape, np.float64), 0.03, **options),
                               rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("options", [
    dict(),
    dict(weight_decay=0.1),
    dict(amsgrad=True),
    dict(amsgrad=True, weight_decay=0.05, maximize=True),
    dict(betas=(0.5, 0.9), eps=1e-3),
])
def test_adam_matches_numpy_loop(options):
    options = dict(options)
    init, got = _run(lambda params: optim.Adam(params, lr=0.01, **options))
    betas = options.pop("betas", (0.9, 0.999))
    eps = options.pop("eps", 1e-8)
    want = _numpy_adam(init, _grads(init.shape, np.float64), 0.01, *betas, eps, **options)
    np.testing.assert_allclose(got, want, rtol=1e-9, atol=1e-12)


@pytest.mark.parametrize("options", [dict(), dict(weight_decay=0.3, amsgrad=True), dict(maximize=True)])
def test_adamw_matches_numpy_loop(options):
    options = dict(options)
    init, got = _run(lambda params: optim.AdamW(params, lr=0.01, **options))
    weight_decay = options.pop("weight_decay", 1e-2)
    want = _numpy_adam(init, _grads(init.shape, np.float64), 0.01, 0.9, 0.999, 1e-8, weight_decay=weight_decay,
                       decoupled=True, **options)
    np.testing.assert_allclose(got, want, rtol=1e-9, atol=1e-12)


def test_float32_params_stay_float32_and_match_float64_closely():
    init, got32 = _run(lambda params: optim.Adam(params, lr=0.01), dtype=np.float32)
    _, got64 = _run(lambda params: optim.Adam(params, lr=0.01), dtype=np.float64)
    assert got32.dtype == np.float32
    np.testing.assert_allclose(got32, got64, rtol=1e-4, atol=1e-5)


# ---- behaviour on a real objective -------------------------------------------------------------------------

@pytest.mark.parametrize("factory, steps", [
    (lambda p: optim.SGD(p, lr=0.009, momentum=0.9), 150),
    (lambda p: optim.SGD(p, lr=0.009, momentum=0.9, nesterov=True), 150),
    (lambda p: optim.Adam(p, lr=0.1), 150),
    (lambda p: optim.AdamW(p, lr=0.1, weight_decay=1e-3), 150),
])
def test_optimizers_decrease_an_ill_conditioned_quadratic(factory, steps):
    curvature = fastnn.tensor(np.array([1.0, 10.0, 100.0]))
    x = Parameter(np.array([1.0, 1.0, 1.0]))
    opt = factory([x])

    def closure():
        opt.zero_grad()
        loss = (curvature * x * x).sum() * 0.5
        loss.backward()
        return loss

    start = closure().item()
    for _ in range(steps):
        loss = opt.step(closure)
    assert loss.item() < 1e-3 * start


def test_step_closure_runs_with_grad_enabled_and_returns_its_loss():
    x = Parameter(np.array([2.0]))
    opt = optim.SGD([x], lr=0.1)

    def closure():
        opt.zero_grad()
        loss = (x * x).sum()
        loss.backward()
        return loss

    with fastnn.no_grad():
        loss = opt.step(closure)
    assert loss.item() == 4.0
    np.testing.assert_allclose(x._data, [2.0 - 0.1 * 4.0])


# ---- state dicts -------------------------------------------------------------------------------------------

@pytest.mark.parametrize("factory", [
    lambda p: optim.SGD(p, lr=0.05, momentum=0.9, nesterov=True),
    lambda p: optim.Adam(p, lr=0.01, amsgrad=True),
    lambda p: optim.AdamW([{"params": p[:1]}, {"params": p[1:], "lr": 0.003}], lr=0.01),
])
def test_state_dict_round_trip_resumes_identically(factory, tmp_path):
    rng = np.random.default_rng(5)
    shapes = [(4, 3), (3,)]
    grads = [[rng.standard_normal(s) for s in shapes] for _ in range(10)]
    params = [Parameter(rng.standard_normal(s)) for s in shapes]
    opt = factory(params)

    def train(opt, params, steps):
        for step_grads in steps:
            for p, g in zip(params, step_grads):
                p.grad = fastnn.tensor(g)
            opt.step()

    train(opt, params, grads[:5])
    fastnn.save({"optimizer": opt.state_dict(), "params": [p._data.copy() for p in params]}, tmp_path / "ckpt")
    train(opt, params, grads[5:])

    checkpoint = fastnn.load(tmp_path / "ckpt")
    resumed_params = [Parameter(a) for a in checkpoint["params"]]
    resumed = factory(resumed_params)
    resumed.load_state_dict(checkpoint["optimizer"])
    train(resumed, resumed_params, grads[5:])
    for a, b in zip(params, resumed_params):
        np.testing.assert_array_equal(a._data, b._data)
    assert [g["lr"] for g in resumed.param_groups] == [g["lr"] for g in opt.param_groups]


def test_state_dict_uses_indices_and_copies_state():
    a, b = Parameter(np.ones(2)), Parameter(np.ones(3))
    opt = optim.SGD([{"params": [a]}, {"params": [b], "lr": 0.5}], lr=0.1, momentum=0.9)
    a.grad, b.grad = fastnn.tensor(np.ones(2)), fastnn.tensor(np.ones(3))
    opt.step()
    sd = opt.state_dict()
    assert [g["params"] for g in sd["param_groups"]] == [[0], [1]]
    assert sd["param_groups"][1]["lr"] == 0.5 and sd["param_groups"][0]["momentum"] == 0.9
    sd["state"][0]["momentum_buffer"][:] = 42.0
    assert not np.any(opt.state[a]["momentum_buffer"] == 42.0)


def test_load_state_dict_validates_groups_and_shapes():
    a, b = Parameter(np.ones(2)), Parameter(np.ones(3))
    source = optim.Adam([a, b])
    a.grad, b.grad = fastnn.tensor(np.ones(2)), fastnn.tensor(np.ones(3))
    source.step()
    sd = source.state_dict()
    with pytest.raises(ValueError, match="different number of parameter groups"):
        optim.Adam([{"params": [a]}, {"params": [b]}]).load_state_dict(sd)
    with pytest.raises(ValueError, match="doesn't match the size"):
        optim.Adam([a]).load_state_dict(sd)
    with pytest.raises(ValueError, match=r"'exp_avg' of shape \(2,\).*shape is \(3,\)"):
        optim.Adam([b, a]).load_state_dict(sd)
    with pytest.raises(ValueError, match="'state' and 'param_groups'"):
        optim.Adam([a, b]).load_state_dict({"state": {}})


# ---- groups, grads, bookkeeping ----------------------------------------------------------------------------

def test_param_groups_use_their_own_options_and_skip_missing_grads():
    a, b, c = Parameter(np.ones(2)), Parameter(np.ones(2)), Parameter(np.ones(2))
    opt = optim.SGD([{"params": [a, c]}, {"params": b, "lr": 0.0}], lr=0.5)
    a.grad, b.grad = fastnn.tensor(np.ones(2)), fastnn.tensor(np.ones(2))
    opt.step()
    np.testing.assert_array_equal(a._data, [0.5, 0.5])
    np.testing.assert_array_equal(b._data, [1.0, 1.0])
    np.testing.assert_array_equal(c._data, [1.0, 1.0])
    assert opt.param_groups[1]["momentum"] == 0 and opt.param_groups[1]["lr"] == 0.0


def test_add_param_group():
    a, b = Parameter(np.ones(2)), Parameter(np.ones(2))
    opt = optim.Adam([a], lr=0.1)
    opt.add_param_group({"params": [b], "betas": (0.5, 0.6)})
    assert opt.param_groups[1]["lr"] == 0.1 and opt.param_groups[1]["betas"] == (0.5, 0.6)
    with pytest.raises(ValueError, match="more than one parameter group"):
        opt.add_param_group({"params": [a]})
    with pytest.raises(ValueError, match="Invalid beta parameter at index 1"):
        opt.add_param_group({"params": [Parameter(np.ones(1))], "betas": (0.5, 1.0)})


def test_zero_grad():
    p = Parameter(np.ones(3))
    opt = optim.SGD([p])
    p.grad = fastnn.tensor(np.ones(3))
    opt.zero_grad(set_to_none=False)
    np.testing.assert_array_equal(p.grad._data, np.zeros(3))
    opt.zero_grad()
    assert p.grad is None


def test_noncontiguous_param_is_updated_in_place():
    p = Parameter(np.arange(6.0).reshape(2, 3))
    p._data = p._data.T
    opt = optim.SGD([p], lr=1.0)
    p.grad = fastnn.tensor(np.ones((3, 2)))
    opt.step()
    np.testing.assert_array_equal(p._data, np.arange(6.0).reshape(2, 3).T - 1.0)


def test_repr_lists_groups_and_options():
    text = repr(optim.SGD([Parameter(np.ones(1))], lr=0.1, momentum=0.9))
    assert text.startswith("SGD (") and "Parameter Group 0" in text and "    lr: 0.1" in text
    assert "    momentum: 0.9" in text and text.endswith(")")


@pytest.mark.parametrize("call, error, match", [
    (lambda p: optim.SGD(p, lr=-0.1), ValueError, "Invalid learning rate: -0.1"),
    (lambda p: optim.SGD(p, momentum=-0.5), ValueError, "Invalid momentum value: -0.5"),
    (lambda p: optim.SGD(p, weight_decay=-1), ValueError, "Invalid weight_decay value: -1"),
    (lambda p: optim.SGD(p, nesterov=True), ValueError, "Nesterov momentum requires a momentum and zero dampening"),
    (lambda p: optim.SGD(p, momentum=0.9, dampening=0.1, nesterov=True), ValueError, "zero dampening"),
    (lambda p: optim.SGD(p, lr="fast"), TypeError, "lr must be a real number"),
    (lambda p: optim.Adam(p, lr=-1e-3), ValueError, "Invalid learning rate"),
    (lambda p: optim.Adam(p, eps=-1e-8), ValueError, "Invalid epsilon value"),
    (lambda p: optim.Adam(p, betas=(1.0, 0.999)), ValueError, "Invalid beta parameter at index 0: 1.0"),
    (lambda p: optim.Adam(p, betas=(0.9, -0.1)), ValueError, "Invalid beta parameter at index 1"),
    (lambda p: optim.Adam(p, betas=0.9), TypeError, "betas"),
    (lambda p: optim.AdamW(p, weight_decay=-0.1), ValueError, "Invalid weight_decay value"),
    (lambda p: optim.SGD([]), ValueError, "empty parameter list"),
    (lambda p: optim.SGD(p[0]), TypeError, "iterable of Tensors or dicts"),
    (lambda p: optim.SGD([np.ones(2)]), TypeError, "can only optimize Tensors"),
    (lambda p: optim.SGD([{"params": {p[0]}}]), TypeError, "ordered collections"),
    (lambda p: optim.SGD([{"params": p}, {"params": p}]), ValueError, "more than one parameter group"),
])
def test_invalid_arguments_raise(call, error, match):
    with pytest.raises(error, match=match):
        call([Parameter(np.ones(2))])


def test_non_leaf_tensor_is_rejected():
    x = Parameter(np.ones(2))
    with pytest.raises(ValueError, match="non-leaf"):
        optim.SGD([x * 2])


def test_unsupported_param_dtype_raises_at_step():
    p = fastnn.tensor(np.ones(2, np.float16), requires_grad=True)
    opt = optim.SGD([p])
    p.grad = fastnn.tensor(np.ones(2, np.float16))
    with pytest.raises(TypeError, match="float16"):
        opt.step()

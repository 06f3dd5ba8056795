"""Adadelta, Adamax, RAdam, ASGD, Rprop, SparseAdam, step hooks, PolynomialLR and CyclicLR (issue 14).

Kernels against their NumPy references; each optimizer's first iterates against a NumPy transcription of the
algorithm in PyTorch's documentation, on every device; state dicts, validation messages and defaults as
PyTorch's; schedules against their closed forms; and, when torch is importable, against torch.optim itself."""
import math

import numpy as np
import pytest

import fastnn
from fastnn import optim
from fastnn._dispatch import backend
from fastnn._kernels import ref_optim_more
from fastnn.nn import Parameter
from fastnn.optim import lr_scheduler
from conftest import host
# The shared checkpoint round trip of the SGD/Adam tests.
from test_optim import test_state_dict_round_trip_resumes_identically as _check_state_dict_round_trip

STEPS = 10
SHAPE = (6, 4)


def _problem(dtype=np.float64, seed=0):
    """A start point and STEPS gradients; some gradients have whole zero rows (SparseAdam skips those rows)
    and some flip sign (Rprop backs off)."""
    rng = np.random.default_rng(seed)
    init = rng.standard_normal(SHAPE).astype(dtype)
    grads = [rng.standard_normal(SHAPE).astype(dtype) for _ in range(STEPS)]
    for t in range(0, STEPS, 3):
        grads[t][1] = 0
        grads[t][4] = 0
    grads[5] = -grads[4]
    return init, grads


def _iterates(factory, init, grads, device="cpu"):
    """The parameter after each step of the optimizer built by factory([p]) on the gradient sequence."""
    p = Parameter(fastnn.tensor(init.copy(), device=device))
    opt = factory([p])
    out = []
    for g in grads:
        p.grad = fastnn.tensor(g, device=device)
        opt.step()
        out.append(host(p).copy())
    return out, opt, p


# ---- kernels vs references ---------------------------------------------------------------------------------

def _kernel_calls(name):
    """(number of state arrays, initial state value, call(kernels_or_module, step, param, grad, state, extra))
    for one kernel with non-default options; `extra` carries scalars a kernel returns (ASGD's eta, mu)."""
    if name == "adadelta_step":
        return 2, 0.0, lambda k, t, p, g, s, e: k.adadelta_step(p, g, *s, 0.5, 0.8, 1e-6, 0.1, True)
    if name == "adamax_step":
        return 2, 0.0, lambda k, t, p, g, s, e: k.adamax_step(p, g, *s, t, 0.01, 0.8, 0.99, 1e-8, 0.1, False)
    if name == "radam_step":
        return 2, 0.0, lambda k, t, p, g, s, e: k.radam_step(p, g, *s, t, 0.01, 0.9, 0.9, 1e-8, 0.1, t % 2 == 0,
                                                                t % 3 == 0)
    if name == "asgd_step":
        return 1, 0.0, lambda k, t, p, g, s, e: k.asgd_step(p, g, *s, t, *e, 0.05, 1e-2, 0.75, 4, 0.1, False)
    if name == "rprop_step":
        return 2, 0.01, lambda k, t, p, g, s, e: k.rprop_step(p, g, *s, 0.5, 1.2, 1e-3, 0.05, t > 6)
    if name == "sparse_adam_step":
        return 2, 0.0, lambda k, t, p, g, s, e: k.sparse_adam_step(p, g, *s, 9, t, 0.01, 0.9, 0.99, 1e-8, t > 6)
    raise AssertionError(name)


KERNEL_NAMES = ["adadelta_step", "adamax_step", "radam_step", "asgd_step", "rprop_step", "sparse_adam_step"]


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("name", KERNEL_NAMES)
def test_kernel_matches_reference(name, dtype):
    n_state, state_init, call = _kernel_calls(name)
    kernels = backend("cpu").kernels
    rng = np.random.default_rng(3)
    n = 999  # 111 rows of 9 for sparse_adam_step; not a multiple of a SIMD width
    param = rng.standard_normal(n).astype(dtype)
    expected = param.copy()
    state = [np.full(n, state_init, dtype) for _ in range(n_state)]
    expected_state = [s.copy() for s in state]
    extra = expected_extra = (0.05, 1.0)
    for t in range(1, 13):
        g = rng.standard_normal(n).astype(dtype)
        g.reshape(-1, 9)[t % 4::4] = 0  # zero rows for SparseAdam, zero gradients for Rprop's sign logic
        if t % 5 == 0:
            g = -g
        extra = call(kernels, t, param, g, state, extra)
        expected_extra = call(ref_optim_more, t, expected, g, expected_state, expected_extra)
    tolerance = dict(rtol=1e-12, atol=1e-14) if dtype == np.float64 else dict(rtol=2e-6, atol=2e-7)
    np.testing.assert_allclose(param, expected, **tolerance)
    for got, want in zip(state, expected_state):
        np.testing.assert_allclose(got, want, **tolerance)
    assert param.dtype == dtype and all(s.dtype == dtype for s in state)
    if name == "asgd_step":
        np.testing.assert_allclose(extra, expected_extra, rtol=1e-15)


def test_sparse_adam_kernel_leaves_rows_without_gradient_alone():
    kernels = backend("cpu").kernels
    param = np.arange(12.0)
    m, v = np.full(12, 0.5), np.full(12, 0.25)
    grad = np.zeros(12)
    grad[5] = 2.0  # row 1 of the (3, 4) view: the only row held by a sparse gradient
    kernels.sparse_adam_step(param, grad, m, v, 4, 1, 0.1, 0.9, 0.999, 1e-8, False)
    untouched = np.r_[0:4, 8:12]
    np.testing.assert_array_equal(param[untouched], np.arange(12.0)[untouched])
    np.testing.assert_array_equal(m[untouched], 0.5)
    np.testing.assert_array_equal(v[untouched], 0.25)
    assert np.all(param[4:8] != np.arange(4.0, 8.0))  # every entry of a held row moves, zero gradients included
    np.testing.assert_allclose(m[4:8], 0.9 * 0.5 + 0.1 * grad[4:8])


# ---- optimizers vs NumPy transcriptions of PyTorch's documented algorithms -----------------------------------

def _np_adadelta(p, grads, lr=1.0, rho=0.9, eps=1e-6, weight_decay=0.0, maximize=False):
    # v_t = rho v + (1-rho) g^2; dx = sqrt(u + eps)/sqrt(v_t + eps) g; u_t = rho u + (1-rho) dx^2; p -= lr dx
    v, u, out = 0 * p, 0 * p, []
    for g in grads:
        g = (-g if maximize else g) + weight_decay * p
        v = rho * v + (1 - rho) * g * g
        dx = np.sqrt(u + eps) / np.sqrt(v + eps) * g
        u = rho * u + (1 - rho) * dx * dx
        p = p - lr * dx
        out.append(p)
    return out


def _np_adamax(p, grads, lr=2e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.0, maximize=False):
    # m_t = b1 m + (1-b1) g; u_t = max(b2 u, |g| + eps); p -= lr/(1 - b1^t) m_t/u_t
    (b1, b2), m, u, out = betas, 0 * p, 0 * p, []
    for t, g in enumerate(grads, start=1):
        g = (-g if maximize else g) + weight_decay * p
        m = b1 * m + (1 - b1) * g
        u = np.maximum(b2 * u, np.abs(g) + eps)
        p = p - lr / (1 - b1 ** t) * m / u
        out.append(p)
    return out


def _np_radam(p, grads, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.0, decoupled_weight_decay=False,
              maximize=False):
    # rho_inf = 2/(1-b2) - 1; rho_t = rho_inf - 2t b2^t/(1-b2^t); if rho_t > 5: adaptive step with the
    # rectification r_t, else the un-adapted momentum step p -= lr m_hat
    (b1, b2), m, v, out = betas, 0 * p, 0 * p, []
    rho_inf = 2 / (1 - b2) - 1
    for t, g in enumerate(grads, start=1):
        g = -g if maximize else g
        if decoupled_weight_decay:
            p = p * (1 - lr * weight_decay)
        else:
            g = g + weight_decay * p
        m = b1 * m + (1 - b1) * g
        v = b2 * v + (1 - b2) * g * g
        m_hat = m / (1 - b1 ** t)
        rho_t = rho_inf - 2 * t * b2 ** t / (1 - b2 ** t)
        if rho_t > 5:
            adaptive = math.sqrt(1 - b2 ** t) / (np.sqrt(v) + eps)
            r = math.sqrt((rho_t - 4) * (rho_t - 2) * rho_inf / ((rho_inf - 4) * (rho_inf - 2) * rho_t))
            p = p - lr * m_hat * r * adaptive
        else:
            p = p - lr * m_hat
        out.append(p)
    return out


def _np_asgd(p, grads, lr=1e-2, lambd=1e-4, alpha=0.75, t0=1e6, weight_decay=0.0, maximize=False):
    # p = p (1 - lambd eta) - eta g; ax = ax + mu (p - ax); eta_t = lr/(1 + lambd lr t)^alpha; mu_t = 1/max(1, t-t0)
    eta, mu, ax, out = lr, 1.0, 0 * p, []
    for t, g in enumerate(grads, start=1):
        g = (-g if maximize else g) + weight_decay * p
        p = p * (1 - lambd * eta) - eta * g
        ax = ax + mu * (p - ax)
        eta, mu = lr / (1 + lambd * lr * t) ** alpha, 1 / max(1, t - t0)
        out.append(p)
    return out, ax


def _np_rprop(p, grads, lr=1e-2, etas=(0.5, 1.2), step_sizes=(1e-6, 50), maximize=False):
    # g*g_prev > 0: eta *= eta+; < 0: eta *= eta-, g = 0; eta clamped to step_sizes; p -= sign(g) eta; g_prev = g
    size, prev, out = np.full_like(p, lr), 0 * p, []
    for g in grads:
        g = -g if maximize else g.copy()
        s = g * prev
        size = np.clip(size * np.where(s > 0, etas[1], np.where(s < 0, etas[0], 1.0)), *step_sizes)
        g[s < 0] = 0
        p = p - np.sign(g) * size
        prev = g
        out.append(p)
    return out


def _np_sparse_adam(p, grads, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, maximize=False):
    # Adam without weight decay, applied to the rows the (sparse) gradient holds: moments and values of the
    # other rows stay; bias corrections use the parameter's step count
    (b1, b2), m, v, out = betas, 0 * p, 0 * p, []
    for t, g in enumerate(grads, start=1):
        g = -g if maximize else g
        rows = np.any(g != 0, axis=1)
        m, v, p = m.copy(), v.copy(), p.copy()
        m[rows] = b1 * m[rows] + (1 - b1) * g[rows]
        v[rows] = b2 * v[rows] + (1 - b2) * g[rows] ** 2
        p[rows] -= lr * math.sqrt(1 - b2 ** t) / (1 - b1 ** t) * m[rows] / (np.sqrt(v[rows]) + eps)
        out.append(p)
    return out


CASES = [
    ("Adadelta", _np_adadelta, dict()),
    ("Adadelta", _np_adadelta, dict(lr=0.5, rho=0.8, eps=1e-4, weight_decay=0.1, maximize=True)),
    ("Adamax", _np_adamax, dict()),
    ("Adamax", _np_adamax, dict(lr=0.05, betas=(0.3, 0.9), eps=1e-3, weight_decay=0.1, maximize=True)),
    ("RAdam", _np_radam, dict(lr=0.01)),
    ("RAdam", _np_radam, dict(lr=0.01, betas=(0.8, 0.9), weight_decay=0.1)),
    ("RAdam", _np_radam, dict(lr=0.01, weight_decay=0.1, decoupled_weight_decay=True, maximize=True)),
    ("ASGD", lambda p, g, **o: _np_asgd(p, g, **o)[0], dict()),
    ("ASGD", lambda p, g, **o: _np_asgd(p, g, **o)[0], dict(lr=0.05, lambd=1e-2, alpha=0.5, t0=3, weight_decay=0.1,
                                                            maximize=True)),
    ("Rprop", _np_rprop, dict()),
    ("Rprop", _np_rprop, dict(lr=0.1, etas=(0.3, 1.5), step_sizes=(0.05, 0.2), maximize=True)),
    ("SparseAdam", _np_sparse_adam, dict()),
    ("SparseAdam", _np_sparse_adam, dict(lr=0.01, betas=(0.5, 0.9), eps=1e-3, maximize=True)),
]


@pytest.mark.parametrize("name, reference, options", CASES)
def test_first_iterates_match_the_documented_algorithm(name, reference, options, device):
    init, grads = _problem()
    got, _, _ = _iterates(lambda p: getattr(optim, name)(p, **options), init, grads, device)
    want = reference(init, grads, **options)
    for t, (a, b) in enumerate(zip(got, want), start=1):
        np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-14, err_msg=f"{name} step {t}")


@pytest.mark.parametrize("name, options", [(name, options) for name, _, options in CASES[1::2]])
def test_devices_agree_and_float32_stays_float32(name, options, device):
    init, grads = _problem(np.float32)
    got, opt, p = _iterates(lambda p: getattr(optim, name)(p, **options), init, grads, device)
    cpu, _, _ = _iterates(lambda p: getattr(optim, name)(p, **options), init, grads, "cpu")
    np.testing.assert_allclose(got[-1], cpu[-1], rtol=1e-6, atol=1e-7)
    assert p.dtype == np.float32 and got[-1].dtype == np.float32
    for value in opt.state[p].values():
        if not isinstance(value, (int, float)):  # arrays live on the parameter's device, in its dtype
            assert type(value) is type(p._data) and value.dtype == np.float32 and value.shape == SHAPE
    # float32 stays close to the float64 run (the scalars are float32 in float32 kernels, not silently float64)
    exact, _, _ = _iterates(lambda p: getattr(optim, name)(p, **options), init.astype(np.float64),
                            [g.astype(np.float64) for g in grads])
    np.testing.assert_allclose(got[-1], exact[-1], rtol=1e-4, atol=1e-5)


def test_radam_switches_to_the_adaptive_step_when_rho_t_exceeds_5():
    # PyTorch's defaults betas=(0.9, 0.999): rho_inf = 1999, and rho_t = 1.0, 1.9995, 2.9987, 3.9975, 4.9960 for
    # t = 1..5, 5.9942 at t = 6: the first five steps are p -= lr * m_hat (step 1: p -= lr * g exactly).
    rho = [1999 - 2 * t * 0.999 ** t / (1 - 0.999 ** t) for t in range(1, 7)]
    np.testing.assert_allclose(rho, [1.0, 1.9995, 2.9987, 3.9975, 4.9960, 5.9942], atol=1e-4)
    assert rho[4] <= 5 < rho[5]
    init, grads = _problem()
    got, _, _ = _iterates(lambda p: optim.RAdam(p, lr=0.1), init, grads)
    np.testing.assert_allclose(got[0], init - 0.1 * grads[0], rtol=1e-15)
    m = 0.1 * grads[0]
    m = 0.9 * m + 0.1 * grads[1]
    np.testing.assert_allclose(got[1], got[0] - 0.1 * m / (1 - 0.9 ** 2), rtol=1e-14)


def test_asgd_keeps_the_average_of_the_iterates_after_t0():
    init, grads = _problem()
    options = dict(lr=0.05, t0=3, lambd=1e-3)
    got, opt, p = _iterates(lambda p: optim.ASGD(p, **options), init, grads)
    _, ax = _np_asgd(init, grads, **options)
    np.testing.assert_allclose(host(fastnn.tensor(opt.state[p]["ax"])), ax, rtol=1e-12)
    # step t uses mu_{t-1} = 1/max(1, t-1-t0): ax copies the iterates up to step t0 + 2 = 5, then averages
    # steps 5..t
    np.testing.assert_allclose(ax, np.mean(got[4:], axis=0), rtol=1e-12)
    assert opt.state[p]["mu"] == 1 / (STEPS - 3)
    assert opt.state[p]["eta"] == pytest.approx(0.05 / (1 + 1e-3 * 0.05 * STEPS) ** 0.75, rel=1e-15)


def test_sparse_adam_on_an_embedding_updates_only_the_looked_up_rows():
    emb = fastnn.nn.Embedding(10, 3)
    before = emb.weight.detach().numpy().copy()
    opt = optim.SparseAdam(emb.parameters(), lr=0.1)
    emb(fastnn.tensor(np.array([2, 7, 2]))).sum().backward()
    opt.step()
    after = emb.weight.detach().numpy()
    moved = np.any(after != before, axis=1)
    assert moved.tolist() == [i in (2, 7) for i in range(10)]
    # Adam's first step moves every held entry by lr (m_hat / sqrt(v_hat) = sign(g)) up to eps
    np.testing.assert_allclose(before[[2, 7]] - after[[2, 7]], 0.1, rtol=1e-5)


# ---- state dicts, parameter groups, hooks -------------------------------------------------------------------

@pytest.mark.parametrize("factory", [
    lambda p: optim.Adadelta(p, lr=0.5, weight_decay=0.01),
    lambda p: optim.Adamax([{"params": p[:1]}, {"params": p[1:], "lr": 0.02}], lr=0.01),
    lambda p: optim.RAdam(p, lr=0.01, weight_decay=0.1, decoupled_weight_decay=True),
    lambda p: optim.ASGD(p, lr=0.05, t0=2),
    lambda p: optim.Rprop(p, lr=0.01),
    lambda p: optim.SparseAdam(p, lr=0.01),
])
def test_state_dict_round_trip_resumes_identically(factory, tmp_path):
    _check_state_dict_round_trip(factory, tmp_path)


def test_state_dict_holds_pytorchs_state_names():
    init, grads = _problem()
    names = {"Adadelta": {"step", "square_avg", "acc_delta"}, "Adamax": {"step", "exp_avg", "exp_inf"},
             "RAdam": {"step", "exp_avg", "exp_avg_sq"}, "ASGD": {"step", "eta", "mu", "ax"},
             "Rprop": {"step", "prev", "step_size"}, "SparseAdam": {"step", "exp_avg", "exp_avg_sq"}}
    for name, keys in names.items():
        _, opt, _ = _iterates(lambda p: getattr(optim, name)(p), init, grads[:2])
        state = opt.state_dict()["state"][0]
        assert set(state) == keys and state["step"] == 2, name


def test_add_param_group_takes_defaults_and_validates():
    a, b = Parameter(np.ones(2)), Parameter(np.ones(3))
    opt = optim.Adamax([a], lr=0.01)
    opt.add_param_group({"params": b, "betas": (0.5, 0.9)})
    assert opt.param_groups[1]["lr"] == 0.01 and opt.param_groups[1]["betas"] == (0.5, 0.9)
    assert opt.param_groups[1]["params"] == [b]
    with pytest.raises(ValueError, match="some parameters appear in more than one parameter group"):
        opt.add_param_group({"params": [a]})
    with pytest.raises(ValueError, match="Invalid beta parameter at index 0: 1.5"):
        opt.add_param_group({"params": [Parameter(np.ones(1))], "betas": (1.5, 0.9)})
    with pytest.raises(TypeError, match="param_group must be a dict"):
        opt.add_param_group([b])


def test_step_hooks_run_around_step_and_are_removable():
    p = Parameter(np.ones(3))
    opt = optim.Rprop([p], lr=0.1)
    calls = []

    def pre(optimizer, args, kwargs):
        calls.append(("pre", optimizer is opt, args[0] is opt, host(p).copy()))

    def post(optimizer, args, kwargs):
        calls.append(("post", optimizer is opt, args[0] is opt, host(p).copy()))

    pre_handle, post_handle = opt.register_step_pre_hook(pre), opt.register_step_post_hook(post)
    p.grad = fastnn.tensor(np.ones(3))
    opt.step()
    assert [c[:3] for c in calls] == [("pre", True, True), ("post", True, True)]
    np.testing.assert_array_equal(calls[0][3], 1.0)
    np.testing.assert_allclose(calls[1][3], 0.9)
    pre_handle.remove()
    opt.step()
    assert [c[0] for c in calls] == ["pre", "post", "post"]
    post_handle.remove()
    opt.step()
    assert len(calls) == 3


def test_step_pre_hook_can_replace_the_arguments():
    p = Parameter(np.array([2.0]))
    opt = optim.SGD([p], lr=0.1)

    def closure():
        opt.zero_grad()
        loss = (p * p).sum()
        loss.backward()
        return loss

    opt.register_step_pre_hook(lambda optimizer, args, kwargs: ((optimizer,), {"closure": closure}))
    loss = opt.step()  # no closure given: the hook supplies one
    assert loss.item() == 4.0
    np.testing.assert_allclose(host(p), [2.0 - 0.1 * 4.0])
    opt.register_step_pre_hook(lambda optimizer, args, kwargs: "bad")
    with pytest.raises(RuntimeError, match="must return None or a tuple of \\(new_args, new_kwargs\\)"):
        opt.step()


def test_step_hooks_run_once_for_an_optimizer_with_its_own_step():
    p = Parameter(np.array([1.0, -2.0]))
    opt = optim.LBFGS([p], max_iter=3)
    calls = []
    opt.register_step_pre_hook(lambda *args: calls.append("pre"))
    opt.register_step_post_hook(lambda *args: calls.append("post"))

    def closure():
        opt.zero_grad()
        loss = (p * p).sum()
        loss.backward()
        return loss

    opt.step(closure)
    assert calls == ["pre", "post"]


# ---- validation and defaults --------------------------------------------------------------------------------

@pytest.mark.parametrize("call, error, match", [
    (lambda p: optim.Adadelta(p, lr=-0.1), ValueError, "Invalid learning rate: -0.1"),
    (lambda p: optim.Adadelta(p, rho=1.5), ValueError, "Invalid rho value: 1.5"),
    (lambda p: optim.Adadelta(p, rho=-0.5), ValueError, "Invalid rho value: -0.5"),
    (lambda p: optim.Adadelta(p, eps=-1), ValueError, "Invalid epsilon value: -1"),
    (lambda p: optim.Adadelta(p, weight_decay=-1), ValueError, "Invalid weight_decay value: -1"),
    (lambda p: optim.Adamax(p, lr=-1), ValueError, "Invalid learning rate: -1"),
    (lambda p: optim.Adamax(p, eps=-1), ValueError, "Invalid epsilon value: -1"),
    (lambda p: optim.Adamax(p, betas=(1.0, 0.9)), ValueError, "Invalid beta parameter at index 0: 1.0"),
    (lambda p: optim.Adamax(p, betas=(0.9, -0.1)), ValueError, "Invalid beta parameter at index 1: -0.1"),
    (lambda p: optim.Adamax(p, weight_decay=-1), ValueError, "Invalid weight_decay value: -1"),
    (lambda p: optim.RAdam(p, lr=-1), ValueError, "Invalid learning rate: -1"),
    (lambda p: optim.RAdam(p, betas=(0.9, 1.0)), ValueError, "Invalid beta parameter at index 1: 1.0"),
    (lambda p: optim.RAdam(p, weight_decay=-1), ValueError, "Invalid weight_decay value: -1"),
    (lambda p: optim.ASGD(p, lr=-1), ValueError, "Invalid learning rate: -1"),
    (lambda p: optim.ASGD(p, weight_decay=-1), ValueError, "Invalid weight_decay value: -1"),
    (lambda p: optim.ASGD(p, t0="soon"), TypeError, "t0 must be a real number"),
    (lambda p: optim.Rprop(p, lr=-1), ValueError, "Invalid learning rate: -1"),
    (lambda p: optim.Rprop(p, etas=(1.5, 1.2)), ValueError, "Invalid eta values: 1.5, 1.2"),
    (lambda p: optim.Rprop(p, etas=(0.5, 0.9)), ValueError, "Invalid eta values: 0.5, 0.9"),
    (lambda p: optim.Rprop(p, step_sizes=1e-6), TypeError, "step_sizes must be a pair"),
    (lambda p: optim.SparseAdam(p, lr=0), ValueError, "Invalid learning rate: 0"),
    (lambda p: optim.SparseAdam(p, eps=0.0), ValueError, "Invalid epsilon value: 0.0"),
    (lambda p: optim.SparseAdam(p, betas=(0.9, 1.0)), ValueError, "Invalid beta parameter at index 1: 1.0"),
    (lambda p: optim.Adadelta(p, differentiable=True), TypeError, "differentiable"),
])
def test_invalid_hyperparameters_raise_pytorchs_errors(call, error, match):
    with pytest.raises(error, match=match):
        call([Parameter(np.ones(2)), Parameter(np.ones(3))])


def test_defaults_and_positional_order_are_pytorchs():
    p = [Parameter(np.ones(1))]
    assert optim.Adadelta(p).defaults == dict(lr=1.0, rho=0.9, eps=1e-6, weight_decay=0, maximize=False)
    assert optim.Adamax(p).defaults == dict(lr=2e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0, maximize=False)
    assert optim.RAdam(p).defaults == dict(lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0, maximize=False,
                                           decoupled_weight_decay=False)
    assert optim.ASGD(p).defaults == dict(lr=1e-2, lambd=1e-4, alpha=0.75, t0=1e6, weight_decay=0, maximize=False)
    assert optim.Rprop(p).defaults == dict(lr=1e-2, etas=(0.5, 1.2), step_sizes=(1e-6, 50), maximize=False)
    assert optim.SparseAdam(p).defaults == dict(lr=1e-3, betas=(0.9, 0.999), eps=1e-8, maximize=False)
    # positional: Adadelta(params, lr, rho, eps, weight_decay, foreach), ASGD(..., weight_decay, foreach,
    # maximize), RAdam(..., weight_decay, decoupled_weight_decay), SparseAdam(params, lr, betas, eps, maximize)
    assert optim.Adadelta(p, 0.5, 0.7, 1e-5, 0.1, None).defaults["rho"] == 0.7
    assert optim.ASGD(p, 0.1, 1e-3, 0.5, 10, 0.1, None, True).defaults["maximize"] is True
    assert optim.RAdam(p, 1e-2, (0.8, 0.9), 1e-7, 0.1, True).defaults["decoupled_weight_decay"] is True
    assert optim.SparseAdam(p, 1e-2, (0.8, 0.9), 1e-7, True).defaults["maximize"] is True


# ---- schedulers ---------------------------------------------------------------------------------------------

def _lrs(scheduler, steps=20, key="lr"):
    """The group-0 value of `key` at epochs 0..steps-1 (read before each step, as a training loop uses it)."""
    values = []
    for _ in range(steps):
        group = scheduler.optimizer.param_groups[0]
        values.append(group["betas"][0] if key == "beta1" else group[key])
        scheduler.optimizer.step()
        scheduler.step()
    return values


def _sgd(lr=0.1, momentum=0.9):
    return optim.SGD([Parameter(np.ones(2))], lr=lr, momentum=momentum)


@pytest.mark.parametrize("total_iters, power", [(8, 1.0), (8, 2.0), (5, 0.5), (25, 3.0)])
def test_polynomial_lr_follows_its_closed_form(total_iters, power):
    got = _lrs(lr_scheduler.PolynomialLR(_sgd(0.1), total_iters=total_iters, power=power))
    want = [0.1 * (1 - min(e, total_iters) / total_iters) ** power for e in range(20)]
    np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-15)


def test_polynomial_lr_defaults_and_numbers():
    # PyTorch's defaults total_iters=5, power=1: 0.1, 0.08, 0.06, 0.04, 0.02, then 0 for good
    got = _lrs(lr_scheduler.PolynomialLR(_sgd(0.1)), steps=8)
    np.testing.assert_allclose(got, [0.1, 0.08, 0.06, 0.04, 0.02, 0, 0, 0], atol=1e-15)
    with pytest.raises(ValueError, match="total_iters must be a positive integer"):
        lr_scheduler.PolynomialLR(_sgd(), total_iters=0)


def test_chained_polynomial_and_exponential_multiply():
    opt = _sgd(0.1)
    chain = lr_scheduler.ChainedScheduler([lr_scheduler.PolynomialLR(opt, total_iters=8, power=0.5),
                                           lr_scheduler.ExponentialLR(opt, gamma=0.9)])
    want = [0.1 * (1 - min(e, 8) / 8) ** 0.5 * 0.9 ** e for e in range(20)]
    np.testing.assert_allclose(_lrs(chain), want, rtol=1e-12, atol=1e-15)


def _triangle(e, up, down):
    """Position in the cycle as a fraction of the peak: 0 at the start of each cycle, 1 after `up` steps."""
    pos = e % (up + down)
    return pos / up if pos <= up else (up + down - pos) / down


@pytest.mark.parametrize("mode, up, down, scale", [
    ("triangular", 4, None, lambda e, cycle: 1.0),
    ("triangular", 4, 2, lambda e, cycle: 1.0),
    ("triangular2", 3, None, lambda e, cycle: 0.5 ** (cycle - 1)),
    ("exp_range", 3, 5, lambda e, cycle: 0.9 ** e),
])
def test_cyclic_lr_and_momentum_follow_their_closed_forms(mode, up, down, scale):
    base, peak = 0.01, 0.1
    make = lambda: lr_scheduler.CyclicLR(_sgd(), base, peak, step_size_up=up, step_size_down=down, mode=mode,
                                         gamma=0.9)
    down = down or up
    factors = [_triangle(e, up, down) * scale(e, e // (up + down) + 1) for e in range(20)]
    np.testing.assert_allclose(_lrs(make()), [base + (peak - base) * f for f in factors], rtol=1e-12)
    # the momentum moves the other way, between max_momentum 0.9 and base_momentum 0.8
    np.testing.assert_allclose(_lrs(make(), key="momentum"), [0.9 - 0.1 * f for f in factors], rtol=1e-12)


def test_cyclic_lr_cycles_adams_beta1_and_takes_a_custom_scale_fn():
    opt = optim.Adam([Parameter(np.ones(2))], lr=1.0)
    scheduler = lr_scheduler.CyclicLR(opt, [0.001], [0.01], step_size_up=2, scale_fn=lambda x: 1 / x,
                                      scale_mode="cycle", base_momentum=0.85, max_momentum=0.95)
    factors = [_triangle(e, 2, 2) / (e // 4 + 1) for e in range(20)]
    np.testing.assert_allclose(_lrs(scheduler, key="beta1"), [0.95 - 0.1 * f for f in factors], rtol=1e-12)
    assert opt.param_groups[0]["betas"][1] == 0.999
    assert opt.param_groups[0]["max_momentum"] == 0.95 and opt.param_groups[0]["base_momentum"] == 0.85


def test_cyclic_lr_state_dict_round_trip_and_errors():
    scheduler = lr_scheduler.CyclicLR(_sgd(), 0.01, 0.1, step_size_up=3, mode="triangular2")
    _lrs(scheduler, steps=7)
    state = scheduler.state_dict()
    resumed = lr_scheduler.CyclicLR(_sgd(), 0.01, 0.1, step_size_up=3, mode="triangular2")
    resumed.optimizer.load_state_dict(scheduler.optimizer.state_dict())  # the lr and momentum live there
    resumed.load_state_dict(state)
    assert _lrs(resumed, steps=6) == _lrs(scheduler, steps=6)
    with pytest.raises(ValueError, match="mode is invalid and scale_fn is None"):
        lr_scheduler.CyclicLR(_sgd(), 0.01, 0.1, mode="sawtooth")
    with pytest.raises(ValueError, match="optimizer must support momentum or beta1 with `cycle_momentum`"):
        lr_scheduler.CyclicLR(optim.Adadelta([Parameter(np.ones(1))]), 0.01, 0.1)
    with pytest.raises(ValueError, match="step_size_up must be a positive number"):
        lr_scheduler.CyclicLR(_sgd(), 0.01, 0.1, step_size_up=0)
    with pytest.raises(ValueError, match="max_lr must have the same length as optimizer.param_groups"):
        lr_scheduler.CyclicLR(_sgd(), 0.01, [0.1, 0.2])


# ---- against PyTorch itself, when it is installed -----------------------------------------------------------

def test_matches_torch_optim_and_lr_scheduler_when_installed():
    torch = pytest.importorskip("torch")
    init, grads = _problem()
    for name, _, options in CASES:
        got, _, _ = _iterates(lambda p: getattr(optim, name)(p, **options), init, grads)
        tp = torch.nn.Parameter(torch.tensor(init))
        topt = getattr(torch.optim, name)([tp], **options)
        for t, g in enumerate(grads):
            tg = torch.tensor(g)
            tp.grad = tg.to_sparse(1) if name == "SparseAdam" else tg  # the rows with a nonzero entry
            topt.step()
            # ASGD: torch keeps eta and mu as float32 tensors, hence the looser tolerance
            np.testing.assert_allclose(got[t], tp.detach().numpy(), rtol=1e-6 if name == "ASGD" else 1e-12,
                                       atol=1e-9 if name == "ASGD" else 1e-14, err_msg=f"{name} {options} step {t + 1}")
    for make in [lambda o, s: s.PolynomialLR(o, total_iters=7, power=1.5),
                 lambda o, s: s.CyclicLR(o, 0.01, 0.1, step_size_up=3, step_size_down=2, mode="exp_range",
                                         gamma=0.95),
                 lambda o, s: s.CyclicLR(o, 0.01, 0.1, step_size_up=2, mode="triangular2")]:
        ours = make(_sgd(), lr_scheduler)
        theirs = make(torch.optim.SGD([torch.nn.Parameter(torch.ones(2))], lr=0.1, momentum=0.9),
                      torch.optim.lr_scheduler)
        for _ in range(20):
            assert ours.optimizer.param_groups[0]["lr"] == theirs.optimizer.param_groups[0]["lr"]
            assert ours.optimizer.param_groups[0]["momentum"] == theirs.optimizer.param_groups[0]["momentum"]
            ours.optimizer.step(), theirs.optimizer.step()
            ours.step(), theirs.step()

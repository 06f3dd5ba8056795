"""Learning-rate schedules: every schedule against its closed form over its whole range, the chainable
(recursive) forms against the closed forms, composition (SequentialLR, ChainedScheduler, WarmupLR), momentum
cycling, ReduceLROnPlateau's behaviour, state_dict resumes, the linear scaling rule, and validation."""
import math

import numpy as np
import pytest

import fastnn
from fastnn import optim
from fastnn.nn import Parameter
from fastnn.optim import lr_scheduler as sched
from fastnn.optim.scaling import linear_scaling_lr, linear_scaling_warmup

BASE_LRS = [0.1, 0.03]
N = 100


def _optimizer(kind="SGD", **options):
    groups = [{"params": [Parameter(np.ones(2))], "lr": lr} for lr in BASE_LRS]
    return getattr(optim, kind)(groups, **options)


def _lrs(scheduler, steps=N, metrics=None):
    """Learning rates of every group at epochs 0..steps (row t: the lrs used during epoch t)."""
    rows = [scheduler.get_last_lr()]
    for t in range(steps):
        scheduler.optimizer.step()
        if metrics is None:
            scheduler.step()
        else:
            scheduler.step(metrics[t])
        rows.append(scheduler.get_last_lr())
        assert rows[-1] == [g["lr"] for g in scheduler.optimizer.param_groups]
    return np.array(rows)


def _closed(factor, steps=N):
    """Rows base_lr * factor(t) for t = 0..steps."""
    return np.array([[base * factor(t) for base in BASE_LRS] for t in range(steps + 1)])


def _cosine(t, period, eta_min=0.0, base=1.0):
    return eta_min + (base - eta_min) * (1 + math.cos(math.pi * t / period)) / 2


def _milestones_passed(t):
    return sum(m <= t for m in (10, 30, 30, 60))


# (name, factory(optimizer) -> scheduler, factor(t) with lr_t = base_lr * factor(t) or None, closed form rows)
CLOSED_FORMS = [
    ("StepLR", lambda o: sched.StepLR(o, step_size=7, gamma=0.5), lambda t: 0.5 ** (t // 7)),
    ("MultiStepLR", lambda o: sched.MultiStepLR(o, [10, 30, 30, 60], gamma=0.3),
     lambda t: 0.3 ** _milestones_passed(t)),
    ("ExponentialLR", lambda o: sched.ExponentialLR(o, gamma=0.95), lambda t: 0.95 ** t),
    ("LinearLR", lambda o: sched.LinearLR(o, start_factor=0.25, end_factor=0.9, total_iters=17),
     lambda t: 0.25 + (0.9 - 0.25) * min(t, 17) / 17),
    ("LinearLR defaults", lambda o: sched.LinearLR(o), lambda t: 1 / 3 + (2 / 3) * min(t, 5) / 5),
    ("ConstantLR", lambda o: sched.ConstantLR(o, factor=0.5, total_iters=17), lambda t: 0.5 if t < 17 else 1.0),
    ("ConstantLR defaults", lambda o: sched.ConstantLR(o), lambda t: 1 / 3 if t < 5 else 1.0),
    ("ConstantLR factor 0", lambda o: sched.ConstantLR(o, factor=0.0, total_iters=3), lambda t: float(t >= 3)),
    ("LambdaLR", lambda o: sched.LambdaLR(o, lambda t: 1 / (1 + 0.1 * t)), lambda t: 1 / (1 + 0.1 * t)),
    ("MultiplicativeLR", lambda o: sched.MultiplicativeLR(o, lambda t: 0.97), lambda t: 0.97 ** t),
    ("InverseSqrtLR", lambda o: sched.InverseSqrtLR(o, warmup_steps=10),
     lambda t: (t + 1) / 10 if t < 10 else math.sqrt(10 / (t + 1))),
]


@pytest.mark.parametrize("name, factory, factor", CLOSED_FORMS, ids=[c[0] for c in CLOSED_FORMS])
def test_schedule_matches_its_closed_form(name, factory, factor):
    optimizer = _optimizer()
    scheduler = factory(optimizer)
    assert scheduler.base_lrs == BASE_LRS and scheduler.last_epoch == 0
    assert [g["initial_lr"] for g in optimizer.param_groups] == BASE_LRS
    np.testing.assert_allclose(_lrs(scheduler), _closed(factor), rtol=1e-12, atol=0)
    assert scheduler.last_epoch == N


@pytest.mark.parametrize("T_max, eta_min", [(30, 0.001), (1, 0.0), (100, 0.005)])
def test_cosine_annealing_recursive_form_equals_closed_form(T_max, eta_min):
    scheduler = sched.CosineAnnealingLR(_optimizer(), T_max=T_max, eta_min=eta_min)
    expected = np.array([[_cosine(t, T_max, eta_min, base) for base in BASE_LRS] for t in range(N + 1)])
    np.testing.assert_allclose(_lrs(scheduler), expected, rtol=1e-10, atol=1e-15)
    # step(epoch) jumps with the closed form
    jumped = sched.CosineAnnealingLR(_optimizer(), T_max=T_max, eta_min=eta_min)
    for t in (57, 3, 30):
        jumped.step(t)
        np.testing.assert_allclose(jumped.get_last_lr(), expected[t], rtol=1e-12)


def test_step_with_epoch_uses_the_closed_form():
    scheduler = sched.MultiStepLR(_optimizer(), [10, 30, 30, 60], gamma=0.3)
    scheduler.step(45)
    np.testing.assert_allclose(scheduler.get_last_lr(), [b * 0.3 ** 3 for b in BASE_LRS], rtol=1e-12)
    scheduler.step()
    assert scheduler.last_epoch == 46
    np.testing.assert_allclose(scheduler.get_last_lr(), [b * 0.3 ** 3 for b in BASE_LRS], rtol=1e-12)


@pytest.mark.parametrize("T_0, T_mult", [(10, 1), (10, 2), (3, 3)])
def test_cosine_warm_restarts(T_0, T_mult):
    def position(t):
        """(epochs since the last restart, current period)"""
        period = T_0
        while t >= period:
            t -= period
            period *= T_mult
        return t, period

    def expected(t):
        t_cur, period = position(t)
        return [0.01 + (base - 0.01) * (1 + math.cos(math.pi * t_cur / period)) / 2 for base in BASE_LRS]

    scheduler = sched.CosineAnnealingWarmRestarts(_optimizer(), T_0=T_0, T_mult=T_mult, eta_min=0.01)
    np.testing.assert_allclose(_lrs(scheduler), [expected(t) for t in range(N + 1)], rtol=1e-12)
    # fractional epochs, e.g. stepped every batch as epoch + i / batches
    scheduler = sched.CosineAnnealingWarmRestarts(_optimizer(), T_0=T_0, T_mult=T_mult, eta_min=0.01)
    for epoch in np.arange(0.0, 40.0, 0.37):
        scheduler.step(epoch)
        t_cur, period = position(epoch)
        want = [0.01 + (b - 0.01) * (1 + math.cos(math.pi * t_cur / period)) / 2 for b in BASE_LRS]
        np.testing.assert_allclose(scheduler.get_last_lr(), want, rtol=1e-9)
        assert scheduler.last_epoch == math.floor(epoch)


def _one_cycle_expected(t, total, max_lr, pct, div, final_div, three_phase, cos, key):
    initial, low = max_lr / div, max_lr / div / final_div
    anneal = ((lambda a, b, f: b + (a - b) / 2 * (math.cos(math.pi * f) + 1)) if cos
              else (lambda a, b, f: a + (b - a) * f))
    up_end = pct * total - 1
    if three_phase:
        phases = [(0, up_end, (initial, max_lr), (0.95, 0.85)), (up_end, 2 * pct * total - 2, (max_lr, initial),
                                                                  (0.85, 0.95)),
                  (2 * pct * total - 2, total - 1, (initial, low), (0.95, 0.95))]
    else:
        phases = [(0, up_end, (initial, max_lr), (0.95, 0.85)), (up_end, total - 1, (max_lr, low), (0.85, 0.95))]
    for i, (start, end, lrs, momenta) in enumerate(phases):
        if t <= end or i == len(phases) - 1:
            f = (t - start) / (end - start)
            return anneal(*lrs, f) if key == "lr" else anneal(*momenta, f)


@pytest.mark.parametrize("three_phase, strategy", [(False, "cos"), (False, "linear"), (True, "cos")])
@pytest.mark.parametrize("kind", ["SGD", "Adam"])
def test_one_cycle_lr_and_momentum(three_phase, strategy, kind):
    optimizer = _optimizer(kind, **({"momentum": 0.9} if kind == "SGD" else {}))
    scheduler = sched.OneCycleLR(optimizer, max_lr=[1.0, 0.5], epochs=10, steps_per_epoch=10,
                                 anneal_strategy=strategy, three_phase=three_phase)
    assert scheduler.total_steps == 100
    lrs, momenta = [scheduler.get_last_lr()], []
    for _ in range(N - 1):
        momenta.append([g["momentum"] if kind == "SGD" else g["betas"][0] for g in optimizer.param_groups])
        scheduler.step()
        lrs.append(scheduler.get_last_lr())
    momenta.append([g["momentum"] if kind == "SGD" else g["betas"][0] for g in optimizer.param_groups])
    cos = strategy == "cos"
    expected_lrs = [[_one_cycle_expected(t, 100, m, 0.3, 25.0, 1e4, three_phase, cos, "lr") for m in (1.0, 0.5)]
                    for t in range(N)]
    expected_momenta = [[_one_cycle_expected(t, 100, 1.0, 0.3, 25.0, 1e4, three_phase, cos, "momentum")] * 2
                        for t in range(N)]
    np.testing.assert_allclose(lrs, expected_lrs, rtol=1e-10)
    np.testing.assert_allclose(momenta, expected_momenta, rtol=1e-10)
    np.testing.assert_allclose([lrs[0], lrs[-1]], [[1.0 / 25, 0.5 / 25], [1.0 / 25e4, 0.5 / 25e4]], rtol=1e-9)
    if kind == "Adam":
        assert all(g["betas"][1] == 0.999 for g in optimizer.param_groups)
    with pytest.raises(ValueError, match="Tried to step 101 times"):
        scheduler.step()
        scheduler.step()


def test_sequential_lr_warmup_then_cosine_then_step():
    optimizer = _optimizer()
    scheduler = sched.SequentialLR(optimizer, [sched.LinearLR(optimizer, 0.1, total_iters=10),
                                               sched.CosineAnnealingLR(optimizer, T_max=40),
                                               sched.StepLR(optimizer, step_size=5, gamma=0.5)], milestones=[10, 50])

    def factor(t):
        if t < 10:
            return 0.1 + 0.9 * t / 10
        if t < 50:
            return _cosine(t - 10, 40)
        return 0.5 ** ((t - 50) // 5)
    np.testing.assert_allclose(_lrs(scheduler), _closed(factor), rtol=1e-10, atol=1e-15)


def test_chained_scheduler_multiplies_chainable_schedules():
    optimizer = _optimizer()
    scheduler = sched.ChainedScheduler([sched.LinearLR(optimizer, 0.1, total_iters=10),
                                        sched.ExponentialLR(optimizer, gamma=0.97),
                                        sched.CosineAnnealingLR(optimizer, T_max=150)])
    # (past T_max the cosine's recursive form adds to the lr instead of scaling it, in PyTorch as here)
    expected = _closed(lambda t: (0.1 + 0.9 * min(t, 10) / 10) * 0.97 ** t * _cosine(t, 150))
    np.testing.assert_allclose(_lrs(scheduler), expected, rtol=1e-9, atol=1e-15)
    # ConstantLR undoes its factor at total_iters by a division, so it chains too (as in PyTorch 2.13)
    optimizer = _optimizer()
    scheduler = sched.ChainedScheduler([sched.ConstantLR(optimizer, 0.1, total_iters=4),
                                        sched.ExponentialLR(optimizer, gamma=0.9)])
    np.testing.assert_allclose(_lrs(scheduler), _closed(lambda t: 0.9 ** t * (0.1 if t < 4 else 1.0)), rtol=1e-12)


@pytest.mark.parametrize("inner, factor", [
    (lambda o: sched.StepLR(o, step_size=7, gamma=0.5), lambda t: 0.5 ** (t // 7)),
    (lambda o: sched.CosineAnnealingLR(o, T_max=30), lambda t: _cosine(t, 30)),
    (lambda o: sched.LambdaLR(o, lambda t: 0.98 ** t), lambda t: 0.98 ** t),
    (lambda o: sched.OneCycleLR(o, max_lr=1.0, total_steps=N + 1, cycle_momentum=False),
     lambda t: _one_cycle_expected(t, N + 1, 1.0, 0.3, 25.0, 1e4, False, True, "lr") / BASE_LRS[0]),
])
@pytest.mark.parametrize("start_factor", [0.0, 0.25])
def test_warmup_wrapper_scales_any_schedule(inner, factor, start_factor):
    scheduler = sched.WarmupLR(inner(_optimizer()), warmup_steps=8, start_factor=start_factor)
    warm = lambda t: start_factor + (1 - start_factor) * min(t, 8) / 8  # noqa: E731
    expected = _closed(lambda t: warm(t) * factor(t))
    if isinstance(scheduler._schedulers[0], sched.OneCycleLR):  # same max_lr for both groups
        expected[:, 1] = expected[:, 0]
    np.testing.assert_allclose(_lrs(scheduler), expected, rtol=1e-9, atol=1e-15)


def test_warmup_wrapper_passes_the_metric_to_reduce_lr_on_plateau():
    scheduler = sched.WarmupLR(sched.ReduceLROnPlateau(_optimizer(), patience=2), warmup_steps=4, start_factor=0.5)
    lrs = _lrs(scheduler, steps=8, metrics=[1.0] * 8)
    # warmup 0.5 -> 1 over 4 steps; the plateau cuts by 10x after 3 epochs without improvement (epoch 4)
    factors = [0.5, 0.625, 0.75, 0.875, 0.1, 0.1, 0.1, 0.01, 0.01]
    np.testing.assert_allclose(lrs, _closed(lambda t: factors[t], steps=8), rtol=1e-12)


# ---- ReduceLROnPlateau -------------------------------------------------------------------------------------

def test_reduce_lr_on_plateau_patience_and_threshold():
    scheduler = sched.ReduceLROnPlateau(_optimizer(), patience=2)
    # improvement by less than threshold (relative 1e-4) does not count
    metrics = [10.0, 9.0, 8.9999, 8.9995, 9.5, 8.0, 8.0, 8.0, 8.0]
    lrs = _lrs(scheduler, steps=len(metrics), metrics=metrics)
    # bad epochs: 8.9999 (1), 8.9995 (2), 9.5 (3 > patience -> cut), 8.0 improves, then 3 bad -> cut
    expected = [1, 1, 1, 1, 1, 0.1, 0.1, 0.1, 0.1, 0.01]
    np.testing.assert_allclose(lrs, _closed(lambda t: expected[t], steps=len(metrics)), rtol=1e-12)
    assert scheduler.best == 8.0 and scheduler.num_bad_epochs == 0


def test_reduce_lr_on_plateau_cooldown_min_lr_and_eps():
    optimizer = _optimizer()
    scheduler = sched.ReduceLROnPlateau(optimizer, factor=0.5, patience=0, cooldown=2, min_lr=[0.02, 0.0],
                                        eps=0.004)
    lrs = _lrs(scheduler, steps=10, metrics=[1.0] * 10)
    # cut after the 2nd epoch, then every 3rd (2 cooldown epochs); group 0 stops at min_lr 0.02, group 1 stops
    # when a cut would change it by less than eps
    np.testing.assert_allclose(lrs[:, 0], [0.1] * 2 + [0.05] * 3 + [0.025] * 3 + [0.02] * 3, rtol=1e-12)
    np.testing.assert_allclose(lrs[:, 1], [0.03] * 2 + [0.015] * 3 + [0.0075] * 6, rtol=1e-12)


@pytest.mark.parametrize("mode, threshold_mode, metrics, cuts_after", [
    ("max", "rel", [1.0, 2.0, 2.0001, 2.0, 2.0], 4),
    ("max", "abs", [1.0, 2.0, 2.05, 2.5, 2.5, 2.5], 6),
    ("min", "abs", [5.0, 4.0, 3.95, 3.0, 3.0, 3.0], 6),
])
def test_reduce_lr_on_plateau_modes(mode, threshold_mode, metrics, cuts_after):
    threshold = 0.1 if threshold_mode == "abs" else 1e-4
    scheduler = sched.ReduceLROnPlateau(_optimizer(), mode=mode, threshold=threshold, threshold_mode=threshold_mode,
                                        patience=1)
    lrs = _lrs(scheduler, steps=len(metrics), metrics=metrics)[:, 0]
    assert list(lrs[:cuts_after]) == [0.1] * cuts_after and np.isclose(lrs[cuts_after], 0.01)


# ---- state dicts -------------------------------------------------------------------------------------------

class _Halving:
    """A picklable lr_lambda with state (saved through its __dict__)."""

    def __init__(self, every):
        self.every = every

    def __call__(self, epoch):
        return 0.5 ** (epoch // self.every)


RESUMABLE = [
    ("StepLR", lambda o: sched.StepLR(o, 7, gamma=0.5)),
    ("MultiStepLR", lambda o: sched.MultiStepLR(o, [10, 30, 30, 60], gamma=0.3)),
    ("ExponentialLR", lambda o: sched.ExponentialLR(o, 0.95)),
    ("CosineAnnealingLR", lambda o: sched.CosineAnnealingLR(o, 30, eta_min=1e-3)),
    ("CosineAnnealingWarmRestarts", lambda o: sched.CosineAnnealingWarmRestarts(o, 10, T_mult=2)),
    ("LinearLR", lambda o: sched.LinearLR(o, 0.2, total_iters=50)),
    ("ConstantLR", lambda o: sched.ConstantLR(o, 0.25, total_iters=50)),
    ("LambdaLR function", lambda o: sched.LambdaLR(o, lambda t: 1 / (1 + t))),
    ("LambdaLR object", lambda o: sched.LambdaLR(o, [_Halving(9), _Halving(4)])),
    ("MultiplicativeLR", lambda o: sched.MultiplicativeLR(o, lambda t: 0.99)),
    ("InverseSqrtLR", lambda o: sched.InverseSqrtLR(o, 20)),
    ("OneCycleLR", lambda o: sched.OneCycleLR(o, max_lr=1.0, total_steps=N)),
    ("SequentialLR", lambda o: sched.SequentialLR(o, [sched.LinearLR(o, 0.1, total_iters=20),
                                                       sched.CosineAnnealingLR(o, 30)], milestones=[20])),
    ("ChainedScheduler", lambda o: sched.ChainedScheduler([sched.StepLR(o, 10), sched.ExponentialLR(o, 0.98)])),
    ("WarmupLR", lambda o: sched.WarmupLR(sched.MultiStepLR(o, [20, 40]), warmup_steps=30, start_factor=0.0)),
    ("ReduceLROnPlateau", lambda o: sched.ReduceLROnPlateau(o, patience=3, cooldown=2)),
    ("PolynomialLR", lambda o: sched.PolynomialLR(o, total_iters=60, power=2.0)),
    ("CyclicLR", lambda o: sched.CyclicLR(o, base_lr=0.01, max_lr=0.1, step_size_up=9, mode="triangular2")),
]


@pytest.mark.parametrize("name, factory", RESUMABLE, ids=[r[0] for r in RESUMABLE])
def test_state_dict_resume_gives_the_identical_continuation(name, factory, tmp_path):
    metrics = [1.0 / (1 + t) if t < 30 else 0.03 for t in range(N)] if name == "ReduceLROnPlateau" else None
    optimizer = _optimizer(momentum=0.9)
    scheduler = factory(optimizer)
    first = _lrs(scheduler, steps=37, metrics=metrics)
    fastnn.save({"optimizer": optimizer.state_dict(), "scheduler": scheduler.state_dict()}, tmp_path / "ckpt")
    rest = _lrs(scheduler, steps=N - 1 - 37, metrics=metrics[37:] if metrics else None)

    # PyTorch's order: build the optimizer and scheduler, then load the optimizer's state, then the scheduler's.
    checkpoint = fastnn.load(tmp_path / "ckpt")
    resumed_optimizer = _optimizer(momentum=0.9)
    resumed = factory(resumed_optimizer)
    resumed_optimizer.load_state_dict(checkpoint["optimizer"])
    resumed.load_state_dict(checkpoint["scheduler"])
    assert resumed.get_last_lr() == list(first[-1])
    resumed_rest = _lrs(resumed, steps=N - 1 - 37, metrics=metrics[37:] if metrics else None)
    np.testing.assert_array_equal(resumed_rest, rest)


def test_state_dict_saves_no_functions_and_copies():
    halving = _Halving(3)
    optimizer = _optimizer()
    scheduler = sched.LambdaLR(optimizer, [lambda t: 1.0, halving])
    state = scheduler.state_dict()
    assert state["lr_lambdas"] == [None, {"every": 3}] and "optimizer" not in state
    state["base_lrs"][0] = 42.0
    assert scheduler.base_lrs == BASE_LRS
    other = _Halving(99)
    restored = sched.LambdaLR(_optimizer(), [lambda t: 1.0, other])
    restored.load_state_dict(state)
    assert other.every == 3


# ---- linear scaling rule -----------------------------------------------------------------------------------

def test_linear_scaling_lr():
    assert linear_scaling_lr(0.1, 1024) == pytest.approx(0.4)
    assert linear_scaling_lr(0.1, 8192) == pytest.approx(3.2)
    assert linear_scaling_lr(0.2, 64, base_batch_size=128) == pytest.approx(0.1)
    with pytest.raises(ValueError, match="batch_size must be a positive integer"):
        linear_scaling_lr(0.1, 0)
    with pytest.raises(ValueError, match="base_lr must be a non-negative number"):
        linear_scaling_lr(-0.1, 256)


def test_linear_scaling_warmup_ramps_from_the_reference_lr_then_hands_over():
    optimizer = _optimizer(momentum=0.9)
    scheduler = linear_scaling_warmup(optimizer, batch_size=1024, warmup_steps=5,
                                      after=lambda o: sched.MultiStepLR(o, [25, 55], gamma=0.1))
    # k = 4: from the reference lr (factor 1) to 4x over 5 steps, then the step schedule from its own epoch 0
    expected = _closed(lambda t: 1 + 3 * t / 5 if t < 5 else 4 * 0.1 ** ((t - 5 >= 25) + (t - 5 >= 55)))
    np.testing.assert_allclose(_lrs(scheduler), expected, rtol=1e-12)
    assert [g["initial_lr"] for g in optimizer.param_groups] == pytest.approx([4 * b for b in BASE_LRS])


def test_linear_scaling_warmup_alone_and_small_batches():
    optimizer = _optimizer()
    scheduler = linear_scaling_warmup(optimizer, batch_size=512, warmup_steps=4)
    np.testing.assert_allclose(_lrs(scheduler, steps=6), _closed(lambda t: 1 + min(t, 4) / 4, steps=6))
    optimizer = _optimizer()
    scheduler = linear_scaling_warmup(optimizer, batch_size=128, warmup_steps=4)
    np.testing.assert_allclose(_lrs(scheduler, steps=6), _closed(lambda t: 0.5, steps=6))
    with pytest.raises(ValueError, match="before creating any scheduler"):
        linear_scaling_warmup(optimizer, batch_size=1024, warmup_steps=4)


# ---- validation --------------------------------------------------------------------------------------------

@pytest.mark.parametrize("call, error, match", [
    (lambda o: sched.StepLR("sgd", 3), TypeError, "str is not an Optimizer"),
    (lambda o: sched.StepLR(o, 0), ValueError, "step_size must be a positive integer"),
    (lambda o: sched.StepLR(o, 3, last_epoch=5), KeyError, "initial_lr"),
    (lambda o: sched.LinearLR(o, start_factor=0), ValueError, "Starting multiplicative factor"),
    (lambda o: sched.LinearLR(o, end_factor=1.5), ValueError, "Ending multiplicative factor"),
    (lambda o: sched.ConstantLR(o, factor=1.5), ValueError, "Constant multiplicative factor"),
    (lambda o: sched.ConstantLR(o, total_iters=0), ValueError, "total_iters"),
    (lambda o: sched.CosineAnnealingLR(o, T_max=0), ValueError, "T_max must be a positive integer"),
    (lambda o: sched.CosineAnnealingWarmRestarts(o, T_0=0), ValueError, "Expected positive integer T_0"),
    (lambda o: sched.CosineAnnealingWarmRestarts(o, T_0=5, T_mult=1.5), ValueError, "Expected integer T_mult"),
    (lambda o: sched.CosineAnnealingWarmRestarts(o, 5).step(-1), ValueError, "Expected non-negative epoch"),
    (lambda o: sched.LambdaLR(o, [lambda t: 1.0]), ValueError, "lr_lambda must have the same length"),
    (lambda o: sched.LambdaLR(o, 0.5), TypeError, "lr_lambda should be a function"),
    (lambda o: sched.InverseSqrtLR(o, 0), ValueError, "warmup_steps must be a positive integer"),
    (lambda o: sched.OneCycleLR(o, 1.0), ValueError, "You must define either total_steps"),
    (lambda o: sched.OneCycleLR(o, 1.0, total_steps=0), ValueError, "Expected positive integer total_steps"),
    (lambda o: sched.OneCycleLR(o, 1.0, total_steps=10, pct_start=1.5), ValueError, "pct_start"),
    (lambda o: sched.OneCycleLR(o, 1.0, total_steps=10, anneal_strategy="exp"), ValueError, "anneal_strategy"),
    (lambda o: sched.OneCycleLR(o, [1.0], total_steps=10), ValueError, "max_lr must have the same length"),
    (lambda o: sched.OneCycleLR(optim.Adagrad(o.param_groups[0]["params"]), 1.0, total_steps=10), ValueError,
     "optimizer must support momentum or beta1"),
    (lambda o: sched.SequentialLR(o, [sched.StepLR(o, 2)], milestones=[3]), ValueError,
     "number of schedulers provided to be one more"),
    (lambda o: sched.SequentialLR(o, [], milestones=[]), ValueError, "at least one scheduler"),
    (lambda o: sched.SequentialLR(o, [sched.StepLR(_optimizer(), 2)], milestones=[]), ValueError,
     "same optimizer"),
    (lambda o: sched.ChainedScheduler([sched.ReduceLROnPlateau(o)]), ValueError, "does not support"),
    (lambda o: sched.SequentialLR(o, [sched.WarmupLR(sched.StepLR(o, 2), 3)], milestones=[]), ValueError,
     "wrap the SequentialLR in WarmupLR"),
    (lambda o: sched.WarmupLR(o, 3), TypeError, "WarmupLR wraps an LRScheduler"),
    (lambda o: sched.WarmupLR(sched.StepLR(o, 2), 3, start_factor=1.5), ValueError, r"start_factor .* \[0, 1\]"),
    (lambda o: sched.ReduceLROnPlateau(o, factor=1.0), ValueError, "Factor should be < 1.0"),
    (lambda o: sched.ReduceLROnPlateau(o, mode="avg"), ValueError, "mode avg is unknown"),
    (lambda o: sched.ReduceLROnPlateau(o, threshold_mode="pct"), ValueError, "threshold mode pct is unknown"),
    (lambda o: sched.ReduceLROnPlateau(o, min_lr=[0.1]), ValueError, "expected 2 min_lrs, got 1"),
])
def test_invalid_arguments(call, error, match):
    with pytest.raises(error, match=match):
        call(_optimizer())

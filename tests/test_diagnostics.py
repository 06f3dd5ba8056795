"""Training diagnostics on real Fashion-MNIST batches: a broken model (std=0.01 init in a deep tanh MLP, a 10x too
high learning rate) is flagged, a healthy one passes, the statistics match NumPy, the LR finder's suggestion
trains, and every check leaves the model and optimizer as they were."""
import math

import numpy as np
import pytest

import fastnn
from fastnn import diagnostics as D
from fastnn import nn, optim
from fastnn.data import DataLoader, FashionMNIST, TensorDataset
from fastnn.data.datasets import EMBEDDED_DIR


@pytest.fixture(scope="module")
def data():
    x, y = FashionMNIST(EMBEDDED_DIR, train=True).standardized()
    return x[:2048], y[:2048]


def _loader(data, batch_size=64):
    x, y = data
    return DataLoader(TensorDataset(fastnn.tensor(x), fastnn.tensor(y)), batch_size=batch_size, shuffle=True)


def tanh_mlp(std=None, depth=6, width=64):
    """A deep tanh MLP: Xavier (gain 1) init, or N(0, std^2) weights when `std` is given (the lecture's broken
    init)."""
    layers, w = [nn.Flatten()], 784
    for _ in range(depth):
        lin = nn.Linear(w, width)
        if std is None:
            nn.init.xavier_normal_(lin.weight)
        else:
            nn.init.normal_(lin.weight, std=std)
        nn.init.zeros_(lin.bias)
        layers += [lin, nn.Tanh()]
        w = width
    return nn.Sequential(*layers, nn.Linear(w, 10))


def _checks(report, check):
    return [f for f in report.warnings if f.check == check]


def test_broken_init_is_flagged(data):
    model = tanh_mlp(std=0.01)
    opt = optim.SGD(model.parameters(), lr=0.02, momentum=0.9)
    report = D.diagnose(model, _loader(data), opt, overfit_steps=60, lr_finder=False)
    assert not report.ok
    vanishing = _checks(report, "activations")
    assert vanishing and all("vanish" in f.message for f in vanishing)
    # Layers 6, 8, ... shrink by ~0.01 * sqrt(64) = 0.08x per layer.
    stds = [s["std"] for s in report.activations.values() if s["kind"] == "tanh"]
    assert stds[-1] < 1e-4 * stds[0]
    assert any("too low" in f.message for f in _checks(report, "gradients"))
    assert not report.overfit["reached"]


def test_healthy_model_passes_every_check(data):
    model = tanh_mlp()
    opt = optim.SGD(model.parameters(), lr=0.02, momentum=0.9)
    report = D.diagnose(model, _loader(data), opt, overfit_steps=100, lr_finder_iter=60)
    assert report.ok, str(report)
    assert abs(report.initial_loss["loss"] - math.log(10)) < 0.15 * math.log(10)
    assert report.overfit["reached"] and report.overfit["steps"] < 100
    ratios = [s["update_ratio"] for n, s in report.gradients["parameters"].items() if n.endswith("weight")]
    assert 2e-4 < np.median(ratios) < 5e-3
    print(report)


def test_ten_times_too_high_learning_rate_is_flagged(data):
    model = tanh_mlp()
    healthy = D.judge_gradients(D.gradient_statistics(model, _loader(data),
                                                      optim.SGD(model.parameters(), lr=0.02, momentum=0.9)))
    assert [f.level for f in healthy] == ["ok"]
    high = D.judge_gradients(D.gradient_statistics(model, _loader(data),
                                                   optim.SGD(model.parameters(), lr=0.2, momentum=0.9)))
    assert any(f.level == "warning" and "too high" in f.message for f in high)


def test_initial_loss_against_log_c(data):
    x, y = fastnn.tensor(data[0][:256]), fastnn.tensor(data[1][:256])
    zero = nn.Sequential(nn.Flatten(), nn.Linear(784, 10))
    nn.init.zeros_(zero[1].weight)
    nn.init.zeros_(zero[1].bias)
    result = D.check_initial_loss(zero, x, y)
    assert result["loss"] == pytest.approx(math.log(10), rel=1e-6) and result["ok"]   # uniform predictions
    confident = nn.Sequential(nn.Flatten(), nn.Linear(784, 10))
    nn.init.normal_(confident[1].weight, std=1.0)  # logits with std ~ 28: confidently wrong at init
    result = D.check_initial_loss(confident, x, y)
    assert result["loss"] > 3 * math.log(10) and not result["ok"]


def test_activation_statistics_match_numpy():
    fastnn.manual_seed(0)
    lin = nn.Linear(6, 5)
    model = nn.Sequential(lin, nn.ReLU(), nn.Linear(5, 4), nn.Tanh(), nn.Linear(4, 3), nn.Sigmoid())
    with fastnn.no_grad():  # a parameter is edited in place outside the graph, as in PyTorch
        lin.bias.copy_(np.array([0, 0, -100, 0, 0], np.float32))  # unit 2 can never fire: dead
        model[2].weight.copy_(model[2].weight.detach().numpy() * 20)  # saturate the tanh
    x = np.random.default_rng(0).standard_normal((32, 6)).astype(np.float32)
    stats = D.activation_statistics(model, fastnn.tensor(x))
    assert list(stats) == ["0", "1", "2", "3", "4", "5"]
    h = np.maximum(x @ lin.weight.detach().numpy().T + lin.bias.detach().numpy(), 0)
    assert stats["1"]["kind"] == "relu"
    assert stats["1"]["mean"] == pytest.approx(h.mean(), rel=1e-5)
    assert stats["1"]["std"] == pytest.approx(h.std(), rel=1e-5)
    assert stats["1"]["zero_fraction"] == pytest.approx((h == 0).mean())
    assert stats["1"]["dead_fraction"] == pytest.approx((~(h > 0).any(axis=0)).mean()) and \
        stats["1"]["dead_fraction"] >= 0.2
    t = np.tanh(h @ model[2].weight.detach().numpy().T + model[2].bias.detach().numpy())
    assert stats["3"]["saturated_fraction"] == pytest.approx((np.abs(t) > 0.97).mean())
    counts, edges = stats["3"]["histogram"]
    assert counts.sum() == t.size and edges[0] == -1 and edges[-1] == 1
    s = 1 / (1 + np.exp(-(t @ model[4].weight.detach().numpy().T + model[4].bias.detach().numpy())))
    assert stats["5"]["saturated_fraction"] == pytest.approx(((s < 0.03) | (s > 0.97)).mean())
    findings = D.judge_activations(stats, max_saturated=0.2, max_dead=0.1)
    assert any("dead" in f.message for f in findings) and any("saturated" in f.message for f in findings)


def test_checks_leave_the_model_and_optimizer_unchanged(data):
    model = nn.Sequential(nn.Flatten(), nn.Linear(784, 32), nn.BatchNorm1d(32), nn.ReLU(), nn.Linear(32, 10))
    opt = optim.Adam(model.parameters(), lr=1e-3)
    loader = _loader(data)
    x, y = next(iter(loader))
    opt.zero_grad()
    nn.CrossEntropyLoss()(model(x), y).backward()
    opt.step()
    model.eval()
    before = {k: v.detach().numpy().copy() for k, v in model.state_dict().items()}
    opt_before = opt.state_dict()
    rng_before = fastnn.random.default_generator().bit_generator.state
    D.diagnose(model, loader, opt, overfit_steps=20, lr_finder_iter=20)
    for k, v in model.state_dict().items():
        np.testing.assert_array_equal(v.detach().numpy(), before[k], err_msg=k)
    after = opt.state_dict()
    assert [g["lr"] for g in after["param_groups"]] == [1e-3]
    for i, state in opt_before["state"].items():
        for name, value in state.items():
            np.testing.assert_array_equal(after["state"][i][name], value)
    assert not model.training and not model[2].training
    assert fastnn.random.default_generator().bit_generator.state == rng_before


def _short_run(data, lr, steps=60):
    """Mean loss of the last 10 of `steps` SGD steps from one fixed init and batch order."""
    fastnn.manual_seed(5)
    model = nn.Sequential(nn.Flatten(), nn.Linear(784, 128), nn.ReLU(), nn.Linear(128, 10))
    opt = optim.SGD(model.parameters(), lr=lr, momentum=0.9)
    losses = []
    for step, (x, y) in enumerate(_loader(data)):
        if step == steps:
            break
        opt.zero_grad()
        loss = nn.CrossEntropyLoss()(model(x), y)
        loss.backward()
        opt.step()
        losses.append(loss.item())
    return np.mean(losses[-10:])


def test_lr_finder_suggestion_lies_where_a_short_run_trains(data):
    fastnn.manual_seed(5)
    model = nn.Sequential(nn.Flatten(), nn.Linear(784, 128), nn.ReLU(), nn.Linear(128, 10))
    result = D.lr_range_test(model, _loader(data), optim.SGD(model.parameters(), lr=0.01, momentum=0.9))
    assert result["descended"] and len(result["lrs"]) >= 30
    lrs = [10.0 ** e for e in np.arange(-4, 1.01, 0.5)]
    trains = []
    with np.errstate(all="ignore"):
        for lr in lrs:
            last = _short_run(data, lr)
            # "Trains": within 60 steps the loss gets well below the chance level log(10) and stays finite.
            trains.append(bool(np.isfinite(last) and last < 0.6 * math.log(10)))
    assert trains[0] is False and trains[-1] is False  # 1e-4 is too slow and 10 diverges: the test can fail
    training = [lr for lr, ok in zip(lrs, trains) if ok]
    assert training and min(training) <= result["suggested_lr"] <= max(training), (result["suggested_lr"], trains)
    assert min(training) <= result["steepest_lr"] <= max(training)

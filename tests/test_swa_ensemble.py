"""Weight averaging (optim.swa_utils: AveragedModel, SWALR, update_bn) against NumPy references, and ensembles
on the real embedded Fashion-MNIST subset."""
import math

import numpy as np
import pytest

import fastnn
from fastnn import nn, optim
from fastnn.data import DataLoader, FashionMNIST, TensorDataset
from fastnn.data.datasets import EMBEDDED_DIR
from fastnn.ensemble import Ensemble, evaluate_ensemble, predict_proba, snapshot_ensemble
from fastnn.optim.swa_utils import (SWALR, AveragedModel, get_ema_avg_fn, get_ema_multi_avg_fn, update_bn)
from fastnn.training import train_one_epoch


def _perturb_sequence(model, steps, rng):
    """Set the model's parameters to `steps` random states in turn, yielding a copy of each state."""
    for _ in range(steps):
        state = {}
        for name, p in model.named_parameters():
            value = rng.standard_normal(p.shape).astype(np.float32)
            with fastnn.no_grad():  # as in PyTorch, a parameter is edited in place only outside the graph
                p.copy_(value)
            state[name] = value.astype(np.float64)
        yield state


@pytest.mark.parametrize("how", ["multi_avg_fn", "avg_fn"])
def test_ema_matches_numpy_reference(how):
    model = nn.Sequential(nn.Linear(4, 3), nn.Tanh(), nn.Linear(3, 2))
    decay = 0.9
    kwargs = {"multi_avg_fn": get_ema_multi_avg_fn(decay)} if how == "multi_avg_fn" else {
        "avg_fn": get_ema_avg_fn(decay)}
    ema = AveragedModel(model, **kwargs)
    reference = None
    for state in _perturb_sequence(model, 6, np.random.default_rng(1)):
        ema.update_parameters(model)
        reference = dict(state) if reference is None else {
            k: decay * reference[k] + (1 - decay) * state[k] for k in state}
    assert int(ema.n_averaged.item()) == 6
    for name, p in ema.module.named_parameters():
        np.testing.assert_allclose(p.detach().numpy(), reference[name], rtol=1e-5, atol=1e-6)
    x = fastnn.randn(5, 4)
    expected = np.tanh(x.numpy() @ reference["0.weight"].T + reference["0.bias"]) @ reference["2.weight"].T \
        + reference["2.bias"]
    np.testing.assert_allclose(ema(x).detach().numpy(), expected, rtol=1e-4, atol=1e-5)


def test_swa_default_is_the_equal_weight_mean_and_buffers_follow_the_model():
    model = nn.Sequential(nn.Linear(3, 3), nn.BatchNorm1d(3))
    swa = AveragedModel(model)
    states = []
    for state in _perturb_sequence(model, 5, np.random.default_rng(2)):
        model.train()
        model(fastnn.randn(8, 3))  # moves the BN running statistics
        swa.update_parameters(model)
        states.append(state)
    for name, p in swa.module.named_parameters():
        np.testing.assert_allclose(p.detach().numpy(), np.mean([s[name] for s in states], axis=0), rtol=1e-5,
                                   atol=1e-6)
    np.testing.assert_array_equal(swa.module[1].running_mean.numpy(), model[1].running_mean.numpy())
    # use_buffers=True averages the float buffers as well.
    avg_buffers = AveragedModel(model, use_buffers=True)
    means = []
    for _ in range(3):
        model(fastnn.randn(8, 3))
        avg_buffers.update_parameters(model)
        means.append(model[1].running_mean.numpy().astype(np.float64).copy())
    np.testing.assert_allclose(avg_buffers.module[1].running_mean.numpy(), np.mean(means, axis=0), rtol=1e-5)


def test_update_bn_recomputes_statistics_equal_to_a_direct_computation():
    fastnn.manual_seed(3)
    model = nn.Sequential(nn.Linear(5, 4), nn.BatchNorm1d(4, momentum=0.3), nn.ReLU(), nn.Linear(4, 2))
    rng = np.random.default_rng(4)
    x = (rng.standard_normal((32, 5)) * 2 + 1).astype(np.float32)
    y = np.zeros(32, np.int64)
    model[1].running_mean.fill_(7.0)
    model.eval()
    loader = DataLoader(TensorDataset(fastnn.tensor(x), fastnn.tensor(y)), batch_size=8)
    update_bn(loader, model)
    w, b = model[0].weight.detach().numpy().astype(np.float64), model[0].bias.detach().numpy().astype(np.float64)
    h = x.astype(np.float64) @ w.T + b
    batches = h.reshape(4, 8, 4)
    np.testing.assert_allclose(model[1].running_mean.numpy(), batches.mean(axis=1).mean(axis=0), rtol=1e-5)
    np.testing.assert_allclose(model[1].running_var.numpy(), batches.var(axis=1, ddof=1).mean(axis=0), rtol=1e-5)
    assert model[1].momentum == 0.3 and not model.training and not model[1].training
    assert int(model[1].num_batches_tracked.item()) == 4


def test_swalr_follows_pytorchs_cosine_anneal():
    opt = optim.SGD([nn.Parameter(np.zeros(2, np.float32))], lr=1.0)
    sched = SWALR(opt, swa_lr=0.1, anneal_epochs=4, anneal_strategy="cos")
    lrs = [opt.param_groups[0]["lr"]]
    for _ in range(6):
        sched.step()
        lrs.append(opt.param_groups[0]["lr"])
    # PyTorch: lr_t = swa_lr + (lr_0 - swa_lr) * (1 + cos(pi * min(t, T) / T)) / 2
    expected = [0.1 + 0.9 * (1 + math.cos(math.pi * min(t, 4) / 4)) / 2 for t in range(7)]
    np.testing.assert_allclose(lrs, expected, rtol=1e-12)
    with pytest.raises(ValueError, match="anneal_strategy"):
        SWALR(opt, swa_lr=0.1, anneal_strategy="step")


@pytest.fixture(scope="module")
def fashion():
    (x, y), (xt, yt) = (FashionMNIST(EMBEDDED_DIR, train=True).standardized(),
                        FashionMNIST(EMBEDDED_DIR, train=False).standardized())
    return (x, y), (xt, yt)


def _mlp():
    return nn.Sequential(nn.Flatten(), nn.Linear(784, 128), nn.ReLU(), nn.Linear(128, 10))


def test_ensemble_is_at_least_as_accurate_as_its_mean_member(fashion):
    (x, y), (xt, yt) = fashion
    members = []
    for seed in range(3):
        fastnn.manual_seed(seed)
        model = _mlp()
        loader = DataLoader(TensorDataset(fastnn.tensor(x), fastnn.tensor(y)), batch_size=64, shuffle=True)
        train_one_epoch(model, loader, optim.SGD(model.parameters(), lr=0.01, momentum=0.9), nn.CrossEntropyLoss())
        members.append(model)
    test_loader = DataLoader(TensorDataset(fastnn.tensor(xt), fastnn.tensor(yt)), batch_size=500)
    accuracy, member_accuracies = evaluate_ensemble(members, test_loader)
    assert min(member_accuracies) > 0.78
    assert accuracy >= np.mean(member_accuracies)
    # The Ensemble module and predict_proba give the same averaged probabilities.
    probs = predict_proba(members, fastnn.tensor(xt[:50]))
    np.testing.assert_allclose(probs.sum(axis=1), 1.0, rtol=1e-5)
    ens = Ensemble(members).eval()
    np.testing.assert_allclose(ens(fastnn.tensor(xt[:50])).detach().numpy(), probs, rtol=1e-6)
    assert (probs.argmax(axis=1) == yt[:50]).mean() > 0.7


def test_snapshot_ensemble_takes_one_snapshot_per_cosine_cycle(fashion):
    (x, y), (xt, yt) = fashion
    fastnn.manual_seed(0)
    model = _mlp()
    opt = optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    loader = DataLoader(TensorDataset(fastnn.tensor(x[:3000]), fastnn.tensor(y[:3000])), batch_size=100,
                        shuffle=True)
    seen = []
    snaps = snapshot_ensemble(model, opt, loader, cycles=3, epochs_per_cycle=1,
                              progress=lambda c, e, loss, acc: seen.append((c, e, opt.param_groups[0]["lr"])))
    assert len(snaps) == 3 and [s[:2] for s in seen] == [(1, 1), (2, 1), (3, 1)]
    assert all(lr == pytest.approx(0.1) for _, _, lr in seen)  # restarted at the end of every cycle
    w = [s[1].weight.detach().numpy() for s in snaps]
    assert not np.array_equal(w[0], w[1]) and not np.array_equal(w[1], w[2])
    test_loader = DataLoader(TensorDataset(fastnn.tensor(xt), fastnn.tensor(yt)), batch_size=500)
    accuracy, members = evaluate_ensemble(snaps, test_loader)
    assert min(members) > 0.7 and accuracy >= np.mean(members)

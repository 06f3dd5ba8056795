"""Transfer-learning helpers: freezing by module and by name prefix, head replacement, per-group learning rates,
fine-tuning from a saved checkpoint."""
import numpy as np
import pytest

import fastnn
from fastnn import nn, optim
from fastnn.transfer import (find_head, freeze, frozen_parameters, load_pretrained, param_groups, replace_head,
                             trainable_parameters, unfreeze)


def _net():
    return nn.Sequential(nn.Conv2d(1, 4, 3, padding=1), nn.BatchNorm2d(4), nn.ReLU(), nn.MaxPool2d(2),
                         nn.Flatten(), nn.Linear(4 * 4 * 4, 16), nn.ReLU(), nn.Linear(16, 3))


def _steps(model, optimizer, n=3, classes=3):
    rng = np.random.default_rng(0)
    for _ in range(n):
        x = fastnn.tensor(rng.standard_normal((8, 1, 8, 8)).astype(np.float32))
        y = fastnn.tensor(rng.integers(0, classes, 8))
        optimizer.zero_grad()
        nn.CrossEntropyLoss()(model(x), y).backward()
        optimizer.step()


def _snapshot(model):
    return {n: p.detach().numpy().copy() for n, p in model.named_parameters()}


@pytest.mark.parametrize("how", ["prefix", "module"])
def test_frozen_parameters_stay_unchanged_after_steps(how):
    model = _net()
    frozen = freeze(model, "0", "1") if how == "prefix" else freeze(model, model[0], model[1])
    assert frozen == ["0.weight", "0.bias", "1.weight", "1.bias"] == frozen_parameters(model)
    before = _snapshot(model)
    # Momentum and weight decay would move a parameter with a zero gradient: frozen ones must get none at all.
    _steps(model, optim.SGD(model.parameters(), lr=0.1, momentum=0.9, weight_decay=0.1))
    after = _snapshot(model)
    for name in before:
        if name in frozen:
            np.testing.assert_array_equal(after[name], before[name])
        else:
            assert not np.array_equal(after[name], before[name]), name
    assert unfreeze(model, "1") == ["1.weight", "1.bias"] and frozen_parameters(model) == ["0.weight", "0.bias"]
    freeze(model)
    assert trainable_parameters(model) == []
    unfreeze(model)
    assert frozen_parameters(model) == []


def test_freeze_errors_name_the_target():
    model = _net()
    with pytest.raises(ValueError, match="'backbone'.*0, 1, 5, 7"):
        freeze(model, "backbone")
    with pytest.raises(ValueError, match="not a submodule"):
        freeze(model, nn.Linear(2, 2))
    with pytest.raises(TypeError, match="int"):
        freeze(model, 3)


def test_replace_head_and_per_group_learning_rates():
    model = _net()
    assert find_head(model) == "7"
    head = replace_head(model, 5)
    assert model[7] is head and (head.in_features, head.out_features) == (16, 5)
    assert model(fastnn.randn(2, 1, 8, 8)).shape == (2, 5)
    freeze(model, "0")
    groups = param_groups(model, {"7": 0.1, "5": 0.01}, default_lr=0.001, momentum=0.9)
    assert [g["lr"] for g in groups] == [0.1, 0.01, 0.001]
    assert [len(g["params"]) for g in groups] == [2, 2, 2]  # head, hidden Linear, the BatchNorm (conv frozen)
    opt = optim.SGD(groups, lr=0.5)
    assert [g["lr"] for g in opt.param_groups] == [0.1, 0.01, 0.001]
    assert all(g["momentum"] == 0.9 for g in opt.param_groups)
    # The effective step of each group is its own lr times the gradient (plain SGD, one step).
    opt = optim.SGD(param_groups(model, {"7": 0.1}, default_lr=0.0), lr=0.5)
    before = _snapshot(model)
    x, y = fastnn.randn(4, 1, 8, 8), fastnn.tensor(np.array([0, 1, 2, 3]))
    opt.zero_grad()
    nn.CrossEntropyLoss()(model(x), y).backward()
    grad = model[7].weight.grad.detach().numpy().copy()
    opt.step()
    np.testing.assert_allclose(model[7].weight.detach().numpy(), before["7.weight"] - 0.1 * grad, rtol=1e-6)
    np.testing.assert_array_equal(model[5].weight.detach().numpy(), before["5.weight"])


def test_fine_tune_from_a_saved_checkpoint(tmp_path):
    source = _net()
    _steps(source, optim.SGD(source.parameters(), lr=0.1))
    path = tmp_path / "source.ckpt"
    fastnn.save(source.state_dict(), path)
    target = _net()
    replace_head(target, 5)
    missing, unexpected, skipped = load_pretrained(target, path)
    assert skipped == ["7.weight", "7.bias"] and missing == ["7.weight", "7.bias"] and unexpected == []
    for name, p in target.named_parameters():
        if not name.startswith("7."):
            np.testing.assert_array_equal(p.detach().numpy(), source.state_dict()[name].numpy())
    np.testing.assert_array_equal(target[1].running_mean.numpy(), source[1].running_mean.numpy())
    # exclude= drops keys even when their shapes fit.
    fresh = _net()
    _, _, skipped = load_pretrained(fresh, source.state_dict(), exclude=["5", "7"])
    assert skipped == ["5.weight", "5.bias", "7.weight", "7.bias"]
    assert not np.array_equal(fresh[5].weight.detach().numpy(), source[5].weight.detach().numpy())

"""fastnn.train: exact resume, accumulation, clipping, top-k accuracy, history files and the callbacks."""
import csv
import json
import math
import os
import sys

import numpy as np
import pytest

import fastnn
from fastnn import nn, optim
from fastnn.data import DataLoader, TensorDataset
from fastnn.optim import lr_scheduler
from fastnn.train import (Callback, EarlyStopping, LRMonitor, ModelCheckpoint, TensorBoardLogger, Trainer,
                          evaluate_metrics, fit)


def _data(n=192, features=12, classes=10, seed=0):
    rng = np.random.default_rng(seed)
    centers = rng.standard_normal((classes, features)).astype(np.float32) * 2
    y = rng.integers(0, classes, n)
    x = centers[y] + rng.standard_normal((n, features)).astype(np.float32)
    return TensorDataset(fastnn.tensor(x), fastnn.tensor(y))


def _model():
    # Dropout draws from fastnn's global generator and BatchNorm keeps buffers: both must resume exactly.
    return nn.Sequential(nn.Linear(12, 32), nn.BatchNorm1d(32), nn.ReLU(), nn.Dropout(0.3), nn.Linear(32, 10))


class _Losses(Callback):
    def __init__(self):
        self.losses = []

    def on_batch_end(self, trainer, batch_idx, logs):
        self.losses.append(logs["loss"])


def _setup(loader_generator=None, **trainer_kwargs):
    model = _model()
    optimizer = optim.SGD(model.parameters(), lr=0.1, momentum=0.9, weight_decay=1e-4)
    scheduler = lr_scheduler.CosineAnnealingLR(optimizer, T_max=4 * 6)
    train = DataLoader(_data(), batch_size=32, shuffle=True, generator=loader_generator)
    val = DataLoader(_data(n=64, seed=1), batch_size=64)
    losses = _Losses()
    trainer = Trainer(model, nn.CrossEntropyLoss(), optimizer, scheduler, scheduler_interval="step",
                      callbacks=[losses, EarlyStopping("val_loss", patience=10),
                                 ModelCheckpoint(monitor="val_acc", mode="max")],
                      progress=False, **trainer_kwargs)
    return trainer, train, val, losses


@pytest.mark.parametrize("own_generator, extra", [
    (False, {}),
    (True, {"accumulate_grad_batches": 4, "max_norm": 0.5}),  # 6 batches: steps after batches 4 and 6
])
def test_resumed_run_gives_bit_identical_losses(own_generator, extra, tmp_path):
    def generator():
        return np.random.default_rng(7) if own_generator else None

    fastnn.manual_seed(0)
    trainer, train, val, losses = _setup(generator(), out_dir=tmp_path / "full", **extra)
    trainer.fit(train, val, epochs=4)
    uninterrupted = losses.losses
    assert len(uninterrupted) == 24

    fastnn.manual_seed(0)
    first, train, val, first_losses = _setup(generator(), out_dir=tmp_path / "part", **extra)
    first.fit(train, val, epochs=2)
    # A new "process": other seeds and a fresh model, optimizer, scheduler, loader and callbacks.
    fastnn.manual_seed(99)
    np.random.seed(5)
    resumed, train, val, resumed_losses = _setup(np.random.default_rng(1) if own_generator else None,
                                                 out_dir=tmp_path / "part", **extra)
    resumed.fit(train, val, epochs=4, ckpt_path=tmp_path / "part" / "last.fastnn")
    assert first_losses.losses + resumed_losses.losses == uninterrupted  # exact float equality
    for a, b in zip(trainer.model.state_dict().values(), resumed.model.state_dict().values()):
        np.testing.assert_array_equal(a.numpy(), b.numpy())
    keys = ("epoch", "train_loss", "train_acc", "val_loss", "val_acc", "lr", "train_top5", "val_top5")
    assert [[r[k] for k in keys] for r in resumed.history] == [[r[k] for k in keys] for r in trainer.history]
    assert resumed.global_step == trainer.global_step == (24 if not extra else 8)
    with open(tmp_path / "full" / "history.csv") as f:
        full_rows = list(csv.DictReader(f))
    with open(tmp_path / "part" / "history.csv") as f:
        part_rows = list(csv.DictReader(f))
    assert [r["train_loss"] for r in part_rows] == [r["train_loss"] for r in full_rows]
    assert [float(r["val_loss"]) for r in full_rows] == [r["val_loss"] for r in trainer.history]


def test_gradient_accumulation_equals_one_big_batch():
    data = _data(n=64)

    def run(batch_size, accumulate):
        fastnn.manual_seed(0)
        model = nn.Sequential(nn.Linear(12, 16), nn.Tanh(), nn.Linear(16, 10))
        optimizer = optim.SGD(model.parameters(), lr=0.5)
        Trainer(model, nn.CrossEntropyLoss(), optimizer, accumulate_grad_batches=accumulate, progress=False
                ).fit(DataLoader(data, batch_size=batch_size), epochs=1)
        return [p.detach().numpy().copy() for p in model.parameters()], optimizer

    big, _ = run(32, 1)
    accumulated, _ = run(8, 4)
    for a, b in zip(big, accumulated):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)
    small, _ = run(8, 1)
    assert not np.allclose(big[0], small[0], atol=1e-4)


def test_gradient_clipping_bounds_each_update():
    fastnn.manual_seed(0)
    model = nn.Sequential(nn.Linear(12, 10))
    before = [p.detach().numpy().copy() for p in model.parameters()]
    trainer = Trainer(model, nn.CrossEntropyLoss(), optim.SGD(model.parameters(), lr=1.0), max_norm=1e-3,
                      progress=False)
    trainer.fit(DataLoader(_data(n=32), batch_size=32), epochs=1)
    change = math.sqrt(sum(float(((p.detach().numpy() - b) ** 2).sum()) for p, b in zip(model.parameters(), before)))
    assert 0.9e-3 < change <= 1e-3 * (1 + 1e-4)  # one SGD step of lr 1 on a gradient clipped to norm 1e-3


class _Identity(nn.Module):
    def forward(self, x):
        return x


def test_top1_and_top5_accuracy_against_numpy():
    rng = np.random.default_rng(3)
    logits = rng.standard_normal((300, 12)).astype(np.float32)
    labels = rng.integers(0, 12, 300)
    loader = DataLoader(TensorDataset(fastnn.tensor(logits), fastnn.tensor(labels)), batch_size=64)
    metrics = evaluate_metrics(_Identity(), loader, nn.CrossEntropyLoss(), topk=(1, 3, 5))
    order = np.argsort(-logits, axis=1)
    assert metrics["val_acc"] == np.mean(order[:, 0] == labels)
    assert metrics["val_top3"] == np.mean((order[:, :3] == labels[:, None]).any(1))
    assert metrics["val_top5"] == np.mean((order[:, :5] == labels[:, None]).any(1))
    shifted = logits - logits.max(1, keepdims=True)
    reference = np.mean(np.log(np.exp(shifted).sum(1)) - shifted[np.arange(300), labels])
    assert metrics["val_loss"] == pytest.approx(reference, rel=1e-5)
    assert 0 < metrics["val_acc"] < metrics["val_top3"] < metrics["val_top5"] < 1
    few = DataLoader(TensorDataset(fastnn.tensor(logits[:, :3]), fastnn.tensor(labels % 3)), batch_size=100)
    assert evaluate_metrics(_Identity(), few)["val_top5"] is None  # top-5 of 3 classes is not defined


# ---- EarlyStopping on scripted metric sequences ------------------------------------------------------------------

class _Scripted(Callback):
    """Replaces the epoch's val_loss by the next value of a script (placed before EarlyStopping)."""

    def __init__(self, values, key="val_loss"):
        self.values, self.key = values, key

    def on_epoch_end(self, trainer, epoch, logs):
        logs[self.key] = self.values[epoch - 1]


@pytest.mark.parametrize("values, kwargs, stop_epoch", [
    ([1.0, 0.8, 0.85, 0.9, 0.5, 0.4], {"patience": 2}, 4),              # best at 2, no better at 3 and 4
    ([1.0, 0.8, 0.7, 0.6, 0.5, 0.4], {"patience": 2}, None),            # always improving: runs all 6
    ([1.0, 0.95, 0.93, 0.92, 0.5, 0.4], {"patience": 2, "min_delta": 0.1}, 3),  # improvements under min_delta
    ([1.0, 1.0, 0.2, 0.3, 0.3, 0.3], {"patience": 0}, 2),               # patience 0: the first non-improvement
    ([1.0, float("nan"), 0.9, 1.0, 1.0, 1.0], {"patience": 2}, 5),       # NaN never improves
    ([0.5, 0.6, 0.6, 0.59, 0.7, 0.8], {"patience": 2, "mode": "max"}, 4),
])
def test_early_stopping_stops_at_the_right_epoch(values, kwargs, stop_epoch):
    fastnn.manual_seed(0)
    model = nn.Linear(12, 10)
    stopper = EarlyStopping("val_loss", **kwargs)
    trainer = Trainer(model, nn.CrossEntropyLoss(), optim.SGD(model.parameters(), lr=0.01), progress=False,
                      callbacks=[_Scripted(values), stopper])
    history = trainer.fit(DataLoader(_data(n=32), batch_size=32), epochs=6)
    assert len(history) == (stop_epoch or 6)
    assert stopper.stopped_epoch == stop_epoch and trainer.should_stop == (stop_epoch is not None)


def test_early_stopping_checks_its_arguments_and_monitor():
    with pytest.raises(ValueError, match="mode must be 'min' or 'max'"):
        EarlyStopping(mode="lowest")
    with pytest.raises(ValueError, match="patience must be a non-negative int"):
        EarlyStopping(patience=-1)
    with pytest.raises(ValueError, match="min_delta must be a non-negative number"):
        EarlyStopping(min_delta=-0.1)
    model = nn.Linear(12, 10)
    trainer = Trainer(model, nn.CrossEntropyLoss(), optim.SGD(model.parameters(), lr=0.01), progress=False,
                      callbacks=[EarlyStopping("val_loss")])
    with pytest.raises(ValueError, match="monitor 'val_loss' is not among the epoch's metrics"):
        trainer.fit(DataLoader(_data(n=32), batch_size=32), epochs=1)  # no validation loader


# ---- history files, checkpoints, LR monitor, TensorBoard ---------------------------------------------------------

class _ReadHistoryDuringRun(Callback):
    def __init__(self, path):
        self.path, self.rows_seen = path, []

    def on_epoch_start(self, trainer, epoch):
        if os.path.exists(self.path):
            with open(self.path) as f:
                self.rows_seen.append(len(list(csv.DictReader(f))))


def test_history_files_are_written_as_the_run_goes_and_checkpoints_keep_best_and_last(tmp_path):
    fastnn.manual_seed(0)
    model = _model()
    optimizer = optim.SGD(model.parameters(), lr=0.05, momentum=0.9)
    reader = _ReadHistoryDuringRun(tmp_path / "history.csv")
    checkpoint = ModelCheckpoint(monitor="val_acc", mode="max")
    trainer = fit(model, nn.CrossEntropyLoss(), optimizer, DataLoader(_data(), batch_size=32, shuffle=True),
                  DataLoader(_data(n=64, seed=1), batch_size=32), epochs=4,
                  scheduler=lr_scheduler.StepLR(optimizer, 1, gamma=0.5), out_dir=tmp_path, progress=False,
                  callbacks=[reader, LRMonitor(), _Scripted([0.3, 0.6, 0.5, 0.4], "val_acc"), checkpoint])
    assert reader.rows_seen == [0, 1, 2, 3]
    with open(tmp_path / "history.csv") as f:
        rows = list(csv.DictReader(f))
    assert list(rows[0])[:7] == ["epoch", "train_loss", "train_acc", "val_loss", "val_acc", "lr", "seconds"]
    assert [int(r["epoch"]) for r in rows] == [1, 2, 3, 4]
    assert [float(r["lr"]) for r in rows] == [0.05, 0.025, 0.0125, 0.00625] == [r["lr_pg0"] for r in trainer.history]
    assert [float(r["train_loss"]) for r in rows] == [r["train_loss"] for r in trainer.history]
    assert all(float(r["seconds"]) > 0 and 0 <= float(r["train_acc"]) <= 1 for r in rows)
    with open(tmp_path / "history.jsonl") as f:
        assert [json.loads(line) for line in f] == trainer.history
    assert fastnn.load(tmp_path / "last.fastnn")["epoch"] == 4
    best = fastnn.load(tmp_path / "best.fastnn")
    assert best["epoch"] == 2 == checkpoint.best_epoch and best["history"][-1]["val_acc"] == 0.6
    assert best["callbacks"][-1] == {"type": "ModelCheckpoint", "state": {"best": 0.6, "best_epoch": 2}}


def test_lr_monitor_per_step_and_reduce_on_plateau_per_epoch():
    fastnn.manual_seed(0)
    model = nn.Linear(12, 10)
    optimizer = optim.SGD([{"params": [model.weight]}, {"params": [model.bias], "lr": 0.2}], lr=0.1)
    monitor = LRMonitor("step")
    # A metric that only grows (the epoch number): in "min" mode with patience 0, every epoch after the first
    # cuts the lr by 10.
    trainer = Trainer(model, nn.CrossEntropyLoss(), optimizer, lr_scheduler.ReduceLROnPlateau(optimizer, patience=0),
                      scheduler_monitor="epoch", callbacks=[monitor], progress=False)
    trainer.fit(DataLoader(_data(n=64), batch_size=32), epochs=3)
    assert [step for step, _ in monitor.history] == [1, 2, 3, 4, 5, 6]
    assert np.allclose([lrs for _, lrs in monitor.history], [[0.1, 0.2]] * 4 + [[0.01, 0.02]] * 2)
    assert np.allclose([r["lr"] for r in trainer.history], [0.1, 0.1, 0.01])
    assert np.allclose([r["lr_pg1"] for r in trainer.history], [0.2, 0.2, 0.02])
    assert np.allclose([g["lr"] for g in optimizer.param_groups], [0.001, 0.002])
    with pytest.raises(ValueError, match="logging_interval"):
        LRMonitor("batch")
    bad = Trainer(model, nn.CrossEntropyLoss(), optimizer, lr_scheduler.ReduceLROnPlateau(optimizer),
                  progress=False)
    with pytest.raises(ValueError, match="scheduler_monitor='val_loss'"):
        bad.fit(DataLoader(_data(n=32), batch_size=32), epochs=1)


def test_tensorboard_logger_writes_events_and_names_the_extra(tmp_path, monkeypatch):
    pytest.importorskip("tensorboardX")
    fastnn.manual_seed(0)
    model = nn.Linear(12, 10)
    trainer = Trainer(model, nn.CrossEntropyLoss(), optim.SGD(model.parameters(), lr=0.1), out_dir=tmp_path,
                      callbacks=[TensorBoardLogger(log_every_n_steps=1)], progress=False)
    trainer.fit(DataLoader(_data(n=64), batch_size=32), epochs=2)
    events = os.listdir(tmp_path / "tensorboard")
    assert len(events) == 1 and events[0].startswith("events.out.tfevents")
    assert os.path.getsize(tmp_path / "tensorboard" / events[0]) > 100
    monkeypatch.setitem(sys.modules, "tensorboardX", None)
    with pytest.raises(ImportError, match=r"pip install 'fastnn\[tensorboard\]'"):
        Trainer(model, nn.CrossEntropyLoss(), optim.SGD(model.parameters(), lr=0.1), out_dir=tmp_path,
                callbacks=[TensorBoardLogger()], progress=False).fit(DataLoader(_data(n=32), batch_size=32))


def test_trainer_checks_its_arguments_and_checkpoints(tmp_path):
    model = nn.Linear(12, 10)
    sgd = optim.SGD(model.parameters(), lr=0.1)
    loss = nn.CrossEntropyLoss()
    for kwargs, message in [({"scheduler_interval": "batch"}, "scheduler_interval must be 'epoch' or 'step'"),
                            ({"max_norm": 0}, "max_norm must be a positive number"),
                            ({"accumulate_grad_batches": 0}, "accumulate_grad_batches must be a positive int"),
                            ({"topk": (5,)}, "topk must be a tuple of positive ints starting with 1")]:
        with pytest.raises(ValueError, match=message):
            Trainer(model, loss, sgd, **kwargs)
    with pytest.raises(TypeError, match="callbacks must be fastnn.train.Callback"):
        Trainer(model, loss, sgd, callbacks=[print])
    with pytest.raises(TypeError, match="optimizer must be a fastnn.optim.Optimizer"):
        Trainer(model, loss, "sgd")
    fastnn.save(model.state_dict(), tmp_path / "weights")
    with pytest.raises(ValueError, match="not a fastnn.train checkpoint"):
        Trainer(model, loss, sgd).load_checkpoint(tmp_path / "weights")
    Trainer(model, loss, sgd).save_checkpoint(tmp_path / "ckpt")
    with pytest.raises(ValueError, match="saved without an LR scheduler"):
        Trainer(model, loss, sgd, lr_scheduler.StepLR(sgd, 1)).load_checkpoint(tmp_path / "ckpt")
    with pytest.raises(ValueError, match="callbacks"):
        Trainer(model, loss, sgd, callbacks=[EarlyStopping()]).load_checkpoint(tmp_path / "ckpt")

"""Trainer: the fit loop over a model, a loss, an optimizer, an optional LR scheduler and data loaders.

Per epoch: a tqdm bar with the running loss, accuracy and images/s; top-1 (and top-5) accuracy; gradient
clipping and accumulation; a validation pass; one history row (epoch, train_loss, train_acc, val_loss, val_acc,
lr, seconds, train_top5, val_top5, and what callbacks add) appended to out_dir/history.csv and
out_dir/history.jsonl as the run goes.

Exact resume: `state_dict()` holds the model, optimizer, scheduler, callbacks' state, history, epoch, step
count and every RNG stream the loop reads (fastnn's global generator, which shuffles loaders without a
generator of their own and drives dropout and augmentation; the train loader's own generator when it has one;
NumPy's and Python's global generators). A run resumed from the checkpoint of epoch k (`fit(ckpt_path=...)`)
computes bit-identical losses to a run that never stopped, given the same code, data and thread count.
"""
import csv
import io
import json
import math
import os
import random
import sys
import time

import numpy as np

from fastnn.autograd import no_grad
from fastnn.random import get_rng_state, set_rng_state
from fastnn.serialization import load, save
from fastnn.tensor import Tensor
from fastnn.train.callbacks import Callback, ModelCheckpoint

__all__ = ["Trainer", "fit", "evaluate_metrics", "HISTORY_COLUMNS"]

CHECKPOINT_KIND = "fastnn-trainer-checkpoint"
# history.csv's leading columns, in this order; metrics callbacks add follow them.
HISTORY_COLUMNS = ("epoch", "train_loss", "train_acc", "val_loss", "val_acc", "lr", "seconds", "train_top5",
                   "val_top5")


def _host(t):
    return t.detach().numpy() if isinstance(t, Tensor) else np.asarray(t)


class _Meter:
    """Sums of loss, top-1 and top-5 hits over the samples seen."""

    def __init__(self, topk):
        self.topk = topk
        self.loss = 0.0
        self.correct = {k: 0 for k in topk}
        self.seen = 0

    def update(self, logits, targets, loss_value):
        scores, labels = _host(logits), _host(targets)
        if labels.ndim == scores.ndim:  # soft / one-hot targets (MixUp, CutMix): the most likely class
            labels = labels.argmax(axis=1)
        n = len(labels)
        self.loss += loss_value * n
        self.seen += n
        classes = scores.shape[1]
        for k in self.topk:
            if k == 1:
                self.correct[1] += int((scores.argmax(axis=1) == labels).sum())
            elif k <= classes:
                top = np.argpartition(-scores, k - 1, axis=1)[:, :k]
                self.correct[k] += int((top == labels[:, None]).any(axis=1).sum())
        return n

    def results(self, prefix, classes=None):
        out = {f"{prefix}_loss": self.loss / self.seen, f"{prefix}_acc": self.correct[1] / self.seen}
        for k in self.topk:
            if k != 1:
                out[f"{prefix}_top{k}"] = self.correct[k] / self.seen if classes is None or k <= classes else None
        return out


def _check_topk(topk):
    topk = tuple(topk)
    if not topk or topk[0] != 1 or any(isinstance(k, bool) or not isinstance(k, int) or k < 1 for k in topk):
        raise ValueError(f"topk must be a tuple of positive ints starting with 1, got {topk!r}")
    return topk


@no_grad()
def evaluate_metrics(model, loader, loss_fn=None, topk=(1, 5), prefix="val"):
    """{prefix_loss (when loss_fn is given), prefix_acc, prefix_top5, ...} of `model` over `loader`, in eval mode."""
    topk = _check_topk(topk)
    model.eval()
    meter = _Meter(topk)
    classes = None
    for inputs, targets in loader:
        logits = model(inputs)
        classes = logits.shape[1]
        meter.update(logits, targets, loss_fn(logits, targets).item() if loss_fn is not None else 0.0)
    if meter.seen == 0:
        raise ValueError("the evaluation loader produced no batches")
    out = meter.results(prefix, classes)
    if loss_fn is None:
        del out[f"{prefix}_loss"]
    return out


class _Bar:
    """The per-epoch tqdm bar (on stderr; off when asked or when stderr is not a terminal)."""

    def __init__(self, total, desc, enabled):
        from tqdm import tqdm
        self.bar = tqdm(total=total, desc=desc, unit="batch", leave=False, file=sys.stderr,
                        disable=None if enabled else True)
        self.start = time.perf_counter()

    def update(self, step, loss, acc, seen):
        self.bar.update(1)
        if step % 10 == 0:
            rate = seen / max(time.perf_counter() - self.start, 1e-9)
            self.bar.set_postfix(loss=f"{loss:.4f}", acc=f"{acc:.4f}", img_s=f"{rate:.0f}", refresh=False)

    def close(self):
        self.bar.close()


class Trainer:
    """Fit `model` with `loss_fn` and `optimizer`.

    scheduler: an LR scheduler stepped after every optimizer step (scheduler_interval="step") or after every
    epoch ("epoch"; a ReduceLROnPlateau gets the `scheduler_monitor` metric). max_norm: clip the gradients'
    total 2-norm to it before each step. accumulate_grad_batches: sum the gradients of that many batches (each
    loss divided by it) per optimizer step; the last batches of an epoch step whatever their number.
    callbacks: Callback instances. out_dir: where history.csv / history.jsonl go (and ModelCheckpoint's files
    by default). progress: show a tqdm bar per epoch. topk: the accuracies to measure (1 always first).
    """

    def __init__(self, model, loss_fn, optimizer, scheduler=None, *, scheduler_interval="epoch",
                 scheduler_monitor="val_loss", callbacks=(), max_norm=None, accumulate_grad_batches=1,
                 out_dir=None, progress=True, topk=(1, 5)):
        from fastnn.optim.optimizer import Optimizer
        if not isinstance(optimizer, Optimizer):
            raise TypeError(f"optimizer must be a fastnn.optim.Optimizer, got {type(optimizer).__name__}")
        if scheduler_interval not in ("epoch", "step"):
            raise ValueError(f"scheduler_interval must be 'epoch' or 'step', got {scheduler_interval!r}")
        if max_norm is not None and (isinstance(max_norm, bool) or not isinstance(max_norm, (int, float))
                                     or not max_norm > 0):
            raise ValueError(f"max_norm must be a positive number or None, got {max_norm!r}")
        if (isinstance(accumulate_grad_batches, bool) or not isinstance(accumulate_grad_batches, int)
                or accumulate_grad_batches < 1):
            raise ValueError(f"accumulate_grad_batches must be a positive int, got {accumulate_grad_batches!r}")
        callbacks = list(callbacks)
        for cb in callbacks:
            if not isinstance(cb, Callback):
                raise TypeError(f"callbacks must be fastnn.train.Callback instances, got {type(cb).__name__}")
        self.model, self.loss_fn, self.optimizer, self.scheduler = model, loss_fn, optimizer, scheduler
        self.scheduler_interval, self.scheduler_monitor = scheduler_interval, scheduler_monitor
        self.max_norm, self.accumulate_grad_batches = max_norm, accumulate_grad_batches
        # ModelCheckpoint last: the checkpoint it writes then holds every other callback's state for the epoch.
        self.callbacks = ([cb for cb in callbacks if not isinstance(cb, ModelCheckpoint)] +
                          [cb for cb in callbacks if isinstance(cb, ModelCheckpoint)])
        self.out_dir = None if out_dir is None else os.fspath(out_dir)
        self.progress, self.topk = bool(progress), _check_topk(topk)
        self.epoch = 0          # epochs completed
        self.global_step = 0    # optimizer steps taken
        self.history = []       # one dict per completed epoch
        self.should_stop = False
        self.train_loader = self.val_loader = None

    # ---- hooks ----------------------------------------------------------------------------------------------
    def _call(self, hook, *args):
        for cb in self.callbacks:
            getattr(cb, hook)(self, *args)

    # ---- one epoch --------------------------------------------------------------------------------------------
    def train_epoch(self, loader, epoch=None):
        """One pass over `loader`: returns {train_loss, train_acc, train_top5, ...} over the samples seen."""
        from fastnn.nn.utils import clip_grad_norm_
        epoch = self.epoch + 1 if epoch is None else epoch
        self.model.train()
        self.optimizer.zero_grad()
        meter = _Meter(self.topk)
        k = self.accumulate_grad_batches
        n_batches = len(loader)
        bar = _Bar(n_batches, f"epoch {epoch}", self.progress)
        classes = None
        try:
            for batch_idx, (inputs, targets) in enumerate(loader):
                self._call("on_batch_start", batch_idx)
                logits = self.model(inputs)
                loss = self.loss_fn(logits, targets)
                (loss / k if k > 1 else loss).backward()
                stepped = (batch_idx + 1) % k == 0 or batch_idx + 1 == n_batches
                if stepped:
                    if self.max_norm is not None:
                        clip_grad_norm_(self.model.parameters(), self.max_norm)
                    self.optimizer.step()
                    self.optimizer.zero_grad()
                    self.global_step += 1
                    if self.scheduler is not None and self.scheduler_interval == "step":
                        self.scheduler.step()
                loss_value = loss.item()
                classes = logits.shape[1]
                n = meter.update(logits, targets, loss_value)
                running = meter.loss / meter.seen
                running_acc = meter.correct[1] / meter.seen
                bar.update(batch_idx + 1, running, running_acc, meter.seen)
                self._call("on_batch_end", batch_idx, {"loss": loss_value, "running_loss": running,
                                                       "running_acc": running_acc, "batch_size": n,
                                                       "stepped": stepped})
        finally:
            bar.close()
        if meter.seen == 0:
            raise ValueError("the training loader produced no batches")
        return meter.results("train", classes)

    # ---- the fit loop -----------------------------------------------------------------------------------------
    def fit(self, train_loader, val_loader=None, epochs=1, ckpt_path=None):
        """Train until `epochs` epochs are completed in all (a resumed trainer continues from its epoch), or a
        callback sets should_stop. ckpt_path: resume from that checkpoint first. Returns the history."""
        if isinstance(epochs, bool) or not isinstance(epochs, int) or epochs < 0:
            raise ValueError(f"epochs must be a non-negative int, got {epochs!r}")
        self.train_loader, self.val_loader = train_loader, val_loader
        if ckpt_path is not None:
            self.load_checkpoint(ckpt_path)
        if self.out_dir is not None:
            os.makedirs(self.out_dir, exist_ok=True)
            self._write_history()  # a resumed run starts from the checkpoint's rows
        self.should_stop = False
        self._call("on_fit_start")
        try:
            while self.epoch < epochs and not self.should_stop:
                epoch = self.epoch + 1
                self._call("on_epoch_start", epoch)
                lr = float(self.optimizer.param_groups[0]["lr"])
                start = time.perf_counter()
                row = {"epoch": epoch}
                row.update(self.train_epoch(train_loader, epoch))
                if val_loader is not None:
                    row.update(evaluate_metrics(self.model, val_loader, self.loss_fn, self.topk, "val"))
                row["lr"] = lr
                row["seconds"] = time.perf_counter() - start
                if self.scheduler is not None and self.scheduler_interval == "epoch":
                    self._step_epoch_scheduler(row)
                self.epoch = epoch
                self.history.append(row)
                self._call("on_epoch_end", epoch, row)
                if self.out_dir is not None:
                    self._write_history()
        finally:
            self._call("on_fit_end")
        return self.history

    def _step_epoch_scheduler(self, row):
        from fastnn.optim.lr_scheduler import ReduceLROnPlateau
        if isinstance(self.scheduler, ReduceLROnPlateau):
            if self.scheduler_monitor not in row:
                raise ValueError(f"ReduceLROnPlateau steps on scheduler_monitor={self.scheduler_monitor!r}, which "
                                 f"is not among the epoch's metrics ({', '.join(row)})")
            self.scheduler.step(row[self.scheduler_monitor])
        else:
            self.scheduler.step()

    # ---- history files ----------------------------------------------------------------------------------------
    def _write_history(self):
        """Rewrite history.csv and history.jsonl from self.history (small files; atomic renames, so a killed run
        never leaves half a row, and a resumed run drops rows of epochs after its checkpoint)."""
        columns = [c for c in HISTORY_COLUMNS if any(c in row for row in self.history) or c in HISTORY_COLUMNS[:7]]
        columns += sorted({k for row in self.history for k in row} - set(columns))
        text = io.StringIO()
        writer = csv.DictWriter(text, fieldnames=columns, lineterminator="\n")
        writer.writeheader()
        for row in self.history:
            writer.writerow({c: _csv_value(row.get(c)) for c in columns})
        _write_text(os.path.join(self.out_dir, "history.csv"), text.getvalue())
        _write_text(os.path.join(self.out_dir, "history.jsonl"),
                    "".join(json.dumps(_json_value(row)) + "\n" for row in self.history))

    # ---- checkpoints ------------------------------------------------------------------------------------------
    def state_dict(self):
        """Everything an exact resume needs (see the module docstring)."""
        loader_generator = getattr(self.train_loader, "generator", None)
        return {
            "kind": CHECKPOINT_KIND,
            "epoch": self.epoch,
            "global_step": self.global_step,
            "model": self.model.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "scheduler": None if self.scheduler is None else self.scheduler.state_dict(),
            "callbacks": [{"type": type(cb).__name__, "state": cb.state_dict()} for cb in self.callbacks],
            "history": [dict(row) for row in self.history],
            "rng": {"fastnn": get_rng_state(), "numpy": _numpy_state(), "python": random.getstate(),
                    "loader": None if loader_generator is None else loader_generator.bit_generator.state},
            "settings": {"scheduler_interval": self.scheduler_interval, "max_norm": self.max_norm,
                         "accumulate_grad_batches": self.accumulate_grad_batches},
        }

    def load_state_dict(self, state):
        if not isinstance(state, dict) or state.get("kind") != CHECKPOINT_KIND:
            raise ValueError(f"not a fastnn.train checkpoint (expected a dict with kind={CHECKPOINT_KIND!r}; "
                             f"plain model weights load with model.load_state_dict)")
        self.model.load_state_dict(state["model"])
        self.optimizer.load_state_dict(state["optimizer"])
        if (state["scheduler"] is None) != (self.scheduler is None):
            raise ValueError(f"the checkpoint was saved {'without' if state['scheduler'] is None else 'with'} an "
                             f"LR scheduler, this trainer has {'one' if self.scheduler is not None else 'none'}")
        if self.scheduler is not None:
            self.scheduler.load_state_dict(state["scheduler"])
        saved = state["callbacks"]
        if [s["type"] for s in saved] != [type(cb).__name__ for cb in self.callbacks]:
            raise ValueError(f"the checkpoint's callbacks {[s['type'] for s in saved]} differ from this trainer's "
                             f"{[type(cb).__name__ for cb in self.callbacks]}")
        for cb, s in zip(self.callbacks, saved):
            cb.load_state_dict(s["state"])
        self.epoch, self.global_step = int(state["epoch"]), int(state["global_step"])
        self.history = [dict(row) for row in state["history"]]
        rng = state["rng"]
        set_rng_state(rng["fastnn"])
        np.random.set_state(rng["numpy"])
        random.setstate(rng["python"])
        loader_generator = getattr(self.train_loader, "generator", None)
        if (rng["loader"] is None) != (loader_generator is None):
            raise ValueError("the checkpoint's train loader and this one differ in having their own generator")
        if loader_generator is not None:
            loader_generator.bit_generator.state = rng["loader"]

    def save_checkpoint(self, path, state=None):
        save(self.state_dict() if state is None else state, path)

    def load_checkpoint(self, path):
        self.load_state_dict(load(path))


def _numpy_state():
    kind, keys, pos, has_gauss, cached = np.random.get_state()
    return (kind, keys, int(pos), int(has_gauss), float(cached))


def _csv_value(value):
    if value is None:
        return ""
    if isinstance(value, float):
        return repr(value)  # shortest exact round trip
    return value


def _json_value(row):
    return {k: (None if isinstance(v, float) and not math.isfinite(v) else v) for k, v in row.items()}


def _write_text(path, text):
    tmp = f"{path}.{os.getpid()}.tmp"
    with open(tmp, "w") as f:
        f.write(text)
    os.replace(tmp, path)


def fit(model, loss_fn, optimizer, train_loader, val_loader=None, epochs=1, scheduler=None, ckpt_path=None,
        **trainer_kwargs):
    """Build a Trainer(model, loss_fn, optimizer, scheduler, **trainer_kwargs), fit it for `epochs` and return it
    (its .history holds a dict per epoch)."""
    trainer = Trainer(model, loss_fn, optimizer, scheduler, **trainer_kwargs)
    trainer.fit(train_loader, val_loader, epochs=epochs, ckpt_path=ckpt_path)
    return trainer

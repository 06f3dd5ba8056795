"""Callbacks for fastnn.train.Trainer, with PyTorch Lightning's / Keras' hook names.

Each hook receives the trainer; `logs` is the dict the trainer fills (per batch: loss, running_loss, ...; per
epoch: the history row, which on_epoch_end hooks may extend). Callbacks that keep state across epochs
(EarlyStopping's wait counter, ModelCheckpoint's best score) save it in the trainer's checkpoints through
state_dict / load_state_dict, so a resumed run decides exactly as an uninterrupted one. The trainer calls every
ModelCheckpoint after the other callbacks, so the checkpoint it writes holds their state for the same epoch.
"""
import math
import numbers
import os

__all__ = ["Callback", "EarlyStopping", "ModelCheckpoint", "LRMonitor", "TensorBoardLogger"]

_MODES = ("min", "max")


class Callback:
    """Base class: override the hooks you need."""

    def on_fit_start(self, trainer):
        pass

    def on_epoch_start(self, trainer, epoch):
        pass

    def on_batch_start(self, trainer, batch_idx):
        pass

    def on_batch_end(self, trainer, batch_idx, logs):
        pass

    def on_epoch_end(self, trainer, epoch, logs):
        pass

    def on_fit_end(self, trainer):
        pass

    def state_dict(self):
        return {}

    def load_state_dict(self, state):
        pass


def _check_mode(mode):
    if mode not in _MODES:
        raise ValueError(f"mode must be 'min' or 'max', got {mode!r}")
    return mode


def _monitored(logs, monitor, who):
    if monitor not in logs:
        raise ValueError(f"{who}: monitor {monitor!r} is not among the epoch's metrics "
                         f"({', '.join(sorted(logs))}); is there a validation loader?")
    return float(logs[monitor])


class EarlyStopping(Callback):
    """Stop training once `monitor` has not improved for `patience` epochs in a row.

    An epoch improves when its value is below best - min_delta (mode="min") or above best + min_delta
    (mode="max"); NaN never improves. After the epoch that makes the count of epochs without improvement reach
    `patience`, trainer.should_stop is set and `stopped_epoch` records that epoch.
    """

    def __init__(self, monitor="val_loss", patience=3, min_delta=0.0, mode="min"):
        if not isinstance(monitor, str):
            raise TypeError(f"monitor must be a metric name (str), got {type(monitor).__name__}")
        if isinstance(patience, bool) or not isinstance(patience, numbers.Integral) or patience < 0:
            raise ValueError(f"patience must be a non-negative int, got {patience!r}")
        if isinstance(min_delta, bool) or not isinstance(min_delta, numbers.Real) or not min_delta >= 0:
            raise ValueError(f"min_delta must be a non-negative number, got {min_delta!r}")
        self.monitor, self.patience, self.min_delta, self.mode = monitor, int(patience), float(min_delta), \
            _check_mode(mode)
        self.best = math.inf if mode == "min" else -math.inf
        self.wait = 0
        self.stopped_epoch = None

    def improved(self, value):
        if self.mode == "min":
            return value < self.best - self.min_delta
        return value > self.best + self.min_delta

    def on_epoch_end(self, trainer, epoch, logs):
        value = _monitored(logs, self.monitor, "EarlyStopping")
        if self.improved(value):
            self.best, self.wait = value, 0
            return
        self.wait += 1
        if self.wait >= self.patience:
            self.stopped_epoch = epoch
            trainer.should_stop = True

    def state_dict(self):
        return {"best": self.best, "wait": self.wait, "stopped_epoch": self.stopped_epoch}

    def load_state_dict(self, state):
        self.best, self.wait, self.stopped_epoch = state["best"], state["wait"], state["stopped_epoch"]


class ModelCheckpoint(Callback):
    """After every epoch, save the trainer's full checkpoint (model, optimizer, scheduler, RNG streams, epoch,
    history: what Trainer.fit(ckpt_path=...) resumes from) to `dirpath/last.fastnn`, and to `dirpath/best.fastnn`
    when `monitor` improved (mode "min"/"max"; monitor=None: no best). dirpath defaults to the trainer's out_dir.
    """

    def __init__(self, dirpath=None, monitor="val_loss", mode="min", save_last=True, last_name="last.fastnn",
                 best_name="best.fastnn"):
        self.dirpath, self.monitor, self.mode = dirpath, monitor, _check_mode(mode)
        self.save_last, self.last_name, self.best_name = bool(save_last), last_name, best_name
        self.best = math.inf if mode == "min" else -math.inf
        self.best_epoch = None

    def _directory(self, trainer):
        directory = self.dirpath if self.dirpath is not None else trainer.out_dir
        if directory is None:
            raise ValueError("ModelCheckpoint needs a dirpath, or a Trainer with out_dir")
        os.makedirs(directory, exist_ok=True)
        return directory

    @property
    def last_path(self):
        return None if self.dirpath is None else os.path.join(self.dirpath, self.last_name)

    def on_fit_start(self, trainer):
        self.dirpath = self._directory(trainer)

    def on_epoch_end(self, trainer, epoch, logs):
        directory = self._directory(trainer)
        is_best = False
        if self.monitor is not None:
            value = _monitored(logs, self.monitor, "ModelCheckpoint")
            if (value < self.best) if self.mode == "min" else (value > self.best):
                self.best, self.best_epoch, is_best = value, epoch, True
        checkpoint = trainer.state_dict()  # after the update above, so the file holds this callback's new state
        if self.save_last:
            trainer.save_checkpoint(os.path.join(directory, self.last_name), checkpoint)
        if is_best:
            trainer.save_checkpoint(os.path.join(directory, self.best_name), checkpoint)

    def state_dict(self):
        return {"best": self.best, "best_epoch": self.best_epoch}

    def load_state_dict(self, state):
        self.best, self.best_epoch = state["best"], state["best_epoch"]


def _lrs(trainer):
    return [float(group["lr"]) for group in trainer.optimizer.param_groups]


class LRMonitor(Callback):
    """Record the learning rate of every parameter group: per epoch (the lr at the epoch's start, added to the
    epoch's logs as lr_pg0, lr_pg1, ...) or, with logging_interval="step", also after every optimizer step (added
    to the batch logs, so a TensorBoardLogger placed after this callback plots it). `self.history` holds
    (epoch or global step, [lr per group]) pairs."""

    def __init__(self, logging_interval="epoch"):
        if logging_interval not in ("epoch", "step"):
            raise ValueError(f"logging_interval must be 'epoch' or 'step', got {logging_interval!r}")
        self.logging_interval = logging_interval
        self.history = []
        self._epoch_lrs = None

    def on_epoch_start(self, trainer, epoch):
        self._epoch_lrs = _lrs(trainer)
        if self.logging_interval == "epoch":
            self.history.append((epoch, self._epoch_lrs))

    def on_batch_end(self, trainer, batch_idx, logs):
        if self.logging_interval == "step" and logs.get("stepped"):
            lrs = _lrs(trainer)
            self.history.append((trainer.global_step, lrs))
            logs.update({f"lr_pg{i}": lr for i, lr in enumerate(lrs)})

    def on_epoch_end(self, trainer, epoch, logs):
        logs.update({f"lr_pg{i}": lr for i, lr in enumerate(self._epoch_lrs)})


class TensorBoardLogger(Callback):
    """Write every numeric epoch metric (as epoch/<name>) and, every `log_every_n_steps` optimizer steps, the
    batch loss (and whatever numeric values earlier callbacks put in the batch logs, as step/<name>) to a
    TensorBoard event file in `log_dir` (default: the trainer's out_dir/tensorboard), through tensorboardX
    (pip install 'fastnn[tensorboard]')."""

    def __init__(self, log_dir=None, log_every_n_steps=50):
        self.log_dir = log_dir
        self.log_every_n_steps = int(log_every_n_steps)
        self.writer = None

    def on_fit_start(self, trainer):
        try:
            from tensorboardX import SummaryWriter
        except ImportError:
            raise ImportError("TensorBoardLogger needs tensorboardX: pip install 'fastnn[tensorboard]'") from None
        if self.log_dir is None:
            if trainer.out_dir is None:
                raise ValueError("TensorBoardLogger needs a log_dir, or a Trainer with out_dir")
            self.log_dir = os.path.join(trainer.out_dir, "tensorboard")
        self.writer = SummaryWriter(self.log_dir)

    def on_batch_end(self, trainer, batch_idx, logs):
        if logs.get("stepped") and self.log_every_n_steps > 0 and trainer.global_step % self.log_every_n_steps == 0:
            for key, value in logs.items():
                if isinstance(value, numbers.Real) and not isinstance(value, bool) and key != "stepped":
                    self.writer.add_scalar(f"step/{key}", value, trainer.global_step)

    def on_epoch_end(self, trainer, epoch, logs):
        for key, value in logs.items():
            if isinstance(value, numbers.Real) and not isinstance(value, bool) and key != "epoch":
                self.writer.add_scalar(f"epoch/{key}", value, epoch)
        self.writer.flush()

    def on_fit_end(self, trainer):
        if self.writer is not None:
            self.writer.close()
            self.writer = None

"""The plain training and evaluation loops of fastnn 0.1, now thin wrappers over fastnn.train's Trainer."""
from fastnn.train.callbacks import Callback
from fastnn.train.trainer import Trainer, evaluate_metrics


class _Progress(Callback):
    def __init__(self, progress):
        self.progress = progress

    def on_batch_end(self, trainer, batch_idx, logs):
        self.progress(batch_idx + 1, logs["running_loss"])


def train_one_epoch(model, loader, optimizer, loss_fn, progress=None, scheduler=None):
    """One pass over `loader`; returns (mean loss, accuracy) over the samples seen.

    `progress`, if given, is called after every batch with (batches done, running mean loss). `scheduler`, if
    given, is stepped after every optimizer step (a per-batch learning-rate schedule, its steps counted in
    batches); epoch-wise schedulers are stepped by the caller instead.
    """
    trainer = Trainer(model, loss_fn, optimizer, scheduler, scheduler_interval="step", progress=False, topk=(1,),
                      callbacks=[] if progress is None else [_Progress(progress)])
    metrics = trainer.train_epoch(loader)
    return metrics["train_loss"], metrics["train_acc"]


def evaluate(model, loader, loss_fn=None):
    """Accuracy of `model` over `loader` in eval mode (and the mean loss when `loss_fn` is given)."""
    metrics = evaluate_metrics(model, loader, loss_fn, topk=(1,), prefix="eval")
    return (metrics["eval_acc"], metrics["eval_loss"]) if loss_fn is not None else metrics["eval_acc"]

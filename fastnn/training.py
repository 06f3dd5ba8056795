"""The plain training and evaluation loops the CLI, the bench and the tests share."""
import numpy as np

from fastnn.autograd import no_grad


def train_one_epoch(model, loader, optimizer, loss_fn, progress=None, scheduler=None):
    """One pass over `loader`; returns (mean loss, accuracy) over the samples seen.

    `progress`, if given, is called after every batch with (batches done, running mean loss). `scheduler`, if
    given, is stepped after every optimizer step (a per-batch learning-rate schedule, its steps counted in
    batches); epoch-wise schedulers are stepped by the caller instead.
    """
    model.train()
    total_loss, correct, seen = 0.0, 0, 0
    for step, (inputs, targets) in enumerate(loader, 1):
        optimizer.zero_grad()
        logits = model(inputs)
        loss = loss_fn(logits, targets)
        loss.backward()
        optimizer.step()
        if scheduler is not None:
            scheduler.step()
        n = len(targets)
        total_loss += loss.item() * n
        correct += int((logits.data.argmax(axis=1) == targets.data).sum())
        seen += n
        if progress is not None:
            progress(step, total_loss / seen)
    if seen == 0:
        raise ValueError("the training loader produced no batches")
    return total_loss / seen, correct / seen


@no_grad()
def evaluate(model, loader, loss_fn=None):
    """Accuracy of `model` over `loader` in eval mode (and the mean loss when `loss_fn` is given)."""
    model.eval()
    total_loss, correct, seen = 0.0, 0, 0
    for inputs, targets in loader:
        logits = model(inputs)
        if loss_fn is not None:
            total_loss += loss_fn(logits, targets).item() * len(targets)
        correct += int((np.argmax(logits.data, axis=1) == targets.data).sum())
        seen += len(targets)
    if seen == 0:
        raise ValueError("the evaluation loader produced no batches")
    accuracy = correct / seen
    return (accuracy, total_loss / seen) if loss_fn is not None else accuracy

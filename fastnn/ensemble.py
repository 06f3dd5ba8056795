"""Model ensembles: average the predicted class probabilities of K models, and snapshot ensembles (Huang et al.,
2017) that collect K models from one training run with a cyclic cosine learning rate (SGDR restarts): one
snapshot at the end of each cycle, where the learning rate is lowest.

Weight averaging (one model whose weights are the mean/EMA of the iterates) is fastnn.optim.swa_utils.
"""
import copy

import numpy as np

from fastnn import nn
from fastnn.autograd import no_grad
from fastnn.nn import functional as F
from fastnn.optim.lr_scheduler import CosineAnnealingWarmRestarts
from fastnn.training import train_one_epoch


class Ensemble(nn.Module):
    """K classifiers behind one Module: calling it returns the mean of the members' softmax probabilities
    (N x C), so argmax of it is the ensemble's prediction. `weights` (K non-negative numbers, normalised to sum
    to 1) weigh the members; equal by default. Members are evaluated in their own train/eval mode, which
    `ensemble.eval()` sets for all of them."""

    def __init__(self, models, weights=None):
        super().__init__()
        models = list(models)
        if not models:
            raise ValueError("an Ensemble needs at least one model")
        for i, m in enumerate(models):
            if not isinstance(m, nn.Module):
                raise TypeError(f"models[{i}] is a {type(m).__name__}, not a fastnn.nn.Module")
        self.members = nn.ModuleList(models)
        if weights is None:
            weights = np.full(len(models), 1.0 / len(models))
        else:
            weights = np.asarray(weights, dtype=np.float64)
            if weights.shape != (len(models),) or (weights < 0).any() or not weights.sum() > 0:
                raise ValueError(f"weights must be {len(models)} non-negative numbers with a positive sum, got "
                                 f"{weights.tolist()}")
            weights = weights / weights.sum()
        self.weights = weights

    def forward(self, input):
        probs = None
        for w, model in zip(self.weights, self.members):
            p = F.softmax(model(input), dim=-1) * float(w)
            probs = p if probs is None else probs + p
        return probs


@no_grad()
def predict_proba(models, inputs):
    """Mean softmax probabilities of `models` on `inputs` (each model in eval mode; modes restored), as an
    ndarray N x C."""
    models = list(models)
    modes = [(m, m.training) for model in models for m in model.modules()]
    try:
        for model in models:
            model.eval()
        return Ensemble(models)(inputs).detach().numpy().copy()
    finally:
        for module, mode in modes:
            object.__setattr__(module, "training", mode)


@no_grad()
def evaluate_ensemble(models, loader):
    """(ensemble accuracy, [accuracy of each member]) over `loader`, every model in eval mode (modes restored).
    The ensemble predicts the argmax of the mean probabilities."""
    models = list(models)
    modes = [(m, m.training) for model in models for m in model.modules()]
    correct, member_correct, seen = 0, np.zeros(len(models), np.int64), 0
    try:
        for model in models:
            model.eval()
        for inputs, targets in loader:
            labels = targets.detach().numpy()
            probs = 0.0
            for i, model in enumerate(models):
                p = F.softmax(model(inputs), dim=-1).detach().numpy()
                member_correct[i] += int((p.argmax(axis=1) == labels).sum())
                probs = probs + p
            correct += int((np.argmax(probs, axis=1) == labels).sum())
            seen += len(labels)
    finally:
        for module, mode in modes:
            object.__setattr__(module, "training", mode)
    if seen == 0:
        raise ValueError("the evaluation loader produced no batches")
    return correct / seen, (member_correct / seen).tolist()


def snapshot_ensemble(model, optimizer, loader, loss_fn=None, cycles=3, epochs_per_cycle=1, eta_min=0.0,
                      progress=None):
    """Train `model` for cycles x epochs_per_cycle epochs under a cyclic cosine learning rate
    (CosineAnnealingWarmRestarts stepped every batch, period epochs_per_cycle epochs, from each group's current lr
    down to `eta_min`) and return the `cycles` snapshots taken at the end of each cycle, as independent copies of
    the model (put them in an Ensemble). `progress(cycle, epoch, loss, accuracy)` is called after every epoch.
    `model` ends as the last snapshot."""
    for name, value in (("cycles", cycles), ("epochs_per_cycle", epochs_per_cycle)):
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ValueError(f"{name} must be a positive integer, got {value!r}")
    loss_fn = nn.CrossEntropyLoss() if loss_fn is None else loss_fn
    batches = len(loader)
    scheduler = CosineAnnealingWarmRestarts(optimizer, T_0=epochs_per_cycle * batches, eta_min=eta_min)
    snapshots = []
    for cycle in range(1, cycles + 1):
        for epoch in range(1, epochs_per_cycle + 1):
            loss, accuracy = train_one_epoch(model, loader, optimizer, loss_fn, scheduler=scheduler)
            if progress is not None:
                progress(cycle, epoch, loss, accuracy)
        snapshots.append(copy.deepcopy(model))
    return snapshots


__all__ = ["Ensemble", "evaluate_ensemble", "predict_proba", "snapshot_ensemble"]

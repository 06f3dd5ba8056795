"""Weight averaging with PyTorch's names (torch.optim.swa_utils): AveragedModel for stochastic weight averaging
(SWA, an equal-weight running mean) and Polyak/EMA averaging, SWALR, and update_bn to recompute BatchNorm
statistics for the averaged weights (which no batch has ever been run through).

    ema = AveragedModel(model, multi_avg_fn=get_ema_multi_avg_fn(0.999))
    for inputs, targets in loader:
        ...; optimizer.step(); ema.update_parameters(model)
    update_bn(loader, ema)
"""
import copy
import math

import numpy as np

from fastnn.autograd import no_grad
from fastnn.nn.modules.module import Module
from fastnn.nn.modules.normalization import _BatchNorm
from fastnn.optim.lr_scheduler import LRScheduler
from fastnn.tensor import Tensor

__all__ = ["AveragedModel", "SWALR", "update_bn", "get_ema_multi_avg_fn", "get_swa_multi_avg_fn", "get_ema_avg_fn",
           "get_swa_avg_fn"]


def _check_decay(decay):
    if not 0.0 <= decay <= 1.0:
        raise ValueError(f"decay must be in [0, 1], got {decay!r}")


def get_ema_avg_fn(decay=0.999):
    """avg_fn for AveragedModel: the exponential moving average decay * averaged + (1 - decay) * current."""
    _check_decay(decay)

    @no_grad()
    def ema_update(ema_param, current_param, num_averaged):
        return decay * ema_param + (1 - decay) * current_param
    return ema_update


def get_swa_avg_fn():
    """avg_fn for AveragedModel: the running mean averaged + (current - averaged) / (num_averaged + 1)."""
    @no_grad()
    def swa_update(averaged_param, current_param, num_averaged):
        return averaged_param + (current_param - averaged_param) / (float(num_averaged) + 1)
    return swa_update


def get_ema_multi_avg_fn(decay=0.999):
    """multi_avg_fn for AveragedModel: the EMA update applied in place to lists of tensors."""
    avg = get_ema_avg_fn(decay)

    def ema_update(ema_param_list, current_param_list, num_averaged):
        for ema, current in zip(ema_param_list, current_param_list):
            ema.copy_(avg(ema, current, num_averaged))
    return ema_update


def get_swa_multi_avg_fn():
    """multi_avg_fn for AveragedModel: the SWA running mean applied in place to lists of tensors."""
    avg = get_swa_avg_fn()

    def swa_update(averaged_param_list, current_param_list, num_averaged):
        for averaged, current in zip(averaged_param_list, current_param_list):
            averaged.copy_(avg(averaged, current, num_averaged))
    return swa_update


class AveragedModel(Module):
    """A copy of `model` whose parameters hold a running average of `model`'s, updated by
    `update_parameters(model)`; calling it runs the averaged copy (`self.module`).

    The average is SWA's equal-weight mean unless `avg_fn(averaged, current, num_averaged) -> new averaged` or
    `multi_avg_fn(averaged_list, current_list, num_averaged)` (in place) is given. The first update copies the
    model. With use_buffers=True the floating-point buffers (BatchNorm running statistics) are averaged too;
    otherwise they are copied from `model` at each update (and update_bn should recompute them at the end).
    `n_averaged` (an int64 buffer) counts the updates. `device` is accepted for PyTorch's signature.
    """

    def __init__(self, model, device=None, avg_fn=None, multi_avg_fn=None, use_buffers=False):
        super().__init__()
        if not isinstance(model, Module):
            raise TypeError(f"model must be a fastnn.nn.Module, got {type(model).__name__}")
        if avg_fn is not None and multi_avg_fn is not None:
            raise ValueError("give avg_fn or multi_avg_fn, not both")
        self.module = copy.deepcopy(model)
        if device is not None:
            self.module.to(device)
        self.register_buffer("n_averaged", Tensor(np.array(0, np.int64)))
        self.avg_fn, self.multi_avg_fn, self.use_buffers = avg_fn, multi_avg_fn, use_buffers

    def forward(self, *args, **kwargs):
        return self.module(*args, **kwargs)

    def _tensors(self, module):
        params = list(module.parameters())
        return params + [b for b in module.buffers() if b.dtype.kind == "f"] if self.use_buffers else params

    @no_grad()
    def update_parameters(self, model):
        source = model.module if isinstance(model, AveragedModel) else model
        averaged = [t for t in self._tensors(self.module)]
        current = [t.detach() for t in self._tensors(source)]
        if len(averaged) != len(current):
            raise ValueError(f"model has {len(current)} tensors to average, the averaged copy {len(averaged)}: "
                             f"not the model this AveragedModel was built from")
        n = int(self.n_averaged.item())
        if n == 0:
            for a, c in zip(averaged, current):
                a.copy_(c)
        elif self.multi_avg_fn is not None:
            self.multi_avg_fn(averaged, current, n)
        else:
            avg_fn = self.avg_fn or get_swa_avg_fn()
            for a, c in zip(averaged, current):
                a.copy_(avg_fn(a.detach(), c, n))
        if not self.use_buffers:
            # Keep the buffers (BatchNorm statistics) in sync with the source model.
            for b_avg, b_model in zip(self.module.buffers(), source.buffers()):
                b_avg.copy_(b_model.detach())
        self.n_averaged.fill_(n + 1)


@no_grad()
def update_bn(loader, model, device=None):
    """Recompute the running statistics of every BatchNorm layer of `model` with one pass over `loader` (batches
    that are inputs, or tuples/lists whose first item is the input): the statistics are reset and each layer's
    momentum is set to None for the pass, so they become the equal-weight mean over the batches of each batch's
    mean and (unbiased) variance. The momenta and the model's train/eval mode are restored afterwards."""
    momenta = {}
    for module in model.modules():
        if isinstance(module, _BatchNorm) and module.track_running_stats:
            module.reset_running_stats()
            momenta[module] = module.momentum
    if not momenta:
        return
    modes = [(m, m.training) for m in model.modules()]
    model.train()
    for module in momenta:
        module.momentum = None
    try:
        for batch in loader:
            inputs = batch[0] if isinstance(batch, (list, tuple)) else batch
            if device is not None:
                inputs = inputs.to(device)
            model(inputs)
    finally:
        for module, momentum in momenta.items():
            module.momentum = momentum
        for module, mode in modes:
            object.__setattr__(module, "training", mode)


class SWALR(LRScheduler):
    """Anneals each param group's lr to `swa_lr` over `anneal_epochs` steps ("cos" or "linear"), then holds it:
    PyTorch's SWALR, as used for the SWA phase of training. `swa_lr` is one value or one per group."""

    def __init__(self, optimizer, swa_lr, anneal_epochs=10, anneal_strategy="cos", last_epoch=-1):
        swa_lrs = swa_lr if isinstance(swa_lr, (list, tuple)) else [swa_lr] * len(optimizer.param_groups)
        if len(swa_lrs) != len(optimizer.param_groups):
            raise ValueError(f"swa_lr must have the same length as optimizer.param_groups: swa_lr has {len(swa_lrs)}, "
                             f"optimizer.param_groups has {len(optimizer.param_groups)}")
        for group, lr in zip(optimizer.param_groups, swa_lrs):
            group["swa_lr"] = lr
        if anneal_strategy not in ("cos", "linear"):
            raise ValueError(f"anneal_strategy must by one of 'cos' or 'linear', instead got {anneal_strategy}")
        if isinstance(anneal_epochs, bool) or not isinstance(anneal_epochs, int) or anneal_epochs < 0:
            raise ValueError(f"anneal_epochs must be equal or greater than 0, got {anneal_epochs}")
        self.anneal_epochs, self.anneal_strategy = anneal_epochs, anneal_strategy
        super().__init__(optimizer, last_epoch)

    def _anneal(self, t):
        return (1 - math.cos(math.pi * t)) / 2 if self.anneal_strategy == "cos" else t

    @staticmethod
    def _get_initial_lr(lr, swa_lr, alpha):
        return swa_lr if alpha == 1 else (lr - alpha * swa_lr) / (1 - alpha)

    def get_lr(self):
        # As PyTorch: recover the lr the schedule started from (the one before the previous step's blend), then
        # blend it with swa_lr at this step's weight, so the schedule composes with a changing group lr.
        step = self.last_epoch if self.anneal_epochs else max(1, self.last_epoch)
        prev_alpha = self._anneal(max(0.0, min(1.0, (step - 1) / max(1, self.anneal_epochs))))
        prev_lrs = [self._get_initial_lr(g["lr"], g["swa_lr"], prev_alpha) for g in self.optimizer.param_groups]
        alpha = self._anneal(max(0.0, min(1.0, step / max(1, self.anneal_epochs))))
        return [g["swa_lr"] * alpha + lr * (1 - alpha) for g, lr in zip(self.optimizer.param_groups, prev_lrs)]

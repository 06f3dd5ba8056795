"""Learning-rate schedules with PyTorch's API and semantics (torch/optim/lr_scheduler.py).

A scheduler owns an optimizer and rewrites each param group's "lr" on `step()`, called once per epoch (or per
batch for OneCycleLR, InverseSqrtLR and warmup). Construction performs step 0: `last_epoch` becomes 0 and
the groups get the epoch-0 learning rate; `base_lrs` are the groups' "initial_lr" (set from "lr" by the first
scheduler built on the optimizer).

Like PyTorch's, the multiplicative schedules (StepLR, MultiStepLR, ExponentialLR, CosineAnnealingLR, LinearLR,
MultiplicativeLR) are *chainable*: each step scales the group's current lr, so several of them on one optimizer
compose (ChainedScheduler). Each also has a closed form from base_lrs, used by `step(epoch)` and by
SequentialLR when it switches schedulers. LambdaLR, InverseSqrtLR, CosineAnnealingWarmRestarts and OneCycleLR
set the lr from base values directly. `state_dict()` holds every attribute except the optimizer; functions
(lambdas) are never saved, callable objects only by their `__dict__`, as PyTorch does.
"""
import copy
import math
import numbers
import types
from bisect import bisect_right
from collections import Counter

from fastnn._validation import positive_int
from fastnn.optim.optimizer import Optimizer

__all__ = ["LRScheduler", "LambdaLR", "MultiplicativeLR", "StepLR", "MultiStepLR", "ExponentialLR", "ConstantLR",
           "LinearLR",
           "CosineAnnealingLR", "CosineAnnealingWarmRestarts", "InverseSqrtLR", "OneCycleLR", "SequentialLR",
           "ChainedScheduler", "WarmupLR", "ReduceLROnPlateau", "PolynomialLR", "CyclicLR"]


def _check_optimizer(optimizer):
    if not isinstance(optimizer, Optimizer):
        raise TypeError(f"{type(optimizer).__name__} is not an Optimizer")


def _group_values(optimizer, key):
    return [group[key] for group in optimizer.param_groups]


def _set_lrs(optimizer, lrs):
    for group, lr in zip(optimizer.param_groups, lrs, strict=True):
        group["lr"] = lr


def _per_group(name, optimizer, value):
    """`value` repeated for every param group, or the given list when it has one entry per group."""
    if isinstance(value, (list, tuple)):
        if len(value) != len(optimizer.param_groups):
            raise ValueError(f"{name} must have the same length as optimizer.param_groups. {name} has {len(value)} "
                             f"values, param_groups has {len(optimizer.param_groups)}.")
        return list(value)
    return [value] * len(optimizer.param_groups)


def _saved_callable(fn):
    """What a state dict keeps of a user function: None for a plain function or lambda (not picklable), a copy of
    the __dict__ of a callable object (PyTorch's rule)."""
    return None if isinstance(fn, types.FunctionType) else copy.deepcopy(fn.__dict__)


def _restore_callable(fn, saved):
    if saved is not None:
        fn.__dict__.update(copy.deepcopy(saved))


class _CyclesMomentum:
    """Shared by OneCycleLR and CyclicLR: with cycle_momentum, each group's momentum (SGD, RMSprop) or beta1
    (Adam-like optimizers) moves between base_momentum and max_momentum, inversely to the lr."""

    def _init_momentum(self, optimizer, base_momentum, max_momentum, last_epoch):
        """Check the optimizer has a momentum; return (base_momentums, max_momentums), one per group; on a fresh
        start, set each group's momentum to its max and record both bounds in the group."""
        if "momentum" not in optimizer.defaults and "betas" not in optimizer.defaults:
            raise ValueError("optimizer must support momentum or beta1 with `cycle_momentum` option enabled")
        self.use_beta1 = "betas" in optimizer.defaults
        max_momentums = _per_group("max_momentum", optimizer, max_momentum)
        base_momentums = _per_group("base_momentum", optimizer, base_momentum)
        if last_epoch == -1:
            for group, group_max, group_base in zip(optimizer.param_groups, max_momentums, base_momentums):
                self._set_momentum(group, group_max)
                group["max_momentum"] = group_max
                group["base_momentum"] = group_base
        return base_momentums, max_momentums

    def _set_momentum(self, group, momentum):
        if self.use_beta1:
            group["betas"] = (momentum, *group["betas"][1:])
        else:
            group["momentum"] = momentum


class LRScheduler:
    """Base class: subclasses define `get_lr()` (the lrs at `last_epoch`, usually from the current group lrs)
    and may define `_get_closed_form_lr()` (the same from `base_lrs` alone)."""

    _is_initial = False

    def __init__(self, optimizer, last_epoch=-1):
        _check_optimizer(optimizer)
        self.optimizer = optimizer
        if last_epoch == -1:
            for group in optimizer.param_groups:
                group.setdefault("initial_lr", group["lr"])
        else:
            for i, group in enumerate(optimizer.param_groups):
                if "initial_lr" not in group:
                    raise KeyError(f"param 'initial_lr' is not specified in param_groups[{i}] when resuming a "
                                   f"scheduler with last_epoch={last_epoch}: load the optimizer's state dict first")
        self.base_lrs = _group_values(optimizer, "initial_lr")
        self.last_epoch = last_epoch
        self._initial_step()

    def _initial_step(self):
        """Step 0 (or the step after a resumed last_epoch), flagged so chainable schedulers keep the lr."""
        self._is_initial = True
        try:
            self.step()
        finally:
            self._is_initial = False

    def get_lr(self):
        """The learning rates for `last_epoch`, one per param group (each schedule defines it)."""
        raise NotImplementedError

    def _get_closed_form_lr(self):
        """The same from base_lrs alone; schedules without one use get_lr."""
        return self.get_lr()

    def get_last_lr(self):
        """The learning rates set by the latest step, one per param group."""
        return list(self._last_lr)

    def step(self, epoch=None):
        """Advance one step, or jump to `epoch` using the closed form (PyTorch's deprecated form)."""
        self._update_lr(epoch)

    def _update_lr(self, epoch=None):
        if epoch is None:
            self.last_epoch += 1
            lrs = self.get_lr()
        else:
            self.last_epoch = epoch
            lrs = self._get_closed_form_lr()
        _set_lrs(self.optimizer, lrs)
        self._last_lr = _group_values(self.optimizer, "lr")

    def _state_without(self, *excluded):
        return copy.deepcopy({key: value for key, value in self.__dict__.items()
                              if key not in ("optimizer",) + excluded})

    def state_dict(self):
        """Every attribute but the optimizer (copied)."""
        return self._state_without()

    def load_state_dict(self, state_dict):
        self.__dict__.update(copy.deepcopy(state_dict))


class _LambdaScheduler(LRScheduler):
    """Shared by LambdaLR and MultiplicativeLR: one function of the epoch per param group."""

    def __init__(self, optimizer, lr_lambda, last_epoch=-1):
        _check_optimizer(optimizer)
        self.optimizer = optimizer
        self.lr_lambdas = _per_group("lr_lambda", optimizer, lr_lambda)
        for fn in self.lr_lambdas:
            if not callable(fn):
                raise TypeError(f"lr_lambda should be a function, but got {type(fn).__name__}")
        super().__init__(optimizer, last_epoch)

    def state_dict(self):
        """As LRScheduler.state_dict; a lambda that is a plain function is saved as None, a callable object as a
        copy of its __dict__."""
        state = self._state_without("lr_lambdas")
        state["lr_lambdas"] = [_saved_callable(fn) for fn in self.lr_lambdas]
        return state

    def load_state_dict(self, state_dict):
        state = dict(state_dict)
        saved_lambdas = state.pop("lr_lambdas")
        super().load_state_dict(state)
        for fn, saved in zip(self.lr_lambdas, saved_lambdas):
            _restore_callable(fn, saved)


class LambdaLR(_LambdaScheduler):
    """lr = base_lr * lr_lambda(epoch); `lr_lambda` is a function or a list with one per param group."""

    def get_lr(self):
        return [base_lr * fn(self.last_epoch) for fn, base_lr in zip(self.lr_lambdas, self.base_lrs)]


class MultiplicativeLR(_LambdaScheduler):
    """lr *= lr_lambda(epoch) at every step after the first."""

    def get_lr(self):
        if self._is_initial:
            return _group_values(self.optimizer, "lr")
        return [group["lr"] * fn(self.last_epoch) for fn, group in zip(self.lr_lambdas, self.optimizer.param_groups)]


class StepLR(LRScheduler):
    """lr = base_lr * gamma ** (epoch // step_size)."""

    def __init__(self, optimizer, step_size, gamma=0.1, last_epoch=-1):
        self.step_size = positive_int("step_size", step_size)
        self.gamma = gamma
        super().__init__(optimizer, last_epoch)

    def get_lr(self):
        if self.last_epoch == 0 or self.last_epoch % self.step_size != 0:
            return _group_values(self.optimizer, "lr")
        return [group["lr"] * self.gamma for group in self.optimizer.param_groups]

    def _get_closed_form_lr(self):
        return [base_lr * self.gamma ** (self.last_epoch // self.step_size) for base_lr in self.base_lrs]


class MultiStepLR(LRScheduler):
    """lr = base_lr * gamma ** (number of milestones <= epoch); a milestone listed n times counts n times."""

    def __init__(self, optimizer, milestones, gamma=0.1, last_epoch=-1):
        # {epoch: times listed}, a plain dict (PyTorch keeps a Counter) so state dicts hold only builtin types.
        self.milestones = dict(sorted(Counter(milestones).items()))
        self.gamma = gamma
        super().__init__(optimizer, last_epoch)

    def get_lr(self):
        if self.last_epoch not in self.milestones:
            return _group_values(self.optimizer, "lr")
        return [group["lr"] * self.gamma ** self.milestones[self.last_epoch] for group in self.optimizer.param_groups]

    def _get_closed_form_lr(self):
        passed = sum(count for milestone, count in self.milestones.items() if milestone <= self.last_epoch)
        return [base_lr * self.gamma ** passed for base_lr in self.base_lrs]


class ExponentialLR(LRScheduler):
    """lr = base_lr * gamma ** epoch."""

    def __init__(self, optimizer, gamma, last_epoch=-1):
        self.gamma = gamma
        super().__init__(optimizer, last_epoch)

    def get_lr(self):
        if self._is_initial:
            return _group_values(self.optimizer, "lr")
        return [group["lr"] * self.gamma for group in self.optimizer.param_groups]

    def _get_closed_form_lr(self):
        return [base_lr * self.gamma ** self.last_epoch for base_lr in self.base_lrs]


class LinearLR(LRScheduler):
    """lr = base_lr * (start_factor + (end_factor - start_factor) * min(epoch, total_iters) / total_iters)."""

    def __init__(self, optimizer, start_factor=1.0 / 3, end_factor=1.0, total_iters=5, last_epoch=-1):
        if not 0 < start_factor <= 1.0:
            raise ValueError("Starting multiplicative factor expected to be greater than 0 and less or equal to 1.")
        if not 0 <= end_factor <= 1.0:
            raise ValueError("Ending multiplicative factor expected to be between 0 and 1.")
        self.start_factor = start_factor
        self.end_factor = end_factor
        self.total_iters = positive_int("total_iters", total_iters)
        super().__init__(optimizer, last_epoch)

    def get_lr(self):
        if self.last_epoch == 0:
            return [group["lr"] * self.start_factor for group in self.optimizer.param_groups]
        if self._is_initial or self.last_epoch > self.total_iters:
            return _group_values(self.optimizer, "lr")
        # Ratio of consecutive factors, so the step composes with other schedulers' changes.
        change = self.end_factor - self.start_factor
        ratio = 1.0 + change / (self.total_iters * self.start_factor + (self.last_epoch - 1) * change)
        return [group["lr"] * ratio for group in self.optimizer.param_groups]

    def _get_closed_form_lr(self):
        change = self.end_factor - self.start_factor
        return [base_lr * (self.start_factor + change * min(self.total_iters, self.last_epoch) / self.total_iters)
                for base_lr in self.base_lrs]


class ConstantLR(LRScheduler):
    """lr = base_lr * factor for the first total_iters epochs, then base_lr."""

    def __init__(self, optimizer, factor=1.0 / 3, total_iters=5, last_epoch=-1):
        if not 0 <= factor <= 1.0:
            raise ValueError("Constant multiplicative factor expected to be between 0 and 1.")
        self.factor = factor
        self.total_iters = positive_int("total_iters", total_iters)
        super().__init__(optimizer, last_epoch)

    def get_lr(self):
        if self.last_epoch == 0:
            return [group["lr"] * self.factor for group in self.optimizer.param_groups]
        if self._is_initial or self.last_epoch != self.total_iters:
            return _group_values(self.optimizer, "lr")
        if self.factor == 0:  # nothing to divide by: restore the base values (PyTorch divides by zero here)
            return self._get_closed_form_lr()
        return [group["lr"] / self.factor for group in self.optimizer.param_groups]

    def _get_closed_form_lr(self):
        return [base_lr * (self.factor if self.last_epoch < self.total_iters else 1.0) for base_lr in self.base_lrs]


class CosineAnnealingLR(LRScheduler):
    """lr = eta_min + (base_lr - eta_min) * (1 + cos(pi * epoch / T_max)) / 2 (SGDR without restarts; past
    T_max the cosine continues, back up to base_lr at 2*T_max). Computed recursively from the current lr like
    PyTorch, so it composes with other schedulers; the closed form gives the same values on its own."""

    def __init__(self, optimizer, T_max, eta_min=0.0, last_epoch=-1):
        self.T_max = positive_int("T_max", T_max)
        self.eta_min = eta_min
        super().__init__(optimizer, last_epoch)

    def get_lr(self):
        if self._is_initial:
            return _group_values(self.optimizer, "lr")
        if (self.last_epoch - 1 - self.T_max) % (2 * self.T_max) == 0:
            # The previous epoch sat at the cosine's minimum, where the ratio below is 0/0.
            return [group["lr"] + (base_lr - self.eta_min) * (1 - math.cos(math.pi / self.T_max)) / 2
                    for base_lr, group in zip(self.base_lrs, self.optimizer.param_groups)]
        ratio = ((1 + math.cos(math.pi * self.last_epoch / self.T_max))
                 / (1 + math.cos(math.pi * (self.last_epoch - 1) / self.T_max)))
        return [ratio * (group["lr"] - self.eta_min) + self.eta_min for group in self.optimizer.param_groups]

    def _get_closed_form_lr(self):
        return [self.eta_min + (base_lr - self.eta_min) * (1 + math.cos(math.pi * self.last_epoch / self.T_max)) / 2
                for base_lr in self.base_lrs]


class CosineAnnealingWarmRestarts(LRScheduler):
    """SGDR (Loshchilov & Hutter): lr = eta_min + (base_lr - eta_min) * (1 + cos(pi * T_cur / T_i)) / 2, where
    T_cur counts epochs since the last restart and T_i, the current period, starts at T_0 and is multiplied by
    T_mult at each restart. `step(epoch)` accepts fractional epochs (e.g. epoch + batch / batches)."""

    def __init__(self, optimizer, T_0, T_mult=1, eta_min=0.0, last_epoch=-1):
        if isinstance(T_0, bool) or not isinstance(T_0, int) or T_0 <= 0:
            raise ValueError(f"Expected positive integer T_0, but got {T_0}")
        if isinstance(T_mult, bool) or not isinstance(T_mult, int) or T_mult < 1:
            raise ValueError(f"Expected integer T_mult >= 1, but got {T_mult}")
        if isinstance(eta_min, bool) or not isinstance(eta_min, (float, int)):
            raise ValueError(f"Expected float or int eta_min, but got {eta_min} of type {type(eta_min)}")
        self.T_0 = T_0
        self.T_i = T_0
        self.T_mult = T_mult
        self.eta_min = eta_min
        self.T_cur = last_epoch
        super().__init__(optimizer, last_epoch)

    def get_lr(self):
        return [self.eta_min + (base_lr - self.eta_min) * (1 + math.cos(math.pi * self.T_cur / self.T_i)) / 2
                for base_lr in self.base_lrs]

    def step(self, epoch=None):
        if epoch is None and self.last_epoch < 0:
            epoch = 0
        if epoch is None:
            epoch = self.last_epoch + 1
            self.T_cur = self.T_cur + 1
            if self.T_cur >= self.T_i:
                self.T_cur = self.T_cur % self.T_i
                self.T_i = self.T_i * self.T_mult
        else:
            if epoch < 0:
                raise ValueError(f"Expected non-negative epoch, but got {epoch}")
            if epoch >= self.T_0:
                if self.T_mult == 1:
                    self.T_cur = epoch % self.T_0
                else:
                    # Index of the current period: T_0 * (T_mult^n - 1) / (T_mult - 1) <= epoch.
                    n = int(math.log(epoch / self.T_0 * (self.T_mult - 1) + 1, self.T_mult))
                    self.T_cur = epoch - self.T_0 * (self.T_mult ** n - 1) / (self.T_mult - 1)
                    self.T_i = self.T_0 * self.T_mult ** n
            else:
                self.T_i = self.T_0
                self.T_cur = epoch
        self.last_epoch = math.floor(epoch)
        _set_lrs(self.optimizer, self.get_lr())
        self._last_lr = _group_values(self.optimizer, "lr")


class InverseSqrtLR(LRScheduler):
    """Linear warmup, then inverse-square-root decay (the Transformer schedule, normalised to peak at base_lr):
    with s = epoch + 1, lr = base_lr * min(s / warmup_steps, sqrt(warmup_steps / s)). Both pieces equal
    base_lr at s = warmup_steps."""

    def __init__(self, optimizer, warmup_steps, last_epoch=-1):
        self.warmup_steps = positive_int("warmup_steps", warmup_steps)
        super().__init__(optimizer, last_epoch)

    def get_lr(self):
        s = self.last_epoch + 1
        factor = min(s / self.warmup_steps, math.sqrt(self.warmup_steps / s))
        return [base_lr * factor for base_lr in self.base_lrs]


class OneCycleLR(_CyclesMomentum, LRScheduler):
    """The 1cycle policy (Smith & Topin): lr rises from max_lr/div_factor to max_lr over the first pct_start of
    total_steps, then anneals to max_lr/(div_factor*final_div_factor) (three_phase: back to the initial lr
    symmetrically, then down to the minimum). With cycle_momentum, the momentum (SGD, RMSprop) or beta1 (Adam,
    NAdam) moves inversely between max_momentum and base_momentum. Step it after every batch."""

    def __init__(self, optimizer, max_lr, total_steps=None, epochs=None, steps_per_epoch=None, pct_start=0.3,
                 anneal_strategy="cos", cycle_momentum=True, base_momentum=0.85, max_momentum=0.95, div_factor=25.0,
                 final_div_factor=1e4, three_phase=False, last_epoch=-1):
        _check_optimizer(optimizer)
        self.optimizer = optimizer
        if total_steps is not None:
            if isinstance(total_steps, bool) or not isinstance(total_steps, int) or total_steps <= 0:
                raise ValueError(f"Expected positive integer total_steps, but got {total_steps}")
            self.total_steps = total_steps
        elif epochs is not None and steps_per_epoch is not None:
            if isinstance(epochs, bool) or not isinstance(epochs, int) or epochs <= 0:
                raise ValueError(f"Expected positive integer epochs, but got {epochs}")
            if isinstance(steps_per_epoch, bool) or not isinstance(steps_per_epoch, int) or steps_per_epoch <= 0:
                raise ValueError(f"Expected positive integer steps_per_epoch, but got {steps_per_epoch}")
            self.total_steps = epochs * steps_per_epoch
        else:
            raise ValueError("You must define either total_steps OR (epochs AND steps_per_epoch)")
        if not isinstance(pct_start, float) or not 0 <= pct_start <= 1:
            raise ValueError(f"Expected float between 0 and 1 pct_start, but got {pct_start}")
        if anneal_strategy not in ("cos", "linear"):
            raise ValueError(f"anneal_strategy must be one of 'cos' or 'linear', instead got {anneal_strategy}")
        self.anneal_strategy = anneal_strategy
        # Each phase: (last step, start lr key, end lr key, start momentum key, end momentum key) in the groups.
        if three_phase:
            self._schedule_phases = [
                (float(pct_start * self.total_steps) - 1, "initial_lr", "max_lr", "max_momentum", "base_momentum"),
                (float(2 * pct_start * self.total_steps) - 2, "max_lr", "initial_lr", "base_momentum",
                 "max_momentum"),
                (self.total_steps - 1, "initial_lr", "min_lr", "max_momentum", "max_momentum"),
            ]
        else:
            self._schedule_phases = [
                (float(pct_start * self.total_steps) - 1, "initial_lr", "max_lr", "max_momentum", "base_momentum"),
                (self.total_steps - 1, "max_lr", "min_lr", "base_momentum", "max_momentum"),
            ]
        max_lrs = _per_group("max_lr", optimizer, max_lr)
        if last_epoch == -1:
            for group, group_max_lr in zip(optimizer.param_groups, max_lrs):
                group["initial_lr"] = group_max_lr / div_factor
                group["max_lr"] = group_max_lr
                group["min_lr"] = group["initial_lr"] / final_div_factor
        self.cycle_momentum = cycle_momentum
        if cycle_momentum:
            self._init_momentum(optimizer, base_momentum, max_momentum, last_epoch)
        super().__init__(optimizer, last_epoch)

    def _anneal(self, start, end, pct):
        if self.anneal_strategy == "cos":
            return end + (start - end) / 2.0 * (math.cos(math.pi * pct) + 1)
        return (end - start) * pct + start

    def get_lr(self):
        step_num = self.last_epoch
        if step_num > self.total_steps:
            raise ValueError(f"Tried to step {step_num} times. The specified number of total steps is "
                             f"{self.total_steps}")
        lrs = []
        for group in self.optimizer.param_groups:
            start_step = 0.0
            for i, (end_step, start_lr, end_lr, start_momentum, end_momentum) in enumerate(self._schedule_phases):
                if step_num <= end_step or i == len(self._schedule_phases) - 1:
                    pct = (step_num - start_step) / (end_step - start_step)
                    lrs.append(self._anneal(group[start_lr], group[end_lr], pct))
                    if self.cycle_momentum:
                        self._set_momentum(group, self._anneal(group[start_momentum], group[end_momentum], pct))
                    break
                start_step = end_step
        return lrs


class PolynomialLR(LRScheduler):
    """lr = base_lr * (1 - min(epoch, total_iters) / total_iters) ** power: reaches 0 at total_iters and stays.
    Chainable: each step scales the current lr by the ratio of consecutive factors, as PyTorch's."""

    def __init__(self, optimizer, total_iters=5, power=1.0, last_epoch=-1):
        self.total_iters = positive_int("total_iters", total_iters)
        if isinstance(power, bool) or not isinstance(power, numbers.Real):
            raise TypeError(f"power must be a real number, got {power!r}")
        self.power = power
        super().__init__(optimizer, last_epoch)

    def get_lr(self):
        if self._is_initial or self.last_epoch > self.total_iters:
            return _group_values(self.optimizer, "lr")
        factor = ((1.0 - self.last_epoch / self.total_iters) / (1.0 - (self.last_epoch - 1) / self.total_iters)
                  ) ** self.power
        return [group["lr"] * factor for group in self.optimizer.param_groups]

    def _get_closed_form_lr(self):
        return [base_lr * (1.0 - min(self.total_iters, self.last_epoch) / self.total_iters) ** self.power
                for base_lr in self.base_lrs]


class CyclicLR(_CyclesMomentum, LRScheduler):
    """Cyclical learning rates (Smith, 2017), stepped after every batch: the lr goes linearly from base_lr up to
    max_lr over step_size_up steps and back down over step_size_down (default: step_size_up), the amplitude
    scaled per cycle ("triangular": 1, "triangular2": halved each cycle) or per iteration ("exp_range":
    gamma**iteration), or by a custom scale_fn(x) of the cycle or iteration number (scale_mode). With
    cycle_momentum, the momentum (or beta1) moves the opposite way between max_momentum and base_momentum."""

    def __init__(self, optimizer, base_lr, max_lr, step_size_up=2000, step_size_down=None, mode="triangular",
                 gamma=1.0, scale_fn=None, scale_mode="cycle", cycle_momentum=True, base_momentum=0.8,
                 max_momentum=0.9, last_epoch=-1):
        _check_optimizer(optimizer)
        self.optimizer = optimizer
        base_lrs = _per_group("base_lr", optimizer, base_lr)
        if last_epoch == -1:
            _set_lrs(optimizer, base_lrs)
        self.max_lrs = _per_group("max_lr", optimizer, max_lr)
        for name, value in (("step_size_up", step_size_up), ("step_size_down", step_size_down)):
            if value is not None and (isinstance(value, bool) or not isinstance(value, numbers.Real) or value <= 0):
                raise ValueError(f"{name} must be a positive number, got {value!r}")
        step_size_up = float(step_size_up)
        step_size_down = float(step_size_down) if step_size_down is not None else step_size_up
        self.total_size = step_size_up + step_size_down
        self.step_ratio = step_size_up / self.total_size
        if mode not in ("triangular", "triangular2", "exp_range") and scale_fn is None:
            raise ValueError("mode is invalid and scale_fn is None")
        if scale_fn is not None and not callable(scale_fn):
            raise TypeError(f"scale_fn should be a function, but got {type(scale_fn).__name__}")
        if scale_mode not in ("cycle", "iterations"):
            raise ValueError(f"scale_mode must be 'cycle' or 'iterations', got {scale_mode!r}")
        self.mode = mode
        self.gamma = gamma
        self._scale_fn_custom = scale_fn
        # The built-in modes fix the scale mode, as PyTorch's do.
        self.scale_mode = scale_mode if scale_fn is not None else ("iterations" if mode == "exp_range" else "cycle")
        self.cycle_momentum = cycle_momentum
        if cycle_momentum:
            self.base_momentums, self.max_momentums = self._init_momentum(optimizer, base_momentum, max_momentum,
                                                                          last_epoch)
        super().__init__(optimizer, last_epoch)
        self.base_lrs = base_lrs

    def scale_fn(self, x):
        """The amplitude scale at cycle (or iteration) x."""
        if self._scale_fn_custom is not None:
            return self._scale_fn_custom(x)
        if self.mode == "triangular":
            return 1.0
        if self.mode == "triangular2":
            return 1 / (2.0 ** (x - 1))
        return self.gamma ** x

    def get_lr(self):
        cycle = math.floor(1 + self.last_epoch / self.total_size)
        x = 1.0 + self.last_epoch / self.total_size - cycle
        scale_factor = x / self.step_ratio if x <= self.step_ratio else (x - 1) / (self.step_ratio - 1)
        scale = self.scale_fn(cycle if self.scale_mode == "cycle" else self.last_epoch)
        lrs = [base_lr + (max_lr - base_lr) * scale_factor * scale
               for base_lr, max_lr in zip(self.base_lrs, self.max_lrs)]
        if self.cycle_momentum:
            for group, base_momentum, max_momentum in zip(self.optimizer.param_groups, self.base_momentums,
                                                          self.max_momentums):
                self._set_momentum(group, max_momentum - (max_momentum - base_momentum) * scale_factor * scale)
        return lrs

    def state_dict(self):
        """As LRScheduler.state_dict; a custom scale_fn is kept as _saved_callable keeps it."""
        state = self._state_without("_scale_fn_custom")
        state["_scale_fn_custom"] = None if self._scale_fn_custom is None else _saved_callable(self._scale_fn_custom)
        return state

    def load_state_dict(self, state_dict):
        state = dict(state_dict)
        saved = state.pop("_scale_fn_custom", None)
        super().load_state_dict(state)
        if self._scale_fn_custom is not None:
            _restore_callable(self._scale_fn_custom, saved)


def _check_children(owner, optimizer, schedulers):
    if len(schedulers) < 1:
        raise ValueError(f"{owner} expects at least one scheduler, but got no scheduler.")
    for i, scheduler in enumerate(schedulers):
        if not hasattr(scheduler, "optimizer"):
            raise TypeError(f"{owner} at index {i} should have `optimizer` as its attribute.")
        if isinstance(scheduler, ReduceLROnPlateau):
            raise ValueError(f"{owner} does not support `ReduceLROnPlateau` scheduler as it requires additional "
                             f"kwargs to be specified when calling `step`, but got one at index {i} in the given "
                             f"schedulers sequence.")
        if isinstance(scheduler, WarmupLR):
            raise ValueError(f"{owner} cannot contain a WarmupLR (index {i}): wrap the {owner} in WarmupLR instead")
        if optimizer is not scheduler.optimizer:
            raise ValueError(f"{owner} expects all schedulers to belong to the same optimizer, but got scheduler "
                             f"{type(scheduler).__name__} at index {i} with a different optimizer.")


class _SchedulerContainer(LRScheduler):
    """state_dict/load_state_dict for schedulers that drive others (kept in `_schedulers`)."""

    def state_dict(self):
        state = self._state_without("_schedulers")
        state["_schedulers"] = [scheduler.state_dict() for scheduler in self._schedulers]
        return state

    def load_state_dict(self, state_dict):
        state = dict(state_dict)
        saved = state.pop("_schedulers")
        super().load_state_dict(state)
        for scheduler, scheduler_state in zip(self._schedulers, saved, strict=True):
            scheduler.load_state_dict(scheduler_state)


class SequentialLR(_SchedulerContainer):
    """Runs schedulers[0] until milestones[0], then schedulers[1] (from its own epoch 0) until milestones[1],
    and so on. All schedulers must drive `optimizer`."""

    def __init__(self, optimizer, schedulers, milestones, last_epoch=-1):
        _check_children("SequentialLR", optimizer, schedulers)
        if len(milestones) != len(schedulers) - 1:
            raise ValueError(f"Sequential Schedulers expects number of schedulers provided to be one more than the "
                             f"number of milestone points, but got number of schedulers {len(schedulers)} and the "
                             f"number of milestones to be equal to {len(milestones)}")
        self._schedulers = list(schedulers)
        self._milestones = list(milestones)
        self.last_epoch = last_epoch + 1
        self.optimizer = optimizer
        # Undo the initial steps the schedulers took when built, then start the first one afresh.
        _set_lrs(optimizer, _group_values(optimizer, "initial_lr"))
        self._undo_initial_steps(self)
        first = self._schedulers[bisect_right(self._milestones, 0)]
        first._initial_step()
        self._last_lr = first.get_last_lr()

    @classmethod
    def _undo_initial_steps(cls, scheduler):
        if isinstance(scheduler, _SchedulerContainer):
            for child in scheduler._schedulers:
                cls._undo_initial_steps(child)
        else:
            scheduler.last_epoch -= 1

    def step(self):
        self.last_epoch += 1
        index = bisect_right(self._milestones, self.last_epoch)
        scheduler = self._schedulers[index]
        if index > 0 and self._milestones[index - 1] == self.last_epoch:
            scheduler._update_lr(0)
        else:
            scheduler.step()
        self._last_lr = scheduler.get_last_lr()


class ChainedScheduler(_SchedulerContainer):
    """Steps every scheduler in turn at each step: chainable schedules multiply (e.g. a warmup LinearLR with an
    ExponentialLR decay)."""

    def __init__(self, schedulers, optimizer=None):
        if optimizer is None and schedulers:
            optimizer = schedulers[0].optimizer
        _check_children("ChainedScheduler", optimizer, schedulers)
        self._schedulers = list(schedulers)
        self.optimizer = optimizer
        self._last_lr = _group_values(optimizer, "lr")

    def step(self):
        for scheduler in self._schedulers:
            scheduler.step()
        self._last_lr = _group_values(self.optimizer, "lr")


class WarmupLR(_SchedulerContainer):
    """Linear warmup over any scheduler: lr = scheduler's lr * factor, factor rising linearly from start_factor
    at step 0 to 1 at warmup_steps, 1 afterwards. The wrapped schedule runs from step 0 as if unwrapped (the
    warmup does not delay it; for a schedule that starts after the warmup, use SequentialLR with LinearLR).

    `step(*args)` passes its arguments on (e.g. the metric for ReduceLROnPlateau); before it steps the wrapped
    scheduler, the groups get back the scheduler's own lrs, so chainable schedules never see the warmup factor.
    """

    def __init__(self, scheduler, warmup_steps, start_factor=1.0 / 3):
        if not isinstance(scheduler, LRScheduler):
            raise TypeError(f"WarmupLR wraps an LRScheduler, got {type(scheduler).__name__}")
        if isinstance(start_factor, bool) or not isinstance(start_factor, numbers.Real) or not 0 <= start_factor <= 1:
            raise ValueError(f"start_factor must be a number in [0, 1], got {start_factor!r}")
        self._schedulers = [scheduler]
        self.optimizer = scheduler.optimizer
        self.warmup_steps = positive_int("warmup_steps", warmup_steps)
        self.start_factor = start_factor
        self.last_epoch = 0
        self._apply_warmup()

    def _apply_warmup(self):
        progress = min(self.last_epoch, self.warmup_steps) / self.warmup_steps
        factor = self.start_factor + (1 - self.start_factor) * progress
        _set_lrs(self.optimizer, [lr * factor for lr in self._schedulers[0].get_last_lr()])
        self._last_lr = _group_values(self.optimizer, "lr")

    def step(self, *args, **kwargs):
        scheduler = self._schedulers[0]
        _set_lrs(self.optimizer, scheduler.get_last_lr())
        scheduler.step(*args, **kwargs)
        self.last_epoch += 1
        self._apply_warmup()


class ReduceLROnPlateau(LRScheduler):
    """Multiply the lr by `factor` once the metric passed to `step(metric)` has not improved for more than
    `patience` steps (improved: below best * (1 - threshold) in 'min'/'rel' mode, best - threshold in 'abs' mode;
    above for mode='max'); then wait `cooldown` steps before counting again. The lr never goes below min_lr,
    and a reduction smaller than eps is skipped."""

    def __init__(self, optimizer, mode="min", factor=0.1, patience=10, threshold=1e-4, threshold_mode="rel",
                 cooldown=0, min_lr=0, eps=1e-8):
        if factor >= 1.0:
            raise ValueError("Factor should be < 1.0.")
        _check_optimizer(optimizer)
        self.factor = factor
        self.optimizer = optimizer
        if isinstance(min_lr, (list, tuple)):
            if len(min_lr) != len(optimizer.param_groups):
                raise ValueError(f"expected {len(optimizer.param_groups)} min_lrs, got {len(min_lr)}")
            self.default_min_lr = None
            self.min_lrs = list(min_lr)
        else:
            self.default_min_lr = min_lr
            self.min_lrs = [min_lr] * len(optimizer.param_groups)
        if mode not in ("min", "max"):
            raise ValueError(f"mode {mode} is unknown!")
        if threshold_mode not in ("rel", "abs"):
            raise ValueError(f"threshold mode {threshold_mode} is unknown!")
        self.mode = mode
        self.threshold = threshold
        self.threshold_mode = threshold_mode
        self.mode_worse = math.inf if mode == "min" else -math.inf
        self.patience = patience
        self.cooldown = cooldown
        self.eps = eps
        self.last_epoch = 0
        self._last_lr = _group_values(optimizer, "lr")
        self.best = self.mode_worse
        self.cooldown_counter = 0
        self.num_bad_epochs = 0

    def step(self, metrics, epoch=None):
        current = float(metrics)
        self.last_epoch = self.last_epoch + 1 if epoch is None else epoch
        if self._is_better(current, self.best):
            self.best = current
            self.num_bad_epochs = 0
        else:
            self.num_bad_epochs += 1
        if self.in_cooldown:
            self.cooldown_counter -= 1
            self.num_bad_epochs = 0  # bad epochs in cooldown do not count
        if self.num_bad_epochs > self.patience:
            self._reduce_lr()
            self.cooldown_counter = self.cooldown
            self.num_bad_epochs = 0
        self._last_lr = _group_values(self.optimizer, "lr")

    def _reduce_lr(self):
        if len(self.optimizer.param_groups) != len(self.min_lrs):
            if self.default_min_lr is None:
                raise RuntimeError(f"The number of param groups in the `optimizer` ({len(self.optimizer.param_groups)})"
                                   f" differs from when `ReduceLROnPlateau` was initialized ({len(self.min_lrs)}), "
                                   f"usually due to a new param group being added to the optimizer. Please modify "
                                   f"the `min_lrs` field to match the length of the `optimizer` param groups.")
            self.min_lrs = [self.default_min_lr] * len(self.optimizer.param_groups)
        for group, min_lr in zip(self.optimizer.param_groups, self.min_lrs):
            old_lr = float(group["lr"])
            new_lr = max(old_lr * self.factor, min_lr)
            if old_lr - new_lr > self.eps:
                group["lr"] = new_lr

    @property
    def in_cooldown(self):
        return self.cooldown_counter > 0

    def _is_better(self, a, best):
        if self.mode == "min":
            return a < best * (1.0 - self.threshold) if self.threshold_mode == "rel" else a < best - self.threshold
        return a > best * (self.threshold + 1.0) if self.threshold_mode == "rel" else a > best + self.threshold

"""The linear scaling rule with gradual warmup (Goyal et al., 2017, "Accurate, Large Minibatch SGD").

When the minibatch size is multiplied by k, multiply the learning rate by k; to survive the large lr early in
training, start from the reference lr and raise it linearly to k times that over the first warmup steps.
"""
import numbers

from fastnn._validation import positive_int
from fastnn.optim.lr_scheduler import LinearLR, SequentialLR

__all__ = ["linear_scaling_lr", "linear_scaling_warmup"]


def linear_scaling_lr(base_lr, batch_size, base_batch_size=256):
    """base_lr * batch_size / base_batch_size: the lr for `batch_size` given `base_lr` tuned for
    `base_batch_size` (e.g. 0.1 for 256 images in ResNet-50's recipe gives 0.4 for 1024)."""
    if isinstance(base_lr, bool) or not isinstance(base_lr, numbers.Real) or base_lr < 0:
        raise ValueError(f"base_lr must be a non-negative number, got {base_lr!r}")
    return base_lr * positive_int("batch_size", batch_size) / positive_int("base_batch_size", base_batch_size)


def linear_scaling_warmup(optimizer, batch_size, warmup_steps, base_batch_size=256, after=None):
    """Apply the linear scaling rule to `optimizer` and return its gradual-warmup scheduler.

    Each param group's current lr is taken as the reference lr for `base_batch_size` and replaced by the scaled
    lr (`linear_scaling_lr`). The returned scheduler (LinearLR) starts at the reference lr and rises linearly to
    the scaled lr at `warmup_steps` scheduler steps (count epochs or batches, whichever you step it with); when
    the batch is not larger than base_batch_size there is nothing to warm up and the lr stays constant.
    `after`, a function optimizer -> scheduler, builds the schedule that takes over at warmup_steps (starting
    from its own step 0, through SequentialLR), e.g. `lambda opt: MultiStepLR(opt, [25, 55, 75])`.

    Call it before building any other scheduler on the optimizer: the scaled lr becomes the groups' initial_lr.
    """
    for i, group in enumerate(optimizer.param_groups):
        if "initial_lr" in group:
            raise ValueError(f"param_groups[{i}] already has an initial_lr: apply the linear scaling rule before "
                             f"creating any scheduler on the optimizer")
    warmup_steps = positive_int("warmup_steps", warmup_steps)
    for group in optimizer.param_groups:
        group["lr"] = linear_scaling_lr(group["lr"], batch_size, base_batch_size)
    warmup = LinearLR(optimizer, start_factor=min(1.0, base_batch_size / batch_size), total_iters=warmup_steps)
    if after is None:
        return warmup
    return SequentialLR(optimizer, [warmup, after(optimizer)], milestones=[warmup_steps])

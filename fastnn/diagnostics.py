"""Training diagnostics from the lectures: sanity checks to run before (and while) training a model.

- `check_initial_loss`: the loss of a fresh classifier should be about log(C) for C classes (uniform predictions);
  far from it means a bad initialization or a bug in the loss/labels.
- `overfit_small_sample`: a model that cannot drive a few batches to ~100% training accuracy has a bug.
- `activation_statistics`: per-layer mean, std, dead ReLUs, saturated tanh/sigmoid units and histograms of a
  forward pass, collected with forward hooks (the lecture's initialization figures).
- `gradient_statistics`: per-parameter gradient norms and update/weight ratios over a few real optimizer steps
  (log10 of the ratio around -3 is healthy).
- `lr_range_test`: the learning-rate range test (Smith, 2017): the lr grows exponentially batch by batch, the
  smoothed loss is recorded against it, and a learning rate is suggested.
- `diagnose`: all of them at once, as a `DiagnosticReport` (what `fastnn diagnose` prints).

Every check that trains restores the model's parameters and buffers, the optimizer's state and learning rates,
the train/eval mode flags and fastnn's global random generator afterwards, so it can run before a real training
run without changing it.
"""
import math
from dataclasses import dataclass, field

import numpy as np

from fastnn import nn
from fastnn.autograd import no_grad
from fastnn.random import default_generator

# Activation modules whose outputs are judged for saturation / dead units, by kind.
_ACTIVATION_KINDS = {nn.ReLU: "relu", nn.ReLU6: "relu", nn.LeakyReLU: "relu", nn.Tanh: "tanh",
                     nn.Hardtanh: "tanh", nn.Sigmoid: "sigmoid"}
_NONLINEAR = (nn.ReLU, nn.ReLU6, nn.LeakyReLU, nn.Tanh, nn.Hardtanh, nn.Sigmoid, nn.GELU, nn.ELU, nn.SELU,
              nn.SiLU, nn.Mish, nn.Softplus, nn.PReLU)
# Leaf modules that only reshape or regularize: their outputs say nothing the previous layer's don't.
_SKIPPED = (nn.Flatten, nn.Identity, nn.Dropout, nn.Dropout2d, nn.AlphaDropout)


@dataclass
class Finding:
    """One verdict: `check` names the check, `level` is "ok" or "warning", `message` says what was measured."""
    check: str
    level: str
    message: str

    def __str__(self):
        return f"[{self.level.upper():7}] {self.check}: {self.message}"


@dataclass
class DiagnosticReport:
    """The findings of `diagnose` and the raw results of each check it ran (None when skipped)."""
    findings: list = field(default_factory=list)
    initial_loss: dict = None
    overfit: dict = None
    activations: dict = None
    gradients: dict = None
    lr_finder: dict = None

    @property
    def warnings(self):
        return [f for f in self.findings if f.level == "warning"]

    @property
    def ok(self):
        return not self.warnings

    def __str__(self):
        lines = [str(f) for f in self.findings]
        lines.append("all checks passed" if self.ok else f"{len(self.warnings)} warning(s)")
        return "\n".join(lines)


# ---- restoring state --------------------------------------------------------------------------------------
class preserved_state:
    """Context manager: on exit, puts back the parameters and buffers of `model`, the state and param groups of
    `optimizer` (if given), every module's train/eval flag and fastnn's global generator state."""

    def __init__(self, model, optimizer=None):
        self.model, self.optimizer = model, optimizer

    def __enter__(self):
        self.tensors = {k: v.detach().numpy().copy() for k, v in self.model.state_dict().items()}
        self.modes = [(m, m.training) for m in self.model.modules()]
        self.optimizer_state = self.optimizer.state_dict() if self.optimizer is not None else None
        self.rng_state = default_generator().bit_generator.state
        return self

    def __exit__(self, *exc):
        own = self.model.state_dict()
        with no_grad():
            for key, array in self.tensors.items():
                own[key].copy_(array)
        for module, mode in self.modes:
            object.__setattr__(module, "training", mode)
        if self.optimizer is not None:
            self.optimizer.load_state_dict(self.optimizer_state)
        default_generator().bit_generator.state = self.rng_state
        return False


def _batches(loader):
    """An endless iterator over `loader`'s (inputs, targets) batches (a new pass when one ends)."""
    while True:
        empty = True
        for batch in loader:
            empty = False
            yield batch
        if empty:
            raise ValueError("the loader produced no batches")


def _accuracy(logits, targets):
    return float((logits.detach().numpy().argmax(axis=1) == targets.detach().numpy()).mean())


def _check_positive_int(name, value):
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
        raise ValueError(f"{name} must be a positive integer, got {value!r}")


# ---- initial loss -----------------------------------------------------------------------------------------
@no_grad()
def check_initial_loss(model, inputs, targets, loss_fn=None, num_classes=None, rtol=0.15):
    """The loss of `model` on one batch against the chance-level loss log(C) of cross-entropy with C classes.

    `num_classes` defaults to the width of the model's output. Returns a dict (loss, expected, ratio, ok):
    ok when |loss - log C| <= rtol * log C. Runs in eval mode and restores the mode afterwards.
    """
    loss_fn = nn.CrossEntropyLoss() if loss_fn is None else loss_fn
    modes = [(m, m.training) for m in model.modules()]
    model.eval()
    try:
        logits = model(inputs)
    finally:
        for module, mode in modes:
            object.__setattr__(module, "training", mode)
    num_classes = logits.shape[-1] if num_classes is None else num_classes
    if num_classes < 2:
        raise ValueError(f"num_classes must be at least 2 for a chance-level loss, got {num_classes}")
    loss = loss_fn(logits, targets).item()
    expected = math.log(num_classes)
    ok = bool(np.isfinite(loss)) and abs(loss - expected) <= rtol * expected
    return {"loss": loss, "expected": expected, "ratio": loss / expected, "num_classes": num_classes, "ok": ok}


# ---- overfitting a small sample ---------------------------------------------------------------------------
def overfit_small_sample(model, inputs, targets, optimizer, loss_fn=None, max_steps=300, target_accuracy=1.0):
    """Train on the one fixed batch (`inputs`, `targets`) until its training accuracy reaches `target_accuracy`
    or `max_steps` steps pass; the model and optimizer are restored afterwards.

    Returns a dict: reached (bool), steps (the step at which it was reached, else max_steps), final_loss,
    final_accuracy, losses (per step).
    """
    _check_positive_int("max_steps", max_steps)
    if not 0 < target_accuracy <= 1:
        raise ValueError(f"target_accuracy must be in (0, 1], got {target_accuracy!r}")
    loss_fn = nn.CrossEntropyLoss() if loss_fn is None else loss_fn
    losses, accuracy, reached, step = [], 0.0, False, 0
    with preserved_state(model, optimizer):
        model.train()
        for step in range(1, max_steps + 1):
            optimizer.zero_grad()
            logits = model(inputs)
            loss = loss_fn(logits, targets)
            loss.backward()
            # Accuracy of the forward pass before this update: "reached at step s" means s updates came before.
            accuracy = _accuracy(logits, targets)
            losses.append(loss.item())
            if accuracy >= target_accuracy:
                reached = True
                step -= 1
                break
            if not np.isfinite(losses[-1]):
                break
            optimizer.step()
    return {"reached": reached, "steps": step, "final_loss": losses[-1], "final_accuracy": accuracy,
            "losses": losses, "samples": len(targets)}


# ---- activation statistics --------------------------------------------------------------------------------
def _kind(module):
    for cls in type(module).__mro__:
        if cls in _ACTIVATION_KINDS:
            return _ACTIVATION_KINDS[cls]
    return "nonlinear" if isinstance(module, _NONLINEAR) else "other"


def _layer_stats(values, kind, bins, saturation):
    flat = values.reshape(len(values), -1) if values.ndim > 1 else values.reshape(-1, 1)
    stats = {"kind": kind, "shape": tuple(values.shape), "mean": float(values.mean()), "std": float(values.std())}
    if kind == "relu":
        active = flat > 0
        stats["zero_fraction"] = float(1 - active.mean())
        # A unit (one output feature, i.e. every index but the batch one) is dead when no example activates it.
        stats["dead_fraction"] = float((~active.any(axis=0)).mean())
    elif kind == "tanh":
        stats["saturated_fraction"] = float((np.abs(values) > saturation).mean())
    elif kind == "sigmoid":
        stats["saturated_fraction"] = float(((values < 1 - saturation) | (values > saturation)).mean())
    lo, hi = {"tanh": (-1.0, 1.0), "sigmoid": (0.0, 1.0)}.get(kind, (float(values.min()), float(values.max())))
    if not hi > lo:
        hi = lo + 1.0
    counts, edges = np.histogram(values, bins=bins, range=(lo, hi))
    stats["histogram"] = (counts, edges)
    return stats


@no_grad()
def activation_statistics(model, inputs, modules=None, bins=60, saturation=0.97, train_mode=True):
    """Statistics of every layer's output on one forward pass of `inputs`, collected with forward hooks.

    `modules`: the (name, module) pairs to watch; default, every leaf module except Flatten, Identity and
    dropout. For each, by name in forward order: kind ("relu", "tanh", "sigmoid", "nonlinear" or "other"),
    shape, mean, std, a histogram (counts, edges), and for ReLUs zero_fraction (outputs that are 0) and
    dead_fraction (units, i.e. output features, that are 0 for every example of the batch), for tanh/sigmoid
    saturated_fraction (|tanh| > saturation; sigmoid outside [1 - saturation, saturation]). The forward pass runs
    in train mode by default (what the lecture's figures show: BatchNorm on batch statistics); the modes and the
    running statistics are restored afterwards.
    """
    if modules is None:
        modules = [(name, m) for name, m in model.named_modules()
                   if name and not m._modules and not isinstance(m, _SKIPPED)]
    stats, handles = {}, []

    def hook_for(name, module):
        def hook(mod, args, out):
            if name not in stats:  # a module called twice (shared) reports its first call
                values = np.array(out.detach().numpy(), dtype=np.float64)
                stats[name] = _layer_stats(values, _kind(module), bins, saturation)
        return hook

    # The state is preserved: a train-mode pass moves BatchNorm running statistics.
    with preserved_state(model):
        model.train(train_mode)
        try:
            for name, module in modules:
                handles.append(module.register_forward_hook(hook_for(name, module)))
            model(inputs)
        finally:
            for h in handles:
                h.remove()
    return stats


def judge_activations(stats, max_saturated=0.20, max_dead=0.5, collapse_ratio=0.1):
    """Findings about `activation_statistics` output: too many saturated tanh/sigmoid units, too many dead
    ReLUs, and activations of the nonlinear layers whose std shrinks below `collapse_ratio` times (or grows
    beyond 1/collapse_ratio times) the first nonlinear layer's std (vanishing / exploding activations)."""
    findings = []
    nonlinear = [(name, s) for name, s in stats.items() if s["kind"] != "other"]
    first_std = nonlinear[0][1]["std"] if nonlinear else None
    for name, s in nonlinear:
        if not np.isfinite(s["std"]):
            findings.append(Finding("activations", "warning", f"{name}: non-finite activations"))
            continue
        if s.get("saturated_fraction", 0) > max_saturated:
            findings.append(Finding("activations", "warning",
                                    f"{name} ({s['kind']}): {s['saturated_fraction']:.1%} of the units are "
                                    f"saturated (gradients vanish there); lower the init scale or the input scale"))
        if s.get("dead_fraction", 0) > max_dead:
            findings.append(Finding("activations", "warning",
                                    f"{name} (relu): {s['dead_fraction']:.1%} of the units are dead on this batch"))
        if first_std and first_std > 0:
            ratio = s["std"] / first_std
            if ratio < collapse_ratio:
                findings.append(Finding("activations", "warning",
                                        f"{name}: activation std {s['std']:.3g} is {ratio:.2g}x the first layer's "
                                        f"({first_std:.3g}): activations vanish with depth (init too small?)"))
            elif ratio > 1 / collapse_ratio:
                findings.append(Finding("activations", "warning",
                                        f"{name}: activation std {s['std']:.3g} is {ratio:.2g}x the first layer's "
                                        f"({first_std:.3g}): activations explode with depth (init too large?)"))
    if not findings:
        findings.append(Finding("activations", "ok", f"{len(nonlinear)} nonlinear layer(s) without saturation, dead "
                                                     f"units or vanishing/exploding activations"))
    return findings


# ---- gradient norms and update/weight ratios ---------------------------------------------------------------
def gradient_statistics(model, loader, optimizer, loss_fn=None, steps=5):
    """Per-parameter gradient norms and update/weight ratios over `steps` real optimizer steps on consecutive
    batches of `loader`; the model and optimizer are restored afterwards.

    Returns {name: {shape, grad_norm (first step), weight_norm, update_ratio}} where update_ratio is the median
    over the steps of ||w_new - w_old|| / ||w_old|| (the lecture's update/weight ratio, ~1e-3 when healthy), and
    a "losses" entry with the loss of each step.
    """
    _check_positive_int("steps", steps)
    loss_fn = nn.CrossEntropyLoss() if loss_fn is None else loss_fn
    named = [(name, p) for name, p in model.named_parameters() if p.requires_grad]
    grad_norms, ratios, losses = {}, {name: [] for name, _ in named}, []
    with preserved_state(model, optimizer):
        model.train()
        batches = _batches(loader)
        for step in range(steps):
            inputs, targets = next(batches)
            optimizer.zero_grad()
            loss = loss_fn(model(inputs), targets)
            loss.backward()
            losses.append(loss.item())
            if step == 0:
                for name, p in named:
                    grad = p.grad
                    grad_norms[name] = float(np.linalg.norm(grad.detach().numpy())) if grad is not None else 0.0
            before = [p.detach().numpy().astype(np.float64) for _, p in named]
            optimizer.step()
            for (name, p), old in zip(named, before):
                norm = np.linalg.norm(old)
                ratios[name].append(float(np.linalg.norm(p.detach().numpy() - old) / norm) if norm > 0 else np.inf)
        params = {name: {"shape": tuple(p.shape), "grad_norm": grad_norms[name],
                         "weight_norm": float(np.linalg.norm(p.detach().numpy())),
                         "update_ratio": float(np.median(ratios[name]))} for name, p in named}
    return {"parameters": params, "losses": losses}


def judge_gradients(grad_stats, ratio_range=(2e-4, 5e-3), outlier_factor=10.0, vanishing=1e-3):
    """Findings about `gradient_statistics` output for the weight matrices/kernels (parameters with 2 or more
    dimensions; biases start at 0, so their ratio says nothing).

    The network's update/weight ratio, the median over its weights, must lie in `ratio_range`, log10 within
    -3 +- 0.7 by default (the lecture's ~1e-3; above: learning rate too high; below: too low, or vanishing
    gradients); a single layer is flagged only when its ratio is
    `outlier_factor` times beyond that range (the last layer, small at init, legitimately runs several times
    higher than the rest, as in the lecture's plots). Also flagged: gradient norms below `vanishing` times the
    largest one, non-finite gradients or losses."""
    findings = []
    weights = {n: s for n, s in grad_stats["parameters"].items() if len(s["shape"]) >= 2}
    losses = grad_stats["losses"]
    if not all(np.isfinite(losses)):
        findings.append(Finding("gradients", "warning", f"the loss became non-finite within {len(losses)} steps"))
    if not weights:
        return findings + [Finding("gradients", "ok", "no weight matrices or kernels to judge")]
    low, high = ratio_range
    ratios = {n: s["update_ratio"] for n, s in weights.items()}
    median = float(np.median(list(ratios.values())))
    log = f" (log10 {math.log10(median):.1f})" if median > 0 else ""
    if not np.isfinite(median) or median > high:
        findings.append(Finding("gradients", "warning", f"median update/weight ratio {median:.2g}{log} > {high:g}: "
                                                        f"learning rate too high?"))
    elif median < low:
        findings.append(Finding("gradients", "warning", f"median update/weight ratio {median:.2g}{log} < {low:g}: "
                                                        f"learning rate too low, or vanishing gradients"))
    largest = max(s["grad_norm"] for s in weights.values())
    for name, s in weights.items():
        r = ratios[name]
        if not np.isfinite(s["grad_norm"]):
            findings.append(Finding("gradients", "warning", f"{name}: non-finite gradient"))
            continue
        if largest > 0 and s["grad_norm"] < vanishing * largest:
            findings.append(Finding("gradients", "warning",
                                    f"{name}: gradient norm {s['grad_norm']:.3g} is under {vanishing:g}x the "
                                    f"largest ({largest:.3g}): vanishing gradients"))
        if r > high * outlier_factor or r < low / outlier_factor:
            findings.append(Finding("gradients", "warning",
                                    f"{name}: update/weight ratio {r:.2g} is far outside [{low:g}, {high:g}]"))
    if not findings:
        findings.append(Finding("gradients", "ok", f"median update/weight ratio {median:.2g}{log} within [{low:g}, "
                                                   f"{high:g}] (layers {min(ratios.values()):.2g}.."
                                                   f"{max(ratios.values()):.2g}), no vanishing gradients"))
    return findings


# ---- learning-rate range test -----------------------------------------------------------------------------
def lr_range_test(model, loader, optimizer, loss_fn=None, start_lr=1e-7, end_lr=10.0, num_iter=100,
                  smooth=0.9, diverge_threshold=4.0, min_drop=0.1):
    """The learning-rate range test: `num_iter` training steps on consecutive batches with the learning rate
    growing exponentially from `start_lr` to `end_lr` (every param group gets the same lr), recording the loss
    smoothed by an exponential moving average (bias-corrected, weight `smooth`: its lag of ~1/(1 - smooth)
    steps must stay well under the steps per decade of lr, or a net whose loss only falls just before it diverges,
    such as LeNet-5 from its initial plateau, shows no descent at all); it stops early once the smoothed loss
    exceeds `diverge_threshold` times its minimum. The model and optimizer are restored afterwards.

    Returns a dict: lrs, losses (smoothed), raw_losses, suggested_lr (the lr of the lowest smoothed loss / 10,
    the classic rule: a safe distance below where the loss turns up; None when the smoothed loss never fell
    `min_drop` (a fraction) below its first value, `descended` False), steepest_lr (the lr where the smoothed
    loss falls fastest per log-lr), min_loss_lr.
    """
    _check_positive_int("num_iter", num_iter)
    if not 0 < start_lr < end_lr:
        raise ValueError(f"expected 0 < start_lr < end_lr, got start_lr={start_lr!r}, end_lr={end_lr!r}")
    if not 0 <= smooth < 1:
        raise ValueError(f"smooth must be in [0, 1), got {smooth!r}")
    loss_fn = nn.CrossEntropyLoss() if loss_fn is None else loss_fn
    gamma = (end_lr / start_lr) ** (1 / max(num_iter - 1, 1))
    lrs, losses, raw, average, best = [], [], [], 0.0, math.inf
    with preserved_state(model, optimizer):
        model.train()
        batches = _batches(loader)
        for i in range(num_iter):
            lr = start_lr * gamma ** i
            for group in optimizer.param_groups:
                group["lr"] = lr
            inputs, targets = next(batches)
            optimizer.zero_grad()
            loss = loss_fn(model(inputs), targets)
            loss.backward()
            optimizer.step()
            value = loss.item()
            if not np.isfinite(value):
                break
            average = smooth * average + (1 - smooth) * value
            smoothed = average / (1 - smooth ** (i + 1))
            lrs.append(lr)
            losses.append(smoothed)
            raw.append(value)
            best = min(best, smoothed)
            if smoothed > diverge_threshold * best:
                break
    if len(losses) < 3:
        raise RuntimeError(f"the loss diverged after {len(losses)} steps of the range test; lower start_lr "
                           f"(got {start_lr:g})")
    lrs_a, losses_a = np.array(lrs), np.array(losses)
    i_min = int(np.argmin(losses_a))
    slopes = np.gradient(losses_a, np.log(lrs_a))
    # The steepest descent is looked for before the minimum only (past it the loss is diverging).
    i_steep = int(np.argmin(slopes[:max(i_min, 1)]))
    # Without a real descent (a model that does not learn at any lr) there is nothing to suggest.
    descended = bool(losses_a[i_min] < (1 - min_drop) * losses_a[0])
    return {"lrs": lrs, "losses": losses, "raw_losses": raw, "min_loss_lr": lrs[i_min], "descended": descended,
            "suggested_lr": lrs[i_min] / 10 if descended else None, "steepest_lr": lrs[i_steep]}


# ---- everything at once -----------------------------------------------------------------------------------
def diagnose(model, loader, optimizer, loss_fn=None, num_classes=None, overfit_samples=32, overfit_steps=300,
             grad_steps=5, lr_finder=True, lr_finder_iter=200, ratio_range=(2e-4, 5e-3)):
    """Run every check on `model` with `optimizer` (its current learning rate is the one judged) over batches
    of `loader`, and return a DiagnosticReport. The model and optimizer are left as they were."""
    loss_fn = nn.CrossEntropyLoss() if loss_fn is None else loss_fn
    report = DiagnosticReport()
    rng_state = default_generator().bit_generator.state
    try:
        _run_checks(report, model, loader, optimizer, loss_fn, num_classes, overfit_samples, overfit_steps,
                    grad_steps, lr_finder, lr_finder_iter, ratio_range)
    finally:
        # Drawing the loader's shuffle order consumed random numbers: give them back too.
        default_generator().bit_generator.state = rng_state
    return report


def _run_checks(report, model, loader, optimizer, loss_fn, num_classes, overfit_samples, overfit_steps, grad_steps,
                lr_finder, lr_finder_iter, ratio_range):
    inputs, targets = next(_batches(loader))

    init = check_initial_loss(model, inputs, targets, loss_fn, num_classes)
    report.initial_loss = init
    report.findings.append(Finding(
        "initial loss", "ok" if init["ok"] else "warning",
        f"{init['loss']:.4f} vs log({init['num_classes']}) = {init['expected']:.4f} (ratio {init['ratio']:.2f})" +
        ("" if init["ok"] else ": far from chance level; check the init scale of the last layer and the loss")))

    n = min(overfit_samples, len(targets))
    small_x, small_y = inputs[:n], targets[:n]
    overfit = overfit_small_sample(model, small_x, small_y, optimizer, loss_fn, max_steps=overfit_steps)
    report.overfit = overfit
    report.findings.append(Finding(
        "overfit small sample", "ok" if overfit["reached"] else "warning",
        f"{n} samples reached 100% training accuracy after {overfit['steps']} steps (loss {overfit['final_loss']:.4f})"
        if overfit["reached"] else
        f"{n} samples reached only {overfit['final_accuracy']:.1%} training accuracy in {overfit['steps']} steps "
        f"(loss {overfit['final_loss']:.4f}): a bug, too small a model, or a bad learning rate/init"))

    report.activations = activation_statistics(model, inputs)
    report.findings.extend(judge_activations(report.activations))
    report.gradients = gradient_statistics(model, loader, optimizer, loss_fn, steps=grad_steps)
    report.findings.extend(judge_gradients(report.gradients, ratio_range))

    if lr_finder:
        current = optimizer.param_groups[0]["lr"]
        report.lr_finder = result = lr_range_test(model, loader, optimizer, loss_fn, num_iter=lr_finder_iter)
        if not result["descended"]:
            report.findings.append(Finding(
                "lr range test", "warning",
                f"the smoothed loss never fell 10% below its start for learning rates from {result['lrs'][0]:.2g} "
                f"to {result['lrs'][-1]:.2g} ({len(result['lrs'])} steps): no lr in this range trains quickly (an "
                f"init or data bug, or a plateau needing more lr_finder_iter)"))
        else:
            far = not result["suggested_lr"] / 10 <= current <= result["min_loss_lr"]
            report.findings.append(Finding(
                "lr range test", "warning" if far else "ok",
                f"suggested lr {result['suggested_lr']:.3g} (loss lowest at {result['min_loss_lr']:.3g}, steepest "
                f"descent at {result['steepest_lr']:.3g}); current lr {current:.3g}" +
                (" is outside [suggested/10, lowest-loss lr]" if far else "")))


__all__ = ["DiagnosticReport", "Finding", "activation_statistics", "check_initial_loss", "diagnose",
           "gradient_statistics", "judge_activations", "judge_gradients", "lr_range_test", "overfit_small_sample",
           "preserved_state"]

"""PNG plots of training runs, diagnostics and searches through matplotlib (`pip install 'fastnn[plot]'`).

Figures are drawn on matplotlib's Agg canvas directly (matplotlib.figure.Figure, never pyplot), so plotting
works without a display and leaves a user's pyplot backend and state alone. Every function writes a PNG to
`path` and returns the path.

- `plot_history`: loss and accuracy curves, raw and smoothed, from a history.csv (columns epoch, train_loss,
  train_acc, val_loss, val_acc, lr, seconds) or a list of row dicts.
- `plot_lr_schedule`: the learning rate per epoch (or per step).
- `plot_activation_histograms`: per-layer histograms from diagnostics.activation_statistics, as in the
  lecture's initialization figures.
- `plot_lr_finder`: loss vs learning rate from diagnostics.lr_range_test, with the suggestion marked.
- `plot_search`: the metric against each hyperparameter of an Optuna study; `plot_random_vs_grid`: the
  lecture's picture of grid vs random search (Bergstra & Bengio, 2012).
"""
import csv
import math
import os

import numpy as np

HISTORY_COLUMNS = ("epoch", "train_loss", "train_acc", "val_loss", "val_acc", "lr", "seconds")


def _figure(*size):
    try:
        from matplotlib.figure import Figure
    except ImportError:
        raise ImportError("plotting needs matplotlib: pip install 'fastnn[plot]'") from None
    return Figure(figsize=size, dpi=100, layout="constrained")


def _save(fig, path):
    path = os.fspath(path)
    directory = os.path.dirname(path)
    if directory:
        os.makedirs(directory, exist_ok=True)
    fig.savefig(path, format="png")
    return path


def smooth(values, weight=0.6):
    """TensorBoard's smoothing: an exponential moving average, debiased so the first value is kept as it is
    (NaNs are skipped and stay NaN)."""
    if not 0 <= weight < 1:
        raise ValueError(f"smoothing weight must be in [0, 1), got {weight!r}")
    out, last, n = [], 0.0, 0
    for v in values:
        if v is None or not math.isfinite(v):
            out.append(float("nan"))
            continue
        n += 1
        last = weight * last + (1 - weight) * v
        out.append(last / (1 - weight ** n))
    return out


def read_history(path):
    """Rows of a history.csv as dicts of floats (empty cells become NaN); raises ValueError naming the file when
    the `epoch` column is missing."""
    with open(path, newline="") as f:
        reader = csv.DictReader(f)
        if reader.fieldnames is None or "epoch" not in reader.fieldnames:
            raise ValueError(f"{path}: not a history.csv (no 'epoch' column; expected columns "
                             f"{', '.join(HISTORY_COLUMNS)})")
        rows = []
        for row in reader:
            rows.append({k: float(v) if v not in ("", None) else float("nan") for k, v in row.items()})
    if not rows:
        raise ValueError(f"{path}: the history has no rows")
    return rows


def _rows(history):
    return read_history(history) if isinstance(history, (str, os.PathLike)) else list(history)


def _column(rows, key):
    return [r.get(key, float("nan")) for r in rows]


def plot_history(history, path, smoothing=0.6, title=None):
    """Loss (left) and accuracy (right) per epoch for train and val: the raw values thin and faint, the
    smoothed ones (see `smooth`) bold; with smoothing=0, the raw values alone, bold. `history`: a history.csv
    path or a list of row dicts."""
    rows = _rows(history)
    epochs = _column(rows, "epoch")
    fig = _figure(11, 4.2)  # first: it names the extra to install when matplotlib is missing
    from matplotlib.ticker import MaxNLocator
    axes = fig.subplots(1, 2)
    for ax, metric in zip(axes, ("loss", "acc")):
        for split, color in (("train", "tab:blue"), ("val", "tab:orange")):
            values = _column(rows, f"{split}_{metric}")
            if all(not math.isfinite(v) for v in values):
                continue
            if smoothing > 0:
                ax.plot(epochs, values, color=color, alpha=0.35, lw=1, marker="o", ms=3, label=f"{split} (raw)")
                ax.plot(epochs, smooth(values, smoothing), color=color, lw=2.2,
                        label=f"{split} (smoothed {smoothing})")
            else:  # nothing to smooth (a few epochs): the raw values alone, bold
                ax.plot(epochs, values, color=color, lw=2.2, marker="o", ms=4, label=split)
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))  # no epoch 1.5 ticks on short runs
        ax.set_xlabel("epoch")
        ax.set_ylabel("loss" if metric == "loss" else "accuracy")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    axes[0].set_title("loss")
    axes[1].set_title("accuracy")
    if title:
        fig.suptitle(title)
    return _save(fig, path)


def plot_lr_schedule(history_or_lrs, path, log=True, xlabel="epoch"):
    """The learning rate against the epoch (a history with an `lr` column) or against the step (a list of lrs)."""
    values = list(history_or_lrs) if not isinstance(history_or_lrs, (str, os.PathLike)) else None
    if values is None or (values and isinstance(values[0], dict)):
        rows = _rows(history_or_lrs)
        x, lrs = _column(rows, "epoch"), _column(rows, "lr")
    else:
        x, lrs, xlabel = list(range(len(values))), [float(v) for v in values], "step"
    fig = _figure(6, 3.6)
    ax = fig.subplots()
    ax.plot(x, lrs, marker="o" if len(lrs) <= 50 else None, ms=3)
    if log and all(v > 0 for v in lrs if math.isfinite(v)):
        ax.set_yscale("log")
    ax.set_xlabel(xlabel)
    ax.set_ylabel("learning rate")
    ax.set_title("learning-rate schedule")
    ax.grid(alpha=0.3, which="both")
    return _save(fig, path)


def plot_activation_histograms(stats, path, layers=None, columns=4):
    """One histogram per layer of `stats` (diagnostics.activation_statistics), titled with the layer's mean,
    std and saturated/dead fraction, plus an overlay of all of them (the lecture's figures). `layers`: names to
    show; default, the nonlinear layers (or every layer when there is none)."""
    if layers is None:
        layers = [n for n, s in stats.items() if s["kind"] != "other"] or list(stats)
    if not layers:
        raise ValueError("no layers to plot: the statistics are empty")
    rows = math.ceil(len(layers) / columns) + 1
    fig = _figure(3.2 * columns, 2.5 * rows)
    grid = fig.add_gridspec(rows, columns)
    overlay = fig.add_subplot(grid[0, :])
    for i, name in enumerate(layers):
        s = stats[name]
        counts, edges = s["histogram"]
        centers = (edges[:-1] + edges[1:]) / 2
        density = counts / max(counts.sum(), 1)
        overlay.plot(centers, density, lw=1.4, label=f"{name} ({s['kind']})")
        ax = fig.add_subplot(grid[1 + i // columns, i % columns])
        ax.bar(centers, density, width=edges[1] - edges[0], color="tab:blue")
        extra = ""
        if "saturated_fraction" in s:
            extra = f", sat {s['saturated_fraction']:.1%}"
        elif "dead_fraction" in s:
            extra = f", dead {s['dead_fraction']:.1%}, zero {s['zero_fraction']:.0%}"
        ax.set_title(f"{name} {s['kind']}\nmean {s['mean']:+.3f}, std {s['std']:.3g}{extra}", fontsize=8)
        ax.tick_params(labelsize=7)
    overlay.set_title("activation distributions per layer (fraction of units per bin)")
    overlay.legend(fontsize=7, ncol=min(len(layers), 6))
    overlay.grid(alpha=0.3)
    return _save(fig, path)


def plot_lr_finder(result, path):
    """Smoothed (and raw, faint) loss against the learning rate on a log axis from diagnostics.lr_range_test,
    with the suggested lr, the steepest-descent lr and the lowest-loss lr marked."""
    lrs, losses = result["lrs"], result["losses"]
    fig = _figure(6.5, 4)
    ax = fig.subplots()
    ax.plot(lrs, result.get("raw_losses", losses), color="tab:blue", alpha=0.25, lw=1, label="raw loss")
    ax.plot(lrs, losses, color="tab:blue", lw=2, label="smoothed loss")
    marks = [("min_loss_lr", "tab:red", "lowest loss"), ("steepest_lr", "tab:green", "steepest descent"),
             ("suggested_lr", "black", "suggested")]
    for key, color, label in marks:
        lr = result.get(key)
        if lr is not None:
            ax.axvline(lr, color=color, ls="--", lw=1.2, label=f"{label}: {lr:.2g}")
    ax.set_xscale("log")
    finite = [v for v in losses if math.isfinite(v)]
    ax.set_ylim(min(finite) - 0.05 * abs(min(finite)), min(max(finite), 2.5 * losses[0]) * 1.05)
    ax.set_xlabel("learning rate")
    ax.set_ylabel("training loss")
    ax.set_title("learning-rate range test")
    ax.grid(alpha=0.3, which="both")
    ax.legend(fontsize=8)
    return _save(fig, path)


def _study_rows(study):
    from fastnn.tune import trials_table
    return trials_table(study)


def _is_log(study, name):
    space = getattr(study, "user_attrs", {}).get("space", {})
    return space.get(name, {}).get("type") == "loguniform"


def _log_scale(ax, axis="x"):
    """A log `axis` whose labels stay readable on the narrow ranges a fine search leaves: matplotlib labels the
    minor ticks of an axis spanning under a decade or so, and those labels run into each other. Call it after
    plotting (it reads the autoscaled limits): under a decade, ~4 evenly spaced labels; up to 3 decades, labels at
    1, 2 and 5 times powers of 10; wider, at the powers of 10 only. Minor ticks keep no labels."""
    from matplotlib import ticker
    getattr(ax, f"set_{axis}scale")("log")
    target = getattr(ax, f"{axis}axis")
    lo, hi = sorted(getattr(ax, f"get_{axis}lim")())
    decades = math.log10(hi / lo) if lo > 0 else math.inf
    if decades < 1:
        target.set_major_locator(ticker.MaxNLocator(nbins=4))
    elif decades <= 3:
        target.set_major_locator(ticker.LogLocator(base=10, subs=(1.0, 2.0, 5.0)))
    else:
        target.set_major_locator(ticker.LogLocator(base=10))
    target.set_major_formatter(ticker.FuncFormatter(lambda v, _: _short_number(v)))
    target.set_minor_formatter(ticker.NullFormatter())


def _short_number(v):
    """A tick label as short as it can be: 0.02, 0.001, 5e-4 (not 0.0005 or 5e-04), 2e+4."""
    if v == 0 or 1e-3 <= abs(v) < 1e4:
        return f"{v:.2g}"
    mantissa, exponent = f"{v:.1e}".split("e")
    return f"{mantissa.rstrip('0').rstrip('.')}e{int(exponent)}"


def plot_search(study, path, metric=None):
    """The metric of every trial against each hyperparameter of an Optuna study (one panel per parameter; log
    axis for log-uniform ones; completed trials in blue, pruned ones at their last reported value in grey, the
    best trial in red)."""
    rows = _study_rows(study)
    metric = metric or study.user_attrs.get("monitor", "value")
    names = sorted({k for r in rows for k in r["params"]})
    if not names:
        raise ValueError("the study has no trials with parameters to plot")
    best = study.best_trial.number if any(r["state"] == "COMPLETE" for r in rows) else None
    fig = _figure(4 * len(names), 3.6)
    axes = np.atleast_1d(fig.subplots(1, len(names)))
    for ax, name in zip(axes, names):
        for state, color in (("COMPLETE", "tab:blue"), ("PRUNED", "0.6")):
            pts = [(r["params"][name], r["value"]) for r in rows
                   if r["state"] == state and name in r["params"] and r["value"] is not None]
            if pts:
                xs, ys = zip(*pts)
                ax.scatter(_numeric(xs), ys, s=24, color=color, label=state.lower(), zorder=2)
        for r in rows:
            if r["number"] == best:
                ax.scatter(_numeric([r["params"][name]]), [r["value"]], s=80, color="tab:red", marker="*",
                           label="best", zorder=3)
        if _is_log(study, name):
            _log_scale(ax, "x")
        ax.set_xlabel(name)
        ax.set_ylabel(metric)
        ax.grid(alpha=0.3, which="both")
    axes[0].legend(fontsize=8)
    fig.suptitle(f"{study.study_name}: {metric} vs each hyperparameter ({len(rows)} trials)")
    return _save(fig, path)


def _numeric(values):
    """Plottable x values: numbers as they are, choices (strings) as category labels."""
    return [v if isinstance(v, (int, float)) and not isinstance(v, bool) else str(v) for v in values]


def plot_random_vs_grid(grid_study, random_study, path, important, unimportant, metric=None):
    """The lecture's grid-vs-random picture from two studies over the same two parameters: each panel shows
    the trials in the (important, unimportant) plane, and above it the metric against the important parameter
    alone. With the same budget, grid search tries only a few distinct values of the important parameter,
    random search as many as it has trials."""
    fig = _figure(10, 6)
    grid = fig.add_gridspec(2, 2, height_ratios=(1, 2))
    for col, (study, label) in enumerate(((grid_study, "grid search"), (random_study, "random search"))):
        rows = [r for r in _study_rows(study) if r["state"] == "COMPLETE"]
        if not rows:
            raise ValueError(f"study {study.study_name!r} has no completed trials")
        x = [r["params"][important] for r in rows]
        y = [r["params"][unimportant] for r in rows]
        values = [r["value"] for r in rows]
        top = fig.add_subplot(grid[0, col])
        order = np.argsort(x)
        top.plot(np.asarray(x)[order], np.asarray(values)[order], color="tab:green", marker="o", ms=5, lw=0)
        top.set_ylabel(metric or study.user_attrs.get("monitor", "value"))
        top.set_title(f"{label}: {len(rows)} trials, {len(set(x))} distinct values of {important}")
        plane = fig.add_subplot(grid[1, col], sharex=top)
        points = plane.scatter(x, y, c=values, cmap="viridis", s=60, edgecolors="k")
        plane.set_xlabel(f"{important} (important)")
        plane.set_ylabel(f"{unimportant} (unimportant)")
        for ax, name, axis in ((plane, important, "x"), (plane, unimportant, "y")):
            if _is_log(study, name):
                _log_scale(ax, axis)
        plane.grid(alpha=0.3)
        fig.colorbar(points, ax=plane, label=metric or study.user_attrs.get("monitor", "value"))
    return _save(fig, path)


__all__ = ["plot_activation_histograms", "plot_history", "plot_lr_finder", "plot_lr_schedule",
           "plot_random_vs_grid", "plot_search", "read_history", "smooth"]

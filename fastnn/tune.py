"""Hyperparameter search on Optuna (`pip install 'fastnn[tune]'`): search spaces from a config, grid, random and
TPE sampling, coarse-to-fine refinement, median / successive-halving pruning, resumable SQLite (or PostgreSQL)
studies shared by several worker processes.

fastnn writes no sampler and no pruner: Optuna's GridSampler, RandomSampler, TPESampler, MedianPruner and
SuccessiveHalvingPruner do the work. What lives here is the glue:

- a search space is a dict (or a TOML table) of parameter name -> {"type": "uniform" | "loguniform" | "int" |
  "choice", ...} (`parse_space`);
- an objective is a function `objective(params, seed, reporter) -> float`: it trains with the parameters
  `params`, seeds everything from `seed` (so a trial is reproduced by calling it again with the trial's params
  and its "seed" user attribute), and calls `reporter.on_epoch_end(epoch, metrics)` after every epoch;
  `reporter` (a `PruningCallback`) reports metrics[monitor] to Optuna and raises optuna.TrialPruned when the
  pruner says so. Any fit loop with an `on_epoch_end(epoch, metrics)` callback hook can take it as a callback;
  `FashionMNISTObjective` is a ready-made objective with its own minimal epoch loop;
- `search` runs a study in this process or in `workers` spawned processes sharing one storage, each pinned to its
  share of the cores; `coarse_to_fine` runs a second study over a range narrowed around the best trials.
"""
import math
import os
from dataclasses import dataclass

import numpy as np

from fastnn.train.callbacks import Callback

SPACE_TYPES = ("uniform", "loguniform", "int", "choice")
SAMPLERS = ("grid", "random", "tpe")
PRUNERS = ("none", "median", "halving")
DEFAULT_STORAGE = "sqlite:///study.db"
_FINISHED = ("COMPLETE", "PRUNED")


def _optuna():
    try:
        import optuna
    except ImportError:
        raise ImportError("hyperparameter search needs Optuna: pip install 'fastnn[tune]'") from None
    return optuna


# ---- search spaces ----------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Dimension:
    """One searched parameter: `type` in SPACE_TYPES; low/high for the numeric types (inclusive), `step` for
    "int", `values` for "choice"; `grid` is how many points a grid search takes on a numeric range."""
    name: str
    type: str
    low: float = None
    high: float = None
    values: tuple = None
    step: int = 1
    grid: int = 3

    def suggest(self, trial):
        if self.type == "uniform":
            return trial.suggest_float(self.name, self.low, self.high)
        if self.type == "loguniform":
            return trial.suggest_float(self.name, self.low, self.high, log=True)
        if self.type == "int":
            return trial.suggest_int(self.name, int(self.low), int(self.high), step=self.step)
        return trial.suggest_categorical(self.name, list(self.values))

    def grid_values(self):
        """The points a grid search tries: `grid` evenly spaced values (geometrically for loguniform, rounded and
        deduplicated for int), or every choice."""
        if self.type == "choice":
            return list(self.values)
        if self.type == "loguniform":
            return [float(v) for v in np.geomspace(self.low, self.high, self.grid)]
        if self.type == "uniform":
            return [float(v) for v in np.linspace(self.low, self.high, self.grid)]
        points = np.linspace(self.low, self.high, self.grid)
        snapped = self.low + np.round((points - self.low) / self.step) * self.step
        return sorted({int(v) for v in snapped})


def _space_error(name, message):
    return ValueError(f"search space: parameter {name!r}: {message}")


def parse_space(config):
    """{name: Dimension} from a config dict such as {"lr": {"type": "loguniform", "low": 1e-4, "high": 0.1},
    "batch_size": {"type": "choice", "values": [32, 64, 128]}, "width": {"type": "int", "low": 32, "high": 256,
    "step": 32}, "momentum": {"type": "uniform", "low": 0.8, "high": 0.99, "grid": 4}}. A Dimension passes
    through. Bad entries raise ValueError naming the parameter, the key and the allowed values."""
    if not isinstance(config, dict) or not config:
        raise ValueError(f"search space must be a non-empty dict of parameter name -> spec, got {config!r}")
    space = {}
    for name, spec in config.items():
        if isinstance(spec, Dimension):
            space[name] = spec
            continue
        if not isinstance(spec, dict):
            raise _space_error(name, f"expected a table/dict with a 'type' key, got {spec!r}")
        kind = spec.get("type")
        if kind not in SPACE_TYPES:
            raise _space_error(name, f"type must be one of {', '.join(SPACE_TYPES)}; got {kind!r}")
        allowed = {"type", "grid"} | ({"values"} if kind == "choice" else {"low", "high"}) | (
            {"step"} if kind == "int" else set())
        unknown = set(spec) - allowed
        if unknown:
            raise _space_error(name, f"unknown key(s) {sorted(unknown)} for type {kind!r}; allowed: {sorted(allowed)}")
        grid = spec.get("grid", 3)
        if isinstance(grid, bool) or not isinstance(grid, int) or grid < 1:
            raise _space_error(name, f"grid must be a positive integer (points on the range), got {grid!r}")
        if kind == "choice":
            values = spec.get("values")
            if not isinstance(values, (list, tuple)) or not values:
                raise _space_error(name, f"'values' must be a non-empty list, got {values!r}")
            for v in values:
                if not isinstance(v, (str, int, float, bool)) and v is not None:
                    raise _space_error(name, f"choice values must be str, int, float, bool or None; got {v!r}")
            space[name] = Dimension(name, kind, values=tuple(values), grid=grid)
            continue
        low, high = spec.get("low"), spec.get("high")
        for key, value in (("low", low), ("high", high)):
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
                raise _space_error(name, f"{key!r} must be a finite number, got {value!r}")
        if not low <= high:
            raise _space_error(name, f"needs low <= high, got low={low!r}, high={high!r}")
        if kind == "loguniform" and low <= 0:
            raise _space_error(name, f"loguniform needs low > 0, got low={low!r}")
        step = 1
        if kind == "int":
            step = spec.get("step", 1)
            if int(low) != low or int(high) != high:
                raise _space_error(name, f"int bounds must be integers, got low={low!r}, high={high!r}")
            if isinstance(step, bool) or not isinstance(step, int) or step < 1:
                raise _space_error(name, f"'step' must be a positive integer, got {step!r}")
            low, high = int(low), int(high)
        space[name] = Dimension(name, kind, low=low, high=high, step=step, grid=grid)
    return space


def suggest(trial, space):
    """The trial's parameters: each Dimension of `space` suggested through the Optuna trial."""
    return {name: dim.suggest(trial) for name, dim in space.items()}


def grid_space(space):
    """Optuna GridSampler's search space: {name: list of grid values}."""
    return {name: dim.grid_values() for name, dim in space.items()}


def narrow_space(space, trials, direction="maximize", top_fraction=0.25, min_top=2, padding=0.25):
    """The coarse-to-fine step: a space narrowed around the best finished trials.

    `trials`: Optuna FrozenTrials (or dicts with "params", "value", "state"). The best max(min_top,
    top_fraction * completed) trials are kept; each numeric range becomes the span of their values (in log space
    for loguniform) widened by `padding` of that span on each side (at least 5% of the old range), clipped to the
    old range; a choice keeps the values the best trials used (in the old order).
    """
    rows = [_row(t) for t in trials]
    done = [r for r in rows if r["state"] == "COMPLETE" and r["value"] is not None and math.isfinite(r["value"])]
    if not done:
        raise ValueError("narrow_space needs at least one completed trial with a finite value")
    done.sort(key=lambda r: r["value"], reverse=direction == "maximize")
    top = done[:max(min_top, math.ceil(top_fraction * len(done)))]
    narrowed = {}
    for name, dim in space.items():
        used = [r["params"][name] for r in top if name in r["params"]]
        if not used:
            narrowed[name] = dim
            continue
        if dim.type == "choice":
            narrowed[name] = Dimension(name, "choice", values=tuple(v for v in dim.values if v in used), grid=dim.grid)
            continue
        to, back = (math.log, math.exp) if dim.type == "loguniform" else (float, float)
        old_lo, old_hi = to(dim.low), to(dim.high)
        lo, hi = to(min(used)), to(max(used))
        pad = max(padding * (hi - lo), 0.05 * (old_hi - old_lo))
        lo, hi = back(max(old_lo, lo - pad)), back(min(old_hi, hi + pad))
        if dim.type == "int":
            lo = dim.low + math.floor((lo - dim.low) / dim.step) * dim.step
            hi = dim.low + math.ceil((hi - dim.low) / dim.step) * dim.step
            lo, hi = int(max(lo, dim.low)), int(min(hi, dim.high))
        else:
            lo, hi = max(lo, dim.low), min(hi, dim.high)  # exp(log(x)) may round a hair outside the old range
        narrowed[name] = Dimension(name, dim.type, low=lo, high=hi, step=dim.step, grid=dim.grid)
    return narrowed


# ---- samplers, pruners, storage ---------------------------------------------------------------------------
def make_sampler(name, space, seed=0):
    """Optuna's sampler for `name` in SAMPLERS ("grid" tries every point of grid_space(space))."""
    optuna = _optuna()
    if name == "grid":
        return optuna.samplers.GridSampler(grid_space(space), seed=seed)
    if name == "random":
        return optuna.samplers.RandomSampler(seed=seed)
    if name == "tpe":
        return optuna.samplers.TPESampler(seed=seed)
    raise ValueError(f"sampler must be one of {', '.join(SAMPLERS)}; got {name!r}")


def make_pruner(name, warmup_epochs=1):
    """Optuna's pruner for `name` in PRUNERS: "median" (MedianPruner: stop a trial whose metric at an epoch is
    worse than the median of earlier trials at that epoch, after `warmup_epochs` epochs and 2 finished trials),
    "halving" (SuccessiveHalvingPruner), "none" (NopPruner)."""
    optuna = _optuna()
    if name == "none":
        return optuna.pruners.NopPruner()
    if name == "median":
        return optuna.pruners.MedianPruner(n_startup_trials=2, n_warmup_steps=warmup_epochs)
    if name == "halving":
        return optuna.pruners.SuccessiveHalvingPruner()
    raise ValueError(f"pruner must be one of {', '.join(PRUNERS)}; got {name!r}")


def make_storage(url=DEFAULT_STORAGE):
    """The Optuna storage for `url`: SQLite URLs get a long lock timeout, so that several worker processes can
    write one file; other URLs (postgresql://...) are passed through to Optuna's RDBStorage."""
    optuna = _optuna()
    if not isinstance(url, str) or "://" not in url:
        raise ValueError(f"storage must be a database URL such as {DEFAULT_STORAGE!r} or "
                         f"'postgresql://user@host/db', got {url!r}")
    if url.startswith("sqlite:"):
        return optuna.storages.RDBStorage(url, engine_kwargs={"connect_args": {"timeout": 120}})
    return optuna.storages.RDBStorage(url)


# ---- objectives and the pruning callback ------------------------------------------------------------------
class PruningCallback(Callback):
    """The per-epoch hook between a training loop and Optuna: `on_epoch_end(epoch, metrics)` reports
    metrics[monitor] as the trial's intermediate value at step `epoch` and raises optuna.TrialPruned when the
    study's pruner decides to stop this trial.

    It also fits a Trainer that calls every hook of its callbacks with the trainer first (Lightning/Keras style:
    on_epoch_end(trainer, epoch, logs), on_fit_start(trainer), ...): the three-argument form is accepted, and the
    other hooks are no-ops."""

    def __init__(self, trial, monitor):
        self.trial, self.monitor = trial, monitor

    def on_epoch_end(self, *args):
        if len(args) == 3:
            _, epoch, metrics = args    # (trainer, epoch, logs)
        elif len(args) == 2:
            epoch, metrics = args
        else:
            raise TypeError(f"on_epoch_end takes (epoch, metrics) or (trainer, epoch, logs), got {len(args)} "
                            f"arguments")
        if self.monitor not in metrics:
            raise KeyError(f"the pruning callback monitors {self.monitor!r}, but the epoch's metrics hold only "
                           f"{sorted(metrics)}")
        value = float(metrics[self.monitor])
        self.trial.report(value, epoch)
        if self.trial.should_prune():
            raise _optuna().TrialPruned(f"{self.monitor}={value:.4g} at epoch {epoch}")


class _NullReporter:
    """Stands in for PruningCallback when a trial is re-run outside a study."""

    def on_epoch_end(self, epoch, metrics):
        pass


class _TrialObjective:
    """What Optuna calls per trial (picklable, so spawned workers receive it): suggests the parameters, derives
    the trial's seed from the study seed and the trial number, and runs the user objective."""

    def __init__(self, objective, space, seed, monitor):
        self.objective, self.space, self.seed, self.monitor = objective, space, seed, monitor

    def __call__(self, trial):
        params = suggest(trial, self.space)
        seed = self.seed + trial.number
        trial.set_user_attr("seed", seed)
        value = self.objective(params, seed, PruningCallback(trial, self.monitor))
        value = float(value)
        if not math.isfinite(value):
            raise ValueError(f"the objective returned {value} for params {params}")
        return value


def rerun_trial(objective, trial):
    """Run `objective` again with the params and seed of finished `trial` (a FrozenTrial): the metric comes out
    the same when the objective seeds everything from its seed."""
    return objective(dict(trial.params), trial.user_attrs["seed"], _NullReporter())


MODEL_PARAMS = ("lr", "momentum", "weight_decay", "batch_size", "optimizer", "model")


class FashionMNISTObjective:
    """A ready-made objective: trains a `fastnn train` zoo model on Fashion-MNIST for `epochs` epochs and returns
    the validation metric `monitor` ("val_acc" or "val_loss"), with its own minimal epoch loop reporting every
    epoch to the pruning callback.

    The validation set is the last `val_fraction` of the (first `limit`) training images, never the test set.
    Searchable params: lr, momentum, weight_decay, batch_size, optimizer ("sgd"/"adam"), model; the fixed
    `defaults` fill those not searched.
    """

    def __init__(self, model="mlp", epochs=2, limit=None, val_fraction=0.1, data_dir=None, embedded=False,
                 monitor="val_acc", defaults=None):
        from fastnn.cli import MODELS
        if model not in MODELS:
            raise ValueError(f"model must be one of {', '.join(MODELS)}; got {model!r}")
        if monitor not in ("val_acc", "val_loss"):
            raise ValueError(f"monitor must be 'val_acc' or 'val_loss', got {monitor!r}")
        if not 0 < val_fraction < 1:
            raise ValueError(f"val_fraction must be in (0, 1), got {val_fraction!r}")
        self.model, self.epochs, self.limit, self.val_fraction = model, int(epochs), limit, val_fraction
        self.data_dir, self.embedded, self.monitor = data_dir, embedded, monitor
        self.defaults = {"lr": 0.05, "momentum": 0.9, "weight_decay": 0.0, "batch_size": 64, "optimizer": "sgd",
                         "model": model, **(defaults or {})}
        self._arrays = None

    def check_space(self, space):
        unknown = set(space) - set(MODEL_PARAMS)
        if unknown:
            raise ValueError(f"search space: parameter(s) {sorted(unknown)} are not searchable by the Fashion-MNIST "
                             f"objective; allowed: {', '.join(MODEL_PARAMS)}")

    def __getstate__(self):
        return {**self.__dict__, "_arrays": None}  # workers load the data themselves

    def _data(self):
        if self._arrays is None:
            from fastnn.data import FashionMNIST
            from fastnn.data.datasets import EMBEDDED_DIR
            x, y = FashionMNIST(EMBEDDED_DIR if self.embedded else self.data_dir, train=True).standardized()
            if self.limit is not None:
                x, y = x[:self.limit], y[:self.limit]
            n_val = max(1, int(round(len(y) * self.val_fraction)))
            self._arrays = (x[:-n_val], y[:-n_val]), (x[-n_val:], y[-n_val:])
        return self._arrays

    def __call__(self, params, seed, reporter):
        import fastnn
        from fastnn import nn, optim
        from fastnn.cli import build_model
        from fastnn.data import DataLoader, TensorDataset
        from fastnn.training import evaluate, train_one_epoch
        p = {**self.defaults, **params}
        (x_train, y_train), (x_val, y_val) = self._data()
        fastnn.manual_seed(int(seed))
        model = build_model(p["model"])
        if p["optimizer"] == "sgd":
            optimizer = optim.SGD(model.parameters(), lr=p["lr"], momentum=p["momentum"],
                                  weight_decay=p["weight_decay"])
        elif p["optimizer"] == "adam":
            optimizer = optim.Adam(model.parameters(), lr=p["lr"], weight_decay=p["weight_decay"])
        else:
            raise ValueError(f"optimizer must be 'sgd' or 'adam', got {p['optimizer']!r}")
        train_loader = DataLoader(TensorDataset(fastnn.tensor(x_train), fastnn.tensor(y_train)),
                                  batch_size=int(p["batch_size"]), shuffle=True)
        val_loader = DataLoader(TensorDataset(fastnn.tensor(x_val), fastnn.tensor(y_val)), batch_size=1000)
        loss_fn = nn.CrossEntropyLoss()
        metrics = {}
        for epoch in range(1, self.epochs + 1):
            train_loss, train_acc = train_one_epoch(model, train_loader, optimizer, loss_fn)
            if not math.isfinite(train_loss):
                # A diverged run: report it as the worst value instead of failing the trial.
                return 0.0 if self.monitor == "val_acc" else float(np.finfo(np.float64).max)
            val_acc, val_loss = evaluate(model, val_loader, loss_fn)
            metrics = {"epoch": epoch, "train_loss": train_loss, "train_acc": train_acc, "val_loss": val_loss,
                       "val_acc": val_acc}
            reporter.on_epoch_end(epoch, metrics)
        return metrics[self.monitor]


# ---- running a study --------------------------------------------------------------------------------------
def _count_finished(study):
    return sum(t.state.name in _FINISHED for t in study.get_trials(deepcopy=False))


def _worker(storage_url, study_name, objective, sampler_spec, n_trials, threads, cores):
    """Entry point of a spawned worker: pin to `cores`, limit every thread pool to `threads`, then optimize."""
    if cores and hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, cores)
    from threadpoolctl import threadpool_limits
    import fastnn
    fastnn.set_num_threads(threads)
    optuna = _optuna()
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    name, space, seed, pruner, warmup_epochs = sampler_spec
    with threadpool_limits(limits=threads):
        # The sampler and the pruner live in each process (the storage keeps neither).
        study = optuna.load_study(study_name=study_name, storage=make_storage(storage_url),
                                  sampler=make_sampler(name, space, seed), pruner=make_pruner(pruner, warmup_epochs))
        study.optimize(objective, n_trials=n_trials)


def _shares(total, parts):
    return [total // parts + (i < total % parts) for i in range(parts)]


def search(objective, space, n_trials=None, sampler="tpe", pruner="median", direction="maximize",
           monitor="val_acc", storage=DEFAULT_STORAGE, study_name="fastnn-search", seed=0, workers=1,
           warmup_epochs=1):
    """Run (or resume) the study `study_name` in `storage` until it holds `n_trials` finished trials, and return
    it (an optuna.Study).

    `objective(params, seed, reporter) -> float` (see the module docstring); `space` a dict for parse_space;
    `sampler` in SAMPLERS (grid defaults n_trials to the grid's size); `pruner` in PRUNERS. Trial t gets the
    seed `seed + t.number`, kept as its "seed" user attribute. With `workers` > 1 the trials are split among that
    many spawned processes, each pinned to its share of this process's cores (os.sched_setaffinity) with its
    Numba and BLAS threads limited to that share, all writing the one storage (an SQLite file or a PostgreSQL URL
    for several machines); the objective must then be picklable (a module-level function or object).
    A study already in `storage` is resumed: only the trials missing to `n_trials` are run.
    """
    optuna = _optuna()
    space = parse_space(space)
    if direction not in ("maximize", "minimize"):
        raise ValueError(f"direction must be 'maximize' or 'minimize', got {direction!r}")
    if isinstance(workers, bool) or not isinstance(workers, int) or workers < 1:
        raise ValueError(f"workers must be a positive integer, got {workers!r}")
    if hasattr(objective, "check_space"):
        objective.check_space(space)
    if n_trials is None:
        if sampler != "grid":
            raise ValueError("n_trials is required unless sampler='grid'")
        n_trials = math.prod(len(v) for v in grid_space(space).values())
    if isinstance(n_trials, bool) or not isinstance(n_trials, int) or n_trials < 1:
        raise ValueError(f"n_trials must be a positive integer, got {n_trials!r}")
    study = optuna.create_study(study_name=study_name, storage=make_storage(storage), direction=direction,
                                sampler=make_sampler(sampler, space, seed),
                                pruner=make_pruner(pruner, warmup_epochs), load_if_exists=True)
    study.set_user_attr("space", {n: _dimension_dict(d) for n, d in space.items()})
    study.set_user_attr("monitor", monitor)
    remaining = n_trials - _count_finished(study)
    if remaining <= 0:
        return study
    wrapped = _TrialObjective(objective, space, seed, monitor)
    workers = min(workers, remaining)
    if workers == 1:
        study.optimize(wrapped, n_trials=remaining)
        return study
    import multiprocessing
    context = multiprocessing.get_context("spawn")
    cores = sorted(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else list(range(os.cpu_count()))
    core_sets = [cores[i::workers] or cores for i in range(workers)]
    processes = []
    saved = {k: os.environ.get(k) for k in ("NUMBA_NUM_THREADS", "OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS")}
    try:
        for i, (share, core_set) in enumerate(zip(_shares(remaining, workers), core_sets)):
            threads = max(1, len(core_set))
            # A spawned child reads these when it imports Numba and NumPy, before any of our code runs.
            os.environ.update({k: str(threads) for k in saved})
            # Random and TPE samplers get a seed per worker, or every worker would suggest the same points.
            spec = (sampler, space, seed if sampler == "grid" else seed + 7919 * (i + 1), pruner, warmup_epochs)
            p = context.Process(target=_worker, args=(storage, study_name, wrapped, spec, share, threads,
                                                      core_set), name=f"fastnn-search-{i}")
            p.start()
            processes.append(p)
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
    for p in processes:
        p.join()
    failed = [p.name for p in processes if p.exitcode != 0]
    if failed:
        raise RuntimeError(f"search worker(s) {', '.join(failed)} exited with an error (see their output above)")
    return study


def coarse_to_fine(objective, space, coarse_trials, fine_trials, study_name="fastnn-search", top_fraction=0.25,
                   **kwargs):
    """A coarse study over `space`, then a fine study over the range narrowed around its best trials
    (narrow_space); returns (coarse study, fine study, fine space). The studies are named `study_name`-coarse
    and `study_name`-fine; `kwargs` go to `search` (sampler, pruner, direction, storage, workers, seed, ...).
    The fine study is seeded with `seed + coarse_trials`: with the coarse study's seed, a random sampler would draw
    the same numbers again (fine trial t at the same quantiles of its ranges as coarse trial t, and on a range
    left as it was, at the very same value), and trial t would train from coarse trial t's seed."""
    direction = kwargs.get("direction", "maximize")
    seed = kwargs.pop("seed", 0)
    coarse = search(objective, space, coarse_trials, study_name=f"{study_name}-coarse", seed=seed, **kwargs)
    fine_space = narrow_space(parse_space(space), coarse.trials, direction, top_fraction)
    fine = search(objective, fine_space, fine_trials, study_name=f"{study_name}-fine", seed=seed + coarse_trials,
                  **kwargs)
    return coarse, fine, fine_space


# ---- results ----------------------------------------------------------------------------------------------
def _dimension_dict(dim):
    d = {"type": dim.type, "grid": dim.grid}
    d.update({"values": list(dim.values)} if dim.type == "choice" else {"low": dim.low, "high": dim.high})
    if dim.type == "int":
        d["step"] = dim.step
    return d


def _row(t):
    if isinstance(t, dict):
        return t
    return {"number": t.number, "state": t.state.name, "value": t.value, "params": dict(t.params),
            "seed": t.user_attrs.get("seed"), "epochs": len(t.intermediate_values),
            "seconds": t.duration.total_seconds() if t.duration is not None else None}


def trials_table(study):
    """The study's trials as dicts (number, state, value, params, seed, epochs, seconds), completed trials first,
    best first, then pruned ones by their last reported value, then the rest."""
    direction = study.direction.name.lower()
    sign = -1 if direction == "maximize" else 1
    rows = []
    for t in study.trials:
        row = _row(t)
        if row["state"] == "PRUNED" and t.intermediate_values:
            row["value"] = t.intermediate_values[max(t.intermediate_values)]
        rows.append(row)
    rank = {"COMPLETE": 0, "PRUNED": 1}
    return sorted(rows, key=lambda r: (rank.get(r["state"], 2), sign * r["value"] if r["value"] is not None
                                       else math.inf, r["number"]))


def format_table(rows, metric="value"):
    """`rows` of trials_table as an aligned text table."""
    names = sorted({k for r in rows for k in r["params"]})
    header = ["#", "state", metric, *names, "seed", "epochs"]
    lines = [header]
    for r in rows:
        value = "" if r["value"] is None else f"{r['value']:.4f}"
        params = [_fmt(r["params"].get(n, "")) for n in names]
        lines.append([str(r["number"]), r["state"].lower(), value, *params, str(r["seed"]), str(r["epochs"])])
    widths = [max(len(line[i]) for line in lines) for i in range(len(header))]
    return "\n".join("  ".join(c.rjust(w) for c, w in zip(line, widths)) for line in lines)


def _fmt(v):
    return f"{v:.4g}" if isinstance(v, float) else str(v)


def best_config(study):
    """{"value", "params", "seed", "number"} of the study's best trial."""
    best = study.best_trial
    return {"number": best.number, "value": best.value, "params": dict(best.params), "seed": best.user_attrs["seed"]}


def load_config(path):
    """A TOML search config as a dict (its [search] table if it has one)."""
    import tomllib
    with open(path, "rb") as f:
        try:
            config = tomllib.load(f)
        except tomllib.TOMLDecodeError as e:
            raise ValueError(f"{path}: not valid TOML ({e})") from None
    return config.get("search", config)


__all__ = ["Dimension", "FashionMNISTObjective", "PruningCallback", "best_config", "coarse_to_fine", "format_table",
           "grid_space", "load_config", "make_pruner", "make_sampler", "make_storage", "narrow_space",
           "parse_space", "rerun_trial", "search", "suggest", "trials_table"]

"""Hyperparameter search on Optuna: search spaces, grid/random/TPE, pruning, coarse-to-fine, shared SQLite
studies across worker processes, reproducible trials, and the `fastnn search` CLI."""
import json
import math
import os
import time

import pytest

optuna = pytest.importorskip("optuna")

from fastnn import tune  # noqa: E402


def _bowl(params, seed, reporter):
    """A toy objective with its optimum at x=0.3, log10(y)=-2; logs each call (pid, params) to $BOWL_LOG."""
    value = -(params["x"] - 0.3) ** 2 - (math.log10(params["y"]) + 2) ** 2
    log = os.environ.get("BOWL_LOG")
    if log:
        with open(log, "a") as f:
            f.write(json.dumps({"pid": os.getpid(), "x": params["x"], "y": params["y"], "seed": seed,
                                "cores": sorted(os.sched_getaffinity(0)),
                                "numba_threads": os.environ.get("NUMBA_NUM_THREADS")}) + "\n")
        time.sleep(0.05)  # let the workers interleave
    for epoch in range(1, 4):
        reporter.on_epoch_end(epoch, {"val_acc": value})
    return value


SPACE = {"x": {"type": "uniform", "low": 0.0, "high": 1.0, "grid": 3},
         "y": {"type": "loguniform", "low": 1e-4, "high": 1.0, "grid": 3}}


def test_parse_space_kinds_and_grid_points():
    space = tune.parse_space({**SPACE, "n": {"type": "int", "low": 16, "high": 64, "step": 16, "grid": 4},
                              "opt": {"type": "choice", "values": ["sgd", "adam"]}})
    assert space["x"].grid_values() == [0.0, 0.5, 1.0]
    assert space["y"].grid_values() == pytest.approx([1e-4, 1e-2, 1.0])
    assert space["n"].grid_values() == [16, 32, 48, 64]
    assert space["opt"].grid_values() == ["sgd", "adam"]


@pytest.mark.parametrize("spec, words", [
    ({"a": {"type": "normal"}}, ["'a'", "uniform, loguniform, int, choice", "'normal'"]),
    ({"a": {"type": "loguniform", "low": 0, "high": 1}}, ["'a'", "low > 0"]),
    ({"a": {"type": "uniform", "low": 2, "high": 1}}, ["'a'", "low <= high"]),
    ({"a": {"type": "choice", "values": []}}, ["'a'", "'values'"]),
    ({"a": {"type": "int", "low": 1, "high": 5, "sigma": 2}}, ["'a'", "sigma", "allowed"]),
])
def test_bad_space_names_the_key_and_allowed_values(spec, words):
    with pytest.raises(ValueError) as e:
        tune.parse_space(spec)
    for w in words:
        assert w in str(e.value)


def test_grid_search_with_two_workers_sharing_sqlite_runs_every_point_once(tmp_path, monkeypatch):
    log = tmp_path / "calls.jsonl"
    monkeypatch.setenv("BOWL_LOG", str(log))
    storage = f"sqlite:///{tmp_path / 'study.db'}"
    study = tune.search(_bowl, SPACE, sampler="grid", pruner="none", storage=storage, study_name="g", workers=2)
    trials = study.get_trials()
    assert len(trials) == 9 and all(t.state.name == "COMPLETE" for t in trials)
    points = {(t.params["x"], t.params["y"]) for t in trials}
    assert len(points) == 9  # every grid point exactly once
    calls = [json.loads(line) for line in log.read_text().splitlines()]
    assert len(calls) == 9 and len({(c["x"], c["y"]) for c in calls}) == 9
    assert len({c["pid"] for c in calls}) == 2 and os.getpid() not in {c["pid"] for c in calls}
    # Each worker is pinned to its own half of the cores, with Numba's thread count to match.
    cores = {c["pid"]: tuple(c["cores"]) for c in calls}
    ours = sorted(os.sched_getaffinity(0))
    if len(ours) >= 2:
        a, b = cores.values()
        assert not set(a) & set(b) and sorted(a + b) == ours
    assert all(c["numba_threads"] == str(len(c["cores"])) for c in calls)
    assert sorted(t.user_attrs["seed"] for t in trials) == list(range(9))
    best = tune.best_config(study)
    assert best["params"] == {"x": 0.5, "y": pytest.approx(1e-2)}
    # Resuming a finished study runs nothing more.
    again = tune.search(_bowl, SPACE, sampler="grid", pruner="none", storage=storage, study_name="g", workers=2)
    assert len(again.get_trials()) == 9 and len(log.read_text().splitlines()) == 9


def test_random_search_with_two_workers_completes_every_trial_once(tmp_path, monkeypatch):
    log = tmp_path / "calls.jsonl"
    monkeypatch.setenv("BOWL_LOG", str(log))
    study = tune.search(_bowl, SPACE, n_trials=6, sampler="random", pruner="none",
                        storage=f"sqlite:///{tmp_path / 's.db'}", study_name="r", workers=2)
    trials = study.get_trials()
    assert len(trials) == 6 and sorted(t.number for t in trials) == list(range(6))
    assert all(t.state.name == "COMPLETE" for t in trials)
    calls = [json.loads(line) for line in log.read_text().splitlines()]
    assert sorted(c["seed"] for c in calls) == list(range(6))
    assert len({(c["x"], c["y"]) for c in calls}) == 6  # the workers' samplers are seeded differently


def test_resume_runs_only_the_missing_trials_and_trials_rerun_identically(tmp_path):
    storage = f"sqlite:///{tmp_path / 's.db'}"
    first = tune.search(_bowl, SPACE, n_trials=3, sampler="tpe", pruner="none", storage=storage, study_name="t")
    assert len(first.trials) == 3
    study = tune.search(_bowl, SPACE, n_trials=5, sampler="tpe", pruner="none", storage=storage, study_name="t")
    assert len(study.trials) == 5
    for t in study.trials:
        assert tune.rerun_trial(_bowl, t) == t.value


def _staircase(params, seed, reporter):
    """Per-epoch metric = x * epoch: low-x trials lag at every epoch, so a median pruner stops them."""
    for epoch in range(1, 6):
        reporter.on_epoch_end(epoch, {"val_acc": params["x"] * epoch})
    return params["x"] * 5


@pytest.mark.parametrize("pruner", ["median", "halving"])
def test_pruners_stop_lagging_trials(tmp_path, pruner):
    space = {"x": {"type": "choice", "values": [0.9, 0.8, 0.1, 0.05, 0.02, 0.01]}}
    study = tune.search(_staircase, space, sampler="grid", pruner=pruner, storage=f"sqlite:///{tmp_path / 'p.db'}",
                        study_name="p")
    states = {t.params["x"]: t.state.name for t in study.trials}
    assert len(states) == 6 and "PRUNED" in states.values()
    pruned = [t for t in study.trials if t.state.name == "PRUNED"]
    assert all(t.params["x"] <= 0.1 for t in pruned)
    rows = tune.trials_table(study)
    assert [r["state"] for r in rows[:len(rows) - len(pruned)]] == ["COMPLETE"] * (len(rows) - len(pruned))
    table = tune.format_table(rows, "val_acc")
    assert "pruned" in table and "val_acc" in table


def test_coarse_to_fine_narrows_around_the_best_trials(tmp_path):
    coarse, fine, fine_space = tune.coarse_to_fine(
        _bowl, SPACE, coarse_trials=12, fine_trials=6, sampler="random", pruner="none",
        storage=f"sqlite:///{tmp_path / 'c.db'}", study_name="c")
    x, y = fine_space["x"], fine_space["y"]
    assert 0 <= x.low < x.high <= 1 and 1e-4 <= y.low < y.high <= 1
    assert (x.high - x.low) < 1 and math.log(y.high / y.low) < math.log(1e4)
    best = coarse.best_trial.params
    assert x.low <= best["x"] <= x.high and y.low <= best["y"] <= y.high
    assert all(x.low <= t.params["x"] <= x.high and y.low <= t.params["y"] <= y.high for t in fine.trials)
    # Sampling the narrowed range pays: the fine trials are better on average than the coarse ones.
    mean = lambda study: sum(t.value for t in study.trials) / len(study.trials)  # noqa: E731
    assert mean(fine) > mean(coarse) + 0.5


def test_the_fine_study_draws_fresh_random_numbers_and_seeds(tmp_path):
    # With one sampler seed for both studies, a random sampler drew the same uniform numbers twice: fine trial t
    # sat at the same quantile of the fine range as coarse trial t did of the coarse range, and reused its seed.
    coarse, fine, fine_space = tune.coarse_to_fine(
        _bowl, SPACE, coarse_trials=8, fine_trials=4, sampler="random", pruner="none", seed=3,
        storage=f"sqlite:///{tmp_path / 'f.db'}", study_name="f")
    x_coarse, x_fine = tune.parse_space(SPACE)["x"], fine_space["x"]

    def quantile(value, dim):
        return (value - dim.low) / (dim.high - dim.low)

    pairs = [(quantile(c.params["x"], x_coarse), quantile(f.params["x"], x_fine))
             for c, f in zip(coarse.trials, fine.trials)]
    assert all(abs(qc - qf) > 1e-9 for qc, qf in pairs), pairs
    assert sorted(t.user_attrs["seed"] for t in coarse.trials) == list(range(3, 11))
    assert sorted(t.user_attrs["seed"] for t in fine.trials) == list(range(11, 15))


def test_narrow_space_numbers():
    space = tune.parse_space({"lr": {"type": "loguniform", "low": 1e-4, "high": 1.0},
                              "k": {"type": "int", "low": 0, "high": 100, "step": 10},
                              "c": {"type": "choice", "values": ["a", "b", "c"]}})
    trials = [{"state": "COMPLETE", "value": v, "params": {"lr": lr, "k": k, "c": c}}
              for v, lr, k, c in [(0.9, 1e-2, 40, "b"), (0.8, 1e-3, 20, "a"), (0.1, 0.5, 90, "c"), (0.2, 1e-4, 0, "c")]]
    out = tune.narrow_space(space, trials, "maximize", top_fraction=0.5)
    # Best two: lr in [1e-3, 1e-2] -> log span 2.303, padded by 25% each side.
    assert out["lr"].low == pytest.approx(1e-3 * math.exp(-0.25 * math.log(10)))
    assert out["lr"].high == pytest.approx(1e-2 * math.exp(0.25 * math.log(10)))
    assert (out["k"].low, out["k"].high) == (10, 50)   # [20, 40] padded by 5 (5% of the range) -> step grid
    assert out["c"].values == ("a", "b")


def test_fashion_mnist_trials_are_reproducible_from_their_seed(tmp_path):
    objective = tune.FashionMNISTObjective(model="mlp", epochs=1, limit=600, embedded=True)
    space = {"lr": {"type": "loguniform", "low": 1e-3, "high": 0.1}}
    study = tune.search(objective, space, n_trials=2, sampler="random", pruner="none",
                        storage=f"sqlite:///{tmp_path / 'f.db'}", study_name="f", seed=11)
    assert [t.user_attrs["seed"] for t in study.trials] == [11, 12]
    for t in study.trials:
        assert 0.1 <= t.value <= 1.0
        assert tune.rerun_trial(objective, t) == t.value  # bit-identical metric from the trial's params and seed
    with pytest.raises(ValueError, match="'depth'.*allowed: lr, momentum"):
        tune.search(objective, {"depth": {"type": "int", "low": 1, "high": 3}}, n_trials=1,
                    storage=f"sqlite:///{tmp_path / 'f.db'}", study_name="bad")


def _write(path, text):
    path.write_text(text)
    return str(path)


def test_cli_search_rejects_bad_configs_naming_the_key(tmp_path):
    from fastnn.cli import main
    cases = [
        ('[search]\nepochz = 2\n[search.space.lr]\ntype = "uniform"\nlow = 0.1\nhigh = 0.2\n', "'epochz'.*allowed"),
        ('[search]\nepochs = 2\n', r"\[search.space\]"),
        ('[search.space.lr]\ntype = "gauss"\n', "'lr'.*uniform, loguniform, int, choice"),
        ('[search]\nsampler = "cmaes"\n[search.space.lr]\ntype = "uniform"\nlow = 0.1\nhigh = 0.2\n',
         "sampler must be one of grid, random, tpe"),
        ('[search]\nepochs = "two"\n[search.space.lr]\ntype = "uniform"\nlow = 0.1\nhigh = 0.2\n',
         "epochs must be a int"),
        ('[search.space.width]\ntype = "int"\nlow = 1\nhigh = 3\n', "'width'.*allowed: lr"),
        ("[search\n", "not valid TOML"),
    ]
    for i, (text, pattern) in enumerate(cases):
        with pytest.raises((SystemExit, ValueError), match=pattern):
            main(["search", "--config", _write(tmp_path / f"c{i}.toml", text), "--embedded",
                  "--storage", f"sqlite:///{tmp_path / 'x.db'}"])


@pytest.mark.slow
def test_cli_coarse_to_fine_search_writes_table_best_and_plots(tmp_path, capsys):
    pytest.importorskip("matplotlib")
    from fastnn.cli import main
    config = _write(tmp_path / "s.toml", """
[search]
model = "mlp"
epochs = 1
limit = 800
sampler = "random"
pruner = "none"
trials = 3
fine_trials = 2
[search.space.lr]
type = "loguniform"
low = 1e-3
high = 0.1
[search.fixed]
batch_size = 32
""")
    out = tmp_path / "out"
    assert main(["search", "--config", config, "--embedded", "--out", str(out), "--storage",
                 f"sqlite:///{tmp_path / 'cli.db'}", "--workers", "2"]) == 0
    text = capsys.readouterr().out
    assert "coarse study" in text and "fine study" in text and "best: val_acc=" in text
    best = json.loads((out / "best.json").read_text())
    assert set(best["params"]) == {"lr"} and best["fixed"]["batch_size"] == 32
    assert len((out / "trials.csv").read_text().splitlines()) == 1 + 3 + 2
    assert (out / "search_coarse.png").stat().st_size > 8000 and (out / "search_fine.png").stat().st_size > 8000


def _trainer_style(params, seed, reporter):
    """An objective whose fit loop calls its callbacks Lightning-style, with the trainer first."""
    trainer = object()
    reporter.on_fit_start(trainer)
    for epoch in range(1, 5):
        reporter.on_epoch_start(trainer, epoch)
        reporter.on_epoch_end(trainer, epoch, {"epoch": epoch, "val_loss": params["x"] / epoch})
    reporter.on_fit_end(trainer)
    return params["x"] / 4


def test_pruning_callback_takes_trainer_style_hooks(tmp_path):
    space = {"x": {"type": "choice", "values": [0.1, 0.2, 5.0, 9.0]}}
    study = tune.search(_trainer_style, space, sampler="grid", pruner="median", direction="minimize",
                        monitor="val_loss", storage=f"sqlite:///{tmp_path / 'p.db'}", study_name="p")
    reported = {t.params["x"]: t.intermediate_values for t in study.trials}
    assert reported[0.1] == pytest.approx({1: 0.1, 2: 0.05, 3: 0.1 / 3, 4: 0.025})
    assert tune.best_config(study)["params"] == {"x": 0.1}
    with pytest.raises(KeyError, match="'val_acc'.*val_loss"):
        tune.PruningCallback(None, "val_acc").on_epoch_end(1, {"val_loss": 1.0})


def test_missing_optuna_says_which_extra_to_install(monkeypatch):
    import sys
    monkeypatch.setitem(sys.modules, "optuna", None)  # makes `import optuna` raise ImportError
    with pytest.raises(ImportError, match=r"pip install 'fastnn\[tune\]'"):
        tune.make_sampler("random", tune.parse_space(SPACE))


def test_storage_urls(monkeypatch, tmp_path):
    seen = {}

    class FakeRDB:
        def __init__(self, url, engine_kwargs=None):
            seen[url] = engine_kwargs

    monkeypatch.setattr(optuna.storages, "RDBStorage", FakeRDB)
    tune.make_storage("postgresql://user@db.example/studies")
    tune.make_storage(f"sqlite:///{tmp_path / 'x.db'}")
    assert seen["postgresql://user@db.example/studies"] is None  # passed through to Optuna as it is
    assert seen[f"sqlite:///{tmp_path / 'x.db'}"] == {"connect_args": {"timeout": 120}}
    with pytest.raises(ValueError, match="database URL"):
        tune.make_storage("study.db")

"""PNG plots: each plot function writes a real PNG of a sane size; the CLI's `fastnn plot` and `fastnn diagnose`
write theirs. Skipped when matplotlib is not installed."""
import math
import pathlib
import struct

import numpy as np
import pytest

pytest.importorskip("matplotlib")

import fastnn  # noqa: E402
from fastnn import diagnostics as D  # noqa: E402
from fastnn import nn, optim, plot  # noqa: E402
from fastnn.cli import main as cli_main  # noqa: E402
from fastnn.data import DataLoader, TensorDataset  # noqa: E402


def _png_size(path):
    """(width, height) from the PNG header, after checking the signature."""
    with open(path, "rb") as f:
        head = f.read(24)
    assert head[:8] == b"\x89PNG\r\n\x1a\n", f"{path} is not a PNG"
    return struct.unpack(">II", head[16:24])


def _check_png(path, min_w=400, min_h=250, min_bytes=8_000):
    path = pathlib.Path(path)
    w, h = _png_size(path)
    assert min_w <= w <= 4000 and min_h <= h <= 4000, (w, h)
    assert path.stat().st_size >= min_bytes  # an empty figure compresses to a few KB


@pytest.fixture
def history(tmp_path):
    path = tmp_path / "history.csv"
    lines = ["epoch,train_loss,train_acc,val_loss,val_acc,lr,seconds"]
    for e in range(1, 11):
        lines.append(f"{e},{1 / e:.4f},{1 - 0.3 / e:.4f},{1.2 / e ** 0.5:.4f},{0.9 - 0.3 / e:.4f},"
                     f"{0.05 * (1 + math.cos(math.pi * e / 10)) / 2:.5f},3.5")
    path.write_text("\n".join(lines) + "\n")
    return path


def test_smooth_is_a_debiased_ema():
    assert plot.smooth([2.0, 2.0, 2.0], 0.9) == pytest.approx([2.0, 2.0, 2.0])
    out = plot.smooth([1.0, 3.0, float("nan"), 5.0], 0.5)
    assert out[0] == 1.0 and out[1] == pytest.approx((0.25 * 1 + 0.5 * 3) / 0.75) and math.isnan(out[2])
    assert out[3] == pytest.approx((0.5 * (0.25 * 1 + 0.5 * 3) + 0.5 * 5) / 0.875)


def test_history_and_lr_plots(history, tmp_path):
    _check_png(plot.plot_history(history, tmp_path / "curves.png"), min_w=800)
    _check_png(plot.plot_lr_schedule(history, tmp_path / "lr.png"))
    _check_png(plot.plot_lr_schedule([0.1 * 0.9 ** i for i in range(100)], tmp_path / "steps.png"))
    bad = tmp_path / "bad.csv"
    bad.write_text("step,loss\n1,2\n")
    with pytest.raises(ValueError, match="bad.csv.*epoch"):
        plot.plot_history(bad, tmp_path / "x.png")


def test_history_plot_without_smoothing_draws_the_raw_curves_once_on_whole_epochs(history, tmp_path, monkeypatch):
    figures = []
    monkeypatch.setattr(plot, "_save", lambda fig, path: figures.append(fig) or path)
    plot.plot_history(plot.read_history(history)[:4], tmp_path / "c.png", smoothing=0)
    plot.plot_history(history, tmp_path / "s.png")
    raw, smoothed = figures
    loss = raw.axes[0]
    assert loss.get_legend_handles_labels()[1] == ["train", "val"]
    np.testing.assert_allclose(loss.lines[0].get_ydata(), [1.0, 0.5, 0.3333, 0.25])  # the file's values as such
    raw.draw_without_rendering()
    ticks = [t for t in loss.get_xticks() if loss.get_xlim()[0] <= t <= loss.get_xlim()[1]]
    assert ticks and all(t == int(t) for t in ticks), ticks
    assert smoothed.axes[0].get_legend_handles_labels()[1] == ["train (raw)", "train (smoothed 0.6)", "val (raw)",
                                                               "val (smoothed 0.6)"]


def test_activation_histogram_and_lr_finder_plots(tmp_path):
    rng = np.random.default_rng(0)
    x = fastnn.tensor(rng.standard_normal((256, 20)).astype(np.float32))
    y = fastnn.tensor(rng.integers(0, 4, 256))
    model = nn.Sequential(nn.Linear(20, 32), nn.Tanh(), nn.Linear(32, 32), nn.ReLU(), nn.Linear(32, 4))
    stats = D.activation_statistics(model, x)
    _check_png(plot.plot_activation_histograms(stats, tmp_path / "act.png"), min_w=800)
    loader = DataLoader(TensorDataset(x, y), batch_size=32, shuffle=True)
    result = D.lr_range_test(model, loader, optim.SGD(model.parameters(), lr=0.01), num_iter=40)
    _check_png(plot.plot_lr_finder(result, tmp_path / "lrf.png"))


def test_search_plots(tmp_path):
    pytest.importorskip("optuna")
    from fastnn import tune

    def objective(params, seed, reporter):
        return -(params["a"] - 0.5) ** 2 - math.log10(params["b"]) ** 2 / 10

    space = {"a": {"type": "uniform", "low": 0, "high": 1}, "b": {"type": "loguniform", "low": 1e-3, "high": 1}}
    storage = f"sqlite:///{tmp_path / 's.db'}"
    grid = tune.search(objective, space, sampler="grid", pruner="none", storage=storage, study_name="grid")
    rand = tune.search(objective, space, n_trials=9, sampler="random", pruner="none", storage=storage,
                       study_name="random")
    _check_png(plot.plot_search(rand, tmp_path / "search.png"), min_w=600)
    _check_png(plot.plot_random_vs_grid(grid, rand, tmp_path / "rvg.png", "b", "a"), min_w=800)
    assert cli_main(["plot", "search", "--storage", storage, "--study", "grid", "--versus", "random",
                      "--important", "b", "--unimportant", "a", "-o", str(tmp_path / "cli_rvg.png")]) == 0
    _check_png(tmp_path / "cli_rvg.png", min_w=800)


def test_cli_plot_history_and_errors(history, tmp_path, capsys):
    assert cli_main(["plot", "history", str(history)]) == 0
    _check_png(tmp_path / "curves.png", min_w=800)
    assert cli_main(["plot", "lr", str(history), "-o", str(tmp_path / "sched.png")]) == 0
    _check_png(tmp_path / "sched.png")
    with pytest.raises(SystemExit, match="no such file|No such file"):
        cli_main(["plot", "history", str(tmp_path / "missing.csv")])


def test_cli_diagnose_writes_its_report_and_plots(tmp_path, capsys):
    assert cli_main(["diagnose", "--model", "mlp", "--embedded", "--limit", "512", "--overfit-steps", "40",
                     "--lr-finder-iter", "60", "--lr", "0.01", "--out", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert "initial loss" in out and "update/weight" in out and "lr range test" in out
    _check_png(tmp_path / "activations.png")
    _check_png(tmp_path / "lr_finder.png")


def test_missing_matplotlib_says_which_extra_to_install(monkeypatch, tmp_path, history):
    import sys
    for name in [m for m in sys.modules if m == "matplotlib" or m.startswith("matplotlib.")]:
        monkeypatch.setitem(sys.modules, name, None)
    with pytest.raises(ImportError, match=r"pip install 'fastnn\[plot\]'"):
        plot.plot_history(history, tmp_path / "c.png")


def test_log_axes_label_narrow_and_wide_ranges_readably():
    # A fine search leaves a log-uniform range under a decade wide, where matplotlib's default log axis labels
    # the minor ticks, and the labels overlap; _log_scale labels ~4 evenly spaced major ticks instead.
    from matplotlib.figure import Figure

    def labels(lo, hi):
        fig = Figure()
        ax = fig.add_subplot()
        ax.scatter([lo, hi], [0, 1])
        plot._log_scale(ax, "x")
        fig.draw_without_rendering()
        left, right = ax.get_xlim()
        major = [t.get_text() for t in ax.xaxis.get_majorticklabels()
                 if left <= t.get_position()[0] <= right and t.get_text()]
        minor = [t.get_text() for t in ax.xaxis.get_minorticklabels() if t.get_text()]
        return major, minor

    major, minor = labels(0.0368, 0.0403)  # the fine lr range of the README's run
    assert 2 <= len(major) <= 5 and minor == [], (major, minor)
    assert all(0.036 <= float(t) <= 0.041 for t in major)
    major, minor = labels(3.6e-5, 8.8e-4)  # 1.4 decades: 1, 2, 5 x powers of 10
    assert major == ["5e-5", "1e-4", "2e-4", "5e-4", "0.001"] and minor == []
    major, minor = labels(1e-6, 1e-2)  # 4 decades: powers of 10 only
    assert major == ["1e-6", "1e-5", "1e-4", "0.001", "0.01"] and minor == []

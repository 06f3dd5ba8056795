"""The benchmark suite runs and reports: a quick pooling run through `fastnn bench`, and the table's target logic.

No timing is asserted, and PyTorch is never imported (--no-torch), installed or not.
"""
import json
import sys

import pytest

from fastnn import bench

sys.path.insert(0, str(bench.RUN_SCRIPT.parent))
from _timing import Table, best_times, print_comparison  # noqa: E402


@pytest.mark.skipif(not bench.RUN_SCRIPT.is_file(), reason="bench/ is not in this checkout")
def test_quick_pool_run_prints_table_and_writes_json(tmp_path, capfd):
    results = tmp_path / "results.json"
    status = bench.main(["--quick", "--only", "pool", "--no-torch", "--json", str(results)])
    out = capfd.readouterr().out
    assert status == 0
    assert "PyTorch not used (--no-torch)" in out
    assert Table.HEADER in out
    for row in ("max_pool2d k2s2 fwd ", "max_pool2d k2s2 fwd+bwd", "avg_pool2d k2s2 fwd ", "avg_pool2d k2s2 fwd+bwd"):
        assert row in out
    report = json.loads(results.read_text())
    assert report["meta"]["sections"] == ["pool"] and report["meta"]["torch"] is None
    assert len(report["rows"]) == 4
    assert all(row["fastnn"] > 0 and row["torch"] is None and row["ratio"] is None for row in report["rows"])
    assert report["meta"]["sgemm_gflops"] > 0 and report["meta"]["cpu"] and report["meta"]["isa"]
    assert "SGEMM ceiling" in out and "kernels compiled for" in out
    status = bench.main(["--quick", "--only", "pool", "--no-torch", "--compare-json", str(results)])
    out = capfd.readouterr().out
    assert status == 0 and "== change against results.json" in out


def test_table_checks_ratio_and_absolute_targets(capsys):
    table = Table()
    ratio_met = table.add("s", "a", "ms", 3.0, 2.0, max_ratio=1.5)
    ratio_missed = table.add("s", "b", "ms", 4.0, 2.0, max_ratio=1.5)
    no_torch = table.add("s", "c", "ms", 4.0, None, max_ratio=1.5)
    absolute_missed = table.add("s", "d", "s", 3.5, max_value=3.0)
    untargeted = table.add("s", "e", "ms", 1.0, 4.0)
    assert (ratio_met["ratio"], ratio_met["met"]) == (1.5, True)
    assert (ratio_missed["ratio"], ratio_missed["met"]) == (2.0, False)
    assert (no_torch["ratio"], no_torch["met"]) == (None, None)
    assert absolute_missed["met"] is False and absolute_missed["ratio"] is None
    assert (untargeted["ratio"], untargeted["target"], untargeted["met"]) == (0.25, "", None)
    assert table.print_summary() is False
    out = capsys.readouterr().out
    assert "1 met, 2 missed, 1 not checked" in out
    assert out.count("MISSED ") == 2


def test_comparison_prints_each_rows_change_and_both_ratios(capsys):
    old = [{"section": "s", "name": "a", "unit": "ms", "fastnn": 2.0, "ratio": 1.6},
           {"section": "s", "name": "gone", "unit": "ms", "fastnn": 1.0, "ratio": None}]
    now = [{"section": "s", "name": "a", "unit": "ms", "fastnn": 1.5, "ratio": 1.2},
           {"section": "s", "name": "new", "unit": "ms", "fastnn": 3.0, "ratio": None}]
    print_comparison(now, old, "old.json")
    lines = capsys.readouterr().out.splitlines()
    row_a = next(line for line in lines if line.startswith("a "))
    assert row_a.split()[1:] == ["2", "ms", "1.5", "ms", "-25%", "1.60x", "1.20x"]
    assert any(line.startswith("new ") and "(new row)" in line for line in lines)
    assert "not run now: 1 rows of old.json" in lines


def test_best_times_returns_one_positive_time_per_callable():
    calls = []
    times = best_times([lambda: calls.append("a"), lambda: calls.append("b")], reps=3)
    assert len(times) == 2 and all(t > 0 for t in times)
    assert calls.count("a") >= 5 and calls.count("b") >= 5  # warm-up, calibration and three repetitions


@pytest.mark.skipif(not bench.RUN_SCRIPT.is_file(), reason="bench/ is not in this checkout")
def test_quick_models_run_times_every_model_workload(tmp_path, capfd):
    results = tmp_path / "results.json"
    status = bench.main(["--quick", "--only", "models", "--no-torch", "--json", str(results)])
    out = capfd.readouterr().out
    assert status == 0
    rows = json.loads(results.read_text())["rows"]
    names = [row["name"] for row in rows]
    assert names == ["resnet18 b1 224x224 inference", "resnet18 b4 224x224 inference", "resnet20 b1 32x32 inference",
                     "resnet20 b4 32x32 inference", "resnet20 b4 32x32 train step", "vgg11_bn_cifar b4 32x32 train step",
                     "resnext50_32x4d b4 224x224 inference"]
    assert all(row["fastnn"] > 0 and row["torch"] is None for row in rows)
    # images/s in the note (one decimal) is the batch over the measured time
    for row in rows:
        batch = int(row["name"].split()[1][1:])
        assert float(row["note"].split()[-1]) == pytest.approx(batch / (row["fastnn"] / 1e3), abs=0.051)
    assert "resnext50_32x4d b4 224x224 inference" in out

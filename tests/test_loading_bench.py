"""bench/bench_augment.py runs with whatever transforms exist and says which are missing (no timing asserted;
fastnn only: tests never import torch)."""
import sys
from pathlib import Path

import pytest

BENCH_DIR = Path(__file__).resolve().parent.parent / "bench"
pytestmark = pytest.mark.skipif(not (BENCH_DIR / "bench_augment.py").is_file(), reason="bench/ not in checkout")


def test_bench_augment_reports_every_case(capsys, monkeypatch):
    monkeypatch.syspath_prepend(str(BENCH_DIR))
    import bench_augment
    import fastnn.data
    from fastnn.data import transforms
    bench_augment.main(["--reps", "1", "--no-torchvision"])  # tests never import torch
    out = capsys.readouterr().out
    assert "host: " in out
    for row, steps in bench_augment.CASES:
        line = next(line for line in out.splitlines() if line.startswith(row + " "))
        present = all(hasattr(transforms, name) or hasattr(fastnn.data, name) for name, _ in steps)
        if present:
            rate = float(line.split()[1].replace(",", ""))
            assert rate > 0, line
        else:
            assert "missing" in line, line
    sys.modules.pop("bench_augment", None)

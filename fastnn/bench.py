"""`fastnn bench`: runs the benchmark suite, bench/run.py of the source tree, in a fresh interpreter.

A fresh interpreter because bench/run.py pins the thread pools of NumPy's BLAS, Numba and PyTorch through
environment variables, which work only before those libraries load, and because it imports PyTorch, which the
fastnn package itself never does. The suite ships with the source tree (an editable install), not the wheel.
"""
import subprocess
import sys
from pathlib import Path

RUN_SCRIPT = Path(__file__).resolve().parent.parent / "bench" / "run.py"


def main(argv=None):
    """Run bench/run.py with `argv` (its options, e.g. ["--quick", "--only", "conv"]); returns its exit status."""
    if not RUN_SCRIPT.is_file():
        print(f"fastnn bench: the benchmark suite is not installed ({RUN_SCRIPT} not found); it ships with the "
              f"source tree: clone the repository and `pip install -e .`, or run `python bench/run.py` there",
              file=sys.stderr)
        return 2
    return subprocess.call([sys.executable, str(RUN_SCRIPT), *(argv or [])])

"""Runs the Hypothesis fuzzing of layer and functional arguments (tests/fuzz_functional.py) in a subprocess, so
that a crash inside a compiled kernel (a segfault) shows up as this test's failure with its output."""
import os
import pathlib
import subprocess
import sys

HERE = pathlib.Path(__file__).resolve().parent


def test_fuzzed_arguments_give_results_or_clear_errors():
    env = dict(os.environ, NUMBA_NUM_THREADS="1")
    proc = subprocess.run([sys.executable, "-m", "pytest", "-q", "-x", "-p", "no:cacheprovider",
                           str(HERE / "fuzz_functional.py")], cwd=HERE.parent, env=env, capture_output=True,
                          text=True, timeout=900)
    assert proc.returncode == 0, (f"fuzzing failed (exit {proc.returncode}; a negative code is a signal, e.g. -11 "
                                  f"a segfault):\n{proc.stdout[-6000:]}\n{proc.stderr[-3000:]}")

"""Timing, peak-memory reading and the result table shared by the benchmark scripts.

Timing method: call each workload once to warm up (Numba compiles or loads its kernels, allocators fill their
pools), calibrate how many calls make one repetition last at least MIN_REP_SECONDS, then take the best
repetition (slow workloads stop early, after BUDGET_SECONDS each). When both frameworks run a workload, their
repetitions alternate, so a slow phase of a noisy VM hits both rather than one.
"""
import gc
import math
import os
import resource
import time

MIN_REP_SECONDS = 0.02
BUDGET_SECONDS = 2.0  # per callable: slow workloads stop repeating once they have used this much


def _seconds_per_call(fn, calls):
    start = time.perf_counter()
    for _ in range(calls):
        fn()
    return (time.perf_counter() - start) / calls


def best_times(fns, reps, budget_seconds=BUDGET_SECONDS):
    """Best seconds per call of each zero-argument callable in `fns`, their repetitions interleaved.

    At least one repetition each; at most `reps`, fewer once the repetitions took len(fns) * budget_seconds.
    """
    gc.collect()
    for fn in fns:
        fn()
    calls, best = [], []
    for fn in fns:
        single = _seconds_per_call(fn, 1)
        calls.append(max(1, math.ceil(MIN_REP_SECONDS / max(single, 1e-9))))
        # A call long enough to be a repetition by itself counts as one.
        best.append(single if calls[-1] == 1 else math.inf)
    start = time.perf_counter()
    for rep in range(reps):
        if rep and time.perf_counter() - start > len(fns) * budget_seconds:
            break
        for i, fn in enumerate(fns):
            best[i] = min(best[i], _seconds_per_call(fn, calls[i]))
    return best


def peak_memory_mib():
    """Peak resident set size of this process in MiB: VmHWM from /proc when readable, else ru_maxrss."""
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def cpu_model():
    """The CPU's model name from /proc/cpuinfo (Linux), else platform.processor()."""
    import platform
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown CPU"


def compiled_isa():
    """What Numba compiles the kernels for: LLVM's host CPU name, its widest vector features and the vector width
    the kernels use (512 bits on AVX-512 hosts: fastnn/_kernels/vector_width.py)."""
    import llvmlite.binding as llvm
    from fastnn import _dispatch
    _dispatch.backend("cpu")  # loading the CPU backend sets NUMBA_CPU_FEATURES on AVX-512 hosts
    from fastnn._kernels.vector_width import PREFER_256
    features = llvm.get_host_cpu_features()
    isa = [name for name in ("avx512f", "avx2", "fma") if features.get(name)]
    if features.get("avx512f"):
        bits = 512 if PREFER_256 in os.environ.get("NUMBA_CPU_FEATURES", "") else 256
    else:
        bits = 256 if features.get("avx2") or features.get("avx") else 128
    name = os.environ.get("NUMBA_CPU_NAME") or llvm.get_host_cpu_name()
    return f"{name} ({'+'.join(isa) or 'no AVX2/AVX-512'}, {bits}-bit vectors)"


SGEMM_SIZE = 2048


def sgemm_ceiling_gflops(threads, reps=3):
    """The host's SGEMM rate in GFLOP/s: NumPy matmul of two SGEMM_SIZE^2 float32 matrices on `threads` BLAS
    threads, best of `reps` (the convolution rows' GFLOP/s are quoted as a share of it)."""
    import numpy as np
    from threadpoolctl import threadpool_limits
    rng = np.random.default_rng(0)
    a, b = (rng.standard_normal((SGEMM_SIZE, SGEMM_SIZE), dtype=np.float32) for _ in range(2))
    with threadpool_limits(limits=threads, user_api="blas"):
        a @ b
        seconds = min(_seconds_per_call(lambda: a @ b, 1) for _ in range(reps))
    return 2 * SGEMM_SIZE ** 3 / seconds / 1e9


# Variables that change how the libraries thread; run.py prints those set.
THREAD_VARIABLES = ("NUMBA_NUM_THREADS", "NUMBA_THREADING_LAYER", "OMP_NUM_THREADS", "OMP_WAIT_POLICY",
                    "GOMP_SPINCOUNT", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")


def pin_threads(threads):
    """Size Numba's thread pool to `threads` (NUMBA_NUM_THREADS, unless the user set it), before Numba loads.

    The frameworks are then pinned through their public calls, fastnn.set_num_threads(n) and
    torch.set_num_threads(n). NumPy's BLAS threads are left to fastnn and the user's environment: fastnn's
    threading policy is part of what is measured. Returns the THREAD_VARIABLES in force.
    """
    os.environ.setdefault("NUMBA_NUM_THREADS", str(threads))
    return {name: os.environ[name] for name in THREAD_VARIABLES if name in os.environ}


class Table:
    """Rows printed as they are measured, kept for the summary and the JSON file.

    A row has the fastnn and (optional) PyTorch values in one unit, their ratio, and a target: either a
    maximum ratio fastnn/PyTorch (`max_ratio`) or a maximum fastnn value (`max_value`, in the row's unit).
    """
    NAME_WIDTH = 46
    HEADER = f"{'benchmark':<{NAME_WIDTH}} {'fastnn':>11} {'PyTorch':>11} {'ratio':>7}  {'target':<10} met"

    def __init__(self):
        self.rows = []

    def section(self, title):
        print(f"\n== {title} ==\n{self.HEADER}\n{'-' * len(self.HEADER)}", flush=True)

    def add(self, section, name, unit, fastnn, torch=None, max_ratio=None, max_value=None, note="", **extra):
        """One row; `extra` fields (e.g. gflops) go into the JSON row as they are."""
        ratio = fastnn / torch if torch else None
        if max_ratio is not None:
            target = f"<= {max_ratio:g}x"
            met = None if ratio is None else ratio <= max_ratio
        elif max_value is not None:
            target = f"<= {_format(max_value, unit)}"
            met = fastnn <= max_value
        else:
            target, met = "", None
        row = {"section": section, "name": name, "unit": unit, "fastnn": fastnn, "torch": torch, "ratio": ratio,
               "target": target, "met": met, "note": note, **extra}
        self.rows.append(row)
        print(self._line(row), flush=True)
        return row

    def _line(self, row):
        torch_text = _format(row["torch"], row["unit"]) if row["torch"] is not None else "-"
        ratio_text = f"{row['ratio']:.2f}x" if row["ratio"] is not None else "-"
        met_text = {True: "yes", False: "NO", None: "n/a" if row["target"] else ""}[row["met"]]
        line = (f"{row['name']:<{self.NAME_WIDTH}} {_format(row['fastnn'], row['unit']):>11} {torch_text:>11} "
                f"{ratio_text:>7}  {row['target']:<10} {met_text}")
        return f"{line}  ({row['note']})" if row["note"] else line.rstrip()

    def print_summary(self):
        targeted = [r for r in self.rows if r["target"]]
        missed = [r for r in targeted if r["met"] is False]
        unknown = [r for r in targeted if r["met"] is None]
        print(f"\n== targets: {len(targeted) - len(missed) - len(unknown)} met, {len(missed)} missed, "
              f"{len(unknown)} not checked (they need PyTorch) ==")
        for row in missed:
            print("MISSED " + self._line(row))
        return not missed


def print_comparison(rows, old_rows, old_label):
    """Each row's fastnn value against the same-named row of an earlier run (`old_rows`, from its JSON file)."""
    old = {(r["section"], r["name"]): r for r in old_rows}
    width = Table.NAME_WIDTH
    header = f"{'benchmark':<{width}} {'before':>11} {'now':>11} {'change':>8} {'ratio before':>13} {'now':>7}"
    print(f"\n== change against {old_label} (fastnn; negative = faster) ==\n{header}\n{'-' * len(header)}")
    for row in rows:
        before = old.get((row["section"], row["name"]))
        if before is None or not before["fastnn"]:
            print(f"{row['name']:<{width}} {'-':>11} {_format(row['fastnn'], row['unit']):>11}  (new row)")
            continue
        change = 100 * (row["fastnn"] / before["fastnn"] - 1)
        ratios = [f"{r['ratio']:.2f}x" if r.get("ratio") is not None else "-" for r in (before, row)]
        print(f"{row['name']:<{width}} {_format(before['fastnn'], row['unit']):>11} "
              f"{_format(row['fastnn'], row['unit']):>11} {change:>+7.0f}% {ratios[0]:>13} {ratios[1]:>7}")
    missing = [name for (_, name) in old.keys() - {(r["section"], r["name"]) for r in rows}]
    if missing:
        print(f"not run now: {len(missing)} rows of {old_label}")


def _format(value, unit):
    if value is None:
        return "-"
    if unit == "s":
        return f"{value:.2f} s"
    if unit == "ms":
        return f"{value:.3g} ms" if value < 10 else f"{value:.1f} ms"
    if unit == "MiB":
        return f"{value:.0f} MiB"
    return f"{value:g} {unit}"


def rows_main(rows, description, argv=None):
    """Command line of a bench_*.py script: time its `rows(torch, threads)` and print one line per row."""
    import argparse
    parser = argparse.ArgumentParser(description=description.splitlines()[0])
    parser.add_argument("--threads", type=int, default=os.cpu_count())
    parser.add_argument("--no-torch", action="store_true", help="time fastnn only")
    args = parser.parse_args(argv)
    pin_threads(args.threads)
    torch = None
    if not args.no_torch:
        try:
            import torch
        except ImportError:
            torch = None
    for row in rows(torch, args.threads):
        ratio = f"{row['fastnn_ms'] / row['torch_ms']:.2f}x" if row["torch_ms"] else "-"
        torch_ms = f"{row['torch_ms']:.3f}" if row["torch_ms"] else "-"
        print(f"{row['name']:<48} fastnn {row['fastnn_ms']:8.3f} ms  torch {torch_ms:>8} ms  ratio {ratio}")

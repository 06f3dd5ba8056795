"""Normalisation layers, fastnn vs PyTorch: BatchNorm2d training step and LayerNorm, forward+backward.

    python bench/bench_norm.py [--threads N] [--no-torch]

`rows(torch, threads)` returns [{"name", "fastnn_ms", "torch_ms"}] (torch_ms None without PyTorch) for the
benchmark suite; both frameworks get the same float32 arrays, and their repetitions alternate (best of several).
"""
import sys
from pathlib import Path

BENCH_DIR = Path(__file__).resolve().parent
sys.path[:0] = [str(BENCH_DIR), str(BENCH_DIR.parent)]
from _timing import best_times, rows_main  # noqa: E402

REPS = 7
# (row name, layer class in fastnn.nn and torch.nn, its arguments, input shape); "bwd" rows train
WORKLOADS = [("BatchNorm2d(64) train fwd+bwd (128,64,16,16)", "BatchNorm2d", (64,), (128, 64, 16, 16)),
             ("BatchNorm2d(64) eval fwd (128,64,16,16)", "BatchNorm2d", (64,), (128, 64, 16, 16)),
             ("LayerNorm(512) fwd+bwd (128,512)", "LayerNorm", (512,), (128, 512))]


def _step(framework, layer, inp, grad, backward):
    """One call of the workload: forward without a graph, or forward+backward into fresh gradients."""
    def step():
        if not backward:
            with framework.no_grad():
                layer(inp)
            return
        inp.grad = None
        layer.zero_grad()
        layer(inp).backward(grad)
    return step


def rows(torch=None, threads=None):
    """Best milliseconds per call of each workload, for fastnn and (when given) PyTorch."""
    import numpy as np

    import fastnn
    import fastnn.nn
    if threads is not None:
        fastnn.set_num_threads(threads)
        if torch is not None:
            torch.set_num_threads(threads)
    rng = np.random.default_rng(0)
    results = []
    for name, layer_name, args, shape in WORKLOADS:
        x = rng.standard_normal(shape, dtype=np.float32) * 2 + 1
        grad = rng.standard_normal(shape, dtype=np.float32)
        backward = "bwd" in name
        fns = [_step(fastnn, getattr(fastnn.nn, layer_name)(*args).train(backward),
                     fastnn.tensor(x, requires_grad=backward), grad, backward)]
        if torch is not None:
            fns.append(_step(torch, getattr(torch.nn, layer_name)(*args).train(backward),
                             torch.from_numpy(x).requires_grad_(backward), torch.from_numpy(grad), backward))
        times = best_times(fns, REPS)
        results.append({"name": name, "fastnn_ms": times[0] * 1e3,
                        "torch_ms": times[1] * 1e3 if torch is not None else None})
    return results


if __name__ == "__main__":
    rows_main(rows, __doc__)

"""Activations, fastnn vs PyTorch: forward and forward+backward of each activation layer on 1M float32 values.

`rows(torch, threads)` returns [{"name", "fastnn_ms", "torch_ms"}] (torch_ms None without PyTorch) for the
benchmark suite; both frameworks get the same float32 arrays, and their repetitions alternate (best of several).
"""
import sys
from pathlib import Path

BENCH_DIR = Path(__file__).resolve().parent
sys.path[:0] = [str(BENCH_DIR), str(BENCH_DIR.parent)]
from _timing import best_times  # noqa: E402

REPS = 7
SHAPE = (64, 64, 16, 16)  # 1M values, NCHW, so PReLU has 64 channels and maxout groups channels
# (row label, layer class name in fastnn.nn and torch.nn, its arguments)
LAYERS = [("ReLU", "ReLU", ()), ("LeakyReLU", "LeakyReLU", ()), ("PReLU(64)", "PReLU", (64,)),
          ("ELU", "ELU", ()), ("SELU", "SELU", ()), ("GELU", "GELU", ()), ("GELU(tanh)", "GELU", ("tanh",)),
          ("SiLU", "SiLU", ()), ("Mish", "Mish", ()), ("Softplus", "Softplus", ()), ("Sigmoid", "Sigmoid", ()),
          ("Tanh", "Tanh", ()), ("Hardtanh", "Hardtanh", ()), ("ReLU6", "ReLU6", ()),
          ("Softmax(dim=1)", "Softmax", (1,))]
MAXOUT_PIECES = 4


def _step(framework, fn, inp, grad, backward):
    """One call of the workload: forward without a graph, or forward+backward into a fresh input gradient."""
    def step():
        if not backward:
            with framework.no_grad():
                fn(inp)
            return
        inp.grad = None
        fn(inp).backward(grad)
    return step


def _workloads(fastnn, torch):
    """(label, fastnn callable, torch callable or None, output shape) per activation."""
    import fastnn.nn.functional as F
    out = []
    for label, layer, args in LAYERS:
        out.append((label, getattr(fastnn.nn, layer)(*args),
                    getattr(torch.nn, layer)(*args) if torch is not None else None, SHAPE))
    n, c, h, w = SHAPE
    pieces = MAXOUT_PIECES
    torch_maxout = (lambda x: x.view(n, c // pieces, pieces, h, w).amax(2)) if torch is not None else None
    out.append((f"maxout(pieces={pieces}, dim=1)", lambda x: F.maxout(x, pieces, dim=1), torch_maxout,
                (n, c // pieces, h, w)))
    return out


def rows(torch=None, threads=None):
    """Best milliseconds per call of each activation, forward and forward+backward, fastnn and (when given) torch."""
    import numpy as np

    import fastnn
    import fastnn.nn
    if threads is not None:
        fastnn.set_num_threads(threads)
        if torch is not None:
            torch.set_num_threads(threads)
    rng = np.random.default_rng(0)
    x = rng.standard_normal(SHAPE, dtype=np.float32) * 3
    results = []
    for label, fastnn_fn, torch_fn, out_shape in _workloads(fastnn, torch):
        grad = rng.standard_normal(out_shape, dtype=np.float32)
        for backward in (False, True):
            fns = [_step(fastnn, fastnn_fn, fastnn.tensor(x, requires_grad=backward), grad, backward)]
            if torch_fn is not None:
                fns.append(_step(torch, torch_fn, torch.from_numpy(x).requires_grad_(backward),
                                 torch.from_numpy(grad), backward))
            times = best_times(fns, REPS)
            results.append({"name": f"{label} {'fwd+bwd' if backward else 'fwd'} 1M",
                            "fastnn_ms": times[0] * 1e3, "torch_ms": times[1] * 1e3 if torch_fn else None})
    return results


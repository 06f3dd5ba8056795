"""Optimizer steps, fastnn vs PyTorch: one step of every optimizer over 10M float32 parameters.

    python bench/bench_optim.py [--threads N] [--no-torch]

`rows(torch, threads)` returns [{"name", "fastnn_ms", "torch_ms"}] (torch_ms None without PyTorch) for the
benchmark suite. The parameters are split into TENSORS equal tensors, as a model has several layers; both
frameworks start from the same float32 values and gradients, and PyTorch runs its default CPU path (the
single-tensor for-loop). Repetitions alternate between the frameworks; the best counts.
"""
import sys
from pathlib import Path

BENCH_DIR = Path(__file__).resolve().parent
sys.path[:0] = [str(BENCH_DIR), str(BENCH_DIR.parent)]
from _timing import best_times, rows_main  # noqa: E402

REPS = 5
PARAMS = 10_000_000
TENSORS = 10
LR = 1e-3
# (row name, optimizer class name in fastnn.optim and torch.optim, keyword arguments)
OPTIMIZERS = [("SGD momentum=0.9", "SGD", dict(lr=LR, momentum=0.9)),
              ("SGD Nesterov momentum=0.9", "SGD", dict(lr=LR, momentum=0.9, nesterov=True)),
              ("Adagrad", "Adagrad", dict(lr=LR)),
              ("RMSprop", "RMSprop", dict(lr=LR)),
              ("Adam", "Adam", dict(lr=LR)),
              ("AdamW", "AdamW", dict(lr=LR)),
              ("NAdam", "NAdam", dict(lr=LR)),
              ("Adadelta", "Adadelta", dict()),
              ("Adamax", "Adamax", dict(lr=LR)),
              ("RAdam", "RAdam", dict(lr=LR)),
              ("ASGD", "ASGD", dict(lr=LR)),
              ("Rprop", "Rprop", dict(lr=LR)),
              ("SparseAdam, every row", "SparseAdam", dict(lr=LR))]
# SparseAdam's tensors are embedding tables of ROW-wide rows; PyTorch gets each gradient as a sparse tensor
# holding every row (the same work as fastnn's dense gradient with no zero row).
ROW = 100


def _optimizer_step(framework, optim_name, kwargs, values, grads):
    """The bound `step` of a new optimizer over fresh copies of `values`, each with its gradient set."""
    if optim_name == "SparseAdam":
        values, grads = [v.reshape(-1, ROW) for v in values], [g.reshape(-1, ROW) for g in grads]
    if framework.__name__ == "torch":
        params = [framework.nn.Parameter(framework.from_numpy(v.copy())) for v in values]
        for p, g in zip(params, grads):
            p.grad = framework.from_numpy(g.copy())
            if optim_name == "SparseAdam":
                p.grad = p.grad.to_sparse(1)
    else:
        params = [framework.nn.Parameter(v.copy()) for v in values]
        for p, g in zip(params, grads):
            p.grad = framework.tensor(g.copy())
    return getattr(framework.optim, optim_name)(params, **kwargs).step


def rows(torch=None, threads=None):
    """Best milliseconds per step of each optimizer, for fastnn and (when given) PyTorch."""
    import numpy as np

    import fastnn
    import fastnn.nn
    import fastnn.optim
    if threads is not None:
        fastnn.set_num_threads(threads)
        if torch is not None:
            torch.set_num_threads(threads)
    rng = np.random.default_rng(0)
    size = PARAMS // TENSORS
    values = [rng.standard_normal(size, dtype=np.float32) for _ in range(TENSORS)]
    grads = [rng.standard_normal(size, dtype=np.float32) for _ in range(TENSORS)]
    results = []
    for name, optim_name, kwargs in OPTIMIZERS:
        fns = [_optimizer_step(fastnn, optim_name, kwargs, values, grads)]
        if torch is not None:
            fns.append(_optimizer_step(torch, optim_name, kwargs, values, grads))
        times = best_times(fns, REPS)
        results.append({"name": f"{name} step, {PARAMS / 1e6:g}M params", "fastnn_ms": times[0] * 1e3,
                        "torch_ms": times[1] * 1e3 if torch is not None else None})
        del fns
    return results


if __name__ == "__main__":
    rows_main(rows, __doc__)

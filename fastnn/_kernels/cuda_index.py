"""Scatter-add kernels (numba.cuda): `scatter_add` and `embedding_backward` of the kernel interface.

Both sort the positions (stable, so equal ones keep their order) and give each run of equal positions to one
thread, which adds the run's values in that order: scatter_add over flat element positions, embedding_backward
over rows (one thread per run and column). No float atomics: the result is the same on every run.
"""
import numpy as np
from numba import cuda

from fastnn._kernels.cuda_common import THREADS, array_module, blocks

__all__ = ["scatter_add", "embedding_backward"]


@cuda.jit
def _segment_add(target, positions, order, values, starts):
    s = cuda.grid(1)
    if s < starts.size - 1:
        first = starts[s]
        total = values[order[first]] * 0
        for k in range(first, starts[s + 1]):
            total += values[order[k]]
        target[positions[order[first]]] += total


@cuda.jit
def _row_segment_add(grad, grad_out, indices, order, starts):
    """grad[row] = sum of the grad_out rows of one run of equal indices, one thread per (run, column)."""
    dim = grad.shape[1]
    k = cuda.grid(1)
    if k < (starts.size - 1) * dim:
        s = k // dim
        d = k % dim
        first = starts[s]
        total = grad_out[order[first], d] * 0
        for j in range(first, starts[s + 1]):
            total += grad_out[order[j], d]
        grad[indices[order[first]], d] = total


def _runs(xp, keys):
    """(order, starts): a stable sort of `keys` (equal keys keep their order) and where each run of equal sorted
    keys starts, plus the end."""
    # CuPy's argsort is always stable and takes no `kind`
    order = keys.argsort(kind="stable") if xp is np else keys.argsort()
    ordered = keys[order]
    starts = xp.concatenate((xp.zeros(1, xp.int64), xp.flatnonzero(ordered[1:] != ordered[:-1]) + 1,
                             xp.full(1, ordered.size, xp.int64)))
    return order, starts


def _add_at(flat_target, positions, values):
    """flat_target[positions] += values, repeats summed, on 1-D arrays of equal length (positions, values)."""
    if positions.size == 0:
        return
    order, starts = _runs(array_module(flat_target), positions)
    _segment_add[blocks(starts.size - 1), THREADS](flat_target, positions, order, values, starts)


def scatter_add(target, index, values):
    """target[index] += values in place, for any NumPy-style index; repeated positions accumulate."""
    xp = array_module(target)
    positions = xp.arange(target.size).reshape(target.shape)[index]
    values = xp.ascontiguousarray(xp.broadcast_to(xp.asarray(values, dtype=target.dtype), positions.shape))
    if not getattr(values.flags, "writeable", True):
        # NumPy's broadcast views are read-only, and the simulator copies every kernel argument back after a
        # launch (CuPy arrays have no such flag: never taken on a GPU)
        values = values.copy()
    _add_at(target.reshape(-1), xp.ascontiguousarray(positions).reshape(-1), values.reshape(-1))


def embedding_backward(grad_out, indices, num_embeddings):
    """(num_embeddings, dim) sums of the rows of grad_out (n, dim) by the flat indices (n,): the n indices are
    sorted (not the n*dim elements), then one thread per (run of equal indices, column)."""
    xp = array_module(grad_out)
    grad = xp.zeros((num_embeddings, grad_out.shape[1]), grad_out.dtype)
    if indices.size and grad_out.shape[1]:
        order, starts = _runs(xp, indices)
        _row_segment_add[blocks((starts.size - 1) * grad_out.shape[1]), THREADS](grad, grad_out, indices, order,
                                                                               starts)
    return grad

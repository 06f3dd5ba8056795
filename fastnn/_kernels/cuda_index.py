"""Scatter-add kernels (numba.cuda): `scatter_add` and `embedding_backward` of the kernel interface.

Both are one operation, target.flat[positions] += values with repeated positions: the positions are sorted
(stable, so equal positions keep their order), and one thread per distinct position adds its run of values in
that order before adding the sum to the target. No float atomics: the result is the same on every run.
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


def _add_at(flat_target, positions, values):
    """flat_target[positions] += values, repeats summed, on 1-D arrays of equal length (positions, values)."""
    if positions.size == 0:
        return
    xp = array_module(flat_target)
    # stable: equal positions keep their order (CuPy's argsort is always stable and takes no `kind`)
    order = positions.argsort(kind="stable") if xp is np else positions.argsort()
    ordered = positions[order]
    # run starts: where the sorted position changes, plus the end
    starts = xp.concatenate((xp.zeros(1, ordered.dtype), xp.flatnonzero(ordered[1:] != ordered[:-1]) + 1,
                             xp.full(1, ordered.size, ordered.dtype)))
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
    """(num_embeddings, dim) sums of the rows of grad_out (n, dim) by the flat indices (n,)."""
    xp = array_module(grad_out)
    dim = grad_out.shape[1]
    grad = xp.zeros((num_embeddings, dim), grad_out.dtype)
    positions = (indices.astype(xp.int64)[:, None] * dim + xp.arange(dim)).reshape(-1)
    _add_at(grad.reshape(-1), positions, grad_out.reshape(-1))
    return grad

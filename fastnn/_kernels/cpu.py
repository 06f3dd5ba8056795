"""The CPU backend: NumPy arrays, the Numba kernels of cpu_*.py, and the CPU's policies.

Policies: float32/float64 kernels on C-contiguous arrays; the conv algorithm from measured thresholds
(cpu_conv.choose_algorithm); Numba's thread pool owns the cores and OpenBLAS runs on one thread beside it
(blas_threads.py); random draws come from fastnn's seeded NumPy generator on the host.
"""
import types

import numpy as np

from fastnn._kernels import (cpu_activation, cpu_augment, cpu_conv, cpu_norm, cpu_optim, cpu_optim_adaptive,
                             cpu_optim_more, cpu_pool, cpu_pool_nd)
from fastnn._kernels.backend import Backend
from fastnn._kernels.blas_threads import set_blas_threads


def scatter_add(target, index, values):
    np.add.at(target, index, values)


def embedding_backward(grad_out, indices, num_embeddings):
    # grad = S @ g with S[v, i] = 1 where indices[i] == v: a sparse product sums repeated indices in C, in a fixed
    # order (deterministic), about 10x faster than np.add.at. scipy.sparse is imported on first use (~0.5 s).
    import scipy.sparse
    scatter = scipy.sparse.csr_array((np.ones(indices.size, grad_out.dtype), (indices, np.arange(indices.size))),
                                     shape=(num_embeddings, indices.size))
    return np.asarray(scatter @ grad_out, dtype=grad_out.dtype)


def erf(x):
    import scipy.special  # on first use, like scipy.sparse above
    return scipy.special.erf(x).astype(x.dtype, copy=False)


def _kernel_namespace():
    namespace = types.SimpleNamespace(scatter_add=scatter_add, embedding_backward=embedding_backward, erf=erf,
                                      conv2d_forward=cpu_conv.conv2d_forward, conv2d_backward=cpu_conv.conv2d_backward)
    for module in (cpu_activation, cpu_augment, cpu_norm, cpu_optim, cpu_optim_adaptive, cpu_optim_more, cpu_pool,
                   cpu_pool_nd):
        for name in module.__all__:
            setattr(namespace, name, getattr(module, name))
    return namespace


class CPUBackend(Backend):
    kind = "cpu"
    xp = np
    array_types = (np.ndarray,)
    conv_algorithms = cpu_conv.ALGORITHMS

    def __init__(self, index=None):
        super().__init__(index, _kernel_namespace())
        # The Numba kernels own the cores; BLAS runs single-threaded, inside them (see blas_threads.py).
        set_blas_threads(1)

    def from_host(self, array):
        return array

    def to_host(self, array):
        return array

    def conv_algorithm(self, weight_shape, groups, stride, output_hw):
        return cpu_conv.choose_algorithm(weight_shape, groups, stride, output_hw)

    def set_num_threads(self, n):
        import numba
        if not isinstance(n, int) or isinstance(n, bool) or n < 1 or n > numba.config.NUMBA_NUM_THREADS:
            raise ValueError(f"num threads must be an int in [1, {numba.config.NUMBA_NUM_THREADS}], got {n!r}")
        numba.set_num_threads(n)

    def get_num_threads(self):
        import numba
        return numba.get_num_threads()

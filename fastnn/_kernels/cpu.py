"""The CPU backend: NumPy arrays, the Numba kernels of cpu_*.py, and the CPU's policies.

Policies: float32/float64 kernels on C-contiguous arrays; the conv algorithm from measured thresholds
(cpu_conv.choose_algorithm); small activation, softmax, pooling and normalization calls run a serial twin of
their kernel (SERIAL_BELOW); large same-shape float add/sub/mul/div and gradient accumulation run on the pool
(`binary`, `accumulate`), the rest in NumPy; Numba's thread pool owns the cores and OpenBLAS runs on one thread
beside it (blas_threads.py); glibc's allocator keeps freed buffers for reuse (keep_freed_memory); random draws come from
fastnn's seeded NumPy generator on the host.
"""
import functools
import os
import platform
import sys
import types

import numpy as np

from fastnn._kernels.vector_width import use_full_width

use_full_width()  # before the kernel modules below define their functions: 512-bit vectors on AVX-512 hosts

from fastnn._kernels import (cpu_activation, cpu_augment, cpu_conv, cpu_elementwise, cpu_norm, cpu_optim,
                             cpu_optim_adaptive, cpu_optim_more, cpu_pool, cpu_pool_nd)
from fastnn._kernels.backend import Backend
from fastnn._kernels.blas_threads import set_blas_threads
from fastnn._kernels.variants import serial_twin


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


# Below this many elements in its first argument, a memory-bound kernel runs on the calling thread: waking the
# pool for a parallel region costs more than the second core saves. Measured with ReLU fwd and bwd (float32,
# 2 threads, best of 300 on a shared 2-core Zen 3): 16K elements 5.9 us serial vs 8.8 us parallel, 32K 8.6 vs
# 10.7, 64K 18.7 vs 19.9 (even), 128K 34.1 vs 28.9.
SERIAL_BELOW = 32768
# Kernel modules whose parallel kernels get a serial twin: one pass (or a few) over their first argument. The
# pooling backwards are left out: they write an input-sized gradient, several times their first argument.
# From this many elements, same-shape float add/sub/mul/div and gradient accumulation run on the pool
# (cpu_elementwise.py, CPUBackend.binary/accumulate). Below it NumPy's single-threaded loop, already at cache speed,
# is as fast or faster: float32, 2 threads, best of 100, load ~0.9: add 32K 9.7 us pool vs 8.9 NumPy (accumulate
# 8.7 vs 5.2), 128K 30.3 vs 30.9 (even), 256K 40.1 vs 52.7, 1M 124 vs 233 (accumulate 84 vs 153).
PARALLEL_ARITHMETIC_FROM = 4 * SERIAL_BELOW
_SIZE_POLICY_MODULES = (cpu_activation, cpu_norm, cpu_pool, cpu_pool_nd)
_INPUT_SIZED_OUTPUT = {"max_pool2d_backward", "avg_pool2d_backward", "avg_pool3d_backward",
                       "adaptive_avg_pool2d_backward"}


def _sized(kernel):
    """`kernel`, dispatching to its serial twin (compiled on first use) when the first argument is small."""
    serial = None

    @functools.wraps(kernel.py_func)
    def call(*args):
        nonlocal serial
        if args[0].size >= SERIAL_BELOW:
            return kernel(*args)
        if serial is None:
            serial = serial_twin(kernel)
        return serial(*args)
    return call


# glibc's malloc serves blocks over M_MMAP_THRESHOLD by mmap and returns a free heap top over M_TRIM_THRESHOLD to
# the OS. A training step frees and reallocates the same activation and gradient sizes every time, so with the
# defaults each step page-faults its buffers in again: a LeNet-5 step (batch 64) cost 1426 minor faults and 5.6 ms
# of system time (PyTorch's: 157 and 0.6 ms); with these settings 0 faults and 0.1 ms. Blocks up to 32 MiB (glibc's
# largest mmap threshold on 64-bit) come from the heap, and up to 256 MiB of freed heap stays in the process.
_MALLOC_OPTIONS = {"M_MMAP_THRESHOLD": (-3, 32 << 20), "M_TRIM_THRESHOLD": (-1, 256 << 20)}
_MALLOC_ENVIRONMENT = ("MALLOC_MMAP_THRESHOLD_", "MALLOC_TRIM_THRESHOLD_", "MALLOC_TOP_PAD_", "GLIBC_TUNABLES")


def keep_freed_memory():
    """Apply _MALLOC_OPTIONS on glibc Linux; not when the user tuned malloc through its environment variables or
    set FASTNN_MALLOC_TUNING=0. Returns whether the options were applied."""
    if (os.environ.get("FASTNN_MALLOC_TUNING") == "0" or any(name in os.environ for name in _MALLOC_ENVIRONMENT)
            or not sys.platform.startswith("linux") or platform.libc_ver()[0] != "glibc"):
        return False
    import ctypes
    mallopt = ctypes.CDLL("libc.so.6").mallopt
    return all(mallopt(param, value) == 1 for param, value in _MALLOC_OPTIONS.values())


def _kernel_namespace():
    namespace = types.SimpleNamespace(scatter_add=scatter_add, embedding_backward=embedding_backward, erf=erf,
                                      conv2d_forward=cpu_conv.conv2d_forward, conv2d_backward=cpu_conv.conv2d_backward)
    for module in (cpu_activation, cpu_augment, cpu_norm, cpu_optim, cpu_optim_adaptive, cpu_optim_more, cpu_pool,
                   cpu_pool_nd):
        for name in module.__all__:
            kernel = getattr(module, name)
            if (module in _SIZE_POLICY_MODULES and name not in _INPUT_SIZED_OUTPUT
                    and kernel.targetoptions.get("parallel")):
                kernel = _sized(kernel)
            setattr(namespace, name, kernel)
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
        keep_freed_memory()

    def from_host(self, array):
        return array

    def to_host(self, array):
        return array

    def _parallel_pair(self, a, b):
        """Whether `a` and `b` go to cpu_elementwise's kernels: C-contiguous arrays of one shape and one kernel
        dtype with at least PARALLEL_ARITHMETIC_FROM elements; anything else (broadcasting, mixed dtypes, views,
        smaller arrays) stays with NumPy."""
        return (isinstance(a, np.ndarray) and isinstance(b, np.ndarray) and a.size >= PARALLEL_ARITHMETIC_FROM
                and a.shape == b.shape and a.dtype == b.dtype and a.dtype in self.kernel_dtypes
                and a.flags.c_contiguous and b.flags.c_contiguous)

    def binary(self, op, a, b):
        if self._parallel_pair(a, b):
            return cpu_elementwise.binary(a.reshape(-1), b.reshape(-1), cpu_elementwise.CODES[op]).reshape(a.shape)
        return super().binary(op, a, b)

    def accumulate(self, target, values):
        # NumPy's += buffers overlapping operands (a kernel reading what it already wrote would not) and raises
        # on a read-only target.
        if (self._parallel_pair(target, values) and target.flags.writeable
                and not np.may_share_memory(target, values)):
            cpu_elementwise.accumulate(target.reshape(-1), values.reshape(-1))
            return target
        return super().accumulate(target, values)

    def conv_algorithm(self, weight_shape, groups, stride, output_hw, backward=True):
        return cpu_conv.choose_algorithm(weight_shape, groups, stride, output_hw, backward=backward)

    def set_num_threads(self, n):
        import numba
        if not isinstance(n, int) or isinstance(n, bool) or n < 1 or n > numba.config.NUMBA_NUM_THREADS:
            raise ValueError(f"num threads must be an int in [1, {numba.config.NUMBA_NUM_THREADS}], got {n!r}")
        numba.set_num_threads(n)

    def get_num_threads(self):
        import numba
        return numba.get_num_threads()

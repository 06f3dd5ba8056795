"""Shared plumbing of the numba.cuda kernels (cuda_*.py): launch geometry and output allocation.

The entry points in cuda_*.py take CuPy arrays on a GPU (numba.cuda reads them through
`__cuda_array_interface__`, no copy) and NumPy arrays under the CUDA simulator (NUMBA_ENABLE_CUDASIM=1, how CI
runs them). Outputs are therefore allocated with the array module of the inputs: CuPy's memory pool on a GPU,
NumPy under the simulator. Kernels launch on the default stream, which is also the stream CuPy uses unless told
otherwise, so CuPy work and numba.cuda launches stay ordered without host synchronisation.
"""
import numpy as np
from numba import config

# Threads per block for element-wise kernels, and for the per-channel / per-row tree reductions (a power of
# two). The simulator runs every thread of a block as a Python thread, so it gets small blocks (same results:
# the block size changes only the reductions' tree shape, which stays fixed for a given size).
_SIM = bool(config.ENABLE_CUDASIM)
THREADS = 32 if _SIM else 256
REDUCE_THREADS = 16 if _SIM else 128
# Batch norm reduces a whole channel (N*H*W values) per block and has only C blocks: wider blocks keep the GPU
# busier (untuned until measured, see bench/bench_cuda.py).
CHANNEL_THREADS = 16 if _SIM else 512


def blocks(n, threads=THREADS):
    return max(1, (n + threads - 1) // threads)


def array_module(a):
    """NumPy for host arrays (the simulator), CuPy for device arrays."""
    if isinstance(a, np.ndarray):
        return np
    import cupy  # already imported whenever a CuPy array exists
    return cupy


def empty_like(a, shape=None, dtype=None):
    return array_module(a).empty(a.shape if shape is None else shape, a.dtype if dtype is None else dtype)


def zeros_like(a, shape=None, dtype=None):
    return array_module(a).zeros(a.shape if shape is None else shape, a.dtype if dtype is None else dtype)

"""Who gets the cores: Numba's parallel kernels or OpenBLAS's threads.

Both keep worker threads that busy-wait after a parallel region. On a 2-core machine a training step that
alternates small GEMMs with Numba kernels then spends most of its time with the two pools fighting over the
cores (measured: a LeNet-5 step took 130-400 ms instead of 13 ms). So the CPU backend runs BLAS on one thread
and gives it all of Numba's threads only around the large im2col GEMMs, where BLAS does the bulk of the work.
"""
import contextlib

import numba
from threadpoolctl import ThreadpoolController

_blas_libraries = ThreadpoolController().select(user_api="blas").lib_controllers


def set_blas_threads(n):
    for library in _blas_libraries:
        library.set_num_threads(n)


@contextlib.contextmanager
def parallel_blas():
    """BLAS on as many threads as the Numba kernels use, for the duration of the block."""
    set_blas_threads(numba.get_num_threads())
    try:
        yield
    finally:
        set_blas_threads(1)

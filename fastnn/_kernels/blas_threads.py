"""Who gets the cores: Numba's parallel kernels, not OpenBLAS's threads.

Both keep worker threads that busy-wait after a parallel region. On a 2-core machine a training step that
alternates small GEMMs with Numba kernels then spends most of its time with the two pools fighting over the
cores (measured: a LeNet-5 step took 130-400 ms instead of 13 ms). So the CPU backend runs BLAS on one thread;
the convolution kernels call it from inside their Numba loops, one GEMM per batch of images on each thread.
"""
# Loads SciPy's OpenBLAS, the one Numba's np.dot calls, before the controller below looks for libraries to limit.
import scipy.linalg.cython_blas  # noqa: F401
from threadpoolctl import ThreadpoolController

_blas_libraries = ThreadpoolController().select(user_api="blas").lib_controllers


def set_blas_threads(n):
    for library in _blas_libraries:
        library.set_num_threads(n)

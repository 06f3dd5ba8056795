"""Who gets the cores: Numba's parallel kernels, not OpenBLAS's threads, and idle kernel threads soon sleep.

Both pools keep worker threads that busy-wait after a parallel region. On a 2-core machine a training step that
alternates small GEMMs with Numba kernels then spends most of its time with the two pools fighting over the
cores (measured: a LeNet-5 step took 130-400 ms instead of 13 ms). So the CPU backend runs BLAS on one thread;
the convolution kernels call it from inside their Numba loops, one GEMM per batch of images on each thread.

Numba's 'omp' threading layer runs on libgomp, whose idle threads spin (GOMP_SPINCOUNT, 300,000 iterations)
before sleeping. Whenever anything else wants a core - a DataLoader worker thread, another process - the
spinning thread holds the core that the next parallel region's other thread is waiting for: at load average 6
on 2 cores (AMD EPYC), 50 LeNet-5 steps took 9.6-12.5 s with that default against 1.2-2.3 s with threads that
sleep at once (OMP_WAIT_POLICY=PASSIVE). Sleeping at once costs on an idle machine, where the gaps between a
step's kernels are short (50 steps, median of 5 quiet runs: default 0.44 s, PASSIVE 0.52 s); a short spin of
1,000 iterations keeps most of both (0.46 s quiet; 1.5-2.3 s loaded). Unless the user chose a policy, fastnn
sets that. libgomp reads it once, when it is loaded; this module is imported before the first kernel runs.
"""
import os

# Loads SciPy's OpenBLAS, the one Numba's np.dot calls, before the controller below looks for libraries to limit.
import scipy.linalg.cython_blas  # noqa: F401
from threadpoolctl import ThreadpoolController

if "OMP_WAIT_POLICY" not in os.environ and "GOMP_SPINCOUNT" not in os.environ:
    os.environ["GOMP_SPINCOUNT"] = "1000"

_blas_libraries = ThreadpoolController().select(user_api="blas").lib_controllers


def set_blas_threads(n):
    for library in _blas_libraries:
        library.set_num_threads(n)

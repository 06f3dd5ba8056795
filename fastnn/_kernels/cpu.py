"""The CPU backend: every kernel entry point that ops may call through fastnn._dispatch.kernels('cpu')."""
from fastnn._kernels.cpu_activation import *  # noqa: F401,F403
from fastnn._kernels.cpu_conv import *  # noqa: F401,F403
from fastnn._kernels.cpu_norm import *  # noqa: F401,F403
from fastnn._kernels.cpu_optim import *  # noqa: F401,F403
from fastnn._kernels.cpu_optim_adaptive import *  # noqa: F401,F403
from fastnn._kernels.cpu_pool import *  # noqa: F401,F403
from fastnn._kernels.cpu_pool_nd import *  # noqa: F401,F403
from fastnn._kernels.blas_threads import set_blas_threads

# The Numba kernels own the cores; BLAS runs single-threaded, inside them (see blas_threads.py).
set_blas_threads(1)

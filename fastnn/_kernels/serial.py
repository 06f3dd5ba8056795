"""Serial twins: a parallel Numba kernel compiled again without `parallel`, for calls too small to pay for waking
the thread pool (the CPU backend's size policy, cpu.py, and the small conv forwards, cpu_conv.py)."""
import functools
import types

from numba import njit


@functools.cache
def serial_twin(kernel):
    """The same Numba kernel compiled without `parallel` (prange runs as range), made once per kernel. Its
    function gets its own qualified name, so Numba's on-disk cache keeps the two compilations apart."""
    f = kernel.py_func
    twin = types.FunctionType(f.__code__, f.__globals__, f.__name__ + "_serial", f.__defaults__, f.__closure__)
    twin.__qualname__ = f.__qualname__ + "_serial"
    twin.__module__ = f.__module__
    options = {k: v for k, v in kernel.targetoptions.items() if k not in ("parallel", "nopython")}
    return njit(cache=True, **options)(twin)

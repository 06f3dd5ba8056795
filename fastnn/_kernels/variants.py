"""Compiled variants of a Numba kernel: its serial twin, compiled again without `parallel`, for calls too small to
pay for waking the thread pool (the CPU backend's size policy, cpu.py, and the small conv forwards, cpu_conv.py);
its build with some globals bound to other values (the conv's register blocks two vectors wide, cpu_conv.py); and
its build with LLVM's SLP vectorizer, which register-blocked kernels need (cpu_conv.py, cpu_winograd.py)."""
import functools
import types

import numba
from numba import njit
from numba.core.compiler_lock import global_compiler_lock


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


def rebound(kernel, suffix, **names):
    """The Numba kernel compiled again with the globals `names` bound to other values (Numba freezes a kernel's
    globals as constants: the same loops for another constant, or calling another inlined function). Its function
    is named with `suffix`, so Numba's on-disk cache keeps the builds apart; the caller makes each one once."""
    f = kernel.py_func
    rebound_globals = {**f.__globals__, **names}
    clone = types.FunctionType(f.__code__, rebound_globals, f.__name__ + suffix, f.__defaults__, f.__closure__)
    clone.__qualname__ = f.__qualname__ + suffix
    clone.__module__ = f.__module__
    options = {k: v for k, v in kernel.targetoptions.items() if k != "nopython"}
    return njit(cache=True, **options)(clone)


_SLP_READY = set()  # (kernel, dtype) pairs with_slp has compiled


def with_slp(kernel, *args):
    """kernel(*args), compiled for these argument types with LLVM's SLP vectorizer on (Numba turns it off by
    default; _fma_block's register blocking needs it). Compiled, or loaded from the cache, on the first call per
    dtype: the callers pass C-contiguous arrays of fixed ranks, so the dtype fixes the types (numba.typeof
    costs ~25 us an array, more than a small conv)."""
    key = (kernel, args[0].dtype)
    if key not in _SLP_READY:
        types = tuple(numba.typeof(a) for a in args)
        if types not in kernel.overloads:
            with global_compiler_lock:
                saved = numba.config.SLP_VECTORIZE
                numba.config.SLP_VECTORIZE = 1
                try:
                    kernel.compile(types)
                finally:
                    numba.config.SLP_VECTORIZE = saved
        _SLP_READY.add(key)
    return kernel(*args)

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
    """The same Numba kernel compiled without `parallel` (prange runs as range), made once per kernel.

    It takes NumPy's error model, as Numba compiles a prange body: under Python's, every float division checks
    for a zero divisor to raise ZeroDivisionError, which keeps LLVM from vectorizing the loop (sigmoid, tanh,
    GELU, SiLU, softplus and mish forwards on 16K float32 ran 10-15x slower serial than parallel on one thread,
    e.g. sigmoid 60 us vs 4.9). Its name names the error model too, so that a twin cached before under Python's
    model is not reused."""
    options = {**{k: v for k, v in kernel.targetoptions.items() if k != "parallel"}, "error_model": "numpy"}
    return _recompiled(kernel, "_serial_numpy_errors", kernel.py_func.__globals__, **options)


def rebound(kernel, suffix, **names):
    """The Numba kernel compiled again with the globals `names` bound to other values (Numba freezes a kernel's
    globals as constants: the same loops for another constant, or calling another inlined function), named with
    `suffix`; the caller makes each one once."""
    return _recompiled(kernel, suffix, {**kernel.py_func.__globals__, **names}, **kernel.targetoptions)


def _recompiled(kernel, suffix, global_names, **options):
    """kernel's Python function compiled again by Numba with `options` (and caching), reading `global_names` as
    its globals, under its name + `suffix`: Numba's on-disk cache keys hold neither options nor globals, only the
    qualified name, so each variant needs its own."""
    f = kernel.py_func
    clone = types.FunctionType(f.__code__, global_names, f.__name__ + suffix, f.__defaults__, f.__closure__)
    clone.__qualname__ = f.__qualname__ + suffix
    clone.__module__ = f.__module__
    options = {k: v for k, v in options.items() if k not in ("nopython", "cache")}
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
                # Numba's compiler first reloads its configuration when a NUMBA_* environment variable changed
                # since the last load, resetting every option to the environment's value: SLP_VECTORIZE set below
                # would be lost for that compile. fastnn sets NUMBA_CPU_FEATURES after Numba's import on AVX-512
                # hosts (vector_width.py), so a process's first compile did that: its blocked conv kernel came out
                # without SLP and 5-10x slower (1x16x32x32 3x3 conv: 620-1100 us vs 80-160), and was cached so.
                numba.config.reload_config()
                saved = numba.config.SLP_VECTORIZE
                numba.config.SLP_VECTORIZE = 1
                try:
                    kernel.compile(types)
                finally:
                    numba.config.SLP_VECTORIZE = saved
        _SLP_READY.add(key)
    return kernel(*args)

"""Element-wise arithmetic kernels (Numba, CPU): a + b, a - b, a * b, a / b and the in-place target += values,
split over the thread pool.

NumPy runs these on one thread; for large arrays two threads move about twice the bytes per second. The kernels
take 1-D C-contiguous arrays of one float dtype and equal size (the CPU backend checks, cpu.py); each element is
one IEEE operation, as in NumPy, so results are bit-identical to NumPy's. error_model="numpy": x / 0 gives
inf or NaN as in NumPy instead of raising ZeroDivisionError.
"""
import numpy as np
from numba import njit, prange

__all__ = ["binary", "accumulate"]

# Operation codes of `binary`: one kernel with a loop per operation compiles once per dtype, not four times.
ADD, SUB, MUL, DIV = 0, 1, 2, 3
CODES = {"add": ADD, "sub": SUB, "mul": MUL, "div": DIV}


@njit(parallel=True, nogil=True, cache=True, error_model="numpy")
def binary(a, b, op):
    """A new array `a op b` (op: ADD, SUB, MUL or DIV)."""
    out = np.empty_like(a)
    if op == ADD:
        for i in prange(a.size):
            out[i] = a[i] + b[i]
    elif op == SUB:
        for i in prange(a.size):
            out[i] = a[i] - b[i]
    elif op == MUL:
        for i in prange(a.size):
            out[i] = a[i] * b[i]
    else:
        for i in prange(a.size):
            out[i] = a[i] / b[i]
    return out


@njit(parallel=True, nogil=True, cache=True)
def accumulate(target, values):
    """target += values, in place (gradient accumulation)."""
    for i in prange(target.size):
        target[i] += values[i]

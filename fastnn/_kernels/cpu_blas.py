"""BLAS GEMM callable from Numba kernels: C = alpha A B + beta C on strided 2-D views, no copies.

Numba's np.dot inside a kernel calls the same library (SciPy's OpenBLAS, through scipy.linalg.cython_blas) but
only as C = A B into a fresh or whole output, on C- or F-contiguous operands. `gemm` takes any 2-D views with
one unit-stride axis (a slice of a larger buffer, a transpose) and beta, so that a kernel accumulates products in
place (beta = 1) and writes them where the next pass reads them.

The kernels that call it are cached by Numba: the generated code calls the BLAS routine by a symbol name that
this module registers with LLVM at import (SciPy's address differs from process to process), as Numba does for
its own np.dot. SciPy is a dependency of fastnn, so the routine is always there.
"""
import llvmlite.binding as llvm
from llvmlite import ir
from numba import njit, types
from numba.core import cgutils
from numba.extending import get_cython_function_address, intrinsic

__all__ = ["gemm"]

_SYMBOLS = {"float32": "fastnn_blas_sgemm", "float64": "fastnn_blas_dgemm"}
for _name, _routine in (("float32", "sgemm"), ("float64", "dgemm")):
    llvm.add_symbol(_SYMBOLS[_name], get_cython_function_address("scipy.linalg.cython_blas", _routine))


@intrinsic
def _fortran_gemm(typingctx, trans_a, trans_b, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc):
    """Fortran xGEMM on column-major operands given by their arrays' first elements (a, b, c) and leading
    dimensions; trans_a / trans_b are the characters' codes (ord('N') or ord('T')). Every scalar is passed by
    pointer, as Fortran does."""
    dtype = c.dtype
    if str(dtype) not in _SYMBOLS or a.dtype != dtype or b.dtype != dtype:
        return None
    sig = types.void(trans_a, trans_b, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc)

    def codegen(context, builder, signature, args):
        ptr = context.get_value_type(dtype).as_pointer()

        def slot(index, target):
            """A stack cell holding argument `index` cast to the numba type `target`."""
            cell = cgutils.alloca_once(builder, context.get_value_type(target))
            builder.store(context.cast(builder, args[index], signature.args[index], target), cell)
            return cell

        def data(index):
            array = context.make_array(signature.args[index])(context, builder, args[index])
            return builder.bitcast(array.data, ptr)

        i32 = types.int32
        fnty = ir.FunctionType(ir.VoidType(), [ir.IntType(8).as_pointer()] * 2 + [ir.IntType(32).as_pointer()] * 3
                               + [ptr, ptr, ir.IntType(32).as_pointer(), ptr, ir.IntType(32).as_pointer(), ptr,
                                  ptr, ir.IntType(32).as_pointer()])
        fn = cgutils.get_or_insert_function(builder.module, fnty, _SYMBOLS[str(dtype)])
        builder.call(fn, [slot(0, types.int8), slot(1, types.int8), slot(2, i32), slot(3, i32), slot(4, i32),
                          slot(5, dtype), data(6), slot(7, i32), data(8), slot(9, i32), slot(10, dtype), data(11),
                          slot(12, i32)])
        return context.get_dummy_value()

    return sig, codegen


@njit(nogil=True, cache=True, inline="always")
def _as_column_major(x):
    """(transposed, leading dimension) of the 2-D view x (r, s) seen by column-major BLAS: a row-major x is the
    column-major s x r matrix xᵀ, a column-major x is itself."""
    item = x.itemsize
    rows, cols = x.shape
    if cols == 1 or x.strides[1] == item:
        return False, max(cols, x.strides[0] // item if rows > 1 else cols, 1)
    return True, max(rows, x.strides[1] // item if cols > 1 else rows, 1)


@njit(nogil=True, cache=True, inline="always")
def gemm(alpha, a, b, beta, c):
    """c (m, n) = alpha * a (m, k) @ b (k, n) + beta * c in place, on the BLAS threads the CPU backend set (one:
    kernels call it from their own parallel loops). Each of a, b, c is a 2-D view with a unit stride along one
    axis (c along its rows: c[i, j + 1] next to c[i, j]); the caller guarantees matching shapes below 2**31 (BLAS
    takes 32-bit sizes). With beta = 0, c's old values are never read (NaN-safe)."""
    m, n = c.shape
    k = a.shape[1]
    if m == 0 or n == 0:
        return
    # Row-major c = a b is column-major cᵀ = bᵀ aᵀ: BLAS's first operand is b.
    a_cols, lda = _as_column_major(a)
    b_cols, ldb = _as_column_major(b)
    _, ldc = _as_column_major(c)
    trans_b = ord("T") if b_cols else ord("N")
    trans_a = ord("T") if a_cols else ord("N")
    _fortran_gemm(trans_b, trans_a, n, m, k, c.dtype.type(alpha), b, ldb, a, lda, c.dtype.type(beta), c,
                  ldc)

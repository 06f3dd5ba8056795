"""cpu_blas.gemm (BLAS called from Numba kernels on strided views) against NumPy's matmul."""
import numpy as np
import pytest
from numba import njit

from fastnn._kernels.cpu_blas import gemm


@njit(cache=True)
def _gemm(alpha, a, b, beta, c):
    gemm(alpha, a, b, beta, c)


def _view(x, layout, rng):
    """x as a C-order array, an F-order array (a transpose of a C-order one), or a strided window of a bigger
    buffer, with equal values."""
    if layout == "C":
        return np.ascontiguousarray(x)
    if layout == "F":
        return np.asfortranarray(x)
    big = rng.standard_normal((x.shape[0] + 3, x.shape[1] + 5)).astype(x.dtype)
    big[1:1 + x.shape[0], 2:2 + x.shape[1]] = x
    return big[1:1 + x.shape[0], 2:2 + x.shape[1]]


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("mkn", [(5, 7, 3), (1, 4, 6), (6, 4, 1), (3, 1, 2), (1, 1, 1), (64, 128, 32)])
@pytest.mark.parametrize("layouts", [("C", "C"), ("F", "C"), ("C", "F"), ("F", "F"), ("window", "window")])
def test_gemm_matches_numpy_on_c_f_and_strided_operands(dtype, mkn, layouts):
    rng = np.random.default_rng(sum(mkn))
    m, k, n = mkn
    a0, b0 = rng.standard_normal((m, k)).astype(dtype), rng.standard_normal((k, n)).astype(dtype)
    c0 = rng.standard_normal((m, n)).astype(dtype)
    a, b = _view(a0, layouts[0], rng), _view(b0, layouts[1], rng)
    big = np.full((m + 2, n + 4), 7, dtype)
    c = big[1:1 + m, 1:1 + n]  # a window: gemm writes inside it only
    c[...] = c0
    _gemm(0.5, a, b, 2.0, c)
    tol = 1e-4 if dtype == np.float32 else 1e-12
    np.testing.assert_allclose(c, 0.5 * (a0.astype(np.float64) @ b0) + 2 * c0, rtol=tol, atol=tol * k)
    assert c.dtype == dtype
    outside = np.ones(big.shape, bool)
    outside[1:1 + m, 1:1 + n] = False
    assert (big[outside] == 7).all()


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_beta_zero_ignores_old_values_and_beta_one_accumulates_in_order(dtype):
    rng = np.random.default_rng(0)
    a, b = rng.standard_normal((8, 16)).astype(dtype), rng.standard_normal((16, 4)).astype(dtype)
    c = np.full((8, 4), np.nan, dtype)
    _gemm(1.0, a, b, 0.0, c)
    np.testing.assert_allclose(c, a @ b, rtol=1e-5)
    first = c.copy()
    _gemm(1.0, a, b, 1.0, c)
    # Summing a product onto itself doubles it exactly.
    np.testing.assert_array_equal(c, 2 * first)


def test_empty_reduction_scales_c_by_beta():
    c = np.arange(6, dtype=np.float32).reshape(2, 3)
    _gemm(1.0, np.zeros((2, 0), np.float32), np.zeros((0, 3), np.float32), 3.0, c)
    np.testing.assert_array_equal(c, 3 * np.arange(6, dtype=np.float32).reshape(2, 3))

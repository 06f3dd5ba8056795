"""The pointwise im2col forward (cpu_conv._pointwise_forward: 1x1 stride-1 unpadded ungrouped convs, the GEMM
writing the output planes in place) against the NumPy reference and the unfolding path it replaces."""
import numpy as np
import pytest

from fastnn._kernels import cpu_conv, ref_conv

ARGS = ((1, 1), (0, 0), (1, 1))


@pytest.mark.parametrize("x_shape, cout", [
    ((3, 8, 5, 7), 6),          # small: the calling thread
    ((8, 64, 24, 24), 48),      # the thread pool, one image per GEMM
    ((2, 5, 1, 1), 3),          # 1x1 planes
])
@pytest.mark.parametrize("with_bias", [True, False])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_pointwise_forward_matches_reference(monkeypatch, x_shape, cout, with_bias, dtype):
    rng = np.random.default_rng(sum(x_shape) + cout)
    x = rng.standard_normal(x_shape).astype(dtype)
    w = rng.standard_normal((cout, x_shape[1], 1, 1)).astype(dtype)
    b = rng.standard_normal(cout).astype(dtype) if with_bias else None
    ran = []
    on_threads = cpu_conv._on_threads

    def spy(kernel, serial):
        ran.append(kernel.py_func.__name__)
        return on_threads(kernel, serial)

    monkeypatch.setattr(cpu_conv, "_on_threads", spy)
    out = cpu_conv.conv2d_forward_im2col(x, w, b, *ARGS, 1)
    assert ran == ["_pointwise_forward"]
    expected = ref_conv.conv2d_forward(x.astype(np.float64), w.astype(np.float64),
                                       None if b is None else b.astype(np.float64), *ARGS, 1).astype(dtype)
    tol = 1e-10 if dtype == np.float64 else 1e-4
    np.testing.assert_allclose(out, expected, rtol=tol, atol=tol * (1 + np.abs(expected).max()))
    # The unfolding path computes each output as the same GEMM's dot product: bit for bit the same values.
    w_groups = w.reshape(1, cout, -1)
    bias = np.zeros(cout, dtype) if b is None else b
    unfolded = on_threads(cpu_conv._im2col_forward, False)(x, w_groups, bias, np.empty_like(out), 1, 1, 1, 1, 1,
                                                            0, 0, 1, 1)
    assert np.array_equal(out, unfolded)


@pytest.mark.parametrize("w_shape, groups, args", [
    ((6, 8, 1, 1), 1, ((2, 2), (0, 0), (1, 1))),    # strided: unfolded
    ((6, 8, 1, 1), 1, ((1, 1), (1, 1), (1, 1))),    # padded
    ((6, 4, 1, 1), 2, ARGS),                        # grouped
    ((6, 8, 3, 3), 1, ((1, 1), (1, 1), (1, 1))),    # not 1x1
])
def test_other_convs_keep_the_unfolding_path(monkeypatch, w_shape, groups, args):
    ran = []
    on_threads = cpu_conv._on_threads
    monkeypatch.setattr(cpu_conv, "_on_threads", lambda kernel, serial: ran.append(kernel.py_func.__name__)
                        or on_threads(kernel, serial))
    rng = np.random.default_rng(5)
    x, w = rng.standard_normal((2, 8, 6, 6)), rng.standard_normal(w_shape)
    out = cpu_conv.conv2d_forward_im2col(x, w, None, *args, groups)
    assert "_pointwise_forward" not in ran
    np.testing.assert_allclose(out, ref_conv.conv2d_forward(x, w, None, *args, groups), rtol=1e-10, atol=1e-10)

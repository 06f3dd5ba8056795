"""Large element-wise arithmetic on the CPU's thread pool (cpu_elementwise.py) and the backend policy that picks it
(CPUBackend.binary / accumulate): the kernels equal their NumPy references bit for bit, and everything the
kernels do not take (small, broadcast, mixed-dtype, non-contiguous, overlapping, read-only) still goes to NumPy.
Default tests compile two kernels (binary and accumulate, float32); the float64 variants are `slow`."""
import numpy as np
import pytest

import fastnn
from fastnn import _dispatch
from fastnn._kernels import cpu, cpu_elementwise, ref_elementwise

N = cpu.PARALLEL_ARITHMETIC_FROM + 7  # over the threshold, and not a multiple of the vector width
cpu_backend = _dispatch.backend("cpu")


def _operands(dtype, size=N, seed=0):
    """Random operands with the IEEE special cases planted: zeros (x / 0, 0 / 0), infinities, NaN, subnormals."""
    rng = np.random.default_rng(seed)
    a = (rng.standard_normal(size) * 100).astype(dtype)
    b = (rng.standard_normal(size) * 100).astype(dtype)
    tiny = np.finfo(dtype).smallest_subnormal
    a[:8] = [0, 1, -1, np.inf, -np.inf, np.nan, tiny, 0]
    b[:8] = [0, 0, 0, np.inf, 2, 1, tiny, -0.0]
    return a, b


@pytest.mark.parametrize("dtype", [np.float32, pytest.param(np.float64, marks=pytest.mark.slow)])
@pytest.mark.parametrize("op", ["add", "sub", "mul", "div"])
def test_binary_kernel_is_bit_identical_to_numpy(op, dtype):
    a, b = _operands(dtype)
    code = cpu_elementwise.CODES[op]
    with np.errstate(all="ignore"):
        expected = ref_elementwise.binary(a, b, code)
    actual = cpu_elementwise.binary(a, b, code)
    assert actual.dtype == dtype
    bits = f"u{a.itemsize}"  # equal bit patterns: values, signed zeros, NaN payloads
    assert np.array_equal(actual.view(bits), expected.view(bits))
    if op == "div":  # x / 0 gives inf and 0 / 0 NaN, as in NumPy, instead of raising
        assert np.isinf(actual[1]) and np.isnan(actual[0])


@pytest.mark.parametrize("dtype", [np.float32, pytest.param(np.float64, marks=pytest.mark.slow)])
def test_accumulate_kernel_is_bit_identical_to_numpy(dtype):
    target, values = _operands(dtype)
    expected = target.copy()
    ref_elementwise.accumulate(expected, values)
    cpu_elementwise.accumulate(target, values)
    bits = f"u{target.itemsize}"
    assert np.array_equal(target.view(bits), expected.view(bits))


@pytest.fixture
def kernel_calls(monkeypatch):
    """The names of the cpu_elementwise kernels the backend calls (the real kernels still run)."""
    calls = []
    for name in cpu_elementwise.__all__:
        kernel = getattr(cpu_elementwise, name)
        monkeypatch.setattr(cpu_elementwise, name,
                            lambda *args, _k=kernel, _n=name: (calls.append(_n), _k(*args))[1])
    return calls


def test_policy_takes_large_same_shape_float_arrays(kernel_calls):
    a, b = _operands(np.float32, size=2 * N)
    a, b = a.reshape(2, N), b.reshape(2, N)
    out = cpu_backend.binary("mul", a, b)
    assert kernel_calls == ["binary"] and out.shape == (2, N) and np.array_equal(out, a * b, equal_nan=True)
    target = a.copy()
    cpu_backend.accumulate(target, b)
    assert kernel_calls == ["binary", "accumulate"] and np.array_equal(target, a + b, equal_nan=True)
    edge = a.reshape(-1)[:cpu.PARALLEL_ARITHMETIC_FROM]  # exactly at the threshold
    with np.errstate(invalid="ignore"):  # inf - inf
        expected = edge - edge
    assert np.array_equal(cpu_backend.binary("sub", edge, edge), expected, equal_nan=True)
    assert kernel_calls[-1] == "binary" and len(kernel_calls) == 3


def test_policy_leaves_the_rest_to_numpy(kernel_calls):
    a, b = _operands(np.float32, size=2 * N)
    small = a[:cpu.PARALLEL_ARITHMETIC_FROM - 1], b[:cpu.PARALLEL_ARITHMETIC_FROM - 1]
    wide = a.reshape(2, N), b[:N]                       # broadcasting
    mixed = a, b.astype(np.float64)                      # mixed dtypes
    strided = a[::2], b[::2]                             # not contiguous (N elements, over the threshold)
    integers = np.arange(N, dtype=np.int32), np.arange(1, N + 1, dtype=np.int32)  # not a kernel dtype
    with np.errstate(all="ignore"):
        for x, y in (small, wide, mixed, strided, integers):
            for op, expected in (("add", x + y), ("div", x / y)):
                out = cpu_backend.binary(op, x, y)
                assert out.dtype == expected.dtype and np.array_equal(out, expected, equal_nan=True)
        # in place: overlapping operands (NumPy buffers them) and a read-only target (NumPy raises)
        target = a.copy()
        expected = target[1:N + 1] + target[:N]
        cpu_backend.accumulate(target[1:N + 1], target[:N])
    assert np.array_equal(target[1:N + 1], expected, equal_nan=True)
    frozen = a[:N].copy()
    frozen.flags.writeable = False
    with pytest.raises(ValueError, match="read-only"):
        cpu_backend.accumulate(frozen, b[:N])
    assert kernel_calls == []


def test_ops_and_gradient_accumulation_go_through_the_kernels(kernel_calls):
    """x used twice (as a ResNet block's identity shortcut): the forward sums, the backward sums x's gradients,
    and a second backward accumulates into the leaf's .grad; all equal NumPy's."""
    xa, wa = _operands(np.float32, seed=1)
    xa[:8], wa[:8] = 1.5, 0.5  # finite values, for gradients without NaN
    x = fastnn.tensor(xa, requires_grad=True)
    w = fastnn.tensor(wa, requires_grad=True)
    h = x * w                                # mul forward
    y = (h + x) / w - h                      # add, div, sub forwards; h and x get two gradients each
    assert np.array_equal(y.detach().numpy(), (xa * wa + xa) / wa - xa * wa)
    y.sum().backward()
    assert {"binary", "accumulate"} >= set(kernel_calls) and "binary" in kernel_calls
    calls = len(kernel_calls)
    gh = np.float32(1) / wa - np.float32(1)  # d/dh
    gx_expected = gh * wa + np.float32(1) / wa
    np.testing.assert_allclose(x.grad.numpy(), gx_expected, rtol=1e-5)
    first = x.grad.numpy().copy()
    ((x * w) + x).sum().backward()           # accumulates into x.grad and w.grad
    assert "accumulate" in kernel_calls[calls:]
    # x.grad gets w and 1 in the graph's order; the sums cancel to ~1e-5 absolute in float32
    np.testing.assert_allclose(x.grad.numpy(), first + wa + np.float32(1), rtol=1e-6, atol=1e-4)

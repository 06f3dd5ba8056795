"""The CPU backend's size policy: kernels called with fewer than SERIAL_BELOW elements run a serial twin of the
parallel Numba kernel. The twin must give bit-identical results (same code, same summation order), and the
backend must switch at the threshold."""
import numpy as np
import pytest

from fastnn import _dispatch
from fastnn._kernels import cpu, cpu_activation, cpu_norm, cpu_pool

backend_kernels = _dispatch.backend("cpu").kernels


def _inputs(size, seed=0):
    rng = np.random.default_rng(seed)
    return rng.standard_normal(size).astype(np.float32) * 3, rng.standard_normal(size).astype(np.float32)


@pytest.mark.parametrize("size", [1, 1000, cpu.SERIAL_BELOW - 1, cpu.SERIAL_BELOW, 3 * cpu.SERIAL_BELOW])
def test_sized_kernels_equal_the_parallel_kernels_bit_for_bit(size):
    x, g = _inputs(size)
    zero, six = np.float32(0), np.float32(6)
    pairs = [
        (backend_kernels.hardtanh_forward(x, zero, six, np.empty_like(x)),
         cpu_activation.hardtanh_forward(x, zero, six, np.empty_like(x))),
        (backend_kernels.hardtanh_backward(g, x, zero, six), cpu_activation.hardtanh_backward(g, x, zero, six)),
        (backend_kernels.swish_backward(g, x, np.float32(1)), cpu_activation.swish_backward(g, x, np.float32(1))),
        # kernels dividing by a computed value: vectorized only under NumPy's error model (see serial_twin)
        (backend_kernels.sigmoid_forward(x, np.empty_like(x)), cpu_activation.sigmoid_forward(x, np.empty_like(x))),
        (backend_kernels.tanh_forward(x, np.empty_like(x)), cpu_activation.tanh_forward(x, np.empty_like(x))),
        (backend_kernels.gelu_forward(x, False, np.empty_like(x)),
         cpu_activation.gelu_forward(x, False, np.empty_like(x))),
        (backend_kernels.softmax_forward(x.reshape(-1, 10 if size % 10 == 0 else 1, 1), True),
         cpu_activation.softmax_forward(x.reshape(-1, 10 if size % 10 == 0 else 1, 1), True)),
    ]
    if size >= 16:  # a (N, C, S) batch with channels to normalise, and a plane stack to pool
        planes = x[:size // 16 * 16].reshape(-1, 4, 4)
        pairs.append((backend_kernels.batch_norm_forward(planes, np.ones(4, np.float32), np.zeros(4, np.float32),
                                                         1e-5)[0],
                      cpu_norm.batch_norm_forward(planes, np.ones(4, np.float32), np.zeros(4, np.float32), 1e-5)[0]))
        pairs.append((backend_kernels.max_pool2d_forward(planes, 2, 2, 2, 2, 0, 0, 1, 1, 2, 2)[0],
                      cpu_pool.max_pool2d_forward(planes, 2, 2, 2, 2, 0, 0, 1, 1, 2, 2)[0]))
    for actual, expected in pairs:
        assert actual.dtype == expected.dtype and np.array_equal(actual, expected, equal_nan=True)


def test_policy_switches_at_the_threshold(monkeypatch):
    calls = []

    def fake_twin(kernel):
        calls.append(kernel.py_func.__name__)
        return lambda *args: "serial"
    monkeypatch.setattr(cpu, "serial_twin", fake_twin)
    sized = cpu._sized(cpu_activation.sigmoid_forward)
    x = np.zeros(cpu.SERIAL_BELOW, np.float32)
    assert isinstance(sized(x, x), np.ndarray)  # at the threshold: the parallel kernel
    assert sized(x[:-1], x[:-1]) == "serial" and sized(x[:5], x[:5]) == "serial"
    assert calls == ["sigmoid_forward"]  # the twin is built once, on first use


def test_serial_twin_is_a_separate_serial_compilation():
    twin = cpu.serial_twin(cpu_activation.hardtanh_forward)
    assert "parallel" not in twin.targetoptions
    assert twin.py_func.__qualname__ == "hardtanh_forward_serial_numpy_errors"
    x = np.linspace(-8, 8, 33, dtype=np.float64)
    np.testing.assert_array_equal(twin(x, 0.0, 6.0, np.empty_like(x)), np.clip(x, 0, 6))


def test_serial_twin_divides_as_the_parallel_kernel():
    """NumPy's error model, as Numba compiles prange bodies: a zero divisor gives inf or NaN in both, where the twin
    used to raise ZeroDivisionError (and, checking every division, ran sigmoid 10-15x slower than the kernel)."""
    twin = cpu.serial_twin(cpu_activation.softplus_forward)
    assert twin.targetoptions["error_model"] == "numpy"
    x = np.array([-2.0, 0.0, 3.0], np.float32)
    zero, threshold = np.float32(0), np.float32(20)
    expected = cpu_activation.softplus_forward(x, zero, threshold, np.empty_like(x))  # (... + log 2) / 0
    np.testing.assert_array_equal(twin(x, zero, threshold, np.empty_like(x)), expected)


def test_with_slp_compiles_with_slp_after_an_environment_change(monkeypatch):
    """A NUMBA_* variable changed since Numba last read its environment (fastnn sets NUMBA_CPU_FEATURES on
    AVX-512 hosts after Numba's import) makes the next compile reload Numba's configuration; with_slp's
    SLP_VECTORIZE must survive that reload, or the process's first blocked conv compiles without SLP."""
    import numba
    from numba.core import codegen
    from fastnn._kernels import variants
    seen = []
    real = codegen.create_pass_builder

    def spy(tm, **options):
        seen.append(options.get("slp_vectorize"))
        return real(tm, **options)
    monkeypatch.setattr(codegen, "create_pass_builder", spy)
    monkeypatch.setenv("NUMBA_FASTNN_TEST_PENDING_RELOAD", "1")  # an unknown name: read, then ignored

    @numba.njit
    def total(x):
        s = 0.0
        for i in range(x.size):
            s += x[i]
        return s
    assert variants.with_slp(total, np.ones(8)) == 8.0
    assert True in seen and not numba.config.SLP_VECTORIZE


_REUSE_PROBE = """
import resource, numpy as np, fastnn
fastnn.tensor([1.0])  # builds the CPU backend, which applies its allocator policy
def churn():  # a training step in small: five 1 MiB buffers, then all freed
    for _ in range(20):
        buffers = [np.ones(1 << 18, np.float32) for _ in range(5)]
        del buffers
churn()
before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
churn()
print(resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before)
"""


@pytest.mark.skipif(not cpu.sys.platform.startswith("linux") or cpu.platform.libc_ver()[0] != "glibc",
                    reason="the allocator policy applies to glibc only")
def test_freed_buffers_are_reused_without_page_faults():
    """Five 1 MiB buffers allocated and freed 20 times: with glibc's defaults the freed heap top (5 MiB, over its
    adaptive trim threshold of 2 MiB) goes back to the OS and each round faults the pages in again (~200 faults
    per MiB);
    with the policy the heap keeps them and the second churn faults (almost) nothing."""
    import os
    import subprocess
    import sys
    env = {k: v for k, v in os.environ.items() if k not in cpu._MALLOC_ENVIRONMENT}
    faults = {}
    for setting in ("1", "0"):
        out = subprocess.run([sys.executable, "-c", _REUSE_PROBE], env=dict(env, FASTNN_MALLOC_TUNING=setting),
                             capture_output=True, text=True, check=True)
        faults[setting] = int(out.stdout.split()[-1])
    assert faults["1"] < 50 and faults["0"] > 20 * 5 * 100, faults  # fault-around may map 2+ pages per fault

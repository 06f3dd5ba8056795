"""The CUDA backend's kernels without a GPU (issue 16).

- The numba.cuda kernels run under the CUDA simulator (NUMBA_ENABLE_CUDASIM=1) in one subprocess
  (tests/cuda_sim_checks.py), each against the NumPy reference of its CPU kernel, on tiny shapes; the simulator
  is chosen before numba.cuda is imported there and never touches this process.
- The CuPy-side pieces are checked here on NumPy: the GEMM convolution (cuda_conv.py) against ref_conv, and
  the entry points served by NumPy references on CuPy arrays (cuda.FALLBACKS) on arrays that, like CuPy's,
  take NumPy's function and ufunc dispatch but refuse to become host arrays.
What needs a real GPU (CuPy arrays, launches, speed) is in tests/test_cuda_device.py.
"""
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from fastnn._kernels import cuda_conv, ref_conv, twin

pytestmark = pytest.mark.cudasim
ROOT = Path(__file__).resolve().parents[1]
SIM_CHECKS = ["elementwise_activations", "swish_beta_gradient", "prelu_and_maxout", "optimizer_steps",
              "batch_norm", "layer_norm", "max_pool2d", "avg_pool2d", "pool3d", "adaptive_and_fractional_pool2d",
              "augmentation", "color_ops", "scatter_add_and_embedding_backward", "training_steps_through_ops",
              "kernel_namespace_complete"]


@pytest.fixture(scope="module")
def simulator_results():
    env = dict(os.environ, NUMBA_ENABLE_CUDASIM="1", PYTHONPATH=str(ROOT))
    run = subprocess.run([sys.executable, str(ROOT / "tests" / "cuda_sim_checks.py")], env=env, cwd=ROOT,
                         capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stderr[-3000:]
    results = json.loads(run.stdout.strip().splitlines()[-1])
    if "__skip__" in results:
        pytest.skip(results["__skip__"])
    return results


@pytest.mark.parametrize("name", SIM_CHECKS)
def test_numba_cuda_kernel_under_simulator(simulator_results, name):
    assert name in simulator_results, f"check {name} did not run"
    assert simulator_results[name] == "ok", simulator_results[name]


def test_every_simulator_check_is_listed(simulator_results):
    assert sorted(simulator_results) == sorted(SIM_CHECKS)


@pytest.mark.slow
def test_every_kernel_compiles_to_ptx_for_sm90():
    """What the simulator cannot see (numba's CUDA typing and lowering): every kernel, with the argument types the
    simulator checks launch it with, compiles to PTX for sm_90. Needs numba-cuda with NVVM ('numba-cuda[cu12]');
    about a minute."""
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    env.pop("NUMBA_ENABLE_CUDASIM", None)
    run = subprocess.run([sys.executable, "-O", str(ROOT / "tests" / "cuda_compile_checks.py")], env=env, cwd=ROOT,
                         capture_output=True, text=True, timeout=600)
    assert run.returncode == 0, run.stderr[-3000:]
    results = json.loads(run.stdout.strip().splitlines()[-1])
    if "__skip__" in results:
        pytest.skip(results["__skip__"])
    assert not results["failed"], results["failed"]
    assert not results["check_errors"], results["check_errors"]
    assert not results["not_launched"], results["not_launched"]
    assert len(results["compiled"]) > 50


@pytest.mark.parametrize("algorithm", cuda_conv.ALGORITHMS)
@pytest.mark.parametrize("shape", [
    # (N, Cin, H, W, Cout, kh, kw, stride, padding, dilation, groups)
    (2, 4, 7, 6, 6, 3, 3, (1, 1), (1, 1), (1, 1), 2),
    (2, 3, 8, 8, 5, 3, 2, (2, 1), (0, 1), (1, 2), 1),
    (1, 4, 5, 5, 4, 3, 3, (1, 1), (1, 1), (1, 1), 4),  # depthwise
    (3, 1, 6, 6, 2, 5, 5, (1, 1), (2, 2), (1, 1), 1),
])
def test_gemm_conv_matches_reference(algorithm, shape):
    n, cin, h, w, cout, kh, kw, stride, padding, dilation, groups = shape
    rng = np.random.default_rng(0)
    x = rng.standard_normal((n, cin, h, w))
    weight = rng.standard_normal((cout, cin // groups, kh, kw))
    bias = rng.standard_normal(cout)
    expected = ref_conv.conv2d_forward(x, weight, bias, stride, padding, dilation, groups)
    out = cuda_conv.conv2d_forward(x, weight, bias, stride, padding, dilation, groups, algorithm)
    np.testing.assert_allclose(out, expected, rtol=1e-12, atol=1e-12)
    grad_out = rng.standard_normal(expected.shape)
    grads = cuda_conv.conv2d_backward(grad_out, x, weight, stride, padding, dilation, groups, True, True, True,
                                      algorithm)
    for got, want in zip(grads, ref_conv.conv2d_backward(grad_out, x, weight, stride, padding, dilation, groups)):
        np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-12)
    only_input = cuda_conv.conv2d_backward(grad_out, x, weight, stride, padding, dilation, groups, True, False,
                                           False, algorithm)
    assert only_input[1] is None and only_input[2] is None
    np.testing.assert_allclose(only_input[0], grads[0], rtol=1e-12, atol=1e-12)


def test_conv_algorithm_policy():
    assert cuda_conv.choose_algorithm((16, 16, 3, 3), 1, (1, 1), (32, 32)) == "im2col"
    assert cuda_conv.choose_algorithm((32, 1, 3, 3), 32, (1, 1), (32, 32)) == "direct"  # depthwise
    # a column buffer over the cap goes tap by tap
    assert cuda_conv.choose_algorithm((64, 512, 3, 3), 1, (1, 1), (256, 256), batch=64) == "direct"


class _DeviceLike(twin.TwinArray):
    """CuPy's behaviour at the NumPy boundary: NumPy functions dispatch to the array (CuPy's
    __array_function__), ufuncs too, but implicit host conversion and host ndarray operands raise."""
    __slots__ = ()

    def __array_function__(self, func, types_, args, kwargs):
        twin._refuse_host(args, f"numpy.{func.__name__}")
        return twin._wrap(func(*twin._unwrap(args), **twin._unwrap(kwargs)))


def _fallback_cases():
    rng = np.random.default_rng(0)
    x = rng.standard_normal((2, 5, 7))
    p, g = rng.standard_normal((2, 30))
    state = lambda: np.abs(rng.standard_normal(30)) + 0.5  # noqa: E731
    return {
        "softmax_forward": ((x, True), ()),
        "softmax_backward": ((x, -np.abs(x), True), ()),
        "local_response_norm_forward": ((x, 3, 1e-2, 0.75, 1.0), ()),
        "local_response_norm_backward": ((x, x, np.abs(x) + 1, np.abs(x) + 1, 3, 1e-2, 0.75), ()),
        "adadelta_step": ((p, g, state(), state(), 1.0, 0.9, 1e-6, 0.01, False), (0, 2, 3)),
        "adamax_step": ((p, g, state(), state(), 3, 0.01, 0.9, 0.999, 1e-8, 0.01, True), (0, 2, 3)),
        "radam_step": ((p, g, state(), state(), 9, 0.01, 0.9, 0.999, 1e-8, 0.01, True, False), (0, 2, 3)),
        "asgd_step": ((p, g, state(), 3, 0.01, 0.5, 0.01, 1e-4, 0.75, 1.0, 0.01, False), (0, 2)),
        "rprop_step": ((p, g, np.sign(g) * state(), state() * 0.01, 0.5, 1.2, 1e-6, 50.0, False), (0, 2, 3)),
        "sparse_adam_step": ((p, np.where(np.arange(30) < 10, 0.0, g), state(), state(), 5, 3, 0.01, 0.9, 0.999,
                              1e-8, False), (0, 2, 3)),
    }


@pytest.mark.parametrize("name", sorted(_fallback_cases()))
def test_fallbacks_run_on_device_like_arrays(name, monkeypatch):
    from fastnn._kernels import cuda
    args, updated = _fallback_cases()[name]
    reference = getattr(__import__(f"fastnn._kernels.{cuda.FALLBACKS[name]}", fromlist=[name]), name)
    host_args = [a.copy() if isinstance(a, np.ndarray) else a for a in args]
    expected = reference(*host_args)
    monkeypatch.setattr(twin, "TwinArray", _DeviceLike)  # twin's wrapping now builds _DeviceLike arrays
    device_args = [_DeviceLike(a.copy()) if isinstance(a, np.ndarray) else a for a in args]
    got = reference(*device_args)
    flat = lambda v: v if isinstance(v, tuple) else (v,)  # noqa: E731
    for a, b in zip(flat(got), flat(expected)):
        if isinstance(a, twin.TwinArray):
            assert isinstance(a, _DeviceLike)
            np.testing.assert_allclose(a._a, b, rtol=1e-12)
        else:
            assert a == pytest.approx(b)
    for i in updated:  # in-place updates of param and state
        np.testing.assert_allclose(device_args[i]._a, host_args[i], rtol=1e-12)


def test_import_fastnn_imports_no_cuda_library():
    code = ("import sys, fastnn; fastnn.zeros(2) + 1; "
            "assert fastnn.cuda.is_available() in (True, False); "
            "print(sorted(m for m in ('cupy', 'numba.cuda') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], env=dict(os.environ, PYTHONPATH=str(ROOT)), cwd=ROOT,
                         capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    loaded = json.loads(out.stdout.strip().replace("'", '"'))
    # is_available() may import CuPy where it is installed, never numba.cuda
    assert "numba.cuda" not in loaded


def test_cuda_unavailable_here_keeps_its_clear_error():
    import fastnn
    from fastnn._kernels import cuda
    if cuda.available():
        pytest.skip("a CUDA device is present: tests/test_cuda_device.py covers it")
    assert fastnn.cuda.is_available() is False and "cuda" not in fastnn._dispatch.registered()
    with pytest.raises(RuntimeError, match=r"'cuda' is not available.*pip install 'fastnn\[cuda\]'"):
        fastnn.zeros(2).to("cuda")

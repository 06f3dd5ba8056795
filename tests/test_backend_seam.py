"""The device seam: ops and the autograd/optimizer core compute only through their tensors' backends.

Static: no NumPy call on tensor data in the modules that sit above the backends (AST walk, short allowlist).
Dynamic: the registry refuses a backend that lacks a declared kernel; the twin backend (a CuPy-like device whose
arrays refuse NumPy) runs a LeNet-5 training step equal to the CPU's.
"""
import ast
import pathlib
import types

import numpy as np
import pytest

import fastnn
from fastnn import _dispatch, nn, optim
from fastnn._kernels.backend import Backend
from fastnn._kernels.interface import KERNELS
from fastnn._kernels.twin import TwinArray, TwinBackend

ROOT = pathlib.Path(fastnn.__file__).parent
SEAM_MODULES = sorted(
    [*ROOT.glob("ops/*.py"), ROOT / "tensor.py", *ROOT.glob("autograd/*.py"), ROOT / "func.py",
     ROOT / "optim/optimizer.py", ROOT / "optim/lbfgs.py", ROOT / "nn/init.py", *ROOT.glob("nn/utils/clip_grad.py")])

# NumPy calls allowed above the seam: host metadata only, never tensor data.
ALLOWED_NUMPY_CALLS = {
    "dtype", "finfo", "iinfo", "result_type", "promote_types", "can_cast", "issubdtype",  # dtype metadata
    "float16", "float32", "float64", "int8", "int16", "int32", "int64", "uint8", "bool_",  # host scalar constants
    "prod", "broadcast_shapes",  # arithmetic on shapes
    "errstate",  # a context manager for host warnings, no data
}


def _numpy_calls(path):
    """(line, dotted name) of every call `np.X(...)` / `np.X.Y(...)` not on a line marked `# host:`."""
    source = path.read_text()
    lines = source.splitlines()
    found = []
    for node in ast.walk(ast.parse(source)):
        if not isinstance(node, ast.Call):
            continue
        func, parts = node.func, []
        while isinstance(func, ast.Attribute):
            parts.append(func.attr)
            func = func.value
        if isinstance(func, ast.Name) and func.id in ("np", "numpy") and parts:
            name = ".".join(reversed(parts))
            if "# host:" not in lines[node.lineno - 1]:
                found.append((node.lineno, name))
    return found


@pytest.mark.parametrize("path", SEAM_MODULES, ids=lambda p: str(p.relative_to(ROOT)))
def test_no_numpy_on_tensor_data(path):
    bad = [(line, name) for line, name in _numpy_calls(path) if name not in ALLOWED_NUMPY_CALLS]
    assert not bad, (f"{path.relative_to(ROOT)} calls NumPy directly (use the tensor's backend: "
                     f"x._backend.xp / .kernels / .draw): " + ", ".join(f"line {n}: np.{f}" for n, f in bad))


def test_the_ast_check_finds_numpy_calls(tmp_path):
    sample = tmp_path / "sample.py"
    sample.write_text("import numpy as np\nx = np.exp(a)\ny = np.add.at(a, i, b)\nz = np.dtype('f4')\n"
                      "w = np.zeros(3)  # host: a shape table\n")
    assert _numpy_calls(sample) == [(2, "exp"), (3, "add.at"), (4, "dtype")]


def test_ops_never_import_cpu_kernels():
    for path in ROOT.glob("ops/*.py"):
        tree = ast.parse(path.read_text())
        for node in ast.walk(tree):
            if isinstance(node, (ast.Import, ast.ImportFrom)):
                names = [getattr(node, "module", None) or ""] + [a.name for a in node.names]
                assert not any("cpu_" in n or n.endswith("_kernels.cpu") for n in names), \
                    f"{path.name} imports a CPU kernel module directly: {names}"


# ---- the registry --------------------------------------------------------------------------------------------
def test_backend_missing_a_kernel_fails_at_registration_naming_it():
    partial = types.SimpleNamespace(**{name: (lambda *a: None) for name in KERNELS if name != "adam_step"})

    class Incomplete(Backend):
        kind = "incomplete"

        def __init__(self, index=None):
            super().__init__(index, partial)

    _dispatch.register("incomplete", Incomplete)
    try:
        with pytest.raises(TypeError, match="adam_step"):
            _dispatch.backend("incomplete")
    finally:
        _dispatch.unregister("incomplete")


def test_backend_kernel_with_wrong_parameters_is_refused():
    def bad_sgd(param, grad, lr):
        pass
    kernels = types.SimpleNamespace(**{name: getattr(TwinBackend().kernels, name) for name in KERNELS})
    kernels.sgd_step = bad_sgd
    with pytest.raises(TypeError, match=r"sgd_step\(param, grad, lr\) does not match"):
        Backend(None, kernels)


@pytest.mark.skipif(fastnn.cuda.is_available(), reason="a CUDA device is present")
def test_unknown_and_unavailable_devices():
    with pytest.raises(ValueError, match="unknown device 'tpu'"):
        fastnn.zeros(2, device="tpu")
    with pytest.raises(RuntimeError, match="'cuda' is not available"):
        fastnn.zeros(2).to("cuda")


def test_device_objects_compare_like_pytorch():
    assert fastnn.zeros(1).device == "cpu"
    assert _dispatch.device("cuda:1") == "cuda:1"
    assert _dispatch.device("cuda", 1) == _dispatch.device("cuda:1")
    assert _dispatch.device("cpu") != "cuda"
    assert str(_dispatch.device("cuda:0")) == "cuda:0"
    assert _dispatch.device("cuda:0").index == 0 and _dispatch.device("cuda:0").type == "cuda"


# ---- the twin device behaves like a GPU at the boundary --------------------------------------------------------
def test_twin_arrays_refuse_numpy_and_host_operands():
    t = fastnn.tensor([1.0, 2.0], device="twin")
    assert isinstance(t._data, TwinArray)
    with pytest.raises(TypeError, match="implicit conversion"):
        np.asarray(t._data)
    with pytest.raises(TypeError, match=r"numpy\.sum\(\) called on a device array"):
        np.sum(t._data)
    with pytest.raises(TypeError, match="host numpy.ndarray operand"):
        t._data + np.ones(2, np.float32)


def test_mixing_devices_names_both():
    with pytest.raises(RuntimeError, match="cpu.*twin|twin.*cpu"):
        fastnn.ones(2) + fastnn.ones(2, device="twin")


def test_to_and_numpy_move_through_the_host():
    x = fastnn.tensor([[1.0, -2.0]], requires_grad=True)
    y = x.to("twin")
    assert y.device == "twin" and isinstance(y._data, TwinArray)
    (y * y).sum().backward()
    np.testing.assert_array_equal(x.grad.numpy(), [[2.0, -4.0]])
    host = y.detach().numpy()
    assert isinstance(host, np.ndarray)
    host[0, 0] = 99.0  # a copy off the CPU
    assert y.detach().numpy()[0, 0] == 1.0


def test_module_to_moves_parameters_buffers_and_optimizer_state_follows():
    model = nn.Sequential(nn.Linear(3, 2), nn.BatchNorm1d(2)).to("twin")
    assert all(p.device == "twin" for p in model.parameters())
    assert all(b.device == "twin" for b in model.buffers())
    opt = optim.Adam(model.parameters(), lr=0.1)
    model(fastnn.ones(4, 3, device="twin")).sum().backward()
    opt.step()
    state = opt.state[model[0].weight]
    assert isinstance(state["exp_avg"], TwinArray)


def _lenet_step(device):
    fastnn.manual_seed(0)
    model = fastnn.models.lenet5().to(device)
    opt = optim.SGD(model.parameters(), lr=0.05, momentum=0.9)
    rng = np.random.default_rng(0)
    x = fastnn.tensor(rng.standard_normal((8, 1, 28, 28)).astype(np.float32), device=device)
    y = fastnn.tensor(rng.integers(0, 10, 8), device=device)
    losses = []
    for _ in range(2):
        opt.zero_grad()
        loss = nn.functional.cross_entropy(model(x), y)
        loss.backward()
        opt.step()
        losses.append(loss.item())
    return losses, [p.detach().numpy() for p in model.parameters()]


def test_lenet5_training_step_on_twin_equals_cpu():
    cpu_losses, cpu_params = _lenet_step("cpu")
    twin_losses, twin_params = _lenet_step("twin")
    np.testing.assert_allclose(twin_losses, cpu_losses, rtol=1e-5)
    for a, b in zip(twin_params, cpu_params):
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-5)


def _wait_policy_after_a_kernel(env):
    """(OMP_WAIT_POLICY, GOMP_SPINCOUNT) as a fresh process sees them after fastnn ran a parallel kernel, started
    with `env` (and neither variable otherwise)."""
    import os
    import subprocess
    import sys
    code = ("import os, fastnn; fastnn.relu(fastnn.ones(100000)); "
            "print(os.environ.get('OMP_WAIT_POLICY'), os.environ.get('GOMP_SPINCOUNT'))")
    clean = {k: v for k, v in os.environ.items() if k not in ("OMP_WAIT_POLICY", "GOMP_SPINCOUNT")}
    done = subprocess.run([sys.executable, "-c", code], env={**clean, **env}, capture_output=True, text=True,
                          timeout=120, cwd=pathlib.Path(__file__).resolve().parents[1])
    assert done.returncode == 0, done.stderr
    return tuple(done.stdout.split())


def test_kernel_threads_spin_briefly_between_regions_unless_the_user_chose():
    # libgomp's long spin made 50 LeNet-5 steps take 10 s instead of 1.2-2.3 s at load 6 (blas_threads.py):
    # fastnn shortens it to 1,000 iterations before libgomp loads, and leaves a policy the user set alone.
    assert _wait_policy_after_a_kernel({}) == ("None", "1000")
    assert _wait_policy_after_a_kernel({"OMP_WAIT_POLICY": "active"}) == ("active", "None")
    assert _wait_policy_after_a_kernel({"GOMP_SPINCOUNT": "300000"}) == ("None", "300000")

"""The CUDA backend on a real NVIDIA GPU (issue 16). Skipped, with the reason, where there is none.

On a GPU the backend-parametrized suite also runs with device="cuda" (tests/conftest.py parametrizes the
`device` fixture over every registered device): `python -m pytest -k cuda tests/` runs those. This module adds
what only a GPU can show: CuPy storage, host/device transfers and their errors, every numba.cuda entry point
launched on CuPy arrays against the CPU kernels, and LeNet-5 / resnet20 training steps equal to the CPU's.
bench/gpu_check.sh runs it.
"""
import numpy as np
import pytest

import fastnn
from fastnn import _dispatch, models, nn
from fastnn._kernels import cuda as cuda_backend

pytestmark = [pytest.mark.cuda,
              pytest.mark.skipif(not cuda_backend.available(),
                                 reason="no CUDA GPU here (needs CuPy and numba-cuda and an NVIDIA device: "
                                        "pip install 'fastnn[cuda]'); bench/gpu_check.sh runs these on a GPU")]


def _host(t):
    return t.detach().numpy()


def test_registry_and_storage():
    import cupy
    assert fastnn.cuda.is_available() and fastnn.cuda.device_count() >= 1
    assert "cuda" in _dispatch.registered()
    t = fastnn.tensor(np.arange(6, dtype=np.float32).reshape(2, 3)).to("cuda")
    assert isinstance(t.data, cupy.ndarray) and t.is_cuda and t.device == "cuda"
    np.testing.assert_array_equal(t.cpu().numpy(), np.arange(6).reshape(2, 3))
    assert isinstance(t.numpy(), np.ndarray)  # a host copy
    assert fastnn.tensor([1.0]).cuda().device == "cuda"
    fastnn.cuda.synchronize()
    assert fastnn.device("cuda:0").type == "cuda"


def test_mixing_devices_names_both():
    with pytest.raises((RuntimeError, ValueError, TypeError), match="cpu.*cuda|cuda.*cpu"):
        fastnn.ones(3).to("cuda") + fastnn.ones(3)


def test_module_and_optimizer_state_on_the_device():
    import cupy
    model = nn.Linear(4, 3).to("cuda")
    optimizer = fastnn.optim.Adam(model.parameters(), lr=0.1)
    model(fastnn.randn(5, 4).to("cuda")).sum().backward()
    optimizer.step()
    arrays = [value.data if isinstance(value, fastnn.Tensor) else value
              for state in optimizer.state.values() for value in state.values() if not isinstance(value, (int, float))]
    assert arrays and all(isinstance(a, cupy.ndarray) for a in arrays)


def test_dropout_masks_follow_manual_seed():
    x = fastnn.ones(1000).to("cuda")
    fastnn.manual_seed(3)
    first = _host(nn.functional.dropout(x, 0.5, training=True))
    fastnn.manual_seed(3)
    again = _host(nn.functional.dropout(x, 0.5, training=True))
    np.testing.assert_array_equal(first, again)
    assert 400 < np.count_nonzero(first) < 600


# ---- every numba.cuda entry point on CuPy arrays against the CPU kernel --------------------------------
def _both(*arrays):
    import cupy
    return arrays, tuple(cupy.asarray(a) if isinstance(a, np.ndarray) else a for a in arrays)


def _compare(cpu_result, gpu_result, rtol=1e-5, atol=1e-6):
    import cupy
    cpu_result = cpu_result if isinstance(cpu_result, tuple) else (cpu_result,)
    gpu_result = gpu_result if isinstance(gpu_result, tuple) else (gpu_result,)
    for c, g in zip(cpu_result, gpu_result):
        np.testing.assert_allclose(cupy.asnumpy(g), c, rtol=rtol, atol=atol)


ELEMENTWISE = [("hardtanh", (-1.0, 1.0)), ("leaky_relu", (0.1,)), ("elu", (1.0, 1.0)), ("swish", (1.0,)),
               ("softplus", (1.0, 20.0)), ("mish", ()), ("gelu", (False,)), ("gelu", (True,)), ("sigmoid", ()),
               ("tanh", ())]


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("name,args", ELEMENTWISE)
def test_activation_kernels_match_cpu(name, args, dtype):
    cpu, gpu = _dispatch.kernels("cpu"), _dispatch.kernels("cuda")
    rng = np.random.default_rng(0)
    (x, g), (dx, dg) = _both(*(rng.standard_normal((2, 100_003)) * 3).astype(dtype))
    _compare(getattr(cpu, name + "_forward")(x, *args), getattr(gpu, name + "_forward")(dx, *args))
    _compare(getattr(cpu, name + "_backward")(g, x, *args), getattr(gpu, name + "_backward")(dg, dx, *args))


def test_norm_pool_index_kernels_match_cpu():
    cpu, gpu = _dispatch.kernels("cpu"), _dispatch.kernels("cuda")
    rng = np.random.default_rng(0)
    (x, w, b, g), (dx, dw, db, dg) = _both(rng.standard_normal((32, 64, 256)).astype(np.float32),
                                           rng.standard_normal(64).astype(np.float32),
                                           rng.standard_normal(64).astype(np.float32),
                                           rng.standard_normal((32, 64, 256)).astype(np.float32))
    y, mean, var = cpu.batch_norm_forward(x, w, b, 1e-5)
    _compare((y, mean, var), gpu.batch_norm_forward(dx, dw, db, 1e-5), rtol=1e-4, atol=1e-5)
    invstd = 1 / np.sqrt(var + 1e-5)
    _, (dmean, dinv) = _both(mean, invstd)
    first = gpu.batch_norm_backward(dg, dx, dmean, dinv, dw, True)
    _compare(cpu.batch_norm_backward(g, x, mean, invstd, w, True), first, rtol=1e-4, atol=1e-4)
    for a, again in zip(first, gpu.batch_norm_backward(dg, dx, dmean, dinv, dw, True)):  # bit-identical rerun
        assert bool((a == again).all())
    x2, dx2 = x.reshape(-1, 256), dx.reshape(-1, 256)
    (w2, b2, g2), (dw2, db2, dg2) = _both(*rng.standard_normal((3, 256)).astype(np.float32))
    y, m, s = cpu.layer_norm_forward(x2, w2, b2, 1e-5)
    _compare((y, m, s), gpu.layer_norm_forward(dx2, dw2, db2, 1e-5), rtol=1e-4, atol=1e-5)
    planes = x.reshape(-1, 16, 16)
    args = (3, 3, 2, 2, 1, 1, 1, 1, 8, 8)
    out, idx = cpu.max_pool2d_forward(planes, *args)
    _compare((out, idx), gpu.max_pool2d_forward(dx.reshape(-1, 16, 16), *args))
    _compare(cpu.avg_pool2d_forward(planes, 3, 3, 2, 2, 1, 1, 8, 8, True, 0),
             gpu.avg_pool2d_forward(dx.reshape(-1, 16, 16), 3, 3, 2, 2, 1, 1, 8, 8, True, 0))
    indices = rng.integers(0, 1000, 5000)
    (rows, vals), (drows, dvals) = _both(indices, rng.standard_normal((5000, 32)).astype(np.float32))
    _compare(cpu.embedding_backward(vals, rows, 1000), gpu.embedding_backward(dvals, drows, 1000), rtol=1e-4)


@pytest.mark.parametrize("name", ["sgd_step", "adam_step", "adagrad_step", "rmsprop_step", "nadam_step"])
def test_optimizer_kernels_match_cpu(name):
    """Through the optimizers: one step on CUDA equals the CPU's step."""
    cls, kwargs = {"sgd_step": (fastnn.optim.SGD, dict(lr=0.1, momentum=0.9, nesterov=True, weight_decay=0.01)),
                   "adam_step": (fastnn.optim.AdamW, dict(lr=0.01, amsgrad=True)),
                   "adagrad_step": (fastnn.optim.Adagrad, dict(lr=0.1)),
                   "rmsprop_step": (fastnn.optim.RMSprop, dict(lr=0.01, momentum=0.9, centered=True)),
                   "nadam_step": (fastnn.optim.NAdam, dict(lr=0.01))}[name]
    results = []
    for device in ("cpu", "cuda"):
        fastnn.manual_seed(0)
        model = nn.Linear(300, 200).to(device)
        optimizer = cls(model.parameters(), **kwargs)
        x = fastnn.tensor(np.random.default_rng(1).standard_normal((8, 300)).astype(np.float32)).to(device)
        for _ in range(3):
            optimizer.zero_grad()
            (model(x) ** 2).mean().backward()
            optimizer.step()
        results.append([_host(p) for p in model.parameters()])
    for a, b in zip(*results):
        np.testing.assert_allclose(b, a, rtol=1e-4, atol=1e-6)


# ---- whole training steps -------------------------------------------------------------------------------
def _train_steps(build, x, y, device, steps=1, lr=0.05):
    fastnn.manual_seed(0)
    model = build().to(device)
    optimizer = fastnn.optim.SGD(model.parameters(), lr=lr, momentum=0.9, weight_decay=5e-4)
    inputs, targets = fastnn.tensor(x).to(device), fastnn.tensor(y).to(device)
    losses = []
    for _ in range(steps):
        optimizer.zero_grad()
        loss = nn.functional.cross_entropy(model(inputs), targets)
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    return losses, [_host(p) for p in model.parameters()]


@pytest.mark.parametrize("build,shape", [(lambda: models.lenet5(), (64, 1, 28, 28)),
                                         (lambda: models.resnet20(), (32, 3, 32, 32))],
                         ids=["lenet5", "resnet20"])
def test_training_step_equals_cpu(build, shape):
    rng = np.random.default_rng(0)
    x, y = rng.standard_normal(shape).astype(np.float32), rng.integers(0, 10, shape[0])
    (cpu_loss, cpu_params), (gpu_loss, gpu_params) = (_train_steps(build, x, y, d) for d in ("cpu", "cuda"))
    assert gpu_loss == pytest.approx(cpu_loss, rel=1e-4)
    for a, b in zip(cpu_params, gpu_params):
        np.testing.assert_allclose(b, a, rtol=1e-4, atol=1e-4)


def test_lenet5_200_steps_on_fashion_mnist_reach_the_cpu_loss():
    from fastnn.data.datasets import fashion_mnist_arrays
    images, labels = fashion_mnist_arrays(train=True)
    order = np.random.default_rng(0).permutation(len(images))[:200 * 64].reshape(200, 64)
    final = {}
    for device in ("cpu", "cuda"):
        fastnn.manual_seed(0)
        model = models.lenet5().to(device)
        optimizer = fastnn.optim.SGD(model.parameters(), lr=0.05, momentum=0.9)
        data, targets = fastnn.tensor(images).to(device), fastnn.tensor(labels).to(device)
        losses = []
        for batch in order:
            index = fastnn.tensor(batch).to(device)
            optimizer.zero_grad()
            loss = nn.functional.cross_entropy(model(data[index]), targets[index])
            loss.backward()
            optimizer.step()
            losses.append(loss.item())
        final[device] = np.mean(losses[-20:])
    assert final["cuda"] < 0.9  # it learned (chance is ln 10 = 2.30)
    assert final["cuda"] == pytest.approx(final["cpu"], rel=0.02)

"""Shared test setup: hypothesis profiles and per-test isolation of fastnn's global state."""
import os

import numpy as np
import pytest
from hypothesis import HealthCheck, settings

import fastnn

# "ci" (the default): few, derandomized examples so the suite is fast and repeatable.
# HYPOTHESIS_PROFILE=dev explores more, with fresh random examples each run.
settings.register_profile("ci", max_examples=20, deadline=None, derandomize=True,
                          suppress_health_check=[HealthCheck.too_slow])
settings.register_profile("dev", max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))


@pytest.fixture(autouse=True)
def _isolate_global_state():
    """Every test starts from the same random seed with grad mode on, and leaves grad mode on."""
    fastnn.manual_seed(0)
    fastnn.set_grad_enabled(True)
    yield
    fastnn.set_grad_enabled(True)


# The twin backend (fastnn/_kernels/twin.py) stands in for a GPU: CuPy-like arrays that refuse NumPy, with the
# NumPy reference kernels. Tests that take the `device` fixture run on every registered device.
from fastnn import _dispatch  # noqa: E402
from fastnn._kernels.twin import TwinBackend  # noqa: E402

_dispatch.register("twin", TwinBackend)
DEVICES = _dispatch.registered()


@pytest.fixture(params=DEVICES)
def device(request):
    return request.param


def host(t):
    """A tensor's (or array's) values as a host ndarray, whatever its device."""
    return t.detach().numpy() if isinstance(t, fastnn.Tensor) else t


# ---- helpers shared by the op tests -----------------------------------------------------------------------------
def leaf(array, device="cpu"):
    """A float64 leaf tensor that requires grad, on `device`."""
    return fastnn.tensor(array, requires_grad=True, device=device)


def t(array, device="cpu", **kw):
    return fastnn.tensor(array, device=device, **kw)


def check(fn, arrays, expected, device, rtol=1e-12, atol=1e-12):
    """fn's forward on `device` equals `expected` (float64) and its gradients match finite differences for every
    input."""
    from fastnn.autograd import gradcheck
    inputs = [leaf(a, device) for a in arrays]
    out = fn(*inputs)
    assert out.dtype == np.float64 and out.device == device
    np.testing.assert_allclose(host(out), expected, rtol=rtol, atol=atol)
    assert gradcheck(fn, inputs)

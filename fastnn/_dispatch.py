"""The one place that knows devices: maps a device name to its kernel backend and moves arrays between them.

A backend is a module in fastnn/_kernels/ (cpu.py, later cuda.py) exposing the same kernel entry points.
Ops call `kernels(tensor.device).<kernel>(...)`; adding a device means adding a backend module here.
"""
import importlib

_BACKEND_MODULES = {"cpu": "fastnn._kernels.cpu"}
_loaded = {}


def validate_device(device):
    kind = device.split(":")[0]
    if kind == "cuda":
        raise RuntimeError("device 'cuda' is not available in this build of fastnn: only 'cpu' has kernels")
    if kind not in _BACKEND_MODULES:
        raise ValueError(f"unknown device {device!r}; expected one of {sorted(_BACKEND_MODULES)}")


def kernels(device):
    """The kernel backend module for `device` (imported on first use, so Numba loads lazily)."""
    backend = _loaded.get(device)
    if backend is None:
        validate_device(device)
        backend = _loaded[device] = importlib.import_module(_BACKEND_MODULES[device.split(":")[0]])
    return backend


def to_device(array, device):
    validate_device(device)
    return array


def set_num_threads(n):
    """Threads used by parallel kernels (Numba); defaults to all cores or NUMBA_NUM_THREADS."""
    import numba
    if not isinstance(n, int) or n < 1 or n > numba.config.NUMBA_NUM_THREADS:
        raise ValueError(f"num threads must be an int in [1, {numba.config.NUMBA_NUM_THREADS}], got {n!r}")
    numba.set_num_threads(n)


def get_num_threads():
    import numba
    return numba.get_num_threads()

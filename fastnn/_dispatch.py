"""The registry: the one place that knows which devices exist and maps a device to its Backend.

A device kind is registered with the module and class of its Backend (fastnn/_kernels/<kind>.py); the backend is
built on first use, so `import fastnn` loads no Numba (or CUDA) code. Adding a device is adding its backend file
and one line in _BACKENDS (or a `register` call, as the tests do for the twin backend).
"""
import importlib

_CUDA = ("fastnn._kernels.cuda", "CUDABackend")
_BACKENDS = {"cpu": ("fastnn._kernels.cpu", "CPUBackend"), "cuda": _CUDA}
# Entries above that serve only where their hardware is: their module's `available()` is asked on the first
# look-up (not at import: it imports CuPy), and an entry that answers False leaves _BACKENDS.
_PROBED = {"cuda": _CUDA}
# Devices fastnn knows of but cannot run here, with the reason given to the user.
_UNAVAILABLE = {"cuda": "device 'cuda' is not available: it needs an NVIDIA GPU, CuPy and numba-cuda "
                        "(pip install 'fastnn[cuda]')",
                "mps": "device 'mps' is not supported by fastnn"}
_instances = {}


class device:
    """A device: type ('cpu', 'cuda', ...) and optional index; compares equal to its string form, as in PyTorch."""
    __slots__ = ("type", "index")

    def __init__(self, type, index=None):
        if isinstance(type, device):
            type, index = type.type, type.index if index is None else index
        if not isinstance(type, str):
            raise TypeError(f"device must be a str or fastnn.device, got {type!r}")
        if ":" in type:
            if index is not None:
                raise ValueError(f"device {type!r} has an index already; got index={index!r} too")
            type, _, number = type.partition(":")
            if not number.isdigit():
                raise ValueError(f"invalid device string {type + ':' + number!r}: the index must be an int")
            index = int(number)
        if index is not None and (not isinstance(index, int) or isinstance(index, bool) or index < 0):
            raise ValueError(f"device index must be a non-negative int, got {index!r}")
        self.type, self.index = type, index

    def __str__(self):
        return self.type if self.index is None else f"{self.type}:{self.index}"

    def __repr__(self):
        return f"device(type={self.type!r}" + ("" if self.index is None else f", index={self.index}") + ")"

    def __eq__(self, other):
        if isinstance(other, str):
            other = _parse(other)
        if not isinstance(other, device):
            return NotImplemented
        return self.type == other.type and self.index == other.index

    def __hash__(self):
        return hash(str(self))


def _parse(name):
    try:
        return device(name)
    except (TypeError, ValueError):
        return None


def is_device_name(name):
    """Whether `name` names a device kind fastnn knows (runnable here or not), e.g. 'cpu', 'cuda:1'."""
    parsed = _parse(name)
    return parsed is not None and (parsed.type in _BACKENDS or parsed.type in _UNAVAILABLE)


def register(kind, backend_class):
    """Make device `kind` available, served by `backend_class` (a fastnn._kernels.backend.Backend subclass)."""
    _BACKENDS[kind] = backend_class
    _UNAVAILABLE.pop(kind, None)
    for key in [k for k in _instances if k.split(":")[0] == kind]:
        del _instances[key]


def unregister(kind):
    _BACKENDS.pop(kind, None)
    for key in [k for k in _instances if k.split(":")[0] == kind]:
        del _instances[key]


def _probe():
    while _PROBED:
        kind, entry = _PROBED.popitem()
        if _BACKENDS.get(kind) is entry and not importlib.import_module(entry[0]).available():
            del _BACKENDS[kind]


def registered():
    """The device kinds that can run here, 'cpu' first."""
    _probe()
    return list(_BACKENDS)


def backend(dev=None):
    """The Backend for `dev` (a str, a fastnn.device or None for 'cpu'), built on first use."""
    key = "cpu" if dev is None else str(dev)
    found = _instances.get(key)
    if found is not None:
        return found
    parsed = dev if isinstance(dev, device) else device(key)
    _probe()
    entry = _BACKENDS.get(parsed.type)
    if entry is None:
        if parsed.type in _UNAVAILABLE:
            raise RuntimeError(_UNAVAILABLE[parsed.type])
        raise ValueError(f"unknown device {key!r}; expected one of {registered()}")
    if isinstance(entry, tuple):
        module, name = entry
        entry = getattr(importlib.import_module(module), name)
    instance = entry(parsed.index)
    _instances[key] = instance
    instance.device = parsed
    return instance


def kernels(dev):
    """The kernel namespace of `dev`'s backend (entry points declared in fastnn/_kernels/interface.py)."""
    return backend(dev).kernels


def set_num_threads(n):
    """Threads used by the CPU's parallel kernels (Numba); defaults to all cores or NUMBA_NUM_THREADS."""
    backend("cpu").set_num_threads(n)


def get_num_threads():
    return backend("cpu").get_num_threads()

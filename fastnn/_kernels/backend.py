"""Backend: what a device kind provides to the ops above it (the minitorch TensorBackend idea).

- `xp`: the array namespace ops use for array creation and math on tensor data. fastnn's ops are written against
  NumPy's API as CuPy implements it (not the narrower Python array API standard): CuPy is the CUDA backend's
  namespace, and NumPy idioms such as methods, `out=` and integer-array indexing keep the CPU path fast. An op
  never calls NumPy itself on tensor data; it asks `tensor._backend.xp`.
- `kernels`: one callable per entry point of fastnn._kernels.interface.KERNELS; checked at construction.
- element-wise arithmetic on arrays (`binary`, `accumulate`): the backend's operators unless it has faster kernels.
- policies: `kernel_dtypes`, `conv_algorithm(...)`, threads, the RNG draws (`draw`), host transfer
  (`to_host`/`from_host`), `synchronize`.

A subclass sets the class attributes and overrides what differs; see cpu.py and twin.py.
"""
import inspect
import operator
import types

import numpy as np

from fastnn._kernels.interface import KERNELS


class Backend:
    kind = None                  # device type name: "cpu", "cuda", ...
    xp = None                    # array namespace
    array_types = ()             # the array classes this backend's tensors hold
    kernel_dtypes = (np.dtype(np.float32), np.dtype(np.float64))
    conv_algorithms = ()         # names `conv_algorithm` may return; users may also ask for one by name

    def __init__(self, index=None, kernels=None):
        self.index = index
        self.kernels = self._check_kernels(kernels)

    @classmethod
    def _check_kernels(cls, kernels):
        """A namespace with every declared entry point, or a TypeError naming what is missing or misdeclared."""
        missing = [name for name in KERNELS if not callable(getattr(kernels, name, None))]
        if missing:
            raise TypeError(f"backend {cls.kind!r} does not provide the kernel entry points {missing} "
                            f"(declared in fastnn/_kernels/interface.py)")
        namespace = types.SimpleNamespace()
        for name, declared in KERNELS.items():
            fn = getattr(kernels, name)
            params = _parameters(fn)
            if params is not None and params != declared:
                raise TypeError(f"backend {cls.kind!r}: kernel {name}{params} does not match its declaration "
                                f"{name}{declared}")
            setattr(namespace, name, fn)
        return namespace

    @property
    def device_name(self):
        return self.kind if self.index is None else f"{self.kind}:{self.index}"

    # ---- arrays -----------------------------------------------------------------------------------------
    def asarray(self, data, dtype=None):
        """`data` (host array, nested sequence or scalar, or an array of this backend) as this backend's array."""
        if isinstance(data, self.array_types):
            return data if dtype is None else data.astype(dtype, copy=False)
        return self.from_host(np.asarray(data, dtype=dtype))

    def from_host(self, array):
        raise NotImplementedError

    def to_host(self, array):
        """A host ndarray with the array's values (shares memory where the array already lives on the host)."""
        raise NotImplementedError

    def synchronize(self):
        """Wait for queued device work (a no-op where kernels run synchronously)."""

    # ---- element-wise arithmetic -------------------------------------------------------------------------
    def binary(self, op, a, b):
        """`a op b` for op "add", "sub", "mul" or "div" (true division), with xp's broadcasting and type rules."""
        return _OPERATORS[op](a, b)

    def accumulate(self, target, values):
        """target += values (a gradient accumulation); returns the sum: target itself when it is an array, which
        is updated in place, a new value when it is a NumPy scalar (a 0-d result of arithmetic)."""
        target += values
        return target

    # ---- policies ---------------------------------------------------------------------------------------
    def conv_algorithm(self, weight_shape, groups, stride, output_hw, backward=True):
        """A name from conv_algorithms for a conv2d of weight (Cout, Cin/groups, kh, kw) with output plane
        output_hw; `backward`: whether a backward pass will follow the forward (False: inference)."""
        return self.conv_algorithms[0]

    def draw(self, method, shape, dtype, generator=None, **params):
        """Random array of `shape` from fastnn's seeded generator (or `generator`), e.g. draw('random', ...),
        draw('standard_normal', ...), draw('integers', ..., low=0, high=10), draw('uniform', ..., low=, high=).
        The default draws on the host and transfers; a device with its own RNG overrides it."""
        from fastnn import random as _random
        gen = generator or _random.default_generator()
        if method in ("random", "standard_normal"):
            host = getattr(gen, method)(shape, dtype=np.dtype(dtype) if np.dtype(dtype).kind == "f" else None)
        else:
            host = getattr(gen, method)(size=shape, **params)
        return self.from_host(np.asarray(host, dtype=dtype))

    def set_num_threads(self, n):
        raise RuntimeError(f"device {self.kind!r} has no thread setting")

    def get_num_threads(self):
        return 1


_OPERATORS = {"add": operator.add, "sub": operator.sub, "mul": operator.mul, "div": operator.truediv}


def _parameters(fn):
    """'(a, b, c)' for a Python function or a Numba dispatcher; None when it cannot be inspected."""
    fn = getattr(fn, "py_func", fn)
    try:
        sig = inspect.signature(fn)
    except (TypeError, ValueError):
        return None
    return "(" + ", ".join(p.name for p in sig.parameters.values()) + ")"

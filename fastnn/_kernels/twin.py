"""The twin backend: a second device that CI can run, built to fail where a GPU backend would.

Its arrays (`TwinArray`) hold host memory but behave like CuPy's at the boundaries: they refuse implicit
conversion to NumPy (`np.asarray(a)` raises TypeError), refuse NumPy functions (`np.sum(a)`, `np.pad(a, ...)`)
and any operand that is a host ndarray, and cannot be handed to Numba kernels. Inside, its namespace `xp`
unwraps to NumPy, computes, and wraps the results, and its kernels are the plain-NumPy references (ref_*.py).
An op that still reaches for NumPy on tensor data, mixes in a host array or calls a CPU kernel directly fails on
this device exactly as it would on CUDA, so the op-level test suite run on "twin" proves the backend seam
without a GPU. Register it with `fastnn._dispatch.register("twin", TwinBackend)` (the tests do).
"""
import functools
import math
import types

import numpy as np

from fastnn._kernels import (ref_activation, ref_augment, ref_conv, ref_norm, ref_optim, ref_optim_adaptive,
                             ref_optim_more, ref_pool, ref_pool_nd)
from fastnn._kernels.backend import Backend
from fastnn._kernels.interface import KERNELS


def _unwrap(value):
    if isinstance(value, TwinArray):
        return value._a
    if isinstance(value, (tuple, list)):
        return type(value)(_unwrap(v) for v in value)
    if isinstance(value, dict):
        return {k: _unwrap(v) for k, v in value.items()}
    return value


def _wrap(value):
    if isinstance(value, np.ndarray):
        return TwinArray(value)
    if isinstance(value, np.generic):  # CuPy returns 0-d device arrays where NumPy returns scalars
        return TwinArray(np.asarray(value))
    if isinstance(value, tuple):
        return tuple(_wrap(v) for v in value)
    if isinstance(value, list):
        return [_wrap(v) for v in value]
    return value


def _refuse_host(values, what):
    for v in values:
        if isinstance(v, np.ndarray):
            raise TypeError(f"twin device: {what} got a host numpy.ndarray operand (shape {v.shape}); move it to "
                            f"the device first (a CUDA backend refuses host/device mixing the same way)")
        if isinstance(v, (tuple, list)):
            _refuse_host(v, what)


def _index(index):
    """An index for the underlying array: twin arrays unwrap; host integer/bool arrays are accepted as CuPy does."""
    return _unwrap(index)


class TwinArray:
    """A device array of the twin backend (see the module docstring)."""
    __slots__ = ("_a",)
    __array_priority__ = 2000

    def __init__(self, array):
        self._a = array

    # NumPy protocols: refuse implicit host conversion and NumPy functions, allow ufuncs among device arrays.
    def __array__(self, dtype=None, copy=None):
        raise TypeError("twin device: implicit conversion to a NumPy array is not allowed; use the backend's "
                        "to_host() (Tensor.numpy())")

    def __array_function__(self, func, types_, args, kwargs):
        raise TypeError(f"twin device: numpy.{func.__name__}() called on a device array; ops must use their "
                        f"tensor's backend namespace (tensor._backend.xp)")

    def __array_ufunc__(self, ufunc, method, *inputs, **kwargs):
        _refuse_host(inputs, f"numpy.{ufunc.__name__}")
        _refuse_host(kwargs.get("out", ()), f"numpy.{ufunc.__name__}(out=)")
        return _wrap(getattr(ufunc, method)(*_unwrap(inputs), **_unwrap(kwargs)))

    # attributes and methods forward to the underlying array, wrapping array results
    @property
    def shape(self):
        return self._a.shape

    @property
    def dtype(self):
        return self._a.dtype

    @property
    def ndim(self):
        return self._a.ndim

    @property
    def size(self):
        return self._a.size

    @property
    def flags(self):
        return self._a.flags

    @property
    def strides(self):
        return self._a.strides

    @property
    def itemsize(self):
        return self._a.itemsize

    @property
    def nbytes(self):
        return self._a.nbytes

    @property
    def T(self):
        return TwinArray(self._a.T)

    def __getattr__(self, name):
        if name.startswith("__"):  # no __array_interface__ & co: NumPy must not see the host buffer
            raise AttributeError(name)
        attr = getattr(self._a, name)
        if not callable(attr):
            return _wrap(attr)

        @functools.wraps(attr)
        def method(*args, **kwargs):
            _refuse_host(args, f"ndarray.{name}")
            return _wrap(attr(*_unwrap(args), **_unwrap(kwargs)))
        return method

    def __getitem__(self, index):
        return _wrap(self._a[_index(index)])

    def __setitem__(self, index, value):
        _refuse_host((value,), "item assignment")
        self._a[_index(index)] = _unwrap(value)

    def __len__(self):
        return len(self._a)

    def __iter__(self):
        return (_wrap(v) for v in self._a)

    def __repr__(self):
        return f"TwinArray({self._a!r})"

    def __float__(self):
        return float(self._a)

    def __int__(self):
        return int(self._a)

    def __bool__(self):
        return bool(self._a)

    def __index__(self):
        return self._a.__index__()

    def __hash__(self):
        return id(self)


def _operator(name):
    def op(self, *args):
        _refuse_host(args, f"operator {name}")
        return _wrap(getattr(self._a, name)(*_unwrap(args)))
    op.__name__ = name
    return op


for _name in ("add", "radd", "sub", "rsub", "mul", "rmul", "truediv", "rtruediv", "floordiv", "rfloordiv", "mod",
              "rmod", "pow", "rpow", "matmul", "rmatmul", "neg", "pos", "abs", "invert", "and", "rand", "or", "ror",
              "xor", "rxor", "eq", "ne", "lt", "le", "gt", "ge", "iadd", "isub", "imul", "itruediv", "ipow", "iand",
              "ior", "ixor", "lshift", "rshift"):
    setattr(TwinArray, f"__{_name}__", _operator(f"__{_name}__"))


class _Namespace(types.ModuleType):
    """The twin device's `xp`: NumPy's API (and its submodules' functions) on TwinArrays."""

    def __init__(self, module, name):
        super().__init__(name)
        self._module = module

    def __getattr__(self, name):
        attr = getattr(self._module, name)
        if isinstance(attr, types.ModuleType):
            return _Namespace(attr, f"{self.__name__}.{name}")
        if not callable(attr) or isinstance(attr, type):
            return attr  # constants, dtypes and scalar types (xp.float32, xp.newaxis, xp.pi)

        @functools.wraps(attr)
        def function(*args, **kwargs):
            _refuse_host(args, f"xp.{name}")
            return _wrap(attr(*_unwrap(args), **_unwrap(kwargs)))
        setattr(self, name, function)
        return function


xp = _Namespace(np, "fastnn._kernels.twin.xp")


def _reference_kernel(fn):
    @functools.wraps(fn)
    def kernel(*args):
        for a in args:
            if isinstance(a, np.ndarray):
                raise TypeError(f"twin device: kernel {fn.__name__} got a host numpy.ndarray argument "
                                f"(shape {a.shape})")
        return _wrap(fn(*_unwrap(args)))
    return kernel


def _conv2d_forward(x, w, b, stride, padding, dilation, groups, algorithm):
    return ref_conv.conv2d_forward(x, w, b, stride, padding, dilation, groups)


def _conv2d_backward(grad_out, x, w, stride, padding, dilation, groups, need_input, need_weight, need_bias,
                     algorithm):
    gx, gw, gb = ref_conv.conv2d_backward(grad_out, x, w, stride, padding, dilation, groups)
    return gx if need_input else None, gw if need_weight else None, gb if need_bias else None


def _scatter_add(target, index, values):
    np.add.at(target, index, values)


def _embedding_backward(grad_out, indices, num_embeddings):
    grad = np.zeros((num_embeddings, grad_out.shape[1]), grad_out.dtype)
    np.add.at(grad, indices, grad_out)
    return grad


def _erf(x):
    # independent of the CPU's scipy.special: Python's math.erf per element
    return np.vectorize(math.erf, otypes=[x.dtype])(x)


def _reference_namespace():
    own = {"conv2d_forward": _conv2d_forward, "conv2d_backward": _conv2d_backward, "scatter_add": _scatter_add,
           "embedding_backward": _embedding_backward, "erf": _erf}
    modules = (ref_activation, ref_augment, ref_norm, ref_optim, ref_optim_adaptive, ref_optim_more, ref_pool,
               ref_pool_nd)
    namespace = types.SimpleNamespace()
    for name in KERNELS:
        fn = own.get(name) or next((getattr(m, name) for m in modules if hasattr(m, name)), None)
        if fn is not None:
            setattr(namespace, name, _reference_kernel(fn))
    return namespace


class TwinBackend(Backend):
    kind = "twin"
    xp = xp
    array_types = (TwinArray,)
    conv_algorithms = ("reference",)

    def __init__(self, index=None):
        super().__init__(index, _reference_namespace())

    def from_host(self, array):
        if isinstance(array, TwinArray):
            return array
        return TwinArray(np.array(array, copy=True))

    def to_host(self, array):
        return np.array(array._a, copy=True)

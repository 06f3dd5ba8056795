"""The CUDA backend: CuPy arrays on an NVIDIA GPU, numba.cuda kernels (cuda_*.py), and the GPU's policies.

- xp is CuPy: NumPy's API on device memory, cuBLAS for matmul, and a memory pool, so a training step does not
  call cudaMalloc once warm. Tensors hold cupy.ndarray; nothing in a forward, backward or optimizer step goes
  through the host.
- kernels: the numba.cuda entry points of cuda_activation, cuda_optim, cuda_norm, cuda_pool(_nd), cuda_index,
  cuda_augment take
  the CuPy arrays through __cuda_array_interface__ and launch on the default stream, which CuPy also uses (so no
  synchronisation is needed between them; numba's per-launch stream sync on those arrays is switched off).
  Convolution is GEMMs through cupy.matmul (cuda_conv.py, im2col or direct by `conv_algorithm`). The entry
  points served without a CUDA kernel are FALLBACKS (their NumPy references, run by CuPy through NumPy's
  dispatch protocols); entry points declared after this file was written raise NotImplementedError naming
  themselves (missing() lists them).
- draw: CuPy's Philox4x32-10 generator (counter-based, cuRAND), seeded from fastnn's host generator, one
  device generator per host generator, so fastnn.manual_seed(s) gives the same dropout masks every run.

Nothing here imports CuPy or numba.cuda at module level: `available()` is what the registry asks (it imports
CuPy, only when a CUDA device is first looked up), and the kernels load when the backend is built.
"""
import functools
import importlib
import inspect
import types
import weakref

import numpy as np

from fastnn._kernels.backend import Backend
from fastnn._kernels.interface import KERNELS

_INSTALL = "pip install 'fastnn[cuda]'"

# Entry points served by their NumPy reference run on CuPy arrays: every call in them is a ufunc or a NumPy
# function CuPy overrides (__array_ufunc__ / __array_function__), and they create no host array, so they run
# on the GPU unchanged (tests/test_cuda_sim.py checks this with arrays that refuse host conversion).
FALLBACKS = {"softmax_forward": "ref_activation", "softmax_backward": "ref_activation",
             "local_response_norm_forward": "ref_norm", "local_response_norm_backward": "ref_norm",
             "adadelta_step": "ref_optim_more", "adamax_step": "ref_optim_more", "radam_step": "ref_optim_more",
             "asgd_step": "ref_optim_more", "rprop_step": "ref_optim_more", "sparse_adam_step": "ref_optim_more"}


@functools.lru_cache(maxsize=None)
def available():
    """Whether CuPy imports and sees a CUDA device (False, never an error, without either)."""
    try:
        import cupy
        return cupy.cuda.runtime.getDeviceCount() > 0
    except Exception:  # ImportError, or CUDARuntimeError without a driver/device
        return False


def _import_cupy():
    try:
        import cupy
    except ImportError as exc:
        raise ImportError(f"the CUDA backend needs CuPy: {_INSTALL}") from exc
    return cupy


def _erf(x):
    import cupyx.scipy.special
    return cupyx.scipy.special.erf(x).astype(x.dtype, copy=False)


def _not_yet(name):
    """An entry point that says it is missing when called, with the declared parameters (checked by Backend)."""
    def kernel(*args):
        raise NotImplementedError(f"fastnn's CUDA backend has no kernel for {name!r} yet (issue 16); run this op "
                                  f"on the CPU (tensor.cpu())")
    kernel.__name__ = name
    kernel.not_implemented = True
    kernel.__signature__ = inspect.Signature(
        [inspect.Parameter(p, inspect.Parameter.POSITIONAL_OR_KEYWORD)
         for p in KERNELS[name].split(")")[0].lstrip("(").split(", ")])
    return kernel


def kernel_namespace():
    """The CUDA kernels (numba.cuda, imported here) and the fallbacks, one per declared entry point."""
    from fastnn._kernels import (cuda_activation, cuda_augment, cuda_conv, cuda_index, cuda_norm, cuda_optim,
                                 cuda_pool, cuda_pool_nd)
    namespace = types.SimpleNamespace(erf=_erf, conv2d_forward=cuda_conv.conv2d_forward,
                                      conv2d_backward=cuda_conv.conv2d_backward)
    for module in (cuda_activation, cuda_augment, cuda_index, cuda_norm, cuda_optim, cuda_pool, cuda_pool_nd):
        for name in module.__all__:
            setattr(namespace, name, getattr(module, name))
    for name, module in FALLBACKS.items():
        setattr(namespace, name, getattr(importlib.import_module(f"fastnn._kernels.{module}"), name))
    # entry points declared after this backend was written say so when called
    for name in KERNELS:
        if not hasattr(namespace, name):
            setattr(namespace, name, _not_yet(name))
    return namespace


def missing():
    """The declared entry points the CUDA backend does not implement yet (declared after it was written)."""
    namespace = kernel_namespace()
    return [name for name in KERNELS if getattr(getattr(namespace, name), "not_implemented", False)]


class CUDABackend(Backend):
    kind = "cuda"
    conv_algorithms = ("im2col", "direct")

    def __init__(self, index=None):
        cupy = _import_cupy()
        try:
            from numba import cuda as numba_cuda
        except ImportError as exc:
            raise ImportError(f"the CUDA backend needs numba-cuda: {_INSTALL}") from exc
        if not available():
            raise RuntimeError("device 'cuda' is not available: CuPy sees no CUDA device")
        count = cupy.cuda.runtime.getDeviceCount()
        if index is not None and index >= count:
            raise RuntimeError(f"device 'cuda:{index}' is not available: {count} CUDA device(s) present")
        self._device = cupy.cuda.Device(index or 0)
        self._device.use()
        numba_cuda.select_device(index or 0)
        # Kernels and CuPy share the default stream, so numba's host wait on each argument's exported stream
        # (a synchronisation per launch) is redundant: off, in numba's config and in numba-cuda's own.
        for config in ("numba.core.config", "numba.cuda.core.config"):
            try:
                importlib.import_module(config).CUDA_ARRAY_INTERFACE_SYNC = False
            except ImportError:
                pass
        self.xp = cupy
        self.array_types = (cupy.ndarray,)
        self._generators = weakref.WeakKeyDictionary()
        super().__init__(index, kernel_namespace())

    # ---- arrays ---------------------------------------------------------------------------------------
    def from_host(self, array):
        with self._device:
            return self.xp.asarray(array)

    def to_host(self, array):
        return self.xp.asnumpy(array)

    def synchronize(self):
        self._device.synchronize()

    def device_count(self):
        return self.xp.cuda.runtime.getDeviceCount()

    # ---- policies -------------------------------------------------------------------------------------
    def conv_algorithm(self, weight_shape, groups, stride, output_hw, backward=True):
        from fastnn._kernels.cuda_conv import choose_algorithm
        return choose_algorithm(weight_shape, groups, stride, output_hw, backward=backward)

    def _generator(self, host):
        """The device generator that follows `host` (a NumPy Generator): Philox keyed by one draw from it."""
        device_gen = self._generators.get(host)
        if device_gen is None:
            from cupy.cuda import curand
            seed = int(host.integers(2 ** 63))
            device_gen = self.xp.random.RandomState(seed, method=curand.CURAND_RNG_PSEUDO_PHILOX4_32_10)
            self._generators[host] = device_gen
        return device_gen

    def draw(self, method, shape, dtype, generator=None, **params):
        from fastnn import random as _random
        gen = self._generator(generator or _random.default_generator())
        dtype = np.dtype(dtype)
        # cuRAND draws floats in float32/float64 only; other dtypes are drawn in float64 and cast
        float_dtype = dtype if dtype in (np.float32, np.float64) else np.dtype(np.float64)
        if method == "random":
            out = gen.random_sample(shape, dtype=float_dtype)
        elif method == "standard_normal":
            out = gen.standard_normal(shape, dtype=float_dtype)
        elif method == "uniform":
            out = gen.uniform(params.get("low", 0.0), params.get("high", 1.0), shape, dtype=float_dtype)
        elif method == "normal":
            out = gen.normal(params.get("loc", 0.0), params.get("scale", 1.0), shape, dtype=float_dtype)
        elif method == "integers":
            out = gen.randint(params.get("low", 0), params.get("high"), shape, dtype=np.int64)
        else:
            raise ValueError(f"draw: unknown method {method!r}")
        return out.astype(dtype, copy=False)

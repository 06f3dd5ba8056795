"""Compile every numba.cuda kernel of fastnn/_kernels/cuda_*.py to PTX for a real GPU (sm_90, H100/H200) with
the argument types the simulator checks launch it with, on a machine without a GPU.

The simulator (tests/cuda_sim_checks.py) runs the kernels as Python, so it cannot catch what only numba's CUDA
compiler sees: typing errors, unsupported functions, integer/float unification. Here each kernel launch of the
simulator checks is replaced by numba.cuda.compile_ptx(kernel, the launch's argument types); results are
garbage (nothing runs), so the checks' assertions are switched off (run with python -O). Needs numba-cuda with
NVVM (pip install 'numba-cuda[cu12]'); prints one JSON object: {"compiled": [...], "failed": {kernel: error},
"not_launched": [...]}, or {"__skip__": reason}.
"""
import json
import os
import sys
import traceback

import numpy as np


def main():
    assert not os.environ.get("NUMBA_ENABLE_CUDASIM"), "the real CUDA target is needed, not the simulator"
    try:
        import numba
        from numba import cuda
        if "numba_cuda" not in cuda.__file__:
            # numba's own, deprecated CUDA target (numba <= 0.6x) mis-types device functions calling device
            # functions under compile_ptx here; fastnn[cuda] installs numba-cuda, which is what is checked
            raise ImportError("numba.cuda is numba's deprecated built-in target, not the numba-cuda package")
        cuda.compile_ptx(lambda a: None, (numba.float32[::1],), cc=(9, 0))
    except Exception as exc:  # no numba.cuda, or no NVVM library
        print(json.dumps({"__skip__": f"cannot compile PTX here ({type(exc).__name__}: {str(exc)[:200]})"}))
        return
    from numba.cuda import dispatcher as cuda_dispatcher
    from numba.cuda.dispatcher import CUDADispatcher

    class _H200:  # device functions compile for the current device's capability: no device here, so sm_90's
        compute_capability = (9, 0)
    cuda_dispatcher.get_current_device = lambda: _H200

    from fastnn._kernels import (cuda_activation, cuda_augment, cuda_index, cuda_norm, cuda_optim, cuda_pool,
                                 cuda_pool_nd)
    compiled, failed = {}, {}

    class Compiling:
        def __init__(self, name, dispatcher):
            self.name, self.dispatcher = name, dispatcher

        def __getitem__(self, config):
            def launch(*args):
                sig = tuple(numba.typeof(a) for a in args)
                key = f"{self.name}{sig}"
                if key not in compiled and key not in failed:
                    try:
                        cuda.compile_ptx(self.dispatcher.py_func, sig, cc=(9, 0))
                        compiled[key] = self.name
                    except Exception as exc:
                        failed[key] = f"{type(exc).__name__}: {str(exc)[-1500:]}"
            return launch

    kernels = {}
    for module in (cuda_activation, cuda_augment, cuda_index, cuda_norm, cuda_optim, cuda_pool, cuda_pool_nd):
        for attr, value in list(vars(module).items()):
            if isinstance(value, CUDADispatcher) and not value.targetoptions.get("device"):
                name = f"{module.__name__.rsplit('.', 1)[1]}.{attr}"
                kernels[name] = value
                setattr(module, attr, Compiling(name, value))
            elif attr == "_K":  # the activation kernels' table: name -> (forward, backward)
                for key, pair in value.items():
                    value[key] = tuple(Compiling(f"{module.__name__.rsplit('.', 1)[1]}.{key}[{i}]", k)
                                       if isinstance(k, CUDADispatcher) else k for i, k in enumerate(pair))
                    kernels.update({f"{module.__name__.rsplit('.', 1)[1]}.{key}[{i}]": k
                                    for i, k in enumerate(pair) if isinstance(k, CUDADispatcher)})
    for name in [n for n in dir(np.testing) if n.startswith("assert_")]:
        setattr(np.testing, name, lambda *a, **k: None)  # outputs are garbage: nothing ran

    sys.path.insert(0, os.path.dirname(__file__))
    import cuda_sim_checks
    errors = {}
    for name, fn in cuda_sim_checks.CHECKS.items():
        if name in ("kernel_namespace_complete",):
            continue
        try:
            with np.errstate(all="ignore"):
                fn()
        except Exception:
            errors[name] = traceback.format_exc()[-800:]
    launched = set(compiled.values()) | {key.split("(")[0] for key in failed}
    print(json.dumps({"compiled": sorted(compiled), "failed": failed, "check_errors": errors,
                      "not_launched": sorted(set(kernels) - launched)}))


if __name__ == "__main__":
    main()

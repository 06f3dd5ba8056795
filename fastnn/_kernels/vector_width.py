"""Full-width vectors on AVX-512 hosts.

LLVM tunes every AVX-512 CPU it knows (Skylake-SP to Sapphire Rapids, Zen 4) to prefer 256-bit vectors (its
"prefer-256-bit" tuning: older Xeons lower their clock while running 512-bit instructions), so Numba compiles
fastnn's kernels there for half the vector width the host has, the width oneDNN's kernels in PyTorch use on the
same host (checked with inspect_asm: a float32 FMA loop compiled for skylake-avx512 uses ymm registers only, and
zmm once the tuning is off; tests/test_vector_width.py). Unless the user chose a target (NUMBA_CPU_FEATURES
or NUMBA_CPU_NAME), fastnn asks Numba for the host's own features without that tuning when its CPU backend
(cpu.py) loads, before the kernel modules define their functions. Numba fixes its target when the first jitted
function of the process is defined, so where the user's own code defined one before fastnn's first op, that
choice stands. AVX2 hosts are left exactly as they are.
"""
import os
import sys

PREFER_256 = "-prefer-256-bit"


def full_width_features(host_features):
    """Numba's feature string for a host with `host_features` (LLVM's name -> bool map) that lets LLVM use
    512-bit vectors, or None where the host has no AVX-512 (nothing to change)."""
    if not host_features.get("avx512f"):
        return None
    return ",".join(("+" if on else "-") + name for name, on in sorted(host_features.items())) + "," + PREFER_256


def use_full_width():
    """Set NUMBA_CPU_FEATURES for this process as described above (before fastnn's first kernel compiles)."""
    if "NUMBA_CPU_FEATURES" in os.environ or "NUMBA_CPU_NAME" in os.environ:
        return  # the user's choice of target
    import llvmlite.binding as llvm
    features = full_width_features(dict(llvm.get_host_cpu_features()))
    if features is not None:
        os.environ["NUMBA_CPU_FEATURES"] = features  # read when Numba is imported; worker processes inherit it
        config = sys.modules.get("numba.core.config")
        if config is not None:
            # Numba was imported already and read its environment before this: have it read it again now, not at
            # the next compile, where the reload resets settings made in code for that compile (see with_slp).
            config.reload_config()


def compile_features():
    """The set of LLVM feature flags ('+avx512f', '-prefer-256-bit', ...) Numba compiles for: its CPU_FEATURES
    (fastnn's, see use_full_width, or the user's), else the host's own. Settled first: the kernel modules ask
    when imported, which may come before the CPU backend's import (a script importing fastnn._kernels.cpu_conv)."""
    use_full_width()
    from numba.core import config
    if config.CPU_FEATURES:
        return set(config.CPU_FEATURES.split(","))
    import llvmlite.binding as llvm
    return {"+" + name for name, on in llvm.get_host_cpu_features().items() if on}


def full_width_target():
    """Whether Numba compiles for 512-bit vectors: its target has AVX-512 and LLVM's prefer-256-bit tuning off
    (fastnn's features above, or the user's own that say so). The register-blocked conv sizes its blocks by it."""
    features = compile_features()
    return "+avx512f" in features and PREFER_256 in features

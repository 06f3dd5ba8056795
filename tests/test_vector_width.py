"""fastnn asks for 512-bit vectors on AVX-512 hosts (fastnn/_kernels/vector_width.py).

This host may have no AVX-512, so kernels are compiled (never run) for skylake-avx512 in a subprocess and their
assembly is read: with LLVM's default tuning they use ymm registers only, with fastnn's features zmm.
"""
import os
import subprocess
import sys

import pytest

from fastnn._kernels.vector_width import PREFER_256, full_width_features, use_full_width

AVX2_HOST = {"avx": True, "avx2": True, "fma": True, "avx512f": False, "sse4.2": True}
AVX512_HOST = {**AVX2_HOST, "avx512f": True, "avx512bw": True, "avx512dq": True, "avx512vl": True, "avx512cd": True}

COMPILE_FOR_SKYLAKE_X = """
import re, numba
from fastnn._kernels import cpu_activation
sig = (numba.float32[::1], numba.float32, numba.float32)
cpu_activation.hardtanh_forward.compile(sig)
asm = cpu_activation.hardtanh_forward.inspect_asm(sig)
print(len(re.findall(r"\\bzmm\\d+", asm)), len(re.findall(r"\\bymm\\d+", asm)))
"""


def test_features_change_only_avx512_hosts():
    assert full_width_features(AVX2_HOST) is None  # AVX2 hosts compile exactly as before
    features = full_width_features(AVX512_HOST).split(",")
    assert features[-1] == PREFER_256 == "-prefer-256-bit"
    assert {"+avx512f", "+avx512bw", "+avx2", "+fma"} <= set(features)


def test_the_users_target_choice_is_kept(monkeypatch):
    monkeypatch.setenv("NUMBA_CPU_FEATURES", "+avx2")
    use_full_width()
    assert os.environ["NUMBA_CPU_FEATURES"] == "+avx2"
    monkeypatch.delenv("NUMBA_CPU_FEATURES")
    monkeypatch.setenv("NUMBA_CPU_NAME", "generic")  # a portable cache: features follow the named CPU
    use_full_width()
    assert "NUMBA_CPU_FEATURES" not in os.environ


def _registers_compiled_for_skylake_x(tmp_path, features):
    env = {**os.environ, "NUMBA_CPU_NAME": "skylake-avx512", "NUMBA_CPU_FEATURES": features,
           "NUMBA_CACHE_DIR": str(tmp_path)}
    done = subprocess.run([sys.executable, "-c", COMPILE_FOR_SKYLAKE_X], env=env, capture_output=True, text=True,
                          timeout=300)
    assert done.returncode == 0, done.stderr
    zmm, ymm = map(int, done.stdout.split()[-2:])
    return zmm, ymm


@pytest.mark.parametrize("tuned_off", [False, True])
def test_kernels_compile_to_zmm_only_without_the_256_bit_tuning(tmp_path, tuned_off):
    features = full_width_features(AVX512_HOST)
    if not tuned_off:
        features = features.removesuffix("," + PREFER_256)
    zmm, ymm = _registers_compiled_for_skylake_x(tmp_path, features)
    if tuned_off:
        assert zmm > 0  # 16 float32 lanes per instruction
    else:
        assert zmm == 0 and ymm > 0  # LLVM's default for this CPU: 8 lanes

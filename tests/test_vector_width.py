"""fastnn asks for 512-bit vectors on AVX-512 hosts (fastnn/_kernels/vector_width.py).

This host may have no AVX-512, so a subprocess pretends to be one (LLVM's host feature query patched), imports
fastnn the way a user's script does, compiles a kernel (never runs it) for skylake-avx512 and reads its assembly:
with LLVM's default tuning the loop uses ymm registers only, with fastnn's features zmm.
"""
import os
import subprocess
import sys

import pytest

from fastnn._kernels.vector_width import PREFER_256, full_width_features, full_width_target, use_full_width

AVX2_HOST = {"avx": True, "avx2": True, "fma": True, "avx512f": False, "sse4.2": True}
AVX512 = {"avx512f": True, "avx512bw": True, "avx512dq": True, "avx512vl": True, "avx512cd": True}

COMPILE_AS_SKYLAKE_X = """
import re
import numba  # imported before fastnn, as a user's script may
import llvmlite.binding as llvm
from numba.core import config
host = llvm.get_host_cpu_features()
for name in %r:
    host[name] = True
llvm.get_host_cpu_features = lambda: host  # pretend to be an AVX-512 host
config.CPU_NAME = "skylake-avx512"  # and compile (never run) for such a CPU
import fastnn
fastnn._dispatch.backend("cpu")  # loads the CPU backend (as a first op does), running no kernel
from fastnn._kernels import cpu_activation
sig = (numba.float32[::1], numba.float32, numba.float32, numba.float32[::1])
cpu_activation.hardtanh_forward.compile(sig)
asm = cpu_activation.hardtanh_forward.inspect_asm(sig)
print(len(re.findall(r"\\bzmm\\d+", asm)), len(re.findall(r"\\bymm\\d+", asm)))
""" % (sorted(AVX512),)


def test_features_change_only_avx512_hosts():
    assert full_width_features(AVX2_HOST) is None  # AVX2 hosts compile exactly as before
    features = full_width_features({**AVX2_HOST, **AVX512}).split(",")
    assert features[-1] == PREFER_256 == "-prefer-256-bit"
    assert {"+avx512f", "+avx512bw", "+avx2", "+fma"} <= set(features)


def test_full_width_target_reads_numbas_features(monkeypatch):
    from numba.core import config
    monkeypatch.setattr(config, "CPU_FEATURES", full_width_features({**AVX2_HOST, **AVX512}))
    assert full_width_target()  # fastnn's choice: 32-pixel conv blocks
    monkeypatch.setattr(config, "CPU_FEATURES", "+avx512f,+avx2,+fma")  # the user's, LLVM's tuning kept
    assert not full_width_target()
    monkeypatch.setattr(config, "CPU_FEATURES", None)  # the host's own (an AVX2 host, or a named CPU)
    assert not full_width_target()


def test_the_users_target_choice_is_kept(monkeypatch):
    monkeypatch.setenv("NUMBA_CPU_FEATURES", "+avx2")
    use_full_width()
    assert os.environ["NUMBA_CPU_FEATURES"] == "+avx2"
    monkeypatch.delenv("NUMBA_CPU_FEATURES")
    monkeypatch.setenv("NUMBA_CPU_NAME", "generic")  # a portable cache: features follow the named CPU
    use_full_width()
    assert "NUMBA_CPU_FEATURES" not in os.environ


@pytest.mark.parametrize("users_features", [None, "+avx512f,+avx512bw,+avx512dq,+avx512vl,+avx2,+fma,+avx"])
def test_kernels_compile_to_zmm_unless_the_user_chose_features(tmp_path, users_features):
    env = {key: value for key, value in os.environ.items() if key not in ("NUMBA_CPU_NAME", "NUMBA_CPU_FEATURES")}
    env["NUMBA_CACHE_DIR"] = str(tmp_path)
    if users_features:
        env["NUMBA_CPU_FEATURES"] = users_features  # LLVM's tuning for the CPU kept: 256-bit vectors
    done = subprocess.run([sys.executable, "-c", COMPILE_AS_SKYLAKE_X], env=env, capture_output=True, text=True,
                          timeout=300)
    assert done.returncode == 0, done.stderr
    zmm, ymm = map(int, done.stdout.split()[-2:])
    if users_features:
        assert zmm == 0 and ymm > 0  # LLVM's default for this CPU: 8 float32 lanes
    else:
        assert zmm > 0  # 16 lanes per instruction


SETTING_SURVIVES_A_COMPILE = """
import numba  # imported before fastnn, as a user's script may
import llvmlite.binding as llvm
host = llvm.get_host_cpu_features()
for name in %r:
    host[name] = True
llvm.get_host_cpu_features = lambda: host  # pretend to be an AVX-512 host: fastnn sets NUMBA_CPU_FEATURES
import fastnn
fastnn._dispatch.backend("cpu")
numba.config.SLP_VECTORIZE = 1  # what variants.with_slp sets around a compile
numba.njit(lambda a: a + 1).compile((numba.float32,))  # never run: compiled for the pretended host
print(numba.config.SLP_VECTORIZE)
""" % (sorted(AVX512),)


def test_numba_settings_made_in_code_survive_the_next_compile(tmp_path):
    # Numba re-reads its whole environment at a compile when a NUMBA_ variable changed since it last read it,
    # resetting settings made in code: fastnn's NUMBA_CPU_FEATURES on AVX-512 hosts must not be such a change,
    # or the first register-blocked kernel compiled by with_slp lost its SLP vectorizer (scalar FMAs, ~13x
    # slower, then cached so).
    env = {key: value for key, value in os.environ.items() if key not in ("NUMBA_CPU_NAME", "NUMBA_CPU_FEATURES")}
    env["NUMBA_CACHE_DIR"] = str(tmp_path)
    done = subprocess.run([sys.executable, "-c", SETTING_SURVIVES_A_COMPILE], env=env, capture_output=True,
                          text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    assert done.stdout.split()[-1] == "1"

#!/usr/bin/env bash
# The real-GPU check of the CUDA backend (issue 16), one call on a machine with an NVIDIA GPU whose image already
# has numba, numba-cuda, CuPy and PyTorch with CUDA (nothing is installed here). At most 11 minutes of limits (about 8 expected) on an H200:
#   1. environment: versions, device, that fastnn registered 'cuda';
#   2. tests/test_cuda_device.py (kernels on CuPy vs CPU, LeNet-5/resnet20 steps vs CPU, 200 Fashion-MNIST steps);
#   3. tests/test_cuda_sim.py (the simulator checks still pass beside the real device);
#   4. the backend-parametrized op suite with device="cuda" (conftest's `device` fixture), -k cuda;
#   5. bench/bench_cuda.py, whose table is printed last.
# Each step has its own time limit and the script goes on after a failure; the step results come before the table.
# Usage: bash bench/gpu_check.sh [--quick]   (--quick: a shorter bench)
set -u
cd "$(dirname "$0")/.."
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"
PY=${PYTHON:-python}
LOG=${GPU_CHECK_LOG:-/tmp/fastnn_gpu_check}
mkdir -p "$LOG"
declare -a RESULTS

step() {  # step NAME TIMEOUT_S COMMAND...
    local name=$1 limit=$2; shift 2
    echo "=== $name (limit ${limit}s) ==="
    local start=$SECONDS
    timeout "$limit" "$@" 2>&1 | tee "$LOG/$name.log" | tail -n 25
    local rc=${PIPESTATUS[0]}
    RESULTS+=("$(printf '%-28s rc=%-4s %4ss  %s' "$name" "$rc" "$((SECONDS - start))" \
                "$(grep -E '(passed|failed|error|skipped)' "$LOG/$name.log" | tail -n 1)")")
}

step environment 60 "$PY" -c "
import numba, cupy, fastnn
from numba import cuda
print('numba', numba.__version__, 'numba.cuda', cuda.__file__, 'cupy', cupy.__version__)
print('device', cupy.cuda.runtime.getDeviceProperties(0)['name'].decode(), 'count', cupy.cuda.runtime.getDeviceCount())
print('fastnn devices', fastnn._dispatch.registered(), 'cuda available', fastnn.cuda.is_available())
from fastnn._kernels import cuda as c; print('CUDA entry points not implemented yet:', c.missing())
try:
    import torch; print('torch', torch.__version__, 'cuda', torch.cuda.is_available())
except ImportError:
    print('torch: not installed')
"
step device_tests 200 "$PY" -m pytest -q -p no:cacheprovider -rs tests/test_cuda_device.py
step simulator_tests 60 "$PY" -m pytest -q -p no:cacheprovider tests/test_cuda_sim.py
# the op-level suite on device="cuda"; tests asserting that CUDA is absent are expected to fail here
step op_suite_on_cuda 120 "$PY" -m pytest -q -p no:cacheprovider --maxfail=30 -k "cuda and not cuda_device and not cuda_sim" tests/
step bench 200 "$PY" bench/bench_cuda.py "$@" --json "$LOG/bench_cuda.json"

echo
echo "=== gpu_check steps (logs in $LOG) ==="
printf '%s\n' "${RESULTS[@]}"
echo
sed -n '/^== summary/,$p' "$LOG/bench.log"

"""Cold start: import the framework, build LeNet-5 and run its first training step (forward, backward, SGD step)
on one batch of 64 random images; prints one JSON line with the seconds spent inside the script.

    python bench/first_step.py --framework fastnn|torch [--threads N]

bench/run.py times this whole process from launch to exit, after one earlier run has filled Numba's kernel cache.
"""
import time

SCRIPT_START = time.perf_counter()

import argparse  # noqa: E402
import json  # noqa: E402
import os  # noqa: E402
import sys  # noqa: E402
from pathlib import Path  # noqa: E402

BENCH_DIR = Path(__file__).resolve().parent
sys.path[:0] = [str(BENCH_DIR), str(BENCH_DIR.parent)]  # the benchmark helpers and this source tree's fastnn


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--framework", choices=["fastnn", "torch"], required=True)
    parser.add_argument("--threads", type=int, default=os.cpu_count())
    args = parser.parse_args(argv)

    import numpy as np

    import _lenet
    if args.framework == "fastnn":
        import fastnn
        fastnn.set_num_threads(args.threads)
    else:
        import torch
        torch.set_num_threads(args.threads)
    rng = np.random.default_rng(_lenet.SEED)
    images = rng.standard_normal((_lenet.BATCH_SIZE, 1, 28, 28), dtype=np.float32)
    labels = rng.integers(0, 10, _lenet.BATCH_SIZE)
    _, step = _lenet.TRAINERS[args.framework]()
    loss = step(images, labels)
    print(json.dumps({"framework": args.framework, "loss": loss, "script_s": time.perf_counter() - SCRIPT_START}))


if __name__ == "__main__":
    main()

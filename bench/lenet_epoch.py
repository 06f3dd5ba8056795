"""One LeNet-5 training epoch on Fashion-MNIST in a process of its own; prints one JSON line of results.

    python bench/lenet_epoch.py --framework fastnn|torch [--threads N] [--limit IMAGES] [--max-steps K]

Reports the epoch's wall time (after WARMUP_STEPS steps on a throw-away model, which load or compile the
kernels), its mean loss, and the process's peak resident memory (VmHWM, and ru_maxrss), which covers the
interpreter, the framework import, the data arrays and training. Only the chosen framework is imported.
"""
import argparse
import json
import os
import resource
import sys
import time
from pathlib import Path

BENCH_DIR = Path(__file__).resolve().parent
sys.path[:0] = [str(BENCH_DIR), str(BENCH_DIR.parent)]  # the benchmark helpers and this source tree's fastnn
from _timing import peak_memory_mib, pin_threads  # noqa: E402

WARMUP_STEPS = 3


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--framework", choices=["fastnn", "torch"], required=True)
    parser.add_argument("--threads", type=int, default=os.cpu_count())
    parser.add_argument("--limit", type=int, default=None, help="train on the first LIMIT images only")
    parser.add_argument("--max-steps", type=int, default=None, help="stop the epoch after this many steps")
    args = parser.parse_args(argv)
    pin_threads(args.threads)

    import _lenet
    start = time.perf_counter()
    if args.framework == "fastnn":
        import fastnn
        fastnn.set_num_threads(args.threads)
    else:
        import torch
        torch.set_num_threads(args.threads)
    import_s = time.perf_counter() - start

    images, labels = _lenet.load_fashion_mnist(args.limit)
    order = _lenet.batch_order(len(images))
    if args.max_steps is not None:
        order = order[:args.max_steps * _lenet.BATCH_SIZE]
    trainer = _lenet.TRAINERS[args.framework]

    start = time.perf_counter()
    _, warmup_step = trainer()
    for i in range(WARMUP_STEPS):
        batch = order[i * _lenet.BATCH_SIZE:(i + 1) * _lenet.BATCH_SIZE]
        warmup_step(images[batch], labels[batch])
    warmup_s = time.perf_counter() - start
    del warmup_step

    _, step = trainer()
    start = time.perf_counter()
    mean_loss = _lenet.run_epoch(step, images, labels, order)
    epoch_s = time.perf_counter() - start

    print(json.dumps({"framework": args.framework, "threads": args.threads, "images": len(order),
                      "import_s": import_s, "warmup_s": warmup_s, "epoch_s": epoch_s, "mean_loss": mean_loss,
                      "peak_mib": peak_memory_mib(),
                      "ru_maxrss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))


if __name__ == "__main__":
    main()

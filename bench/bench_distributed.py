"""Data-parallel training on MPI: all-reduce cost vs message size, and what 2 processes gain over 2 threads.

    python bench/bench_distributed.py [--steps 10] [--batch-size 64] [--model resnet20] [--max-mb 64]

1. all_reduce (SUM, float32) on 2 local ranks for 1 KB .. --max-mb MB: fastnn.distributed.all_reduce and raw
   mpi4py Allreduce, against this machine's memory bandwidth (one-thread copy, read + write bytes / s).
2. The same training steps (DDP, global batch --batch-size, Fashion-MNIST images) as 1 process x 1 thread,
   1 process x 2 threads and 2 processes x 1 thread: images/s, and per step the time a rank spent blocked in collectives (gradient
   all-reduce + BatchNorm buffer broadcast + the wait for the slower rank), against the gradient bytes.
Needs mpi4py (pip install 'fastnn[distributed]'). The driver starts the ranks itself with mpiexec.
"""
import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))
from _timing import cpu_model  # noqa: E402


def memory_bandwidth_gbs(mb=256, reps=5):
    """Best one-thread copy bandwidth, counting the bytes read and the bytes written."""
    import numpy as np
    a = np.ones(mb * 1024 * 1024 // 8)
    b = np.empty_like(a)
    best = float("inf")
    for _ in range(reps):
        start = time.perf_counter()
        np.copyto(b, a)
        best = min(best, time.perf_counter() - start)
    return 2 * a.nbytes / best / 1e9


# ---- rank side ---------------------------------------------------------------------------------------------
def rank_allreduce(max_mb):
    import numpy as np
    from mpi4py import MPI
    import fastnn
    import fastnn.distributed as dist
    dist.init_process_group("mpi")
    comm = MPI.COMM_WORLD
    rows = []
    size = 1024
    while size <= max_mb * 1024 * 1024:
        array = np.ones(size // 4, np.float32)
        tensor = fastnn.Tensor(array)
        reps = max(3, min(300, int(2e8 // size)))
        timings = {}
        for name, call in (("fastnn", lambda: dist.all_reduce(tensor)),
                           ("mpi4py", lambda: comm.Allreduce(MPI.IN_PLACE, array, op=MPI.SUM))):
            call()
            best = float("inf")
            for _ in range(reps):
                comm.Barrier()
                start = time.perf_counter()
                call()
                best = min(best, time.perf_counter() - start)
            timings[name] = comm.allreduce(best, op=MPI.MAX)
        rows.append({"bytes": size, **timings})
        size *= 4
    if dist.get_rank() == 0:
        print("RESULT " + json.dumps(rows), flush=True)


def rank_training(model_name, steps, batch_size):
    import numpy as np
    import fastnn
    import fastnn.distributed as dist
    from fastnn import nn, optim
    from fastnn.cli import build_model
    from fastnn.data import DataLoader, FashionMNIST, TensorDataset
    from fastnn.data.datasets import EMBEDDED_DIR
    from fastnn.distributed import process_group as pg
    dist.init_process_group("mpi")
    world, rank = dist.get_world_size(), dist.get_rank()
    blocked = [0.0]
    wait_all = pg._wait_all

    def timed_wait(requests, what):
        start = time.perf_counter()
        wait_all(requests, what)
        blocked[0] += time.perf_counter() - start
    pg._wait_all = timed_wait
    fastnn.manual_seed(0)
    x, y = FashionMNIST(EMBEDDED_DIR, train=True).standardized()
    warmup = 2
    n = (steps + warmup) * batch_size
    data = TensorDataset(fastnn.tensor(x[:n]), fastnn.tensor(y[:n]))
    loader = DataLoader(data, batch_size=batch_size // world,
                        sampler=dist.DistributedSampler(data, shuffle=False))
    model = build_model(model_name)
    ddp = dist.DistributedDataParallel(model)
    opt = optim.SGD(model.parameters(), lr=0.05, momentum=0.9)
    loss_fn = nn.CrossEntropyLoss()
    grad_bytes = sum(p.numel() * p.dtype.itemsize for p in model.parameters())
    for step, (inputs, targets) in enumerate(loader):
        if step == warmup:
            dist.barrier()
            start, blocked[0] = time.perf_counter(), 0.0
        opt.zero_grad()
        loss_fn(ddp(inputs), targets).backward()
        opt.step()
    dist.barrier()
    seconds = time.perf_counter() - start
    per_rank_blocked = np.array([blocked[0]])
    if world > 1:
        dist.all_reduce(fastnn.Tensor(per_rank_blocked), op=dist.ReduceOp.MAX)
    if rank == 0:
        print("RESULT " + json.dumps({"world": world, "threads": fastnn.get_num_threads(), "steps": steps,
                                      "seconds": seconds, "images_per_s": steps * batch_size / seconds,
                                      "blocked_ms_per_step": 1e3 * float(per_rank_blocked[0]) / steps,
                                      "grad_bytes": grad_bytes}), flush=True)


# ---- driver ------------------------------------------------------------------------------------------------
def _launch(n, threads, args):
    from fastnn.distributed.launch import find_mpiexec
    env = dict(os.environ, NUMBA_NUM_THREADS=str(threads),
               PYTHONPATH=os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]))
    proc = subprocess.run([find_mpiexec(), "-n", str(n), sys.executable, __file__] + args, env=env,
                          capture_output=True, text=True)
    if proc.returncode != 0:
        raise SystemExit(f"ranks failed ({proc.returncode}):\n{proc.stdout}\n{proc.stderr}")
    return json.loads(next(line for line in proc.stdout.splitlines() if line.startswith("RESULT "))[7:])


def _size(nbytes):
    return f"{nbytes // 1024**2} MB" if nbytes >= 1024**2 else f"{nbytes // 1024} KB"


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=10, help="timed training steps per configuration")
    parser.add_argument("--batch-size", type=int, default=64, help="global batch (split over the ranks)")
    parser.add_argument("--model", default="resnet20", help="a `fastnn train --model` choice")
    parser.add_argument("--max-mb", type=int, default=64, help="largest all_reduce message, in MB")
    parser.add_argument("--repeats", type=int, default=3,
                        help="rounds of the training configurations, alternated; the best round is reported")
    parser.add_argument("--rank", nargs="*", help=argparse.SUPPRESS)   # internal: what a rank runs
    args = parser.parse_args()
    if args.rank:
        if args.rank[0] == "allreduce":
            return rank_allreduce(args.max_mb)
        return rank_training(args.model, args.steps, args.batch_size)

    bandwidth = memory_bandwidth_gbs()
    print(f"CPU: {cpu_model()}, {len(os.sched_getaffinity(0))} cores; memory bandwidth (1-thread copy, "
          f"read+write): {bandwidth:.1f} GB/s; load average {os.getloadavg()[0]:.1f} before the run", flush=True)
    print("\nall_reduce SUM float32, 2 ranks on this machine (best of several; algorithm bandwidth = bytes / "
          "time)")
    print(f"{'size':>7} {'fastnn':>11} {'mpi4py':>11} {'fastnn GB/s':>12} {'x memory bw':>12}")
    for row in _launch(2, 1, ["--rank", "allreduce", "--max-mb", str(args.max_mb)]):
        gbs = row["bytes"] / row["fastnn"] / 1e9
        print(f"{_size(row['bytes']):>7} {1e6 * row['fastnn']:>9.1f}us {1e6 * row['mpi4py']:>9.1f}us "
              f"{gbs:>12.2f} {gbs / bandwidth:>12.3f}", flush=True)

    print(f"\n{args.model} training steps, global batch {args.batch_size}, {args.steps} timed steps after 2 "
          f"warm-up steps (DDP, SGD momentum)")
    common = ["--rank", "train", "--model", args.model, "--steps", str(args.steps), "--batch-size",
              str(args.batch_size)]
    # 1 x 1 is the reference for what a second process adds; 1 x 2 for what a second thread adds. The
    # configurations alternate round by round, so a busy phase of a shared machine hits all of them.
    configs = [(1, 1), (1, 2), (2, 1)]
    rounds = []
    for _ in range(max(1, args.repeats)):
        rounds.append([_launch(n, threads, common) for n, threads in configs])
        print("round: " + ", ".join(f"{r['world']}x{r['threads']} {1e3 * r['seconds'] / r['steps']:.0f} ms/step"
                                    for r in rounds[-1]), flush=True)
    best = [max((rnd[i] for rnd in rounds), key=lambda r: r["images_per_s"]) for i in range(len(configs))]
    base = best[0]["images_per_s"]
    for r in best:
        print(f"best: {r['world']} process(es) x {r['threads']} thread(s): {r['images_per_s']:7.1f} images/s "
              f"({r['images_per_s'] / base:.2f}x), {1e3 * r['seconds'] / r['steps']:7.1f} ms/step, blocked in "
              f"collectives {r['blocked_ms_per_step']:6.1f} ms/step; gradients {r['grad_bytes'] / 1e6:.2f} MB/step",
              flush=True)
    print(f"load average {os.getloadavg()[0]:.1f} after the run")


if __name__ == "__main__":
    main()

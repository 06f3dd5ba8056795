"""fastnn on an NVIDIA GPU against PyTorch CUDA, in the same run (issue 16's table).

    python bench/bench_cuda.py [--quick] [--json PATH] [--no-torch] [--device cpu]

Rows: the conv shapes of bench/run.py forward+backward; Adam and SGD-momentum steps over 10M float32
parameters (10 tensors) with the achieved GB/s against the card's measured device-to-device copy bandwidth;
BatchNorm2d (128, 64, 16, 16) forward+backward; a resnet20 training step at batch 128; one LeNet-5 epoch on the
60,000 Fashion-MNIST training images (data on the device, batches of 64). Every timing synchronizes the device
before the clock stops. Prints the table and, last, a short summary (bench/gpu_check.sh relies on that).
Needs CuPy, numba-cuda and a GPU; PyTorch with CUDA for the ratios. `--device cpu --no-torch --quick` runs the
same code on the CPU as a smoke test of the script (about 4 minutes on a loaded 2-core VM).
"""
import argparse
import json
import statistics
import sys
import time
from pathlib import Path

import numpy as np

BENCH_DIR = Path(__file__).resolve().parent
sys.path[:0] = [str(BENCH_DIR), str(BENCH_DIR.parent)]
from _timing import Table  # noqa: E402
from run import CONV_SHAPES  # noqa: E402  (the CPU table's shapes)

TARGETS = {"optim": 1.2, "conv": 2.0, "resnet20": 2.0, "lenet": 2.0}
OPTIM_PARAMS, OPTIM_TENSORS = 10_000_000, 10
DEVICE = "cuda"  # --device cpu smoke-tests this script without a GPU (the ratios then mean nothing)


def gpu_time(fn, sync, reps, warmup=2):
    """Median seconds of fn() over `reps` calls, the device synchronized around each."""
    for _ in range(warmup):
        fn()
    sync()
    times = []
    for _ in range(reps):
        start = time.perf_counter()
        fn()
        sync()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def copy_bandwidth(xp, sync):
    """Device-to-device copy GB/s (read + write) on 1 GiB: the ceiling of a bandwidth-bound kernel."""
    a = xp.ones(1 << 28, xp.float32)
    b = xp.empty_like(a)
    seconds = gpu_time(lambda: b.__setitem__(Ellipsis, a), sync, 10)
    return 2 * a.nbytes / seconds / 1e9


class Ctx:
    def __init__(self, torch, reps):
        import fastnn
        self.fastnn, self.torch, self.reps = fastnn, torch, reps
        self.sync = fastnn.cuda.synchronize if DEVICE == "cuda" else (lambda: None)
        self.tsync = torch.cuda.synchronize if torch else None
        self.rng = np.random.default_rng(0)

    def time_pair(self, fastnn_fn, torch_fn, reps=None):
        reps = reps or self.reps
        ours = gpu_time(fastnn_fn, self.sync, reps)
        theirs = gpu_time(torch_fn, self.tsync, reps) if torch_fn is not None else None
        return ours, theirs

    def t(self, array):
        return self.torch.from_numpy(array).cuda()


def bench_conv(ctx, table):
    fastnn, torch = ctx.fastnn, ctx.torch
    table.section("conv2d forward + backward (float32)")
    for n, cin, h, w, cout, k, stride, pad in CONV_SHAPES:
        x = ctx.rng.standard_normal((n, cin, h, w)).astype(np.float32)
        weight = (ctx.rng.standard_normal((cout, cin, k, k)) * 0.1).astype(np.float32)
        fx = fastnn.tensor(x).to(DEVICE).requires_grad_()
        fw = fastnn.tensor(weight).to(DEVICE).requires_grad_()

        def ours():
            fastnn.nn.functional.conv2d(fx, fw, stride=stride, padding=pad).sum().backward()
        if torch:
            tx, tw = ctx.t(x).requires_grad_(), ctx.t(weight).requires_grad_()

            def torch_fn():
                torch.nn.functional.conv2d(tx, tw, stride=stride, padding=pad).sum().backward()
        a, b = ctx.time_pair(ours, torch_fn if torch else None)
        table.add("conv", f"conv {n}x{cin}x{h}x{w} -> {cout} k{k}", "ms", a * 1e3, b and b * 1e3,
                  max_ratio=TARGETS["conv"])


def bench_optim(ctx, table, bandwidth):
    fastnn, torch = ctx.fastnn, ctx.torch
    table.section(f"optimizer steps, {OPTIM_PARAMS:,} float32 parameters (copy bandwidth {bandwidth:.0f} GB/s)")
    size = OPTIM_PARAMS // OPTIM_TENSORS
    # bytes each step moves per parameter: reads (param, grad, states) + writes (param, states), float32
    for name, cls, kwargs, moved in (("Adam", "Adam", dict(lr=1e-3), 7 * 4),
                                     ("SGD momentum", "SGD", dict(lr=1e-3, momentum=0.9), 5 * 4)):
        params = [fastnn.nn.Parameter(fastnn.zeros(size).to(DEVICE)) for _ in range(OPTIM_TENSORS)]
        for p in params:
            p.grad = fastnn.ones(size).to(DEVICE)
        opt = getattr(fastnn.optim, cls)(params, **kwargs)
        if torch:
            tparams = [torch.zeros(size, device="cuda", requires_grad=True) for _ in range(OPTIM_TENSORS)]
            for p in tparams:
                p.grad = torch.ones(size, device="cuda")
            topt = getattr(torch.optim, cls)(tparams, **kwargs)  # PyTorch's default (foreach) path
        a, b = ctx.time_pair(opt.step, topt.step if torch else None, reps=ctx.reps * 3)
        gbs = OPTIM_PARAMS * moved / a / 1e9
        table.add("optim", f"{name} step", "ms", a * 1e3, b and b * 1e3, max_ratio=TARGETS["optim"],
                  note=f"{gbs:.0f} GB/s = {gbs / bandwidth:.0%} of copy")


def bench_batchnorm(ctx, table):
    fastnn, torch = ctx.fastnn, ctx.torch
    table.section("BatchNorm2d (128, 64, 16, 16) forward + backward")
    x = ctx.rng.standard_normal((128, 64, 16, 16)).astype(np.float32)
    layer = fastnn.nn.BatchNorm2d(64).to(DEVICE)
    fx = fastnn.tensor(x).to(DEVICE).requires_grad_()

    def ours():
        layer(fx).sum().backward()
    if torch:
        tlayer = torch.nn.BatchNorm2d(64).cuda()
        tx = ctx.t(x).requires_grad_()

        def torch_fn():
            tlayer(tx).sum().backward()
    a, b = ctx.time_pair(ours, torch_fn if torch else None)
    table.add("norm", "BatchNorm2d fwd+bwd", "ms", a * 1e3, b and b * 1e3)


def bench_resnet20(ctx, table):
    from _torch_models import BUILDERS

    from fastnn import models
    fastnn, torch = ctx.fastnn, ctx.torch
    table.section("resnet20 training step, batch 128 (SGD momentum, weight decay)")
    x, y = ctx.rng.standard_normal((128, 3, 32, 32)).astype(np.float32), ctx.rng.integers(0, 10, 128)
    model = models.resnet20(num_classes=10).to(DEVICE)
    opt = fastnn.optim.SGD(model.parameters(), lr=0.01, momentum=0.9, weight_decay=5e-4)
    fx, fy = fastnn.tensor(x).to(DEVICE), fastnn.tensor(y).to(DEVICE)

    def ours():
        opt.zero_grad()
        fastnn.nn.functional.cross_entropy(model(fx), fy).backward()
        opt.step()
    if torch:
        tmodel = BUILDERS["resnet20"](torch, num_classes=10).cuda()
        topt = torch.optim.SGD(tmodel.parameters(), lr=0.01, momentum=0.9, weight_decay=5e-4)
        tx, ty = ctx.t(x), ctx.t(y)

        def torch_fn():
            topt.zero_grad()
            torch.nn.functional.cross_entropy(tmodel(tx), ty).backward()
            topt.step()
    a, b = ctx.time_pair(ours, torch_fn if torch else None)
    table.add("models", "resnet20 train step b128", "ms", a * 1e3, b and b * 1e3, max_ratio=TARGETS["resnet20"])


def bench_lenet(ctx, table, limit):
    import _lenet
    fastnn, torch = ctx.fastnn, ctx.torch
    table.section(f"LeNet-5 epoch on {limit or 60000:,} Fashion-MNIST images, batch {_lenet.BATCH_SIZE}")
    images, labels = _lenet.load_fashion_mnist(limit)
    order = _lenet.batch_order(len(images))
    batches = [order[i:i + _lenet.BATCH_SIZE] for i in range(0, len(order), _lenet.BATCH_SIZE)]
    model = _lenet.fastnn_model().to(DEVICE)
    opt = fastnn.optim.SGD(model.parameters(), lr=_lenet.LR, momentum=_lenet.MOMENTUM)
    data, targets = fastnn.tensor(images).to(DEVICE), fastnn.tensor(labels).to(DEVICE)
    index = [fastnn.tensor(b).to(DEVICE) for b in batches]

    def ours():
        for i in index:
            opt.zero_grad()
            fastnn.nn.functional.cross_entropy(model(data[i]), targets[i]).backward()
            opt.step()
    if torch:
        tmodel = _lenet.torch_model().cuda()
        topt = torch.optim.SGD(tmodel.parameters(), lr=_lenet.LR, momentum=_lenet.MOMENTUM)
        tdata, ttargets = ctx.t(images), ctx.t(labels)
        tindex = [ctx.t(b) for b in batches]

        def torch_fn():
            for i in tindex:
                topt.zero_grad()
                torch.nn.functional.cross_entropy(tmodel(tdata[i]), ttargets[i]).backward()
                topt.step()
    a, b = ctx.time_pair(ours, torch_fn if torch else None, reps=1)
    table.add("lenet", "LeNet-5 epoch", "s", a, b, max_ratio=TARGETS["lenet"])


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer repetitions, a 10,000-image LeNet-5 epoch")
    parser.add_argument("--json", type=Path)
    parser.add_argument("--no-torch", action="store_true")
    parser.add_argument("--device", default="cuda", choices=("cuda", "cpu"), help="cpu: smoke test, no GPU")
    args = parser.parse_args(argv)
    global DEVICE
    DEVICE = args.device
    import fastnn
    if DEVICE == "cuda" and not fastnn.cuda.is_available():
        sys.exit("bench_cuda.py: no CUDA device (needs an NVIDIA GPU, CuPy and numba-cuda)")
    torch = None
    if not args.no_torch:
        try:
            import torch
            torch = torch if torch.cuda.is_available() and DEVICE == "cuda" else None
        except ImportError:
            torch = None
    ctx = Ctx(torch, reps=2 if args.quick else 20)
    table = Table()
    backend = fastnn._dispatch.backend(DEVICE)
    bandwidth = copy_bandwidth(backend.xp, backend.synchronize)
    if DEVICE == "cuda":
        name = backend.xp.cuda.runtime.getDeviceProperties(0)["name"].decode()
    else:
        name = "cpu (smoke test)"
    print(f"device: {name}; device-to-device copy {bandwidth:.0f} GB/s; PyTorch {'yes' if torch else 'no'}")
    for section in (bench_conv, bench_batchnorm, bench_resnet20):
        section(ctx, table)
    bench_optim(ctx, table, bandwidth)
    bench_lenet(ctx, table, 10_000 if args.quick else None)
    if args.json:
        args.json.write_text(json.dumps({"device": name, "copy_GBps": bandwidth, "rows": table.rows}, indent=1))
    print(f"\n== summary ({name}, copy {bandwidth:.0f} GB/s) ==\n{Table.HEADER}")
    for row in table.rows:
        print(table._line(row))
    return 0 if table.print_summary() else 1


if __name__ == "__main__":
    sys.exit(main())

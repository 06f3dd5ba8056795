"""fastnn on an NVIDIA GPU against PyTorch CUDA, in the same run (issue 16's table).

    python bench/bench_cuda.py [--quick] [--json PATH]

Rows: the conv shapes of bench/run.py forward+backward; Adam and SGD-momentum steps over 10M float32
parameters (10 tensors) with the achieved GB/s against the card's measured device-to-device copy bandwidth;
BatchNorm2d (128, 64, 16, 16) forward+backward; a resnet20 training step at batch 128; one LeNet-5 epoch on the
60,000 Fashion-MNIST training images (data on the device, batches of 64). Every timing synchronizes the device
before the clock stops. Prints the table and, last, a short summary (bench/gpu_check.sh relies on that).
Needs CuPy, numba-cuda and a GPU; PyTorch with CUDA for the ratios.
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


def copy_bandwidth(cupy):
    """Device-to-device copy GB/s (read + write) on 1 GiB: the ceiling of a bandwidth-bound kernel."""
    a = cupy.ones(1 << 28, cupy.float32)
    b = cupy.empty_like(a)
    seconds = gpu_time(lambda: b.__setitem__(Ellipsis, a), cupy.cuda.Device().synchronize, 10)
    return 2 * a.nbytes / seconds / 1e9


class Ctx:
    def __init__(self, torch, reps):
        import cupy

        import fastnn
        self.fastnn, self.torch, self.cupy, self.reps = fastnn, torch, cupy, reps
        self.sync = fastnn.cuda.synchronize
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
        fx = fastnn.tensor(x).to("cuda").requires_grad_()
        fw = fastnn.tensor(weight).to("cuda").requires_grad_()

        def ours():
            fastnn.nn.functional.conv2d(fx, fw, stride=stride, padding=pad).sum().backward()
        theirs = None
        if torch:
            tx, tw = ctx.t(x).requires_grad_(), ctx.t(weight).requires_grad_()

            def theirs():
                torch.nn.functional.conv2d(tx, tw, stride=stride, padding=pad).sum().backward()
        a, b = ctx.time_pair(ours, theirs)
        table.add("conv", f"conv {n}x{cin}x{h}x{w} -> {cout} k{k}", "ms", a * 1e3, b and b * 1e3,
                  max_ratio=TARGETS["conv"])


def bench_optim(ctx, table, bandwidth):
    fastnn, torch = ctx.fastnn, ctx.torch
    table.section(f"optimizer steps, {OPTIM_PARAMS:,} float32 parameters (copy bandwidth {bandwidth:.0f} GB/s)")
    size = OPTIM_PARAMS // OPTIM_TENSORS
    # bytes each step moves per parameter: reads (param, grad, states) + writes (param, states), float32
    for name, cls, kwargs, moved in (("Adam", "Adam", dict(lr=1e-3), 7 * 4),
                                     ("SGD momentum", "SGD", dict(lr=1e-3, momentum=0.9), 5 * 4)):
        params = [fastnn.nn.Parameter(fastnn.zeros(size).to("cuda")) for _ in range(OPTIM_TENSORS)]
        for p in params:
            p.grad = fastnn.ones(size).to("cuda")
        opt = getattr(fastnn.optim, cls)(params, **kwargs)
        theirs = None
        if torch:
            tparams = [torch.zeros(size, device="cuda", requires_grad=True) for _ in range(OPTIM_TENSORS)]
            for p in tparams:
                p.grad = torch.ones(size, device="cuda")
            topt = getattr(torch.optim, cls)(tparams, **kwargs)  # PyTorch's default (foreach) path
            theirs = topt.step
        a, b = ctx.time_pair(opt.step, theirs, reps=ctx.reps * 3)
        gbs = OPTIM_PARAMS * moved / a / 1e9
        table.add("optim", f"{name} step", "ms", a * 1e3, b and b * 1e3, max_ratio=TARGETS["optim"],
                  note=f"{gbs:.0f} GB/s = {gbs / bandwidth:.0%} of copy")


def bench_batchnorm(ctx, table):
    fastnn, torch = ctx.fastnn, ctx.torch
    table.section("BatchNorm2d (128, 64, 16, 16) forward + backward")
    x = ctx.rng.standard_normal((128, 64, 16, 16)).astype(np.float32)
    layer = fastnn.nn.BatchNorm2d(64).to("cuda")
    fx = fastnn.tensor(x).to("cuda").requires_grad_()

    def ours():
        layer(fx).sum().backward()
    theirs = None
    if torch:
        tlayer = torch.nn.BatchNorm2d(64).cuda()
        tx = ctx.t(x).requires_grad_()

        def theirs():
            tlayer(tx).sum().backward()
    a, b = ctx.time_pair(ours, theirs)
    table.add("norm", "BatchNorm2d fwd+bwd", "ms", a * 1e3, b and b * 1e3)


def bench_resnet20(ctx, table):
    from _torch_models import BUILDERS

    from fastnn import models
    fastnn, torch = ctx.fastnn, ctx.torch
    table.section("resnet20 training step, batch 128 (SGD momentum, weight decay)")
    x, y = ctx.rng.standard_normal((128, 3, 32, 32)).astype(np.float32), ctx.rng.integers(0, 10, 128)
    model = models.resnet20(num_classes=10).to("cuda")
    opt = fastnn.optim.SGD(model.parameters(), lr=0.01, momentum=0.9, weight_decay=5e-4)
    fx, fy = fastnn.tensor(x).to("cuda"), fastnn.tensor(y).to("cuda")

    def ours():
        opt.zero_grad()
        fastnn.nn.functional.cross_entropy(model(fx), fy).backward()
        opt.step()
    theirs = None
    if torch:
        tmodel = BUILDERS["resnet20"](torch, num_classes=10).cuda()
        topt = torch.optim.SGD(tmodel.parameters(), lr=0.01, momentum=0.9, weight_decay=5e-4)
        tx, ty = ctx.t(x), ctx.t(y)

        def theirs():
            topt.zero_grad()
            torch.nn.functional.cross_entropy(tmodel(tx), ty).backward()
            topt.step()
    a, b = ctx.time_pair(ours, theirs)
    table.add("models", "resnet20 train step b128", "ms", a * 1e3, b and b * 1e3, max_ratio=TARGETS["resnet20"])


def bench_lenet(ctx, table, limit):
    import _lenet
    fastnn, torch = ctx.fastnn, ctx.torch
    table.section(f"LeNet-5 epoch on {limit or 60000:,} Fashion-MNIST images, batch {_lenet.BATCH_SIZE}")
    images, labels = _lenet.load_fashion_mnist(limit)
    order = _lenet.batch_order(len(images))
    batches = [order[i:i + _lenet.BATCH_SIZE] for i in range(0, len(order), _lenet.BATCH_SIZE)]
    model = _lenet.fastnn_model().to("cuda")
    opt = fastnn.optim.SGD(model.parameters(), lr=_lenet.LR, momentum=_lenet.MOMENTUM)
    data, targets = fastnn.tensor(images).to("cuda"), fastnn.tensor(labels).to("cuda")
    index = [fastnn.tensor(b).to("cuda") for b in batches]

    def ours():
        for i in index:
            opt.zero_grad()
            fastnn.nn.functional.cross_entropy(model(data[i]), targets[i]).backward()
            opt.step()
    theirs = None
    if torch:
        tmodel = _lenet.torch_model().cuda()
        topt = torch.optim.SGD(tmodel.parameters(), lr=_lenet.LR, momentum=_lenet.MOMENTUM)
        tdata, ttargets = ctx.t(images), ctx.t(labels)
        tindex = [ctx.t(b) for b in batches]

        def theirs():
            for i in tindex:
                topt.zero_grad()
                torch.nn.functional.cross_entropy(tmodel(tdata[i]), ttargets[i]).backward()
                topt.step()
    a, b = ctx.time_pair(ours, theirs, reps=1)
    table.add("lenet", "LeNet-5 epoch", "s", a, b, max_ratio=TARGETS["lenet"])


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer repetitions, a 10,000-image LeNet-5 epoch")
    parser.add_argument("--json", type=Path)
    parser.add_argument("--no-torch", action="store_true")
    args = parser.parse_args(argv)
    import fastnn
    if not fastnn.cuda.is_available():
        sys.exit("bench_cuda.py: no CUDA device (needs an NVIDIA GPU, CuPy and numba-cuda)")
    torch = None
    if not args.no_torch:
        try:
            import torch
            torch = torch if torch.cuda.is_available() else None
        except ImportError:
            torch = None
    import cupy
    ctx = Ctx(torch, reps=5 if args.quick else 20)
    table = Table()
    bandwidth = copy_bandwidth(cupy)
    name = cupy.cuda.runtime.getDeviceProperties(0)["name"].decode()
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

"""Benchmark fastnn against PyTorch (when importable) on the same workloads, in the same run, same thread count.

    python bench/run.py [--quick] [--only conv|pool|optim|toolkit|models|lenet|startup ...] [--threads N]
                        [--json PATH] [--compare-json OLD.json] [--no-torch]

Sections: conv2d forward and forward+backward (direct, im2col and the auto choice), 2x2 pooling, Adam and
SGD-momentum steps over 1M and 10M float32 parameters, the training-toolkit layers and optimizers
(normalization, activations, every optimizer's step), whole models from fastnn.models (inference and
training steps of ResNets, VGG and ResNeXt), one LeNet-5 epoch on Fashion-MNIST (time and peak memory,
each framework in its own process) and the cold start of a fresh process. The header gives the CPU, the
vector ISA Numba compiles for and the measured SGEMM ceiling; conv rows give GFLOP/s (2 x the direct
algorithm's multiply-adds, so a Winograd conv can exceed 100%) and their share of that ceiling. See
bench/README.md.
"""
import argparse
import json
import os
import platform
import subprocess
import sys
import time
from pathlib import Path

BENCH_DIR = Path(__file__).resolve().parent
REPO_DIR = BENCH_DIR.parent
sys.path[:0] = [str(BENCH_DIR), str(REPO_DIR)]  # the benchmark helpers and this source tree's fastnn
from _timing import (SGEMM_SIZE, Table, best_times, compiled_isa, cpu_model, pin_threads,  # noqa: E402
                     print_comparison, sgemm_ceiling_gflops)

SECTIONS = ("conv", "pool", "optim", "toolkit", "models", "lenet", "startup")
# (N, Cin, H, W, Cout, k, stride, padding)
CONV_SHAPES = [(64, 1, 28, 28, 32, 5, 1, 2), (64, 32, 14, 14, 64, 3, 1, 1), (128, 64, 16, 16, 64, 3, 1, 1),
               (128, 128, 8, 8, 128, 3, 1, 1), (32, 3, 32, 32, 64, 3, 1, 1)]
CONV_ALGORITHMS = ("direct", "im2col", "winograd", "auto")
POOL_SHAPE = (64, 32, 28, 28)
OPTIM_SIZES = (1_000_000, 10_000_000)
OPTIM_TENSORS = 10  # the parameters are split into this many equal tensors, as a model has several layers
LR = 1e-3
FULL_IMAGES, QUICK_IMAGES = 60_000, 10_000
TARGET_CONV_RATIO = 1.5
TARGET_ADAM_RATIO = 1.0
TARGET_LENET_RATIO = 1.5
TARGET_MEMORY_RATIO = 1.5
TARGET_COLD_START_S = 3.0
TARGET_RESNET20_STEP_RATIO = 1.5
TARGET_RESNET18_INFERENCE_RATIO = 1.5
TARGET_RESNEXT50_FORWARD_RATIO = 2.0
# (model, batch, input size, mode, target ratio); quick runs use QUICK_BATCH_CAP images at most per batch.
MODEL_WORKLOADS = [
    ("resnet18", 1, 224, "inference", None),
    ("resnet18", 64, 224, "inference", TARGET_RESNET18_INFERENCE_RATIO),
    ("resnet20", 1, 32, "inference", None),
    ("resnet20", 64, 32, "inference", None),
    ("resnet20", 128, 32, "train step", TARGET_RESNET20_STEP_RATIO),
    ("vgg11_bn_cifar", 128, 32, "train step", None),
    ("resnext50_32x4d", 8, 224, "inference", TARGET_RESNEXT50_FORWARD_RATIO),
]
QUICK_BATCH_CAP = 4


def parse_args(argv):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true",
                        help=f"fewer repetitions and a LeNet-5 epoch on {QUICK_IMAGES:,} images (smoke test)")
    parser.add_argument("--only", choices=SECTIONS, action="append",
                        help="run only this section (repeatable); default: all")
    parser.add_argument("--threads", type=int, default=os.cpu_count(),
                        help="threads for both frameworks (default: os.cpu_count())")
    parser.add_argument("--json", type=Path, help="also write the results to this JSON file")
    parser.add_argument("--compare-json", type=Path, metavar="OLD.json",
                        help="also print each row's change against an earlier run's --json file")
    parser.add_argument("--no-torch", action="store_true", help="time fastnn only, even if PyTorch is installed")
    args = parser.parse_args(argv)
    if args.threads < 1:
        parser.error(f"--threads must be >= 1, got {args.threads}")
    if args.compare_json is not None and not args.compare_json.is_file():
        parser.error(f"--compare-json: no such file {args.compare_json}")
    return args


class Context:
    """What every section needs: the frameworks, the repetition count, the table."""

    def __init__(self, args, np, fastnn, torch, ceiling_gflops):
        self.args, self.np, self.fastnn, self.torch = args, np, fastnn, torch
        self.ceiling_gflops = ceiling_gflops
        self.reps = 2 if args.quick else 5
        self.table = Table()
        self.rng = np.random.default_rng(0)

    def randn(self, *shape):
        return self.rng.standard_normal(shape, dtype=self.np.float32)

    def time(self, fastnn_fns, torch_fn=None):
        """Best seconds of each fastnn callable, and of torch_fn (None without PyTorch), interleaved."""
        fns = list(fastnn_fns) + ([torch_fn] if self.torch is not None and torch_fn is not None else [])
        times = best_times(fns, self.reps)
        return times[:len(fastnn_fns)], (times[len(fastnn_fns)] if len(times) > len(fastnn_fns) else None)


def _ms(seconds):
    return None if seconds is None else seconds * 1e3


def _conv_workloads(ctx, shape):
    """fastnn forward and forward+backward callables per algorithm, the PyTorch pair, and an output check."""
    np, fastnn, torch = ctx.np, ctx.fastnn, ctx.torch
    F = fastnn.nn.functional
    n, cin, h, w, cout, k, stride, pad = shape
    x, weight, bias = ctx.randn(n, cin, h, w), ctx.randn(cout, cin, k, k) * 0.1, ctx.randn(cout)
    out_hw = (h + 2 * pad - k) // stride + 1
    grad_out = ctx.randn(n, cout, out_hw, out_hw)

    inputs = [fastnn.tensor(a) for a in (x, weight, bias)]
    leaves = [fastnn.tensor(a, requires_grad=True) for a in (x, weight, bias)]
    fastnn_grad_out = fastnn.tensor(grad_out)

    def fastnn_pair(algorithm):
        def forward():
            with fastnn.no_grad():
                return F.conv2d(*inputs, stride, pad, algorithm=algorithm)

        def forward_backward():
            for leaf in leaves:
                leaf.grad = None
            F.conv2d(*leaves, stride, pad, algorithm=algorithm).backward(fastnn_grad_out)
        return forward, forward_backward
    pairs = {algorithm: fastnn_pair(algorithm) for algorithm in CONV_ALGORITHMS}

    if torch is None:
        return pairs, (None, None), None
    t_inputs = [torch.from_numpy(a) for a in (x, weight, bias)]
    t_leaves = [torch.from_numpy(a.copy()).requires_grad_() for a in (x, weight, bias)]
    t_grad_out = torch.from_numpy(grad_out)

    def torch_forward():
        with torch.no_grad():
            return torch.nn.functional.conv2d(*t_inputs, stride, pad)

    def torch_forward_backward():
        for leaf in t_leaves:
            leaf.grad = None
        torch.nn.functional.conv2d(*t_leaves, stride, pad).backward(t_grad_out)

    def mismatch(algorithm):
        expected = torch_forward().numpy()
        got = pairs[algorithm][0]()._data
        return not np.allclose(got, expected, rtol=1e-3, atol=1e-3 * float(np.abs(expected).max()))
    return pairs, (torch_forward, torch_forward_backward), mismatch


def bench_conv(ctx):
    ctx.table.section(f"conv2d, float32, best of up to {ctx.reps} (fwd: no grad; fwd+bwd: grads of input, weight "
                      f"and bias)")
    for shape in CONV_SHAPES:
        n, cin, h, w, cout, k, stride, pad = shape
        label = f"conv {n}x{cin}x{h}x{w}->{cout} k{k}s{stride}p{pad}"
        pairs, torch_pair, mismatch = _conv_workloads(ctx, shape)
        out_hw = ((h + 2 * pad - k) // stride + 1, (w + 2 * pad - k) // stride + 1)
        auto_choice = ctx.fastnn._kernels.cpu_conv.choose_algorithm((cout, cin, k, k), 1, (stride, stride), out_hw)
        # FLOPs of the direct algorithm: a multiply and an add per tap, output and input channel; the backward
        # does that twice (input and weight gradients).
        flops = 2 * n * cout * out_hw[0] * out_hw[1] * cin * k * k
        for mode, index in (("fwd", 0), ("fwd+bwd", 1)):
            fastnn_times, torch_time = ctx.time([pairs[a][index] for a in CONV_ALGORITHMS], torch_pair[index])
            mode_flops = flops * (1 if mode == "fwd" else 3)
            for algorithm, seconds in zip(CONV_ALGORITHMS, fastnn_times):
                gflops = mode_flops / seconds / 1e9
                share = 100 * gflops / ctx.ceiling_gflops
                notes = [f"{gflops:.0f} GFLOP/s, {share:.0f}% of SGEMM"]
                if torch_time:
                    notes.append(f"PyTorch {100 * mode_flops / torch_time / 1e9 / ctx.ceiling_gflops:.0f}%")
                if algorithm == "auto":
                    notes.append(f"chose {auto_choice}")
                if mode == "fwd" and mismatch is not None and mismatch(algorithm):
                    notes.append("OUTPUT DIFFERS FROM PYTORCH")
                target = TARGET_CONV_RATIO if (mode, algorithm) == ("fwd+bwd", "auto") else None
                ctx.table.add("conv", f"{label} {mode} {algorithm}", "ms", _ms(seconds), _ms(torch_time),
                              max_ratio=target, note="; ".join(notes), gflops=gflops, ceiling_share=share / 100)


def bench_pool(ctx):
    fastnn, torch = ctx.fastnn, ctx.torch
    F = fastnn.nn.functional
    n, c, h, w = POOL_SHAPE
    ctx.table.section(f"2x2/2 pooling of {n}x{c}x{h}x{w} float32, best of up to {ctx.reps}")
    x = ctx.randn(n, c, h, w)
    grad_out = ctx.randn(n, c, h // 2, w // 2)
    for name, fastnn_pool in (("max_pool2d", F.max_pool2d), ("avg_pool2d", F.avg_pool2d)):
        torch_pool = getattr(torch.nn.functional, name) if torch is not None else None
        fastnn_x, fastnn_leaf, fastnn_grad_out = (fastnn.tensor(x), fastnn.tensor(x, requires_grad=True),
                                                  fastnn.tensor(grad_out))

        def forward():
            with fastnn.no_grad():
                fastnn_pool(fastnn_x, 2, 2)

        def forward_backward():
            fastnn_leaf.grad = None
            fastnn_pool(fastnn_leaf, 2, 2).backward(fastnn_grad_out)
        torch_forward = torch_forward_backward = None
        if torch is not None:
            torch_x, torch_leaf = torch.from_numpy(x), torch.from_numpy(x.copy()).requires_grad_()
            torch_grad_out = torch.from_numpy(grad_out)

            def torch_forward():
                with torch.no_grad():
                    torch_pool(torch_x, 2, 2)

            def torch_forward_backward():
                torch_leaf.grad = None
                torch_pool(torch_leaf, 2, 2).backward(torch_grad_out)
        for mode, fastnn_fn, torch_fn in (("fwd", forward, torch_forward),
                                          ("fwd+bwd", forward_backward, torch_forward_backward)):
            (seconds,), torch_seconds = ctx.time([fastnn_fn], torch_fn)
            ctx.table.add("pool", f"{name} k2s2 {mode}", "ms", _ms(seconds), _ms(torch_seconds))


def bench_optim(ctx):
    fastnn, torch = ctx.fastnn, ctx.torch
    ctx.table.section(f"optimizer step over float32 parameters in {OPTIM_TENSORS} tensors, best of up to "
                      f"{ctx.reps}")
    for size in OPTIM_SIZES:
        values = [ctx.randn(size // OPTIM_TENSORS) for _ in range(OPTIM_TENSORS)]
        grads = [ctx.randn(size // OPTIM_TENSORS) for _ in range(OPTIM_TENSORS)]
        for name, make_fastnn, make_torch in (
                ("Adam", lambda p: fastnn.optim.Adam(p, lr=LR), lambda p: torch.optim.Adam(p, lr=LR)),
                ("SGD momentum=0.9", lambda p: fastnn.optim.SGD(p, lr=LR, momentum=0.9),
                 lambda p: torch.optim.SGD(p, lr=LR, momentum=0.9))):
            params = [fastnn.nn.Parameter(v.copy()) for v in values]
            for p, g in zip(params, grads):
                p.grad = fastnn.tensor(g)
            fastnn_step = make_fastnn(params).step
            torch_step = None
            if torch is not None:
                torch_params = [torch.nn.Parameter(torch.from_numpy(v.copy())) for v in values]
                for p, g in zip(torch_params, grads):
                    p.grad = torch.from_numpy(g.copy())
                torch_step = make_torch(torch_params).step
            (seconds,), torch_seconds = ctx.time([fastnn_step], torch_step)
            target = TARGET_ADAM_RATIO if (name, size) == ("Adam", max(OPTIM_SIZES)) else None
            ctx.table.add("optim", f"{name} step, {size / 1e6:g}M params", "ms", _ms(seconds), _ms(torch_seconds),
                          max_ratio=target)
            del params, fastnn_step, torch_step


def _model_workload(ctx, name, batch, size, mode):
    """(fastnn callable, PyTorch callable or None) running `name` on a batch of 3 x size x size images: a forward
    pass in eval mode without grad ("inference"), or forward + cross-entropy + backward + SGD step with
    momentum and weight decay ("train step"). The PyTorch twin comes from bench/_torch_models.py."""
    from _torch_models import BUILDERS

    from fastnn import models
    fastnn, torch = ctx.fastnn, ctx.torch
    x, y = ctx.randn(batch, 3, size, size), ctx.rng.integers(0, 10, batch)
    model = getattr(models, name)(num_classes=10)
    inputs, targets = fastnn.tensor(x), fastnn.tensor(y)
    if mode == "inference":
        model.eval()

        def fastnn_fn():
            with fastnn.no_grad():
                model(inputs)
    else:
        optimizer = fastnn.optim.SGD(model.parameters(), lr=0.01, momentum=0.9, weight_decay=5e-4)

        def fastnn_fn():
            optimizer.zero_grad()
            fastnn.nn.functional.cross_entropy(model(inputs), targets).backward()
            optimizer.step()
    if torch is None:
        return fastnn_fn, None
    twin = BUILDERS[name](torch, num_classes=10)
    torch_inputs, torch_targets = torch.from_numpy(x), torch.from_numpy(y)
    if mode == "inference":
        twin.eval()

        def torch_fn():
            with torch.no_grad():
                twin(torch_inputs)
    else:
        torch_optimizer = torch.optim.SGD(twin.parameters(), lr=0.01, momentum=0.9, weight_decay=5e-4)

        def torch_fn():
            torch_optimizer.zero_grad()
            torch.nn.functional.cross_entropy(twin(torch_inputs), torch_targets).backward()
            torch_optimizer.step()
    return fastnn_fn, torch_fn


def bench_models(ctx):
    reps = min(ctx.reps, 3)
    ctx.table.section(f"models from fastnn.models, float32, 10 classes, 3-channel input, best of up to {reps} "
                      f"(inference: eval mode, no grad; train step: fwd + cross-entropy + bwd + SGD momentum)")
    for name, batch, size, mode, target in MODEL_WORKLOADS:
        if ctx.args.quick:
            batch = min(batch, QUICK_BATCH_CAP)
        fastnn_fn, torch_fn = _model_workload(ctx, name, batch, size, mode)
        fns = [fastnn_fn] + ([torch_fn] if torch_fn is not None else [])
        times = best_times(fns, reps)
        torch_seconds = times[1] if torch_fn is not None else None
        rates = " vs ".join(f"{batch / t:.1f}" for t in times)
        ctx.table.add("models", f"{name} b{batch} {size}x{size} {mode}", "ms", _ms(times[0]), _ms(torch_seconds),
                      max_ratio=target, note=f"images/s {rates}")


def bench_toolkit(ctx):
    """The rows of bench_norm.py, bench_activations.py and bench_optim.py in this table."""
    import bench_activations
    import bench_norm
    import bench_optim
    for title, module in (("normalization layers", bench_norm), ("activations", bench_activations),
                          ("every optimizer's step", bench_optim)):
        ctx.table.section(f"toolkit: {title} ({module.__name__}.py)")
        for row in module.rows(ctx.torch, ctx.args.threads):
            ctx.table.add("toolkit", row["name"], "ms", row["fastnn_ms"], row["torch_ms"])


# The environment as the user started the bench, before importing fastnn set its OpenMP wait policy
# (fastnn/_kernels/blas_threads.py): a PyTorch child process runs with PyTorch's own defaults.
_USER_ENV = dict(os.environ)


def _child_env(framework):
    env = dict(os.environ if framework == "fastnn" else _USER_ENV)
    env["NUMBA_NUM_THREADS"] = os.environ["NUMBA_NUM_THREADS"]  # as pin_threads set it
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO_DIR), env.get("PYTHONPATH")]))
    return env


def _run_child(script, framework, args, extra=()):
    """Run a bench script in a fresh interpreter; returns (its JSON result, wall seconds launch to exit)."""
    command = [sys.executable, str(BENCH_DIR / script), "--framework", framework, "--threads", str(args.threads),
               *extra]
    start = time.perf_counter()
    done = subprocess.run(command, env=_child_env(framework), capture_output=True, text=True)
    wall = time.perf_counter() - start
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(command)} failed with exit status {done.returncode}:\n{done.stderr}")
    return json.loads(done.stdout.strip().splitlines()[-1]), wall


def bench_lenet(ctx):
    args = ctx.args
    images = QUICK_IMAGES if args.quick else FULL_IMAGES
    frameworks = ["fastnn"] + (["torch"] if ctx.torch is not None else [])
    ctx.table.section(f"LeNet-5 epoch, {images:,} Fashion-MNIST images, batch 64, SGD lr 0.05 momentum 0.9; "
                      f"each framework in its own process")
    # Load/compile kernels and page in libraries before anything is measured. The warm-up's last batch has the size
    # of the epoch's last one (60,000 = 937 x 64 + 32): small convs run serial twins of their kernels, which would
    # otherwise compile inside the timed epoch (seen: +3.6 s after a change to cpu_conv.py).
    for framework in frameworks:
        _run_child("lenet_epoch.py", framework, args, ["--limit", str(2 * 64 + images % 64)])
    results = {framework: _run_child("lenet_epoch.py", framework, args, ["--limit", str(images)])[0]
               for framework in frameworks}
    torch_result = results.get("torch", {})
    losses = " vs ".join(f"{results[f]['mean_loss']:.4f}" for f in frameworks)
    ctx.table.add("lenet", "LeNet-5 training epoch", "s", results["fastnn"]["epoch_s"], torch_result.get("epoch_s"),
                  max_ratio=TARGET_LENET_RATIO, note=f"mean loss {losses}")
    ctx.table.add("lenet", "LeNet-5 epoch peak resident memory (VmHWM)", "MiB", results["fastnn"]["peak_mib"],
                  torch_result.get("peak_mib"), max_ratio=TARGET_MEMORY_RATIO,
                  note="whole process: interpreter, import, data, training")


def bench_startup(ctx):
    args = ctx.args
    runs = 1 if args.quick else 3
    frameworks = ["fastnn"] + (["torch"] if ctx.torch is not None else [])
    ctx.table.section(f"cold start: fresh process, import + LeNet-5 + first training step (batch 64), kernel "
                      f"cache warm, best of {runs}")
    walls = {}
    for framework in frameworks:
        _run_child("first_step.py", framework, args)
        walls[framework] = min(_run_child("first_step.py", framework, args)[1] for _ in range(runs))
    ctx.table.add("startup", "process launch to exit", "s", walls["fastnn"], walls.get("torch"),
                  max_value=TARGET_COLD_START_S)


SECTION_FUNCTIONS = {"conv": bench_conv, "pool": bench_pool, "optim": bench_optim, "toolkit": bench_toolkit,
                     "models": bench_models, "lenet": bench_lenet, "startup": bench_startup}


def _import_torch(args):
    if args.no_torch:
        return None, "PyTorch not used (--no-torch)"
    try:
        import torch
    except ImportError as e:
        return None, f"PyTorch not importable ({e}): fastnn columns only"
    torch.set_num_threads(args.threads)
    return torch, f"PyTorch {torch.__version__}"


def main(argv=None):
    args = parse_args(argv)
    pin_threads(args.threads)  # before Numba loads
    import numpy as np

    import fastnn
    import fastnn.nn
    import fastnn.ops.conv
    import fastnn.optim
    fastnn.set_num_threads(args.threads)
    torch, torch_note = _import_torch(args)
    thread_variables = pin_threads(args.threads)  # the variables in force, fastnn's import included
    sections = [s for s in SECTIONS if args.only is None or s in args.only]
    load = os.getloadavg()[0]
    host = {"cpu": cpu_model(), "isa": compiled_isa(), "sgemm_gflops": sgemm_ceiling_gflops(args.threads)}
    print(f"fastnn {fastnn.__version__} | {torch_note} | NumPy {np.__version__} | Python {platform.python_version()}"
          f" | {args.threads} threads | {os.cpu_count()} CPUs | load average {load:.1f} | "
          f"{'quick' if args.quick else 'full'} run")
    print(f"CPU {host['cpu']} | kernels compiled for {host['isa']} | SGEMM ceiling {host['sgemm_gflops']:.0f} "
          f"GFLOP/s ({args.threads} BLAS threads, NumPy matmul {SGEMM_SIZE}^3 float32, best of 3)")
    print("thread variables: " + " ".join(f"{name}={value}" for name, value in thread_variables.items())
          + " (fastnn sets GOMP_SPINCOUNT=1000 unless OMP_WAIT_POLICY or GOMP_SPINCOUNT is given; in this "
            "process PyTorch shares its libgomp, its own processes in the LeNet and start-up rows run with the "
            "variables the bench was started with)")
    if load > 0.5 * os.cpu_count():
        print("warning: other processes are using the CPUs; timings and ratios will be noisy")
    ctx = Context(args, np, fastnn, torch, host["sgemm_gflops"])
    start = time.perf_counter()
    for section in sections:
        SECTION_FUNCTIONS[section](ctx)
    all_met = ctx.table.print_summary()
    elapsed = time.perf_counter() - start
    print(f"total {elapsed:.0f} s, load average now {os.getloadavg()[0]:.1f}")
    if args.compare_json:
        old = json.loads(args.compare_json.read_text())
        old_load = old["meta"].get("load_average")
        print_comparison(ctx.table.rows, old["rows"], f"{args.compare_json.name} (load average then "
                                                      f"{'?' if old_load is None else f'{old_load:.1f}'})")
    if args.json:
        meta = {**host, "fastnn": fastnn.__version__, "torch": torch.__version__ if torch is not None else None,
                "numpy": np.__version__, "python": platform.python_version(), "threads": args.threads,
                "cpus": os.cpu_count(), "thread_variables": thread_variables, "load_average": load,
                "quick": args.quick, "sections": sections, "seconds": elapsed, "all_targets_met": all_met}
        args.json.write_text(json.dumps({"meta": meta, "rows": ctx.table.rows}, indent=1) + "\n")
        print(f"wrote {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""The program tests/test_distributed.py runs under `mpiexec -n 2`, and the data both sides derive from the rank.

    python distributed_worker.py MODE OUTDIR

MODE "all" runs the collectives, DDP and SyncBatchNorm cases and saves each rank's results to
OUTDIR/rank{r}.npz; the test recomputes the single-process references from the same functions below.
MODE "raise" fails on rank 1 in the middle of an epoch; "timeout" leaves rank 0 alone in an all_reduce.
"""
import sys
import time
from datetime import timedelta

import numpy as np

import fastnn
from fastnn import nn, optim
import fastnn.distributed as dist

WORLD = 2
OPS = ("SUM", "AVG", "PRODUCT", "MAX", "MIN")
DTYPES = ("float64", "float32", "int64")


# ---- rank-dependent data (shared with the test) -----------------------------------------------------------
def rank_data(rank, dtype, salt=0, shape=(3, 4)):
    rng = np.random.default_rng(1000 * salt + rank)
    if np.dtype(dtype).kind == "i":
        return rng.integers(-4, 5, size=shape).astype(dtype)
    # Values near 1 keep PRODUCT well-conditioned.
    return (1 + 0.5 * rng.standard_normal(shape)).astype(dtype)


def make_mlp(norm=None):
    layers = [nn.Linear(6, 8)]
    if norm is not None:
        layers.append(norm(8))
    layers += [nn.Tanh(), nn.Linear(8, 8), nn.ReLU(), nn.Linear(8, 3)]
    return nn.Sequential(*layers).double()


def batch(step, n=8):
    rng = np.random.default_rng(500 + step)
    return rng.standard_normal((n, 6)), rng.integers(0, 3, n)


def shard(array, rank, world=WORLD):
    per = len(array) // world
    return array[rank * per:(rank + 1) * per]


class TwoHeads(nn.Module):
    """A model whose second head takes no part in the loss (find_unused_parameters)."""

    def __init__(self):
        super().__init__()
        self.body = nn.Linear(6, 4)
        self.used = nn.Linear(4, 3)
        self.unused = nn.Linear(4, 3)

    def forward(self, x):
        return self.used(self.body(x).tanh())


class Shared(nn.Module):
    """A layer called twice, and a parameter also read outside its module's forward."""

    def __init__(self):
        super().__init__()
        self.body = nn.Linear(6, 4)
        self.mid = nn.Linear(4, 4)
        self.head = nn.Linear(4, 3)

    def forward(self, x):
        # The parent reads the last layer's bias at the bottom of the graph, so backward reaches that use
        # long after the head's own; it depends on the rank's data, so it must be averaged like the rest.
        h = self.body(x) + (x[:, :3] * self.head.bias).sum(1, keepdim=True)
        return self.head(self.mid(self.mid(h.tanh()).tanh()))


SGD_STEPS = 20
SGD_OPTIONS = dict(lr=0.1, momentum=0.9, weight_decay=1e-3)
BN_SHAPE = (2, 3, 2, 2)   # per rank, for the SyncBatchNorm gradcheck


def bn_projection(rank):
    return np.random.default_rng(77 + rank).standard_normal(BN_SHAPE)


def grads(model):
    return [p.grad.detach().numpy().copy() for p in model.parameters()]


# ---- the distributed side ---------------------------------------------------------------------------------
def run_collectives(rank, out):
    for dtype in DTYPES:
        for name in OPS:
            op = dist.ReduceOp[name]
            if name == "AVG" and dtype == "int64":
                continue
            t = fastnn.tensor(rank_data(rank, dtype, 1))
            dist.all_reduce(t, op=op)
            out[f"all_reduce/{dtype}/{name}"] = t.detach().numpy().copy()
            t = fastnn.tensor(rank_data(rank, dtype, 2))
            work = dist.all_reduce(t, op=op, async_op=True)
            work.wait()
            out[f"all_reduce_async/{dtype}/{name}"] = t.detach().numpy().copy()
            output = fastnn.tensor(np.zeros((3, 4), dtype))
            inputs = [fastnn.tensor(rank_data(rank, dtype, 10 + j)) for j in range(WORLD)]
            dist.reduce_scatter(output, inputs, op=op)
            out[f"reduce_scatter/{dtype}/{name}"] = output.detach().numpy().copy()
        t = fastnn.tensor(rank_data(rank, dtype, 3))
        dist.broadcast(t, src=1)
        out[f"broadcast/{dtype}"] = t.detach().numpy().copy()
        gathered = [fastnn.tensor(np.zeros((3, 4), dtype)) for _ in range(WORLD)]
        dist.all_gather(gathered, fastnn.tensor(rank_data(rank, dtype, 4)))
        out[f"all_gather/{dtype}"] = np.stack([g.detach().numpy() for g in gathered])
    # In place into a non-contiguous view: the result must land in the viewed tensor.
    view = fastnn.Tensor(rank_data(rank, "float64", 5, shape=(4, 3))).T
    assert not view.detach().numpy().flags.c_contiguous
    dist.all_reduce(view)
    out["all_reduce/transposed"] = view.detach().numpy().copy()
    dist.barrier()
    for key, call in (("avg_int", lambda: dist.all_reduce(fastnn.tensor(np.ones(3, np.int64)), dist.ReduceOp.AVG)),
                      ("bad_src", lambda: dist.broadcast(fastnn.tensor(np.ones(3)), src=2)),
                      ("bad_op", lambda: dist.all_reduce(fastnn.tensor(np.ones(3)), op="sum")),
                      ("bad_list", lambda: dist.all_gather([fastnn.zeros(3)], fastnn.zeros(3)))):
        try:
            call()
            out[f"errors/{key}"] = np.array("no error")
        except (TypeError, ValueError) as error:
            out[f"errors/{key}"] = np.array(f"{type(error).__name__}: {error}")


def finish_async_reduce_scatter(rank, out):
    """reduce_scatter with async_op returns a Work; results appear only after wait()."""
    output = fastnn.tensor(np.zeros((3, 4)))
    inputs = [fastnn.tensor(rank_data(rank, "float64", 10 + j)) for j in range(WORLD)]
    work = dist.reduce_scatter(output, inputs, op=dist.ReduceOp.SUM, async_op=True)
    assert isinstance(work, dist.Work)
    work.wait()
    assert work.is_completed()
    out["reduce_scatter_async/float64/SUM"] = output.detach().numpy().copy()


def run_ddp(rank, out):
    x, y = batch(0)
    start_reduction = dist.process_group._all_reduce_arrays
    for label, cap in (("one_bucket", 25), ("many_buckets", 0.00005)):
        fastnn.manual_seed(rank)          # different replicas: DDP must broadcast rank 0's parameters
        model = make_mlp()
        ddp = dist.DistributedDataParallel(model, bucket_cap_mb=cap)
        out[f"ddp/{label}/buckets"] = np.array(len(ddp._buckets))
        loss = nn.CrossEntropyLoss()(ddp(fastnn.tensor(shard(x, rank))), fastnn.tensor(shard(y, rank)))
        # How many gradients were ready when each bucket's reduction started.
        ready_at_start = []

        def spy(arrays, what, ddp=ddp, log=ready_at_start):
            log.append(len(ddp._params) - ddp._incomplete)
            return start_reduction(arrays, what)
        dist.process_group._all_reduce_arrays = spy
        try:
            loss.backward()
        finally:
            dist.process_group._all_reduce_arrays = start_reduction
        out[f"ddp/{label}/ready_at_start"] = np.array(ready_at_start)
        for i, g in enumerate(grads(model)):
            out[f"ddp/{label}/grad{i}"] = g

    # no_sync: accumulate a first micro-batch locally, average at the second.
    fastnn.manual_seed(rank)
    model = make_mlp()
    ddp = dist.DistributedDataParallel(model, bucket_cap_mb=0.00005)
    (x1, y1), (x2, y2) = batch(1), batch(2)
    with ddp.no_sync():
        nn.CrossEntropyLoss()(ddp(fastnn.tensor(shard(x1, rank))), fastnn.tensor(shard(y1, rank))).backward()
    out["no_sync/local_grad0"] = grads(model)[0]
    nn.CrossEntropyLoss()(ddp(fastnn.tensor(shard(x2, rank))), fastnn.tensor(shard(y2, rank))).backward()
    for i, g in enumerate(grads(model)):
        out[f"no_sync/grad{i}"] = g

    # A head that takes no part in the loss (found without find_unused_parameters=True).
    for flag in (False, True):
        fastnn.manual_seed(rank)
        model = TwoHeads().double()
        ddp = dist.DistributedDataParallel(model, find_unused_parameters=flag)
        nn.CrossEntropyLoss()(ddp(fastnn.tensor(shard(x, rank))), fastnn.tensor(shard(y, rank))).backward()
        for name, p in model.named_parameters():
            out[f"unused/{flag}/{name}"] = p.grad.detach().numpy().copy()

    # A layer used twice and a parameter read by the parent; before it, a forward with grad never
    # backpropagated (evaluating in train mode), which the next forward must forget.
    fastnn.manual_seed(rank)
    model = Shared().double()
    ddp = dist.DistributedDataParallel(model)
    ddp(fastnn.tensor(shard(x, rank)))
    nn.CrossEntropyLoss()(ddp(fastnn.tensor(shard(x, rank))), fastnn.tensor(shard(y, rank))).backward()
    for name, p in model.named_parameters():
        out[f"shared/{name}"] = p.grad.detach().numpy().copy()

    # 20 SGD steps.
    fastnn.manual_seed(rank)
    model = make_mlp()
    ddp = dist.DistributedDataParallel(model)
    opt = optim.SGD(model.parameters(), **SGD_OPTIONS)
    for step in range(SGD_STEPS):
        xs, ys = batch(100 + step)
        opt.zero_grad()
        nn.CrossEntropyLoss()(ddp(fastnn.tensor(shard(xs, rank))), fastnn.tensor(shard(ys, rank))).backward()
        opt.step()
    for i, p in enumerate(model.parameters()):
        out[f"sgd/param{i}"] = p.detach().numpy().copy()

    # BatchNorm buffers: each rank's own running statistics after a training forward, rank 0's after the
    # next forward (which broadcasts them first; eval mode leaves them unchanged after that).
    fastnn.manual_seed(0)
    model = make_mlp(nn.BatchNorm1d)
    ddp = dist.DistributedDataParallel(model)
    ddp(fastnn.tensor(shard(x, rank)))
    out["buffers/after_train_forward"] = model[1].running_mean.detach().numpy().copy()
    ddp.eval()
    with fastnn.no_grad():
        ddp(fastnn.tensor(shard(x, rank)))
    out["buffers/after_eval_forward"] = model[1].running_mean.detach().numpy().copy()


def run_sync_batchnorm(rank, out):
    x, y = batch(3)
    fastnn.manual_seed(rank)
    model = make_mlp(dist.SyncBatchNorm)
    ddp = dist.DistributedDataParallel(model, bucket_cap_mb=0.00005)
    logits = ddp(fastnn.tensor(shard(x, rank)))
    nn.CrossEntropyLoss()(logits, fastnn.tensor(shard(y, rank))).backward()
    out["syncbn_ddp/logits"] = logits.detach().numpy().copy()
    out["syncbn_ddp/running_mean"] = model[1].running_mean.detach().numpy().copy()
    out["syncbn_ddp/running_var"] = model[1].running_var.detach().numpy().copy()
    for i, g in enumerate(grads(model)):
        out[f"syncbn_ddp/grad{i}"] = g

    # Gradcheck across ranks: the scalar is sum over ranks of <output_r, projection_r>; each input element of
    # each rank is perturbed in turn (on its owner only), and every rank evaluates the same global scalar.
    bn = dist.SyncBatchNorm(BN_SHAPE[1]).double()
    bn.weight.data[...] = [0.5, 1.5, -1.0]
    bn.bias.data[...] = [0.1, -0.2, 0.3]
    local = np.random.default_rng(200 + rank).standard_normal(BN_SHAPE)
    proj = bn_projection(rank)
    xt = fastnn.tensor(local.copy(), dtype=fastnn.float64)
    xt.requires_grad_(True)
    (bn(xt) * fastnn.tensor(proj)).sum().backward()
    out["syncbn/input_grad"] = xt.grad.detach().numpy().copy()
    out["syncbn/weight_grad"] = bn.weight.grad.detach().numpy().copy()
    out["syncbn/bias_grad"] = bn.bias.grad.detach().numpy().copy()

    def global_scalar(values):
        with fastnn.no_grad():
            s = fastnn.tensor(np.array([float((bn(fastnn.tensor(values)).detach().numpy() * proj).sum())]))
        dist.all_reduce(s)
        return float(s.detach().numpy()[0])

    eps = 1e-6
    numeric = np.zeros(BN_SHAPE)
    for owner in range(WORLD):
        for j in range(local.size):
            values = []
            for sign in (1, -1):
                perturbed = local.copy()
                if rank == owner:
                    perturbed.reshape(-1)[j] += sign * eps
                values.append(global_scalar(perturbed))
            if rank == owner:
                numeric.reshape(-1)[j] = (values[0] - values[1]) / (2 * eps)
    out["syncbn/input_grad_numeric"] = numeric


def main():
    mode, outdir = sys.argv[1], sys.argv[2]
    if mode == "single":
        # No launcher: a world of one.
        dist.init_process_group("mpi")
        t = fastnn.tensor(np.arange(3.0))
        dist.all_reduce(t, op=dist.ReduceOp.AVG)
        model = make_mlp(dist.SyncBatchNorm)
        dist.DistributedDataParallel(model)
        print(f"single: rank {dist.get_rank()} of {dist.get_world_size()}, all_reduce {t.tolist()}")
        dist.destroy_process_group()
        print("initialized after destroy:", dist.is_initialized())
        return
    if mode == "timeout":
        dist.init_process_group("mpi", timeout=timedelta(seconds=2))
        if dist.get_rank() == 1:
            time.sleep(60)   # never joins the all_reduce below
        dist.all_reduce(fastnn.tensor(np.ones(3)))
        return
    dist.init_process_group("mpi")
    rank = dist.get_rank()
    assert dist.get_world_size() == WORLD, dist.get_world_size()
    if mode == "raise":
        fastnn.manual_seed(0)
        ddp = dist.DistributedDataParallel(make_mlp())
        for step in range(5):
            if rank == 1 and step == 2:
                raise RuntimeError("injected failure in the middle of the epoch")
            x, y = batch(step)
            nn.CrossEntropyLoss()(ddp(fastnn.tensor(shard(x, rank))), fastnn.tensor(shard(y, rank))).backward()
        return
    out = {}
    run_collectives(rank, out)
    finish_async_reduce_scatter(rank, out)
    run_ddp(rank, out)
    run_sync_batchnorm(rank, out)
    np.savez(f"{outdir}/rank{rank}.npz", **out)
    dist.destroy_process_group()


if __name__ == "__main__":
    main()

"""DistributedDataParallel: one model replica per rank, gradients averaged across ranks in fused buckets.

How gradients are caught. Each trainable parameter carries a post-accumulate-grad hook
(Tensor.register_post_accumulate_grad_hook, as PyTorch's DDP uses), which the engine calls once per backward,
right after the op that last reads the parameter has been differentiated and the gradient added into .grad. So
when a parameter's hook runs, its gradient (plus what .grad already held, for accumulation) is complete: it is
copied into its slot of a flat bucket, and once every slot of a bucket is, that bucket's nonblocking all-reduce
starts (Horovod-style fusion, in bucket order on every rank) while backward goes on through the earlier layers.
The last gradient waits for every bucket and writes the averages into .grad. Which parameters the outputs depend
on is found by a walk of the graph after forward; the others are complete at once. With MPICH the data moves
only while a rank is inside an MPI call (no progress thread by default), so DDP polls the started buckets at
every ready gradient.
"""
import contextlib

import numpy as np

from fastnn.autograd import is_grad_enabled
from fastnn.nn.modules.module import Module
from fastnn.tensor import Tensor
from fastnn.distributed import process_group as pg

__all__ = ["DistributedDataParallel"]

# As in PyTorch, the first bucket (the last layers' gradients, ready first) is capped at 1 MB, so that a
# reduction starts early in backward even when the whole model would fit in one bucket_cap_mb bucket.
FIRST_BUCKET_BYTES = 1024 * 1024


class _Bucket:
    """Consecutive parameters (in reverse registration order, roughly the order backward reaches them) of one
    dtype, whose gradients travel in one flat buffer."""

    def __init__(self, index, dtype):
        self.index = index
        self.dtype = dtype
        self.params = []
        self.offsets = []
        self.numel = 0
        self.flat = None
        self.ready = 0
        self.work = None

    def add(self, p):
        self.params.append(p)
        self.offsets.append(self.numel)
        self.numel += p.numel()

    def slot(self, i):
        start = self.offsets[i]
        return self.flat[start:start + self.params[i].numel()]


class DistributedDataParallel(Module):
    """Wrap `module` for data-parallel training over the default process group (PyTorch's signature).

    At construction rank 0's parameters and buffers are broadcast to every rank, so all replicas start equal.
    After each backward the gradients are averaged over ranks in buckets of at most `bucket_cap_mb` MB (the
    first one at most 1 MB); each
    bucket's all-reduce starts as soon as its gradients are ready during backward. With `broadcast_buffers`
    (default) rank 0's buffers (BatchNorm running statistics) are broadcast to every rank at the start of each
    forward: each rank normalizes with its own batch's statistics, but only rank 0's running averages survive
    (use SyncBatchNorm for statistics over all ranks). `no_sync()` skips the reduction for gradient accumulation.
    Without an initialized group (or with one rank) it simply runs the module.

    Parameters the outputs do not depend on are found by a walk of the graph after every forward (DDP needs it
    anyway) and contribute zeros (or the gradient accumulated so far), so `find_unused_parameters` is accepted
    for PyTorch's signature but not needed. Every rank must backpropagate through the outputs of each forward
    run with grad enabled before the next one, or run that forward under no_grad.
    """

    def __init__(self, module, device_ids=None, output_device=None, dim=0, broadcast_buffers=True,
                 init_sync=True, process_group=None, bucket_cap_mb=25, find_unused_parameters=False):
        super().__init__()
        if not isinstance(module, Module):
            raise TypeError(f"module must be a fastnn.nn.Module, got {type(module).__name__}")
        if device_ids not in (None, []) or output_device is not None:
            raise ValueError("device_ids and output_device are for GPU replicas; fastnn's DDP runs one CPU "
                             "replica per process: leave them None")
        if dim != 0:
            raise ValueError(f"dim must be 0 (inputs are split by the sampler, not by DDP), got {dim}")
        pg._check_group_arg(process_group)
        if isinstance(bucket_cap_mb, bool) or not isinstance(bucket_cap_mb, (int, float)) or not bucket_cap_mb > 0:
            raise ValueError(f"bucket_cap_mb must be a positive number, got {bucket_cap_mb!r}")
        self.module = module
        self.broadcast_buffers = bool(broadcast_buffers)
        self.bucket_cap_mb = bucket_cap_mb
        self.find_unused_parameters = bool(find_unused_parameters)
        self.require_backward_grad_sync = True
        self.world_size = pg.get_world_size()
        params, seen = [], set()
        for p in module.parameters():
            if p.requires_grad and id(p) not in seen:
                seen.add(id(p))
                params.append(p)
        self._params = params
        self._signature = self._parameter_signature()
        self._buckets, self._slot = self._build_buckets(params, int(bucket_cap_mb * 1024 * 1024),
                                                        min(FIRST_BUCKET_BYTES, int(bucket_cap_mb * 1024 * 1024)))
        self._next_launch = 0
        self._incomplete = 0      # parameters whose gradient the current iteration still waits for
        self._waiting, self._fired_any, self._synced_forward = set(), False, False
        if self.world_size > 1:
            if init_sync:
                self._broadcast(list(module.parameters()) + [b for b in module.buffers() if b is not None])
            self._hook_handles = [p.register_post_accumulate_grad_hook(self._grad_ready) for p in params]

    def _parameter_signature(self):
        return [(id(p), p.dtype, p.shape) for p in self.module.parameters() if p.requires_grad]

    @staticmethod
    def _build_buckets(params, cap_bytes, first_cap_bytes):
        # As PyTorch assigns them: a bucket closes once it holds at least its cap (so one large parameter
        # makes a bucket of its own), and parameters of another dtype open a new one.
        buckets, slot, open_bucket = [], {}, None
        for p in reversed(params):
            if open_bucket is None or open_bucket.dtype != p.dtype:
                open_bucket = _Bucket(len(buckets), p.dtype)
                buckets.append(open_bucket)
            slot[id(p)] = (open_bucket, len(open_bucket.params))
            open_bucket.add(p)
            cap = first_cap_bytes if open_bucket.index == 0 else cap_bytes
            if open_bucket.numel * p.dtype.itemsize >= cap:
                open_bucket = None
        for b in buckets:
            b.flat = np.empty(b.numel, b.dtype)
        return buckets, slot

    # ---- broadcasts --------------------------------------------------------------------------------------
    @staticmethod
    def _broadcast(tensors):
        """Broadcast `tensors` from rank 0 in one flat message per dtype."""
        by_dtype = {}
        for t in tensors:
            by_dtype.setdefault(t.dtype, []).append(t)
        for dtype, group in by_dtype.items():
            arrays = [t.detach().numpy() for t in group]
            flat = np.concatenate([a.reshape(-1) for a in arrays]) if arrays else np.empty(0, dtype)
            pg.broadcast(Tensor(flat), src=0)
            start = 0
            for a in arrays:
                a[...] = flat[start:start + a.size].reshape(a.shape)
                start += a.size

    # ---- forward -----------------------------------------------------------------------------------------
    @contextlib.contextmanager
    def no_sync(self):
        """Inside, backward accumulates gradients locally without communication; the first synchronized
        backward after it averages the accumulated gradients."""
        previous = self.require_backward_grad_sync
        self.require_backward_grad_sync = False
        try:
            yield
        finally:
            self.require_backward_grad_sync = previous

    def forward(self, *inputs, **kwargs):
        if self.world_size == 1:
            return self.module(*inputs, **kwargs)
        if self._incomplete:
            if self._fired_any:
                missing = [name for name, p in self.module.named_parameters() if id(p) in self._waiting]
                raise RuntimeError(
                    "Expected to have finished reduction in the prior iteration before starting a new one: "
                    f"{len(missing)} parameters got no gradient in the last backward ({', '.join(missing[:5])}"
                    f"{', ...' if len(missing) > 5 else ''}). Every rank must call backward on a loss that uses "
                    "all the outputs of each forward run with grad enabled (or run that forward under no_grad).")
            self._abandon()   # a forward with grad whose output was never backpropagated
        self._synced_forward = False
        if self.broadcast_buffers:
            buffers = [b for b in self.module.buffers() if b is not None]
            if buffers:
                self._broadcast(buffers)
        if not (is_grad_enabled() and self.require_backward_grad_sync and self._params):
            return self.module(*inputs, **kwargs)
        if self._parameter_signature() != self._signature:
            raise RuntimeError("the module's trainable parameters changed (dtype, shape, or which ones) after "
                               "DistributedDataParallel wrapped it: convert the module (.double(), .to(), "
                               "requires_grad_) before wrapping it, as in PyTorch")
        out = self.module(*inputs, **kwargs)
        self._prepare_backward(out)
        return out

    def _prepare_backward(self, out):
        """Wait for the gradients of the parameters the outputs depend on. The others are complete now (their
        slot holds zeros, or the gradient accumulated so far), so find_unused_parameters is never needed."""
        reached = _reachable_leaves(out)
        self._waiting = {id(p) for p in self._params if id(p) in reached}
        self._fired_any, self._synced_forward = False, True
        self._incomplete, self._next_launch = len(self._params), 0
        for b in self._buckets:
            b.ready, b.work = 0, None
        for p in self._params:
            if id(p) not in self._waiting:
                self._start_slot(p)
                self._complete(p)

    def _abandon(self):
        """Forget an iteration whose backward never came, after finishing the reductions it started (every
        rank started the same ones, in the same order)."""
        for b in self._buckets[:self._next_launch]:
            b.work.wait()
        self._incomplete = 0

    # ---- backward ----------------------------------------------------------------------------------------
    def _start_slot(self, p):
        slot = self._slot[id(p)][0].slot(self._slot[id(p)][1])
        if p.grad is None:
            slot[...] = 0
        else:
            slot[...] = p.grad.detach().numpy().reshape(-1)

    def _grad_ready(self, p):
        """The post-accumulate-grad hook: p.grad now holds p's whole gradient of this backward."""
        key = id(p)
        if key not in self._waiting:
            if self._synced_forward and self._incomplete == 0:
                raise RuntimeError("DistributedDataParallel: a parameter's gradient arrived after its reduction "
                                   "(backward through the same forward twice?); run forward again before backward")
            return   # a backward outside a synchronized iteration (no_sync, or the bare module's own graph)
        self._waiting.discard(key)
        self._fired_any = True
        self._start_slot(p)
        self._complete(p)

    def _complete(self, p):
        self._slot[id(p)][0].ready += 1
        self._incomplete -= 1
        self._launch_ready_buckets()
        if self._incomplete == 0:
            self._finish()

    def _launch_ready_buckets(self):
        # Buckets start strictly in index order, so every rank issues the same collectives in the same order
        # whatever order its gradients became ready in.
        while self._next_launch < len(self._buckets):
            b = self._buckets[self._next_launch]
            if b.ready < len(b.params):
                break
            b.work = pg._all_reduce_arrays([b.flat], f"gradient all_reduce of bucket {b.index} ({b.numel} "
                                                      f"{b.dtype} values)")
            self._next_launch += 1
        pg._progress([b.work for b in self._buckets[:self._next_launch]])

    def _finish(self):
        for b in self._buckets:
            b.work.wait()
            b.flat /= self.world_size
            for i, p in enumerate(b.params):
                averaged = b.slot(i).reshape(p.shape)
                if p.grad is not None and p.grad.shape == p.shape:
                    p.grad.detach().numpy()[...] = averaged
                else:
                    p.grad = Tensor(averaged.copy(), device=p.device)


def _reachable_leaves(out):
    """ids of the leaf tensors reachable from the tensors in `out` (a tensor or nested list/tuple/dict)."""
    stack, seen, leaves = list(_tensors(out)), set(), set()
    while stack:
        t = stack.pop()
        if id(t) in seen:
            continue
        seen.add(id(t))
        if t._node is None:
            leaves.add(id(t))
        else:
            stack.extend(t._node.inputs)
    return leaves


def _tensors(obj):
    if isinstance(obj, Tensor):
        yield obj
    elif isinstance(obj, (list, tuple)):
        for o in obj:
            yield from _tensors(o)
    elif isinstance(obj, dict):
        for o in obj.values():
            yield from _tensors(o)

"""DistributedDataParallel: one model replica per rank, gradients averaged across ranks in fused buckets.

How gradients are caught. fastnn's autograd engine has no per-parameter gradient hook, so for each forward run
with grad enabled DDP puts, in place of every trainable parameter, an identity view of it (an ordinary graph
node made with autograd.make_result, like any op); the parameters are restored right after forward, so the
module, its state_dict and the optimizer only ever see the real Parameters. The engine calls a node's backward
once the gradient reaching it is complete, so the view's backward means "this parameter's gradient is ready":
it copies the gradient (plus what .grad already held, for accumulation) into its slot of a flat bucket and,
once every slot of a bucket is filled, starts that bucket's nonblocking all-reduce (Horovod-style fusion, in
bucket order on every rank); the last ready gradient waits for every bucket and writes the averaged gradients
into .grad.

Overlap with backward: not available yet. The engine orders nodes by a depth-first reverse postorder, in which
a node whose inputs are all leaves (every view) comes after all other nodes, so every gradient becomes ready
only at the very end of backward and the buckets start in one burst then. What overlap needs from the engine
is PyTorch's `Tensor.register_post_accumulate_grad_hook`: a hook called once per backward when a leaf's
gradient is complete (after its last incoming edge), right after the node that consumed it last. The bucket
machinery here would then start each bucket during backward unchanged.
"""
import contextlib

import numpy as np

from fastnn.autograd import is_grad_enabled, make_result
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

    `find_unused_parameters=True` walks the graph after each forward and marks parameters that did not take part
    as ready (their bucket slot contributes zeros, or the gradient accumulated so far); otherwise every
    trainable parameter must receive a gradient in each backward, as in PyTorch.
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
        self._buckets, self._slot = self._build_buckets(params, int(bucket_cap_mb * 1024 * 1024),
                                                        min(FIRST_BUCKET_BYTES, int(bucket_cap_mb * 1024 * 1024)))
        self._next_launch = 0
        self._expected = 0
        self._marked = set()
        if init_sync and self.world_size > 1:
            self._broadcast(list(module.parameters()) + [b for b in module.buffers() if b is not None],
                            "initial broadcast of parameters and buffers")

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
    def _broadcast(tensors, what):
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
        if self._marked:
            raise RuntimeError(
                "Expected to have finished reduction in the prior iteration before starting a new one: "
                f"{self._expected - len(self._marked)} of {self._expected} parameters got no gradient in the "
                "last backward. Parameters that did not take part in producing the loss need "
                "DistributedDataParallel(..., find_unused_parameters=True); every rank must also call backward "
                "on an output of every forward run with grad enabled.")
        if self.broadcast_buffers:
            buffers = [b for b in self.module.buffers() if b is not None]
            if buffers:
                self._broadcast(buffers, "broadcast of buffers")
        if not (is_grad_enabled() and self.require_backward_grad_sync and self._params):
            return self.module(*inputs, **kwargs)
        views = {id(p): self._ready_view(p) for p in self._params}
        swapped = []
        try:
            for m in self.module.modules():
                for name, p in m._parameters.items():
                    if p is not None and id(p) in views:
                        swapped.append((m, name, p))
                        m._parameters[name] = views[id(p)]
            self._expected = len(self._params)
            out = self.module(*inputs, **kwargs)
        finally:
            for m, name, p in swapped:
                m._parameters[name] = p
        if self.find_unused_parameters:
            reached = _reachable_nodes(out)
            for p in self._params:
                if id(views[id(p)]._node) not in reached:
                    self._mark_ready(p, None)
        return out

    def _ready_view(self, p):
        def backward(g):
            self._mark_ready(p, g)
            return (None,)   # DDP writes .grad itself once the average is known
        return make_result(p.data, (p,), backward, "ddp_gradient_ready")

    # ---- backward ----------------------------------------------------------------------------------------
    def _mark_ready(self, p, g):
        if id(p) in self._marked:
            raise RuntimeError("DistributedDataParallel: a parameter's gradient became ready twice in one "
                               "iteration (backward through the same forward twice?); run forward again")
        self._marked.add(id(p))
        bucket, i = self._slot[id(p)]
        slot = bucket.slot(i)
        if g is None:
            slot[...] = 0
        else:
            slot[...] = np.reshape(g, -1)
        if p.grad is not None:
            slot += p.grad.detach().numpy().reshape(-1)
        bucket.ready += 1
        self._launch_ready_buckets()
        if len(self._marked) == self._expected:
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
            b.ready, b.work = 0, None
        # Ready for another backward through the same graph (retain_graph=True): it accumulates and averages
        # again, as a fresh backward would.
        self._marked, self._next_launch = set(), 0


def _reachable_nodes(out):
    """ids of the graph nodes reachable from the tensors in `out` (a tensor or nested list/tuple/dict)."""
    stack, seen = list(_tensors(out)), set()
    nodes = set()
    while stack:
        t = stack.pop()
        if id(t) in seen or t._node is None:
            continue
        seen.add(id(t))
        nodes.add(id(t._node))
        stack.extend(t._node.inputs)
    return nodes


def _tensors(obj):
    if isinstance(obj, Tensor):
        yield obj
    elif isinstance(obj, (list, tuple)):
        for o in obj:
            yield from _tensors(o)
    elif isinstance(obj, dict):
        for o in obj.values():
            yield from _tensors(o)

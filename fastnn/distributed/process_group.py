"""The process group on MPI: init/destroy, rank and size, and the collectives with torch.distributed's names.

Every collective is started as an MPI nonblocking operation (Iallreduce, Ibcast, ...) and finished by polling
it with Test() against the deadline set by init_process_group(timeout=...): a rank that waits longer than that
prints which collective it was waiting in and aborts the whole job (MPI_Abort), instead of hanging forever.
mpi4py is imported only here, lazily, so `import fastnn` never needs it.
"""
import datetime
import enum
import os
import sys
import time
import traceback

import numpy as np

from fastnn.tensor import Tensor

__all__ = ["ReduceOp", "Work", "init_process_group", "is_initialized", "is_available", "get_rank",
           "get_world_size", "get_backend", "barrier", "destroy_process_group", "all_reduce", "broadcast",
           "all_gather", "reduce_scatter"]

# PyTorch's default for its CPU backends (gloo, mpi).
default_pg_timeout = datetime.timedelta(minutes=30)
INSTALL_HINT = "fastnn.distributed needs mpi4py and an MPI library: pip install 'fastnn[distributed]'"


class ReduceOp(enum.Enum):
    SUM = "sum"
    AVG = "avg"
    PRODUCT = "product"
    MIN = "min"
    MAX = "max"


class _Group:
    """The initialized default group: a private duplicate of MPI_COMM_WORLD and the collective timeout."""

    def __init__(self, MPI, comm, timeout):
        self.MPI = MPI
        self.comm = comm
        self.rank = comm.Get_rank()
        self.size = comm.Get_size()
        self.timeout = timeout
        self.previous_excepthook = None


_group = None


def _mpi():
    """mpi4py.MPI, imported on first use (initializing MPI), or an ImportError saying how to install it."""
    try:
        from mpi4py import MPI
    except ImportError as error:
        raise ImportError(f"{INSTALL_HINT} ({error})") from error
    return MPI


def is_available():
    """True when mpi4py can be imported (the only backend fastnn.distributed has)."""
    try:
        _mpi()
    except ImportError:
        return False
    return True


def init_process_group(backend="mpi", init_method=None, timeout=None, world_size=-1, rank=-1, store=None,
                       group_name=""):
    """Join the job's default process group over MPI.

    Run under `fastnn run -n N` (or mpiexec/srun) every process joins a group of N; run alone it is a group of
    size 1, so the same script works without a launcher. MPI decides ranks and size: `world_size` and `rank`, if
    given, must agree with it. `timeout` (a datetime.timedelta, default 30 minutes as in PyTorch) bounds how long
    any collective may wait for the other ranks before the job is aborted. An uncaught exception on any rank
    prints its traceback with the rank's number and aborts every rank (non-zero exit, no hang).
    """
    global _group
    if backend not in ("mpi", None):
        raise ValueError(f"backend {backend!r} is not supported; fastnn.distributed has only backend='mpi'")
    if init_method not in (None, "env://") or store is not None:
        raise ValueError("init_method and store are not used by the MPI backend: the launcher (mpiexec, srun) "
                         "tells each process its rank")
    if _group is not None:
        raise RuntimeError("trying to initialize the default process group twice")
    timeout = default_pg_timeout if timeout is None else timeout
    if not isinstance(timeout, datetime.timedelta) or timeout.total_seconds() <= 0:
        raise ValueError(f"timeout must be a positive datetime.timedelta, got {timeout!r}")
    MPI = _mpi()
    comm = MPI.COMM_WORLD.Dup()
    size, my_rank = comm.Get_size(), comm.Get_rank()
    for name, given, actual in (("world_size", world_size, size), ("rank", rank, my_rank)):
        if given not in (-1, None) and given != actual:
            comm.Free()
            raise ValueError(f"{name}={given} disagrees with the MPI launcher's {name} {actual}")
    _group = _Group(MPI, comm, timeout)
    if size > 1:
        _set_threads_per_rank(comm, MPI)
        _group.previous_excepthook = sys.excepthook
        sys.excepthook = _abort_on_exception


def _set_threads_per_rank(comm, MPI):
    """Give each rank its share of this machine's cores unless the user chose (NUMBA_NUM_THREADS).

    `fastnn run` sets NUMBA_NUM_THREADS itself on one machine; this covers mpiexec/srun over several machines,
    where the number of ranks on each machine is known only here.
    """
    if "NUMBA_NUM_THREADS" in os.environ:
        return
    local = comm.Split_type(MPI.COMM_TYPE_SHARED)
    ranks_here = local.Get_size()
    local.Free()
    if ranks_here > 1:
        from fastnn import set_num_threads
        set_num_threads(max(1, len(os.sched_getaffinity(0)) // ranks_here))


def _abort_on_exception(exc_type, exc, tb):
    """sys.excepthook on every rank of a group of size > 1: name the rank, print the traceback, abort the job."""
    group = _group
    rank = "?" if group is None else group.rank
    size = "?" if group is None else group.size
    message = "".join(traceback.format_exception(exc_type, exc, tb))
    sys.stderr.write(f"fastnn.distributed: rank {rank} (of {size}) failed with an uncaught exception; aborting "
                     f"all ranks\n{message}")
    _flush_then_abort(group)


def _abort(message):
    """Print `message` naming this rank and abort every rank of the job."""
    sys.stderr.write(f"fastnn.distributed: rank {_group.rank} (of {_group.size}): {message}; aborting all "
                     f"ranks\n")
    _flush_then_abort(_group)


def _flush_then_abort(group):
    sys.stderr.flush()
    sys.stdout.flush()
    if group is None:
        return
    # MPI_Abort makes the launcher kill every rank at once; a moment first lets it forward the message above.
    time.sleep(0.5)
    group.MPI.COMM_WORLD.Abort(1)


def is_initialized():
    return _group is not None


def get_rank(group=None):
    """This process's rank in the default group; 0 when no group is initialized (a world of one)."""
    _check_group_arg(group)
    return 0 if _group is None else _group.rank


def get_world_size(group=None):
    """The number of processes in the default group; 1 when no group is initialized (a world of one)."""
    _check_group_arg(group)
    return 1 if _group is None else _group.size


def get_backend(group=None):
    _check_group_arg(group)
    _require_group()
    return "mpi"


def destroy_process_group(group=None):
    """Leave the default group (MPI itself is finalized when the interpreter exits)."""
    global _group
    _check_group_arg(group)
    if _group is None:
        return
    group, _group = _group, None
    if group.previous_excepthook is not None and sys.excepthook is _abort_on_exception:
        sys.excepthook = group.previous_excepthook
    group.comm.Free()


def _check_group_arg(group):
    if group is not None:
        raise ValueError("only the default process group (group=None) is supported")


def _require_group():
    if _group is None:
        raise RuntimeError("Default process group has not been initialized, please make sure to call "
                           "fastnn.distributed.init_process_group()")
    return _group


# ---- waiting -----------------------------------------------------------------------------------------------
def _wait_all(requests, what):
    """Complete MPI `requests`, polling with Test() until the group's deadline, then abort naming `what`.

    The first polls spin (latency of small messages); then the rank sleeps between polls, with growing sleeps
    up to 1 ms, so a rank waiting for a slow one does not take a core from it.
    """
    group = _group
    MPI = group.MPI
    pending = [r for r in requests if r is not None]
    if not pending:
        return
    deadline = time.monotonic() + group.timeout.total_seconds()
    spins, nap = 0, 1e-6
    test = pending[0].Test if len(pending) == 1 else (lambda: MPI.Request.Testall(pending))
    while not test():
        spins += 1
        if spins < 2000:
            continue
        if time.monotonic() > deadline:
            _abort(f"{what} did not complete within {group.timeout} (the timeout given to init_process_group): "
                   f"another rank failed, hangs or never called it")
        time.sleep(nap)
        nap = min(nap * 2, 1e-3)


class Work:
    """The handle of a collective started with async_op=True: wait() finishes it (copies results in place)."""

    def __init__(self, requests, what, finish=None):
        self._requests = list(requests)
        self._what = what
        self._finish = finish
        self._done = False

    def is_completed(self):
        if self._done:
            return True
        if _group.MPI.Request.Testall([r for r in self._requests if r is not None]):
            self.wait()
        return self._done

    def wait(self, timeout=None):
        if not self._done:
            _wait_all(self._requests, self._what)
            if self._finish is not None:
                self._finish()
            self._done = True
        return True


def _run(work, async_op):
    if async_op:
        return work
    work.wait()
    return None


# ---- tensors as MPI buffers --------------------------------------------------------------------------------
_MPI_OPS = {ReduceOp.SUM: "SUM", ReduceOp.AVG: "SUM", ReduceOp.PRODUCT: "PROD", ReduceOp.MIN: "MIN",
            ReduceOp.MAX: "MAX"}


def _host_array(tensor, name):
    if not isinstance(tensor, Tensor):
        raise TypeError(f"{name} must be a fastnn Tensor, got {type(tensor).__name__}")
    array = tensor.detach().numpy()
    if not isinstance(array, np.ndarray):
        raise TypeError(f"{name} must live in host memory (device 'cpu'), got device {tensor.device!r}")
    if not array.flags.writeable:
        raise ValueError(f"{name} is read-only: collectives write their result into the tensor in place")
    return array


def _buffer(array):
    """A C-contiguous array MPI can read and write: the array itself, or a copy to be written back."""
    return array if array.flags.c_contiguous else np.ascontiguousarray(array)


def _mpi_op(op):
    if not isinstance(op, ReduceOp):
        raise ValueError(f"op must be a fastnn.distributed.ReduceOp (SUM, AVG, PRODUCT, MIN, MAX), got {op!r}")
    return getattr(_group.MPI, _MPI_OPS[op])


def _check_avg(op, dtype, name):
    if op is ReduceOp.AVG and dtype.kind not in "fc":
        raise TypeError(f"ReduceOp.AVG needs a floating-point {name}, got dtype {dtype}")


def _check_src(src):
    if isinstance(src, bool) or not isinstance(src, (int, np.integer)) or not 0 <= src < _group.size:
        raise ValueError(f"src must be a rank in [0, {_group.size - 1}], got {src!r}")


# ---- collectives -------------------------------------------------------------------------------------------
def all_reduce(tensor, op=ReduceOp.SUM, group=None, async_op=False):
    """Reduce `tensor` over all ranks with `op`; every rank gets the result, in place."""
    _check_group_arg(group)
    g = _require_group()
    array = _host_array(tensor, "tensor")
    mpi_op = _mpi_op(op)
    _check_avg(op, array.dtype, "tensor")
    buf = _buffer(array)
    request = g.comm.Iallreduce(g.MPI.IN_PLACE, buf, op=mpi_op) if g.size > 1 else None

    def finish():
        if op is ReduceOp.AVG:
            buf[...] /= g.size
        if buf is not array:
            array[...] = buf
    return _run(Work([request], f"all_reduce of {array.shape} {array.dtype}", finish), async_op)


def broadcast(tensor, src, group=None, async_op=False):
    """Copy rank `src`'s `tensor` into `tensor` on every rank."""
    _check_group_arg(group)
    g = _require_group()
    array = _host_array(tensor, "tensor")
    _check_src(src)
    buf = _buffer(array)
    request = g.comm.Ibcast(buf, root=int(src)) if g.size > 1 else None

    def finish():
        if buf is not array:
            array[...] = buf
    return _run(Work([request], f"broadcast of {array.shape} {array.dtype} from rank {src}", finish), async_op)


def _check_list(tensors, name, like, size):
    if not isinstance(tensors, (list, tuple)) or len(tensors) != size:
        raise ValueError(f"{name} must be a list of world_size={size} tensors, got "
                         f"{type(tensors).__name__} of length {len(tensors) if hasattr(tensors, '__len__') else '?'}")
    arrays = [_host_array(t, f"{name}[{i}]") for i, t in enumerate(tensors)]
    for i, a in enumerate(arrays):
        if a.shape != like.shape or a.dtype != like.dtype:
            raise ValueError(f"{name}[{i}] has shape {a.shape} and dtype {a.dtype}; every entry must match "
                             f"the tensor's shape {like.shape} and dtype {like.dtype}")
    return arrays


def all_gather(tensor_list, tensor, group=None, async_op=False):
    """Fill tensor_list[r] with rank r's `tensor`, on every rank."""
    _check_group_arg(group)
    g = _require_group()
    array = _host_array(tensor, "tensor")
    outputs = _check_list(tensor_list, "tensor_list", array, g.size)
    send = np.ascontiguousarray(array)
    gathered = np.empty((g.size,) + array.shape, array.dtype)
    request = g.comm.Iallgather(send, gathered) if g.size > 1 else None
    if request is None:
        gathered[0] = array

    def finish():
        for r, out in enumerate(outputs):
            out[...] = gathered[r]
    return _run(Work([request], f"all_gather of {array.shape} {array.dtype}", finish), async_op)


def reduce_scatter(output, input_list, op=ReduceOp.SUM, group=None, async_op=False):
    """output on rank r = the reduction with `op`, over all ranks, of their input_list[r]."""
    _check_group_arg(group)
    g = _require_group()
    array = _host_array(output, "output")
    inputs = _check_list(input_list, "input_list", array, g.size)
    mpi_op = _mpi_op(op)
    _check_avg(op, array.dtype, "output")
    send = np.stack(inputs) if inputs else np.empty((0,), array.dtype)
    result = np.empty(array.shape, array.dtype)
    if g.size > 1:
        request = g.comm.Ireduce_scatter_block(send, result, op=mpi_op)
    else:
        request = None
        result[...] = send[0]

    def finish():
        if op is ReduceOp.AVG:
            result[...] /= g.size
        array[...] = result
    return _run(Work([request], f"reduce_scatter of {array.shape} {array.dtype}", finish), async_op)


def barrier(group=None, async_op=False, device_ids=None):
    """Wait until every rank has reached the barrier."""
    _check_group_arg(group)
    g = _require_group()
    request = g.comm.Ibarrier() if g.size > 1 else None
    return _run(Work([request], "barrier"), async_op)


def _all_reduce_arrays(arrays, what):
    """Start a SUM all-reduce of each contiguous array in place; returns the Work (for DDP's buckets)."""
    g = _require_group()
    requests = [g.comm.Iallreduce(g.MPI.IN_PLACE, a, op=g.MPI.SUM) for a in arrays] if g.size > 1 else []
    return Work(requests, what)


def _progress(works):
    """Let MPI advance in-flight collectives (MPICH moves data only inside MPI calls)."""
    for work in works:
        if not work._done and work._requests:
            _group.MPI.Request.Testall(work._requests)

"""DataLoader: batches of a data set, optionally built by background workers (torch.utils.data.DataLoader).

Workers are threads by default: batch building is NumPy copies, fancy indexing, ufuncs and augmentation
kernels, and the training step's kernels, which all release the GIL (every CPU kernel is nogil=True), so a
worker thread overlaps with the training step at no transfer cost; a worker process pays pickling through a
pipe and 1-3 s of start-up (it imports fastnn and Numba) and still competes for the same cores (measured
numbers: README, "Loading data"). A data set whose per-sample Python code dominates (decoding files with
per-image Python loops) is better served by processes: pass multiprocessing_context='spawn' or 'forkserver'.
'fork' is refused: Numba's OpenMP threading layer aborts in forked children. Worker threads need a Numba
threading layer that takes parallel launches from two threads at once (OpenMP, TBB); Numba's own 'workqueue'
layer (its choice where neither libgomp nor TBB is installed) aborts the process instead, so there a
thread-worker loader builds its batches in the calling thread, with a warning.

Randomness: when an iterator is created it draws a base seed (from `generator` when given, else from
fastnn.random.default_generator()). Batch i is then built with default_generator() switched, for the building
thread only, to a generator seeded by (base seed, i) (fastnn.random.use_generator). So random transforms give
the same batches with num_workers=0, threads or processes, whatever the number of workers -- stricter than
PyTorch, whose augmentations change with num_workers. As in PyTorch, get_worker_info().seed is base seed +
worker id, and process workers seed Python's `random`, NumPy's legacy global state and fastnn's global
generator with it. A transform holding its own `generator` is shared by all worker threads (and copied into
each worker process), so its draws are not reproducible with workers: leave `generator=None` in loaders.
"""
import itertools
import multiprocessing
import numbers
import os
import queue
import random
import sys
import threading
import traceback
import warnings

import numpy as np

from fastnn._dispatch import set_num_threads
from fastnn.data.dataset import IterableDataset, default_collate, default_convert, fetch_batch
from fastnn.data.sampler import BatchSampler, RandomSampler, SequentialSampler
from fastnn.random import default_generator, manual_seed, use_generator

__all__ = ["DataLoader", "WorkerInfo", "get_worker_info"]

_worker_state = threading.local()
_POLL_SECONDS = 1.0  # how often a waiting loader checks that its worker processes are alive


class WorkerInfo:
    """What get_worker_info() returns inside a worker: id, num_workers, seed and dataset."""

    def __init__(self, id, num_workers, seed, dataset):
        self.id, self.num_workers, self.seed, self.dataset = id, num_workers, seed, dataset

    def __repr__(self):
        return f"WorkerInfo(id={self.id}, num_workers={self.num_workers}, seed={self.seed})"


def get_worker_info():
    """The WorkerInfo of the worker (thread or process) running the caller; None outside workers."""
    return getattr(_worker_state, "info", None)


def _batch_generator(base_seed, batch_index):
    return np.random.default_rng([base_seed, batch_index])


def _fetch(dataset, indices, auto_collation, collate_fn):
    """One batch: `indices` is a list of indices (auto_collation) or a single index."""
    if not auto_collation:
        sample = dataset[indices]
        return default_convert(sample) if collate_fn is None else collate_fn(sample)
    if collate_fn is None or collate_fn is default_collate:
        return fetch_batch(dataset, np.asarray(indices, dtype=np.intp))
    return collate_fn([dataset[i] for i in indices])


class _Exhausted:
    """What a worker (or the calling thread) hands back for a batch its IterableDataset iterator ran out before."""


def _fetch_iterable(iterator, batch_size, drop_last, collate_fn):
    """The next batch of an IterableDataset's iterator (batch_size None: the next sample), or _Exhausted."""
    if batch_size is None:
        sample = next(iterator, _Exhausted)
        if sample is _Exhausted:
            return sample
        return default_convert(sample) if collate_fn is None else collate_fn(sample)
    samples = list(itertools.islice(iterator, batch_size))
    if not samples or (drop_last and len(samples) < batch_size):
        return _Exhausted
    return (collate_fn or default_collate)(samples)


class _IterableFetcher:
    """Batches of an IterableDataset for one worker (or the calling thread): a fresh iterator per epoch."""

    def __init__(self, dataset, batch_size, drop_last, collate_fn):
        self.dataset, self.batch_size, self.drop_last, self.collate_fn = dataset, batch_size, drop_last, collate_fn
        self.epoch, self.iterator = None, None

    def __call__(self, epoch):
        if epoch != self.epoch:
            self.epoch, self.iterator = epoch, iter(self.dataset)
        if self.iterator is None:
            return _Exhausted
        data = _fetch_iterable(self.iterator, self.batch_size, self.drop_last, self.collate_fn)
        if data is _Exhausted:
            self.iterator = None  # later asks this epoch get _Exhausted without touching the iterator again
        return data


class _ExceptionWrapper:
    """An exception raised in a worker, carried to the main thread as its type and formatted traceback."""

    def __init__(self, where):
        exc_type, exc, _ = sys.exc_info()
        self.exc_type = exc_type
        self.message = f"Caught {exc_type.__name__} {where}.\nOriginal {traceback.format_exc()}"

    def reraise(self):
        try:
            error = self.exc_type(self.message)
        except Exception:  # an exception type that doesn't take one message
            error = RuntimeError(self.message)
        raise error


def _run_on_idle_cores():
    """Put the calling worker thread under Linux's SCHED_IDLE policy: it then runs on cores the training step
    leaves idle (between its parallel regions) and never preempts a kernel thread when it wakes, which at normal
    priority stalled the step's parallel regions (a region waits for its slowest thread). Elsewhere, or if the
    system refuses, the thread keeps its priority."""
    if hasattr(os, "SCHED_IDLE"):
        try:
            os.sched_setscheduler(0, os.SCHED_IDLE, os.sched_param(0))  # 0: this thread
        except OSError:
            pass


def _worker_loop(dataset, index_queue, result_queue, auto_collation, collate_fn, worker_init_fn, worker_id,
                 num_workers, seed, in_process, parent_pid, iterable):
    """Body of a worker thread or process: build the batches asked on index_queue until it sends None.
    `iterable` is None for a map-style data set, else (batch_size, drop_last) of an IterableDataset's loader."""
    _worker_state.info = WorkerInfo(worker_id, num_workers, seed, dataset)
    # Parallel kernels launched by a worker run on one thread (Numba's setting is per thread), as PyTorch's
    # workers do: the training step owns the cores, and two busy-waiting thread teams on them slow both.
    set_num_threads(1)
    if in_process:
        random.seed(seed)
        np.random.seed(seed % 2**32)
        manual_seed(seed)
    else:
        _run_on_idle_cores()
    init_error, fetch_iterable = None, None if iterable is None else _IterableFetcher(dataset, *iterable, collate_fn)
    if worker_init_fn is not None:
        try:
            worker_init_fn(worker_id)
        except Exception:
            init_error = _ExceptionWrapper(f"in worker_init_fn of DataLoader worker {worker_id}")
    while True:
        try:
            task = index_queue.get(timeout=_POLL_SECONDS) if in_process else index_queue.get()
        except queue.Empty:
            if os.getppid() != parent_pid:  # the training process died: don't linger
                break
            continue
        if task is None:
            break
        epoch, batch_index, base_seed, indices = task
        if init_error is not None:
            result_queue.put((epoch, batch_index, init_error))
            continue
        try:
            with use_generator(_batch_generator(base_seed, batch_index)):
                if fetch_iterable is None:
                    data = _fetch(dataset, indices, auto_collation, collate_fn)
                else:
                    data = fetch_iterable(epoch)
        except Exception:
            data = _ExceptionWrapper(f"in DataLoader worker {worker_id}")
        result_queue.put((epoch, batch_index, data))
    if in_process:
        # Exit without waiting to flush unread batches into the pipe: with the reader gone (or done), that wait
        # never ends, and a worker orphaned by a killed training process would hang forever.
        result_queue.cancel_join_thread()


class _WorkerPool:
    """num_workers threads or processes, each with its own task queue, and one shared result queue."""

    def __init__(self, loader, base_seed):
        self.timeout = loader.timeout
        context = loader._process_context
        self.in_process = context is not None
        make_queue = context.Queue if self.in_process else queue.Queue
        self.result_queue = make_queue()
        self.index_queues, self.workers = [], []
        self.epoch = 0
        for worker_id in range(loader.num_workers):
            index_queue = make_queue()
            args = (loader.dataset, index_queue, self.result_queue, loader._auto_collation, loader.collate_fn,
                    loader.worker_init_fn, worker_id, loader.num_workers, base_seed + worker_id, self.in_process,
                    os.getpid(), (loader.batch_size, loader.drop_last) if loader._iterable else None)
            if self.in_process:
                worker = context.Process(target=_worker_loop, args=args, daemon=True)
            else:
                worker = threading.Thread(target=_worker_loop, args=args, daemon=True,
                                          name=f"fastnn-DataLoader-worker-{worker_id}")
            try:
                worker.start()
            except Exception as error:
                self.shutdown()
                if self.in_process:
                    raise TypeError(f"DataLoader could not start worker process {worker_id} "
                                    f"({type(error).__name__}: {error}); with multiprocessing_context="
                                    f"{context.get_start_method()!r} the dataset, collate_fn and worker_init_fn "
                                    f"must be picklable (defined at module level, no lambdas), or use worker "
                                    f"threads (multiprocessing_context=None)") from error
                raise
            self.index_queues.append(index_queue)
            self.workers.append(worker)

    def put(self, worker_id, task):
        self.index_queues[worker_id].put(task)

    def get(self):
        """The next (epoch, batch_index, data) any worker finished."""
        waited = 0.0
        while True:
            step = _POLL_SECONDS if not self.timeout else min(_POLL_SECONDS, self.timeout - waited)
            try:
                return self.result_queue.get(timeout=step)
            except queue.Empty:
                waited += step
            dead = [w for w in self.workers if not w.is_alive()]
            if dead:
                names = ", ".join(str(w.pid) if self.in_process else w.name for w in dead)
                self.shutdown()
                raise RuntimeError(f"DataLoader worker ({names}) exited unexpectedly")
            if self.timeout and waited >= self.timeout:
                raise RuntimeError(f"DataLoader timed out after {self.timeout} seconds")

    def shutdown(self):
        for index_queue in self.index_queues:
            index_queue.put(None)
        if self.in_process:  # threads are daemons that end after their current batch: no wait for them
            for worker in self.workers:
                worker.join(timeout=5)
                if worker.is_alive():
                    worker.terminate()
            for q in self.index_queues + [self.result_queue]:
                q.cancel_join_thread()
                q.close()
        self.index_queues, self.workers = [], []


class _SingleProcessIter:
    def __init__(self, loader):
        self._loader = loader
        self._base_seed = loader._draw_base_seed()
        if loader._iterable:
            self._fetch_iterable = _IterableFetcher(loader.dataset, loader.batch_size, loader.drop_last,
                                                    loader.collate_fn)
        else:
            self._index_iter = iter(loader._index_sampler)
        self._batch_index = 0

    def __iter__(self):
        return self

    def __next__(self):
        loader = self._loader
        indices = None if loader._iterable else next(self._index_iter)
        with use_generator(_batch_generator(self._base_seed, self._batch_index)):
            if loader._iterable:
                data = self._fetch_iterable(0)
            else:
                data = _fetch(loader.dataset, indices, loader._auto_collation, loader.collate_fn)
        if data is _Exhausted:
            raise StopIteration
        self._batch_index += 1
        return data

    def __len__(self):
        return len(self._loader)


class _WorkersIter:
    """Keeps prefetch_factor * num_workers batches asked of the workers (round-robin) and yields them in order
    (or as they come, in_order=False). With an IterableDataset every ask is "your next batch", and a worker
    whose iterator ran out is asked no more (its answer to each ask still in flight is dropped)."""

    def __init__(self, loader):
        self._loader = loader
        self._base_seed = loader._draw_base_seed()
        self._index_iter = itertools.repeat(None) if loader._iterable else iter(loader._index_sampler)
        pool = loader._persistent_pool
        if pool is None:
            pool = _WorkerPool(loader, self._base_seed)
            if loader.persistent_workers:
                loader._persistent_pool = pool
        self._pool = pool
        pool.epoch += 1  # results of an abandoned earlier iterator carry an older epoch and are dropped
        self._epoch = pool.epoch
        self._active = list(range(loader.num_workers))  # workers still asked for batches, in round-robin order
        self._position = 0  # in _active: the worker asked next
        self._worker_of = {}  # batch index -> the worker asked for it
        self._sent = self._yielded = 0
        self._buffer = {}
        for _ in range(loader.prefetch_factor * loader.num_workers):
            if not self._ask_next():
                break

    def _ask_next(self):
        if not self._active:
            return False
        try:
            indices = next(self._index_iter)
        except StopIteration:
            return False
        worker = self._active[self._position]
        self._position = (self._position + 1) % len(self._active)
        self._worker_of[self._sent] = worker
        self._pool.put(worker, (self._epoch, self._sent, self._base_seed, indices))
        self._sent += 1
        return True

    def _retire(self, worker):
        """Ask `worker` (whose iterator ran out) no more, keeping the round-robin order of the others."""
        if worker in self._active:
            if self._active.index(worker) < self._position:
                self._position -= 1
            self._active.remove(worker)
            self._position = self._position % len(self._active) if self._active else 0

    def __iter__(self):
        return self

    def __next__(self):
        if self._pool is None:
            raise StopIteration
        if self._pool.epoch != self._epoch:
            self._pool = None
            raise RuntimeError("this DataLoader iterator was superseded by a newer iter() of the same loader: "
                               "persistent workers serve one iterator at a time")
        while True:
            if self._sent == self._yielded:
                self._finish()
                raise StopIteration
            batch_index = None
            if self._loader.in_order and self._yielded in self._buffer:
                batch_index = self._yielded
            elif not self._loader.in_order and self._buffer:
                batch_index = next(iter(self._buffer))
            if batch_index is not None:
                data = self._buffer.pop(batch_index)
                if data is not _Exhausted:
                    break
                self._yielded += 1  # an IterableDataset worker ran out: nothing to yield for this ask
                self._retire(self._worker_of.pop(batch_index))
                self._ask_next()
                continue
            try:
                epoch, batch_index, data = self._pool.get()
            except RuntimeError:  # timed out or a worker died: these workers are done with
                pool = self._pool
                self._forget_pool()
                pool.shutdown()
                raise
            if epoch == self._epoch:
                self._buffer[batch_index] = data
        self._yielded += 1
        self._worker_of.pop(batch_index, None)
        self._ask_next()
        if isinstance(data, _ExceptionWrapper):
            data.reraise()
        return data

    def __len__(self):
        return len(self._loader)

    def _forget_pool(self):
        if self._loader._persistent_pool is self._pool:
            self._loader._persistent_pool = None
        self._pool = None

    def _finish(self):
        if getattr(self, "_pool", None) is not None and self._pool is not self._loader._persistent_pool:
            self._pool.shutdown()
        self._pool = None

    def __del__(self):
        self._finish()


def _kernel_threading_layer():
    """The threading layer Numba runs parallel kernels on ('omp', 'tbb' or 'workqueue'), started if need be
    (numba.get_num_threads starts it, as the first parallel launch would)."""
    import numba
    numba.get_num_threads()
    return numba.threading_layer()


def _threads_can_run_kernels(layer):
    """Whether worker threads may launch parallel kernels while the training thread does, on Numba threading
    layer `layer`. OpenMP and TBB are thread-safe; 'workqueue' (Numba's own layer, its choice on a machine
    without libgomp or TBB) aborts the whole process on a concurrent launch, even at one thread per caller."""
    return layer in ("omp", "tbb")


def _check_context(context, num_workers):
    """None for worker threads, else a multiprocessing context with the spawn or forkserver start method."""
    if context is None or context == "thread":
        return None
    if num_workers == 0:
        raise ValueError(f"multiprocessing_context can only be used with multi-process loading (num_workers > 0), "
                         f"but got num_workers={num_workers}")
    if isinstance(context, str):
        if context not in multiprocessing.get_all_start_methods():
            raise ValueError(f"multiprocessing_context {context!r} is not a start method of this platform "
                             f"({multiprocessing.get_all_start_methods()}); use 'spawn', 'forkserver' or "
                             f"None (worker threads)")
        context = multiprocessing.get_context(context)
    method = getattr(context, "get_start_method", lambda: None)()
    if method not in ("spawn", "forkserver"):
        raise ValueError(f"multiprocessing_context must use the 'spawn' or 'forkserver' start method, got "
                         f"{method!r}: Numba's OpenMP threading layer aborts in forked children")
    return context


class DataLoader:
    """Batches of `dataset`, with torch.utils.data.DataLoader's arguments and semantics.

    shuffle=True samples with RandomSampler(dataset, generator=generator); `sampler` replaces the order and
    `batch_sampler` the batching (each excludes the corresponding arguments, as in PyTorch); batch_size=None
    yields single samples (converted to Tensors) without batching. Without collate_fn (or with default_collate),
    data sets with `get_batch` (TensorDataset, FashionMNIST, CIFAR10, Subsets of them) are batched by one
    fancy-indexing call over whole arrays, their transforms applied to the whole batch; others by __getitem__
    per sample and default_collate. A collate_fn receives the list of samples of each batch. An IterableDataset
    is batched as its iterator yields (no sampler: shuffle, sampler and batch_sampler are refused); with workers
    each worker runs its own iterator (shard by get_worker_info()) and batches come from the workers in turn.

    num_workers > 0 builds batches in background workers (threads, or processes with
    multiprocessing_context='spawn'/'forkserver'; see the module notes for the measured choice and for
    randomness), each keeping up to prefetch_factor (default 2) batches in flight; persistent_workers keeps
    them between epochs; worker_init_fn(worker_id) runs first in each worker, where get_worker_info() tells it
    its id, num_workers, seed and dataset. timeout (seconds, 0 = none) bounds the wait for one batch.
    in_order=False yields batches as they are finished. pin_memory and pin_memory_device are accepted for
    compatibility and do nothing (CPU tensors).
    """

    def __init__(self, dataset, batch_size=1, shuffle=None, sampler=None, batch_sampler=None, num_workers=0,
                 collate_fn=None, pin_memory=False, drop_last=False, timeout=0, worker_init_fn=None,
                 multiprocessing_context=None, generator=None, *, prefetch_factor=None, persistent_workers=False,
                 pin_memory_device="", in_order=True):
        if batch_size is not None and (isinstance(batch_size, bool) or not isinstance(batch_size, numbers.Integral)
                                       or batch_size < 1):
            raise ValueError(f"batch_size should be a positive integer or None, got {batch_size!r}")
        if isinstance(num_workers, bool) or not isinstance(num_workers, numbers.Integral) or num_workers < 0:
            raise ValueError(f"num_workers option should be a non-negative integer, got {num_workers!r}; use "
                             f"num_workers=0 to build batches in the calling thread")
        if not isinstance(timeout, numbers.Real) or timeout < 0:
            raise ValueError(f"timeout option should be non-negative, got {timeout!r}")
        if num_workers == 0 and prefetch_factor is not None:
            raise ValueError("prefetch_factor option could only be specified with num_workers > 0, otherwise set "
                             "prefetch_factor to None")
        if prefetch_factor is not None and (isinstance(prefetch_factor, bool)
                                            or not isinstance(prefetch_factor, numbers.Integral)
                                            or prefetch_factor < 1):
            raise ValueError(f"prefetch_factor option should be a positive integer, got {prefetch_factor!r}")
        if persistent_workers and num_workers == 0:
            raise ValueError("persistent_workers option needs num_workers > 0")
        if generator is not None and not isinstance(generator, np.random.Generator):
            raise TypeError(f"generator must be an np.random.Generator, got {type(generator).__name__}")
        iterable = isinstance(dataset, IterableDataset)
        if iterable:
            # A stream has no indices to sample: its order is its iterator's (PyTorch refuses the same options)
            for name, value in (("shuffle", shuffle), ("sampler", sampler), ("batch_sampler", batch_sampler)):
                if value not in (None, False):
                    raise ValueError(f"DataLoader with IterableDataset: expected unspecified {name} option, but "
                                     f"got {name}={value!r}")
        if sampler is not None and shuffle:
            raise ValueError("sampler option is mutually exclusive with shuffle")
        if batch_sampler is not None:
            if batch_size != 1 or shuffle or sampler is not None or drop_last:
                raise ValueError("batch_sampler option is mutually exclusive with batch_size, shuffle, sampler, "
                                 "and drop_last")
            batch_size, drop_last = None, False
        elif batch_size is None and drop_last:
            raise ValueError("batch_size=None option disables auto-batching and is mutually exclusive with "
                             "drop_last")
        if sampler is None and not iterable:
            sampler = RandomSampler(dataset, generator=generator) if shuffle else SequentialSampler(dataset)
        if batch_size is not None and batch_sampler is None and not iterable:
            batch_sampler = BatchSampler(sampler, batch_size, bool(drop_last))

        self.dataset = dataset
        self.batch_size = None if batch_size is None else int(batch_size)
        self.drop_last = bool(drop_last)
        self.sampler = sampler
        self.batch_sampler = batch_sampler
        self.num_workers = int(num_workers)
        self.collate_fn = collate_fn
        self.pin_memory = bool(pin_memory)
        self.pin_memory_device = pin_memory_device
        self.timeout = timeout
        self.worker_init_fn = worker_init_fn
        self.multiprocessing_context = multiprocessing_context
        self._process_context = _check_context(multiprocessing_context, self.num_workers)
        self.generator = generator
        self.prefetch_factor = (2 if prefetch_factor is None else int(prefetch_factor)) if num_workers else None
        self.persistent_workers = bool(persistent_workers)
        self.in_order = bool(in_order)
        self._iterable = iterable
        self._persistent_pool = None

    @property
    def _auto_collation(self):
        return self.batch_sampler is not None

    @property
    def _index_sampler(self):
        return self.batch_sampler if self._auto_collation else self.sampler

    def _draw_base_seed(self):
        return int((self.generator if self.generator is not None else default_generator()).integers(2**62))

    def __len__(self):
        if not self._iterable:
            return len(self._index_sampler)
        length = len(self.dataset)  # TypeError for a stream without __len__, as in PyTorch
        if self.batch_size is None:
            return length
        return length // self.batch_size if self.drop_last else -(-length // self.batch_size)

    def __iter__(self):
        # The base seed and the sampler's order are drawn here, when the iterator is created.
        if self.num_workers == 0:
            return _SingleProcessIter(self)
        if self._process_context is None and not _threads_can_run_kernels(_kernel_threading_layer()):
            # Batches are seeded by index, so building them here gives the very batches the workers would.
            warnings.warn(f"DataLoader: Numba's {_kernel_threading_layer()!r} threading layer aborts the process "
                          f"when two threads launch parallel kernels at once, so the batches of this "
                          f"num_workers={self.num_workers} loader are built in the calling thread (no overlap). "
                          f"Install libgomp (OpenMP) or tbb for worker threads, or pass "
                          f"multiprocessing_context='spawn' for worker processes.", RuntimeWarning, stacklevel=2)
            return _SingleProcessIter(self)
        return _WorkersIter(self)

    def __del__(self):
        pool = getattr(self, "_persistent_pool", None)
        if pool is not None:
            self._persistent_pool = None
            pool.shutdown()

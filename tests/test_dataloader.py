"""Samplers and DataLoader workers: index facts, reproducibility with workers, worker hooks, errors."""
import threading
import time

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

import fastnn
from fastnn.data import (BatchSampler, ChainDataset, DataLoader, Dataset, IterableDataset, RandomSampler,
                         SequentialSampler, StackDataset, SubsetRandomSampler, TensorDataset, WeightedRandomSampler,
                         default_convert, get_worker_info, transforms as T)


# ---- samplers -----------------------------------------------------------------------------------------------

def test_sequential_sampler_order():
    assert list(SequentialSampler(range(7))) == [0, 1, 2, 3, 4, 5, 6]
    assert len(SequentialSampler(range(7))) == 7


def test_random_sampler_is_the_generators_permutation():
    sampler = RandomSampler(range(10), generator=np.random.default_rng(4))
    assert list(sampler) == np.random.default_rng(4).permutation(10).tolist()
    # without a generator: one draw from fastnn's generator seeds a fresh one, at iter() time
    fastnn.manual_seed(8)
    first = list(RandomSampler(range(10)))
    fastnn.manual_seed(8)
    seed = int(fastnn.default_generator().integers(2**63))
    assert first == np.random.default_rng(seed).permutation(10).tolist()
    assert sorted(first) == list(range(10))


def test_random_sampler_num_samples_and_replacement():
    rng = np.random.default_rng(1)
    longer = list(RandomSampler(range(4), num_samples=10, generator=np.random.default_rng(1)))
    expected = np.concatenate([rng.permutation(4), rng.permutation(4), rng.permutation(4)[:2]]).tolist()
    assert longer == expected
    assert sorted(longer[:4]) == sorted(longer[4:8]) == [0, 1, 2, 3]
    drawn = list(RandomSampler(range(3), replacement=True, num_samples=50, generator=np.random.default_rng(2)))
    assert len(drawn) == 50 and set(drawn) == {0, 1, 2}
    assert drawn == np.random.default_rng(2).integers(0, 3, size=50).tolist()
    assert len(RandomSampler(range(5), num_samples=3)) == 3
    with pytest.raises(ValueError, match="num_samples"):
        RandomSampler(range(5), num_samples=0)
    with pytest.raises(ValueError, match="replacement"):
        RandomSampler(range(5), replacement=1)
    with pytest.raises(TypeError, match="np.random.Generator"):
        RandomSampler(range(5), generator=3)


def test_subset_random_sampler():
    indices = [10, 20, 30, 40, 50]
    out = list(SubsetRandomSampler(indices, generator=np.random.default_rng(0)))
    assert out == [indices[i] for i in np.random.default_rng(0).permutation(5)]
    assert len(SubsetRandomSampler(indices)) == 5


def test_weighted_random_sampler_proportions():
    weights = [1.0, 3.0, 0.0, 6.0]
    drawn = np.array(list(WeightedRandomSampler(weights, 20_000, generator=np.random.default_rng(0))))
    counts = np.bincount(drawn, minlength=4) / len(drawn)
    np.testing.assert_allclose(counts, [0.1, 0.3, 0.0, 0.6], atol=0.015)  # 4+ binomial sigmas at n=20000
    once = list(WeightedRandomSampler(weights, 3, replacement=False, generator=np.random.default_rng(1)))
    assert sorted(once) == [0, 1, 3]  # the zero-weight index is never drawn
    with pytest.raises(ValueError, match="num_samples=4 exceeds the 3 indices"):
        WeightedRandomSampler(weights, 4, replacement=False)
    with pytest.raises(ValueError, match="non-negative"):
        WeightedRandomSampler([1.0, -1.0], 2)
    with pytest.raises(ValueError, match="not all zero"):
        WeightedRandomSampler([0.0, 0.0], 2)
    with pytest.raises(ValueError, match="num_samples"):
        WeightedRandomSampler([1.0], -1)


def test_batch_sampler_drop_last_sizes():
    assert list(BatchSampler(range(10), 3, drop_last=False)) == [[0, 1, 2], [3, 4, 5], [6, 7, 8], [9]]
    assert list(BatchSampler(range(10), 3, drop_last=True)) == [[0, 1, 2], [3, 4, 5], [6, 7, 8]]
    assert len(BatchSampler(range(10), 3, False)) == 4 and len(BatchSampler(range(10), 3, True)) == 3
    assert len(BatchSampler(range(9), 3, False)) == 3
    with pytest.raises(ValueError, match="batch_size should be a positive integer"):
        BatchSampler(range(3), 0, False)
    with pytest.raises(ValueError, match="drop_last should be a boolean"):
        BatchSampler(range(3), 2, "yes")


# ---- DataLoader arguments -------------------------------------------------------------------------------------

def _first_column(loader):
    return [batch[0].detach().numpy().tolist() for batch in loader]


def test_loader_with_samplers_and_batch_sampler():
    ds = TensorDataset(np.arange(10))
    assert _first_column(DataLoader(ds, batch_size=4, sampler=SequentialSampler(ds))) == \
        [[0, 1, 2, 3], [4, 5, 6, 7], [8, 9]]
    custom = DataLoader(ds, batch_sampler=[[3, 1], [0, 9, 8]])
    assert _first_column(custom) == [[3, 1], [0, 9, 8]]
    loader = DataLoader(ds, batch_size=4, shuffle=True, generator=np.random.default_rng(5), drop_last=True)
    rng = np.random.default_rng(5)
    rng.integers(2**62)  # the iterator's base seed comes first, then the sampler's order
    assert _first_column(loader) == rng.permutation(10)[:8].reshape(2, 4).tolist()
    assert isinstance(loader.sampler, RandomSampler) and loader.batch_sampler.batch_size == 4
    singles = list(DataLoader(ds, batch_size=None))
    assert len(singles) == 10 and singles[3][0].shape == () and int(singles[3][0].item()) == 3
    for kwargs in ({"batch_size": 2}, {"shuffle": True}, {"drop_last": True}, {"sampler": [0]}):
        with pytest.raises(ValueError, match="batch_sampler option is mutually exclusive"):
            DataLoader(ds, batch_sampler=[[0]], **kwargs)
    with pytest.raises(ValueError, match="auto-batching"):
        DataLoader(ds, batch_size=None, drop_last=True)


def test_loader_argument_errors():
    ds = TensorDataset(np.arange(4))
    with pytest.raises(ValueError, match="num_workers"):
        DataLoader(ds, num_workers=-1)
    with pytest.raises(ValueError, match="prefetch_factor"):
        DataLoader(ds, prefetch_factor=2)
    with pytest.raises(ValueError, match="persistent_workers option needs num_workers > 0"):
        DataLoader(ds, persistent_workers=True)
    with pytest.raises(ValueError, match="timeout"):
        DataLoader(ds, timeout=-1)
    with pytest.raises(ValueError, match="forked children"):
        DataLoader(ds, num_workers=1, multiprocessing_context="fork")
    with pytest.raises(ValueError, match="num_workers > 0"):
        DataLoader(ds, multiprocessing_context="spawn")
    loader = DataLoader(ds, num_workers=2, pin_memory=True)
    assert loader.prefetch_factor == 2 and loader.pin_memory


# ---- workers ------------------------------------------------------------------------------------------------

class _Augmented(Dataset):
    """Per-sample path with a random transform drawing from fastnn's default generator."""

    def __init__(self, n=40):
        self.images = np.arange(n * 6 * 6, dtype=np.float32).reshape(n, 1, 6, 6)
        self.augment = T.Compose([T.RandomCrop(6, padding=2), T.RandomHorizontalFlip()])

    def __len__(self):
        return len(self.images)

    def __getitem__(self, index):
        return self.augment(self.images[index]), {"index": index, "noise": float(fastnn.default_generator().random())}


def _augmented_batches(seed, **kwargs):
    fastnn.manual_seed(seed)
    loader = DataLoader(_Augmented(), batch_size=6, shuffle=True, **kwargs)
    return [(images.detach().numpy().copy(), target["index"].detach().numpy().copy(),
             target["noise"].detach().numpy().copy()) for images, target in loader]


def _assert_same_batches(a, b):
    assert len(a) == len(b)
    for batch_a, batch_b in zip(a, b):
        for x, y in zip(batch_a, batch_b):
            np.testing.assert_array_equal(x, y)


@pytest.mark.parametrize("workers", [1, 2, 3])
def test_worker_threads_give_the_single_thread_batches(workers):
    reference = _augmented_batches(11)
    assert sorted(np.concatenate([b[1] for b in reference]).tolist()) == list(range(40))
    # the augmentation really is random: crops/flips differ between images and between seeds
    assert not np.array_equal(reference[0][0], _augmented_batches(12)[0][0])
    _assert_same_batches(_augmented_batches(11, num_workers=workers), reference)


def test_in_order_false_yields_every_batch():
    fastnn.manual_seed(1)
    loader = DataLoader(_Augmented(), batch_size=5, num_workers=3, in_order=False)
    indices = sorted(np.concatenate([t["index"].detach().numpy() for _, t in loader]).tolist())
    assert indices == list(range(40))


class _SlowFirstBatch(TensorDataset):
    def __getitem__(self, index):
        if index == 0:
            time.sleep(0.3)
        return super().__getitem__(index)


def test_in_order_waits_for_a_slow_batch():
    ds = _SlowFirstBatch(np.arange(8))
    loader = DataLoader(ds, batch_size=2, num_workers=2, collate_fn=lambda s: [int(x[0]) for x in s])
    assert list(loader) == [[0, 1], [2, 3], [4, 5], [6, 7]]


def test_worker_init_fn_sees_worker_info_in_each_worker():
    calls = []
    lock = threading.Lock()

    def init(worker_id):
        info = get_worker_info()
        with lock:
            calls.append((worker_id, info.id, info.num_workers, info.seed, info.dataset,
                          threading.current_thread().name))

    ds = TensorDataset(np.arange(12))
    loader = DataLoader(ds, batch_size=2, num_workers=3, worker_init_fn=init, generator=np.random.default_rng(0))
    assert get_worker_info() is None
    assert _first_column(loader) == [[0, 1], [2, 3], [4, 5], [6, 7], [8, 9], [10, 11]]
    assert sorted(c[:3] for c in calls) == [(0, 0, 3), (1, 1, 3), (2, 2, 3)]
    base_seed = int(np.random.default_rng(0).integers(2**62))  # the loader's first draw
    assert sorted(c[3] for c in calls) == [base_seed, base_seed + 1, base_seed + 2]
    assert all(c[4] is ds for c in calls) and len({c[5] for c in calls}) == 3


@pytest.mark.skipif(not hasattr(__import__("os"), "SCHED_IDLE"), reason="SCHED_IDLE is Linux's")
def test_worker_threads_run_on_idle_cores_only():
    import os
    policies = []
    loader = DataLoader(TensorDataset(np.arange(4)), batch_size=2, num_workers=1,
                        worker_init_fn=lambda _: policies.append(os.sched_getscheduler(0)))
    before = os.sched_getscheduler(0)
    assert len(list(loader)) == 2
    # the worker thread under SCHED_IDLE (it never preempts the step's kernel threads); the caller untouched
    assert policies == [os.SCHED_IDLE] and os.sched_getscheduler(0) == before != os.SCHED_IDLE


def test_persistent_workers_start_once_and_reshuffle():
    started = []
    ds = TensorDataset(np.arange(20))
    loader = DataLoader(ds, batch_size=5, shuffle=True, num_workers=2, persistent_workers=True,
                        worker_init_fn=started.append)
    epochs = [sorted(sum(_first_column(loader), [])) for _ in range(3)]
    assert epochs == [list(range(20))] * 3
    assert sorted(started) == [0, 1]  # once per worker, not per epoch
    fastnn.manual_seed(2)
    first = _first_column(loader)
    fastnn.manual_seed(2)
    assert _first_column(loader) == first  # same seed, same order, persistent or not
    fastnn.manual_seed(2)
    assert _first_column(DataLoader(ds, batch_size=5, shuffle=True)) == first
    # an epoch abandoned midway: the next one still gets exactly its own batches
    iterator = iter(loader)
    next(iterator)
    assert sorted(sum(_first_column(loader), [])) == list(range(20))
    with pytest.raises(RuntimeError, match="superseded"):
        next(iterator)
    assert sorted(started) == [0, 1]


def test_persistent_augmentation_differs_between_epochs_and_matches_single_thread():
    fastnn.manual_seed(5)
    loader = DataLoader(_Augmented(), batch_size=8, num_workers=2, persistent_workers=True)
    epoch1, epoch2 = ([b[0].detach().numpy().copy() for b in loader] for _ in range(2))
    assert not all(np.array_equal(a, b) for a, b in zip(epoch1, epoch2))
    fastnn.manual_seed(5)
    single = DataLoader(_Augmented(), batch_size=8)
    for expected in (epoch1, epoch2):
        for a, b in zip([b[0].detach().numpy() for b in single], expected, strict=True):
            np.testing.assert_array_equal(a, b)


class _Failing(TensorDataset):
    def __getitem__(self, index):
        if index == 5:
            raise KeyError("sample 5 is broken")
        return super().__getitem__(index)


def test_worker_errors_reach_the_caller():
    loader = DataLoader(_Failing(np.arange(8)), batch_size=2, num_workers=2, collate_fn=list)
    iterator = iter(loader)
    assert len(next(iterator)) == 2 and len(next(iterator)) == 2
    with pytest.raises(KeyError, match="(?s)in DataLoader worker 0.*sample 5 is broken"):
        next(iterator)

    def bad_init(worker_id):
        raise ValueError(f"init failed in {worker_id}")
    with pytest.raises(ValueError, match="worker_init_fn"):
        list(DataLoader(TensorDataset(np.arange(4)), num_workers=1, worker_init_fn=bad_init))


class _Slow(TensorDataset):
    def __getitem__(self, index):
        time.sleep(1.0)
        return super().__getitem__(index)


def test_timeout():
    loader = DataLoader(_Slow(np.arange(2)), batch_size=1, num_workers=1, timeout=0.2, collate_fn=list)
    with pytest.raises(RuntimeError, match="DataLoader timed out after 0.2 seconds"):
        next(iter(loader))


def test_nested_collate_through_workers():
    class Nested(Dataset):
        def __len__(self):
            return 5

        def __getitem__(self, i):
            return {"x": np.full((2,), i, np.float32), "pair": (i, float(i) / 4), "name": f"n{i}"}

    batch = next(iter(DataLoader(Nested(), batch_size=3, num_workers=2)))
    assert batch["x"].shape == (3, 2) and batch["x"].dtype == np.float32
    assert batch["pair"][0].detach().numpy().tolist() == [0, 1, 2]
    assert batch["pair"][1].detach().numpy().tolist() == [0.0, 0.25, 0.5]
    assert batch["name"] == ["n0", "n1", "n2"]


# ---- worker processes (spawn): one test, each start imports fastnn in a new interpreter (~2-4 s) ------------

def _record_worker(worker_id):
    info = get_worker_info()
    _ProcessProbe.init_seen = (worker_id, info.id, info.num_workers, info.seed)


class _ProcessProbe(_Augmented):
    init_seen = None

    def __getitem__(self, index):
        image, target = super().__getitem__(index)
        target["init"] = np.array(self.init_seen, dtype=np.int64)
        return image, target


def test_spawned_worker_processes_match_the_single_thread_batches():
    fastnn.manual_seed(21)
    processes = DataLoader(_ProcessProbe(), batch_size=6, shuffle=True, num_workers=2,
                           multiprocessing_context="spawn", worker_init_fn=_record_worker, persistent_workers=True)
    got = [[b.copy() for b in (images.detach().numpy(), t["index"].detach().numpy(), t["noise"].detach().numpy(),
                               t["init"].detach().numpy())] for images, t in processes]
    _assert_same_batches([g[:3] for g in got], _augmented_batches(21))
    inits = {tuple(row) for g in got for row in g[3]}
    seeds = sorted(s for _, _, _, s in inits)
    assert sorted((w, i, n) for w, i, n, _ in inits) == [(0, 0, 2), (1, 1, 2)] and seeds[1] == seeds[0] + 1
    second = sorted(np.concatenate([t["index"].detach().numpy() for _, t in processes]).tolist())
    assert second == list(range(40))  # the persistent processes serve a second epoch
    with pytest.raises(TypeError, match="picklable"):
        next(iter(DataLoader(TensorDataset(np.arange(4)), num_workers=1, multiprocessing_context="spawn",
                             collate_fn=lambda s: s)))



@settings(max_examples=40, deadline=None)
@given(n=st.integers(0, 50), batch_size=st.integers(1, 12), drop_last=st.booleans())
def test_batch_sampler_sizes_property(n, batch_size, drop_last):
    batches = list(BatchSampler(range(n), batch_size, drop_last))
    assert len(batches) == len(BatchSampler(range(n), batch_size, drop_last))
    assert sum(batches, []) == list(range(n // batch_size * batch_size if drop_last else n))
    assert all(len(b) == batch_size for b in batches[:-1])
    if batches:
        assert len(batches[-1]) == (batch_size if drop_last or n % batch_size == 0 else n % batch_size)


def test_use_generator_is_per_thread():
    from fastnn.random import use_generator
    fastnn.manual_seed(3)
    seen = {}

    def draw(name, seed):
        with use_generator(np.random.default_rng(seed)):
            time.sleep(0.01)  # let the other thread enter its block too
            seen[name] = fastnn.default_generator().random(3).tolist()

    threads = [threading.Thread(target=draw, args=(name, seed)) for name, seed in (("a", 1), ("b", 2))]
    for t in threads:
        t.start()
    with use_generator(np.random.default_rng(9)):
        inside = fastnn.default_generator().random()
    for t in threads:
        t.join()
    assert seen == {"a": np.random.default_rng(1).random(3).tolist(), "b": np.random.default_rng(2).random(3).tolist()}
    assert inside == np.random.default_rng(9).random()
    # the global generator was not touched by any of the blocks
    assert fastnn.default_generator().random() == np.random.default_rng(3).random()
    with pytest.raises(TypeError, match="np.random.Generator"):
        with use_generator(5):
            pass


# ---- iterable-style data sets, StackDataset, default_convert (expected values printed by torch 2.13) ---------

class _Range(IterableDataset):
    """PyTorch's documented IterableDataset example: range(start, end), split between workers by
    get_worker_info() so that every worker yields its own part."""

    def __init__(self, start, end):
        self.start, self.end = start, end

    def __iter__(self):
        info = get_worker_info()
        if info is None:
            return iter(range(self.start, self.end))
        per_worker = -(-(self.end - self.start) // info.num_workers)
        low = self.start + info.id * per_worker
        return iter(range(low, min(low + per_worker, self.end)))


class _SizedRange(_Range):
    def __len__(self):
        return self.end - self.start


def _values(loader):
    return [b.detach().numpy().tolist() if isinstance(b, fastnn.Tensor) else b for b in loader]


def test_iterable_dataset_batches_and_worker_sharding_match_pytorch():
    assert _values(DataLoader(_Range(3, 7))) == [[3], [4], [5], [6]]
    # PyTorch's docs: 2 workers yield [3], [5], [4], [6] (worker 0 has 3, 4; worker 1 has 5, 6; batches taken
    # round-robin); 20 workers: [3], [4], [5], [6] (16 workers have nothing)
    assert _values(DataLoader(_Range(3, 7), num_workers=2)) == [[3], [5], [4], [6]]
    assert _values(DataLoader(_Range(3, 7), num_workers=20)) == [[3], [4], [5], [6]]
    # torch: [0..3], [5..8], [4], [9]; drop_last: [0..3], [5..8]
    assert _values(DataLoader(_Range(0, 10), batch_size=4, num_workers=2)) == [[0, 1, 2, 3], [5, 6, 7, 8], [4],
                                                                              [9]]
    assert _values(DataLoader(_Range(0, 10), batch_size=4, num_workers=2, drop_last=True)) == [[0, 1, 2, 3],
                                                                                               [5, 6, 7, 8]]
    assert _values(DataLoader(_Range(0, 10), batch_size=4, drop_last=True)) == [[0, 1, 2, 3], [4, 5, 6, 7]]
    assert _values(DataLoader(_Range(0, 5), batch_size=None)) == [0, 1, 2, 3, 4]  # ints stay ints
    persistent = DataLoader(_Range(0, 9), batch_size=2, num_workers=3, persistent_workers=True, in_order=False)
    for _ in range(2):  # every epoch a fresh iterator in each worker
        assert sorted(sum(_values(persistent), [])) == list(range(9))


def test_iterable_dataset_loader_errors_and_length():
    for kwargs in ({"shuffle": True}, {"sampler": [0]}, {"batch_sampler": [[0]]}):
        name = next(iter(kwargs))
        with pytest.raises(ValueError, match=f"IterableDataset: expected unspecified {name} option"):
            DataLoader(_Range(0, 5), **kwargs)
    with pytest.raises(TypeError):
        len(DataLoader(_Range(0, 5)))  # torch: TypeError, object of type '_Range' has no len()
    assert len(DataLoader(_SizedRange(0, 10), batch_size=4)) == 3  # torch: 3 and 2
    assert len(DataLoader(_SizedRange(0, 10), batch_size=4, drop_last=True)) == 2

    class Broken(IterableDataset):
        def __iter__(self):
            yield 1
            raise KeyError("bad record")
    with pytest.raises(KeyError, match="bad record"):
        list(DataLoader(Broken(), batch_size=2, num_workers=1))


def test_chain_dataset_and_iterable_addition():
    chained = ChainDataset([_Range(0, 3), _Range(10, 12)])
    assert list(chained) == [0, 1, 2, 10, 11]  # torch: [0, 1, 2, 10, 11]
    assert len(ChainDataset([_SizedRange(0, 3), _SizedRange(0, 2)])) == 5
    assert isinstance(_Range(0, 2) + _Range(3, 4), ChainDataset) and list(_Range(0, 2) + _Range(3, 4)) == [0, 1, 3]
    with pytest.raises(TypeError, match="ChainDataset only supports IterableDataset"):
        list(ChainDataset([TensorDataset(np.arange(3))]))


def test_stack_dataset_samples_and_batches():
    stacked = StackDataset(TensorDataset(np.arange(3)), [10, 11, 12])
    assert len(stacked) == 3 and stacked[1] == ((1,), 11)  # torch: ((tensor(1),), 11) 3
    assert StackDataset(a=[1, 2], b=[3, 4])[0] == {"a": 1, "b": 3}
    # torch: [[[tensor([0, 1])], tensor([10, 11])], [[tensor([2])], tensor([12])]] (fastnn collates to tuples)
    batches = list(DataLoader(stacked, batch_size=2))
    assert [b[0][0].detach().numpy().tolist() for b in batches] == [[0, 1], [2]]
    assert [b[1].detach().numpy().tolist() for b in batches] == [[10, 11], [12]]
    (batch,) = DataLoader(StackDataset(a=[1, 2], b=[3, 4]), batch_size=2)
    assert {k: v.detach().numpy().tolist() for k, v in batch.items()} == {"a": [1, 2], "b": [3, 4]}
    for args, kwargs, match in [((), {}, "at least one"), (([1],), {"a": [1]}, "both were given"),
                                (([1, 2], [1]), {}, "size mismatch")]:
        with pytest.raises(ValueError, match=match):
            StackDataset(*args, **kwargs)


def test_default_convert_matches_pytorch():
    converted = default_convert((np.float32(1.5), 2, "s"))
    # torch: [tensor(1.5000), 2, 's'] -- a tuple becomes a list, NumPy scalars 0-d tensors, the rest unchanged
    assert type(converted) is list and isinstance(converted[0], fastnn.Tensor) and converted[0].shape == ()
    assert converted[0].item() == 1.5 and converted[1:] == [2, "s"]
    assert default_convert(np.arange(3)).detach().numpy().tolist() == [0, 1, 2]
    assert default_convert({"a": np.ones(2)})["a"].dtype == np.float64
    strings = np.array(["x"])
    assert default_convert(strings) is strings  # torch leaves string arrays alone
    # torch: DataLoader(batch_size=None) converts each sample with default_convert: a tuple sample -> list
    singles = list(DataLoader(TensorDataset(np.arange(2), np.arange(2)), batch_size=None))
    assert type(singles[0]) is list and [s.item() for s in singles[1]] == [1, 1]


def test_distributed_sampler_is_exported_like_torch_utils_data():
    from fastnn.data import DistributedSampler
    from fastnn.distributed.sampler import DistributedSampler as original
    assert DistributedSampler is original
    assert list(DistributedSampler(range(5), num_replicas=2, rank=1, shuffle=False)) == [1, 3, 0]


def test_spawned_workers_shard_an_iterable_dataset():
    loader = DataLoader(_Range(3, 7), num_workers=2, multiprocessing_context="spawn")
    assert _values(loader) == [[3], [5], [4], [6]]


# ---- Numba threading layers: worker threads only where concurrent parallel launches are safe -----------------

def test_thread_workers_decision_per_threading_layer(monkeypatch):
    from fastnn.data import dataloader
    assert dataloader._threads_can_run_kernels("omp") and dataloader._threads_can_run_kernels("tbb")
    assert not dataloader._threads_can_run_kernels("workqueue")
    assert dataloader._kernel_threading_layer() in ("omp", "tbb", "workqueue")
    ds = _Augmented()
    fastnn.manual_seed(5)
    expected = [[b.copy() for b in (x.detach().numpy(), t["index"].detach().numpy())]
                for x, t in DataLoader(ds, batch_size=6, shuffle=True)]
    monkeypatch.setattr(dataloader, "_kernel_threading_layer", lambda: "workqueue")
    fastnn.manual_seed(5)
    loader = DataLoader(ds, batch_size=6, shuffle=True, num_workers=2)
    with pytest.warns(RuntimeWarning, match="'workqueue' threading layer.*built in the calling thread"):
        got = [[b.copy() for b in (x.detach().numpy(), t["index"].detach().numpy())] for x, t in loader]
    _assert_same_batches(got, expected)  # the same batches, built without worker threads


_WORKQUEUE_SCRIPT = """
import threading
import numpy as np
import fastnn
from fastnn import nn
from fastnn.data import DataLoader, TensorDataset, transforms as T
images = np.random.default_rng(0).random((256, 3, 32, 32), dtype=np.float32)
class Augmented(TensorDataset):
    def get_batch(self, indices):
        return (T.RandomAffine(10)(self.tensors[0][indices]),)
conv = nn.Conv2d(3, 8, 3)
x = fastnn.tensor(images[:64])
for (batch,) in DataLoader(Augmented(images), batch_size=32, num_workers=1):
    conv(x).sum().backward()  # parallel kernels in this thread while a worker would run RandomAffine's
import numba
print("done", numba.threading_layer())
"""


def test_worker_threads_survive_the_workqueue_threading_layer():
    import os
    import subprocess
    import sys
    env = dict(os.environ, NUMBA_THREADING_LAYER="workqueue")
    result = subprocess.run([sys.executable, "-W", "ignore::RuntimeWarning", "-c", _WORKQUEUE_SCRIPT], env=env,
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.split()[-2:] == ["done", "workqueue"]

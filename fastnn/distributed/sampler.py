"""DistributedSampler: each rank's share of a data set's indices, as torch.utils.data.distributed has it."""
import math

import numpy as np

from fastnn.distributed import process_group as pg

__all__ = ["DistributedSampler"]


def _non_negative_int(name, value):
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 0:
        raise ValueError(f"{name} must be a non-negative int, got {value!r}")
    return int(value)


class DistributedSampler:
    """Yield the indices of `dataset` that rank `rank` of `num_replicas` trains on this epoch.

    PyTorch's index logic: the index list (a permutation seeded by seed + epoch when `shuffle`, else 0..n-1) is
    padded by repeating indices from its start up to a multiple of num_replicas (or cut down to one when
    `drop_last`), then rank r takes every num_replicas-th index starting at r. So every rank gets the same
    number of samples, and each epoch the ranks together cover every index (a few twice when padding). Call
    set_epoch(epoch) before each epoch for a new shuffle, the same on every rank. The permutation comes from
    NumPy's PCG64 generator, not torch's, so the shuffled order itself differs from PyTorch's.
    `num_replicas` and `rank` default to the default group's size and rank (1 and 0 without one).
    """

    def __init__(self, dataset, num_replicas=None, rank=None, shuffle=True, seed=0, drop_last=False):
        num_replicas = pg.get_world_size() if num_replicas is None else num_replicas
        rank = pg.get_rank() if rank is None else rank
        if isinstance(num_replicas, bool) or not isinstance(num_replicas, (int, np.integer)) or num_replicas < 1:
            raise ValueError(f"num_replicas must be a positive int, got {num_replicas!r}")
        if isinstance(rank, bool) or not isinstance(rank, (int, np.integer)) or not 0 <= rank < num_replicas:
            raise ValueError(f"Invalid rank {rank!r}, rank should be in the interval [0, {num_replicas - 1}]")
        self.dataset = dataset
        self.num_replicas = int(num_replicas)
        self.rank = int(rank)
        self.epoch = 0
        self.shuffle = bool(shuffle)
        self.seed = _non_negative_int("seed", seed)
        self.drop_last = bool(drop_last)
        n = len(dataset)
        if self.drop_last and n % self.num_replicas != 0:
            self.num_samples = math.ceil((n - self.num_replicas) / self.num_replicas)
        else:
            self.num_samples = math.ceil(n / self.num_replicas)
        self.total_size = self.num_samples * self.num_replicas

    def indices(self):
        """This rank's indices for the current epoch, as an int64 array."""
        n = len(self.dataset)
        if self.shuffle:
            indices = np.random.default_rng(self.seed + self.epoch).permutation(n)
        else:
            indices = np.arange(n)
        if not self.drop_last:
            padding = self.total_size - n
            if padding and n:
                indices = np.concatenate([indices, np.tile(indices, math.ceil(padding / n))[:padding]])
        else:
            indices = indices[:self.total_size]
        return indices[self.rank:self.total_size:self.num_replicas].astype(np.int64)

    def __iter__(self):
        return iter(self.indices().tolist())

    def __len__(self):
        return self.num_samples

    def set_epoch(self, epoch):
        self.epoch = _non_negative_int("epoch", epoch)

"""Samplers: the order in which a DataLoader visits a data set's indices (torch.utils.data.sampler).

Random samplers draw from `generator` (an np.random.Generator) when given; otherwise each iteration starts a
fresh generator seeded by one draw from fastnn.random.default_generator(), so fastnn.manual_seed makes the
order reproducible. The draw happens when iter() is called, not at the first next().
"""
import itertools
import numbers

import numpy as np

from fastnn.random import default_generator

__all__ = ["Sampler", "SequentialSampler", "RandomSampler", "SubsetRandomSampler", "WeightedRandomSampler",
           "BatchSampler"]


def _check_generator(generator):
    if generator is not None and not isinstance(generator, np.random.Generator):
        raise TypeError(f"generator must be an np.random.Generator, got {type(generator).__name__}")
    return generator


def _epoch_generator(generator):
    if generator is not None:
        return generator
    return np.random.default_rng(int(default_generator().integers(2**63)))


def _positive_int(name, value):
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value <= 0:
        raise ValueError(f"{name} should be a positive integer value, but got {name}={value!r}")
    return int(value)


def _check_bool(name, value):
    if not isinstance(value, (bool, np.bool_)):
        raise ValueError(f"{name} should be a boolean value, but got {name}={value!r}")
    return bool(value)


class Sampler:
    """Base class: subclasses define __iter__ over data set indices (and __len__ when the count is known)."""

    def __init__(self, data_source=None):
        pass

    def __iter__(self):
        raise NotImplementedError(f"{type(self).__name__} must define __iter__")


class SequentialSampler(Sampler):
    """0, 1, ..., len(data_source) - 1."""

    def __init__(self, data_source):
        self.data_source = data_source

    def __iter__(self):
        return iter(range(len(self.data_source)))

    def __len__(self):
        return len(self.data_source)


class RandomSampler(Sampler):
    """A random permutation of the indices; with replacement=True, num_samples independent uniform draws.

    num_samples (default len(data_source)) may exceed the data set's length without replacement: then whole
    permutations follow one another and the last one is cut short, as in PyTorch.
    """

    def __init__(self, data_source, replacement=False, num_samples=None, generator=None):
        self.data_source = data_source
        self.replacement = _check_bool("replacement", replacement)
        self._num_samples = None if num_samples is None else _positive_int("num_samples", num_samples)
        self.generator = _check_generator(generator)

    @property
    def num_samples(self):
        return len(self.data_source) if self._num_samples is None else self._num_samples

    def __iter__(self):
        n, count = len(self.data_source), self.num_samples
        rng = _epoch_generator(self.generator)
        if self.replacement:
            return iter(rng.integers(0, n, size=count).tolist())
        whole, rest = divmod(count, n) if n else (0, 0)
        parts = [rng.permutation(n) for _ in range(whole)] + ([rng.permutation(n)[:rest]] if rest else [])
        return iter(np.concatenate(parts).tolist() if parts else [])

    def __len__(self):
        return self.num_samples


class SubsetRandomSampler(Sampler):
    """The given indices in a random order (a new permutation each iteration)."""

    def __init__(self, indices, generator=None):
        self.indices = indices
        self.generator = _check_generator(generator)

    def __iter__(self):
        order = _epoch_generator(self.generator).permutation(len(self.indices))
        return iter([self.indices[int(i)] for i in order])

    def __len__(self):
        return len(self.indices)


class WeightedRandomSampler(Sampler):
    """num_samples indices in [0, len(weights)) drawn with probability proportional to `weights` (which need not
    sum to 1); without replacement, an index is drawn at most once."""

    def __init__(self, weights, num_samples, replacement=True, generator=None):
        self.num_samples = _positive_int("num_samples", num_samples)
        self.replacement = _check_bool("replacement", replacement)
        weights = np.asarray(weights, dtype=np.float64)
        if weights.ndim != 1 or weights.size == 0:
            raise ValueError(f"weights should be a non-empty 1-D sequence, got shape {weights.shape}")
        if not np.all(np.isfinite(weights)) or np.any(weights < 0) or weights.sum() <= 0:
            raise ValueError("weights should be finite, non-negative and not all zero")
        if not self.replacement and self.num_samples > np.count_nonzero(weights):
            raise ValueError(f"num_samples={self.num_samples} exceeds the {np.count_nonzero(weights)} indices of "
                             f"non-zero weight, which replacement=False can draw at most once each")
        self.weights = weights
        self.generator = _check_generator(generator)

    def __iter__(self):
        rng = _epoch_generator(self.generator)
        drawn = rng.choice(len(self.weights), size=self.num_samples, replace=self.replacement,
                           p=self.weights / self.weights.sum())
        return iter(drawn.tolist())

    def __len__(self):
        return self.num_samples


class BatchSampler(Sampler):
    """Lists of batch_size consecutive indices from `sampler`; the last one is shorter unless drop_last."""

    def __init__(self, sampler, batch_size, drop_last):
        self.sampler = sampler
        self.batch_size = _positive_int("batch_size", batch_size)
        self.drop_last = _check_bool("drop_last", drop_last)

    def __iter__(self):
        # iter(sampler) now, so a random order is drawn when this iterator is created
        return self._batches(iter(self.sampler))

    def _batches(self, indices):
        while True:
            batch = list(itertools.islice(indices, self.batch_size))  # 3x faster than appending one by one
            if len(batch) < self.batch_size:
                break
            yield batch
        if batch and not self.drop_last:
            yield batch

    def __len__(self):
        if self.drop_last:
            return len(self.sampler) // self.batch_size
        return -(-len(self.sampler) // self.batch_size)

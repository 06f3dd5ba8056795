"""Map-style data sets, their combinators, and default batch collation.

Batch protocol: a data set may define `get_batch(indices)`, taking an integer ndarray of indices and returning
the whole batch at once (Tensors or ndarrays, possibly in a tuple/list/dict), e.g. by fancy-indexing arrays it
holds. DataLoader uses it instead of one `__getitem__` call per sample plus collation.
"""
import bisect
import collections.abc
import math

import numpy as np

from fastnn.random import default_generator
from fastnn.tensor import Tensor


class Dataset:
    """Base class of map-style data sets: subclasses define __getitem__ and __len__ (and may define get_batch)."""

    def __getitem__(self, index):
        raise NotImplementedError(f"{type(self).__name__} must define __getitem__")

    def __add__(self, other):
        return ConcatDataset([self, other])


def _leading_size(item):
    shape = item.shape if isinstance(item, (Tensor, np.ndarray)) else None
    if shape is None:
        raise TypeError(f"TensorDataset takes Tensors or ndarrays, got {type(item).__name__}")
    if len(shape) == 0:
        raise ValueError("TensorDataset needs tensors with a first (sample) dimension, got a 0-d tensor")
    return shape[0]


class IterableDataset(Dataset):
    """Base class of iterable-style data sets (streams): subclasses define __iter__, yielding samples.

    DataLoader batches what the iterator yields (no sampler; shuffle/sampler/batch_sampler are refused). With
    num_workers > 0 every worker iterates its own iterator over the same data set, so a data set that is not to
    be duplicated must shard itself by get_worker_info() (id, num_workers), as in PyTorch.
    """

    def __iter__(self):
        raise NotImplementedError(f"{type(self).__name__} must define __iter__")

    def __add__(self, other):
        return ChainDataset([self, other])


class ChainDataset(IterableDataset):
    """The samples of several iterable data sets one after another (chained on the fly)."""

    def __init__(self, datasets):
        self.datasets = datasets

    def __iter__(self):
        for dataset in self.datasets:
            if not isinstance(dataset, IterableDataset):
                raise TypeError(f"ChainDataset only supports IterableDataset, got {type(dataset).__name__}")
            yield from dataset

    def __len__(self):
        return sum(len(dataset) for dataset in self.datasets)


class StackDataset(Dataset):
    """Sample i is the tuple (positional data sets) or dict (keyword data sets) of every data set's sample i.

    The data sets must have the same length. Batches are each data set's batch (fetch_batch) in that structure.
    """

    def __init__(self, *args, **kwargs):
        if args and kwargs:
            raise ValueError("StackDataset takes data sets either positionally (tuple samples) or by keyword "
                             "(dict samples), but both were given")
        if not args and not kwargs:
            raise ValueError("StackDataset needs at least one dataset")
        self.datasets = args or kwargs
        lengths = [len(d) for d in (args or kwargs.values())]
        if any(length != lengths[0] for length in lengths):
            raise ValueError(f"StackDataset: size mismatch between datasets (lengths {lengths})")
        self._length = lengths[0]

    def __len__(self):
        return self._length

    def __getitem__(self, index):
        if isinstance(self.datasets, dict):
            return {key: dataset[index] for key, dataset in self.datasets.items()}
        return tuple(dataset[index] for dataset in self.datasets)

    def get_batch(self, indices):
        if isinstance(self.datasets, dict):
            return {key: fetch_batch(dataset, indices) for key, dataset in self.datasets.items()}
        return tuple(fetch_batch(dataset, indices) for dataset in self.datasets)


class TensorDataset(Dataset):
    """Samples are the i-th rows of the given tensors (or ndarrays), which must share their first dimension.

    Batches come from fancy-indexing each tensor's array with the batch indices; they carry no autograd history.
    """

    def __init__(self, *tensors):
        if not tensors:
            raise ValueError("TensorDataset needs at least one tensor")
        sizes = [_leading_size(t) for t in tensors]
        if any(size != sizes[0] for size in sizes):
            shapes = ", ".join(str(tuple(t.shape)) for t in tensors)
            raise ValueError(f"TensorDataset: size mismatch between tensors: first dimensions differ ({shapes})")
        self.tensors = tensors

    def __len__(self):
        return self.tensors[0].shape[0]

    def __getitem__(self, index):
        return tuple(t[index] for t in self.tensors)

    def get_batch(self, indices):
        return tuple(Tensor(t._data[indices], device=t.device) if isinstance(t, Tensor) else t[indices]
                     for t in self.tensors)


class Subset(Dataset):
    """The samples of `dataset` at `indices`, in that order."""

    def __init__(self, dataset, indices):
        self.dataset = dataset
        self.indices = np.asarray(indices, dtype=np.int64)
        if self.indices.ndim != 1:
            raise ValueError(f"Subset indices must be one-dimensional, got shape {self.indices.shape}")

    def __len__(self):
        return len(self.indices)

    def __getitem__(self, index):
        return self.dataset[int(self.indices[index])]

    def get_batch(self, indices):
        return fetch_batch(self.dataset, self.indices[indices])


class ConcatDataset(Dataset):
    """The samples of several data sets one after another."""

    def __init__(self, datasets):
        self.datasets = list(datasets)
        if not self.datasets:
            raise ValueError("ConcatDataset needs at least one dataset")
        self.cumulative_sizes = list(np.cumsum([len(d) for d in self.datasets]))

    def __len__(self):
        return int(self.cumulative_sizes[-1])

    def __getitem__(self, index):
        index = int(index)
        if index < 0:
            index += len(self)
        if not 0 <= index < len(self):
            raise IndexError(f"index {index} out of range for ConcatDataset of length {len(self)}")
        which = bisect.bisect_right(self.cumulative_sizes, index)
        offset = self.cumulative_sizes[which - 1] if which else 0
        return self.datasets[which][index - offset]


def _split_sizes(lengths, total):
    lengths = list(lengths)
    if any(length < 0 for length in lengths):
        raise ValueError(f"random_split lengths must be non-negative, got {lengths}")
    if lengths and all(isinstance(f, float) and f <= 1 for f in lengths) and math.isclose(sum(lengths), 1):
        sizes = [math.floor(total * f) for f in lengths]
        for i in range(total - sum(sizes)):  # spread the remainder round-robin, as PyTorch does
            sizes[i % len(sizes)] += 1
        return sizes
    if not all(isinstance(n, (int, np.integer)) for n in lengths) or sum(lengths) != total:
        raise ValueError(f"random_split lengths {lengths} must be integers summing to the dataset length {total} "
                         f"or fractions summing to 1")
    return [int(n) for n in lengths]


def random_split(dataset, lengths, generator=None):
    """Split `dataset` into non-overlapping random Subsets of the given lengths (counts or fractions)."""
    sizes = _split_sizes(lengths, len(dataset))
    rng = generator if generator is not None else default_generator()
    order = rng.permutation(len(dataset))
    bounds = np.cumsum([0] + sizes)
    return [Subset(dataset, order[start:stop]) for start, stop in zip(bounds[:-1], bounds[1:])]


def default_collate(batch):
    """Stack a list of samples into a batch: Tensors, ndarrays and numbers become Tensors with a leading batch
    dimension (ints -> int64, floats -> float64, bools -> bool); tuples, lists, namedtuples and dicts are
    collated field by field; strings are returned as a list."""
    elem = batch[0]
    if isinstance(elem, Tensor):
        return Tensor(np.stack([sample._data for sample in batch]), device=elem.device)
    if isinstance(elem, np.ndarray):
        if elem.dtype.kind not in "biuf":
            raise TypeError(f"default_collate: can't batch ndarrays of dtype {elem.dtype}")
        return Tensor(np.stack(batch))
    if isinstance(elem, np.generic):
        return Tensor(np.array(batch))
    if isinstance(elem, bool):
        return Tensor(np.array(batch, dtype=np.bool_))
    if isinstance(elem, int):
        return Tensor(np.array(batch, dtype=np.int64))
    if isinstance(elem, float):
        return Tensor(np.array(batch, dtype=np.float64))
    if isinstance(elem, (str, bytes)):
        return list(batch)
    if isinstance(elem, collections.abc.Mapping):
        return {key: default_collate([sample[key] for sample in batch]) for key in elem}
    if isinstance(elem, collections.abc.Sequence):
        if any(len(sample) != len(elem) for sample in batch):
            raise ValueError("default_collate: each sample in the batch must have the same number of fields")
        fields = [default_collate(list(samples)) for samples in zip(*batch)]
        if isinstance(elem, tuple) and hasattr(elem, "_fields"):
            return type(elem)(*fields)
        return tuple(fields) if isinstance(elem, tuple) else fields
    raise TypeError(f"default_collate: samples must be Tensors, ndarrays, numbers, strings, dicts or sequences; "
                    f"got {type(elem).__name__}")


def _as_tensors(data, tuple_type=None):
    """Numeric ndarrays and NumPy scalars in `data` -> Tensors, recursively through namedtuples, tuples (made
    `tuple_type` when given), lists and dicts; anything else (numbers, strings, string arrays) as it is."""
    if isinstance(data, (np.ndarray, np.generic)):
        return Tensor(data) if data.dtype.kind in "biuf" else data
    if isinstance(data, tuple) and hasattr(data, "_fields"):
        return type(data)(*(_as_tensors(item, tuple_type) for item in data))
    if isinstance(data, (tuple, list)):
        return (tuple_type or type(data))(_as_tensors(item, tuple_type) for item in data)
    if isinstance(data, dict):
        return {key: _as_tensors(item, tuple_type) for key, item in data.items()}
    return data


def default_convert(data):
    """torch.utils.data.default_convert: numeric ndarrays and NumPy scalars become Tensors, recursively through
    dicts, namedtuples, lists and tuples (a tuple becomes a list, as in PyTorch); anything else is returned as it
    is. DataLoader(batch_size=None) applies it to every sample (unless given a collate_fn)."""
    return _as_tensors(data, tuple_type=list)


def fetch_batch(dataset, indices):
    """The collated batch of `dataset` at `indices`: one get_batch call when the data set has it, else one
    __getitem__ call per index followed by default_collate."""
    get_batch = getattr(dataset, "get_batch", None)
    if get_batch is None:
        return default_collate([dataset[int(i)] for i in indices])
    return _as_tensors(get_batch(indices))

"""DataLoader: iterate a data set in (optionally shuffled) batches."""
import numpy as np

from fastnn.data.dataset import fetch_batch
from fastnn.random import default_generator


class DataLoader:
    """Batches of `dataset`, as in torch.utils.data.DataLoader (single process).

    shuffle draws a new permutation each time an iterator is created, from `generator` (an np.random.Generator)
    when given, else from a fresh generator seeded by one draw from fastnn.random.default_generator(), so
    fastnn.manual_seed makes the order reproducible. `sampler` (an iterable of indices with a length) replaces
    the sequential/shuffled order. Without collate_fn, data sets with `get_batch` (TensorDataset, FashionMNIST,
    Subsets of them) are batched by fancy-indexing whole arrays; others by __getitem__ per sample and
    default_collate. With collate_fn, it receives the list of samples of each batch.
    """

    def __init__(self, dataset, batch_size=1, shuffle=False, drop_last=False, generator=None, collate_fn=None,
                 sampler=None):
        if isinstance(batch_size, bool) or not isinstance(batch_size, (int, np.integer)) or batch_size < 1:
            raise ValueError(f"batch_size should be a positive integer, got {batch_size!r}")
        if sampler is not None and shuffle:
            raise ValueError("sampler option is mutually exclusive with shuffle")
        if generator is not None and not isinstance(generator, np.random.Generator):
            raise TypeError(f"generator must be an np.random.Generator, got {type(generator).__name__}")
        self.dataset = dataset
        self.batch_size = int(batch_size)
        self.shuffle = bool(shuffle)
        self.drop_last = bool(drop_last)
        self.generator = generator
        self.collate_fn = collate_fn
        self.sampler = sampler

    def __len__(self):
        n = len(self.sampler) if self.sampler is not None else len(self.dataset)
        return n // self.batch_size if self.drop_last else -(-n // self.batch_size)

    def _epoch_order(self):
        if self.sampler is not None:
            return np.fromiter(iter(self.sampler), dtype=np.intp)
        n = len(self.dataset)
        if not self.shuffle:
            return np.arange(n)
        rng = self.generator
        if rng is None:
            rng = np.random.default_rng(int(default_generator().integers(2**63)))
        return rng.permutation(n)

    def __iter__(self):
        # The order is drawn here, when the iterator is created, not at its first next().
        return self._batches(self._epoch_order())

    def _batches(self, order):
        stop = len(order) - len(order) % self.batch_size if self.drop_last else len(order)
        for start in range(0, stop, self.batch_size):
            indices = order[start:start + self.batch_size]
            if self.collate_fn is None:
                yield fetch_batch(self.dataset, indices)
            else:
                yield self.collate_fn([self.dataset[int(i)] for i in indices])

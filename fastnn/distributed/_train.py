"""What `fastnn train` changes when its ranks train data-parallel (started by `fastnn train --nproc N`).

Kept apart from cli.py and training.py: the training loop itself is unchanged, since DDP averages gradients
inside backward. Here: join the group, shard the data, wrap the model, reduce the metrics, and keep every rank
but 0 quiet (no progress bar, no prints, no files).
"""
import os
import sys

import numpy as np

from fastnn.distributed.launch import TRAIN_ENV


class LocalTraining:
    """The single-process case: every hook does nothing."""
    is_main = True
    world_size = 1

    def callback(self):
        """A fastnn.train Callback that reshuffles the shards each epoch and averages each epoch's metrics over
        the ranks before anything logs or checkpoints them (put it first)."""
        from fastnn.train import Callback
        context = self

        class RankMetrics(Callback):
            def on_epoch_start(self, trainer, epoch):
                context.set_epoch(epoch)

            def on_epoch_end(self, trainer, epoch, logs):
                train_keys = [k for k in logs if k.startswith("train_")]
                for key, value in zip(train_keys, context.mean(*[logs[k] for k in train_keys])):
                    logs[key] = value
                count = len(trainer.val_loader.dataset) if getattr(trainer, "val_loader", None) else 0
                for key in [k for k in logs if k.startswith("val_")]:
                    logs[key] = context.mean_over_samples(logs[key], count)
        return RankMetrics()

    def shard(self, train_loader, test_loader):
        return train_loader, test_loader

    def wrap(self, model):
        return model

    def set_epoch(self, epoch):
        pass

    def mean(self, *values):
        return values

    def mean_over_samples(self, value, count):
        return value


class DistributedTraining(LocalTraining):
    def __init__(self, seed, batch_size):
        from fastnn import distributed as dist
        self.dist = dist
        dist.init_process_group("mpi")
        self.rank, self.world_size = dist.get_rank(), dist.get_world_size()
        self.is_main = self.rank == 0
        self.seed = seed
        self.sampler = None
        if not self.is_main:
            sys.stdout = open(os.devnull, "w")
        else:
            import fastnn
            print(f"distributed: {self.world_size} ranks x {fastnn.get_num_threads()} kernel threads; --batch-size "
                  f"is per rank (global batch {self.world_size * batch_size})", flush=True)

    def shard(self, train_loader, test_loader):
        """Training batches from a DistributedSampler (reshuffled each epoch, same seed on every rank); the test
        set split into disjoint strided shards, so evaluation is not repeated on every rank."""
        from fastnn.data import DataLoader, Subset
        self.sampler = self.dist.DistributedSampler(train_loader.dataset, shuffle=True, seed=self.seed)
        train = DataLoader(train_loader.dataset, batch_size=train_loader.batch_size, sampler=self.sampler,
                           drop_last=train_loader.drop_last)
        test_set = test_loader.dataset
        test = DataLoader(Subset(test_set, np.arange(self.rank, len(test_set), self.world_size)),
                          batch_size=test_loader.batch_size)
        return train, test

    def wrap(self, model):
        return self.dist.DistributedDataParallel(model)

    def set_epoch(self, epoch):
        if self.sampler is not None:
            self.sampler.set_epoch(epoch)

    def mean(self, *values):
        """The mean over ranks of per-rank means (every rank saw the same number of samples)."""
        import fastnn
        t = fastnn.tensor(np.array(values, dtype=np.float64))
        self.dist.all_reduce(t, self.dist.ReduceOp.AVG)
        return tuple(float(v) for v in t.detach().numpy())

    def mean_over_samples(self, value, count):
        """The mean over all ranks' samples of a per-rank mean `value` over `count` samples."""
        import fastnn
        t = fastnn.tensor(np.array([value * count, count], dtype=np.float64))
        self.dist.all_reduce(t)
        total, n = t.detach().numpy()
        return float(total / n)


def training_context(seed, batch_size):
    """DistributedTraining in ranks started by `fastnn train --nproc N`, else LocalTraining."""
    return DistributedTraining(seed, batch_size) if os.environ.get(TRAIN_ENV) == "1" else LocalTraining()

"""Data-parallel training over MPI with torch.distributed's API.

    fastnn run -n 4 train.py          # or: mpiexec -n 4 python train.py / srun python train.py

    import fastnn.distributed as dist
    dist.init_process_group("mpi")
    model = dist.DistributedDataParallel(model)
    sampler = dist.DistributedSampler(dataset)            # each rank's share of the data, set_epoch each epoch

mpi4py is imported only when a process group is initialized: `import fastnn.distributed` works without it.
"""
from fastnn.distributed.process_group import (ReduceOp, Work, all_gather, all_reduce, barrier, broadcast,
                                              destroy_process_group, get_backend, get_rank, get_world_size,
                                              init_process_group, is_available, is_initialized, reduce_scatter)
from fastnn.distributed.ddp import DistributedDataParallel
from fastnn.distributed.sampler import DistributedSampler
from fastnn.distributed.sync_batchnorm import SyncBatchNorm

__all__ = ["ReduceOp", "Work", "all_gather", "all_reduce", "barrier", "broadcast", "destroy_process_group",
           "get_backend", "get_rank", "get_world_size", "init_process_group", "is_available", "is_initialized",
           "reduce_scatter", "DistributedDataParallel", "DistributedSampler", "SyncBatchNorm"]

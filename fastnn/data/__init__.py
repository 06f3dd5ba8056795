"""Data loading: data sets (Fashion-MNIST, CIFAR-10, ImageFolder), samplers, DataLoader with worker threads or
processes, image transforms and test-time augmentation (like torch.utils.data and torchvision)."""
from fastnn.data import preprocessing, transforms
from fastnn.data.dataloader import DataLoader, WorkerInfo, get_worker_info
from fastnn.data.sampler import (BatchSampler, RandomSampler, Sampler, SequentialSampler, SubsetRandomSampler,
                                 WeightedRandomSampler)
from fastnn.data.mixing import CutMix, Cutout, MixUp, Mixup, soft_targets
from fastnn.data.dataset import (ChainDataset, ConcatDataset, Dataset, IterableDataset, StackDataset, Subset,
                                 TensorDataset, default_collate, default_convert, fetch_batch, random_split)
from fastnn.data.datasets import (CIFAR10, EMBEDDED_NOTE, FASHION_MNIST_MEAN, FASHION_MNIST_STD, FashionMNIST,
                                  ImageFolder, fashion_mnist_arrays, read_idx, write_idx)
from fastnn.data import tta  # noqa: E402  (after the names it builds on)


def __getattr__(name):
    # torch.utils.data has DistributedSampler too; imported on first use, as fastnn.distributed (DDP, process
    # groups) is not needed by `import fastnn`
    if name == "DistributedSampler":
        from fastnn.distributed.sampler import DistributedSampler
        return DistributedSampler
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__():
    return sorted(list(globals()) + ["DistributedSampler"])

"""Data loading: data sets, DataLoader, Fashion-MNIST and image transforms (like torch.utils.data)."""
from fastnn.data import transforms
from fastnn.data.dataloader import DataLoader, WorkerInfo, get_worker_info
from fastnn.data.sampler import (BatchSampler, RandomSampler, Sampler, SequentialSampler, SubsetRandomSampler,
                                 WeightedRandomSampler)
from fastnn.data.mixing import CutMix, Cutout, MixUp, Mixup, soft_targets
from fastnn.data.dataset import (ConcatDataset, Dataset, Subset, TensorDataset, default_collate, fetch_batch,
                                 random_split)
from fastnn.data.datasets import (CIFAR10, EMBEDDED_NOTE, FASHION_MNIST_MEAN, FASHION_MNIST_STD, FashionMNIST,
                                  ImageFolder, fashion_mnist_arrays, read_idx, write_idx)

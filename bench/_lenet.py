"""LeNet-5 on Fashion-MNIST: fastnn.models.lenet5 and the same network in PyTorch, both started from the same
NumPy initial weights and fed the same NumPy batches.

Only NumPy is imported at module level, so a process that benchmarks one framework loads only that one.
"""
import gzip
from pathlib import Path

import numpy as np

DATA_DIR = Path("/usr/share/datasets/fashion-mnist")
MEAN, STD = 0.2860, 0.3530
BATCH_SIZE = 64
LR, MOMENTUM = 0.05, 0.9
SEED = 0
# (name, weight shape) in the order both frameworks' parameters() yield them, each followed by its bias.
LAYERS = [("conv1", (6, 1, 5, 5)), ("conv2", (16, 6, 5, 5)), ("fc1", (120, 400)), ("fc2", (84, 120)),
          ("fc3", (10, 84))]


def _read_idx_gz(path, header_ints):
    with gzip.open(path, "rb") as f:
        raw = f.read()
    return np.frombuffer(raw, dtype=np.uint8, offset=4 * (1 + header_ints))


def load_fashion_mnist(limit=None):
    """Training images (float32 N x 1 x 28 x 28, (x/255 - 0.2860)/0.3530) and int64 labels, first `limit`."""
    if not (DATA_DIR / "train-images-idx3-ubyte.gz").is_file():
        raise FileNotFoundError(f"Fashion-MNIST training files not found in {DATA_DIR}; the LeNet-5 benchmarks "
                                f"need train-images-idx3-ubyte.gz and train-labels-idx1-ubyte.gz there")
    pixels = _read_idx_gz(DATA_DIR / "train-images-idx3-ubyte.gz", 3).reshape(-1, 1, 28, 28)
    labels = _read_idx_gz(DATA_DIR / "train-labels-idx1-ubyte.gz", 1)
    if limit is not None:
        pixels, labels = pixels[:limit], labels[:limit]
    images = np.divide(pixels, np.float32(255), dtype=np.float32)
    images -= np.float32(MEAN)
    images /= np.float32(STD)
    return images, labels.astype(np.int64)


def batch_order(n):
    """The shuffled sample order both frameworks iterate in."""
    return np.random.default_rng(SEED).permutation(n)


def initial_weights():
    """[weight, bias, ...] float32 arrays drawn like PyTorch's default init: U(-1/sqrt(fan_in), 1/sqrt(fan_in))."""
    rng = np.random.default_rng(SEED)
    arrays = []
    for _, shape in LAYERS:
        bound = 1 / np.sqrt(np.prod(shape[1:]))
        arrays.append(rng.uniform(-bound, bound, shape).astype(np.float32))
        arrays.append(rng.uniform(-bound, bound, shape[0]).astype(np.float32))
    return arrays


def fastnn_model():
    from fastnn import models
    model = models.lenet5()
    for param, array in zip(model.parameters(), initial_weights(), strict=True):
        param.data[...] = array
    return model


def torch_model():
    import torch
    from torch import nn
    model = nn.Sequential(nn.Conv2d(1, 6, 5, padding=2), nn.ReLU(), nn.MaxPool2d(2),
                          nn.Conv2d(6, 16, 5), nn.ReLU(), nn.MaxPool2d(2), nn.Flatten(),
                          nn.Linear(400, 120), nn.ReLU(), nn.Linear(120, 84), nn.ReLU(), nn.Linear(84, 10))
    with torch.no_grad():
        for param, array in zip(model.parameters(), initial_weights(), strict=True):
            param.copy_(torch.from_numpy(array))
    return model


def fastnn_trainer():
    """(model, step): step(images, labels) runs one SGD step on NumPy arrays and returns the loss as a float."""
    import fastnn
    from fastnn import nn, optim
    model = fastnn_model()
    optimizer = optim.SGD(model.parameters(), lr=LR, momentum=MOMENTUM)
    loss_fn = nn.CrossEntropyLoss()

    def step(images, labels):
        optimizer.zero_grad()
        loss = loss_fn(model(fastnn.tensor(images)), fastnn.tensor(labels))
        loss.backward()
        optimizer.step()
        return loss.item()
    return model, step


def torch_trainer():
    import torch
    model = torch_model()
    optimizer = torch.optim.SGD(model.parameters(), lr=LR, momentum=MOMENTUM)
    loss_fn = torch.nn.CrossEntropyLoss()

    def step(images, labels):
        optimizer.zero_grad()
        loss = loss_fn(model(torch.from_numpy(images)), torch.from_numpy(labels))
        loss.backward()
        optimizer.step()
        return loss.item()
    return model, step


TRAINERS = {"fastnn": fastnn_trainer, "torch": torch_trainer}


def run_epoch(step, images, labels, order):
    """Train over `images` once in `order`, batches of BATCH_SIZE; returns the mean loss."""
    total = 0.0
    for start in range(0, len(order), BATCH_SIZE):
        batch = order[start:start + BATCH_SIZE]
        total += step(images[batch], labels[batch])
    return total / -(-len(order) // BATCH_SIZE)

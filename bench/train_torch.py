"""The `fastnn train` recipe in PyTorch, for the same-run comparison the README reports.

    python bench/train_torch.py --model resnet20 --epochs 12 --batch-size 128 --lr 0.1 --momentum 0.9 \
        --weight-decay 5e-4 --schedule cosine --augment [--threads N] [--data-dir DIR]

Same data (full Fashion-MNIST IDX files, (x/255 - 0.2860)/0.3530), same augmentation (random 28x28 crop of the
image padded by 2 with the standardized black value, random horizontal flip, drawn per image), same model
(bench/_torch_models.py, initialised as fastnn.models does: Kaiming-normal fan_out convs, BN 1/0), same SGD with
momentum and weight decay, same per-batch cosine schedule to 0, and the same epoch line as `fastnn train`.
Needs only torch and NumPy.
"""
import argparse
import gzip
import math
import time
from pathlib import Path

import numpy as np

from _torch_models import BUILDERS

MEAN, STD = 0.2860, 0.3530


def read_split(data_dir, prefix):
    def read(name, offset):
        with gzip.open(Path(data_dir) / name, "rb") as f:
            return np.frombuffer(f.read(), np.uint8, offset=offset)
    pixels = read(f"{prefix}-images-idx3-ubyte.gz", 16).reshape(-1, 1, 28, 28)
    labels = read(f"{prefix}-labels-idx1-ubyte.gz", 8).astype(np.int64)
    images = (pixels.astype(np.float32) / np.float32(255) - np.float32(MEAN)) / np.float32(STD)
    return images, labels


def augment(batch, rng, fill):
    """Per image: a random 28x28 window of the image padded by 2 (with `fill`), flipped left-right with p=0.5."""
    n = len(batch)
    padded = np.full((n, 1, 32, 32), fill, np.float32)
    padded[:, :, 2:30, 2:30] = batch
    tops, lefts = rng.integers(0, 5, n), rng.integers(0, 5, n)
    rows = tops[:, None] + np.arange(28)
    cols = lefts[:, None] + np.arange(28)
    out = padded[np.arange(n)[:, None, None], 0, rows[:, :, None], cols[:, None, :]][:, None]
    flip = rng.random(n) < 0.5
    out[flip] = out[flip][..., ::-1]
    return np.ascontiguousarray(out)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", choices=["resnet20", "vgg11_bn_cifar"], default="resnet20")
    parser.add_argument("--epochs", type=int, default=12)
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--lr", type=float, default=0.1)
    parser.add_argument("--momentum", type=float, default=0.9)
    parser.add_argument("--weight-decay", type=float, default=5e-4)
    parser.add_argument("--schedule", choices=["constant", "cosine"], default="cosine")
    parser.add_argument("--augment", action="store_true")
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--data-dir", default="/usr/share/datasets/fashion-mnist")
    args = parser.parse_args()

    import torch
    if args.threads:
        torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    rng = np.random.default_rng(args.seed)
    x_train, y_train = read_split(args.data_dir, "train")
    x_test, y_test = read_split(args.data_dir, "t10k")
    fill = (np.float32(0) - np.float32(MEAN)) / np.float32(STD)

    model = BUILDERS[args.model](torch, num_classes=10, in_channels=1)
    for m in model.modules():
        if isinstance(m, torch.nn.Conv2d):
            torch.nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
    optimizer = torch.optim.SGD(model.parameters(), lr=args.lr, momentum=args.momentum,
                                weight_decay=args.weight_decay)
    steps_per_epoch = math.ceil(len(x_train) / args.batch_size)
    scheduler = (torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=args.epochs * steps_per_epoch)
                 if args.schedule == "cosine" else None)
    n_params = sum(p.numel() for p in model.parameters())
    print(f"torch {torch.__version__} {args.model}: {n_params:,} parameters; {len(x_train):,} train / "
          f"{len(x_test):,} test images; sgd lr={args.lr} ({args.schedule}) batch={args.batch_size} "
          f"weight_decay={args.weight_decay} momentum={args.momentum}; augment={'crop+flip' if args.augment else 'off'}; "
          f"{torch.get_num_threads()} threads", flush=True)
    start = time.perf_counter()
    for epoch in range(1, args.epochs + 1):
        epoch_start = time.perf_counter()
        model.train()
        order = rng.permutation(len(x_train))
        total_loss, correct = 0.0, 0
        for first in range(0, len(order), args.batch_size):
            batch = order[first:first + args.batch_size]
            images = augment(x_train[batch], rng, fill) if args.augment else x_train[batch]
            targets = torch.from_numpy(y_train[batch])
            optimizer.zero_grad()
            logits = model(torch.from_numpy(images))
            loss = torch.nn.functional.cross_entropy(logits, targets)
            loss.backward()
            optimizer.step()
            if scheduler is not None:
                scheduler.step()
            total_loss += loss.item() * len(batch)
            correct += int((logits.argmax(1) == targets).sum())
        epoch_seconds = time.perf_counter() - epoch_start
        model.eval()
        with torch.no_grad():
            predictions = np.concatenate([model(torch.from_numpy(x_test[i:i + 1000])).argmax(1).numpy()
                                          for i in range(0, len(x_test), 1000)])
        test_acc = float((predictions == y_test).mean())
        lr = optimizer.param_groups[0]["lr"]
        print(f"epoch {epoch}/{args.epochs}: train loss {total_loss / len(order):.4f}  train acc "
              f"{correct / len(order):.4f}  test acc {test_acc:.4f}  lr {lr:.4g}  epoch {epoch_seconds:.1f}s  "
              f"elapsed {time.perf_counter() - start:.1f}s", flush=True)
    print(f"test accuracy: {test_acc:.4f}")


if __name__ == "__main__":
    main()

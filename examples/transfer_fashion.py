"""Transfer learning on Fashion-MNIST: train a small CNN on classes 0-4 (T-shirt, Trouser, Pullover, Dress, Coat),
save it, then fine-tune it onto classes 5-9 (Sandal, Shirt, Sneaker, Bag, Ankle boot) with the convolutional
backbone frozen, the pretrained hidden layer fine-tuned at a lower learning rate and a new 5-way head, starting
from the saved checkpoint. For comparison, the same small network is
trained from scratch on the same few target images.

    PYTHONPATH=. python examples/transfer_fashion.py [--source-epochs 2] [--source-images 10000]
        [--target-images 1000] [--embedded]

Prints the source accuracy (classes 0-4 test images) and the target accuracies (classes 5-9 test images).
"""
import argparse
import os
import tempfile
import time

import numpy as np

import fastnn
from fastnn import nn, optim
from fastnn.data import DataLoader, FashionMNIST, TensorDataset
from fastnn.data.datasets import EMBEDDED_DIR
from fastnn.training import evaluate, train_one_epoch
from fastnn.transfer import freeze, load_pretrained, param_groups, replace_head


def small_cnn(num_classes=5):
    return nn.Sequential(
        nn.Conv2d(1, 16, 3, padding=1), nn.BatchNorm2d(16), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(16, 32, 3, padding=1), nn.BatchNorm2d(32), nn.ReLU(), nn.MaxPool2d(2),
        nn.Flatten(), nn.Linear(32 * 7 * 7, 64), nn.ReLU(), nn.Linear(64, num_classes))


def classes(x, y, wanted):
    """The images of classes `wanted`, relabelled 0..len(wanted)-1."""
    keep = np.isin(y, wanted)
    return x[keep], np.searchsorted(np.asarray(wanted), y[keep])


def loader(x, y, batch_size=64, shuffle=True):
    return DataLoader(TensorDataset(fastnn.tensor(x), fastnn.tensor(y)), batch_size=batch_size, shuffle=shuffle)


def fit(model, optimizer, train_loader, epochs, label):
    for epoch in range(1, epochs + 1):
        start = time.perf_counter()
        loss, acc = train_one_epoch(model, train_loader, optimizer, nn.CrossEntropyLoss())
        print(f"  {label} epoch {epoch}/{epochs}: loss {loss:.4f}  train acc {acc:.4f}  "
              f"({time.perf_counter() - start:.1f}s)", flush=True)


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--source-epochs", type=int, default=2)
    p.add_argument("--source-images", type=int, default=10000,
                   help="training images of classes 0-4 (the first N; bounds the run to a few minutes)")
    p.add_argument("--target-epochs", type=int, default=5)
    p.add_argument("--target-images", type=int, default=1000,
                   help="training images of classes 5-9 used for fine-tuning (few, as transfer learning is for)")
    p.add_argument("--embedded", action="store_true", help="use the 10k/2k subset shipped in fastnn")
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args(argv)
    fastnn.manual_seed(args.seed)
    root = EMBEDDED_DIR if args.embedded else None
    train, test = FashionMNIST(root, train=True), FashionMNIST(root, train=False)
    print(train.note)
    (x, y), (xt, yt) = train.standardized(), test.standardized()
    source, target = [0, 1, 2, 3, 4], [5, 6, 7, 8, 9]

    # 1. The source task, classes 0-4, trained from scratch and saved.
    xs, ys = classes(x, y, source)
    xs, ys = xs[:args.source_images], ys[:args.source_images]
    model = small_cnn(5)
    print(f"source task: classes {source}, {len(ys):,} training images")
    fit(model, optim.SGD(model.parameters(), lr=0.05, momentum=0.9), loader(xs, ys), args.source_epochs, "source")
    source_acc = evaluate(model, loader(*classes(xt, yt, source), batch_size=1000, shuffle=False))
    checkpoint = os.path.join(tempfile.mkdtemp(), "source.ckpt")
    fastnn.save(model.state_dict(), checkpoint)

    # 2. The target task, classes 5-9, from the saved checkpoint: new head, frozen backbone. The frozen BatchNorm
    # layers keep the source statistics (eval mode) so the backbone is exactly the saved one.
    xg, yg = classes(x, y, target)
    rng = np.random.default_rng(args.seed)
    few = rng.permutation(len(yg))[:args.target_images]
    target_test = loader(*classes(xt, yt, target), batch_size=1000, shuffle=False)
    tuned = small_cnn(5)
    load_pretrained(tuned, checkpoint, exclude=["11"])  # everything but the old head
    replace_head(tuned, 5)
    # The convolutional backbone (modules 0-7: conv, BN, ReLU, pool twice) is frozen; the pretrained hidden Linear
    # is fine-tuned at a 5x smaller learning rate than the new head.
    frozen = freeze(tuned, *[tuned[i] for i in range(8)])
    print(f"target task: classes {target}, {len(few):,} training images; frozen: {len(frozen)} tensors "
          f"({sum(p.numel() for p in tuned.parameters() if not p.requires_grad):,} parameters); trainable: "
          f"{sum(p.numel() for p in tuned.parameters() if p.requires_grad):,} parameters")
    opt = optim.SGD(param_groups(tuned, {"11": 0.05, "9": 0.01}), lr=0.05, momentum=0.9)
    start = time.perf_counter()
    for epoch in range(1, args.target_epochs + 1):
        loss, acc = train_one_epoch_keeping_bn(tuned, loader(xg[few], yg[few]), opt)
    print(f"  fine-tune: {args.target_epochs} epochs, last loss {loss:.4f} train acc {acc:.4f} "
          f"({time.perf_counter() - start:.1f}s)")
    tuned_acc = evaluate(tuned, target_test)

    # 3. The baseline: the same network trained from scratch on the same few target images.
    fastnn.manual_seed(args.seed + 1)
    scratch = small_cnn(5)
    fit(scratch, optim.SGD(scratch.parameters(), lr=0.05, momentum=0.9), loader(xg[few], yg[few]),
        args.target_epochs, "scratch")
    scratch_acc = evaluate(scratch, target_test)

    print(f"source accuracy (classes 0-4, {int(np.isin(yt, source).sum())} test images): {source_acc:.4f}")
    print(f"target accuracy (classes 5-9, {int(np.isin(yt, target).sum())} test images), fine-tuned head on the "
          f"frozen conv backbone: {tuned_acc:.4f}")
    print(f"target accuracy, same network from scratch on the same {len(few)} images: {scratch_acc:.4f}")
    return source_acc, tuned_acc, scratch_acc


def train_one_epoch_keeping_bn(model, train_loader, optimizer):
    """One training epoch in which the BatchNorm layers stay in eval mode (frozen statistics); returns (mean loss,
    accuracy). train_one_epoch would put them back in train mode."""
    model.train()
    for m in model.modules():
        if isinstance(m, nn.BatchNorm2d):
            m.eval()
    loss_fn, total, correct, seen = nn.CrossEntropyLoss(), 0.0, 0, 0
    for inputs, targets in train_loader:
        optimizer.zero_grad()
        logits = model(inputs)
        loss = loss_fn(logits, targets)
        loss.backward()
        optimizer.step()
        total += loss.item() * len(targets)
        correct += int((logits.detach().numpy().argmax(axis=1) == targets.detach().numpy()).sum())
        seen += len(targets)
    return total / seen, correct / seen


if __name__ == "__main__":
    main()

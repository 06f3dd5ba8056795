"""The `fastnn` console script: `fastnn train ...`, `fastnn bench ...`, `fastnn info`, `fastnn search ...`,
`fastnn diagnose ...`, `fastnn plot ...`."""
import argparse
import sys
import time

_DEFAULT_LR = {"sgd": 0.05, "adam": 1e-3}

# Zoo models that take 1-channel 28x28 input, each built for 10 classes (every one checked to run a forward pass
# on an N x 1 x 28 x 28 batch).
MODELS = {
    "mlp": lambda: _models().mlp(num_classes=10),
    "lenet5": lambda: _models().lenet5(num_classes=10, in_channels=1),
    "lenet5-classic": lambda: _models().lenet5(num_classes=10, in_channels=1, variant="classic"),
    **{name: (lambda name=name: getattr(_models(), name)(num_classes=10, in_channels=1))
       for name in ("resnet20", "resnet32", "resnet44", "resnet56", "resnet110", "vgg11_bn_cifar")},
}
SCHEDULES = ("constant", "cosine")


def _models():
    from fastnn import models
    return models


def _train_parser(sub):
    p = sub.add_parser("train", help="train a model on Fashion-MNIST and report test accuracy")
    p.add_argument("--model", choices=list(MODELS), default="lenet5",
                   help="lenet5 is the modern LeNet-5 (ReLU, max-pooling), lenet5-classic the 1998 one (tanh, "
                        "average pooling); resnet20-110 are the CIFAR ResNets")
    p.add_argument("--epochs", type=int, default=3)
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--lr", type=float, default=None, help="default: 0.05 for sgd, 1e-3 for adam")
    p.add_argument("--optimizer", choices=["sgd", "adam"], default="sgd")
    p.add_argument("--momentum", type=float, default=0.9, help="SGD momentum")
    p.add_argument("--weight-decay", type=float, default=0.0)
    p.add_argument("--schedule", choices=SCHEDULES, default="constant",
                   help="learning-rate schedule: constant, or cosine annealing from --lr to 0, stepped after "
                        "every batch over all epochs")
    p.add_argument("--augment", action="store_true",
                   help="augment training batches: random 28x28 crop after 2-pixel padding, and random "
                        "horizontal flip (each image drawn independently; test images are never augmented)")
    p.add_argument("--limit", type=int, default=None, metavar="N",
                   help="train on the first N training images only (e.g. for quick smoke runs); the test set "
                        "is unchanged")
    p.add_argument("--data-dir", default=None,
                   help="directory with the Fashion-MNIST IDX files; default: Debian's dataset-fashion-mnist if "
                        "installed, else the subset embedded in fastnn")
    p.add_argument("--embedded", action="store_true", help="use the embedded 10,000/2,000-image subset")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threads", type=int, default=None, help="kernel threads (default: all cores)")
    p.add_argument("--save", default=None, help="write the trained model's state_dict here (fastnn.save)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")


def build_model(name):
    """A fresh `name` model from MODELS (10 classes, 1-channel 28x28 input)."""
    if name not in MODELS:
        raise ValueError(f"unknown model {name!r}; choose from {', '.join(MODELS)}")
    return MODELS[name]()


def train_transform(augment, generator=None):
    """The batched transform of raw Fashion-MNIST training images (uint8 N x 28 x 28 x 1, as FashionMNIST.get_batch
    hands them over) into standardized float32 N x 1 x 28 x 28 Tensors, bit-identical to
    FashionMNIST.standardized(); with `augment`, followed by a random 28x28 crop of the image padded by 2 pixels
    and a random horizontal flip, drawn per image (from `generator`, else fastnn's default generator)."""
    from fastnn.data import FASHION_MNIST_MEAN, FASHION_MNIST_STD, transforms
    steps = [transforms.ToTensor(), transforms.Normalize((FASHION_MNIST_MEAN,), (FASHION_MNIST_STD,))]
    if augment:
        # The crop runs on standardized images, so the padding must be what a black pixel (the Fashion-MNIST
        # background) standardizes to, (0 - mean) / std ~ -0.810, not 0: a 0 fill would frame the shifted images
        # with a mid-gray border never seen at test time. Computed in float32 like Normalize, so it is exact.
        steps += [transforms.RandomCrop(28, padding=2, fill=standardized_background(), generator=generator),
                  transforms.RandomHorizontalFlip(generator=generator)]
    return transforms.Compose(steps)


def standardized_background():
    """The standardized value of a black (0) pixel, as float32 arithmetic gives it: (0/255 - 0.2860) / 0.3530."""
    import numpy as np
    from fastnn.data import FASHION_MNIST_MEAN, FASHION_MNIST_STD
    return float((np.float32(0) - np.float32(FASHION_MNIST_MEAN)) / np.float32(FASHION_MNIST_STD))


def make_scheduler(schedule, optimizer, total_steps):
    """The per-batch learning-rate scheduler for `schedule` (None for "constant"). "cosine" anneals from the
    optimizer's lr to 0 over `total_steps` batches: the lr is the initial one for the first batch and reaches 0
    exactly after the last scheduler step."""
    from fastnn.optim.lr_scheduler import CosineAnnealingLR
    if schedule == "constant":
        return None
    if schedule == "cosine":
        return CosineAnnealingLR(optimizer, T_max=total_steps, eta_min=0.0)
    raise ValueError(f"unknown schedule {schedule!r}; choose from {', '.join(SCHEDULES)}")


def _load_data(args):
    from fastnn.data import FashionMNIST
    from fastnn.data.datasets import EMBEDDED_DIR
    root = EMBEDDED_DIR if args.embedded else args.data_dir
    train, test = FashionMNIST(root, train=True), FashionMNIST(root, train=False)
    print(train.note)
    return train, test


def make_loaders(train, test, batch_size, augment=False, limit=None):
    """(train loader, test loader) over FashionMNIST splits `train` and `test`: standardized images, the training
    set shuffled, cut to its first `limit` images when given and, with `augment`, randomly cropped and flipped
    batch by batch (by setting `train.transform`, which FashionMNIST.get_batch applies to whole batches); the test
    set is never augmented."""
    import numpy as np
    import fastnn
    from fastnn.data import DataLoader, Subset, TensorDataset
    n_train = len(train) if limit is None else min(limit, len(train))
    if augment:
        train.transform = train_transform(augment=True)
        train_set = train if n_train == len(train) else Subset(train, np.arange(n_train))
    else:
        x_train, y_train = train.standardized()
        train_set = TensorDataset(fastnn.tensor(x_train[:n_train]), fastnn.tensor(y_train[:n_train]))
    x_test, y_test = test.standardized()
    test_set = TensorDataset(fastnn.tensor(x_test), fastnn.tensor(y_test))
    return (DataLoader(train_set, batch_size=batch_size, shuffle=True),
            DataLoader(test_set, batch_size=1000))


def _check_args(args):
    if args.epochs < 1 or args.batch_size < 1:
        raise SystemExit("fastnn train: --epochs and --batch-size must be positive")
    if args.embedded and args.data_dir:
        raise SystemExit("fastnn train: --embedded and --data-dir are mutually exclusive")
    if args.limit is not None and args.limit < 1:
        raise SystemExit(f"fastnn train: --limit must be at least 1 (the number of training images), got "
                         f"{args.limit}")
    if args.lr is not None and not args.lr > 0:
        raise SystemExit(f"fastnn train: --lr must be positive, got {args.lr}")
    if args.threads is not None and args.threads < 1:
        raise SystemExit(f"fastnn train: --threads must be positive, got {args.threads}")


def train(args):
    import fastnn
    from fastnn import nn, optim
    from fastnn.training import evaluate, train_one_epoch
    _check_args(args)
    if args.threads:
        fastnn.set_num_threads(args.threads)
    fastnn.manual_seed(args.seed)
    train_split, test_split = _load_data(args)
    train_loader, test_loader = make_loaders(train_split, test_split, args.batch_size, args.augment, args.limit)
    model = build_model(args.model)
    lr = args.lr if args.lr is not None else _DEFAULT_LR[args.optimizer]
    if args.optimizer == "sgd":
        optimizer = optim.SGD(model.parameters(), lr=lr, momentum=args.momentum, weight_decay=args.weight_decay)
    else:
        optimizer = optim.Adam(model.parameters(), lr=lr, weight_decay=args.weight_decay)
    scheduler = make_scheduler(args.schedule, optimizer, args.epochs * len(train_loader))
    loss_fn = nn.CrossEntropyLoss()
    n_params = sum(p.numel() for p in model.parameters())
    print(f"{args.model}: {n_params:,} parameters; {len(train_loader.dataset):,} train / "
          f"{len(test_loader.dataset):,} test images; {args.optimizer} lr={lr} ({args.schedule}) "
          f"batch={args.batch_size} weight_decay={args.weight_decay}"
          f"{' momentum=' + str(args.momentum) if args.optimizer == 'sgd' else ''}; "
          f"augment={'crop+flip' if args.augment else 'off'}; {fastnn.get_num_threads()} threads", flush=True)
    training_start = time.perf_counter()
    for epoch in range(1, args.epochs + 1):
        start = time.perf_counter()
        with _progress(len(train_loader), f"epoch {epoch}/{args.epochs}", args.no_progress) as bar:
            train_loss, train_acc = train_one_epoch(model, train_loader, optimizer, loss_fn, bar, scheduler)
        seconds = time.perf_counter() - start
        test_acc = evaluate(model, test_loader)
        elapsed = time.perf_counter() - training_start
        print(f"epoch {epoch}/{args.epochs}: train loss {train_loss:.4f}  train acc {train_acc:.4f}  "
              f"test acc {test_acc:.4f}  lr {optimizer.param_groups[0]['lr']:.4g}  "
              f"epoch {seconds:.1f}s  elapsed {elapsed:.1f}s", flush=True)
    print(f"test accuracy: {test_acc:.4f}", flush=True)
    if args.save:
        fastnn.save(model.state_dict(), args.save)
        print(f"saved state_dict to {args.save}")
    return 0


class _progress:
    """A tqdm bar on stderr (off when not a terminal or when asked); called as progress(step, loss)."""

    def __init__(self, total, desc, disabled):
        from tqdm import tqdm
        self.bar = tqdm(total=total, desc=desc, unit="batch", leave=False, file=sys.stderr,
                        disable=True if disabled else None)

    def __enter__(self):
        return self

    def __call__(self, step, loss):
        self.bar.update(1)
        if step % 20 == 0:
            self.bar.set_postfix(loss=f"{loss:.4f}", refresh=False)

    def __exit__(self, *exc):
        self.bar.close()
        return False


def info(args):
    import numba
    import numpy
    import fastnn
    print(f"fastnn {fastnn.__version__}; numpy {numpy.__version__}; numba {numba.__version__}; "
          f"threads {fastnn.get_num_threads()}; numba cache dir: {numba.config.CACHE_DIR or '(next to sources)'}")
    return 0


def main(argv=None):
    argv = sys.argv[1:] if argv is None else list(argv)
    if argv[:1] == ["bench"]:
        # Everything after `bench` belongs to bench/run.py, options included (argparse.REMAINDER drops a leading
        # --option).
        from fastnn import bench as bench_module
        return bench_module.main(argv[1:])
    parser = argparse.ArgumentParser(prog="fastnn", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    _train_parser(sub)
    sub.add_parser("bench", help="time kernels and training against PyTorch (see bench/README.md)")
    sub.add_parser("info", help="versions, threads and kernel cache location")
    from fastnn import cli_tools
    cli_tools.add_parsers(sub)  # search, diagnose, plot
    args = parser.parse_args(argv)
    if args.command == "train":
        return train(args)
    if args.command in ("search", "diagnose", "plot"):
        return cli_tools.run(args)
    return info(args)


if __name__ == "__main__":
    sys.exit(main())

"""The `fastnn` console script: `fastnn train ...`, `fastnn bench ...`, `fastnn info`."""
import argparse
import sys
import time

_DEFAULT_LR = {"sgd": 0.05, "adam": 1e-3}


def _train_parser(sub):
    p = sub.add_parser("train", help="train a model on Fashion-MNIST and report test accuracy")
    p.add_argument("--model", choices=["mlp", "lenet5"], default="lenet5")
    p.add_argument("--epochs", type=int, default=3)
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--lr", type=float, default=None, help="default: 0.05 for sgd, 1e-3 for adam")
    p.add_argument("--optimizer", choices=["sgd", "adam"], default="sgd")
    p.add_argument("--momentum", type=float, default=0.9, help="SGD momentum")
    p.add_argument("--weight-decay", type=float, default=0.0)
    p.add_argument("--data-dir", default=None,
                   help="directory with the Fashion-MNIST IDX files; default: Debian's dataset-fashion-mnist if "
                        "installed, else the subset embedded in fastnn")
    p.add_argument("--embedded", action="store_true", help="use the embedded 10,000/2,000-image subset")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threads", type=int, default=None, help="kernel threads (default: all cores)")
    p.add_argument("--save", default=None, help="write the trained model's state_dict here (fastnn.save)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")


def _load_data(args):
    from fastnn.data import FashionMNIST
    from fastnn.data.datasets import EMBEDDED_DIR
    if args.embedded and args.data_dir:
        raise SystemExit("fastnn train: --embedded and --data-dir are mutually exclusive")
    root = EMBEDDED_DIR if args.embedded else args.data_dir
    train, test = FashionMNIST(root, train=True), FashionMNIST(root, train=False)
    print(train.note)
    return train.standardized(), test.standardized()


def train(args):
    import fastnn
    from fastnn import models, nn, optim
    from fastnn.data import DataLoader, TensorDataset
    from fastnn.training import evaluate, train_one_epoch
    if args.epochs < 1 or args.batch_size < 1:
        raise SystemExit("fastnn train: --epochs and --batch-size must be positive")
    if args.threads:
        fastnn.set_num_threads(args.threads)
    fastnn.manual_seed(args.seed)
    (x_train, y_train), (x_test, y_test) = _load_data(args)
    train_loader = DataLoader(TensorDataset(fastnn.tensor(x_train), fastnn.tensor(y_train)),
                              batch_size=args.batch_size, shuffle=True)
    test_loader = DataLoader(TensorDataset(fastnn.tensor(x_test), fastnn.tensor(y_test)), batch_size=1000)
    model = models.lenet5() if args.model == "lenet5" else models.mlp()
    lr = args.lr if args.lr is not None else _DEFAULT_LR[args.optimizer]
    if args.optimizer == "sgd":
        optimizer = optim.SGD(model.parameters(), lr=lr, momentum=args.momentum, weight_decay=args.weight_decay)
    else:
        optimizer = optim.Adam(model.parameters(), lr=lr, weight_decay=args.weight_decay)
    loss_fn = nn.CrossEntropyLoss()
    n_params = sum(p.numel() for p in model.parameters())
    print(f"{args.model}: {n_params:,} parameters; {len(x_train):,} train / {len(x_test):,} test images; "
          f"{args.optimizer} lr={lr} batch={args.batch_size}; {fastnn.get_num_threads()} threads")
    for epoch in range(1, args.epochs + 1):
        start = time.perf_counter()
        with _progress(len(train_loader), f"epoch {epoch}/{args.epochs}", args.no_progress) as bar:
            train_loss, train_acc = train_one_epoch(model, train_loader, optimizer, loss_fn, bar)
        seconds = time.perf_counter() - start
        test_acc = evaluate(model, test_loader)
        print(f"epoch {epoch}: train loss {train_loss:.4f}  train acc {train_acc:.4f}  test acc {test_acc:.4f}  "
              f"{seconds:.1f}s", flush=True)
    print(f"test accuracy: {test_acc:.4f}")
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
    args = parser.parse_args(argv)
    if args.command == "train":
        return train(args)
    return info(args)


if __name__ == "__main__":
    sys.exit(main())

"""The `fastnn` console script: `fastnn train ...`, `fastnn bench ...`, `fastnn info`, `fastnn search ...`,
`fastnn diagnose ...`, `fastnn plot ...`, `fastnn export ...`."""
import argparse
import sys
import time

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
    # Options that set config keys default to None ("not given"), so that --config FILE and, with --resume, the
    # run's saved config fill them in; fastnn.train.config.SCHEMA holds the defaults (shown here).
    p = sub.add_parser("train", help="train a model on Fashion-MNIST and report test accuracy")
    p.add_argument("--config", default=None, metavar="FILE",
                   help="TOML run configuration (model, data, augmentation, optimizer, schedule, epochs, "
                        "callbacks; see fastnn/train/config.py); options given here override it")
    p.add_argument("--out", default=None, metavar="DIR",
                   help="write history.csv/history.jsonl, the checkpoints last.fastnn and best.fastnn and the "
                        "resolved config.toml here")
    p.add_argument("--resume", action="store_true",
                   help="continue the run in --out DIR from its last checkpoint (with its config.toml) up to "
                        "--epochs")
    p.add_argument("--model", choices=list(MODELS), default=None,
                   help="default lenet5: the modern LeNet-5 (ReLU, max-pooling); lenet5-classic is the 1998 one "
                        "(tanh, average pooling); resnet20-110 are the CIFAR ResNets")
    p.add_argument("--epochs", type=int, default=None, help="default 3")
    p.add_argument("--batch-size", type=int, default=None, help="default 64")
    p.add_argument("--lr", type=float, default=None, help="default: 0.05 for sgd, 1e-3 for adam")
    p.add_argument("--optimizer", choices=["sgd", "adam"], default=None, help="default sgd")
    p.add_argument("--momentum", type=float, default=None, help="SGD momentum, default 0.9")
    p.add_argument("--weight-decay", type=float, default=None, help="default 0")
    p.add_argument("--schedule", choices=SCHEDULES, default=None,
                   help="learning-rate schedule: constant (the default), or cosine annealing from --lr to 0, "
                        "stepped after every batch over all epochs")
    p.add_argument("--augment", action="store_true", default=None,
                   help="augment training batches: random 28x28 crop after 2-pixel padding, and random "
                        "horizontal flip (each image drawn independently; test images are never augmented)")
    p.add_argument("--limit", type=int, default=None, metavar="N",
                   help="train on the first N training images only (e.g. for quick smoke runs); the test set "
                        "is unchanged")
    p.add_argument("--data-dir", default=None,
                   help="directory with the Fashion-MNIST IDX files; default: Debian's dataset-fashion-mnist if "
                        "installed, else the subset embedded in fastnn")
    p.add_argument("--embedded", action="store_true", default=None,
                   help="use the embedded 10,000/2,000-image subset")
    p.add_argument("--max-norm", type=float, default=None, help="clip the gradients' total norm to this")
    p.add_argument("--accumulate", type=int, default=None, metavar="K",
                   help="accumulate the gradients of K batches per optimizer step")
    p.add_argument("--seed", type=int, default=None, help="default 0")
    p.add_argument("--threads", type=int, default=None, help="kernel threads (default: all cores)")
    p.add_argument("--save", default=None, help="write the trained model's state_dict here (fastnn.save)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.add_argument("--nproc", type=int, default=None, metavar="N",
                   help="train data-parallel on N processes (fastnn run -n N; needs fastnn[distributed]); "
                        "--batch-size is then per process")


# Command-line option -> the config key it sets.
_OPTION_KEYS = {"model": "model.name", "epochs": "epochs", "batch_size": "data.batch_size", "lr": "optimizer.lr",
                "optimizer": "optimizer.name", "momentum": "optimizer.momentum",
                "weight_decay": "optimizer.weight_decay", "schedule": "schedule.name",
                "augment": "augmentation.crop_flip", "limit": "data.limit", "data_dir": "data.data_dir",
                "embedded": "data.embedded", "max_norm": "train.max_norm",
                "accumulate": "train.accumulate_grad_batches", "seed": "seed"}


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


def _load_data(data):
    from fastnn.data import FashionMNIST
    from fastnn.data.datasets import EMBEDDED_DIR
    root = EMBEDDED_DIR if data["embedded"] else data["data_dir"]
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


def resolve_train_config(args):
    """The resolved run configuration of `fastnn train` (see fastnn.train.config): the defaults, then --config
    FILE (or, with --resume, --out DIR's config.toml), then the options given on the command line."""
    import os
    from fastnn.train import config as cfg
    if args.threads is not None and args.threads < 1:
        raise SystemExit(f"fastnn train: --threads must be positive, got {args.threads}")
    if args.resume and args.out is None:
        raise SystemExit("fastnn train: --resume needs --out DIR (the run to continue)")
    if args.resume and args.config is not None:
        raise SystemExit("fastnn train: --resume continues with DIR/config.toml; leave out --config")
    source = os.path.join(args.out, "config.toml") if args.resume else args.config
    overrides = {key: getattr(args, option) for option, key in _OPTION_KEYS.items()}
    names = {key: "--" + option.replace("_", "-") for option, key in _OPTION_KEYS.items()}
    try:
        raw = cfg.load_file(source) if source is not None else {}
        return cfg.resolve(raw, overrides, source=source or "the defaults", model_choices=list(MODELS),
                           override_names=names)
    except FileNotFoundError as exc:
        raise SystemExit(f"fastnn train: {exc.filename}: no such file"
                         f"{' (is --out the directory of an earlier run?)' if args.resume else ''}") from None
    except cfg.ConfigError as exc:
        raise SystemExit(f"fastnn train: {exc}") from None


def make_optimizer(config, model):
    from fastnn import optim
    o = config["optimizer"]
    if o["name"] == "sgd":
        return optim.SGD(model.parameters(), lr=o["lr"], momentum=o["momentum"], weight_decay=o["weight_decay"])
    return optim.Adam(model.parameters(), lr=o["lr"], weight_decay=o["weight_decay"])


def make_callbacks(config, out):
    """The callbacks of the config's [callbacks] section; the checkpoint one only with --out."""
    from fastnn import train as fit_loop
    c = config["callbacks"]
    callbacks = []
    if "early_stopping" in c:
        callbacks.append(fit_loop.EarlyStopping(**c["early_stopping"]))
    if c["lr_monitor"]:
        callbacks.append(fit_loop.LRMonitor())
    if c["tensorboard"]:
        if out is None:
            raise SystemExit("fastnn train: callbacks.tensorboard needs --out DIR (the logs go to DIR/tensorboard)")
        callbacks.append(fit_loop.TensorBoardLogger())
    if out is not None:
        callbacks.append(fit_loop.ModelCheckpoint(out, **c["checkpoint"]))
    return callbacks


def train(args):
    import os
    import fastnn
    from fastnn import nn
    from fastnn.train import Trainer
    from fastnn.train.config import dumps
    from fastnn.distributed._train import training_context
    config = resolve_train_config(args)  # every check before any data is read or anything trained
    dist = training_context(config["seed"], config["data"]["batch_size"])
    if args.threads:
        fastnn.set_num_threads(args.threads)
    last = None
    if args.out is not None and dist.is_main:
        os.makedirs(args.out, exist_ok=True)
        last = os.path.join(args.out, "last.fastnn")
        if args.resume and not os.path.exists(last):
            raise SystemExit(f"fastnn train: {last}: no such file (no epoch of the run in {args.out} finished)")
        if not args.resume and os.path.exists(last):
            raise SystemExit(f"fastnn train: {args.out} holds an earlier run (last.fastnn); pass --resume to "
                             f"continue it, or choose another --out")
        with open(os.path.join(args.out, "config.toml"), "w") as f:
            f.write(dumps(config))
    epochs = config["epochs"]
    fastnn.manual_seed(config["seed"])
    data = config["data"]
    train_split, test_split = _load_data(data)
    train_loader, test_loader = make_loaders(train_split, test_split, data["batch_size"],
                                             config["augmentation"]["crop_flip"], data["limit"])
    train_loader, test_loader = dist.shard(train_loader, test_loader)
    model = build_model(config["model"]["name"])
    optimizer = make_optimizer(config, model)
    schedule = config["schedule"]
    scheduler = make_scheduler(schedule["name"], optimizer, schedule["epochs"] * len(train_loader))
    if args.resume and schedule["name"] == "cosine" and epochs > schedule["epochs"]:
        print(f"warning: the cosine schedule ends after epoch {schedule['epochs']} (schedule.epochs in "
              f"{args.out}/config.toml); epochs after it restart the cosine", file=sys.stderr)
    o = config["optimizer"]
    n_params = sum(p.numel() for p in model.parameters())
    print(f"{config['model']['name']}: {n_params:,} parameters; {len(train_loader.dataset):,} train / "
          f"{len(test_loader.dataset):,} test images; {o['name']} lr={o['lr']} ({schedule['name']}) "
          f"batch={data['batch_size']} weight_decay={o['weight_decay']}"
          f"{' momentum=' + str(o['momentum']) if o['name'] == 'sgd' else ''}; "
          f"augment={'crop+flip' if config['augmentation']['crop_flip'] else 'off'}; "
          f"{fastnn.get_num_threads()} threads", flush=True)
    # With --nproc, only rank 0 writes files and prints; every rank's metrics are averaged first (dist.callback).
    out = args.out if dist.is_main else None
    trainer = Trainer(dist.wrap(model), nn.CrossEntropyLoss(), optimizer, scheduler, scheduler_interval="step",
                      callbacks=[dist.callback()] + make_callbacks(config, out) + [_epoch_line(epochs)], out_dir=out,
                      progress=not args.no_progress and dist.is_main, max_norm=config["train"]["max_norm"],
                      accumulate_grad_batches=config["train"]["accumulate_grad_batches"])
    history = trainer.fit(train_loader, test_loader, epochs=epochs, ckpt_path=last if args.resume else None)
    if not history:
        raise SystemExit("fastnn train: no epoch trained")
    print(f"test accuracy: {history[-1]['val_acc']:.4f}", flush=True)
    if args.save and dist.is_main:
        fastnn.save(model.state_dict(), args.save)
        print(f"saved state_dict to {args.save}")
    return 0


def _epoch_line(epochs):
    """The callback printing the line per epoch `fastnn train` has always printed (elapsed: in this process)."""
    from fastnn.train import Callback

    class EpochLine(Callback):
        def on_fit_start(self, trainer):
            self.start = time.perf_counter()
            if trainer.epoch >= epochs:
                print(f"the run has trained {trainer.epoch} epochs already (--epochs {epochs})", flush=True)

        def on_epoch_end(self, trainer, epoch, logs):
            print(f"epoch {epoch}/{epochs}: train loss {logs['train_loss']:.4f}  train acc {logs['train_acc']:.4f}  "
                  f"test acc {logs['val_acc']:.4f}  lr {trainer.optimizer.param_groups[0]['lr']:.4g}  "
                  f"epoch {logs['seconds']:.1f}s  elapsed {time.perf_counter() - self.start:.1f}s", flush=True)

    return EpochLine()


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
    if argv[:1] == ["run"] or (argv[:1] == ["train"] and any(a.split("=")[0] == "--nproc" for a in argv)):
        # `run` passes everything after it to the script; `train --nproc N` relaunches itself under `run`.
        from fastnn.distributed import launch
        return launch.main(argv[1:]) if argv[0] == "run" else launch.relaunch_train(argv)
    parser = argparse.ArgumentParser(prog="fastnn", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    _train_parser(sub)
    sub.add_parser("bench", help="time kernels and training against PyTorch (see bench/README.md)")
    sub.add_parser("info", help="versions, threads and kernel cache location")
    sub.add_parser("run", help="run a script as N data-parallel MPI processes: fastnn run -n N script.py ...")
    from fastnn import cli_tools
    cli_tools.add_parsers(sub)  # search, diagnose, plot, export
    args = parser.parse_args(argv)
    if args.command == "train":
        return train(args)
    if args.command in cli_tools.COMMANDS:
        return cli_tools.run(args)
    return info(args)


if __name__ == "__main__":
    sys.exit(main())

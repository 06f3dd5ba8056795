"""A real result: the small BN-CNN on the full Fashion-MNIST, with and without augmentation.

    python bench/augment_bn_cnn.py [--epochs E] [--configs none,cropflip,erasing] [--recipe adam|onecycle]
                                   [--limit N] [--workers W] [--max-minutes M] [--json PATH]

Model: bench/_bn_cnn.py (conv32-BN-ReLU x2, max-pool, conv64-BN-ReLU x2, max-pool, linear). Batch 128, seed 0,
standardized images ((x/255 - 0.2860)/0.3530), the same initial weights for every config. Recipes:
  adam      Adam lr 1e-3, constant (the PyTorch baseline's recipe: 91.1% in 2 epochs without augmentation)
  onecycle  AdamW (weight decay 0.05) under OneCycleLR (max_lr 4e-3, stepped per batch over all E epochs) and
            CrossEntropyLoss(label_smoothing=0.1): augmentation regularizes, so it needs more epochs and an
            annealed learning rate to pay off
Configs:
  none      no augmentation
  cropflip  RandomCrop(28, padding=2, fill=background) + RandomHorizontalFlip (fastnn.cli.train_transform)
  erasing   cropflip + RandomErasing() when fastnn.data.transforms has it; else skipped and said so
Batches come from DataLoader(num_workers=W) (default 1 worker thread). With the adam recipe epochs alternate
between the configs; with onecycle (whose schedule only ends well when run to its end) each config runs all its
epochs in turn, in the order given, and --max-minutes skips a config its predecessors' epoch times say would not
finish. After each epoch: test accuracy and the epoch's wall time (training only) with the 1-minute load
average. Prints one line per epoch, a summary table, and the host.
"""
import argparse
import json
import sys
import time
from pathlib import Path

BENCH_DIR = Path(__file__).resolve().parent
sys.path[:0] = [str(BENCH_DIR), str(BENCH_DIR.parent)]
from _bn_cnn import bn_cnn, cpu_model  # noqa: E402

BATCH_SIZE = 128
LR = 1e-3  # adam recipe
MAX_LR, WEIGHT_DECAY, LABEL_SMOOTHING = 4e-3, 0.05, 0.1  # onecycle recipe
SEED = 0


def make_transform(config):
    """The batched training transform of a config, or a string saying why the config can't run."""
    from fastnn.cli import train_transform
    from fastnn.data import transforms
    if config == "none":
        return train_transform(augment=False)
    pipeline = train_transform(augment=True)
    if config == "cropflip":
        return pipeline
    if config == "erasing":
        erasing = getattr(transforms, "RandomErasing", None)
        if erasing is None:
            return "fastnn.data.transforms.RandomErasing does not exist in this tree"
        return transforms.Compose(pipeline.transforms + [erasing()])
    raise ValueError(f"unknown config {config!r}")


class Run:
    """One config's model, optimizer and loaders, trained one epoch at a time."""

    def __init__(self, config, transform, limit, workers, recipe, epochs):
        import numpy as np
        import fastnn
        from fastnn import nn, optim
        from fastnn.data import DataLoader, FashionMNIST, Subset, TensorDataset
        self.config = config
        fastnn.manual_seed(SEED)  # same initial weights and data order for every config
        train, test = FashionMNIST(train=True, transform=transform), FashionMNIST(train=False)
        train_set = train if limit is None else Subset(train, np.arange(min(limit, len(train))))
        self.loader = DataLoader(train_set, batch_size=BATCH_SIZE, shuffle=True, num_workers=workers,
                                 persistent_workers=workers > 0, generator=np.random.default_rng(SEED))
        x_test, y_test = test.standardized()
        self.test_loader = DataLoader(TensorDataset(fastnn.tensor(x_test), fastnn.tensor(y_test)), batch_size=1000)
        self.model = bn_cnn()
        if recipe == "adam":
            self.optimizer, self.scheduler = optim.Adam(self.model.parameters(), lr=LR), None
            self.loss_fn = nn.CrossEntropyLoss()
        else:
            self.optimizer = optim.AdamW(self.model.parameters(), lr=MAX_LR, weight_decay=WEIGHT_DECAY)
            self.scheduler = optim.lr_scheduler.OneCycleLR(self.optimizer, MAX_LR, epochs=epochs,
                                                           steps_per_epoch=len(self.loader))
            self.loss_fn = nn.CrossEntropyLoss(label_smoothing=LABEL_SMOOTHING)
        self.epoch = 0

    def train_epoch(self, epochs):
        import os
        from fastnn.training import evaluate, train_one_epoch
        self.epoch += 1
        start = time.perf_counter()
        loss, train_acc = train_one_epoch(self.model, self.loader, self.optimizer, self.loss_fn,
                                          scheduler=self.scheduler)
        seconds, load = time.perf_counter() - start, os.getloadavg()[0]
        test_acc = evaluate(self.model, self.test_loader)
        print(f"{self.config:<9} epoch {self.epoch}/{epochs}: train loss {loss:.4f} acc {train_acc:.4f}  test acc "
              f"{test_acc:.4f}  {seconds:.1f} s  (load {load:.2f})", flush=True)
        return {"config": self.config, "epoch": self.epoch, "train_loss": loss, "train_acc": train_acc,
                "test_acc": test_acc, "epoch_s": seconds, "load1": load}


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--configs", default="none,cropflip,erasing")
    parser.add_argument("--limit", type=int, default=None, help="train on the first N images (default all)")
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--recipe", choices=("adam", "onecycle"), default="adam")
    parser.add_argument("--json", default=None, help="also write every epoch's numbers here")
    parser.add_argument("--max-minutes", type=float, default=None,
                        help="adam: start no further round of epochs (after the first two) that would end past "
                             "this; onecycle: start no config that would end past this")
    args = parser.parse_args(argv)
    import fastnn
    recipe = (f"Adam lr {LR}" if args.recipe == "adam" else
              f"AdamW wd {WEIGHT_DECAY} + OneCycleLR max_lr {MAX_LR} + label smoothing {LABEL_SMOOTHING}")
    print(f"host: {cpu_model()}; fastnn threads {fastnn.get_num_threads()}; BN-CNN, {recipe}, batch "
          f"{BATCH_SIZE}, {args.epochs} epochs, DataLoader num_workers={args.workers}", flush=True)
    configs = []
    for config in args.configs.split(","):
        transform = make_transform(config)
        if isinstance(transform, str):
            print(f"{config:<9} skipped: {transform}", flush=True)
        else:
            configs.append((config, transform))

    def make_run(config, transform):
        return Run(config, transform, args.limit, args.workers, args.recipe, args.epochs)

    results, start = [], time.perf_counter()

    def train(run):
        results.append(run.train_epoch(args.epochs))
        if args.json:
            Path(args.json).write_text(json.dumps(results, indent=1))
    if args.recipe == "adam":
        # Epochs alternate between configs, so a time budget that runs out leaves every config at the same epoch.
        runs, round_s = [make_run(*c) for c in configs], 0.0
        for epoch in range(1, args.epochs + 1):
            elapsed = time.perf_counter() - start
            if epoch > 2 and args.max_minutes and elapsed + round_s > 60 * args.max_minutes:
                print(f"stopping after {epoch - 1} epochs: another round (~{round_s:.0f} s) would pass "
                      f"--max-minutes {args.max_minutes}", flush=True)
                break
            for run in runs:
                train(run)
            round_s = time.perf_counter() - start - elapsed
    else:
        config_s = None  # the slowest config so far, end to end
        for config, transform in configs:
            elapsed = time.perf_counter() - start
            if config_s is not None and args.max_minutes and elapsed + config_s > 60 * args.max_minutes:
                print(f"{config:<9} skipped: its {args.epochs} epochs (~{config_s:.0f} s) would pass "
                      f"--max-minutes {args.max_minutes}", flush=True)
                continue
            run = make_run(config, transform)
            for _ in range(args.epochs):
                train(run)
            config_s = max(config_s or 0.0, time.perf_counter() - start - elapsed)
    print("\n| config | epoch | test acc | epoch s |\n|---|---|---|---|")
    for row in results:
        print(f"| {row['config']} | {row['epoch']} | {row['test_acc']:.4f} | {row['epoch_s']:.1f} |")
    print(f"host: {cpu_model()}")


if __name__ == "__main__":
    main()

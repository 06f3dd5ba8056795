"""Does loading stall training? LeNet-5 epochs fed by DataLoader with augmentation vs pre-built tensors.

    python bench/bench_loader.py [--limit IMAGES] [--reps R] [--no-process]

1. One LeNet-5 epoch (Fashion-MNIST train, batch 64, SGD lr 0.05 momentum 0.9) fed four ways, repetitions
   alternating; each mode's epoch is divided by the pre-built epoch of the same repetition and the median of
   those ratios reported (best-of-each ratio beside it):
     prebuilt   standardized tensors built once (TensorDataset, shuffled), no augmentation
     workers=0  FashionMNIST + batched ToTensor, Normalize, RandomCrop(28, padding=2), RandomHorizontalFlip
                (fastnn.cli.train_transform), built in the training thread
     thread x1  the same with num_workers=1 (a worker thread: the default)
     process x1 the same with num_workers=1, multiprocessing_context='spawn', persistent workers (start-up,
                which imports fastnn in the child, timed apart)
   Target: num_workers=1 within 5% of prebuilt. Also printed: the share of each epoch the training loop spent
   waiting for the loader's next batch (near 0 when the workers keep ahead; what is left of the gap is the
   workers' CPU time taken from the training step on the same cores).
2. The crop+flip+normalize pipeline's cost for one batch of 128 as a fraction of one training step of the small
   BN-CNN (bench/_bn_cnn.py, Adam) at batch 128. Target: <= 10%.
"""
import argparse
import os
import sys
import time
from pathlib import Path

BENCH_DIR = Path(__file__).resolve().parent
sys.path[:0] = [str(BENCH_DIR), str(BENCH_DIR.parent)]
from _bn_cnn import bn_cnn, cpu_model  # noqa: E402

BATCH_SIZE = 64


def lenet_step():
    import _lenet
    _, step = _lenet.fastnn_trainer()
    return step


def epoch_seconds(loader, step):
    """(epoch wall time, the part of it spent waiting for the loader's next batch)."""
    start = time.perf_counter()
    waited, batches = 0.0, iter(loader)
    while True:
        asked = time.perf_counter()
        try:
            images, labels = next(batches)
        except StopIteration:
            break
        waited += time.perf_counter() - asked
        step(images.detach().numpy(), labels.detach().numpy())
    return time.perf_counter() - start, waited


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--limit", type=int, default=None, help="train on the first LIMIT images (default all)")
    parser.add_argument("--reps", type=int, default=5, help="epochs per feeding mode, alternating")
    parser.add_argument("--no-process", action="store_true", help="skip the worker-process mode")
    args = parser.parse_args(argv)

    import numpy as np
    import fastnn
    from fastnn import nn, optim
    from fastnn.cli import train_transform
    from fastnn.data import DataLoader, FashionMNIST, Subset, TensorDataset

    print(f"host: {cpu_model()}; fastnn threads {fastnn.get_num_threads()}", flush=True)
    train = FashionMNIST(train=True)
    n = len(train) if args.limit is None else min(args.limit, len(train))
    print(train.note, f"-- using {n:,} images", flush=True)
    x, y = train.standardized()
    prebuilt = TensorDataset(fastnn.tensor(x[:n]), fastnn.tensor(y[:n]))
    train.transform = train_transform(augment=True)
    augmented = train if n == len(train) else Subset(train, np.arange(n))

    loaders = {"prebuilt": DataLoader(prebuilt, batch_size=BATCH_SIZE, shuffle=True),
               "workers=0": DataLoader(augmented, batch_size=BATCH_SIZE, shuffle=True),
               "thread x1": DataLoader(augmented, batch_size=BATCH_SIZE, shuffle=True, num_workers=1,
                                       persistent_workers=True)}
    if not args.no_process:
        process = DataLoader(augmented, batch_size=BATCH_SIZE, shuffle=True, num_workers=1,
                             multiprocessing_context="spawn", persistent_workers=True)
        start = time.perf_counter()
        next(iter(process))  # starts the persistent worker process
        print(f"worker process start-up (spawn, imports fastnn, receives the data set): "
              f"{time.perf_counter() - start:.2f} s", flush=True)
        loaders["process x1"] = process

    step = lenet_step()
    warm = iter(loaders["prebuilt"])
    for _ in range(3):  # kernels compile or load from the cache
        images, labels = next(warm)
        step(images.detach().numpy(), labels.detach().numpy())
    del warm
    best = {name: (float("inf"), 0.0) for name in loaders}
    epochs = {name: [] for name in loaders}
    for rep in range(args.reps):
        for name, loader in loaders.items():
            fastnn.manual_seed(rep)
            seconds, waited = epoch_seconds(loader, lenet_step())
            best[name] = min(best[name], (seconds, waited))
            epochs[name].append(seconds)
            print(f"  rep {rep}: {name:<11} {seconds:6.2f} s, {waited / seconds:5.1%} of it waiting for batches  "
                  f"(load {os.getloadavg()[0]:.2f})", flush=True)
    loaders.clear()  # ends the persistent workers now, not during interpreter shutdown
    # This VM's speed drifts by 10-20% over seconds, so each mode is compared with the pre-built epoch of the same
    # repetition (run just before it); the median of those ratios is the figure, the best-of ratio beside it.
    print(f"\nLeNet-5 epoch, {n:,} images, batch {BATCH_SIZE} ({args.reps} repetitions):")
    for name, (seconds, waited) in best.items():
        paired = float(np.median(np.divide(epochs[name], epochs["prebuilt"])))
        target = "  (target <= 1.05: " + ("met)" if paired <= 1.05 else "missed)") if "x1" in name else ""
        print(f"  {name:<11} best {seconds:6.2f} s  {paired:5.3f}x prebuilt (median of paired repetitions; best "
              f"of each {seconds / best['prebuilt'][0]:5.3f}x), waiting {waited / seconds:5.1%}{target}")

    # 2. pipeline cost vs a BN-CNN step at batch 128
    from _timing import best_times
    indices = np.random.default_rng(0).permutation(len(train))[:128]
    model = bn_cnn()
    optimizer = optim.Adam(model.parameters(), lr=1e-3)
    loss_fn = nn.CrossEntropyLoss()
    images, labels = fastnn.tensor(x[indices]), fastnn.tensor(y[indices])

    def bn_step():
        optimizer.zero_grad()
        loss_fn(model(images), labels).backward()
        optimizer.step()

    pipeline_s, step_s = best_times([lambda: train.get_batch(indices), bn_step], reps=5, budget_seconds=10)
    print(f"\ncrop+flip+normalize of 128 images (FashionMNIST.get_batch): {pipeline_s * 1e3:.2f} ms "
          f"({128 / pipeline_s:,.0f} images/s)")
    print(f"BN-CNN training step at batch 128 (Adam): {step_s * 1e3:.1f} ms")
    fraction = pipeline_s / step_s
    print(f"pipeline / step: {fraction:.1%} (target <= 10%: {'met' if fraction <= 0.10 else 'missed'})")
    print(f"host: {cpu_model()}")


if __name__ == "__main__":
    main()

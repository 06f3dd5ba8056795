"""Test-time augmentation on Fashion-MNIST: a LeNet-5 trained briefly, its test accuracy plain and with TTA.

    python bench/tta_lenet.py [--epochs E] [--no-augment] [--limit N] [--seed S]

Trains fastnn.models.lenet5 as `fastnn train --model lenet5 [--augment]` does (SGD lr 0.05 momentum 0.9,
batch 64, standardized images; --augment: RandomCrop(28, padding=2) with the background as fill, and horizontal
flips), then scores the full test set with fastnn.data.tta.tta_predict: 1 view (plain), the mirror pair (2),
five crops of the image padded by 2 (5) and those crops mirrored too (10, TenCrop). Prints one line per
variant and the host.
"""
import argparse
import sys
import time
from pathlib import Path

BENCH_DIR = Path(__file__).resolve().parent
sys.path[:0] = [str(BENCH_DIR), str(BENCH_DIR.parent)]
from _bn_cnn import cpu_model  # noqa: E402

VARIANTS = [("plain", dict(num_crops=1, flip=False)), ("flip (2 views)", dict(num_crops=1, flip=True)),
            ("5 crops, pad 2", dict(num_crops=5, flip=False)), ("10 views (TenCrop)", dict(num_crops=5, flip=True))]


def tta_accuracies(model, images, labels, background, batch_size=1000):
    from fastnn.data.tta import tta_predict
    model.eval()
    results = {}
    for name, options in VARIANTS:
        start = time.perf_counter()
        probs = tta_predict(model, images, padding=2 if options["num_crops"] == 5 else 0, fill=background,
                            batch_size=batch_size, **options)
        results[name] = (float((probs.argmax(axis=1) == labels).mean()), time.perf_counter() - start)
    return results


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--no-augment", action="store_true", help="train without crop+flip")
    parser.add_argument("--limit", type=int, default=None, help="train on the first N images")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    import fastnn
    from fastnn import nn, optim
    from fastnn.cli import build_model, make_loaders, standardized_background
    from fastnn.data import FashionMNIST
    from fastnn.training import train_one_epoch
    print(f"host: {cpu_model()}; fastnn threads {fastnn.get_num_threads()}", flush=True)
    fastnn.manual_seed(args.seed)
    train, test = FashionMNIST(train=True), FashionMNIST(train=False)
    train_loader, _ = make_loaders(train, test, 64, augment=not args.no_augment, limit=args.limit)
    model = build_model("lenet5")
    optimizer = optim.SGD(model.parameters(), lr=0.05, momentum=0.9)
    for epoch in range(1, args.epochs + 1):
        start = time.perf_counter()
        loss, acc = train_one_epoch(model, train_loader, optimizer, nn.CrossEntropyLoss())
        print(f"epoch {epoch}: train loss {loss:.4f} acc {acc:.4f} ({time.perf_counter() - start:.1f} s)",
              flush=True)
    images, labels = test.standardized()
    print(f"LeNet-5, {args.epochs} epochs, augment={'off' if args.no_augment else 'crop+flip'}, "
          f"{len(train_loader.dataset):,} train images; test set {len(labels):,}:")
    results = tta_accuracies(model, images, labels, standardized_background())
    plain = results["plain"][0]
    for name, (accuracy, seconds) in results.items():
        print(f"  {name:<20} test acc {accuracy:.4f}  ({accuracy - plain:+.4f})  {seconds:.1f} s", flush=True)
    print(f"host: {cpu_model()}")


if __name__ == "__main__":
    main()

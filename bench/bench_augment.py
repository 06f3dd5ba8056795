"""Augmentation throughput (images/s) on batches of 128 x 3 x 32 x 32, fastnn vs torchvision.transforms.v2.

    python bench/bench_augment.py [--reps R] [--no-torchvision]

Each transform is looked up by name when the script runs, so the script works with whatever fastnn.data
implements and prints "missing" for the rest. fastnn transforms take the whole batch and draw their random
parameters per image. torchvision.transforms.v2 (only when importable; it is not a fastnn dependency) is timed
on the same values as a torch tensor twice: called on the whole batch (one random draw shared by all 128
images: cheaper, not the same augmentation) and image by image (what a per-sample data set pays). Inputs are
float32 in [0, 1]. Target: fastnn at least as fast as torchvision on the same batch.

torchvision's PyPI wheel is built against CUDA torch: with the CPU torch of the venv its import fails
("operator torchvision::nms does not exist") when torchvision/_meta_registrations.py registers fake kernels for
the two C++ operators its compiled library failed to define. Only the pure-Python transforms.v2 are needed, so
`import_v2` first defines those two operator schemas (nms, qnms) with torch.library; they are never called.
"""
import argparse
import sys
from pathlib import Path

BENCH_DIR = Path(__file__).resolve().parent
sys.path[:0] = [str(BENCH_DIR), str(BENCH_DIR.parent)]
from _bn_cnn import cpu_model  # noqa: E402
from _timing import best_times  # noqa: E402

BATCH = (128, 3, 32, 32)
NUM_CLASSES = 10
# (row name, [(class name, kwargs)] applied in order; a batch-mixing transform also takes the labels)
CASES = [
    ("crop+flip", [("RandomCrop", {"size": 32, "padding": 4}), ("RandomHorizontalFlip", {})]),
    ("ColorJitter", [("ColorJitter", {"brightness": 0.4, "contrast": 0.4, "saturation": 0.4, "hue": 0.1})]),
    ("RandomAffine", [("RandomAffine", {"degrees": 15, "translate": (0.1, 0.1), "scale": (0.9, 1.1),
                                        "shear": 10})]),
    ("RandAugment", [("RandAugment", {"num_ops": 2, "magnitude": 9})]),
    ("RandomErasing", [("RandomErasing", {"p": 1.0})]),
    ("MixUp", [("MixUp", {"alpha": 1.0, "num_classes": NUM_CLASSES})]),
]
MIXING = {"MixUp", "CutMix"}


def fastnn_transform(steps):
    """A callable (images, labels) -> output built from fastnn.data's classes, or the name that is missing."""
    import fastnn.data
    from fastnn.data import transforms
    built = []
    for name, kwargs in steps:
        cls = getattr(transforms, name, None) or getattr(fastnn.data, name, None)
        if cls is None:
            return f"missing ({name})"
        try:
            built.append((name, cls(**kwargs)))
        except Exception as e:  # an implementation whose arguments differ from torchvision's
            return f"error: {name}({kwargs}): {type(e).__name__}: {e}"

    def run(images, labels):
        for name, transform in built:
            images = transform(images, labels)[0] if name in MIXING else transform(images)
        return images
    return run


def import_v2():
    """torchvision.transforms.v2; where the import fails on operators a CPU torch lacks (see the docstring),
    defines those operator schemas and imports again."""
    try:
        from torchvision.transforms import v2
    except RuntimeError as e:
        if "torchvision::nms does not exist" not in str(e):
            raise
        import torch
        import_v2.library = torch.library.Library("torchvision", "DEF")  # kept alive: the schemas live with it
        for name in ("nms", "qnms"):
            import_v2.library.define(f"{name}(Tensor dets, Tensor scores, float iou_threshold) -> Tensor")
        from torchvision.transforms import v2
    return v2


def torchvision_transforms(steps):
    """(batch call, per-image call) with torchvision.transforms.v2, or None when it is not importable."""
    try:
        v2 = import_v2()
    except ImportError:
        return None
    built = [(name, getattr(v2, name)(**kwargs)) for name, kwargs in steps]

    def batch(images, labels):
        for name, transform in built:
            images = transform(images, labels)[0] if name in MIXING else transform(images)
        return images

    def per_image(images, labels):
        if any(name in MIXING for name, _ in built):
            return batch(images, labels)  # mixing is a batch operation by definition
        return [batch(image, None) for image in images]
    return batch, per_image


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reps", type=int, default=5)
    parser.add_argument("--no-torchvision", action="store_true", help="time fastnn only (never imports torch)")
    args = parser.parse_args(argv)
    import numpy as np
    import fastnn
    print(f"host: {cpu_model()}; fastnn threads {fastnn.get_num_threads()}; batch {BATCH}", flush=True)
    rng = np.random.default_rng(0)
    images = rng.random(BATCH, dtype=np.float32)
    labels = rng.integers(0, NUM_CLASSES, BATCH[0])
    fastnn_images, fastnn_labels = fastnn.tensor(images), fastnn.tensor(labels)
    torch = None
    if args.no_torchvision:
        print("torchvision.transforms.v2: not used (--no-torchvision)", flush=True)
    else:
        try:
            import torch
            import_v2()
            torch_images, torch_labels = torch.from_numpy(images.copy()), torch.from_numpy(labels)
        except ImportError:
            torch = None
            print("torchvision.transforms.v2: not importable, fastnn only", flush=True)
    header = f"{'transform':<14} {'fastnn img/s':>13} {'tv batch img/s':>15} {'tv per-image':>13} {'ratio':>7}"
    print(header + "\n" + "-" * len(header))
    for row, steps in CASES:
        transform = fastnn_transform(steps)
        if isinstance(transform, str):
            print(f"{row:<14} {transform}", flush=True)
            continue
        fns = [lambda: transform(fastnn_images, fastnn_labels)]
        tv = torchvision_transforms(steps) if torch is not None else None
        if tv is not None:
            fns += [lambda: tv[0](torch_images, torch_labels), lambda: tv[1](torch_images, torch_labels)]
        try:
            times = best_times(fns, reps=args.reps)
        except Exception as e:
            print(f"{row:<14} error while running: {type(e).__name__}: {e}", flush=True)
            continue
        rates = [BATCH[0] / t for t in times]
        if tv is None:
            print(f"{row:<14} {rates[0]:>13,.0f} {'-':>15} {'-':>13} {'-':>7}", flush=True)
        else:
            # ratio: fastnn's time over torchvision's per-image time (the same augmentation: a draw per image)
            print(f"{row:<14} {rates[0]:>13,.0f} {rates[1]:>15,.0f} {rates[2]:>13,.0f} "
                  f"{times[0] / times[2]:>6.2f}x", flush=True)
    print(f"host: {cpu_model()}")


if __name__ == "__main__":
    main()

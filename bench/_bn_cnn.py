"""The small BN-CNN of the augmentation benchmarks and the real-result run, and the host description.

conv32-BN-ReLU x2, 2x2 max-pool, conv64-BN-ReLU x2, 2x2 max-pool, linear: 3x3 convolutions with padding 1, so
28x28 inputs reach the linear layer as 64 x 7 x 7.
"""
import platform


def bn_cnn(in_channels=1, num_classes=10, image_size=28):
    from fastnn import nn

    def block(cin, cout):
        return [nn.Conv2d(cin, cout, 3, padding=1, bias=False), nn.BatchNorm2d(cout), nn.ReLU()]
    side = image_size // 4
    return nn.Sequential(*block(in_channels, 32), *block(32, 32), nn.MaxPool2d(2),
                         *block(32, 64), *block(64, 64), nn.MaxPool2d(2),
                         nn.Flatten(), nn.Linear(64 * side * side, num_classes))


def cpu_model():
    """The CPU's model name and the core count, for printing next to every measurement."""
    import os
    name = platform.processor() or "unknown CPU"
    try:
        with open("/proc/cpuinfo") as f:
            name = next(line.split(":", 1)[1].strip() for line in f if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    return f"{name}, {os.cpu_count()} cores"

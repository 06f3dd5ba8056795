"""LeNet-5 (LeCun et al. 1998) for 28×28 inputs, in the modern and the classic form."""
from fastnn import nn

_VARIANTS = {"modern": (nn.ReLU, nn.MaxPool2d), "classic": (nn.Tanh, nn.AvgPool2d)}


class LeNet5(nn.Module):
    """conv 6@5x5 (pad 2) → pool → conv 16@5x5 → pool → 120 → 84 → num_classes.

    variant="modern": ReLU and max-pooling; variant="classic": tanh and average pooling, as in 1998.
    """

    def __init__(self, num_classes=10, in_channels=1, variant="modern"):
        super().__init__()
        if variant not in _VARIANTS:
            raise ValueError(f"variant must be one of {sorted(_VARIANTS)}, got {variant!r}")
        act, pool = _VARIANTS[variant]
        self.variant = variant
        self.features = nn.Sequential(
            nn.Conv2d(in_channels, 6, 5, padding=2), act(), pool(2),
            nn.Conv2d(6, 16, 5), act(), pool(2))
        self.classifier = nn.Sequential(
            nn.Flatten(), nn.Linear(16 * 5 * 5, 120), act(), nn.Linear(120, 84), act(), nn.Linear(84, num_classes))

    def forward(self, x):
        if x.ndim != 4 or x.shape[2:] != (28, 28):
            raise ValueError(f"LeNet5 expects input of shape (N, C, 28, 28), got {tuple(x.shape)}")
        return self.classifier(self.features(x))


def lenet5(num_classes=10, in_channels=1, variant="modern"):
    return LeNet5(num_classes, in_channels, variant)

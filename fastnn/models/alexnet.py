"""AlexNet (Krizhevsky et al. 2012) and ZFNet (Zeiler & Fergus 2013).

variant="torchvision" (default): torchvision's single-tower AlexNet (64-192-384-256-256 filters, no LRN), with
its state_dict keys, shapes and parameter count (61,100,840). variant="original": the paper's filter counts
96-256-384-384-256 (as one tower: the paper's two-GPU split of conv2/4/5 into groups is not reproduced), local
response normalisation (size 5, alpha 1e-4, beta 0.75, k 2) after the ReLUs of conv1 and conv2, overlapping
3×3 stride-2 max-pooling, dropout 0.5 in the classifier.
"""
import fastnn
from fastnn import nn

_VARIANTS = ("torchvision", "original", "zfnet")


def _lrn():
    return nn.LocalResponseNorm(5, alpha=1e-4, beta=0.75, k=2.0)


def _features(variant, in_channels, small_input):
    """The conv stack; small_input swaps the stride-4/2 first conv for a 3×3 stride-1 one and drops the first
    max-pool, so 28–32 px images keep enough resolution."""
    c1, c2, c3, c4, c5 = (64, 192, 384, 256, 256) if variant == "torchvision" else (96, 256, 384, 384, 256)
    ceil = variant == "zfnet"  # ZFNet's 110→55→26→13→6 maps need ceil-mode pooling
    if small_input:
        first = nn.Conv2d(in_channels, c1, kernel_size=3, stride=1, padding=1)
    elif variant == "zfnet":
        first = nn.Conv2d(in_channels, c1, kernel_size=7, stride=2, padding=1)
    else:
        first = nn.Conv2d(in_channels, c1, kernel_size=11, stride=4, padding=2)
    second = (nn.Conv2d(c1, c2, kernel_size=5, stride=2) if variant == "zfnet" and not small_input
              else nn.Conv2d(c1, c2, kernel_size=5, padding=2))
    norm = variant != "torchvision"
    layers = [first, nn.ReLU(inplace=True)] + ([_lrn()] if norm else [])
    if not small_input:
        layers.append(nn.MaxPool2d(kernel_size=3, stride=2, ceil_mode=ceil))
    layers += [second, nn.ReLU(inplace=True)] + ([_lrn()] if norm else [])
    layers += [nn.MaxPool2d(kernel_size=3, stride=2, ceil_mode=ceil),
               nn.Conv2d(c2, c3, kernel_size=3, padding=1), nn.ReLU(inplace=True),
               nn.Conv2d(c3, c4, kernel_size=3, padding=1), nn.ReLU(inplace=True),
               nn.Conv2d(c4, c5, kernel_size=3, padding=1), nn.ReLU(inplace=True),
               nn.MaxPool2d(kernel_size=3, stride=2, ceil_mode=ceil)]
    return nn.Sequential(*layers), c5


class AlexNet(nn.Module):
    """features → AdaptiveAvgPool2d(6) → flatten → classifier (dropout-4096-ReLU-dropout-4096-ReLU-num_classes).

    variant: "torchvision", "original" (the paper's AlexNet) or "zfnet" (7×7 stride-2 conv1, 5×5 stride-2 conv2,
    otherwise the original AlexNet). PyTorch's default layer init, as torchvision. Needs at least 63 px input
    (torchvision variant) unless small_input=True.
    """

    def __init__(self, num_classes=1000, in_channels=3, dropout=0.5, variant="torchvision", small_input=False):
        super().__init__()
        if variant not in _VARIANTS:
            raise ValueError(f"variant must be one of {_VARIANTS}, got {variant!r}")
        self.variant = variant
        self.features, channels = _features(variant, in_channels, small_input)
        self.avgpool = nn.AdaptiveAvgPool2d((6, 6))
        self.classifier = nn.Sequential(
            nn.Dropout(p=dropout), nn.Linear(channels * 6 * 6, 4096), nn.ReLU(inplace=True),
            nn.Dropout(p=dropout), nn.Linear(4096, 4096), nn.ReLU(inplace=True),
            nn.Linear(4096, num_classes))

    def forward(self, x):
        return self.classifier(fastnn.flatten(self.avgpool(self.features(x)), 1))


def alexnet(num_classes=1000, in_channels=3, variant="torchvision", **kwargs):
    """AlexNet; variant="torchvision" (61,100,840 parameters) or "original" (the paper's filters and LRN)."""
    return AlexNet(num_classes, in_channels, variant=variant, **kwargs)


def zfnet(num_classes=1000, in_channels=3, **kwargs):
    """ZFNet: AlexNet (original) with a 7×7 stride-2 first conv and a 5×5 stride-2 second conv."""
    return AlexNet(num_classes, in_channels, variant="zfnet", **kwargs)

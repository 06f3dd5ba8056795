"""VGG (Simonyan & Zisserman 2014), configurations A/B/D/E = VGG-11/13/16/19, with and without batch norm.

The ImageNet models match torchvision's structure, state_dict keys, shapes and parameter counts. The `*_cifar`
models (same as `small_input=True`) keep the conv stack, drop its last max-pool, average the remaining map
globally (so 28 px and 32 px inputs both work) and classify with a 512-512-num_classes head.
"""
import fastnn
from fastnn import nn
from fastnn.nn import init

# Output channels of each 3×3 conv (padding 1); "M" is a 2×2 stride-2 max-pool.
CONFIGS = {
    "A": [64, "M", 128, "M", 256, 256, "M", 512, 512, "M", 512, 512, "M"],
    "B": [64, 64, "M", 128, 128, "M", 256, 256, "M", 512, 512, "M", 512, 512, "M"],
    "D": [64, 64, "M", 128, 128, "M", 256, 256, 256, "M", 512, 512, 512, "M", 512, 512, 512, "M"],
    "E": [64, 64, "M", 128, 128, "M", 256, 256, 256, 256, "M", 512, 512, 512, 512, "M", 512, 512, 512, 512, "M"],
}
_DEPTHS = {11: "A", 13: "B", 16: "D", 19: "E"}


def make_layers(config, batch_norm=False, in_channels=3):
    """The conv stack of a config: conv3×3 [→ BN] → ReLU per number, MaxPool2d(2) per "M"."""
    layers = []
    for v in config:
        if v == "M":
            layers.append(nn.MaxPool2d(kernel_size=2, stride=2))
        else:
            layers.append(nn.Conv2d(in_channels, v, kernel_size=3, padding=1))
            if batch_norm:
                layers.append(nn.BatchNorm2d(v))
            layers.append(nn.ReLU(inplace=True))
            in_channels = v
    return nn.Sequential(*layers)


class VGG(nn.Module):
    """features → avgpool → flatten → classifier.

    ImageNet form (torchvision): AdaptiveAvgPool2d(7) and 25088-4096-4096-num_classes with ReLU and dropout.
    Small-input form: AdaptiveAvgPool2d(1) and dropout-512-ReLU-dropout-512-ReLU-num_classes.
    Init as torchvision: kaiming_normal_(fan_out, relu) for convs, N(0, 0.01) for linear weights, zero biases,
    BN γ=1 β=0.
    """

    def __init__(self, features, num_classes=1000, dropout=0.5, small_input=False):
        super().__init__()
        self.features = features
        if small_input:
            self.avgpool = nn.AdaptiveAvgPool2d((1, 1))
            self.classifier = nn.Sequential(
                nn.Dropout(p=dropout), nn.Linear(512, 512), nn.ReLU(True),
                nn.Dropout(p=dropout), nn.Linear(512, 512), nn.ReLU(True),
                nn.Linear(512, num_classes))
        else:
            self.avgpool = nn.AdaptiveAvgPool2d((7, 7))
            self.classifier = nn.Sequential(
                nn.Linear(512 * 7 * 7, 4096), nn.ReLU(True), nn.Dropout(p=dropout),
                nn.Linear(4096, 4096), nn.ReLU(True), nn.Dropout(p=dropout),
                nn.Linear(4096, num_classes))
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
                init.zeros_(m.bias)
            elif isinstance(m, nn.Linear):
                init.normal_(m.weight, 0, 0.01)
                init.zeros_(m.bias)

    def forward(self, x):
        return self.classifier(fastnn.flatten(self.avgpool(self.features(x)), 1))


def vgg(depth, batch_norm=False, num_classes=1000, in_channels=3, small_input=False, dropout=0.5):
    """VGG-`depth` (11, 13, 16 or 19) from CONFIGS."""
    if depth not in _DEPTHS:
        raise ValueError(f"VGG depth must be one of {sorted(_DEPTHS)}, got {depth!r}")
    config = CONFIGS[_DEPTHS[depth]]
    if small_input:
        config = config[:-1]  # the last pool would shrink a 28 px input's 1×1 map to nothing
    return VGG(make_layers(config, batch_norm, in_channels), num_classes, dropout, small_input)


def vgg11(num_classes=1000, in_channels=3, **kwargs):
    """VGG-11 (config A; 132,863,336 parameters)."""
    return vgg(11, False, num_classes, in_channels, **kwargs)


def vgg11_bn(num_classes=1000, in_channels=3, **kwargs):
    return vgg(11, True, num_classes, in_channels, **kwargs)


def vgg13(num_classes=1000, in_channels=3, **kwargs):
    return vgg(13, False, num_classes, in_channels, **kwargs)


def vgg13_bn(num_classes=1000, in_channels=3, **kwargs):
    return vgg(13, True, num_classes, in_channels, **kwargs)


def vgg16(num_classes=1000, in_channels=3, **kwargs):
    """VGG-16 (config D; 138,357,544 parameters)."""
    return vgg(16, False, num_classes, in_channels, **kwargs)


def vgg16_bn(num_classes=1000, in_channels=3, **kwargs):
    """VGG-16 with batch norm (138,365,992 parameters)."""
    return vgg(16, True, num_classes, in_channels, **kwargs)


def vgg19(num_classes=1000, in_channels=3, **kwargs):
    """VGG-19 (config E; 143,667,240 parameters)."""
    return vgg(19, False, num_classes, in_channels, **kwargs)


def vgg19_bn(num_classes=1000, in_channels=3, **kwargs):
    return vgg(19, True, num_classes, in_channels, **kwargs)


def vgg11_cifar(num_classes=10, in_channels=3, **kwargs):
    """VGG-11 for 28–32 px images (`small_input=True`)."""
    return vgg(11, False, num_classes, in_channels, small_input=True, **kwargs)


def vgg11_bn_cifar(num_classes=10, in_channels=3, **kwargs):
    return vgg(11, True, num_classes, in_channels, small_input=True, **kwargs)


def vgg13_cifar(num_classes=10, in_channels=3, **kwargs):
    return vgg(13, False, num_classes, in_channels, small_input=True, **kwargs)


def vgg13_bn_cifar(num_classes=10, in_channels=3, **kwargs):
    return vgg(13, True, num_classes, in_channels, small_input=True, **kwargs)


def vgg16_cifar(num_classes=10, in_channels=3, **kwargs):
    return vgg(16, False, num_classes, in_channels, small_input=True, **kwargs)


def vgg16_bn_cifar(num_classes=10, in_channels=3, **kwargs):
    return vgg(16, True, num_classes, in_channels, small_input=True, **kwargs)


def vgg19_cifar(num_classes=10, in_channels=3, **kwargs):
    return vgg(19, False, num_classes, in_channels, small_input=True, **kwargs)


def vgg19_bn_cifar(num_classes=10, in_channels=3, **kwargs):
    return vgg(19, True, num_classes, in_channels, small_input=True, **kwargs)

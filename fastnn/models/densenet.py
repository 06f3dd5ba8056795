"""DenseNet-BC (Huang et al. 2017), laid out as torchvision's DenseNet (same module names, state_dict keys,
shapes and parameter counts: features.conv0, features.denseblock1.denselayer1.norm1, features.transition1...)."""
from collections import OrderedDict

import fastnn
from fastnn import nn
from fastnn.nn import init


class DenseLayer(nn.Module):
    """BN → ReLU → 1×1 conv (bn_size·k) → BN → ReLU → 3×3 conv (k = growth_rate), on the concatenation of every
    earlier feature map of the block; returns only the k new maps."""

    def __init__(self, num_input_features, growth_rate, bn_size, drop_rate):
        super().__init__()
        self.norm1 = nn.BatchNorm2d(num_input_features)
        self.relu1 = nn.ReLU(inplace=True)
        self.conv1 = nn.Conv2d(num_input_features, bn_size * growth_rate, kernel_size=1, stride=1, bias=False)
        self.norm2 = nn.BatchNorm2d(bn_size * growth_rate)
        self.relu2 = nn.ReLU(inplace=True)
        self.conv2 = nn.Conv2d(bn_size * growth_rate, growth_rate, kernel_size=3, stride=1, padding=1, bias=False)
        self.dropout = nn.Dropout(drop_rate) if drop_rate > 0 else None

    def forward(self, input):
        features = fastnn.cat(input, 1) if isinstance(input, (list, tuple)) else input
        new_features = self.conv2(self.relu2(self.norm2(self.conv1(self.relu1(self.norm1(features))))))
        return new_features if self.dropout is None else self.dropout(new_features)


class DenseBlock(nn.ModuleDict):
    """`num_layers` DenseLayers; layer i sees num_input_features + i·growth_rate channels. Output: the block's
    input and every layer's new maps, concatenated."""

    def __init__(self, num_layers, num_input_features, bn_size, growth_rate, drop_rate):
        super().__init__()
        for i in range(num_layers):
            self.add_module(f"denselayer{i + 1}",
                            DenseLayer(num_input_features + i * growth_rate, growth_rate, bn_size, drop_rate))

    def forward(self, init_features):
        features = [init_features]
        for layer in self.values():
            features.append(layer(features))
        return fastnn.cat(features, 1)


class Transition(nn.Sequential):
    """BN → ReLU → 1×1 conv (compression) → 2×2 average pool."""

    def __init__(self, num_input_features, num_output_features):
        super().__init__(OrderedDict([
            ("norm", nn.BatchNorm2d(num_input_features)),
            ("relu", nn.ReLU(inplace=True)),
            ("conv", nn.Conv2d(num_input_features, num_output_features, kernel_size=1, stride=1, bias=False)),
            ("pool", nn.AvgPool2d(kernel_size=2, stride=2)),
        ]))


class DenseNet(nn.Module):
    """conv0 7×7/2 → BN → ReLU → max-pool 3/2 → [dense block → transition (halves channels and size)]… →
    dense block → BN → ReLU → global average pool → linear.

    small_input=True: a 3×3 stride-1 conv0 and no pool0 (28–32 px images).
    Init as torchvision: kaiming_normal_ (fan_in) for convs, BN γ=1 β=0, zero linear bias.
    """

    def __init__(self, growth_rate=32, block_config=(6, 12, 24, 16), num_init_features=64, bn_size=4,
                 drop_rate=0.0, num_classes=1000, in_channels=3, small_input=False):
        super().__init__()
        if small_input:
            stem = [("conv0", nn.Conv2d(in_channels, num_init_features, kernel_size=3, stride=1, padding=1,
                                        bias=False)),
                    ("norm0", nn.BatchNorm2d(num_init_features)), ("relu0", nn.ReLU(inplace=True))]
        else:
            stem = [("conv0", nn.Conv2d(in_channels, num_init_features, kernel_size=7, stride=2, padding=3,
                                        bias=False)),
                    ("norm0", nn.BatchNorm2d(num_init_features)), ("relu0", nn.ReLU(inplace=True)),
                    ("pool0", nn.MaxPool2d(kernel_size=3, stride=2, padding=1))]
        self.features = nn.Sequential(OrderedDict(stem))
        num_features = num_init_features
        for i, num_layers in enumerate(block_config):
            self.features.add_module(f"denseblock{i + 1}",
                                     DenseBlock(num_layers, num_features, bn_size, growth_rate, drop_rate))
            num_features += num_layers * growth_rate
            if i != len(block_config) - 1:
                self.features.add_module(f"transition{i + 1}", Transition(num_features, num_features // 2))
                num_features //= 2
        self.features.add_module("norm5", nn.BatchNorm2d(num_features))
        self.relu = nn.ReLU(inplace=True)
        self.avgpool = nn.AdaptiveAvgPool2d((1, 1))
        self.classifier = nn.Linear(num_features, num_classes)
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                init.kaiming_normal_(m.weight)
        init.zeros_(self.classifier.bias)

    def forward(self, x):
        return self.classifier(fastnn.flatten(self.avgpool(self.relu(self.features(x))), 1))


def densenet121(num_classes=1000, in_channels=3, **kwargs):
    """DenseNet-121 (k=32, blocks 6-12-24-16; 7,978,856 parameters)."""
    return DenseNet(32, (6, 12, 24, 16), 64, num_classes=num_classes, in_channels=in_channels, **kwargs)


def densenet161(num_classes=1000, in_channels=3, **kwargs):
    """DenseNet-161 (k=48, blocks 6-12-36-24, 96 initial maps; 28,681,000 parameters)."""
    return DenseNet(48, (6, 12, 36, 24), 96, num_classes=num_classes, in_channels=in_channels, **kwargs)


def densenet169(num_classes=1000, in_channels=3, **kwargs):
    """DenseNet-169 (k=32, blocks 6-12-32-32; 14,149,480 parameters)."""
    return DenseNet(32, (6, 12, 32, 32), 64, num_classes=num_classes, in_channels=in_channels, **kwargs)


def densenet201(num_classes=1000, in_channels=3, **kwargs):
    """DenseNet-201 (k=32, blocks 6-12-48-32; 20,013,928 parameters)."""
    return DenseNet(32, (6, 12, 48, 32), 64, num_classes=num_classes, in_channels=in_channels, **kwargs)

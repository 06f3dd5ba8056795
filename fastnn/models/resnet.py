"""Residual networks: ResNet (He et al. 2015), pre-activation ResNet (He et al. 2016), ResNeXt (Xie et al. 2017),
squeeze-and-excitation ResNet (Hu et al. 2018), wide ResNet, and the CIFAR ResNets resnet20/32/56/110.

ResNet, ResNeXt and wide ResNet match torchvision's layer structure, state_dict keys, shapes and parameter
counts, so torchvision checkpoints load with `load_state_dict` (their Bottleneck puts the stride on the 3×3
conv: "ResNet v1.5").
"""
import fastnn
from fastnn import nn
from fastnn.nn import functional as F
from fastnn.nn import init


def conv3x3(in_planes, out_planes, stride=1, groups=1):
    return nn.Conv2d(in_planes, out_planes, kernel_size=3, stride=stride, padding=1, groups=groups, bias=False)


def conv1x1(in_planes, out_planes, stride=1):
    return nn.Conv2d(in_planes, out_planes, kernel_size=1, stride=stride, bias=False)


class SqueezeExcitation(nn.Module):
    """Channel attention: global average pool → FC (C → C/r) → ReLU → FC (C/r → C) → sigmoid → x * scale.

    The two FC layers are 1×1 convolutions on the pooled 1×1 map (torchvision.ops.SqueezeExcitation's layout).
    """

    def __init__(self, channels, reduction=16):
        super().__init__()
        squeeze = max(1, channels // reduction)
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.fc1 = nn.Conv2d(channels, squeeze, 1)
        self.activation = nn.ReLU()
        self.fc2 = nn.Conv2d(squeeze, channels, 1)
        self.scale_activation = nn.Sigmoid()

    def forward(self, x):
        scale = self.scale_activation(self.fc2(self.activation(self.fc1(self.avgpool(x)))))
        return x * scale


def _squeeze_excitation(channels, se_reduction):
    return None if se_reduction is None else SqueezeExcitation(channels, se_reduction)


class BasicBlock(nn.Module):
    """relu(x + bn2(conv2(relu(bn1(conv1(x)))))): two 3×3 convs; the first one carries the stride."""
    expansion = 1
    residual_branch_last = "bn2"

    def __init__(self, inplanes, planes, stride=1, downsample=None, groups=1, base_width=64, se_reduction=None):
        super().__init__()
        if groups != 1 or base_width != 64:
            raise ValueError(f"BasicBlock only supports groups=1 and base_width=64, got groups={groups}, "
                             f"base_width={base_width}")
        self.conv1 = conv3x3(inplanes, planes, stride)
        self.bn1 = nn.BatchNorm2d(planes)
        self.relu = nn.ReLU(inplace=True)
        self.conv2 = conv3x3(planes, planes)
        self.bn2 = nn.BatchNorm2d(planes)
        self.se = _squeeze_excitation(planes, se_reduction)
        self.downsample = downsample
        self.stride = stride

    def forward(self, x):
        out = self.bn2(self.conv2(self.relu(self.bn1(self.conv1(x)))))
        if self.se is not None:
            out = self.se(out)
        identity = x if self.downsample is None else self.downsample(x)
        return self.relu(out + identity)


class Bottleneck(nn.Module):
    """relu(x + bn3(conv3(relu(bn2(conv2(relu(bn1(conv1(x))))))))): 1×1 reduce, 3×3 (strided, grouped for
    ResNeXt), 1×1 expand by 4. Inner width = planes * base_width / 64 * groups."""
    expansion = 4
    residual_branch_last = "bn3"

    def __init__(self, inplanes, planes, stride=1, downsample=None, groups=1, base_width=64, se_reduction=None):
        super().__init__()
        width = int(planes * (base_width / 64.0)) * groups
        self.conv1 = conv1x1(inplanes, width)
        self.bn1 = nn.BatchNorm2d(width)
        self.conv2 = conv3x3(width, width, stride, groups)
        self.bn2 = nn.BatchNorm2d(width)
        self.conv3 = conv1x1(width, planes * self.expansion)
        self.bn3 = nn.BatchNorm2d(planes * self.expansion)
        self.relu = nn.ReLU(inplace=True)
        self.se = _squeeze_excitation(planes * self.expansion, se_reduction)
        self.downsample = downsample
        self.stride = stride

    def forward(self, x):
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.relu(self.bn2(self.conv2(out)))
        out = self.bn3(self.conv3(out))
        if self.se is not None:
            out = self.se(out)
        identity = x if self.downsample is None else self.downsample(x)
        return self.relu(out + identity)


class PreActBasicBlock(nn.Module):
    """Pre-activation block (He et al. 2016, "Identity Mappings"): x + conv2(relu(bn2(conv1(relu(bn1(x)))))).

    A projection shortcut (a bare 1×1 conv) reads the pre-activated input relu(bn1(x)).
    """
    expansion = 1
    preactivation = True
    residual_branch_last = "conv2"

    def __init__(self, inplanes, planes, stride=1, downsample=None, groups=1, base_width=64, se_reduction=None):
        super().__init__()
        if groups != 1 or base_width != 64:
            raise ValueError(f"PreActBasicBlock only supports groups=1 and base_width=64, got groups={groups}, "
                             f"base_width={base_width}")
        self.bn1 = nn.BatchNorm2d(inplanes)
        self.relu = nn.ReLU(inplace=True)
        self.conv1 = conv3x3(inplanes, planes, stride)
        self.bn2 = nn.BatchNorm2d(planes)
        self.conv2 = conv3x3(planes, planes)
        self.se = _squeeze_excitation(planes, se_reduction)
        self.downsample = downsample
        self.stride = stride

    def forward(self, x):
        pre = self.relu(self.bn1(x))
        identity = x if self.downsample is None else self.downsample(pre)
        out = self.conv2(self.relu(self.bn2(self.conv1(pre))))
        if self.se is not None:
            out = self.se(out)
        return out + identity


class PreActBottleneck(nn.Module):
    """Pre-activation bottleneck: x + conv3(relu(bn3(conv2(relu(bn2(conv1(relu(bn1(x))))))))), stride on the
    3×3 conv."""
    expansion = 4
    preactivation = True
    residual_branch_last = "conv3"

    def __init__(self, inplanes, planes, stride=1, downsample=None, groups=1, base_width=64, se_reduction=None):
        super().__init__()
        width = int(planes * (base_width / 64.0)) * groups
        self.bn1 = nn.BatchNorm2d(inplanes)
        self.conv1 = conv1x1(inplanes, width)
        self.bn2 = nn.BatchNorm2d(width)
        self.conv2 = conv3x3(width, width, stride, groups)
        self.bn3 = nn.BatchNorm2d(width)
        self.conv3 = conv1x1(width, planes * self.expansion)
        self.relu = nn.ReLU(inplace=True)
        self.se = _squeeze_excitation(planes * self.expansion, se_reduction)
        self.downsample = downsample
        self.stride = stride

    def forward(self, x):
        pre = self.relu(self.bn1(x))
        identity = x if self.downsample is None else self.downsample(pre)
        out = self.conv1(pre)
        out = self.conv2(self.relu(self.bn2(out)))
        out = self.conv3(self.relu(self.bn3(out)))
        if self.se is not None:
            out = self.se(out)
        return out + identity


class ZeroPadShortcut(nn.Module):
    """He et al.'s option-A shortcut: subsample by `stride` and zero-pad the new channels (no parameters)."""

    def __init__(self, in_planes, out_planes, stride):
        super().__init__()
        if out_planes < in_planes:
            raise ValueError(f"ZeroPadShortcut cannot reduce channels ({in_planes} -> {out_planes})")
        self.in_planes, self.out_planes, self.stride = in_planes, out_planes, stride

    def forward(self, x):
        extra = self.out_planes - self.in_planes
        x = x[:, :, ::self.stride, ::self.stride]
        return F.pad(x, (0, 0, 0, 0, extra // 2, extra - extra // 2))

    def extra_repr(self):
        return f"{self.in_planes}, {self.out_planes}, stride={self.stride}"


_SHORTCUTS = ("A", "B")


class ResNet(nn.Module):
    """Stem → stages of residual blocks (the first block of every stage after the first halves the size) →
    global average pool → fc.

    block: BasicBlock, Bottleneck, PreActBasicBlock or PreActBottleneck; layers: blocks per stage;
    widths: the `planes` of each stage (64, 128, 256, 512 for ImageNet; 16, 32, 64 for the CIFAR nets).
    small_input=True: a 3×3 stride-1 stem conv and no max-pool (for 28–32 px images); otherwise torchvision's
    7×7 stride-2 conv and 3×3 stride-2 max-pool.
    shortcut: "B" (torchvision): a strided 1×1 conv (+ BN) where the shape changes, identity elsewhere;
    "A" (He et al.'s CIFAR nets): a parameter-free subsample-and-zero-pad shortcut where the shape changes.
    Pre-activation nets end with a BN-ReLU (`bn_final`) before the pool, as their blocks end with a sum.
    Init as torchvision: kaiming_normal_(fan_out, relu) for convs, BN γ=1 β=0, the fc layer's default;
    zero_init_residual=True zeroes the last BN γ (or conv, for pre-activation blocks) of every residual branch.
    """

    def __init__(self, block, layers, num_classes=1000, in_channels=3, zero_init_residual=False, groups=1,
                 width_per_group=64, small_input=False, widths=(64, 128, 256, 512), shortcut="B",
                 se_reduction=None):
        super().__init__()
        if len(layers) != len(widths):
            raise ValueError(f"layers ({len(layers)} stages) and widths ({len(widths)} stages) must have the same "
                             "length")
        if shortcut not in _SHORTCUTS:
            raise ValueError(f"shortcut must be one of {_SHORTCUTS}, got {shortcut!r}")
        preact = getattr(block, "preactivation", False)
        self.inplanes = widths[0]
        self.groups, self.base_width = groups, width_per_group
        self.shortcut, self.se_reduction = shortcut, se_reduction
        if small_input:
            self.conv1 = nn.Conv2d(in_channels, self.inplanes, kernel_size=3, stride=1, padding=1, bias=False)
        else:
            self.conv1 = nn.Conv2d(in_channels, self.inplanes, kernel_size=7, stride=2, padding=3, bias=False)
        self.bn1 = nn.BatchNorm2d(self.inplanes)
        self.relu = nn.ReLU(inplace=True)
        self.maxpool = None if small_input else nn.MaxPool2d(kernel_size=3, stride=2, padding=1)
        for i, (planes, blocks) in enumerate(zip(widths, layers)):
            setattr(self, f"layer{i + 1}", self._make_layer(block, planes, blocks, stride=1 if i == 0 else 2))
        self.bn_final = nn.BatchNorm2d(self.inplanes) if preact else None
        self.avgpool = nn.AdaptiveAvgPool2d((1, 1))
        self.fc = nn.Linear(self.inplanes, num_classes)
        self.num_stages = len(layers)
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
        if zero_init_residual:
            init.zero_init_residual_(self)

    def _make_layer(self, block, planes, blocks, stride):
        out_planes = planes * block.expansion
        downsample = None
        if stride != 1 or self.inplanes != out_planes:
            if self.shortcut == "A":
                downsample = ZeroPadShortcut(self.inplanes, out_planes, stride)
            elif getattr(block, "preactivation", False):
                downsample = nn.Sequential(conv1x1(self.inplanes, out_planes, stride))
            else:
                downsample = nn.Sequential(conv1x1(self.inplanes, out_planes, stride), nn.BatchNorm2d(out_planes))
        layers = [block(self.inplanes, planes, stride, downsample, self.groups, self.base_width, self.se_reduction)]
        self.inplanes = out_planes
        layers += [block(self.inplanes, planes, groups=self.groups, base_width=self.base_width,
                         se_reduction=self.se_reduction) for _ in range(1, blocks)]
        return nn.Sequential(*layers)

    def forward(self, x):
        x = self.relu(self.bn1(self.conv1(x)))
        if self.maxpool is not None:
            x = self.maxpool(x)
        for i in range(self.num_stages):
            x = getattr(self, f"layer{i + 1}")(x)
        if self.bn_final is not None:
            x = self.relu(self.bn_final(x))
        return self.fc(fastnn.flatten(self.avgpool(x), 1))


def resnet18(num_classes=1000, in_channels=3, **kwargs):
    """ResNet-18 (torchvision-compatible; 11,689,512 parameters with 1000 classes)."""
    return ResNet(BasicBlock, [2, 2, 2, 2], num_classes, in_channels, **kwargs)


def resnet34(num_classes=1000, in_channels=3, **kwargs):
    """ResNet-34 (torchvision-compatible; 21,797,672 parameters)."""
    return ResNet(BasicBlock, [3, 4, 6, 3], num_classes, in_channels, **kwargs)


def resnet50(num_classes=1000, in_channels=3, **kwargs):
    """ResNet-50 (torchvision-compatible, v1.5; 25,557,032 parameters)."""
    return ResNet(Bottleneck, [3, 4, 6, 3], num_classes, in_channels, **kwargs)


def resnet101(num_classes=1000, in_channels=3, **kwargs):
    """ResNet-101 (torchvision-compatible; 44,549,160 parameters)."""
    return ResNet(Bottleneck, [3, 4, 23, 3], num_classes, in_channels, **kwargs)


def resnet152(num_classes=1000, in_channels=3, **kwargs):
    """ResNet-152 (torchvision-compatible; 60,192,808 parameters)."""
    return ResNet(Bottleneck, [3, 8, 36, 3], num_classes, in_channels, **kwargs)


def resnext50_32x4d(num_classes=1000, in_channels=3, **kwargs):
    """ResNeXt-50 32×4d: bottlenecks with 32 groups of width 4 (torchvision-compatible; 25,028,904 parameters)."""
    return ResNet(Bottleneck, [3, 4, 6, 3], num_classes, in_channels, groups=32, width_per_group=4, **kwargs)


def resnext101_32x8d(num_classes=1000, in_channels=3, **kwargs):
    """ResNeXt-101 32×8d (torchvision-compatible; 88,791,336 parameters)."""
    return ResNet(Bottleneck, [3, 4, 23, 3], num_classes, in_channels, groups=32, width_per_group=8, **kwargs)


def wide_resnet50_2(num_classes=1000, in_channels=3, **kwargs):
    """Wide ResNet-50-2: bottlenecks twice as wide inside (torchvision-compatible; 68,883,240 parameters)."""
    return ResNet(Bottleneck, [3, 4, 6, 3], num_classes, in_channels, width_per_group=128, **kwargs)


def preact_resnet18(num_classes=1000, in_channels=3, **kwargs):
    """Pre-activation ResNet-18 (BN-ReLU-conv order)."""
    return ResNet(PreActBasicBlock, [2, 2, 2, 2], num_classes, in_channels, **kwargs)


def preact_resnet34(num_classes=1000, in_channels=3, **kwargs):
    return ResNet(PreActBasicBlock, [3, 4, 6, 3], num_classes, in_channels, **kwargs)


def preact_resnet50(num_classes=1000, in_channels=3, **kwargs):
    return ResNet(PreActBottleneck, [3, 4, 6, 3], num_classes, in_channels, **kwargs)


def preact_resnet101(num_classes=1000, in_channels=3, **kwargs):
    return ResNet(PreActBottleneck, [3, 4, 23, 3], num_classes, in_channels, **kwargs)


def preact_resnet152(num_classes=1000, in_channels=3, **kwargs):
    return ResNet(PreActBottleneck, [3, 8, 36, 3], num_classes, in_channels, **kwargs)


def se_resnet18(num_classes=1000, in_channels=3, se_reduction=16, **kwargs):
    """SE-ResNet-18: a squeeze-and-excitation unit (reduction 16) on every residual branch before the sum."""
    return ResNet(BasicBlock, [2, 2, 2, 2], num_classes, in_channels, se_reduction=se_reduction, **kwargs)


def se_resnet50(num_classes=1000, in_channels=3, se_reduction=16, **kwargs):
    """SE-ResNet-50 (28,088,024 parameters with 1000 classes)."""
    return ResNet(Bottleneck, [3, 4, 6, 3], num_classes, in_channels, se_reduction=se_reduction, **kwargs)


def cifar_resnet(depth, num_classes=10, in_channels=3, shortcut="A", **kwargs):
    """He et al. 2015 (§4.2) CIFAR ResNet of `depth` = 6n + 2 layers: 3×3 conv 16, three stages of n basic
    blocks (16/32/64 channels, 32/16/8 px at 32 px input), global average pool, fc. Default shortcut="A"
    (parameter-free zero-padding, as in the paper); shortcut="B" uses 1×1 projections where the shape changes."""
    if isinstance(depth, bool) or not isinstance(depth, int) or depth < 8 or (depth - 2) % 6:
        raise ValueError(f"CIFAR ResNet depth must be 6n + 2 with n >= 1, got {depth!r}")
    n = (depth - 2) // 6
    return ResNet(BasicBlock, [n, n, n], num_classes=num_classes, in_channels=in_channels, small_input=True,
                  widths=(16, 32, 64), shortcut=shortcut, **kwargs)


def resnet20(num_classes=10, in_channels=3, shortcut="A", **kwargs):
    """CIFAR ResNet-20 (3 blocks per stage; 269,722 parameters with shortcut "A"; see cifar_resnet)."""
    return cifar_resnet(20, num_classes, in_channels, shortcut, **kwargs)


def resnet32(num_classes=10, in_channels=3, shortcut="A", **kwargs):
    """CIFAR ResNet-32 (5 blocks per stage; see cifar_resnet)."""
    return cifar_resnet(32, num_classes, in_channels, shortcut, **kwargs)


def resnet44(num_classes=10, in_channels=3, shortcut="A", **kwargs):
    """CIFAR ResNet-44 (7 blocks per stage; see cifar_resnet)."""
    return cifar_resnet(44, num_classes, in_channels, shortcut, **kwargs)


def resnet56(num_classes=10, in_channels=3, shortcut="A", **kwargs):
    """CIFAR ResNet-56 (9 blocks per stage; see cifar_resnet)."""
    return cifar_resnet(56, num_classes, in_channels, shortcut, **kwargs)


def resnet110(num_classes=10, in_channels=3, shortcut="A", **kwargs):
    """CIFAR ResNet-110 (18 blocks per stage; see cifar_resnet)."""
    return cifar_resnet(110, num_classes, in_channels, shortcut, **kwargs)

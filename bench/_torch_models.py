"""PyTorch twins of the fastnn.models the bench times, written out here so that the comparison needs only torch
(torchvision is not assumed). Same layer sizes, strides, shortcuts and parameter counts as fastnn.models;
torch is imported inside each builder so that importing this module costs nothing.
"""


def _resnet_classes(torch):
    nn = torch.nn

    class ZeroPadShortcut(nn.Module):
        def __init__(self, in_planes, out_planes, stride):
            super().__init__()
            self.extra, self.stride = out_planes - in_planes, stride

        def forward(self, x):
            x = x[:, :, ::self.stride, ::self.stride]
            return nn.functional.pad(x, (0, 0, 0, 0, self.extra // 2, self.extra - self.extra // 2))

    class BasicBlock(nn.Module):
        expansion = 1

        def __init__(self, inplanes, planes, stride, downsample, groups, base_width):
            super().__init__()
            self.conv1 = nn.Conv2d(inplanes, planes, 3, stride, 1, bias=False)
            self.bn1 = nn.BatchNorm2d(planes)
            self.conv2 = nn.Conv2d(planes, planes, 3, 1, 1, bias=False)
            self.bn2 = nn.BatchNorm2d(planes)
            self.relu = nn.ReLU(inplace=True)
            self.downsample = downsample

        def forward(self, x):
            out = self.bn2(self.conv2(self.relu(self.bn1(self.conv1(x)))))
            identity = x if self.downsample is None else self.downsample(x)
            return self.relu(out + identity)

    class Bottleneck(nn.Module):
        expansion = 4

        def __init__(self, inplanes, planes, stride, downsample, groups, base_width):
            super().__init__()
            width = int(planes * (base_width / 64.0)) * groups
            self.conv1 = nn.Conv2d(inplanes, width, 1, bias=False)
            self.bn1 = nn.BatchNorm2d(width)
            self.conv2 = nn.Conv2d(width, width, 3, stride, 1, groups=groups, bias=False)
            self.bn2 = nn.BatchNorm2d(width)
            self.conv3 = nn.Conv2d(width, planes * 4, 1, bias=False)
            self.bn3 = nn.BatchNorm2d(planes * 4)
            self.relu = nn.ReLU(inplace=True)
            self.downsample = downsample

        def forward(self, x):
            out = self.relu(self.bn1(self.conv1(x)))
            out = self.relu(self.bn2(self.conv2(out)))
            out = self.bn3(self.conv3(out))
            identity = x if self.downsample is None else self.downsample(x)
            return self.relu(out + identity)

    class ResNet(nn.Module):
        def __init__(self, block, layers, num_classes, in_channels, widths, small_input, shortcut, groups=1,
                     width_per_group=64):
            super().__init__()
            self.inplanes, self.groups, self.base_width, self.shortcut = widths[0], groups, width_per_group, shortcut
            if small_input:
                self.conv1 = nn.Conv2d(in_channels, widths[0], 3, 1, 1, bias=False)
            else:
                self.conv1 = nn.Conv2d(in_channels, widths[0], 7, 2, 3, bias=False)
            self.bn1 = nn.BatchNorm2d(widths[0])
            self.relu = nn.ReLU(inplace=True)
            self.maxpool = nn.Identity() if small_input else nn.MaxPool2d(3, 2, 1)
            self.stages = nn.Sequential(*[self._make_layer(block, planes, blocks, 1 if i == 0 else 2)
                                          for i, (planes, blocks) in enumerate(zip(widths, layers))])
            self.avgpool = nn.AdaptiveAvgPool2d(1)
            self.fc = nn.Linear(self.inplanes, num_classes)

        def _make_layer(self, block, planes, blocks, stride):
            out_planes = planes * block.expansion
            downsample = None
            if stride != 1 or self.inplanes != out_planes:
                if self.shortcut == "A":
                    downsample = ZeroPadShortcut(self.inplanes, out_planes, stride)
                else:
                    downsample = nn.Sequential(nn.Conv2d(self.inplanes, out_planes, 1, stride, bias=False),
                                               nn.BatchNorm2d(out_planes))
            layers = [block(self.inplanes, planes, stride, downsample, self.groups, self.base_width)]
            self.inplanes = out_planes
            layers += [block(out_planes, planes, 1, None, self.groups, self.base_width) for _ in range(1, blocks)]
            return nn.Sequential(*layers)

        def forward(self, x):
            x = self.stages(self.maxpool(self.relu(self.bn1(self.conv1(x)))))
            return self.fc(torch.flatten(self.avgpool(x), 1))

    return BasicBlock, Bottleneck, ResNet


def resnet20(torch, num_classes=10, in_channels=3):
    """He et al.'s CIFAR ResNet-20 with option-A shortcuts (fastnn.models.resnet20)."""
    basic, _, resnet = _resnet_classes(torch)
    return resnet(basic, [3, 3, 3], num_classes, in_channels, (16, 32, 64), small_input=True, shortcut="A")


def resnet18(torch, num_classes=1000, in_channels=3):
    basic, _, resnet = _resnet_classes(torch)
    return resnet(basic, [2, 2, 2, 2], num_classes, in_channels, (64, 128, 256, 512), small_input=False,
                  shortcut="B")


def resnext50_32x4d(torch, num_classes=1000, in_channels=3):
    _, bottleneck, resnet = _resnet_classes(torch)
    return resnet(bottleneck, [3, 4, 6, 3], num_classes, in_channels, (64, 128, 256, 512), small_input=False,
                  shortcut="B", groups=32, width_per_group=4)


def vgg11_bn_cifar(torch, num_classes=10, in_channels=3):
    """fastnn.models.vgg11_bn_cifar: VGG-11 conv stack with BN minus its last pool, global average pool,
    dropout-512-ReLU-dropout-512-ReLU-num_classes head."""
    nn = torch.nn
    layers = []
    for v in [64, "M", 128, "M", 256, 256, "M", 512, 512, "M", 512, 512]:
        if v == "M":
            layers.append(nn.MaxPool2d(2, 2))
        else:
            layers += [nn.Conv2d(in_channels, v, 3, padding=1), nn.BatchNorm2d(v), nn.ReLU(inplace=True)]
            in_channels = v
    return nn.Sequential(*layers, nn.AdaptiveAvgPool2d(1), nn.Flatten(),
                         nn.Dropout(0.5), nn.Linear(512, 512), nn.ReLU(True),
                         nn.Dropout(0.5), nn.Linear(512, 512), nn.ReLU(True), nn.Linear(512, num_classes))


BUILDERS = {"resnet20": resnet20, "resnet18": resnet18, "resnext50_32x4d": resnext50_32x4d,
            "vgg11_bn_cifar": vgg11_bn_cifar}

"""Network in Network (Lin, Chen & Yan 2013): mlpconv blocks and global average pooling instead of FC layers."""
import fastnn
from fastnn import nn
from fastnn.nn import init


def mlpconv(in_channels, out_channels, kernel_size, stride=1, padding=0):
    """A k×k conv followed by two 1×1 convs (a per-pixel two-layer MLP across channels), each with ReLU."""
    return nn.Sequential(
        nn.Conv2d(in_channels, out_channels, kernel_size, stride=stride, padding=padding), nn.ReLU(inplace=True),
        nn.Conv2d(out_channels, out_channels, kernel_size=1), nn.ReLU(inplace=True),
        nn.Conv2d(out_channels, out_channels, kernel_size=1), nn.ReLU(inplace=True))


class NiN(nn.Module):
    """mlpconv 96 (11×11/4) → maxpool 3/2 → mlpconv 256 (5×5) → maxpool 3/2 → mlpconv 384 (3×3) → maxpool 3/2 →
    dropout → mlpconv num_classes (3×3) → global average pool: one map per class, no fully connected layer.

    small_input=True: a 3×3 stride-1 first conv and no first max-pool (28–32 px images).
    Init: kaiming_normal_(fan_out, relu) for the convs, zero biases.
    """

    def __init__(self, num_classes=1000, in_channels=3, dropout=0.5, small_input=False):
        super().__init__()
        if small_input:
            layers = [mlpconv(in_channels, 96, kernel_size=3, stride=1, padding=1)]
        else:
            layers = [mlpconv(in_channels, 96, kernel_size=11, stride=4), nn.MaxPool2d(3, stride=2)]
        layers += [mlpconv(96, 256, kernel_size=5, padding=2), nn.MaxPool2d(3, stride=2),
                   mlpconv(256, 384, kernel_size=3, padding=1), nn.MaxPool2d(3, stride=2),
                   nn.Dropout(dropout),
                   mlpconv(384, num_classes, kernel_size=3, padding=1)]
        self.features = nn.Sequential(*layers)
        self.avgpool = nn.AdaptiveAvgPool2d((1, 1))
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
                init.zeros_(m.bias)

    def forward(self, x):
        return fastnn.flatten(self.avgpool(self.features(x)), 1)


def nin(num_classes=1000, in_channels=3, **kwargs):
    return NiN(num_classes, in_channels, **kwargs)

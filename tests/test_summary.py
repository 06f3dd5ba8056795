"""fastnn.summary: per-layer numbers checked against hand computations."""
import numpy as np
import pytest

import fastnn
from fastnn import models, nn
from fastnn.models.googlenet import Inception


def by_name(rows):
    return {r["name"]: r for r in rows}


def test_lenet5_rows_by_hand(capsys):
    rows = fastnn.summary(models.lenet5(), (1, 28, 28))
    table = [(r["name"], r["output_shape"], r["params"], r["macs"], r["receptive_field"]) for r in rows]
    assert table == [
        # conv 6@5×5 pad 2: 6·(25 + 1) params, 6·28·28 outputs × 25 multiply-adds each, RF 5.
        ("features.0", (6, 28, 28), 156, 6 * 28 * 28 * 25, 5),
        ("features.1", (6, 28, 28), 0, 0, None),
        # 2×2/2 max-pool: RF 5 + 1·1 = 6, jump 2.
        ("features.2", (6, 14, 14), 0, 0, 6),
        # conv 16@5×5 on 6 maps: 16·(150 + 1) params, 16·10·10 outputs × 150; RF 6 + 4·2 = 14, jump still 2.
        ("features.3", (16, 10, 10), 2416, 16 * 10 * 10 * 150, 14),
        ("features.4", (16, 10, 10), 0, 0, None),
        # RF 14 + 1·2 = 16, jump 4.
        ("features.5", (16, 5, 5), 0, 0, 16),
        ("classifier.0", (400,), 0, 0, None),
        ("classifier.1", (120,), 400 * 120 + 120, 400 * 120, None),
        ("classifier.2", (120,), 0, 0, None),
        ("classifier.3", (84,), 120 * 84 + 84, 120 * 84, None),
        ("classifier.4", (84,), 0, 0, None),
        ("classifier.5", (10,), 84 * 10 + 10, 84 * 10, None),
    ]
    assert rows[0]["type"] == "Conv2d" and rows[2]["type"] == "MaxPool2d"
    assert rows[0]["memory_kb"] == 6 * 28 * 28 * 4 / 1024
    assert rows[6]["memory_kb"] == 400 * 4 / 1024
    printed = capsys.readouterr().out
    assert "Total params: 61,706" in printed
    assert f"Total multiply-adds: {117600 + 240000 + 48000 + 10080 + 840:,}" in printed
    assert "features.3" in printed and "Conv2d" in printed


def test_float64_memory_and_restored_mode():
    model = models.lenet5(variant="classic").double()
    model.train()
    model.classifier.eval()
    rows = fastnn.summary(model, (1, 28, 28), dtype="float64")
    assert rows[0]["memory_kb"] == 6 * 28 * 28 * 8 / 1024
    assert rows[2]["type"] == "AvgPool2d" and rows[2]["receptive_field"] == 6
    assert model.training and model.features.training and not model.classifier.training
    assert all(not m._forward_hooks and not m._forward_pre_hooks for m in model.modules())


def test_strides_dilation_and_adaptive_pool():
    model = nn.Sequential(
        nn.Conv2d(1, 2, 3, stride=2, padding=1),            # RF 3, jump 2
        nn.Conv2d(2, 2, 3, padding=2, dilation=2),          # effective kernel 5: RF 3 + 4·2 = 11
        nn.MaxPool2d(3, stride=2, padding=1),               # RF 11 + 2·2 = 15, jump 4
        nn.Conv2d(2, 3, (1, 3), padding=(0, 1), groups=1),  # RF 15 × (15 + 2·4) = 15 × 23
        nn.AdaptiveAvgPool2d(1))                            # 4×4 map → kernel 4: + 3·4 in both axes
    rows = fastnn.summary(model, (1, 16, 16))
    assert [r["receptive_field"] for r in rows] == [3, 11, 15, (15, 23), (27, 35)]
    assert [r["output_shape"] for r in rows] == [(2, 8, 8), (2, 8, 8), (2, 4, 4), (3, 4, 4), (3, 1, 1)]
    assert rows[1]["macs"] == 2 * 8 * 8 * 2 * 9


def test_grouped_conv_macs_and_params():
    rows = fastnn.summary(nn.Conv2d(8, 4, 3, groups=2, bias=False), (8, 5, 5))
    assert rows == [{"name": "Conv2d", "type": "Conv2d", "output_shape": (4, 3, 3), "params": 4 * 4 * 9,
                     "memory_kb": 4 * 9 * 4 / 1024, "macs": 4 * 9 * 4 * 9, "receptive_field": 3}]


def test_receptive_field_through_branches():
    """Concatenations and residual sums are functional ops between modules: the field after them is the widest
    of their branches."""
    model = nn.Sequential(Inception(2, 1, 1, 1, 1, 1, 1), nn.Conv2d(4, 1, 3, padding=1))
    rows = by_name(fastnn.summary(model, (2, 6, 6)))
    assert rows["0.branch1.conv"]["receptive_field"] == 1
    assert rows["0.branch2.1.conv"]["receptive_field"] == 3
    assert rows["0.branch4.0"]["receptive_field"] == 3
    assert rows["1"]["receptive_field"] == 5

    # CIFAR ResNet-20: stem 3, six 3×3 convs at jump 1 → 15; stage 2 starts with a stride-2 conv → 17, then
    # jump 2: 21 ... 37; stage 3 likewise → 41, 49 ... 81; the 8×8 global pool adds 7·4.
    rows = by_name(fastnn.summary(models.resnet20(), (3, 32, 32)))
    assert rows["conv1"]["receptive_field"] == 3
    assert rows["layer1.2.conv2"]["receptive_field"] == 15
    assert rows["layer2.0.conv1"]["receptive_field"] == 17
    assert rows["layer2.2.conv2"]["receptive_field"] == 37
    assert rows["layer3.2.conv2"]["receptive_field"] == 81
    assert rows["avgpool"]["receptive_field"] == 81 + 7 * 4
    assert rows["layer3.0.downsample"]["output_shape"] == (64, 8, 8)
    assert rows["layer3.0.downsample"]["receptive_field"] is None


def test_reused_module_counts_its_parameters_once(capsys):
    class Twice(nn.Module):
        def __init__(self):
            super().__init__()
            self.fc = nn.Linear(4, 4)

        def forward(self, x):
            return self.fc(self.fc(x))

    rows = fastnn.summary(Twice(), (4,))
    assert [(r["name"], r["params"], r["macs"]) for r in rows] == [("fc", 20, 16), ("fc", 0, 16)]
    assert "Total params: 20 " in capsys.readouterr().out


def test_alexnet_lecture_numbers():
    """torchvision AlexNet at 224 px: the numbers of the lecture table; 0.714 G multiply-adds, torchvision's
    figure."""
    all_rows = fastnn.summary(models.alexnet(), (3, 224, 224))
    assert sum(r["macs"] for r in all_rows) == 714188480
    rows = [r for r in all_rows if r["type"] in ("Conv2d", "MaxPool2d")]
    assert [r["output_shape"] for r in rows] == [(64, 55, 55), (64, 27, 27), (192, 27, 27), (192, 13, 13),
                                                  (384, 13, 13), (256, 13, 13), (256, 13, 13), (256, 6, 6)]
    assert [r["receptive_field"] for r in rows] == [11, 19, 51, 67, 99, 131, 163, 195]
    assert [r["params"] for r in rows if r["type"] == "Conv2d"] == [
        64 * (3 * 121 + 1), 192 * (64 * 25 + 1), 384 * (192 * 9 + 1), 256 * (384 * 9 + 1), 256 * (256 * 9 + 1)]
    assert rows[0]["macs"] == 64 * 55 * 55 * 3 * 121


def test_bad_input_shape():
    model = models.lenet5()
    for bad in [(), (1, 0, 28), "1x28x28", (1, 28.0, 28), None]:
        with pytest.raises(ValueError, match="input_shape"):
            fastnn.summary(model, bad)
    assert np.isfinite(model(fastnn.zeros(1, 1, 28, 28)).data).all()

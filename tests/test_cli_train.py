"""`fastnn train` options: --model zoo choices, --augment, --schedule cosine, --limit, the epoch lines."""
import math
import re

import numpy as np
import pytest

import fastnn
from fastnn import nn, optim
from fastnn.cli import MODELS, build_model, main as cli_main, make_loaders, make_scheduler, standardized_background
from fastnn.cli import train_transform
from fastnn.data import DataLoader, FashionMNIST, TensorDataset, fetch_batch
from fastnn.data.datasets import EMBEDDED_DIR
from fastnn.tensor import Tensor
from fastnn.training import train_one_epoch

BACKGROUND = (0 - 0.2860) / 0.3530  # a black pixel after x/255 and standardization


@pytest.fixture(scope="module")
def splits():
    return FashionMNIST(EMBEDDED_DIR, train=True), FashionMNIST(EMBEDDED_DIR, train=False)


def _augmented_candidates(image, background):
    """{(top, left, flipped): crop} for every 28x28 window of `image` (1 x 28 x 28) padded by 2 with `background`,
    unflipped and mirrored."""
    padded = np.full((1, 32, 32), background, dtype=np.float32)
    padded[:, 2:30, 2:30] = image
    candidates = {}
    for top in range(5):
        for left in range(5):
            crop = padded[:, top:top + 28, left:left + 28]
            candidates[(top, left, False)] = crop
            candidates[(top, left, True)] = crop[..., ::-1]
    return candidates


def _matches(output, source, background):
    return [key for key, crop in _augmented_candidates(source, background).items() if np.array_equal(output, crop)]


def _epoch_lines(out):
    pattern = (r"epoch (\d+)/(\d+): train loss (\S+)  train acc (\S+)  test acc (\S+)  lr (\S+)  epoch (\S+)s  "
               r"elapsed (\S+)s")
    return [tuple(float(v) for v in m.groups()) for m in re.finditer(pattern, out)]


# --model


@pytest.mark.parametrize("name", list(MODELS))
def test_every_model_choice_classifies_one_channel_28x28_images(name):
    model = build_model(name)
    model.eval()
    x = fastnn.tensor(np.random.default_rng(0).standard_normal((2, 1, 28, 28)).astype(np.float32))
    logits = model(x)
    assert tuple(logits.shape) == (2, 10)
    assert np.isfinite(logits._data).all()


def test_model_choices_and_variants():
    assert set(MODELS) == {"mlp", "lenet5", "lenet5-classic", "resnet20", "resnet32", "resnet44", "resnet56",
                           "resnet110", "vgg11_bn_cifar"}
    assert build_model("lenet5").variant == "modern" and build_model("lenet5-classic").variant == "classic"
    assert sum(p.numel() for p in build_model("resnet20").parameters()) == 269_434
    with pytest.raises(ValueError, match="unknown model"):
        build_model("alexnet")


# --augment


def test_background_fill_is_the_standardized_black_pixel(splits):
    fill = standardized_background()
    assert fill == pytest.approx(BACKGROUND, abs=1e-6) and fill == pytest.approx(-0.81020, abs=1e-4)
    # The exact float32 value standardized() gives a black pixel (Fashion-MNIST borders are black).
    images, _ = splits[0].standardized()
    assert np.float32(fill) == images[0, 0, 0, 0] and splits[0].data[0, 0, 0] == 0


def test_unaugmented_transform_is_bit_identical_to_standardized(splits):
    train = splits[0]
    out = train_transform(augment=False)(train.data[:100, ..., None])
    assert isinstance(out, Tensor) and out.dtype == np.float32 and tuple(out.shape) == (100, 1, 28, 28)
    assert np.array_equal(out._data, train.standardized()[0][:100])


def test_augment_transform_crops_padded_images_and_flips_some():
    # Noise images without black pixels, so each output identifies its crop window and flip uniquely.
    raw = np.random.default_rng(1).integers(1, 256, size=(200, 28, 28, 1), dtype=np.uint8)
    standardized = train_transform(augment=False)(raw)._data
    out = train_transform(augment=True, generator=np.random.default_rng(7))(raw)
    assert isinstance(out, Tensor) and out.dtype == np.float32 and tuple(out.shape) == (200, 1, 28, 28)
    fill = np.float32(standardized_background())
    draws = []
    for i in range(200):
        found = _matches(out._data[i], standardized[i], fill)
        assert len(found) == 1, f"image {i}: {found}"
        top, left, flipped = found[0]
        draws.append(found[0])
        # Rows/columns shifted in from the padding hold exactly the background value, never 0.
        rows = out._data[i, 0, :2 - top] if top < 2 else out._data[i, 0, 28 - (top - 2):]
        if top != 2:
            assert np.all(rows == fill) and fill != 0
    flips = sum(flipped for _, _, flipped in draws)
    assert 60 <= flips <= 140, flips  # p = 0.5 per image
    assert len({(top, left) for top, left, _ in draws}) >= 20  # of the 25 windows
    assert sum((top, left) == (2, 2) and not flipped for top, left, flipped in draws) < 20
    # Reproducible from the generator; a different seed draws differently.
    again = train_transform(augment=True, generator=np.random.default_rng(7))(raw)
    other = train_transform(augment=True, generator=np.random.default_rng(8))(raw)
    assert np.array_equal(again._data, out._data) and not np.array_equal(other._data, out._data)


def test_augment_applies_to_training_batches_only(splits):
    train, test = FashionMNIST(EMBEDDED_DIR, train=True), splits[1]
    train_loader, test_loader = make_loaders(train, test, batch_size=64, augment=True, limit=300)
    # shuffled as in PyTorch: the loader draws from a RandomSampler
    assert len(train_loader.dataset) == 300 and len(train_loader) == 5
    assert isinstance(train_loader.sampler, fastnn.data.RandomSampler)
    x_train, y_train = splits[0].standardized()
    fill = standardized_background()
    images, labels = fetch_batch(train_loader.dataset, np.arange(64))
    assert tuple(images.shape) == (64, 1, 28, 28) and images.dtype == np.float32
    assert np.array_equal(labels._data, y_train[:64])
    changed = 0
    for i in range(64):
        assert _matches(images._data[i], x_train[i], fill), f"image {i} is no crop/flip of the source image"
        changed += not np.array_equal(images._data[i], x_train[i])
    assert changed >= 32, changed
    # A whole shuffled epoch sees each of the 300 labels once.
    epoch_labels = np.concatenate([y._data for _, y in train_loader])
    assert np.array_equal(np.sort(epoch_labels), np.sort(y_train[:300]))
    # The test set: all 2,000 images, unaugmented and in order.
    x_test, y_test = test.standardized()
    batches = list(test_loader)
    assert np.array_equal(np.concatenate([x._data for x, _ in batches]), x_test)
    assert np.array_equal(np.concatenate([y._data for _, y in batches]), y_test)
    assert test.transform is None


def test_loaders_without_augment_use_the_first_limit_standardized_images(splits):
    train, test = FashionMNIST(EMBEDDED_DIR, train=True), splits[1]
    train_loader, _ = make_loaders(train, test, batch_size=50, limit=120)
    assert isinstance(train_loader.dataset, TensorDataset) and len(train_loader) == 3
    x, y = splits[0].standardized()
    assert np.array_equal(train_loader.dataset.tensors[0]._data, x[:120])
    assert np.array_equal(train_loader.dataset.tensors[1]._data, y[:120])
    full_loader, _ = make_loaders(train, test, batch_size=1000, limit=10**6)  # more than there are: all of them
    assert len(full_loader.dataset) == 10_000


# --schedule


def _sgd(lr=0.1):
    return optim.SGD(nn.Linear(2, 2).parameters(), lr=lr, momentum=0.9)


def test_constant_schedule_has_no_scheduler():
    assert make_scheduler("constant", _sgd(), 10) is None
    with pytest.raises(ValueError, match="unknown schedule"):
        make_scheduler("step", _sgd(), 10)


def test_cosine_schedule_starts_at_lr_and_reaches_zero_after_the_last_step():
    optimizer = _sgd(0.1)
    scheduler = make_scheduler("cosine", optimizer, 10)
    used = []
    for _ in range(10):  # lr used by each of the 10 batches, then the step after it
        used.append(optimizer.param_groups[0]["lr"])
        scheduler.step()
    assert used[0] == 0.1
    assert np.allclose(used, [0.05 * (1 + math.cos(math.pi * k / 10)) for k in range(10)], rtol=1e-12, atol=0)
    assert used[5] == pytest.approx(0.05, rel=1e-12)
    assert all(a > b for a, b in zip(used, used[1:]))
    assert abs(optimizer.param_groups[0]["lr"]) < 1e-15


def test_train_one_epoch_steps_the_scheduler_once_per_batch():
    fastnn.manual_seed(0)
    x = fastnn.tensor(np.random.default_rng(0).standard_normal((40, 4)).astype(np.float32))
    y = fastnn.tensor(np.arange(40) % 3)
    loader = DataLoader(TensorDataset(x, y), batch_size=8, shuffle=True)  # 5 batches
    model = nn.Linear(4, 3)
    optimizer = optim.SGD(model.parameters(), lr=0.2, momentum=0.9)
    scheduler = make_scheduler("cosine", optimizer, 2 * len(loader))
    loss_fn = nn.CrossEntropyLoss()
    train_one_epoch(model, loader, optimizer, loss_fn, scheduler=scheduler)
    assert scheduler.last_epoch == 5 and optimizer.param_groups[0]["lr"] == pytest.approx(0.1, rel=1e-12)
    loss, accuracy = train_one_epoch(model, loader, optimizer, loss_fn, scheduler=scheduler)
    assert scheduler.last_epoch == 10 and abs(optimizer.param_groups[0]["lr"]) < 1e-15
    assert np.isfinite(loss) and 0 <= accuracy <= 1


# The CLI end to end


def test_cli_epoch_lines_report_lr_epoch_seconds_and_elapsed_time(capsys):
    args = ["train", "--model", "lenet5", "--embedded", "--limit", "128", "--batch-size", "32", "--epochs", "2",
            "--lr", "0.1", "--no-progress"]
    assert cli_main(args + ["--schedule", "cosine"]) == 0
    out = capsys.readouterr().out
    assert "128 train / 2,000 test images" in out and "(cosine)" in out
    lines = _epoch_lines(out)
    assert [line[:2] for line in lines] == [(1, 2), (2, 2)]
    (_, _, _, _, _, lr1, seconds1, elapsed1), (_, _, _, _, acc2, lr2, seconds2, elapsed2) = lines
    assert lr1 == pytest.approx(0.05) and lr2 == 0  # 4 batches in all: half-way, then the end of the cosine
    assert 0 <= seconds1 <= elapsed1 <= elapsed2 and 0 <= seconds2  # cumulative, rounded to 0.1 s
    assert elapsed1 + seconds2 <= elapsed2 + 0.2
    assert float(out.split("test accuracy:")[1].split()[0]) == acc2
    assert cli_main(args) == 0
    constant = _epoch_lines(capsys.readouterr().out)
    assert [line[5] for line in constant] == [0.1, 0.1]


def test_cli_trains_resnet20_with_augment_and_cosine_on_a_limited_subset(capsys):
    assert cli_main(["train", "--model", "resnet20", "--embedded", "--epochs", "1", "--limit", "256",
                     "--batch-size", "128", "--lr", "0.1", "--momentum", "0.9", "--weight-decay", "5e-4",
                     "--schedule", "cosine", "--augment", "--no-progress"]) == 0
    out = capsys.readouterr().out
    assert "resnet20: 269,434 parameters; 256 train / 2,000 test images" in out
    assert "augment=crop+flip" in out
    (line,) = _epoch_lines(out)
    epoch, epochs, train_loss, train_acc, test_acc, lr, seconds, elapsed = line
    assert (epoch, epochs) == (1, 1) and lr == 0
    assert np.isfinite(train_loss) and train_loss > 0 and 0 <= train_acc <= 1
    accuracy = float(out.split("test accuracy:")[1].split()[0])
    assert 0 <= accuracy <= 1 and accuracy == test_acc
    assert 0 < seconds <= elapsed


@pytest.mark.parametrize("extra, message", [
    (["--limit", "0"], "--limit must be at least 1"),
    (["--limit", "-5"], "--limit must be at least 1"),
    (["--lr", "0"], "--lr must be positive"),
    (["--epochs", "0"], "--epochs must be at least 1, got 0"),
    (["--batch-size", "0"], "--batch-size must be at least 1, got 0"),
    (["--threads", "0"], "--threads must be positive"),
])
def test_cli_rejects_invalid_options_with_a_message(extra, message):
    with pytest.raises(SystemExit, match=message):
        cli_main(["train", "--embedded"] + extra)


def test_cli_rejects_unknown_model_and_schedule(capsys):
    for extra in (["--model", "alexnet"], ["--schedule", "step"]):
        with pytest.raises(SystemExit) as info:
            cli_main(["train", "--embedded"] + extra)
        assert info.value.code == 2
        assert "invalid choice" in capsys.readouterr().err

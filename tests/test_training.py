"""End-to-end training on the real embedded Fashion-MNIST subset: accuracy floor, determinism, the CLI."""
import numpy as np
import pytest

import fastnn
from fastnn import models, nn, optim
from fastnn.cli import main as cli_main
from fastnn.data import DataLoader, FashionMNIST, TensorDataset
from fastnn.data.datasets import EMBEDDED_DIR
from fastnn.training import evaluate, train_one_epoch


@pytest.fixture(scope="module")
def embedded():
    train, test = FashionMNIST(EMBEDDED_DIR, train=True), FashionMNIST(EMBEDDED_DIR, train=False)
    assert train.source == "embedded" and len(train) == 10_000 and len(test) == 2_000
    return train.standardized(), test.standardized()


def _loader(arrays, batch_size, shuffle):
    x, y = arrays
    return DataLoader(TensorDataset(fastnn.tensor(x), fastnn.tensor(y)), batch_size=batch_size, shuffle=shuffle)


def _lenet_losses(train_arrays, seed, steps):
    """Per-step losses of the reference recipe (SGD lr 0.05, momentum 0.9, batch 64) for `steps` steps."""
    fastnn.manual_seed(seed)
    model = models.lenet5()
    optimizer = optim.SGD(model.parameters(), lr=0.05, momentum=0.9)
    loss_fn = nn.CrossEntropyLoss()
    losses = []
    for step, (x, y) in enumerate(_loader(train_arrays, 64, True)):
        if step == steps:
            break
        optimizer.zero_grad()
        loss = loss_fn(model(x), y)
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    return losses


def test_lenet5_reaches_80_percent_on_embedded_subset(embedded):
    train_arrays, test_arrays = embedded
    fastnn.manual_seed(0)
    model = models.lenet5()
    optimizer = optim.SGD(model.parameters(), lr=0.05, momentum=0.9)
    loss_fn = nn.CrossEntropyLoss()
    train_loader, test_loader = _loader(train_arrays, 64, True), _loader(test_arrays, 500, False)
    history = [train_one_epoch(model, train_loader, optimizer, loss_fn) for _ in range(3)]
    accuracy = evaluate(model, test_loader)
    assert history[-1][0] < history[0][0]
    # PyTorch 2.13 reaches 82-85% with this recipe over three seeds.
    assert accuracy >= 0.80, f"LeNet-5 test accuracy {accuracy:.4f} after 3 epochs"


def test_same_seed_gives_bit_identical_losses(embedded):
    first = _lenet_losses(embedded[0], seed=3, steps=40)
    second = _lenet_losses(embedded[0], seed=3, steps=40)
    assert first == second
    assert _lenet_losses(embedded[0], seed=4, steps=40) != first
    assert np.isfinite(first).all() and first[-1] < first[0]


def test_cli_trains_mlp_and_saves_a_loadable_state_dict(tmp_path, capsys):
    path = tmp_path / "mlp.fastnn"
    assert cli_main(["train", "--model", "mlp", "--optimizer", "adam", "--epochs", "1", "--batch-size", "128",
                     "--embedded", "--no-progress", "--save", str(path)]) == 0
    out = capsys.readouterr().out
    assert "embedded Fashion-MNIST subset" in out
    accuracy = float(out.split("test accuracy:")[1].split()[0])
    assert accuracy > 0.75
    model = models.mlp()
    model.load_state_dict(fastnn.load(path))
    x, y = embedded_test = FashionMNIST(EMBEDDED_DIR, train=False).standardized()
    assert abs(evaluate(model, _loader(embedded_test, 1000, False)) - accuracy) < 1e-9
    assert len(x) == len(y) == 2_000


def test_cli_rejects_conflicting_data_options():
    with pytest.raises(SystemExit):
        cli_main(["train", "--embedded", "--data-dir", "/nonexistent"])


def test_cli_reports_missing_data_dir(tmp_path):
    with pytest.raises(FileNotFoundError, match="dataset-fashion-mnist"):
        cli_main(["train", "--data-dir", str(tmp_path), "--epochs", "1"])

"""`fastnn train --config FILE --out DIR --resume`: resolved configs, history.csv, checkpoints, exact resume and
configuration errors raised before any training."""
import csv
import tomllib

import pytest

import fastnn
from fastnn.cli import main as cli_main
from fastnn.train.config import ConfigError, dumps, resolve

QUICK = ["--embedded", "--limit", "192", "--batch-size", "64", "--no-progress"]


def _history(directory):
    with open(directory / "history.csv") as f:
        return list(csv.DictReader(f))


def test_epochs_1_then_resume_to_2_writes_the_same_history_as_one_run(tmp_path, capsys):
    # crop+flip augmentation and shuffling both draw from fastnn's generator: the resume restores it.
    common = ["train", "--model", "lenet5", "--augment", "--lr", "0.05"] + QUICK
    assert cli_main(common + ["--epochs", "2", "--out", str(tmp_path / "one")]) == 0
    assert cli_main(common + ["--epochs", "1", "--out", str(tmp_path / "two")]) == 0
    assert cli_main(["train", "--resume", "--epochs", "2", "--out", str(tmp_path / "two"), "--no-progress"]) == 0
    out = capsys.readouterr().out
    one, two = _history(tmp_path / "one"), _history(tmp_path / "two")
    assert list(one[0])[:7] == ["epoch", "train_loss", "train_acc", "val_loss", "val_acc", "lr", "seconds"]
    assert [r["epoch"] for r in two] == ["1", "2"]
    for column in ("train_loss", "train_acc", "val_loss", "val_acc", "lr", "train_top5", "val_top5"):
        assert [r[column] for r in one] == [r[column] for r in two], column  # the exact repr of each float
    assert float(one[1]["train_loss"]) < float(one[0]["train_loss"])
    for name in ("last.fastnn", "best.fastnn", "config.toml", "history.jsonl"):
        assert (tmp_path / "two" / name).exists(), name
    assert fastnn.load(tmp_path / "two" / "last.fastnn")["epoch"] == 2
    assert out.count("epoch 2/2:") == 2
    # The resumed model equals the uninterrupted one, bit for bit.
    a = fastnn.load(tmp_path / "one" / "last.fastnn")["model"]
    b = fastnn.load(tmp_path / "two" / "last.fastnn")["model"]
    assert all((a[k].numpy() == b[k].numpy()).all() for k in a)
    # Resuming a finished run trains nothing more.
    assert cli_main(["train", "--resume", "--epochs", "2", "--out", str(tmp_path / "two"), "--no-progress"]) == 0
    assert "has trained 2 epochs already" in capsys.readouterr().out and len(_history(tmp_path / "two")) == 2


CONFIG = """
seed = 3
epochs = 4

[model]
name = "mlp"

[data]
embedded = true
limit = 128
batch_size = 32

[optimizer]
name = "adam"
weight_decay = 1e-4

[schedule]
name = "cosine"

[train]
max_norm = 5.0
accumulate_grad_batches = 2

[callbacks]
lr_monitor = true

[callbacks.checkpoint]
monitor = "val_loss"
mode = "min"

[callbacks.early_stopping]
monitor = "train_loss"
mode = "max"
patience = 0
"""


def test_config_file_with_overrides_callbacks_and_resolved_config(tmp_path, capsys):
    path = tmp_path / "run.toml"
    path.write_text(CONFIG)
    out = tmp_path / "out"
    assert cli_main(["train", "--config", str(path), "--out", str(out), "--epochs", "5", "--no-progress"]) == 0
    printed = capsys.readouterr().out
    assert "mlp: 535,818 parameters; 128 train / 2,000 test images; adam lr=0.001 (cosine) batch=32" in printed
    with open(out / "config.toml", "rb") as f:
        resolved = tomllib.load(f)
    assert resolved["epochs"] == 5 and resolved["seed"] == 3  # --epochs overrides the file
    assert resolved["optimizer"] == {"name": "adam", "lr": 0.001, "momentum": 0.9, "weight_decay": 1e-4}
    assert resolved["schedule"] == {"name": "cosine", "epochs": 5}
    assert resolved["train"] == {"max_norm": 5.0, "accumulate_grad_batches": 2}
    assert resolved["callbacks"]["early_stopping"] == {"monitor": "train_loss", "patience": 0, "min_delta": 0.0,
                                                       "mode": "max"}
    assert "data_dir" not in resolved["data"]  # None is "not set"
    # Early stopping in "max" mode on a falling training loss: epoch 2 does not improve on epoch 1, patience 0.
    rows = _history(out)
    assert [r["epoch"] for r in rows] == ["1", "2"] and float(rows[1]["train_loss"]) < float(rows[0]["train_loss"])
    assert [float(r["lr_pg0"]) for r in rows] == [float(r["lr"]) for r in rows] and float(rows[0]["lr"]) == 0.001
    best = fastnn.load(out / "best.fastnn")
    assert best["epoch"] == min(range(2), key=lambda i: float(rows[i]["val_loss"])) + 1
    # The resolved config repeats the run: resolving it again changes nothing.
    assert tomllib.loads(dumps(resolve(resolved))) == resolved
    assert fastnn.load(out / "last.fastnn")["global_step"] == 2 * 2  # 4 batches an epoch, 2 per optimizer step


@pytest.mark.parametrize("text, message", [
    ("epochs = 0", "epochs in {path} must be at least 1, got 0"),
    ("[optimizer]\nname = 'adamw'", "optimizer.name in {path} must be one of sgd, adam; got 'adamw'"),
    ("[data]\nbatch_size = '64'", "data.batch_size in {path} must be an integer, got '64'"),
    ("[data]\nbatchsize = 64", "unknown key 'data.batchsize'; allowed in [data]: embedded, data_dir, limit, "
                               "batch_size"),
    ("[optimiser]\nname = 'sgd'", "unknown section or key 'optimiser'; allowed: [model], [data]"),
    ("[model]\nname = 'alexnet'", "model.name in {path} must be one of mlp, lenet5, lenet5-classic, resnet20"),
    ("[schedule]\nname = 'step'", "schedule.name in {path} must be one of constant, cosine; got 'step'"),
    ("[callbacks.early_stopping]\nmode = 'lowest'", "callbacks.early_stopping.mode in {path} must be one of min, "
                                                    "max; got 'lowest'"),
    ("[callbacks.checkpoint]\nmonitor = 'accuracy'", "callbacks.checkpoint.monitor in {path} must be one of "
                                                     "train_loss, train_acc"),
    ("[train]\nmax_norm = -1.0", "train.max_norm in {path} must be positive, got -1.0"),
    ("[optimizer]\nlr = nan", "optimizer.lr in {path} must be finite"),
    ("[data]\nembedded = true\ndata_dir = '/x'", "data.embedded in {path} and data.data_dir in {path} are mutually "
                                                 "exclusive"),
    ("epochs = [", "not valid TOML"),
])
def test_bad_configs_fail_before_training_naming_key_and_allowed_values(text, message, tmp_path, capsys):
    path = tmp_path / "bad.toml"
    path.write_text(text)
    with pytest.raises(SystemExit) as info:
        cli_main(["train", "--config", str(path), "--out", str(tmp_path / "out")])
    assert message.format(path=path) in str(info.value)
    assert capsys.readouterr().out == ""  # no data loaded, nothing trained
    assert not (tmp_path / "out").exists()


def test_resume_and_out_misuse_is_refused(tmp_path, capsys):
    with pytest.raises(SystemExit, match="--resume needs --out DIR"):
        cli_main(["train", "--resume"])
    with pytest.raises(SystemExit, match="config.toml: no such file"):
        cli_main(["train", "--resume", "--out", str(tmp_path / "nothing")])
    with pytest.raises(SystemExit, match="leave out --config"):
        cli_main(["train", "--resume", "--out", str(tmp_path), "--config", "x.toml"])
    with pytest.raises(SystemExit, match="x.toml: no such file"):
        cli_main(["train", "--config", str(tmp_path / "x.toml")])
    run = tmp_path / "run"
    assert cli_main(["train", "--model", "mlp", "--epochs", "1", "--out", str(run)] + QUICK) == 0
    with pytest.raises(SystemExit, match="holds an earlier run"):
        cli_main(["train", "--model", "mlp", "--epochs", "1", "--out", str(run)] + QUICK)
    (run / "last.fastnn").unlink()
    with pytest.raises(SystemExit, match="last.fastnn: no such file"):
        cli_main(["train", "--resume", "--out", str(run)])


def test_resolve_rejects_overrides_naming_the_option():
    with pytest.raises(ConfigError, match="--limit must be at least 1, got 0"):
        resolve({}, {"data.limit": 0}, override_names={"data.limit": "--limit"})
    assert resolve({}, {"data.limit": None})["data"]["limit"] is None  # None: not given
    assert resolve({})["optimizer"]["lr"] == 0.05 and resolve({"optimizer": {"name": "adam"}})["optimizer"][
        "lr"] == 1e-3

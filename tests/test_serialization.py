import os

import numpy as np
import pytest

import fastnn
from fastnn import nn, optim


def test_save_load_round_trip_of_model_and_optimizer_state(tmp_path):
    model = nn.Sequential(nn.Linear(4, 3), nn.ReLU(), nn.Linear(3, 2))
    opt = optim.Adam(model.parameters(), lr=1e-2)
    model(fastnn.randn(5, 4)).sum().backward()
    opt.step()
    path = tmp_path / "ckpt.fastnn"
    fastnn.save({"model": model.state_dict(), "optimizer": opt.state_dict(), "epoch": 3}, path)
    blob = fastnn.load(path)
    assert blob["epoch"] == 3
    clone = nn.Sequential(nn.Linear(4, 3), nn.ReLU(), nn.Linear(3, 2))
    clone.load_state_dict(blob["model"])
    for a, b in zip(model.parameters(), clone.parameters()):
        np.testing.assert_array_equal(a.data, b.data)


def test_failed_save_keeps_the_previous_file(tmp_path):
    path = tmp_path / "ckpt.fastnn"
    fastnn.save({"w": fastnn.ones(3)}, path)
    with pytest.raises(Exception):
        fastnn.save({"bad": lambda: None}, path)  # lambdas cannot be pickled
    np.testing.assert_array_equal(fastnn.load(path)["w"].data, np.ones(3, np.float32))
    assert [p for p in os.listdir(tmp_path) if p.startswith(".fastnn-save-")] == []


def test_load_rejects_a_file_that_is_not_a_checkpoint(tmp_path):
    path = tmp_path / "junk"
    path.write_bytes(b"not a pickle")
    with pytest.raises(ValueError, match="not a fastnn checkpoint"):
        fastnn.load(path)


def test_dict_subclasses_survive_a_round_trip(tmp_path):
    from collections import Counter, defaultdict
    counts = defaultdict(list, {"a": [fastnn.ones(2)]})
    fastnn.save({"milestones": Counter({30: 1, 60: 2}), "lists": counts}, tmp_path / "c")
    blob = fastnn.load(tmp_path / "c")
    assert blob["milestones"] == Counter({30: 1, 60: 2}) and isinstance(blob["milestones"], Counter)
    assert blob["lists"]["missing"] == [] and blob["lists"]["a"][0].shape == (2,)

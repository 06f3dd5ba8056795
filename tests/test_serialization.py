"""fastnn.save / fastnn.load: the safetensors + JSON format, round trips of every model, optimizer and scheduler,
atomic writes (also under SIGKILL), and refusal of pickles, corrupted, truncated and foreign files."""
import collections
import inspect
import json
import os
import pickle
import signal
import subprocess
import sys
import textwrap
import time
import zipfile

import numpy as np
import pytest

import fastnn
from fastnn import models, nn, optim
from fastnn.nn.parameter import Parameter
from fastnn.optim import lr_scheduler
from fastnn.serialization import FORMAT, remap_state_dict

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _temps(directory):
    return [p for p in os.listdir(directory) if p.endswith(".fastnn-tmp") or p.startswith(".fastnn-save-")]


# ---- values and containers ---------------------------------------------------------------------------------------

def test_every_kind_of_value_round_trips_with_type_shape_and_dtype(tmp_path):
    big_endian = np.arange(6, dtype=">f4").reshape(2, 3)
    obj = {
        "scalar": fastnn.tensor(np.array(7, dtype=np.int64)),         # 0-d stays 0-d (issue 11, item 1)
        "empty": fastnn.tensor(np.zeros((0, 3), np.float32)),
        "half": fastnn.tensor(np.array([1.5, -2.0], np.float16)),
        "mask": fastnn.tensor(np.array([True, False])),
        "bytes": fastnn.tensor(np.arange(5, dtype=np.uint8)),
        "grad": fastnn.tensor(np.ones(2, np.float64), requires_grad=True),
        "param": Parameter(np.ones(3, np.float32)),
        "transposed": np.arange(12, dtype=np.float32).reshape(3, 4).T,  # not C-contiguous
        "big_endian": big_endian,
        "np_scalars": [np.float32(0.1), np.int64(-3), np.bool_(True)],
        "floats": [0.1, 1e-320, float("inf"), float("-inf"), 2.0 ** 100],
        "ints": [0, -1, 2 ** 127 + 5],  # PCG64 states are 128-bit ints
        "misc": (None, True, "ünïcode", b"\x00\xff", frozenset({1, 2}), {3}),
        "int_keys": {0: "a", 1: {"b": (1, 2)}}, ("tuple", 1): "tuple key",
        "ordered": collections.OrderedDict([("z", 1), ("a", 2)]),
        "counter": collections.Counter({30: 1, 60: 2}),
        "default": collections.defaultdict(list, {"a": [fastnn.ones(2)]}),
    }
    path = tmp_path / "values.fastnn"
    fastnn.save(obj, path)
    out = fastnn.load(path)
    assert out["scalar"].shape == () and out["scalar"].dtype == np.int64 and out["scalar"].item() == 7
    assert out["empty"].shape == (0, 3) and out["empty"].dtype == np.float32
    assert out["half"].dtype == np.float16 and out["half"].tolist() == [1.5, -2.0]
    assert out["mask"].dtype == np.bool_ and out["mask"].tolist() == [True, False]
    assert out["bytes"].dtype == np.uint8 and out["bytes"].tolist() == [0, 1, 2, 3, 4]
    assert out["grad"].requires_grad and out["grad"].dtype == np.float64
    assert isinstance(out["param"], Parameter) and out["param"].requires_grad
    assert not out["scalar"].requires_grad
    np.testing.assert_array_equal(out["transposed"], obj["transposed"])
    assert isinstance(out["transposed"], np.ndarray) and out["transposed"].shape == (4, 3)
    np.testing.assert_array_equal(out["big_endian"], big_endian)
    assert out["big_endian"].dtype == np.float32
    assert [type(v) for v in out["np_scalars"]] == [np.float32, np.int64, np.bool_]
    assert out["np_scalars"][0] == np.float32(0.1)
    assert out["floats"] == [0.1, 1e-320, float("inf"), float("-inf"), 2.0 ** 100]
    assert out["ints"] == [0, -1, 2 ** 127 + 5]
    assert out["misc"] == (None, True, "ünïcode", b"\x00\xff", frozenset({1, 2}), {3})
    assert out["int_keys"] == {0: "a", 1: {"b": (1, 2)}} and out[("tuple", 1)] == "tuple key"
    assert type(out["ordered"]) is collections.OrderedDict and list(out["ordered"]) == ["z", "a"]
    assert out["counter"] == collections.Counter({30: 1, 60: 2}) and type(out["counter"]) is collections.Counter
    assert out["default"]["missing"] == [] and out["default"]["a"][0].shape == (2,)
    nan = fastnn.load(_saved(tmp_path / "nan", [float("nan")]))[0]
    assert nan != nan


def _saved(path, obj):
    fastnn.save(obj, path)
    return path


def test_file_is_plain_safetensors_named_by_state_dict_keys(tmp_path):
    from safetensors.numpy import load_file
    from safetensors import safe_open
    model = models.resnet20(num_classes=10, in_channels=1)
    path = tmp_path / "resnet20.safetensors"
    fastnn.save(model.state_dict(), path)
    arrays = load_file(str(path))
    assert set(arrays) == set(model.state_dict())
    assert arrays["bn1.num_batches_tracked"].shape == () and arrays["bn1.num_batches_tracked"].dtype == np.int64
    np.testing.assert_array_equal(arrays["conv1.weight"], model.conv1.weight.detach().numpy())
    with safe_open(str(path), "np") as f:
        meta = f.metadata()
    assert meta["format"] == FORMAT == "fastnn-checkpoint-v2" and meta["fastnn_version"] == fastnn.__version__
    assert json.loads(meta["fastnn"])["$"] == "dict"
    nested = tmp_path / "nested"
    fastnn.save({"model": {"w": fastnn.ones(2)}, "model/w": fastnn.zeros(2)}, nested)  # colliding names
    out = fastnn.load(nested)
    assert out["model"]["w"].tolist() == [1, 1] and out["model/w"].tolist() == [0, 0]


@pytest.mark.parametrize("obj, where", [
    ({"fn": lambda: None}, "/fn"),
    ({"a": [1, object()]}, "/a/1"),
    ({"d": collections.defaultdict(lambda: 0)}, "/d"),
    (np.array(["x"], dtype=object), "top level"),
    (np.array([1 + 2j]), "top level"),
])
def test_unsupported_values_are_refused_naming_their_place(obj, where, tmp_path):
    path = tmp_path / "ckpt"
    fastnn.save({"w": fastnn.ones(3)}, path)
    with pytest.raises(TypeError, match="fastnn.save: cannot store") as info:
        fastnn.save(obj, path)
    assert where in str(info.value)
    np.testing.assert_array_equal(fastnn.load(path)["w"].numpy(), np.ones(3, np.float32))
    assert _temps(tmp_path) == []


def test_save_and_load_check_their_path_argument(tmp_path):
    with pytest.raises(TypeError, match="f must be a path"):
        fastnn.save({}, 3)
    with pytest.raises(TypeError, match="f must be a path"):
        fastnn.load(None)
    with pytest.raises(FileNotFoundError):
        fastnn.load(tmp_path / "missing")


# ---- every model, optimizer and scheduler ------------------------------------------------------------------------

MODEL_NAMES = sorted(n for n, f in vars(models).items()
                     if inspect.isfunction(f) and f.__module__.startswith("fastnn.models.") and not n.startswith("_"))
# Over ~12M parameters: each takes seconds to build and writes 50-350 MB, so they run with -m slow.
BIG_MODELS = {"alexnet", "zfnet", "densenet161", "densenet169", "densenet201", "preact_resnet34", "preact_resnet50",
              "preact_resnet101", "preact_resnet152", "resnet34", "resnet50", "resnet101", "resnet152",
              "resnext50_32x4d", "resnext101_32x8d", "se_resnet50", "wide_resnet50_2", "vgg16", "vgg16_bn",
              "vgg16_cifar", "vgg16_bn_cifar", "vgg19", "vgg19_bn", "vgg19_cifar", "vgg19_bn_cifar"}


def test_model_list_is_the_whole_zoo():
    assert len(MODEL_NAMES) >= 46 and BIG_MODELS < set(MODEL_NAMES)
    assert {"lenet5", "mlp", "resnet20", "resnet18", "densenet121", "googlenet", "vgg11_bn", "se_resnet18",
            "nin"} <= set(MODEL_NAMES) - BIG_MODELS


def _build(name):
    try:
        return getattr(models, name)(num_classes=10, small_input=True)
    except TypeError:  # lenet5, mlp and the *_cifar / resnet20-110 nets are small-input nets already
        return getattr(models, name)(num_classes=10)


@pytest.mark.parametrize("name", [pytest.param(n, marks=pytest.mark.slow) if n in BIG_MODELS else n
                                  for n in MODEL_NAMES])
def test_every_model_round_trips_through_save_and_load_state_dict(name, tmp_path):
    fastnn.manual_seed(0)
    model = _build(name)
    rng = np.random.default_rng(1)
    state = model.state_dict()
    for key, value in state.items():  # every entry, buffers and counters included, gets a value a fresh model lacks
        array = value.detach().numpy()
        array[...] = rng.integers(1, 100, array.shape) if array.dtype.kind in "iu" else rng.standard_normal(
            array.shape)
    path = tmp_path / f"{name}.fastnn"
    fastnn.save(model.state_dict(), path)
    loaded = fastnn.load(path)
    fastnn.manual_seed(1)
    clone = _build(name)
    assert clone.load_state_dict(loaded) == ([], [])
    clone_state = clone.state_dict()
    assert list(clone_state) == list(state)
    for key, value in state.items():
        got = clone_state[key].detach().numpy()
        assert got.shape == value.shape and got.dtype == value.dtype, key
        np.testing.assert_array_equal(got, value.detach().numpy(), err_msg=key)
    assert any(v.ndim == 0 for v in state.values()) == any(loaded[k].ndim == 0 for k in loaded)


OPTIMIZERS = [getattr(optim, n) for n in optim.__all__
              if isinstance(getattr(optim, n), type) and getattr(optim, n) is not optim.Optimizer]


@pytest.mark.parametrize("cls", OPTIMIZERS, ids=lambda c: c.__name__)
def test_every_optimizer_resumes_identically_from_a_file(cls, tmp_path):
    x = fastnn.tensor(np.random.default_rng(0).standard_normal((16, 5)).astype(np.float32))

    def make():
        fastnn.manual_seed(3)
        model = nn.Sequential(nn.Linear(5, 4), nn.BatchNorm1d(4), nn.Tanh(), nn.Linear(4, 1))
        if cls is optim.LBFGS:  # one parameter group only, as in PyTorch
            return model, cls(model.parameters(), lr=0.01)
        return model, cls([{"params": model[0].parameters()}, {"params": list(model[1].parameters()) +
                                                                list(model[3].parameters())}], lr=0.01)

    def steps(model, opt, n):
        def closure():
            opt.zero_grad()
            loss = (model(x) ** 2).mean()
            loss.backward()
            return loss
        for _ in range(n):
            opt.step(closure)

    model, opt = make()
    steps(model, opt, 3)
    fastnn.save({"model": model.state_dict(), "optimizer": opt.state_dict()}, tmp_path / "ckpt")
    steps(model, opt, 3)
    checkpoint = fastnn.load(tmp_path / "ckpt")
    resumed_model, resumed = make()
    resumed_model.load_state_dict(checkpoint["model"])
    resumed.load_state_dict(checkpoint["optimizer"])
    steps(resumed_model, resumed, 3)
    for a, b in zip(model.state_dict().values(), resumed_model.state_dict().values()):
        np.testing.assert_array_equal(a.numpy(), b.numpy())
    assert resumed.param_groups[-1]["lr"] == 0.01 and len(resumed.state) == len(opt.state) > 0


def test_every_scheduler_has_a_save_load_resume_test():
    # tests/test_lr_scheduler.py resumes each schedule from a fastnn.save file (saved mid-run, loaded into a
    # fresh optimizer + scheduler, identical continuation); this keeps that list complete.
    from test_lr_scheduler import RESUMABLE
    covered = {name.split()[0] for name, _ in RESUMABLE}
    assert set(lr_scheduler.__all__) - {"LRScheduler"} <= covered


# ---- atomic writes -----------------------------------------------------------------------------------------------

def test_file_mode_follows_the_umask(tmp_path):
    old = os.umask(0o027)
    try:
        fastnn.save({"w": fastnn.ones(2)}, tmp_path / "a")
        os.umask(0o002)
        fastnn.save({"w": fastnn.ones(2)}, tmp_path / "b")
    finally:
        os.umask(old)
    assert os.stat(tmp_path / "a").st_mode & 0o777 == 0o640
    assert os.stat(tmp_path / "b").st_mode & 0o777 == 0o664


def test_an_exception_while_writing_removes_the_temp_file_and_keeps_the_old_file(tmp_path, monkeypatch):
    import safetensors.numpy
    path = tmp_path / "ckpt"
    fastnn.save({"w": fastnn.ones(3)}, path)

    def failing(*args, **kwargs):
        assert len(_temps(tmp_path)) == 1  # the temp file exists while the bytes are produced
        raise KeyboardInterrupt

    monkeypatch.setattr(safetensors.numpy, "save", failing)
    with pytest.raises(KeyboardInterrupt):
        fastnn.save({"w": fastnn.zeros(3)}, path)
    assert _temps(tmp_path) == []
    np.testing.assert_array_equal(fastnn.load(path)["w"].numpy(), np.ones(3, np.float32))


def test_temp_files_of_dead_processes_are_cleaned_and_live_ones_kept(tmp_path):
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    stale = tmp_path / f".ckpt.{dead.pid}.fastnn-tmp"
    live = tmp_path / f".ckpt.{os.getppid()}.fastnn-tmp"  # our parent runs
    other = tmp_path / f".other.{dead.pid}.fastnn-tmp"   # another target's temp is not ours to remove
    for p in (stale, live, other):
        p.write_bytes(b"x" * 100)
    fastnn.save({"w": fastnn.ones(1)}, tmp_path / "ckpt")
    assert sorted(_temps(tmp_path)) == sorted([live.name, other.name])


_KILLED_SAVER = textwrap.dedent("""
    import sys, numpy as np, fastnn
    path, i = sys.argv[1], int(sys.argv[2])
    while True:  # 8 MB checkpoints, each filled with its own number
        i += 1
        fastnn.save({"i": i, "w": fastnn.tensor(np.full(2_000_000, i, dtype=np.float32))}, path)
        print(i, flush=True)
""")


def test_a_save_killed_at_random_moments_leaves_the_previous_checkpoint_loadable(tmp_path):
    path = tmp_path / "ckpt.fastnn"
    fastnn.save({"i": 0, "w": fastnn.tensor(np.zeros(2_000_000, np.float32))}, path)
    rng = np.random.default_rng(0)
    env = dict(os.environ, PYTHONPATH=REPO)
    last, interrupted = 0, 0
    for _ in range(5):
        proc = subprocess.Popen([sys.executable, "-c", _KILLED_SAVER, str(path), str(last * 1000)],
                                stdout=subprocess.PIPE, env=env)
        done = int(proc.stdout.readline())  # one save of this process completed: the file holds i >= done
        time.sleep(rng.uniform(0.0, 0.4))   # then kill it at a random moment of the following saves
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
        proc.stdout.close()
        blob = fastnn.load(path)  # never a half-written file
        w = blob["w"].numpy()
        assert w.shape == (2_000_000,) and w[0] == w[-1] == blob["i"] >= done
        last = blob["i"]
        left = len(_temps(tmp_path))
        assert left <= 1  # at most the killed process's own temp file
        interrupted += left
    assert interrupted >= 1  # some kills did land inside a save (the saves run back to back)
    fastnn.save(blob, path)  # the next save removes what the last killed process left
    assert _temps(tmp_path) == []


# ---- refusing what is not a fastnn checkpoint --------------------------------------------------------------------

def _v1_file(path, payload):
    """A checkpoint as fastnn 0.1's save wrote it (serialization.py at commit 50b0344)."""
    with open(path, "wb") as f:
        pickle.dump({"format": "fastnn-checkpoint-v1", "payload": payload}, f, protocol=pickle.HIGHEST_PROTOCOL)


def test_v1_pickle_is_refused_by_default_and_converts_with_allow_pickle(tmp_path):
    path = tmp_path / "old.fastnn"
    w = np.arange(6, dtype=np.float32).reshape(2, 3)
    _v1_file(path, {"model": collections.OrderedDict(w={"__fastnn_tensor__": w, "requires_grad": False}),
                    "epoch": 3, "milestones": collections.Counter({30: 1}),
                    "state": collections.defaultdict(dict, {0: {"step": 2}})})
    with pytest.raises(ValueError) as info:
        fastnn.load(path)
    message = str(info.value)
    assert str(path) in message and "fastnn 0.1" in message and "allow_pickle=True" in message
    blob = fastnn.load(path, allow_pickle=True)
    np.testing.assert_array_equal(blob["model"]["w"].numpy(), w)
    assert blob["epoch"] == 3 and blob["milestones"] == collections.Counter({30: 1}) and blob["state"][0]["step"] == 2
    fastnn.save(blob, path)  # converted: now loads without allow_pickle
    again = fastnn.load(path)
    np.testing.assert_array_equal(again["model"]["w"].numpy(), w)
    assert again["milestones"] == collections.Counter({30: 1})


class _Payload:
    """A pickle that creates a file when unpickled."""

    def __init__(self, target):
        self.target = target

    def __reduce__(self):
        return (open, (self.target, "w"))


@pytest.mark.parametrize("wrapped_in_v1", [False, True])
def test_a_malicious_pickle_never_runs(wrapped_in_v1, tmp_path):
    target = tmp_path / "pwned"
    path = tmp_path / "evil.fastnn"
    if wrapped_in_v1:
        _v1_file(path, {"model": _Payload(str(target))})
    else:
        path.write_bytes(pickle.dumps(_Payload(str(target))))
    with pytest.raises(ValueError, match="refused"):
        fastnn.load(path)
    with pytest.raises(ValueError, match="not allowed with weights_only"):
        fastnn.load(path, allow_pickle=True)  # weights_only (the default) unpickles no functions
    with pytest.raises(ValueError, match="not allowed with weights_only"):
        fastnn.load(path, allow_pickle=True, weights_only=True)
    assert not target.exists()


def test_a_pytorch_zip_checkpoint_with_code_is_refused_unrun(tmp_path):
    target = tmp_path / "pwned"
    path = tmp_path / "model.pt"
    with zipfile.ZipFile(path, "w") as z:  # torch.save's layout
        z.writestr("model/data.pkl", pickle.dumps(_Payload(str(target))))
        z.writestr("model/version", "3\n")
        z.writestr("model/data/0", b"\0" * 16)
    with pytest.raises(ValueError, match="refusing to load the global") as info:
        fastnn.load(path, allow_pickle=True, weights_only=False)
    assert str(path) in str(info.value)
    assert not target.exists()


@pytest.mark.parametrize("cut", [0, 3, 8, 30, 200, -100, -1])
def test_truncated_files_are_refused_naming_the_path(cut, tmp_path):
    path = tmp_path / "ckpt.fastnn"
    fastnn.save({"model": models.lenet5().state_dict(), "epoch": 1}, path)
    data = path.read_bytes()
    path.write_bytes(data[:cut] if cut >= 0 else data[:len(data) + cut])
    with pytest.raises(ValueError) as info:
        fastnn.load(path)
    assert str(path) in str(info.value)
    assert any(word in str(info.value) for word in ("truncated", "corrupted", "expected a fastnn checkpoint"))


def test_corrupted_and_foreign_files_are_refused_naming_the_path(tmp_path):
    good = tmp_path / "good"
    fastnn.save({"w": fastnn.ones(4), "epoch": 2}, good)
    data = bytearray(good.read_bytes())
    header_len = int.from_bytes(data[:8], "little")
    cases = {
        "random": np.random.default_rng(0).bytes(1000),
        "text": b"not a checkpoint at all, just some text that is long enough",
        "empty": b"",
        "npy": b"\x93NUMPY\x01\x00" + b" " * 100,
        "header_json": bytes(data[:9]) + b"!" + bytes(data[10:]),                          # broken JSON
        "metadata": bytes(data).replace(b'"format":"fastnn-checkpoint-v2"', b'"format":"fastnn-checkpoint-v9"'),
        "offsets": bytes(data).replace(b'"data_offsets":[0,16]', b'"data_offsets":[0,99]'),
        "tree": bytes(data).replace(b'\\"key\\":\\"w\\"', b'\\"key\\":\\"v\\"'),              # dangling tensor
    }
    assert cases["metadata"] != bytes(data) and cases["offsets"] != bytes(data) and cases["tree"] != bytes(data)
    assert header_len > 50
    for name, blob in cases.items():
        path = tmp_path / name
        path.write_bytes(blob)
        with pytest.raises(ValueError) as info:
            fastnn.load(path)
        assert str(path) in str(info.value), (name, info.value)
    assert "unsupported fastnn checkpoint format 'fastnn-checkpoint-v9'" in _error(tmp_path / "metadata")
    assert "NumPy .npy" in _error(tmp_path / "npy")
    assert "truncated" in _error(tmp_path / "offsets") and "truncated" in _error(tmp_path / "empty")


def _error(path):
    with pytest.raises(ValueError) as info:
        fastnn.load(path)
    return str(info.value)


# ---- foreign weights, key maps, map_location ---------------------------------------------------------------------

def test_foreign_safetensors_weights_load_through_a_key_map(tmp_path):
    from safetensors.numpy import save_file
    fastnn.manual_seed(0)
    model = nn.Sequential(nn.Linear(4, 3), nn.ReLU(), nn.Linear(3, 2))
    foreign = {f"module.layers.{i}.{k}": v.detach().numpy().copy()
               for (i, k, v) in [(0, "weight", model[0].weight), (0, "bias", model[0].bias),
                                 (2, "weight", model[2].weight), (2, "bias", model[2].bias)]}
    foreign["module.extra"] = np.zeros(1, np.float32)
    path = tmp_path / "foreign.safetensors"
    save_file(foreign, str(path))
    raw = fastnn.load(path)
    assert type(raw) is collections.OrderedDict and set(raw) == set(foreign)

    def rename(key):
        return None if key == "module.extra" else key.removeprefix("module.layers.")
    clone = nn.Sequential(nn.Linear(4, 3), nn.ReLU(), nn.Linear(3, 2))
    assert clone.load_state_dict(fastnn.load(path, key_map=rename)) == ([], [])
    for a, b in zip(model.parameters(), clone.parameters()):
        np.testing.assert_array_equal(a.detach().numpy(), b.detach().numpy())
    # strict=False reports what does not match instead of failing.
    partial = fastnn.load(path, key_map={"module.layers.0.weight": "0.weight", "module.extra": None})
    result = nn.Sequential(nn.Linear(4, 3), nn.ReLU(), nn.Linear(3, 2)).load_state_dict(partial, strict=False)
    assert result.missing_keys == ["0.weight", "0.bias", "2.weight", "2.bias"][1:]
    assert sorted(result.unexpected_keys) == ["module.layers.0.bias", "module.layers.2.bias",
                                              "module.layers.2.weight"]


def test_remap_state_dict_checks_its_arguments():
    sd = collections.OrderedDict([("a.w", 1), ("b.w", 2)])
    assert remap_state_dict(sd, {"a.w": "x"}) == collections.OrderedDict([("x", 1), ("b.w", 2)])
    assert fastnn.nn.utils.remap_state_dict is remap_state_dict
    with pytest.raises(ValueError, match="maps both 'a.w' and 'b.w' to 'w'"):
        remap_state_dict(sd, lambda k: "w")
    with pytest.raises(TypeError, match="key_map must be a dict or a callable"):
        remap_state_dict(sd, 3)
    with pytest.raises(TypeError, match="state_dict must be a dict"):
        remap_state_dict([1], {})


def test_map_location_and_weights_only_keywords(tmp_path):
    path = _saved(tmp_path / "c", {"w": fastnn.ones(2), "n": 1})
    for kwargs in ({"map_location": "cpu"}, {"map_location": {"cpu": "cpu"}}, {"weights_only": True},
                   {"weights_only": False}):
        out = fastnn.load(path, **kwargs)
        assert out["w"].device == "cpu" and out["w"].tolist() == [1, 1] and out["n"] == 1
    seen = []
    out = fastnn.load(path, map_location=lambda t, device: seen.append(device) or t * 2)
    assert seen == ["cpu"] and out["w"].tolist() == [2, 2]
    with pytest.raises(TypeError, match="weights_only must be None, True or False"):
        fastnn.load(path, weights_only="yes")


def test_a_safetensors_dtype_numpy_cannot_hold_is_named(tmp_path):
    header = json.dumps({"w": {"dtype": "BF16", "shape": [2], "data_offsets": [0, 4]}}).encode()
    path = tmp_path / "bf16.safetensors"
    path.write_bytes(len(header).to_bytes(8, "little") + header + b"\0" * 4)
    with pytest.raises(ValueError, match="tensor 'w' has dtype 'BF16', which NumPy \\(and so fastnn\\) cannot hold"):
        fastnn.load(path)


def test_file_objects_and_numpy_scalar_types(tmp_path):
    import io
    buffer = io.BytesIO()
    fastnn.save({"w": fastnn.ones(3), "x": np.float64(0.25), "y": 0.25}, buffer)
    buffer.seek(0)
    out = fastnn.load(buffer)
    assert out["w"].tolist() == [1, 1, 1] and type(out["x"]) is np.float64 and type(out["y"]) is float
    with open(tmp_path / "f", "wb") as f:
        fastnn.save([fastnn.zeros(2)], f)
    with open(tmp_path / "f", "rb") as f:
        assert fastnn.load(f)[0].tolist() == [0, 0]
    with open(tmp_path / "f", "rb") as f:
        assert fastnn.load(tmp_path / "f")[0].shape == (2,)
    with pytest.raises(ValueError, match="<file object>.*truncated"):
        fastnn.load(io.BytesIO(b"\x01\x02"))
    with open(tmp_path / "f", "r", encoding="latin-1") as f, pytest.raises(TypeError, match="binary mode"):
        fastnn.load(f)

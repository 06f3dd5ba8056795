"""Reading PyTorch checkpoints without torch: files built here with the format's own structure (a pickle of
rebuild calls over raw storages, in a zip or the legacy stream), malicious payloads refused, and, when torch
happens to be importable, files torch.save wrote."""
import collections
import io
import pickle
import struct
import zipfile

import numpy as np
import pytest

import fastnn
from fastnn import torch_format


class G:
    """A global the emitter writes as GLOBAL module.name without importing it."""
    def __init__(self, module, name):
        self.module, self.name, self.__name__ = module, name, name

    def __call__(self, *args):
        raise AssertionError("never called")


class R:
    def __init__(self, func, args):
        self.func, self.args = func, args


class P:
    def __init__(self, pid):
        self.pid = pid


class Emitter(pickle._Pickler):
    dispatch = pickle._Pickler.dispatch.copy()

    def save_global_ref(self, obj):
        self.write(pickle.GLOBAL + f"{obj.module}\n{obj.name}\n".encode())
    dispatch[G] = save_global_ref

    def reducer_override(self, obj):
        return (obj.func, obj.args) if isinstance(obj, R) else NotImplemented

    def persistent_id(self, obj):
        return obj.pid if isinstance(obj, P) else None


def dumps(obj):
    buf = io.BytesIO()
    Emitter(buf, protocol=2).dump(obj)
    return buf.getvalue()


STORAGE = {np.float32: "FloatStorage", np.float64: "DoubleStorage", np.int64: "LongStorage", np.uint8: "ByteStorage"}


def tensor_ref(key, storage_dtype, numel, offset, size, stride, parameter=False):
    pid = P(("storage", G("torch", STORAGE[storage_dtype]), key, "cpu", numel))
    t = R(G("torch._utils", "_rebuild_tensor_v2"),
          (pid, offset, tuple(size), tuple(stride), False, R(G("collections", "OrderedDict"), ())))
    if parameter:
        return R(G("torch._utils", "_rebuild_parameter"), (t, True, R(G("collections", "OrderedDict"), ())))
    return t


def zip_file(obj, storages):
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        z.writestr("archive/data.pkl", dumps(obj))
        z.writestr("archive/byteorder", "little")
        for key, array in storages.items():
            z.writestr(f"archive/data/{key}", array.tobytes())
        z.writestr("archive/version", "3\n")
    return buf.getvalue()


def legacy_file(obj, storages):
    parts = [dumps(0x1950a86a20f9469cfc6c), dumps(1001),
             dumps({"protocol_version": 1001, "little_endian": True, "type_sizes": {"int": 4}}), dumps(obj),
             dumps(list(storages))]
    for array in storages.values():
        parts.append(struct.pack("<q", array.size) + array.tobytes())
    return b"".join(parts)


def sample():
    """A state dict with a contiguous weight, a transposed view and a row view of one storage, an int buffer."""
    w = np.arange(6, dtype=np.float32)
    n = np.array([7], dtype=np.int64)
    items = {"weight": tensor_ref("0", np.float32, 6, 0, (2, 3), (3, 1), parameter=True),
             "weight_t": tensor_ref("0", np.float32, 6, 0, (3, 2), (1, 3)),
             "row": tensor_ref("0", np.float32, 6, 3, (3,), (1,)),
             "num_batches_tracked": tensor_ref("1", np.int64, 1, 0, (), ())}
    # An OrderedDict pickles as a reference to collections.OrderedDict plus SETITEMS, as torch.save writes it.
    return collections.OrderedDict(items), {"0": w, "1": n}


@pytest.mark.parametrize("writer", [zip_file, legacy_file])
def test_reads_dtypes_shapes_strides_and_shared_storage(tmp_path, writer):
    obj, storages = sample()
    path = tmp_path / "model.pt"
    path.write_bytes(writer(obj, storages))
    sd = torch_format.load(path)
    assert list(sd) == ["weight", "weight_t", "row", "num_batches_tracked"]
    assert isinstance(sd["weight"], fastnn.nn.Parameter) and sd["weight"].requires_grad
    np.testing.assert_array_equal(sd["weight"].detach().numpy(), [[0, 1, 2], [3, 4, 5]])
    np.testing.assert_array_equal(sd["weight_t"].numpy(), [[0, 3], [1, 4], [2, 5]])
    np.testing.assert_array_equal(sd["row"].numpy(), [3, 4, 5])
    assert sd["num_batches_tracked"].shape == () and sd["num_batches_tracked"].dtype == np.int64
    assert sd["num_batches_tracked"].item() == 7
    # One storage in PyTorch, one memory here: the views see each other's writes.
    sd["row"].data[0] = 30.0
    assert sd["weight"].detach().numpy()[1, 0] == 30.0 and sd["weight_t"].numpy()[0, 1] == 30.0


def test_malicious_global_is_refused_without_running(tmp_path):
    target = tmp_path / "pwned"
    payload = {"x": R(G("os", "system"), (f"touch {target}",))}
    for data in (zip_file(payload, {}), legacy_file(payload, {})):
        path = tmp_path / "evil.pt"
        path.write_bytes(data)
        with pytest.raises(pickle.UnpicklingError, match="refusing to load the global os.system"):
            torch_format.load(path)
        assert not target.exists()


def test_layout_past_the_storage_and_truncated_files_are_refused(tmp_path):
    obj = {"x": tensor_ref("0", np.float32, 4, 2, (3,), (1,))}
    path = tmp_path / "bad.pt"
    path.write_bytes(zip_file(obj, {"0": np.zeros(4, np.float32)}))
    with pytest.raises(torch_format.TorchFormatError, match="reaches past its storage"):
        torch_format.load(path)
    good_obj, storages = sample()
    data = legacy_file(good_obj, storages)
    path.write_bytes(data[:-5])
    with pytest.raises(torch_format.TorchFormatError, match="truncated|not a readable"):
        torch_format.load(path)


def test_files_written_by_torch_when_it_is_installed(tmp_path):
    torch = pytest.importorskip("torch")
    base = torch.arange(12, dtype=torch.float64).reshape(3, 4)
    sd = collections.OrderedDict(a=base, b=base.t(), c=base[1], p=torch.nn.Parameter(torch.ones(2)),
                                 i=torch.tensor(5), h=torch.ones(2, dtype=torch.float16),
                                 bf=torch.tensor([1.5, -2.0], dtype=torch.bfloat16))
    for new_format in (True, False):
        path = tmp_path / f"t{new_format}.pt"
        torch.save(sd, path, _use_new_zipfile_serialization=new_format)
        got = torch_format.load(path)
        for key, value in sd.items():
            expected = value.detach().float().numpy() if value.dtype == torch.bfloat16 else value.detach().numpy()
            np.testing.assert_array_equal(got[key].detach().numpy(), expected)
        assert isinstance(got["p"], fastnn.nn.Parameter)


def test_fastnn_load_reads_pytorch_files_and_maps_keys(tmp_path):
    obj, storages = sample()
    path = tmp_path / "weights.pth"
    path.write_bytes(zip_file(obj, storages))
    sd = fastnn.load(path, key_map={"weight": "fc.weight", "weight_t": None, "row": None,
                                    "num_batches_tracked": None})
    assert list(sd) == ["fc.weight"]
    np.testing.assert_array_equal(sd["fc.weight"].detach().numpy(), [[0, 1, 2], [3, 4, 5]])
    path.write_bytes(legacy_file(obj, storages))
    assert fastnn.load(path)["num_batches_tracked"].item() == 7


def test_resnet18_weights_saved_by_pytorch_give_the_same_logits(tmp_path):
    torch = pytest.importorskip("torch")
    import sys
    sys.path.insert(0, str(__import__("pathlib").Path(__file__).resolve().parents[1] / "bench"))
    try:
        from _torch_models import resnet18 as torch_resnet18  # torchvision's layout, keys and shapes
    finally:
        sys.path.pop(0)
    torch.manual_seed(0)
    reference = torch_resnet18(torch, num_classes=10).eval()
    with torch.no_grad():  # non-trivial BatchNorm statistics
        for module in reference.modules():
            if isinstance(module, torch.nn.BatchNorm2d):
                module.running_mean.uniform_(-0.1, 0.1)
                module.running_var.uniform_(0.5, 1.5)
    path = tmp_path / "resnet18.pth"
    torch.save(reference.state_dict(), path)
    model = fastnn.models.resnet18(num_classes=10).eval()
    # The bench twin names torchvision's layer1..layer4 "stages.0".."stages.3": a key map translates, as it would
    # for weights from any framework with other names.
    import re
    rename = lambda key: re.sub(r"^stages\.(\d)", lambda m: f"layer{int(m.group(1)) + 1}", key)  # noqa: E731
    model.load_state_dict(fastnn.load(path, key_map=rename))
    x = np.random.default_rng(0).standard_normal((2, 3, 64, 64)).astype(np.float32)
    with torch.no_grad():
        expected = reference(torch.from_numpy(x)).numpy()
    with fastnn.no_grad():
        got = model(fastnn.tensor(x)).numpy()
    np.testing.assert_allclose(got, expected, rtol=1e-4, atol=1e-4)

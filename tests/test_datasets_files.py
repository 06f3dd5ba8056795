"""CIFAR10 (restricted unpickling of the python batches) and ImageFolder on files written here."""
import io
import os
import pickle

import numpy as np
import pytest

from fastnn.data import CIFAR10, DataLoader, ImageFolder, transforms as T
from fastnn.data.datasets import _numpy_reconstruct

LABEL_NAMES = [b"airplane", b"automobile", b"bird", b"cat", b"deer", b"dog", b"frog", b"horse", b"ship", b"truck"]


class _Python2Pickler(pickle._Pickler):
    """Writes what Python 2's cPickle wrote for the CIFAR files at protocol 2: byte strings as (SHORT_)BINSTRING
    opcodes (not Python 3's _codecs.encode call) and numpy's _reconstruct under numpy.core.multiarray."""
    dispatch = pickle._Pickler.dispatch.copy()

    def save_py2_str(self, obj):
        if len(obj) < 256:
            self.write(pickle.SHORT_BINSTRING + bytes([len(obj)]) + obj)
        else:
            self.write(pickle.BINSTRING + len(obj).to_bytes(4, "little") + obj)
        self.memoize(obj)
    dispatch[bytes] = save_py2_str

    def save_global(self, obj, name=None):
        if obj is _numpy_reconstruct():
            self.write(pickle.GLOBAL + b"numpy.core.multiarray\n_reconstruct\n")
            self.memoize(obj)
        else:
            super().save_global(obj, name)


def _dump_py2(obj, path):
    buffer = io.BytesIO()
    _Python2Pickler(buffer, protocol=2).dump(obj)
    path.write_bytes(buffer.getvalue())


def _write_cifar(root, counts=(3, 2, 2, 1, 2), test_count=4, seed=0, python3=False):
    """Synthetic CIFAR-10 python batches: returns {file name: (data (N, 3072) uint8, labels)}."""
    folder = root / "cifar-10-batches-py"
    folder.mkdir(parents=True)
    rng = np.random.default_rng(seed)
    written = {}
    names = [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]
    for name, count in zip(names, list(counts) + [test_count]):
        data = rng.integers(0, 256, (count, 3072), dtype=np.uint8)
        labels = rng.integers(0, 10, count).tolist()
        content = {b"batch_label": name.encode(), b"labels": labels, b"data": data,
                   b"filenames": [f"img{i}.png".encode() for i in range(count)]}
        if python3:  # Python 3 pickling bytes at protocol 2 goes through _codecs.encode
            (folder / name).write_bytes(pickle.dumps(content, protocol=2))
        else:
            _dump_py2(content, folder / name)
        written[name] = (data, labels)
    _dump_py2({b"num_cases_per_batch": 10000, b"label_names": LABEL_NAMES, b"num_vis": 3072},
              folder / "batches.meta")
    return written


@pytest.mark.parametrize("python3", [False, True])
def test_cifar10_reads_python_batches(tmp_path, python3):
    written = _write_cifar(tmp_path, python3=python3)
    raw = (tmp_path / "cifar-10-batches-py" / "data_batch_1").read_bytes()
    assert raw[:2] == b"\x80\x02" and (b"cnumpy.core.multiarray\n_reconstruct" in raw) != python3
    train = CIFAR10(tmp_path)
    data = np.concatenate([written[f"data_batch_{i}"][0] for i in range(1, 6)])
    labels = sum((written[f"data_batch_{i}"][1] for i in range(1, 6)), [])
    assert len(train) == 10 and train.data.shape == (10, 32, 32, 3) and train.data.dtype == np.uint8
    # the row layout: 1024 red, then 1024 green, then 1024 blue values, each row-major over 32 x 32
    np.testing.assert_array_equal(train.data[4, 5, 7], data[4, [5 * 32 + 7, 1024 + 5 * 32 + 7, 2048 + 5 * 32 + 7]])
    np.testing.assert_array_equal(train.data, data.reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1))
    assert train.targets.tolist() == labels and train.targets.dtype == np.int64
    assert train.classes[0] == "airplane" and train.class_to_idx["truck"] == 9
    test = CIFAR10(tmp_path / "cifar-10-batches-py", train=False)  # the batches folder itself also works
    np.testing.assert_array_equal(test.data, written["test_batch"][0].reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1))
    image, label = train[3]
    assert image.shape == (32, 32, 3) and label == labels[3]


def test_cifar10_transforms_through_the_loader(tmp_path):
    _write_cifar(tmp_path)
    pipeline = T.Compose([T.ToTensor(), T.Normalize((0.5, 0.5, 0.5), (0.25, 0.25, 0.25))])
    ds = CIFAR10(tmp_path, transform=pipeline, target_transform=lambda t: t + 1)
    images, targets = next(iter(DataLoader(ds, batch_size=4)))
    assert images.shape == (4, 3, 32, 32) and images.dtype == np.float32
    expected = (ds.data[:4].transpose(0, 3, 1, 2) / np.float32(255) - np.float32(0.5)) / np.float32(0.25)
    np.testing.assert_allclose(images.detach().numpy(), expected, rtol=1e-6, atol=1e-6)
    assert targets.detach().numpy().tolist() == (ds.targets[:4] + 1).tolist()
    np.testing.assert_array_equal(ds[2][0].detach().numpy(), images.detach().numpy()[2])


def test_cifar10_missing_files_and_download(tmp_path):
    with pytest.raises(FileNotFoundError, match="(?s)cifar-10-batches-py lacks data_batch_1.*batches.meta.*"
                                                 "cifar-10-python.tar.gz"):
        CIFAR10(tmp_path)
    with pytest.raises(RuntimeError, match="does not download"):
        CIFAR10(tmp_path, download=True)
    _write_cifar(tmp_path)
    os.remove(tmp_path / "cifar-10-batches-py" / "test_batch")
    with pytest.raises(FileNotFoundError, match="lacks test_batch"):
        CIFAR10(tmp_path, train=False)
    assert len(CIFAR10(tmp_path, download=True)) == 10  # files present: nothing to fetch


class _CreatesFile:
    def __init__(self, path):
        self.path = path

    def __reduce__(self):
        return open, (self.path, "w")


class _SubclassedArray(np.ndarray):
    pass


def test_cifar10_refuses_anything_but_the_batch_structure(tmp_path):
    _write_cifar(tmp_path)
    batch = tmp_path / "cifar-10-batches-py" / "data_batch_3"
    victim = tmp_path / "pwned.txt"
    batch.write_bytes(pickle.dumps({b"data": _CreatesFile(str(victim)), b"labels": []}, protocol=2))
    with pytest.raises(ValueError, match=r"data_batch_3.*refusing to load global (io|builtins)\.open"):
        CIFAR10(tmp_path)
    assert not victim.exists()
    # the same payload loads (and creates the file) with plain pickle: the refusal is what stopped it
    pickle.loads(batch.read_bytes())[b"data"].close()
    assert victim.exists()
    cases = [(pickle.dumps({b"data": np.array([object()], dtype=object), b"labels": []}, protocol=2),
              "refusing dtype object"),
             (pickle.dumps({b"data": np.zeros((1, 3072), np.uint8).view(_SubclassedArray), b"labels": [0]},
                           protocol=2), "refusing"),
             (pickle.dumps([1, 2], protocol=2), "expected a pickled dict"),
             (b"\x80\x02}q\x00", "not a CIFAR batch file"),
             (pickle.dumps({b"data": np.zeros((2, 3072), np.float32), b"labels": [0, 1]}, protocol=2),
              r"uint8 \(N, 3072\)"),
             (pickle.dumps({b"data": np.zeros((2, 3072), np.uint8), b"labels": [0]}, protocol=2),
              "2 images but 1 labels"),
             (pickle.dumps({b"data": np.zeros((1, 3072), np.uint8), b"labels": [10]}, protocol=2),
              r"labels outside \[0, 10\)")]
    for payload, message in cases:
        batch.write_bytes(payload)
        with pytest.raises(ValueError, match=message):
            CIFAR10(tmp_path)


# ---- ImageFolder --------------------------------------------------------------------------------------------

def _write_images(root):
    Image = pytest.importorskip("PIL.Image")
    rng = np.random.default_rng(0)
    written = {}
    for class_name, files in {"dog": ["b.png", "a.PNG", "sub/c.png"], "cat": ["z.png", "notes.txt"],
                              "bird": ["x.jpg"]}.items():
        for name in files:
            path = root / class_name / name
            path.parent.mkdir(parents=True, exist_ok=True)
            if name.endswith(".txt"):
                path.write_text("not an image")
                continue
            pixels = rng.integers(0, 256, (5, 4, 3), dtype=np.uint8)
            Image.fromarray(pixels).save(path, format="JPEG" if name.endswith(".jpg") else "PNG")
            written[str(path)] = pixels
    return written


def test_image_folder_like_torchvision(tmp_path):
    written = _write_images(tmp_path)
    ds = ImageFolder(tmp_path)
    assert ds.classes == ["bird", "cat", "dog"] and ds.class_to_idx == {"bird": 0, "cat": 1, "dog": 2}
    expected_paths = [tmp_path / "bird/x.jpg", tmp_path / "cat/z.png", tmp_path / "dog/a.PNG",
                      tmp_path / "dog/b.png", tmp_path / "dog/sub/c.png"]
    assert ds.samples == [(str(p), t) for p, t in zip(expected_paths, [0, 1, 2, 2, 2])]
    assert ds.targets == [0, 1, 2, 2, 2] and ds.imgs is ds.samples and len(ds) == 5
    image, target = ds[3]
    assert target == 2 and image.dtype == np.uint8
    np.testing.assert_array_equal(image, written[str(tmp_path / "dog/b.png")])  # PNG is lossless
    jpeg, _ = ds[0]
    assert jpeg.shape == (5, 4, 3)
    batch_images, batch_targets = next(iter(DataLoader(ImageFolder(tmp_path, transform=T.ToTensor()),
                                                       batch_size=5, num_workers=2)))
    assert batch_images.shape == (5, 3, 5, 4) and batch_targets.detach().numpy().tolist() == [0, 1, 2, 2, 2]
    only_b = ImageFolder(tmp_path / "dog", is_valid_file=lambda p: p.endswith("c.png"))
    assert only_b.classes == ["sub"] and len(only_b) == 1
    with pytest.raises(FileNotFoundError, match="Found no valid file for the classes bird, cat"):
        ImageFolder(tmp_path, is_valid_file=lambda p: "dog" in p)
    with pytest.raises(FileNotFoundError, match="not a directory"):
        ImageFolder(tmp_path / "missing")
    custom = ImageFolder(tmp_path, loader=lambda path: os.path.basename(path))
    assert custom[4] == ("c.png", 2)

"""fastnn.data: IDX files, Fashion-MNIST sources, data sets, DataLoader, transforms."""
import collections
import gzip
import time

import numpy as np
import pytest

import fastnn
from fastnn.data import (ConcatDataset, DataLoader, Dataset, FashionMNIST, Subset, TensorDataset, default_collate,
                         fashion_mnist_arrays, random_split, read_idx, write_idx)
from fastnn.data import datasets as fmnist_module
from fastnn.data import transforms as T

DEBIAN_FILES_PRESENT = (fmnist_module.DEBIAN_DIR / "train-images-idx3-ubyte.gz").is_file()
needs_debian = pytest.mark.skipif(not DEBIAN_FILES_PRESENT, reason="dataset-fashion-mnist not installed")


# ---- IDX files ----------------------------------------------------------------------------------------------

@pytest.mark.parametrize("suffix", ["", ".gz"])
@pytest.mark.parametrize("dtype,shape", [(np.uint8, (5, 28, 28)), (np.uint8, (7,)), (np.int8, (3, 4)),
                                         (np.int16, (2, 3, 4)), (np.int32, (6,)), (np.float32, (2, 2, 2, 2)),
                                         (np.float64, (3, 1)), (np.uint8, (0, 28, 28))])
def test_idx_round_trip(tmp_path, suffix, dtype, shape):
    rng = np.random.default_rng(0)
    if np.dtype(dtype).kind == "f":
        array = rng.standard_normal(shape).astype(dtype)
    else:
        info = np.iinfo(dtype)
        array = rng.integers(info.min, info.max, size=shape, endpoint=True).astype(dtype)
    path = tmp_path / ("array-idx" + suffix)
    write_idx(path, array)
    back = read_idx(path)
    assert back.dtype == np.dtype(dtype) and back.dtype.isnative
    assert back.shape == shape
    np.testing.assert_array_equal(back, array)
    assert back.flags.writeable


def test_idx_header_bytes_are_big_endian(tmp_path):
    path = tmp_path / "labels-idx1-ubyte"
    write_idx(path, np.array([3, 1, 4], dtype=np.uint8))
    assert path.read_bytes() == bytes([0, 0, 0x08, 1, 0, 0, 0, 3, 3, 1, 4])
    write_idx(path, np.array([258], dtype=np.int32))
    assert path.read_bytes() == bytes([0, 0, 0x0C, 1, 0, 0, 0, 1, 0, 0, 1, 2])
    np.testing.assert_array_equal(read_idx(path), [258])


def test_idx_gzip_detected_by_content_not_name(tmp_path):
    array = np.arange(12, dtype=np.uint8).reshape(3, 4)
    write_idx(tmp_path / "a.gz", array)
    (tmp_path / "a-no-suffix").write_bytes((tmp_path / "a.gz").read_bytes())
    np.testing.assert_array_equal(read_idx(tmp_path / "a-no-suffix"), array)


def test_write_idx_rejects_unsupported_dtype(tmp_path):
    with pytest.raises(TypeError, match="IDX can't store dtype"):
        write_idx(tmp_path / "x", np.zeros(3, dtype=np.int64))


def _valid_idx_bytes():
    return bytes([0, 0, 0x08, 2, 0, 0, 0, 2, 0, 0, 0, 3]) + bytes(range(6))


@pytest.mark.parametrize("payload,message", [
    (b"\x01\x00\x08\x02" + _valid_idx_bytes()[4:], "bad magic number"),
    (b"\x00\x00\x07\x02" + _valid_idx_bytes()[4:], "bad magic number"),
    (b"\x00\x00\x08\x00", "bad magic number"),
    (b"", "bad magic number"),
    (b"\x00\x00\x08\x02\x00\x00\x00\x02", "truncated IDX header"),
    (_valid_idx_bytes()[:-1], r"size mismatch: .*\(2, 3\) of uint8 \(6 data bytes\).* holds 5 data bytes"),
    (_valid_idx_bytes() + b"\x00", r"size mismatch: .*\(6 data bytes\).* holds (7 data bytes|more)"),
    (_valid_idx_bytes()[:8] + b"\xff\xff\xff\xff" + _valid_idx_bytes()[12:], "size mismatch"),
])
@pytest.mark.parametrize("compress", [False, True])
def test_idx_corrupt_files_raise_value_error_naming_file(tmp_path, payload, message, compress):
    path = tmp_path / "broken-idx3-ubyte"
    path.write_bytes(gzip.compress(payload) if compress else payload)
    with pytest.raises(ValueError, match=message) as excinfo:
        read_idx(path)
    assert str(path) in str(excinfo.value)


@pytest.mark.parametrize("damage", ["truncate", "bad_crc"])
def test_idx_corrupt_gzip_stream(tmp_path, damage):
    raw = tmp_path / "images-idx3-ubyte"
    write_idx(raw, np.random.default_rng(0).integers(0, 256, size=(10, 28, 28), dtype=np.uint8))
    compressed = bytearray(gzip.compress(raw.read_bytes()))
    if damage == "truncate":
        compressed = compressed[:len(compressed) // 2]
    else:
        compressed[-8] ^= 0xFF  # first byte of the CRC32 trailer
    path = tmp_path / "images-idx3-ubyte.gz"
    path.write_bytes(bytes(compressed))
    with pytest.raises(ValueError, match="corrupt gzip stream") as excinfo:
        read_idx(path)
    assert str(path) in str(excinfo.value)


# ---- Fashion-MNIST ------------------------------------------------------------------------------------------

def _write_fake_split(directory, train, n, gz, rng, image_shape=(28, 28), labels=None):
    images_stem, labels_stem = fmnist_module._SPLIT_FILES[train]
    suffix = ".gz" if gz else ""
    images = rng.integers(0, 256, size=(n,) + image_shape, dtype=np.uint8)
    labels = rng.integers(0, 10, size=n, dtype=np.uint8) if labels is None else labels
    directory.mkdir(parents=True, exist_ok=True)
    write_idx(directory / (images_stem + suffix), images)
    write_idx(directory / (labels_stem + suffix), labels)
    return images, labels


@pytest.mark.parametrize("gz", [False, True])
@pytest.mark.parametrize("train", [True, False])
def test_fashion_mnist_reads_root(tmp_path, gz, train):
    images, labels = _write_fake_split(tmp_path, train, 7, gz, np.random.default_rng(1))
    ds = FashionMNIST(tmp_path, train=train)
    assert ds.source == "root" and ds.source_dir == tmp_path
    assert str(tmp_path) in ds.note
    assert ds.data.dtype == np.uint8 and ds.data.shape == (7, 28, 28)
    assert ds.targets.dtype == np.int64
    np.testing.assert_array_equal(ds.data, images)
    np.testing.assert_array_equal(ds.targets, labels)
    assert len(ds) == 7
    image, target = ds[3]
    np.testing.assert_array_equal(image, images[3])
    assert target == labels[3] and type(target) is int
    assert len(ds.classes) == 10 and ds.class_to_idx["Ankle boot"] == 9


def test_fashion_mnist_reads_torchvision_layout(tmp_path):
    images, _ = _write_fake_split(tmp_path / "FashionMNIST" / "raw", True, 4, True, np.random.default_rng(2))
    np.testing.assert_array_equal(FashionMNIST(tmp_path).data, images)


def test_fashion_mnist_missing_root_message(tmp_path):
    with pytest.raises(FileNotFoundError) as excinfo:
        FashionMNIST(tmp_path / "nowhere", train=False)
    message = str(excinfo.value)
    for needle in ["t10k-images-idx3-ubyte[.gz]", "t10k-labels-idx1-ubyte[.gz]", str(tmp_path / "nowhere"),
                   "apt-get install dataset-fashion-mnist", "zalandoresearch/fashion-mnist"]:
        assert needle in message


def test_fashion_mnist_accepts_torchvisions_download_argument_but_never_downloads(tmp_path):
    images, _ = _write_fake_split(tmp_path, True, 3, True, np.random.default_rng(3))
    np.testing.assert_array_equal(FashionMNIST(tmp_path, train=True, download=True).data, images)
    with pytest.raises(FileNotFoundError, match=r"FashionMNIST\(download=True\): fastnn does not download"):
        FashionMNIST(tmp_path / "nowhere", train=True, download=True)


def test_fashion_mnist_labels_file_missing(tmp_path):
    _write_fake_split(tmp_path, True, 3, False, np.random.default_rng(3))
    (tmp_path / "train-labels-idx1-ubyte").unlink()
    with pytest.raises(FileNotFoundError, match="train-labels-idx1-ubyte"):
        FashionMNIST(tmp_path)


def test_fashion_mnist_count_mismatch(tmp_path):
    _write_fake_split(tmp_path, True, 5, True, np.random.default_rng(4), labels=np.zeros(4, np.uint8))
    with pytest.raises(ValueError, match="count mismatch.*5 images.*4 labels") as excinfo:
        FashionMNIST(tmp_path)
    assert "train-images-idx3-ubyte.gz" in str(excinfo.value)
    assert "train-labels-idx1-ubyte.gz" in str(excinfo.value)


def test_fashion_mnist_wrong_image_shape(tmp_path):
    _write_fake_split(tmp_path, True, 5, False, np.random.default_rng(5), image_shape=(27, 28))
    with pytest.raises(ValueError, match=r"train-images-idx3-ubyte: expected uint8 images of shape \(N, 28, 28\)"):
        FashionMNIST(tmp_path)


def test_fashion_mnist_label_out_of_range(tmp_path):
    _write_fake_split(tmp_path, True, 3, False, np.random.default_rng(6), labels=np.array([1, 10, 2], np.uint8))
    with pytest.raises(ValueError, match="train-labels-idx1-ubyte: label 10 out of range"):
        FashionMNIST(tmp_path)


def test_fashion_mnist_corrupt_images_file(tmp_path):
    _write_fake_split(tmp_path, True, 3, False, np.random.default_rng(7))
    path = tmp_path / "train-images-idx3-ubyte"
    path.write_bytes(path.read_bytes()[:-10])
    with pytest.raises(ValueError, match="size mismatch") as excinfo:
        FashionMNIST(tmp_path)
    assert str(path) in str(excinfo.value)


@pytest.fixture
def no_debian(monkeypatch, tmp_path):
    monkeypatch.setattr(fmnist_module, "DEBIAN_DIR", tmp_path / "no-debian")


@pytest.mark.parametrize("train,count", [(True, 10_000), (False, 2_000)])
def test_embedded_subset(no_debian, train, count):
    ds = FashionMNIST(train=train)
    assert ds.source == "embedded"
    assert ds.note == ("using the embedded Fashion-MNIST subset (10,000 train / 2,000 test images); "
                       "install dataset-fashion-mnist or pass root= for the full set")
    assert ds.data.shape == (count, 28, 28) and ds.data.dtype == np.uint8
    assert ds.targets.shape == (count,) and ds.targets.dtype == np.int64
    assert ds.targets.min() == 0 and ds.targets.max() == 9
    assert np.bincount(ds.targets).min() > count // 20  # every class well represented
    assert 60 < ds.data.mean() < 85  # real clothing images (full-set mean 0.286 * 255 = 72.9)


def test_embedded_dir_as_root_counts_as_embedded():
    ds = FashionMNIST(fmnist_module.EMBEDDED_DIR, train=False)
    assert ds.source == "embedded" and ds.note == fmnist_module.EMBEDDED_NOTE


def test_embedded_files_are_the_only_package_data():
    names = sorted(p.name for p in fmnist_module.EMBEDDED_DIR.iterdir())
    assert names == ["t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz", "train-images-idx3-ubyte.gz",
                     "train-labels-idx1-ubyte.gz"]


@needs_debian
@pytest.mark.parametrize("train,count", [(True, 10_000), (False, 2_000)])
def test_embedded_subset_is_prefix_of_debian_files(no_debian, train, count):
    embedded = FashionMNIST(train=train)
    full = FashionMNIST(fmnist_module.Path("/usr/share/datasets/fashion-mnist"), train=train)
    assert full.source == "root" and len(full) == (60_000 if train else 10_000)
    np.testing.assert_array_equal(embedded.data, full.data[:count])
    np.testing.assert_array_equal(embedded.targets, full.targets[:count])


@needs_debian
def test_default_source_is_debian_when_installed():
    ds = FashionMNIST(train=False)
    assert ds.source == "debian" and len(ds) == 10_000
    assert "/usr/share/datasets/fashion-mnist" in ds.note


def test_standardized_matches_reference_and_transforms(no_debian):
    ds = FashionMNIST(train=False)
    images, labels = ds.standardized()
    assert images.shape == (2000, 1, 28, 28) and images.dtype == np.float32
    np.testing.assert_array_equal(labels, ds.targets)
    reference = (ds.data.astype(np.float64) / 255 - 0.2860) / 0.3530
    np.testing.assert_allclose(images[:, 0], reference, rtol=0, atol=1e-6)
    via_transforms = T.Compose([T.ToTensor(), T.Normalize((0.2860,), (0.3530,))])(ds.data[..., None])
    np.testing.assert_array_equal(via_transforms.data, images)  # bit-identical
    arrays = fashion_mnist_arrays(train=False)
    np.testing.assert_array_equal(arrays[0], images)
    np.testing.assert_array_equal(arrays[1], labels)


def test_fashion_mnist_transforms_per_sample_and_per_batch(no_debian):
    batched = T.Compose([T.ToTensor(), T.Normalize((0.2860,), (0.3530,))])
    ds = FashionMNIST(train=False, transform=batched, target_transform=lambda t: t + 100)
    image, target = ds[5]
    assert isinstance(image, fastnn.Tensor) and image.shape == (1, 28, 28) and image.dtype == np.float32
    assert target == ds.targets[5] + 100
    indices = np.array([5, 0, 1999, 7])
    fast_images, fast_targets = ds.get_batch(indices)
    assert fast_images.shape == (4, 1, 28, 28)
    np.testing.assert_array_equal(fast_images.data[0], image.data)
    ds.transform = lambda im: batched(im)  # a plain callable is applied image by image
    slow_images, slow_targets = ds.get_batch(indices)
    np.testing.assert_array_equal(slow_images.data, fast_images.data)
    np.testing.assert_array_equal(slow_targets.data, ds.targets[indices] + 100)
    np.testing.assert_array_equal(fast_targets.data, ds.targets[indices] + 100)


# ---- data sets ----------------------------------------------------------------------------------------------

def test_tensor_dataset_items_and_errors():
    x, y = fastnn.tensor(np.arange(12.0).reshape(6, 2)), fastnn.tensor(np.arange(6))
    ds = TensorDataset(x, y)
    assert len(ds) == 6
    xi, yi = ds[4]
    np.testing.assert_array_equal(xi.data, [8.0, 9.0])
    assert int(yi) == 4
    with pytest.raises(ValueError, match=r"size mismatch.*\(6, 2\), \(5,\)"):
        TensorDataset(x, fastnn.tensor(np.arange(5)))
    with pytest.raises(ValueError, match="at least one tensor"):
        TensorDataset()
    with pytest.raises(ValueError, match="0-d"):
        TensorDataset(fastnn.tensor(3.0))
    with pytest.raises(TypeError, match="Tensors or ndarrays"):
        TensorDataset([1, 2, 3])


def test_subset_concat_random_split():
    base = TensorDataset(np.arange(10) * 10)
    sub = Subset(base, [7, 2, 5])
    assert len(sub) == 3 and sub[0][0] == 70 and sub[-1][0] == 50
    np.testing.assert_array_equal(sub.get_batch(np.array([2, 0]))[0].data, [50, 70])
    both = base + TensorDataset(np.arange(3) + 100)
    assert isinstance(both, ConcatDataset) and len(both) == 13
    assert both[9][0] == 90 and both[10][0] == 100 and both[-1][0] == 102
    with pytest.raises(IndexError):
        both[13]
    parts = random_split(base, [3, 7], generator=np.random.default_rng(0))
    assert [len(p) for p in parts] == [3, 7]
    assert sorted(np.concatenate([p.indices for p in parts]).tolist()) == list(range(10))
    again = random_split(base, [3, 7], generator=np.random.default_rng(0))
    np.testing.assert_array_equal(parts[0].indices, again[0].indices)
    assert [len(p) for p in random_split(base, [0.25, 0.25, 0.5])] == [3, 2, 5]  # PyTorch: remainder round-robin
    with pytest.raises(ValueError, match="summing to the dataset length 10"):
        random_split(base, [3, 8])


def test_default_collate_structures():
    Point = collections.namedtuple("Point", "x y")
    samples = [(np.full(2, i, np.float32), i, float(i) / 2, {"k": True, "name": f"s{i}"}, Point(i, -i))
               for i in range(3)]
    arrays, ints, floats, dicts, points = default_collate(samples)
    assert arrays.shape == (3, 2) and arrays.dtype == np.float32
    assert ints.dtype == np.int64 and ints.data.tolist() == [0, 1, 2]
    assert floats.dtype == np.float64 and floats.data.tolist() == [0.0, 0.5, 1.0]
    assert dicts["k"].dtype == np.bool_ and dicts["name"] == ["s0", "s1", "s2"]
    assert isinstance(points, Point) and points.y.data.tolist() == [0, -1, -2]
    assert isinstance(default_collate([[1, 2], [3, 4]]), list)
    with pytest.raises(TypeError, match="default_collate"):
        default_collate([object(), object()])


# ---- DataLoader ---------------------------------------------------------------------------------------------

def _loader_indices(loader):
    return [batch[0].data.tolist() for batch in loader]


def test_dataloader_sequential_batches_and_len():
    ds = TensorDataset(np.arange(10), np.arange(10) * 2.0)
    loader = DataLoader(ds, batch_size=4)
    assert len(loader) == 3
    batches = list(loader)
    assert [b[0].data.tolist() for b in batches] == [[0, 1, 2, 3], [4, 5, 6, 7], [8, 9]]
    assert isinstance(batches[0], tuple) and isinstance(batches[0][1], fastnn.Tensor)
    np.testing.assert_array_equal(batches[2][1].data, [16.0, 18.0])
    dropped = DataLoader(ds, batch_size=4, drop_last=True)
    assert len(dropped) == 2 and [len(b) for b in _loader_indices(dropped)] == [4, 4]
    assert len(DataLoader(ds, batch_size=5, drop_last=True)) == 2
    assert len(DataLoader(ds)) == 10


def test_dataloader_shuffle_covers_every_index_once_and_reshuffles():
    ds = TensorDataset(np.arange(103))
    fastnn.manual_seed(0)
    loader = DataLoader(ds, batch_size=10, shuffle=True)
    epochs = [sum(_loader_indices(loader), []) for _ in range(3)]
    for order in epochs:
        assert sorted(order) == list(range(103))
    assert epochs[0] != epochs[1] and epochs[0] != list(range(103))
    dropped = sum(_loader_indices(DataLoader(ds, batch_size=10, shuffle=True, drop_last=True)), [])
    assert len(dropped) == 100 and len(set(dropped)) == 100


def test_dataloader_same_seed_same_order():
    ds = TensorDataset(np.arange(50))

    def two_epochs():
        loader = DataLoader(ds, batch_size=8, shuffle=True)
        return _loader_indices(loader) + _loader_indices(loader)

    fastnn.manual_seed(123)
    first = two_epochs()
    fastnn.manual_seed(123)
    assert two_epochs() == first
    fastnn.manual_seed(124)
    assert two_epochs() != first
    explicit = [_loader_indices(DataLoader(ds, batch_size=8, shuffle=True, generator=np.random.default_rng(5)))
                for _ in range(2)]
    assert explicit[0] == explicit[1]


def test_dataloader_order_is_fixed_when_iterator_is_created():
    ds = TensorDataset(np.arange(20))
    fastnn.manual_seed(9)
    iterator = iter(DataLoader(ds, batch_size=20, shuffle=True))
    fastnn.random.default_generator().random(100)  # other draws between creation and first next()
    fastnn.manual_seed(9)
    expected = next(iter(DataLoader(ds, batch_size=20, shuffle=True)))[0].data
    np.testing.assert_array_equal(next(iterator)[0].data, expected)


class _NoPerSampleAccess(TensorDataset):
    def __getitem__(self, index):
        raise AssertionError("the batch fast path must not index samples one by one")


class _PerSampleOnly(Dataset):
    def __init__(self, x, y):
        self.x, self.y = x, y

    def __len__(self):
        return len(self.x)

    def __getitem__(self, index):
        return self.x[index], int(self.y[index])


def test_dataloader_fast_path_matches_per_sample_path():
    rng = np.random.default_rng(0)
    x = rng.standard_normal((37, 1, 4, 4)).astype(np.float32)
    y = rng.integers(0, 10, 37)
    fast = DataLoader(_NoPerSampleAccess(fastnn.tensor(x), fastnn.tensor(y)), batch_size=8, shuffle=True,
                      generator=np.random.default_rng(1))
    slow = DataLoader(_PerSampleOnly(x, y), batch_size=8, shuffle=True, generator=np.random.default_rng(1))
    for (fx, fy), (sx, sy) in zip(fast, slow, strict=True):
        assert fx.dtype == sx.dtype == np.float32 and fy.dtype == sy.dtype == np.int64
        np.testing.assert_array_equal(fx.data, sx.data)
        np.testing.assert_array_equal(fy.data, sy.data)
    subset_loader = DataLoader(Subset(_NoPerSampleAccess(fastnn.tensor(x), fastnn.tensor(y)), [3, 1, 4]),
                               batch_size=2)
    np.testing.assert_array_equal(next(iter(subset_loader))[1].data, y[[3, 1]])


def test_dataloader_collate_fn_and_sampler():
    ds = TensorDataset(np.arange(6))
    seen = []
    loader = DataLoader(ds, batch_size=4, collate_fn=lambda samples: seen.append(samples) or len(samples))
    assert list(loader) == [4, 2] and seen[1] == [(4,), (5,)]
    sampled = DataLoader(ds, batch_size=2, sampler=[5, 3, 1])
    assert len(sampled) == 2 and _loader_indices(sampled) == [[5, 3], [1]]
    with pytest.raises(ValueError, match="mutually exclusive"):
        DataLoader(ds, shuffle=True, sampler=[0])
    with pytest.raises(ValueError, match="batch_size"):
        DataLoader(ds, batch_size=0)
    with pytest.raises(TypeError, match="np.random.Generator"):
        DataLoader(ds, shuffle=True, generator=7)


def test_dataloader_epoch_over_60000_images_is_fast():
    x = np.zeros((60_000, 1, 28, 28), dtype=np.float32)
    loader = DataLoader(TensorDataset(fastnn.tensor(x), fastnn.tensor(np.zeros(60_000, np.int64))),
                        batch_size=64, shuffle=True)
    start = time.perf_counter()
    count = sum(len(labels) for _, labels in loader)
    assert count == 60_000
    assert time.perf_counter() - start < 2.0  # ~0.05 s measured: fancy-indexed batches, no per-sample loop


# ---- transforms ---------------------------------------------------------------------------------------------

def test_to_tensor_layouts_and_scaling():
    image = np.array([[0, 51], [255, 102]], dtype=np.uint8)
    out = T.ToTensor()(image)
    assert isinstance(out, fastnn.Tensor) and out.shape == (1, 2, 2) and out.dtype == np.float32
    np.testing.assert_array_equal(out.data[0], np.float32([[0, 0.2], [1, 0.4]]))
    hwc = np.arange(24, dtype=np.uint8).reshape(2, 3, 4)
    np.testing.assert_array_equal(T.ToTensor()(hwc)._data, hwc.transpose(2, 0, 1) / np.float32(255))
    nhwc = np.arange(48, dtype=np.uint8).reshape(2, 2, 3, 4)
    chw = T.ToTensor()(nhwc)._data
    assert chw.shape == (2, 4, 2, 3) and chw.flags.c_contiguous
    np.testing.assert_array_equal(chw, nhwc.transpose(0, 3, 1, 2) / np.float32(255))
    floats = np.full((2, 2), 3.5)
    np.testing.assert_array_equal(T.ToTensor()(floats).data, np.full((1, 2, 2), 3.5))
    with pytest.raises(ValueError, match="ToTensor expects"):
        T.ToTensor()(np.zeros(3, np.uint8))


def test_normalize_numbers_and_errors():
    x = np.arange(2 * 3 * 2 * 2, dtype=np.float32).reshape(2, 3, 2, 2)
    mean, std = (1.0, 2.0, 3.0), (0.5, 2.0, 4.0)
    expected = (x - np.float32(mean)[:, None, None]) / np.float32(std)[:, None, None]
    np.testing.assert_array_equal(T.Normalize(mean, std)(x), expected)
    out = T.Normalize(mean, std)(fastnn.tensor(x[0]))
    assert isinstance(out, fastnn.Tensor)
    np.testing.assert_array_equal(out.data, expected[0])
    inplace = x.copy()
    assert T.Normalize(mean, std, inplace=True)(inplace) is inplace
    np.testing.assert_array_equal(inplace, expected)
    np.testing.assert_array_equal(T.Normalize(2.0, 4.0)(x), (x - 2) / 4)
    with pytest.raises(TypeError, match="floating-point"):
        T.Normalize(0, 1)(np.zeros((1, 2, 2), np.uint8))
    with pytest.raises(ValueError, match="2 values for 3 channels"):
        T.Normalize((0, 0), (1, 1))(x)
    with pytest.raises(ValueError, match="non-zero"):
        T.Normalize(0, (1, 0))


def test_random_crop_single_image_numbers():
    image = np.arange(1 * 4 * 5, dtype=np.float32).reshape(1, 4, 5)
    out = T.RandomCrop((2, 3), generator=np.random.default_rng(3))(image)
    rng = np.random.default_rng(3)
    top, left = rng.integers(0, 3), rng.integers(0, 3)
    np.testing.assert_array_equal(out, image[:, top:top + 2, left:left + 3])
    np.testing.assert_array_equal(T.RandomCrop(4, padding=0)(image[:, :, :4]), image[:, :, :4])
    padded = T.RandomCrop((6, 7), padding=1, fill=-1)(image)
    assert padded.shape == (1, 6, 7)
    assert (padded[:, 0] == -1).all() and (padded[:, :, -1] == -1).all()
    np.testing.assert_array_equal(padded[:, 1:5, 1:6], image)
    asym = T.RandomCrop((5, 8), padding=(2, 1, 1, 0))(image)  # left, top, right, bottom
    np.testing.assert_array_equal(asym[:, 1:, 2:7], image)
    edge = T.RandomCrop((6, 7), padding=1, padding_mode="edge")(image)
    np.testing.assert_array_equal(edge[0, 0, 1:6], image[0, 0])
    with pytest.raises(ValueError, match="larger than the padded image"):
        T.RandomCrop(6)(image)


def test_random_crop_batch_draws_per_image():
    batch = np.random.default_rng(0).standard_normal((16, 2, 6, 6)).astype(np.float32)
    out = T.RandomCrop(6, padding=2, generator=np.random.default_rng(11))(fastnn.tensor(batch))
    assert isinstance(out, fastnn.Tensor) and out.shape == (16, 2, 6, 6)
    rng = np.random.default_rng(11)
    tops, lefts = rng.integers(0, 5, size=16), rng.integers(0, 5, size=16)
    padded = np.pad(batch, [(0, 0), (0, 0), (2, 2), (2, 2)])
    for i in range(16):
        np.testing.assert_array_equal(out.data[i], padded[i, :, tops[i]:tops[i] + 6, lefts[i]:lefts[i] + 6])
    assert len(set(zip(tops.tolist(), lefts.tolist()))) > 1


def test_random_horizontal_flip_numbers():
    image = np.arange(6, dtype=np.float32).reshape(1, 2, 3)
    np.testing.assert_array_equal(T.RandomHorizontalFlip(p=1)(image), image[..., ::-1])
    np.testing.assert_array_equal(T.RandomHorizontalFlip(p=0)(image), image)
    batch = np.arange(10 * 1 * 2 * 3, dtype=np.float32).reshape(10, 1, 2, 3)
    out = T.RandomHorizontalFlip(generator=np.random.default_rng(4))(batch)
    flipped = np.random.default_rng(4).random(10) < 0.5
    assert 0 < flipped.sum() < 10
    np.testing.assert_array_equal(out[flipped], batch[flipped][..., ::-1])
    np.testing.assert_array_equal(out[~flipped], batch[~flipped])
    with pytest.raises(ValueError, match="p must be in"):
        T.RandomHorizontalFlip(p=1.5)


def test_random_transforms_follow_manual_seed():
    batch = np.random.default_rng(0).standard_normal((8, 1, 5, 5)).astype(np.float32)
    augment = T.Compose([T.RandomCrop(5, padding=1), T.RandomHorizontalFlip()])
    assert augment.batched
    fastnn.manual_seed(42)
    first = augment(batch)
    fastnn.manual_seed(42)
    np.testing.assert_array_equal(augment(batch), first)
    assert not T.Compose([T.ToTensor(), lambda x: x]).batched

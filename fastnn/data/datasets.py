"""IDX file reading/writing and the Fashion-MNIST data set.

Fashion-MNIST is looked up in `root` when given, else in Debian's `dataset-fashion-mnist` location, else a real
subset shipped in `_embedded/` is used: the first 10,000 train and first 2,000 test images and labels of the
official files, stored as gzipped IDX files (header count rewritten, payload bytes unchanged).
"""
import gzip
import logging
import math
import os
import struct
import zlib
from pathlib import Path

import numpy as np

from fastnn.data.dataset import Dataset, default_collate

logger = logging.getLogger("fastnn.data")

# IDX type byte -> big-endian element dtype, as in the format description by LeCun et al.
_IDX_DTYPES = {0x08: np.dtype("u1"), 0x09: np.dtype("i1"), 0x0B: np.dtype(">i2"), 0x0C: np.dtype(">i4"),
               0x0D: np.dtype(">f4"), 0x0E: np.dtype(">f8")}
_IDX_CODES = {dtype.newbyteorder("="): code for code, dtype in _IDX_DTYPES.items()}
_GZIP_MAGIC = b"\x1f\x8b"
_DEFLATE_MAX_RATIO = 1032  # deflate expands at most ~1032:1, bounding what a gzip file can decode to


def _open_maybe_gzip(path):
    """(file, gzipped): open for binary reading, decompressing when the file starts with the gzip magic bytes."""
    with open(path, "rb") as probe:
        gzipped = probe.read(2) == _GZIP_MAGIC
    return (gzip.open(path, "rb") if gzipped else open(path, "rb")), gzipped


def _read_exactly(f, buffer):
    filled = 0
    while filled < len(buffer):
        got = f.readinto(buffer[filled:])
        if not got:
            break
        filled += got
    return filled


def read_idx(path):
    """Read an IDX file (raw or gzipped) into an ndarray in native byte order.

    Raises ValueError naming the file when the magic number is invalid, the payload is shorter or longer than
    the header's dimensions declare, or the gzip stream is corrupt.
    """
    path = os.fspath(path)
    stored_size = os.path.getsize(path)
    opened, gzipped = _open_maybe_gzip(path)
    try:
        with opened as f:
            magic = f.read(4)
            if len(magic) < 4 or magic[0] != 0 or magic[1] != 0 or magic[2] not in _IDX_DTYPES or magic[3] == 0:
                raise ValueError(f"{path}: not an IDX file (bad magic number 0x{magic.hex() or 'empty'}; expected "
                                 f"00 00 <type byte in {sorted(_IDX_DTYPES)}> <ndim>)")
            ndim = magic[3]
            header = f.read(4 * ndim)
            if len(header) < 4 * ndim:
                raise ValueError(f"{path}: truncated IDX header ({ndim} dimensions declared)")
            shape = struct.unpack(f">{ndim}I", header)
            dtype = _IDX_DTYPES[magic[2]]
            expected = math.prod(shape) * dtype.itemsize
            mismatch = (f"{path}: size mismatch: the header declares shape {shape} of {dtype.name} "
                        f"({expected} data bytes) but the file holds")
            # Check sizes before allocating, so a corrupt header can't request an absurd buffer.
            if not gzipped and stored_size - 4 - 4 * ndim != expected:
                raise ValueError(f"{mismatch} {stored_size - 4 - 4 * ndim} data bytes")
            if gzipped and expected > _DEFLATE_MAX_RATIO * stored_size:
                raise ValueError(f"{mismatch} less (a {stored_size}-byte gzip file can't expand that far)")
            array = np.empty(shape, dtype=dtype)
            got = _read_exactly(f, memoryview(array).cast("B")) if expected else 0
            if got < expected:
                raise ValueError(f"{mismatch} {got} data bytes")
            if f.read(1):
                raise ValueError(f"{mismatch} more")
    except (gzip.BadGzipFile, EOFError, zlib.error) as e:
        raise ValueError(f"{path}: corrupt gzip stream ({e})") from None
    return array.astype(dtype.newbyteorder("="), copy=False)


def write_idx(path, array):
    """Write `array` as an IDX file; gzip-compressed when `path` ends in '.gz'."""
    array = np.asarray(array)
    code = _IDX_CODES.get(array.dtype.newbyteorder("="))
    if code is None:
        raise TypeError(f"IDX can't store dtype {array.dtype}; supported: "
                        f"{sorted(str(d) for d in _IDX_CODES)}")
    if not 1 <= array.ndim <= 255:
        raise ValueError(f"IDX needs 1 to 255 dimensions, got shape {array.shape}")
    payload = (bytes([0, 0, code, array.ndim]) + struct.pack(f">{array.ndim}I", *array.shape)
               + np.ascontiguousarray(array, dtype=_IDX_DTYPES[code]).tobytes())
    path = os.fspath(path)
    if path.endswith(".gz"):
        payload = gzip.compress(payload, mtime=0)
    with open(path, "wb") as f:
        f.write(payload)


DEBIAN_DIR = Path("/usr/share/datasets/fashion-mnist")
EMBEDDED_DIR = Path(__file__).resolve().parent / "_embedded"
EMBEDDED_TRAIN_SIZE = 10_000
EMBEDDED_TEST_SIZE = 2_000
EMBEDDED_NOTE = (f"using the embedded Fashion-MNIST subset ({EMBEDDED_TRAIN_SIZE:,} train / {EMBEDDED_TEST_SIZE:,} "
                 f"test images); install dataset-fashion-mnist or pass root= for the full set")
# Reference normalization: statistics of the full training set after scaling to [0, 1].
FASHION_MNIST_MEAN = 0.2860
FASHION_MNIST_STD = 0.3530
_STANDARDIZE_CHUNK = 1024  # images per pass: ~3 MB of float32 stays in cache across the three passes

_SPLIT_FILES = {True: ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
                False: ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte")}


def _find_split(directories, stems):
    """Paths of the split's image and label files (raw preferred over .gz) in the first directory holding both."""
    for directory in directories:
        paths = []
        for stem in stems:
            candidates = [directory / stem, directory / (stem + ".gz")]
            paths.append(next((p for p in candidates if p.is_file()), None))
        if None not in paths:
            return paths
    return None


def _missing_files_error(root, directories, stems, train):
    looked = ", ".join(str(d) for d in directories)
    return FileNotFoundError(
        f"Fashion-MNIST {'train' if train else 'test'} files not found under root={str(root)!r}: looked for "
        f"{stems[0]}[.gz] and {stems[1]}[.gz] in {looked}. Install the full data set with "
        f"`apt-get install dataset-fashion-mnist` (files go to {DEBIAN_DIR}/) or download the four IDX files "
        f"(train-images-idx3-ubyte.gz, train-labels-idx1-ubyte.gz, t10k-images-idx3-ubyte.gz, "
        f"t10k-labels-idx1-ubyte.gz) from https://github.com/zalandoresearch/fashion-mnist into root; "
        f"root=None uses {DEBIAN_DIR}/ or the embedded subset.")


def _load_split(images_path, labels_path, num_classes):
    images = read_idx(images_path)
    if images.dtype != np.uint8 or images.ndim != 3 or images.shape[1:] != (28, 28):
        raise ValueError(f"{images_path}: expected uint8 images of shape (N, 28, 28), got {images.dtype} "
                         f"{images.shape}")
    labels = read_idx(labels_path)
    if labels.dtype != np.uint8 or labels.ndim != 1:
        raise ValueError(f"{labels_path}: expected uint8 labels of shape (N,), got {labels.dtype} {labels.shape}")
    if len(labels) != len(images):
        raise ValueError(f"count mismatch: {images_path} holds {len(images)} images but {labels_path} holds "
                         f"{len(labels)} labels")
    if len(labels) and labels.max() >= num_classes:
        raise ValueError(f"{labels_path}: label {int(labels.max())} out of range [0, {num_classes})")
    return images, labels.astype(np.int64)


class FashionMNIST(Dataset):
    """Fashion-MNIST (Xiao et al., 2017): 28x28 grayscale images of 10 clothing classes.

    root=None reads Debian's dataset-fashion-mnist files from /usr/share/datasets/fashion-mnist/ when present,
    else the embedded subset (see EMBEDDED_NOTE). A given root must hold the IDX files (raw or .gz) directly or
    in root/FashionMNIST/raw (torchvision's layout).

    Attributes: data (uint8 N x 28 x 28), targets (int64 N), classes, source ('root', 'debian' or 'embedded';
    'embedded' also when root is EMBEDDED_DIR), source_dir, note (one line saying which files were used, for
    callers to print or log).
    Items are (image, label): the uint8 28x28 array and an int, each passed through its transform if given.
    Batch access (`get_batch`, used by DataLoader) applies fastnn.data.transforms to the whole batch at once,
    images as N x 28 x 28 x 1 (NHWC, which ToTensor turns into N x 1 x 28 x 28).
    """
    classes = ["T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag",
               "Ankle boot"]

    def __init__(self, root=None, train=True, transform=None, target_transform=None):
        self.root = root
        self.train = bool(train)
        self.transform = transform
        self.target_transform = target_transform
        stems = _SPLIT_FILES[self.train]
        if root is not None:
            directories = [Path(root), Path(root) / "FashionMNIST" / "raw"]
            paths = _find_split(directories, stems)
            if paths is None:
                raise _missing_files_error(root, directories, stems, self.train)
            self.source = "embedded" if paths[0].parent.resolve() == EMBEDDED_DIR else "root"
        else:
            paths = _find_split([DEBIAN_DIR], stems)
            self.source = "debian"
            if paths is None:
                paths = _find_split([EMBEDDED_DIR], stems)
                self.source = "embedded"
                if paths is None:
                    raise FileNotFoundError(f"the embedded Fashion-MNIST subset is missing from {EMBEDDED_DIR}; "
                                            f"reinstall fastnn or pass root=")
        self.source_dir = paths[0].parent
        self.data, self.targets = _load_split(paths[0], paths[1], len(self.classes))
        split = "train" if self.train else "test"
        self.note = (EMBEDDED_NOTE if self.source == "embedded" else
                     f"using Fashion-MNIST {split} split from {self.source_dir} ({len(self.data):,} images)")
        logger.info(self.note)

    @property
    def class_to_idx(self):
        return {name: i for i, name in enumerate(self.classes)}

    def __len__(self):
        return len(self.data)

    def __getitem__(self, index):
        image, target = self.data[index], int(self.targets[index])
        if self.transform is not None:
            image = self.transform(image)
        if self.target_transform is not None:
            target = self.target_transform(target)
        return image, target

    def get_batch(self, indices):
        """Images and labels at `indices`, transformed batch-wise when the transforms support it."""
        images, targets = self.data[indices], self.targets[indices]
        if self.transform is not None:
            if getattr(self.transform, "batched", False):
                images = self.transform(images[..., None])
            else:
                images = default_collate([self.transform(image) for image in images])
        if self.target_transform is not None:
            if getattr(self.target_transform, "batched", False):
                targets = self.target_transform(targets)
            else:
                targets = default_collate([self.target_transform(int(t)) for t in targets])
        return images, targets

    def standardized(self):
        """(images, labels): float32 N x 1 x 28 x 28 images as (x/255 - 0.2860)/0.3530 and int64 labels.

        Bit-identical to ToTensor() followed by Normalize((0.2860,), (0.3530,)); computed in cache-sized chunks.
        """
        images = np.empty((len(self.data), 1, 28, 28), dtype=np.float32)
        mean, std = np.float32(FASHION_MNIST_MEAN), np.float32(FASHION_MNIST_STD)
        for start in range(0, len(self.data), _STANDARDIZE_CHUNK):
            chunk = images[start:start + _STANDARDIZE_CHUNK, 0]
            np.divide(self.data[start:start + _STANDARDIZE_CHUNK], np.float32(255), out=chunk, dtype=np.float32)
            chunk -= mean
            chunk /= std
        return images, self.targets.copy()


def fashion_mnist_arrays(root=None, train=True):
    """Standardized Fashion-MNIST arrays (images float32 N x 1 x 28 x 28, labels int64 N) in one call.

    The data source follows FashionMNIST(root, train); its note is logged to the 'fastnn.data' logger.
    """
    return FashionMNIST(root, train).standardized()


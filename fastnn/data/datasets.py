"""Data sets on files: IDX reading/writing and Fashion-MNIST, CIFAR-10 (python batches), ImageFolder.

Fashion-MNIST is looked up in `root` when given, else in Debian's `dataset-fashion-mnist` location, else a real
subset shipped in `_embedded/` is used: the first 10,000 train and first 2,000 test images and labels of the
official files, stored as gzipped IDX files (header count rewritten, payload bytes unchanged).
"""
import gzip
import logging
import math
import os
import pickle
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


def _missing_files_error(root, directories, stems, train, download=False):
    looked = ", ".join(str(d) for d in directories)
    return FileNotFoundError(
        ("FashionMNIST(download=True): fastnn does not download. " if download else "") +
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


def _transform_batch(dataset, images, targets):
    """(images, targets) of a batch through dataset.transform / target_transform: in one call when the transform
    is `batched` (given N x H x W x C, as ToTensor expects; grayscale N x H x W gets its channel axis), else
    image by image, each as __getitem__ gives it, and collated."""
    if dataset.transform is not None:
        if getattr(dataset.transform, "batched", False):
            images = dataset.transform(images[..., None] if images.ndim == 3 else images)
        else:
            images = default_collate([dataset.transform(image) for image in images])
    if dataset.target_transform is not None:
        if getattr(dataset.target_transform, "batched", False):
            targets = dataset.target_transform(targets)
        else:
            targets = default_collate([dataset.target_transform(int(t)) for t in targets])
    return images, targets


class _LabelledImages(Dataset):
    """An in-memory image data set: `data` (N images), `targets` (N int labels), `classes`, optional transforms."""

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
        """Images and labels at `indices`, transformed batch-wise when the transforms support it (one call for the
        whole batch instead of one per image)."""
        return _transform_batch(self, self.data[indices], self.targets[indices])


class FashionMNIST(_LabelledImages):
    """Fashion-MNIST (Xiao et al., 2017): 28x28 grayscale images of 10 clothing classes.

    root=None reads Debian's dataset-fashion-mnist files from /usr/share/datasets/fashion-mnist/ when present,
    else the embedded subset (see EMBEDDED_NOTE). A given root must hold the IDX files (raw or .gz) directly or
    in root/FashionMNIST/raw (torchvision's layout). fastnn downloads nothing: download=True (torchvision's
    argument) only adds that to the error raised when the files are missing.

    Attributes: data (uint8 N x 28 x 28), targets (int64 N), classes, source ('root', 'debian' or 'embedded';
    'embedded' also when root is EMBEDDED_DIR), source_dir, note (one line saying which files were used, for
    callers to print or log).
    Items are (image, label): the uint8 28x28 array and an int, each passed through its transform if given.
    Batch access (`get_batch`, used by DataLoader) applies fastnn.data.transforms to the whole batch at once,
    images as N x 28 x 28 x 1 (NHWC, which ToTensor turns into N x 1 x 28 x 28).
    """
    classes = ["T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag",
               "Ankle boot"]

    def __init__(self, root=None, train=True, transform=None, target_transform=None, download=False):
        self.root = root
        self.train = bool(train)
        self.transform = transform
        self.target_transform = target_transform
        stems = _SPLIT_FILES[self.train]
        if root is not None:
            directories = [Path(root), Path(root) / "FashionMNIST" / "raw"]
            paths = _find_split(directories, stems)
            if paths is None:
                raise _missing_files_error(root, directories, stems, self.train, download)
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



# ---- CIFAR-10 ----------------------------------------------------------------------------------------------

CIFAR10_DIRNAME = "cifar-10-batches-py"
CIFAR10_URL = "https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz"
_CIFAR10_TRAIN_FILES = tuple(f"data_batch_{i}" for i in range(1, 6))
_CIFAR10_TEST_FILES = ("test_batch",)
_CIFAR10_META_FILE = "batches.meta"


def _numpy_reconstruct():
    try:
        from numpy._core.multiarray import _reconstruct
    except ImportError:  # NumPy 1.x
        from numpy.core.multiarray import _reconstruct
    return _reconstruct


def _safe_reconstruct(subtype, shape, typecode):
    """numpy's array-unpickling constructor, for plain ndarrays only (the state that follows sets the data)."""
    if subtype is not np.ndarray:
        raise pickle.UnpicklingError(f"refusing to build an array of type {subtype!r}")
    return _numpy_reconstruct()(subtype, shape, typecode)


def _safe_dtype(*args):
    """np.dtype, refusing object dtypes: an object array's items would be arbitrary pickled objects."""
    dtype = np.dtype(*args)
    if dtype.hasobject:
        raise pickle.UnpicklingError(f"refusing dtype {dtype} (it holds Python objects)")
    return dtype


def _latin1_encode(text, encoding):
    """_codecs.encode as Python 3 uses it to pickle bytes at protocol 2 (files re-saved by Python 3)."""
    if not isinstance(text, str) or encoding != "latin1":
        raise pickle.UnpicklingError(f"refusing _codecs.encode({type(text).__name__}, {encoding!r})")
    return text.encode("latin1")


class _CIFARUnpickler(pickle.Unpickler):
    """Loads only what the CIFAR "python version" batches hold: dicts, lists, bytes/str, ints, and uint8
    ndarrays (numpy's _reconstruct, ndarray and dtype). Every other global, hence every other callable a pickle
    could invoke, is refused."""
    _ALLOWED = {("numpy.core.multiarray", "_reconstruct"): _safe_reconstruct,
                ("numpy._core.multiarray", "_reconstruct"): _safe_reconstruct,
                ("numpy", "ndarray"): np.ndarray,
                ("numpy", "dtype"): _safe_dtype,
                ("_codecs", "encode"): _latin1_encode}

    def find_class(self, module, name):
        allowed = self._ALLOWED.get((module, name))
        if allowed is None:
            raise pickle.UnpicklingError(f"refusing to load global {module}.{name}")
        return allowed

    def persistent_load(self, pid):
        raise pickle.UnpicklingError("refusing a persistent id")


def _read_cifar_pickle(path):
    """The dict stored in a CIFAR batch file, keys as str; ValueError naming the file for anything else."""
    try:
        with open(path, "rb") as f:
            # bytes: Python 2 `str` objects (the original files) stay bytes instead of being decoded as text
            content = _CIFARUnpickler(f, encoding="bytes").load()
    except (pickle.UnpicklingError, EOFError, ValueError, TypeError, AttributeError, IndexError, KeyError,
            MemoryError) as e:
        raise ValueError(f"{path}: not a CIFAR batch file in the expected format (a pickled dict of bytes, "
                         f"lists and uint8 arrays): {e}") from None
    if not isinstance(content, dict):
        raise ValueError(f"{path}: expected a pickled dict, got {type(content).__name__}")
    return {key.decode("latin1") if isinstance(key, bytes) else key: value for key, value in content.items()}


def _read_cifar_batch(path, num_classes):
    content = _read_cifar_pickle(path)
    data, labels = content.get("data"), content.get("labels")
    if not isinstance(data, np.ndarray) or data.dtype != np.uint8 or data.ndim != 2 or data.shape[1] != 3072:
        described = f"{data.dtype} {data.shape}" if isinstance(data, np.ndarray) else type(data).__name__
        raise ValueError(f"{path}: expected 'data' as uint8 (N, 3072), got {described}")
    if not isinstance(labels, list) or not all(isinstance(label, int) for label in labels):
        raise ValueError(f"{path}: expected 'labels' as a list of ints")
    labels = np.array(labels, dtype=np.int64)
    if len(labels) != len(data):
        raise ValueError(f"{path}: count mismatch: {len(data)} images but {len(labels)} labels")
    if len(labels) and (labels.min() < 0 or labels.max() >= num_classes):
        raise ValueError(f"{path}: labels outside [0, {num_classes})")
    return data.reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1), labels


class CIFAR10(_LabelledImages):
    """CIFAR-10 (Krizhevsky, 2009): 32x32 RGB images of 10 classes, 50,000 train and 10,000 test.

    Reads the "python version" batches from root/cifar-10-batches-py/ (torchvision's layout; root may also be
    that folder itself): data_batch_1..5 (train), test_batch (test) and batches.meta. The files are pickles;
    they are parsed by an unpickler that builds only dicts, lists, bytes, ints and uint8 arrays and refuses
    every other object, so a tampered file can't run code. fastnn downloads nothing: download=True only
    changes the error raised when the files are missing into one that says how to fetch them.

    Attributes: data (uint8 N x 32 x 32 x 3, HWC as torchvision), targets (int64 N; torchvision: a list),
    classes (from batches.meta), class_to_idx. Items are (image, label): the uint8 32x32x3 array (ToTensor makes
    it 3 x 32 x 32) and an int, each passed through its transform if given. get_batch (used by DataLoader)
    transforms whole batches when the transforms are `batched`.
    """
    base_folder = CIFAR10_DIRNAME
    url = CIFAR10_URL

    def __init__(self, root, train=True, transform=None, target_transform=None, download=False):
        self.root = root
        self.train = bool(train)
        self.transform = transform
        self.target_transform = target_transform
        names = _CIFAR10_TRAIN_FILES if self.train else _CIFAR10_TEST_FILES
        expected = names + (_CIFAR10_META_FILE,)
        candidates = [Path(root) / self.base_folder, Path(root)]
        folder = next((d for d in candidates if all((d / name).is_file() for name in expected)), None)
        if folder is None:
            looked = candidates[0]
            missing = [name for name in expected if not (looked / name).is_file()]
            fetch = (f"fastnn does not download (this machine may have no network): fetch {self.url} on a machine "
                     f"that can, and extract it into {root} (tar xzf cifar-10-python.tar.gz -C {root})")
            if download:
                raise RuntimeError(f"CIFAR10(download=True): files missing in {looked}: {', '.join(missing)}. "
                                   f"{fetch}")
            raise FileNotFoundError(f"CIFAR-10 {'train' if self.train else 'test'} files not found: {looked} "
                                    f"lacks {', '.join(missing)} (expected {', '.join(expected)}). {fetch}")
        meta = _read_cifar_pickle(folder / _CIFAR10_META_FILE)
        label_names = meta.get("label_names")
        if not isinstance(label_names, list) or not all(isinstance(n, (bytes, str)) for n in label_names):
            raise ValueError(f"{folder / _CIFAR10_META_FILE}: expected 'label_names' as a list of strings")
        self.classes = [n.decode("utf-8") if isinstance(n, bytes) else n for n in label_names]
        parts = [_read_cifar_batch(folder / name, len(self.classes)) for name in names]
        self.data = np.ascontiguousarray(np.concatenate([images for images, _ in parts]))
        self.targets = np.concatenate([labels for _, labels in parts])
        self.source_dir = folder



# ---- image folders -----------------------------------------------------------------------------------------

IMG_EXTENSIONS = (".jpg", ".jpeg", ".png", ".ppm", ".bmp", ".pgm", ".tif", ".tiff", ".webp")


def _require_pillow():
    try:
        from PIL import Image
    except ImportError:
        raise ImportError("reading image files needs Pillow: pip install 'fastnn[images]'") from None
    return Image


def pil_loader(path):
    """The image at `path` as an RGB uint8 H x W x 3 ndarray (torchvision's pil_loader gives the PIL image)."""
    Image = _require_pillow()
    with open(path, "rb") as f:
        return np.asarray(Image.open(f).convert("RGB"))


def find_classes(directory):
    """(classes, class_to_idx): the sorted names of the sub-folders of `directory`, numbered in that order."""
    classes = sorted(entry.name for entry in os.scandir(directory) if entry.is_dir())
    if not classes:
        raise FileNotFoundError(f"Couldn't find any class folder in {directory}.")
    return classes, {name: i for i, name in enumerate(classes)}


def make_dataset(directory, class_to_idx, extensions=None, is_valid_file=None):
    """[(path, class_index)] of the files under each class folder (walked in sorted order, links followed)
    whose name ends in one of `extensions` (case-insensitive) or that is_valid_file accepts."""
    if (extensions is None) == (is_valid_file is None):
        raise ValueError("Both extensions and is_valid_file cannot be None or not None at the same time")
    if is_valid_file is None:
        lowered = tuple(e.lower() for e in extensions)

        def is_valid_file(path):
            return path.lower().endswith(lowered)
    samples, empty = [], []
    for class_name in sorted(class_to_idx):
        class_dir = os.path.join(directory, class_name)
        if not os.path.isdir(class_dir):
            continue
        found = 0
        for folder, _, names in sorted(os.walk(class_dir, followlinks=True)):
            for name in sorted(names):
                path = os.path.join(folder, name)
                if is_valid_file(path):
                    samples.append((path, class_to_idx[class_name]))
                    found += 1
        if not found:
            empty.append(class_name)
    if empty:
        supported = f"Supported extensions are: {', '.join(extensions)}" if extensions is not None else ""
        raise FileNotFoundError(f"Found no valid file for the classes {', '.join(sorted(empty))}. {supported}")
    return samples


class ImageFolder(Dataset):
    """Images stored as root/<class name>/**/<file>, as torchvision.datasets.ImageFolder: classes are the sorted
    sub-folder names, class_to_idx numbers them in that order, samples lists (path, class index) in sorted
    order, targets the class indices. Items are (loader(path), class index) through the transforms.

    The default loader reads PNG, JPEG and the other IMG_EXTENSIONS with Pillow (an optional dependency:
    pip install 'fastnn[images]') and returns an RGB uint8 H x W x 3 ndarray, which ToTensor accepts.
    """

    def __init__(self, root, transform=None, target_transform=None, loader=None, is_valid_file=None):
        self.root = os.fspath(root)
        if not os.path.isdir(self.root):
            raise FileNotFoundError(f"ImageFolder root {self.root!r} is not a directory")
        if loader is None:
            _require_pillow()  # fail now, not at the first image
            loader = pil_loader
        self.loader = loader
        self.transform = transform
        self.target_transform = target_transform
        self.extensions = IMG_EXTENSIONS if is_valid_file is None else None
        self.classes, self.class_to_idx = find_classes(self.root)
        self.samples = make_dataset(self.root, self.class_to_idx, self.extensions, is_valid_file)
        self.imgs = self.samples
        self.targets = [target for _, target in self.samples]

    def __len__(self):
        return len(self.samples)

    def __getitem__(self, index):
        path, target = self.samples[index]
        image = self.loader(path)
        if self.transform is not None:
            image = self.transform(image)
        if self.target_transform is not None:
            target = self.target_transform(target)
        return image, target

"""Read PyTorch checkpoint files (.pt/.pth: the zip format and the legacy one) without torch, never running code.

A PyTorch checkpoint is a pickle whose tensors point at raw storages kept beside it. This reader unpickles with an
allowlist equal in spirit to `torch.load(weights_only=True)`: tensor and parameter rebuild functions, typed
storages, OrderedDict and primitive containers; any other global (a function a malicious file wants called) is
refused with pickle.UnpicklingError before anything runs. Tensors come back as fastnn tensors with their dtype,
shape and strides; tensors that shared a storage in PyTorch share memory here too (views of one array).
"""
import collections
import io
import pickle
import struct
import zipfile

import numpy as np

_STORAGE_DTYPES = {
    "FloatStorage": np.float32, "DoubleStorage": np.float64, "HalfStorage": np.float16,
    "BFloat16Storage": "bfloat16", "LongStorage": np.int64, "IntStorage": np.int32, "ShortStorage": np.int16,
    "CharStorage": np.int8, "ByteStorage": np.uint8, "BoolStorage": np.bool_,
}
_LEGACY_MAGIC = 0x1950a86a20f9469cfc6c
_LEGACY_PROTOCOL = 1001


class TorchFormatError(ValueError):
    """The file is not a readable PyTorch checkpoint (corrupt, truncated, or outside what weights_only allows)."""


class _StorageType:
    def __init__(self, name):
        self.name = name
        self.dtype = _STORAGE_DTYPES[name]


class _Storage:
    """A storage the pickle refers to: its bytes are read once, then every tensor on it is a view."""

    def __init__(self, key, storage_type, numel):
        self.key, self.type, self.numel = key, storage_type, numel
        self.array = None


class _PendingTensor:
    """A tensor whose storage bytes may not be read yet (the legacy format stores them after the pickle)."""

    def __init__(self, storage, offset, size, stride, requires_grad, parameter=False):
        self.storage, self.offset, self.size, self.stride = storage, offset, tuple(size), tuple(stride)
        self.requires_grad, self.parameter = bool(requires_grad), parameter


def _rebuild_tensor_v2(storage, storage_offset, size, stride, requires_grad=False, backward_hooks=None,
                       metadata=None):
    if not isinstance(storage, _Storage):
        raise TorchFormatError(f"tensor rebuilt from a {type(storage).__name__}, not a storage")
    return _PendingTensor(storage, storage_offset, size, stride, requires_grad)


def _rebuild_parameter(data, requires_grad, backward_hooks, *state):
    if not isinstance(data, _PendingTensor):
        raise TorchFormatError(f"parameter rebuilt from a {type(data).__name__}, not a tensor")
    data.requires_grad, data.parameter = bool(requires_grad), True
    return data


def _rebuild_from_type_v2(func, new_type, args, state):
    result = func(*args)
    if new_type is _PARAMETER_TYPE and isinstance(result, _PendingTensor):
        result.parameter = True
    return result


_PARAMETER_TYPE = object()

_ALLOWED = {
    ("collections", "OrderedDict"): collections.OrderedDict,
    ("torch._utils", "_rebuild_tensor_v2"): _rebuild_tensor_v2,
    ("torch._utils", "_rebuild_parameter"): _rebuild_parameter,
    ("torch._utils", "_rebuild_parameter_with_state"): _rebuild_parameter,
    ("torch._tensor", "_rebuild_from_type_v2"): _rebuild_from_type_v2,
    ("torch.nn.parameter", "Parameter"): _PARAMETER_TYPE,
    ("torch", "Size"): tuple,
    ("builtins", "set"): set,
    ("builtins", "frozenset"): frozenset,
}
_ALLOWED.update({("torch", name): _StorageType(name) for name in _STORAGE_DTYPES})


class _Unpickler(pickle.Unpickler):
    def __init__(self, file, path, storages, read_storage):
        super().__init__(file)
        self._path, self._storages, self._read_storage = path, storages, read_storage

    def find_class(self, module, name):
        found = _ALLOWED.get((module, name))
        if found is None:
            raise pickle.UnpicklingError(
                f"{self._path}: refusing to load the global {module}.{name}: a PyTorch checkpoint read by fastnn may "
                f"hold only tensors, storages and containers (the rules of torch.load(weights_only=True)); nothing "
                f"in the file was run")
        return found

    def persistent_load(self, pid):
        if not (isinstance(pid, tuple) and len(pid) >= 5 and pid[0] == "storage"
                and isinstance(pid[1], _StorageType)):
            raise pickle.UnpicklingError(f"{self._path}: unexpected persistent id {pid!r}")
        _, storage_type, key, _location, numel = pid[:5]
        storage = self._storages.get(key)
        if storage is None:
            if not isinstance(numel, int) or numel < 0:
                raise pickle.UnpicklingError(f"{self._path}: storage {key!r} has an invalid size {numel!r}")
            storage = self._storages[key] = _Storage(key, storage_type, numel)
            if self._read_storage is not None:
                storage.array = self._read_storage(storage)
        return storage


def _storage_array(raw, storage, path, big_endian=False):
    dtype = storage.type.dtype
    if dtype == "bfloat16":  # NumPy has no bfloat16: widen the 16 high bits of a float32, exactly
        bits = np.frombuffer(raw, dtype=">u2" if big_endian else "<u2")
        array = (bits.astype(np.uint32) << 16).view(np.float32)
        expected = storage.numel
    else:
        dtype = np.dtype(dtype).newbyteorder(">" if big_endian else "<")
        array = np.frombuffer(raw, dtype=dtype)
        expected = storage.numel
    if array.size != expected:
        raise TorchFormatError(f"{path}: storage {storage.key!r} holds {array.size} elements, the pickle says "
                               f"{expected} (truncated or corrupted file)")
    return array.astype(array.dtype.newbyteorder("="), copy=True)


def _materialize(obj, path):
    from fastnn.nn.parameter import Parameter
    from fastnn.tensor import Tensor

    def tensor_of(pending):
        array = pending.storage.array
        if any(s < 0 for s in pending.stride) or pending.offset < 0 or len(pending.size) != len(pending.stride):
            raise TorchFormatError(f"{path}: invalid tensor layout (offset {pending.offset}, size {pending.size}, "
                                   f"stride {pending.stride})")
        if 0 not in pending.size:
            last = pending.offset + sum((n - 1) * s for n, s in zip(pending.size, pending.stride))
            if last >= array.size:
                raise TorchFormatError(f"{path}: a tensor of size {pending.size} and stride {pending.stride} at "
                                       f"offset {pending.offset} reaches past its storage of {array.size} elements")
        view = np.lib.stride_tricks.as_strided(array[pending.offset:], shape=pending.size,
                                               strides=[s * array.itemsize for s in pending.stride])
        if pending.parameter:
            return Parameter(Tensor(view), requires_grad=pending.requires_grad)
        return Tensor(view, requires_grad=pending.requires_grad)

    def walk(value):
        if isinstance(value, _PendingTensor):
            return tensor_of(value)
        if isinstance(value, dict):
            out = type(value)() if isinstance(value, collections.OrderedDict) else {}
            for k, v in value.items():
                out[k] = walk(v)
            return out
        if isinstance(value, (list, tuple)):
            return type(value)(walk(v) for v in value)
        if isinstance(value, (_Storage, _StorageType)):
            raise TorchFormatError(f"{path}: a bare storage outside a tensor is not supported")
        return value
    return walk(obj)


def is_torch_file(head):
    """Whether the first bytes of a file look like a PyTorch checkpoint (zip, or the legacy pickle's magic)."""
    return head.startswith(b"PK\x03\x04") or head.startswith(b"\x80\x02\x8a\x0al\xfc\x9cF\xf9 j\xa8P\x19")


def load(path):
    """The object saved by torch.save in `path` (a path or a binary file object), tensors as fastnn tensors."""
    if hasattr(path, "read"):
        data, name = path.read(), getattr(path, "name", "<file object>")
    else:
        with open(path, "rb") as f:
            data = f.read()
        name = str(path)
    try:
        if data.startswith(b"PK\x03\x04"):
            return _load_zip(data, name)
        return _load_legacy(data, name)
    except (pickle.UnpicklingError, TorchFormatError):
        raise
    except (EOFError, zipfile.BadZipFile, KeyError, struct.error, ValueError, TypeError, IndexError,
            AttributeError) as exc:
        raise TorchFormatError(f"{name}: not a readable PyTorch checkpoint ({type(exc).__name__}: {exc})") from None


def _load_zip(data, name):
    archive = zipfile.ZipFile(io.BytesIO(data))
    pickles = [n for n in archive.namelist() if n.endswith("/data.pkl") or n == "data.pkl"]
    if len(pickles) != 1:
        raise TorchFormatError(f"{name}: a zip file without exactly one data.pkl is not a PyTorch checkpoint")
    prefix = pickles[0][:-len("data.pkl")]
    byteorder = f"{prefix}byteorder"
    big_endian = byteorder in archive.namelist() and archive.read(byteorder).strip() == b"big"

    def read_storage(storage):
        return _storage_array(archive.read(f"{prefix}data/{storage.key}"), storage, name, big_endian)
    result = _Unpickler(io.BytesIO(archive.read(pickles[0])), name, {}, read_storage).load()
    return _materialize(result, name)


def _load_legacy(data, name):
    f = io.BytesIO(data)

    def primitive():
        return _Unpickler(f, name, {}, None).load()
    if primitive() != _LEGACY_MAGIC:
        raise TorchFormatError(f"{name}: not a PyTorch checkpoint (neither a zip file nor the legacy magic number)")
    if primitive() != _LEGACY_PROTOCOL:
        raise TorchFormatError(f"{name}: unsupported legacy PyTorch protocol version")
    sys_info = primitive()
    big_endian = isinstance(sys_info, dict) and sys_info.get("little_endian") is False
    storages = {}
    result = _Unpickler(f, name, storages, None).load()
    keys = primitive()
    if not isinstance(keys, list):
        raise TorchFormatError(f"{name}: the legacy storage key list is missing")
    for key in keys:
        storage = storages.get(key)
        if storage is None:
            raise TorchFormatError(f"{name}: storage {key!r} is listed but no tensor uses it")
        (numel,) = struct.unpack(">q" if big_endian else "<q", f.read(8))
        itemsize = 2 if storage.type.dtype == "bfloat16" else np.dtype(storage.type.dtype).itemsize
        raw = f.read(numel * itemsize)
        storage.numel = numel
        storage.array = _storage_array(raw, storage, name, big_endian)
    missing = [k for k, s in storages.items() if s.array is None]
    if missing:
        raise TorchFormatError(f"{name}: storages {missing} have no data (truncated file)")
    return _materialize(result, name)

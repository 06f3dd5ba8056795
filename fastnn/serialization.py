"""fastnn.save / fastnn.load: tensors, state dicts and nested containers of them, in a safetensors file.

Format "fastnn-checkpoint-v2": a plain safetensors file (https://github.com/huggingface/safetensors), written with
its NumPy API. Every array in the saved object is one safetensors tensor, named by its place in the object
("model/conv1.weight"), so other tools read the weights directly. Everything that is not an array (the nesting of
dicts, lists and tuples, ints, floats, strings, None, optimizer hyperparameters and step counts, scheduler state,
RNG states, epochs) is a JSON document in the header's `__metadata__` under "fastnn", next to the format name and
the fastnn version. Loading parses JSON and raw arrays only: it never executes code.

A safetensors file without fastnn's metadata (weights from another framework) loads as an OrderedDict of
name -> Tensor; `key_map=` (or `remap_state_dict`) renames its keys to a fastnn model's.

The v1 format of fastnn 0.1 was a pickle. Loading one is refused unless `allow_pickle=True` (convert a file you
trust once: `fastnn.save(fastnn.load(path, allow_pickle=True), path)`); even then, with weights_only (the default),
only the containers, numbers and arrays v1 wrote are unpickled.

Writes are atomic: the file is written to `.NAME.PID.fastnn-tmp` in the target's directory, fsync'd, renamed over
the target and the directory fsync'd, so a save interrupted at any moment leaves the previous file intact. The
temporary file is removed when the save fails with an exception; one left by a killed process is removed by the
next save to the same target. The file gets the mode the umask gives a new file.
"""
import collections
import io
import json
import math
import os
import pickle
import pickletools
import re

import numpy as np

from fastnn import torch_format
from fastnn.tensor import Tensor

__all__ = ["save", "load", "remap_state_dict", "FORMAT"]

FORMAT = "fastnn-checkpoint-v2"
_V1_FORMAT = "fastnn-checkpoint-v1"
_META_KEY = "fastnn"
_TMP_SUFFIX = ".fastnn-tmp"
# Which dict types round-trip, and the defaultdict factories a file may name (no other callable is ever looked up).
_DICT_TYPES = {"dict": dict, "OrderedDict": collections.OrderedDict, "Counter": collections.Counter,
               "defaultdict": collections.defaultdict}
_FACTORIES = {"list": list, "dict": dict, "int": int, "float": float, "set": set, "str": str, "tuple": tuple,
              "OrderedDict": collections.OrderedDict, None: None}
_SAFETENSORS_DTYPES = {"bool", "uint8", "int8", "int16", "int32", "int64", "uint16", "uint32", "uint64",
                       "float16", "float32", "float64"}

# The safetensors dtype names of the above.
_NUMPY_SAFETENSORS = {"BOOL", "U8", "I8", "I16", "I32", "I64", "U16", "U32", "U64", "F16", "F32", "F64"}


# ---- encoding: object -> (JSON tree, {name: array}) -------------------------------------------------------------

class _Encoder:
    def __init__(self):
        self.arrays = {}

    def array(self, arr, path):
        arr = np.asarray(arr)
        if arr.dtype.name not in _SAFETENSORS_DTYPES:
            raise TypeError(f"fastnn.save: cannot store an array of dtype {arr.dtype} at {path or 'the top level'} "
                            f"(supported: {', '.join(sorted(_SAFETENSORS_DTYPES))})")
        # C order and native byte order; np.require keeps 0-d arrays 0-d (np.ascontiguousarray would make them 1-d).
        arr = np.require(arr.astype(arr.dtype.newbyteorder("="), copy=False), requirements="C")
        name = path.lstrip("/") or "tensor"
        base, n = name, 1
        while name in self.arrays:  # a key containing "/" can collide with a nested path: keep both
            name, n = f"{base}#{n}", n + 1
        self.arrays[name] = arr
        return name

    def encode(self, obj, path=""):
        if isinstance(obj, np.generic):  # before the Python scalars: np.float64 is a float subclass
            return {"$": "scalar", "key": self.array(np.asarray(obj), path)}
        if obj is None or isinstance(obj, (bool, str)):
            return obj
        if isinstance(obj, int):
            return obj
        if isinstance(obj, float):
            return obj if math.isfinite(obj) else {"$": "float", "value": repr(obj)}
        if isinstance(obj, Tensor):
            host = obj.detach()
            host = host.cpu() if hasattr(host, "cpu") else host
            out = {"$": "tensor", "key": self.array(host.numpy(), path), "requires_grad": bool(obj.requires_grad),
                   "device": str(obj.device)}
            if _is_parameter(obj):
                out["parameter"] = True
            return out
        if isinstance(obj, np.ndarray):
            return {"$": "ndarray", "key": self.array(obj, path)}
        if isinstance(obj, dict):
            kind = type(obj).__name__ if type(obj) in _DICT_TYPES.values() else None
            if kind is None:
                raise TypeError(f"fastnn.save: cannot store a {type(obj).__name__} at {path or 'the top level'} "
                                f"(dicts may be dict, OrderedDict, Counter or defaultdict)")
            items = [[self.encode(k, f"{path}/<key {i}>"), self.encode(v, f"{path}/{k}")]
                     for i, (k, v) in enumerate(obj.items())]
            out = {"$": "dict", "type": kind, "items": items}
            if kind == "defaultdict":
                factory = obj.default_factory
                name = None if factory is None else getattr(factory, "__name__", None)
                if name not in _FACTORIES or _FACTORIES[name] is not factory:
                    raise TypeError(f"fastnn.save: cannot store a defaultdict with default_factory {factory!r} at "
                                    f"{path or 'the top level'} (allowed: {', '.join(map(str, _FACTORIES))})")
                out["default_factory"] = name
            return out
        if isinstance(obj, list):
            return [self.encode(v, f"{path}/{i}") for i, v in enumerate(obj)]
        if isinstance(obj, tuple) and type(obj) is tuple:
            return {"$": "tuple", "items": [self.encode(v, f"{path}/{i}") for i, v in enumerate(obj)]}
        if isinstance(obj, (set, frozenset)):
            return {"$": type(obj).__name__, "items": [self.encode(v, f"{path}/{i}") for i, v in enumerate(obj)]}
        if isinstance(obj, bytes):
            return {"$": "bytes", "hex": obj.hex()}
        raise TypeError(f"fastnn.save: cannot store a {type(obj).__name__} at {path or 'the top level'}: only "
                        f"tensors, arrays, numbers, strings, None and dict/list/tuple/set containers of them are "
                        f"saved (functions and other objects never are)")


def _is_parameter(t):
    from fastnn.nn.parameter import Parameter
    return isinstance(t, Parameter)


# ---- decoding: (JSON tree, arrays) -> object ---------------------------------------------------------------------

class _Decoder:
    def __init__(self, path, arrays, map_location):
        self.path, self.arrays, self.map_location = path, arrays, map_location

    def bad(self, what):
        return ValueError(f"{self.path}: corrupted fastnn checkpoint ({what})")

    def array(self, node):
        key = node.get("key")
        if key not in self.arrays:
            raise self.bad(f"the metadata refers to a tensor {key!r} the file does not hold")
        return self.arrays[key]

    def decode(self, node):
        if node is None or isinstance(node, (bool, int, float, str)):
            return node
        if isinstance(node, list):
            return [self.decode(v) for v in node]
        if not isinstance(node, dict) or not isinstance(node.get("$"), str):
            raise self.bad(f"unexpected JSON value {str(node)[:80]!r}")
        kind = node["$"]
        if kind == "tensor":
            return _make_tensor(self.array(node), node, self.map_location)
        if kind == "ndarray":
            return self.array(node)
        if kind == "scalar":
            return self.array(node)[()]
        if kind == "float":
            if node.get("value") not in ("inf", "-inf", "nan"):
                raise self.bad(f"bad float {node.get('value')!r}")
            return float(node["value"])
        if kind == "dict":
            cls = _DICT_TYPES.get(node.get("type"))
            if cls is None:
                raise self.bad(f"unknown dict type {node.get('type')!r}")
            if cls is collections.defaultdict:
                if node.get("default_factory") not in _FACTORIES:
                    raise self.bad(f"defaultdict factory {node.get('default_factory')!r} is not allowed")
                out = collections.defaultdict(_FACTORIES[node["default_factory"]])
            else:
                out = cls()
            for pair in node.get("items", []):
                if not (isinstance(pair, list) and len(pair) == 2):
                    raise self.bad(f"a dict item is not a [key, value] pair: {str(pair)[:80]!r}")
                out[_hashable(self.decode(pair[0]))] = self.decode(pair[1])
            return out
        if kind in ("tuple", "set", "frozenset"):
            items = [self.decode(v) for v in node.get("items", [])]
            return {"tuple": tuple, "set": set, "frozenset": frozenset}[kind](
                items if kind == "tuple" else map(_hashable, items))
        if kind == "bytes":
            return bytes.fromhex(node.get("hex", ""))
        raise self.bad(f"unknown value type {kind!r}")


def _hashable(v):
    return tuple(_hashable(x) for x in v) if isinstance(v, list) else v


def _target_device(saved_device, map_location):
    if map_location is None:
        return saved_device
    if isinstance(map_location, dict):
        return str(map_location.get(saved_device, saved_device))
    return str(map_location)


def _make_tensor(arr, node, map_location):
    saved_device = node.get("device", "cpu")
    if callable(map_location) and not isinstance(map_location, (str, dict)):
        tensor = map_location(Tensor(arr), saved_device)
        if not isinstance(tensor, Tensor):
            raise TypeError(f"map_location must return a Tensor, got {type(tensor).__name__}")
    else:
        device = _target_device(saved_device, map_location)
        if device == "cpu":
            tensor = Tensor(arr)
        else:
            from fastnn.factory import tensor as make
            tensor = make(arr, device=device)
    if node.get("parameter"):
        from fastnn.nn.parameter import Parameter
        return Parameter(tensor, requires_grad=bool(node.get("requires_grad", True)))
    if node.get("requires_grad"):
        tensor.requires_grad_(True)
    return tensor


# ---- save --------------------------------------------------------------------------------------------------------

def _version():
    import fastnn
    return getattr(fastnn, "__version__", "unknown")


def save(obj, f):
    """Save `obj` (tensors, arrays, state dicts of models, optimizers and schedulers, and dict/list/tuple
    containers of them with ints, floats, strings, bools and None) to the path `f`, atomically (or to a binary
    file object `f`).

    Raises TypeError naming the place of anything else (functions, arbitrary objects): they are never saved.
    """
    writable = hasattr(f, "write")
    if not writable and not isinstance(f, (str, bytes, os.PathLike)):
        raise TypeError(f"fastnn.save: f must be a path (str or os.PathLike) or a binary file object, got "
                        f"{type(f).__name__}")
    from safetensors.numpy import save as save_bytes
    encoder = _Encoder()
    tree = encoder.encode(obj)
    metadata = {"format": FORMAT, "fastnn_version": _version(),
                _META_KEY: json.dumps(tree, allow_nan=False, separators=(",", ":"))}
    if writable:  # a stream (io.BytesIO, an open file): written as is, atomicity is the caller's
        f.write(save_bytes(encoder.arrays, metadata=metadata))
        return
    path = os.path.abspath(os.fsdecode(f))
    directory, name = os.path.split(path)
    _remove_stale_temps(directory, name)
    tmp = os.path.join(directory, f".{name}.{os.getpid()}{_TMP_SUFFIX}")
    try:
        # Created with 0o666 so the umask decides the final mode (mkstemp and safetensors' save_file give 0600).
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o666)
        with os.fdopen(fd, "wb") as stream:
            stream.write(save_bytes(encoder.arrays, metadata=metadata))
            stream.flush()
            os.fsync(stream.fileno())
        os.replace(tmp, path)
    except BaseException:
        try:
            os.remove(tmp)
        except OSError:
            pass
        raise
    _fsync_directory(directory)


def _fsync_directory(directory):
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:  # platforms that cannot open directories (Windows)
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def _remove_stale_temps(directory, name):
    """Remove temporary files of earlier saves to `name` whose process no longer runs (killed mid-save)."""
    pattern = re.compile(re.escape(f".{name}.") + r"(\d+)" + re.escape(_TMP_SUFFIX) + "$")
    try:
        entries = os.listdir(directory)
    except OSError:
        return
    for entry in entries:
        match = pattern.match(entry)
        if match is None:
            continue
        pid = int(match.group(1))
        if pid != os.getpid() and _process_alive(pid):
            continue  # another process is saving to the same target right now
        try:
            os.remove(os.path.join(directory, entry))
        except OSError:
            pass


def _process_alive(pid):
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (PermissionError, OSError):
        return True
    return True


# ---- load --------------------------------------------------------------------------------------------------------

def load(f, map_location=None, *, weights_only=None, allow_pickle=False, key_map=None):
    """Load what `save` wrote to the path `f` (or a safetensors file from another tool, as an OrderedDict of
    name -> Tensor).

    map_location: None (the saved device), a device name, a dict {saved device: device} or a callable
    (tensor, saved device) -> tensor, as in torch.load. weights_only: accepted for torch.load's signature;
    fastnn-v2 files never execute code either way, and for a v1 pickle (with allow_pickle=True) True or None
    unpickles only containers, numbers and arrays, False everything (only for files you trust). key_map: a dict
    {old key: new key or None to drop} or a callable key -> new key or None, applied to the keys of the loaded
    dict (see remap_state_dict), for weights saved under another framework's names.

    Raises ValueError naming the path for a file that is not a fastnn checkpoint (truncated, corrupted, a
    PyTorch zip or pickle, a v1 pickle without allow_pickle=True).
    """
    readable = hasattr(f, "read")
    if not readable and not isinstance(f, (str, bytes, os.PathLike)):
        raise TypeError(f"fastnn.load: f must be a path (str or os.PathLike) or a binary file object, got "
                        f"{type(f).__name__}")
    if weights_only not in (None, True, False):
        raise TypeError(f"fastnn.load: weights_only must be None, True or False, got {weights_only!r}")
    if readable:  # a stream: read whole, then parsed as a file would be
        data = f.read()
        if not isinstance(data, bytes):
            raise TypeError(f"fastnn.load: the file object must be opened in binary mode (read() gave "
                            f"{type(data).__name__})")
        path, opened = str(getattr(f, "name", "<file object>")), io.BytesIO(data)
    else:
        path = os.fsdecode(f)
        opened = open(path, "rb")
    with opened as stream:
        head = stream.read(8)
        size = stream.seek(0, os.SEEK_END)
        stream.seek(8)
        header_len = int.from_bytes(head, "little") if len(head) == 8 else -1
        header_ok = len(head) == 8 and 2 <= header_len <= size - 8 and header_len <= 100_000_000
        if header_ok:
            first = stream.read(1)
            header_ok = first == b"{"
        if not header_ok:
            stream.seek(0)
            return _load_other(path, stream, head, allow_pickle, weights_only, map_location, key_map)
        stream.seek(8)
        header_bytes = stream.read(header_len)
    try:
        header = json.loads(header_bytes)
    except (ValueError, UnicodeDecodeError) as exc:
        raise ValueError(f"{path}: corrupted checkpoint (its safetensors header is not valid JSON: {exc})") from None
    if not isinstance(header, dict):
        raise ValueError(f"{path}: corrupted checkpoint (its safetensors header is not a JSON object)")
    arrays = _read_arrays(path, header, size - 8 - header_len, data if readable else None)
    metadata = header.get("__metadata__") or {}
    if not isinstance(metadata, dict) or _META_KEY not in metadata:
        # A safetensors file from another tool: its tensors by name.
        obj = collections.OrderedDict((k, Tensor(arrays[k])) for k in header if k != "__metadata__")
        return remap_state_dict(obj, key_map) if key_map is not None else obj
    if metadata.get("format") != FORMAT:
        raise ValueError(f"{path}: unsupported fastnn checkpoint format {metadata.get('format')!r} (this fastnn "
                         f"{_version()} reads {FORMAT!r}; the file was written by fastnn "
                         f"{metadata.get('fastnn_version', '?')})")
    try:
        tree = json.loads(metadata[_META_KEY])
    except (ValueError, TypeError) as exc:
        raise ValueError(f"{path}: corrupted fastnn checkpoint (its metadata is not valid JSON: {exc})") from None
    obj = _Decoder(path, arrays, map_location).decode(tree)
    return remap_state_dict(obj, key_map) if key_map is not None else obj


def _read_arrays(path, header, data_len, data=None):
    """The arrays of a safetensors file (or of its bytes `data`), after checking every header entry against the
    data size."""
    from safetensors import SafetensorError
    from safetensors.numpy import load as load_bytes, load_file
    for name, entry in header.items():
        if name == "__metadata__":
            continue
        offsets = entry.get("data_offsets") if isinstance(entry, dict) else None
        if not (isinstance(offsets, list) and len(offsets) == 2 and all(isinstance(o, int) for o in offsets)):
            raise ValueError(f"{path}: corrupted checkpoint (tensor {name!r} has no valid data_offsets)")
        if entry.get("dtype") not in _NUMPY_SAFETENSORS:
            raise ValueError(f"{path}: tensor {name!r} has dtype {entry.get('dtype')!r}, which NumPy (and so "
                             f"fastnn) cannot hold; supported: {', '.join(sorted(_NUMPY_SAFETENSORS))}")
        if offsets[1] > data_len:
            raise ValueError(f"{path}: truncated checkpoint (tensor {name!r} ends at byte {offsets[1]} of the "
                             f"data section, which holds only {data_len} bytes)")
    try:
        return load_file(path) if data is None else load_bytes(data)
    except (SafetensorError, ValueError, TypeError, OSError) as exc:
        raise ValueError(f"{path}: corrupted checkpoint (safetensors could not read it: {exc})") from None


def _load_torch(path, stream, map_location, key_map):
    """A torch.save file, read by fastnn.torch_format's restricted unpickler (never runs code)."""
    try:
        obj = torch_format.load(stream)
    except (pickle.UnpicklingError, torch_format.TorchFormatError) as exc:
        message = str(exc).replace("<file object>: ", "")
        raise ValueError(message if message.startswith(path) else f"{path}: {message}") from None
    if map_location is not None:
        obj = _relocate(obj, map_location)
    return remap_state_dict(obj, key_map) if key_map is not None else obj


def _relocate(obj, map_location):
    """`obj` with every tensor (saved on the CPU) placed as map_location says."""
    if isinstance(obj, Tensor):
        node = {"device": "cpu", "parameter": type(obj).__name__ == "Parameter", "requires_grad": obj.requires_grad}
        return _make_tensor(obj.detach().numpy(), node, map_location)
    if isinstance(obj, dict):
        return type(obj)((k, _relocate(v, map_location)) for k, v in obj.items())
    if isinstance(obj, (list, tuple)):
        return type(obj)(_relocate(v, map_location) for v in obj)
    return obj


def _load_other(path, stream, head, allow_pickle, weights_only, map_location, key_map):
    """A file that is not safetensors: a v1 pickle (loaded only when allowed), else a clear refusal."""
    expected = f"expected a fastnn checkpoint ({FORMAT}, a safetensors file) or a PyTorch one"
    if head[:4] == b"PK\x03\x04":
        import zipfile
        try:
            names = zipfile.ZipFile(stream).namelist()
        except zipfile.BadZipFile:
            names = []
        if any(n.endswith("data.pkl") for n in names):
            stream.seek(0)
            return _load_torch(path, stream, map_location, key_map)
        raise ValueError(f"{path} is a zip archive ({', '.join(names[:3]) or 'unreadable'}...), {expected}")
    if head[:1] == b"\x80":
        data = stream.read()
        if torch_format.is_torch_file(data):  # PyTorch's legacy (pre-1.6) format
            return _load_torch(path, io.BytesIO(data), map_location, key_map)
        is_v1 = _pickle_mentions(data, _V1_FORMAT)
        if not allow_pickle:
            what = "a fastnn 0.1 checkpoint (format v1, a pickle)" if is_v1 else "a pickle file"
            raise ValueError(f"{path} is {what}, {expected}. Unpickling can execute code, so it is refused. If you "
                             f"trust the file, convert it once: fastnn.save(fastnn.load(path, allow_pickle=True), "
                             f"path)")
        return _load_v1(path, data, weights_only, map_location, key_map)
    if len(head) < 8:
        raise ValueError(f"{path} is truncated ({len(head)} bytes), {expected}")
    if head[:6] == b"\x93NUMPY":
        raise ValueError(f"{path} is a NumPy .npy file, {expected}; read it with numpy.load")
    raise ValueError(f"{path} is not a fastnn checkpoint: {expected}, but its first 8 bytes "
                     f"{head!r} are no valid safetensors header length (truncated, corrupted or another format)")


def _pickle_mentions(data, text):
    """Whether the pickle `data` holds the string `text`, found by parsing its opcodes (never executing them)."""
    try:
        for opcode, arg, _ in pickletools.genops(io.BytesIO(data)):
            if arg == text:
                return True
    except Exception:  # a damaged pickle: it is not a v1 checkpoint we recognize
        return False
    return False


class _WeightsUnpickler(pickle.Unpickler):
    """Unpickles only what fastnn 0.1's v1 format wrote: containers, numbers, strings and NumPy arrays."""

    _ALLOWED = {("collections", "OrderedDict"), ("collections", "Counter"), ("collections", "defaultdict"),
                ("builtins", "list"), ("builtins", "dict"), ("builtins", "set"), ("builtins", "frozenset"),
                ("builtins", "tuple"), ("builtins", "int"), ("builtins", "float"), ("builtins", "str"),
                ("builtins", "bool"), ("builtins", "complex"), ("builtins", "bytes"),
                ("numpy", "ndarray"), ("numpy", "dtype"),
                ("numpy.core.multiarray", "_reconstruct"), ("numpy._core.multiarray", "_reconstruct"),
                ("numpy.core.multiarray", "scalar"), ("numpy._core.multiarray", "scalar"),
                ("numpy.core.numeric", "_frombuffer"), ("numpy._core.numeric", "_frombuffer")}

    def find_class(self, module, name):
        if (module, name) in self._ALLOWED or (module == "numpy.dtypes" and name.endswith("DType")):
            return super().find_class(module, name)
        raise pickle.UnpicklingError(f"{module}.{name} is not allowed with weights_only")


def _load_v1(path, data, weights_only, map_location, key_map):
    try:
        if weights_only is False:
            blob = pickle.loads(data)
        else:
            blob = _WeightsUnpickler(io.BytesIO(data)).load()
    except pickle.UnpicklingError as exc:
        raise ValueError(f"{path}: could not unpickle ({exc}); if you trust this file, pass weights_only=False "
                         f"too") from None
    except (EOFError, ValueError, TypeError, AttributeError, ImportError, IndexError, KeyError) as exc:
        raise ValueError(f"{path}: truncated or corrupted pickle ({type(exc).__name__}: {exc})") from None
    if not isinstance(blob, dict) or blob.get("format") != _V1_FORMAT:
        raise ValueError(f"{path} is a pickle but not a fastnn v1 checkpoint (missing format tag {_V1_FORMAT!r})")
    obj = _decode_v1(blob["payload"], map_location)
    return remap_state_dict(obj, key_map) if key_map is not None else obj


def _decode_v1(obj, map_location):
    if isinstance(obj, dict):
        if "__fastnn_tensor__" in obj:
            arr = np.asarray(obj["__fastnn_tensor__"])
            return _make_tensor(arr, {"requires_grad": obj.get("requires_grad", False)}, map_location)
        out = obj.copy()
        for k, v in obj.items():
            out[k] = _decode_v1(v, map_location)
        return out
    if isinstance(obj, (list, tuple)):
        return type(obj)(_decode_v1(v, map_location) for v in obj)
    return obj


# ---- key mapping -------------------------------------------------------------------------------------------------

def remap_state_dict(state_dict, mapping):
    """A copy of `state_dict` with its keys renamed, for weights saved under another framework's names.

    mapping: a dict {old key: new key, or None to drop the entry} (keys it does not name are kept), or a callable
    key -> new key or None (e.g. `lambda k: k.removeprefix("module.")`). Two keys renamed to the same new key are
    an error. The result keeps the input's dict type (an OrderedDict stays one).
    """
    if not isinstance(state_dict, dict):
        raise TypeError(f"remap_state_dict: state_dict must be a dict, got {type(state_dict).__name__}")
    if isinstance(mapping, dict):
        rename = lambda key: mapping.get(key, key)  # noqa: E731
    elif callable(mapping):
        rename = mapping
    else:
        raise TypeError(f"key_map must be a dict or a callable, got {type(mapping).__name__}")
    out = type(state_dict)() if type(state_dict) in (dict, collections.OrderedDict) else collections.OrderedDict()
    sources = {}
    for key, value in state_dict.items():
        new = rename(key)
        if new is None:
            continue
        if new in sources:
            raise ValueError(f"key_map maps both {sources[new]!r} and {key!r} to {new!r}")
        sources[new] = key
        out[new] = value
    return out

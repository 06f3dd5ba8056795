"""fastnn.save / fastnn.load: tensors, state dicts and nested containers of them, in one pickle file.

Writes go to a temporary file in the same directory and are renamed into place, so an interrupted save
never destroys an existing checkpoint.
"""
import copy
import os
import pickle
import tempfile

import numpy as np

from fastnn.tensor import Tensor

_FORMAT = "fastnn-checkpoint-v1"


def _encode(obj):
    if isinstance(obj, Tensor):
        return {"__fastnn_tensor__": np.ascontiguousarray(obj.data), "requires_grad": obj.requires_grad}
    if isinstance(obj, dict):
        return _map_dict(obj, _encode)
    if isinstance(obj, (list, tuple)):
        return type(obj)(_encode(v) for v in obj)
    return obj


def _decode(obj):
    if isinstance(obj, dict):
        if "__fastnn_tensor__" in obj:
            return Tensor(obj["__fastnn_tensor__"], requires_grad=obj["requires_grad"])
        return _map_dict(obj, _decode)
    if isinstance(obj, (list, tuple)):
        return type(obj)(_decode(v) for v in obj)
    return obj


def _map_dict(obj, fn):
    """`obj` with fn applied to every value, keeping the dict's type (Counter, defaultdict's factory, ...)."""
    mapped = copy.copy(obj)
    for k, v in obj.items():
        mapped[k] = fn(v)
    return mapped


def save(obj, path):
    """Save tensors, state dicts (model or optimizer) and plain Python containers to `path` atomically."""
    path = os.fspath(path)
    directory = os.path.dirname(os.path.abspath(path))
    fd, tmp = tempfile.mkstemp(prefix=".fastnn-save-", dir=directory)
    try:
        with os.fdopen(fd, "wb") as f:
            pickle.dump({"format": _FORMAT, "payload": _encode(obj)}, f, protocol=pickle.HIGHEST_PROTOCOL)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.remove(tmp)
        raise


def load(path):
    """Load what `save` wrote. Only load files you trust: the format is a pickle."""
    with open(os.fspath(path), "rb") as f:
        try:
            blob = pickle.load(f)
        except (pickle.UnpicklingError, EOFError) as exc:
            raise ValueError(f"{path} is not a fastnn checkpoint (could not unpickle: {exc})") from None
    if not isinstance(blob, dict) or blob.get("format") != _FORMAT:
        raise ValueError(f"{path} is not a fastnn checkpoint (missing format tag {_FORMAT!r})")
    return _decode(blob["payload"])

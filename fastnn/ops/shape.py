"""Shape ops: views, indexing, concatenation, padding."""
import numpy as np

from fastnn.autograd import make_result, unbroadcast
from fastnn.ops._util import normalize_dim, shape_args
from fastnn.tensor import Tensor


def reshape(x, shape):
    shape = shape_args(shape) if isinstance(shape, (tuple, list)) else (shape,)
    try:
        out = x.data.reshape(shape)
    except ValueError:
        raise ValueError(f"shape {list(shape)} is invalid for input of size {x.data.size} "
                         f"(shape {tuple(x.shape)})") from None
    return make_result(out, (x,), lambda g: (g.reshape(x.shape),), "reshape")


def flatten(x, start_dim=0, end_dim=-1):
    if x.ndim == 0:
        return reshape(x, (1,))
    start, end = normalize_dim(start_dim, x.ndim), normalize_dim(end_dim, x.ndim)
    if start > end:
        raise ValueError(f"flatten: start_dim {start_dim} comes after end_dim {end_dim}")
    shape = x.shape[:start] + (int(np.prod(x.shape[start:end + 1])),) + x.shape[end + 1:]
    return reshape(x, shape)


def permute(x, dims):
    dims = tuple(normalize_dim(d, x.ndim) for d in dims)
    if sorted(dims) != list(range(x.ndim)):
        raise ValueError(f"permute: dims {dims} are not a permutation of {x.ndim} dimensions")
    inverse = tuple(np.argsort(dims))
    return make_result(x.data.transpose(dims), (x,), lambda g: (g.transpose(inverse),), "permute")


def transpose(x, dim0, dim1):
    dims = list(range(x.ndim))
    d0, d1 = normalize_dim(dim0, x.ndim), normalize_dim(dim1, x.ndim)
    dims[d0], dims[d1] = dims[d1], dims[d0]
    return permute(x, dims)


def expand(x, sizes):
    sizes = shape_args(sizes)
    if len(sizes) < x.ndim:
        raise ValueError(f"expand: the number of sizes ({len(sizes)}) must be >= the tensor's dims ({x.ndim})")
    lead = len(sizes) - x.ndim
    if -1 in sizes[:lead]:
        raise ValueError(f"expand: size -1 is not allowed in a new leading dimension (sizes {sizes}, tensor shape "
                         f"{tuple(x.shape)})")
    target = tuple(s if s != -1 else x.shape[i - lead] for i, s in enumerate(sizes))
    try:
        out = np.broadcast_to(x.data, target)
    except ValueError:
        raise ValueError(f"expand: cannot expand shape {tuple(x.shape)} to {sizes}") from None
    return make_result(out, (x,), lambda g: (unbroadcast(g, x.shape),), "expand")


def squeeze(x, dim=None):
    if dim is None:
        shape = tuple(n for n in x.shape if n != 1)
    else:
        axes = normalize_dim(dim, x.ndim)
        axes = axes if isinstance(axes, tuple) else (axes,)
        shape = tuple(n for i, n in enumerate(x.shape) if not (i in axes and n == 1))
    return reshape(x, shape)


def unsqueeze(x, dim):
    axis = normalize_dim(dim, x.ndim + 1)
    return reshape(x, x.shape[:axis] + (1,) + x.shape[axis:])


def to_index(index):
    """Translate Tensors inside an index into their arrays."""
    if isinstance(index, Tensor):
        return index.data
    if isinstance(index, tuple):
        return tuple(i.data if isinstance(i, Tensor) else i for i in index)
    return index


def _is_basic(index):
    parts = index if isinstance(index, tuple) else (index,)
    return all(p is None or p is Ellipsis or isinstance(p, (slice, int, np.integer)) for p in parts)


def getitem(x, index):
    index = to_index(index)
    try:
        out = x.data[index]
    except IndexError as e:
        raise IndexError(f"{e} (tensor of shape {tuple(x.shape)})") from None
    basic = _is_basic(index)

    def backward(g):
        gx = np.zeros_like(x.data)
        if basic:
            gx[index] = g
        else:
            np.add.at(gx, index, g)  # repeated indices accumulate
        return (gx,)
    return make_result(out if basic else np.asarray(out), (x,), backward, "getitem")


def cat(tensors, dim=0):
    tensors = list(tensors)
    if not tensors:
        raise ValueError("cat expects a non-empty list of tensors")
    axis = normalize_dim(dim, tensors[0].ndim)
    for t in tensors[1:]:
        if t.ndim != tensors[0].ndim or any(a != b for i, (a, b) in enumerate(zip(t.shape, tensors[0].shape))
                                            if i != axis):
            raise ValueError(f"cat: sizes of tensors must match except in dimension {dim}; got "
                             f"{tuple(tensors[0].shape)} and {tuple(t.shape)}")
    out = np.concatenate([t.data for t in tensors], axis=axis)
    splits = np.cumsum([t.shape[axis] for t in tensors])[:-1]

    def backward(g):
        return tuple(np.split(g, splits, axis=axis))
    return make_result(out, tuple(tensors), backward, "cat")


def stack(tensors, dim=0):
    tensors = list(tensors)
    if not tensors:
        raise ValueError("stack expects a non-empty list of tensors")
    for t in tensors[1:]:
        if t.shape != tensors[0].shape:
            raise ValueError(f"stack expects each tensor to be equal size, got {tuple(tensors[0].shape)} and "
                             f"{tuple(t.shape)}")
    axis = normalize_dim(dim, tensors[0].ndim + 1)
    return cat([unsqueeze(t, axis) for t in tensors], axis)


def pad(x, pad, mode="constant", value=0.0):
    """PyTorch's F.pad: `pad` lists (left, right) pairs starting from the LAST dimension."""
    if len(pad) % 2 or len(pad) // 2 > x.ndim:
        raise ValueError(f"pad: padding length {len(pad)} must be even and at most 2 * ndim ({2 * x.ndim})")
    modes = {"constant": "constant", "reflect": "reflect", "replicate": "edge", "circular": "wrap"}
    if mode not in modes:
        raise ValueError(f"pad: mode must be one of {sorted(modes)}, got {mode!r}")
    widths = [(0, 0)] * x.ndim
    for i in range(len(pad) // 2):
        widths[x.ndim - 1 - i] = (int(pad[2 * i]), int(pad[2 * i + 1]))
    if any(lo < 0 or hi < 0 for lo, hi in widths):
        raise ValueError(f"pad: negative padding {tuple(pad)} is not supported")
    if mode == "constant":
        out = np.pad(x.data, widths, mode="constant", constant_values=value)
    else:
        out = np.pad(x.data, widths, mode=modes[mode])

    def backward(g):
        if mode == "constant":
            return (g[tuple(slice(lo, g.shape[i] - hi) for i, (lo, hi) in enumerate(widths))],)
        # Non-constant modes copy input values into the border: route those gradients back by index.
        positions = np.pad(np.arange(x.data.size).reshape(x.shape), widths, mode=modes[mode])
        gx = np.zeros(x.data.size, dtype=g.dtype)
        np.add.at(gx, positions.reshape(-1), g.reshape(-1))
        return (gx.reshape(x.shape),)
    return make_result(out, (x,), backward, "pad")

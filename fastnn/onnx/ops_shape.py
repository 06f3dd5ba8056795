"""Converters of the shape, indexing and padding ops (fastnn/ops/shape.py), embedding (a Gather) and dropout
(the identity: export runs in eval mode).

Sizes the model computed from its input (`x.view(x.size(0), -1)`) arrive as plain ints; `g.reshape_target`
turns the ones that changed between the two traces of a dynamic-axes export back into 0/-1.
"""
import numpy as np

from fastnn.onnx._graph import INT64_MAX
from fastnn.onnx._registry import register_converter
from fastnn.ops._util import normalize_dim
from fastnn.tensor import Tensor


@register_converter("reshape")
def reshape(g, call):
    x = call.arguments["x"]
    return g.op("Reshape", g.name(x), g.reshape_target(x, call.result))


@register_converter("flatten")
def flatten(g, call):
    x = call.arguments["x"]
    if x.ndim >= 2 and normalize_dim(call.arguments["start_dim"], x.ndim) == 1 \
            and normalize_dim(call.arguments["end_dim"], x.ndim) == x.ndim - 1:
        return g.op("Flatten", g.name(x), axis=1)
    return reshape(g, call)


@register_converter("squeeze")
def squeeze(g, call):
    x, dim = call.arguments["x"], call.arguments["dim"]
    dims = range(x.ndim) if dim is None else dim if isinstance(dim, (tuple, list)) else (dim,)
    axes = [a for a in sorted(normalize_dim(d, x.ndim) for d in dims) if x.shape[a] == 1 and a not in g.dynamic(x)]
    return g.op("Squeeze", g.name(x), g.ints(axes)) if axes else g.op("Identity", g.name(x))


@register_converter("unsqueeze")
def unsqueeze(g, call):
    x = call.arguments["x"]
    return g.op("Unsqueeze", g.name(x), g.ints([normalize_dim(call.arguments["dim"], x.ndim + 1)]))


@register_converter("permute")
def permute(g, call):
    x = call.arguments["x"]
    return g.op("Transpose", g.name(x), perm=[normalize_dim(d, x.ndim) for d in call.arguments["dims"]])


@register_converter("transpose")
def transpose(g, call):
    x = call.arguments["x"]
    perm = list(range(x.ndim))
    d0, d1 = (normalize_dim(call.arguments[k], x.ndim) for k in ("dim0", "dim1"))
    perm[d0], perm[d1] = perm[d1], perm[d0]
    return g.op("Transpose", g.name(x), perm=perm)


@register_converter("t")
def t(g, call):
    x = call.arguments["input"]
    return g.op("Transpose", g.name(x), perm=[1, 0]) if x.ndim == 2 else g.op("Identity", g.name(x))


@register_converter("expand")
def expand(g, call):
    """Expand broadcasts both ways, so a size 1 keeps the input's (possibly dynamic) size."""
    x, out = call.arguments["x"], call.result
    lead = out.ndim - x.ndim
    shape = [1 if i >= lead and x.shape[i - lead] == n else n for i, n in enumerate(out.shape)]
    if any(shape[i] != 1 for i in g.dynamic(out)):
        g.unsupported(f"expanding shape {tuple(x.shape)} to a size that depends on the dynamic axes")
    return g.op("Expand", g.name(x), g.ints(shape))


def _basic_index(index):
    parts = index if isinstance(index, tuple) else (index,)
    return all(p is None or p is Ellipsis or isinstance(p, (slice, int, np.integer)) for p in parts)


@register_converter("getitem")
def getitem(g, call):
    """Basic indexing (ints, slices, None, ...) as Slice, Gather of scalars and Unsqueeze; a single integer
    Tensor index on dim 0 as a Gather."""
    x, index = call.arguments["x"], call.arguments["index"]
    if isinstance(index, Tensor) and index.dtype.kind in "iu":
        return g.op("Gather", g.name(x), g.name(index), axis=0)
    if not _basic_index(index):
        g.unsupported("advanced indexing other than one integer Tensor index (use index_select/gather)")
    parts = list(index) if isinstance(index, tuple) else [index]
    if Ellipsis in parts:
        at = parts.index(Ellipsis)
        used = sum(p is not None for p in parts if p is not Ellipsis)
        parts[at:at + 1] = [slice(None)] * (x.ndim - used)
    starts, ends, axes, steps, picks, new_axes = [], [], [], [], [], []
    axis = out_axis = 0
    for p in parts:
        if p is None:
            new_axes.append(out_axis)
            out_axis += 1
            continue
        if isinstance(p, slice):
            if p != slice(None):
                step = 1 if p.step is None else int(p.step)
                starts.append(0 if p.start is None else int(p.start))
                ends.append(INT64_MAX if p.stop is None else int(p.stop))
                axes.append(axis)
                steps.append(step)
            out_axis += 1
        else:
            picks.append((axis, int(p)))
        axis += 1
    out = g.name(x)
    if axes:
        out = g.op("Slice", out, g.ints(starts), g.ints(ends), g.ints(axes), g.ints(steps))
    for axis, i in reversed(picks):  # from the last axis, so earlier axis numbers stay valid
        out = g.op("Gather", out, g.const(np.array(i, np.int64)), axis=axis)
    if new_axes:
        out = g.op("Unsqueeze", out, g.ints(new_axes))
    return out


def _concat(g, tensors, axis, dtype):
    return g.op("Concat", *(g.value(t, dtype) for t in tensors), axis=axis)


@register_converter("cat")
def cat(g, call):
    tensors, out = call.arguments["tensors"], call.result
    return _concat(g, tensors, normalize_dim(call.arguments["dim"], out.ndim), out.dtype)


@register_converter("stack")
def stack(g, call):
    out = call.result
    axis = normalize_dim(call.arguments["dim"], out.ndim)
    return g.op("Concat", *(g.op("Unsqueeze", g.value(t, out.dtype), g.ints([axis]))
                            for t in call.arguments["tensors"]), axis=axis)


def _split(g, x, dim, results):
    axis = normalize_dim(dim, x.ndim)
    sizes = [r.shape[axis] for r in results]
    return g.op("Split", g.name(x), g.ints(sizes), axis=axis, outputs=len(results))


@register_converter("split")
def split(g, call):
    return _split(g, call.arguments["tensor"], call.arguments["dim"], call.result)


@register_converter("chunk")
def chunk(g, call):
    return _split(g, call.arguments["input"], call.arguments["dim"], call.result)


_PAD_MODES = {"constant": "constant", "reflect": "reflect", "replicate": "edge", "circular": "wrap"}


@register_converter("pad")
def pad(g, call):
    x, widths, mode = call.arguments["x"], call.arguments["pad"], call.arguments["mode"]
    if mode == "circular" and g.opset < 19:
        g.unsupported("mode='circular' needs opset_version >= 19 (Pad's 'wrap' mode)")
    begins, ends = [0] * x.ndim, [0] * x.ndim
    for i in range(len(widths) // 2):  # PyTorch lists (left, right) pairs from the last dim
        begins[x.ndim - 1 - i], ends[x.ndim - 1 - i] = int(widths[2 * i]), int(widths[2 * i + 1])
    value = g.value(call.arguments["value"], x.dtype) if mode == "constant" else None
    return g.op("Pad", g.name(x), g.ints(begins + ends), value, mode=_PAD_MODES[mode])


@register_converter("embedding")
def embedding(g, call):
    return g.op("Gather", g.name(call.arguments["weight"]), g.name(call.arguments["input"]), axis=0)


def _dropout(g, call):
    if call.arguments["training"] and call.arguments["p"] > 0:
        g.unsupported("dropout in training mode; the exporter runs the model in eval mode, so this call passes "
                      "training=True explicitly")
    return g.op("Identity", g.name(call.arguments["input"]))


for _name in ("dropout", "dropout2d", "alpha_dropout", "drop_path"):
    register_converter(_name)(_dropout)

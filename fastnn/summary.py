"""fastnn.summary: the per-layer table of a CNN (output shape, parameters, activation memory, multiply-adds,
receptive field), as drawn in lectures for AlexNet and VGG."""
import math
import sys

import numpy as np

from fastnn.autograd import no_grad
from fastnn.factory import zeros
from fastnn.tensor import Tensor, as_dtype


def summary(model, input_shape, dtype="float32", file=None):
    """Run `model` on one zero input of shape (1, *input_shape) and print a row per call of each leaf module.

    Columns: output shape (without the batch dimension); parameters (counted at a module's first call only);
    activation memory of the output in KB (1 KB = 1024 bytes); multiply-adds of conv and linear layers (biases,
    normalisation, pooling and activations are not counted); the receptive field, in input pixels, of one output
    unit of each conv and pooling layer. Through branches (Inception, residual sums, dense concatenations) the
    receptive field is the largest among the branches. Totals follow the table.

    The model runs in eval mode under no_grad; each module's training flag is restored afterwards.
    Returns the rows as a list of dicts with keys name, type, output_shape, params, memory_kb, macs,
    receptive_field (an int, an (h, w) pair when they differ, or None for layers without a spatial window).
    """
    from fastnn.nn.modules.module import Module
    if not isinstance(model, Module):
        raise TypeError(f"summary: model must be a fastnn.nn.Module, got {type(model).__name__}")
    shape = tuple(input_shape) if isinstance(input_shape, (tuple, list)) else None
    if not shape or not all(isinstance(n, (int, np.integer)) and not isinstance(n, bool) and n > 0 for n in shape):
        raise ValueError(f"input_shape must be a non-empty tuple of positive ints (without the batch dimension), "
                         f"got {input_shape!r}")
    tracer = _Tracer(model)
    modes = [(m, m.training) for m in model.modules()]
    handles = []
    for module in model.modules():
        handles.append(module.register_forward_pre_hook(tracer.enter))
        handles.append(module.register_forward_hook(tracer.leave))
    model.eval()
    try:
        with no_grad():
            x = zeros((1,) + tuple(int(n) for n in shape), dtype=as_dtype(dtype))
            tracer.record(x, (1, 1), (1.0, 1.0))
            model(x)
    finally:
        for handle in handles:
            handle.remove()
        for m, training in modes:
            object.__setattr__(m, "training", training)
    _print_table(model, shape, tracer.rows, file or sys.stdout)
    return tracer.rows


class _Tracer:
    """Forward hooks that build the rows and follow each tensor's receptive field (size and jump, the distance
    in input pixels between neighbouring output units) from the input through every module."""

    def __init__(self, model):
        self.names = {id(m): name for name, m in model.named_modules()}
        self.rows = []
        self.seen = set()
        # id(tensor) -> (tensor, rf, jump); the tensor is held so that its id cannot be reused meanwhile.
        self.fields = {}
        # One entry per module call in progress: the largest receptive field seen inside it so far.
        self.scopes = []

    def record(self, tensor, rf, jump):
        self.fields[id(tensor)] = (tensor, rf, jump)
        for i, (best_rf, _) in enumerate(self.scopes):
            if rf[0] * rf[1] > best_rf[0] * best_rf[1]:
                self.scopes[i] = (rf, jump)

    def field_of(self, args):
        """The largest receptive field among the tensors in `args` (lists included); tensors made by functional
        ops between modules (sums, concatenations) get the largest field seen in the enclosing module call."""
        found = [self.fields[id(t)][1:] for t in _tensors(args) if id(t) in self.fields]
        if found:
            return max(found, key=lambda f: f[0][0] * f[0][1])
        return self.scopes[-1] if self.scopes else ((1, 1), (1.0, 1.0))

    def enter(self, module, args):
        self.scopes.append(self.field_of(args))

    def leave(self, module, args, out):
        # For a leaf this is the field of its input: nothing inside a leaf call records a tensor.
        rf, jump = self.scopes.pop()
        outputs = _tensors(out)
        if module._modules:  # a container: its output carries the largest field seen inside it
            for t in outputs:
                if id(t) not in self.fields:
                    self.record(t, rf, jump)
            return
        inputs = _tensors(args)
        window = _window(module, inputs[0].shape[2:] if inputs and inputs[0].ndim == 4 else None)
        if window is not None:
            kernel, stride, dilation = window
            rf = tuple(int(round(r + (d * (k - 1)) * j)) for r, k, d, j in zip(rf, kernel, dilation, jump))
            jump = tuple(j * s for j, s in zip(jump, stride))
        for t in outputs:
            self.record(t, rf, jump)
        first = outputs[0] if outputs else None
        params = 0
        if id(module) not in self.seen:
            self.seen.add(id(module))
            params = sum(p.numel() for p in module.parameters(recurse=False))
        self.rows.append({
            "name": self.names.get(id(module)) or type(module).__name__,
            "type": type(module).__name__,
            "output_shape": tuple(first.shape[1:]) if first is not None else (),
            "params": int(params),
            "memory_kb": first._data.nbytes / 1024 if first is not None else 0.0,
            "macs": _macs(module, first),
            "receptive_field": None if window is None else (rf[0] if rf[0] == rf[1] else rf),
        })


def _tensors(value):
    if isinstance(value, Tensor):
        return [value]
    if isinstance(value, (list, tuple)):
        return [t for v in value for t in _tensors(v)]
    return []


def _window(module, input_hw):
    """(kernel, stride, dilation) pairs of a layer with a spatial window, or None."""
    # fastnn.nn is imported on use: `import fastnn` (which exports summary) does not load the layers.
    from fastnn import nn
    from fastnn._validation import pool_args
    if isinstance(module, nn.Conv2d):
        return module.kernel_size, module.stride, module.dilation
    if isinstance(module, (nn.MaxPool2d, nn.AvgPool2d)):
        kernel, stride, _, dilation = pool_args(type(module).__name__, 2, module.kernel_size, module.stride,
                                                getattr(module, "padding", 0), getattr(module, "dilation", 1))
        return kernel, stride, dilation
    if isinstance(module, (nn.AdaptiveAvgPool2d, nn.AdaptiveMaxPool2d)) and input_hw is not None:
        size = module.output_size if isinstance(module.output_size, (tuple, list)) else (module.output_size,) * 2
        size = tuple(n if o is None else o for o, n in zip(size, input_hw))
        # Window i spans [floor(i n / o), ceil((i + 1) n / o)): the widest is the kernel, n / o the stride.
        kernel = tuple(max(math.ceil((i + 1) * n / o) - (i * n) // o for i in range(o)) for n, o in zip(input_hw, size))
        return kernel, tuple(n / o for n, o in zip(input_hw, size)), (1, 1)
    return None


def _macs(module, out):
    from fastnn import nn
    if out is None:
        return 0
    if isinstance(module, nn.Conv2d):
        return int(out._data.size // out.shape[0] * (module.in_channels // module.groups) *
                   module.kernel_size[0] * module.kernel_size[1])
    if isinstance(module, nn.Linear):
        return int(out._data.size // out.shape[0] * module.in_features)
    return 0


def _print_table(model, input_shape, rows, file):
    header = ("Layer", "Type", "Output shape", "Params", "Memory (KB)", "Mult-adds", "RF")
    cells = [header]
    for row in rows:
        rf = row["receptive_field"]
        cells.append((row["name"], row["type"], "×".join(str(n) for n in row["output_shape"]),
                      f"{row['params']:,}", f"{row['memory_kb']:,.1f}", f"{row['macs']:,}",
                      "" if rf is None else (str(rf) if isinstance(rf, int) else f"{rf[0]}×{rf[1]}")))
    widths = [max(len(c[i]) for c in cells) for i in range(len(header))]
    line = "-" * (sum(widths) + 2 * (len(widths) - 1))

    def fmt(c):
        return "  ".join(s.ljust(w) if i < 3 else s.rjust(w) for i, (s, w) in enumerate(zip(c, widths))).rstrip()

    params = list(model.parameters())
    total = sum(p.numel() for p in params)
    trainable = sum(p.numel() for p in params if p.requires_grad)
    print(f"{type(model).__name__} on input 1×{'×'.join(str(n) for n in input_shape)}", file=file)
    print(line, file=file)
    print(fmt(cells[0]), file=file)
    print(line, file=file)
    for c in cells[1:]:
        print(fmt(c), file=file)
    print(line, file=file)
    param_bytes = sum(p._data.nbytes for p in params)
    print(f"Total params: {total:,} ({param_bytes / 2 ** 20:,.2f} MB); trainable: {trainable:,}", file=file)
    print(f"Total activation memory: {sum(r['memory_kb'] for r in rows) / 1024:,.2f} MB per sample", file=file)
    print(f"Total multiply-adds: {sum(r['macs'] for r in rows):,} per sample", file=file)

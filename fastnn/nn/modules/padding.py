"""Padding layers: thin Modules over F.pad, with PyTorch's names. `padding` is an int (every side) or a tuple
(left, right[, top, bottom[, front, back]]) as F.pad reads it, last dimension first."""
from fastnn._validation import int_tuple
from fastnn.nn import functional as F
from fastnn.nn.modules.module import Module


class _PadNd(Module):
    mode = "constant"
    dims = 2

    def __init__(self, padding, value=0.0):
        super().__init__()
        self.padding = int_tuple(type(self).__name__, "padding", padding, 2 * self.dims, 0)
        self.value = value

    def forward(self, input):
        return F.pad(input, self.padding, self.mode, self.value)

    def extra_repr(self):  # PyTorch's: ConstantPad2d(padding=(1, 1, 1, 1), value=3.5), ZeroPad2d((1, 1, 1, 1))
        return f"padding={self.padding}, value={self.value}"


class ConstantPad1d(_PadNd):
    dims = 1

    def __init__(self, padding, value):
        super().__init__(padding, value)


class ConstantPad2d(_PadNd):
    def __init__(self, padding, value):
        super().__init__(padding, value)


class ConstantPad3d(_PadNd):
    dims = 3

    def __init__(self, padding, value):
        super().__init__(padding, value)


class ZeroPad1d(ConstantPad1d):
    def __init__(self, padding):
        super().__init__(padding, 0.0)

    def extra_repr(self):
        return f"{self.padding}"


class ZeroPad2d(ConstantPad2d):
    def __init__(self, padding):
        super().__init__(padding, 0.0)

    def extra_repr(self):
        return f"{self.padding}"


class _NonConstantPad(_PadNd):
    def __init__(self, padding):
        super().__init__(padding)

    def forward(self, input):
        # as in PyTorch: an unbatched or batched input of the layer's dimensionality, nothing else
        if input.ndim not in (self.dims + 1, self.dims + 2):
            raise ValueError(f"{type(self).__name__}: expected a {self.dims + 1}-D or {self.dims + 2}-D input, got "
                             f"shape {tuple(input.shape)}")
        return F.pad(input, self.padding, self.mode)

    def extra_repr(self):
        return f"{self.padding}"


class ReflectionPad1d(_NonConstantPad):
    mode, dims = "reflect", 1


class ReflectionPad2d(_NonConstantPad):
    mode = "reflect"


class ReflectionPad3d(_NonConstantPad):
    mode, dims = "reflect", 3


class ReplicationPad1d(_NonConstantPad):
    mode, dims = "replicate", 1


class ReplicationPad2d(_NonConstantPad):
    mode = "replicate"


class ReplicationPad3d(_NonConstantPad):
    mode, dims = "replicate", 3


class CircularPad1d(_NonConstantPad):
    mode, dims = "circular", 1


class CircularPad2d(_NonConstantPad):
    mode = "circular"


class CircularPad3d(_NonConstantPad):
    mode, dims = "circular", 3


class ZeroPad3d(ConstantPad3d):
    def __init__(self, padding):
        super().__init__(padding, 0.0)

    def extra_repr(self):
        return f"{self.padding}"

"""Convolution layers: thin Modules over fastnn.nn.functional (F.conv1d/2d/3d, F.conv_transpose1d/2d)."""
import numpy as np

from fastnn._validation import int_tuple, padding_pairs, positive_int
from fastnn.nn import functional as F, init
from fastnn.nn.modules.module import Module
from fastnn.nn.parameter import Parameter
from fastnn.tensor import as_dtype


# Padding modes of the Conv layers and the F.pad mode each one uses.
_PADDING_MODES = {"zeros": "constant", "reflect": "reflect", "replicate": "replicate", "circular": "circular"}


class _ConvNd(Module):
    """What Conv1d, Conv3d, ConvTranspose1d and ConvTranspose2d share: PyTorch's constructor arguments, weight
    shape ((out, in/groups) or, transposed, (in, out/groups), then the kernel) and default initialisation."""
    _spatial = 0
    _transposed = False

    def __init__(self, in_channels, out_channels, kernel_size, stride=1, padding=0, dilation=1, groups=1,
                 bias=True, padding_mode="zeros", dtype=None):
        super().__init__()
        name, spatial = type(self).__name__, self._spatial
        self.in_channels = positive_int("in_channels", in_channels)
        self.out_channels = positive_int("out_channels", out_channels)
        self.groups = positive_int("groups", groups)
        if in_channels % groups or out_channels % groups:
            raise ValueError(f"in_channels ({in_channels}) and out_channels ({out_channels}) must both be divisible "
                             f"by groups ({groups})")
        modes = ["zeros"] if self._transposed else sorted(_PADDING_MODES)
        if padding_mode not in modes:
            raise ValueError(f"{name}: padding_mode must be one of {modes}, got {padding_mode!r}")
        self.padding_mode = padding_mode
        self.kernel_size = int_tuple(name, "kernel_size", kernel_size, spatial, 1)
        self.stride = int_tuple(name, "stride", stride, spatial, 1)
        self.dilation = int_tuple(name, "dilation", dilation, spatial, 1)
        if isinstance(padding, str) and not self._transposed:
            padding_pairs(name, padding, self.kernel_size, self.stride, self.dilation)
            self.padding = padding
        else:
            self.padding = int_tuple(name, "padding", padding, spatial, 0)
        channels = (self.in_channels, self.out_channels)
        weight_channels = (channels[0], channels[1] // groups) if self._transposed else (channels[1],
                                                                                         channels[0] // groups)
        dtype = as_dtype(dtype or "float32")
        self.weight = Parameter(np.empty(weight_channels + self.kernel_size, dtype))
        # bias=False registers None, as PyTorch does.
        self.register_parameter("bias", Parameter(np.empty(self.out_channels, dtype)) if bias else None)
        self.reset_parameters()

    def reset_parameters(self):
        init.default_layer_init_(self.weight, self.bias)

    def _padded(self, input):
        """(input, padding) for the convolution: non-zero padding modes pad the input here, and the convolution
        itself then pads nothing."""
        if self.padding_mode == "zeros":
            return input, self.padding
        pairs = padding_pairs(type(self).__name__, self.padding, self.kernel_size, self.stride, self.dilation)
        widths = [width for pair in reversed(pairs) for width in pair]
        return F.pad(input, widths, mode=_PADDING_MODES[self.padding_mode]), 0

    def extra_repr(self):
        s = f"{self.in_channels}, {self.out_channels}, kernel_size={self.kernel_size}, stride={self.stride}"
        defaults = {"padding": (0,) * self._spatial, "output_padding": (0,) * self._spatial,
                    "dilation": (1,) * self._spatial, "groups": 1}
        for name, default in defaults.items():
            if getattr(self, name, default) != default:
                s += f", {name}={getattr(self, name)}"
        if self.bias is None:
            s += ", bias=False"
        if self.padding_mode != "zeros":
            s += f", padding_mode={self.padding_mode}"
        return s


class Conv2d(_ConvNd):
    """2-D convolution over (N, C, H, W); weight (out_channels, in_channels/groups, kh, kw)."""
    _spatial = 2

    def forward(self, input):
        input, padding = self._padded(input)
        return F.conv2d(input, self.weight, self.bias, self.stride, padding, self.dilation, self.groups)


class Conv1d(_ConvNd):
    """1-D convolution over (N, C, L); weight (out_channels, in_channels/groups, k)."""
    _spatial = 1

    def forward(self, input):
        input, padding = self._padded(input)
        return F.conv1d(input, self.weight, self.bias, self.stride, padding, self.dilation, self.groups)


class Conv3d(_ConvNd):
    """3-D convolution over (N, C, D, H, W); weight (out_channels, in_channels/groups, kd, kh, kw)."""
    _spatial = 3

    def forward(self, input):
        input, padding = self._padded(input)
        return F.conv3d(input, self.weight, self.bias, self.stride, padding, self.dilation, self.groups)


class _ConvTransposeNd(_ConvNd):
    _transposed = True

    def __init__(self, in_channels, out_channels, kernel_size, stride=1, padding=0, output_padding=0, groups=1,
                 bias=True, dilation=1, padding_mode="zeros", dtype=None):
        super().__init__(in_channels, out_channels, kernel_size, stride, padding, dilation, groups, bias,
                         padding_mode, dtype)
        self.output_padding = int_tuple(type(self).__name__, "output_padding", output_padding, self._spatial, 0)

    def _output_padding(self, input, output_size):
        """output_padding that makes the output `output_size` (spatial sizes, optionally after N and C)."""
        if output_size is None:
            return self.output_padding
        sizes = tuple(output_size)[-self._spatial:]
        if len(sizes) != self._spatial:
            raise ValueError(f"output_size must have {self._spatial} or {self._spatial + 2} elements, got "
                             f"{output_size!r}")
        padding = []
        for n, size, k, s, p, d in zip(input.shape[-self._spatial:], sizes, self.kernel_size, self.stride,
                                       self.padding, self.dilation):
            smallest = (n - 1) * s - 2 * p + d * (k - 1) + 1
            if not smallest <= size < smallest + s:
                raise ValueError(f"requested output size {tuple(sizes)} is not reachable from input shape "
                                 f"{tuple(input.shape)}: each size must lie in [smallest, smallest + stride), here "
                                 f"[{smallest}, {smallest + s})")
            padding.append(size - smallest)
        return tuple(padding)


class ConvTranspose1d(_ConvTransposeNd):
    """Transposed 1-D convolution over (N, C, L); weight (in_channels, out_channels/groups, k)."""
    _spatial = 1

    def forward(self, input, output_size=None):
        return F.conv_transpose1d(input, self.weight, self.bias, self.stride, self.padding,
                                  self._output_padding(input, output_size), self.groups, self.dilation)


class ConvTranspose2d(_ConvTransposeNd):
    """Transposed 2-D convolution over (N, C, H, W), the adjoint of Conv2d; weight
    (in_channels, out_channels/groups, kh, kw)."""
    _spatial = 2

    def forward(self, input, output_size=None):
        return F.conv_transpose2d(input, self.weight, self.bias, self.stride, self.padding,
                                  self._output_padding(input, output_size), self.groups, self.dilation)

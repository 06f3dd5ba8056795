"""Lazy modules: LazyLinear, LazyConv*/LazyConvTranspose* and the lazy batch and instance norms infer their input
size (in_features, in_channels, num_features) from the first input they see, then become the plain layer
(LazyLinear becomes a Linear).

Until then their weight and bias are UninitializedParameters (running statistics: UninitializedBuffers). They
are materialised in place, so an optimizer may be built before or after the first forward, as in PyTorch;
`state_dict`/`load_state_dict` need one forward first in fastnn (PyTorch can also materialise from a state_dict).
"""
from fastnn.nn.modules.conv import Conv1d, Conv2d, Conv3d, ConvTranspose1d, ConvTranspose2d
from fastnn.nn.modules.linear import Linear
from fastnn.nn.modules.module import Module
from fastnn.nn.modules.normalization import (BatchNorm1d, BatchNorm2d, BatchNorm3d, InstanceNorm1d, InstanceNorm2d,
                                              InstanceNorm3d)
from fastnn.nn.parameter import UninitializedBuffer, UninitializedParameter, UninitializedTensorMixin
from fastnn.tensor import as_dtype


class LazyModuleMixin:
    cls_to_become = None

    def _make_lazy(self, dtype):
        """Replace the weight and bias the eager constructor made (for a placeholder input size)."""
        dtype = self.weight.dtype if dtype is None else dtype
        self.weight = UninitializedParameter(dtype=dtype)
        if self.bias is not None:
            self.bias = UninitializedParameter(dtype=dtype)

    def has_uninitialized_params(self):
        return any(isinstance(t, UninitializedTensorMixin)
                   for t in (*self._parameters.values(), *self._buffers.values()))

    def __call__(self, *args, **kwargs):
        if self.has_uninitialized_params():
            self.initialize_parameters(*args, **kwargs)
            self.__class__ = self.cls_to_become  # from here on a plain layer: no more lazy checks per call
        return Module.__call__(self, *args, **kwargs)

    def _materialize(self, weight_shape, out):
        self.weight.materialize(weight_shape)
        if self.bias is not None:
            self.bias.materialize((out,))
        self.reset_parameters()


class LazyLinear(LazyModuleMixin, Linear):
    """A Linear whose in_features is the last dim of its first input."""
    cls_to_become = Linear

    def __init__(self, out_features, bias=True, dtype=None):
        super().__init__(1, out_features, bias, dtype)
        self.in_features = 0
        self._make_lazy(dtype)

    def initialize_parameters(self, input, *args, **kwargs):
        if input.ndim == 0:
            raise ValueError("LazyLinear: expected an input with at least one dimension (the features)")
        self.in_features = input.shape[-1]
        self._materialize((self.out_features, self.in_features), self.out_features)


class _LazyConvMixin(LazyModuleMixin):
    def _lazy_init(self, out_channels, kernel_size, stride, padding, dilation, groups, bias, padding_mode, dtype,
                   **extra):
        # the eager constructor runs with in_channels = groups (divisible by groups); the real value comes later
        super().__init__(groups, out_channels, kernel_size, stride=stride, padding=padding, dilation=dilation,
                         groups=groups, bias=bias, padding_mode=padding_mode, dtype=dtype, **extra)
        self.in_channels = 0
        self._make_lazy(dtype)

    def initialize_parameters(self, input, *args, **kwargs):
        if input.ndim not in (self._spatial + 1, self._spatial + 2):
            raise ValueError(f"{type(self).__name__}: expected a {self._spatial + 2}-D (N, C, ...) or "
                             f"{self._spatial + 1}-D unbatched input, got shape {tuple(input.shape)}")
        channels = input.shape[input.ndim - self._spatial - 1]
        if channels % self.groups:
            raise ValueError(f"{type(self).__name__}: in_channels ({channels}) of the first input must be divisible "
                             f"by groups ({self.groups})")
        self.in_channels = channels
        out, groups = self.out_channels, self.groups
        shape = (channels, out // groups) if self._transposed else (out, channels // groups)
        self._materialize(shape + self.kernel_size, out)


class _LazyConvNd(_LazyConvMixin):
    def __init__(self, out_channels, kernel_size, stride=1, padding=0, dilation=1, groups=1, bias=True,
                 padding_mode="zeros", dtype=None):
        self._lazy_init(out_channels, kernel_size, stride, padding, dilation, groups, bias, padding_mode, dtype)


class _LazyConvTransposeNd(_LazyConvMixin):
    def __init__(self, out_channels, kernel_size, stride=1, padding=0, output_padding=0, groups=1, bias=True,
                 dilation=1, padding_mode="zeros", dtype=None):
        self._lazy_init(out_channels, kernel_size, stride, padding, dilation, groups, bias, padding_mode, dtype,
                        output_padding=output_padding)


class LazyConv1d(_LazyConvNd, Conv1d):
    cls_to_become = Conv1d


class LazyConv2d(_LazyConvNd, Conv2d):
    cls_to_become = Conv2d


class LazyConv3d(_LazyConvNd, Conv3d):
    cls_to_become = Conv3d


class LazyConvTranspose1d(_LazyConvTransposeNd, ConvTranspose1d):
    cls_to_become = ConvTranspose1d


class LazyConvTranspose2d(_LazyConvTransposeNd, ConvTranspose2d):
    cls_to_become = ConvTranspose2d


class _LazyNormBase(LazyModuleMixin):
    """num_features from the channel dim of the first input (dim 1, or dim 0 of an unbatched instance-norm input)."""

    def __init__(self, eps=1e-5, momentum=0.1, affine=True, track_running_stats=True, dtype=None):
        super().__init__(1, eps, momentum, affine, track_running_stats, dtype)
        self.num_features = 0
        dtype = as_dtype(dtype or "float32")
        for name in ("weight", "bias") if affine else ():
            setattr(self, name, UninitializedParameter(dtype=dtype))
        for name in ("running_mean", "running_var") if track_running_stats else ():
            self._buffers[name] = UninitializedBuffer(dtype=dtype)

    def initialize_parameters(self, input, *args, **kwargs):
        if input.ndim < 2:
            raise ValueError(f"{type(self).__name__}: expected an input with a channel dimension, got shape "
                             f"{tuple(input.shape)}")
        unbatched = getattr(self, "_spatial", None) is not None and input.ndim == self._spatial + 1
        self.num_features = input.shape[0 if unbatched else 1]
        for t in (*self._parameters.values(), *self._buffers.values()):
            if isinstance(t, UninitializedTensorMixin):
                t.materialize((self.num_features,))
        self.reset_parameters()


class LazyBatchNorm1d(_LazyNormBase, BatchNorm1d):
    cls_to_become = BatchNorm1d


class LazyBatchNorm2d(_LazyNormBase, BatchNorm2d):
    cls_to_become = BatchNorm2d


class LazyBatchNorm3d(_LazyNormBase, BatchNorm3d):
    cls_to_become = BatchNorm3d


class LazyInstanceNorm1d(_LazyNormBase, InstanceNorm1d):
    cls_to_become = InstanceNorm1d


class LazyInstanceNorm2d(_LazyNormBase, InstanceNorm2d):
    cls_to_become = InstanceNorm2d


class LazyInstanceNorm3d(_LazyNormBase, InstanceNorm3d):
    cls_to_become = InstanceNorm3d

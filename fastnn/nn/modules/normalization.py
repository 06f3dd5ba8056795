"""Normalisation layers: BatchNorm1d/2d/3d, InstanceNorm1d/2d/3d, LayerNorm, GroupNorm, LocalResponseNorm, RMSNorm.

Thin Modules over fastnn.nn.functional, with PyTorch's arguments, defaults, parameters and buffers (weight,
bias, running_mean, running_var, num_batches_tracked), so state_dicts carry the same keys.
"""
import numbers

import numpy as np

from fastnn.nn import functional as F
from fastnn.nn import init
from fastnn._validation import check_eps, positive_int
from fastnn.nn.modules.module import Module
from fastnn.nn.parameter import Parameter
from fastnn.tensor import Tensor, as_dtype


def _affine_parameters(module, shape, dtype, weight, bias):
    """Register `weight` (ones) and `bias` (zeros) of `shape` on module, each as None when not wanted."""
    for name, wanted in (("weight", weight), ("bias", bias)):
        if wanted:
            setattr(module, name, Parameter(np.empty(shape, dtype)))
        else:
            module.register_parameter(name, None)
    _reset_affine(module)


def _reset_affine(module):
    if module.weight is not None:
        init.ones_(module.weight)
    if module.bias is not None:
        init.zeros_(module.bias)


class _NormBase(Module):
    """Per-channel affine parameters and running statistics shared by batch and instance norm."""

    def __init__(self, num_features, eps, momentum, affine, track_running_stats, dtype):
        super().__init__()
        self.num_features = positive_int("num_features", num_features)
        self.eps = check_eps(eps, type(self).__name__)
        self.momentum = momentum
        self.affine = affine
        self.track_running_stats = track_running_stats
        dtype = as_dtype(dtype or "float32")
        _affine_parameters(self, (self.num_features,), dtype, affine, affine)
        if track_running_stats:
            self.register_buffer("running_mean", Tensor(np.zeros(self.num_features, dtype)))
            self.register_buffer("running_var", Tensor(np.ones(self.num_features, dtype)))
            self.register_buffer("num_batches_tracked", Tensor(np.array(0, np.int64)))
        else:
            self.register_buffer("running_mean", None)
            self.register_buffer("running_var", None)
            self.register_buffer("num_batches_tracked", None)

    def reset_running_stats(self):
        if self.track_running_stats:
            self.running_mean._data[...] = 0
            self.running_var._data[...] = 1
            self.num_batches_tracked._data[...] = 0

    def reset_parameters(self):
        self.reset_running_stats()
        _reset_affine(self)

    def extra_repr(self):
        return (f"{self.num_features}, eps={self.eps}, momentum={self.momentum}, affine={self.affine}, "
                f"track_running_stats={self.track_running_stats}")


class _BatchNorm(_NormBase):
    _input_ndims = ()

    def __init__(self, num_features, eps=1e-5, momentum=0.1, affine=True, track_running_stats=True, dtype=None):
        super().__init__(num_features, eps, momentum, affine, track_running_stats, dtype)

    def _averaging_factor(self):
        """The running-average weight of this batch's statistics; counts the batch when training.

        momentum=None means a cumulative average: the n-th batch weighs 1/n.
        """
        if self.training and self.track_running_stats:
            self.num_batches_tracked._data += 1
            if self.momentum is None:
                return 1.0 / float(self.num_batches_tracked._data)
        return 0.0 if self.momentum is None else self.momentum

    def forward(self, input):
        if input.ndim not in self._input_ndims:
            expected = " or ".join(f"{d}D" for d in self._input_ndims)
            raise ValueError(f"expected {expected} input (got {input.ndim}D input)")
        if input.shape[1] != self.num_features:
            raise ValueError(f"{type(self).__name__}({self.num_features}) got input of shape {tuple(input.shape)}: "
                             f"expected {self.num_features} channels in dimension 1, got {input.shape[1]}")
        factor = self._averaging_factor()
        # Batch statistics when training, or when there are no running statistics to use instead; running
        # statistics are updated only when tracked. Each registry entry is read once: a read through
        # Module.__getattr__ costs ~0.5 us, a tenth of this layer's Python time at batch 1.
        training = self.training
        running_mean = self.running_mean
        if training and not self.track_running_stats:
            running_mean = running_var = None
        else:
            running_var = self.running_var
        return F.batch_norm(input, running_mean, running_var, self.weight, self.bias,
                            training or running_mean is None, factor, self.eps)


class BatchNorm1d(_BatchNorm):
    """Batch normalisation of (N, C) or (N, C, L) inputs."""
    _input_ndims = (2, 3)


class BatchNorm2d(_BatchNorm):
    """Batch normalisation of (N, C, H, W) inputs."""
    _input_ndims = (4,)


class BatchNorm3d(_BatchNorm):
    """Batch normalisation of (N, C, D, H, W) inputs."""
    _input_ndims = (5,)


class _InstanceNorm(_NormBase):
    """Normalisation of each sample's channels over their `_spatial` trailing dims; an unbatched (C, *) input is
    treated as a batch of one."""
    _spatial = 2

    def __init__(self, num_features, eps=1e-5, momentum=0.1, affine=False, track_running_stats=False, dtype=None):
        super().__init__(num_features, eps, momentum, affine, track_running_stats, dtype)

    def forward(self, input):
        unbatched, batched_ndim = self._spatial + 1, self._spatial + 2
        if input.ndim not in (unbatched, batched_ndim):
            raise ValueError(f"expected {unbatched}D or {batched_ndim}D input (got {input.ndim}D input)")
        channel_dim = input.ndim - unbatched
        channels = input.shape[channel_dim]
        if channels != self.num_features:
            raise ValueError(f"{type(self).__name__}({self.num_features}) got input of shape {tuple(input.shape)}: "
                             f"expected {self.num_features} channels in dimension {channel_dim}, got {channels}")
        batched = input if input.ndim == batched_ndim else input.reshape((1,) + input.shape)
        # As in PyTorch, instance norm counts no batches: momentum=None leaves the running statistics as they are.
        out = F.instance_norm(batched, self.running_mean, self.running_var, self.weight, self.bias,
                              self.training or not self.track_running_stats,
                              0.0 if self.momentum is None else self.momentum, self.eps)
        return out if input.ndim == batched_ndim else out.reshape(input.shape)


class InstanceNorm1d(_InstanceNorm):
    """Instance normalisation of (N, C, L) or (C, L) inputs."""
    _spatial = 1


class InstanceNorm2d(_InstanceNorm):
    """Instance normalisation of (N, C, H, W) or (C, H, W) inputs."""
    _spatial = 2


class InstanceNorm3d(_InstanceNorm):
    """Instance normalisation of (N, C, D, H, W) or (C, D, H, W) inputs."""
    _spatial = 3


class LayerNorm(Module):
    """Normalisation over the trailing `normalized_shape` dimensions, with an element-wise affine."""

    def __init__(self, normalized_shape, eps=1e-5, elementwise_affine=True, bias=True, dtype=None):
        super().__init__()
        shape = (normalized_shape,) if isinstance(normalized_shape, numbers.Integral) else tuple(normalized_shape)
        self.normalized_shape = tuple(positive_int("normalized_shape entries", n) for n in shape)
        self.eps = check_eps(eps, type(self).__name__)
        self.elementwise_affine = elementwise_affine
        _affine_parameters(self, self.normalized_shape, as_dtype(dtype or "float32"), elementwise_affine,
                           elementwise_affine and bias)

    def reset_parameters(self):
        _reset_affine(self)

    def forward(self, input):
        return F.layer_norm(input, self.normalized_shape, self.weight, self.bias, self.eps)

    def extra_repr(self):
        return f"{self.normalized_shape}, eps={self.eps}, elementwise_affine={self.elementwise_affine}"


class GroupNorm(Module):
    """Normalisation of each sample over `num_groups` groups of channels, then a per-channel affine."""

    def __init__(self, num_groups, num_channels, eps=1e-5, affine=True, dtype=None):
        super().__init__()
        self.num_groups = positive_int("num_groups", num_groups)
        self.num_channels = positive_int("num_channels", num_channels)
        if num_channels % num_groups:
            raise ValueError(f"num_channels ({num_channels}) must be divisible by num_groups ({num_groups})")
        self.eps = check_eps(eps, type(self).__name__)
        self.affine = affine
        _affine_parameters(self, (self.num_channels,), as_dtype(dtype or "float32"), affine, affine)

    def reset_parameters(self):
        _reset_affine(self)

    def forward(self, input):
        return F.group_norm(input, self.num_groups, self.weight, self.bias, self.eps)

    def extra_repr(self):
        return f"{self.num_groups}, {self.num_channels}, eps={self.eps}, affine={self.affine}"


class LocalResponseNorm(Module):
    """x / (k + alpha * mean of x^2 over `size` neighbouring channels)^beta (AlexNet's normalisation)."""

    def __init__(self, size, alpha=1e-4, beta=0.75, k=1.0):
        super().__init__()
        self.size = positive_int("size", size)
        self.alpha = alpha
        self.beta = beta
        self.k = k

    def forward(self, input):
        return F.local_response_norm(input, self.size, self.alpha, self.beta, self.k)

    def extra_repr(self):
        return f"{self.size}, alpha={self.alpha}, beta={self.beta}, k={self.k}"


class RMSNorm(Module):
    """x / sqrt(mean(x^2) + eps) over the trailing `normalized_shape` dims, times an element-wise weight
    (Zhang & Sennrich, 2019); eps=None uses the input dtype's machine epsilon, as PyTorch does."""

    def __init__(self, normalized_shape, eps=None, elementwise_affine=True, dtype=None):
        super().__init__()
        shape = (normalized_shape,) if isinstance(normalized_shape, numbers.Integral) else tuple(normalized_shape)
        self.normalized_shape = tuple(positive_int("normalized_shape entries", n) for n in shape)
        self.eps = None if eps is None else check_eps(eps, type(self).__name__)
        self.elementwise_affine = elementwise_affine
        if elementwise_affine:
            self.weight = Parameter(np.empty(self.normalized_shape, as_dtype(dtype or "float32")))
        else:
            self.register_parameter("weight", None)
        self.reset_parameters()

    def reset_parameters(self):
        if self.weight is not None:
            init.ones_(self.weight)

    def forward(self, input):
        return F.rms_norm(input, self.normalized_shape, self.weight, self.eps)

    def extra_repr(self):
        return f"{self.normalized_shape}, eps={self.eps}, elementwise_affine={self.elementwise_affine}"

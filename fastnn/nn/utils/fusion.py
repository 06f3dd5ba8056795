"""Folding an evaluation-mode BatchNorm2d into the Conv2d before it, for inference."""
import copy

import numpy as np

from fastnn.nn.modules.container import Sequential
from fastnn.nn.modules.conv import Conv2d
from fastnn.nn.modules.linear import Identity
from fastnn.nn.modules.normalization import BatchNorm2d
from fastnn.nn.parameter import Parameter


def fuse_conv_bn(conv, bn):
    """A new Conv2d (in eval mode) computing bn(conv(x)) for a BatchNorm2d in eval mode.

    With s = gamma / sqrt(running_var + eps) per output channel: W' = W * s and b' = (b - running_mean) * s +
    beta. Computed in float64, stored in the conv's dtype. `conv` and `bn` are left unchanged.
    """
    if not isinstance(conv, Conv2d):
        raise TypeError(f"fuse_conv_bn expects a Conv2d as conv, got {type(conv).__name__}")
    if not isinstance(bn, BatchNorm2d):
        raise TypeError(f"fuse_conv_bn expects a BatchNorm2d as bn, got {type(bn).__name__}")
    if bn.training:
        raise ValueError("fuse_conv_bn needs the BatchNorm2d in eval mode (call .eval()): in training mode it "
                         "normalises with batch statistics, which no fixed convolution can reproduce")
    if bn.running_mean is None:
        raise ValueError("fuse_conv_bn needs a BatchNorm2d with track_running_stats=True: without running "
                         "statistics it always normalises with batch statistics")
    if conv.out_channels != bn.num_features:
        raise ValueError(f"cannot fuse Conv2d with {conv.out_channels} output channels (weight shape "
                         f"{tuple(conv.weight.shape)}) and BatchNorm2d({bn.num_features})")
    dtype = conv.weight.dtype
    scale = 1.0 / np.sqrt(bn.running_var._data.astype(np.float64) + bn.eps)
    if bn.weight is not None:
        scale = scale * bn.weight._data
    shift = -bn.running_mean._data.astype(np.float64) * scale
    if conv.bias is not None:
        shift = shift + conv.bias._data * scale
    if bn.bias is not None:
        shift = shift + bn.bias._data
    fused = copy.deepcopy(conv)
    fused.weight = Parameter((conv.weight._data * scale.reshape(-1, 1, 1, 1)).astype(dtype))
    fused.bias = Parameter(shift.astype(dtype))
    return fused.eval()


def fuse_conv_bn_modules(model):
    """Fold every BatchNorm2d that directly follows a Conv2d inside a Sequential into that conv, in place.

    The conv is replaced by the fused one and the BatchNorm2d by an Identity, so module names and indices
    stay as they were. The BatchNorm2d layers must be in eval mode (call model.eval() first). Returns model.
    """
    for module in list(model.modules()):
        if not isinstance(module, Sequential):
            continue
        names = list(module._modules)
        for first, second in zip(names, names[1:]):
            conv, bn = module._modules[first], module._modules[second]
            if isinstance(conv, Conv2d) and isinstance(bn, BatchNorm2d):
                module._modules[first] = fuse_conv_bn(conv, bn)
                module._modules[second] = Identity()
    return model

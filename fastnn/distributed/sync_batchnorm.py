"""SyncBatchNorm: batch normalization whose batch statistics are taken over the inputs of all ranks.

Built from fastnn ops plus one differentiable collective, a sum over ranks: its backward is again a sum over
ranks of the incoming gradients (each rank's output depends on every rank's input), so autograd gives the
gradient of the full-batch normalization without a hand-written backward. Statistics take two reductions, the
mean first and then the centred sum of squares, which stays accurate in float32 where E[x^2] - E[x]^2 would not.
"""
import numpy as np

import fastnn
from fastnn.autograd import make_result, no_grad
from fastnn.nn.modules.normalization import _BatchNorm
from fastnn.tensor import Tensor
from fastnn.distributed import process_group as pg

__all__ = ["SyncBatchNorm"]


def _sum_over_ranks(x):
    """A differentiable all_reduce(SUM): every rank gets the sum of every rank's x."""
    out = np.array(x.detach().numpy(), copy=True)
    pg.all_reduce(Tensor(out))

    def backward(g):
        g = np.array(g, copy=True)
        pg.all_reduce(Tensor(g))
        return (g,)
    return make_result(out, (x,), backward, "sum_over_ranks")


class SyncBatchNorm(_BatchNorm):
    """BatchNorm over (N, C, ...) inputs with the statistics of the whole batch across all ranks when training.

    PyTorch's arguments and buffers; `process_group` must be None (the default group). In eval mode, or without
    an initialized group of more than one rank, it is plain batch normalization. Every rank must run its forward
    (and backward) the same number of times, since each one takes part in collectives.
    """
    _input_ndims = (2, 3, 4, 5)

    def __init__(self, num_features, eps=1e-5, momentum=0.1, affine=True, track_running_stats=True,
                 process_group=None, dtype=None):
        pg._check_group_arg(process_group)
        super().__init__(num_features, eps, momentum, affine, track_running_stats, dtype)

    def forward(self, input):
        if not self.training or pg.get_world_size() == 1:
            return super().forward(input)
        if input.ndim not in self._input_ndims:
            raise ValueError(f"expected at least 2D input (got {input.ndim}D input)")
        channels = self.num_features
        if input.shape[1] != channels:
            raise ValueError(f"SyncBatchNorm({channels}) got input of shape {tuple(input.shape)}: expected "
                             f"{channels} channels in dimension 1, got {input.shape[1]}")
        axes = (0,) + tuple(range(2, input.ndim))
        shape = (1, channels) + (1,) * (input.ndim - 2)
        local_count = input.numel() // channels
        # The element count travels in the same message as the sums: one latency fewer per forward.
        count_column = fastnn.tensor(np.array([local_count], dtype=input.dtype))
        sums = _sum_over_ranks(fastnn.cat([input.sum(axes), count_column]))
        total = int(round(float(sums.detach().numpy()[-1])))
        if total <= 1:
            raise ValueError(f"Expected more than 1 value per channel when training, got input size "
                             f"{tuple(input.shape)} on this rank and {total} values per channel over all ranks")
        mean = sums[:channels] / total
        centred = input - mean.reshape(shape)
        var = _sum_over_ranks((centred * centred).sum(axes)) / total
        out = centred / (var + self.eps).sqrt().reshape(shape)
        if self.weight is not None:
            out = out * self.weight.reshape(shape)
        if self.bias is not None:
            out = out + self.bias.reshape(shape)
        if self.track_running_stats:
            self._update_running_stats(mean, var, total)
        return out

    @no_grad()
    def _update_running_stats(self, mean, var, total):
        factor = self._averaging_factor()
        running_mean = self.running_mean.detach().numpy()
        running_var = self.running_var.detach().numpy()
        running_mean[...] = (1 - factor) * running_mean + factor * mean.detach().numpy()
        # Unbiased variance for the running estimate, as BatchNorm and PyTorch do.
        running_var[...] = (1 - factor) * running_var + factor * var.detach().numpy() * (total / (total - 1))

    @classmethod
    def convert_sync_batchnorm(cls, module, process_group=None):
        """`module` with every BatchNorm*d replaced by a SyncBatchNorm sharing its parameters and buffers."""
        pg._check_group_arg(process_group)
        converted = module
        if isinstance(module, _BatchNorm) and not isinstance(module, SyncBatchNorm):
            converted = cls(module.num_features, module.eps, module.momentum, module.affine,
                            module.track_running_stats, dtype=module.running_mean.dtype
                            if module.running_mean is not None else None)
            for name, p in module._parameters.items():
                converted._parameters[name] = p
            for name, b in module._buffers.items():
                converted._buffers[name] = b
            converted.training = module.training
        for name, child in module.named_children():
            converted._modules[name] = cls.convert_sync_batchnorm(child)
        return converted

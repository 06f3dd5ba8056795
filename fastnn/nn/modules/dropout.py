"""Dropout layers: Dropout, Dropout2d, AlphaDropout, DropConnect and StochasticDepth (DropPath).

All are active only in training mode (`module.train()`) and the identity in eval mode, except DropConnect,
which uses its plain weights in eval mode. Masks come from fastnn.random.default_generator().
With `inplace=True` the result is written into the input, which is returned, as in PyTorch.
"""
from fastnn.nn import functional as F
from fastnn.nn.modules.linear import Linear
from fastnn.nn.modules.module import Module
from fastnn.ops.dropout import check_probability, check_stochastic_depth_mode


class _DropoutNd(Module):
    def __init__(self, p=0.5, inplace=False):
        super().__init__()
        self.p = check_probability(p)
        self.inplace = inplace

    def extra_repr(self):
        return f"p={self.p}, inplace={self.inplace}"


class Dropout(_DropoutNd):
    """Zero each element with probability p in training and scale the rest by 1/(1 - p) (inverted dropout)."""

    def forward(self, input):
        return F.dropout(input, self.p, self.training, self.inplace)


class Dropout2d(_DropoutNd):
    """Zero whole channels input[n, c] of an (N, C, H, W) input with probability p, scaling the rest by
    1/(1 - p)."""

    def forward(self, input):
        return F.dropout2d(input, self.p, self.training, self.inplace)


class AlphaDropout(_DropoutNd):
    """Dropout that keeps the zero mean and unit variance of SELU activations (see F.alpha_dropout)."""

    def forward(self, input):
        return F.alpha_dropout(input, self.p, self.training, self.inplace)


class DropConnect(Linear):
    """A Linear layer whose weights are dropped (Wan et al., 2013): in training each weight W[o, i] is zeroed
    with probability p and the kept weights are scaled by 1/(1 - p), a fresh mask on every forward call, shared
    by all samples of the batch; the bias is not dropped.

    Eval mode uses the plain weights W, the expectation of the inverted-scaled masked weights. (Wan et al.
    instead sample a Gaussian moment-matched approximation of the masked layer's output at inference; the
    deterministic mean is the common practical choice.)
    """

    def __init__(self, in_features, out_features, bias=True, p=0.5, dtype=None):
        super().__init__(in_features, out_features, bias, dtype)
        self.p = check_probability(p)

    def forward(self, input):
        return F.linear(input, F.dropout(self.weight, self.p, self.training), self.bias)

    def extra_repr(self):
        return super().extra_repr() + f", p={self.p}"


class StochasticDepth(Module):
    """Randomly drop a residual branch, as torchvision.ops.StochasticDepth: `x + StochasticDepth(p)(branch(x))`.

    mode="row" drops the branch of each sample independently, mode="batch" for the whole batch. This is the
    inverted form of Huang et al.'s stochastic depth: surviving branches are scaled by 1/(1 - p) in training
    and the branch passes unchanged in eval mode, where the paper scales by the survival probability 1 - p at
    test time instead (see F.drop_path).
    """

    def __init__(self, p, mode="row"):
        super().__init__()
        self.p = check_probability(p)
        self.mode = check_stochastic_depth_mode(mode)

    def forward(self, input):
        return F.drop_path(input, self.p, self.training, self.mode)

    def extra_repr(self):
        return f"p={self.p}, mode={self.mode}"


DropPath = StochasticDepth  # timm's name for per-sample stochastic depth


class Dropout1d(_DropoutNd):
    """Zero whole channels input[n, c] of an (N, C, L) or (C, L) input with probability p, scaling the rest."""

    def forward(self, input):
        return F.dropout1d(input, self.p, self.training, self.inplace)


class Dropout3d(_DropoutNd):
    """Zero whole channels of an (N, C, D, H, W) or (C, D, H, W) input with probability p, scaling the rest."""

    def forward(self, input):
        return F.dropout3d(input, self.p, self.training, self.inplace)


class FeatureAlphaDropout(_DropoutNd):
    """Alpha dropout of whole channels (see F.feature_alpha_dropout)."""

    def forward(self, input):
        return F.feature_alpha_dropout(input, self.p, self.training, self.inplace)

"""Parameter initialisation (PyTorch's fastnn.nn.init names and defaults). All draw from fastnn.random
unless a `generator` is passed, on the tensor's device (its backend's `draw`), and work in place on a Tensor's
data under no_grad semantics. trunc_normal_ and orthogonal_ compute their few values on the host (SciPy's normal
quantile, NumPy's QR) and copy them over."""
import math

import numpy as np

from fastnn import random as _random

_LINEAR_LIKE = ("linear", "conv1d", "conv2d", "conv3d", "conv_transpose1d", "conv_transpose2d",
                "conv_transpose3d", "sigmoid", "identity")


def calculate_gain(nonlinearity, param=None):
    """Recommended std gain for a nonlinearity (PyTorch's table)."""
    if nonlinearity in _LINEAR_LIKE:
        return 1.0
    if nonlinearity == "tanh":
        return 5.0 / 3
    if nonlinearity == "relu":
        return math.sqrt(2.0)
    if nonlinearity == "leaky_relu":
        slope = 0.01 if param is None else param
        if isinstance(slope, bool) or not isinstance(slope, (int, float)):
            raise ValueError(f"negative_slope {slope!r} is not a valid number")
        return math.sqrt(2.0 / (1 + slope ** 2))
    if nonlinearity == "selu":
        return 3.0 / 4
    raise ValueError(f"unsupported nonlinearity {nonlinearity!r}")


def _calculate_fan_in_and_fan_out(tensor):
    """fan_in = in_channels/groups * receptive field; fan_out = out_channels * receptive field.

    For conv weights (Cout, Cin/groups, k...) the stored second dim already is Cin/groups."""
    if tensor.ndim < 2:
        raise ValueError(f"fan in and fan out can not be computed for a tensor with fewer than 2 dimensions "
                         f"(shape {tuple(tensor.shape)})")
    receptive = math.prod(tensor.shape[2:])
    return tensor.shape[1] * receptive, tensor.shape[0] * receptive


def _fan(tensor, mode):
    if mode not in ("fan_in", "fan_out"):
        raise ValueError(f"mode {mode!r} not supported, please use one of 'fan_in', 'fan_out'")
    fan_in, fan_out = _calculate_fan_in_and_fan_out(tensor)
    return fan_in if mode == "fan_in" else fan_out


def _fill(tensor, values):
    """Write `values` (a scalar, a host array or an array of the tensor's device) into tensor, in place."""
    if not isinstance(values, (int, float)):
        values = tensor._backend.asarray(values)
    tensor._data[...] = values
    tensor._bump_version()
    return tensor


def _gen(generator):
    return generator or _random.default_generator()


def _draw(tensor, method, generator):
    """Draws of tensor's shape on its device; float32 tensors get float32 draws (faster, and no float64 ->
    float32 conversion), others float64."""
    dtype = np.float32 if tensor.dtype == np.float32 else np.float64
    return tensor._backend.draw(method, tensor.shape, dtype, generator)


def uniform_(tensor, a=0.0, b=1.0, generator=None):
    values = _draw(tensor, "random", generator)
    values *= b - a
    values += a
    return _fill(tensor, values)


def normal_(tensor, mean=0.0, std=1.0, generator=None):
    values = _draw(tensor, "standard_normal", generator)
    values *= std
    values += mean
    return _fill(tensor, values)


def trunc_normal_(tensor, mean=0.0, std=1.0, a=-2.0, b=2.0, generator=None):
    """Normal(mean, std) restricted to [a, b], sampled by inverting the normal CDF on [cdf(a), cdf(b)] (so a
    window far in the tail costs no more than one near the mean)."""
    if not a < b:
        raise ValueError(f"trunc_normal_ needs a < b, got a={a}, b={b}")
    if not std > 0:
        raise ValueError(f"trunc_normal_ needs std > 0, got {std}")
    from scipy.special import ndtr, ndtri  # imported on use: scipy.special takes a while to load
    low, high = (a - mean) / std, (b - mean) / std
    # Sample the window on the lower side of the mean, where the CDF keeps full precision, then mirror back.
    flip = low > 0
    if flip:
        low, high = -high, -low
    z = ndtri(_gen(generator).uniform(ndtr(low), ndtr(high), tensor.shape))
    values = np.clip(mean + std * (-z if flip else z), a, b)  # host: new values, drawn on the host
    return _fill(tensor, values)


def constant_(tensor, val):
    return _fill(tensor, val)


def zeros_(tensor):
    return _fill(tensor, 0)


def ones_(tensor):
    return _fill(tensor, 1)


def eye_(tensor):
    if tensor.ndim != 2:
        raise ValueError(f"eye_ needs a 2-D tensor, got shape {tuple(tensor.shape)}")
    return _fill(tensor, tensor._backend.xp.eye(*tensor.shape, dtype=tensor.dtype))


def xavier_uniform_(tensor, gain=1.0, generator=None):
    fan_in, fan_out = _calculate_fan_in_and_fan_out(tensor)
    bound = gain * math.sqrt(6.0 / (fan_in + fan_out))
    return uniform_(tensor, -bound, bound, generator)


def xavier_normal_(tensor, gain=1.0, generator=None):
    fan_in, fan_out = _calculate_fan_in_and_fan_out(tensor)
    return normal_(tensor, 0.0, gain * math.sqrt(2.0 / (fan_in + fan_out)), generator)


def kaiming_uniform_(tensor, a=0, mode="fan_in", nonlinearity="leaky_relu", generator=None):
    std = calculate_gain(nonlinearity, a) / math.sqrt(_fan(tensor, mode))
    bound = math.sqrt(3.0) * std
    return uniform_(tensor, -bound, bound, generator)


def kaiming_normal_(tensor, a=0, mode="fan_in", nonlinearity="leaky_relu", generator=None):
    std = calculate_gain(nonlinearity, a) / math.sqrt(_fan(tensor, mode))
    return normal_(tensor, 0.0, std, generator)


def lecun_normal_(tensor, generator=None):
    """N(0, 1/fan_in): the initialisation SELU's self-normalisation assumes."""
    return normal_(tensor, 0.0, 1.0 / math.sqrt(_fan(tensor, "fan_in")), generator)


def lecun_uniform_(tensor, generator=None):
    bound = math.sqrt(3.0 / _fan(tensor, "fan_in"))
    return uniform_(tensor, -bound, bound, generator)


def orthogonal_(tensor, gain=1.0, generator=None):
    """A (semi-)orthogonal matrix from the QR decomposition of a Gaussian matrix (sign-corrected)."""
    if tensor.ndim < 2:
        raise ValueError(f"only tensors with 2 or more dimensions are supported, got shape {tuple(tensor.shape)}")
    rows = tensor.shape[0]
    cols = tensor._data.size // rows
    flat = _gen(generator).standard_normal((rows, cols))
    if rows < cols:
        flat = flat.T
    q, r = np.linalg.qr(flat)  # host: a new random matrix, not tensor data
    q *= np.sign(np.diag(r))  # host: its sign correction
    if rows < cols:
        q = q.T
    return _fill(tensor, gain * q.reshape(tensor.shape))


def default_layer_init_(weight, bias=None):
    """PyTorch's default for Linear and Conv layers: kaiming_uniform_(a=sqrt(5)), i.e. U(-1/sqrt(fan_in),
    1/sqrt(fan_in)) for the weight, and the same bound for the bias."""
    kaiming_uniform_(weight, a=math.sqrt(5))
    if bias is not None:
        fan_in, _ = _calculate_fan_in_and_fan_out(weight)
        bound = 1 / math.sqrt(fan_in) if fan_in > 0 else 0
        uniform_(bias, -bound, bound)


def zero_init_residual_(model):
    """Zero-initialise the last layer of every residual branch in `model`, so that each residual block starts
    as its shortcut (the identity): deep residual nets then train like shallower ones at first (Goyal et al.,
    2017; torchvision's `zero_init_residual=True`).

    Protocol: a residual block names the last layer of its residual branch in an attribute
    `residual_branch_last`, a dotted submodule path relative to the block, e.g.
    `residual_branch_last = "bn2"` for `relu(x + bn2(conv2(relu(bn1(conv1(x))))))`. That layer should be the
    branch's last normalisation layer (its gamma, `weight`, is zeroed) or, in a branch without normalisation, its
    last conv or linear layer. Its `weight` and its `bias` when it has one are set to zero, so the branch outputs
    exactly 0. Returns the model; raises ValueError when no module in it declares a residual branch.
    """
    blocks = [m for m in model.modules() if getattr(m, "residual_branch_last", None) is not None]
    if not blocks:
        raise ValueError(f"zero_init_residual_: no module in {type(model).__name__} declares a residual branch "
                         "(set `residual_branch_last` on residual blocks)")
    for block in blocks:
        path = block.residual_branch_last
        layer = block.get_submodule(path)
        weight = getattr(layer, "weight", None)
        if weight is None:
            raise ValueError(f"{type(block).__name__}.residual_branch_last = {path!r} names a "
                             f"{type(layer).__name__}, which has no weight to zero")
        zeros_(weight)
        if getattr(layer, "bias", None) is not None:
            zeros_(layer.bias)
    return model


def sparse_(tensor, sparsity, std=0.01, generator=None):
    """A 2-D tensor drawn from N(0, std^2) with ceil(sparsity * rows) entries of every column set to zero, at rows
    chosen at random per column (Martens, 2010), as PyTorch's sparse_."""
    if tensor.ndim != 2:
        raise ValueError(f"sparse_: only tensors with 2 dimensions are supported, got shape {tuple(tensor.shape)}")
    if not 0 <= sparsity <= 1:
        raise ValueError(f"sparse_: sparsity must lie in [0, 1], got {sparsity!r}")
    rows, cols = tensor.shape
    num_zeros = int(math.ceil(sparsity * rows))
    gen = _gen(generator)
    values = gen.normal(0.0, std, (rows, cols))
    for col in range(cols):
        values[gen.permutation(rows)[:num_zeros], col] = 0
    return _fill(tensor, values)


def dirac_(tensor, groups=1):
    """The identity convolution: a 3-, 4- or 5-D conv weight that is 1 at the kernel centre where the output
    channel (within each of `groups` groups) equals the input channel, else 0, so it passes its input through."""
    if tensor.ndim not in (3, 4, 5):
        raise ValueError(f"dirac_: only tensors with 3, 4, or 5 dimensions are supported, got shape "
                         f"{tuple(tensor.shape)}")
    if isinstance(groups, bool) or not isinstance(groups, int) or groups < 1 or tensor.shape[0] % groups:
        raise ValueError(f"dirac_: dim 0 ({tensor.shape[0]}) must be divisible by groups, got groups={groups!r}")
    out_per_group = tensor.shape[0] // groups
    values = np.zeros(tensor.shape, tensor.dtype)  # host: the new weight, built on the host then copied over
    centre = tuple(n // 2 for n in tensor.shape[2:])
    for g in range(groups):
        for d in range(min(out_per_group, tensor.shape[1])):
            values[(g * out_per_group + d, d) + centre] = 1
    return _fill(tensor, values)

"""torch.nn.utils.parametrizations: ready-made parametrizations registered through nn.utils.parametrize."""
from fastnn import ops
from fastnn.nn.modules.module import Module
from fastnn.nn.utils import parametrize
from fastnn.nn.utils.weight_norm import _norm_except_dim


class _WeightNorm(Module):
    """weight = g * v / ||v||, the norm over every dim but `dim` (all dims when dim is None)."""

    def __init__(self, dim=0):
        super().__init__()
        self.dim = dim

    def forward(self, weight_g, weight_v):
        return ops.mul(weight_v, ops.div(weight_g, _norm_except_dim(weight_v, self.dim)))

    def right_inverse(self, weight):
        return _norm_except_dim(weight, self.dim), weight


def weight_norm(module, name="weight", dim=0):
    """PyTorch's parametrization form of weight norm: parametrizations.<name>.original0 holds g (the norms, kept
    dims of size 1) and original1 holds v (the direction), as in torch.nn.utils.parametrizations.weight_norm."""
    weight = module._parameters.get(name)
    if weight is None:
        raise ValueError(f"Module '{type(module).__name__}' has no parameter '{name}' to apply weight_norm to")
    if dim is not None:
        if not -weight.ndim <= dim < weight.ndim:
            raise IndexError(f"weight_norm: dim {dim} is out of range for a {weight.ndim}-D parameter")
        dim %= weight.ndim
    parametrize.register_parametrization(module, name, _WeightNorm(dim), unsafe=True)
    return module

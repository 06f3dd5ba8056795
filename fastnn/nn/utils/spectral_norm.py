"""torch.nn.utils.spectral_norm / remove_spectral_norm (the classic hook form): w = w_orig / sigma(w_orig).

sigma is estimated by power iteration on the weight as a matrix (dim first, the rest flattened): the buffers
`name`_u and `name`_v hold the singular-vector estimates, updated in place in training mode (n_power_iterations
steps per forward), frozen in eval mode; the gradient flows through sigma = u . (W v) with u and v constant.
"""
from fastnn import ops
from fastnn.autograd import no_grad
from fastnn.nn.parameter import Parameter
from fastnn.ops.vector import normalize


class SpectralNorm:
    def __init__(self, name="weight", n_power_iterations=1, dim=0, eps=1e-12):
        if n_power_iterations <= 0:
            raise ValueError(f"Expected n_power_iterations to be positive, but got "
                             f"n_power_iterations={n_power_iterations}")
        self.name, self.dim, self.n_power_iterations, self.eps = name, dim, n_power_iterations, eps

    def reshape_weight_to_matrix(self, weight):
        if self.dim != 0:
            weight = ops.movedim(weight, self.dim, 0)
        return ops.reshape(weight, (weight.shape[0], -1))

    def compute_weight(self, module, do_power_iteration):
        weight = getattr(module, self.name + "_orig")
        u, v = getattr(module, self.name + "_u"), getattr(module, self.name + "_v")
        mat = self.reshape_weight_to_matrix(weight)
        if do_power_iteration:
            with no_grad():
                m = mat.detach()
                for _ in range(self.n_power_iterations):
                    v.copy_(normalize(ops.matmul(ops.t(m), u), dim=0, eps=self.eps))
                    u.copy_(normalize(ops.matmul(m, v), dim=0, eps=self.eps))
        # clones: the buffers change in place at the next training forward, after this graph saved them
        u, v = u.clone(), v.clone()
        sigma = ops.sum(ops.mul(u, ops.matmul(mat, v)))
        return ops.div(weight, sigma)

    def __call__(self, module, inputs):
        object.__setattr__(module, self.name, self.compute_weight(module, module.training))


def spectral_norm(module, name="weight", n_power_iterations=1, eps=1e-12, dim=None):
    """Divide module.`name` by its spectral norm before every forward (PyTorch's names: `name`_orig, `name`_u,
    `name`_v). dim defaults to 1 for ConvTranspose layers, 0 otherwise."""
    for hook in module._forward_pre_hooks.values():
        if isinstance(hook, SpectralNorm) and hook.name == name:
            raise RuntimeError(f"Cannot register two spectral_norm hooks on the same parameter {name}")
    weight = module._parameters.get(name)
    if weight is None:
        raise AttributeError(f"{type(module).__name__} has no parameter {name!r} to apply spectral_norm to")
    if dim is None:
        dim = 1 if type(module).__name__.startswith("ConvTranspose") else 0
    fn = SpectralNorm(name, n_power_iterations, dim, eps)
    with no_grad():
        mat = fn.reshape_weight_to_matrix(weight.detach())
        h, w = mat.shape
        u = normalize(weight.new_empty(h).normal_(0, 1), dim=0, eps=eps)
        v = normalize(weight.new_empty(w).normal_(0, 1), dim=0, eps=eps)
    del module._parameters[name]
    module.register_parameter(name + "_orig", weight)
    object.__setattr__(module, name, weight.detach())
    module.register_buffer(name + "_u", u)
    module.register_buffer(name + "_v", v)
    module.register_forward_pre_hook(fn)
    return module


def remove_spectral_norm(module, name="weight"):
    for key, hook in list(module._forward_pre_hooks.items()):
        if isinstance(hook, SpectralNorm) and hook.name == name:
            with no_grad():
                weight = hook.compute_weight(module, do_power_iteration=False).detach()
            del module._forward_pre_hooks[key]
            del module._parameters[name + "_orig"], module._buffers[name + "_u"], module._buffers[name + "_v"]
            module.__dict__.pop(name, None)
            module.register_parameter(name, Parameter(weight))
            return module
    raise ValueError(f"spectral_norm of '{name}' not found in {module}")

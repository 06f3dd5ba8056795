"""parameters_to_vector / vector_to_parameters, as torch.nn.utils."""
from fastnn import ops
from fastnn.autograd import no_grad
from fastnn.tensor import Tensor


def _check_devices(params, name):
    params = list(params)
    for p in params:
        if not isinstance(p, Tensor):
            raise TypeError(f"{name}: expected an iterable of Tensors, got {type(p).__name__}")
        if p._backend is not params[0]._backend:
            raise TypeError(f"{name}: found two parameters on different devices ({params[0].device} and "
                            f"{p.device}), this is currently not supported")
    return params


def parameters_to_vector(parameters):
    """One 1-D tensor holding every parameter, flattened, in order (differentiable, like torch.cat)."""
    params = _check_devices(parameters, "parameters_to_vector")
    return ops.cat([ops.reshape(p, (-1,)) for p in params])


def vector_to_parameters(vec, parameters):
    """Copy consecutive slices of the 1-D `vec` into the parameters (their values change in place)."""
    if not isinstance(vec, Tensor):
        raise TypeError(f"expected torch.Tensor, but got: {type(vec).__name__}")
    params = _check_devices(parameters, "vector_to_parameters")
    total = sum(p.numel() for p in params)
    if vec.ndim != 1 or vec.shape[0] != total:
        raise ValueError(f"vector_to_parameters: vec must be 1-D with {total} elements (the parameters' total), "
                         f"got shape {tuple(vec.shape)}")
    pointer = 0
    with no_grad():
        for p in params:
            n = p.numel()
            p.copy_(vec[pointer:pointer + n].reshape(p.shape))
            pointer += n

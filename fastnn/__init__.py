"""fastnn: a standalone deep-learning framework on NumPy with Numba kernels and a PyTorch-shaped API."""
# autograd first: tensor.py and autograd.py refer to each other (see the bottom of autograd.py).
from fastnn import autograd
from fastnn.autograd import enable_grad, is_grad_enabled, no_grad, set_grad_enabled
from fastnn.tensor import (Tensor, bool_, float16, float32, float64, int32, int64, uint8)
from fastnn.random import default_generator, get_rng_state, manual_seed, set_rng_state
from fastnn.serialization import load, save
from fastnn._dispatch import get_num_threads, set_num_threads
from fastnn.factory import (arange, empty, full, full_like, ones, ones_like, rand, rand_like, randint, randn,
                            randn_like, tensor, zeros, zeros_like)
from fastnn.ops import (abs, amax, amin, argmax, argmin, cat, clamp, exp, flatten, log, logsumexp, matmul,
                        maximum, mean, minimum, permute, reshape, sigmoid, softmax, sqrt, squeeze, stack, std,
                        sum, tanh, transpose, unsqueeze, var, where)
from fastnn.ops import max, min, pow, relu  # noqa: F401  (shadow builtins only inside this namespace)
from fastnn.summary import summary
from fastnn._dispatch import device
from fastnn import data, models, nn, optim  # noqa: E402  (subpackages build on the names above)
from fastnn import backends, cuda, utils  # noqa: E402,F401

# PyTorch's dtype aliases (fastnn.float is float32, fastnn.long int64, ...); they shadow the builtins only as
# attributes of this namespace, as torch.float does.
float, double, half, long, int, bool = float32, float64, float16, int64, int32, bool_  # noqa: A001

__version__ = "0.1.0"

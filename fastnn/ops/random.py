"""Random sampling ops with PyTorch's names: multinomial, bernoulli, normal, and the fills behind the in-place
Tensor.normal_/uniform_/bernoulli_/exponential_/random_/geometric_/log_normal_/cauchy_. All draw through the
tensor's backend (`Backend.draw`), i.e. from fastnn's seeded generator unless a `generator` is given."""
import builtins
import math

import numpy as np

from fastnn.tensor import Tensor

_INT64, _FLOAT64 = np.dtype(np.int64), np.dtype(np.float64)


def _probabilities(input, name):
    if not isinstance(input, Tensor):
        raise TypeError(f"{name}(): argument 'input' must be a Tensor, not {type(input).__name__}")
    if input.dtype.kind != "f":
        raise TypeError(f"{name}(): expected a floating point tensor of probabilities, got {input.dtype}")
    return input


def multinomial(input, num_samples, replacement=False, *, generator=None):
    """Category indices drawn from the rows of `input` (non-negative weights, not necessarily normalised): a
    1-D input gives (num_samples,), a 2-D one (rows, num_samples). Without replacement no category repeats
    within a row (so num_samples can't exceed the number of categories with nonzero weight)."""
    p = _probabilities(input, "multinomial")
    if p.ndim not in (1, 2):
        raise ValueError(f"multinomial(): prob_dist must be 1 or 2 dim, got shape {tuple(p.shape)}")
    if not isinstance(num_samples, (int, np.integer)) or isinstance(num_samples, bool) or num_samples <= 0:
        raise ValueError(f"multinomial(): num_samples must be a positive int, got {num_samples!r}")
    backend = p._backend
    xp = backend.xp
    w = p._data.reshape(-1, p.shape[-1]).astype(_FLOAT64)
    rows, n = w.shape
    if n == 0:
        raise ValueError("multinomial(): the distribution has no categories")
    if not bool(xp.isfinite(w).all()) or bool((w < 0).any()):
        raise ValueError("multinomial(): probability tensor contains either inf, nan or element < 0")
    total = w.sum(axis=1, keepdims=True)
    if bool((total <= 0).any()):
        raise ValueError("multinomial(): invalid multinomial distribution (sum of probabilities <= 0)")
    if not replacement:
        if num_samples > n:
            raise ValueError(f"multinomial(): cannot sample n_sample ({num_samples}) > prob_dist.size(-1) ({n}) "
                             f"samples without replacement")
        if bool(((w > 0).sum(axis=1) < num_samples).any()):
            raise ValueError("multinomial(): invalid multinomial distribution (with replacement=False, not enough "
                             "non-negative category to sample)")
        # Exponential race: category i wins at time E_i / w_i (E_i ~ Exp(1)); the first num_samples arrivals are
        # a draw without replacement with these weights. Zero weights never arrive.
        e = -xp.log1p(-backend.draw("random", (rows, n), _FLOAT64, generator=generator))
        times = xp.where(w > 0, e / xp.where(w > 0, w, 1.0), math.inf)
        idx = xp.argsort(times, axis=1, kind="stable")[:, :num_samples]
    else:
        # Inverse CDF for all rows in one searchsorted: row r's cumulative weights, normalised to [0, 1], are
        # shifted by 3r so that the rows line up in one sorted array; the categories from the last nonzero one on
        # sit at 3r + 2, beyond any draw u + 3r (u < 1), so a draw never lands on a trailing zero-weight category.
        last = (n - 1) - xp.argmax(xp.flip(w > 0, axis=1), axis=1)  # the last category of nonzero weight
        cdf = xp.where(xp.arange(n)[None, :] >= last[:, None], 2.0, xp.cumsum(w, axis=1) / total)
        offsets = 3.0 * xp.arange(rows, dtype=_FLOAT64)[:, None]
        u = backend.draw("random", (rows, num_samples), _FLOAT64, generator=generator)
        flat = xp.searchsorted((cdf + offsets).reshape(-1), (u + offsets).reshape(-1), side="right")
        idx = flat.reshape(rows, num_samples) - n * xp.arange(rows)[:, None]
    idx = idx.astype(_INT64).reshape(p.shape[:-1] + (num_samples,))
    return Tensor._wrap(idx, backend)


def _check_probability(p, name):
    if isinstance(p, Tensor):
        bad = bool(((p._data < 0) | (p._data > 1) | ~p._backend.xp.isfinite(p._data)).any()) if p.dtype.kind == "f" \
            else bool(((p._data < 0) | (p._data > 1)).any())
    else:
        bad = not 0 <= float(p) <= 1
    if bad:
        raise ValueError(f"{name}(): expected 0 <= p <= 1" + ("" if isinstance(p, Tensor) else f", got p={p}"))


def bernoulli_draw(backend, shape, dtype, p, generator=None):
    """0/1 array of `dtype` with P(1) = p (a number or a same-device array broadcasting to shape)."""
    u = backend.draw("random", shape, _FLOAT64, generator=generator)
    return (u < p).astype(dtype)


def bernoulli(input, p=None, *, generator=None):
    """0/1 draws of input's dtype, each 1 with probability input[i] (or with the number p, in the shape of
    input)."""
    x = _probabilities(input, "bernoulli")
    prob = x if p is None else p
    _check_probability(prob, "bernoulli")
    value = prob._data if isinstance(prob, Tensor) else float(prob)
    return Tensor._wrap(bernoulli_draw(x._backend, x.shape, x.dtype, value, generator), x._backend)


def fill(t, method, generator=None, **params):
    """A new tensor of t's shape and dtype for the in-place fills: 'normal' (mean, std), 'uniform' (low, high),
    'exponential' (lambd), 'bernoulli' (p: a number or a tensor of probabilities)."""
    backend = t._backend
    if t.dtype.kind != "f" and method not in ("bernoulli", "random", "geometric"):
        raise TypeError(f"{method}_(): expected a floating point tensor, got {t.dtype}")
    if method == "normal":
        if params["std"] < 0:
            raise ValueError(f"normal_(): std must be >= 0, got {params['std']}")
        data = backend.draw("normal", t.shape, t.dtype, generator=generator, loc=params["mean"],
                            scale=params["std"])
    elif method == "uniform":
        if params["low"] > params["high"]:
            raise ValueError(f"uniform_(): expects from <= to, got from={params['low']}, to={params['high']}")
        data = backend.draw("uniform", t.shape, t.dtype, generator=generator, low=params["low"],
                            high=params["high"])
    elif method == "exponential":
        lambd = params["lambd"]
        if not lambd > 0:
            raise ValueError(f"exponential_(): expects lambd > 0, got lambd={lambd}")
        u = backend.draw("random", t.shape, _FLOAT64, generator=generator)
        data = (-backend.xp.log1p(-u) / lambd).astype(t.dtype)
    elif method in ("random", "geometric", "log_normal", "cauchy"):
        data = _more_fills[method](t, backend, generator, **params)
    else:
        p = params["p"]
        _check_probability(p, "bernoulli_")
        if isinstance(p, Tensor):
            if p._backend is not backend:
                raise RuntimeError(f"expected all tensors on the same device, got {t.device} and {p.device}")
            p = p._data
        data = bernoulli_draw(backend, t.shape, t.dtype, p, generator)
    return Tensor._wrap(data, backend)


def _random_ints(t, backend, generator, low, high):
    """random_: integers in [low, high); high=None means PyTorch's default top, the largest integer t's dtype holds
    exactly plus one (2**24 for float32, 2**53 for float64, iinfo.max + 1 for integers, 2 for bool)."""
    dtype = t.dtype
    if high is None:
        high = (2 if dtype.kind == "b" else 2 ** (np.finfo(dtype).nmant + 1) + 1 if dtype.kind == "f"
                else builtins.min(int(np.iinfo(dtype).max) + 1, 2 ** 63))
    for name, v in (("from", low), ("to", high)):
        if not isinstance(v, (int, np.integer)) or isinstance(v, bool):
            raise TypeError(f"random_(): '{name}' must be an int, got {v!r}")
    if low >= high:
        raise ValueError(f"random_ expects 'from' to be less than 'to', but got from={low} >= to={high}")
    return backend.draw("integers", t.shape, _INT64, generator=generator, low=low, high=high).astype(dtype)


def _geometric(t, backend, generator, p):
    # the number of Bernoulli(p) trials up to the first success, by inversion: floor(log(1-u) / log(1-p)) + 1
    if not 0 < p < 1:
        raise ValueError(f"geometric_ expects p to be in (0, 1), but got p={p}")
    u = backend.draw("random", t.shape, _FLOAT64, generator=generator)
    xp = backend.xp
    return (xp.floor(xp.log1p(-u) / math.log1p(-p)) + 1).astype(t.dtype)


def _log_normal(t, backend, generator, mean, std):
    if not std > 0:
        raise ValueError(f"log_normal_ expects std > 0.0, but found std={std}")
    z = backend.draw("standard_normal", t.shape, _FLOAT64, generator=generator)
    return backend.xp.exp(mean + std * z).astype(t.dtype)


def _cauchy(t, backend, generator, median, sigma):
    if not sigma > 0:
        raise ValueError(f"cauchy_ expects sigma > 0.0, but found sigma={sigma}")
    u = backend.draw("random", t.shape, _FLOAT64, generator=generator)
    return (median + sigma * backend.xp.tan(math.pi * (u - 0.5))).astype(t.dtype)


_more_fills = {"random": _random_ints, "geometric": _geometric, "log_normal": _log_normal, "cauchy": _cauchy}


def normal(mean=0.0, std=1.0, size=None, *, generator=None, dtype=None, device=None, requires_grad=False):
    """torch.normal: draws of N(mean, std) where mean and std are tensors (broadcast together) or numbers; with
    two numbers, `size` gives the shape. As in PyTorch the draws carry no gradient to mean and std (their
    gradient is zero), but the result requires grad when they do."""
    from fastnn import _dispatch
    from fastnn.autograd import make_result
    from fastnn.ops._util import as_tensor, shape_args
    from fastnn.tensor import as_dtype, get_default_dtype
    tensors = [v for v in (mean, std) if isinstance(v, Tensor)]
    if not tensors:
        if size is None:
            raise TypeError("normal(): with a number mean and std, the 'size' argument is required")
        if not std >= 0:
            raise ValueError(f"normal expects std >= 0.0, but found std {std}")
        dtype = get_default_dtype() if dtype is None else as_dtype(dtype)
        if dtype.kind != "f":
            raise TypeError(f"normal(): dtype must be a floating point type, got {dtype}")
        backend = _dispatch.backend(device)
        z = backend.draw("standard_normal", shape_args((size,)), dtype, generator=generator)
        out = Tensor._wrap(z * dtype.type(std) + dtype.type(mean), backend)
        return out.requires_grad_(True) if requires_grad else out
    if size is not None:
        raise TypeError("normal(): 'size' is only accepted when mean and std are both numbers")
    like = tensors[0]
    m, s = as_tensor(mean, like), as_tensor(std, like)
    for name, v in (("mean", m), ("std", s)):
        if v.dtype.kind != "f":
            raise TypeError(f"normal(): '{name}' must be a floating point tensor, got {v.dtype}")
    if m._backend is not s._backend:
        raise RuntimeError(f"expected all tensors on the same device, got {m.device} and {s.device}")
    if bool((s._data < 0).any()):
        raise ValueError("normal expects all elements of std >= 0.0")
    backend = m._backend
    xp = backend.xp
    out_dtype = np.promote_types(m.dtype, s.dtype)
    shape = np.broadcast_shapes(m.shape, s.shape)
    z = backend.draw("standard_normal", shape, out_dtype, generator=generator)
    out = (m._data + s._data * z).astype(out_dtype)
    # PyTorch's derivative of a draw with respect to mean and std is zero, in both modes
    return make_result(out, (m, s), lambda g: (xp.zeros(m.shape, m.dtype), xp.zeros(s.shape, s.dtype)), "normal",
                       saved=(), tangent=lambda tm, ts: Tensor._wrap(xp.zeros(shape, out_dtype), backend))

"""gradcheck: autograd gradients against central finite differences, on any device.

The perturbed inputs are host copies moved to the tensor's device for each evaluation, so the check itself uses
NumPy freely while the function under test runs on the device's backend.
"""
import numpy as np

from fastnn.autograd import backward, enable_grad, no_grad


def gradcheck(fn, inputs, eps=1e-6, atol=1e-5, rtol=1e-3):
    """Compare autograd gradients of `fn(*inputs)` with central finite differences (float64).

    A random projection of the output makes it a scalar, so one backward pass checks every output element.
    Returns True; raises AssertionError naming the input and the worst element on mismatch.
    """
    inputs = tuple(inputs)
    for i, t in enumerate(inputs):
        if t.dtype != np.float64:
            raise TypeError(f"gradcheck needs float64 inputs; input {i} is {t.dtype}")
    with no_grad():
        out = fn(*inputs)
    projection = np.random.default_rng(0).standard_normal(out.shape)
    # Finite differences perturb a host copy through a flat view (np.ascontiguousarray would make 0-d arrays 1-D).
    hosts = [np.require(t._backend.to_host(t._data), requirements=["C", "W", "O"]).copy() for t in inputs]

    def scalar():
        with no_grad():
            for t, host in zip(inputs, hosts):
                t._data = t._backend.from_host(host)
            result = fn(*inputs)
            return float(np.sum(result._backend.to_host(result._data) * projection))

    for t, host in zip(inputs, hosts):
        t._data = t._backend.from_host(host)
        t.grad = None
    with enable_grad():
        out = fn(*inputs)
        backward(out, out._backend.from_host(projection))
    for i, (t, host) in enumerate(zip(inputs, hosts)):
        if not t.requires_grad:
            continue
        analytic = np.zeros(t.shape) if t.grad is None else t.grad._backend.to_host(t.grad._data)
        numeric = np.zeros(t.shape)
        flat = host.reshape(-1)
        for j in range(flat.size):
            orig = flat[j]
            flat[j] = orig + eps
            plus = scalar()
            flat[j] = orig - eps
            minus = scalar()
            flat[j] = orig
            numeric.reshape(-1)[j] = (plus - minus) / (2 * eps)
        bad = ~np.isclose(analytic, numeric, atol=atol, rtol=rtol)
        if bad.any():
            k = np.unravel_index(np.argmax(np.abs(analytic - numeric)), t.shape)
            raise AssertionError(
                f"gradcheck failed for input {i} (shape {t.shape}): {int(bad.sum())} mismatches; worst at "
                f"{tuple(int(v) for v in k)}: analytic {analytic[k]!r} vs numeric {numeric[k]!r}")
    for t, host in zip(inputs, hosts):
        t._data = t._backend.from_host(host)
    return True

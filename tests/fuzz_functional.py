"""Hypothesis fuzzing of layer and functional arguments (run in a subprocess by tests/test_fuzz.py, so that a
crash in a compiled kernel fails that test instead of killing the test run).

Every outcome must be either a result without NaN (the fuzzed ops never produce NaN from finite inputs in
PyTorch) or a ValueError/TypeError/RuntimeError/IndexError raised by fastnn's own Python code: never a Numba
error, and never an exception raised inside NumPy, SciPy or a kernel module, which would mean an argument
reached them unchecked.
"""
import pathlib
import traceback

import numpy as np
from hypothesis import HealthCheck, given, settings, strategies as st

import fastnn
from fastnn import nn
from fastnn.nn import functional as F

PACKAGE = pathlib.Path(fastnn.__file__).parent
KERNEL_DIR = PACKAGE / "_kernels"
ALLOWED = (ValueError, TypeError, RuntimeError, IndexError)
FUZZ = settings(max_examples=150, deadline=None, derandomize=True,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much])

dtypes = st.sampled_from(["float32", "float32", "float64", "float16", "int64", "int32", "bool", "uint8"])
# Mostly valid values (so that kernels run), with odd ones mixed in (so that every check is reached).
small_ints = st.one_of(st.integers(1, 3), st.integers(1, 3), st.integers(-2, 5),
                       st.sampled_from([None, 0, 1.5, "2", (2, 2), (1, 0), (3, -1), True]))
shapes = st.one_of(st.tuples(st.integers(1, 3), st.integers(1, 4), st.integers(1, 9), st.integers(1, 9)),
                   st.lists(st.integers(0, 6), min_size=0, max_size=5).map(tuple))


def _tensor(shape, dtype, seed=0):
    rng = np.random.default_rng(seed)
    data = rng.standard_normal(shape) * 3
    if dtype == "bool":
        data = data > 0
    return fastnn.tensor(np.asarray(data).astype(dtype))


def _check(call, empty_input=False):
    """Run call(); a result must hold no NaN (except a mean over an empty input, NaN in PyTorch too); an error must
    be an allowed type raised from fastnn's Python code."""
    try:
        out = call()
    except ALLOWED as exc:
        frames = traceback.extract_tb(exc.__traceback__)
        origin = pathlib.Path(frames[-1].filename).resolve()
        assert PACKAGE in origin.parents and KERNEL_DIR not in origin.parents, (
            f"{type(exc).__name__} raised outside fastnn's checks, at {origin}:{frames[-1].lineno}: {exc}")
        assert str(exc).strip(), "an error without a message"
        return None
    except Exception as exc:  # noqa: BLE001  (anything else is the failure being looked for)
        raise AssertionError(f"unexpected {type(exc).__module__}.{type(exc).__name__}: {exc}") from exc
    outs = out if isinstance(out, tuple) else (out,)
    for o in outs if not empty_input else ():
        if isinstance(o, fastnn.Tensor) and o.dtype.kind == "f":
            assert not np.isnan(o.detach().numpy()).any(), "NaN in the result"
    return out


@FUZZ
@given(shape=shapes, dtype=dtypes, cout=small_ints, k=small_ints, stride=small_ints, padding=small_ints,
       dilation=small_ints, groups=small_ints)
def test_conv2d(shape, dtype, cout, k, stride, padding, dilation, groups):
    x = _tensor(shape, dtype)
    cin = shape[1] if len(shape) > 1 else 1

    def call():
        layer = nn.Conv2d(cin, cout, k, stride=stride, padding=padding, dilation=dilation, groups=groups)
        out = layer(x)
        out.sum().backward()
        return out
    _check(call)


@FUZZ
@given(shape=shapes, dtype=dtypes, k=small_ints, stride=small_ints, padding=small_ints, dilation=small_ints,
       ceil_mode=st.booleans(), kind=st.sampled_from(["max", "avg", "adaptive_avg", "adaptive_max"]))
def test_pool2d(shape, dtype, k, stride, padding, dilation, ceil_mode, kind):
    x = _tensor(shape, dtype)

    def call():
        if kind == "max":
            return F.max_pool2d(x, k, stride, padding, dilation, ceil_mode=ceil_mode)
        if kind == "avg":
            return F.avg_pool2d(x, k, stride, padding, ceil_mode=ceil_mode)
        if kind == "adaptive_avg":
            return F.adaptive_avg_pool2d(x, k)
        return F.adaptive_max_pool2d(x, k)
    _check(call)


@FUZZ
@given(shape=shapes, dtype=dtypes, eps=st.sampled_from([1e-5, 0.0, -1.0, 1e-3]),
       momentum=st.sampled_from([0.1, None, 2.0, -0.5]), training=st.booleans(),
       kind=st.sampled_from(["batch", "layer", "group", "instance"]))
def test_normalization(shape, dtype, eps, momentum, training, kind):
    x = _tensor(shape, dtype)
    c = shape[1] if len(shape) > 1 else 1

    def call():
        if kind == "batch":
            layer = nn.BatchNorm2d(c, eps=eps, momentum=momentum)
        elif kind == "layer":
            layer = nn.LayerNorm(shape[-1:] if shape else (1,), eps=eps)
        elif kind == "group":
            layer = nn.GroupNorm(1, c, eps=eps)
        else:
            layer = nn.InstanceNorm2d(c, eps=eps)
        layer.train(training)
        return layer(x)
    _check(call)


@FUZZ
@given(shape=shapes, dtype=dtypes, target_shape=shapes, target_dtype=dtypes,
       reduction=st.sampled_from(["mean", "sum", "none", "avg"]), smoothing=st.sampled_from([0.0, 0.1, 1.5, -0.1]),
       ignore_index=st.sampled_from([-100, 0, 3]))
def test_losses(shape, dtype, target_shape, target_dtype, reduction, smoothing, ignore_index):
    x = _tensor(shape, dtype)
    t = _tensor(target_shape, target_dtype, seed=1)
    targets = t.numpy()
    all_ignored = reduction == "mean" and targets.size > 0 and bool(np.all(targets == ignore_index))
    empty = 0 in shape or 0 in target_shape or all_ignored  # a mean over nothing is 0/0 in PyTorch too
    _check(lambda: F.cross_entropy(x, t, reduction=reduction, label_smoothing=smoothing, ignore_index=ignore_index),
           empty)
    _check(lambda: F.mse_loss(x, t, reduction=reduction), 0 in shape)
    _check(lambda: F.nll_loss(x, t, reduction=reduction, ignore_index=ignore_index), empty)


@FUZZ
@given(shape=shapes, dtype=dtypes, in_features=small_ints, out_features=small_ints, p=st.sampled_from(
       [0.0, 0.5, 1.0, -0.1, 1.5]), name=st.sampled_from(["relu", "gelu", "softmax", "log_softmax", "dropout",
                                                          "linear", "flatten", "maxout_like"]))
def test_misc(shape, dtype, in_features, out_features, p, name):
    x = _tensor(shape, dtype)

    def call():
        if name == "relu":
            return F.relu(x)
        if name == "gelu":
            return F.gelu(x)
        if name == "softmax":
            return F.softmax(x, dim=-1)
        if name == "log_softmax":
            return F.log_softmax(x, dim=-1)
        if name == "dropout":
            return F.dropout(x, p=p, training=True)
        if name == "linear":
            return nn.Linear(in_features, out_features)(x)
        if name == "flatten":
            return nn.Flatten(in_features, out_features)(x)
        return x.reshape(in_features, out_features)
    _check(call)

"""Every differentiable op: forward against NumPy, gradients against central finite differences (float64), on
every registered device (the twin device refuses NumPy on its arrays, as a GPU would)."""
import numpy as np
import pytest
from hypothesis import assume, given, strategies as st
from hypothesis.extra import numpy as hnp

import fastnn
from fastnn import ops
from conftest import DEVICES, check, host, leaf

seeds = st.integers(0, 2 ** 32 - 1)
shapes = hnp.array_shapes(min_dims=0, max_dims=3, min_side=1, max_side=4)
nonscalar_shapes = hnp.array_shapes(min_dims=1, max_dims=3, min_side=1, max_side=4)
broadcast_pairs = hnp.mutually_broadcastable_shapes(num_shapes=2, min_dims=0, max_dims=3, max_side=3)


def sample(shape, seed, kind="any"):
    """float64 test values: 'any' (normal), 'positive' (>= 0.5) or 'nonzero' (|v| >= 0.2, away from kinks)."""
    a = np.random.default_rng(seed).standard_normal(shape)
    if kind == "positive":
        return np.abs(a) + 0.5
    if kind == "nonzero":
        return np.where(a >= 0, a + 0.2, a - 0.2)
    return a


# ---- element-wise binary ops with broadcasting --------------------------------------------------------------
BINARY = {
    "add": (lambda a, b: a + b, np.add, "any"),
    "sub": (lambda a, b: a - b, np.subtract, "any"),
    "mul": (lambda a, b: a * b, np.multiply, "any"),
    "div": (lambda a, b: a / b, np.divide, "nonzero"),
    "pow": (lambda a, b: a ** b, np.power, "positive"),
    "maximum": (fastnn.maximum, np.maximum, "any"),
    "minimum": (fastnn.minimum, np.minimum, "any"),
}


@pytest.mark.parametrize("name", sorted(BINARY))
@pytest.mark.parametrize("device", DEVICES)
@given(pair=broadcast_pairs, seed=seeds)
def test_binary_ops_broadcast_gradients(name, pair, seed, device):
    fn, reference, kind = BINARY[name]
    shape_a, shape_b = pair.input_shapes
    a = sample(shape_a, seed, "positive" if name == "pow" else "any")
    b = sample(shape_b, seed + 1, kind if name != "pow" else "any")
    ta, tb = leaf(a, device), leaf(b, device)
    out = fn(ta, tb)
    assert out.shape == pair.result_shape
    out.backward(np.ones(out.shape))
    assert ta.grad.shape == shape_a and tb.grad.shape == shape_b
    check(fn, (a, b), reference(a, b), device)


@pytest.mark.parametrize("fn, reference", [
    (lambda x: x + 2.5, lambda a: a + 2.5),
    (lambda x: 3.0 - x, lambda a: 3.0 - a),
    (lambda x: x * -2, lambda a: a * -2),
    (lambda x: 2.0 / x, lambda a: 2.0 / a),
    (lambda x: x / 4, lambda a: a / 4),
    (lambda x: x ** 3, lambda a: a ** 3),
    (lambda x: x ** 2, lambda a: a ** 2),
    (lambda x: 2.0 ** x, lambda a: 2.0 ** a),
    (lambda x: -x, lambda a: -a),
], ids=["add", "rsub", "mul", "rdiv", "div", "cube", "square", "rpow", "neg"])
@pytest.mark.parametrize("device", DEVICES)
@given(shape=shapes, seed=seeds)
def test_ops_with_python_scalars(fn, reference, shape, seed, device):
    a = sample(shape, seed, "nonzero")
    check(fn, (a,), reference(a), device)


# ---- element-wise unary ops ---------------------------------------------------------------------------------
UNARY = {
    "exp": (fastnn.exp, np.exp, "any"),
    "log": (fastnn.log, np.log, "positive"),
    "sqrt": (fastnn.sqrt, np.sqrt, "positive"),
    "abs": (fastnn.abs, np.abs, "nonzero"),
    "neg": (lambda x: x.neg(), np.negative, "any"),
    "tanh": (fastnn.tanh, np.tanh, "any"),
    "sigmoid": (fastnn.sigmoid, lambda a: 1 / (1 + np.exp(-a)), "any"),
    "relu": (fastnn.relu, lambda a: np.maximum(a, 0), "nonzero"),
    "clamp_both": (lambda x: fastnn.clamp(x, -0.5, 0.7), lambda a: np.clip(a, -0.5, 0.7), "any"),
    "clamp_min": (lambda x: x.clamp(min=0.1), lambda a: np.maximum(a, 0.1), "any"),
    "clamp_max": (lambda x: x.clamp(max=-0.3), lambda a: np.minimum(a, -0.3), "any"),
}


@pytest.mark.parametrize("name", sorted(UNARY))
@pytest.mark.parametrize("device", DEVICES)
@given(shape=shapes, seed=seeds)
def test_unary_ops(name, shape, seed, device):
    fn, reference, kind = UNARY[name]
    a = sample(shape, seed, kind)
    if name.startswith("clamp"):  # keep finite differences off the clamp bounds
        assume(np.all(np.abs(a[..., None] - np.array([-0.5, 0.7, 0.1, -0.3])) > 1e-3))
    check(fn, (a,), reference(a), device)


def test_clamp_requires_a_bound(device):
    with pytest.raises(ValueError, match="min.*max"):
        fastnn.clamp(fastnn.ones(2, device=device))


def test_maximum_minimum_split_ties_evenly(device):
    a = fastnn.tensor([1.0, 2.0, 3.0], requires_grad=True, device=device)
    b = fastnn.tensor([2.0, 2.0, 1.0], requires_grad=True, device=device)
    fastnn.maximum(a, b).sum().backward()
    assert a.grad.tolist() == [0.0, 0.5, 1.0] and b.grad.tolist() == [1.0, 0.5, 0.0]
    a.grad = b.grad = None
    fastnn.minimum(a, b).sum().backward()
    assert a.grad.tolist() == [1.0, 0.5, 0.0] and b.grad.tolist() == [0.0, 0.5, 1.0]


@pytest.mark.parametrize("device", DEVICES)
@given(shapes_=hnp.mutually_broadcastable_shapes(num_shapes=3, min_dims=0, max_dims=3, max_side=3), seed=seeds)
def test_where_broadcasts_and_routes_gradients(shapes_, seed, device):
    shape_c, shape_a, shape_b = shapes_.input_shapes
    cond = sample(shape_c, seed) > 0
    a, b = sample(shape_a, seed + 1), sample(shape_b, seed + 2)
    check(lambda x, y: fastnn.where(fastnn.tensor(cond, device=device), x, y), (a, b), np.where(cond, a, b), device)


def test_where_requires_bool_condition(device):
    with pytest.raises(TypeError, match="bool"):
        fastnn.where(fastnn.ones(2, device=device), fastnn.ones(2, device=device), fastnn.zeros(2, device=device))


@pytest.mark.parametrize("device", DEVICES)
@given(pair=broadcast_pairs, seed=seeds)
def test_comparisons_broadcast_and_have_no_grad(pair, seed, device):
    a, b = sample(pair.input_shapes[0], seed), sample(pair.input_shapes[1], seed + 1)
    ta, tb = leaf(a, device), leaf(b, device)
    for result, reference in ((ta < tb, a < b), (ta <= tb, a <= b), (ta > tb, a > b), (ta >= tb, a >= b),
                              (ta == tb, a == b), (ta != tb, a != b)):
        assert result.dtype == np.bool_ and not result.requires_grad
        np.testing.assert_array_equal(host(result), reference)


# ---- reductions ---------------------------------------------------------------------------------------------
@st.composite
def shape_and_dim(draw, min_side=1, allow_tuple=True):
    shape = draw(hnp.array_shapes(min_dims=1, max_dims=3, min_side=min_side, max_side=4))
    ndim = len(shape)
    options = [st.none(), st.integers(-ndim, ndim - 1)]
    if allow_tuple:
        options.append(st.lists(st.integers(0, ndim - 1), min_size=1, max_size=ndim, unique=True).map(tuple))
    return shape, draw(st.one_of(*options)), draw(st.booleans())


def _np_logsumexp(a, axis, keepdims):
    m = np.amax(a, axis=axis, keepdims=True)
    out = np.log(np.sum(np.exp(a - m), axis=axis, keepdims=True)) + m
    return out if keepdims else (np.squeeze(out, axis) if axis is not None else out.reshape(()))


REDUCTIONS = {
    "sum": (lambda x, d, k: x.sum(dim=d, keepdim=k), lambda a, d, k: np.sum(a, axis=d, keepdims=k)),
    "mean": (lambda x, d, k: fastnn.mean(x, d, k), lambda a, d, k: np.mean(a, axis=d, keepdims=k)),
    "var": (lambda x, d, k: x.var(dim=d, keepdim=k), lambda a, d, k: np.var(a, axis=d, ddof=1, keepdims=k)),
    "std": (lambda x, d, k: fastnn.std(x, dim=d, keepdim=k),
            lambda a, d, k: np.std(a, axis=d, ddof=1, keepdims=k)),
    "var_biased": (lambda x, d, k: x.var(dim=d, unbiased=False, keepdim=k),
                   lambda a, d, k: np.var(a, axis=d, keepdims=k)),
    "std_correction0": (lambda x, d, k: x.std(dim=d, correction=0, keepdim=k),
                        lambda a, d, k: np.std(a, axis=d, keepdims=k)),
    "amax": (lambda x, d, k: fastnn.amax(x, d, k), lambda a, d, k: np.amax(a, axis=d, keepdims=k)),
    "amin": (lambda x, d, k: x.amin(d, k), lambda a, d, k: np.amin(a, axis=d, keepdims=k)),
    "logsumexp": (lambda x, d, k: fastnn.logsumexp(x, d, k), _np_logsumexp),
}


@pytest.mark.parametrize("name", sorted(REDUCTIONS))
@pytest.mark.parametrize("device", DEVICES)
@given(case=shape_and_dim(min_side=2), seed=seeds)
def test_reductions(name, case, seed, device):
    shape, dim, keepdim = case
    fn, reference = REDUCTIONS[name]
    if name == "logsumexp" and dim is None:
        dim = tuple(range(len(shape)))
    a = sample(shape, seed)
    axis = None if dim is None else (tuple(d % len(shape) for d in dim) if isinstance(dim, tuple)
                                     else dim % len(shape))
    check(lambda x: fn(x, dim, keepdim), (a,), reference(a, axis, keepdim), device)


@pytest.mark.parametrize("which", ["max", "min"])
@pytest.mark.parametrize("device", DEVICES)
@given(case=shape_and_dim(allow_tuple=False), seed=seeds)
def test_max_min_along_dim_return_values_and_indices(which, case, seed, device):
    shape, dim, keepdim = case
    a = sample(shape, seed)
    np_val, np_arg = (np.amax, np.argmax) if which == "max" else (np.amin, np.argmin)
    if dim is None:
        check(lambda x: getattr(x, which)(), (a,), np_val(a), device)
        return
    values, indices = getattr(fastnn, which)(fastnn.tensor(a, device=device), dim, keepdim)
    np.testing.assert_array_equal(host(values), np_val(a, axis=dim, keepdims=keepdim))
    np.testing.assert_array_equal(host(indices), np_arg(a, axis=dim, keepdims=keepdim))
    assert indices.dtype == np.int64 and indices.device == device
    check(lambda x: getattr(x, which)(dim, keepdim).values, (a,), np_val(a, axis=dim, keepdims=keepdim), device)


def test_max_gradient_with_ties(device):
    x = fastnn.tensor([1.0, 3.0, 3.0, 2.0], requires_grad=True, device=device)
    fastnn.amax(x).backward()
    assert x.grad.tolist() == [0.0, 0.5, 0.5, 0.0]  # shared evenly among the tied maxima
    x.grad = None
    values, indices = x.max(0)
    values.backward()
    assert indices.item() == 1 and x.grad.tolist() == [0.0, 1.0, 0.0, 0.0]  # all to the returned index


def test_mean_and_var_exact_numbers(device):
    x = fastnn.tensor([[1.0, 2.0], [3.0, 6.0]], requires_grad=True, device=device)
    assert x.mean().item() == 3.0 and x.mean(0).tolist() == [2.0, 4.0]
    assert x.var().item() == pytest.approx(14 / 3)
    assert x.var(1).tolist() == [0.5, 4.5] and x.var(1, unbiased=False).tolist() == [0.25, 2.25]
    x.mean().backward()
    assert x.grad.tolist() == [[0.25, 0.25], [0.25, 0.25]]
    assert fastnn.sum(fastnn.tensor([True, True, False], device=device)).item() == 2


def test_reduction_dim_out_of_range(device):
    with pytest.raises(IndexError, match="dimension out of range"):
        fastnn.ones(2, 3, device=device).sum(2)


# ---- shape ops ----------------------------------------------------------------------------------------------
@pytest.mark.parametrize("device", DEVICES)
@given(shape=shapes, seed=seeds, data=st.data())
def test_reshape_view_flatten(shape, seed, data, device):
    a = sample(shape, seed)
    n = a.size
    check(lambda x: x.reshape(-1), (a,), a.reshape(-1), device)
    check(lambda x: x.view(1, n), (a,), a.reshape(1, n), device)
    check(lambda x: fastnn.reshape(x, tuple(reversed(shape))), (a,), a.reshape(tuple(reversed(shape))), device)
    if a.ndim >= 1:
        start = data.draw(st.integers(0, a.ndim - 1))
        end = data.draw(st.integers(start, a.ndim - 1))
        expected = a.reshape(shape[:start] + (-1,) + shape[end + 1:])
        check(lambda x: fastnn.flatten(x, start, end), (a,), expected, device)
    else:
        check(lambda x: x.flatten(), (a,), a.reshape(1), device)


def test_reshape_invalid_size(device):
    with pytest.raises(ValueError, match=r"shape \[4, 2\] is invalid for input of size 6"):
        fastnn.ones(2, 3, device=device).reshape(4, 2)


@pytest.mark.parametrize("device", DEVICES)
@given(shape=nonscalar_shapes, seed=seeds, data=st.data())
def test_transpose_permute(shape, seed, data, device):
    a = sample(shape, seed)
    perm = tuple(data.draw(st.permutations(range(a.ndim))))
    check(lambda x: x.permute(*perm), (a,), a.transpose(perm), device)
    check(lambda x: fastnn.permute(x, perm), (a,), a.transpose(perm), device)
    d0, d1 = data.draw(st.integers(-a.ndim, a.ndim - 1)), data.draw(st.integers(-a.ndim, a.ndim - 1))
    check(lambda x: fastnn.transpose(x, d0, d1), (a,), np.swapaxes(a, d0, d1), device)
    check(lambda x: x.T, (a,), a.T, device)


@pytest.mark.parametrize("device", DEVICES)
@given(shape=shapes, seed=seeds, data=st.data())
def test_expand(shape, seed, data, device):
    base = tuple(data.draw(st.sampled_from([1, n])) for n in shape)
    a = sample(base, seed)
    target = (2,) + shape
    check(lambda x: x.expand(*target), (a,), np.broadcast_to(a, target), device)
    check(lambda x: x.expand(3, *[-1] * x.ndim), (a,), np.broadcast_to(a, (3,) + base), device)
    check(lambda x: x.expand_as(fastnn.zeros(target, device=device)), (a,), np.broadcast_to(a, target), device)


def test_expand_errors(device):
    with pytest.raises(ValueError, match=r"cannot expand shape \(2,\)"):
        fastnn.ones(2, device=device).expand(3)
    with pytest.raises(ValueError, match="-1 is not allowed"):
        fastnn.ones(2, device=device).expand(-1, 2)


@pytest.mark.parametrize("device", DEVICES)
@given(shape=hnp.array_shapes(min_dims=0, max_dims=4, min_side=1, max_side=3), seed=seeds, data=st.data())
def test_squeeze_unsqueeze(shape, seed, data, device):
    a = sample(shape, seed)
    check(lambda x: x.squeeze(), (a,), np.squeeze(a), device)
    if a.ndim:
        d = data.draw(st.integers(-a.ndim, a.ndim - 1))
        expected = np.squeeze(a, d) if shape[d] == 1 else a
        check(lambda x: fastnn.squeeze(x, d), (a,), expected, device)
    u = data.draw(st.integers(-a.ndim - 1, a.ndim))
    check(lambda x: x.unsqueeze(u), (a,), np.expand_dims(a, u), device)


# ---- indexing -----------------------------------------------------------------------------------------------
@pytest.mark.parametrize("device", DEVICES)
@given(shape=shapes, seed=seeds, data=st.data())
def test_basic_indexing(shape, seed, data, device):
    a = sample(shape, seed)
    index = data.draw(hnp.basic_indices(shape, allow_newaxis=True, allow_ellipsis=True))
    check(lambda x: x[index], (a,), a[index], device)


@pytest.mark.parametrize("device", DEVICES)
@given(shape=nonscalar_shapes, seed=seeds, data=st.data())
def test_integer_array_indexing(shape, seed, data, device):
    a = sample(shape, seed)
    idx = np.array(data.draw(st.lists(st.integers(-shape[0], shape[0] - 1), min_size=1, max_size=6)))
    check(lambda x: x[idx], (a,), a[idx], device)  # a host index array, as CuPy accepts
    check(lambda x: x[fastnn.tensor(idx, device=device)], (a,), a[idx], device)
    if a.ndim >= 2:
        cols = np.array(data.draw(st.lists(st.integers(0, shape[1] - 1), min_size=len(idx), max_size=len(idx))))
        check(lambda x: x[idx, cols], (a,), a[idx, cols], device)
        check(lambda x: x[idx, 1:], (a,), a[idx, 1:], device)


def test_repeated_indices_accumulate_exactly(device):
    x = fastnn.tensor([10.0, 20.0, 30.0, 40.0, 50.0], requires_grad=True, device=device)
    y = x[[0, 0, 2, 0, -1]]
    assert y.tolist() == [10.0, 10.0, 30.0, 10.0, 50.0]
    (y * fastnn.tensor([1.0, 2.0, 3.0, 4.0, 5.0], device=device)).sum().backward()
    assert x.grad.tolist() == [7.0, 0.0, 3.0, 0.0, 5.0]
    m = fastnn.zeros(3, 2, requires_grad=True, device=device)
    rows = fastnn.tensor([2, 2, 0], device=device)
    m[rows, fastnn.tensor([1, 1, 0], device=device)].sum().backward()
    assert m.grad.tolist() == [[1.0, 0.0], [0.0, 0.0], [0.0, 2.0]]


def test_boolean_mask_indexing(device):
    x = fastnn.tensor([[1.0, -2.0], [-3.0, 4.0]], requires_grad=True, device=device)
    y = x[x > 0]
    assert y.tolist() == [1.0, 4.0]
    (y * 3).sum().backward()
    assert x.grad.tolist() == [[3.0, 0.0], [0.0, 3.0]]


def test_index_out_of_range_names_shape(device):
    with pytest.raises(IndexError, match=r"shape \(2, 3\)"):
        fastnn.ones(2, 3, device=device)[5]


# ---- cat, stack, pad ----------------------------------------------------------------------------------------
@pytest.mark.parametrize("device", DEVICES)
@given(shape=nonscalar_shapes, seed=seeds, data=st.data())
def test_cat(shape, seed, data, device):
    dim = data.draw(st.integers(-len(shape), len(shape) - 1))
    sizes = data.draw(st.lists(st.integers(1, 3), min_size=1, max_size=3))
    arrays = []
    for i, n in enumerate(sizes):
        s = list(shape)
        s[dim] = n
        arrays.append(sample(tuple(s), seed + i))
    check(lambda *xs: fastnn.cat(xs, dim), arrays, np.concatenate(arrays, axis=dim), device)


@pytest.mark.parametrize("device", DEVICES)
@given(shape=shapes, seed=seeds, data=st.data())
def test_stack(shape, seed, data, device):
    dim = data.draw(st.integers(-len(shape) - 1, len(shape)))
    count = data.draw(st.integers(1, 3))
    arrays = [sample(shape, seed + i) for i in range(count)]
    check(lambda *xs: fastnn.stack(xs, dim), arrays, np.stack(arrays, axis=dim), device)


def test_cat_stack_shape_errors(device):
    with pytest.raises(ValueError, match=r"\(2, 3\) and \(2, 4\)"):
        fastnn.cat([fastnn.ones(2, 3, device=device), fastnn.ones(2, 4, device=device)], 0)
    with pytest.raises(ValueError, match=r"\(2,\) and \(3,\)"):
        fastnn.stack([fastnn.ones(2, device=device), fastnn.ones(3, device=device)])
    with pytest.raises(ValueError, match="non-empty"):
        fastnn.cat([])


_NP_PAD_MODES = {"constant": "constant", "reflect": "reflect", "replicate": "edge", "circular": "wrap"}


@pytest.mark.parametrize("mode", sorted(_NP_PAD_MODES))
@pytest.mark.parametrize("device", DEVICES)
@given(shape=hnp.array_shapes(min_dims=1, max_dims=3, min_side=2, max_side=4), seed=seeds, data=st.data())
def test_pad(mode, shape, seed, data, device):
    a = sample(shape, seed)
    n_dims = data.draw(st.integers(1, min(2, len(shape))))
    widths = []
    for i in range(n_dims):
        size = shape[-1 - i]
        limit = size - 1 if mode == "reflect" else size  # PyTorch: reflect pad < size, circular pad <= size
        widths += [data.draw(st.integers(0, limit)), data.draw(st.integers(0, limit))]
    np_widths = [(0, 0)] * len(shape)
    for i in range(n_dims):
        np_widths[len(shape) - 1 - i] = (widths[2 * i], widths[2 * i + 1])
    if mode == "constant":
        expected = np.pad(a, np_widths, mode="constant", constant_values=1.5)
        check(lambda x: ops.pad(x, widths, mode="constant", value=1.5), (a,), expected, device)
    else:
        expected = np.pad(a, np_widths, mode=_NP_PAD_MODES[mode])
        check(lambda x: ops.pad(x, widths, mode=mode), (a,), expected, device)


def test_pad_exact_numbers(device):
    x = fastnn.tensor([1.0, 2.0, 3.0], requires_grad=True, device=device)
    assert ops.pad(x, (2, 1), mode="replicate").tolist() == [1.0, 1.0, 1.0, 2.0, 3.0, 3.0]
    assert ops.pad(x, (2, 1), mode="reflect").tolist() == [3.0, 2.0, 1.0, 2.0, 3.0, 2.0]
    assert ops.pad(x, (2, 1), mode="circular").tolist() == [2.0, 3.0, 1.0, 2.0, 3.0, 1.0]
    assert ops.pad(x, (1, 2)).tolist() == [0.0, 1.0, 2.0, 3.0, 0.0, 0.0]
    ops.pad(x, (2, 1), mode="replicate").sum().backward()
    assert x.grad.tolist() == [3.0, 1.0, 2.0]


def test_pad_errors(device):
    with pytest.raises(ValueError, match="even"):
        ops.pad(fastnn.ones(3, device=device), (1,))
    with pytest.raises(ValueError, match="mode"):
        ops.pad(fastnn.ones(3, device=device), (1, 1), mode="mirror")


# ---- softmax, log_softmax -----------------------------------------------------------------------------------
def _np_log_softmax(a, axis):
    shifted = a - a.max(axis=axis, keepdims=True)
    return shifted - np.log(np.exp(shifted).sum(axis=axis, keepdims=True))


@pytest.mark.parametrize("device", DEVICES)
@given(shape=nonscalar_shapes, seed=seeds, data=st.data())
def test_softmax_log_softmax(shape, seed, data, device):
    a = sample(shape, seed) * 3
    dim = data.draw(st.integers(-len(shape), len(shape) - 1))
    check(lambda x: fastnn.softmax(x, dim), (a,), np.exp(_np_log_softmax(a, dim)), device)
    check(lambda x: x.log_softmax(dim), (a,), _np_log_softmax(a, dim), device)
    np.testing.assert_allclose(host(fastnn.softmax(fastnn.tensor(a, device=device), dim)).sum(axis=dim), 1.0,
                               rtol=1e-12)


def test_softmax_is_stable_for_huge_logits(device):
    x = fastnn.tensor([[1e4, -1e4, 0.0], [5e3, 5e3, -5e3]], requires_grad=True, device=device)
    p = fastnn.softmax(x, 1)
    lp = x.log_softmax(1)
    assert np.all(np.isfinite(host(p))) and np.all(np.isfinite(host(lp)))
    np.testing.assert_allclose(host(p), [[1, 0, 0], [0.5, 0.5, 0]], atol=1e-7)
    lp[:, 0].sum().backward()
    assert np.all(np.isfinite(host(x.grad)))


# ---- matmul and linear --------------------------------------------------------------------------------------
@st.composite
def matmul_shapes(draw):
    m, k, n = draw(st.integers(1, 3)), draw(st.integers(1, 3)), draw(st.integers(1, 3))
    batch = draw(hnp.mutually_broadcastable_shapes(num_shapes=2, min_dims=0, max_dims=2, max_side=3))
    kind = draw(st.sampled_from(["mm", "vec@mat", "mat@vec", "vec@vec"]))
    if kind == "vec@vec":
        return (k,), (k,)
    if kind == "vec@mat":
        return (k,), batch.input_shapes[1] + (k, n)
    if kind == "mat@vec":
        return batch.input_shapes[0] + (m, k), (k,)
    return batch.input_shapes[0] + (m, k), batch.input_shapes[1] + (k, n)


@pytest.mark.parametrize("device", DEVICES)
@given(pair=matmul_shapes(), seed=seeds)
def test_matmul(pair, seed, device):
    a, b = sample(pair[0], seed), sample(pair[1], seed + 1)
    check(lambda x, y: x @ y, (a, b), np.matmul(a, b), device)
    check(fastnn.matmul, (a, b), np.matmul(a, b), device)


def test_matmul_exact_numbers(device):
    a = fastnn.tensor([[1.0, 2.0], [3.0, 4.0]], requires_grad=True, device=device)
    b = fastnn.tensor([5.0, 6.0], requires_grad=True, device=device)
    y = a @ b
    assert y.tolist() == [17.0, 39.0]
    y.sum().backward()
    assert a.grad.tolist() == [[5.0, 6.0], [5.0, 6.0]] and b.grad.tolist() == [4.0, 6.0]


@pytest.mark.parametrize("shape_a, shape_b", [((2, 3), (4, 5)), ((3,), (4,)), ((2, 3, 4), (5, 2)),
                                              ((2, 2, 3), (3, 3, 1)), ((3,), (2, 4, 1))])
def test_matmul_shape_mismatch_names_both_shapes(shape_a, shape_b, device):
    with pytest.raises(ValueError) as info:
        fastnn.randn(*shape_a, device=device) @ fastnn.randn(*shape_b, device=device)
    assert str(shape_a) in str(info.value) and str(shape_b) in str(info.value)


def test_matmul_scalar_and_dtype_errors(device):
    with pytest.raises(ValueError, match="at least 1-D"):
        fastnn.matmul(fastnn.tensor(2.0, device=device), fastnn.ones(2, device=device))
    with pytest.raises(TypeError, match="same dtype"):
        fastnn.ones(2, 2, device=device) @ fastnn.ones(2, 2, dtype=fastnn.float64, device=device)


@pytest.mark.parametrize("use_bias", [True, False])
@pytest.mark.parametrize("device", DEVICES)
@given(lead=hnp.array_shapes(min_dims=0, max_dims=2, min_side=1, max_side=3), in_f=st.integers(1, 4),
       out_f=st.integers(1, 3), seed=seeds)
def test_linear(use_bias, lead, in_f, out_f, seed, device):
    x, w, b = sample(lead + (in_f,), seed), sample((out_f, in_f), seed + 1), sample((out_f,), seed + 2)
    if use_bias:
        check(ops.linear, (x, w, b), x @ w.T + b, device)
    else:
        check(ops.linear, (x, w), x @ w.T, device)


def test_linear_shape_errors_name_both_shapes(device):
    with pytest.raises(ValueError, match=r"\(4, 3\).*\(2, 5\)"):
        ops.linear(fastnn.ones(4, 3, device=device), fastnn.ones(2, 5, device=device))
    with pytest.raises(ValueError, match=r"bias shape \(3,\)"):
        ops.linear(fastnn.ones(4, 5, device=device), fastnn.ones(2, 5, device=device), fastnn.ones(3, device=device))

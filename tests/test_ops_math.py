"""Math ops (fastnn/ops/math.py): forward against NumPy over Hypothesis-drawn shapes, gradients against finite
differences in float64, on every device; PyTorch's documented results written in as facts."""
import math

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings, strategies as st
from hypothesis.extra import numpy as hnp

import fastnn
from fastnn.autograd import gradcheck
from conftest import check, host, leaf, t

seeds = st.integers(0, 2 ** 32 - 1)
shapes = hnp.array_shapes(min_dims=0, max_dims=3, min_side=1, max_side=4)
nonscalar = hnp.array_shapes(min_dims=1, max_dims=3, min_side=1, max_side=4)
pairs = hnp.mutually_broadcastable_shapes(num_shapes=2, min_dims=0, max_dims=3, max_side=3)
# `device` is a plain string per parametrization: nothing to reset between examples
few = settings(max_examples=8, suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])


def sample(shape, seed, kind="any"):
    a = np.random.default_rng(seed).standard_normal(shape)
    if kind == "positive":
        return np.abs(a) + 0.5
    if kind == "unit":  # inside (-0.9, 0.9): asin/acos/tan away from their poles
        return 0.9 * np.tanh(a)
    if kind == "nonzero":
        return np.where(a >= 0, a + 0.3, a - 0.3)
    if kind == "off_integers":  # away from the jumps of floor/round/fmod: k + 0.1 .. k + 0.4 or k + 0.6 .. k + 0.9
        frac = np.random.default_rng(seed + 1).uniform(0.1, 0.4, shape) + 0.5 * (a > 0)
        return np.floor(3 * a) + frac
    return a


_erf = np.vectorize(math.erf)
UNARY = {
    "reciprocal": (np.reciprocal, "nonzero"), "rsqrt": (lambda a: 1 / np.sqrt(a), "positive"),
    "sin": (np.sin, "any"), "cos": (np.cos, "any"), "tan": (np.tan, "unit"), "sinh": (np.sinh, "any"),
    "cosh": (np.cosh, "any"), "asin": (np.arcsin, "unit"), "acos": (np.arccos, "unit"),
    "atan": (np.arctan, "any"), "log1p": (np.log1p, "positive"), "expm1": (np.expm1, "any"),
    "log2": (np.log2, "positive"), "log10": (np.log10, "positive"), "exp2": (np.exp2, "any"),
    "square": (np.square, "any"), "erf": (_erf, "any"),
    "sign": (np.sign, "nonzero"), "floor": (np.floor, "off_integers"), "ceil": (np.ceil, "off_integers"),
    "trunc": (np.trunc, "off_integers"), "round": (np.round, "off_integers"),
}


@pytest.mark.parametrize("name", sorted(UNARY))
@few
@given(shape=shapes, seed=seeds)
def test_unary(device, name, shape, seed):
    ref, kind = UNARY[name]
    a = sample(shape, seed, kind)
    check(getattr(fastnn, name), [a], ref(a), device, rtol=1e-12 if name != "erf" else 1e-14)
    # the method form is the same op
    t = fastnn.tensor(a, device=device)
    np.testing.assert_array_equal(host(getattr(t, name)()), host(getattr(fastnn, name)(t)))


def test_floating_functions_promote_integers_to_float32_and_rounding_keeps_them(device):
    for name in ("sin", "exp2", "erf", "rsqrt", "log1p", "reciprocal"):
        assert getattr(fastnn, name)(fastnn.tensor([1, 2], device=device)).dtype == np.float32, name
    ints = fastnn.tensor([1, -2, 3], device=device)
    assert fastnn.square(ints).dtype == np.int64 and host(ints.square()).tolist() == [1, 4, 9]  # PyTorch: x * x
    for name in ("floor", "ceil", "round", "trunc", "sign"):
        out = getattr(fastnn, name)(ints)
        assert out.dtype == np.int64 and host(out).tolist() == [1, -1 if name == "sign" else -2, 1 if name == "sign"
                                                                else 3], name


def test_float32_results_stay_float32(device):
    x = fastnn.tensor([0.3, 0.7], device=device)
    for name in UNARY:
        assert getattr(fastnn, name)(x).dtype == np.float32, name


def test_round_facts(device):
    # torch.round rounds half to even: tensor([0.5, 1.5, 2.5, -0.5, -2.5]) -> [0., 2., 2., -0., -2.]
    x = fastnn.tensor([0.5, 1.5, 2.5, -0.5, -2.5], device=device)
    out = host(fastnn.round(x))
    assert out.tolist() == [0.0, 2.0, 2.0, -0.0, -2.0] and np.signbit(out[3])
    # decimals: torch.round(tensor([1.25, 0.126, 1234.5]), decimals=1) -> [1.2, 0.1, 1234.5]
    np.testing.assert_allclose(host(fastnn.round(fastnn.tensor([1.25, 0.126, 1234.5], device=device), decimals=1)),
                               [1.2, 0.1, 1234.5], rtol=1e-6)
    # decimals=-1: torch.round(tensor([15., 25., 1234.]), decimals=-1) -> [20., 20., 1230.]
    assert host(fastnn.round(fastnn.tensor([15.0, 25.0, 1234.0], device=device), decimals=-1)).tolist() == \
        [20.0, 20.0, 1230.0]
    with pytest.raises(TypeError, match="decimals"):
        fastnn.round(x, decimals=0.5)


def test_fmod_and_remainder_facts(device):
    # From PyTorch's docs: remainder has the sign of the divisor, fmod the sign of the dividend.
    x = fastnn.tensor([-3.0, -2.0, -1.0, 1.0, 2.0, 3.0], device=device)
    assert host(fastnn.remainder(x, 2)).tolist() == [1.0, 0.0, 1.0, 1.0, 0.0, 1.0]
    assert host(fastnn.fmod(x, 2)).tolist() == [-1.0, -0.0, -1.0, 1.0, 0.0, 1.0]
    y = fastnn.tensor([1.0, 2.0, 3.0, 4.0, 5.0], device=device)
    np.testing.assert_allclose(host(fastnn.remainder(y, -1.5)), [-0.5, -1.0, 0.0, -0.5, -1.0])
    np.testing.assert_allclose(host(fastnn.fmod(y, -1.5)), [1.0, 0.5, 0.0, 1.0, 0.5])
    ints = fastnn.tensor([-3, 7], device=device)
    out = fastnn.remainder(ints, 3)
    assert out.dtype == np.int64 and host(out).tolist() == [0, 1]
    assert host(ints % 3).tolist() == [0, 1] and host(fastnn.fmod(ints, 2)).tolist() == [-1, 1]
    with pytest.raises(ZeroDivisionError):
        fastnn.remainder(ints, 0)


BINARY = {
    "atan2": (fastnn.atan2, np.arctan2, "any", "nonzero"),
    "fmod": (fastnn.fmod, np.fmod, "off_integers", "positive"),
    "remainder": (fastnn.remainder, np.remainder, "off_integers", "positive"),
}


@pytest.mark.parametrize("name", sorted(BINARY))
@few
@given(shapes=pairs, seed=seeds)
def test_binary(device, name, shapes, seed):
    fn, ref, kind_a, kind_b = BINARY[name]
    (sa, sb), _ = shapes
    a, b = sample(sa, seed, kind_a), sample(sb, seed + 7, kind_b)
    if name != "atan2":  # divisor away from the dividend's jumps: a fixed 1.0 .. 1.4 scale keeps a/b off integers
        b = 1.0 + 0.1 * np.abs(b) % 0.4
        a = a * 0.999
    check(fn, [a, b], ref(a, b), device)


@few
@given(shapes=hnp.mutually_broadcastable_shapes(num_shapes=3, min_dims=0, max_dims=3, max_side=3), seed=seeds)
def test_lerp(device, shapes, seed):
    (s1, s2, s3), _ = shapes
    a, b, w = sample(s1, seed), sample(s2, seed + 1), sample(s3, seed + 2)
    check(fastnn.lerp, [a, b, w], a + w * (b - a), device)
    x, y = leaf(a, device), leaf(b, device)
    np.testing.assert_allclose(host(x.lerp(y, 0.25)), a + 0.25 * (b - a))
    assert gradcheck(lambda p, q: fastnn.lerp(p, q, 0.25), [x, y])


# ---- matrix products ------------------------------------------------------------------------------------------
dims = st.integers(1, 4)


@few
@given(n=dims, k=dims, m=dims, batch=dims, seed=seeds)
def test_mm_bmm_addmm_outer(device, n, k, m, batch, seed):
    a, b = sample((n, k), seed), sample((k, m), seed + 1)
    check(fastnn.mm, [a, b], a @ b, device)
    ab, bb = sample((batch, n, k), seed + 2), sample((batch, k, m), seed + 3)
    check(fastnn.bmm, [ab, bb], ab @ bb, device)
    c = sample((m,), seed + 4)  # broadcasts over rows, as PyTorch allows
    check(lambda c_, a_, b_: fastnn.addmm(c_, a_, b_, beta=0.5, alpha=2.0), [c, a, b], 0.5 * c + 2.0 * (a @ b),
          device)
    u, v = sample((n,), seed + 5), sample((m,), seed + 6)
    check(fastnn.outer, [u, v], np.outer(u, v), device)
    assert host(leaf(a, device).mm(leaf(b, device))).shape == (n, m)


def test_addmm_with_beta_zero_ignores_nan_input(device):
    c = fastnn.tensor([[math.nan, math.nan]], device=device)
    a = fastnn.tensor([[1.0, 2.0]], device=device)
    b = fastnn.tensor([[1.0, 0.0], [0.0, 1.0]], device=device)
    assert host(fastnn.addmm(c, a, b, beta=0)).tolist() == [[1.0, 2.0]]


def test_matrix_product_argument_errors(device):
    a = fastnn.ones(2, 3, device=device)
    with pytest.raises(ValueError, match="mat2"):
        fastnn.mm(a, fastnn.ones(3, device=device))
    with pytest.raises(ValueError, match="cannot be multiplied"):
        fastnn.mm(a, fastnn.ones(2, 3, device=device))
    with pytest.raises(ValueError, match="3-D"):
        fastnn.bmm(a, a)
    with pytest.raises(TypeError, match="dtype"):
        fastnn.mm(a, fastnn.ones(3, 2, dtype="float64", device=device))


EINSUM = [  # (equation, operand shapes as functions of n)
    ("ij,jk->ik", [(2, 3), (3, 4)]),
    ("ij,jk", [(2, 3), (3, 4)]),
    ("bij,bjk->bik", [(2, 2, 3), (2, 3, 2)]),
    ("i,i->", [(4,), (4,)]),
    ("i,j->ij", [(3,), (2,)]),
    ("ii->i", [(3, 3)]),
    ("ii", [(3, 3)]),
    ("ij->", [(2, 3)]),
    ("ij->j", [(2, 3)]),
    ("ij->ji", [(2, 3)]),
    ("iij,j->i", [(2, 2, 3), (3,)]),
    ("...ij,...jk->...ik", [(2, 2, 3), (3, 2)]),
    ("bhqd,bhkd->bhqk", [(1, 2, 3, 2), (1, 2, 4, 2)]),
    ("ij,ij->ij", [(1, 3), (2, 3)]),  # a size-1 dimension broadcasts
]


@pytest.mark.parametrize("equation,operand_shapes", EINSUM)
def test_einsum(device, equation, operand_shapes):
    arrays = [sample(s, i) for i, s in enumerate(operand_shapes)]
    check(lambda *ts: fastnn.einsum(equation, *ts), arrays, np.einsum(equation, *arrays), device)
    # the list form
    ts = [fastnn.tensor(a, device=device) for a in arrays]
    np.testing.assert_allclose(host(fastnn.einsum(equation, ts)), np.einsum(equation, *arrays))


def test_einsum_errors(device):
    a = fastnn.ones(2, 3, device=device)
    with pytest.raises(ValueError, match="operand"):
        fastnn.einsum("ij,jk->ik", a)
    with pytest.raises(ValueError, match="subscripts"):
        fastnn.einsum("ijk->i", a)
    with pytest.raises(TypeError, match="equation"):
        fastnn.einsum(a, a)


# ---- cumulative and product reductions ------------------------------------------------------------------------
@few
@given(shape=nonscalar, seed=seeds, data=st.data())
def test_cumsum_cumprod_prod(device, shape, seed, data):
    dim = data.draw(st.integers(-len(shape), len(shape) - 1))
    a = sample(shape, seed)
    if data.draw(st.booleans()):  # exact zeros: the product gradients must not divide by them
        a.reshape(-1)[data.draw(st.integers(0, a.size - 1))] = 0.0
    check(lambda t: fastnn.cumsum(t, dim), [a], np.cumsum(a, axis=dim), device)
    check(lambda t: fastnn.cumprod(t, dim), [a], np.cumprod(a, axis=dim), device)
    check(lambda t: fastnn.prod(t, dim), [a], np.prod(a, axis=dim), device)
    check(lambda t: t.prod(dim, keepdim=True), [a], np.prod(a, axis=dim, keepdims=True), device)
    check(fastnn.prod, [a], np.prod(a), device)


def test_prod_gradient_with_two_zeros_is_zero_and_one_zero_exact(device):
    x = leaf(np.array([0.0, 2.0, 0.0, 3.0]), device)
    fastnn.prod(x).backward()
    assert host(x.grad).tolist() == [0.0, 0.0, 0.0, 0.0]
    y = leaf(np.array([0.0, 2.0, 5.0]), device)
    fastnn.prod(y).backward()
    assert host(y.grad).tolist() == [10.0, 0.0, 0.0]


def test_cumsum_prod_of_integers_are_int64(device):
    x = fastnn.tensor(np.array([1, 2, 3], dtype=np.uint8), device=device)
    for out in (fastnn.cumsum(x, 0), fastnn.prod(x), fastnn.cumprod(x, 0)):
        assert out.dtype == np.int64
    assert host(fastnn.cumsum(x, 0, dtype="float64")).dtype == np.float64


NORM_PS = [2, "fro", 1, 3, 0.5, math.inf, -math.inf, 0]


def _np_norm(a, p, axis, keepdims=False):
    if p == "fro":
        p = 2
    a = np.abs(a)
    if p == math.inf:
        return a.max(axis=axis, keepdims=keepdims)
    if p == -math.inf:
        return a.min(axis=axis, keepdims=keepdims)
    if p == 0:
        return (a != 0).sum(axis=axis, keepdims=keepdims).astype(float)
    return (a ** p).sum(axis=axis, keepdims=keepdims) ** (1 / p)


@pytest.mark.parametrize("p", NORM_PS, ids=str)
@few
@given(shape=nonscalar, seed=seeds, data=st.data())
def test_norm(device, p, shape, seed, data):
    a = sample(shape, seed, "nonzero")
    dim = data.draw(st.none() | st.integers(-len(shape), len(shape) - 1))
    keepdim = data.draw(st.booleans())
    check(lambda t: fastnn.norm(t, p, dim, keepdim), [a], _np_norm(a, p, dim, keepdim and dim is not None),
          device, rtol=1e-10)
    if dim is None:
        check(lambda t: t.norm(p), [a], _np_norm(a, p, None), device, rtol=1e-10)


def test_norm_gradient_at_zero_is_zero_and_ties_share(device):
    z = leaf(np.zeros(3), device)
    fastnn.norm(z).backward()
    assert host(z.grad).tolist() == [0.0, 0.0, 0.0]
    x = leaf(np.array([3.0, -3.0, 1.0]), device)
    fastnn.norm(x, math.inf).backward()  # PyTorch splits the gradient evenly between tied maxima
    assert host(x.grad).tolist() == [0.5, -0.5, 0.0]
    with pytest.raises(ValueError, match="p must be"):
        fastnn.norm(x, "nuc")


@few
@given(shapes=pairs, seed=seeds, p=st.sampled_from([1, 2, 3, math.inf]))
def test_dist(device, shapes, seed, p):
    (sa, sb), _ = shapes
    a, b = sample(sa, seed), sample(sb, seed + 1)
    check(lambda x, y: fastnn.dist(x, y, p), [a, b], _np_norm(np.broadcast_to(a - b, np.broadcast_shapes(sa, sb)),
                                                               p, None), device, rtol=1e-10)


# ---- triangles and diagonals -------------------------------------------------------------------------------------
@few
@given(shape=hnp.array_shapes(min_dims=2, max_dims=3, min_side=1, max_side=4), seed=seeds, k=st.integers(-2, 2))
def test_tril_triu(device, shape, seed, k):
    a = sample(shape, seed)
    check(lambda t: fastnn.tril(t, k), [a], np.tril(a, k), device)
    check(lambda t: t.triu(k), [a], np.triu(a, k), device)


@few
@given(n=st.integers(1, 4), m=st.integers(1, 4), k=st.integers(-3, 3), seed=seeds)
def test_diag(device, n, m, k, seed):
    v = sample((n,), seed)
    check(lambda t: fastnn.diag(t, k), [v], np.diag(v, k), device)
    a = sample((n, m), seed + 1)
    check(lambda t: t.diag(k), [a], np.diag(a, k), device)


def test_triangle_and_diag_argument_errors(device):
    with pytest.raises(ValueError, match="at least 2"):
        fastnn.tril(fastnn.ones(3, device=device))
    with pytest.raises(ValueError, match="1-D or 2-D"):
        fastnn.diag(fastnn.ones(2, 2, 2, device=device))


# ---- tests on values ---------------------------------------------------------------------------------------------
def test_isnan_isinf_isfinite_nan_to_num(device):
    vals = [1.0, math.nan, math.inf, -math.inf, -2.0]
    x = fastnn.tensor(vals, device=device)
    assert host(fastnn.isnan(x)).tolist() == [False, True, False, False, False]
    assert host(x.isinf()).tolist() == [False, False, True, True, False]
    assert host(fastnn.isfinite(x)).tolist() == [True, False, False, False, True]
    ints = fastnn.tensor([1, 2], device=device)
    assert host(fastnn.isnan(ints)).tolist() == [False, False] and host(ints.isfinite()).tolist() == [True, True]
    # PyTorch: nan -> 0, +inf -> the dtype's largest finite value, -inf -> its lowest
    f32 = np.finfo(np.float32)
    assert host(fastnn.nan_to_num(x)).tolist() == [1.0, 0.0, float(f32.max), float(f32.min), -2.0]
    assert host(x.nan_to_num(nan=7.0, posinf=5.0, neginf=-5.0)).tolist() == [1.0, 7.0, 5.0, -5.0, -2.0]
    g = leaf(np.array(vals), device)
    fastnn.nan_to_num(g).sum().backward()
    assert host(g.grad).tolist() == [1.0, 0.0, 0.0, 0.0, 1.0]


@few
@given(shape=nonscalar, seed=seeds, data=st.data())
def test_any_all(device, shape, seed, data):
    a = np.random.default_rng(seed).random(shape) < 0.3
    dim = data.draw(st.none() | st.integers(-len(shape), len(shape) - 1))
    keepdim = data.draw(st.booleans())
    for name in ("any", "all"):
        t = fastnn.tensor(a, device=device)
        out = getattr(fastnn, name)(t, dim, keepdim)
        ref = getattr(np, name)(a, axis=dim, keepdims=keepdim)
        assert out.dtype == np.bool_ and host(out).tolist() == np.asarray(ref).tolist()
        assert host(getattr(t.float(), name)(dim, keepdim)).tolist() == np.asarray(ref).tolist()


def test_allclose_and_equal(device):
    a = fastnn.tensor([1.0, 2.0], device=device)
    assert fastnn.allclose(a, a + 1e-9) is True and a.allclose(a + 1e-3) is False
    assert fastnn.allclose(a, fastnn.tensor([1.0, 2.1], device=device), atol=0.2)
    nan = fastnn.tensor([math.nan], device=device)
    assert not fastnn.allclose(nan, nan) and fastnn.allclose(nan, nan, equal_nan=True)
    assert fastnn.equal(a, a.clone()) is True
    assert not fastnn.equal(a, fastnn.tensor([1.0, 2.0, 3.0], device=device))  # shapes differ: False, no broadcast
    assert not a.equal(fastnn.tensor([1.0, 3.0], device=device))


def test_in_place_edits_refused_exactly_where_a_backward_reads_the_edited_tensor(device):
    def edited_after(op):
        x = leaf(np.array([0.5, 1.5]), device)
        y = x * 1.0  # a non-leaf whose storage the test edits after the op
        out = op(y)
        with fastnn.no_grad():
            y.add_(1.0)
        out.sum().backward()
        return host(x.grad)
    for reads in (fastnn.sin, fastnn.erf, lambda v: fastnn.cumprod(v, 0), fastnn.prod, fastnn.norm,
                  lambda v: fastnn.mm(v.reshape(1, 2), v.reshape(2, 1))):
        with pytest.raises(RuntimeError, match="modified by an inplace operation"):
            edited_after(reads)
    # reciprocal's backward reads its output, not its input; the others read no values
    for free in (fastnn.floor, fastnn.reciprocal, lambda v: fastnn.cumsum(v, 0), lambda v: v.repeat(2),
                 lambda v: fastnn.flip(v, 0), lambda v: fastnn.sort(v).values):
        assert edited_after(free).shape == (2,)


def test_prod_of_an_empty_tensor(device):
    x = leaf(np.zeros((0, 3)), device)
    out = fastnn.prod(x, 0)
    assert host(out).tolist() == [1.0, 1.0, 1.0]
    out.sum().backward()
    assert host(x.grad).shape == (0, 3)


# ---- logical/bitwise, diagonals, counting, searching ------------------------------------------------------------
def test_logical_and_bitwise_ops(device):
    a, b = t([True, False, True, False], device), t([True, True, False, False], device)
    assert host(a & b).tolist() == [True, False, False, False] and host(a | b).tolist() == [True, True, True, False]
    assert host(a ^ b).tolist() == [False, True, True, False] and host(~a).tolist() == [False, True, False, True]
    x = t([-1.5, 0.0, 2.0], device)
    assert host((x > -1) & (x < 1)).tolist() == [False, True, False]  # the mask idiom
    assert host(fastnn.logical_and(x, t([1.0, 1.0, 0.0], device))).tolist() == [True, False, False]
    assert host(x.logical_not()).tolist() == [False, True, False]
    assert host(fastnn.logical_or(x, 0)).tolist() == [True, False, True]
    assert host(fastnn.logical_xor(a, b)).tolist() == [False, True, True, False]
    ints = t([12, 10], device)
    assert host(ints & 6).tolist() == [4, 2] and host(ints | 1).tolist() == [13, 11]
    assert host(fastnn.bitwise_xor(ints, 15)).tolist() == [3, 5] and host(~ints).tolist() == [-13, -11]
    with pytest.raises(TypeError, match="integer and bool"):
        x & x


@few
@given(shape=hnp.array_shapes(min_dims=2, max_dims=4, min_side=1, max_side=4), seed=seeds, data=st.data())
def test_diagonal_and_trace(device, shape, seed, data):
    a = sample(shape, seed)
    nd = len(shape)
    d1, d2 = data.draw(st.lists(st.integers(-nd, nd - 1), min_size=2, max_size=2,
                                unique_by=lambda d: d % nd))
    k = data.draw(st.integers(-3, 3))
    check(lambda x: fastnn.diagonal(x, k, d1, d2), [a], np.diagonal(a, k, d1, d2), device)
    m = a.reshape(shape[0], -1)
    check(fastnn.trace, [m], np.trace(m), device)
    x = t(a, device)
    assert x.diagonal(k, d1, d2)._version_counter is x._version_counter  # a view, as in PyTorch


def test_count_nonzero_bincount(device):
    x = t([[0, 1, 7], [0, 0, 3]], device)
    assert host(fastnn.count_nonzero(x)).tolist() == 3 and host(x.count_nonzero(0)).tolist() == [0, 1, 2]
    # torch.bincount(tensor([4, 3, 6, 3, 4])) -> [0, 0, 0, 2, 2, 0, 1]
    v = t([4, 3, 6, 3, 4], device)
    assert host(fastnn.bincount(v)).tolist() == [0, 0, 0, 2, 2, 0, 1]
    assert host(v.bincount(minlength=9)).tolist() == [0, 0, 0, 2, 2, 0, 1, 0, 0]
    w = t([0.5, 1.0, 2.0, 1.0, 0.25], device)
    np.testing.assert_allclose(host(fastnn.bincount(v, w)), [0, 0, 0, 2.0, 0.75, 0, 2.0])
    with pytest.raises(ValueError, match="non-negative"):
        fastnn.bincount(t([1, -1], device))
    with pytest.raises(ValueError, match="1-D integer"):
        fastnn.bincount(t([1.0], device))


def test_searchsorted_and_bucketize_facts(device):
    # From PyTorch's docs
    seq = t([[1, 3, 5, 7, 9], [2, 4, 6, 8, 10]], device)
    values = t([[3, 6, 9], [3, 6, 9]], device)
    assert host(fastnn.searchsorted(seq, values)).tolist() == [[1, 3, 4], [1, 2, 4]]
    assert host(fastnn.searchsorted(seq, values, right=True)).tolist() == [[2, 3, 5], [1, 3, 4]]
    assert host(fastnn.searchsorted(seq[0], values)).tolist() == [[1, 3, 4], [1, 3, 4]]
    assert host(fastnn.searchsorted(seq[0], values, side="right")).tolist() == [[2, 3, 5], [2, 3, 5]]
    sorter = t([2, 0, 1], device)
    assert host(fastnn.searchsorted(t([3, 5, 1], device), t([4], device), sorter=sorter)).tolist() == [2]
    boundaries = t([1, 3, 5, 7, 9], device)
    assert host(fastnn.bucketize(values, boundaries)).tolist() == [[1, 3, 4], [1, 3, 4]]
    out = fastnn.bucketize(values, boundaries, right=True, out_int32=True)
    assert host(out).tolist() == [[2, 3, 5], [2, 3, 5]] and out.dtype == np.int32
    with pytest.raises(ValueError, match="side"):
        fastnn.searchsorted(seq, values, side="middle")


def test_clamp_min_max(device):
    x = leaf(np.array([-1.0, 0.5, 2.0]), device)
    assert host(fastnn.clamp_min(x, 0.0)).tolist() == [0.0, 0.5, 2.0]
    assert host(x.clamp_max(1.0)).tolist() == [-1.0, 0.5, 1.0]
    assert gradcheck(lambda v: fastnn.clamp_min(v, 0.0), [x])


def test_floor_divide(device):
    x = t([-7, 7, 6], device)
    out = x // 2
    assert out.dtype == np.int64 and host(out).tolist() == [-4, 3, 3]  # rounds toward -inf, as Python's //
    assert host(fastnn.floor_divide(t([-7.5, 7.5], device), 2)).tolist() == [-4.0, 3.0]
    assert host(7 // t([2, -2], device)).tolist() == [3, -4] and host(x.floor_divide(t([3], device))).tolist() == \
        [-3, 2, 2]
    with pytest.raises(ZeroDivisionError):
        x // 0
    w = leaf(np.array([1.5, -2.5]), device)
    (w // 1.0).sum().backward()
    assert host(w.grad).tolist() == [0.0, 0.0]

"""The torch functions added for drop-in use (issue 14, part A): every differentiable one against a NumPy/SciPy
reference and central finite differences in float64 over Hypothesis-drawn shapes, on every registered device;
facts about PyTorch 2.13 (defaults, output dtypes, error types) written in as such; fastnn.Generator."""
import math

import numpy as np
import pytest
import scipy.special
from hypothesis import HealthCheck, given, settings, strategies as st
from hypothesis.extra import numpy as hnp

import fastnn
from fastnn import linalg
from conftest import DEVICES, check, host, leaf, t

few = settings(max_examples=6, suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
seeds = st.integers(0, 2 ** 32 - 1)
shapes = hnp.array_shapes(min_dims=1, max_dims=3, min_side=1, max_side=4)
pairs = hnp.mutually_broadcastable_shapes(num_shapes=2, min_dims=0, max_dims=3, max_side=3)


def sample(shape, seed, kind="any"):
    a = np.random.default_rng(seed).standard_normal(shape)
    if kind == "positive":
        return np.abs(a) + 0.5
    if kind == "unit":  # inside (0, 1), away from the ends
        return 0.1 + 0.8 * scipy.special.expit(a)
    if kind == "nonzero":
        return np.where(a >= 0, a + 0.3, a - 0.3)
    return a


# ---- element-wise binary functions with broadcasting --------------------------------------------------------
def _logaddexp2(a, b):
    return np.logaddexp2(a, b)


BINARY = {
    "logaddexp": (fastnn.logaddexp, np.logaddexp, "any", "any"),
    "logaddexp2": (fastnn.logaddexp2, _logaddexp2, "any", "any"),
    "hypot": (fastnn.hypot, np.hypot, "nonzero", "nonzero"),
    "xlogy": (fastnn.xlogy, scipy.special.xlogy, "any", "positive"),
    "fmax": (fastnn.fmax, np.fmax, "any", "any"),
    "fmin": (fastnn.fmin, np.fmin, "any", "any"),
    "copysign": (fastnn.copysign, np.copysign, "nonzero", "nonzero"),
    "addcmul": (lambda a, b: fastnn.addcmul(a, b, b, value=0.5), lambda a, b: a + 0.5 * b * b, "any", "any"),
    "addcdiv": (lambda a, b: fastnn.addcdiv(a, a, b, value=-2), lambda a, b: a - 2 * a / b, "any", "nonzero"),
}


@pytest.mark.parametrize("name", sorted(BINARY))
@pytest.mark.parametrize("device", DEVICES)
@few
@given(pair=pairs, seed=seeds)
def test_binary_functions(name, pair, seed, device):
    fn, reference, kind_a, kind_b = BINARY[name]
    a, b = sample(pair.input_shapes[0], seed, kind_a), sample(pair.input_shapes[1], seed + 1, kind_b)
    if name in ("fmax", "fmin"):  # ties between a and b have no derivative: keep them apart
        b = b + 0.05 * np.sign(b - a + 1e-3)
    check(fn, (a, b), reference(a, b), device)


# ---- element-wise unary functions ---------------------------------------------------------------------------
UNARY = {
    "erfc": (fastnn.erfc, scipy.special.erfc, "any"),
    "sinc": (fastnn.sinc, np.sinc, "any"),
    "logit": (fastnn.logit, scipy.special.logit, "unit"),
    "logit_eps": (lambda x: fastnn.logit(x, eps=0.2), lambda a: scipy.special.logit(np.clip(a, 0.2, 0.8)), "unit"),
    "deg2rad": (fastnn.deg2rad, np.deg2rad, "any"),
    "rad2deg": (fastnn.rad2deg, np.rad2deg, "any"),
    "frac": (fastnn.Tensor.frac, lambda a: a - np.trunc(a), "nonzero"),
    "logcumsumexp": (lambda x: fastnn.logcumsumexp(x, -1), lambda a: np.logaddexp.accumulate(a, axis=-1), "any"),
    "logcumsumexp0": (lambda x: fastnn.logcumsumexp(x * 300, 0),
                      lambda a: np.logaddexp.accumulate(a * 300, axis=0), "any"),
    "diff": (lambda x: fastnn.diff(x, 2, dim=0), lambda a: np.diff(a, 2, axis=0), "any"),
    "ravel": (fastnn.ravel, np.ravel, "any"),
    "rot90_1": (lambda x: fastnn.rot90(x, 1, (0, -1)), lambda a: np.rot90(a, 1, (0, a.ndim - 1)), "any"),
    "rot90_3": (lambda x: fastnn.rot90(x, -1, (-1, 0)), lambda a: np.rot90(a, -1, (a.ndim - 1, 0)), "any"),
    "cummax": (lambda x: fastnn.cummax(x, 0).values, lambda a: np.maximum.accumulate(a, axis=0), "any"),
    "cummin": (lambda x: fastnn.cummin(x, -1).values, lambda a: np.minimum.accumulate(a, axis=-1), "any"),
    "nansum": (lambda x: fastnn.nansum(x, 0), lambda a: np.nansum(a, axis=0), "any"),
    "nanmean": (lambda x: fastnn.nanmean(x, -1, keepdim=True), lambda a: np.nanmean(a, -1, keepdims=True), "any"),
    "quantile": (lambda x: fastnn.quantile(x, 0.3, dim=0), lambda a: np.quantile(a, 0.3, axis=0), "any"),
    "quantile_all": (lambda x: fastnn.quantile(x, fastnn.tensor([0.0, 0.5, 0.9], dtype=x.dtype,
                                                                         device=x.device)),
                     lambda a: np.quantile(a, [0.0, 0.5, 0.9]), "any"),
    "quantile_midpoint": (lambda x: x.quantile(0.25, -1, True, interpolation="midpoint"),
                          lambda a: np.quantile(a, 0.25, axis=-1, keepdims=True, method="midpoint"), "any"),
    "var_mean": (lambda x: fastnn.var_mean(x, 0, correction=0)[0] + fastnn.std_mean(x, 0, correction=0)[1],
                 lambda a: a.var(0) + a.mean(0), "any"),
    "aminmax": (lambda x: fastnn.aminmax(x).max - fastnn.aminmax(x).min, lambda a: np.ptp(a), "any"),
    "atleast_3d": (lambda x: fastnn.atleast_3d(x), np.atleast_3d, "any"),
    "unfold": (lambda x: x.unfold(0, 1, 1), lambda a: np.moveaxis(
        np.lib.stride_tricks.sliding_window_view(a, 1, axis=0), -1, -1), "any"),
    "dstack": (lambda x: fastnn.dstack([x, x * 2]), lambda a: np.dstack([a, a * 2]), "any"),
    "kron": (lambda x: fastnn.kron(x, x * 2), lambda a: np.kron(a, a * 2), "any"),
    "asinh": (fastnn.asinh, np.arcsinh, "any"),
    "acosh": (lambda x: fastnn.acosh(x + 1), lambda a: np.arccosh(a + 1), "positive"),
    "atanh": (fastnn.atanh, np.arctanh, "unit"),
    "float_power": (lambda x: fastnn.float_power(x, 3), lambda a: a ** 3, "any"),
    "diag_embed": (lambda x: fastnn.diag_embed(x, 1, 0, -1), lambda a: np.moveaxis(
        np.apply_along_axis(lambda v: np.diag(v, 1), -1, a), (-2, -1), (0, -1)), "any"),
    "cov": (lambda x: fastnn.cov(x.reshape(x.shape[0], -1) if x.ndim > 1 else x, correction=0),
            lambda a: np.cov(a.reshape(a.shape[0], -1) if a.ndim > 1 else a, ddof=0), "any"),
    "lgamma": (fastnn.lgamma, scipy.special.gammaln, "nonzero"),
    "lgamma_large": (lambda x: fastnn.lgamma(x * 40), lambda a: scipy.special.gammaln(a * 40), "positive"),
    "digamma": (fastnn.digamma, scipy.special.digamma, "nonzero"),
    "polygamma2": (lambda x: fastnn.polygamma(2, x), lambda a: scipy.special.polygamma(2, a), "positive"),
    "erfinv": (fastnn.erfinv, scipy.special.erfinv, "unit"),
    "trapezoid": (lambda x: fastnn.trapezoid(x, dx=0.5, dim=0), lambda a: np.trapezoid(a, dx=0.5, axis=0), "any"),
}


@pytest.mark.parametrize("name", sorted(UNARY))
@pytest.mark.parametrize("device", DEVICES)
@few
@given(shape=shapes, seed=seeds)
def test_unary_functions(name, shape, seed, device):
    fn, reference, kind = UNARY[name]
    if name.startswith("rot90") and len(shape) < 2:  # a plane to rotate in
        shape = shape + (2,)
    a = sample(shape, seed, kind)
    check(fn, (a,), reference(a), device)


@pytest.mark.parametrize("device", DEVICES)
@few
@given(shape=hnp.array_shapes(min_dims=1, max_dims=3, min_side=3, max_side=6), seed=seeds,
       size=st.integers(1, 3), step=st.integers(1, 3))
def test_unfold_windows(shape, seed, size, step, device):
    a = sample(shape, seed)
    windows = np.lib.stride_tricks.sliding_window_view(a, size, axis=0)[::step]  # windows along dim 0, last dim
    check(lambda x: x.unfold(0, size, step), (a,), windows, device)


# ---- products -------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("device", DEVICES)
@few
@given(n=st.integers(1, 4), m=st.integers(1, 4), p=st.integers(1, 3), b=st.integers(1, 3), seed=seeds)
def test_matrix_products(n, m, p, b, seed, device):
    rng = np.random.default_rng(seed)
    A, v, w, c = rng.standard_normal((n, m)), rng.standard_normal(m), rng.standard_normal(n), rng.standard_normal(n)
    B1, B2, C = rng.standard_normal((b, n, m)), rng.standard_normal((b, m, p)), rng.standard_normal((n, p))
    check(fastnn.dot, (v, v[::-1].copy()), v @ v[::-1], device)
    check(fastnn.mv, (A, v), A @ v, device)
    check(lambda x, y, z: fastnn.addmv(x, y, z, beta=0.5, alpha=2), (c, A, v), 0.5 * c + 2 * A @ v, device)
    check(lambda x, y, z: fastnn.addr(x, y, z, alpha=-1), (A, w, v), A - np.outer(w, v), device)
    check(lambda x, y, z: fastnn.baddbmm(x, y, z, beta=2), (C, B1, B2), 2 * C + B1 @ B2, device)
    check(fastnn.addbmm, (C, B1, B2), C + (B1 @ B2).sum(0), device)
    check(fastnn.inner, (B1, A), np.inner(B1, A), device)
    B1t = np.swapaxes(B1, 1, 2).copy()
    check(lambda x, y: fastnn.tensordot(x, y, dims=([1, 2], [2, 1])), (B1, B1t),
          np.tensordot(B1, B1t, ([1, 2], [2, 1])), device)
    check(lambda x, y: fastnn.cdist(x, y), (A, B1[0]), np.linalg.norm(A[:, None] - B1[0][None], axis=-1),
          device, rtol=1e-9)
    check(lambda x, y: fastnn.cdist(x, y, p=1), (A, A[::-1] + 0.3), np.abs(A[:, None] - A[::-1][None] - 0.3).sum(-1),
          device)


@pytest.mark.parametrize("device", DEVICES)
@few
@given(shape=hnp.array_shapes(min_dims=1, max_dims=3, min_side=1, max_side=3), seed=seeds)
def test_cross(shape, seed, device):
    shape = shape + (3,)
    a, b = sample(shape, seed), sample(shape, seed + 1)
    check(lambda x, y: fastnn.linalg.cross(x, y), (a, b), np.cross(a, b), device)
    check(lambda x, y: fastnn.cross(x, y, dim=-1), (a, b), np.cross(a, b), device)


# ---- indexing -------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("device", DEVICES)
@few
@given(shape=hnp.array_shapes(min_dims=2, max_dims=3, min_side=2, max_side=4), seed=seeds)
def test_indexing_functions(shape, seed, device):
    rng = np.random.default_rng(seed)
    a = rng.standard_normal(shape)
    idx = rng.permutation(shape[1])[:2]
    src = rng.standard_normal(shape[:1] + (2,) + shape[2:])
    ref = a.copy()
    ref[:, idx] = -1.5
    check(lambda x: fastnn.index_fill(x, 1, t(idx, device), -1.5), (a,), ref, device)
    ref = a.copy()
    ref[:, idx] = src
    check(lambda x, s: x.index_copy(1, t(idx, device), s), (a, src), ref, device)
    mask = rng.random(shape) < 0.5
    source = rng.standard_normal(a.size + 2)
    ref = a.copy()
    ref[mask] = source[:mask.sum()]
    check(lambda x, s: x.masked_scatter(t(mask, device), s), (a, source), ref, device)
    flat = rng.integers(-a.size, a.size, size=(2, 3))
    check(lambda x: fastnn.take(x, t(flat, device)), (a,), a.reshape(-1)[flat], device)
    values = rng.standard_normal(6)
    ref = a.copy().reshape(-1)
    np.add.at(ref, flat.reshape(-1), values)
    check(lambda x, s: x.put(t(flat, device), s, accumulate=True), (a, values), ref.reshape(shape), device)


REDUCTIONS = {"sum": np.add, "prod": np.multiply, "amax": np.maximum, "amin": np.minimum, "mean": None}


@pytest.mark.parametrize("reduce", sorted(REDUCTIONS))
@pytest.mark.parametrize("include_self", [True, False])
@pytest.mark.parametrize("device", DEVICES)
@few
@given(n=st.integers(1, 4), k=st.integers(1, 6), cols=st.integers(1, 3), seed=seeds)
def test_scatter_reduce(reduce, include_self, n, k, cols, seed, device):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((n, cols))
    src = rng.standard_normal((k, cols)) + 0.1 * np.arange(k * cols).reshape(k, cols)  # no ties (amax, amin)
    index = rng.integers(0, n, size=(k, cols))
    ref = x.copy()
    for i in range(n):
        for j in range(cols):
            group = list(src[index[:, j] == i, j])
            if group:
                group += [x[i, j]] if include_self else []
                ref[i, j] = np.mean(group) if reduce == "mean" else REDUCTIONS[reduce].reduce(group)
    check(lambda a, s: fastnn.scatter_reduce(a, 0, t(index, device), s, reduce, include_self=include_self),
          (x, src), ref, device)


def test_scatter_reduce_prod_gradient_with_zeros():
    x = leaf([0.0, 2.0, 3.0])
    src = leaf([0.0, 5.0, 4.0])
    out = fastnn.scatter_reduce(x, 0, fastnn.tensor([0, 0, 1]), src, "prod")
    out.sum().backward()
    # group 0 is {0 (x), 0, 5}: two zeros, every gradient 0; group 1 is {2, 4}: each gets the other
    assert x.grad.tolist() == [0.0, 4.0, 1.0] and src.grad.tolist() == [0.0, 0.0, 2.0]
    y = leaf([0.0, 1.0])
    fastnn.scatter_reduce(y, 0, fastnn.tensor([0, 0]), fastnn.tensor([3.0, 5.0]),
                          "prod").sum().backward()
    assert y.grad.tolist() == [15.0, 1.0]  # one zero: its gradient is the product of the others


# ---- linear algebra -------------------------------------------------------------------------------------------
def _spd(x):
    return x @ x.mT + 3 * fastnn.eye(x.shape[-1], dtype=fastnn.float64, device=x.device)


@pytest.mark.parametrize("device", DEVICES)
@few
@given(n=st.integers(1, 4), batch=st.sampled_from([(), (2,)]), seed=seeds)
def test_linalg_square(n, batch, seed, device):
    rng = np.random.default_rng(seed)
    a = rng.standard_normal(batch + (n, n)) + 3 * np.eye(n)  # well conditioned
    b = rng.standard_normal(batch + (n, 2))
    check(linalg.inv, (a,), np.linalg.inv(a), device, rtol=1e-9, atol=1e-10)
    check(linalg.det, (a,), np.linalg.det(a), device, rtol=1e-9)
    check(lambda x: linalg.slogdet(x).logabsdet, (a,), np.linalg.slogdet(a)[1], device, rtol=1e-9)
    check(linalg.solve, (a, b), np.linalg.solve(a, b), device, rtol=1e-9, atol=1e-10)
    check(lambda x, y: linalg.solve(x, y[..., 0]), (a, b), np.linalg.solve(a, b[..., :1])[..., 0], device,
          rtol=1e-9, atol=1e-10)
    s = rng.standard_normal(batch + (n, n))
    spd = s @ np.swapaxes(s, -1, -2) + 3 * np.eye(n)
    check(lambda x: linalg.cholesky(_spd(x)), (s,), np.linalg.cholesky(spd), device, rtol=1e-9, atol=1e-10)
    check(lambda x: linalg.cholesky(_spd(x), upper=True), (s,), np.swapaxes(np.linalg.cholesky(spd), -1, -2),
          device, rtol=1e-9, atol=1e-10)
    check(lambda x: linalg.eigh(_spd(x)).eigenvalues, (s,), np.linalg.eigvalsh(spd), device, rtol=1e-9, atol=1e-10)
    v = np.linalg.eigh(spd)[1]
    # V diag(w^2) V^T does not depend on the eigenvectors' signs: it is spd @ spd
    check(lambda x: (lambda r: (r.eigenvectors * r.eigenvalues.unsqueeze(-2) ** 2) @ r.eigenvectors.mT)(
        linalg.eigh(_spd(x))), (s,), v @ (np.linalg.eigvalsh(spd)[..., :, None] ** 2 * np.swapaxes(v, -1, -2)),
          device, rtol=1e-8, atol=1e-9)
    check(fastnn.logdet, (spd,), np.linalg.slogdet(spd)[1], device, rtol=1e-9)
    check(lambda x: x.inverse(), (a,), np.linalg.inv(a), device, rtol=1e-9, atol=1e-10)
    check(lambda x: fastnn.matrix_power(x, 3), (a,), np.linalg.matrix_power(a, 3), device, rtol=1e-9)
    check(lambda x: fastnn.matrix_power(x, -2), (a,), np.linalg.matrix_power(np.linalg.inv(a), 2), device,
          rtol=1e-8, atol=1e-10)


@pytest.mark.parametrize("device", DEVICES)
@few
@given(m=st.integers(1, 4), n=st.integers(1, 4), seed=seeds)
def test_linalg_rectangular(m, n, seed, device):
    rng = np.random.default_rng(seed)
    a = rng.standard_normal((m, n))
    check(linalg.pinv, (a,), np.linalg.pinv(a), device, rtol=1e-8, atol=1e-10)
    check(linalg.svdvals, (a,), np.linalg.svd(a, compute_uv=False), device, rtol=1e-9, atol=1e-10)
    for ord in ("fro", "nuc", 1, -1, 2, math.inf, -math.inf):
        check(lambda x: linalg.matrix_norm(x, ord), (a,), np.linalg.norm(a, ord), device, rtol=1e-9)
    check(lambda x: linalg.norm(x), (a,), np.linalg.norm(a), device)
    check(lambda x: linalg.vector_norm(x, 3, dim=0), (a,), (np.abs(a) ** 3).sum(0) ** (1 / 3), device, rtol=1e-9)
    b = rng.standard_normal((m, 2))
    check(lambda x, y: linalg.lstsq(x, y).solution, (a, b), np.linalg.lstsq(a, b, rcond=None)[0], device,
          rtol=1e-8, atol=1e-10)
    if m >= n:
        q, r = np.linalg.qr(a)
        # Q R does not depend on the signs LAPACK picks; Q^T Q and R's diagonal product do not either
        check(lambda x: (lambda qr: qr.Q @ qr.R)(linalg.qr(x)), (a,), a, device, rtol=1e-9, atol=1e-10)
        check(lambda x: (lambda qr: qr.Q * qr.R.diagonal().unsqueeze(0) @ qr.R)(linalg.qr(x)), (a,),
              (q * np.diagonal(r)) @ r, device, rtol=1e-8, atol=1e-10)
    assert linalg.matrix_rank(t(a, device)).item() == np.linalg.matrix_rank(a)


@pytest.mark.parametrize("device", DEVICES)
@few
@given(m=st.integers(1, 4), n=st.integers(1, 4), batch=st.sampled_from([(), (2,)]), full=st.booleans(), seed=seeds)
def test_svd_vectors_gradient(m, n, batch, full, seed, device):
    a = np.random.default_rng(seed).standard_normal(batch + (m, n))

    def sign_blind(x):  # U_k diag(S^2) U_k^T and V_k diag(S) V_k^T do not depend on the vectors' signs
        u, s, vh = linalg.svd(x, full_matrices=full)
        k = s.shape[-1]
        uk, vk = u[..., :, :k], vh[..., :k, :]
        return fastnn.cat([((uk * s.unsqueeze(-2) ** 2) @ uk.mT).reshape(-1),
                           ((vk.mT * s.unsqueeze(-2)) @ vk).reshape(-1)])
    u, s, vh = np.linalg.svd(a, full_matrices=False)
    expected = np.concatenate([((u * s[..., None, :] ** 2) @ np.swapaxes(u, -1, -2)).reshape(-1),
                               ((np.swapaxes(vh, -1, -2) * s[..., None, :]) @ vh).reshape(-1)])
    check(sign_blind, (a,), expected, device, rtol=1e-9, atol=1e-10)


def test_linalg_errors_and_facts():
    singular = fastnn.tensor([[1.0, 2.0], [2.0, 4.0]])
    with pytest.raises(ValueError, match="singular"):
        linalg.inv(singular)
    with pytest.raises(ValueError, match="square"):
        linalg.det(fastnn.ones(2, 3))
    with pytest.raises(TypeError, match="floating point"):
        linalg.inv(fastnn.eye(2, dtype=fastnn.int64))
    sign, logabs = linalg.slogdet(fastnn.tensor([[0.0, 1.0], [1.0, 0.0]]))
    assert sign.item() == -1.0 and abs(logabs.item()) < 1e-7        # torch: (tensor(-1.), tensor(0.))
    assert math.isnan(fastnn.logdet(fastnn.tensor([[0.0, 1.0], [1.0, 0.0]])).item())  # torch: nan
    assert fastnn.logdet(singular).item() == -math.inf               # torch: -inf
    assert linalg.matrix_rank(singular).item() == 1 and linalg.matrix_rank(singular).dtype == fastnn.int64


# ---- shape functions (views and copies) ---------------------------------------------------------------------
def test_splits_match_numpy():
    a = np.arange(24.0).reshape(4, 6)
    x = fastnn.tensor(a)
    for sections in (3, 4, [1, 4], [2, -1], [5, 1]):
        got = [p.numpy() for p in fastnn.tensor_split(x, sections, dim=1)]
        want = np.array_split(a, sections, axis=1)
        assert len(got) == len(want) and all(np.array_equal(g, w) for g, w in zip(got, want))
    assert [p.shape for p in x.hsplit(2)] == [(4, 3), (4, 3)] and [p.shape for p in x.vsplit([1])] == [(1, 6), (3, 6)]
    assert [p.shape for p in fastnn.dsplit(fastnn.zeros(2, 2, 4), 2)] == [(2, 2, 2)] * 2
    with pytest.raises(ValueError, match="not divisible"):
        fastnn.hsplit(x, 4)                                          # torch: RuntimeError, same words
    assert [p.shape for p in x.split_with_sizes([2, 2])] == [(2, 6), (2, 6)]
    assert fastnn.tensor_split(x, fastnn.tensor([1, 3]))[1].shape == (2, 6)
    assert x.select(1, -1).tolist() == a[:, -1].tolist()
    assert fastnn.fliplr(x).tolist() == np.fliplr(a).tolist() and fastnn.flipud(x).tolist() == np.flipud(a).tolist()


def test_creation_and_combination_functions():
    assert fastnn.tril_indices(3, 3).tolist() == [[0, 1, 1, 2, 2, 2], [0, 0, 1, 0, 1, 2]]     # torch's output
    assert fastnn.triu_indices(3, 4, 1).tolist() == [[0, 0, 0, 1, 1, 2], [1, 2, 3, 2, 3, 3]]
    assert fastnn.triu_indices(2, 2).dtype == fastnn.int64
    a, b = fastnn.tensor([1, 2]), fastnn.tensor([3, 4, 5])
    assert fastnn.cartesian_prod(a, b).tolist() == [[1, 3], [1, 4], [1, 5], [2, 3], [2, 4], [2, 5]]
    assert fastnn.combinations(b).tolist() == [[3, 4], [3, 5], [4, 5]]
    assert fastnn.combinations(a, 2, with_replacement=True).tolist() == [[1, 1], [1, 2], [2, 2]]
    d = fastnn.block_diag(fastnn.tensor([[1, 2]]), fastnn.tensor(3), fastnn.tensor([[4.0], [5.0]]))
    assert d.dtype == fastnn.float32 and d.tolist() == [[1, 2, 0, 0], [0, 0, 3, 0], [0, 0, 0, 4], [0, 0, 0, 5]]
    assert fastnn.broadcast_shapes((2, 1), (3,), 1) == (2, 3)
    with pytest.raises(ValueError, match="not broadcastable"):
        fastnn.broadcast_shapes((2,), (3,))
    assert [x.shape for x in fastnn.atleast_2d(fastnn.tensor(1.0), fastnn.ones(3))] == [(1, 1), (1, 3)]
    assert fastnn.atleast_1d(fastnn.tensor(2.0)).shape == (1,)
    assert fastnn.diff(fastnn.tensor([True, False, False])).tolist() == [True, False]  # torch: xor of bools
    assert fastnn.diff(fastnn.tensor([1, 4]), prepend=fastnn.tensor([0]), append=fastnn.tensor([9])).tolist() == \
        [1, 3, 5]


def test_special_functions_follow_pytorch_at_poles_and_in_float32():
    v = fastnn.tensor([0.0, -1.0, 1.0, 2.0, 0.5, -2.5])
    assert fastnn.lgamma(v).tolist()[:4] == [math.inf, math.inf, 0.0, 0.0]          # torch, float32
    d = fastnn.digamma(v).tolist()
    assert d[0] == -math.inf and math.isnan(d[1])                                    # torch: -inf, nan
    np.testing.assert_allclose(d[2:], scipy.special.digamma([1.0, 2.0, 0.5, -2.5]), rtol=1e-6)
    assert fastnn.erfinv(fastnn.tensor([1.0, -1.0, 0.0])).tolist() == [math.inf, -math.inf, 0.0]
    assert math.isnan(fastnn.erfinv(fastnn.tensor(1.5)).item())
    assert fastnn.lgamma(fastnn.tensor([3])).dtype == fastnn.float32                # integers compute in float32
    with pytest.raises(ValueError, match="negative n"):
        fastnn.polygamma(-1, v)


def test_statistics_and_shapes_against_pytorch_values():
    x = np.random.default_rng(3).standard_normal((3, 5))
    fw, aw = np.array([1, 2, 1, 3, 1]), np.array([0.5, 1.0, 2.0, 1.0, 0.25])
    got = fastnn.cov(fastnn.tensor(x), fweights=fastnn.tensor(fw), aweights=fastnn.tensor(aw))
    np.testing.assert_allclose(got.numpy(), np.cov(x, fweights=fw, aweights=aw), rtol=1e-12)
    np.testing.assert_allclose(fastnn.corrcoef(fastnn.tensor(x)).numpy(), np.corrcoef(x), rtol=1e-12)
    assert fastnn.cov(fastnn.tensor([1.0, 2.0, 4.0])).shape == ()                     # torch: a 0-d tensor
    with pytest.raises(TypeError, match="integral dtype"):
        fastnn.cov(fastnn.tensor(x), fweights=fastnn.tensor(aw))
    rows, cols = fastnn.unravel_index(fastnn.tensor([4, 1, -1]), (2, 3))            # torch: ([1, 0, 1], [1, 1, 2])
    assert rows.tolist() == [1, 0, 1] and cols.tolist() == [1, 1, 2] and rows.dtype == fastnn.int64
    with pytest.raises(ValueError, match="must be in the range"):
        fastnn.unravel_index(fastnn.tensor([6]), (2, 3))
    assert fastnn.vander(fastnn.tensor([1, 2, 3]), 3).tolist() == [[1, 1, 1], [4, 2, 1], [9, 3, 1]]
    assert fastnn.float_power(fastnn.tensor([2]), 2).dtype == fastnn.float64
    assert fastnn.diagflat(fastnn.tensor([[1, 2], [3, 4]])).shape == (4, 4)
    assert fastnn.msort(fastnn.tensor([[3, 1], [1, 2]])).tolist() == [[1, 1], [3, 2]]
    assert fastnn.ones(2, 3).sum_to_size(1, 3).tolist() == [[2.0, 2.0, 2.0]]
    acc = fastnn.zeros(3, 2).index_put((fastnn.tensor([0, 0, 2]),), fastnn.tensor(1.0), accumulate=True)
    assert acc.tolist() == [[2, 2], [0, 0], [1, 1]]                                  # repeats accumulate
    u, s, v = fastnn.tensor(x).svd()                                                 # torch.svd: V, not Vh
    assert v.shape == (5, 3) and np.allclose(((u * s) @ v.mT).numpy(), x)
    assert fastnn.scalar_tensor(3).dtype == fastnn.float32 and fastnn.is_nonzero(fastnn.tensor([2]))
    with fastnn.inference_mode():
        assert fastnn.is_inference_mode_enabled()
    assert not fastnn.is_inference_mode_enabled()


def test_predicates_and_counts_match_numpy():
    v = np.array([-np.inf, -2.0, -0.0, 0.0, 1e-9, 3.0, np.inf, np.nan])
    x = fastnn.tensor(v)
    assert fastnn.isposinf(x).tolist() == np.isposinf(v).tolist()
    assert fastnn.isneginf(x).tolist() == np.isneginf(v).tolist()
    assert fastnn.signbit(x).tolist() == np.signbit(v).tolist()     # -0.0 has its sign bit set
    assert fastnn.isclose(x, x).tolist() == np.isclose(v, v).tolist()
    assert fastnn.isclose(x, x, equal_nan=True).tolist() == np.isclose(v, v, equal_nan=True).tolist()
    assert fastnn.heaviside(fastnn.tensor([-1.5, 0.0, 2.0]), fastnn.tensor(0.5)).tolist() == [0.0, 0.5, 1.0]
    assert fastnn.isin(fastnn.tensor([1, 2, 3, 4]), fastnn.tensor([2, 4, 6])).tolist() == [False, True, False, True]
    assert fastnn.isin(fastnn.tensor([1, 2]), 2, invert=True).tolist() == [True, False]
    out, inverse, counts = fastnn.unique_consecutive(fastnn.tensor([1, 1, 2, 2, 3, 1, 1, 2]), return_inverse=True,
                                                     return_counts=True)
    assert out.tolist() == [1, 2, 3, 1, 2] and inverse.tolist() == [0, 0, 1, 1, 2, 3, 3, 4]
    assert counts.tolist() == [2, 2, 1, 2, 1]
    rows = fastnn.unique_consecutive(fastnn.tensor([[1, 1], [1, 1], [2, 0]]), dim=0)
    assert rows.tolist() == [[1, 1], [2, 0]]
    data = np.random.default_rng(0).standard_normal(1000).astype(np.float32)
    counts = fastnn.histc(fastnn.tensor(data), bins=7, min=-2, max=2)
    assert counts.dtype == fastnn.float32                            # torch: the input's dtype
    assert counts.tolist() == np.histogram(data, bins=7, range=(-2, 2))[0].astype(np.float32).tolist()
    vals, idx = fastnn.cummax(fastnn.tensor([1.0, 3.0, 3.0, 2.0, 5.0]), 0)
    assert vals.tolist() == [1, 3, 3, 3, 5] and idx.tolist() == [0, 1, 2, 2, 4]  # torch: ties take the later index
    m = fastnn.tensor([[1.0, np.nan, 3.0], [np.nan, np.nan, np.nan]])
    assert fastnn.nanmedian(m, 1).values.tolist()[0] == 1.0 and math.isnan(fastnn.nanmedian(m, 1).values[1].item())
    assert fastnn.nanmedian(fastnn.tensor([4.0, np.nan, 1.0, 2.0])).item() == 2.0    # the lower median
    assert fastnn.nanquantile(fastnn.tensor([1.0, np.nan, 3.0]), 0.5).item() == 2.0
    assert math.isnan(fastnn.quantile(fastnn.tensor([1.0, np.nan, 3.0]), 0.5).item())
    with pytest.raises(ValueError, match=r"q values must be in the range \[0, 1\]"):
        fastnn.quantile(fastnn.ones(3), 1.5)


# ---- facts about PyTorch: dtypes and errors ------------------------------------------------------------------
def test_dtype_utilities_follow_pytorch():
    assert fastnn.get_default_dtype() == fastnn.float32
    assert fastnn.finfo().eps == np.finfo(np.float32).eps                 # torch.finfo(): the default dtype's
    assert fastnn.finfo(fastnn.float16).tiny == 6.103515625e-05
    assert fastnn.iinfo(fastnn.uint8).max == 255 and fastnn.iinfo(fastnn.int64).min == -2 ** 63
    with pytest.raises(TypeError, match="floating point"):
        fastnn.finfo(fastnn.int32)
    with pytest.raises(TypeError, match="integer"):
        fastnn.iinfo(fastnn.float32)
    assert fastnn.promote_types(fastnn.int64, fastnn.float16) == fastnn.float16   # torch; numpy says float64
    assert fastnn.result_type(fastnn.tensor([1]), 1.5) == fastnn.float32
    assert fastnn.result_type(2.0, fastnn.tensor(1, dtype=fastnn.uint8)) == fastnn.float32
    assert fastnn.can_cast(fastnn.float64, fastnn.float32) and fastnn.can_cast(fastnn.bool, fastnn.uint8)
    assert not fastnn.can_cast(fastnn.float32, fastnn.int32) and not fastnn.can_cast(fastnn.int64, fastnn.bool)
    assert not fastnn.is_signed(fastnn.tensor([1], dtype=fastnn.uint8)) and fastnn.ones(2).is_signed()
    assert not fastnn.tensor([True]).is_signed() and fastnn.is_complex(fastnn.ones(1)) is False
    x = fastnn.zeros(3, 4)
    assert (x.itemsize, x.nbytes, x[1:].storage_offset(), x.get_device(), x.is_cpu) == (4, 48, 4, -1, True)
    assert x.is_same_size(fastnn.ones(3, 4)) and x[1:].data_ptr() - x.data_ptr() == 16
    assert fastnn.addcmul(fastnn.ones(2), fastnn.ones(2, dtype=fastnn.float64), fastnn.ones(2), value=2).dtype == \
        fastnn.float64                                                # torch: promoted, values [3., 3.]
    with pytest.raises(TypeError, match="integer division"):
        fastnn.addcdiv(fastnn.ones(2), fastnn.ones(2, dtype=fastnn.int64), fastnn.ones(2, dtype=fastnn.int64))
    with pytest.raises(TypeError, match="same dtype"):
        fastnn.dot(fastnn.ones(2), fastnn.ones(2, dtype=fastnn.float64))
    assert fastnn.divide(fastnn.tensor([-7, 7]), 2, rounding_mode="trunc").tolist() == [-3, 3]
    assert fastnn.divide(fastnn.tensor([-7, 7]), 2, rounding_mode="floor").tolist() == [-4, 3]
    assert fastnn.subtract(fastnn.tensor([5.0]), fastnn.tensor([1.0]), alpha=2).tolist() == [3.0]


def test_set_default_dtype_reaches_the_factories():
    try:
        fastnn.set_default_dtype(fastnn.float64)
        made = [fastnn.tensor(1.5), fastnn.zeros(1), fastnn.ones(1), fastnn.arange(0.0, 1.0), fastnn.full((1,), 1.5),
                fastnn.rand(1), fastnn.randn(1), fastnn.linspace(0, 1, 2), fastnn.eye(1), fastnn.empty(1)]
        assert all(m.dtype == fastnn.float64 for m in made)
        assert fastnn.tensor(1).dtype == fastnn.int64 and fastnn.finfo().bits == 64
        with pytest.raises(TypeError, match="only floating-point types"):
            fastnn.set_default_dtype(fastnn.int64)
    finally:
        fastnn.set_default_dtype(fastnn.float32)
    assert fastnn.zeros(1).dtype == fastnn.float32


def test_numpy_functions_call_tensor_reductions_with_numpy_keywords():
    x = fastnn.tensor([[1.0, 2.0], [3.0, 4.0]])
    assert bool(np.all(x > 0)) and not bool(np.all(x == 1)) and bool(np.any(x == 4))
    assert np.sum(x).item() == 10.0 and np.mean(x).item() == 2.5 and np.prod(x).item() == 24.0
    assert np.max(x).item() == 4.0 and np.argmax(x).item() == 3
    assert x.sum(axis=0).tolist() == [4.0, 6.0] and x.mean(axis=1, keepdims=True).shape == (2, 1)
    assert x.sum(dtype=fastnn.float64).dtype == fastnn.float64
    with pytest.raises(TypeError, match="both dim and its alias axis"):
        x.sum(0, axis=1)
    with pytest.raises(TypeError, match="out= is not supported"):
        x.sum(out=fastnn.zeros(()))


# ---- in-place forms -------------------------------------------------------------------------------------------
def test_inplace_forms_match_their_functions_and_bump_versions():
    base = np.array([[0.3, -1.2, 2.0], [0.5, 1.5, -0.4]])
    for name, args in (("addcmul_", (fastnn.tensor(base), fastnn.tensor(base))), ("hypot_", (2.0,)),
                       ("eq_", (0.5,)), ("gt_", (0.0,)), ("copysign_", (-1.0,)),
                       ("deg2rad_", ()), ("atan2_", (1.0,)), ("clamp_min_", (0.0,)), ("cumsum_", (1,)),
                       ("logical_not_", ()), ("true_divide_", (4.0,)), ("subtract_", (1.0,))):
        x = fastnn.tensor(base)
        before = x._version
        same = x.view(-1)  # a view sees the write
        out = getattr(x, name)(*args)
        expected = getattr(fastnn.tensor(base), name[:-1])(*args)
        assert out is x and x._version == before + 1 and x.dtype == fastnn.float64
        np.testing.assert_allclose(x.numpy(), expected.to(fastnn.float64).numpy(), err_msg=name)
        np.testing.assert_allclose(same.numpy(), x.numpy().reshape(-1))


def test_inplace_forms_are_differentiable_on_non_leaves():
    w = leaf(np.array([0.5, -1.0, 2.0]))
    y = w * 2
    y.addcmul_(w, w, value=0.5)                                       # y = 2w + w^2 / 2
    y.hypot_(fastnn.tensor([3.0, 4.0, 0.5], dtype=fastnn.float64))
    y.sum().backward()
    v = w.detach().numpy()
    inner = 2 * v + v * v / 2
    other = np.array([3.0, 4.0, 0.5])
    np.testing.assert_allclose(w.grad.numpy(), inner / np.hypot(inner, other) * (2 + v), rtol=1e-12)
    with pytest.raises(RuntimeError, match="leaf Variable that requires grad"):
        leaf([1.0]).sinc_()


def test_shape_changing_inplace_ops():
    x = fastnn.ones(2, 3, requires_grad=True) * 2
    version = x._version
    assert x.t_() is x and x.shape == (3, 2) and x._version == version + 1
    x.unsqueeze_(0).squeeze_(0).transpose_(0, 1)
    assert x.shape == (2, 3)
    (x * fastnn.arange(3.0)).sum().backward()                          # the graph follows the new shapes
    z = fastnn.zeros(2, 3, requires_grad=True)
    with pytest.raises(RuntimeError, match="leaf Variable"):
        z.t_()
    with fastnn.no_grad():
        assert z.t_().shape == (3, 2)                                 # allowed without grad recording
    d = fastnn.zeros(3, 3)
    d.fill_diagonal_(5.0)
    assert d.tolist() == (5 * np.eye(3)).tolist()
    tall = fastnn.zeros(7, 3)
    tall.fill_diagonal_(1.0, wrap=True)                               # torch: row 3 empty, restarts at row 4
    assert tall.sum(1).tolist() == [1, 1, 1, 0, 1, 1, 1]
    y = leaf([1.0, 2.0]) * 3
    assert y.detach_() is y and y.grad_fn is None and not y.requires_grad


def test_as_strided_reads_like_pytorch():
    x = fastnn.arange(9.0).view(3, 3)
    assert x.as_strided((2, 2), (1, 2)).tolist() == [[0.0, 2.0], [1.0, 3.0]]     # torch's docstring example
    assert x.as_strided((2,), (4,), 1).tolist() == [1.0, 5.0]
    with pytest.raises(ValueError, match="reach outside"):
        x.as_strided((3,), (5,))


# ---- random: torch.Generator, the fills, torch.normal --------------------------------------------------------
def test_generator_seeding_state_and_independence():
    g = fastnn.Generator()
    assert g.initial_seed() == 67280421310721 and g.device == "cpu"   # torch.Generator().initial_seed()
    assert fastnn.Generator().manual_seed(0) is not None and g.manual_seed(3) is g
    first = fastnn.randperm(10, generator=g)
    assert fastnn.randperm(10, generator=fastnn.Generator().manual_seed(3)).tolist() == first.tolist()
    state = g.get_state()
    assert state.dtype == fastnn.uint8 and state.ndim == 1            # torch: a ByteTensor
    after = fastnn.rand(4, generator=g)
    g.set_state(state)
    assert fastnn.rand(4, generator=g).tolist() == after.tolist()
    fastnn.manual_seed(5)
    default_draw = fastnn.rand(3)
    fastnn.manual_seed(5)
    fastnn.rand(7, generator=fastnn.Generator().manual_seed(1))      # an explicit generator leaves the default alone
    assert fastnn.rand(3).tolist() == default_draw.tolist()
    a, b = fastnn.Generator().manual_seed(1), fastnn.Generator().manual_seed(1)
    fastnn.rand(5, generator=a)
    assert fastnn.rand(2, generator=a).tolist() != fastnn.rand(2, generator=b).tolist()  # independent streams
    assert fastnn.manual_seed(7).initial_seed() == 7 == fastnn.initial_seed()
    assert isinstance(fastnn.seed(), int) and fastnn.initial_seed() == fastnn.random.default_generator().initial_seed()
    with pytest.raises(TypeError, match="expects an int"):
        g.manual_seed(1.5)
    with pytest.raises(TypeError, match="uint8 Tensor"):
        g.set_state([1, 2])
    with pytest.raises(ValueError, match="37 bytes"):
        g.set_state(fastnn.zeros(5, dtype=fastnn.uint8))
    assert g.manual_seed(-1).initial_seed() == 2 ** 64 - 1               # torch folds negative seeds the same way
    with pytest.raises(ValueError, match="seed must be within"):
        g.manual_seed(2 ** 64)


def test_rng_state_round_trip_and_pickling():
    import pickle
    state = fastnn.get_rng_state()
    first = fastnn.randn(3)
    fastnn.set_rng_state(state)
    assert fastnn.randn(3).tolist() == first.tolist()
    g = fastnn.Generator().manual_seed(11)
    fastnn.rand(2, generator=g)
    copy = pickle.loads(pickle.dumps(g))
    assert isinstance(copy, fastnn.Generator) and copy.initial_seed() == 11
    assert fastnn.rand(3, generator=copy).tolist() == fastnn.rand(3, generator=g).tolist()


def test_every_random_function_takes_a_generator():
    def draws(g):
        x = fastnn.zeros(4, dtype=fastnn.float64)
        return [fastnn.rand(3, generator=g), fastnn.randn(3, generator=g), fastnn.randint(0, 9, (3,), generator=g),
                fastnn.randperm(5, generator=g), fastnn.normal(0.0, 1.0, (3,), generator=g),
                fastnn.normal(fastnn.zeros(3), 2.0, generator=g), fastnn.bernoulli(fastnn.full((3,), 0.5), generator=g),
                fastnn.multinomial(fastnn.ones(4), 2, generator=g), fastnn.rand_like(x, generator=g),
                fastnn.randn_like(x, generator=g), fastnn.randint_like(x, 5, generator=g),
                x.clone().normal_(generator=g), x.clone().uniform_(generator=g), x.clone().bernoulli_(generator=g),
                x.clone().exponential_(generator=g), x.clone().random_(10, generator=g),
                x.clone().geometric_(0.3, generator=g), x.clone().log_normal_(generator=g),
                x.clone().cauchy_(generator=g),
                fastnn.nn.init.normal_(fastnn.zeros(3), generator=g)]
    one, two = draws(fastnn.Generator().manual_seed(2)), draws(fastnn.Generator().manual_seed(2))
    assert all(a.tolist() == b.tolist() for a, b in zip(one, two))
    from fastnn.data import random_split

    def split():
        return [list(s.indices) for s in random_split(range(10), [4, 6], generator=fastnn.Generator().manual_seed(0))]
    assert split() == split()


def test_random_fills_follow_pytorch():
    g = fastnn.Generator().manual_seed(0)
    ints = fastnn.zeros(2000, dtype=fastnn.int64).random_(3, 7, generator=g)
    assert set(ints.tolist()) == {3, 4, 5, 6}
    assert 0 <= int(fastnn.zeros(1000, dtype=fastnn.uint8).random_(generator=g).max()) <= 255
    floats = fastnn.zeros(1000).random_(generator=g)                   # torch: [0, 2**24] for float32
    assert floats.min() >= 0 and floats.max() <= 2 ** 24 and bool((floats == floats.round()).all())
    geo = fastnn.zeros(20000, dtype=fastnn.float64).geometric_(0.25, generator=g)
    assert geo.min().item() == 1 and abs(geo.mean().item() - 4.0) < 0.15        # mean 1 / p
    ln = fastnn.zeros(20000, dtype=fastnn.float64).log_normal_(0.5, 0.25, generator=g)
    assert abs(ln.log().mean().item() - 0.5) < 0.01 and abs(ln.log().std().item() - 0.25) < 0.01
    c = fastnn.zeros(20001, dtype=fastnn.float64).cauchy_(2.0, 3.0, generator=g)
    assert abs(c.median().item() - 2.0) < 0.15                        # the median of Cauchy(2, 3)
    n = fastnn.normal(fastnn.full((20000,), 3.0, dtype=fastnn.float64), 0.5, generator=g)
    assert abs(n.mean().item() - 3.0) < 0.02 and abs(n.std().item() - 0.5) < 0.02
    assert fastnn.normal(fastnn.zeros(2, 1), fastnn.ones(3)).shape == (2, 3)
    m = fastnn.zeros(2, requires_grad=True)
    fastnn.normal(m, 1.0).sum().backward()                            # torch: requires grad, gradient 0
    assert m.grad.tolist() == [0.0, 0.0]
    with pytest.raises(ValueError, match="from' to be less than 'to"):
        fastnn.zeros(3).random_(3, 1)
    with pytest.raises(ValueError, match=r"p to be in \(0, 1\)"):
        fastnn.zeros(3).geometric_(0)
    with pytest.raises(TypeError, match="floating point"):
        fastnn.zeros(3, dtype=fastnn.int64).cauchy_()
    with pytest.raises(ValueError, match="std >= 0.0"):
        fastnn.normal(fastnn.zeros(2), -1.0)


def test_printing_options_and_modes():
    x = fastnn.tensor([1.123456789])
    try:
        fastnn.set_printoptions(precision=2)
        assert repr(x) == "tensor([1.12])"
        fastnn.set_printoptions(profile="default")
        assert repr(x) == "tensor([1.1235])"
    finally:
        fastnn.set_printoptions(profile="default")
    w = fastnn.ones(2, requires_grad=True)
    with fastnn.inference_mode():
        assert not (w * 2).requires_grad
    with fastnn.inference_mode(False):
        assert (w * 2).requires_grad

    @fastnn.inference_mode()
    def f():
        return w * 2
    assert not f().requires_grad and fastnn.is_grad_enabled()
    fastnn.use_deterministic_algorithms(True)
    assert fastnn.are_deterministic_algorithms_enabled()
    fastnn.use_deterministic_algorithms(False)


def test_twin_device_random_and_inplace(device):
    g = fastnn.Generator().manual_seed(4)
    x = fastnn.zeros(5, device=device, dtype=fastnn.float64).cauchy_(generator=g)
    assert x.device == device and np.isfinite(host(x)).all()
    y = fastnn.ones(3, device=device, dtype=fastnn.float64)
    y.addcdiv_(y, fastnn.full((3,), 4.0, device=device, dtype=fastnn.float64), value=2)
    assert host(y).tolist() == [1.5, 1.5, 1.5]

"""Selection and indexing ops (fastnn/ops/indexing.py) and random sampling (fastnn/ops/random.py): forward
against NumPy over Hypothesis-drawn shapes, gradients against finite differences in float64, on every device;
results from PyTorch's documentation written in as facts."""
import math

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings, strategies as st
from hypothesis.extra import numpy as hnp

import fastnn
from conftest import check, host, leaf, t

seeds = st.integers(0, 2 ** 32 - 1)
nonscalar = hnp.array_shapes(min_dims=1, max_dims=3, min_side=1, max_side=4)
# `device` is a plain string per parametrization: nothing to reset between examples
few = settings(max_examples=8, suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])


def sample(shape, seed):
    return np.random.default_rng(seed).standard_normal(shape)  # distinct values (ties have probability 0)


def axis_strategy(shape):
    return st.integers(-len(shape), len(shape) - 1)


# ---- sorting and order statistics -------------------------------------------------------------------------------
@few
@given(shape=nonscalar, seed=seeds, data=st.data())
def test_sort_argsort_topk(device, shape, seed, data):
    a = sample(shape, seed)
    dim = data.draw(axis_strategy(shape))
    descending = data.draw(st.booleans())
    order = np.argsort(-a if descending else a, axis=dim, kind="stable")
    check(lambda x: fastnn.sort(x, dim, descending).values, [a], np.take_along_axis(a, order, dim), device)
    x = t(a, device)
    assert host(x.sort(dim, descending).indices).tolist() == order.tolist()
    assert host(fastnn.argsort(x, dim, descending)).tolist() == order.tolist()
    k = data.draw(st.integers(0, shape[dim]))
    largest = not descending
    top = np.take(np.argsort(-a if largest else a, axis=dim, kind="stable"), np.arange(k), axis=dim)
    check(lambda x: fastnn.topk(x, k, dim, largest).values, [a], np.take_along_axis(a, top, dim), device)
    assert host(x.topk(k, dim, largest).indices).tolist() == top.tolist()


def test_sort_topk_facts(device):
    x = t([1.0, 5.0, 3.0, 4.0], device)
    v, i = fastnn.topk(x, 2)  # largest first, sorted
    assert host(v).tolist() == [5.0, 4.0] and host(i).tolist() == [1, 3]
    v, i = x.topk(2, largest=False)
    assert host(v).tolist() == [1.0, 3.0] and host(i).tolist() == [0, 2]
    # PyTorch with stable=True keeps equal elements in input order, also when descending
    v, i = fastnn.sort(t([2, 1, 2, 1], device), descending=True, stable=True)
    assert host(v).tolist() == [2, 2, 1, 1] and host(i).tolist() == [0, 2, 1, 3]
    # NaN sorts as the largest value
    assert host(fastnn.sort(t([1.0, math.nan, 0.0], device)).indices).tolist() == [2, 0, 1]
    with pytest.raises(ValueError, match="k"):
        fastnn.topk(x, 5)
    with pytest.raises(IndexError, match="dimension out of range"):
        fastnn.sort(x, 1)


@few
@given(shape=nonscalar, seed=seeds, data=st.data())
def test_kthvalue_median_mode(device, shape, seed, data):
    a = sample(shape, seed)
    dim = data.draw(axis_strategy(shape))
    keepdim = data.draw(st.booleans())
    n = shape[dim]
    k = data.draw(st.integers(1, n))
    srt = np.sort(a, axis=dim)
    kth = np.take(srt, [k - 1], axis=dim)
    check(lambda x: fastnn.kthvalue(x, k, dim, keepdim).values, [a], kth if keepdim else kth.squeeze(dim), device)
    idx = host(t(a, device).kthvalue(k, dim, keepdim).indices)
    taken = np.take_along_axis(a, idx if keepdim else np.expand_dims(idx, dim), dim)
    np.testing.assert_array_equal(taken, kth)
    low = np.take(srt, [(n - 1) // 2], axis=dim)  # the lower median
    check(lambda x: fastnn.median(x, dim, keepdim).values, [a], low if keepdim else low.squeeze(dim), device)
    check(fastnn.median, [a], np.sort(a.reshape(-1))[(a.size - 1) // 2], device)
    # mode over small integers (so values repeat): the most frequent, the smallest among equally frequent ones
    ints = np.random.default_rng(seed).integers(0, 3, shape)
    values, indices = fastnn.mode(t(ints, device), dim, keepdim)
    moved = np.moveaxis(ints, dim, -1)
    counts = np.stack([(moved == v).sum(-1) for v in range(3)], -1)
    expected = counts.argmax(-1)
    got = host(values) if not keepdim else host(values).squeeze(dim)
    assert got.tolist() == expected.tolist()
    picked = np.take_along_axis(ints, host(indices) if keepdim else np.expand_dims(host(indices), dim), dim)
    assert picked.squeeze(dim).tolist() == expected.tolist()
    check(lambda x: fastnn.mode(x, dim).values, [a.astype(float)], np.take(srt, 0, axis=dim), device)


def test_order_statistic_facts(device):
    # torch.kthvalue(torch.arange(1., 6.), 4) -> values=tensor(4.), indices=tensor(3)
    v, i = fastnn.kthvalue(fastnn.arange(1.0, 6.0, device=device), 4)
    assert host(v).tolist() == 4.0 and host(i).tolist() == 3
    # median returns the lower of the two middle values, not their mean; NaN propagates
    assert host(fastnn.median(t([1.0, 4.0, 2.0, 3.0], device))).tolist() == 2.0
    assert math.isnan(host(fastnn.median(t([1.0, math.nan, 2.0], device))).item())
    assert math.isnan(host(t([[1.0, math.nan, 2.0]], device).median(1).values)[0])
    assert host(fastnn.mode(t([3, 1, 3, 2], device)).values).tolist() == 3
    x = leaf(np.array([3.0, 1.0, 2.0]), device)
    fastnn.median(x).backward()  # the gradient goes to the selected element
    assert host(x.grad).tolist() == [0.0, 0.0, 1.0]
    with pytest.raises(ValueError, match="k"):
        fastnn.kthvalue(t([1.0], device), 0)


def test_unique(device):
    # torch.unique(tensor([1, 3, 2, 3]), return_inverse=True, return_counts=True)
    # -> (tensor([1, 2, 3]), tensor([0, 2, 1, 2]), tensor([1, 1, 2]))
    out, inverse, counts = fastnn.unique(t([1, 3, 2, 3], device), return_inverse=True, return_counts=True)
    assert host(out).tolist() == [1, 2, 3] and host(inverse).tolist() == [0, 2, 1, 2]
    assert host(counts).tolist() == [1, 1, 2] and inverse.dtype == np.int64
    assert host(t([[2, 1], [1, 2]], device).unique()).tolist() == [1, 2]
    _, inv2 = fastnn.unique(t([[2, 1], [1, 2]], device), return_inverse=True)
    assert host(inv2).tolist() == [[1, 0], [0, 1]]  # shaped like the input
    rows, inv_rows = fastnn.unique(t([[1, 2], [0, 5], [1, 2]], device), dim=0, return_inverse=True)
    assert host(rows).tolist() == [[0, 5], [1, 2]] and host(inv_rows).tolist() == [1, 0, 1]


# ---- gather / scatter / index_* ---------------------------------------------------------------------------------
@few
@given(shape=nonscalar, seed=seeds, data=st.data())
def test_gather_and_take_along_dim(device, shape, seed, data):
    a = sample(shape, seed)
    dim = data.draw(axis_strategy(shape))
    rng = np.random.default_rng(seed)
    m = data.draw(st.integers(1, 4))
    index_shape = list(shape)
    index_shape[dim] = m
    idx = rng.integers(0, shape[dim], index_shape)
    check(lambda x: fastnn.gather(x, dim, t(idx, device)), [a], np.take_along_axis(a, idx, dim), device)
    check(lambda x: x.take_along_dim(t(idx, device), dim), [a], np.take_along_axis(a, idx, dim), device)
    flat = rng.integers(0, a.size, 3)
    np.testing.assert_array_equal(host(fastnn.take_along_dim(t(a, device), t(flat, device))), a.reshape(-1)[flat])


@few
@given(shape=nonscalar, seed=seeds, data=st.data())
def test_scatter_and_scatter_add(device, shape, seed, data):
    a = sample(shape, seed)
    dim = data.draw(axis_strategy(shape))
    axis = dim % len(shape)
    rng = np.random.default_rng(seed)
    # scatter: distinct targets along dim (a permutation), so no write is overwritten
    perm = np.argsort(rng.random(shape), axis=axis)
    src = sample(shape, seed + 1)
    expected = a.copy()
    np.put_along_axis(expected, perm, src, axis)
    check(lambda x, s: fastnn.scatter(x, dim, t(perm, device), s), [a, src], expected, device)
    # scatter_add: repeated targets accumulate
    idx = rng.integers(0, shape[axis], shape)
    expected = a.copy()
    for pos in np.ndindex(*shape):
        target = list(pos)
        target[axis] = idx[pos]
        expected[tuple(target)] += src[pos]
    check(lambda x, s: fastnn.scatter_add(x, dim, t(idx, device), s), [a, src], expected, device)
    check(lambda x: x.scatter(dim, t(perm, device), 2.5), [a], np.full(shape, 2.5), device)  # every slot hit


def test_gather_scatter_facts(device):
    # torch.gather(tensor([[1, 2], [3, 4]]), 1, tensor([[0, 0], [1, 0]])) -> [[1, 1], [4, 3]]
    x = t([[1, 2], [3, 4]], device)
    assert host(fastnn.gather(x, 1, t([[0, 0], [1, 0]], device))).tolist() == [[1, 1], [4, 3]]
    # zeros(3, 5).scatter_(0, tensor([[0, 1, 2, 0]]), arange(1, 11).reshape(2, 5))
    # -> [[1, 0, 0, 4, 0], [0, 2, 0, 0, 0], [0, 0, 3, 0, 0]]  (the index may be smaller than src and input)
    src = fastnn.arange(1, 11, device=device).reshape(2, 5)
    out = fastnn.zeros(3, 5, dtype="int64", device=device).scatter_(0, t([[0, 1, 2, 0]], device), src)
    assert host(out).tolist() == [[1, 0, 0, 4, 0], [0, 2, 0, 0, 0], [0, 0, 3, 0, 0]]
    # From the docs: zeros(3, 5).scatter_add_(0, index, ones(2, 5)) with index [[0, 1, 2, 0, 0]] (the index
    # covers only src's first row) -> [[1, 0, 0, 1, 1], [0, 1, 0, 0, 0], [0, 0, 1, 0, 0]]; with index
    # [[0, 1, 2, 0, 0], [0, 1, 2, 2, 2]] -> [[2, 0, 0, 1, 1], [0, 2, 0, 0, 0], [0, 0, 2, 1, 1]]
    ones = fastnn.ones(2, 5, device=device)
    out = fastnn.zeros(3, 5, device=device).scatter_add_(0, t([[0, 1, 2, 0, 0]], device), ones)
    assert host(out).tolist() == [[1, 0, 0, 1, 1], [0, 1, 0, 0, 0], [0, 0, 1, 0, 0]]
    index = t([[0, 1, 2, 0, 0], [0, 1, 2, 2, 2]], device)
    out = fastnn.zeros(3, 5, device=device).scatter_add_(0, index, ones)
    assert host(out).tolist() == [[2, 0, 0, 1, 1], [0, 2, 0, 0, 0], [0, 0, 2, 1, 1]]
    # one-hot encoding the PyTorch way: zeros(n, classes).scatter_(1, labels.unsqueeze(1), 1.0)
    labels = t([2, 0], device)
    assert host(fastnn.zeros(2, 3, device=device).scatter_(1, labels.unsqueeze(1), 1.0)).tolist() == \
        [[0.0, 0.0, 1.0], [1.0, 0.0, 0.0]]
    with pytest.raises(IndexError, match="out of bounds"):
        fastnn.gather(x, 1, t([[0, 2]], device))
    with pytest.raises(TypeError, match="integer"):
        fastnn.gather(x, 1, t([[0.0, 1.0]], device))
    with pytest.raises(ValueError, match="dimensions"):
        fastnn.gather(x, 1, t([0, 1], device))


@few
@given(shape=nonscalar, seed=seeds, data=st.data())
def test_index_select_and_index_add(device, shape, seed, data):
    a = sample(shape, seed)
    dim = data.draw(axis_strategy(shape))
    idx = np.random.default_rng(seed).integers(0, shape[dim], data.draw(st.integers(0, 5)))
    check(lambda x: fastnn.index_select(x, dim, t(idx, device)), [a], np.take(a, idx, axis=dim), device)
    source_shape = list(shape)
    source_shape[dim] = idx.size
    source = sample(tuple(source_shape), seed + 1)
    expected = a.copy()
    lead = (slice(None),) * (dim % len(shape))
    for j, i in enumerate(idx):  # repeated indices accumulate
        expected[lead + (i,)] += -2.0 * source[lead + (j,)]
    check(lambda x, s: fastnn.index_add(x, dim, t(idx, device), s, alpha=-2.0), [a, source], expected, device)


def test_index_add_fact_and_in_place(device):
    # x = ones(5, 3); x.index_add_(0, tensor([0, 4, 2]), tensor([[1, 2, 3], [4, 5, 6], [7, 8, 9]]))
    # -> [[2, 3, 4], [1, 1, 1], [8, 9, 10], [1, 1, 1], [5, 6, 7]]
    x = fastnn.ones(5, 3, device=device)
    out = x.index_add_(0, t([0, 4, 2], device), t([[1.0, 2, 3], [4, 5, 6], [7, 8, 9]], device))
    assert out is x and x._version == 1
    assert host(x).tolist() == [[2, 3, 4], [1, 1, 1], [8, 9, 10], [1, 1, 1], [5, 6, 7]]
    with pytest.raises(ValueError, match="source shape"):
        fastnn.index_add(x, 0, t([0], device), fastnn.ones(2, 3, device=device))


# ---- masks, nonzero, where ---------------------------------------------------------------------------------------
@few
@given(shapes=hnp.mutually_broadcastable_shapes(num_shapes=2, min_dims=0, max_dims=3, max_side=3), seed=seeds)
def test_masked_fill_and_masked_select(device, shapes, seed):
    (xs, ms), full = shapes
    a = sample(xs, seed)
    mask = np.random.default_rng(seed).random(ms) < 0.5
    expected = np.broadcast_to(a, full)[np.broadcast_to(mask, full)]
    check(lambda x: fastnn.masked_select(x, t(mask, device)), [a], expected, device)
    if np.broadcast_shapes(xs, ms) == xs:
        check(lambda x: x.masked_fill(t(mask, device), -1.5), [a], np.where(mask, -1.5, a), device)
        check(lambda x, v: fastnn.masked_fill(x, t(mask, device), v), [a, np.array(0.7)],
              np.where(mask, 0.7, a), device)


def test_masked_fill_idioms_and_errors(device):
    # causal attention mask: scores.masked_fill(tril == 0, float('-inf')) then softmax
    scores = fastnn.zeros(3, 3, device=device)
    causal = fastnn.tril(fastnn.ones(3, 3, device=device))
    p = fastnn.softmax(scores.masked_fill(causal == 0, float("-inf")), dim=-1)
    np.testing.assert_allclose(host(p), [[1, 0, 0], [0.5, 0.5, 0], [1 / 3, 1 / 3, 1 / 3]], rtol=1e-6)
    x = fastnn.ones(2, 2, device=device)
    x.masked_fill_(t([[True, False], [False, False]], device), 0.0)
    assert host(x).tolist() == [[0.0, 1.0], [1.0, 1.0]] and x._version == 1
    with pytest.raises(TypeError, match="bool mask"):
        x.masked_fill(t([[1, 0], [0, 0]], device), 0.0)
    with pytest.raises(ValueError, match="broadcast"):
        x.masked_fill(t([True, False, True], device), 0.0)


def test_nonzero_and_single_argument_where(device):
    # the docs' example: the diagonal of a 4 x 4 matrix
    x = t([[0.6, 0.0, 0.0, 0.0], [0.0, 0.4, 0.0, 0.0], [0.0, 0.0, 1.2, 0.0], [0.0, 0.0, 0.0, -0.4]], device)
    assert host(fastnn.nonzero(x)).tolist() == [[0, 0], [1, 1], [2, 2], [3, 3]]
    rows, cols = x.nonzero(as_tuple=True)
    assert host(rows).tolist() == [0, 1, 2, 3] and host(cols).tolist() == [0, 1, 2, 3]
    r, c = fastnn.where(x > 0.5)
    assert host(r).tolist() == [0, 2] and host(c).tolist() == [0, 2] and r.dtype == np.int64
    np.testing.assert_array_equal(host(fastnn.where(x > 0.5, x, 0.0)), np.where(host(x) > 0.5, host(x), 0.0))
    assert host(fastnn.nonzero(t([0, 3, 0, 5], device))).tolist() == [[1], [3]]


# ---- random sampling ---------------------------------------------------------------------------------------------
def test_multinomial_with_replacement_frequencies(device):
    probs = t([0.2, 0.0, 0.5, 0.3], device)
    draws = host(fastnn.multinomial(probs, 20000, replacement=True))
    assert draws.shape == (20000,) and draws.dtype == np.int64
    freq = np.bincount(draws, minlength=4) / draws.size
    np.testing.assert_allclose(freq, [0.2, 0.0, 0.5, 0.3], atol=0.015)
    # unnormalised weights in rows; a trailing zero-weight category is never drawn
    rows = host(fastnn.multinomial(t([[1.0, 3.0, 0.0], [0.0, 0.0, 2.0]], device), 5000, True))
    assert rows.shape == (2, 5000) and set(rows[1].tolist()) == {2} and 2 not in rows[0]
    assert abs((rows[0] == 1).mean() - 0.75) < 0.03


def test_multinomial_without_replacement(device):
    probs = t([[0.1, 0.0, 0.6, 0.3]] * 4000, device)
    draws = host(fastnn.multinomial(probs, 3))
    assert all(len(set(row)) == 3 and 1 not in row for row in draws.tolist())
    first = np.bincount(draws[:, 0], minlength=4) / len(draws)  # the first draw follows the weights
    np.testing.assert_allclose(first, [0.1, 0.0, 0.6, 0.3], atol=0.03)
    fastnn.manual_seed(3)
    a = host(fastnn.multinomial(t([1.0, 2.0, 3.0], device), 2))
    fastnn.manual_seed(3)
    assert host(fastnn.multinomial(t([1.0, 2.0, 3.0], device), 2)).tolist() == a.tolist()
    g1 = fastnn.multinomial(t([1.0] * 10, device), 10, generator=np.random.default_rng(5))
    g2 = t([1.0] * 10, device).multinomial(10, generator=np.random.default_rng(5))
    assert host(g1).tolist() == host(g2).tolist() and sorted(host(g1).tolist()) == list(range(10))
    with pytest.raises(ValueError, match="without replacement"):
        fastnn.multinomial(t([0.5, 0.5], device), 3)
    with pytest.raises(ValueError, match="not enough"):
        fastnn.multinomial(t([0.5, 0.0, 0.5], device), 3)
    with pytest.raises(ValueError, match="< 0"):
        fastnn.multinomial(t([0.5, -0.1], device), 1)
    with pytest.raises(ValueError, match="sum"):
        fastnn.multinomial(t([0.0, 0.0], device), 1, True)


def test_top_k_sampling_idiom(device):
    # logits -> top-k -> softmax -> multinomial -> the chosen vocabulary id (a char-level GPT's sampling step)
    logits = t([[0.1, 3.0, 2.0, -1.0, 2.5]], device)
    v, _ = fastnn.topk(logits, 2)
    logits = logits.masked_fill(logits < v[:, [-1]], float("-inf"))
    probs = fastnn.softmax(logits, dim=-1)
    ids = host(fastnn.multinomial(probs, 200, replacement=True))
    assert set(ids.reshape(-1).tolist()) == {1, 4}


def test_bernoulli(device):
    p = t([0.0, 1.0, 0.25], device)
    draws = host(fastnn.stack([fastnn.bernoulli(p) for _ in range(4000)]))
    assert draws.dtype == np.float32 and set(np.unique(draws).tolist()) <= {0.0, 1.0}
    np.testing.assert_allclose(draws.mean(0), [0.0, 1.0, 0.25], atol=0.03)
    half = host(fastnn.bernoulli(fastnn.zeros(4000, device=device), 0.5))
    assert abs(half.mean() - 0.5) < 0.04
    with pytest.raises(ValueError, match="0 <= p <= 1"):
        fastnn.bernoulli(t([1.5], device))


def test_mask_edited_after_forward_does_not_change_the_gradient(device):
    x = leaf(np.array([1.0, 2.0, 3.0]), device)
    mask = t([True, False, False], device)
    filled = fastnn.masked_fill(x, mask, 0.0)
    selected = fastnn.masked_select(x, mask)
    mask.fill_(False)
    (filled.sum() + selected.sum() * 10).backward()
    assert host(x.grad).tolist() == [10.0, 1.0, 1.0]

"""The backward pass: graph traversal order, accumulation, freeing buffers, retain_graph, error cases, gradcheck."""
import gc
import weakref

import numpy as np
import pytest
from hypothesis import given, strategies as st

import fastnn
from fastnn.autograd import gradcheck, make_result, unbroadcast


def f64(*shape, seed=0):
    return fastnn.tensor(np.random.default_rng(seed).standard_normal(shape), requires_grad=True)


def test_chain_of_10000_ops_does_not_recurse():
    x = fastnn.tensor(1.0, requires_grad=True)
    y = x
    for _ in range(10_000):
        y = y * 1.0001
    y.backward()
    assert x.grad.item() == pytest.approx(1.0001 ** 10_000, rel=1e-3)


def test_long_chain_of_mixed_ops():
    x = fastnn.tensor([0.5, -0.25], dtype=fastnn.float64, requires_grad=True)
    y = x
    for _ in range(5_000):
        y = (y + 1.0) - 1.0
    (y * y).sum().backward()
    np.testing.assert_allclose(x.grad.numpy(), [1.0, -0.5], atol=1e-9)


def test_gradients_accumulate_across_backward_calls():
    x = fastnn.tensor([1.0, 2.0], requires_grad=True)
    (x * 3).sum().backward()
    assert x.grad.tolist() == [3.0, 3.0]
    (x * x).sum().backward()
    assert x.grad.tolist() == [5.0, 7.0]
    x.grad = None
    (x * 3).sum().backward()
    assert x.grad.tolist() == [3.0, 3.0]


def test_leaf_grad_does_not_alias_graph_buffers():
    x = fastnn.ones(3, requires_grad=True)
    g = np.array([1.0, 2.0, 3.0], dtype=np.float32)
    (x * 1).backward(g)
    x.grad.data += 1
    assert g.tolist() == [1.0, 2.0, 3.0]


def test_diamond_graph_sums_both_paths():
    x = fastnn.tensor([1.0, 2.0], requires_grad=True)
    a = x * 2
    b = x * 3
    (a * b).sum().backward()  # d/dx 6x^2 = 12x
    assert x.grad.tolist() == [12.0, 24.0]
    x.grad = None
    (x + x).sum().backward()
    assert x.grad.tolist() == [2.0, 2.0]


def test_reused_intermediate_reached_by_a_longer_path():
    """a feeds root directly and through b = 3a: a's gradient must include both before it is propagated."""
    x = fastnn.tensor([1.0, 2.0], requires_grad=True)
    a = x * 2
    b = a * 3
    (a + b).sum().backward()
    assert x.grad.tolist() == [8.0, 8.0]
    x.grad = None
    a = x * 2
    b = a * 3
    (b + a).sum().backward()
    assert x.grad.tolist() == [8.0, 8.0]


_BINARY = [lambda p, q: p + q, lambda p, q: p * q, lambda p, q: p - q, lambda p, q: p * 0.5 + q.tanh()]


@given(st.lists(st.tuples(st.integers(0, 1000), st.integers(0, 1000), st.integers(0, 3)), min_size=1,
                max_size=12),
       st.integers(0, 2 ** 31))
def test_random_dag_matches_finite_differences(steps, seed):
    """Random DAGs of shared intermediates: any ordering mistake in backward shows up as a wrong gradient."""
    def fn(x, y):
        nodes = [x, y]
        for i, j, op in steps:
            nodes.append(_BINARY[op](nodes[i % len(nodes)], nodes[j % len(nodes)]))
        out = nodes[-1]
        for n in nodes[2::3]:
            out = out + n
        return out
    x, y = f64(3, seed=seed), f64(3, seed=seed + 1)
    assert gradcheck(fn, (x, y))


def test_only_inputs_requiring_grad_get_grads():
    x = fastnn.tensor([1.0, 2.0], requires_grad=True)
    c = fastnn.tensor([3.0, 4.0])
    (x * c).sum().backward()
    assert x.grad.tolist() == [3.0, 4.0]
    assert c.grad is None


def test_retain_grad_on_intermediate():
    x = fastnn.tensor([1.0, 2.0], requires_grad=True)
    y = x * 2
    y.retain_grad()
    (y * y).sum().backward()
    assert y.grad.tolist() == [4.0, 8.0]
    assert x.grad.tolist() == [8.0, 16.0]
    z = x * 5
    (z * 1).sum().backward()
    assert z.grad is None  # intermediates keep no grad unless asked


def _op_holding_buffer(x, big):
    """An op whose backward closure is the only holder of `big` (a saved intermediate)."""
    def backward(g):
        return (g * big.sum(),)
    return make_result(x._data * big.sum(), (x,), backward, "scaled")


def test_backward_frees_saved_buffers():
    x = fastnn.ones(2, requires_grad=True)
    big = np.ones(1000)
    ref = weakref.ref(big)
    y = _op_holding_buffer(x, big)
    del big
    gc.collect()
    assert ref() is not None  # the graph keeps it for backward
    y.sum().backward()
    gc.collect()
    assert ref() is None
    assert x.grad.tolist() == [1000.0, 1000.0]


def test_retain_graph_keeps_saved_buffers():
    x = fastnn.ones(2, requires_grad=True)
    big = np.ones(10)
    ref = weakref.ref(big)
    y = _op_holding_buffer(x, big).sum()
    del big
    y.backward(retain_graph=True)
    gc.collect()
    assert ref() is not None
    y.backward()
    gc.collect()
    assert ref() is None
    assert x.grad.tolist() == [20.0, 20.0]


def test_kept_output_does_not_keep_intermediates_alive():
    x = fastnn.randn(1000, requires_grad=True)
    hidden = x.exp() * 2
    ref = weakref.ref(hidden._data)
    loss = hidden.sum()
    del hidden
    gc.collect()
    assert ref() is not None
    loss.backward()
    gc.collect()
    assert ref() is None  # freed although `loss` is still alive
    assert loss.grad_fn == "sum" and not loss.is_leaf


def test_shared_subgraph_needs_retain_graph():
    x = fastnn.tensor([1.0, 2.0], requires_grad=True)
    shared = x * x
    first, second = shared.sum(), (shared * 3).sum()
    first.backward(retain_graph=True)
    second.backward()
    assert x.grad.tolist() == [8.0, 16.0]
    shared = x * x
    first, second = shared.sum(), (shared * 3).sum()
    first.backward()
    with pytest.raises(RuntimeError, match="second time"):
        second.backward()


def test_second_backward_through_freed_graph_raises():
    x = fastnn.tensor([1.0, 2.0], requires_grad=True)
    y = (x.exp() * 2).sum()
    y.backward()
    with pytest.raises(RuntimeError, match="backward through the graph a second time.*retain_graph=True"):
        y.backward()


def test_retain_graph_allows_second_backward_and_doubles_grad():
    x = fastnn.tensor([1.0, 2.0], requires_grad=True)
    y = (x * x * 3).sum()
    y.backward(retain_graph=True)
    first = x.grad.numpy().copy()
    y.backward()
    np.testing.assert_array_equal(x.grad.numpy(), 2 * first)
    assert first.tolist() == [6.0, 12.0]


def test_backward_on_non_scalar_without_gradient_errors():
    y = fastnn.ones(3, requires_grad=True) * 2
    with pytest.raises(RuntimeError, match=r"only for scalar outputs.*\(3,\)"):
        y.backward()


def test_backward_on_tensor_without_grad_errors():
    with pytest.raises(RuntimeError, match="does not require grad"):
        fastnn.ones(1).backward()
    x = fastnn.ones(2, requires_grad=True)
    with fastnn.no_grad():
        y = (x * 2).sum()
    with pytest.raises(RuntimeError, match="does not require grad"):
        y.backward()


def test_backward_on_leaf_itself():
    x = fastnn.tensor(3.0, requires_grad=True)
    x.backward()
    assert x.grad.item() == 1.0


def test_no_graph_under_no_grad():
    x = fastnn.ones(2, requires_grad=True)
    with fastnn.no_grad():
        y = (x * 2).exp().sum()
    assert not y.requires_grad and y.grad_fn is None and y.is_leaf


def test_graph_records_op_names():
    x = fastnn.ones(2, requires_grad=True)
    assert (x + 1).grad_fn == "add"
    assert x.exp().grad_fn == "exp"
    assert (x @ x).grad_fn == "matmul"
    assert x.sum().grad_fn == "sum"


def test_unbroadcast_reduces_to_shape():
    g = np.ones((4, 2, 3))
    assert unbroadcast(g, (4, 2, 3)) is g
    np.testing.assert_array_equal(unbroadcast(g, (3,)), np.full(3, 8.0))
    np.testing.assert_array_equal(unbroadcast(g, (2, 1)), np.full((2, 1), 12.0))
    np.testing.assert_array_equal(unbroadcast(g, (1, 2, 1)), np.full((1, 2, 1), 12.0))
    np.testing.assert_array_equal(unbroadcast(g, ()), np.array(24.0))


def test_gradcheck_catches_a_wrong_backward():
    def wrong_square(x):
        return make_result(x._data ** 2, (x,), lambda g: (g * x._data,), "wrong_square")  # missing factor 2

    def right_square(x):
        return make_result(x._data ** 2, (x,), lambda g: (2 * g * x._data,), "square")

    x = f64(4)
    assert gradcheck(right_square, (x,))
    with pytest.raises(AssertionError, match="gradcheck failed for input 0"):
        gradcheck(wrong_square, (x,))


def test_gradcheck_requires_float64():
    with pytest.raises(TypeError, match="float64"):
        gradcheck(lambda x: x * 2, (fastnn.ones(2, requires_grad=True),))


def test_gradcheck_leaves_inputs_unchanged():
    x = f64(3, 2)
    before = x._data.copy()
    gradcheck(lambda t: (t * t).sum(0), (x,))
    np.testing.assert_array_equal(x._data, before)


def test_autograd_grad_matches_backward_and_leaves_grad_untouched():
    x = fastnn.tensor([1.0, -2.0, 3.0], requires_grad=True)
    w = fastnn.tensor([0.5, 0.25, 2.0], requires_grad=True)
    hidden = x * w
    loss = (hidden * hidden).sum()
    gx, gh = fastnn.autograd.grad(loss, (x, hidden), retain_graph=True)
    # d/dx sum((x w)^2) = 2 x w^2; d/dh = 2 h
    np.testing.assert_allclose(gx.numpy(), 2 * np.array([1.0, -2.0, 3.0]) * np.array([0.25, 0.0625, 4.0]))
    np.testing.assert_allclose(gh.numpy(), 2 * np.array([0.5, -0.5, 6.0]))
    assert x.grad is None and w.grad is None
    loss.backward(inputs=[w])
    assert x.grad is None
    np.testing.assert_allclose(w.grad.numpy(), 2 * np.array([1.0, 4.0, 9.0]) * np.array([0.5, 0.25, 2.0]))


def test_autograd_grad_unused_input_and_several_outputs():
    x = fastnn.tensor([1.0, 2.0], requires_grad=True)
    y = fastnn.tensor([3.0], requires_grad=True)
    with pytest.raises(RuntimeError, match="not used"):
        fastnn.autograd.grad((x * 2).sum(), (x, y), retain_graph=True)
    gx, gy = fastnn.autograd.grad([(x * 2).sum(), (x * x).sum()], (x, y), allow_unused=True)
    np.testing.assert_allclose(gx.numpy(), [2 + 2 * 1.0, 2 + 2 * 2.0])
    assert gy is None


# ---- a leaf takes a fresh gradient array without a copy (make_result(fresh_grads=True)) ---------------------
def test_leaf_adopts_a_fresh_gradient_and_never_aliases_a_shared_one():
    import fastnn.nn.functional as F
    g = np.random.default_rng(0).standard_normal((3, 4)).astype(np.float32)
    x = fastnn.tensor(np.linspace(-2, 2, 12, dtype=np.float32).reshape(3, 4), requires_grad=True)
    F.relu(x).backward(g)
    expected = np.where(x._data > 0, g, 0)
    np.testing.assert_array_equal(x.grad._data, expected)
    assert not np.shares_memory(x.grad._data, g)
    # add's backward hands grad_out itself to both operands: each leaf must own a copy, not the caller's array
    a, b = (fastnn.tensor(np.zeros((3, 4), np.float32), requires_grad=True) for _ in range(2))
    (a + b).backward(g)
    a.grad._data[...] = 7
    np.testing.assert_array_equal(b.grad._data, g)
    assert not np.shares_memory(a.grad._data, g) and not np.shares_memory(b.grad._data, g)
    # one op's fresh gradients go to three leaves: three separate arrays
    w = fastnn.tensor(np.ones((5, 4), np.float32), requires_grad=True)
    bias = fastnn.tensor(np.zeros(5, np.float32), requires_grad=True)
    x.grad = None
    F.linear(x, w, bias).sum().backward()
    grads = [x.grad._data, w.grad._data, bias.grad._data]
    assert not any(np.shares_memory(p, q) for i, p in enumerate(grads) for q in grads[i + 1:])
    np.testing.assert_allclose(w.grad._data, np.tile(x._data.sum(axis=0), (5, 1)), rtol=1e-6)


def test_adopted_gradient_accumulates_over_retained_and_repeated_backwards():
    import fastnn.nn.functional as F
    x = fastnn.tensor(np.array([-1.0, 0.5, 2.0]), requires_grad=True)
    y = F.sigmoid(x)
    s = 1 / (1 + np.exp(-x._data))
    y.backward(np.ones(3), retain_graph=True)
    y.backward(np.ones(3))
    F.relu(x).backward(np.full(3, 10.0))
    np.testing.assert_allclose(x.grad._data, 2 * s * (1 - s) + np.where(x._data > 0, 10.0, 0.0), rtol=1e-12)


def test_grad_mode_is_per_thread_and_starts_enabled():
    import threading
    seen = {}

    def worker():
        seen["start"] = fastnn.is_grad_enabled()
        with fastnn.no_grad():
            seen["inside"] = fastnn.is_grad_enabled()
    with fastnn.no_grad():
        thread = threading.Thread(target=worker)
        thread.start()
        thread.join()
        assert not fastnn.is_grad_enabled()  # the worker's no_grad exit did not touch this thread's mode
    assert seen == {"start": True, "inside": False} and fastnn.is_grad_enabled()

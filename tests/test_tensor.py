"""Tensor API: construction and dtype rules, factories, properties, conversion, grad mode, seeding, devices."""
import numpy as np
import pytest

import fastnn


# ---- fastnn.tensor dtype rules ------------------------------------------------------------------------------
@pytest.mark.parametrize("data, dtype", [
    ([1.5, 2.0], fastnn.float32),
    ([1, 2.5], fastnn.float32),
    (3.0, fastnn.float32),
    ([[1, 2], [3, 4]], fastnn.int64),
    (7, fastnn.int64),
    ([True, False], fastnn.bool_),
    (np.arange(3, dtype=np.int32), fastnn.int32),
    (np.zeros(2, dtype=np.float64), fastnn.float64),
    (np.ones((2, 2), dtype=np.float16), fastnn.float16),
    (np.float64(2.5), fastnn.float64),
])
def test_tensor_infers_dtype_like_pytorch(data, dtype):
    t = fastnn.tensor(data)
    assert t.dtype == dtype
    np.testing.assert_array_equal(t.numpy(), np.asarray(data).astype(dtype))


def test_explicit_float64_dtype_keeps_exact_values():
    t = fastnn.tensor([0.1, 1 / 3], dtype=fastnn.float64)
    assert t.dtype == np.float64
    assert t.numpy().tolist() == [0.1, 1 / 3]
    assert fastnn.tensor([1, 2], dtype="float64").dtype == np.float64
    assert fastnn.tensor([1.7, 2.2], dtype=fastnn.int64).tolist() == [1, 2]


def test_tensor_copies_its_input():
    source = np.array([1.0, 2.0], dtype=np.float32)
    t = fastnn.tensor(source)
    source[0] = 99.0
    assert t.tolist() == [1.0, 2.0]


def test_tensor_rejects_non_numeric_data():
    with pytest.raises(TypeError, match="str"):
        fastnn.tensor("abc")
    with pytest.raises(TypeError, match="unknown dtype"):
        fastnn.tensor([1.0], dtype="float128x")


# ---- factories ----------------------------------------------------------------------------------------------
@pytest.mark.parametrize("factory, value", [(fastnn.zeros, 0.0), (fastnn.ones, 1.0)])
def test_zeros_ones(factory, value):
    for t in (factory(2, 3), factory((2, 3))):
        assert t.shape == (2, 3) and t.dtype == np.float32
        assert np.all(t.numpy() == value)
    assert factory(4, dtype=fastnn.float64).dtype == np.float64
    assert factory(2, requires_grad=True).requires_grad


def test_full_and_arange():
    t = fastnn.full((2, 2), 1.5)
    assert t.dtype == np.float32 and t.tolist() == [[1.5, 1.5], [1.5, 1.5]]
    assert fastnn.full((3,), 7).dtype == np.int64
    assert fastnn.full(3, 2.0, dtype=fastnn.float64).dtype == np.float64
    assert fastnn.full((2,), True).dtype == np.bool_
    a = fastnn.arange(5)
    assert a.dtype == np.int64 and a.tolist() == [0, 1, 2, 3, 4]
    assert fastnn.arange(1, 10, 3).tolist() == [1, 4, 7]
    f = fastnn.arange(0, 1, 0.25)
    assert f.dtype == np.float32 and f.tolist() == [0.0, 0.25, 0.5, 0.75]
    assert fastnn.arange(3, dtype=fastnn.float64).dtype == np.float64


def test_rand_randn_randint_distributions():
    u = fastnn.rand(20000)
    assert u.dtype == np.float32 and u.shape == (20000,)
    assert u.numpy().min() >= 0.0 and u.numpy().max() < 1.0
    assert abs(u.numpy().mean() - 0.5) < 0.01
    n = fastnn.randn(20000, dtype=fastnn.float64)
    assert n.dtype == np.float64
    assert abs(n.numpy().mean()) < 0.03 and abs(n.numpy().std() - 1.0) < 0.03
    r = fastnn.randint(3, 7, size=(1000,))
    assert r.dtype == np.int64 and set(r.tolist()) == {3, 4, 5, 6}


def test_like_factories_copy_shape_and_dtype():
    base = fastnn.ones(2, 3, dtype=fastnn.float64)
    for like in (fastnn.zeros_like, fastnn.ones_like, fastnn.rand_like, fastnn.randn_like):
        t = like(base)
        assert t.shape == (2, 3) and t.dtype == np.float64 and not t.requires_grad
    assert np.all(fastnn.zeros_like(base).numpy() == 0) and np.all(fastnn.ones_like(base).numpy() == 1)
    f = fastnn.full_like(base, 4.0)
    assert f.dtype == np.float64 and np.all(f.numpy() == 4.0)
    assert fastnn.zeros_like(base, dtype=fastnn.float32).dtype == np.float32
    assert fastnn.randn_like(base, requires_grad=True).requires_grad


def test_manual_seed_reproducibility():
    fastnn.manual_seed(123)
    first = (fastnn.randn(5).numpy().copy(), fastnn.rand(3).numpy().copy(), fastnn.randint(0, 100, (4,)).tolist())
    fastnn.manual_seed(123)
    second = (fastnn.randn(5).numpy().copy(), fastnn.rand(3).numpy().copy(), fastnn.randint(0, 100, (4,)).tolist())
    np.testing.assert_array_equal(first[0], second[0])
    np.testing.assert_array_equal(first[1], second[1])
    assert first[2] == second[2]
    fastnn.manual_seed(124)
    assert not np.array_equal(fastnn.randn(5).numpy(), first[0])
    with pytest.raises(TypeError, match="int"):
        fastnn.manual_seed(1.5)


def test_explicit_generator_is_independent_of_global_seed():
    a = fastnn.randn(4, generator=np.random.default_rng(7)).numpy()
    fastnn.manual_seed(999)
    b = fastnn.randn(4, generator=np.random.default_rng(7)).numpy()
    np.testing.assert_array_equal(a, b)


# ---- properties and conversion ------------------------------------------------------------------------------
def test_properties():
    t = fastnn.zeros(2, 3, 4)
    assert t.shape == (2, 3, 4) and isinstance(t.shape, tuple)
    assert t.ndim == 3 and t.dim() == 3 and t.numel() == 24 and len(t) == 2
    assert t.size() == (2, 3, 4) and t.size(1) == 3
    assert t.dtype == fastnn.float32 == np.float32
    assert t.grad is None and not t.requires_grad and t.is_leaf and t.grad_fn is None


def test_numpy_and_item():
    t = fastnn.tensor([[1.0, 2.0]])
    assert isinstance(t.numpy(), np.ndarray)
    np.testing.assert_array_equal(t.numpy(), [[1.0, 2.0]])
    assert fastnn.tensor([2.5]).item() == 2.5 and isinstance(fastnn.tensor(2.5).item(), float)
    assert fastnn.tensor(3).item() == 3 and isinstance(fastnn.tensor(3).item(), int)
    with pytest.raises(ValueError, match="one element"):
        t.item()
    with pytest.raises(RuntimeError, match="detach"):
        fastnn.ones(2, requires_grad=True).numpy()


def test_detach_shares_data_and_drops_graph():
    x = fastnn.tensor([1.0, 2.0], requires_grad=True)
    y = x * 2
    d = y.detach()
    assert not d.requires_grad and d.is_leaf and d.grad_fn is None
    assert np.shares_memory(d.numpy(), y.data)
    z = (d * x).sum()
    z.backward()
    assert x.grad.tolist() == [2.0, 4.0]  # d is a constant: no gradient flows through it a second time


def test_requires_grad_():
    t = fastnn.ones(3)
    assert t.requires_grad_() is t and t.requires_grad
    t.requires_grad_(False)
    assert not t.requires_grad
    with pytest.raises(RuntimeError, match="floating point"):
        fastnn.tensor([1, 2]).requires_grad_()
    y = fastnn.ones(2, requires_grad=True) * 2
    with pytest.raises(RuntimeError, match="leaf"):
        y.requires_grad_(False)


def test_backward_with_explicit_gradient():
    x = fastnn.tensor([1.0, 2.0, 3.0], requires_grad=True)
    y = x * x
    y.backward(gradient=fastnn.tensor([1.0, 0.5, 2.0]))
    assert x.grad.tolist() == [2.0, 2.0, 12.0]
    assert x.grad.dtype == np.float32
    with pytest.raises(ValueError, match=r"gradient shape \(2,\) does not match tensor shape \(3,\)"):
        (x * 2).backward(gradient=fastnn.ones(2))


def test_repr():
    assert repr(fastnn.tensor([1.0, 2.0])) == "tensor([1., 2.])"
    assert repr(fastnn.tensor([1, 2])) == "tensor([1, 2])"
    assert repr(fastnn.tensor([1.5], dtype=fastnn.float64)) == "tensor([1.5], dtype=float64)"
    assert repr(fastnn.tensor([1.0], requires_grad=True)) == "tensor([1.], requires_grad=True)"
    assert repr(fastnn.tensor([1.0], requires_grad=True) * 2) == "tensor([2.], grad_fn=<mul>)"


# ---- arithmetic, dtype promotion, comparisons ---------------------------------------------------------------
def test_operators_with_python_scalars():
    x = fastnn.tensor([1.0, 2.0, 4.0])
    assert (x + 1).tolist() == [2.0, 3.0, 5.0]
    assert (1 - x).tolist() == [0.0, -1.0, -3.0]
    assert (2 * x).tolist() == [2.0, 4.0, 8.0]
    assert (8 / x).tolist() == [8.0, 4.0, 2.0]
    assert (x / 2).tolist() == [0.5, 1.0, 2.0]
    assert (x ** 2).tolist() == [1.0, 4.0, 16.0]
    assert (2 ** x).tolist() == [2.0, 4.0, 16.0]
    assert (-x).tolist() == [-1.0, -2.0, -4.0]
    assert abs(fastnn.tensor([-3.0])).tolist() == [3.0]


@pytest.mark.parametrize("make, expected", [
    (lambda: fastnn.ones(2) + 1.5, fastnn.float32),
    (lambda: fastnn.ones(2) * 2, fastnn.float32),
    (lambda: fastnn.ones(2, dtype=fastnn.float64) * 2.5, fastnn.float64),
    (lambda: fastnn.tensor([1, 2]) + 1.5, fastnn.float32),
    (lambda: fastnn.tensor([1, 2]) + 1, fastnn.int64),
    (lambda: fastnn.tensor([1, 2]) / fastnn.tensor([2, 2]), fastnn.float32),
    (lambda: fastnn.ones(2) + fastnn.ones(2, dtype=fastnn.float64), fastnn.float64),
    (lambda: np.float64(2.0) * fastnn.ones(2), fastnn.float32),
])
def test_dtype_promotion(make, expected):
    assert make().dtype == expected


def test_comparisons_give_bool_tensors_without_grad():
    x = fastnn.tensor([1.0, 2.0, 3.0], requires_grad=True)
    y = fastnn.tensor([3.0, 2.0, 1.0])
    cases = {
        (x < y): [True, False, False], (x <= y): [True, True, False], (x > y): [False, False, True],
        (x >= y): [False, True, True], (x == y): [False, True, False], (x != y): [True, False, True],
        (x > 1.5): [False, True, True],
    }
    for result, expected in cases.items():
        assert result.dtype == np.bool_
        assert not result.requires_grad and result.grad_fn is None
        assert result.tolist() == expected


def test_inplace_ops_guarded_by_grad_mode():
    w = fastnn.ones(3, requires_grad=True)
    with pytest.raises(RuntimeError, match="no_grad"):
        w += 1
    with pytest.raises(RuntimeError, match="no_grad"):
        w[0] = 5.0
    with fastnn.no_grad():
        w -= fastnn.tensor([0.5, 0.5, 0.5])
        w[1] = 4.0
    assert w.tolist() == [0.5, 4.0, 0.5] and w.requires_grad and w.is_leaf
    plain = fastnn.zeros(2)
    plain *= 3
    plain += 1
    assert plain.tolist() == [1.0, 1.0]


# ---- grad mode ----------------------------------------------------------------------------------------------
def test_no_grad_and_enable_grad_as_context_managers():
    x = fastnn.ones(2, requires_grad=True)
    with fastnn.no_grad():
        assert not fastnn.is_grad_enabled()
        y = x * 2
        with fastnn.enable_grad():
            assert fastnn.is_grad_enabled()
            z = x * 2
        assert not fastnn.is_grad_enabled()
    assert fastnn.is_grad_enabled()
    assert not y.requires_grad and y.grad_fn is None
    assert z.requires_grad and z.grad_fn == "mul"


def test_no_grad_and_enable_grad_as_decorators():
    x = fastnn.ones(2, requires_grad=True)

    @fastnn.no_grad()
    def frozen():
        return x * 2

    @fastnn.no_grad
    def frozen_bare():
        return x * 2

    @fastnn.enable_grad()
    def tracked():
        return x * 2

    assert not frozen().requires_grad and not frozen_bare().requires_grad
    assert fastnn.is_grad_enabled()
    with fastnn.no_grad():
        assert tracked().requires_grad
        assert not fastnn.is_grad_enabled()
    assert frozen.__name__ == "frozen"


def test_grad_mode_decorator_restores_state_on_recursion_and_error():
    @fastnn.no_grad()
    def recurse(n):
        if n:
            recurse(n - 1)
        return fastnn.is_grad_enabled()

    assert recurse(3) is False
    assert fastnn.is_grad_enabled()

    @fastnn.no_grad()
    def fails():
        raise KeyError("boom")

    with pytest.raises(KeyError):
        fails()
    assert fastnn.is_grad_enabled()


def test_set_grad_enabled_as_function_and_context_manager():
    with fastnn.set_grad_enabled(False):
        assert not fastnn.is_grad_enabled()
    assert fastnn.is_grad_enabled()
    fastnn.set_grad_enabled(False)
    assert not fastnn.is_grad_enabled()
    fastnn.set_grad_enabled(True)
    assert fastnn.is_grad_enabled()


# ---- devices and dtype conversion ---------------------------------------------------------------------------
def test_device_is_cpu_and_to_cpu_is_identity():
    t = fastnn.randn(2, 2)
    assert t.device == "cpu"
    assert t.to("cpu") is t and t.cpu() is t
    assert (t * 2).device == "cpu" and fastnn.zeros(1).device == "cpu"


@pytest.mark.parametrize("device", ["cuda", "cuda:0"])
def test_to_cuda_raises_clear_error(device):
    t = fastnn.ones(2)
    with pytest.raises(RuntimeError, match="cuda.*not available"):
        t.to(device)
    with pytest.raises(RuntimeError, match="cuda.*not available"):
        fastnn.zeros(2, device=device)


def test_unknown_device_rejected():
    with pytest.raises(ValueError, match="unknown device"):
        fastnn.zeros(2, device="tpu")


def test_to_dtype_is_differentiable():
    x = fastnn.tensor([1.0, 2.0], requires_grad=True)
    y = x.to(fastnn.float64)
    assert y.dtype == np.float64 and y.requires_grad
    (y * y).sum().backward()
    assert x.grad.dtype == np.float32 and x.grad.tolist() == [2.0, 4.0]
    assert x.to(fastnn.float32) is x
    assert x.double().dtype == np.float64 and x.detach().long().dtype == np.int64
    assert x.detach().long().tolist() == [1, 2]

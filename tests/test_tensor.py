"""Tensor API: construction and dtype rules, factories, properties, conversion, grad mode, seeding, devices.

Tests that build or compute on tensors run on every registered device (cpu and the GPU-like twin)."""
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
def test_tensor_infers_dtype_like_pytorch(data, dtype, device):
    t = fastnn.tensor(data, device=device)
    assert t.dtype == dtype and t.device == device
    np.testing.assert_array_equal(t.numpy(), np.asarray(data).astype(dtype))


def test_explicit_float64_dtype_keeps_exact_values(device):
    t = fastnn.tensor([0.1, 1 / 3], dtype=fastnn.float64, device=device)
    assert t.dtype == np.float64
    assert t.numpy().tolist() == [0.1, 1 / 3]
    assert fastnn.tensor([1, 2], dtype="float64", device=device).dtype == np.float64
    assert fastnn.tensor([1.7, 2.2], dtype=fastnn.int64, device=device).tolist() == [1, 2]


def test_tensor_copies_its_input(device):
    source = np.array([1.0, 2.0], dtype=np.float32)
    t = fastnn.tensor(source, device=device)
    source[0] = 99.0
    assert t.tolist() == [1.0, 2.0]
    u = fastnn.tensor(t)  # from a tensor: a copy too (PyTorch's torch.tensor(t) copies)
    with fastnn.no_grad():
        t[0] = 5.0
    assert u.tolist() == [1.0, 2.0] and u.device == device


def test_tensor_rejects_non_numeric_data():
    with pytest.raises(TypeError, match="str"):
        fastnn.tensor("abc")
    with pytest.raises(TypeError, match="unknown dtype"):
        fastnn.tensor([1.0], dtype="float128x")


# ---- factories ----------------------------------------------------------------------------------------------
@pytest.mark.parametrize("factory, value", [(fastnn.zeros, 0.0), (fastnn.ones, 1.0)])
def test_zeros_ones(factory, value, device):
    for t in (factory(2, 3, device=device), factory((2, 3), device=device)):
        assert t.shape == (2, 3) and t.dtype == np.float32 and t.device == device
        assert np.all(t.numpy() == value)
    assert factory(4, dtype=fastnn.float64, device=device).dtype == np.float64
    assert factory(2, requires_grad=True, device=device).requires_grad


def test_full_and_arange(device):
    t = fastnn.full((2, 2), 1.5, device=device)
    assert t.dtype == np.float32 and t.tolist() == [[1.5, 1.5], [1.5, 1.5]] and t.device == device
    assert fastnn.full((3,), 7, device=device).dtype == np.int64
    assert fastnn.full(3, 2.0, dtype=fastnn.float64, device=device).dtype == np.float64
    assert fastnn.full((2,), True, device=device).dtype == np.bool_
    a = fastnn.arange(5, device=device)
    assert a.dtype == np.int64 and a.tolist() == [0, 1, 2, 3, 4] and a.device == device
    assert fastnn.arange(1, 10, 3, device=device).tolist() == [1, 4, 7]
    f = fastnn.arange(0, 1, 0.25, device=device)
    assert f.dtype == np.float32 and f.tolist() == [0.0, 0.25, 0.5, 0.75]
    assert fastnn.arange(3, dtype=fastnn.float64, device=device).dtype == np.float64
    assert fastnn.empty(2, 3, device=device).shape == (2, 3)


def test_rand_randn_randint_distributions(device):
    u = fastnn.rand(20000, device=device)
    assert u.dtype == np.float32 and u.shape == (20000,) and u.device == device
    assert u.numpy().min() >= 0.0 and u.numpy().max() < 1.0
    assert abs(u.numpy().mean() - 0.5) < 0.01
    n = fastnn.randn(20000, dtype=fastnn.float64, device=device)
    assert n.dtype == np.float64
    assert abs(n.numpy().mean()) < 0.03 and abs(n.numpy().std() - 1.0) < 0.03
    r = fastnn.randint(3, 7, size=(1000,), device=device)
    assert r.dtype == np.int64 and set(r.tolist()) == {3, 4, 5, 6}


def test_random_factories_keep_the_cpu_stream_and_follow_manual_seed(device):
    # Every device draws from fastnn's seeded generator, in the same order and with the same calls as before the
    # backend seam (Generator.random/standard_normal with float32, integers as int64).
    fastnn.manual_seed(7)
    gen = fastnn.default_generator()
    expected = (gen.random(3, dtype=np.float32), gen.standard_normal((2, 2), dtype=np.float32),
                gen.integers(0, 10, size=(4,)))
    fastnn.manual_seed(7)
    drawn = (fastnn.rand(3, device=device), fastnn.randn(2, 2, device=device),
             fastnn.randint(0, 10, (4,), device=device))
    for d, e in zip(drawn, expected):
        assert d.device == device and d.dtype == e.dtype
        np.testing.assert_array_equal(d.numpy(), e)


def test_like_factories_copy_shape_and_dtype(device):
    base = fastnn.ones(2, 3, dtype=fastnn.float64, device=device)
    for like in (fastnn.zeros_like, fastnn.ones_like, fastnn.rand_like, fastnn.randn_like):
        t = like(base)
        assert t.shape == (2, 3) and t.dtype == np.float64 and not t.requires_grad and t.device == device
    assert np.all(fastnn.zeros_like(base).numpy() == 0) and np.all(fastnn.ones_like(base).numpy() == 1)
    f = fastnn.full_like(base, 4.0)
    assert f.dtype == np.float64 and np.all(f.numpy() == 4.0)
    assert fastnn.zeros_like(base, dtype=fastnn.float32).dtype == np.float32
    assert fastnn.randn_like(base, requires_grad=True).requires_grad


def test_manual_seed_reproducibility(device):
    def draw():
        return (fastnn.randn(5, device=device).numpy().copy(), fastnn.rand(3, device=device).numpy().copy(),
                fastnn.randint(0, 100, (4,), device=device).tolist())
    fastnn.manual_seed(123)
    first = draw()
    fastnn.manual_seed(123)
    second = draw()
    np.testing.assert_array_equal(first[0], second[0])
    np.testing.assert_array_equal(first[1], second[1])
    assert first[2] == second[2]
    fastnn.manual_seed(124)
    assert not np.array_equal(fastnn.randn(5, device=device).numpy(), first[0])
    with pytest.raises(TypeError, match="int"):
        fastnn.manual_seed(1.5)


def test_explicit_generator_is_independent_of_global_seed(device):
    a = fastnn.randn(4, generator=np.random.default_rng(7), device=device).numpy()
    fastnn.manual_seed(999)
    b = fastnn.randn(4, generator=np.random.default_rng(7), device=device).numpy()
    np.testing.assert_array_equal(a, b)


# ---- properties and conversion ------------------------------------------------------------------------------
def test_properties(device):
    t = fastnn.zeros(2, 3, 4, device=device)
    assert t.shape == (2, 3, 4) and isinstance(t.shape, tuple)
    assert t.ndim == 3 and t.dim() == 3 and t.numel() == 24 and len(t) == 2
    assert t.size() == (2, 3, 4) and t.size(1) == 3
    assert t.dtype == fastnn.float32 == np.float32
    assert t.grad is None and not t.requires_grad and t.is_leaf and t.grad_fn is None


def test_numpy_and_item(device):
    t = fastnn.tensor([[1.0, 2.0]], device=device)
    assert isinstance(t.numpy(), np.ndarray)
    np.testing.assert_array_equal(t.numpy(), [[1.0, 2.0]])
    assert fastnn.tensor([2.5], device=device).item() == 2.5
    assert isinstance(fastnn.tensor(2.5, device=device).item(), float)
    assert fastnn.tensor(3, device=device).item() == 3 and isinstance(fastnn.tensor(3, device=device).item(), int)
    # 0-d results of ops are 0-d arrays on every device (NumPy alone would give a NumPy scalar)
    s = fastnn.tensor([1.0, 2.0], device=device)[1] * 2 + fastnn.tensor(1.0, device=device)
    assert isinstance(s.numpy(), np.ndarray) and s.numpy().shape == () and s.item() == 5.0
    with pytest.raises(ValueError, match="one element"):
        t.item()
    with pytest.raises(RuntimeError, match="detach"):
        fastnn.ones(2, requires_grad=True, device=device).numpy()


def test_detach_shares_data_and_drops_graph(device):
    x = fastnn.tensor([1.0, 2.0], requires_grad=True, device=device)
    y = x * 2
    d = y.detach()
    assert not d.requires_grad and d.is_leaf and d.grad_fn is None
    assert d._data is y._data and d._version_counter is y._version_counter
    z = (d * x).sum()
    z.backward()
    assert x.grad.tolist() == [2.0, 4.0]  # d is a constant: no gradient flows through it a second time


def test_requires_grad_(device):
    t = fastnn.ones(3, device=device)
    assert t.requires_grad_() is t and t.requires_grad
    t.requires_grad_(False)
    assert not t.requires_grad
    with pytest.raises(RuntimeError, match="floating point"):
        fastnn.tensor([1, 2], device=device).requires_grad_()
    y = fastnn.ones(2, requires_grad=True, device=device) * 2
    with pytest.raises(RuntimeError, match="leaf"):
        y.requires_grad_(False)


def test_backward_with_explicit_gradient(device):
    x = fastnn.tensor([1.0, 2.0, 3.0], requires_grad=True, device=device)
    y = x * x
    y.backward(gradient=fastnn.tensor([1.0, 0.5, 2.0], device=device))
    assert x.grad.tolist() == [2.0, 2.0, 12.0]
    assert x.grad.dtype == np.float32 and x.grad.device == device
    with pytest.raises(ValueError, match=r"gradient shape \(2,\) does not match tensor shape \(3,\)"):
        (x * 2).backward(gradient=fastnn.ones(2, device=device))


def test_repr():
    assert repr(fastnn.tensor([1.0, 2.0])) == "tensor([1., 2.])"
    assert repr(fastnn.tensor([1, 2])) == "tensor([1, 2])"
    assert repr(fastnn.tensor([1.5], dtype=fastnn.float64)) == "tensor([1.5], dtype=float64)"
    assert repr(fastnn.tensor([1.0], requires_grad=True)) == "tensor([1.], requires_grad=True)"
    assert repr(fastnn.tensor([1.0], requires_grad=True) * 2) == "tensor([2.], grad_fn=<mul>)"
    assert repr(fastnn.tensor([1.0, 2.0], device="twin") * 2) == "tensor([2., 4.], device='twin')"


# ---- arithmetic, dtype promotion, comparisons ---------------------------------------------------------------
def test_operators_with_python_scalars(device):
    x = fastnn.tensor([1.0, 2.0, 4.0], device=device)
    assert (x + 1).tolist() == [2.0, 3.0, 5.0]
    assert (1 - x).tolist() == [0.0, -1.0, -3.0]
    assert (2 * x).tolist() == [2.0, 4.0, 8.0]
    assert (8 / x).tolist() == [8.0, 4.0, 2.0]
    assert (x / 2).tolist() == [0.5, 1.0, 2.0]
    assert (x ** 2).tolist() == [1.0, 4.0, 16.0]
    assert (2 ** x).tolist() == [2.0, 4.0, 16.0]
    assert (-x).tolist() == [-1.0, -2.0, -4.0]
    assert abs(fastnn.tensor([-3.0], device=device)).tolist() == [3.0]
    assert (x + 1).device == device and (2 ** x).device == device


@pytest.mark.parametrize("make, expected", [
    (lambda d: fastnn.ones(2, device=d) + 1.5, fastnn.float32),
    (lambda d: fastnn.ones(2, device=d) * 2, fastnn.float32),
    (lambda d: fastnn.ones(2, dtype=fastnn.float64, device=d) * 2.5, fastnn.float64),
    (lambda d: fastnn.tensor([1, 2], device=d) + 1.5, fastnn.float32),
    (lambda d: fastnn.tensor([1, 2], device=d) + 1, fastnn.int64),
    (lambda d: fastnn.tensor([1, 2], device=d) / fastnn.tensor([2, 2], device=d), fastnn.float32),
    (lambda d: fastnn.ones(2, device=d) + fastnn.ones(2, dtype=fastnn.float64, device=d), fastnn.float64),
    (lambda d: np.float64(2.0) * fastnn.ones(2, device=d), fastnn.float32),
])
def test_dtype_promotion(make, expected, device):
    out = make(device)
    assert out.dtype == expected and out.device == device


def test_comparisons_give_bool_tensors_without_grad(device):
    x = fastnn.tensor([1.0, 2.0, 3.0], requires_grad=True, device=device)
    y = fastnn.tensor([3.0, 2.0, 1.0], device=device)
    cases = {
        (x < y): [True, False, False], (x <= y): [True, True, False], (x > y): [False, False, True],
        (x >= y): [False, True, True], (x == y): [False, True, False], (x != y): [True, False, True],
        (x > 1.5): [False, True, True],
    }
    for result, expected in cases.items():
        assert result.dtype == np.bool_
        assert not result.requires_grad and result.grad_fn is None
        assert result.tolist() == expected


def test_inplace_ops_guarded_by_grad_mode(device):
    w = fastnn.ones(3, requires_grad=True, device=device)
    with pytest.raises(RuntimeError, match="no_grad"):
        w += 1
    with pytest.raises(RuntimeError, match="no_grad"):
        w[0] = 5.0
    with fastnn.no_grad():
        w -= fastnn.tensor([0.5, 0.5, 0.5], device=device)
        w[1] = 4.0
    assert w.tolist() == [0.5, 4.0, 0.5] and w.requires_grad and w.is_leaf
    plain = fastnn.zeros(2, device=device)
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


@pytest.mark.skipif(fastnn.cuda.is_available(), reason="a CUDA device is present")
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


def test_to_dtype_is_differentiable(device):
    x = fastnn.tensor([1.0, 2.0], requires_grad=True, device=device)
    y = x.to(fastnn.float64)
    assert y.dtype == np.float64 and y.requires_grad
    (y * y).sum().backward()
    assert x.grad.dtype == np.float32 and x.grad.tolist() == [2.0, 4.0]
    assert x.to(fastnn.float32) is x
    assert x.double().dtype == np.float64 and x.detach().long().dtype == np.int64
    assert x.detach().long().tolist() == [1, 2]


def test_to_device_and_back_carries_values_and_gradient():
    x = fastnn.tensor([1.0, 2.0], requires_grad=True)
    y = x.to("twin")
    assert y.device == "twin" and y.requires_grad
    (y * y).sum().backward()
    assert x.grad.device == "cpu" and x.grad.tolist() == [2.0, 4.0]
    assert fastnn.tensor([3.0], device="twin").cpu().tolist() == [3.0]


# ---- in-place modification after use (PyTorch: "one of the variables needed for gradient computation has been
# modified by an inplace operation"); a node checks only what its backward reads ----------------------------
def test_inplace_edit_of_a_saved_output_is_detected(device):
    x = fastnn.tensor([1.0, 2.0], requires_grad=True, device=device)
    y = fastnn.exp(x)  # exp's backward reads its output
    with fastnn.no_grad():
        y += 1
    with pytest.raises(RuntimeError, match="modified by an inplace operation"):
        y.sum().backward()


def test_inplace_edit_of_a_saved_input_is_detected(device):
    w = fastnn.tensor([1.0, 2.0], requires_grad=True, device=device)
    x = fastnn.tensor([3.0, 4.0], requires_grad=True, device=device)
    loss = (w * x).sum()  # mul's backward reads w for x's gradient and x for w's
    with fastnn.no_grad():
        w[0] = 10
    with pytest.raises(RuntimeError, match="modified by an inplace operation"):
        loss.backward()


def test_inplace_edit_through_a_view_is_detected(device):
    x = fastnn.tensor([[1.0, 2.0], [3.0, 4.0]], requires_grad=True, device=device)
    y = fastnn.exp(x)
    row = y[0]  # basic indexing is a view: it shares y's version counter
    with fastnn.no_grad():
        row *= 2
    assert y.tolist()[0] == pytest.approx([2 * np.e, 2 * np.e ** 2])
    with pytest.raises(RuntimeError, match="modified by an inplace operation"):
        y.sum().backward()


def test_inplace_edit_of_an_input_no_backward_reads_is_allowed(device):
    # PyTorch: add saves neither operand, so z = x + 1; x += 1 (under no_grad) then backward gives dz/dx = 1
    x = fastnn.tensor([1.0, 2.0], requires_grad=True, device=device)
    z = x + 1
    r = x.reshape(2, 1)  # a view of x: its backward reads nothing either
    with fastnn.no_grad():
        x += 1
    (z.sum() + (r * 3).sum()).backward()
    assert x.grad.tolist() == [4.0, 4.0]
    assert z.tolist() == [2.0, 3.0] and r.tolist() == [[2.0], [3.0]]  # the view sees the edit, z does not

"""PyTorch's tensor API beyond the core: creation functions, from_numpy/as_tensor, new_* methods, shape ops
(split, chunk, repeat, roll, ...) and in-place methods, on every device. Shape ops are gradchecked in float64
over Hypothesis-drawn shapes; PyTorch's documented results are written in as facts."""
import math

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings, strategies as st
from hypothesis.extra import numpy as hnp

import fastnn
from fastnn.autograd import gradcheck
from conftest import check, host, leaf, t

seeds = st.integers(0, 2 ** 32 - 1)
nonscalar = hnp.array_shapes(min_dims=1, max_dims=3, min_side=1, max_side=4)
# `device` is a plain string per parametrization: nothing to reset between examples
few = settings(max_examples=8, suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])


def sample(shape, seed):
    return np.random.default_rng(seed).standard_normal(shape)


def weighted_sum(pieces):
    """One differentiable scalar-ish output from a tuple of tensors (distinct weights per piece)."""
    return fastnn.cat([p.reshape(-1) * (i + 1) for i, p in enumerate(pieces)])


# ---- creation --------------------------------------------------------------------------------------------------
def test_creation_facts(device):
    # torch.linspace(3, 10, steps=5) -> [3.0, 4.75, 6.5, 8.25, 10.0], float32 by default
    x = fastnn.linspace(3, 10, steps=5, device=device)
    assert x.dtype == np.float32 and host(x).tolist() == [3.0, 4.75, 6.5, 8.25, 10.0] and x.device == device
    assert host(fastnn.linspace(-10, 10, 5)).tolist() == [-10.0, -5.0, 0.0, 5.0, 10.0]
    assert host(fastnn.linspace(0, 1, 1)).tolist() == [0.0] and fastnn.linspace(0, 1, 0).shape == (0,)
    # torch.logspace(-10, 10, steps=5) -> [1e-10, 1e-05, 1, 1e5, 1e10]; base=2: logspace(0, 2, 3, base=2) -> [1, 2, 4]
    np.testing.assert_allclose(host(fastnn.logspace(-10, 10, steps=5, device=device)),
                               [1e-10, 1e-05, 1.0, 1e5, 1e10], rtol=1e-6)
    assert host(fastnn.logspace(0, 2, 3, base=2)).tolist() == [1.0, 2.0, 4.0]
    # torch.eye(2, 3): float32 ones on the diagonal
    e = fastnn.eye(2, 3, device=device)
    assert e.dtype == np.float32 and host(e).tolist() == [[1, 0, 0], [0, 1, 0]]
    assert host(fastnn.eye(2, dtype="int64")).tolist() == [[1, 0], [0, 1]]
    p = fastnn.randperm(10, device=device)
    assert p.dtype == np.int64 and sorted(host(p).tolist()) == list(range(10))
    assert host(fastnn.randperm(6, generator=np.random.default_rng(1))).tolist() == \
        host(fastnn.randperm(6, generator=np.random.default_rng(1))).tolist()
    for bad in (lambda: fastnn.eye(-1), lambda: fastnn.linspace(0, 1, -2), lambda: fastnn.randperm(2.5)):
        with pytest.raises(ValueError):
            bad()


def test_like_and_new_methods(device):
    x = t([[1.5, 2.5]], device, dtype="float64")
    for made in (fastnn.empty_like(x), x.new_zeros(2, 3), x.new_ones((2, 3)), x.new_empty(4), x.new_full((2,), 7)):
        assert made.dtype == np.float64 and made.device == device
    assert host(x.new_zeros(2, 3)).tolist() == [[0.0] * 3] * 2 and host(x.new_ones(1)).tolist() == [1.0]
    assert host(x.new_full((2,), 7)).tolist() == [7.0, 7.0]
    n = x.new_tensor([1, 2])
    assert n.dtype == np.float64 and n.device == device and host(n).tolist() == [1.0, 2.0]
    assert x.new_zeros(2, dtype="int64").dtype == np.int64
    assert x.new_ones(2, requires_grad=True).requires_grad
    r = fastnn.randint_like(x, 10)  # PyTorch: input's dtype, integer values in [0, high)
    assert r.dtype == np.float64 and r.shape == x.shape
    vals = host(fastnn.randint_like(fastnn.zeros(2000, dtype="int64", device=device), 3, 6))
    assert set(vals.tolist()) == {3, 4, 5}


def test_from_numpy_shares_memory_and_refuses_like_pytorch():
    a = np.arange(6, dtype=np.float64).reshape(2, 3)
    x = fastnn.from_numpy(a)
    assert x.dtype == np.float64 and x.device == "cpu"
    a[0, 0] = 100.0
    assert x[0, 0].item() == 100.0  # writes through the array show in the tensor ...
    x.add_(1)
    assert a[1, 2] == 6.0  # ... and the other way round
    assert fastnn.from_numpy(np.array([1, 2], dtype=np.uint8)).dtype == np.uint8
    with pytest.raises(TypeError, match="expected np.ndarray"):
        fastnn.from_numpy([1, 2])
    with pytest.raises(TypeError, match="can't convert np.ndarray of type"):
        fastnn.from_numpy(np.array(["a"]))
    with pytest.raises(TypeError, match="can't convert"):
        fastnn.from_numpy(np.array([1j]))
    with pytest.raises(ValueError, match="byte order"):
        fastnn.from_numpy(np.arange(3, dtype=">f4"))
    with pytest.raises(ValueError, match="negative"):
        fastnn.from_numpy(np.arange(3.0)[::-1])


def test_as_tensor_shares_when_it_can(device):
    a = np.arange(3.0)
    shared = fastnn.as_tensor(a)
    a[0] = 9.0
    assert shared[0].item() == 9.0
    copied = fastnn.as_tensor(a, dtype="float32")
    a[1] = 8.0
    assert copied.dtype == np.float32 and copied[1].item() == 1.0
    assert fastnn.as_tensor([1, 2]).dtype == np.int64 and fastnn.as_tensor([1.5]).dtype == np.float32
    x = t([1.0, 2.0], device)
    assert fastnn.as_tensor(x) is x
    assert fastnn.as_tensor(x, dtype="float64").dtype == np.float64
    assert fastnn.as_tensor(a, device=device).device == device


# ---- shape ops ---------------------------------------------------------------------------------------------------
@few
@given(shape=nonscalar, seed=seeds, data=st.data())
def test_split_chunk_unbind_narrow(device, shape, seed, data):
    a = sample(shape, seed)
    dim = data.draw(st.integers(-len(shape), len(shape) - 1))
    n = shape[dim]
    size = data.draw(st.integers(1, 4))
    check(lambda x: weighted_sum(fastnn.split(x, size, dim)), [a],
          weighted_sum([fastnn.tensor(p) for p in np.split(a, range(size, n, size), axis=dim)]).numpy(), device)
    pieces = fastnn.split(t(a, device), size, dim)
    assert [p.shape[dim] for p in pieces] == [min(size, n - i) for i in range(0, n, size)]
    chunks = data.draw(st.integers(1, 5))
    got = t(a, device).chunk(chunks, dim)
    step = math.ceil(n / chunks)
    assert [c.shape[dim] for c in got] == [min(step, n - i) for i in range(0, n, step)]
    check(lambda x: weighted_sum(x.unbind(dim)), [a],
          np.concatenate([np.take(a, i, axis=dim).reshape(-1) * (i + 1) for i in range(n)]), device)
    start = data.draw(st.integers(-n, n - 1))
    length = data.draw(st.integers(0, n - start % n))
    lo = start % n
    check(lambda x: fastnn.narrow(x, dim, start, length), [a], np.take(a, range(lo, lo + length), axis=dim), device)


def test_split_chunk_narrow_facts(device):
    # torch.arange(13).chunk(6) gives 5 chunks: [0, 1, 2], [3, 4, 5], [6, 7, 8], [9, 10, 11], [12]
    assert [host(c).tolist() for c in fastnn.arange(13, device=device).chunk(6)] == \
        [[0, 1, 2], [3, 4, 5], [6, 7, 8], [9, 10, 11], [12]]
    assert [c.shape[0] for c in fastnn.arange(11).chunk(6)] == [2, 2, 2, 2, 2, 1]
    x = fastnn.arange(10, device=device).reshape(5, 2)
    assert [p.shape for p in x.split(2)] == [(2, 2), (2, 2), (1, 2)]
    assert [p.shape for p in fastnn.split(x, [1, 4])] == [(1, 2), (4, 2)]
    with pytest.raises(ValueError, match="sum"):
        x.split([1, 2])
    # split pieces and unbind slices are views: an in-place edit shows in the base and bumps its version
    pieces = x.split(2)
    pieces[1][0, 0] = -1
    assert host(x)[2, 0] == -1 and x._version == 1
    # torch.narrow(x, 0, 0, 2) / (x, 1, 1, 2) on [[1, 2, 3], [4, 5, 6], [7, 8, 9]]; a negative start counts back
    m = t([[1, 2, 3], [4, 5, 6], [7, 8, 9]], device)
    assert host(fastnn.narrow(m, 0, 0, 2)).tolist() == [[1, 2, 3], [4, 5, 6]]
    assert host(m.narrow(1, 1, 2)).tolist() == [[2, 3], [5, 6], [8, 9]]
    assert host(m.narrow(-1, -1, 1)).tolist() == [[3], [6], [9]]
    with pytest.raises(ValueError, match="exceeds"):
        m.narrow(0, 2, 2)


@few
@given(shape=nonscalar, seed=seeds, data=st.data())
def test_repeat_tile_repeat_interleave(device, shape, seed, data):
    a = sample(shape, seed)
    extra = data.draw(st.integers(0, 1))
    reps = tuple(data.draw(st.integers(1, 3)) for _ in range(len(shape) + extra))
    check(lambda x: x.repeat(*reps), [a], np.tile(a, reps), device)
    check(lambda x: fastnn.tile(x, reps[:1]), [a], np.tile(a, reps[:1]), device)
    dim = data.draw(st.none() | st.integers(-len(shape), len(shape) - 1))
    r = data.draw(st.integers(0, 3))
    check(lambda x: x.repeat_interleave(r, dim), [a], np.repeat(a, r, axis=dim), device)
    if dim is not None:
        counts = np.random.default_rng(seed).integers(0, 3, shape[dim])
        check(lambda x: fastnn.repeat_interleave(x, t(counts, device), dim), [a], np.repeat(a, counts, axis=dim),
              device)


def test_repeat_facts(device):
    x = t([1, 2, 3], device)
    # x.repeat(4, 2) has shape (4, 6); x.repeat(4, 2, 1) shape (4, 2, 3)
    assert x.repeat(4, 2).shape == (4, 6) and x.repeat(4, 2, 1).shape == (4, 2, 3)
    assert host(x.tile((2,))).tolist() == [1, 2, 3, 1, 2, 3]
    y = t([[1, 2], [3, 4]], device)
    assert host(fastnn.tile(y, (2, 2))).tolist() == [[1, 2, 1, 2], [3, 4, 3, 4]] * 2
    assert host(y.tile(2)).tolist() == [[1, 2, 1, 2], [3, 4, 3, 4]]  # fewer dims: leading ones
    assert host(x.repeat_interleave(2)).tolist() == [1, 1, 2, 2, 3, 3]
    assert host(fastnn.repeat_interleave(y, 2)).tolist() == [1, 1, 2, 2, 3, 3, 4, 4]
    assert host(fastnn.repeat_interleave(y, 3, dim=1)).tolist() == [[1, 1, 1, 2, 2, 2], [3, 3, 3, 4, 4, 4]]
    assert host(fastnn.repeat_interleave(y, t([1, 2], device), dim=0)).tolist() == [[1, 2], [3, 4], [3, 4]]
    assert host(fastnn.repeat_interleave(t([1, 2], device))).tolist() == [0, 1, 1]
    with pytest.raises(ValueError, match="smaller than"):
        y.repeat(2)


@few
@given(shape=nonscalar, seed=seeds, data=st.data())
def test_roll_flip_movedim_unflatten(device, shape, seed, data):
    a = sample(shape, seed)
    nd = len(shape)
    shift = data.draw(st.integers(-5, 5))
    check(lambda x: fastnn.roll(x, shift), [a], np.roll(a, shift), device)
    dims = tuple(data.draw(st.lists(st.integers(0, nd - 1), min_size=1, max_size=nd, unique=True)))
    shifts = tuple(data.draw(st.integers(-3, 3)) for _ in dims)
    check(lambda x: x.roll(shifts, dims), [a], np.roll(a, shifts, axis=dims), device)
    check(lambda x: fastnn.flip(x, dims), [a], np.flip(a, dims), device)
    check(lambda x: x.flip(*dims), [a], np.flip(a, dims), device)
    dest = tuple(data.draw(st.permutations(range(nd)))[:len(dims)])
    check(lambda x: fastnn.movedim(x, dims, dest), [a], np.moveaxis(a, dims, dest), device)
    dim = data.draw(st.integers(-nd, nd - 1))
    n = shape[dim]
    sizes = (1, n) if data.draw(st.booleans()) else (-1, 1)
    expected_shape = shape[:dim % nd] + ((1, n) if sizes == (1, n) else (n, 1)) + shape[dim % nd + 1:]
    check(lambda x: x.unflatten(dim, sizes), [a], a.reshape(expected_shape), device)


def test_shape_op_facts(device):
    x = fastnn.arange(1, 9, device=device).view(4, 2)
    # From torch.roll's docs
    assert host(fastnn.roll(x, 1)).tolist() == [[8, 1], [2, 3], [4, 5], [6, 7]]
    assert host(fastnn.roll(x, 1, 0)).tolist() == [[7, 8], [1, 2], [3, 4], [5, 6]]
    assert host(x.roll(-1, 0)).tolist() == [[3, 4], [5, 6], [7, 8], [1, 2]]
    assert host(fastnn.roll(x, shifts=(2, 1), dims=(0, 1))).tolist() == [[6, 5], [8, 7], [2, 1], [4, 3]]
    # torch.flip(arange(8).view(2, 2, 2), [0, 1]) -> [[[6, 7], [4, 5]], [[2, 3], [0, 1]]]; flip copies
    f = fastnn.flip(fastnn.arange(8, device=device).view(2, 2, 2), [0, 1])
    assert host(f).tolist() == [[[6, 7], [4, 5]], [[2, 3], [0, 1]]]
    r = fastnn.randn(3, 2, 1, device=device)
    assert fastnn.movedim(r, 1, 0).shape == (2, 3, 1) and r.movedim((1, 2), (0, 1)).shape == (2, 1, 3)
    assert fastnn.randn(3, 4, 1).unflatten(1, (2, 2)).shape == (3, 2, 2, 1)
    assert fastnn.randn(3, 4, 1).unflatten(1, (-1, 2)).shape == (3, 2, 2, 1)
    with pytest.raises(ValueError, match="unflatten"):
        fastnn.randn(3, 4).unflatten(1, (3, 2))
    m = fastnn.randn(2, 3, 4, device=device)
    assert m.mT.shape == (2, 4, 3) and fastnn.t(m[0]).shape == (4, 3) and fastnn.t(m[0, 0]).shape == (4,)
    with pytest.raises(ValueError, match="<= 2 dimensions"):
        m.t()
    with pytest.raises(ValueError, match="mT"):
        m[0, 0].mT
    assert m.swapaxes(0, 2).shape == (4, 3, 2) and m.view_as(fastnn.zeros(4, 6)).shape == (4, 6)
    assert m.contiguous() is m and not m.transpose(0, 1)._data.flags.c_contiguous
    assert m.transpose(0, 1).contiguous()._data.flags.c_contiguous


# ---- in-place methods --------------------------------------------------------------------------------------------
def test_arithmetic_in_place_methods(device):
    x = t([1.0, 2.0, 3.0], device)
    y = t([1.0, 1.0, 1.0], device)
    assert x.add_(y, alpha=2) is x and host(x).tolist() == [3.0, 4.0, 5.0]
    x.sub_(1).mul_(2).div_(4)
    assert host(x).tolist() == [1.0, 1.5, 2.0] and x._version == 4
    x.sub_(y, alpha=0.5)
    assert host(x).tolist() == [0.5, 1.0, 1.5]
    z = t([-7.0, 7.0], device)
    assert host(z.clone().div_(2, rounding_mode="trunc")).tolist() == [-3.0, 3.0]
    assert host(z.clone().div_(2, rounding_mode="floor")).tolist() == [-4.0, 3.0]
    with pytest.raises(ValueError, match="rounding_mode"):
        z.div_(2, rounding_mode="round")
    assert host(z.clamp_(-1, 2)).tolist() == [-1.0, 2.0] and host(z.clip_(max=0)).tolist() == [-1.0, 0.0]
    r = t([-1.0, 2.0], device)
    assert r.relu_() is r and host(r).tolist() == [0.0, 2.0]
    assert host(r.zero_()).tolist() == [0.0, 0.0] and host(r.fill_(3)).tolist() == [3.0, 3.0]
    r.copy_(t([5.0, 6.0], device))
    assert host(r).tolist() == [5.0, 6.0]
    ints = t([1, 2], device)
    with pytest.raises(TypeError):
        ints.add_(0.5)  # PyTorch: result type Float can't be cast to the desired output type Long


def test_in_place_on_tensors_that_require_grad(device):
    w = leaf(np.array([1.0, -2.0]), device)
    for op in (lambda: w.add_(1), lambda: w.mul_(2), lambda: w.clamp_(0), lambda: w.relu_(), lambda: w.normal_(),
               lambda: w.uniform_(), lambda: w.masked_fill_(t([True, False], device), 0.0)):
        with pytest.raises(RuntimeError, match="in-place"):
            op()
    assert host(w.detach()).tolist() == [1.0, -2.0]  # refused before anything was written
    with fastnn.no_grad():  # the optimizer idiom
        w.add_(w.grad if w.grad is not None else t([0.5, 0.5], device), alpha=-1)
        w.clamp_(-1, 1)
    assert host(w.detach()).tolist() == [0.5, -1.0] and w.requires_grad
    # the issue-14 idiom p._data.add_(-lr * grad) works on the detached storage
    p = leaf(np.array([1.0]), device)
    p.detach().add_(-0.1 * t([2.0], device, dtype="float64"))
    assert host(p.detach()).tolist() == [0.8]


def test_in_place_random_fills(device):
    x = fastnn.empty(20000, device=device)
    assert x.normal_(2.0, 0.5) is x and x.dtype == np.float32
    assert abs(host(x).mean() - 2.0) < 0.02 and abs(host(x).std() - 0.5) < 0.02
    x.uniform_(-1, 3)
    assert host(x).min() >= -1 and host(x).max() < 3 and abs(host(x).mean() - 1.0) < 0.05
    x.uniform_(**{"from": 5, "to": 6})  # PyTorch's keyword names
    assert host(x).min() >= 5 and host(x).max() < 6
    x.exponential_(4.0)
    assert host(x).min() >= 0 and abs(host(x).mean() - 0.25) < 0.01
    x.bernoulli_(0.3)
    assert set(np.unique(host(x)).tolist()) == {0.0, 1.0} and abs(host(x).mean() - 0.3) < 0.02
    p = fastnn.full((20000,), 0.8, device=device)
    assert abs(host(fastnn.zeros(20000, device=device).bernoulli_(p)).mean() - 0.8) < 0.02
    fastnn.manual_seed(7)
    a = host(fastnn.empty(5, device=device).normal_())
    fastnn.manual_seed(7)
    assert host(fastnn.empty(5, device=device).normal_()).tolist() == a.tolist()
    g1 = host(fastnn.empty(3, device=device).uniform_(generator=np.random.default_rng(2)))
    assert g1.tolist() == host(fastnn.empty(3, device=device).uniform_(generator=np.random.default_rng(2))).tolist()
    with pytest.raises(ValueError, match="std"):
        x.normal_(0, -1)
    with pytest.raises(ValueError, match="from <= to"):
        x.uniform_(2, 1)
    with pytest.raises(ValueError, match="lambd"):
        x.exponential_(0)
    with pytest.raises(ValueError, match="0 <= p <= 1"):
        x.bernoulli_(1.5)
    with pytest.raises(TypeError, match="floating"):
        fastnn.zeros(3, dtype="int64", device=device).normal_()


def test_conversion_methods(device):
    x = t([[1.5, 2.5]], device)
    assert x.type_as(t([1], device)).dtype == np.int64 and x.type_as(x) is x
    c = x.clone()
    c[0, 0] = 9.0
    assert host(x)[0, 0] == 1.5 and c._version == 1
    assert x[0, 1].item() == 2.5 and isinstance(x[0, 1].item(), float) and x.tolist() == [[1.5, 2.5]]
    assert t([3], device).item() == 3 and isinstance(t([3], device).item(), int)
    with pytest.raises(ValueError, match="one element"):
        x.item()


def test_element_wise_in_place_methods_equal_their_ops(device):
    a = np.array([[0.3, -1.2], [2.5, 0.7]])
    cases = {"abs_": (), "neg_": (), "exp_": (), "sigmoid_": (), "tanh_": (), "floor_": (), "ceil_": (),
             "round_": (), "trunc_": (), "sign_": (), "reciprocal_": (), "square_": (), "pow_": (2,),
             "fmod_": (0.5,), "remainder_": (0.5,), "tril_": (), "triu_": (1,)}
    for name, args in cases.items():
        x = t(a, device)
        expected = host(getattr(x, name[:-1])(*args))
        assert getattr(x, name)(*args) is x and x._version == 1, name
        np.testing.assert_array_equal(host(x), expected, err_msg=name)
    x = t(np.abs(a), device)
    x.sqrt_().log_()
    np.testing.assert_allclose(host(x), np.log(np.sqrt(np.abs(a))))
    y = t(a, device)
    y.lerp_(t(np.ones((2, 2)), device), 0.5)
    np.testing.assert_allclose(host(y), (a + 1) / 2)


def test_meshgrid_broadcast_and_stacking(device):
    # torch.meshgrid(tensor([1, 2, 3]), tensor([4, 5, 6]), indexing='ij')
    x, y = t([1, 2, 3], device), t([4, 5, 6], device)
    gx, gy = fastnn.meshgrid(x, y, indexing="ij")
    assert host(gx).tolist() == [[1, 1, 1], [2, 2, 2], [3, 3, 3]] and host(gy).tolist() == [[4, 5, 6]] * 3
    gx, gy = fastnn.meshgrid([x, t([7, 8], device)], indexing="xy")  # Cartesian: shape (len(y), len(x))
    assert host(gx).tolist() == [[1, 2, 3]] * 2 and host(gy).tolist() == [[7, 7, 7], [8, 8, 8]]
    a, b = fastnn.broadcast_tensors(x, t([[0], [10]], device))
    assert a.shape == b.shape == (2, 3) and host(b).tolist() == [[0, 0, 0], [10, 10, 10]]
    assert x.broadcast_to((2, 3)).shape == (2, 3) and fastnn.broadcast_to(x, (1, 3)).shape == (1, 3)
    with pytest.raises(ValueError, match="broadcast"):
        fastnn.broadcast_tensors(x, t([1, 2], device))
    assert host(fastnn.hstack([x, y])).tolist() == [1, 2, 3, 4, 5, 6]
    assert host(fastnn.vstack([x, y])).tolist() == [[1, 2, 3], [4, 5, 6]]
    assert host(fastnn.column_stack([x, y])).tolist() == [[1, 4], [2, 5], [3, 6]]
    m = leaf(np.arange(6.0).reshape(2, 3), device)
    assert gradcheck(lambda v: fastnn.hstack([v, v * 2]), [m]) and gradcheck(lambda v: fastnn.meshgrid(v[0], v[1])[0]
                                                                              * 1.0, [m])


def test_introspection_methods(device):
    x = fastnn.ones(2, 3, device=device)
    assert x.stride() == (3, 1) and x.t().stride() == (1, 3) and x.stride(0) == 3
    assert x.is_contiguous() and not x.t().is_contiguous() and x.t().contiguous().is_contiguous()
    assert x.is_floating_point() and not t([1], device).is_floating_point() and fastnn.is_floating_point(x)
    assert x.element_size() == 4 and x.double().element_size() == 8 and x.nelement() == 6 and x.ndimension() == 2
    assert fastnn.is_tensor(x) and not fastnn.is_tensor(np.ones(2)) and fastnn.numel(x) == 6

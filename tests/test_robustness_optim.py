"""Issue 11, optimizers: a kernel never trusts a size, dtype, layout or device it did not check.

PyTorch facts written into these tests: assigning a gradient of another dtype or size raises RuntimeError
("assigned grad has data of a different type" / "... different size"); an in-place edit of a parameter between
forward and backward (an optimizer step) makes backward raise "one of the variables needed for gradient
computation has been modified by an inplace operation".
"""
import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

import fastnn
from fastnn import nn, optim

OPTIMIZERS = [
    lambda ps: optim.SGD(ps, lr=0.1, momentum=0.9),
    lambda ps: optim.Adam(ps, lr=0.1),
    lambda ps: optim.Adam(ps, lr=0.1, amsgrad=True),
    lambda ps: optim.AdamW(ps, lr=0.1),
    lambda ps: optim.Adagrad(ps, lr=0.1),
    lambda ps: optim.RMSprop(ps, lr=0.1, momentum=0.9, centered=True),
    lambda ps: optim.NAdam(ps, lr=0.1),
]


def _stepped(make):
    p = nn.Parameter(fastnn.ones(10, 5))
    opt = make([p])
    p.grad = fastnn.ones(10, 5)
    opt.step()
    return p, opt


@pytest.mark.parametrize("make", OPTIMIZERS)
def test_data_replaced_by_another_size_after_first_step_raises(make):
    p, opt = _stepped(make)
    if not opt.state[p] or all(not hasattr(v, "shape") or v.size == 0 for v in opt.state[p].values()):
        pytest.skip("this optimizer keeps no per-element state")
    p._data = np.zeros(20_000, np.float32)
    p._grad = fastnn.ones(20_000)  # as a user's loss.backward() on the new data would leave it
    with pytest.raises(RuntimeError, match=r"state .* has shape \(10, 5\) but its parameter now has shape \(20000,\)"):
        opt.step()
    assert np.all(p.detach().numpy() == 0)  # nothing was written


@pytest.mark.parametrize("make", OPTIMIZERS)
def test_read_only_parameter_is_a_clear_error(make):
    p, opt = _stepped(make)
    p._data.setflags(write=False)
    with pytest.raises(ValueError, match="read-only"):
        opt.step()


def test_big_endian_arrays_are_converted_on_creation_and_refused_when_assigned():
    big = np.arange(4, dtype=">f4")
    t = fastnn.tensor(big)
    assert t.dtype == np.float32 and t.dtype.isnative
    np.testing.assert_array_equal(t.numpy(), [0, 1, 2, 3])
    p = nn.Parameter(fastnn.ones(4))
    opt = optim.SGD([p], lr=0.1)
    p._data = big.copy()
    p._grad = fastnn.Tensor._wrap(np.ones(4, ">f4"), p._backend)
    with pytest.raises(TypeError, match="byte order"):
        opt.step()


def test_gradient_of_another_dtype_or_size_is_refused_on_assignment():
    p = nn.Parameter(fastnn.ones(3))
    with pytest.raises(RuntimeError, match="different type"):
        p.grad = fastnn.ones(3, dtype=fastnn.float64)
    with pytest.raises(RuntimeError, match="different size"):
        p.grad = fastnn.ones(4)
    with pytest.raises(TypeError, match="Tensor or None"):
        p.grad = np.ones(3, np.float32)


def test_optimizer_step_between_forward_and_backward_is_detected():
    # The second layer's input requires grad, so its backward reads its weight (as PyTorch's addmm saves mat2 then);
    # an optimizer step in between changes that weight. (A first layer whose input needs no gradient saves only the
    # input, and stepping it is harmless in PyTorch and here.)
    first, second = nn.Linear(3, 4), nn.Linear(4, 2)
    opt = optim.SGD(second.parameters(), lr=0.1)
    loss = (second(first(fastnn.ones(5, 3))) ** 2).sum()
    for p in second.parameters():
        p.grad = fastnn.ones_like(p)
    opt.step()
    with pytest.raises(RuntimeError, match="modified by an inplace operation"):
        loss.backward()


@settings(max_examples=25, deadline=None)
@given(first=st.lists(st.integers(1, 6), min_size=1, max_size=3), second=st.lists(st.integers(1, 6), min_size=1,
       max_size=3), which=st.integers(0, len(OPTIMIZERS) - 1))
def test_random_shape_changes_never_reach_a_kernel(first, second, which):
    p = nn.Parameter(fastnn.ones(*first))
    opt = OPTIMIZERS[which]([p])
    p.grad = fastnn.ones(*first)
    opt.step()
    p._data = np.ones(second, np.float32)
    p._grad = fastnn.ones(*second)
    if tuple(first) == tuple(second):
        opt.step()
        assert np.isfinite(p.detach().numpy()).all()
    else:
        has_state = any(hasattr(v, "shape") and v.size for v in opt.state[p].values())
        if has_state:
            with pytest.raises(RuntimeError, match="state"):
                opt.step()
        else:
            opt.step()

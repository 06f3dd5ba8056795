"""Tensor.register_hook / register_post_accumulate_grad_hook: PyTorch's semantics, checked against facts about
PyTorch (each written next to its assertion, as torch 2.x computes it) and, when torch is installed, against it."""
import numpy as np
import pytest

import fastnn
from fastnn import autograd


def leaf(values, device="cpu"):
    return fastnn.tensor(np.array(values, dtype=np.float64), requires_grad=True, device=device)


def test_leaf_hook_replaces_the_gradient_that_is_accumulated(device):
    # PyTorch's documented example: v.register_hook(lambda g: g * 2); v.backward([1, 2, 3]) -> v.grad [2, 4, 6]
    v = leaf([0.0, 0.0, 0.0], device)
    h = v.register_hook(lambda g: g * 2)
    v.backward(fastnn.tensor([1.0, 2.0, 3.0], device=device, dtype=fastnn.float64))
    np.testing.assert_array_equal(v.grad.numpy(), [2.0, 4.0, 6.0])
    h.remove()
    v.grad = None
    v.backward(fastnn.tensor([1.0, 2.0, 3.0], device=device, dtype=fastnn.float64))
    np.testing.assert_array_equal(v.grad.numpy(), [1.0, 2.0, 3.0])


def test_hooks_run_in_registration_order_each_on_the_previous_result():
    x = leaf([1.0, 2.0])
    seen = []
    x.register_hook(lambda g: (seen.append(("first", g.tolist())), g + 1)[1])
    x.register_hook(lambda g: seen.append(("observer", g.tolist())))   # returning None keeps the gradient
    x.register_hook(lambda g: (seen.append(("third", g.tolist())), g * 10)[1])
    (x * x).sum().backward()   # d/dx = 2x = [2, 4]
    assert seen == [("first", [2.0, 4.0]), ("observer", [3.0, 5.0]), ("third", [3.0, 5.0])]
    np.testing.assert_array_equal(x.grad.numpy(), [30.0, 50.0])


def test_a_leaf_used_several_times_sees_its_total_gradient_once():
    # torch: a = [1, 2]; (a*2 + a*3 + a).sum().backward() calls a's hook once, with [6, 6]
    a = leaf([1.0, 2.0])
    calls = []
    a.register_hook(lambda g: calls.append(g.tolist()))
    (a * 2 + a * 3 + a).sum().backward()
    assert calls == [[6.0, 6.0]]
    np.testing.assert_array_equal(a.grad.numpy(), [6.0, 6.0])


def test_non_leaf_hook_changes_what_flows_below_and_what_retain_grad_keeps():
    # torch 2.x: z = [1, 2]; w = z * 3; w.register_hook(lambda g: g + 1); w.retain_grad(); (w * w).sum().backward()
    # -> w.grad [7, 13] (retain_grad sees the hooked gradient), z.grad [21, 39]
    z = leaf([1.0, 2.0])
    w = z * 3
    assert not w.is_leaf and z.is_leaf
    w.register_hook(lambda g: g + 1)
    w.retain_grad()
    assert w.retains_grad and not z.retains_grad
    (w * w).sum().backward()
    np.testing.assert_array_equal(w.grad.numpy(), [7.0, 13.0])
    np.testing.assert_array_equal(z.grad.numpy(), [21.0, 39.0])


def test_autograd_grad_runs_hooks_and_leaves_grad_and_post_hooks_alone():
    # torch 2.x: hooks on a leaf or non-leaf input of autograd.grad change the gradient it returns:
    # x = [1, 2]; x.register_hook(g * 2): grad((x*x).sum(), x) -> [4, 8], x.grad stays None, no post hook;
    # w = x * 3 with hook g * 2: grad((w*w).sum(), w) -> [12, 24]. A hooked leaf that is not an input: not called.
    x = leaf([1.0, 2.0])
    x.register_hook(lambda g: g * 2)
    posts = []
    x.register_post_accumulate_grad_hook(posts.append)
    (gx,) = autograd.grad((x * x).sum(), x)
    np.testing.assert_array_equal(gx.numpy(), [4.0, 8.0])
    assert x.grad is None and posts == []
    w = leaf([1.0, 2.0]) * 3
    w.register_hook(lambda g: g * 2)
    (gw,) = autograd.grad((w * w).sum(), w)
    np.testing.assert_array_equal(gw.numpy(), [12.0, 24.0])
    y, z = leaf([1.0, 2.0]), leaf([5.0, 6.0])
    calls = []
    y.register_hook(calls.append)
    (gz,) = autograd.grad((x * y).sum() + z.sum(), z)
    assert calls == [] and gz.tolist() == [1.0, 1.0]


def test_hooks_run_on_every_backward_through_a_retained_graph():
    x = leaf([1.0, 2.0, 3.0])
    calls = []
    x.register_hook(lambda g: calls.append(g.tolist()))
    y = (x ** 2).sum()
    y.backward(retain_graph=True)
    y.backward()
    assert calls == [[2.0, 4.0, 6.0]] * 2
    np.testing.assert_array_equal(x.grad.numpy(), [4.0, 8.0, 12.0])


def test_post_accumulate_hook_sees_the_accumulated_grad_after_the_tensor_hooks():
    p = leaf([1.0, -1.0])
    p.grad = fastnn.tensor([10.0, 10.0], dtype=fastnn.float64)   # accumulation onto an existing .grad
    log = []
    p.register_hook(lambda g: (log.append(("hook", g.tolist())), g * 2)[1])
    p.register_post_accumulate_grad_hook(lambda t: log.append(("post1", t.grad.tolist())))
    p.register_post_accumulate_grad_hook(lambda t: log.append(("post2", t.grad.tolist())))
    (p * p).sum().backward()   # d/dp = 2p = [2, -2], doubled by the hook, added to [10, 10]
    assert log == [("hook", [2.0, -2.0]), ("post1", [14.0, 6.0]), ("post2", [14.0, 6.0])]


def test_post_accumulate_hook_runs_in_no_grad_mode_and_can_step_the_parameter():
    # PyTorch's documented example: v = [0, 0, 0]; hook p.add_(p.grad, alpha=-0.01); v.backward([1, 2, 3])
    # -> v = [-0.01, -0.02, -0.03]
    v = leaf([0.0, 0.0, 0.0])
    h = v.register_post_accumulate_grad_hook(lambda p: p.add_(p.grad, alpha=-0.01))
    v.backward(fastnn.tensor([1.0, 2.0, 3.0], dtype=fastnn.float64))
    np.testing.assert_allclose(v.detach().numpy(), [-0.01, -0.02, -0.03], rtol=0, atol=1e-15)
    h.remove()
    v.backward(fastnn.tensor([1.0, 2.0, 3.0], dtype=fastnn.float64))
    np.testing.assert_allclose(v.detach().numpy(), [-0.01, -0.02, -0.03], rtol=0, atol=1e-15)


def test_post_hook_fires_once_a_leaf_is_complete_not_at_the_end_of_backward():
    # The DDP overlap relies on it: a layer's weight is complete before the layers below it are differentiated.
    x = leaf([[1.0, 2.0]])
    w1, w2 = leaf([[1.0], [2.0]]), leaf([[3.0]])
    order = []
    w2.register_post_accumulate_grad_hook(lambda t: order.append("w2"))
    w1.register_post_accumulate_grad_hook(lambda t: order.append("w1"))
    x.register_post_accumulate_grad_hook(lambda t: order.append("x"))
    a = x.exp()
    a.register_hook(lambda g: order.append("below w1"))
    ((a @ w1) @ w2).sum().backward()
    assert order == ["w2", "w1", "below w1", "x"]


def test_errors_are_pytorchs():
    # torch's messages, word for word
    with pytest.raises(RuntimeError, match="cannot register a hook on a tensor that doesn't require gradient"):
        fastnn.ones(2).register_hook(lambda g: None)
    with pytest.raises(RuntimeError, match="cannot register a hook on a tensor that doesn't require gradient"):
        fastnn.ones(2).register_post_accumulate_grad_hook(lambda t: None)
    with pytest.raises(RuntimeError, match="post accumulate grad hooks cannot be registered on non-leaf tensors"):
        (leaf([1.0]) * 2).register_post_accumulate_grad_hook(lambda t: None)
    b = leaf([1.0, 2.0])
    b.register_hook(lambda g: fastnn.ones(3, dtype=fastnn.float64))
    with pytest.raises(RuntimeError, match="has changed the size of value"):
        (b * 2).sum().backward()
    c = leaf([1.0, 2.0])
    c.register_hook(lambda g: g.float())
    with pytest.raises(RuntimeError, match="has changed the type of value"):
        (c * 2).sum().backward()
    with pytest.raises(TypeError, match="hook must be callable"):
        leaf([1.0]).register_hook(3)


def test_matches_torch_on_a_small_network():
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(0)
    xs, ws = rng.normal(size=(4, 3)), rng.normal(size=(3, 2))

    def run(lib, make):
        x, w = make(xs), make(ws)
        h = (x @ w).tanh()
        h.register_hook(lambda g: g * g)
        w.register_hook(lambda g: g - 1)
        h.retain_grad()
        (h * h).sum().backward()
        return x.grad.detach().numpy(), w.grad.detach().numpy(), h.grad.detach().numpy()

    ours = run(fastnn, lambda a: leaf(a))
    theirs = run(torch, lambda a: torch.tensor(a, requires_grad=True))
    for a, b in zip(ours, theirs):
        np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-12)

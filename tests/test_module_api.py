"""Module API and containers with PyTorch's semantics (issue 14): ParameterList/ParameterDict/ModuleDict,
apply, buffers, hooks (forward, full backward), submodules, grad switches, dtype/device moves,
parameters_to_vector/vector_to_parameters, weight_norm and spectral_norm (state_dict layouts written as facts
from PyTorch)."""
import numpy as np
import pytest

import fastnn
from fastnn import nn
from fastnn.autograd import gradcheck
from conftest import host


def shapes(module):
    return {k: tuple(v.shape) for k, v in module.state_dict().items()}


# ---- containers ---------------------------------------------------------------------------------------------
class Holder(nn.Module):
    def __init__(self):
        super().__init__()
        self.plist = nn.ParameterList([nn.Parameter(np.zeros((2, 3), np.float32)), fastnn.ones(4)])
        self.pdict = nn.ParameterDict({"scale": nn.Parameter(np.ones(1, np.float32))})
        self.layers = nn.ModuleDict({"fc": nn.Linear(3, 2), "act": nn.ReLU()})
        self.register_buffer("steps", fastnn.zeros(()))
        self.register_buffer("mask", fastnn.ones(3), persistent=False)


def test_containers_state_dict_layout_as_pytorch():
    m = Holder()
    # PyTorch: the same module gives these keys, in this order, with these shapes
    assert shapes(m) == {"steps": (), "plist.0": (2, 3), "plist.1": (4,), "pdict.scale": (1,),
                         "layers.fc.weight": (2, 3), "layers.fc.bias": (2,)}
    assert list(m.state_dict()) == ["steps", "plist.0", "plist.1", "pdict.scale", "layers.fc.weight",
                                    "layers.fc.bias"]
    # a plain Tensor becomes a Parameter; the non-persistent buffer is a buffer but not saved
    assert isinstance(m.plist[1], nn.Parameter) and m.plist[1].requires_grad
    assert [n for n, _ in m.named_buffers()] == ["steps", "mask"]
    assert len(list(m.parameters())) == 5
    m2 = Holder()
    with fastnn.no_grad():
        m.plist[0].fill_(7)
    m2.load_state_dict(m.state_dict())
    assert host(m2.plist[0]).sum() == 42


def test_parameter_list_and_dict_behaviour():
    pl = nn.ParameterList()
    pl.append(nn.Parameter(np.ones(2, np.float32))).extend([fastnn.zeros(3)])
    pl += [fastnn.zeros(1)]
    assert len(pl) == 3 and pl[-1].shape == (1,) and [p.shape for p in pl] == [(2,), (3,), (1,)]
    assert len(pl[1:]) == 2
    pl[0] = fastnn.zeros(5)
    assert pl[0].shape == (5,) and isinstance(pl[0], nn.Parameter)
    with pytest.raises(IndexError, match="out of range"):
        pl[3]
    with pytest.raises(TypeError, match="Parameters or Tensors"):
        pl.append(3.0)
    pd = nn.ParameterDict()
    pd["a"] = fastnn.zeros(2)
    pd.update({"b": nn.Parameter(np.ones(1, np.float32))})
    assert list(pd) == ["a", "b"] and "a" in pd and pd.get("c") is None
    assert isinstance(pd["a"], nn.Parameter)
    assert pd.pop("a").shape == (2,) and list(pd.keys()) == ["b"]
    md = nn.ModuleDict({"x": nn.Linear(1, 1)})
    md.update({"y": nn.ReLU()})
    assert list(md) == ["x", "y"] and isinstance(md.pop("y"), nn.ReLU) and len(md) == 1


# ---- traversal, switches, dtype ---------------------------------------------------------------------------
def test_apply_get_submodule_requires_grad_zero_grad():
    net = nn.Sequential(nn.Linear(3, 4), nn.ReLU(), nn.Sequential(nn.Linear(4, 2)))
    seen = []
    net.apply(lambda m: seen.append(type(m).__name__))
    # PyTorch's order: children first (depth-first), then the module itself
    assert seen == ["Linear", "ReLU", "Linear", "Sequential", "Sequential"]
    with fastnn.no_grad():
        net.apply(lambda m: isinstance(m, nn.Linear) and m.weight.fill_(0.5))
    assert host(net[0].weight).tolist() == [[0.5] * 3] * 4
    assert net.get_submodule("2.0") is net[2][0] and net.get_submodule("") is net
    with pytest.raises(AttributeError, match="no submodule '5'"):
        net.get_submodule("2.5")
    net(fastnn.randn(2, 3)).sum().backward()
    net.zero_grad(set_to_none=False)
    assert all(host(p.grad).sum() == 0 for p in net.parameters())
    net.zero_grad()
    assert all(p.grad is None for p in net.parameters())
    net.requires_grad_(False)
    assert not any(p.requires_grad for p in net.parameters())


def test_half_double_float_and_to(device):
    m = Holder()
    m.register_buffer("count", fastnn.tensor(np.array(3)))
    assert m.half().plist[0].dtype == np.float16 and m.steps.dtype == np.float16
    assert m.count.dtype == np.int64  # integer buffers keep their dtype, as in PyTorch
    assert m.double().layers.fc.weight.dtype == np.float64
    assert m.float().pdict["scale"].dtype == np.float32
    m.to(device)
    assert all(p.device == device for p in m.parameters())
    assert m.layers.fc(fastnn.ones(1, 3, device=device)).device == device


# ---- hooks ----------------------------------------------------------------------------------------------------
def test_forward_hooks():
    lin = nn.Linear(2, 2)
    calls = []
    h1 = lin.register_forward_pre_hook(lambda m, args: (args[0] * 2,))
    h2 = lin.register_forward_hook(lambda m, args, out: calls.append(host(args[0]).tolist()) or out + 1)
    x = fastnn.ones(1, 2)
    out = lin(x)
    assert calls == [[[2.0, 2.0]]]
    np.testing.assert_allclose(host(out), host(x * 2) @ host(lin.weight).T + host(lin.bias) + 1, rtol=1e-6)
    h1.remove(), h2.remove()
    np.testing.assert_allclose(host(lin(x)), host(x) @ host(lin.weight).T + host(lin.bias), rtol=1e-6)


def test_full_backward_hook_grad_input_and_output(device):
    lin = nn.Linear(3, 2).double().to(device)
    record = []
    handle = lin.register_full_backward_hook(lambda m, gi, go: record.append((m, gi, go)))
    x = fastnn.tensor(np.random.default_rng(0).standard_normal((4, 3)), requires_grad=True, device=device)
    w = np.random.default_rng(1).standard_normal((4, 2))
    (lin(x) * fastnn.tensor(w, device=device)).sum().backward()
    (m, grad_input, grad_output), = record
    assert m is lin and len(grad_input) == 1 and len(grad_output) == 1
    np.testing.assert_allclose(host(grad_output[0]), w)
    np.testing.assert_allclose(host(grad_input[0]), w @ host(lin.weight), rtol=1e-12)
    np.testing.assert_allclose(host(x.grad), w @ host(lin.weight), rtol=1e-12)
    # through a retained graph the hook fires once per backward
    record.clear()
    y = lin(x).sum()
    y.backward(retain_graph=True)
    y.backward()
    assert len(record) == 2
    # a hook's return replaces grad_input
    handle.remove()
    lin.register_full_backward_hook(lambda m, gi, go: (gi[0] * 0 + 1,))
    x.grad = None
    lin(x).sum().backward()
    np.testing.assert_array_equal(host(x.grad), np.ones((4, 3)))
    # an input that does not require grad: the hook still sees grad_output, with grad_input (None,)
    seen = []
    lin2 = nn.Linear(3, 2)
    lin2.register_full_backward_hook(lambda m, gi, go: seen.append((gi, host(go[0]).shape)))
    lin2(fastnn.ones(5, 3)).sum().backward()
    assert seen == [((None,), (5, 2))]


def test_full_backward_hook_on_a_container_sees_its_boundary():
    net = nn.Sequential(nn.Linear(2, 3), nn.Tanh(), nn.Linear(3, 1)).double()
    grads = {}
    net[1].register_full_backward_hook(lambda m, gi, go: grads.update(gi=host(gi[0]), go=host(go[0])))
    x = fastnn.tensor(np.array([[0.3, -0.2]]), requires_grad=True)
    net(x).sum().backward()
    h = host(net[0](x))
    # Tanh: grad_input = grad_output * (1 - tanh(h)^2), grad_output = the last layer's weight row
    np.testing.assert_allclose(grads["go"], host(net[2].weight))
    np.testing.assert_allclose(grads["gi"], grads["go"] * (1 - np.tanh(h) ** 2), rtol=1e-12)


# ---- parameters_to_vector / vector_to_parameters -----------------------------------------------------------
def test_parameters_to_vector_round_trip(device):
    net = nn.Sequential(nn.Linear(3, 2), nn.Linear(2, 1)).to(device)
    vec = nn.utils.parameters_to_vector(net.parameters())
    assert vec.shape == (6 + 2 + 2 + 1,)
    np.testing.assert_array_equal(host(vec)[:6], host(net[0].weight).ravel())
    new = fastnn.arange(11, dtype=fastnn.float32, device=device)
    nn.utils.vector_to_parameters(new, net.parameters())
    assert host(net[0].bias).tolist() == [6.0, 7.0] and host(net[1].weight).tolist() == [[8.0, 9.0]]
    np.testing.assert_array_equal(host(nn.utils.parameters_to_vector(net.parameters())), np.arange(11))
    # differentiable: d(sum(v * c))/dp = c, split back per parameter
    vec = nn.utils.parameters_to_vector(net.parameters())
    (vec * fastnn.arange(11, dtype=fastnn.float32, device=device)).sum().backward()
    assert host(net[1].bias.grad).tolist() == [10.0]
    with pytest.raises(ValueError, match="11 elements"):
        nn.utils.vector_to_parameters(fastnn.zeros(10, device=device), net.parameters())
    with pytest.raises(TypeError, match="expected torch.Tensor"):
        nn.utils.vector_to_parameters([0.0] * 11, net.parameters())


# ---- weight_norm / spectral_norm ----------------------------------------------------------------------------
def test_weight_norm_layout_values_and_gradients(device):
    lin = nn.Linear(3, 2).double().to(device)
    w0 = host(lin.weight).copy()
    x = fastnn.tensor(np.random.default_rng(0).standard_normal((4, 3)), device=device)
    before = host(lin(x))
    nn.utils.weight_norm(lin)
    # PyTorch: Linear(3, 2) -> bias (2,), weight_g (2, 1), weight_v (2, 3), in this order
    assert shapes(lin) == {"bias": (2,), "weight_g": (2, 1), "weight_v": (2, 3)}
    assert list(lin.state_dict()) == ["bias", "weight_g", "weight_v"]
    np.testing.assert_allclose(host(lin.weight_g)[:, 0], np.linalg.norm(w0, axis=1), rtol=1e-12)
    np.testing.assert_allclose(host(lin(x)), before, rtol=1e-12)
    with fastnn.no_grad():
        lin.weight_g.mul_(2.0)
    np.testing.assert_allclose(host(lin(x)), 2 * (before - host(lin.bias)) + host(lin.bias), rtol=1e-12)
    assert gradcheck(lambda g, v: lin(x), [lin.weight_g, lin.weight_v])
    conv = nn.utils.weight_norm(nn.Conv2d(2, 4, 3))
    assert shapes(conv) == {"bias": (4,), "weight_g": (4, 1, 1, 1), "weight_v": (4, 2, 3, 3)}
    whole = nn.utils.weight_norm(nn.Linear(3, 2), dim=None)
    assert whole.weight_g.shape == ()
    np.testing.assert_allclose(host(whole.weight_g), np.linalg.norm(host(whole.weight_v)), rtol=1e-6)
    nn.utils.remove_weight_norm(lin)
    assert list(lin.state_dict()) == ["bias", "weight"] and isinstance(lin.weight, nn.Parameter)
    np.testing.assert_allclose(host(lin.weight), 2 * w0, rtol=1e-12)
    with pytest.raises(RuntimeError, match="two weight_norm hooks"):
        nn.utils.weight_norm(conv)


def test_spectral_norm_layout_power_iteration_and_gradients(device):
    lin = nn.Linear(4, 3).double().to(device)
    nn.utils.spectral_norm(lin)
    # PyTorch: bias, weight_orig, weight_u (out,), weight_v (in,)
    assert list(lin.state_dict()) == ["bias", "weight_orig", "weight_u", "weight_v"]
    assert shapes(lin) == {"bias": (3,), "weight_orig": (3, 4), "weight_u": (3,), "weight_v": (4,)}
    assert [n for n, _ in lin.named_parameters()] == ["bias", "weight_orig"]
    w, u0 = host(lin.weight_orig), host(lin.weight_u).copy()
    x = fastnn.tensor(np.ones((1, 4)), device=device)
    lin(x)
    # one power-iteration step, by PyTorch's formulas
    v1 = w.T @ u0 / np.linalg.norm(w.T @ u0)
    u1 = w @ v1 / np.linalg.norm(w @ v1)
    np.testing.assert_allclose(host(lin.weight_v), v1, rtol=1e-12)
    np.testing.assert_allclose(host(lin.weight_u), u1, rtol=1e-12)
    np.testing.assert_allclose(host(lin.weight), w / (u1 @ w @ v1), rtol=1e-12)
    for _ in range(50):
        lin(x)
    np.testing.assert_allclose(np.linalg.svd(host(lin.weight), compute_uv=False)[0], 1.0, rtol=1e-8)
    lin.eval()
    u_frozen = host(lin.weight_u).copy()
    lin(x)
    np.testing.assert_array_equal(host(lin.weight_u), u_frozen)
    assert gradcheck(lambda w_: lin(x), [lin.weight_orig])
    conv_t = nn.utils.spectral_norm(nn.ConvTranspose2d(2, 5, 3))  # dim=1: rows are the out channels
    assert shapes(conv_t) == {"bias": (5,), "weight_orig": (2, 5, 3, 3), "weight_u": (5,), "weight_v": (18,)}
    conv = nn.utils.spectral_norm(nn.Conv2d(2, 5, 3), n_power_iterations=3)
    assert shapes(conv)["weight_u"] == (5,) and shapes(conv)["weight_v"] == (18,)
    nn.utils.remove_spectral_norm(lin)
    assert list(lin.state_dict()) == ["bias", "weight"]
    with pytest.raises(ValueError, match="n_power_iterations"):
        nn.utils.spectral_norm(nn.Linear(2, 2), n_power_iterations=0)


def test_reparametrized_conv_and_batchnorm_forward_use_the_computed_weight():
    # weight_norm, pruning and parametrizations replace the registered `weight`/`bias` by a computed attribute, as
    # in PyTorch; the layers' forwards must read that attribute, never the parameter registry directly.
    from fastnn.nn import functional as F
    from fastnn.nn.utils import parametrizations, prune, weight_norm
    fastnn.manual_seed(0)
    x = fastnn.randn(2, 3, 6, 6)
    for reparametrize in (lambda m: weight_norm(m), lambda m: parametrizations.weight_norm(m),
                          lambda m: prune.l1_unstructured(m, "weight", amount=0.5),
                          lambda m: prune.l1_unstructured(m, "bias", amount=0.5)):
        conv = nn.Conv2d(3, 4, 3)
        reparametrize(conv)
        expected = F.conv2d(x, conv.weight, conv.bias)
        np.testing.assert_allclose(conv(x).detach().numpy(), expected.detach().numpy(), rtol=1e-6, atol=1e-6)
    conv = nn.Conv2d(3, 4, 3)
    prune.l1_unstructured(conv, "weight", amount=0.5)
    assert (conv.weight.detach().numpy() == 0).sum() == conv.weight.numel() // 2
    bn = nn.BatchNorm2d(3).eval()
    with fastnn.no_grad():
        bn.weight.copy_(fastnn.tensor([0.5, -2.0, 3.0]))
    prune.l1_unstructured(bn, "weight", amount=1)  # the smallest |weight|, channel 0, is zeroed
    out = bn(x).detach().numpy()
    np.testing.assert_array_equal(out[:, 0], 0.0)
    np.testing.assert_allclose(out[:, 1], -2.0 * x.numpy()[:, 1] / np.sqrt(1 + 1e-5), rtol=1e-5, atol=1e-6)

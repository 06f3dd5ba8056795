"""nn.Module: registration and traversal order, train/eval, state_dict round trips and strict loading, repr,
default initialisation, zero_grad, containers and simple layers."""
import math
from collections import OrderedDict

import numpy as np
import pytest

import fastnn
from fastnn import nn


class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc1 = nn.Linear(4, 3)
        self.act = nn.ReLU()
        self.block = nn.Sequential(nn.Linear(3, 3), nn.Tanh())
        self.head = nn.Linear(3, 2, bias=False)
        self.register_buffer("running", fastnn.zeros(2))
        self.register_buffer("scratch", fastnn.zeros(1), persistent=False)

    def forward(self, x):
        return self.head(self.block(self.act(self.fc1(x))))


PARAM_NAMES = ["fc1.weight", "fc1.bias", "block.0.weight", "block.0.bias", "head.weight"]
STATE_KEYS = ["running"] + PARAM_NAMES


def test_named_parameters_order_and_shapes():
    net = Net()
    named = list(net.named_parameters())
    assert [n for n, _ in named] == PARAM_NAMES
    assert [tuple(p.shape) for _, p in named] == [(3, 4), (3,), (3, 3), (3,), (2, 3)]
    assert all(isinstance(p, nn.Parameter) and p.requires_grad and p.is_leaf for _, p in named)
    assert [id(p) for p in net.parameters()] == [id(p) for _, p in named]
    assert [n for n, _ in net.named_parameters(recurse=False)] == []
    assert [n for n, _ in net.named_parameters(prefix="model")] == ["model." + n for n in PARAM_NAMES]
    assert [n for n, _ in net.named_buffers()] == ["running", "scratch"]


def test_children_and_modules_order():
    net = Net()
    assert [type(m).__name__ for m in net.children()] == ["Linear", "ReLU", "Sequential", "Linear"]
    assert [n for n, _ in net.named_children()] == ["fc1", "act", "block", "head"]
    assert [n for n, _ in net.named_modules()] == ["", "fc1", "act", "block", "block.0", "block.1", "head"]
    assert [type(m).__name__ for m in net.modules()] == ["Net", "Linear", "ReLU", "Sequential", "Linear", "Tanh",
                                                         "Linear"]
    assert net.get_submodule("block.0") is net.block[0]


def test_shared_parameters_and_modules_counted_once():
    shared = nn.Linear(2, 2)
    seq = nn.Sequential(shared, nn.ReLU(), shared)
    assert len(list(seq.parameters())) == 2
    assert [n for n, _ in seq.named_parameters()] == ["0.weight", "0.bias"]
    assert len(list(seq.modules())) == 3


def test_train_eval_propagates():
    net = Net()
    assert all(m.training for m in net.modules())
    assert net.eval() is net
    assert not any(m.training for m in net.modules())
    net.train()
    assert all(m.training for m in net.modules())
    net.block.eval()
    assert net.training and not net.block.training and not net.block[1].training and net.fc1.training
    with pytest.raises(ValueError, match="boolean"):
        net.train("yes")


def test_state_dict_keys_values_and_detach():
    net = Net()
    state = net.state_dict()
    assert list(state) == STATE_KEYS  # own tensors first, then children depth-first; no non-persistent buffers
    for key, value in state.items():
        assert not value.requires_grad
    np.testing.assert_array_equal(state["fc1.weight"].numpy(), net.fc1.weight._data)


def test_state_dict_round_trip_restores_exactly():
    fastnn.manual_seed(1)
    source = Net()
    with fastnn.no_grad():
        source.running.copy_(fastnn.tensor([0.25, -4.0]))
    fastnn.manual_seed(2)
    target = Net()
    assert not np.array_equal(source.fc1.weight._data, target.fc1.weight._data)
    result = target.load_state_dict(source.state_dict())
    assert result.missing_keys == [] and result.unexpected_keys == []
    for key in STATE_KEYS:
        np.testing.assert_array_equal(target.state_dict()[key].numpy(), source.state_dict()[key].numpy())
    x = fastnn.randn(5, 4)
    np.testing.assert_array_equal(target(x).detach().numpy(), source(x).detach().numpy())
    # Loading copies values: the two modules do not share memory afterwards.
    with fastnn.no_grad():
        source.fc1.weight.fill_(0.0)
    assert np.any(target.fc1.weight._data != 0)


def test_load_state_dict_accepts_numpy_arrays():
    net = Net()
    state = {k: np.full(v.shape, 0.5, dtype=np.float32) for k, v in net.state_dict().items()}
    net.load_state_dict(state)
    assert np.all(net.block[0].bias._data == 0.5)


def _snapshot(module):
    return {k: v.numpy().copy() for k, v in module.state_dict().items()}


def _assert_unchanged(module, snapshot):
    now = _snapshot(module)
    assert list(now) == list(snapshot)
    for key in snapshot:
        np.testing.assert_array_equal(now[key], snapshot[key])


def test_strict_load_missing_key():
    net = Net()
    before = _snapshot(net)
    state = {k: fastnn.zeros_like(v) for k, v in net.state_dict().items()}
    del state["block.0.bias"]
    with pytest.raises(RuntimeError, match=r"missing key\(s\): 'block.0.bias'"):
        net.load_state_dict(state)
    _assert_unchanged(net, before)


def test_strict_load_unexpected_key():
    net = Net()
    before = _snapshot(net)
    state = {k: fastnn.zeros_like(v) for k, v in net.state_dict().items()}
    state["fc2.weight"] = fastnn.zeros(1)
    with pytest.raises(RuntimeError, match=r"unexpected key\(s\): 'fc2.weight'"):
        net.load_state_dict(state)
    _assert_unchanged(net, before)


@pytest.mark.parametrize("strict", [True, False])
def test_load_wrong_shape_names_key_and_shapes(strict):
    net = Net()
    before = _snapshot(net)
    state = {k: fastnn.zeros_like(v) for k, v in net.state_dict().items()}
    state["head.weight"] = fastnn.zeros(3, 2)
    with pytest.raises(RuntimeError) as info:
        net.load_state_dict(state, strict=strict)
    message = str(info.value)
    assert "'head.weight'" in message and "(3, 2)" in message and "(2, 3)" in message
    _assert_unchanged(net, before)  # nothing was copied, not even the keys that matched


def test_non_strict_load_reports_missing_and_unexpected():
    net = Net()
    state = OrderedDict((k, fastnn.full_like(v, 2.0)) for k, v in net.state_dict().items() if k != "fc1.bias")
    state["extra.weight"] = fastnn.ones(2)
    before_bias = net.fc1.bias._data.copy()
    result = net.load_state_dict(state, strict=False)
    assert result.missing_keys == ["fc1.bias"]
    assert result.unexpected_keys == ["extra.weight"]
    missing, unexpected = result
    assert missing == ["fc1.bias"] and unexpected == ["extra.weight"]
    np.testing.assert_array_equal(net.fc1.bias._data, before_bias)
    assert np.all(net.fc1.weight._data == 2.0) and np.all(net.running._data == 2.0)


def test_repr_text():
    model = nn.Sequential(nn.Linear(2, 3), nn.ReLU(), nn.Linear(3, 1, bias=False))
    assert repr(model) == (
        "Sequential(\n"
        "  (0): Linear(in_features=2, out_features=3, bias=True)\n"
        "  (1): ReLU()\n"
        "  (2): Linear(in_features=3, out_features=1, bias=False)\n"
        ")")
    assert repr(Net()) == (
        "Net(\n"
        "  (fc1): Linear(in_features=4, out_features=3, bias=True)\n"
        "  (act): ReLU()\n"
        "  (block): Sequential(\n"
        "    (0): Linear(in_features=3, out_features=3, bias=True)\n"
        "    (1): Tanh()\n"
        "  )\n"
        "  (head): Linear(in_features=3, out_features=2, bias=False)\n"
        ")")
    assert repr(nn.Softmax(dim=1)) == "Softmax(dim=1)"
    assert repr(nn.Flatten()) == "Flatten(start_dim=1, end_dim=-1)"
    assert repr(nn.Parameter(fastnn.tensor([1.0]))) == "Parameter containing:\ntensor([1.], requires_grad=True)"


def test_linear_default_init_like_pytorch():
    fan_in = 256
    layer = nn.Linear(fan_in, 128)
    bound = 1 / math.sqrt(fan_in)
    w, b = layer.weight._data, layer.bias._data
    assert w.dtype == np.float32 and w.shape == (128, fan_in) and b.shape == (128,)
    assert np.abs(w).max() <= bound and np.abs(b).max() <= bound
    assert np.abs(w).max() > 0.99 * bound  # fills the whole interval
    assert w.std() == pytest.approx(bound / math.sqrt(3), rel=0.02)
    assert abs(w.mean()) < 0.02 * bound


def test_init_reproducible_with_manual_seed():
    fastnn.manual_seed(42)
    a = nn.Linear(5, 4)
    fastnn.manual_seed(42)
    b = nn.Linear(5, 4)
    np.testing.assert_array_equal(a.weight._data, b.weight._data)
    np.testing.assert_array_equal(a.bias._data, b.bias._data)


def test_linear_forward_and_backward_numbers():
    layer = nn.Linear(2, 2)
    with fastnn.no_grad():
        layer.weight.copy_(fastnn.tensor([[1.0, 2.0], [3.0, 4.0]]))
        layer.bias.copy_(fastnn.tensor([0.5, -0.5]))
    x = fastnn.tensor([[1.0, 1.0], [2.0, 0.0]])
    y = layer(x)
    assert y.tolist() == [[3.5, 6.5], [2.5, 5.5]]
    y.sum().backward()
    assert layer.weight.grad.tolist() == [[3.0, 1.0], [3.0, 1.0]]
    assert layer.bias.grad.tolist() == [2.0, 2.0]
    assert layer(fastnn.tensor([1.0, 0.0])).tolist() == [1.5, 2.5]  # 1-D input
    assert layer(fastnn.ones(3, 4, 2)).shape == (3, 4, 2)


def test_linear_shape_mismatch_names_both_shapes():
    layer = nn.Linear(3, 2)
    with pytest.raises(ValueError, match=r"\(5, 4\).*\(2, 3\)"):
        layer(fastnn.ones(5, 4))
    with pytest.raises(ValueError, match="in_features must be a positive integer"):
        nn.Linear(0, 2)


def test_zero_grad_set_to_none_and_zero_fill():
    net = Net()
    net(fastnn.randn(3, 4)).sum().backward()
    assert all(p.grad is not None for p in net.parameters())
    net.zero_grad(set_to_none=False)
    for p in net.parameters():
        assert p.grad is not None and p.grad.shape == p.shape and np.all(p.grad.numpy() == 0)
    net(fastnn.randn(3, 4)).sum().backward()
    net.zero_grad()
    assert all(p.grad is None for p in net.parameters())


def test_requires_grad_freezes_parameters():
    net = Net()
    net.fc1.requires_grad_(False)
    net(fastnn.randn(2, 4)).sum().backward()
    assert net.fc1.weight.grad is None and net.fc1.bias.grad is None
    assert net.head.weight.grad is not None


def test_attribute_registration_rules():
    m = nn.Module()
    m.w = nn.Parameter(fastnn.ones(2))
    m.sub = nn.Linear(1, 1)
    m.plain = 3
    assert list(m._parameters) == ["w"] and list(m._modules) == ["sub"] and m.plain == 3
    with pytest.raises(TypeError, match="parameter 'w'"):
        m.w = fastnn.ones(2)
    m.w = None
    assert list(m.named_parameters()) == [("sub.weight", m.sub.weight), ("sub.bias", m.sub.bias)]
    with pytest.raises(KeyError, match="already exists"):
        m.register_buffer("plain", fastnn.ones(1))
    with pytest.raises(AttributeError, match="no attribute 'missing'"):
        m.missing
    del m.sub
    assert list(m._modules) == []


def test_parameter_wraps_tensor_data():
    t = fastnn.tensor([1.0, 2.0])
    p = nn.Parameter(t)
    assert p.requires_grad and p.is_leaf and np.shares_memory(p._data, t._data)
    assert not nn.Parameter(t, requires_grad=False).requires_grad


def test_module_to_double():
    net = Net().double()
    assert all(p.dtype == np.float64 for p in net.parameters())
    assert net.running.dtype == np.float64
    assert net(fastnn.randn(2, 4, dtype=fastnn.float64)).dtype == np.float64
    assert net.float().fc1.weight.dtype == np.float32


def test_containers():
    seq = nn.Sequential(nn.Linear(2, 2), nn.ReLU())
    seq.append(nn.Tanh())
    assert len(seq) == 3 and isinstance(seq[-1], nn.Tanh)
    assert isinstance(seq[1:], nn.Sequential) and len(seq[1:]) == 2
    named = nn.Sequential(OrderedDict([("lin", nn.Linear(2, 2)), ("act", nn.ReLU())]))
    assert [n for n, _ in named.named_parameters()] == ["lin.weight", "lin.bias"]
    layers = nn.ModuleList([nn.Linear(2, 2) for _ in range(3)])
    assert len(layers) == 3 and [n for n, _ in layers.named_parameters()][-1] == "2.bias"
    layers.append(nn.ReLU())
    assert len(list(layers)) == 4
    table = nn.ModuleDict({"a": nn.Linear(1, 1), "b": nn.ReLU()})
    assert list(table.keys()) == ["a", "b"] and "a" in table and isinstance(table["b"], nn.ReLU)
    x = fastnn.randn(4, 2)
    np.testing.assert_allclose(seq(x).detach().numpy(), np.tanh(np.maximum(seq[0](x).detach().numpy(), 0)), rtol=1e-6)


def test_activation_and_shape_layers():
    x = fastnn.tensor([[-1.0, 0.5], [2.0, -3.0]])
    assert nn.ReLU()(x).tolist() == [[0.0, 0.5], [2.0, 0.0]]
    np.testing.assert_allclose(nn.Sigmoid()(x).numpy(), 1 / (1 + np.exp(-x.numpy())), rtol=1e-6)
    np.testing.assert_allclose(nn.Tanh()(x).numpy(), np.tanh(x.numpy()), rtol=1e-6)
    np.testing.assert_allclose(nn.Softmax(dim=1)(x).numpy().sum(1), [1.0, 1.0], rtol=1e-6)
    np.testing.assert_allclose(np.exp(nn.LogSoftmax(dim=1)(x).numpy()).sum(1), [1.0, 1.0], rtol=1e-6)
    assert nn.Flatten()(fastnn.ones(2, 3, 4)).shape == (2, 12)
    assert nn.Identity(5, foo=1)(x) is x


def test_forward_hooks():
    layer = nn.Linear(2, 2)
    seen = []
    handle = layer.register_forward_hook(lambda module, args, out: seen.append(out.shape))
    layer(fastnn.ones(3, 2))
    handle.remove()
    layer(fastnn.ones(1, 2))
    assert seen == [(3, 2)]


def test_init_functions_statistics():
    from fastnn.nn import init
    w = fastnn.empty(300, 200)
    init.xavier_uniform_(w)
    assert np.abs(w._data).max() <= math.sqrt(6 / 500)
    assert w._data.std() == pytest.approx(math.sqrt(2 / 500), rel=0.03)
    init.kaiming_normal_(w, nonlinearity="relu")
    assert w._data.std() == pytest.approx(math.sqrt(2 / 200), rel=0.03)
    init.kaiming_normal_(w, mode="fan_out", nonlinearity="relu")
    assert w._data.std() == pytest.approx(math.sqrt(2 / 300), rel=0.03)
    init.orthogonal_(w)
    np.testing.assert_allclose(w._data.T @ w._data, np.eye(200), atol=1e-5)
    init.trunc_normal_(w, std=1.0, a=-0.5, b=0.5)
    assert w._data.min() >= -0.5 and w._data.max() <= 0.5
    assert init._calculate_fan_in_and_fan_out(fastnn.empty(8, 4, 3, 3)) == (36, 72)
    assert init.calculate_gain("relu") == pytest.approx(math.sqrt(2))
    assert init.calculate_gain("tanh") == pytest.approx(5 / 3)
    e = init.eye_(fastnn.empty(2, 3))
    assert e.tolist() == [[1.0, 0.0, 0.0], [0.0, 1.0, 0.0]]
    with pytest.raises(ValueError, match="fewer than 2 dimensions"):
        init.xavier_uniform_(fastnn.empty(5))
    with pytest.raises(ValueError, match="nonlinearity"):
        init.calculate_gain("swish")


@pytest.mark.skipif(fastnn.cuda.is_available(), reason="a CUDA device is present")
def test_module_to_cuda_raises_clear_error():
    with pytest.raises(RuntimeError, match="cuda.*not available"):
        nn.Linear(2, 2).to("cuda")

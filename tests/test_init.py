"""fastnn.nn.init: gains, fans, every initialiser's distribution, and the activation-scale experiment."""
import math

import numpy as np
import pytest

import fastnn
from fastnn import nn
from fastnn.nn import functional as F
from fastnn.nn import init

def empty(*shape, dtype="float64"):
    return fastnn.zeros(*shape, dtype=dtype)


# ---- gains and fans ----------------------------------------------------------------------------------------
@pytest.mark.parametrize("nonlinearity, param, gain", [
    ("linear", None, 1.0), ("conv1d", None, 1.0), ("conv2d", None, 1.0), ("conv3d", None, 1.0),
    ("conv_transpose1d", None, 1.0), ("conv_transpose2d", None, 1.0), ("conv_transpose3d", None, 1.0),
    ("sigmoid", None, 1.0), ("identity", None, 1.0), ("tanh", None, 5 / 3), ("relu", None, math.sqrt(2)),
    ("leaky_relu", None, math.sqrt(2 / (1 + 0.01 ** 2))), ("leaky_relu", 0.2, math.sqrt(2 / 1.04)),
    ("leaky_relu", 0, math.sqrt(2)), ("selu", None, 0.75),
])
def test_calculate_gain_table(nonlinearity, param, gain):
    assert init.calculate_gain(nonlinearity, param) == pytest.approx(gain, rel=1e-15)


@pytest.mark.parametrize("nonlinearity, param", [("swish", None), ("leaky_relu", "0.1"), ("leaky_relu", True)])
def test_calculate_gain_rejects_unknown(nonlinearity, param):
    with pytest.raises(ValueError):
        init.calculate_gain(nonlinearity, param)


@pytest.mark.parametrize("shape, fan_in, fan_out", [((20, 30), 30, 20), ((16, 2, 3, 3), 18, 144),
                                                    ((8, 4, 5), 20, 40), ((6, 3, 2, 3, 4), 72, 144)])
def test_fans(shape, fan_in, fan_out):
    assert init._calculate_fan_in_and_fan_out(empty(*shape)) == (fan_in, fan_out)


def test_fans_of_grouped_conv_weight():
    """A grouped conv's weight is (Cout, Cin/groups, kh, kw): fan_in = Cin/groups * kh * kw."""
    conv = nn.Conv2d(8, 16, (3, 5), groups=4)
    assert conv.weight.shape == (16, 2, 3, 5)
    assert init._calculate_fan_in_and_fan_out(conv.weight) == (2 * 15, 16 * 15)


def test_fans_need_two_dims():
    with pytest.raises(ValueError, match="fewer than 2 dimensions"):
        init.xavier_uniform_(empty(5))
    with pytest.raises(ValueError, match="mode"):
        init.kaiming_normal_(empty(3, 3), mode="fan_avg")


# ---- simple fills ------------------------------------------------------------------------------------------
def test_constant_fills():
    t = empty(3, 4, dtype="float32")
    assert init.ones_(t) is t and (t._data == 1).all()
    assert (init.zeros_(t)._data == 0).all()
    assert (init.constant_(t, 0.25)._data == 0.25).all() and t.dtype == np.float32
    np.testing.assert_array_equal(init.eye_(empty(3, 5))._data, np.eye(3, 5))
    with pytest.raises(ValueError, match="2-D"):
        init.eye_(empty(2, 2, 2))


def test_normal_and_uniform_moments():
    t = init.normal_(empty(500, 400), mean=2.0, std=3.0)
    assert abs(t._data.mean() - 2.0) < 0.03 and abs(t._data.std() - 3.0) < 0.03
    t = init.uniform_(empty(500, 400), a=-1.0, b=3.0)
    assert t._data.min() >= -1.0 and t._data.max() < 3.0
    assert abs(t._data.mean() - 1.0) < 0.01 and abs(t._data.std() - 4 / math.sqrt(12)) < 0.01


def test_trunc_normal_stays_in_bounds_with_the_truncated_moments():
    t = init.trunc_normal_(empty(500, 400), mean=0.0, std=1.0, a=-2.0, b=2.0)
    assert t._data.min() >= -2.0 and t._data.max() <= 2.0
    assert abs(t._data.mean()) < 0.01 and abs(t._data.std() - 0.8796) < 0.01  # std of N(0,1) cut at +-2
    tail = init.trunc_normal_(empty(1000), mean=0.0, std=1.0, a=8.0, b=9.0)  # far in the tail: still fast
    assert tail._data.min() >= 8.0 and tail._data.max() <= 9.0 and tail._data.mean() < 8.2
    with pytest.raises(ValueError, match="a < b"):
        init.trunc_normal_(empty(3), a=1.0, b=1.0)


# ---- scaled initialisers -----------------------------------------------------------------------------------
def test_xavier_uniform_bound_and_std():
    fan_in, fan_out = 400, 300
    bound = 0.5 * math.sqrt(6 / (fan_in + fan_out))
    w = init.xavier_uniform_(empty(fan_out, fan_in), gain=0.5)._data
    assert np.abs(w).max() <= bound and np.abs(w).max() > 0.99 * bound
    assert abs(w.std() - bound / math.sqrt(3)) < 0.01 * bound


def test_xavier_normal_std_from_fans():
    w = init.xavier_normal_(empty(64, 32, 3, 3), gain=2.0)._data
    fan_in, fan_out = 32 * 9, 64 * 9
    assert abs(w.std() / (2.0 * math.sqrt(2 / (fan_in + fan_out))) - 1) < 0.01


@pytest.mark.parametrize("mode", ["fan_in", "fan_out"])
@pytest.mark.parametrize("nonlinearity, a", [("relu", 0), ("leaky_relu", 0), ("leaky_relu", 0.2), ("tanh", 0),
                                             ("linear", 0)])
def test_kaiming_std_and_bound(mode, nonlinearity, a):
    shape = (200, 100, 3, 3)
    fan = 100 * 9 if mode == "fan_in" else 200 * 9
    std = init.calculate_gain(nonlinearity, a) / math.sqrt(fan)
    w = init.kaiming_normal_(empty(*shape), a=a, mode=mode, nonlinearity=nonlinearity)._data
    assert abs(w.std() / std - 1) < 0.01 and abs(w.mean()) < 0.01 * std
    w = init.kaiming_uniform_(empty(*shape), a=a, mode=mode, nonlinearity=nonlinearity)._data
    assert np.abs(w).max() <= math.sqrt(3) * std and abs(w.std() / std - 1) < 0.01


def test_kaiming_defaults_are_pytorchs():
    """Default a=0, mode='fan_in', nonlinearity='leaky_relu': std = sqrt(2 / fan_in), as for ReLU."""
    w = init.kaiming_normal_(empty(500, 400))._data
    assert abs(w.std() / math.sqrt(2 / 400) - 1) < 0.01


def test_lecun_normal_and_uniform():
    w = init.lecun_normal_(empty(300, 250, 2))._data
    assert abs(w.std() * math.sqrt(500) - 1) < 0.01
    w = init.lecun_uniform_(empty(300, 500))._data
    assert np.abs(w).max() <= math.sqrt(3 / 500) and abs(w.std() * math.sqrt(500) - 1) < 0.01


@pytest.mark.parametrize("shape", [(50, 20), (20, 50), (30, 30), (16, 4, 3, 3), (4, 8, 3)])
def test_orthogonal_rows_or_columns_are_orthonormal(shape):
    gain = 1.5
    q = init.orthogonal_(empty(*shape), gain=gain)._data.reshape(shape[0], -1) / gain
    rows, cols = q.shape
    gram = q.T @ q if rows >= cols else q @ q.T
    np.testing.assert_allclose(gram, np.eye(min(rows, cols)), atol=1e-12)
    with pytest.raises(ValueError, match="2 or more dimensions"):
        init.orthogonal_(empty(4))


def test_default_layer_init_bounds():
    layer = nn.Linear(50, 40)
    bound = 1 / math.sqrt(50)
    assert np.abs(layer.weight._data).max() <= bound and np.abs(layer.bias._data).max() <= bound
    assert np.abs(layer.weight._data).max() > 0.95 * bound


def test_initialisers_are_reproducible_and_take_a_generator():
    fastnn.manual_seed(3)
    a = init.kaiming_uniform_(empty(20, 10))._data.copy()
    fastnn.manual_seed(3)
    np.testing.assert_array_equal(init.kaiming_uniform_(empty(20, 10))._data, a)
    b = init.normal_(empty(5, 5), generator=np.random.default_rng(1))._data
    np.testing.assert_array_equal(init.normal_(empty(5, 5), generator=np.random.default_rng(1))._data, b)


# ---- zero_init_residual_ -----------------------------------------------------------------------------------
class ResidualBlock(nn.Module):
    residual_branch_last = "branch.2"

    def __init__(self, width):
        super().__init__()
        self.branch = nn.Sequential(nn.Linear(width, width), nn.ReLU(), nn.Linear(width, width))

    def forward(self, x):
        return x + self.branch(x)


def test_zero_init_residual_makes_every_block_the_identity():
    model = nn.Sequential(ResidualBlock(6), ResidualBlock(6), nn.Linear(6, 2))
    head = model[2].weight._data.copy()
    assert init.zero_init_residual_(model) is model
    x = fastnn.tensor(np.random.default_rng(0).standard_normal((4, 6)).astype(np.float32))
    for block in (model[0], model[1]):
        np.testing.assert_array_equal(block(x).detach().numpy(), x.numpy())
        assert (block.branch[2].weight._data == 0).all() and (block.branch[2].bias._data == 0).all()
        assert (block.branch[0].weight._data != 0).any()  # only the last layer of the branch is zeroed
    np.testing.assert_array_equal(model[2].weight._data, head)


def test_zero_init_residual_errors():
    with pytest.raises(ValueError, match="residual_branch_last"):
        init.zero_init_residual_(nn.Sequential(nn.Linear(3, 3)))
    block = ResidualBlock(3)
    block.residual_branch_last = "branch.1"
    with pytest.raises(ValueError, match="no weight"):
        init.zero_init_residual_(block)


# ---- the initialisation experiment -------------------------------------------------------------------------
def forward_stds(width, depth, init_weight, activation, batch=128):
    """Push N(0, 1) inputs through `depth` bias-free layers; pre-activation and activation std per layer."""
    x = fastnn.tensor(np.random.default_rng(0).standard_normal((batch, width)).astype(np.float32))
    weight = fastnn.empty(width, width)
    pre_stds, post_stds = [], []
    with fastnn.no_grad():
        for _ in range(depth):
            init_weight(weight)
            h = F.linear(x, weight)
            x = activation(h)
            pre_stds.append(float(h.numpy().std()))
            post_stds.append(float(x.numpy().std()))
    return np.array(pre_stds), np.array(post_stds), x.numpy()


def run_initialisation_experiment(width):
    """Assert the stable cases; return the activation std per layer of the N(0, 0.01) network."""
    # Kaiming (fan_in, ReLU gain sqrt 2): the variance of pre-activations is preserved layer after layer.
    pre, post, _ = forward_stds(width, 10, lambda w: init.kaiming_normal_(w, nonlinearity="relu"), F.relu)
    assert (pre > 0.5).all() and (pre < 2.0).all(), pre
    # Xavier with tanh's gain 5/3: tanh's contraction is compensated, the scale settles instead of shrinking.
    tanh_gain = init.calculate_gain("tanh")
    pre, post, _ = forward_stds(width, 10, lambda w: init.xavier_normal_(w, gain=tanh_gain), F.tanh)
    assert (pre > 0.5).all() and (pre < 2.0).all(), pre
    assert (post > 0.5).all() and (post < 2.0).all(), post
    # SELU with LeCun normal init is self-normalising: mean 0 and std 1 are a stable fixed point.
    pre, post, out = forward_stds(width, 50, init.lecun_normal_, F.selu)
    assert (np.abs(post - 1) < 0.15).all(), post
    assert abs(out.mean()) < 0.1
    # N(0, 0.01): in tanh's linear range each layer scales the std by 0.01 * sqrt(width), far below 1.
    _, small, _ = forward_stds(width, 10, lambda w: init.normal_(w, 0.0, 0.01), F.tanh)
    np.testing.assert_allclose(small[1:] / small[:-1], 0.01 * math.sqrt(width), rtol=0.1)
    return small


def test_initialisation_experiment_width_1024():
    small_init_stds = run_initialisation_experiment(1024)
    assert small_init_stds[-1] < 1e-3  # 0.32 per layer: about 1e-5 after 10 layers


@pytest.mark.slow
def test_initialisation_experiment_width_4096():
    small_init_stds = run_initialisation_experiment(4096)
    assert small_init_stds[-1] < 0.05  # 0.64 per layer: about 0.01 after 10 layers

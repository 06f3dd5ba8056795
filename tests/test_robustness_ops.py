"""Issue 11 for activations, losses, dropout, embedding and norms: PyTorch's values where the inputs are extreme
but finite (or -inf where PyTorch allows it), clear errors naming the argument where PyTorch refuses, and
backward refusing in-place edits of exactly the tensors each op's backward reads."""
import math

import numpy as np
import pytest

import fastnn
import fastnn.nn.functional as F
from fastnn import nn

from conftest import host

# PyTorch 2.x values written out: log(1 + e) for logits [0, -inf, 1] and target 0; softmax(x) - onehot(0).
LOG_1_PLUS_E = math.log(1 + math.e)                   # 1.3133
GRAD_ROW = [1 / (1 + math.e) - 1, 0.0, math.e / (1 + math.e)]


# ---- cross_entropy / nll_loss: no 0 * (-inf) -----------------------------------------------------------------
@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_cross_entropy_with_a_minus_inf_logit_gives_pytorchs_value(device, dtype):
    x = fastnn.tensor([[0.0, -math.inf, 1.0]], dtype=dtype, requires_grad=True, device=device)
    loss = F.cross_entropy(x, fastnn.tensor([0], device=device))
    assert loss.item() == pytest.approx(LOG_1_PLUS_E, rel=1e-6)  # 1.3133, as PyTorch
    loss.backward()
    np.testing.assert_allclose(host(x.grad), [GRAD_ROW], rtol=1e-6, atol=1e-7)
    # weights and the 'none' reduction take the same path; an ignored row with -inf logits contributes 0
    x.grad = None
    target = fastnn.tensor([0], device=device)
    weighted = F.cross_entropy(x, target, weight=fastnn.tensor([2.0, 1.0, 1.0], dtype=dtype, device=device),
                               reduction="sum")
    assert weighted.item() == pytest.approx(2 * LOG_1_PLUS_E, rel=1e-6)
    ignored = fastnn.tensor([[-math.inf, 0.0, 1.0]], dtype=dtype, requires_grad=True, device=device)
    out = F.cross_entropy(ignored, fastnn.tensor([-100], device=device), reduction="sum")
    out.backward()
    assert out.item() == 0.0 and np.array_equal(host(ignored.grad), np.zeros((1, 3)))


def test_nll_loss_with_a_minus_inf_log_probability_elsewhere(device):
    x = fastnn.tensor([[0.0, -math.inf, 1.0], [2.0, 0.5, -math.inf]], dtype="float64", requires_grad=True,
                      device=device)
    loss = F.nll_loss(F.log_softmax(x, 1), fastnn.tensor([0, 1], device=device), reduction="none")
    row1 = math.log(math.exp(2.0) + math.exp(0.5)) - 0.5
    np.testing.assert_allclose(host(loss), [LOG_1_PLUS_E, row1], rtol=1e-12)
    loss.sum().backward()
    grad = host(x.grad)
    assert np.all(np.isfinite(grad))
    np.testing.assert_allclose(grad[0], GRAD_ROW, rtol=1e-12)


@pytest.mark.filterwarnings("ignore:overflow encountered")  # -3e38 - 3e38 = -inf, as intended
def test_cross_entropy_with_logits_near_the_float32_limit_stays_finite(device):
    x = fastnn.tensor([[3e38, -3e38, 0.0], [-3e38, 3e38, 3e38]], dtype="float32", requires_grad=True, device=device)
    loss = F.cross_entropy(x, fastnn.tensor([2, 1], device=device), reduction="none")
    # PyTorch: log_softmax row 0 = [0, -inf, -3e38] (the -inf is never read), row 1 = [-inf, -log 2, -log 2]
    np.testing.assert_allclose(host(loss), [3e38, math.log(2)], rtol=1e-6)
    loss.sum().backward()
    np.testing.assert_allclose(host(x.grad), [[1.0, 0.0, -1.0], [0.0, -0.5, 0.5]], atol=1e-7)
    assert F.cross_entropy(x, fastnn.tensor([0, 2], device=device)).item() == pytest.approx(math.log(2) / 2)


# ---- integer inputs: refused as PyTorch refuses them --------------------------------------------------------
@pytest.mark.parametrize("loss", [F.mse_loss, F.l1_loss, F.binary_cross_entropy_with_logits])
def test_losses_refuse_integer_inputs_naming_the_dtype(loss, device):
    ints = fastnn.tensor([1, 2, 3], device=device)
    with pytest.raises(TypeError, match="int64"):
        loss(ints, fastnn.tensor([1, 0, 3], device=device))  # PyTorch: "mse_cpu" not implemented for 'Long'


def test_mse_loss_takes_an_integer_target_in_the_inputs_dtype(device):
    x = fastnn.tensor([0.5, 1.5], requires_grad=True, device=device)
    loss = F.mse_loss(x, fastnn.tensor([1, 1], device=device))
    assert loss.dtype == np.float32 and loss.item() == pytest.approx(0.25)


@pytest.mark.parametrize("op", [F.softmax, F.log_softmax])
def test_softmax_of_an_integer_tensor_needs_a_float_dtype(op, device):
    ints = fastnn.tensor([[1, 2, 3]], device=device)
    with pytest.raises(TypeError, match="int64"):  # PyTorch: "softmax_lastdim_kernel_impl" not implemented for 'Long'
        op(ints, 1)
    with pytest.raises(TypeError, match="dtype"):
        op(ints, 1, dtype="int32")
    expected = op(fastnn.tensor([[1.0, 2.0, 3.0]], device=device), 1)
    out = op(ints, 1, dtype=fastnn.float32)
    assert out.dtype == np.float32
    np.testing.assert_allclose(host(out), host(expected), rtol=1e-6)


def test_softmax_dtype_argument_computes_in_that_dtype_and_backpropagates(device):
    x = fastnn.tensor([[0.1, 0.2, 0.7]], dtype="float32", requires_grad=True, device=device)
    y = F.log_softmax(x, -1, dtype=fastnn.float64)
    assert y.dtype == np.float64
    y[0, 0].backward()
    p = np.exp([0.1, 0.2, 0.7]) / np.exp([0.1, 0.2, 0.7]).sum()
    assert x.grad.dtype == np.float32
    np.testing.assert_allclose(host(x.grad), [[1 - p[0], -p[1], -p[2]]], rtol=1e-6)


# ---- eps <= 0: a clear error, not 0/0 = NaN on a constant input ----------------------------------------------
@pytest.mark.parametrize("eps", [0, 0.0, -1e-5])
@pytest.mark.parametrize("call", [
    lambda x, eps: F.batch_norm(x, None, None, training=True, eps=eps),
    lambda x, eps: F.instance_norm(x, eps=eps),
    lambda x, eps: F.group_norm(x, 1, eps=eps),
    lambda x, eps: F.layer_norm(x, x.shape[1:], eps=eps),
    lambda x, eps: nn.BatchNorm2d(3, eps=eps).to(x.device)(x),
], ids=["batch_norm", "instance_norm", "group_norm", "layer_norm", "BatchNorm2d"])
def test_norms_refuse_eps_not_positive(call, eps, device):
    constant = fastnn.ones(2, 3, 2, 2, device=device)
    with pytest.raises(ValueError, match=r"eps must be > 0.*eps=" + str(eps).replace("-", r"\-")):
        call(constant, eps)


def test_norms_on_a_constant_input_give_zeros_with_a_positive_eps(device):
    constant = fastnn.ones(2, 3, 2, 2, device=device, requires_grad=True)
    for out in (F.batch_norm(constant, None, None, training=True), F.layer_norm(constant, (3, 2, 2)),
                F.group_norm(constant, 3), F.instance_norm(constant)):
        assert np.array_equal(host(out), np.zeros((2, 3, 2, 2)))
        out.sum().backward()
        assert np.all(np.isfinite(host(constant.grad)))
    with pytest.raises(TypeError, match="eps"):
        F.layer_norm(constant, (3, 2, 2), eps="1e-5")


# ---- backward refuses exactly the in-place edits that would change its gradient ----------------------------
def test_an_output_reading_backward_refuses_edits_of_the_output(device):
    for op in (F.sigmoid, F.tanh, lambda t: F.softmax(t, 0), lambda t: F.log_softmax(t, 0)):
        x = fastnn.tensor([0.5, -1.0], requires_grad=True, device=device)
        y = op(x)
        with fastnn.no_grad():
            y += 1
        with pytest.raises(RuntimeError, match="modified by an inplace operation"):
            y.sum().backward()


def test_an_output_reading_backward_accepts_edits_of_its_input(device):
    x = fastnn.tensor([0.5, -1.0], requires_grad=True, device=device)
    y = F.sigmoid(x)
    with fastnn.no_grad():
        x += 1  # sigmoid's backward reads its output only, so the gradient below is still exact
    y.sum().backward()
    s = 1 / (1 + np.exp(-np.array([0.5, -1.0])))
    np.testing.assert_allclose(host(x.grad), s * (1 - s), rtol=1e-6)


def test_embedding_backward_refuses_edited_indices(device):
    weight = fastnn.tensor(np.ones((4, 2), np.float32), requires_grad=True, device=device)
    idx = fastnn.tensor([0, 1], device=device)
    out = F.embedding(idx, weight)
    with fastnn.no_grad():
        idx[0] = 3
    with pytest.raises(RuntimeError, match="modified by an inplace operation"):
        out.sum().backward()


# ---- empty inputs ---------------------------------------------------------------------------------------------
def test_empty_inputs_give_empty_results_or_a_clear_error(device):
    empty = fastnn.zeros(2, 0, device=device)
    for op in (F.softmax, F.log_softmax):
        assert op(empty, 1).shape == (2, 0)  # PyTorch returns the empty tensor too
    with pytest.raises(ValueError, match=r"no classes.*\(2, 0\)"):
        F.cross_entropy(empty, fastnn.tensor([0, 0], device=device))
    with pytest.raises(ValueError, match=r"no classes.*\(0, 0\)"):
        F.nll_loss(fastnn.zeros(0, 0, device=device), fastnn.zeros(0, dtype="int64", device=device))


@pytest.mark.parametrize("make", [lambda: fastnn.nn.BatchNorm2d(3, eps=0),
                                  lambda: fastnn.nn.InstanceNorm2d(3, eps=0),
                                  lambda: fastnn.nn.LayerNorm(4, eps=-1e-5),
                                  lambda: fastnn.nn.GroupNorm(1, 3, eps=0.0)])
def test_norm_layers_refuse_eps_at_construction(make):
    with pytest.raises(ValueError, match="eps must be > 0"):
        make()

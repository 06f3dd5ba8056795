"""PyTorch idioms that scripts rely on, with the values PyTorch 2.13 gives (written here as facts)."""
import pickle

import numpy as np
import pytest

import fastnn
from fastnn import nn


def test_format_of_one_element_tensors():
    assert f"{fastnn.tensor(0.123456):.3f}" == "0.123"          # torch: '0.123'
    assert f"{fastnn.tensor([2.5]):.1f}" == "2.5"               # one element, any shape
    assert f"{fastnn.tensor(3)}" == "3"


def test_index_len_iteration_and_contains():
    assert [10, 20, 30][fastnn.tensor(1)] == 20                 # __index__ on an integer scalar tensor
    with pytest.raises(TypeError, match="only integer tensors of a single element"):
        [1, 2][fastnn.tensor(1.0)]
    rows = list(fastnn.tensor([[1, 2], [3, 4]]))
    assert len(rows) == 2 and rows[1].tolist() == [3, 4]
    assert 3 in fastnn.tensor([1, 2, 3]) and 5 not in fastnn.tensor([1, 2, 3])
    with pytest.raises(TypeError, match="iteration over a 0-d tensor"):
        iter(fastnn.tensor(1.0))


def test_bool_of_several_values_is_ambiguous():
    assert bool(fastnn.tensor([1.0])) is True
    with pytest.raises(RuntimeError, match="more than one value is ambiguous"):
        bool(fastnn.ones(2))


def test_pickling_leaves_and_refusing_graph_tensors():
    p = nn.Parameter(fastnn.tensor([1.0, 2.0]))
    q = pickle.loads(pickle.dumps(p))
    assert isinstance(q, nn.Parameter) and q.requires_grad and q.tolist() == [1.0, 2.0]
    with pytest.raises(RuntimeError, match="non-leaf"):
        pickle.dumps(p * 2)


def test_dtype_aliases_and_devices():
    assert fastnn.float == fastnn.float32 and fastnn.double == fastnn.float64 and fastnn.half == fastnn.float16
    assert fastnn.long == fastnn.int64 and fastnn.int == fastnn.int32 and fastnn.bool == np.dtype(bool)
    assert fastnn.ones(2).device == fastnn.device("cpu") == "cpu"
    assert not fastnn.ones(2).is_cuda
    assert fastnn.ones(2, dtype=fastnn.long).float().dtype == fastnn.float32


@pytest.mark.skipif(fastnn.cuda.is_available(), reason="a CUDA device is present")
def test_availability_probes():
    assert fastnn.cuda.is_available() is False and fastnn.cuda.device_count() == 0
    assert fastnn.backends.mps.is_available() is False
    # torch.accelerator on a CPU-only build: none available, current_accelerator() is None
    assert fastnn.accelerator.is_available() is False and fastnn.accelerator.device_count() == 0
    assert fastnn.accelerator.current_accelerator() is None
    assert fastnn.accelerator.current_accelerator(check_available=True) is None
    fastnn.backends.cudnn.benchmark = True                        # accepted, as scripts set it
    with pytest.raises(RuntimeError, match="no CUDA device"):
        fastnn.cuda.synchronize()


def test_utils_data_is_fastnn_data_and_dataparallel_keeps_module_prefix():
    import fastnn.utils.data as utils_data
    assert utils_data is fastnn.data and utils_data.DataLoader is fastnn.data.DataLoader
    assert nn.DataParallel is nn.parallel.DataParallel  # torch.nn.DataParallel(model), as scripts write it
    wrapped = nn.parallel.DataParallel(nn.Linear(2, 3))
    assert list(wrapped.state_dict()) == ["module.weight", "module.bias"]   # torch's keys
    x = fastnn.ones(4, 2)
    np.testing.assert_array_equal(wrapped(x).detach().numpy(), wrapped.module(x).detach().numpy())
    functional = nn.parallel.data_parallel(wrapped.module, x, range(2))  # DCGAN's multi-GPU branch
    np.testing.assert_array_equal(functional.detach().numpy(), wrapped.module(x).detach().numpy())


def test_dlpack_shares_memory_on_the_cpu():
    t = fastnn.tensor([1.0, 2.0])
    view = np.from_dlpack(t)
    t.data[0] = 7.0
    assert view[0] == 7.0


# ---- in-place ops on tensors in the graph (PyTorch's semantics) -----------------------------------------------------
def test_residual_out_plus_equals_shortcut_is_differentiable():
    from fastnn.autograd import gradcheck
    rng = np.random.default_rng(0)
    x = fastnn.tensor(rng.standard_normal((2, 3)), requires_grad=True)
    w = fastnn.tensor(rng.standard_normal((3, 3)), requires_grad=True)

    def block(x, w):            # torchvision's BasicBlock: out = f(x); out += identity; out = relu(out)
        out = x @ w
        out += x
        return out.relu_()

    def reference(x, w):
        return fastnn.relu(x @ w + x)
    assert gradcheck(block, (x, w))
    np.testing.assert_allclose(block(x, w).detach().numpy(), reference(x, w).detach().numpy())


def test_item_assignment_and_masked_fill_in_the_graph():
    from fastnn.autograd import gradcheck
    rng = np.random.default_rng(1)
    a = fastnn.tensor(rng.standard_normal((3, 4)), requires_grad=True)
    b = fastnn.tensor(rng.standard_normal(4), requires_grad=True)

    def f(a, b):
        scores = a * 2
        scores[0] = b                                   # PyTorch: grad of a's row 0 is 0, b gets row 0's grad
        scores.masked_fill_(fastnn.tensor(np.triu(np.ones((3, 4), bool), 1)), float("-inf"))
        return scores.softmax(-1)                       # the causal-mask idiom: -inf becomes probability 0
    assert gradcheck(f, (a, b))
    probs = f(a, b).detach().numpy()
    assert np.all(probs[np.triu(np.ones((3, 4), bool), 1)] == 0)


def test_inplace_refusals_and_version_checks_match_pytorch():
    leaf = fastnn.tensor([1.0, 2.0], requires_grad=True)
    with pytest.raises(RuntimeError, match="a leaf Variable that requires grad is being used in an in-place"):
        leaf += 1
    y = leaf.exp()
    z = y * 2
    y += 1                      # exp's backward reads its output: PyTorch raises at backward
    with pytest.raises(RuntimeError, match="modified by an inplace operation"):
        (y.sum() + z.sum()).backward()
    with fastnn.no_grad():      # and under no_grad a leaf may be edited, as optimizers do
        leaf += 1
    assert leaf.tolist() == [2.0, 3.0]


def test_manual_sgd_through_dot_data():
    # The "SGD by hand" of PyTorch's tutorials: updates through .data bypass autograd's leaf check and version
    # counter, and .data.copy_ / w.data = ... replace values in place.
    w = nn.Parameter(fastnn.tensor([1.0, -2.0]))
    x = fastnn.tensor([3.0, 0.5])
    loss = (w * x).sum() ** 2                                   # d/dw = 2 (w.x) x = 2 * 2 * x
    loss.backward()
    version = w._version
    w.data.add_(-0.1 * w.grad)                                  # torch: w becomes [1 - 1.2, -2 - 0.2]
    np.testing.assert_allclose(w.detach().numpy(), [-0.2, -2.2], rtol=1e-6)
    assert w._version == version and w.requires_grad and w.is_leaf   # .data has its own version counter
    w.data.copy_(fastnn.tensor([5.0, 6.0]))
    assert w.tolist() == [5.0, 6.0]
    w.data = fastnn.zeros(3)                                     # set_data may change the shape, as in torch
    assert w.shape == (3,) and isinstance(w, nn.Parameter) and w.requires_grad
    p = nn.Parameter(fastnn.ones(2))
    with pytest.raises(TypeError, match="has to be a tensor"):
        p.data = [1.0, 2.0]


def test_generator_objects_drive_randperm_and_shuffles():
    g = fastnn.Generator().manual_seed(0)
    first = fastnn.randperm(8, generator=g).tolist()
    assert sorted(first) == list(range(8))
    assert fastnn.randperm(8, generator=fastnn.Generator().manual_seed(0)).tolist() == first
    assert fastnn.randperm(8, generator=g).tolist() != first    # the stream moves on
    loader = fastnn.data.DataLoader(list(range(10)), batch_size=10, shuffle=True,
                                    generator=fastnn.Generator().manual_seed(1))
    again = fastnn.data.DataLoader(list(range(10)), batch_size=10, shuffle=True,
                                   generator=fastnn.Generator().manual_seed(1))
    assert next(iter(loader)).tolist() == next(iter(again)).tolist()


def test_optimizer_written_by_hand_with_addcmul_and_addcdiv():
    # Adam's update as scripts write it with in-place tensor ops (torch.optim's single-tensor form)
    p = fastnn.tensor([1.0, -1.0], requires_grad=True)
    m, v = fastnn.zeros(2), fastnn.zeros(2)
    (p * p).sum().backward()
    with fastnn.no_grad():
        m.mul_(0.9).add_(p.grad, alpha=0.1)
        v.mul_(0.999).addcmul_(p.grad, p.grad, value=0.001)
        denom = (v / (1 - 0.999)).sqrt().add_(1e-8)
        p.addcdiv_(m / (1 - 0.9), denom, value=-0.01)
    np.testing.assert_allclose(p.detach().numpy(), [0.99, -0.99], rtol=1e-6)   # torch.optim.Adam's first step

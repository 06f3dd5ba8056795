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


def test_availability_probes():
    assert fastnn.cuda.is_available() is False and fastnn.cuda.device_count() == 0
    assert fastnn.backends.mps.is_available() is False
    fastnn.backends.cudnn.benchmark = True                        # accepted, as scripts set it
    with pytest.raises(RuntimeError, match="no CUDA device"):
        fastnn.cuda.synchronize()


def test_utils_data_is_fastnn_data_and_dataparallel_keeps_module_prefix():
    import fastnn.utils.data as utils_data
    assert utils_data is fastnn.data and utils_data.DataLoader is fastnn.data.DataLoader
    wrapped = nn.parallel.DataParallel(nn.Linear(2, 3))
    assert list(wrapped.state_dict()) == ["module.weight", "module.bias"]   # torch's keys
    x = fastnn.ones(4, 2)
    np.testing.assert_array_equal(wrapped(x).detach().numpy(), wrapped.module(x).detach().numpy())


def test_dlpack_shares_memory_on_the_cpu():
    t = fastnn.tensor([1.0, 2.0])
    view = np.from_dlpack(t)
    t.data[0] = 7.0
    assert view[0] == 7.0

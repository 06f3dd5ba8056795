"""Issue 11, tensor-level items: dtype and type leaks, unclear errors, silent wrong values in tensor ops.

Each case asserts the exception type and that the message names the offending argument, or the value PyTorch
gives (PyTorch's behaviour is written next to each case).
"""
import numpy as np
import pytest

import fastnn
import fastnn.nn.functional as F
from conftest import host


# ---- fastnn.tensor refuses what it cannot compute on --------------------------------------------------------
@pytest.mark.parametrize("data, named", [
    # PyTorch: TypeError "can't convert np.ndarray of type numpy.object_"
    (np.array([1.0, "x"], dtype=object), "dtype object"),
    # PyTorch: RuntimeError "Could not infer dtype of dict"
    ({"a": 1.0}, "dict"),
    # PyTorch: TypeError "new(): invalid data type 'str'"
    ("abc", "str"),
    ([1.0, "x"], "<U32"),
    (None, "NoneType"),
    # PyTorch has complex tensors; fastnn has no complex kernels and refuses them on purpose
    (1 + 2j, "complex128"),
    (np.array([1 + 2j, 3j]), "dtype complex128"),
])
def test_tensor_refuses_non_numeric_data_naming_its_type(data, named, device):
    with pytest.raises(TypeError, match="fastnn.tensor") as info:
        fastnn.tensor(data, device=device)
    assert named in str(info.value)


def test_object_array_no_longer_computes_on_strings():
    # the report: fastnn.tensor(np.array([1.0, "x"], dtype=object)) * 2 gave [2.0, "xx"]
    with pytest.raises(TypeError, match="object"):
        fastnn.tensor(np.array([1.0, "x"], dtype=object)) * 2


def test_unsupported_target_dtype_is_refused_naming_it():
    with pytest.raises(TypeError, match="complex64"):
        fastnn.tensor([1.0], dtype=np.complex64)
    with pytest.raises(TypeError, match="complex128"):
        fastnn.zeros(2, dtype=np.complex128)


def test_rand_randn_refuse_integer_dtypes_naming_them(device):
    # PyTorch: torch.rand(2, dtype=torch.long) -> RuntimeError "... not implemented for 'Long'"
    with pytest.raises(TypeError, match="rand: dtype must be a floating point type, got int64"):
        fastnn.rand(2, dtype=fastnn.int64, device=device)
    with pytest.raises(TypeError, match="randn: dtype must be a floating point type, got bool"):
        fastnn.randn(2, dtype=fastnn.bool_, device=device)


def test_ragged_data_is_a_value_error():
    with pytest.raises(ValueError, match="fastnn.tensor"):
        fastnn.tensor([[1.0], [1.0, 2.0]])


# ---- cat / stack ----------------------------------------------------------------------------------------------
def test_cat_promotes_like_pytorch(device):
    # PyTorch: torch.cat([torch.ones(2), torch.tensor([3, 4])]).dtype == torch.float32 (NumPy would give float64)
    x = fastnn.ones(2, requires_grad=True, device=device)
    out = fastnn.cat([x, fastnn.tensor([3, 4], device=device)])
    assert out.dtype == np.float32 and out.tolist() == [1.0, 1.0, 3.0, 4.0]
    (out * fastnn.tensor([1.0, 2.0, 3.0, 4.0], device=device)).sum().backward()
    assert x.grad.dtype == np.float32 and x.grad.tolist() == [1.0, 2.0]
    # bool + int64 -> int64; float32 + float64 -> float64 (both PyTorch's promote_types)
    assert fastnn.cat([fastnn.tensor([True], device=device), fastnn.tensor([2], device=device)]).dtype == np.int64
    assert fastnn.stack([fastnn.ones(2, device=device),
                         fastnn.ones(2, dtype=fastnn.float64, device=device)]).dtype == np.float64


@pytest.mark.parametrize("fn", [fastnn.cat, fastnn.stack])
def test_cat_stack_of_non_tensors_name_the_argument(fn):
    # PyTorch: TypeError "expected Tensor as element 0 in argument 0, but got numpy.ndarray"
    with pytest.raises(TypeError, match=r"element 0 in argument 'tensors', but got numpy\.ndarray"):
        fn([np.ones(2), np.ones(2)])
    with pytest.raises(TypeError, match=r"element 1 in argument 'tensors', but got list"):
        fn([fastnn.ones(2), [1.0, 2.0]])
    # PyTorch: TypeError "cat(): argument 'tensors' (position 1) must be tuple of Tensors, not Tensor"
    with pytest.raises(TypeError, match="argument 'tensors' must be a tuple or list of Tensors, not Tensor"):
        fn(fastnn.ones(2, 2))
    with pytest.raises(TypeError, match="argument 'tensors'.*not int"):
        fn(3)


def test_cat_of_tensors_on_two_devices_names_both():
    with pytest.raises(RuntimeError, match="same device.*cpu.*twin"):
        fastnn.cat([fastnn.ones(2), fastnn.ones(2, device="twin")])


# ---- arange ---------------------------------------------------------------------------------------------------
def test_arange_zero_step_names_step(device):
    # PyTorch: RuntimeError "step must be nonzero"; NumPy: ZeroDivisionError
    with pytest.raises(ValueError, match="step must be nonzero, got step=0"):
        fastnn.arange(0, 10, 0, device=device)
    # PyTorch: "upper bound and larger bound inconsistent with step sign" (NumPy silently gives an empty array)
    with pytest.raises(ValueError, match="inconsistent with step sign.*step=-1"):
        fastnn.arange(0, 10, -1, device=device)
    assert fastnn.arange(10, 0, -3, device=device).tolist() == [10, 7, 4, 1]
    assert fastnn.arange(2, 2, device=device).tolist() == []


# ---- std / var of a constant ----------------------------------------------------------------------------------
@pytest.mark.parametrize("reduce", [
    lambda x: x.std(0), lambda x: x.std(), lambda x: x.std(1, keepdim=True), lambda x: x.std(0, correction=0),
    lambda x: x.var(0), lambda x: x.var(),
], ids=["std0", "std", "std1_keepdim", "std0_biased", "var0", "var"])
def test_std_var_gradient_of_a_constant_is_zero(reduce, device):
    # PyTorch: torch.full((3, 2), 5.0, requires_grad=True).std(0).sum().backward() gives grad zeros (not NaN):
    # std's backward masks the 0/0 where the result is 0.
    x = fastnn.full((3, 2), 5.0, requires_grad=True, device=device)
    out = reduce(x)
    assert np.all(host(out) == 0)
    out.sum().backward()
    assert np.array_equal(host(x.grad), np.zeros((3, 2), np.float32))


def test_std_gradient_elsewhere_is_unchanged(device):
    # a column that is constant gets 0, the other d std / dx = (x - mean) / ((n - 1) * std)
    a = np.array([[1.0, 2.0], [1.0, 4.0], [1.0, 9.0]])
    x = fastnn.tensor(a, requires_grad=True, device=device)
    x.std(0).sum().backward()
    col = a[:, 1]
    expected = (col - col.mean()) / ((len(col) - 1) * col.std(ddof=1))
    np.testing.assert_allclose(host(x.grad)[:, 0], 0.0)
    np.testing.assert_allclose(host(x.grad)[:, 1], expected, rtol=1e-12)
    assert fastnn.autograd.gradcheck(lambda t: t.std(0), [fastnn.tensor(a + np.arange(6).reshape(3, 2) * 0.1,
                                                                        requires_grad=True, device=device)])


# ---- F.pad reflect / circular limits --------------------------------------------------------------------------
@pytest.mark.parametrize("pad", [(3, 0), (0, 3), (4, 4), (1, 3)])
def test_reflect_padding_as_large_as_the_dimension_is_refused(pad, device):
    # PyTorch: F.pad(torch.ones(1, 3), (3, 0), mode="reflect") raises "Argument #4: Padding size should be less
    # than the corresponding input dimension, but got: padding (3, 0) at dimension 1 of input [1, 3]"
    x = fastnn.ones(1, 3, device=device)
    with pytest.raises(ValueError, match=rf"Padding size should be less than the corresponding input dimension, "
                                         rf"but got: padding \({pad[0]}, {pad[1]}\) at dimension 1 of input \[1, 3\]"):
        F.pad(x, pad, mode="reflect")
    assert F.pad(x, (2, 2), mode="reflect").shape == (1, 7)  # padding < the dimension still works


def test_circular_padding_beyond_one_wrap_is_refused(device):
    # PyTorch: "Padding value causes wrapping around more than once."
    x = fastnn.ones(1, 1, 3, device=device)
    with pytest.raises(ValueError, match="wrapping around more than once.*padding \\(4, 0\\)"):
        F.pad(x, (4, 0), mode="circular")
    assert F.pad(fastnn.tensor([[[1.0, 2.0, 3.0]]], device=device), (3, 3), mode="circular").tolist() == \
        [[[1.0, 2.0, 3.0, 1.0, 2.0, 3.0, 1.0, 2.0, 3.0]]]


# ---- type promotion of binary ops (PyTorch's result_type) ------------------------------------------------------
_PROMOTION = [
    # (a, b, PyTorch's result dtype)
    # int + float -> the float tensor's dtype (NumPy: int64 + float16 -> float64, int64 + float32 -> float64)
    (lambda d: fastnn.tensor([1, 2], device=d), lambda d: fastnn.ones(2, dtype=fastnn.float16, device=d), "float16"),
    (lambda d: fastnn.tensor([1, 2], device=d), lambda d: fastnn.ones(2, device=d), "float32"),
    (lambda d: fastnn.tensor([1, 2], dtype=fastnn.int32, device=d), lambda d: fastnn.ones(2, dtype=fastnn.float64,
                                                                                         device=d), "float64"),
    (lambda d: fastnn.tensor([1, 2], device=d), lambda d: 1.5, "float32"),
    # bool + int -> int
    (lambda d: fastnn.tensor([True, False], device=d), lambda d: fastnn.tensor([1, 2], device=d), "int64"),
    (lambda d: fastnn.tensor([True, False], device=d), lambda d: 3, "int64"),
    (lambda d: fastnn.tensor([True, False], device=d), lambda d: fastnn.tensor([1, 2], dtype=fastnn.uint8,
                                                                               device=d), "uint8"),
    (lambda d: fastnn.tensor([True, False], device=d), lambda d: 2.5, "float32"),
    # a 0-d tensor is a "scalar": it changes the result only if it is of a higher category
    (lambda d: fastnn.ones(2, device=d), lambda d: fastnn.tensor(2.0, dtype=fastnn.float64, device=d), "float32"),
    (lambda d: fastnn.tensor([1, 2], dtype=fastnn.int32, device=d), lambda d: fastnn.tensor(7, device=d), "int32"),
    (lambda d: fastnn.tensor([1, 2], device=d), lambda d: fastnn.tensor(1.5, dtype=fastnn.float64, device=d),
     "float64"),
    (lambda d: fastnn.tensor(1.0, device=d), lambda d: fastnn.tensor(2.0, dtype=fastnn.float64, device=d),
     "float64"),
    # Python numbers are weak: they take the tensor's dtype within a category
    (lambda d: fastnn.tensor([1, 2], dtype=fastnn.int32, device=d), lambda d: 5, "int32"),
    (lambda d: fastnn.ones(2, dtype=fastnn.float16, device=d), lambda d: 1.5, "float16"),
    (lambda d: fastnn.ones(2, device=d), lambda d: np.float64(2.0), "float32"),
    # integer promotions as in NumPy and PyTorch
    (lambda d: fastnn.tensor([1], dtype=fastnn.uint8, device=d), lambda d: fastnn.tensor([1], dtype=np.int8,
                                                                                         device=d), "int16"),
]


@pytest.mark.parametrize("op", ["add", "mul", "maximum", "where"])
@pytest.mark.parametrize("case", range(len(_PROMOTION)))
def test_binary_op_dtype_promotion_follows_pytorch(op, case, device):
    make_a, make_b, expected = _PROMOTION[case]
    a, b = make_a(device), make_b(device)
    cond = fastnn.tensor([True, False], device=device)
    ops = {"add": lambda u, v: u + v, "mul": lambda u, v: u * v, "maximum": fastnn.maximum,
           "where": lambda u, v: fastnn.where(cond, u, v)}
    out = ops[op](a, b)
    assert out.dtype == np.dtype(expected) and out.device == device
    assert ops[op](b, a).dtype == np.dtype(expected)  # the rule is symmetric


def test_division_of_integers_gives_float32(device):
    # PyTorch: torch.tensor([1, 2]) / 2 -> tensor([0.5, 1.0]) (float32); also int / int tensor and bool / bool
    x = fastnn.tensor([1, 2], device=device)
    assert (x / 2).dtype == np.float32 and (x / 2).tolist() == [0.5, 1.0]
    assert (3 / x).dtype == np.float32 and (3 / x).tolist() == [3.0, 1.5]
    assert (x / fastnn.tensor([4, 4], dtype=fastnn.int32, device=device)).dtype == np.float32
    assert (x / 2.0).dtype == np.float32
    assert (x / fastnn.tensor(2.0, dtype=fastnn.float64, device=device)).dtype == np.float64


def test_mixed_float_dtypes_give_each_input_its_own_gradient_dtype(device):
    # PyTorch: x (float32) * y (float64, with dims) is float64; x.grad is float32, y.grad float64
    x = fastnn.tensor([1.0, 2.0], requires_grad=True, device=device)
    y = fastnn.tensor([3.0, 4.0], dtype=fastnn.float64, requires_grad=True, device=device)
    out = x * y
    assert out.dtype == np.float64
    out.sum().backward()
    assert x.grad.dtype == np.float32 and x.grad.tolist() == [3.0, 4.0]
    assert y.grad.dtype == np.float64 and y.grad.tolist() == [1.0, 2.0]
    # float32 tensor with a float64 0-d tensor stays float32 and the 0-d one gets a float64 gradient
    s = fastnn.tensor(2.0, dtype=fastnn.float64, requires_grad=True, device=device)
    z = x * s
    assert z.dtype == np.float32
    z.sum().backward()
    assert s.grad.dtype == np.float64 and s.grad.item() == 3.0


def test_comparisons_compare_in_the_promoted_dtype(device):
    # PyTorch: torch.tensor([1, 2]) > 1.5 -> [False, True]; int tensor == 2.0 -> [False, True]
    x = fastnn.tensor([1, 2], device=device)
    assert (x > 1.5).tolist() == [False, True] and (x == 2.0).tolist() == [False, True]
    assert (fastnn.tensor([True, False], device=device) == 1).tolist() == [True, False]

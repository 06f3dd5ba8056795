"""conv2d: the CPU's direct and im2col kernels against the NumPy reference; the op on every device (gradients,
values, padding), determinism, errors."""
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import fastnn
from conftest import DEVICES, host
from fastnn import _dispatch
# cpu_conv by name only for the CPU algorithms' internals (batching of im2col GEMMs, weight-gradient chunks).
from fastnn._kernels import cpu_conv, ref_conv
from fastnn.autograd import gradcheck
from fastnn.ops.conv import conv2d, conv2d_output_shape

ALGORITHMS = ["direct", "im2col", "winograd"]
CPU = _dispatch.backend("cpu")


@pytest.fixture(autouse=True)
def _winograd_at_every_size(monkeypatch):
    """'winograd' runs small convs on direct/im2col (cpu_conv._WINOGRAD_MIN_*); these tests' convs are small."""
    for name in ("_WINOGRAD_MIN_MACS", "_WINOGRAD_MIN_TILES", "_WINOGRAD_MIN_TILE_USE"):
        monkeypatch.setattr(cpu_conv, name, 0)
# Op tests: every CPU algorithm, and each other device with its own choice ('auto'; twin runs the reference).
DEVICE_ALGORITHMS = [("cpu", a) for a in ALGORITHMS] + [(d, "auto") for d in DEVICES if d != "cpu"]


def _assert_close(actual, expected, dtype):
    assert actual.dtype == dtype and actual.shape == expected.shape
    if dtype == np.float64:
        np.testing.assert_allclose(actual, expected, rtol=1e-10, atol=1e-10)
    else:
        np.testing.assert_allclose(actual, expected, rtol=1e-4, atol=1e-4 * (1 + np.abs(expected).max()))


@st.composite
def conv_cases(draw):
    """Random geometry with a non-empty output: (x, w, b, stride, padding, dilation, groups), float32 or 64."""
    groups = draw(st.integers(1, 3))
    cin_g, cout_g = draw(st.integers(1, 3)), draw(st.integers(1, 3))
    kernel = (draw(st.integers(1, 4)), draw(st.integers(1, 4)))
    stride = (draw(st.integers(1, 3)), draw(st.integers(1, 3)))
    padding = (draw(st.integers(0, 2)), draw(st.integers(0, 2)))
    dilation = (draw(st.integers(1, 2)), draw(st.integers(1, 2)))
    spatial = []
    for k, p, d in zip(kernel, padding, dilation):
        smallest = max(1, d * (k - 1) + 1 - 2 * p)
        spatial.append(draw(st.integers(smallest, smallest + 7)))
    n = draw(st.integers(1, 3))
    dtype = draw(st.sampled_from([np.float32, np.float64]))
    rng = np.random.default_rng(draw(st.integers(0, 2 ** 32 - 1)))
    x = rng.standard_normal((n, cin_g * groups, *spatial)).astype(dtype)
    w = rng.standard_normal((cout_g * groups, cin_g, *kernel)).astype(dtype)
    b = rng.standard_normal(cout_g * groups).astype(dtype) if draw(st.booleans()) else None
    return x, w, b, stride, padding, dilation, groups


@settings(max_examples=60, deadline=None)
@given(conv_cases())
def test_forward_kernels_match_reference(case):
    x, w, b, stride, padding, dilation, groups = case
    expected = ref_conv.conv2d_forward(x, w, b, stride, padding, dilation, groups)
    for algorithm in ALGORITHMS:
        _assert_close(CPU.kernels.conv2d_forward(x, w, b, stride, padding, dilation, groups, algorithm), expected,
                      x.dtype)


@settings(max_examples=60, deadline=None)
@given(conv_cases(), st.integers(0, 2 ** 32 - 1))
def test_backward_kernels_match_reference(case, seed):
    x, w, _, stride, padding, dilation, groups = case
    out_shape = ref_conv.conv2d_forward(x, w, None, stride, padding, dilation, groups).shape
    grad_out = np.random.default_rng(seed).standard_normal(out_shape).astype(x.dtype)
    expected = ref_conv.conv2d_backward(grad_out, x, w, stride, padding, dilation, groups)
    for algorithm in ALGORITHMS:
        grads = CPU.kernels.conv2d_backward(grad_out, x, w, stride, padding, dilation, groups, True, True, True,
                                            algorithm)
        for got, want in zip(grads, expected):
            _assert_close(got, want, x.dtype)


@pytest.mark.parametrize("algorithm", ALGORITHMS)
def test_backward_computes_only_requested_gradients(algorithm):
    rng = np.random.default_rng(1)
    x, w = rng.standard_normal((2, 4, 6, 6)), rng.standard_normal((6, 2, 3, 3))
    grad_out = rng.standard_normal((2, 6, 4, 4))
    expected = ref_conv.conv2d_backward(grad_out, x, w, (1, 1), (0, 0), (1, 1), 2)
    for flags in [(True, False, False), (False, True, False), (False, False, True), (False, False, False)]:
        grads = CPU.kernels.conv2d_backward(grad_out, x, w, (1, 1), (0, 0), (1, 1), 2, *flags, algorithm)
        for wanted, got, want in zip(flags, grads, expected):
            if wanted:
                _assert_close(got, want, np.float64)
            else:
                assert got is None


@pytest.mark.parametrize("algorithm", ALGORITHMS)
@pytest.mark.parametrize("multiplier", [1, 2])
def test_depthwise_matches_reference(algorithm, multiplier):
    rng = np.random.default_rng(2)
    x = rng.standard_normal((3, 8, 9, 10)).astype(np.float32)
    w = rng.standard_normal((8 * multiplier, 1, 3, 3)).astype(np.float32)
    b = rng.standard_normal(8 * multiplier).astype(np.float32)
    args = ((2, 1), (1, 1), (1, 1), 8)
    out = CPU.kernels.conv2d_forward(x, w, b, *args, algorithm)
    _assert_close(out, ref_conv.conv2d_forward(x, w, b, *args), np.float32)
    grad_out = rng.standard_normal(out.shape).astype(np.float32)
    grads = CPU.kernels.conv2d_backward(grad_out, x, w, *args, True, True, True, algorithm)
    for got, want in zip(grads, ref_conv.conv2d_backward(grad_out, x, w, *args)):
        _assert_close(got, want, np.float32)


@pytest.mark.parametrize("stride, n_img", [((1, 1), 200), ((2, 1), 37)])
def test_im2col_batches_of_images_match_reference(stride, n_img):
    # Small planes are unfolded several images per GEMM (8 here), and the backward's batch chunks (16) then
    # hold a full batch plus a ragged one; every gradient subset must still match the reference.
    rng = np.random.default_rng(5)
    x = rng.standard_normal((n_img, 4, 8 * stride[0], 8)).astype(np.float64)
    w = rng.standard_normal((6, 2, 3, 3))
    b = rng.standard_normal(6)
    args = (stride, (1, 1), (1, 1), 2)
    out = cpu_conv.conv2d_forward_im2col(x, w, b, *args)
    assert cpu_conv._images_per_gemm(n_img, out.shape[2] * out.shape[3]) > 1
    _assert_close(out, ref_conv.conv2d_forward(x, w, b, *args), np.float64)
    grad_out = rng.standard_normal(out.shape)
    expected = ref_conv.conv2d_backward(grad_out, x, w, *args)
    for flags in [(True, True, True), (True, False, False), (False, True, False)]:
        grads = cpu_conv.conv2d_backward_im2col(grad_out, x, w, *args, *flags)
        for wanted, got, want in zip(flags, grads, expected):
            if wanted:
                _assert_close(got, want, np.float64)


@pytest.mark.parametrize("algorithm", ALGORITHMS)
def test_kernels_accept_non_contiguous_arrays(algorithm):
    rng = np.random.default_rng(3)
    x = rng.standard_normal((5, 6, 3, 2)).transpose(3, 2, 1, 0)
    w = rng.standard_normal((3, 3, 4, 2))[..., ::2].transpose(0, 1, 3, 2)
    grad_out = rng.standard_normal((2, 3, 8, 4))[..., ::2]
    args = ((1, 1), (1, 0), (1, 1), 1)
    out = CPU.kernels.conv2d_forward(x, w, None, *args, algorithm)
    _assert_close(out, ref_conv.conv2d_forward(x, w, None, *args), np.float64)
    grads = CPU.kernels.conv2d_backward(grad_out, x, w, *args, True, True, True, algorithm)
    for got, want in zip(grads, ref_conv.conv2d_backward(grad_out, x, w, *args)):
        _assert_close(got, want, np.float64)


@pytest.mark.parametrize("algorithm", ALGORITHMS)
@pytest.mark.parametrize("shape, args", [
    (((16, 3, 20, 20), (24, 3, 5, 5)), ((1, 1), (2, 2), (1, 1), 1)),
    (((8, 12, 13, 11), (12, 4, 3, 3)), ((2, 1), (1, 1), (2, 1), 3)),
    (((4, 16, 9, 10), (8, 16, 3, 3)), ((1, 1), (1, 1), (1, 1), 1)),
])
def test_kernels_are_deterministic(algorithm, shape, args):
    rng = np.random.default_rng(4)
    x = rng.standard_normal(shape[0]).astype(np.float32)
    w = rng.standard_normal(shape[1]).astype(np.float32)
    b = rng.standard_normal(shape[1][0]).astype(np.float32)
    forward, backward = CPU.kernels.conv2d_forward, CPU.kernels.conv2d_backward
    out = forward(x, w, b, *args, algorithm)
    grad_out = rng.standard_normal(out.shape).astype(np.float32)
    first = backward(grad_out, x, w, *args, True, True, True, algorithm)
    for _ in range(3):
        assert np.array_equal(forward(x, w, b, *args, algorithm), out)
        for again, before in zip(backward(grad_out, x, w, *args, True, True, True, algorithm), first):
            assert np.array_equal(again, before)


@pytest.mark.parametrize("algorithm", ["direct", "im2col"])
@pytest.mark.parametrize("x_shape, w_shape, args", [
    ((1, 16, 12, 12), (32, 16, 3, 3), ((1, 1), (1, 1), (1, 1), 1)),  # one image: im2col's GEMM in row blocks
    ((1, 12, 9, 10), (102, 6, 3, 3), ((2, 1), (1, 1), (1, 2), 2)),   # 51 rows a group: ragged blocks
    ((3, 8, 10, 10), (16, 8, 3, 3), ((1, 1), (1, 1), (1, 1), 1)),    # several images: batches of images
])
def test_serial_and_parallel_forwards_match_reference(monkeypatch, algorithm, x_shape, w_shape, args):
    """The same forward on the calling thread (below _SERIAL_BELOW_MACS, serial twins of the kernels) and on the
    pool; the direct kernel's twin runs the very same loops, so its result is bit-identical."""
    rng = np.random.default_rng(sum(w_shape))
    x = rng.standard_normal(x_shape).astype(np.float32)
    w = rng.standard_normal(w_shape).astype(np.float32)
    b = rng.standard_normal(w_shape[0]).astype(np.float32)
    expected = ref_conv.conv2d_forward(x.astype(np.float64), w.astype(np.float64), b.astype(np.float64), *args)
    outs = []
    for threshold in (1 << 40, 0):
        monkeypatch.setattr(cpu_conv, "_SERIAL_BELOW_MACS", threshold)
        outs.append(CPU.kernels.conv2d_forward(x, w, b, *args, algorithm))
        _assert_close(outs[-1], expected.astype(np.float32), np.float32)
    if algorithm == "direct":
        assert np.array_equal(outs[0], outs[1])


def test_small_forwards_run_serially_and_single_images_split_by_output_channels():
    # resnet20 at batch 1: every 3x3 conv (16 channels at 32x32: 2.4M multiply-adds) runs on the calling thread;
    # at batch 2 and in resnet18's 56x56 layers (116M) on the pool.
    assert cpu_conv._runs_serially((1, 16, 32, 32), (16, 16, 3, 3), (1, 16, 32, 32))
    assert cpu_conv._runs_serially((1, 64, 8, 8), (64, 64, 3, 3), (1, 64, 8, 8))
    assert not cpu_conv._runs_serially((2, 16, 32, 32), (16, 16, 3, 3), (2, 16, 32, 32))
    assert not cpu_conv._runs_serially((1, 64, 56, 56), (64, 64, 3, 3), (1, 64, 56, 56))
    # Two row blocks of at least 16 output channels, whatever the thread count.
    assert [cpu_conv._gemm_rows(c) for c in (8, 16, 32, 51, 512)] == [8, 16, 16, 26, 256]


@pytest.mark.parametrize("rows", [51, 26, 17, 16])
def test_single_image_im2col_row_blocks_match_reference(rows):
    rng = np.random.default_rng(8)
    x = rng.standard_normal((1, 24, 11, 11))
    w = rng.standard_normal((51, 24, 3, 3))
    b = rng.standard_normal(51)
    out = cpu_conv._im2col_forward_rows(x, w.reshape(1, 51, -1), b, np.empty((1, 51, 11, 11)), rows,
                                        3, 3, 1, 1, 1, 1, 1, 1)
    _assert_close(out, ref_conv.conv2d_forward(x, w, b, (1, 1), (1, 1), (1, 1), 1), np.float64)


@pytest.mark.parametrize("x_shape, w_shape, args", [
    ((3, 5, 11, 13), (4, 5, 3, 4), ((3, 2), (2, 1), (2, 1), 1)),  # dilated, plane not a multiple of the stride
    ((2, 4, 9, 7), (6, 2, 2, 2), ((3, 3), (0, 0), (1, 1), 2)),  # stride > kernel: pixels no tap reads
    ((2, 3, 8, 10), (5, 3, 3, 3), ((2, 2), (3, 2), (1, 1), 1)),  # padding beyond a whole stride
])
def test_im2col_strided_unfold_and_col2im_match_reference(x_shape, w_shape, args):
    """Strided im2col reads and sums through each image's stride phases (cpu_conv._split_phases); every
    phase, edge and unread pixel must still land where the reference puts it."""
    rng = np.random.default_rng(11)
    x, w = rng.standard_normal(x_shape), rng.standard_normal(w_shape)
    out = cpu_conv.conv2d_forward_im2col(x, w, None, *args)
    _assert_close(out, ref_conv.conv2d_forward(x, w, None, *args), np.float64)
    grad_out = rng.standard_normal(out.shape)
    grads = cpu_conv.conv2d_backward_im2col(grad_out, x, w, *args, True, True, False)
    for got, want in zip(grads[:2], ref_conv.conv2d_backward(grad_out, x, w, *args)):
        _assert_close(got, want, np.float64)


def test_im2col_weight_gradient_summed_in_batch_chunks_matches_reference(monkeypatch):
    """The weight gradient adds per-chunk partial sums; with 3 chunks of a 7-image batch it is still exact."""
    monkeypatch.setattr(cpu_conv, "_MAX_WEIGHT_CHUNKS", 3)
    assert cpu_conv._weight_chunks(7, 32) == 3
    rng = np.random.default_rng(9)
    x, w, b = rng.standard_normal((7, 4, 6, 5)), rng.standard_normal((4, 2, 3, 2)), rng.standard_normal(4)
    args = ((1, 2), (1, 1), (1, 1), 2)
    out = cpu_conv.conv2d_forward_im2col(x, w, b, *args)
    _assert_close(out, ref_conv.conv2d_forward(x, w, b, *args), np.float64)
    grad_out = rng.standard_normal(out.shape)
    grads = cpu_conv.conv2d_backward_im2col(grad_out, x, w, *args, True, True, True)
    for got, want in zip(grads, ref_conv.conv2d_backward(grad_out, x, w, *args)):
        _assert_close(got, want, np.float64)


@pytest.mark.parametrize("algorithm", ["direct", "im2col"])  # Winograd's case: test_winograd.py
def test_inf_in_input_reaches_only_the_outputs_that_see_it(algorithm):
    x = np.zeros((2, 3, 7, 6), np.float32)
    x[1, 2, 6, 5] = np.inf
    w = np.ones((5, 3, 3, 2), np.float32)
    out = CPU.kernels.conv2d_forward(x, w, None, (1, 1), (1, 0), (1, 1), 1, algorithm)
    expected = ref_conv.conv2d_forward(x, w, None, (1, 1), (1, 0), (1, 1), 1)
    assert np.isinf(expected).sum() == 5 * 2
    np.testing.assert_array_equal(out, expected)


# ---- the op -------------------------------------------------------------------------------------------------


def _leaf(shape, rng, requires_grad=True, device="cpu"):
    return fastnn.tensor(rng.standard_normal(shape), requires_grad=requires_grad, device=device)


@pytest.mark.parametrize("device, algorithm", DEVICE_ALGORITHMS)
@pytest.mark.parametrize("x_shape, w_shape, with_bias, kwargs", [
    ((2, 2, 4, 5), (3, 2, 3, 2), True, dict(stride=1, padding=1)),
    ((1, 4, 6, 5), (4, 2, 2, 3), False, dict(stride=(2, 1), padding=(0, 1), dilation=(1, 2), groups=2)),
    ((1, 3, 5, 5), (3, 1, 3, 3), True, dict(padding=2, dilation=2, groups=3)),
    ((1, 2, 5, 4), (2, 2, 2, 3), False, dict(padding="same")),
    ((2, 4, 3), (3, 2, 3, 2), True, dict(padding="valid")),
    ((2, 3, 5, 6), (4, 3, 3, 3), True, dict(padding=1)),
    ((1, 2, 6, 5), (3, 2, 3, 3), False, dict(padding=(0, 2))),
])
def test_op_gradcheck(device, algorithm, x_shape, w_shape, with_bias, kwargs):
    rng = np.random.default_rng(5)
    x, w = _leaf(x_shape, rng, device=device), _leaf(w_shape, rng, device=device)
    inputs = (x, w, _leaf(w_shape[:1], rng, device=device)) if with_bias else (x, w)
    assert gradcheck(lambda *t: conv2d(*t, algorithm=algorithm, **kwargs), inputs)


@pytest.mark.parametrize("device, algorithm", [("cpu", "auto")] + DEVICE_ALGORITHMS)
def test_op_forward_matches_reference(device, algorithm):
    rng = np.random.default_rng(6)
    x, w, b = rng.standard_normal((2, 4, 7, 8)), rng.standard_normal((6, 2, 3, 3)), rng.standard_normal(6)
    x_t, w_t, b_t = (fastnn.tensor(a, device=device) for a in (x, w, b))
    out = conv2d(x_t, w_t, b_t, stride=(2, 1), padding=1, dilation=(1, 2), groups=2, algorithm=algorithm)
    expected = ref_conv.conv2d_forward(x, w, b, (2, 1), (1, 1), (1, 2), 2)
    assert out.device == device
    np.testing.assert_allclose(host(out), expected, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("kernel, dilation", [(3, 1), (4, 1), (2, 3), (5, 2)])
def test_same_padding_keeps_size_and_pads_like_pytorch(kernel, dilation, device):
    """PyTorch splits an odd total padding d*(k-1) with the extra row/column at the bottom/right."""
    rng = np.random.default_rng(7)
    x, w = rng.standard_normal((1, 2, 6, 7)), rng.standard_normal((3, 2, kernel, kernel))
    out = conv2d(fastnn.tensor(x, device=device), fastnn.tensor(w, device=device), padding="same", dilation=dilation)
    total = dilation * (kernel - 1)
    padded = np.pad(x, ((0, 0), (0, 0), (total // 2, total - total // 2), (total // 2, total - total // 2)))
    expected = ref_conv.conv2d_forward(padded, w, None, (1, 1), (0, 0), (dilation, dilation), 1)
    assert out.shape == (1, 3, 6, 7) == conv2d_output_shape(x.shape, w.shape, 1, "same", dilation)
    np.testing.assert_allclose(host(out), expected, rtol=1e-12, atol=1e-12)


def test_input_without_grad_gets_none_and_weight_grad_is_right(device):
    rng = np.random.default_rng(8)
    x, w = _leaf((2, 1, 6, 6), rng, requires_grad=False, device=device), _leaf((3, 1, 3, 3), rng, device=device)
    out = conv2d(x, w, padding=1)
    grad_out = rng.standard_normal(out.shape)
    out.backward(fastnn.tensor(grad_out, device=device))
    assert x.grad is None
    expected = ref_conv.conv2d_backward(grad_out, host(x), host(w), (1, 1), (1, 1), (1, 1), 1)[1]
    np.testing.assert_allclose(host(w.grad), expected, rtol=1e-12, atol=1e-12)


def test_bias_edited_in_place_after_forward_does_not_block_backward(device):
    """The backward reads the input and weight, never the bias: editing the bias in between is fine (PyTorch)."""
    rng = np.random.default_rng(10)
    x, w, b = (_leaf(shape, rng, device=device) for shape in ((1, 2, 5, 5), (3, 2, 3, 3), (3,)))
    out = conv2d(x, w, b)
    with fastnn.no_grad():
        b += 1.0
    out.sum().backward()
    np.testing.assert_allclose(host(b.grad), np.full(3, 9.0))
    out = conv2d(x, w, b)
    with fastnn.no_grad():
        w += 1.0
    with pytest.raises(RuntimeError, match="modified by an inplace operation"):
        out.sum().backward()


@pytest.mark.parametrize("device, algorithm", DEVICE_ALGORITHMS)
def test_empty_batch(device, algorithm):
    x = fastnn.tensor(np.zeros((0, 3, 5, 5), np.float32), requires_grad=True, device=device)
    w = fastnn.tensor(np.ones((6, 1, 3, 3), np.float32), requires_grad=True, device=device)
    b = fastnn.tensor(np.ones(6, np.float32), requires_grad=True, device=device)
    out = conv2d(x, w, b, padding=1, groups=3, algorithm=algorithm)
    assert out.shape == (0, 6, 5, 5)
    out.sum().backward()
    assert x.grad.shape == (0, 3, 5, 5)
    assert not host(w.grad).any() and not host(b.grad).any()


def test_output_shape_helper():
    assert conv2d_output_shape((8, 3, 32, 30), (16, 3, 5, 3), stride=2, padding=(2, 1)) == (8, 16, 16, 15)
    assert conv2d_output_shape((1, 1, 9, 9), (1, 1, 3, 3), dilation=3) == (1, 1, 3, 3)


def test_auto_picks_direct_for_thin_or_large_plane_and_im2col_for_wide_layers():
    choose_algorithm = CPU.conv_algorithm
    assert choose_algorithm((32, 1, 5, 5), 1, (1, 1), (24, 24)) == "direct"
    assert choose_algorithm((64, 3, 3, 3), 1, (1, 1), (32, 32)) == "direct"
    assert choose_algorithm((64, 1, 3, 3), 64, (1, 1), (8, 8)) == "direct"
    assert choose_algorithm((64, 64, 3, 3), 1, (1, 1), (16, 16)) == "winograd"
    assert choose_algorithm((32, 32, 3, 3), 1, (2, 2), (16, 16)) == "im2col"
    assert choose_algorithm((256, 64, 1, 1), 1, (1, 1), (56, 56)) == "im2col"
    assert choose_algorithm((64, 64, 5, 5), 1, (1, 1), (56, 56)) == "direct"
    assert choose_algorithm((64, 64, 5, 5), 1, (1, 1), (16, 16)) == "direct"
    # Below Winograd's 24 input channels, the register-blocked direct kernel wins fwd+bwd from 3 output pixels per
    # input channel (cpu_conv); from 24 channels Winograd does (1 thread, load ~2.6, Winograd / direct time
    # fwd+bwd: 20 channels at 32x32 1.09, 24 at 32x32 0.94, at 16x16 0.96). Without a backward direct wins up to 32
    # (forward: 24 channels at 32x32 1.18, at 16x16 1.08; 32 at 16x16 0.94).
    assert choose_algorithm((64, 16, 3, 3), 1, (1, 1), (14, 14)) == "direct"
    assert choose_algorithm((64, 16, 3, 3), 1, (1, 1), (6, 6)) == "im2col"
    assert choose_algorithm((20, 20, 3, 3), 1, (1, 1), (32, 32)) == "direct"
    assert choose_algorithm((24, 24, 3, 3), 1, (1, 1), (16, 16)) == "winograd"
    assert choose_algorithm((24, 24, 3, 3), 1, (1, 1), (16, 16), backward=False) == "direct"
    assert choose_algorithm((32, 32, 3, 3), 1, (1, 1), (16, 16), backward=False) == "winograd"
    assert choose_algorithm((64, 32, 3, 3), 1, (1, 1), (14, 14)) == "winograd"
    assert choose_algorithm((64, 3, 7, 7), 1, (2, 2), (112, 112)) == "direct"  # resnet18's stem


# ---- errors -------------------------------------------------------------------------------------------------


def _t(shape, dtype=np.float32):
    return fastnn.tensor(np.zeros(shape, dtype))


@pytest.mark.parametrize("dtype", [np.int64, np.int32, np.bool_])
def test_non_float_input_is_a_type_error(dtype):
    with pytest.raises(TypeError, match=np.dtype(dtype).name):
        conv2d(_t((1, 1, 4, 4), dtype), _t((1, 1, 3, 3)))


@pytest.mark.parametrize("make_args, error, fragment", [
    (lambda: (_t((1, 1, 4, 4)), _t((1, 1, 3, 3), np.float64)), TypeError, "does not match input dtype"),
    (lambda: (_t((1, 1, 4, 4)), _t((1, 1, 3, 3)), _t((1,), np.float64)), TypeError, "bias dtype"),
    (lambda: (_t((4, 4)), _t((1, 1, 3, 3))), ValueError, r"\(4, 4\)"),
    (lambda: (_t((1, 1, 4, 4)), _t((1, 3, 3))), ValueError, r"weight.*\(1, 3, 3\)"),
    (lambda: (_t((1, 3, 4, 4)), _t((2, 2, 3, 3))), ValueError, r"\(1, 3, 4, 4\) has 3 channels"),
    (lambda: (_t((1, 2, 4, 4)), _t((1, 2, 5, 5))), ValueError, "output size"),
    (lambda: (_t((1, 2, 4, 4)), _t((3, 2, 3, 3)), _t((2,))), ValueError, r"bias shape \(2,\)"),
])
def test_bad_shapes_and_dtypes(make_args, error, fragment):
    with pytest.raises(error, match=fragment):
        conv2d(*make_args())


@pytest.mark.parametrize("kwargs, error, fragment", [
    (dict(groups=2), ValueError, "divisible by groups"),
    (dict(groups=0), ValueError, "groups must be a positive int"),
    (dict(stride=0), ValueError, "stride must be >= 1"),
    (dict(padding=-1), ValueError, "padding must be >= 0"),
    (dict(dilation=(1, 0)), ValueError, "dilation must be >= 1"),
    (dict(stride=(1, 2, 3)), TypeError, "stride must be an int or a tuple of 2 ints"),
    (dict(padding="full"), ValueError, "'valid' or 'same'"),
    (dict(padding="same", stride=2), ValueError, "not supported for strided"),
    (dict(algorithm="fft"), ValueError, "algorithm must be one of"),
])
def test_bad_arguments(kwargs, error, fragment):
    with pytest.raises(error, match=fragment):
        conv2d(_t((1, 3, 6, 6)), _t((3, 3, 3, 3)), **kwargs)


def test_argument_fast_path_and_geometry_cache_keep_the_checks():
    """The per-call fast path (exact ints) and the geometry cache never let through an argument that compares
    equal to a valid one (True == 1 == 1.0): the same errors after the valid call has been cached; NumPy ints
    still work, with the same result."""
    rng = np.random.default_rng(0)
    x, w = (fastnn.tensor(rng.standard_normal(s).astype(np.float32)) for s in ((1, 3, 6, 6), (3, 3, 3, 3)))
    expected = host(conv2d(x, w, stride=(1, 1), padding=(1, 1), dilation=(1, 1)))
    for kwargs in (dict(stride=(1, True)), dict(stride=True), dict(padding=(True, 1)), dict(dilation=1.0),
                   dict(padding=(1.0, 1))):
        with pytest.raises(TypeError, match="must be an int or a tuple of 2 ints"):
            conv2d(x, w, **{"padding": 1, **kwargs})
    with pytest.raises(ValueError, match="groups must be a positive int"):
        conv2d(x, w, padding=1, groups=True)
    for _ in range(2):  # an error is raised again, not cached
        with pytest.raises(ValueError, match="output size"):
            conv2d(x, _t((3, 3, 7, 7)))
    out = conv2d(x, w, stride=np.int64(1), padding=[np.int32(1), 1], dilation=(np.int16(1), 1), groups=np.int64(1))
    np.testing.assert_array_equal(host(out), expected)
    assert conv2d_output_shape((1, 3, 6, 6), (3, 3, 3, 3), padding=np.int64(1)) == (1, 3, 6, 6)
    assert all(type(n) is int for n in conv2d_output_shape((1, 3, 6, 6), (3, 3, 3, 3), padding=1))



def test_conv2d_without_bias_registers_none_like_pytorch():
    """bias=False: `bias` is None, absent from parameters and state_dict; a Parameter assigned later is used."""
    conv = fastnn.nn.Conv2d(2, 3, 3, bias=False)
    assert conv.bias is None and [n for n, _ in conv.named_parameters()] == ["weight"]
    assert list(conv.state_dict()) == ["weight"]
    x = fastnn.tensor(np.random.default_rng(1).standard_normal((1, 2, 5, 5)).astype(np.float32))
    before = host(conv(x))
    conv.bias = fastnn.nn.Parameter(fastnn.tensor(np.array([1.0, 2.0, 3.0], np.float32)))
    assert list(conv.state_dict()) == ["weight", "bias"]
    np.testing.assert_allclose(host(conv(x)), before + np.array([1, 2, 3], np.float32).reshape(3, 1, 1), rtol=1e-6)

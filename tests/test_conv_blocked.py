"""The register-blocked direct kernel (cpu_conv._tap_sum_blocked: 4 channels x 16 pixels per block, or 32 where the
compile target has 512-bit vectors) against the NumPy reference, on shapes that take it: output rows computed in
place or as a wide plane, strided and dilated (stride phases), grouped, uneven chunks of blocks per iteration,
forward and input gradient; both runs of pixels on every host (32-pixel blocks compile for AVX2 too, in ymm)."""
import numpy as np
import pytest

from fastnn._kernels import cpu_conv, ref_conv


def _assert_close(actual, expected):
    if actual.dtype == np.float64:
        np.testing.assert_allclose(actual, expected, rtol=1e-10, atol=1e-10)
    else:
        np.testing.assert_allclose(actual, expected, rtol=1e-4, atol=1e-4 * (1 + np.abs(expected).max()))


@pytest.fixture(params=[16, 32])
def vector_run(request, monkeypatch):
    """The blocked kernels' runs of pixels as on an AVX2 host (16) and on an AVX-512 one (32)."""
    monkeypatch.setattr(cpu_conv, "_VECTOR_RUN", request.param)
    return request.param


@pytest.fixture(params=[("pool", "blocks outer"), ("serial", "blocks outer"), ("pool", "rows outer")])
def blocked_only(request, monkeypatch, vector_run):
    """Fail if the unblocked _tap_sum runs: every case here must take the blocked kernel. Each case runs its
    forward on the pool and on the calling thread (the serial twin of small convs, cpu_conv._SERIAL_BELOW_MACS),
    in both orders of the in-row computation (cpu_conv._BLOCKS_OUTER_MAX_BYTES) and with both runs of pixels."""
    def refuse(*args):
        raise AssertionError("the unblocked _tap_sum ran")
    threads, order = request.param
    monkeypatch.setattr(cpu_conv, "_tap_sum", refuse)
    monkeypatch.setattr(cpu_conv, "_SERIAL_BELOW_MACS", 0 if threads == "pool" else 1 << 40)
    monkeypatch.setattr(cpu_conv, "_BLOCKS_OUTER_MAX_BYTES", 1 << 40 if order == "blocks outer" else 0)


# (x shape, w shape, stride, padding, dilation, groups); each with Cout/groups and Cin/groups multiples of 4
# so that forward and input gradient both block.
CASES = [
    ((2, 8, 16, 16), (8, 8, 3, 3), 1, 1, 1, 1),       # 16-wide rows: computed in place, one block a row
    ((2, 4, 7, 32), (8, 4, 3, 3), 1, 1, 1, 1),        # 32-wide rows: in place, one 32-pixel block a row
    ((2, 4, 5, 62), (4, 4, 3, 3), 1, 1, 1, 1),        # 62-wide rows: the second 32-pixel block overlaps the first
    ((2, 4, 6, 6), (4, 4, 1, 1), 1, 0, 1, 1),         # a 36-pixel plane: 32-pixel blocks through the buffer
    ((2, 4, 5, 5), (4, 4, 1, 1), 1, 0, 1, 1),         # a 25-pixel plane: 16-pixel blocks for either run
    ((2, 4, 30, 30), (12, 4, 3, 3), 1, 1, 1, 1),      # 30-wide rows: the second block of a row overlaps the first
    ((2, 8, 14, 14), (12, 8, 3, 3), 1, 1, 1, 1),      # 14-wide rows: the wide plane through a buffer
    ((3, 4, 21, 19), (8, 4, 5, 5), 2, 2, 1, 1),       # stride 2: the stride phases of the input
    ((2, 8, 18, 23), (16, 4, 3, 3), 1, 2, 2, 2),      # dilated, two groups
    ((1, 4, 9, 40), (4, 4, 1, 1), 1, 0, 1, 1),        # 1x1, long thin plane
]


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("case", CASES)
def test_blocked_forward_and_input_gradient_match_reference(blocked_only, case, dtype):
    x_shape, w_shape, stride, padding, dilation, groups = case
    rng = np.random.default_rng(sum(x_shape) + sum(w_shape))
    x = rng.standard_normal(x_shape).astype(dtype)
    w = rng.standard_normal(w_shape).astype(dtype)
    b = rng.standard_normal(w_shape[0]).astype(dtype)
    args = ((stride,) * 2, (padding,) * 2, (dilation,) * 2, groups)
    expected = ref_conv.conv2d_forward(x, w, b, *args)
    _assert_close(cpu_conv.conv2d_forward_direct(x, w, b, *args), expected)
    grad_out = rng.standard_normal(expected.shape).astype(dtype)
    grad_x = cpu_conv.conv2d_backward_direct(grad_out, x, w, *args, True, False, False)[0]
    _assert_close(grad_x, ref_conv.conv2d_backward(grad_out, x, w, *args)[0])


@pytest.mark.parametrize("chunk", [1, 3, 4])
def test_blocked_chunks_of_blocks_match_reference_and_are_deterministic(blocked_only, monkeypatch, chunk):
    """4 blocks of 4 channels per group, shared out `chunk` per iteration (3: uneven, 3 + 1)."""
    monkeypatch.setattr(cpu_conv, "_blocks_per_task", lambda *shapes: chunk)
    rng = np.random.default_rng(chunk)
    x = rng.standard_normal((3, 6, 17, 16)).astype(np.float32)
    w = rng.standard_normal((32, 3, 3, 3)).astype(np.float32)
    args = ((1, 1), (1, 1), (1, 1), 2)
    out = cpu_conv.conv2d_forward_direct(x, w, None, *args)
    _assert_close(out, ref_conv.conv2d_forward(x, w, None, *args))
    for _ in range(3):
        assert np.array_equal(cpu_conv.conv2d_forward_direct(x, w, None, *args), out)


def test_blocks_per_task_keeps_weights_in_l1_and_enough_iterations():
    # (blocks, taps * 4): 16 blocks of 288 taps (4.6 KB each): 3 fit in 16 KB; 64 images leave plenty of iterations.
    assert cpu_conv._blocks_per_task(64, (16, 288 * 4), 1) == 3
    # One image: at most 16 blocks / 8 iterations = 2 blocks each.
    assert cpu_conv._blocks_per_task(1, (16, 28 * 4), 1) == 2
    # Never more than a group's blocks, never fewer than one.
    assert cpu_conv._blocks_per_task(64, (4, 28 * 4), 2) == 2
    assert cpu_conv._blocks_per_task(1, (2, 4608 * 4), 1) == 1


def test_runs_of_pixels_and_rows_by_shape(monkeypatch):
    """(run, in_rows) for (out_h, out_w, span): rows where they waste no more lanes than the wide plane."""
    monkeypatch.setattr(cpu_conv, "_VECTOR_RUN", 16)
    assert cpu_conv._run_and_rows(32, 32, 31 * 34 + 32, 144) == (16, True)  # resnet20's 32x32 planes
    assert cpu_conv._run_and_rows(16, 16, 15 * 18 + 16, 288) == (16, True)
    assert cpu_conv._run_and_rows(8, 8, 7 * 10 + 8, 576) == (16, False)     # 8x8: the wide plane
    assert cpu_conv._run_and_rows(3, 3, 2 * 5 + 3, 9) is None               # under 16 pixels: unblocked
    monkeypatch.setattr(cpu_conv, "_VECTOR_RUN", 32)
    assert cpu_conv._run_and_rows(32, 32, 31 * 34 + 32, 144) == (32, True)
    assert cpu_conv._run_and_rows(5, 62, 4 * 64 + 62, 36) == (32, True)
    assert cpu_conv._run_and_rows(16, 16, 15 * 18 + 16, 288) == (32, False)  # a long reduction pays the buffer
    assert cpu_conv._run_and_rows(28, 28, 27 * 32 + 28, 25) == (16, True)    # a short one: 16 in rows
    assert cpu_conv._run_and_rows(8, 8, 7 * 10 + 8, 9) == (32, False)
    assert cpu_conv._run_and_rows(5, 5, 25, 9) == (16, False)                # under 32 pixels: 16-pixel blocks
    assert cpu_conv._run_and_rows(3, 3, 2 * 5 + 3, 9) is None


def test_both_runs_of_pixels_sum_in_the_same_order(monkeypatch):
    """Each output's sum takes the taps in the same order in 16- and 32-pixel blocks: bit-identical results."""
    rng = np.random.default_rng(3)
    x = rng.standard_normal((4, 8, 32, 32)).astype(np.float32)
    w = rng.standard_normal((8, 8, 3, 3)).astype(np.float32)
    args = ((1, 1), (1, 1), (1, 1), 1)
    outs = []
    for run in (16, 32):
        monkeypatch.setattr(cpu_conv, "_VECTOR_RUN", run)
        outs.append(cpu_conv.conv2d_forward_direct(x, w, None, *args))
    assert np.array_equal(outs[0], outs[1])


def test_narrow_groups_and_small_planes_take_the_unblocked_kernel(monkeypatch):
    """Cout/groups not a multiple of 4 or a wide plane under 16 pixels: _tap_sum, same results."""
    calls = []
    unblocked = cpu_conv._tap_sum
    monkeypatch.setattr(cpu_conv, "_tap_sum", lambda *a: calls.append(1) or unblocked(*a))
    monkeypatch.setattr(cpu_conv, "_SERIAL_BELOW_MACS", 0)  # the pool's kernel, the one the lambda wraps
    rng = np.random.default_rng(5)
    for x_shape, w_shape in [((2, 3, 10, 10), (6, 3, 3, 3)), ((2, 4, 3, 3), (8, 4, 3, 3))]:
        x = rng.standard_normal(x_shape).astype(np.float32)
        w = rng.standard_normal(w_shape).astype(np.float32)
        args = ((1, 1), (1, 1), (1, 1), 1)
        _assert_close(cpu_conv.conv2d_forward_direct(x, w, None, *args), ref_conv.conv2d_forward(x, w, None, *args))
    assert len(calls) == 2

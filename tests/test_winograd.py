"""The Winograd F(4x4, 3x3) conv and weight-gradient kernels: against their NumPy references and the direct
definition, chunked tiles, determinism, the backward, and the fallback for convs they do not cover or that are
too small. Op-level gradchecks run with algorithm='winograd' in test_conv.py."""
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from fastnn import _dispatch
from fastnn._kernels import cpu_conv, cpu_winograd, ref_conv, ref_winograd

CPU = _dispatch.backend("cpu")


@pytest.fixture(autouse=True)
def _winograd_at_every_size(monkeypatch):
    """'winograd' runs small convs on direct/im2col (cpu_conv._WINOGRAD_MIN_*); these tests' convs are small."""
    for name in ("_WINOGRAD_MIN_MACS", "_WINOGRAD_MIN_TILES", "_WINOGRAD_MIN_TILE_USE"):
        monkeypatch.setattr(cpu_conv, name, 0)
# float32 Winograd rounds the transformed values (entries up to ~10x the input's) before the products, so it
# is looser than the direct kernels; measured errors are ~1e-6 of the output's scale for these sizes.
TOLERANCE = {np.float64: 1e-11, np.float32: 2e-5}


def _assert_close(actual, expected):
    scale = 1 + np.abs(expected).max()
    np.testing.assert_allclose(actual, expected, rtol=0, atol=TOLERANCE[actual.dtype.type] * scale)


@st.composite
def cases(draw):
    padding = (draw(st.integers(0, 2)), draw(st.integers(0, 2)))
    height = draw(st.integers(max(1, 3 - 2 * padding[0]), 14))
    width = draw(st.integers(max(1, 3 - 2 * padding[1]), 14))
    n, cin, cout = draw(st.integers(1, 3)), draw(st.integers(1, 5)), draw(st.integers(1, 5))
    dtype = draw(st.sampled_from([np.float32, np.float64]))
    rng = np.random.default_rng(draw(st.integers(0, 2 ** 32 - 1)))
    x = rng.standard_normal((n, cin, height, width)).astype(dtype)
    w = rng.standard_normal((cout, cin, 3, 3)).astype(dtype)
    b = rng.standard_normal(cout).astype(dtype) if draw(st.booleans()) else None
    return x, w, b, padding


@settings(max_examples=40, deadline=None)
@given(cases())
def test_kernel_matches_reference_and_definition(case):
    x, w, b, padding = case
    got = cpu_winograd.conv2d_forward_winograd(x, w, b, padding)
    expected = ref_winograd.conv2d_forward(x, w, b, padding)
    assert got.dtype == x.dtype and got.shape == expected.shape
    _assert_close(got, expected)
    _assert_close(got, ref_conv.conv2d_forward(x, w, b, (1, 1), padding, (1, 1), 1))


@pytest.mark.parametrize("padding", [(0, 0), (1, 2), (2, 1)])
def test_reference_is_exact_in_float64_against_the_definition(padding):
    rng = np.random.default_rng(0)
    x, w, b = rng.standard_normal((2, 6, 11, 9)), rng.standard_normal((4, 6, 3, 3)), rng.standard_normal(4)
    out = ref_winograd.conv2d_forward(x, w, b, padding)
    np.testing.assert_allclose(out, ref_conv.conv2d_forward(x, w, b, (1, 1), padding, (1, 1), 1), rtol=1e-12,
                               atol=1e-12)
    grad_out = rng.standard_normal(out.shape)
    np.testing.assert_allclose(ref_winograd.conv2d_weight_grad(grad_out, x, padding),
                               ref_conv.conv2d_backward(grad_out, x, w, (1, 1), padding, (1, 1), 1)[1], rtol=1e-12,
                               atol=1e-11)


@pytest.mark.parametrize("chunk, slots", [(1, 3), (5, 2), (64, 4)])
def test_chunks_of_tiles_across_images_match_the_reference(monkeypatch, chunk, slots):
    """Chunks of tiles straddle images; the weight gradient sums chunks in slots, then slots in order."""
    monkeypatch.setattr(cpu_winograd, "_TILES_PER_CHUNK", chunk)
    monkeypatch.setattr(cpu_winograd, "_MIN_TILES_PER_CHUNK", 1)
    monkeypatch.setattr(cpu_winograd, "_WEIGHT_SLOTS", slots)
    rng = np.random.default_rng(1)
    x, w = rng.standard_normal((3, 4, 10, 7)), rng.standard_normal((5, 4, 3, 3))
    grad_out = rng.standard_normal((3, 5, 10, 7))
    np.testing.assert_allclose(cpu_winograd.conv2d_forward_winograd(x, w, None, (1, 1)),
                               ref_winograd.conv2d_forward(x, w, None, (1, 1)), rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(cpu_winograd.conv2d_weight_grad_winograd(grad_out, x, (1, 1)),
                               ref_winograd.conv2d_weight_grad(grad_out, x, (1, 1)), rtol=1e-12, atol=1e-12)


def test_layout_copies_walk_the_pixels_unless_the_channel_rows_share_an_l1_set():
    pixel_by_pixel = cpu_winograd._pixel_by_pixel
    # Rows 4 KiB apart (32x32 float32 planes, or 16x32 float64) all map to one 8-way L1 set.
    assert pixel_by_pixel(8, 4096) and not pixel_by_pixel(9, 4096) and not pixel_by_pixel(16, 32 * 32 * 8)
    # 1 KiB apart: four sets take turns, 8 rows each for 32 channels.
    assert pixel_by_pixel(32, 16 * 16 * 4) and not pixel_by_pixel(33, 16 * 16 * 4)
    assert pixel_by_pixel(64, 8 * 8 * 4) and pixel_by_pixel(512, 14 * 14 * 4) and pixel_by_pixel(3, 8)


@pytest.mark.parametrize("shape, dtype, pixel_by_pixel", [((2, 13, 7, 9), np.float32, True),
                                                          ((2, 16, 32, 32), np.float32, False),
                                                          ((1, 9, 1024, 3), np.float32, False),
                                                          ((1, 17, 16, 32), np.float64, False),
                                                          ((1, 7, 16, 32), np.float64, True)])
@pytest.mark.parametrize("padding, extra", [((0, 0), (0, 0)), ((2, 1), (3, 1))])
def test_channels_last_copy_is_the_padded_input_transposed(shape, dtype, pixel_by_pixel, padding, extra):
    """Both loop orders (odd channel counts and widths among them) give the zero-padded NumPy transpose, each
    row's columns in phase-major order: those = 0 (mod 4) first, then 1, 2, 3."""
    x = np.random.default_rng(5).standard_normal(shape).astype(dtype)
    assert cpu_winograd._pixel_by_pixel(shape[1], x.strides[1]) == pixel_by_pixel
    size = (shape[2] + padding[0] + extra[0], shape[3] + padding[1] + extra[1])
    expected = np.zeros(shape[:2] + size, dtype)
    expected[:, :, padding[0]:padding[0] + shape[2], padding[1]:padding[1] + shape[3]] = x
    columns = np.arange(size[1])
    phase_major = np.concatenate([columns[phase::4] for phase in range(4)])
    assert [cpu_winograd._column_slot(col, size[1]) for col in phase_major] == list(range(size[1]))
    np.testing.assert_array_equal(cpu_winograd._channels_last(x, padding, *size),
                                  expected.transpose(0, 2, 3, 1)[:, :, phase_major])


@pytest.mark.parametrize("chunk", [3, 7])
def test_runs_of_tiles_cut_by_chunks_and_odd_channel_counts_match_the_reference(monkeypatch, chunk):
    """The transforms combine each run of a tile row's tiles within a chunk (runs cut at chunk edges), over 19
    and 13 channels (vector loops with remainders)."""
    monkeypatch.setattr(cpu_winograd, "_TILES_PER_CHUNK", chunk)
    monkeypatch.setattr(cpu_winograd, "_MIN_TILES_PER_CHUNK", 1)
    rng = np.random.default_rng(6)
    x, w = rng.standard_normal((2, 19, 13, 18)), rng.standard_normal((13, 19, 3, 3))
    grad_out = rng.standard_normal((2, 13, 13, 18))
    np.testing.assert_allclose(cpu_winograd.conv2d_forward_winograd(x, w, None, (1, 1)),
                               ref_winograd.conv2d_forward(x, w, None, (1, 1)), rtol=1e-12, atol=1e-11)
    np.testing.assert_allclose(cpu_winograd.conv2d_weight_grad_winograd(grad_out, x, (1, 1)),
                               ref_winograd.conv2d_weight_grad(grad_out, x, (1, 1)), rtol=1e-12, atol=1e-10)


@pytest.mark.parametrize("n, channels, size", [(1, 24, 4), (2, 3, 9)])
def test_weight_gradient_over_all_tiles_or_in_slots_matches_the_reference(n, channels, size):
    """Few tiles for many channels (1 tile, 24 channels): one GEMM per position over all tiles, whose
    transforms take less memory than the slots' partial sums; many tiles for few channels: the slots."""
    rng = np.random.default_rng(4)
    x, grad_out = rng.standard_normal((n, channels, size, size)), rng.standard_normal((n, channels + 1, size, size))
    np.testing.assert_allclose(cpu_winograd.conv2d_weight_grad_winograd(grad_out, x, (1, 1)),
                               ref_winograd.conv2d_weight_grad(grad_out, x, (1, 1)), rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("cin, cout", [(16, 8), (32, 12), (16, 16), (16, 6), (24, 8), (80, 64)])
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_weight_gradient_register_blocks_or_blas_match_the_reference(monkeypatch, cin, cout, dtype):
    """float32 channels in whole 4x16 blocks (Cout % 4 == 0, Cin % 16 == 0, up to 64 x 64) take the
    register-blocked products (output rows in 6x16 blocks, an even number of them, the rest in 4x16 ones: 8
    rows all 4, 12 all 6, 16 as 12 + 4), others and float64 BLAS; both accumulate several chunks per slot."""
    monkeypatch.setattr(cpu_winograd, "_TILES_PER_CHUNK", 5)
    monkeypatch.setattr(cpu_winograd, "_MIN_TILES_PER_CHUNK", 1)
    monkeypatch.setattr(cpu_winograd, "_WEIGHT_SLOTS", 2)
    rng = np.random.default_rng(cin + cout)
    x, grad_out = rng.standard_normal((3, cin, 9, 10)), rng.standard_normal((3, cout, 9, 10))
    grad_w = cpu_winograd.conv2d_weight_grad_winograd(grad_out.astype(dtype), x.astype(dtype), (1, 1))
    expected = ref_winograd.conv2d_weight_grad(grad_out, x, (1, 1))
    assert grad_w.dtype == dtype
    np.testing.assert_allclose(grad_w, expected, rtol=0, atol=TOLERANCE[dtype] * np.abs(expected).max())


def test_wide_layer_float32_is_bit_identical_run_to_run_and_close_to_the_definition():
    """Forward and weight gradient: fixed chunks and slots, whatever the thread count."""
    rng = np.random.default_rng(2)
    x = rng.standard_normal((8, 64, 16, 16)).astype(np.float32)
    w = (rng.standard_normal((32, 64, 3, 3)) * 0.1).astype(np.float32)
    grad_out = rng.standard_normal((8, 32, 16, 16)).astype(np.float32)

    def run():
        return (CPU.kernels.conv2d_forward(x, w, None, (1, 1), (1, 1), (1, 1), 1, "winograd"),
                cpu_winograd.conv2d_weight_grad_winograd(grad_out, x, (1, 1)))  # 128 tiles: 4 slots of 2 chunks

    first, grad_w = run()
    threads = CPU.get_num_threads()
    CPU.set_num_threads(1)
    try:
        again = run()
    finally:
        CPU.set_num_threads(threads)
    assert np.array_equal(first, again[0]) and np.array_equal(grad_w, again[1])
    expected = ref_conv.conv2d_forward(x.astype(np.float64), w.astype(np.float64), None, (1, 1), (1, 1), (1, 1), 1)
    np.testing.assert_allclose(first, expected, rtol=0, atol=1e-5 * np.abs(expected).max())
    np.testing.assert_allclose(grad_w, ref_conv.conv2d_backward(grad_out.astype(np.float64), x.astype(np.float64),
                                                               w.astype(np.float64), (1, 1), (1, 1), (1, 1), 1)[1],
                               rtol=0, atol=1e-5 * np.abs(grad_w).max())


@settings(max_examples=25, deadline=None)
@given(cases(), st.integers(0, 2 ** 32 - 1))
def test_backward_matches_reference(case, seed):
    x, w, _, padding = case
    out_shape = (x.shape[0], w.shape[0], x.shape[2] + 2 * padding[0] - 2, x.shape[3] + 2 * padding[1] - 2)
    grad_out = np.random.default_rng(seed).standard_normal(out_shape).astype(x.dtype)
    expected = ref_conv.conv2d_backward(grad_out, x, w, (1, 1), padding, (1, 1), 1)
    got = CPU.kernels.conv2d_backward(grad_out, x, w, (1, 1), padding, (1, 1), 1, True, True, True, "winograd")
    for g, e in zip(got, expected):
        assert g.dtype == x.dtype and g.shape == e.shape
        _assert_close(g, e)
    _assert_close(got[1], ref_winograd.conv2d_weight_grad(grad_out, x, padding))


@pytest.mark.parametrize("w_shape, stride, padding, dilation, groups", [
    ((4, 2, 3, 3), (1, 1), (1, 1), (2, 2), 1),   # dilated
    ((4, 2, 3, 3), (2, 1), (1, 1), (1, 1), 1),   # strided
    ((4, 2, 5, 5), (1, 1), (2, 2), (1, 1), 1),   # 5x5
    ((4, 1, 3, 3), (1, 1), (1, 1), (1, 1), 2),   # grouped
    ((4, 2, 3, 3), (1, 1), (3, 3), (1, 1), 1),   # padding > 2: its input gradient would need negative padding
])
def test_convs_winograd_does_not_cover_run_on_the_other_kernels(w_shape, stride, padding, dilation, groups):
    assert not cpu_winograd.winograd_applies(w_shape, stride, padding, dilation, groups)
    rng = np.random.default_rng(3)
    x, w = rng.standard_normal((2, 2, 9, 9)), rng.standard_normal(w_shape)
    expected = ref_conv.conv2d_forward(x, w, None, stride, padding, dilation, groups)
    got = CPU.kernels.conv2d_forward(x, w, None, stride, padding, dilation, groups, "winograd")
    np.testing.assert_allclose(got, expected, rtol=1e-10, atol=1e-10)
    grad_out = rng.standard_normal(expected.shape)
    for g, e in zip(CPU.kernels.conv2d_backward(grad_out, x, w, stride, padding, dilation, groups, True, True, True,
                                                "winograd"),
                    ref_conv.conv2d_backward(grad_out, x, w, stride, padding, dilation, groups)):
        np.testing.assert_allclose(g, e, rtol=1e-10, atol=1e-10)


def test_policy_picks_winograd_for_wide_stride_1_3x3_only():
    choose = CPU.conv_algorithm
    assert choose((64, 64, 3, 3), 1, (1, 1), (16, 16)) == "winograd"
    assert choose((128, 128, 3, 3), 1, (1, 1), (8, 8)) == "winograd"
    assert choose((64, 32, 3, 3), 1, (1, 1), (14, 14)) == "winograd"
    assert choose((16, 16, 3, 3), 1, (1, 1), (32, 32)) != "winograd"  # 16 input channels: direct is faster
    assert choose((64, 3, 3, 3), 1, (1, 1), (32, 32)) != "winograd"
    assert choose((64, 64, 3, 3), 1, (2, 2), (8, 8)) != "winograd"
    assert choose((64, 64, 5, 5), 1, (1, 1), (8, 8)) != "winograd"
    assert choose((64, 2, 3, 3), 32, (1, 1), (8, 8)) != "winograd"


def test_inf_in_input_makes_the_outputs_that_see_it_non_finite():
    """Like PyTorch's Winograd kernels, an inf spreads through its 6x6 patch transform: the outputs that see it
    are non-finite as in the definition (some NaN, inf - inf in the transforms), and so may be their tile
    neighbours; the tiles whose patches miss it are exact."""
    x = np.zeros((2, 3, 12, 12), np.float32)
    x[1, 2, 10, 11] = np.inf
    w = np.ones((5, 3, 3, 3), np.float32)
    out = cpu_winograd.conv2d_forward_winograd(x, w, None, (1, 1))
    expected = ref_conv.conv2d_forward(x, w, None, (1, 1), (1, 1), (1, 1), 1)
    assert not np.isfinite(out[~np.isfinite(expected)]).any()
    # Tiles are 4x4 from the origin; with padding 1, input row/column 10-11 lie in the patches of tiles 2 only.
    np.testing.assert_array_equal(out[0], expected[0])
    np.testing.assert_array_equal(out[1, :, :8, :], expected[1, :, :8, :])
    np.testing.assert_array_equal(out[1, :, :, :8], expected[1, :, :, :8])


def test_winograd_leaves_convs_too_small_for_its_transforms_to_the_other_kernels(monkeypatch):
    monkeypatch.setattr(cpu_conv, "_WINOGRAD_MIN_MACS", 1 << 23)
    calls = []
    monkeypatch.setattr(cpu_winograd, "conv2d_forward_winograd", lambda *args: calls.append(args))
    x, w = np.ones((1, 16, 32, 32), np.float32), np.ones((16, 16, 3, 3), np.float32)  # 2.4M multiply-adds
    out = CPU.kernels.conv2d_forward(x, w, None, (1, 1), (1, 1), (1, 1), 1, "winograd")
    assert not calls and out[0, 0, 5, 5] == 16 * 9
    CPU.kernels.conv2d_forward(np.ones((4, 16, 32, 32), np.float32), w, None, (1, 1), (1, 1), (1, 1), 1, "winograd")
    assert len(calls) == 1


@pytest.mark.parametrize("x_shape, w_shape, winograd", [
    ((1, 256, 14, 14), (256, 256, 3, 3), False),  # one image: 16 tiles
    ((1, 128, 28, 28), (128, 128, 3, 3), True),   # 49 tiles
    ((128, 512, 2, 2), (512, 512, 3, 3), False),  # 2x2 planes use a quarter of each 4x4 tile
    ((128, 512, 4, 4), (512, 512, 3, 3), True),
])
def test_winograd_leaves_few_tiles_and_tiny_planes_to_the_other_kernels(monkeypatch, x_shape, w_shape, winograd):
    for name, value in [("_WINOGRAD_MIN_MACS", 1 << 23), ("_WINOGRAD_MIN_TILES", 32), ("_WINOGRAD_MIN_TILE_USE", 0.5)]:
        monkeypatch.setattr(cpu_conv, name, value)
    assert CPU.conv_algorithm(w_shape, 1, (1, 1), x_shape[2:]) == "winograd"
    ran = cpu_conv._runnable("winograd", x_shape, w_shape, (1, 1), (1, 1), (1, 1), 1, x_shape[2:])
    assert (ran == "winograd") == winograd


@pytest.mark.parametrize("padding, size, shared", [((1, 1), (14, 14), True), ((0, 1), (9, 13), True),
                                                   ((2, 2), (14, 14), True), ((2, 2), (12, 12), False),
                                                   ((2, 0), (10, 7), True)])
def test_backward_shares_the_output_gradient_copy_where_its_zeros_reach_whole_tiles(monkeypatch, padding, size,
                                                                                    shared):
    """The input gradient's channels-last copy of grad_out (padded by 2 - padding) serves the weight gradient
    when its zeros cover whole tiles (a 14x14 grad_out at padding 2 needs 16 rows, the copy has 12 + 2): both
    gradients, alone or together, match the definition."""
    rng = np.random.default_rng(7)
    x, w = rng.standard_normal((2, 5) + size), rng.standard_normal((3, 5, 3, 3))
    out_hw = (size[0] + 2 * padding[0] - 2, size[1] + 2 * padding[1] - 2)
    grad_out = rng.standard_normal((2, 3) + out_hw)
    expected = ref_conv.conv2d_backward(grad_out, x, w, (1, 1), padding, (1, 1), 1)
    copies = []
    layout = cpu_winograd._channels_last
    monkeypatch.setattr(cpu_winograd, "_channels_last", lambda a, *args: copies.append(a.shape) or layout(a, *args))
    both = cpu_winograd.conv2d_backward_winograd(grad_out, x, w, padding, True, True)
    assert len(copies) == (2 if shared else 3)  # grad_out once or twice, x once
    alone = (cpu_winograd.conv2d_backward_winograd(grad_out, x, w, padding, True, False)[0],
             cpu_winograd.conv2d_backward_winograd(grad_out, x, w, padding, False, True)[1])
    for got in (both, alone):
        np.testing.assert_allclose(got[0], expected[0], rtol=1e-11, atol=1e-11)
        np.testing.assert_allclose(got[1], expected[1], rtol=1e-11, atol=1e-10)
    assert np.array_equal(both[1], alone[1])


@pytest.mark.parametrize("cin, cout", [(16, 8), (32, 12), (5, 16), (16, 6), (24, 20), (3, 1), (80, 8)])
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("chunk, max_weights", [(5, 0), (128, 128 * 256), (128, 0)])
def test_forward_register_blocks_or_blas_match_the_reference(monkeypatch, cin, cout, dtype, chunk, max_weights):
    """float32 with Cout a multiple of 4 takes the register-blocked products (rows in 6x16 blocks, the rest in
    4x16 ones) within _BLOCKED_FORWARD_MAX_WEIGHTS or for chunks of at most _MIN_TILES_PER_CHUNK tiles, other
    channel counts, float64 and larger weights BLAS (80 input channels: the transpose in blocks of 8 tiles).
    The 60 tiles in chunks of 5 (at most
    _MIN_TILES_PER_CHUNK) or 8 (_MIN_CHUNKS), padded with zero tiles to 16 columns."""
    monkeypatch.setattr(cpu_winograd, "_TILES_PER_CHUNK", chunk)
    monkeypatch.setattr(cpu_winograd, "_MIN_TILES_PER_CHUNK", 5)
    monkeypatch.setattr(cpu_winograd, "_BLOCKED_FORWARD_MAX_WEIGHTS", max_weights)
    rng = np.random.default_rng(cin * 100 + cout)
    x, w, b = rng.standard_normal((5, cin, 9, 14)), rng.standard_normal((cout, cin, 3, 3)), rng.standard_normal(cout)
    got = cpu_winograd.conv2d_forward_winograd(x.astype(dtype), w.astype(dtype), b.astype(dtype), (1, 2))
    expected = ref_winograd.conv2d_forward(x, w, b, (1, 2))
    assert got.dtype == dtype
    np.testing.assert_allclose(got, expected, rtol=0, atol=TOLERANCE[dtype] * np.abs(expected).max())

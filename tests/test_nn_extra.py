"""Resampling, padding, pixel shuffle, unfold/fold and vector ops of nn.functional and their layers (issue 14):
values against plain-NumPy references written from PyTorch's formulas, PyTorch's documented results as facts,
gradients against finite differences in float64, on every device."""
import math

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

import fastnn
from fastnn import nn
from fastnn.autograd import gradcheck
from fastnn.nn import functional as F
from conftest import host

few = settings(max_examples=10, suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])


def leaf(a, device):
    return fastnn.tensor(np.asarray(a, dtype=np.float64), requires_grad=True, device=device)


def rand(shape, seed=0):
    return np.random.default_rng(seed).standard_normal(shape)


# ---- references (loops over output positions, PyTorch's index formulas) --------------------------------------
def ref_source_linear(n_in, n_out, align_corners, scale=None):
    """(i0, i1, lambda1) per output index: aten's area_pixel_compute_source_index for linear modes."""
    out = []
    for dst in range(n_out):
        if align_corners:
            src = dst * ((n_in - 1) / (n_out - 1)) if n_out > 1 else 0.0
        else:
            s = n_in / n_out if scale is None else scale
            src = max((dst + 0.5) * s - 0.5, 0.0)
        i0 = int(math.floor(src))
        i1 = i0 + (1 if i0 < n_in - 1 else 0)
        out.append((i0, i1, src - i0))
    return out


def ref_bilinear(x, oh, ow, align_corners, scales=(None, None)):
    n, c, h, w = x.shape
    rows, cols = ref_source_linear(h, oh, align_corners, scales[0]), ref_source_linear(w, ow, align_corners, scales[1])
    out = np.zeros((n, c, oh, ow))
    for i, (h0, h1, a) in enumerate(rows):
        for j, (w0, w1, b) in enumerate(cols):
            out[:, :, i, j] = ((1 - a) * ((1 - b) * x[:, :, h0, w0] + b * x[:, :, h0, w1])
                               + a * ((1 - b) * x[:, :, h1, w0] + b * x[:, :, h1, w1]))
    return out


def ref_cubic_taps(n_in, n_out, align_corners, a=-0.75):
    """[(indices, weights)] per output index: aten's bicubic (unclamped source, Keys' kernel, edge-clamped taps)."""
    def kernel(x):
        x = abs(x)
        if x <= 1:
            return ((a + 2) * x - (a + 3)) * x * x + 1
        return ((a * x - 5 * a) * x + 8 * a) * x - 4 * a if x < 2 else 0.0
    out = []
    for dst in range(n_out):
        src = dst * ((n_in - 1) / (n_out - 1) if n_out > 1 else 0.0) if align_corners \
            else (dst + 0.5) * n_in / n_out - 0.5
        base = math.floor(src)
        out.append([(min(max(base + k, 0), n_in - 1), kernel(src - (base + k))) for k in (-1, 0, 1, 2)])
    return out


def ref_bicubic(x, oh, ow, align_corners):
    rows, cols = ref_cubic_taps(x.shape[2], oh, align_corners), ref_cubic_taps(x.shape[3], ow, align_corners)
    out = np.zeros(x.shape[:2] + (oh, ow))
    for i, rt in enumerate(rows):
        for j, ct in enumerate(cols):
            out[:, :, i, j] = sum(wr * wc * x[:, :, r, c] for r, wr in rt for c, wc in ct)
    return out


def ref_nearest_index(n_in, n_out, exact=False):
    s = np.float32(n_in / n_out)
    return [min(int(np.floor((np.float32(d) + np.float32(0.5 if exact else 0)) * s)), n_in - 1)
            for d in range(n_out)]


def ref_unfold(x, k, d, p, s):
    n, c, h, w = x.shape
    xp = np.pad(x, ((0, 0), (0, 0), (p[0], p[0]), (p[1], p[1])))
    oh = (h + 2 * p[0] - d[0] * (k[0] - 1) - 1) // s[0] + 1
    ow = (w + 2 * p[1] - d[1] * (k[1] - 1) - 1) // s[1] + 1
    out = np.zeros((n, c * k[0] * k[1], oh * ow))
    for ci in range(c):
        for i in range(k[0]):
            for j in range(k[1]):
                row = (ci * k[0] + i) * k[1] + j
                for a in range(oh):
                    for b in range(ow):
                        out[:, row, a * ow + b] = xp[:, ci, a * s[0] + i * d[0], b * s[1] + j * d[1]]
    return out


# ---- interpolate --------------------------------------------------------------------------------------------
X22 = np.arange(4.0).reshape(1, 1, 2, 2)


def test_interpolate_facts_pytorch():
    # PyTorch: F.interpolate(torch.arange(4.).view(1,1,2,2), scale_factor=2, mode=..., align_corners=...)
    bilinear = F.interpolate(fastnn.tensor(X22), scale_factor=2, mode="bilinear", align_corners=False)
    np.testing.assert_allclose(host(bilinear)[0, 0], [[0.0, 0.25, 0.75, 1.0], [0.5, 0.75, 1.25, 1.5],
                                                      [1.5, 1.75, 2.25, 2.5], [2.0, 2.25, 2.75, 3.0]])
    aligned = F.interpolate(fastnn.tensor(X22), scale_factor=2, mode="bilinear", align_corners=True)
    np.testing.assert_allclose(host(aligned)[0, 0, 0], [0.0, 1 / 3, 2 / 3, 1.0])
    np.testing.assert_allclose(host(aligned)[0, 0, :, 0], [0.0, 2 / 3, 4 / 3, 2.0])
    nearest = F.interpolate(fastnn.tensor(X22), scale_factor=2)
    np.testing.assert_array_equal(host(nearest)[0, 0], [[0, 0, 1, 1], [0, 0, 1, 1], [2, 2, 3, 3], [2, 2, 3, 3]])
    # 3 -> 5: 'nearest' takes floor(dst * 0.6) = 0,0,1,1,2; 'nearest-exact' floor((dst + .5) * .6) = 0,0,1,2,2
    x = fastnn.tensor(np.array([[[10.0, 20.0, 30.0]]]))
    np.testing.assert_array_equal(host(F.interpolate(x, size=5))[0, 0], [10, 10, 20, 20, 30])
    np.testing.assert_array_equal(host(F.interpolate(x, size=5, mode="nearest-exact"))[0, 0], [10, 10, 20, 30, 30])
    # linear 3 -> 5, align_corners=True: the ends are kept, steps of 0.5 input pixels
    np.testing.assert_allclose(host(F.interpolate(x, size=5, mode="linear", align_corners=True))[0, 0],
                               [10, 15, 20, 25, 30])
    # align_corners=False: source (dst + .5) * .6 - .5 -> 0 (clamped), .4, 1, 1.6, 2.2 (clamped to the last pixel)
    np.testing.assert_allclose(host(F.interpolate(x, size=5, mode="linear"))[0, 0], [10, 14, 20, 26, 30])
    # bicubic 2 -> 4 (align_corners=False) of (0, 1) in one row, by Keys' kernel with a = -0.75 and edge clamping:
    # source -0.25 takes taps (-2, -1, 0, 1) -> (0, 0, 0, 1): the value is the weight at distance 1.25,
    # ((a 1.25 - 5a) 1.25 + 8a) 1.25 - 4a = -0.10546875; the row is antisymmetric about 0.5 (PyTorch's values)
    row = F.interpolate(fastnn.tensor(np.array([[[[0.0, 1.0]]]])), size=(1, 4), mode="bicubic")
    np.testing.assert_allclose(host(row)[0, 0, 0], [-0.10546875, 0.2265625, 0.7734375, 1.10546875], atol=1e-15)


@few
@given(h=st.integers(1, 5), w=st.integers(1, 5), oh=st.integers(1, 7), ow=st.integers(1, 7),
       align=st.booleans(), seed=st.integers(0, 2 ** 16))
def test_bilinear_matches_reference(device, h, w, oh, ow, align, seed):
    x = rand((2, 3, h, w), seed)
    out = F.interpolate(fastnn.tensor(x, device=device), size=(oh, ow), mode="bilinear", align_corners=align)
    np.testing.assert_allclose(host(out), ref_bilinear(x, oh, ow, align), rtol=1e-12, atol=1e-12)


@few
@given(h=st.integers(1, 5), w=st.integers(1, 5), oh=st.integers(1, 7), ow=st.integers(1, 7),
       align=st.booleans(), seed=st.integers(0, 2 ** 16))
def test_bicubic_matches_reference(device, h, w, oh, ow, align, seed):
    x = rand((1, 2, h, w), seed)
    out = F.interpolate(fastnn.tensor(x, device=device), size=(oh, ow), mode="bicubic", align_corners=align)
    np.testing.assert_allclose(host(out), ref_bicubic(x, oh, ow, align), rtol=1e-12, atol=1e-12)


@few
@given(h=st.integers(1, 6), w=st.integers(1, 6), oh=st.integers(1, 9), ow=st.integers(1, 9),
       exact=st.booleans(), seed=st.integers(0, 2 ** 16))
def test_nearest_matches_reference(device, h, w, oh, ow, exact, seed):
    x = rand((1, 2, h, w), seed).astype(np.float32)
    out = F.interpolate(fastnn.tensor(x, device=device), size=(oh, ow), mode="nearest-exact" if exact else "nearest")
    ri, rj = ref_nearest_index(h, oh, exact), ref_nearest_index(w, ow, exact)
    np.testing.assert_array_equal(host(out), x[:, :, ri][:, :, :, rj])
    assert out.dtype == np.float32


def test_scale_factor_and_recompute_scale_factor():
    x = rand((1, 1, 5, 5))
    # size = floor(5 * 1.5) = 7; without recompute PyTorch maps with 1/scale_factor, with it with in/out = 5/7
    kept = F.interpolate(fastnn.tensor(x), scale_factor=1.5, mode="bilinear")
    recomputed = F.interpolate(fastnn.tensor(x), scale_factor=1.5, mode="bilinear", recompute_scale_factor=True)
    assert kept.shape == recomputed.shape == (1, 1, 7, 7)
    np.testing.assert_allclose(host(kept), ref_bilinear(x, 7, 7, False, (1 / 1.5, 1 / 1.5)), atol=1e-12)
    np.testing.assert_allclose(host(recomputed), ref_bilinear(x, 7, 7, False), atol=1e-12)
    assert np.abs(host(kept) - host(recomputed)).max() > 1e-3
    assert F.interpolate(fastnn.tensor(x), scale_factor=(2, 0.5)).shape == (1, 1, 10, 2)


def test_interpolate_integer_nearest_and_area():
    x = fastnn.tensor(np.arange(6).reshape(1, 1, 2, 3))
    out = F.interpolate(x, scale_factor=2)
    assert out.dtype == np.int64 and host(out)[0, 0, 1].tolist() == [0, 0, 1, 1, 2, 2]
    big = F.interpolate(fastnn.tensor(np.array([[[2 ** 60 + 1]]])), size=3)  # values picked, never rounded
    assert host(big).tolist() == [[[2 ** 60 + 1] * 3]]
    area = F.interpolate(fastnn.tensor(np.arange(16.0).reshape(1, 1, 4, 4)), size=(2, 2), mode="area")
    np.testing.assert_allclose(host(area)[0, 0], [[2.5, 4.5], [10.5, 12.5]])


@pytest.mark.parametrize("mode,shape,size,align", [
    ("nearest", (2, 2, 3, 4), (5, 3), None), ("nearest-exact", (2, 2, 3, 4), (2, 7), None),
    ("bilinear", (2, 2, 3, 4), (5, 7), None), ("bilinear", (2, 2, 3, 4), (2, 7), True),
    ("linear", (2, 3, 4), (7,), None), ("linear", (2, 3, 4), (3,), True),
    ("trilinear", (1, 2, 2, 3, 2), (3, 4, 3), None), ("trilinear", (1, 2, 2, 3, 2), (3, 2, 3), True),
    ("bicubic", (1, 2, 3, 4), (5, 7), None), ("bicubic", (1, 2, 3, 4), (2, 6), True)])
def test_interpolate_gradcheck(device, mode, shape, size, align):
    x = leaf(rand(shape), device)
    assert gradcheck(lambda t: F.interpolate(t, size=size, mode=mode, align_corners=align), [x])


def test_interpolate_errors():
    x = fastnn.tensor(rand((1, 1, 4, 4)))
    with pytest.raises(ValueError, match="only one of size or scale_factor"):
        F.interpolate(x, size=2, scale_factor=2)
    with pytest.raises(ValueError, match="either size or scale_factor"):
        F.interpolate(x)
    with pytest.raises(ValueError, match="align_corners option can only be set"):
        F.interpolate(x, scale_factor=2, align_corners=True)
    with pytest.raises(NotImplementedError, match="Got 4D input, but linear mode needs 3D input"):
        F.interpolate(x, scale_factor=2, mode="linear")
    with pytest.raises(ValueError, match="mode must be one of"):
        F.interpolate(x, scale_factor=2, mode="cubic")
    with pytest.raises(ValueError, match="recompute_scale_factor is not meaningful"):
        F.interpolate(x, size=3, recompute_scale_factor=True)
    with pytest.raises(ValueError, match="same number of spatial dimensions"):
        F.interpolate(x, size=(2, 2, 2))


def test_upsample_layers():
    x = fastnn.tensor(X22)
    up = nn.Upsample(scale_factor=2, mode="bilinear", align_corners=True)
    np.testing.assert_allclose(host(up(x)), host(F.interpolate(x, scale_factor=2, mode="bilinear",
                                                               align_corners=True)))
    # UpsamplingBilinear2d is bilinear with align_corners=True; UpsamplingNearest2d is nearest
    np.testing.assert_allclose(host(nn.UpsamplingBilinear2d(scale_factor=2)(x)), host(up(x)))
    np.testing.assert_array_equal(host(nn.UpsamplingNearest2d(size=(4, 4))(x)),
                                  host(F.interpolate(x, scale_factor=2)))
    assert up.state_dict() == {} and repr(up) == "Upsample(scale_factor=2.0, mode='bilinear')"


# ---- padding layers -----------------------------------------------------------------------------------------
@pytest.mark.parametrize("layer,np_mode,pad,ndim", [
    (nn.ReflectionPad1d, "reflect", (2, 1), 3), (nn.ReflectionPad2d, "reflect", (1, 2, 2, 0), 4),
    (nn.ReplicationPad2d, "edge", (3, 1, 0, 2), 4), (nn.ReplicationPad1d, "edge", (1, 3), 2),
    (nn.ZeroPad2d, "constant", (1, 0, 2, 1), 4)])
def test_padding_layers_match_numpy_pad(device, layer, np_mode, pad, ndim):
    x = rand((2, 3, 4, 5)[4 - ndim:])
    out = layer(pad)(fastnn.tensor(x, device=device))
    widths = [(0, 0)] * ndim
    for i in range(len(pad) // 2):
        widths[ndim - 1 - i] = (pad[2 * i], pad[2 * i + 1])
    np.testing.assert_array_equal(host(out), np.pad(x, widths, mode=np_mode))
    assert layer(pad).state_dict() == {}
    xg = leaf(x, device)
    assert gradcheck(lambda t: layer(pad)(t), [xg])


def test_constant_pad_layers():
    x = fastnn.tensor(np.ones((1, 2, 2)))
    out = host(nn.ConstantPad2d(1, 3.5)(x))
    assert out.shape == (1, 4, 4) and out[0, 0, 0] == 3.5 and out[0, 1, 1] == 1
    assert host(nn.ConstantPad1d((0, 2), -1.0)(x))[0, 0].tolist() == [1, 1, -1, -1]
    assert nn.ZeroPad2d(2).padding == (2, 2, 2, 2)
    # PyTorch's reprs
    assert repr(nn.ZeroPad2d(2)) == "ZeroPad2d((2, 2, 2, 2))"
    assert repr(nn.ConstantPad1d(1, 3.5)) == "ConstantPad1d(padding=(1, 1), value=3.5)"
    assert repr(nn.ReflectionPad2d((1, 0, 2, 0))) == "ReflectionPad2d((1, 0, 2, 0))"
    with pytest.raises(ValueError, match="Padding size should be less than"):
        nn.ReflectionPad2d(2)(x)
    with pytest.raises(ValueError, match="expected a 2-D or 3-D input"):
        nn.ReflectionPad1d(1)(fastnn.tensor(np.ones((1, 1, 3, 3))))
    with pytest.raises(TypeError, match="padding"):
        nn.ZeroPad2d((1, 2, 3))


# ---- pixel shuffle ------------------------------------------------------------------------------------------
def test_pixel_shuffle_fact_and_inverse(device):
    # PyTorch: out[n, c, h*r + i, w*r + j] = in[n, c*r*r + i*r + j, h, w]
    x = rand((2, 8, 3, 2))
    out = host(F.pixel_shuffle(fastnn.tensor(x, device=device), 2))
    assert out.shape == (2, 2, 6, 4)
    for c in range(2):
        for i in range(2):
            for j in range(2):
                np.testing.assert_array_equal(out[:, c, i::2, j::2], x[:, c * 4 + i * 2 + j])
    back = F.pixel_unshuffle(fastnn.tensor(out, device=device), 2)
    np.testing.assert_array_equal(host(back), x)
    assert nn.PixelShuffle(2)(fastnn.tensor(x, device=device)).shape == (2, 2, 6, 4)
    assert nn.PixelUnshuffle(3)(fastnn.tensor(rand((5, 1, 6, 3)))).shape == (5, 9, 2, 1)
    xg = leaf(rand((1, 9, 2, 2)), device)
    assert gradcheck(lambda t: F.pixel_shuffle(t, 3), [xg])
    assert gradcheck(lambda t: F.pixel_unshuffle(t, 2), [leaf(rand((2, 1, 4, 2)), device)])
    with pytest.raises(RuntimeError, match="divisible by the square of upscale_factor"):
        F.pixel_shuffle(fastnn.tensor(rand((1, 6, 2, 2))), 2)
    with pytest.raises(ValueError, match="upscale_factor must be a positive integer"):
        F.pixel_shuffle(fastnn.tensor(rand((1, 4, 2, 2))), 0)


# ---- unfold / fold ------------------------------------------------------------------------------------------
@few
@given(h=st.integers(2, 6), w=st.integers(2, 6), k=st.tuples(st.integers(1, 3), st.integers(1, 3)),
       d=st.tuples(st.integers(1, 2), st.integers(1, 2)), p=st.tuples(st.integers(0, 1), st.integers(0, 2)),
       s=st.tuples(st.integers(1, 2), st.integers(1, 3)), seed=st.integers(0, 2 ** 16))
def test_unfold_matches_reference_and_fold_is_its_adjoint(device, h, w, k, d, p, s, seed):
    blocks = [(n + 2 * pp - dd * (kk - 1) - 1) // ss + 1 for n, kk, dd, pp, ss in zip((h, w), k, d, p, s)]
    if min(blocks) < 1:
        return
    x = rand((2, 3, h, w), seed)
    cols = F.unfold(fastnn.tensor(x, device=device), k, d, p, s)
    np.testing.assert_array_equal(host(cols), ref_unfold(x, k, d, p, s))
    # fold is unfold's adjoint: <unfold(x), y> == <x, fold(y)>
    y = rand(cols.shape, seed + 1)
    folded = F.fold(fastnn.tensor(y, device=device), (h, w), k, d, p, s)
    np.testing.assert_allclose(np.sum(host(cols) * y), np.sum(x * host(folded)), rtol=1e-10)


def test_unfold_fold_facts_gradients_and_layers(device):
    # every pixel of a 3x3 image lies in 4 of the 2x2 blocks of its 1-padded image: fold(unfold(x)) = 4 x
    x = rand((1, 2, 3, 3))
    u = nn.Unfold(kernel_size=2, padding=1)(fastnn.tensor(x, device=device))
    assert u.shape == (1, 8, 16)
    np.testing.assert_allclose(host(nn.Fold(output_size=3, kernel_size=2, padding=1)(u)), 4 * x)
    assert F.unfold(fastnn.tensor(x[0], device=device), 2).shape == (8, 4)  # unbatched
    assert F.fold(fastnn.tensor(rand((8, 4)), device=device), (3, 3), 2).shape == (2, 3, 3)
    assert gradcheck(lambda t: F.unfold(t, (2, 3), dilation=(1, 2), padding=1, stride=(2, 1)),
                     [leaf(rand((2, 2, 4, 5)), device)])
    assert gradcheck(lambda t: F.fold(t, (4, 5), 2, stride=(2, 1)), [leaf(rand((1, 8, 8)), device)])
    with pytest.raises(RuntimeError, match="match the calculated number of sliding blocks"):
        F.fold(fastnn.tensor(rand((1, 8, 7))), (4, 5), 2, stride=(2, 1))
    with pytest.raises(RuntimeError, match="divisible by the product of kernel_size"):
        F.fold(fastnn.tensor(rand((1, 7, 8))), (4, 5), 2)
    with pytest.raises(RuntimeError, match="Only 3D or 4D input"):
        F.unfold(fastnn.tensor(rand((4, 5))), 2)
    assert nn.Unfold(2).state_dict() == {} and nn.Fold(3, 2).state_dict() == {}


# ---- one_hot, normalize, cosine_similarity, pairwise_distance ---------------------------------------------------
def test_one_hot(device):
    t = fastnn.tensor(np.array([[0, 3], [1, 1]]), device=device)
    out = F.one_hot(t)
    assert out.dtype == np.int64 and out.shape == (2, 2, 4)
    np.testing.assert_array_equal(host(out), np.eye(4, dtype=np.int64)[[[0, 3], [1, 1]]])
    assert F.one_hot(t, num_classes=6).shape == (2, 2, 6)
    with pytest.raises(RuntimeError, match="smaller than num_classes"):
        F.one_hot(t, 3)
    with pytest.raises(RuntimeError, match="non-negative"):
        F.one_hot(fastnn.tensor(np.array([-1, 0])))
    with pytest.raises(RuntimeError, match="index tensor"):
        F.one_hot(fastnn.tensor(np.array([0.0, 1.0])))


@few
@given(shape=st.lists(st.integers(1, 4), min_size=1, max_size=3), p=st.sampled_from([1, 2, 3, math.inf]),
       seed=st.integers(0, 2 ** 16))
def test_normalize_matches_numpy(device, shape, p, seed):
    x = rand(shape, seed)
    dim = len(shape) - 1 if len(shape) < 2 else 1
    n = np.linalg.norm(np.moveaxis(x, dim, -1), ord=p, axis=-1, keepdims=True)
    expected = x / np.moveaxis(np.maximum(n, 1e-12), -1, dim)
    np.testing.assert_allclose(host(F.normalize(fastnn.tensor(x, device=device), p=p, dim=dim)), expected,
                               rtol=1e-12)


def test_vector_ops_facts_and_gradients(device):
    a, b = rand((3, 4), 1), rand((3, 4), 2)
    ta, tb = fastnn.tensor(a, device=device), fastnn.tensor(b, device=device)
    cos = (a * b).sum(1) / (np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1))
    np.testing.assert_allclose(host(F.cosine_similarity(ta, tb)), cos, rtol=1e-12)
    np.testing.assert_allclose(host(nn.CosineSimilarity(dim=0)(ta, tb)),
                               (a * b).sum(0) / (np.linalg.norm(a, axis=0) * np.linalg.norm(b, axis=0)), rtol=1e-12)
    # broadcasting (3, 4) against (4,), and eps caps the denominator: a zero vector gives 0, not NaN
    np.testing.assert_allclose(host(F.cosine_similarity(ta, fastnn.tensor(b[0], device=device), dim=-1)),
                               (a @ b[0]) / (np.linalg.norm(a, axis=1) * np.linalg.norm(b[0])), rtol=1e-12)
    assert host(F.cosine_similarity(fastnn.tensor(np.zeros((1, 3))), fastnn.tensor(np.ones((1, 3)))))[0] == 0
    # PyTorch: pairwise_distance = ||x1 - x2 + eps||_p over the last dim, eps=1e-6
    np.testing.assert_allclose(host(F.pairwise_distance(ta, tb)), np.linalg.norm(a - b + 1e-6, axis=-1),
                               rtol=1e-12)
    np.testing.assert_allclose(host(nn.PairwiseDistance(p=1, keepdim=True)(ta, tb)),
                               np.abs(a - b + 1e-6).sum(-1, keepdims=True), rtol=1e-12)
    assert host(F.pairwise_distance(fastnn.tensor([[0.0, 0.0]]), fastnn.tensor([[3.0, 4.0]]), eps=0))[0] == 5
    assert nn.CosineSimilarity().state_dict() == {} and nn.PairwiseDistance().state_dict() == {}
    la, lb = leaf(a, device), leaf(b, device)
    assert gradcheck(lambda u, v: F.cosine_similarity(u, v), [la, lb])
    assert gradcheck(lambda u, v: F.pairwise_distance(u, v, p=3), [la, lb])
    assert gradcheck(lambda u: F.normalize(u, dim=0), [la])
    with pytest.raises(TypeError, match="floating point"):
        F.normalize(fastnn.tensor(np.array([1, 2])))


def test_against_torch_if_installed():
    torch = pytest.importorskip("torch")
    x = rand((2, 3, 4, 5))
    tf = torch.nn.functional
    for mode, align in (("nearest", None), ("bilinear", False), ("bilinear", True), ("bicubic", False),
                        ("bicubic", True)):
        for kwargs in ({"size": (7, 3)}, {"scale_factor": 1.7}, {"scale_factor": 1.7, "recompute_scale_factor": True}):
            ours = F.interpolate(fastnn.tensor(x), mode=mode, align_corners=align, **kwargs)
            np.testing.assert_allclose(host(ours), tf.interpolate(torch.tensor(x), mode=mode, align_corners=align,
                                                                  **kwargs).numpy(), rtol=1e-10, atol=1e-12)
    np.testing.assert_array_equal(host(F.unfold(fastnn.tensor(x), (2, 3), 2, 1, (1, 2))),
                                  tf.unfold(torch.tensor(x), (2, 3), 2, 1, (1, 2)).numpy())

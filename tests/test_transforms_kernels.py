"""Augmentation kernels (fastnn/_kernels/cpu_augment.py) against their NumPy references (ref_augment.py)."""
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from fastnn._kernels import augment_codes as C
from fastnn._kernels import cpu_augment as K
from fastnn._kernels import ref_augment as R

DTYPES = [np.uint8, np.float32, np.float64]


def images(seed, n, c, h, w, dtype):
    rng = np.random.default_rng(seed)
    if dtype == np.uint8:
        return rng.integers(0, 256, (n, c, h, w)).astype(np.uint8)
    return rng.random((n, c, h, w)).astype(dtype)


@settings(max_examples=25, deadline=None)
@given(seed=st.integers(0, 10_000), n=st.integers(1, 4), c=st.integers(1, 3), h=st.integers(1, 9),
       w=st.integers(1, 9), out_h=st.integers(1, 12), out_w=st.integers(1, 12), dtype=st.sampled_from(DTYPES))
def test_crop_flip_matches_reference(seed, n, c, h, w, out_h, out_w, dtype):
    x = images(seed, n, c, h, w, dtype)
    rng = np.random.default_rng(seed + 1)
    tops = rng.integers(-out_h - 2, h + 2, n)  # windows partly or wholly outside the image too
    lefts = rng.integers(-out_w - 2, w + 2, n)
    hflip, vflip = rng.random(n) < 0.5, rng.random(n) < 0.5
    fill = rng.integers(0, 200, c).astype(dtype)
    args = (x, tops, lefts, out_h, out_w, hflip, vflip, fill)
    np.testing.assert_array_equal(K.crop_flip(*args), R.crop_flip(*args))


@settings(max_examples=25, deadline=None)
@given(seed=st.integers(0, 10_000), n=st.integers(1, 3), c=st.integers(1, 3), h=st.integers(1, 10),
       w=st.integers(1, 10), bilinear=st.booleans(), use_fill=st.booleans(),
       dtype=st.sampled_from([np.float32, np.float64]))
def test_affine_sample_matches_reference(seed, n, c, h, w, bilinear, use_fill, dtype):
    x = images(seed, n, c, h, w, dtype)
    rng = np.random.default_rng(seed + 1)
    matrices = rng.uniform(-1.5, 1.5, (n, 6))
    matrices[:, [2, 5]] *= 4  # translations of a few pixels
    fill = rng.random(c).astype(dtype)
    out_h, out_w = h + 1, max(w - 1, 1)
    got = K.affine_sample(x, matrices, out_h, out_w, bilinear, fill, use_fill)
    want = R.affine_sample(x, matrices, out_h, out_w, bilinear, fill, use_fill)
    assert got.dtype == dtype
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6)


@settings(max_examples=25, deadline=None)
@given(seed=st.integers(0, 10_000), n=st.integers(1, 4), c=st.sampled_from([1, 3]), size=st.integers(1, 7),
       k=st.integers(1, 5), dtype=st.sampled_from(DTYPES))
def test_color_ops_match_reference(seed, n, c, size, k, dtype):
    x = images(seed, n, c, size, size + 1, dtype)
    rng = np.random.default_rng(seed + 1)
    ops = rng.integers(C.OP_NONE, C.OP_GRAYSCALE + 1, (n, k))
    factors = np.where(ops == C.OP_HUE, rng.uniform(-0.5, 0.5, (n, k)), rng.uniform(0, 2, (n, k)))
    integer = dtype == np.uint8
    work = x.astype(np.float32) if integer else x
    args = (work, ops, factors.astype(work.dtype), (1 - factors).astype(work.dtype),
            C.color_constants(work.dtype, integer), integer)
    got, want = K.color_ops(*args), R.color_ops(*args)
    if integer:  # same float32 arithmetic, so the same truncations
        np.testing.assert_array_equal(got, want)
    else:
        np.testing.assert_allclose(got, want, rtol=2e-6, atol=2e-6)


@settings(max_examples=25, deadline=None)
@given(seed=st.integers(0, 10_000), n=st.integers(1, 4), c=st.integers(1, 3), h=st.integers(1, 9),
       w=st.integers(1, 9), holes=st.integers(1, 3), dtype=st.sampled_from(DTYPES))
def test_erase_kernels_match_reference(seed, n, c, h, w, holes, dtype):
    x = images(seed, n, c, h, w, dtype)
    rng = np.random.default_rng(seed + 1)
    top, left = rng.integers(0, h, (n, holes)), rng.integers(0, w, (n, holes))
    bh, bw = rng.integers(0, h - top + 1), rng.integers(0, w - left + 1)
    boxes = np.stack([top, left, bh, bw], axis=-1).astype(np.int64)
    values = rng.integers(0, 100, (n, c)).astype(dtype)
    np.testing.assert_array_equal(K.erase_constant(x, boxes, values), R.erase_constant(x, boxes, values))
    single = np.ascontiguousarray(boxes[:, 0])
    sizes = c * single[:, 2] * single[:, 3]
    offsets = np.concatenate([[0], np.cumsum(sizes)[:-1]]).astype(np.int64)
    noise = rng.integers(0, 250, int(sizes.sum())).astype(dtype)
    np.testing.assert_array_equal(K.erase_noise(x, single, noise, offsets), R.erase_noise(x, single, noise, offsets))


@settings(max_examples=25, deadline=None)
@given(seed=st.integers(0, 10_000), n=st.integers(1, 4), c=st.integers(1, 3), h=st.integers(1, 9),
       w=st.integers(1, 9), uint8=st.booleans(), out=st.sampled_from([np.float32, np.float64]))
def test_scale_normalize_matches_reference_bit_for_bit(seed, n, c, h, w, uint8, out):
    x = images(seed, n, c, h, w, np.uint8 if uint8 else out)  # what the kernel takes: uint8 or the output dtype
    rng = np.random.default_rng(seed + 1)
    scale = np.array([1 / 255, 1] if rng.random() < 0.5 else [1, 255], out)  # ToDtype's or ToTensor's
    mean, std = rng.random(c).astype(out), rng.uniform(0.1, 2, c).astype(out)
    got = K.scale_normalize(x, scale, mean, std)
    assert got.dtype == out
    # one multiply, subtract and divide in the output dtype: the same bits
    np.testing.assert_array_equal(got, R.scale_normalize(x, scale, mean, std))


def test_kernels_never_write_their_inputs():
    x = images(0, 2, 3, 5, 5, np.float32)
    before = x.copy()
    K.crop_flip(x, np.zeros(2, np.int64), np.zeros(2, np.int64), 5, 5, np.ones(2, bool), np.ones(2, bool),
                np.zeros(3, np.float32))
    K.color_ops(x, np.full((2, 1), C.OP_BRIGHTNESS), np.full((2, 1), 2, np.float32), np.full((2, 1), -1, np.float32),
                C.color_constants(np.float32, False), False)
    K.erase_constant(x, np.array([[[0, 0, 2, 2]]] * 2), np.ones((2, 3), np.float32))
    np.testing.assert_array_equal(x, before)


@pytest.mark.parametrize("kernel", [K.crop_flip, K.scale_normalize, K.affine_sample, K.color_ops, K.erase_constant, K.erase_noise])
def test_kernels_release_the_gil(kernel):
    assert kernel.targetoptions.get("nogil") and kernel.targetoptions.get("parallel")


def test_a_single_image_never_opens_a_parallel_region(monkeypatch):
    import numba

    from fastnn import _dispatch
    from fastnn.data.transforms.functional import _launch
    monkeypatch.setattr(_dispatch.backend("cpu").kernels, "probe", lambda images: numba.get_num_threads(),
                        raising=False)
    threads = numba.get_num_threads()
    assert _launch("probe", np.zeros((1, 1, 2, 2))) == 1 and numba.get_num_threads() == threads
    assert _launch("probe", np.zeros((2, 1, 2, 2))) == threads


def test_importing_the_transforms_does_not_import_numba():
    import subprocess
    import sys
    code = "import sys, fastnn.data.transforms, fastnn.data.preprocessing; print('numba' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"

"""fastnn.data.preprocessing: fitted statistics against NumPy, streaming = one-shot, whitening, state dicts."""
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import fastnn
from fastnn.data import DataLoader, TensorDataset
from fastnn.data import preprocessing as P
from fastnn.data import transforms as T


def images(n=40, c=3, h=5, w=4, seed=0):
    rng = np.random.default_rng(seed)
    return (rng.standard_normal((n, c, h, w)) * [[[2.0]], [[0.5]], [[1.0]]][:c] + np.arange(c)[:, None, None]
            ).astype(np.float32)


def correlated(n=2000, d=6, seed=0):
    rng = np.random.default_rng(seed)
    mixing = rng.standard_normal((d, d))
    return (rng.standard_normal((n, d)) @ mixing + rng.standard_normal(d)).astype(np.float64)


@settings(max_examples=15, deadline=None)
@given(seed=st.integers(0, 1000), sizes=st.lists(st.integers(1, 7), min_size=1, max_size=6))
def test_streaming_channel_stats_equal_the_one_shot_numbers(seed, sizes):
    x = images(n=sum(sizes), seed=seed) * 100 + 1e4  # an offset that naive sum-of-squares would cancel badly
    chunks = np.split(x, np.cumsum(sizes)[:-1])
    stats = P.channel_stats(iter(chunks))
    pixels = x.transpose(1, 0, 2, 3).reshape(3, -1).astype(np.float64)
    np.testing.assert_allclose(stats.mean, pixels.mean(axis=1), rtol=1e-12)
    np.testing.assert_allclose(stats.std, pixels.std(axis=1), rtol=1e-9)
    np.testing.assert_allclose(stats.covariance, np.cov(pixels, bias=True), rtol=1e-8, atol=1e-8)
    assert stats.count == pixels.shape[1]
    channels_last = P.channel_stats(x.transpose(0, 2, 3, 1), dim=-1)
    np.testing.assert_allclose(channels_last.covariance, stats.covariance, rtol=1e-9)


def test_channel_stats_read_a_data_loader_and_uint8():
    x = images()
    loader = DataLoader(TensorDataset(fastnn.tensor(x), fastnn.tensor(np.zeros(40, np.int64))), batch_size=7)
    stats = P.channel_stats(loader)
    np.testing.assert_allclose(stats.mean, x.astype(np.float64).mean(axis=(0, 2, 3)), rtol=1e-6)
    gray = np.random.default_rng(0).integers(0, 256, (10, 6, 6)).astype(np.uint8)
    stats = P.channel_stats(gray)
    np.testing.assert_allclose(stats.mean, [gray.mean()], rtol=1e-12)
    np.testing.assert_allclose(stats.std, [gray.std()], rtol=1e-12)


def test_image_preprocessors_fit_on_train_and_apply_to_test():
    train, test = images(seed=1), images(seed=2)
    mean_image = P.MeanImageSubtraction().fit(train)
    np.testing.assert_allclose(mean_image(test), test - train.astype(np.float64).mean(axis=0), rtol=1e-5,
                               atol=1e-5)
    channel = P.ChannelMeanSubtraction().fit([train[:15], train[15:]])
    np.testing.assert_allclose(channel(test), test - train.mean(axis=(0, 2, 3))[:, None, None], atol=1e-5)
    standard = P.ChannelStandardization().fit(train)
    out = standard(fastnn.tensor(train))
    assert isinstance(out, fastnn.Tensor) and out.dtype == np.float32
    np.testing.assert_allclose(out.numpy().mean(axis=(0, 2, 3)), 0, atol=1e-5)
    np.testing.assert_allclose(out.numpy().std(axis=(0, 2, 3)), 1, rtol=1e-5)
    np.testing.assert_allclose(standard.to_normalize()(test), standard(test), rtol=1e-5, atol=1e-6)
    tabular = correlated()
    features = P.FeatureStandardization().fit(tabular)
    z = features(tabular)
    np.testing.assert_allclose(z.mean(axis=0), 0, atol=1e-10)
    np.testing.assert_allclose(z.std(axis=0), 1, rtol=1e-10)


def test_pca_components_variance_kept_and_inverse():
    x = correlated()
    pca = P.PCA().fit(x)
    eigenvalues = np.sort(np.linalg.eigvalsh(np.cov(x.T, bias=True)))[::-1]
    np.testing.assert_allclose(pca.explained_variance_, eigenvalues, rtol=1e-9)
    np.testing.assert_allclose(pca.inverse_transform(pca(x)), x, atol=1e-9)
    coords = pca(x)
    covariance = np.cov(coords.T, bias=True)
    np.testing.assert_allclose(covariance, np.diag(eigenvalues), atol=1e-8 * eigenvalues[0])
    assert P.PCA(n_components=2).fit(x)(x).shape == (2000, 2)
    share = np.cumsum(eigenvalues) / eigenvalues.sum()
    k = P.PCA(n_components=0.9).fit(x).components_.shape[0]
    assert share[k - 1] >= 0.9 and (k == 1 or share[k - 2] < 0.9)


@settings(max_examples=10, deadline=None)
@given(seed=st.integers(0, 1000), d=st.integers(2, 8))
def test_whitening_gives_unit_covariance(seed, d):
    x = correlated(n=3000, d=d, seed=seed)
    zca = P.ZCAWhitening(epsilon=1e-10).fit(x)
    white = zca(x)
    np.testing.assert_allclose(np.cov(white.T, bias=True), np.eye(d), atol=1e-3)
    np.testing.assert_allclose(zca.whitening_, zca.whitening_.T, atol=1e-10)  # ZCA: the symmetric whitening
    pca_white = P.PCA(whiten=True).fit(x)(x)
    np.testing.assert_allclose(np.cov(pca_white.T, bias=True), np.eye(d), atol=1e-3)
    streamed = P.ZCAWhitening(epsilon=1e-10).fit(np.array_split(x, 7))
    np.testing.assert_allclose(streamed.whitening_, zca.whitening_, rtol=1e-6, atol=1e-8)


def test_zca_on_images_keeps_their_shape():
    x = images(n=200, c=1, h=3, w=3)
    white = P.ZCAWhitening(epsilon=1e-6).fit(x)(x)
    assert white.shape == x.shape and white.dtype == np.float32
    flat = white.reshape(200, -1).astype(np.float64)
    np.testing.assert_allclose(np.cov(flat.T, bias=True), np.eye(9), atol=1e-3)


def test_state_dict_round_trip_through_fastnn_save(tmp_path):
    x = correlated(n=500, d=5)
    for prep in [P.PCA(n_components=3, whiten=True, epsilon=1e-3), P.ZCAWhitening(epsilon=0.1),
                 P.FeatureStandardization(), P.ChannelStandardization(), P.MeanImageSubtraction()]:
        data = images(n=50) if isinstance(prep, (P.ChannelStandardization, P.MeanImageSubtraction)) else x
        prep.fit(data)
        fastnn.save({"prep": prep.state_dict()}, tmp_path / "prep.pt")
        fresh = type(prep)().load_state_dict(fastnn.load(tmp_path / "prep.pt")["prep"])
        np.testing.assert_array_equal(fresh(data), prep(data))
    restored = P.PCA().load_state_dict(P.PCA(n_components=3, whiten=True, epsilon=1e-3).fit(x).state_dict())
    assert (restored.n_components, restored.whiten, restored.epsilon) == (3, True, 1e-3)
    assert isinstance(restored.n_components, int) and restored.whiten is True


def test_preprocessing_errors():
    with pytest.raises(RuntimeError, match="not fitted"):
        P.ZCAWhitening()(np.zeros((2, 2)))
    with pytest.raises(ValueError, match="n_components"):
        P.PCA(n_components=1.5)
    with pytest.raises(ValueError, match="n_components"):
        P.PCA(n_components=-1)
    with pytest.raises(ValueError, match="epsilon"):
        P.ZCAWhitening(epsilon=-1)
    with pytest.raises(ValueError, match="singular"):
        P.ZCAWhitening(epsilon=0).fit(np.ones((10, 3)))
    with pytest.raises(ValueError, match="fitted on 3 channels"):
        P.ChannelStandardization().fit(images())(images(c=1))
    with pytest.raises(ValueError, match="empty"):
        P.channel_stats([])
    with pytest.raises(ValueError, match=r"\(N, C, H, W\)"):
        P.channel_stats(np.zeros((2, 3)))
    with pytest.raises(KeyError, match="missing"):
        P.PCA().load_state_dict({})


def test_fancy_pca_from_fitted_rgb_covariance():
    x = np.random.default_rng(0).integers(0, 256, (20, 3, 8, 8)).astype(np.uint8)
    stats = P.channel_stats(x)
    augment = T.FancyPCA(stats.covariance, alphastd=0.1)
    np.testing.assert_allclose(augment.eigenvalues, np.linalg.eigvalsh(stats.covariance), rtol=1e-12)
    assert augment(x).dtype == np.uint8

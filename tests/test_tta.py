"""Test-time augmentation: views and averaged probabilities against a manual computation."""
import numpy as np
import pytest

import fastnn
from fastnn import nn
from fastnn.data.tta import TTA, tta_predict, tta_views


def _softmax(z):
    e = np.exp(z - z.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


def _linear_model(seed=0, pixels=16, classes=3):
    fastnn.manual_seed(seed)
    model = nn.Sequential(nn.Flatten(), nn.Linear(pixels, classes))
    weight = model[1].weight.detach().numpy().astype(np.float64)
    bias = model[1].bias.detach().numpy().astype(np.float64)
    return model, lambda x: _softmax(x.reshape(len(x), -1) @ weight.T + bias)


def test_ten_views_follow_torchvision_ten_crop_order():
    images = np.arange(2 * 1 * 6 * 6, dtype=np.float32).reshape(2, 1, 6, 6)
    views = tta_views(images, crop_size=4)
    corners = [images[..., :4, :4], images[..., :4, 2:], images[..., 2:, :4], images[..., 2:, 2:],
               images[..., 1:5, 1:5]]
    mirrored = images[..., ::-1]
    expected = corners + [mirrored[..., :4, :4], mirrored[..., :4, 2:], mirrored[..., 2:, :4],
                          mirrored[..., 2:, 2:], mirrored[..., 1:5, 1:5]]
    assert len(views) == 10
    for view, want in zip(views, expected):
        np.testing.assert_array_equal(view, want)
    assert len(tta_views(images, crop_size=4, num_crops=1, flip=False)) == 1
    np.testing.assert_array_equal(tta_views(images, crop_size=4, num_crops=1, flip=False)[0], images[..., 1:5, 1:5])


def test_padded_crops_of_small_images():
    images = np.arange(1 * 1 * 4 * 4, dtype=np.float32).reshape(1, 1, 4, 4)
    views = tta_views(images, padding=1, fill=-1.0, flip=False)
    padded = np.pad(images, [(0, 0), (0, 0), (1, 1), (1, 1)], constant_values=-1.0)
    assert [v.shape for v in views] == [(1, 1, 4, 4)] * 5
    np.testing.assert_array_equal(views[0], padded[..., :4, :4])
    np.testing.assert_array_equal(views[3], padded[..., 2:, 2:])
    np.testing.assert_array_equal(views[4], images)  # centre crop of the padded image: the image itself
    edge = tta_views(images, padding=2, padding_mode="edge", flip=False)[0]
    np.testing.assert_array_equal(edge[0, 0, :2, :2], np.full((2, 2), images[0, 0, 0, 0]))


@pytest.mark.parametrize("num_crops, flip", [(5, True), (5, False), (1, True)])
def test_tta_predict_equals_manual_average(num_crops, flip):
    model, reference = _linear_model()
    images = np.random.default_rng(1).standard_normal((7, 1, 4, 4)).astype(np.float32)
    padded = np.pad(images, [(0, 0), (0, 0), (1, 1), (1, 1)])
    offsets = [(0, 0), (0, 2), (2, 0), (2, 2), (1, 1)] if num_crops == 5 else [(1, 1)]
    sources = [padded, padded[..., ::-1]] if flip else [padded]
    manual = np.mean([reference(src[..., t:t + 4, l:l + 4]) for src in sources for t, l in offsets], axis=0)
    probs = tta_predict(model, images, padding=1, num_crops=num_crops, flip=flip)
    np.testing.assert_allclose(probs, manual, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(probs.sum(axis=1), 1, atol=1e-6)
    chunked = TTA(model, padding=1, num_crops=num_crops, flip=flip, batch_size=3)(fastnn.tensor(images))
    assert isinstance(chunked, fastnn.Tensor)
    np.testing.assert_allclose(chunked.detach().numpy(), manual, rtol=1e-5, atol=1e-6)
    # a single centre view without padding is the plain softmax
    plain = tta_predict(model, images, num_crops=1, flip=False)
    np.testing.assert_allclose(plain, reference(images), rtol=1e-5, atol=1e-6)


def test_tta_errors():
    model, _ = _linear_model()
    with pytest.raises(ValueError, match="num_crops must be 1"):
        tta_views(np.zeros((1, 1, 4, 4)), num_crops=3)
    with pytest.raises(ValueError, match="N x C x H x W"):
        tta_predict(model, np.zeros((1, 4, 4)))
    with pytest.raises(ValueError, match="crop_size"):
        tta_views(np.zeros((1, 1, 4, 4)), crop_size=5)
    with pytest.raises(ValueError, match="padding must be"):
        tta_views(np.zeros((1, 1, 4, 4)), padding=-1)
    with pytest.raises(ValueError, match="N x classes"):
        tta_predict(nn.Identity(), np.zeros((1, 1, 4, 4), np.float32))

"""Fit-on-train / apply-to-test preprocessing, with statistics saved and loaded through state_dict.

    prep = ChannelStandardization().fit(train_images)      # or .fit(train_loader): one streaming pass
    x = prep(test_images)                                   # also prep.transform(...); Tensors or ndarrays
    fastnn.save({"model": model.state_dict(), "prep": prep.state_dict()}, path)

Images are (N, C, H, W) (a plain (N, H, W) is one channel); PCA, whitening and feature standardization see
each sample flattened, (N, D). `fit` takes an array or Tensor, or an iterable of batches (arrays, Tensors, or
(images, labels) pairs as a DataLoader yields them), which is reduced in one pass with float64 accumulators and
Chan et al.'s pairwise merge, so the data set is never held in memory. Statistics use the population form
(divide by the number of values). Outputs are float (uint8 input gives float32) and keep the input's kind.
"""
import numbers
from collections import namedtuple

import numpy as np

from fastnn.tensor import Tensor

__all__ = ["ChannelStats", "channel_stats", "MeanImageSubtraction", "ChannelMeanSubtraction",
           "ChannelStandardization", "FeatureStandardization", "PCA", "ZCAWhitening"]

ChannelStats = namedtuple("ChannelStats", "mean std covariance count")
ChannelStats.__doc__ = """Per-channel statistics over every pixel of a data set: mean (C,), std (C,), covariance
(C, C) (the RGB covariance of AlexNet's PCA lighting, see transforms.FancyPCA) and count (pixels per channel)."""


def _array(x):
    return x.detach().numpy() if isinstance(x, Tensor) else np.asarray(x)


def _is_single(data):
    return isinstance(data, (np.ndarray, Tensor))


def _batches(data):
    """The arrays of `data`: itself when an array or Tensor, else each batch (first item of a pair)."""
    if _is_single(data):
        yield _array(data)
        return
    if isinstance(data, (str, bytes)) or not hasattr(data, "__iter__"):
        raise TypeError(f"expected an array, a Tensor or an iterable of batches, got {type(data).__name__}")
    for item in data:
        if isinstance(item, (tuple, list)) and item and not isinstance(item[0], numbers.Number):
            item = item[0]
        yield _array(item)


class _Moments:
    """Streaming mean and co-moment matrix of D-dimensional observations (Chan et al.'s merge, float64)."""

    def __init__(self, full=True):
        self.count, self.mean, self.m2, self.full = 0, None, None, full

    def update(self, rows):
        """rows: (P, D) observations of one batch."""
        rows = np.asarray(rows, np.float64)
        if rows.shape[0] == 0:
            return
        n_b = rows.shape[0]
        mean_b = rows.mean(axis=0)
        centred = rows - mean_b
        m2_b = centred.T @ centred if self.full else np.einsum("pd,pd->d", centred, centred)
        if self.count == 0:
            self.count, self.mean, self.m2 = n_b, mean_b, m2_b
            return
        if mean_b.shape != self.mean.shape:
            raise ValueError(f"batches disagree in size: {self.mean.shape[0]} values per sample, then "
                             f"{mean_b.shape[0]}")
        total = self.count + n_b
        delta = mean_b - self.mean
        self.mean = self.mean + delta * (n_b / total)
        correction = np.outer(delta, delta) if self.full else delta * delta
        self.m2 = self.m2 + m2_b + correction * (self.count * n_b / total)
        self.count = total

    def covariance(self):
        if self.count == 0:
            raise ValueError("cannot fit on an empty data set")
        return self.m2 / self.count


def _channel_rows(batch, dim):
    """Pixels of an image batch as rows (P, C): (N, C, H, W) with the channel axis `dim`, or (N, H, W)."""
    if batch.ndim == 3:
        return batch.reshape(-1, 1)
    if batch.ndim != 4:
        raise ValueError(f"expected image batches (N, C, H, W) or (N, H, W), got shape {batch.shape}")
    return np.moveaxis(batch, dim, -1).reshape(-1, batch.shape[dim])


def channel_stats(data, dim=1):
    """Per-channel mean, std and covariance over all pixels of `data` in one pass (see ChannelStats).

    data: an image batch or an iterable of batches (N, C, H, W) (dim=-1 for (N, H, W, C); (N, H, W): one channel),
    in their own units (uint8 images: 0..255).
    """
    moments = _Moments(full=True)
    for batch in _batches(data):
        moments.update(_channel_rows(batch, dim))
    covariance = moments.covariance()
    return ChannelStats(moments.mean, np.sqrt(np.diag(covariance)), covariance, moments.count)


class _Preprocessor:
    """fit / transform / __call__ / state_dict / load_state_dict; subclasses list their fitted arrays."""
    _fitted = ()  # attribute names saved in the state dict
    _config = ()  # constructor settings saved alongside (as 0-d arrays)

    def fit(self, data):
        raise NotImplementedError

    def _apply(self, array):
        raise NotImplementedError

    def _check_fitted(self):
        if any(getattr(self, name, None) is None for name in self._fitted):
            raise RuntimeError(f"{type(self).__name__} is not fitted: call fit(training data) or load_state_dict")

    def transform(self, x):
        self._check_fitted()
        array = _array(x)
        out = self._apply(array.astype(np.float32) if array.dtype.kind in "iub" else array)
        return Tensor(out, device=x.device) if isinstance(x, Tensor) else out

    __call__ = transform
    batched = True  # usable as a batched data-set transform

    def fit_transform(self, data):
        return self.fit(data).transform(data)

    def state_dict(self):
        """{name: Tensor}: the fitted statistics (float64) and the settings, for fastnn.save / checkpoints."""
        self._check_fitted()
        state = {name: Tensor(np.asarray(getattr(self, name))) for name in self._fitted}
        state.update({name: Tensor(np.asarray(np.nan if getattr(self, name) is None else getattr(self, name),
                                              np.float64)) for name in self._config})
        return state

    def load_state_dict(self, state_dict):
        missing = [name for name in self._fitted + self._config if name not in state_dict]
        if missing:
            raise KeyError(f"{type(self).__name__}.load_state_dict: missing {missing}")
        for name in self._fitted:
            setattr(self, name, np.array(_array(state_dict[name]), np.float64))
        for name in self._config:
            value = float(np.asarray(_array(state_dict[name])).reshape(-1)[0])
            current = getattr(self, name)
            if np.isnan(value):
                value = None
            elif isinstance(current, bool):
                value = bool(value)
            elif name == "n_components" and value.is_integer():
                value = int(value)
            setattr(self, name, value)
        return self


class MeanImageSubtraction(_Preprocessor):
    """x - mean image (AlexNet): the mean over the training set of each pixel of each channel."""
    _fitted = ("mean_",)

    def __init__(self):
        self.mean_ = None

    def fit(self, data):
        moments = _Moments(full=False)
        for batch in _batches(data):
            moments.update(batch.reshape(batch.shape[0], -1))
            shape = batch.shape[1:]
        moments.covariance()
        self.mean_ = moments.mean.reshape(shape)
        return self

    def _apply(self, array):
        if array.shape[1:] != self.mean_.shape:
            raise ValueError(f"MeanImageSubtraction was fitted on images {self.mean_.shape}, got batch {array.shape}")
        return array - self.mean_.astype(array.dtype)


class _ChannelPreprocessor(_Preprocessor):
    _scale = False

    def __init__(self, dim=1):
        self.dim = dim
        self.mean_ = self.std_ = None

    def fit(self, data):
        stats = channel_stats(data, self.dim)
        self.mean_, self.std_ = stats.mean, stats.std
        return self

    def _apply(self, array):
        if array.ndim == 3:
            array_c = array[:, None]
        elif array.ndim == 4:
            array_c = np.moveaxis(array, self.dim, 1)
        else:
            raise ValueError(f"{type(self).__name__} expects (N, C, H, W) or (N, H, W), got shape {array.shape}")
        if array_c.shape[1] != len(self.mean_):
            raise ValueError(f"{type(self).__name__} was fitted on {len(self.mean_)} channels, got "
                             f"{array_c.shape[1]}")
        out = array_c - self.mean_.astype(array.dtype)[:, None, None]
        if self._scale:
            out = out / np.where(self.std_ > 0, self.std_, 1).astype(array.dtype)[:, None, None]
        return out[:, 0] if array.ndim == 3 else np.ascontiguousarray(np.moveaxis(out, 1, self.dim))


class ChannelMeanSubtraction(_ChannelPreprocessor):
    """x - mean[c] (VGG): one mean per channel over all training pixels; dim is the channel axis."""
    _fitted = ("mean_", "std_")


class ChannelStandardization(_ChannelPreprocessor):
    """(x - mean[c]) / std[c] (ResNet), the statistics of transforms.Normalize fitted on the training set
    (a constant channel is only centred)."""
    _fitted = ("mean_", "std_")
    _scale = True

    def to_normalize(self):
        """The equivalent transforms.Normalize."""
        from fastnn.data.transforms import Normalize
        self._check_fitted()
        return Normalize(self.mean_, np.where(self.std_ > 0, self.std_, 1))


def _rows(batch):
    return batch.reshape(batch.shape[0], -1)


class FeatureStandardization(_Preprocessor):
    """(x - mean) / std per feature (each value of a flattened sample), for tabular data; constant features are
    only centred."""
    _fitted = ("mean_", "std_")

    def __init__(self):
        self.mean_ = self.std_ = None

    def fit(self, data):
        moments = _Moments(full=False)
        for batch in _batches(data):
            moments.update(_rows(batch))
        self.mean_ = moments.mean
        self.std_ = np.sqrt(moments.covariance())
        return self

    def _apply(self, array):
        rows = _rows(array)
        if rows.shape[1] != len(self.mean_):
            raise ValueError(f"FeatureStandardization was fitted on {len(self.mean_)} features, got {rows.shape[1]}")
        scale = np.where(self.std_ > 0, self.std_, 1)
        return ((rows - self.mean_) / scale).astype(array.dtype).reshape(array.shape)


class _Covariance(_Preprocessor):
    def _fit_covariance(self, data):
        moments = _Moments(full=True)
        for batch in _batches(data):
            moments.update(_rows(batch))
        covariance = moments.covariance()
        eigenvalues, eigenvectors = np.linalg.eigh(covariance)  # LAPACK, ascending
        order = np.argsort(eigenvalues)[::-1]
        return moments.mean, np.clip(eigenvalues[order], 0, None), eigenvectors[:, order]

    def _centred_rows(self, array):
        rows = _rows(array)
        if rows.shape[1] != len(self.mean_):
            raise ValueError(f"{type(self).__name__} was fitted on {len(self.mean_)} features, got {rows.shape[1]}")
        return rows.astype(np.float64) - self.mean_


class PCA(_Covariance):
    """Project flattened samples on the principal axes of the training set: (x - mean) @ components.T.

    n_components: an int (that many axes), a float in (0, 1) (the fewest axes keeping that share of the
    variance) or None (all). whiten=True divides each coordinate by sqrt(eigenvalue + epsilon): PCA whitening,
    unit diagonal covariance. inverse_transform maps coordinates back to (approximate) samples.
    """
    _fitted = ("mean_", "components_", "explained_variance_")
    _config = ("n_components", "whiten", "epsilon")

    def __init__(self, n_components=None, whiten=False, epsilon=0.0):
        if n_components is not None:
            if isinstance(n_components, bool) or not isinstance(n_components, numbers.Real) or n_components <= 0 \
                    or (not float(n_components).is_integer() and not 0 < n_components < 1):
                raise ValueError(f"PCA n_components must be a positive int, a float in (0, 1) or None, got "
                                 f"{n_components!r}")
        if not isinstance(epsilon, numbers.Real) or epsilon < 0:
            raise ValueError(f"PCA epsilon must be a non-negative number, got {epsilon!r}")
        self.n_components, self.whiten, self.epsilon = n_components, bool(whiten), float(epsilon)
        self.mean_ = self.components_ = self.explained_variance_ = None

    def fit(self, data):
        mean, eigenvalues, eigenvectors = self._fit_covariance(data)
        k = len(eigenvalues)
        if self.n_components is not None and 0 < self.n_components < 1:
            kept = np.cumsum(eigenvalues) / eigenvalues.sum()
            k = int(np.searchsorted(kept, self.n_components - 1e-12) + 1)
        elif self.n_components is not None:
            if self.n_components > k:
                raise ValueError(f"PCA n_components={self.n_components} exceeds the {k} features")
            k = int(self.n_components)
        self.mean_, self.components_, self.explained_variance_ = mean, eigenvectors[:, :k].T, eigenvalues[:k]
        return self

    def _scale(self):
        return np.sqrt(self.explained_variance_ + self.epsilon) if self.whiten else np.ones(len(self.components_))

    def _apply(self, array):
        projected = self._centred_rows(array) @ self.components_.T / self._scale()
        return projected.astype(array.dtype)

    def inverse_transform(self, x):
        self._check_fitted()
        array = _array(x)
        out = ((array * self._scale()) @ self.components_ + self.mean_).astype(array.dtype)
        return Tensor(out, device=x.device) if isinstance(x, Tensor) else out


class ZCAWhitening(_Covariance):
    """ZCA whitening: (x - mean) @ U diag(1 / sqrt(eigenvalue + epsilon)) U.T, the whitening closest to the data
    (identity covariance when epsilon is 0), samples keep their shape."""
    _fitted = ("mean_", "whitening_")
    _config = ("epsilon",)

    def __init__(self, epsilon=1e-5):
        if not isinstance(epsilon, numbers.Real) or epsilon < 0:
            raise ValueError(f"ZCAWhitening epsilon must be a non-negative number, got {epsilon!r}")
        self.epsilon = float(epsilon)
        self.mean_ = self.whitening_ = None

    def fit(self, data):
        mean, eigenvalues, eigenvectors = self._fit_covariance(data)
        if self.epsilon == 0 and eigenvalues.min() <= 0:
            raise ValueError("ZCAWhitening: the covariance is singular; pass epsilon > 0")
        self.mean_ = mean
        self.whitening_ = (eigenvectors / np.sqrt(eigenvalues + self.epsilon)) @ eigenvectors.T
        return self

    def _apply(self, array):
        return (self._centred_rows(array) @ self.whitening_).astype(array.dtype).reshape(array.shape)

"""Embedding: a trainable lookup table from integer ids to vectors."""
import numpy as np

from fastnn.nn import functional as F
from fastnn.nn import init
from fastnn._validation import positive_int
from fastnn.nn.modules.module import Module
from fastnn.nn.parameter import Parameter
from fastnn.ops.embedding import check_padding_idx
from fastnn.tensor import Tensor, as_dtype


class Embedding(Module):
    """out[..., :] = weight[input[...], :] with weight of shape (num_embeddings, embedding_dim), initialised
    N(0, 1) as in PyTorch.

    padding_idx (negative counts from the end): that row starts at zero and gets no gradient, so it stays
    whatever it is set to, e.g. the vector of a padding token. Indices must be integers in
    [0, num_embeddings); anything else raises an error.
    """

    def __init__(self, num_embeddings, embedding_dim, padding_idx=None, dtype=None):
        super().__init__()
        self.num_embeddings = positive_int("num_embeddings", num_embeddings)
        self.embedding_dim = positive_int("embedding_dim", embedding_dim)
        self.padding_idx = check_padding_idx(padding_idx, self.num_embeddings)
        self.weight = Parameter(np.empty((self.num_embeddings, self.embedding_dim), as_dtype(dtype or "float32")))
        self.reset_parameters()

    def reset_parameters(self):
        init.normal_(self.weight)
        if self.padding_idx is not None:
            self.weight._data[self.padding_idx] = 0

    @classmethod
    def from_pretrained(cls, embeddings, freeze=True, padding_idx=None):
        """An Embedding holding a copy of the 2-D `embeddings`; freeze=True makes the weight non-trainable."""
        data = np.array(embeddings._data if isinstance(embeddings, Tensor) else embeddings)
        if data.ndim != 2:
            raise ValueError(f"embeddings must be 2-D (num_embeddings, embedding_dim), got shape {data.shape}")
        module = cls(data.shape[0], data.shape[1], padding_idx, dtype=data.dtype)
        module.weight._data[...] = data
        module.weight.requires_grad_(not freeze)
        return module

    def forward(self, input):
        return F.embedding(input, self.weight, self.padding_idx)

    def extra_repr(self):
        s = f"{self.num_embeddings}, {self.embedding_dim}"
        if self.padding_idx is not None:
            s += f", padding_idx={self.padding_idx}"
        return s


class EmbeddingBag(Module):
    """Sums, means or maxima of bags of embeddings (see F.embedding_bag); weight (num_embeddings, embedding_dim)
    initialised N(0, 1), the padding_idx row zero, as in PyTorch."""

    def __init__(self, num_embeddings, embedding_dim, max_norm=None, norm_type=2.0, scale_grad_by_freq=False,
                 mode="mean", sparse=False, _weight=None, include_last_offset=False, padding_idx=None, dtype=None):
        super().__init__()
        self.num_embeddings = positive_int("num_embeddings", num_embeddings)
        self.embedding_dim = positive_int("embedding_dim", embedding_dim)
        if mode not in ("sum", "mean", "max"):
            raise ValueError(f"mode must be 'sum', 'mean' or 'max', got {mode!r}")
        self.max_norm, self.norm_type, self.scale_grad_by_freq = max_norm, norm_type, scale_grad_by_freq
        self.mode, self.sparse, self.include_last_offset = mode, sparse, include_last_offset
        self.padding_idx = check_padding_idx(padding_idx, self.num_embeddings)
        if _weight is None:
            self.weight = Parameter(np.empty((self.num_embeddings, self.embedding_dim), as_dtype(dtype or "float32")))
            self.reset_parameters()
        else:
            if tuple(_weight.shape) != (self.num_embeddings, self.embedding_dim):
                raise ValueError(f"_weight must have shape ({num_embeddings}, {embedding_dim}), got "
                                 f"{tuple(_weight.shape)}")
            self.weight = Parameter(_weight)

    reset_parameters = Embedding.reset_parameters

    def forward(self, input, offsets=None, per_sample_weights=None):
        return F.embedding_bag(input, self.weight, offsets, self.max_norm, self.norm_type, self.scale_grad_by_freq,
                               self.mode, self.sparse, per_sample_weights, self.include_last_offset, self.padding_idx)

    def extra_repr(self):
        s = f"{self.num_embeddings}, {self.embedding_dim}, mode={self.mode!r}"
        if self.padding_idx is not None:
            s += f", padding_idx={self.padding_idx}"
        return s

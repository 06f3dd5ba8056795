"""Embedding lookup: rows of a weight table picked by integer indices, with a scatter-add backward."""
import numpy as np

from fastnn.autograd import make_result
from fastnn.tensor import Tensor


def check_padding_idx(padding_idx, num_embeddings):
    """padding_idx as a non-negative row number (negative counts from the end, as in PyTorch), or None."""
    if padding_idx is None:
        return None
    if isinstance(padding_idx, bool) or not isinstance(padding_idx, (int, np.integer)):
        raise TypeError(f"padding_idx must be an int or None, got {padding_idx!r}")
    if not -num_embeddings <= padding_idx < num_embeddings:
        raise ValueError(f"padding_idx must be within num_embeddings ({num_embeddings}): expected a value in "
                         f"[{-num_embeddings}, {num_embeddings - 1}], got {padding_idx}")
    return int(padding_idx) % num_embeddings


def embedding(input, weight, padding_idx=None):
    """out[..., :] = weight[input[...], :] for an integer index tensor `input` of any shape.

    The backward pass adds each output row's gradient into the weight row it came from, so an index that
    appears several times receives the sum of their gradients; the padding_idx row receives none.
    """
    indices = input.data if isinstance(input, Tensor) else np.asarray(input)
    if indices.dtype.kind not in "iu":
        raise TypeError(f"embedding: indices must be an integer tensor (int64 or int32), got {indices.dtype}")
    if weight.ndim != 2:
        raise ValueError(f"embedding: weight must be 2-D (num_embeddings, embedding_dim), got shape "
                         f"{tuple(weight.shape)}")
    num_embeddings = weight.shape[0]
    padding_idx = check_padding_idx(padding_idx, num_embeddings)
    if indices.size:
        low, high = int(indices.min()), int(indices.max())
        if low < 0 or high >= num_embeddings:
            bad = low if low < 0 else high
            raise ValueError(f"embedding: index {bad} is out of range for a table of {num_embeddings} rows "
                             f"(valid indices are 0 .. {num_embeddings - 1})")
    out = np.take(weight.data, indices, axis=0)

    def backward(g):
        # grad = S @ g with S[v, i] = 1 where indices[i] == v: a sparse product sums repeated indices in C, in a
        # fixed order (deterministic), about 10x faster than np.add.at. scipy.sparse is imported here, on first
        # use, because importing it costs about half a second.
        import scipy.sparse
        flat = indices.reshape(-1)
        counted = np.ones(flat.size, weight.dtype) if padding_idx is None else \
            (flat != padding_idx).astype(weight.dtype)
        scatter = scipy.sparse.csr_array((counted, (flat, np.arange(flat.size))), shape=(num_embeddings, flat.size))
        return (np.asarray(scatter @ g.reshape(flat.size, weight.shape[1]), dtype=weight.dtype),)
    return make_result(out, (weight,), backward, "embedding")

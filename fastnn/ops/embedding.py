"""Embedding lookup: rows of a weight table picked by integer indices, with a scatter-add backward."""
import numpy as np

from fastnn._tracing import traced
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


@traced
def embedding(input, weight, padding_idx=None):
    """out[..., :] = weight[input[...], :] for an integer index tensor `input` of any shape.

    The backward pass adds each output row's gradient into the weight row it came from, so an index that
    appears several times receives the sum of their gradients; the padding_idx row receives none.
    """
    if not isinstance(weight, Tensor):
        raise TypeError(f"embedding: weight must be a Tensor, got {type(weight).__name__}")
    backend = weight._backend
    if not isinstance(input, Tensor):
        input = Tensor(backend.asarray(input), device=weight.device)
    indices = input._data
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
    xp = backend.xp
    out = xp.take(weight._data, indices, axis=0)

    def backward(g):
        # the backend's kernel sums repeated indices; float16 tables are summed in float32
        dtype = weight.dtype if weight.dtype in backend.kernel_dtypes else np.dtype(np.float32)
        flat = xp.ascontiguousarray(indices.reshape(-1), dtype=np.int64)
        rows = xp.ascontiguousarray(g.reshape(flat.size, weight.shape[1]), dtype=dtype)
        grad = backend.kernels.embedding_backward(rows, flat, num_embeddings)
        if padding_idx is not None:
            grad[padding_idx] = 0
        return grad.astype(weight.dtype, copy=False), None
    # the backward reads the indices (as PyTorch saves them), not the table's values
    return make_result(out, (weight, input), backward, "embedding", saved=(input,),
                       tangent=lambda tw, ti: embedding(input, tw))  # linear in the table; indices have none

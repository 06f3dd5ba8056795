"""nn.utils.rnn: pad_sequence (PackedSequence and pack_padded_sequence are not implemented)."""
from fastnn import ops
from fastnn.tensor import Tensor


def pad_sequence(sequences, batch_first=False, padding_value=0.0, padding_side="right"):
    """Stack tensors of shapes (L_i, *) into (L_max, B, *) (or (B, L_max, *) with batch_first), filling the
    missing steps with padding_value after (padding_side="right") or before ("left") each sequence."""
    if isinstance(sequences, Tensor):
        sequences = list(sequences) if sequences.ndim else [sequences]
    sequences = list(sequences)
    if not sequences:
        raise ValueError("pad_sequence(): received an empty list of sequences")
    if padding_side not in ("left", "right"):
        raise ValueError(f"pad_sequence(): padding_side must be 'left' or 'right', got {padding_side!r}")
    for i, s in enumerate(sequences):
        if not isinstance(s, Tensor):
            raise TypeError(f"pad_sequence(): sequences[{i}] must be a Tensor, got {type(s).__name__}")
        if s.ndim == 0 or s.shape[1:] != sequences[0].shape[1:]:
            raise ValueError(f"pad_sequence(): every sequence must be (L, *) with the same trailing shape; "
                             f"sequences[0] has shape {tuple(sequences[0].shape)}, sequences[{i}] "
                             f"{tuple(s.shape)}")
    longest = max(s.shape[0] for s in sequences)
    padded = []
    for s in sequences:
        missing = longest - s.shape[0]
        if missing:
            before, after = (0, missing) if padding_side == "right" else (missing, 0)
            s = ops.pad(s, (0, 0) * (s.ndim - 1) + (before, after), value=padding_value)
        padded.append(s)
    return ops.stack(padded, 0 if batch_first else 1)

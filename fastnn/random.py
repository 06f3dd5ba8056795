"""Global random state: every random draw in fastnn comes from here or from an explicit generator.

`Generator` is torch.Generator: an np.random.Generator (PCG64) with PyTorch's methods (manual_seed, seed,
initial_seed, get_state/set_state, device). Being an np.random.Generator, it is accepted wherever fastnn takes a
`generator` (random factories and fills, nn.init, samplers, random_split, DataLoader). The global generator is one
too (default_generator() returns it).
"""
import contextlib
import threading

import numpy as np

# PyTorch seeds every new torch.Generator() with this value (c10's default_rng_seed_val).
DEFAULT_SEED = 67280421310721
_STATE_BYTES = 37  # PCG64 state (16) + increment (16) + has_uint32 (1) + uinteger (4), little-endian


def _entropy_seed():
    return int(np.random.SeedSequence().entropy) % 2 ** 64  # 128 bits from the OS, folded to a 64-bit seed


def _check_seed(seed, name):
    if not isinstance(seed, (int, np.integer)) or isinstance(seed, bool):
        raise TypeError(f"{name} expects an int, got {type(seed).__name__}")
    seed = int(seed)
    if not -2 ** 63 <= seed < 2 ** 64:
        raise ValueError(f"{name}: seed must be within [-0x8000_0000_0000_0000, 0xffff_ffff_ffff_ffff], "
                           f"got {seed}")
    return seed % 2 ** 64  # PyTorch folds negative seeds into uint64 the same way


class Generator(np.random.Generator):
    """torch.Generator(device='cpu'): a random stream of its own, seeded with PyTorch's default seed."""

    def __init__(self, device="cpu"):
        from fastnn import _dispatch
        self._device = _dispatch.device(device)
        super().__init__(np.random.PCG64(DEFAULT_SEED))
        self._initial_seed = DEFAULT_SEED

    @property
    def device(self):
        return self._device

    def manual_seed(self, seed):
        """Restart the stream from `seed` (an int; negative ones wrap as in PyTorch); returns the generator."""
        seed = _check_seed(seed, "manual_seed")
        self.bit_generator.state = np.random.PCG64(seed).state
        self._initial_seed = seed
        return self

    def seed(self):
        """Reseed from the OS's entropy; returns the new 64-bit seed."""
        seed = _entropy_seed()
        self.manual_seed(seed)
        return seed

    def initial_seed(self):
        return self._initial_seed

    def get_state(self):
        """The stream's state as a uint8 tensor (a ByteTensor, as in PyTorch; its size is fastnn's own)."""
        from fastnn.tensor import Tensor
        state = self.bit_generator.state
        raw = (state["state"]["state"].to_bytes(16, "little") + state["state"]["inc"].to_bytes(16, "little")
               + bytes([state["has_uint32"]]) + int(state["uinteger"]).to_bytes(4, "little"))
        return Tensor(np.frombuffer(raw, dtype=np.uint8).copy())

    def set_state(self, new_state):
        """Restore a state from get_state; returns the generator."""
        from fastnn.tensor import Tensor
        if not isinstance(new_state, Tensor) or new_state.dtype != np.uint8:
            raise TypeError(f"set_state expects a uint8 Tensor from get_state, got "
                            f"{getattr(new_state, 'dtype', type(new_state).__name__)}")
        if new_state.shape != (_STATE_BYTES,):
            raise ValueError(f"set_state: expected a state of {_STATE_BYTES} bytes, got shape "
                               f"{tuple(new_state.shape)}")
        raw = bytes(new_state.numpy().tobytes())
        self.bit_generator.state = {
            "bit_generator": "PCG64",
            "state": {"state": int.from_bytes(raw[:16], "little"), "inc": int.from_bytes(raw[16:32], "little")},
            "has_uint32": raw[32], "uinteger": int.from_bytes(raw[33:37], "little")}
        return self

    def __reduce__(self):
        # np.random.Generator pickles as a plain Generator; keep the class, device, seed and stream
        return _restore_generator, (str(self._device), self._initial_seed, self.bit_generator.state)

    def __repr__(self):
        return f"<fastnn.Generator device={self._device} initial_seed={self._initial_seed}>"

    __str__ = __repr__  # np.random.Generator defines its own __str__


def _restore_generator(device, initial_seed, state):
    g = Generator(device)
    g._initial_seed = initial_seed
    g.bit_generator.state = state
    return g


# Seeded from the OS's entropy at import (PyTorch's starts from DEFAULT_SEED; fastnn keeps runs unseeded unless
# manual_seed is called).
_generator = Generator()
_generator.seed()
# A thread may draw from a generator of its own instead (DataLoader worker threads: see use_generator).
_thread_state = threading.local()


def manual_seed(seed):
    """Seed fastnn's global generator (initializers, dropout, shuffling, random tensors); returns it. The global
    generator becomes a new object: a device backend keys its own stream by the host generator (cuda's Philox
    streams), so a new object restarts those streams too."""
    global _generator
    _generator = Generator().manual_seed(seed)
    return _generator


def seed():
    """Seed the global generator from the OS's entropy; returns the seed."""
    new_seed = _entropy_seed()
    manual_seed(new_seed)
    return new_seed


def initial_seed():
    """The seed the global generator was last seeded with."""
    return _generator.initial_seed()


def default_generator():
    """The generator random draws use: the calling thread's own one inside use_generator, else the global one."""
    own = getattr(_thread_state, "generator", None)
    return _generator if own is None else own


@contextlib.contextmanager
def use_generator(generator):
    """Within the block, default_generator() returns `generator` in this thread only (other threads keep theirs).

    DataLoader wraps each batch in it, so a batch's random transforms draw the same numbers whichever thread or
    process builds the batch.
    """
    if not isinstance(generator, np.random.Generator):
        raise TypeError(f"use_generator expects an np.random.Generator, got {type(generator).__name__}")
    previous = getattr(_thread_state, "generator", None)
    _thread_state.generator = generator
    try:
        yield generator
    finally:
        _thread_state.generator = previous


def get_rng_state():
    """The state of fastnn's global generator as a uint8 tensor (torch.get_rng_state)."""
    return _generator.get_state()


def set_rng_state(new_state):
    """Restore a state from get_rng_state into the global generator (in place: holders of it see it too). The
    JSON-able dict earlier fastnn versions returned is accepted as well, so old checkpoints still load."""
    if isinstance(new_state, dict) and new_state.get("bit_generator") == "PCG64":
        _generator.bit_generator.state = new_state
    else:
        _generator.set_state(new_state)

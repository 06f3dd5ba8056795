"""Global random state: every random draw in fastnn comes from here or from an explicit generator."""
import contextlib
import threading

import numpy as np

_generator = np.random.default_rng()
# A thread may draw from a generator of its own instead (DataLoader worker threads: see use_generator).
_thread_state = threading.local()


def manual_seed(seed):
    """Seed fastnn's global generator (initializers, dropout, shuffling, random tensors)."""
    global _generator
    if not isinstance(seed, (int, np.integer)) or isinstance(seed, bool):
        raise TypeError(f"manual_seed expects an int, got {type(seed).__name__}")
    _generator = np.random.default_rng(int(seed))
    return _generator


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
    """The state of fastnn's global generator, as a JSON-able dict (torch.get_rng_state's role)."""
    return _generator.bit_generator.state


def set_rng_state(state):
    """Restore a state from get_rng_state into the global generator (in place: holders of default_generator()
    see it too)."""
    if not isinstance(state, dict) or "bit_generator" not in state:
        raise TypeError(f"set_rng_state expects a dict from get_rng_state, got {type(state).__name__}")
    if state["bit_generator"] != type(_generator.bit_generator).__name__:
        raise ValueError(f"set_rng_state: the state is for a {state['bit_generator']} generator, fastnn's global "
                         f"generator is a {type(_generator.bit_generator).__name__}")
    _generator.bit_generator.state = state

"""Global random state: every random draw in fastnn comes from here or from an explicit generator."""
import numpy as np

_generator = np.random.default_rng()


def manual_seed(seed):
    """Seed fastnn's global generator (initializers, dropout, shuffling, random tensors)."""
    global _generator
    if not isinstance(seed, (int, np.integer)) or isinstance(seed, bool):
        raise TypeError(f"manual_seed expects an int, got {type(seed).__name__}")
    _generator = np.random.default_rng(int(seed))
    return _generator


def default_generator():
    return _generator


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

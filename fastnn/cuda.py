"""fastnn.cuda: what scripts ask torch.cuda. CUDA runs only when a 'cuda' backend is registered (see
fastnn/_dispatch.py); until then is_available() is False and the calls that need a device say so."""
from fastnn import _dispatch


def is_available():
    return "cuda" in _dispatch.registered()


def device_count():
    return _dispatch.backend("cuda").device_count() if is_available() else 0


def _require(what):
    if not is_available():
        raise RuntimeError(f"fastnn.cuda.{what}(): no CUDA device is available (this build of fastnn has only "
                           f"the devices {_dispatch.registered()})")


def current_device():
    _require("current_device")
    return 0


def synchronize(device=None):
    _require("synchronize")
    _dispatch.backend(_dispatch.device("cuda", device) if isinstance(device, int) else device or "cuda").synchronize()


def manual_seed(seed):
    """Seeds the CUDA generator; fastnn's device draws follow fastnn.manual_seed, so this seeds that one (as
    torch.cuda.manual_seed, it does nothing visible without CUDA beyond that)."""
    from fastnn.random import manual_seed as _seed
    _seed(seed)


manual_seed_all = manual_seed

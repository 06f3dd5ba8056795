"""fastnn.accelerator: torch.accelerator's probes, with which PyTorch's examples (2.6+) pick their device. The only
accelerator fastnn can have is CUDA (fastnn.cuda): without it, as on a CPU-only torch, there is none."""
from fastnn import cuda


def is_available():
    return cuda.is_available()


def current_accelerator(check_available=False):
    """The accelerator's device, or None when there is none (check_available is torch's argument: fastnn's CUDA
    backend is registered only where it can run, so the answer is the same either way)."""
    from fastnn._dispatch import device

    return device("cuda") if cuda.is_available() else None


def device_count():
    return cuda.device_count()


def synchronize(device=None):
    cuda.synchronize(device)

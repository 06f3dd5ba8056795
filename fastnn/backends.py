"""fastnn.backends: the availability flags and switches scripts probe in torch.backends. fastnn has no MPS or
cuDNN backend; the cuDNN switches are accepted (and ignored) so that scripts setting them run unchanged."""
import types

mps = types.SimpleNamespace(is_available=lambda: False, is_built=lambda: False)
cudnn = types.SimpleNamespace(enabled=False, benchmark=False, deterministic=True, is_available=lambda: False,
                              version=lambda: None)

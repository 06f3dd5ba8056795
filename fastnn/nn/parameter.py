"""Parameter: a leaf Tensor that a Module registers as trainable."""
import numpy as np

from fastnn.tensor import Tensor


class Parameter(Tensor):
    def __init__(self, data=None, requires_grad=True):
        if data is None:
            data = np.empty(0, dtype=np.float32)
        if isinstance(data, Tensor):
            device, data = data.device, data._data
        else:
            device, data = "cpu", np.asarray(data)
        super().__init__(data, requires_grad=requires_grad, device=device)

    def __repr__(self):
        return "Parameter containing:\n" + super().__repr__()


class UninitializedTensorMixin:
    """A Lazy module's tensor before the module's first forward: it has no shape yet (it holds an empty array).
    materialize(shape) gives it one in place and turns it into `cls_to_become`, so an optimizer built before the
    first forward holds the same, now materialized, tensor (PyTorch's semantics)."""
    cls_to_become = None

    def materialize(self, shape, device=None, dtype=None):
        """Allocate storage of `shape` (values unset: the module initialises them)."""
        from fastnn import _dispatch
        backend = self._backend if device is None else _dispatch.backend(device)
        self._data = backend.xp.empty(tuple(shape), self.dtype if dtype is None else np.dtype(dtype))
        self._backend = backend
        self.__class__ = self.cls_to_become

    def __repr__(self):
        return f"<{type(self).__name__}>"


class UninitializedParameter(UninitializedTensorMixin, Parameter):
    cls_to_become = Parameter

    def __init__(self, requires_grad=True, dtype=None):
        super().__init__(np.empty(0, np.dtype(dtype or np.float32)), requires_grad)


class UninitializedBuffer(UninitializedTensorMixin, Tensor):
    cls_to_become = Tensor

    def __init__(self, requires_grad=False, dtype=None):
        super().__init__(np.empty(0, np.dtype(dtype or np.float32)), requires_grad)

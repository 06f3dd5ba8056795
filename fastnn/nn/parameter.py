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

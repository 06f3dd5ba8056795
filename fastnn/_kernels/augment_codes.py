"""Numba-free constants shared by the augmentation kernels (cpu_augment.py), their references and their callers
(fastnn.data.transforms), so that importing the transforms does not import Numba."""
import numpy as np

# colour-op codes of color_ops
OP_NONE, OP_BRIGHTNESS, OP_CONTRAST, OP_SATURATION, OP_HUE, OP_GRAYSCALE = -1, 0, 1, 2, 3, 4

# Positions in color_ops' `consts`: scalars in the images' dtype (a float32 kernel mixing in a Python float or
# int literal would compute in float64 and truncate uint8 results differently from torchvision).
C_WR, C_WG, C_WB, C_SIXTH, C_SIX, C_TWO, C_FOUR, C_TO_UNIT, C_FROM_UNIT, C_ZERO, C_ONE, C_BOUND = range(12)


def color_constants(dtype, integer):
    """The `consts` array of color_ops for images of `dtype` (uint8 values held as floats when `integer`)."""
    return np.array([0.2989, 0.587, 0.114, 1.0 / 6.0, 6.0, 2.0, 4.0, 1.0 / 255.0, 255.0 + 1.0 - 1e-3, 0.0, 1.0,
                     255.0 if integer else 1.0], dtype=dtype)

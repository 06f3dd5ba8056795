"""Compute kernels: pure functions on arrays, one backend module per device (cpu.py, cuda.py).

cpu_*.py hold Numba kernels, ref_*.py their plain-NumPy references. Nothing here imports a Tensor.
"""
from fastnn._kernels.vector_width import use_full_width

use_full_width()  # before any kernel of this package compiles: 512-bit vectors on AVX-512 hosts

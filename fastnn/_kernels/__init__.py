"""Compute kernels: pure functions on arrays, one backend module per device (cpu.py, cuda.py).

cpu_*.py hold Numba kernels, ref_*.py their plain-NumPy references. Nothing here imports a Tensor.
"""

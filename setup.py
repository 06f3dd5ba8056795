"""fastnn has no compiled extension of its own (its kernels are compiled by Numba at run time); the package
metadata lives in pyproject.toml. This file only lets older pip/setuptools run an editable install."""
from setuptools import setup

setup()

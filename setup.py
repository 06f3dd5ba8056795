"""Builds the optional Cython kernels in fastnn/_kernels/*.pyx when Cython and a C compiler are available.

Without them the package installs as pure Python and the Numba kernels are used instead.
"""
import glob
import os
import sys

from setuptools import setup
from setuptools.command.build_ext import build_ext


class OptionalBuildExt(build_ext):
    """A failed compile leaves the pure-Python/Numba path in place instead of failing the install."""

    def run(self):
        try:
            super().run()
        except Exception as exc:  # noqa: BLE001  (any compiler failure means "no extension")
            print(f"fastnn: skipping optional Cython extensions ({exc})", file=sys.stderr)

    def build_extension(self, ext):
        try:
            super().build_extension(ext)
        except Exception as exc:  # noqa: BLE001
            print(f"fastnn: skipping optional extension {ext.name} ({exc})", file=sys.stderr)


def cython_extensions():
    sources = sorted(glob.glob(os.path.join("fastnn", "_kernels", "*.pyx")))
    if not sources:
        return []
    try:
        from Cython.Build import cythonize
    except ImportError:
        return []
    from setuptools import Extension
    extensions = [Extension(src[:-4].replace(os.sep, "."), [src], extra_compile_args=["-O3"]) for src in sources]
    try:
        return cythonize(extensions, language_level=3, quiet=True)
    except Exception as exc:  # noqa: BLE001
        print(f"fastnn: skipping optional Cython extensions ({exc})", file=sys.stderr)
        return []


setup(ext_modules=cython_extensions(), cmdclass={"build_ext": OptionalBuildExt})

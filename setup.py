"""The compiled part of calib: the kernels in calib/csrc (the solver's small-block sums, the
BAL reprojection), built into the module ``calib._kernels``.

Everything else is declared in pyproject.toml; setuptools reads both.
"""

from setuptools import Extension, setup

setup(ext_modules=[Extension(
    "calib._kernels",
    ["calib/csrc/module.c", "calib/csrc/blocks.c", "calib/csrc/bal.c", "calib/csrc/lie.c",
     "calib/csrc/registration.c"],
    depends=["calib/csrc/arrays.h"],
    extra_compile_args=["-O3"])])

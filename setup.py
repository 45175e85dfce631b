"""The compiled part of calib: the kernels in csrc (the solver's small-block sums, the
BAL reprojection), built into the module ``calib._kernels``.

Everything else is declared in pyproject.toml; setuptools reads both.
"""

from setuptools import Extension, setup

setup(ext_modules=[Extension(
    "calib._kernels",
    ["csrc/module.c", "csrc/blocks.c", "csrc/bal.c", "csrc/lie.c",
     "csrc/registration.c", "csrc/checks.c", "csrc/cholesky.c"],
    depends=["csrc/arrays.h"],
    extra_compile_args=["-O3"])])

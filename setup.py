"""The compiled part of calib: the solver's block kernels (calib/solver/_blocks.c).

Everything else is declared in pyproject.toml; setuptools reads both.
"""

from setuptools import Extension, setup

setup(ext_modules=[Extension("calib.solver._blocks", ["calib/solver/_blocks.c"],
                             extra_compile_args=["-O3", "-std=c99"])])

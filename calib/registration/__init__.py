"""Rigid point-cloud registration: ICP on the shared LM engine, global init, degeneracy."""

from .degeneracy import DegeneracyReport
from .icp import ICPOptions, check_init, register
from .result import RegistrationResult

__all__ = ["DegeneracyReport", "ICPOptions", "RegistrationResult", "check_init", "register"]

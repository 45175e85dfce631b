"""Bundle adjustment of BAL problems: file format and solver front-end."""

from .ba import BundleAdjustmentResult, bundle_adjust, bundle_adjust_problem
from .bal import BALProblem, read_bal, write_bal

__all__ = ["BALProblem", "BundleAdjustmentResult", "bundle_adjust", "bundle_adjust_problem",
           "read_bal", "write_bal"]

"""One Levenberg-Marquardt engine with block-sparse normal equations and Schur elimination.

Contract for residual builders and tasks: ``calib/solver/API.md``.
"""

from .lm import solve
from .loss import (
    ArctanLoss,
    CauchyLoss,
    HuberLoss,
    Loss,
    SoftL1Loss,
    TrivialLoss,
    TukeyLoss,
    make_loss,
)
from .manifold import Euclidean, Manifold, SE3Manifold, SO3Manifold
from .options import SolverOptions
from .problem import Problem
from .summary import IterationRecord, SolverResult, Summary

__all__ = [
    "ArctanLoss", "CauchyLoss", "Euclidean", "HuberLoss", "IterationRecord", "Loss", "Manifold",
    "Problem", "SE3Manifold", "SO3Manifold", "SoftL1Loss", "SolverOptions", "SolverResult",
    "Summary", "TrivialLoss", "TukeyLoss", "make_loss", "solve",
]

"""Options of a rig fit."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType

import numpy as np

from ..errors import InputError


@dataclass(frozen=True)
class RigOptions:
    """How to fit a rig.

    Attributes:
        models: lens model name per camera (``pinhole`` where not named;
            :func:`calib.camera.model_names`).
        intrinsics: known parameters per camera (``(P,)`` in the model's ``param_names``
            order): the start for that camera instead of its own intrinsics fit.
        fix_intrinsics: hold the given intrinsics constant (OpenCV's CALIB_FIX_INTRINSIC);
            every camera then needs ``intrinsics``.
        fix: parameter names held constant in every camera whose model has them (e.g.
            ``("k3",)``; at 0 for distortion, as :class:`calib.intrinsics.FitOptions`), or
            ``"model:name"`` for one model's cameras only (``"pinhole:k3"``).
        loss, loss_scale: robust loss on each corner's pixel error (scale in pixels).
        max_iterations: LM iteration cap of the joint refinement.
        initial_damping: first LM damping relative to ``diag(J^T J)``; as in
            :class:`calib.intrinsics.FitOptions` (intrinsics against board distance make the
            problem ill-conditioned and a small first damping saves iterations).
        function_tolerance: stop when a step lowers the cost by less than this fraction;
            None: as :class:`calib.intrinsics.FitOptions` (1e-6 when every camera is
            pinhole or fisheye, else 1e-8:
            :func:`calib.intrinsics.problem.default_function_tolerance`).
    """

    models: Mapping[str, str] = field(default_factory=dict)
    intrinsics: Mapping[str, np.ndarray] = field(default_factory=dict)
    fix_intrinsics: bool = False
    fix: tuple[str, ...] = ()
    loss: str | None = None
    loss_scale: float = 1.0
    max_iterations: int = 100
    initial_damping: float = 1e-6
    function_tolerance: float | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "models", MappingProxyType(dict(self.models)))
        object.__setattr__(self, "intrinsics", MappingProxyType(
            {k: np.asarray(v, float).copy() for k, v in self.intrinsics.items()}))
        object.__setattr__(self, "fix", tuple(str(n) for n in self.fix))
        if not (np.isfinite(self.loss_scale) and self.loss_scale > 0):
            raise InputError(f"loss_scale must be a positive number of pixels, got "
                             f"{self.loss_scale!r}")
        if int(self.max_iterations) < 1:
            raise InputError(f"max_iterations must be at least 1, got {self.max_iterations}")


def held_names(fix: tuple[str, ...], model) -> tuple[str, ...]:
    """The parameters of lens ``model`` that ``fix`` holds (see :attr:`RigOptions.fix`)."""
    out = []
    for n in model.param_names:
        if n in fix or f"{model.name}:{n}" in fix:
            out.append(n)
    return tuple(out)

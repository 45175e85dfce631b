"""The frozen result of a rig fit: per-camera intrinsics and extrinsics with σ, and the
JSON report (keys ``cameras``, ``extrinsics``, ``rms_px`` as the issue's contract)."""

from __future__ import annotations

from dataclasses import dataclass
from types import MappingProxyType

import numpy as np

from ..camera.base import LensModel, get_model
from ..errors import DegenerateError
from ..intrinsics.diagnostics import DistortionCheck, board_checks, verdict
from ..intrinsics.problem import BoardSolve, rms_px
from ..intrinsics.result import OpenCVView
from ..io.json_safe import json_safe
from ..lie import so3
from ..solver import Summary
from .stereo import StereoReport, stereo_report


def _frozen(a) -> np.ndarray:
    a = np.array(a)
    a.setflags(write=False)
    return a


@dataclass(frozen=True, eq=False)
class CameraFit(OpenCVView):
    """One camera of the rig.

    Attributes:
        name, model (lens model name), params ``(P,)`` in the model's ``param_names``
        order (``K``, ``dist`` as :class:`~calib.intrinsics.result.IntrinsicsResult`),
        image_size ``(w, h)``; std: one standard deviation per parameter (0 when
        held fixed); covariance ``(P, P)``; rms_px ``sqrt(sum|e|^2 / N)`` over its corners
        (OpenCV's definition); per_view_rms_px: image name -> RMS; distortion_check,
        coverage, verdict, reasons: the single-camera diagnostics
        (:mod:`calib.intrinsics.diagnostics`) on the joint fit.
    """

    name: str
    model: str
    params: np.ndarray
    image_size: tuple[int, int]
    std: dict
    covariance: np.ndarray
    rms_px: float
    n_corners: int
    per_view_rms_px: dict
    distortion_check: DistortionCheck
    coverage: np.ndarray
    verdict: str
    reasons: tuple[str, ...]

    def __post_init__(self) -> None:
        for n in ("params", "covariance", "coverage"):
            object.__setattr__(self, n, _frozen(getattr(self, n)))
        object.__setattr__(self, "std", MappingProxyType(dict(self.std)))
        object.__setattr__(self, "per_view_rms_px", MappingProxyType(dict(self.per_view_rms_px)))

    def to_dict(self) -> dict:
        lens = get_model(self.model)
        return {"model": self.model, "image_size": list(self.image_size), "K": self.K.tolist(),
                "dist": self.dist.tolist(), "dist_order": list(lens.dist_names),
                "params": dict(zip(lens.param_names, self.params.tolist(), strict=True)),
                "rms_px": self.rms_px, "std": dict(self.std), "corners": self.n_corners,
                "verdict": self.verdict, "reasons": list(self.reasons),
                "per_view": [{"image": k, "rms_px": v} for k, v in self.per_view_rms_px.items()],
                "distortion_check": self.distortion_check.to_dict(),
                "coverage": {"grid_counts": self.coverage.tolist()}}


@dataclass(frozen=True, eq=False)
class RigResult:
    """A calibrated rig.

    Attributes:
        cameras: :class:`CameraFit` per camera; camera 0 is the reference.
        T_cam_ref: ``(C, 4, 4)``: maps points in the reference camera's frame into each
            camera's frame (the ``R|T`` of ``cv2.stereoCalibrate``); identity for camera 0.
        extrinsic_covariance: ``(C, 6, 6)`` of ``(rotation (rad), translation (m))`` of
            ``T_cam_ref``: the rotation error is the left perturbation
            ``R = Exp(phi) R_est``, the translation error ``t - t_est``.
        std_rot_deg, std_trans_m: ``(C,)`` RMS size of those errors:
            ``sqrt(trace)`` of the rotation / translation block.
        rms_px: RMS pixel error over every corner of every camera.
        frames: ``(F,)`` frame numbers; T_rig_board ``(F, 4, 4)``.
        residuals: ``(R, 2)`` px, with cam, frame ``(R,)`` per row.
        covisibility: ``(C, C)`` frames each pair of cameras shares.
        unpaired: ``(camera, image)`` of views no other camera shares (intrinsics only).
        skipped: ``(camera, image, reason)`` of views left out.
        tree: ``(parent, child, inlier frames, shared frames)``: how the start placed each
            camera. stereo: :class:`~calib.rig.stereo.StereoReport` for two cameras.
        board_points: ``(P, 3)`` the board (metres).
    """

    cameras: tuple[CameraFit, ...]
    T_cam_ref: np.ndarray
    extrinsic_covariance: np.ndarray
    std_rot_deg: np.ndarray
    std_trans_m: np.ndarray
    rms_px: float
    frames: np.ndarray
    T_rig_board: np.ndarray
    residuals: np.ndarray
    cam: np.ndarray
    frame: np.ndarray
    covisibility: np.ndarray
    unpaired: tuple[tuple[str, str], ...]
    skipped: tuple[tuple[str, str, str], ...]
    tree: tuple[tuple[int, int, int, int], ...]
    stereo: StereoReport | None
    solver_summary: Summary
    board_points: np.ndarray
    fixed_intrinsics: bool = False

    def __post_init__(self) -> None:
        for n in ("T_cam_ref", "extrinsic_covariance", "std_rot_deg", "std_trans_m", "frames",
                  "T_rig_board", "residuals", "cam", "frame", "covisibility", "board_points"):
            object.__setattr__(self, n, _frozen(getattr(self, n)))

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(c.name for c in self.cameras)

    def camera(self, name: str) -> CameraFit:
        return self.cameras[self.names.index(name)]

    def summary(self) -> str:
        lines = [f"rig of {len(self.cameras)} camera(s), {len(self.frames)} frames: RMS "
                 f"{self.rms_px:.4f} px over {len(self.residuals)} corners"]
        for c, cam in enumerate(self.cameras):
            K = cam.K
            lines.append(f"  {cam.name} ({cam.model}): RMS {cam.rms_px:.4f} px, fx "
                         f"{K[0, 0]:.2f} fy {K[1, 1]:.2f} cx {K[0, 2]:.2f} cy {K[1, 2]:.2f}, "
                         f"verdict {cam.verdict}")
            if c:
                t = self.T_cam_ref[c, :3, 3]
                ang = np.degrees(so3.angle(self.T_cam_ref[c, :3, :3]))
                lines.append(f"    T_cam_ref: |t| = {np.linalg.norm(t):.5f} m "
                             f"+/- {1e3 * self.std_trans_m[c]:.2g} mm, rotation {ang:.3f} deg "
                             f"+/- {self.std_rot_deg[c]:.2g} deg")
        if self.stereo is not None:
            lines.append(f"  stereo: epipolar error RMS {self.stereo.epipolar_rms_px:.4f} px, "
                         f"rectified row misalignment RMS {self.stereo.row_rms_px:.4f} px")
        if self.unpaired:
            lines.append(f"  {len(self.unpaired)} view(s) without a partner (intrinsics only)")
        lines.append(f"solver: {self.solver_summary.brief()}")
        return "\n".join(lines)

    def to_dict(self) -> dict:
        """The JSON report: ``cameras``, ``extrinsics``, ``rms_px`` (the contract) and more."""
        ref = self.cameras[0].name
        out = {
            "reference": ref,
            "cameras": {c.name: c.to_dict() for c in self.cameras},
            "extrinsics": {c.name: {"T_cam_ref": self.T_cam_ref[i].tolist(),
                                    "std_rot_deg": float(self.std_rot_deg[i]),
                                    "std_trans_m": float(self.std_trans_m[i])}
                           for i, c in enumerate(self.cameras)},
            "rms_px": self.rms_px,
            "frames": len(self.frames),
            "covisibility": {"cameras": list(self.names),
                             "shared_frames": self.covisibility.tolist()},
            "unpaired_views": [{"camera": c, "image": v} for c, v in self.unpaired],
            "skipped": [{"camera": c, "image": v, "reason": r} for c, v, r in self.skipped],
            "initial_tree": [{"from": self.names[a], "to": self.names[b], "inlier_frames": n,
                              "shared_frames": m} for a, b, n, m in self.tree],
            "fixed_intrinsics": self.fixed_intrinsics,
            "solver": self.solver_summary.to_dict(with_iterations=False),
        }
        if self.stereo is not None:
            out["stereo"] = self.stereo.to_dict()
        return json_safe(out)


def _extrinsic_cov(cov: np.ndarray, T: np.ndarray) -> np.ndarray:
    """``(C, 6, 6)`` of (rotation, translation) from the twist covariance ``(6C, 6C)``
    ``(rho, phi)`` of left perturbations: ``dt = rho - hat(t) phi``."""
    out = np.zeros((len(T), 6, 6))
    for c in range(len(T)):
        J = np.zeros((6, 6))
        J[:3, 3:] = np.eye(3)
        J[3:, :3] = np.eye(3)
        J[3:, 3:] = -so3.hat(T[c, :3, 3])
        out[c] = J @ cov[6 * c:6 * c + 6, 6 * c:6 * c + 6] @ J.T
    return out


def _camera_fit(c: int, obs, model: LensModel, sol: BoardSolve) -> CameraFit:
    """Camera ``c`` of the solution with the single-camera diagnostics
    (:func:`~calib.intrinsics.diagnostics.board_checks`, :func:`verdict`)."""
    params, cov = sol.params[c], sol.covariance[c]
    std = {k: float(np.sqrt(max(cov[i, i], 0.0))) for i, k in enumerate(model.param_names)}
    rows = obs.cam == c
    views = obs.views(c)
    pv = sol.per_view_rms[c, views]
    size = obs.image_sizes[c]
    dist, cover = board_checks(model, params, size, obs.uv[rows])
    names = [obs.view_names[(c, int(f))] for f in views]
    rms = rms_px(sol.residuals[rows])
    v, why = verdict(rms, pv, np.ones(len(pv), bool), std, params, dist, cover,
                     sol.summary.termination == "converged", names)
    return CameraFit(obs.cameras[c], model.name, params, size, std, cov, rms, int(rows.sum()),
                     dict(zip(names, pv.tolist(), strict=True)), dist, cover, v, tuple(why))


def _degenerate(obs, models, sol: BoardSolve) -> DegenerateError:
    """What the views leave undetermined, by camera and parameter."""
    what = [f"{obs.cameras[c]}: {', '.join(models[c].param_names[i] for i in u)}"
            for c, u in enumerate(sol.undetermined) if u]
    return DegenerateError("the views do not determine every rig parameter (the normal "
                           "equations are singular"
                           + (f" in {'; '.join(what)}" if what else " in the camera poses")
                           + "); add frames with the board tilted in different directions")


def make_result(obs, models, start, sol: BoardSolve, opts, board) -> RigResult:
    """:class:`RigResult` from the solution (σ scaled by the residual variance)."""
    if not sol.full_rank:
        raise _degenerate(obs, models, sol)
    cams = tuple(_camera_fit(c, obs, models[c], sol) for c in range(obs.n_cameras))
    T = sol.T_cam_rig
    ecov = _extrinsic_cov(sol.extrinsic_covariance, T)
    std_rot = np.degrees(np.sqrt(np.trace(ecov[:, :3, :3], axis1=1, axis2=2)))
    std_t = np.sqrt(np.trace(ecov[:, 3:, 3:], axis1=1, axis2=2))
    stereo = stereo_report(obs, cams, T) if obs.n_cameras == 2 else None
    return RigResult(cams, T, ecov, std_rot, std_t, rms_px(sol.residuals), obs.frames,
                     sol.T_rig_board, sol.residuals, obs.cam, obs.frame, obs.covisibility(),
                     tuple(obs.unpaired()), obs.skipped, start.edges, stereo, sol.summary,
                     board, opts.fix_intrinsics)

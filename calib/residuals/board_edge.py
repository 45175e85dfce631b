"""Where a LiDAR ray crosses a board's edge (camera-LiDAR extrinsics).

Slots: ``(T_camera_lidar (1, 4, 4) SE3, T_camera_board (F, 4, 4) SE3)``. A ray from the
LiDAR's origin along unit direction ``u`` (LiDAR frame) that meets frame ``f``'s board
exactly at one of its edges (the midpoint between a scan ring's last return on the board
and the next, missing, ray) gives ``r = w * (a . h - c)``: ``h`` is the ray's hit on the
board plane in board coordinates (the board plane is ``z = 0`` of the board frame), ``a``
the edge's in-plane unit normal (``±x`` or ``±y``) and ``c`` the edge's offset along it
(metres). Only the ray's direction enters, not the measured range, so the range noise does
not.

Derivatives (left perturbations (rho, phi) in the camera frame): with ``q`` the hit in the
camera frame, ``d`` the ray's direction there and ``P = I - d_b e_z^T / d_b.z`` (moving a
point along the ray back onto the plane, in board coordinates, ``d_b = R_f^T d``), a
perturbation of ``T_camera_lidar`` moves ``h`` by ``P R_f^T [I, -hat(q)]``; one of the
board by its negative (moving the board by ``Exp(e)`` moves the ray by ``Exp(-e)``
relative to it).
"""

from __future__ import annotations

import numpy as np

from ..lie import so3
from .base import ResidualFamily


class BoardEdgeCrossing(ResidualFamily):
    """``N`` edge-crossing rays.

    Args:
        rays: ``(N, 3)`` unit directions (LiDAR frame) of rays crossing a board edge.
        normals: ``(N, 2)`` the edge's unit normal in the board plane (board x, y).
        offsets: ``(N,)`` the edge's offset along its normal (m): the edge is
            ``normals . (x, y) = offsets``.
        weight: a scalar or one per ray ``(N,)`` (1 / σ, σ in metres).
    """

    residual_dim = 1

    def __init__(self, rays: np.ndarray, normals: np.ndarray, offsets: np.ndarray,
                 weight: float | np.ndarray = 1.0) -> None:
        self.rays = np.ascontiguousarray(rays, dtype=float)
        self.normals = np.ascontiguousarray(normals, dtype=float)
        self.offsets = np.ascontiguousarray(offsets, dtype=float)
        self.weight = np.broadcast_to(np.asarray(weight, dtype=float), (len(self.rays),))

    def restrict(self, rows: slice) -> BoardEdgeCrossing:
        return BoardEdgeCrossing(self.rays[rows], self.normals[rows], self.offsets[rows],
                                 self.weight[rows])

    def hits(self, T: np.ndarray, boards: np.ndarray) -> tuple[np.ndarray, ...]:
        """``(h (N, 3) board frame, q (N, 3) camera frame, d_b (N, 3), R_f^T (N, 3, 3))``
        for ``T (4, 4)`` and per-ray board poses ``boards (N, 4, 4)``."""
        Rft = np.swapaxes(boards[:, :3, :3], 1, 2)
        d = self.rays @ T[:3, :3].T
        o_b = np.einsum("nij,nj->ni", Rft, T[:3, 3] - boards[:, :3, 3])
        d_b = np.einsum("nij,nj->ni", Rft, d)
        dz = np.where(np.abs(d_b[:, 2]) > 1e-12, d_b[:, 2], 1e-12)
        lam = -o_b[:, 2] / dz
        h = o_b + lam[:, None] * d_b
        return h, T[:3, 3] + lam[:, None] * d, d_b, Rft

    def evaluate(self, values, indices, jacobians=True):
        T = values[0][0]
        boards = values[1][indices[1]]
        h, q, d_b, Rft = self.hits(T, boards)
        w = self.weight
        r = (np.einsum("ni,ni->n", h[:, :2], self.normals) - self.offsets) * w
        if not jacobians:
            return r[:, None], None
        a = np.c_[self.normals, np.zeros(len(h))]  # (N, 3) in the board frame
        dz = np.where(np.abs(d_b[:, 2]) > 1e-12, d_b[:, 2], 1e-12)
        aP = a - (np.einsum("ni,ni->n", a, d_b) / dz)[:, None] * np.array([0.0, 0.0, 1.0])
        g = np.einsum("ni,nij->nj", aP, Rft)  # a^T P R_f^T, (N, 3)
        j = np.concatenate([g, -np.einsum("ni,nij->nj", g, so3.hat(q))], axis=1)
        j = (j * w[:, None])[:, None, :]
        return r[:, None], [j, -j]

"""A least-squares problem: named parameter groups and vectorized residual families."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from ..errors import InputError
from ..residuals.base import ResidualFamily
from .loss import Loss
from .manifold import Euclidean, Manifold, SE3Manifold, SO3Manifold


@dataclass
class ParameterGroup:
    """``M`` blocks of one manifold stored as one array ``(M, *manifold.shape)``."""

    name: str
    value: np.ndarray
    manifold: Manifold
    eliminate: bool
    constant_blocks: np.ndarray  # (M,) bool
    constant_coords: np.ndarray  # (d,) bool

    @property
    def num_blocks(self) -> int:
        return self.value.shape[0]


@dataclass
class ResidualBlock:
    """A residual family bound to groups: slot ``j`` reads ``groups[j][indices[j]]``."""

    family: ResidualFamily
    groups: tuple[str, ...]
    indices: tuple[np.ndarray, ...]
    loss: Loss | None
    num_residuals: int


class Problem:
    """Parameter groups plus residual families; see ``calib/solver/API.md``.

    ``solve`` never mutates a problem: it copies the values it starts from.
    """

    def __init__(self) -> None:
        self.groups: dict[str, ParameterGroup] = {}
        self.residual_blocks: list[ResidualBlock] = []

    def add_parameter(
        self, name: str, value: np.ndarray, manifold: Manifold | None = None,
        eliminate: bool = False,
    ) -> None:
        """Add group ``name`` with values ``(M, *manifold.shape)`` (a copy is stored).

        ``manifold`` defaults to ``Euclidean(value.shape[-1])``. ``eliminate=True`` marks the
        group for Schur elimination (each residual may touch at most one eliminated block).
        """
        if name in self.groups:
            raise InputError(f"parameter group {name!r} already exists")
        v = np.array(value, dtype=float, copy=True)
        if manifold is None:
            if v.ndim == 1:
                v = v[:, None]
            manifold = Euclidean(v.shape[-1])
        if not isinstance(manifold, Euclidean | SO3Manifold | SE3Manifold):
            raise InputError(f"{name}: unsupported manifold {manifold!r}")
        if v.ndim == len(manifold.shape):
            v = v[None]
        if v.shape[1:] != manifold.shape or v.shape[0] < 1:
            raise InputError(f"{name}: expected values shaped (M, {manifold.shape}), got {v.shape}")
        if not np.isfinite(v).all():
            raise InputError(f"{name}: initial values contain NaN or inf")
        self.groups[name] = ParameterGroup(
            name, v, manifold, bool(eliminate), np.zeros(v.shape[0], bool),
            np.zeros(manifold.tangent_dim, bool))

    def set_constant(
        self, name: str, blocks: Sequence[int] | None = None, coords: Sequence[int] | None = None
    ) -> None:
        """Hold blocks and/or tangent coordinates of group ``name`` constant.

        ``blocks`` only: those whole blocks; ``coords`` only: those tangent coordinates of
        every block; neither: the whole group.
        """
        g = self._group(name)
        if blocks is None and coords is None:
            g.constant_blocks[:] = True
            return
        if blocks is not None:
            b = np.asarray(blocks, dtype=int).ravel()
            if b.size and (b.min() < 0 or b.max() >= g.num_blocks):
                raise InputError(f"{name}: block index out of range [0, {g.num_blocks})")
            g.constant_blocks[b] = True
        if coords is not None:
            c = np.asarray(coords, dtype=int).ravel()
            if c.size and (c.min() < 0 or c.max() >= g.manifold.tangent_dim):
                raise InputError(f"{name}: coordinate index out of range "
                                 f"[0, {g.manifold.tangent_dim})")
            g.constant_coords[c] = True

    def add_residuals(
        self, family: ResidualFamily, slots: Sequence[tuple[str, np.ndarray | int]],
        loss: Loss | None = None,
    ) -> None:
        """Bind ``family`` to groups: ``slots[j] = (group name, (N,) block indices or an int)``."""
        if not isinstance(family, ResidualFamily):
            raise InputError("family must be a calib.residuals.base.ResidualFamily")
        if not slots:
            raise InputError("a residual family needs at least one slot")
        n = None
        for _, idx in slots:
            if np.ndim(idx) == 1:
                n = len(idx)
                break
        names, idxs = [], []
        for gname, idx in slots:
            g = self._group(gname)
            a = np.asarray(idx)
            if a.ndim == 0:
                if n is None:
                    raise InputError("at least one slot needs an (N,) index array")
                a = np.full(n, int(a), dtype=np.int64)
            a = a.astype(np.int64, copy=True).ravel()
            if len(a) != n:
                raise InputError(f"slot {gname!r}: {len(a)} indices, expected {n}")
            if n and (a.min() < 0 or a.max() >= g.num_blocks):
                raise InputError(f"slot {gname!r}: block index out of range [0, {g.num_blocks})")
            names.append(gname)
            idxs.append(a)
        if sum(self.groups[nm].eliminate for nm in names) > 1:
            raise InputError("a residual family may touch at most one eliminated group")
        if n == 0:
            return
        self.residual_blocks.append(ResidualBlock(family, tuple(names), tuple(idxs), loss, n))

    def _group(self, name: str) -> ParameterGroup:
        if name not in self.groups:
            raise InputError(f"unknown parameter group {name!r}")
        return self.groups[name]

"""Solvers for the reduced system ``S x = b`` (symmetric positive definite).

``dense``: Cholesky (LAPACK: numpy's up to :data:`NUMPY_DENSE_MAX` unknowns, so small
problems never import scipy; beyond, scipy's ``potrf`` / ``potrs`` called by one compiled
kernel, ``csrc/cholesky.c``). ``sparse``: banded
Cholesky after a reverse Cuthill-McKee ordering (:class:`.schur_sparse.BandedCholesky`) when
the band is narrow enough that its factorisation costs no more than the largest dense one,
else SuperLU with a minimum-degree ordering of ``S + S^T``. ``cg``: conjugate gradients with
a block-Jacobi preconditioner built from the diagonal blocks of each reduced parameter block
(as Ceres' ITERATIVE_SCHUR + SCHUR_JACOBI).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from .._native import kernels as _k
from .blocks import all_finite
from .lazy import scipy_linalg, scipy_sparse_linalg
from .schur import LinearSolveError, batched_inverse
from .schur_sparse import BandedCholesky, reduced_pattern
from .structure import Structure

if TYPE_CHECKING:  # imported where used (.lazy): the dense path skips their import
    import scipy.sparse as sp
    import scipy.sparse.linalg as spla

#: Dense systems up to this many unknowns (a pose or two: ICP, hand-eye; a camera's
#: intrinsics) are solved with numpy's LAPACK (``potrf``, then ``gesv``), so they never
#: import scipy (0.20-0.28 s of CPU): 5-6 us for 6 unknowns through numpy's LAPACK gufuncs
#: (15 us through ``np.linalg``'s checking wrappers) against scipy's 4.5 us. Beyond,
#: scipy's ``potrf`` / ``potrs``: at 48 unknowns 16 us against numpy's 38-40 us (1.2 ms of a
#: 17 ms dubrovnik-3-7 solve), at 441 1.3 ms against 6 ms. Task modules whose problems need
#: more (bundle adjustment) import ``scipy.linalg`` with themselves, as the engine did.
NUMPY_DENSE_MAX = 16

try:  # numpy's LAPACK gufuncs, behind np.linalg.cholesky / solve (stable since numpy 1.8)
    from numpy.linalg import _umath_linalg

    _CHOLESKY, _SOLVE = _umath_linalg.cholesky_lo, _umath_linalg.solve1
except (ImportError, AttributeError):  # pragma: no cover - the public functions then
    _CHOLESKY = _SOLVE = None


def choose(structure: Structure, requested: str, dense_max: int, sparse_max: int) -> str:
    """The solver ``auto`` picks for a reduced system of ``structure.n_reduced`` unknowns:
    dense up to ``dense_max``; beyond, sparse when ``S`` is banded (factorisation no dearer
    than a dense one of ``dense_max``) or has at most ``sparse_max`` unknowns, else CG.
    Sets ``structure.banded`` when the sparse solver will use band storage."""
    n = structure.n_reduced
    if requested == "dense" or (requested == "auto" and n <= dense_max):
        return "dense"
    if requested in ("auto", "sparse") and structure.banded is None:
        pattern = reduced_pattern(structure)
        if pattern is not None:
            banded = BandedCholesky(pattern)
            if banded.flops() <= dense_max ** 3 / 3.0:
                structure.banded = banded
    if requested != "auto":
        return requested
    return "sparse" if structure.banded is not None or n <= sparse_max else "cg"


def solve(structure: Structure, S: sp.csr_matrix | np.ndarray, b: np.ndarray, method: str,
          cg_tol: float = 1e-6, cg_maxiter: int = 500) -> tuple[np.ndarray, int]:
    """Solve ``S x = b``; returns ``(x, iterations)`` (iterations 1 for direct solvers)."""
    n = b.size
    if n == 0:
        return np.zeros(0), 0
    if method == "dense":
        x = _cholesky_solve(S if isinstance(S, np.ndarray) else S.toarray(), b)
        its = 1
    elif method == "sparse" and structure.banded is not None \
            and not isinstance(S, np.ndarray) and S.format == "bsr":
        try:
            x = structure.banded.solve(S, b)
        except (np.linalg.LinAlgError, ValueError) as exc:
            raise LinearSolveError("reduced system is not positive definite") from exc
        its = 1
    elif method == "sparse":
        spla = scipy_sparse_linalg()
        try:
            lu = spla.splu(S.tocsc(), permc_spec="MMD_AT_PLUS_A",
                           options={"SymmetricMode": True})
        except RuntimeError as exc:
            raise LinearSolveError(f"sparse factorization failed: {exc}") from exc
        x = lu.solve(b)
        its = 1
    elif method == "cg":
        spla = scipy_sparse_linalg()
        pre = block_jacobi(structure, S.tocsr())
        count = [0]

        def cb(_):
            count[0] += 1

        x, info = spla.cg(S, b, rtol=cg_tol, maxiter=cg_maxiter, M=pre, callback=cb)
        its = count[0]
        if info < 0:
            raise LinearSolveError("conjugate gradients broke down")
    else:
        raise ValueError(f"unknown linear solver {method!r}")
    if not all_finite(x):
        raise LinearSolveError("non-finite solution of the reduced system")
    return x, its


def damped_dense(A: np.ndarray, g: np.ndarray, d: np.ndarray, mu: float) -> np.ndarray:
    """The LM step ``x = -(A + mu diag(d))^-1 g`` of a dense system with nothing to
    eliminate (the tiny path): ``A (n, n)`` symmetric positive semi-definite, ``g (n,)`` the
    gradient, ``d (n,)`` the damping diagonal. The same arithmetic as :func:`.schur.reduce`
    then :func:`solve`, bitwise, in one call beyond :data:`NUMPY_DENSE_MAX` unknowns (at 48,
    dubrovnik-3-7's, 8.5 us against 11.3, most of it LAPACK's own). Raises
    LinearSolveError where the damped matrix is not positive definite or ``x`` not
    finite."""
    n = len(g)
    if n <= NUMPY_DENSE_MAX:
        S = A.copy()
        S.reshape(-1)[::n + 1] += mu * d
        x = _small_solve(S, -g) if n else np.zeros(0)
    else:
        x = _lapack_solve(A, g, d, mu)
    if not all_finite(x):
        raise LinearSolveError("non-finite solution of the reduced system")
    return x


def _cholesky_solve(S: np.ndarray, b: np.ndarray) -> np.ndarray:
    """``S^-1 b`` for symmetric positive definite ``S``; raises LinearSolveError otherwise.

    Up to :data:`NUMPY_DENSE_MAX` unknowns numpy's Cholesky tests definiteness and its LU
    solve gives ``x`` (backward stable on an SPD matrix, as the Cholesky solve); beyond,
    LAPACK's ``potrf`` / ``potrs`` (:func:`_lapack_solve`)."""
    if len(b) <= NUMPY_DENSE_MAX:
        return _small_solve(S, b)
    return _lapack_solve(S, -b, np.zeros(len(b)), 0.0)


def _lapack_solve(A: np.ndarray, g: np.ndarray, d: np.ndarray, mu: float) -> np.ndarray:
    """``-(A + mu diag(d))^-1 g`` by scipy's LAPACK ``potrf`` / ``potrs``, called from C
    (``csrc/cholesky.c``, which takes them from ``scipy.linalg.cython_lapack``) with the
    same memory as ``scipy.linalg.lapack.dpotrf(S, lower=1)`` and ``dpotrs``, hence bitwise
    their result (what ``cho_factor`` and ``cho_solve`` call, without the wrappers' argument
    handling: 30-60 us a call on tiny problems through the public functions, 12 us through
    the f2py ones)."""
    scipy_linalg()  # loaded (and its BLAS registered with the thread policy) before C asks
    if A.dtype != np.float64 or g.dtype != np.float64:  # as scipy's f2py functions convert
        A, g = A.astype(float), g.astype(float)
    n = len(g)
    x = np.empty(n)
    info = _k.damped_solve(A, g, d, float(mu), np.empty((n, n)), x)
    if info > 0:
        raise LinearSolveError("reduced system is not positive definite")
    if info < 0:
        raise LinearSolveError("reduced system could not be solved")
    return x


def _small_solve(S: np.ndarray, b: np.ndarray) -> np.ndarray:
    """``S^-1 b`` for a small SPD ``S`` by numpy's LAPACK: ``potrf`` tests definiteness (a
    failed factor comes back as NaN), ``gesv`` solves (backward stable on an SPD matrix, as
    the Cholesky solve)."""
    if _CHOLESKY is None:
        try:
            np.linalg.cholesky(S)
            return np.linalg.solve(S, b)
        except np.linalg.LinAlgError as exc:
            raise LinearSolveError("reduced system is not positive definite") from exc
    with np.errstate(invalid="ignore"):  # LAPACK failures come back as NaN, checked here
        low = _CHOLESKY(S, signature="d->d")
        if not np.isfinite(low[-1, -1]):
            raise LinearSolveError("reduced system is not positive definite")
        return _SOLVE(S, b, signature="dd->d")


def block_jacobi(structure: Structure, S: sp.csr_matrix) -> spla.LinearOperator:
    """Inverse of the diagonal blocks of ``S``, one per reduced unit block (e.g. a camera's
    pose and intrinsics together), as Ceres' SCHUR_JACOBI preconditioner."""
    parts = []
    for unit in structure.units:
        lay = structure.layouts[unit[0]]
        d = lay.stride
        base = lay.offset + np.arange(lay.n_free) * d
        rows = (base[:, None, None] + np.arange(d)[None, :, None]).repeat(d, axis=2)
        cols = (base[:, None, None] + np.arange(d)[None, None, :]).repeat(d, axis=1)
        blocks = np.asarray(S[rows.ravel(), cols.ravel()]).reshape(lay.n_free, d, d)
        try:
            inv = batched_inverse(blocks)
        except LinearSolveError:
            inv = np.linalg.pinv(blocks)
        parts.append((lay.offset, lay.n_free, d, inv))

    def apply(v: np.ndarray) -> np.ndarray:
        v = np.asarray(v).ravel()
        out = np.empty_like(v)
        for off, nb, d, inv in parts:
            seg = v[off:off + nb * d].reshape(nb, d)
            out[off:off + nb * d] = np.einsum("pij,pj->pi", inv, seg).ravel()
        return out

    n = S.shape[0]
    return scipy_sparse_linalg().LinearOperator((n, n), matvec=apply, dtype=float)

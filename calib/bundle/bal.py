"""Read and write the BAL text format.

Layout: a header ``n_cameras n_points n_observations``; ``n_observations`` lines
``camera point x y``; then ``9 n_cameras`` camera numbers (angle-axis rotation[3],
translation[3], f, k1, k2) and ``3 n_points`` point coordinates, whitespace separated (one
per line in the published files).
"""

from __future__ import annotations

import itertools
import os
import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..errors import InputError
from ..io.atomic import atomic_open
from ..io.validate import check_file


@dataclass(frozen=True)
class BALProblem:
    """``cameras (C, 9)``, ``points (P, 3)``, ``camera_index (N,)``, ``point_index (N,)``,
    ``observations (N, 2)``."""

    cameras: np.ndarray
    points: np.ndarray
    camera_index: np.ndarray
    point_index: np.ndarray
    observations: np.ndarray


def _tokens(text: str) -> Iterator[tuple[int, str]]:
    """``(line number, token)`` for every whitespace token, streamed (never a list of all
    tokens: a 100 MB file would need a gigabyte)."""
    start, line = 0, 1
    while start < len(text):
        end = text.find("\n", start)
        end = len(text) if end < 0 else end
        for t in text[start:end].split():
            yield line, t
        start, line = end + 1, line + 1


def _line_of_token(text: str, k: int) -> int:
    """1-based line number of whitespace token ``k`` (0-based), for error messages."""
    return next(itertools.islice(_tokens(text), k, None), (_n_lines(text), ""))[0]


def _n_lines(text: str) -> int:
    return text.count("\n") + (not text.endswith("\n"))


def read_bal(path: str | os.PathLike) -> BALProblem:
    """Parse a BAL file; :class:`InputError` names the line of the first problem found."""
    p = check_file(path, "BAL file")
    try:
        text = p.read_text()
    except UnicodeDecodeError:
        raise InputError(f"{p}: not a text BAL file") from None
    _check_plain_numbers(p, text)
    head = text.split(maxsplit=3)[:3]
    values = _fast_parse(text, head)
    if values is None:  # something is off: find and name it
        values = _slow_parse(p, text)
    return _build(p, text, head, values)


def _slow_parse(p: Path, text: str) -> np.ndarray:
    """The numbers after the header, token by token, naming the line of the first problem
    (memory: the numbers themselves, the header's count at most)."""
    tokens = _tokens(text)
    head = [t for _, t in itertools.islice(tokens, 3)]
    if len(head) < 3:
        raise InputError(f"{p}: line 1: expected the header 'n_cameras n_points "
                         "n_observations'")
    try:
        nc, npt, nobs = (int(t) for t in head)
    except ValueError:
        raise InputError(f"{p}: line 1: header must be three integers, got "
                         f"{' '.join(head)!r}") from None
    if nc <= 0 or npt <= 0 or nobs <= 0:
        raise InputError(f"{p}: line 1: header counts must be positive, got {nc} {npt} {nobs}")
    expected = 3 + 4 * nobs + 9 * nc + 3 * npt
    truncated = (f"{p}: truncated: expected {expected} numbers for {nc} cameras, {npt} points "
                 f"and {nobs} observations, found {{}} (file ends at line {_n_lines(text)})")
    if expected > len(text) // 2 + 2:  # more numbers than the file has room for
        raise InputError(truncated.format(3 + sum(1 for _ in tokens)))
    values = np.empty(expected - 3)
    k = 0
    for line, t in tokens:
        if k == len(values):
            raise InputError(f"{p}: line {line}: unexpected extra data after {expected} "
                             "numbers")
        try:
            values[k] = float(t)
        except ValueError:
            raise InputError(f"{p}: line {line}: {t!r} is not a number") from None
        k += 1
    if k < len(values):
        raise InputError(truncated.format(k + 3))
    return values


def _check_plain_numbers(p: Path, text: str) -> None:
    """Refuse what Python's ``int()``/``float()`` would quietly read as another number:
    ``1_0`` (ten) and non-ASCII digits (``\u0661`` is one)."""
    if "_" in text or not text.isascii():
        line, t = next((i, t) for i, t in _tokens(text) if "_" in t or not t.isascii())
        raise InputError(f"{p}: line {line}: {t[:30]!r} is not a plain decimal number")


def _fast_parse(text: str, head: list[str]) -> np.ndarray | None:
    """All numbers after the header in one C-level pass, or None when anything is off (the
    slow path then finds and names the problem)."""
    try:
        nc, npt, nobs = (int(t) for t in head)
    except ValueError:
        return None
    if min(nc, npt, nobs) <= 0:
        return None
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        try:
            values = np.fromstring(text, dtype=np.float64, sep=" ")
        except (DeprecationWarning, ValueError):
            return None
    if len(values) != 3 + 4 * nobs + 9 * nc + 3 * npt:
        return None
    return values[3:]


def _build(p: Path, text: str, head: list[str], values: np.ndarray) -> BALProblem:
    """Check the parsed numbers (finite, integer in-range indices) and split them up."""
    nc, npt, nobs = (int(t) for t in head)
    bad = np.flatnonzero(~np.isfinite(values))
    if bad.size:
        k = int(bad[0]) + 3
        line, t = next(itertools.islice(_tokens(text), k, None))
        raise InputError(f"{p}: line {line}: NaN or inf value ({t})")
    obs = values[:4 * nobs].reshape(nobs, 4)
    idx = obs[:, :2]
    if np.any(idx != np.round(idx)):
        o = int(np.flatnonzero(np.any(idx != np.round(idx), axis=1))[0])
        raise InputError(f"{p}: line {_line_of_token(text, 3 + 4 * o)}: camera and point "
                         "indices must be integers")
    for name, arr, n in (("camera", idx[:, 0], nc), ("point", idx[:, 1], npt)):
        badi = np.flatnonzero((arr < 0) | (arr >= n))  # in float: 1e300 never reaches int
        if badi.size:
            o = int(badi[0])
            raise InputError(f"{p}: line {_line_of_token(text, 3 + 4 * o)}: observation "
                             f"{o} references {name} {arr[o]:.15g} but the file has {n} "
                             f"{name}s")
    ci = idx[:, 0].astype(np.int64)
    pi = idx[:, 1].astype(np.int64)
    rest = values[4 * nobs:]
    cams = rest[:9 * nc].reshape(nc, 9)
    pts = rest[9 * nc:].reshape(npt, 3)
    return BALProblem(cams, pts, ci, pi, obs[:, 2:].copy())


def write_bal(path: str | os.PathLike, problem: BALProblem) -> None:
    """Write ``problem`` in BAL format atomically, one number per line for the parameters.

    Floats are written as their shortest round-trip decimal (``repr``), so reading the file
    back gives the same doubles bit for bit.
    """
    obs = np.asarray(problem.observations, dtype=float)
    with atomic_open(Path(path), "w") as fh:
        fh.write(f"{len(problem.cameras)} {len(problem.points)} {len(obs)}\n")
        fh.write("\n".join(f"{c} {q} {x!r} {y!r}" for c, q, x, y in zip(
            np.asarray(problem.camera_index).tolist(), np.asarray(problem.point_index).tolist(),
            obs[:, 0].tolist(), obs[:, 1].tolist(), strict=True)))
        fh.write("\n")
        for a in (problem.cameras, problem.points):
            fh.write("\n".join(map(repr, np.asarray(a, dtype=float).ravel().tolist())))
            fh.write("\n")

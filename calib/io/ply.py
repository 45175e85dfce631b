"""PLY point clouds read by their header: vertex x, y, z wherever and however they are stored.

Binary vertices are read with a numpy structured dtype built from the header (any property
order, float or double or integer coordinates, either endian, extra properties, elements
before or after the vertices such as the faces of a mesh); ASCII vertices with
``numpy.loadtxt`` on the x, y, z columns. What cannot be read exactly is refused with one
line naming the file.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..errors import InputError
from .text_table import check_line_end, read_columns

#: Longest header read (bytes): long comment blocks are fine, an endless header is not.
MAX_HEADER_BYTES = 16 * 1024**2

_TYPES = {"char": "i1", "uchar": "u1", "int8": "i1", "uint8": "u1", "short": "i2",
          "ushort": "u2", "int16": "i2", "uint16": "u2", "int": "i4", "uint": "u4",
          "int32": "i4", "uint32": "u4", "float": "f4", "float32": "f4", "double": "f8",
          "float64": "f8"}


@dataclass
class Element:
    """One ``element`` block: its name, item count and properties ``(name, code)``, where
    code is a numpy type code (``f4``) or ``("list", count_code, item_code)``."""

    name: str
    count: int
    props: list

    @property
    def has_list(self) -> bool:
        return any(isinstance(c, tuple) for _, c in self.props)


def read_header(p: Path) -> tuple[str, list[Element], int]:
    """``(format, elements, body offset)`` of a PLY file; the header ends at the first line
    that is exactly ``end_header`` (a comment mentioning it does not end it)."""
    fmt, elements, used = None, [], 0
    with p.open("rb") as fh:
        for number, raw in enumerate(iter(fh.readline, b""), 1):
            used += len(raw)
            if used > MAX_HEADER_BYTES:
                break
            words = raw.decode("latin-1").split()
            if number == 1 or not words or words[0] in ("comment", "obj_info"):
                continue
            if words == ["end_header"]:
                return _checked(p, fmt, elements), elements, used
            if words[0] == "format" and len(words) >= 2:
                fmt = words[1]
            elif words[0] == "element" and len(words) == 3:
                elements.append(Element(words[1], _count(p, words[2]), []))
            elif words[0] == "property" and elements:
                elements[-1].props.append(_property(p, number, words))
            else:
                raise InputError(f"{p}: PLY header line {number} is malformed: "
                                 f"{' '.join(words)[:60]!r}")
    raise InputError(f"{p}: PLY header has no end_header line (within "
                     f"{MAX_HEADER_BYTES >> 20} MB)")


def _count(p: Path, word: str) -> int:
    try:
        n = int(word)
    except ValueError:
        raise InputError(f"{p}: PLY element count {word!r} is not an integer") from None
    if n < 0:
        raise InputError(f"{p}: PLY element count {n} is negative")
    return n


def _property(p: Path, number: int, words: list[str]):
    if len(words) == 5 and words[1] == "list":
        codes = [_TYPES.get(w) for w in words[2:4]]
        if None in codes or codes[0][0] == "f":
            raise InputError(f"{p}: PLY header line {number}: bad list types {words[2:4]}")
        return words[4], ("list", *codes)
    if len(words) != 3 or words[1] not in _TYPES:
        raise InputError(f"{p}: PLY header line {number}: unknown property "
                         f"{' '.join(words[1:])[:60]!r}")
    return words[2], _TYPES[words[1]]


def _checked(p: Path, fmt: str | None, elements: list[Element]) -> str:
    if fmt not in ("ascii", "binary_little_endian", "binary_big_endian"):
        raise InputError(f"{p}: PLY format line missing or unknown ({fmt})")
    vertex = [e for e in elements if e.name == "vertex"]
    if len(vertex) != 1:
        raise InputError(f"{p}: PLY file has {len(vertex)} vertex elements (expected one)")
    names = [n for n, _ in vertex[0].props]
    if len(set(names)) != len(names):
        raise InputError(f"{p}: PLY vertex properties repeat a name ({' '.join(names)})")
    for c in "xyz":
        if c not in names:
            raise InputError(f"{p}: PLY vertices have no {c} property")
        if isinstance(vertex[0].props[names.index(c)][1], tuple):
            raise InputError(f"{p}: PLY vertex property {c} is a list")
    return fmt


def read_ply(p: Path) -> np.ndarray:
    """Vertex positions ``(N, 3)`` float64 of a PLY file."""
    fmt, elements, body = read_header(p)
    vi = next(i for i, e in enumerate(elements) if e.name == "vertex")
    vertex = elements[vi]
    if vertex.count == 0:
        raise InputError(f"{p}: the header declares 0 vertices")
    if fmt == "ascii":
        return _read_ascii(p, elements, vi, body)
    endian = "<" if fmt == "binary_little_endian" else ">"
    if any(e.has_list for e in elements[:vi + 1]):
        what = "the vertex element" if vertex.has_list else "an element before the vertices"
        raise InputError(f"{p}: binary PLY with a list property in {what} is not supported")
    dtypes = [None if e.has_list else
              np.dtype([(f"p{k}", endian + c) for k, (_, c) in enumerate(e.props)])
              for e in elements]
    start = body + sum(e.count * dt.itemsize for e, dt in zip(elements[:vi], dtypes[:vi],
                                                               strict=True))
    _check_size(p, elements, dtypes, body)
    with p.open("rb") as fh:
        fh.seek(start)
        rows = np.fromfile(fh, dtype=dtypes[vi], count=vertex.count)
    names = [n for n, _ in vertex.props]
    return np.column_stack([rows[f"p{names.index(c)}"].astype(np.float64) for c in "xyz"])


def _check_size(p: Path, elements: list[Element], dtypes: list, body: int) -> None:
    """Refuse binary data shorter than the header promises (or, when every element has a
    fixed size, of another length than it promises)."""
    need = 0
    for e, dt in zip(elements, dtypes, strict=True):
        fixed = sum(np.dtype(c).itemsize for _, c in e.props if not isinstance(c, tuple))
        lists = sum(np.dtype(c[1]).itemsize for _, c in e.props if isinstance(c, tuple))
        need += e.count * (dt.itemsize if dt is not None else fixed + lists)
    have = p.stat().st_size - body
    if have < need:
        raise InputError(f"{p}: truncated binary file: the header promises at least {need} "
                         f"bytes of data, the file has {have}")
    exact = not any(e.has_list for e in elements)
    if exact and have > need + 1:  # (a single trailing newline is tolerated)
        raise InputError(f"{p}: the binary data is {have} bytes but the header describes "
                         f"{need}: the header does not match the data")


def _read_ascii(p: Path, elements: list[Element], vi: int, body: int) -> np.ndarray:
    vertex = elements[vi]
    names = [n for n, _ in vertex.props]
    cols = [names.index(c) for c in "xyz"]
    first_list = next((k for k, (_, c) in enumerate(vertex.props) if isinstance(c, tuple)),
                      len(names))
    check_line_end(p)
    skip = sum(e.count for e in elements[:vi])
    if max(cols) > first_list:  # columns move from row to row: walk each row
        return _read_ascii_rows(p, vertex, body, skip)
    return read_columns(p, body, cols, vertex.count, skip_rows=skip)


def _read_ascii_rows(p: Path, vertex: Element, body: int, skip: int) -> np.ndarray:
    """x, y, z of ASCII vertex rows whose lists come before them, row by row."""
    n = vertex.count
    if n * 4 > p.stat().st_size - body:  # every row has at least "a b c" and a line end
        raise InputError(f"{p}: truncated: the header promises {n} vertices")
    out = np.empty((n, 3))
    want = {c: "xyz".index(c) for c in "xyz"}
    with p.open("rb") as fh:
        fh.seek(body)
        rows = (ln.split() for ln in fh if ln.strip())
        for _ in range(skip):
            next(rows, None)
        for k in range(n):
            words = next(rows, None)
            if words is None:
                raise InputError(f"{p}: truncated: the header promises {n} vertices, the "
                                 f"file has {k}")
            out[k] = _walk(p, k, words, vertex.props, want)
    return out


def _walk(p: Path, k: int, words: list[bytes], props: list, want: dict) -> list[float]:
    """x, y, z of one row: each list property is its length followed by that many items."""
    xyz, pos = [0.0, 0.0, 0.0], 0
    try:
        for name, code in props:
            if isinstance(code, tuple):
                pos += 1 + int(words[pos])
            else:
                if name in want:
                    xyz[want[name]] = float(words[pos].decode("ascii"))
                pos += 1
    except (ValueError, IndexError, UnicodeDecodeError) as exc:
        raise InputError(f"{p}: vertex row {k + 1} does not match the header ({exc})") from None
    if pos != len(words) or b"_" in b"".join(words):
        raise InputError(f"{p}: vertex row {k + 1} has {len(words)} values, the header "
                         f"describes {pos}, or a value that is not a plain number")
    return xyz

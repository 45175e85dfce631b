"""PCD point clouds (ascii, binary, binary_compressed) read by their header.

Binary points are read with a numpy structured dtype (x, y, z of 4 or 8 bytes in any field
order); ``binary_compressed`` data (LZF, fields stored one after another) is checked
against the header (both sizes in the data block, before anything is decoded) and decoded
here within those bounds.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..errors import InputError
from .text_table import check_line_end, read_columns

#: Longest header read (bytes).
MAX_HEADER_BYTES = 1024**2

_VALID = {"F": (4, 8), "I": (1, 2, 4, 8), "U": (1, 2, 4, 8)}


@dataclass
class Header:
    """FIELDS with their numpy codes and COUNTs, POINTS, DATA kind and body offset."""

    names: list
    codes: list
    counts: list
    points: int
    data: str
    body: int

    def dtype(self) -> np.dtype:
        return np.dtype([(f"f{k}", "<" + c, (n,)) for k, (c, n) in
                         enumerate(zip(self.codes, self.counts, strict=True))])


def read_header(p: Path) -> Header:
    """The parsed header; :class:`InputError` on anything inconsistent."""
    fields: dict[str, list[str]] = {}
    used = 0
    with p.open("rb") as fh:
        for raw in iter(fh.readline, b""):
            used += len(raw)
            if used > MAX_HEADER_BYTES:
                break
            words = raw.decode("latin-1").split()
            if not words or words[0].startswith("#"):
                continue
            fields[words[0]] = words[1:]
            if words[0] == "DATA":
                return _parse(p, fields, used)
    raise InputError(f"{p}: PCD header has no DATA line (no point data)")


def _ints(p: Path, key: str, words: list[str]) -> list[int]:
    try:
        return [int(w) for w in words]
    except ValueError:
        raise InputError(f"{p}: PCD {key} must be integers, got {' '.join(words)[:60]!r}"
                         ) from None


def _parse(p: Path, f: dict[str, list[str]], body: int) -> Header:
    for key in ("FIELDS", "SIZE"):
        if key not in f:
            raise InputError(f"{p}: PCD header has no {key} line")
    names = f["FIELDS"]
    counts = _ints(p, "COUNT", f.get("COUNT", ["1"] * len(names)))
    sizes = _ints(p, "SIZE", f["SIZE"])
    types = f.get("TYPE", ["F"] * len(names))
    if not (len(counts) == len(names) == len(sizes) == len(types)):
        raise InputError(f"{p}: PCD header FIELDS/SIZE/TYPE/COUNT lengths differ")
    if not {"x", "y", "z"} <= set(names) or len(set(names)) != len(names):
        raise InputError(f"{p}: PCD fields must name x, y, z once each ({' '.join(names)})")
    for n_, t_, s_, c_ in zip(names, types, sizes, counts, strict=True):
        if t_ not in _VALID or s_ not in _VALID[t_] or c_ < 1:
            raise InputError(f"{p}: PCD field {n_!r} has an invalid TYPE/SIZE/COUNT "
                             f"({t_} {s_} {c_})")
    if any(types[names.index(c)] != "F" for c in "xyz"):
        raise InputError(f"{p}: PCD x, y, z must be floating point (TYPE F)")
    npts = _points(p, f)
    data = f["DATA"][0] if f["DATA"] else ""
    if data not in ("ascii", "binary", "binary_compressed"):
        raise InputError(f"{p}: unknown PCD DATA type {data!r}")
    codes = [{"F": "f", "I": "i", "U": "u"}[t] + str(s) for t, s in zip(types, sizes,
                                                                          strict=True)]
    return Header(names, codes, counts, npts, data, body)


def _points(p: Path, f: dict[str, list[str]]) -> int:
    """POINTS, which must agree with WIDTH x HEIGHT when those are given."""
    wh = _ints(p, "WIDTH/HEIGHT", f.get("WIDTH", []) + f.get("HEIGHT", []))
    npts = _ints(p, "POINTS", f["POINTS"][:1])[0] if f.get("POINTS") else None
    if npts is None and len(wh) == 2:
        npts = wh[0] * wh[1]
    if npts is None:
        raise InputError(f"{p}: PCD header has no POINTS line")
    if len(wh) == 2 and wh[0] * wh[1] != npts:
        raise InputError(f"{p}: PCD header disagrees with itself: WIDTH x HEIGHT = "
                         f"{wh[0]} x {wh[1]} but POINTS = {npts}")
    if npts <= 0:
        raise InputError(f"{p}: the header declares {npts} points")
    return npts


def read_pcd(p: Path) -> np.ndarray:
    """Points ``(N, 3)`` float64 of a PCD file."""
    h = read_header(p)
    cols = [int(np.sum(h.counts[:h.names.index(c)])) for c in "xyz"]
    if h.data == "ascii":
        check_line_end(p)
        return read_columns(p, h.body, cols, h.points)
    dt = h.dtype()
    have = p.stat().st_size - h.body
    if h.data == "binary":
        need = h.points * dt.itemsize
        if have < need:
            raise InputError(f"{p}: truncated binary file: the header promises {need} bytes "
                             f"of data ({h.points} points), the file has {have}")
        if have > need + 1:  # (a single trailing newline is tolerated)
            raise InputError(f"{p}: the binary data is {have} bytes but the header describes "
                             f"{need}: the header does not match the data")
        with p.open("rb") as fh:
            fh.seek(h.body)
            rows = np.fromfile(fh, dtype=dt, count=h.points)
        return np.column_stack([rows[f"f{h.names.index(c)}"][:, 0] for c in "xyz"]
                               ).astype(np.float64)
    return _read_compressed(p, h, dt, have)


def _read_compressed(p: Path, h: Header, dt: np.dtype, have: int) -> np.ndarray:
    """x, y, z of LZF-compressed, field-after-field (structure of arrays) data."""
    with p.open("rb") as fh:
        fh.seek(h.body)
        sizes = fh.read(8)
        if len(sizes) < 8:
            raise InputError(f"{p}: truncated binary_compressed PCD (no size block)")
        packed, unpacked = struct.unpack("<II", sizes)
        need = h.points * dt.itemsize
        if unpacked != need:
            raise InputError(f"{p}: binary_compressed PCD holds {unpacked} bytes of points but "
                             f"the header describes {need} ({h.points} points of "
                             f"{dt.itemsize} bytes): the header does not match the data")
        if packed > have - 8:
            raise InputError(f"{p}: truncated binary_compressed PCD: {packed} compressed bytes "
                             f"announced, {have - 8} present")
        if have - 8 > packed + 1:
            raise InputError(f"{p}: binary_compressed PCD has {have - 8 - packed} bytes after "
                             "its compressed block: the header does not match the data")
        data = lzf_decompress(fh.read(packed), unpacked, p)
    out = np.empty((h.points, 3))
    offsets = np.r_[0, np.cumsum([h.points * n * int(c[1:]) for c, n in
                                  zip(h.codes, h.counts, strict=True)])]
    for j, c in enumerate("xyz"):
        k = h.names.index(c)
        field = np.frombuffer(data, dtype="<" + h.codes[k], count=h.points * h.counts[k],
                              offset=int(offsets[k]))
        out[:, j] = field[::h.counts[k]]
    return out


def lzf_decompress(src: bytes, size: int, p: Path) -> bytes:
    """Decode an LZF block into exactly ``size`` bytes; a block that would write past
    ``size``, refer before its start or end early is refused (never read out of bounds)."""
    out = bytearray(size)
    i = o = 0
    n = len(src)
    try:
        while i < n:
            ctrl = src[i]
            i += 1
            if ctrl < 32:  # literal run of ctrl + 1 bytes
                length = ctrl + 1
                if i + length > n or o + length > size:
                    raise ValueError("literal run past the end")
                out[o:o + length] = src[i:i + length]
                i += length
            else:  # back reference
                length = ctrl >> 5
                if length == 7:
                    length += src[i]
                    i += 1
                length += 2
                ref = o - ((ctrl & 0x1F) << 8) - src[i] - 1
                i += 1
                if ref < 0 or o + length > size:
                    raise ValueError("back reference out of range")
                period = o - ref
                chunk = bytes(out[ref:o]) * (length // period + 1) if period < length \
                    else out[ref:ref + length]
                out[o:o + length] = chunk[:length]
            o += length
    except (ValueError, IndexError) as exc:
        raise InputError(f"{p}: corrupt binary_compressed PCD data ({exc})") from None
    if o != size:
        raise InputError(f"{p}: corrupt binary_compressed PCD data ({o} of {size} bytes "
                         "decoded)")
    return bytes(out)

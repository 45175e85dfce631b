"""Images read as 8-bit grayscale, with the pixel count checked from the header first.

OpenCV allocates whatever a header announces (a 388 kB PNG of 20000 x 20000 pixels takes
2.4 GB), so the width and height are read here from the PNG, JPEG, BMP or TIFF header (or
by Pillow's lazy opener for other formats) and refused above ``max_pixels`` before any
decoding.
"""

from __future__ import annotations

import os
import struct
from pathlib import Path
from typing import BinaryIO

import numpy as np

from ..errors import InputError
from .validate import check_file

#: Largest image decoded (pixels): 100 Mpx, 100 MB as 8-bit gray.
MAX_PIXELS = 100_000_000
#: Largest image file read (bytes).
MAX_IMAGE_BYTES = 1024**3
_SOF = {0xC0, 0xC1, 0xC2, 0xC3, 0xC5, 0xC6, 0xC7, 0xC9, 0xCA, 0xCB, 0xCD, 0xCE, 0xCF}


def read_gray(path: str | os.PathLike, max_pixels: int = MAX_PIXELS) -> np.ndarray:
    """8-bit grayscale image ``(H, W)``; :class:`InputError` naming the file if it cannot be
    read or its header announces more than ``max_pixels`` pixels."""
    import cv2

    p = check_file(path, "image file", MAX_IMAGE_BYTES)
    w, h = image_size(p)
    if w * h > max_pixels:
        raise InputError(f"{p}: the image is {w} x {h} = {w * h / 1e6:.0f} Mpx, over the "
                         f"{max_pixels / 1e6:g} Mpx limit (max_pixels)")
    img = cv2.imdecode(np.fromfile(str(p), dtype=np.uint8), cv2.IMREAD_GRAYSCALE)
    if img is None:
        raise InputError(f"{p}: not a readable image (PNG, JPG, BMP or TIFF expected)")
    return img


def image_size(p: Path) -> tuple[int, int]:
    """``(width, height)`` in pixels from the file's header, without decoding."""
    with p.open("rb") as fh:
        head = fh.read(32)
        try:
            if head.startswith(b"\x89PNG\r\n\x1a\n") and head[12:16] == b"IHDR":
                size = struct.unpack(">II", head[16:24])
            elif head.startswith(b"\xff\xd8"):
                size = _jpeg_size(fh)
            elif head.startswith(b"BM") and len(head) >= 26:
                size = _bmp_size(head)
            elif head[:4] in (b"II*\x00", b"MM\x00*"):
                size = _tiff_size(fh, "<" if head[:2] == b"II" else ">")
            else:
                size = _pillow_size(p)
        except (struct.error, OSError, ValueError) as exc:
            raise InputError(f"{p}: not a readable image (bad header: {exc})") from None
    if size is None or min(size) <= 0:
        raise InputError(f"{p}: not a readable image (PNG, JPG, BMP or TIFF expected)")
    return int(size[0]), int(size[1])


def _jpeg_size(fh: BinaryIO) -> tuple[int, int] | None:
    """Width and height of the first frame header (SOFn), walking the marker segments."""
    fh.seek(2)
    while True:
        b = fh.read(1)
        while b == b"\xff":  # fill bytes before a marker
            b = fh.read(1)
        if not b:
            return None
        marker = b[0]
        if marker in (0xD8, 0x01) or 0xD0 <= marker <= 0xD7:
            continue  # markers without a length
        if marker in (0xD9, 0xDA):  # end of image or start of scan before any frame header
            return None
        (length,) = struct.unpack(">H", fh.read(2))
        if length < 2:  # (a length below its own 2 bytes would loop forever)
            raise ValueError(f"JPEG segment length {length}")
        if marker in _SOF:
            h, w = struct.unpack(">xHH", fh.read(5))
            return w, h
        fh.seek(length - 2, os.SEEK_CUR)


def _bmp_size(head: bytes) -> tuple[int, int]:
    (dib,) = struct.unpack("<I", head[14:18])
    if dib == 12:  # OS/2 core header: 16-bit sizes
        return struct.unpack("<HH", head[18:22])
    w, h = struct.unpack("<ii", head[18:26])
    return w, abs(h)


def _tiff_size(fh: BinaryIO, e: str) -> tuple[int, int] | None:
    """ImageWidth (256) and ImageLength (257) of the first IFD."""
    fh.seek(4)
    (offset,) = struct.unpack(e + "I", fh.read(4))
    fh.seek(offset)
    (n,) = struct.unpack(e + "H", fh.read(2))
    found = {}
    for _ in range(min(n, 4096)):
        tag, kind, _count, value = struct.unpack(e + "HHI4s", fh.read(12))
        if tag in (256, 257):
            found[tag] = struct.unpack(e + ("H" if kind == 3 else "I"),
                                       value[:2] if kind == 3 else value)[0]
    return (found[256], found[257]) if len(found) == 2 else None


def _pillow_size(p: Path) -> tuple[int, int] | None:
    """Other formats OpenCV reads (PNM, WebP, ...): Pillow's opener reads only the header."""
    import warnings

    from PIL import Image, UnidentifiedImageError

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            with Image.open(p) as im:
                return im.size
    except Image.DecompressionBombError as exc:  # Pillow's own, larger limit
        raise InputError(f"{p}: {exc}") from None
    except UnidentifiedImageError:
        return None

"""Board observations of a rig, per camera and frame, flattened into residual rows.

A *frame* is one capture instant: the cameras that see the board in it share one board
pose. Frames pair across cameras by the last number in the image file name
(``left07.jpg`` and ``right07.jpg`` are frame 7). Row ``n`` is the board point
``ids[n]`` seen at pixel ``uv[n]`` by camera ``cam[n]`` in frame ``frame[n]``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from ..errors import InputError
from ..io.frames import frame_key
from ..io.validate import as_array
from ..targets.base import Observation


@dataclass(frozen=True, eq=False)
class RigObservations:
    """Every usable board view of every camera, as flat rows (see module docstring).

    Attributes:
        cameras: camera names; camera 0 is the reference.
        image_sizes: ``(width, height)`` per camera.
        frames: ``(F,)`` frame numbers, sorted; ``frame`` rows index into it.
        cam, frame, ids: ``(R,)`` ints per row; uv: ``(R, 2)`` pixels.
        view_names: ``{(camera index, frame index): image name}``.
        skipped: ``(camera, image, reason)`` of the views left out.
    """

    cameras: tuple[str, ...]
    image_sizes: tuple[tuple[int, int], ...]
    frames: np.ndarray
    cam: np.ndarray
    frame: np.ndarray
    ids: np.ndarray
    uv: np.ndarray
    view_names: Mapping
    skipped: tuple[tuple[str, str, str], ...] = ()

    def __post_init__(self) -> None:
        for name in ("frames", "cam", "frame", "ids", "uv"):
            a = np.array(getattr(self, name))
            a.setflags(write=False)
            object.__setattr__(self, name, a)

    @property
    def n_cameras(self) -> int:
        return len(self.cameras)

    def views(self, c: int) -> np.ndarray:
        """Frame indices ``(V_c,)`` camera ``c`` sees, sorted."""
        return np.unique(self.frame[self.cam == c])

    def covisibility(self) -> np.ndarray:
        """``(C, C)`` number of frames each pair of cameras sees together."""
        seen = np.zeros((self.n_cameras, len(self.frames)), bool)
        seen[self.cam, self.frame] = True
        s = seen.astype(np.int64)
        return s @ s.T

    def unpaired(self) -> list[tuple[str, str]]:
        """``(camera, image)`` of views no other camera shares (used for that camera's
        intrinsics only); none in a rig of one."""
        if self.n_cameras == 1:
            return []
        seen = np.zeros((self.n_cameras, len(self.frames)), bool)
        seen[self.cam, self.frame] = True
        lone = seen.sum(axis=0) == 1
        return [(self.cameras[c], self.view_names[(c, f)]) for (c, f) in self.view_names
                if lone[f]]


def _one_camera(name: str, views, n_points: int, size) -> tuple[list, tuple, list]:
    """``([(frame key, image name, ids, uv)], image size, skipped)`` of one camera's views:
    a sequence of :class:`Observation`, or a mapping ``frame -> uv (K, 2)`` (every board
    point in order) or ``frame -> (ids, uv)``."""
    out, skipped, sizes = [], [], set()
    if isinstance(views, Mapping):
        items = [(int(k), f"{name}:{k}", v) for k, v in views.items()]
    else:
        items = []
        for o in views:
            if not isinstance(o, Observation):
                raise InputError(f"camera {name!r}: expected Observations or a mapping "
                                 f"frame -> corners, got {type(o).__name__}")
            if not o.ok:
                skipped.append((name, o.view, o.reason or "no board points"))
                continue
            sizes.add(tuple(int(v) for v in o.image_size))
            items.append((frame_key(o.view), o.view, (o.ids, o.uv)))
    seen: dict[int, str] = {}
    for key, label, v in items:
        if key in seen:
            raise InputError(f"camera {name!r}: {seen[key]} and {label} are both frame {key} "
                             "(frames pair by the last number in the file name)")
        seen[key] = label
        ids, uv = (v if isinstance(v, tuple) else (np.arange(n_points), v))
        ids = np.asarray(ids, np.int64).ravel()
        uv = as_array(label, uv, (len(ids), 2))
        if ids.size and (ids.min() < 0 or ids.max() >= n_points):
            raise InputError(f"{label}: point ids outside 0..{n_points - 1}")
        out.append((key, label, ids, uv))
    return out, _image_size(name, sizes, size), skipped


def _image_size(name: str, sizes: set, given) -> tuple[int, int]:
    if given is not None:
        w, h = (int(v) for v in as_array(f"image_sizes[{name!r}]", given, (2,)))
        sizes = sizes | {(w, h)}
    if len(sizes) > 1:
        raise InputError(f"camera {name!r}: its images differ in size "
                         f"({', '.join(f'{w}x{h}' for w, h in sorted(sizes))}); one camera "
                         "has one image size")
    if not sizes:
        raise InputError(f"camera {name!r}: image size unknown (give image_sizes)")
    w, h = sizes.pop()
    if w <= 0 or h <= 0:
        raise InputError(f"camera {name!r}: image size must be positive, got {(w, h)}")
    return w, h


def collect(cameras: Mapping[str, Sequence[Observation] | Mapping], n_points: int,
            image_sizes: Mapping[str, tuple[int, int]] | None = None) -> RigObservations:
    """:class:`RigObservations` from per-camera views (see :func:`_one_camera` for what a
    camera's views may be); the first camera is the reference."""
    if not cameras:
        raise InputError("cameras: no camera given")
    per_cam, sizes, skipped = [], [], []
    for name, views in cameras.items():
        v, size, sk = _one_camera(str(name), views, n_points, (image_sizes or {}).get(name))
        if not v:
            raise InputError(f"camera {name!r}: no usable board view")
        per_cam.append(v)
        sizes.append(size)
        skipped += sk
    frames = np.unique([k for v in per_cam for k, *_ in v])
    rows, names = [], {}
    for c, views in enumerate(per_cam):
        for key, label, ids, uv in views:
            f = int(np.searchsorted(frames, key))
            names[(c, f)] = label
            rows.append((np.full(len(ids), c), np.full(len(ids), f), ids, uv))
    cam, frame, ids, uv = (np.concatenate(x) for x in zip(*rows, strict=True))
    return RigObservations(tuple(str(n) for n in cameras), tuple(sizes), frames, cam, frame,
                           ids, uv.reshape(-1, 2), names, tuple(skipped))

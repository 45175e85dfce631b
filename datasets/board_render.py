"""Render synthetic chessboard images with a known camera (ground truth for tests/benches).

Each pixel is supersampled; every sample is undistorted through the camera's lens model
(pinhole: OpenCV's iterative undistortion, checked by re-projecting with calib's model; other
models: the model's ``unproject``, checked the same way), its ray intersected with the board
plane and shaded black or white, so the rendered corners sit exactly where the true camera
projects the board corners. ``model`` (``pinhole`` by default, or any name of
:func:`calib.camera.model_names`) selects the lens; fisheye and double-sphere lenses reach
beyond 160 deg (:data:`FISHEYE_CAMERA`, :data:`DS_CAMERA`).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import cv2
import numpy as np

from calib.camera import get_model
from calib.camera.pinhole import project
from calib.lie import se3, so3

#: A camera with realistic distortion for a 640x480 sensor (barrel, small tangential).
DEFAULT_CAMERA = np.array([520.0, 522.0, 318.5, 243.2, -0.28, 0.11, 0.0009, -0.0006, -0.02])
#: A Kannala-Brandt fisheye for 640x480 (fx fy cx cy k1..k4): 190 deg across the image
#: width, 130 deg across its height (the 158 deg ROS reference lens's distortion).
FISHEYE_CAMERA = np.array([223.0, 223.4, 321.3, 238.4, -0.03, -0.02, 0.002, 0.001])
#: A double-sphere lens for 640x480 (fx fy cx cy xi alpha): 195 deg across the width, 140
#: deg across the height (xi, alpha of the order Usenko et al. 2018 fit to 195 deg lenses).
DS_CAMERA = np.array([155.0, 155.4, 320.7, 241.1, -0.2, 0.59])


def _project(params: np.ndarray, p_cam: np.ndarray, model: str) -> tuple[np.ndarray,
                                                                          np.ndarray]:
    """``(uv (N, 2), valid (N,))`` through the named model."""
    if model == "pinhole":
        return project(p_cam, params), p_cam[:, 2] > 0
    return get_model(model).project(p_cam, params)


@dataclass(frozen=True)
class RenderedSet:
    images: list[np.ndarray]  # uint8 (H, W)
    corners: list[np.ndarray]  # (cols*rows, 2) true pixels per image
    poses: np.ndarray  # (V, 4, 4) T_cam_board
    params: np.ndarray  # (P,) true camera, in the model's parameter order
    image_size: tuple[int, int]
    object_points: np.ndarray  # (cols*rows, 3)
    model: str = "pinhole"


@lru_cache(maxsize=4)
def _rays(params: tuple, image_size: tuple[int, int], supersample: int, model: str = "pinhole"
          ) -> tuple[np.ndarray, np.ndarray]:
    """Undistorted rays ``(M, 3)`` of every supersample of the image and whether each is
    valid (its re-distortion lands back on the pixel): pose-independent, so cached."""
    p = np.array(params)
    w, h = image_size
    off = (np.arange(supersample) + 0.5) / supersample - 0.5
    u = (np.arange(w)[:, None] + off[None, :]).ravel()
    v = (np.arange(h)[:, None] + off[None, :]).ravel()
    uu, vv = np.meshgrid(u, v)
    if model != "pinhole":
        pix = np.stack([uu.ravel(), vv.ravel()], axis=1)
        rays, ok = get_model(model).unproject(pix, p)
        back, valid = _project(p, np.where(ok[:, None], rays, [0.0, 0.0, 1.0]), model)
        return rays, ok & valid & (np.linalg.norm(back - pix, axis=1) < 1e-3)
    fx, fy, cx, cy = p[:4]
    K = np.array([[fx, 0, cx], [0, fy, cy], [0, 0, 1.0]])
    pix = np.stack([uu.ravel(), vv.ravel()], axis=1).reshape(-1, 1, 2)
    crit = (cv2.TERM_CRITERIA_COUNT | cv2.TERM_CRITERIA_EPS, 30, 1e-10)
    xy = cv2.undistortPoints(pix, K, p[4:9], criteria=crit)[:, 0]
    # keep only samples whose re-distortion lands back on the pixel (invertible region)
    ok = np.linalg.norm(project(np.c_[xy, np.ones(len(xy))], p) - pix[:, 0], axis=1) < 1e-3
    return np.c_[xy, np.ones(len(xy))], ok


def _board_window(params: np.ndarray, T_cam_board: np.ndarray, box: tuple, model: str,
                  image_size: tuple[int, int]) -> tuple[int, int, int, int] | None:
    """Pixel window ``(u0, u1, v0, v1)`` (half-open) holding every pixel whose ray can hit
    the board-plane rectangle ``box = (x0, x1, y0, y1)`` (metres), or None (the whole
    image) when part of the rectangle does not project. The rectangle is sampled on a grid
    and the window padded by the largest step between neighbouring samples plus 2 px, so
    that pixels outside it are background (a render limited to it is the same image)."""
    x0, x1, y0, y1 = box
    gx, gy = np.meshgrid(np.linspace(x0, x1, 41), np.linspace(y0, y1, 41))
    pts = np.stack([gx.ravel(), gy.ravel(), np.zeros(gx.size)], axis=1)
    p_cam = se3.act(T_cam_board, pts)
    if np.any(p_cam[:, 2] <= 1e-6 * np.linalg.norm(p_cam, axis=1)):
        return None  # not wholly in front of the camera: no window
    uv, valid = _project(params, p_cam, model)
    if not np.all(valid & np.isfinite(uv).all(axis=1)):
        return None
    grid = uv.reshape(41, 41, 2)
    step = max(np.abs(np.diff(grid, axis=0)).max(), np.abs(np.diff(grid, axis=1)).max())
    lo = np.floor(uv.min(axis=0) - step - 2).astype(int)
    hi = np.ceil(uv.max(axis=0) + step + 3).astype(int)
    w, h = image_size
    u0, v0 = max(lo[0], 0), max(lo[1], 0)
    u1, v1 = min(hi[0], w), min(hi[1], h)
    return (u0, max(u1, u0), v0, max(v1, v0))


def render(params: np.ndarray, T_cam_board: np.ndarray, cols: int, rows: int, square: float,
           image_size: tuple[int, int], supersample: int = 3, noise: float = 2.0,
           rng: np.random.Generator | None = None, margin: float = 1.0,
           margin_value: float = 230.0, background: float = 120.0, outer: float = 1.0,
           model: str = "pinhole") -> np.ndarray:
    """One 8-bit grayscale image ``(H, W)`` of the board seen by the camera (lens
    ``model``).

    The board's outer squares are ``outer`` squares wide (< 1: truncated, as on many printed
    boards), surrounded by ``margin`` squares of grey level ``margin_value``, then
    ``background``. Only the pixels of the board's window (:func:`_board_window`) are
    traced; the rest are background.
    """
    w, h = image_size
    s = supersample
    d, ok = _rays(tuple(float(v) for v in params), (int(w), int(h)), int(s), model)
    lo_x, hi_x, lo_y, hi_y = -outer, cols - 1 + outer, -outer, rows - 1 + outer
    win = _board_window(params, T_cam_board, (square * (lo_x - margin),
                                              square * (hi_x + margin),
                                              square * (lo_y - margin),
                                              square * (hi_y + margin)), model, (w, h))
    u0, u1, v0, v1 = win if win is not None else (0, w, 0, h)
    d = d.reshape(h * s, w * s, 3)[v0 * s:v1 * s, u0 * s:u1 * s].reshape(-1, 3)
    ok = ok.reshape(h * s, w * s)[v0 * s:v1 * s, u0 * s:u1 * s].ravel()
    rot, t = T_cam_board[:3, :3], T_cam_board[:3, 3]
    n = rot[:, 2]
    denom = d @ n
    lam = (n @ t) / np.where(np.abs(denom) > 1e-12, denom, np.nan)
    # board coordinates of the hit point, rot^T (lam d - t), x and y only (one dot product
    # per axis: an (N, 3) @ (3, 3) product is several times slower under BLAS threads)
    bx = (lam * (d @ rot[:, 0]) - t @ rot[:, 0]) / square
    by = (lam * (d @ rot[:, 1]) - t @ rot[:, 1]) / square
    on_board = (bx > lo_x) & (bx < hi_x) & (by > lo_y) & (by < hi_y)
    in_margin = (bx > lo_x - margin) & (bx < hi_x + margin) & (by > lo_y - margin) & \
        (by < hi_y + margin)
    black = ((np.floor(bx) + np.floor(by)) % 2 == 0) & on_board
    val = np.where(black, 25.0, np.where(on_board, 230.0,
                                         np.where(in_margin, margin_value, background)))
    val[~ok | ~(lam > 0)] = background
    full = np.full((h * s, w * s), background)
    full[v0 * s:v1 * s, u0 * s:u1 * s] = val.reshape((v1 - v0) * s, (u1 - u0) * s)
    img = full.reshape(h, s, w, s).mean(axis=(1, 3))
    rng = rng or np.random.default_rng(0)
    img = img + rng.normal(0, noise, img.shape)
    return np.clip(np.round(img), 0, 255).astype(np.uint8)


def _wide_pose(rng: np.random.Generator, centre: np.ndarray, size: float, tilt: float,
               max_angle: float, depth: tuple[float, float] = (0.9, 2.0)) -> np.ndarray:
    """A board pose for a wide lens: the board centre at up to ``max_angle`` (rad) off the
    axis, facing the camera, tilted by ``tilt`` (std, rad)."""
    a = max_angle * np.sqrt(rng.uniform())  # uniform over the image disc, not the axis
    az = rng.uniform(0, 2 * np.pi)
    dirn = np.array([np.sin(a) * np.cos(az), np.sin(a) * np.sin(az), np.cos(a)])
    axis = np.cross([0.0, 0.0, 1.0], dirn)
    face = so3.exp(axis / max(np.linalg.norm(axis), 1e-12) * a)  # board z -> dirn
    rvec = rng.normal(0, tilt, 3)
    rvec[2] = rng.uniform(-0.4, 0.4)
    rot = face @ so3.exp(rvec)
    dist = rng.uniform(*depth) * size
    return se3.from_rt(rot, dirn * dist - rot @ centre)


def random_poses(n: int, cols: int, rows: int, square: float, params: np.ndarray,
                 image_size: tuple[int, int], rng: np.random.Generator,
                 max_tries: int = 5000, tilt: float = 0.35, model: str = "pinhole",
                 max_angle_deg: float = 75.0, depth: tuple[float, float] = (0.9, 2.0)
                 ) -> np.ndarray:
    """``n`` board poses (tilt: std of the out-of-plane rotation, rad), whole board inside
    the image. Fisheye and double-sphere lenses: the board centre anywhere up to
    ``max_angle_deg`` off the axis, ``depth`` board sizes away (:func:`_wide_pose`)."""
    obj = np.stack(np.meshgrid(np.arange(-1, cols + 1), np.arange(-1, rows + 1)), -1
                   ).reshape(-1, 2) * square
    obj = np.c_[obj, np.zeros(len(obj))]
    centre = np.array([(cols - 1) / 2 * square, (rows - 1) / 2 * square, 0.0])
    w, h = image_size
    size = max(cols, rows) * square
    out = []
    wide = model in ("fisheye", "double-sphere")
    for _ in range(max_tries):
        if wide:
            T = _wide_pose(rng, centre, size, tilt, np.radians(max_angle_deg), depth)
            uv, valid = _project(params, se3.act(T, obj), model)
            if valid.all() and np.all((uv[:, 0] > 2) & (uv[:, 0] < w - 3) & (uv[:, 1] > 2)
                                      & (uv[:, 1] < h - 3)):
                out.append(T)
                if len(out) == n:
                    return np.stack(out)
            continue
        rvec = rng.normal(0, tilt, 3)
        rvec[2] = rng.uniform(-0.4, 0.4)
        rot = so3.exp(rvec)
        depth = rng.uniform(1.3, 2.6) * size * params[0] / w * 1.1
        target = np.array([rng.uniform(-0.35, 0.35) * w / params[0] * depth,
                           rng.uniform(-0.35, 0.35) * h / params[1] * depth, depth])
        t = target - rot @ centre
        T = se3.from_rt(rot, t)
        pc = se3.act(T, obj)
        if np.any(pc[:, 2] <= 0.1 * depth):
            continue
        uv = project(pc, params)
        if np.all((uv[:, 0] > 2) & (uv[:, 0] < w - 3) & (uv[:, 1] > 2) & (uv[:, 1] < h - 3)):
            out.append(T)
            if len(out) == n:
                return np.stack(out)
    raise RuntimeError("could not place the board in the image; check the camera")


def render_set(n_views: int = 12, cols: int = 9, rows: int = 6, square: float = 0.025,
               params: np.ndarray = DEFAULT_CAMERA, image_size: tuple[int, int] = (640, 480),
               seed: int = 0, supersample: int = 3, noise: float = 2.0,
               tilt: float = 0.35, model: str = "pinhole") -> RenderedSet:
    """A seeded set of rendered board views with their true corners (lens ``model``)."""
    rng = np.random.default_rng(seed)
    poses = random_poses(n_views, cols, rows, square, params, image_size, rng, tilt=tilt,
                         model=model)
    i = np.arange(cols * rows)
    obj = np.stack([(i % cols) * square, (i // cols) * square, np.zeros(cols * rows)], axis=1)
    images, corners = [], []
    for T in poses:
        images.append(render(params, T, cols, rows, square, image_size, supersample, noise, rng,
                             model=model))
        corners.append(_project(params, se3.act(T, obj), model)[0])
    return RenderedSet(images, corners, poses, np.asarray(params, float), image_size, obj,
                       model)


# --- textured boards: ChArUco, AprilGrid, circle grids (partial views, blur, noise) -------

@dataclass(frozen=True)
class Texture:
    """A board's printed face: ``image`` (uint8, rows along board y) covering board
    coordinates ``[x0, x0 + w / px_per_m) x [y0, y0 + h / px_per_m)`` (metres), white
    margin beyond it out to ``margin`` metres, then the background."""

    image: np.ndarray
    x0: float
    y0: float
    px_per_m: float
    margin: float = 0.0


def charuco_texture(target, px_per_square: int = 120) -> Texture:
    """The printed face of a :class:`calib.targets.charuco.Charuco` (OpenCV's own board
    image; board frame x right, y down on the print)."""
    w, h = target.squares_x * px_per_square, target.squares_y * px_per_square
    img = target.board().generateImage((w, h), marginSize=0, borderBits=1)
    return Texture(img, 0.0, 0.0, px_per_square / target.square, 0.5 * target.square)


def aprilgrid_texture(target, px_per_bit: int = 12) -> Texture:
    """The printed face of a :class:`calib.targets.aprilgrid.AprilGrid` as Kalibr prints it:
    tags with a 2-bit black border (tag ``t`` at column ``t % cols``, row ``t // cols``) and
    a black square of the gap's size in the gap at every tag corner, so each tag corner is
    an X-corner. Kalibr's board frame has y up on the print, so in board coordinates
    (rows = +y) each tag is OpenCV's marker image mirrored left-right; the camera must see
    the board from +z."""
    import cv2

    from calib.targets.aprilgrid import family_dictionary

    d = cv2.aruco.getPredefinedDictionary(getattr(cv2.aruco, family_dictionary(target.family)))
    side = (d.markerSize + 4) * px_per_bit
    scale = side / target.tag_size
    gap = int(round(target.tag_spacing * target.tag_size * scale))
    pitch = side + gap
    w, h = target.tag_cols * pitch + gap, target.tag_rows * pitch + gap
    img = np.full((h, w), 255, np.uint8)
    for c in range(target.tag_cols + 1):  # the corner squares
        for r in range(target.tag_rows + 1):
            img[r * pitch:r * pitch + gap, c * pitch:c * pitch + gap] = 0
    for t in range(target.num_tags):
        m = cv2.aruco.generateImageMarker(d, t, side, borderBits=2)
        x = gap + (t % target.tag_cols) * pitch
        y = gap + (t // target.tag_cols) * pitch
        img[y:y + side, x:x + side] = m[:, ::-1]
    return Texture(img, -gap / scale, -gap / scale, scale, gap / scale)


def circlegrid_texture(target, radius_ratio: float = 0.3, px_per_spacing: int = 100
                       ) -> Texture:
    """Dark dots of radius ``radius_ratio * spacing`` on white (anti-aliased)."""
    import cv2

    pts = target.points()[:, :2]
    r = radius_ratio * target.spacing
    scale = px_per_spacing / target.spacing
    pad = r + 0.5 * target.spacing
    x0, y0 = pts.min(0) - pad
    w, h = (np.ceil((pts.max(0) - pts.min(0) + 2 * pad) * scale)).astype(int)
    img = np.full((h, w), 255, np.uint8)
    sh = 4  # sub-pixel bits of cv2.circle
    for x, y in pts:
        cx, cy = ((x - x0) * scale - 0.5) * 2**sh, ((y - y0) * scale - 0.5) * 2**sh
        cv2.circle(img, (int(round(cx)), int(round(cy))), int(round(r * scale * 2**sh)), 0,
                   -1, cv2.LINE_AA, sh)
    return Texture(img, float(x0), float(y0), scale, 0.0)


def render_texture(params: np.ndarray, T_cam_board: np.ndarray, tex: Texture,
                   image_size: tuple[int, int], supersample: int = 3, noise: float = 2.0,
                   blur: float = 0.0, rng: np.random.Generator | None = None,
                   background: float = 120.0, dark: float = 25.0, light: float = 230.0,
                   model: str = "pinhole") -> np.ndarray:
    """One 8-bit image ``(H, W)`` of a textured board (black -> ``dark``, white ->
    ``light``), then a Gaussian blur of ``blur`` px (sigma) and noise. Every supersample's
    ray is intersected with the board plane and the texture sampled there (bilinear)."""
    import cv2

    w, h = image_size
    s = supersample
    d, ok = _rays(tuple(float(v) for v in params), (int(w), int(h)), int(s), model)
    rot, t = T_cam_board[:3, :3], T_cam_board[:3, 3]
    denom = d @ rot[:, 2]
    with np.errstate(divide="ignore", invalid="ignore"):
        lam = (rot[:, 2] @ t) / denom
    # board coordinates of the hit point: rot^T (lam d - t), x and y only
    bx = lam * (d @ rot[:, 0]) - t @ rot[:, 0]
    by = lam * (d @ rot[:, 1]) - t @ rot[:, 1]
    m = int(np.ceil(tex.margin * tex.px_per_m))
    padded = cv2.copyMakeBorder(tex.image, m, m, m, m, cv2.BORDER_CONSTANT, value=255)
    level = dark + (light - dark) * padded.astype(np.float32) / 255.0
    mx = ((bx - tex.x0) * tex.px_per_m + m - 0.5).astype(np.float32)
    my = ((by - tex.y0) * tex.px_per_m + m - 0.5).astype(np.float32)
    bad = ~ok | ~(lam > 0) | ~np.isfinite(mx) | ~np.isfinite(my)
    mx[bad], my[bad] = -1e6, -1e6
    val = cv2.remap(level, mx.reshape(h * s, w * s), my.reshape(h * s, w * s),
                    cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT, borderValue=background)
    img = val.reshape(h, s, w, s).mean(axis=(1, 3), dtype=np.float64)
    if blur > 0:
        img = cv2.GaussianBlur(img, (0, 0), blur)
    rng = rng or np.random.default_rng(0)
    img = img + rng.normal(0, noise, img.shape)
    return np.clip(np.round(img), 0, 255).astype(np.uint8)


def board_poses(n: int, points: np.ndarray, params: np.ndarray, image_size: tuple[int, int],
                rng: np.random.Generator, tilt: float = 0.35, min_inside: float = 1.0,
                from_front: bool = True, max_tries: int = 20000, model: str = "pinhole"
                ) -> np.ndarray:
    """``n`` poses ``T_cam_board`` of a board with ``points (P, 3)`` (its outline), with at
    least a fraction ``min_inside`` of the points inside the image (< 1: partial views,
    the board running off the image edges). ``from_front``: the camera looks along the
    board's +z (OpenCV boards); False: it sees the board from +z (Kalibr's AprilGrid)."""
    lo, hi = points.min(0), points.max(0)
    centre = 0.5 * (lo + hi)
    size = float(np.max(hi - lo))
    w, h = image_size
    flip = np.diag([1.0, -1.0, -1.0]) if not from_front else np.eye(3)
    spread = 0.35 if min_inside >= 1 else 0.35 + 0.5 * (1 - min_inside)
    out = []
    for _ in range(max_tries):
        rvec = rng.normal(0, tilt, 3)
        rvec[2] = rng.uniform(-0.4, 0.4)
        rot = so3.exp(rvec) @ flip
        scale = 1.0 if min_inside >= 1 else rng.uniform(0.5, 1.0)
        depth = rng.uniform(1.3, 2.6) * scale * size * params[0] / w * 1.1
        target = np.array([rng.uniform(-spread, spread) * w / params[0] * depth,
                           rng.uniform(-spread, spread) * h / params[1] * depth, depth])
        T = se3.from_rt(rot, target - rot @ centre)
        pc = se3.act(T, points)
        if np.any(pc[:, 2] <= 0.1 * depth):
            continue
        uv, valid = _project(params, pc, model)
        inside = valid & (uv[:, 0] > 2) & (uv[:, 0] < w - 3) & (uv[:, 1] > 2) & \
            (uv[:, 1] < h - 3)
        if inside.mean() >= min_inside and inside.sum() >= 8:
            out.append(T)
            if len(out) == n:
                return np.stack(out)
    raise RuntimeError("could not place the board in the image; check the camera")


@dataclass(frozen=True)
class TargetRenderedSet:
    images: list[np.ndarray]  # uint8 (H, W)
    ids: list[np.ndarray]  # (K_v,) ids of the points inside each image
    uv: list[np.ndarray]  # (K_v, 2) their true pixels
    uv_all: np.ndarray  # (V, P, 2) true pixels of every point (inside the image or not)
    poses: np.ndarray  # (V, 4, 4) T_cam_board
    params: np.ndarray
    image_size: tuple[int, int]


def render_target_set(target, n_views: int = 12, params: np.ndarray = DEFAULT_CAMERA,
                      image_size: tuple[int, int] = (640, 480), seed: int = 0,
                      min_inside: float = 1.0, tilt: float = 0.35, blur: float = 0.0,
                      noise: float = 2.0, supersample: int = 3, texture: Texture | None = None,
                      model: str = "pinhole") -> TargetRenderedSet:
    """Seeded views of a ChArUco board, AprilGrid or circle grid (``calib.targets``) with
    the true pixels of the points that fall inside each image (3 px margin), through any
    lens ``model`` with ``params`` (e.g. :data:`FISHEYE_CAMERA`)."""
    kind = target.name
    tex = texture or {"charuco": charuco_texture, "aprilgrid": aprilgrid_texture,
                      "circlegrid": circlegrid_texture}[kind](target)
    rng = np.random.default_rng(seed)
    th, tw = tex.image.shape
    outline = np.array([[tex.x0, tex.y0], [tex.x0 + tw / tex.px_per_m, tex.y0],
                        [tex.x0, tex.y0 + th / tex.px_per_m],
                        [tex.x0 + tw / tex.px_per_m, tex.y0 + th / tex.px_per_m]])
    gx, gy = np.meshgrid(np.linspace(0, 1, 7), np.linspace(0, 1, 7))
    grid = outline[0] + np.c_[gx.ravel(), gy.ravel()] * (outline[3] - outline[0])
    poses = board_poses(n_views, np.c_[grid, np.zeros(len(grid))], params, image_size, rng,
                        tilt, min_inside, from_front=kind != "aprilgrid", model=model)
    pts = target.points()
    w, h = image_size
    images, ids, uvs, uv_all = [], [], [], []
    for T in poses:
        images.append(render_texture(params, T, tex, image_size, supersample, noise, blur, rng,
                                     model=model))
        uv, valid = _project(params, se3.act(T, pts), model)
        ok = valid & (uv[:, 0] > 3) & (uv[:, 0] < w - 4) & (uv[:, 1] > 3) & (uv[:, 1] < h - 4)
        ids.append(np.flatnonzero(ok))
        uvs.append(uv[ok])
        uv_all.append(uv)
    return TargetRenderedSet(images, ids, uvs, np.stack(uv_all), poses,
                             np.asarray(params, float), image_size)

"""Calibrate a camera from the bundled chessboard photos, compare with OpenCV, write the
camera file, then see what calib says when the calibration cannot be trusted.

Run from anywhere: ``python examples/fit_intrinsics.py``.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

import cv2
import numpy as np

import calib
from calib.intrinsics import Chessboard, FitOptions, detect_images
from calib.io.camera_files import read_camera, write_camera
from calib_datasets import ROOT

IMAGES = sorted((ROOT / "chessboard_left").glob("left*.jpg"))  # 13 real 640x480 photos
board = Chessboard(9, 6, 0.025)  # inner corners (columns x rows), 25 mm squares

# 1. Detect the corners (in parallel; a failed image is listed with its reason, not fatal).
detections = detect_images(IMAGES, board, workers=2)
found = [d for d in detections if d.ok]
for d in detections:
    if not d.ok:
        print(f"skipped {Path(d.name).name}: {d.reason}")
image_size = found[0].image_size
object_points = board.object_points()  # (54, 3) metres, z = 0
image_points = [d.corners for d in found]  # each (54, 2) pixels

# 2. Fit: Zhang's closed form, then LM over the 9 intrinsics and one pose per view.
result = calib.fit_intrinsics(object_points, image_points, image_size,
                              view_names=[Path(d.name).name for d in found])
print(result.summary())

# 3. The same corners through OpenCV: same RMS definition (sqrt(sum |e|^2 / N_corners)).
rms_cv, K_cv, dist_cv, _, _ = cv2.calibrateCamera(
    [object_points.astype(np.float32)] * len(found),
    [c.astype(np.float32) for c in image_points], image_size, None, None)
print(f"\nOpenCV RMS {rms_cv:.5f} px, calib RMS {result.rms_px:.5f} px")
for i, name in enumerate(("fx", "fy", "cx", "cy")):
    ref = K_cv[[0, 1, 0, 1][i], [0, 1, 2, 2][i]]
    ours = result.camera.params[i]
    print(f"  {name}: calib {ours:9.3f}  OpenCV {ref:9.3f}  "
          f"difference {abs(ours - ref) / result.std[name]:.2f} std")

# 4. The camera drops into OpenCV unchanged, and into a file any ROS/OpenCV tool reads.
K, dist = result.camera.to_opencv()
pixels = image_points[0][:3]
ideal = result.camera.undistort_points(pixels)
ideal_cv = cv2.undistortPoints(pixels.reshape(-1, 1, 2), K, dist, P=K).reshape(-1, 2)
diff = np.abs(ideal - ideal_cv).max()
print(f"\nundistort_points vs cv2.undistortPoints: max diff {diff:.1e} px")
with tempfile.TemporaryDirectory() as tmp:
    path = Path(tmp) / "camera.yaml"
    write_camera(path, result.camera, fmt="opencv")  # atomic: temp file + fsync + rename
    fs = cv2.FileStorage(str(path), cv2.FILE_STORAGE_READ)
    print("cv2.FileStorage reads back fx =", fs.getNode("camera_matrix").mat()[0, 0])
    fs.release()
    assert np.allclose(read_camera(path).params, result.camera.params)

# 5. Honesty: three views seen from almost the same direction cannot fix the focal length.
#    calib refuses (DegenerateError) instead of returning a plausible-looking number.
try:
    calib.fit_intrinsics(object_points, [image_points[0]] * 3, image_size)
except calib.DegenerateError as exc:
    print(f"\nthree identical views -> DegenerateError: {exc}")

# 6. A bad corner (a detector mix-up) pulls a plain least-squares fit; the robust loss and
#    outlier rejection find it and say so.
bad = [c.copy() for c in image_points]
bad[4][10] += (25.0, -18.0)
plain = calib.fit_intrinsics(object_points, bad, image_size)
robust = calib.fit_intrinsics(object_points, bad, image_size,
                              FitOptions(loss="huber", loss_scale=1.0, reject_outliers=True))
print(f"\none corner off by 31 px: plain fit RMS {plain.rms_px:.3f} px, verdict "
      f"{plain.verdict}, fx off by {abs(plain.camera.params[0] - result.camera.params[0]):.2f}"
      f" px; robust fit rejected {robust.rejected_corners} corner(s), fx off by "
      f"{abs(robust.camera.params[0] - result.camera.params[0]):.2f} px")

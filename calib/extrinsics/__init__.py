"""Extrinsic calibration between sensors and robots: hand-eye and camera-LiDAR."""

from .camera_lidar import CameraLidarOptions, calibrate_camera_lidar
from .hand_eye import SETUPS, HandEyeOptions, calibrate_hand_eye
from .poses import poses_to_xyzq, read_pose_csv
from .result import CameraLidarResult, HandEyeResult

__all__ = ["SETUPS", "CameraLidarOptions", "CameraLidarResult", "HandEyeOptions", "HandEyeResult",
           "calibrate_camera_lidar", "calibrate_hand_eye", "poses_to_xyzq", "read_pose_csv"]

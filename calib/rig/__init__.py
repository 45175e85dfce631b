"""Camera rigs: 1..N cameras, their intrinsics and poses in one joint least-squares problem
(:func:`fit_rig`), on the board-camera core it shares with single-camera fit_intrinsics
(:mod:`calib.intrinsics.problem`); stereo rectification entries for two cameras."""

from .fit import fit_rig
from .initialize import robust_mean_pose
from .observations import RigObservations, collect, frame_key
from .options import RigOptions
from .result import CameraFit, RigResult
from .stereo import StereoReport

__all__ = ["CameraFit", "RigObservations", "RigOptions", "RigResult", "StereoReport",
           "collect", "fit_rig", "frame_key", "robust_mean_pose"]

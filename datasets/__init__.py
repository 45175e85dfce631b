"""Sample data shipped with calib and seeded synthetic generators with ground truth.

Installed as ``calib_datasets``; the library never imports it.
"""

from pathlib import Path

ROOT = Path(__file__).resolve().parent

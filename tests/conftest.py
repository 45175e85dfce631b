"""Shared fixtures: the ../shared datasets (required: CI runs with ../shared beside)."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))


def _shared() -> Path:
    env = os.environ.get("CALIB_SHARED")
    return Path(env) if env else ROOT.parent / "shared"


@pytest.fixture(scope="session")
def shared_datasets() -> Path:
    """``../shared/datasets``; a missing folder is an error, never a skip."""
    p = _shared() / "datasets"
    if not p.is_dir():
        raise RuntimeError(f"shared datasets not found at {p} (set CALIB_SHARED)")
    return p


@pytest.fixture(scope="session")
def bundled() -> Path:
    """The sample data shipped in the repository (datasets/)."""
    return ROOT / "datasets"

"""Shared fixtures: the ../shared data (skipped cleanly when absent) and small projects."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared"


@pytest.fixture(scope="session")
def shared_dir() -> Path:
    if not SHARED.is_dir():
        pytest.skip("../shared (datasets and peer files) is not present")
    return SHARED


@pytest.fixture(scope="session")
def openfield(shared_dir) -> Path:
    """The DeepLabCut openfield mouse set in COCO form: annotations.json + images/."""
    path = shared_dir / "datasets" / "dlc_openfield_mouse"
    if not (path / "annotations.json").is_file():
        pytest.skip("dlc_openfield_mouse dataset is not present")
    return path

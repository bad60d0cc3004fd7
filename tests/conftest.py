"""Shared fixtures: the real CT cases in ../shared/data/real (skipped when absent) and phantom data."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
os.environ.setdefault("DO_NOT_TRACK", "true")

REPO_ROOT = Path(__file__).resolve().parents[1]
REAL_DATA_DIR = Path(os.environ.get("LIVER_REAL_DATA", REPO_ROOT.parent / "shared" / "data" / "real"))


@pytest.fixture(scope="session")
def repo_root() -> Path:
    return REPO_ROOT


@pytest.fixture(scope="session")
def real_data_dir() -> Path:
    """The folder of real CT cases; the test is skipped where it is absent (e.g. on a user's machine)."""
    if not REAL_DATA_DIR.is_dir():
        pytest.skip(f"real CT cases not found at {REAL_DATA_DIR}")
    return REAL_DATA_DIR


@pytest.fixture(scope="session")
def phantom_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Four small CT phantoms in LiTS layout (volume-N / segmentation-N), shared by the slow tests."""
    from bundle.data import write_phantom_dataset

    folder = tmp_path_factory.mktemp("phantoms")
    write_phantom_dataset(folder, 4, seed=7, size=64)
    return folder

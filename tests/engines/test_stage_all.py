"""`--stage all` through `python -m monai.bundle run`, as a user types it: every stage once, then a rerun with
`--resume true` that skips the finished stages; and the resume plan of an interrupted run."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from bundle.engines import STAGE_COMPLETE, STAGE_ORDER, stage_checkpoint_dir

from .bundle_runs import META, REPO, TRAIN_CONFIGS, train_overrides

pytestmark = pytest.mark.slow


def _stage_all(root: Path, data: Path, *extra: str) -> subprocess.CompletedProcess:
    overrides = train_overrides(root, data, stage="all", coarse_epochs=1, fine_epochs=1)
    command = [sys.executable, "-m", "monai.bundle", "run", "--config_file", str(TRAIN_CONFIGS), "--meta_file", META]
    for key, value in overrides.items():
        command += [f"--{key}", json.dumps(value) if isinstance(value, list) else str(value)]
    env = {**os.environ, "PYTHONPATH": str(REPO), "MLFLOW_DISABLE_TELEMETRY": "true"}
    return subprocess.run([*command, *extra], cwd=REPO, env=env, capture_output=True, text=True, timeout=900)


def test_stage_all_trains_every_stage_and_resume_skips_finished_ones(tmp_path: Path, phantom_dir: Path) -> None:
    first = _stage_all(tmp_path, phantom_dir)
    assert first.returncode == 0, first.stdout[-3000:] + first.stderr[-3000:]
    models = tmp_path / "models"
    for stage in STAGE_ORDER:
        folder = Path(stage_checkpoint_dir(str(models), stage))
        assert (folder / "model.pt").is_file() and (folder / STAGE_COMPLETE).is_file(), stage
    final = (models / "model.pt").stat().st_mtime_ns
    # the joint stage was interrupted: its marker gone, its epoch checkpoint kept -> only it runs again, resumed
    (models / STAGE_COMPLETE).unlink()
    again = _stage_all(tmp_path, phantom_dir, "--resume", "true")
    assert again.returncode == 0, again.stdout[-3000:] + again.stderr[-3000:]
    log = again.stdout + again.stderr
    for stage in ("coarse", "2d", "hybrid"):
        assert f"stage {stage} finished before: skipped" in log
    assert "training stage joint (4 of 4) resumed" in log
    assert (models / STAGE_COMPLETE).is_file() and (models / "model.pt").stat().st_mtime_ns >= final

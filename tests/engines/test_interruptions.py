"""Interruptions lose nothing: a training killed with SIGKILL resumes from its last epoch; a writer killed while
saving leaves no half file under the final name; a corrupt checkpoint is reported by name."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from bundle.engines import latest_checkpoint

from .bundle_runs import META, REPO, TRAIN_CONFIGS, run_training_stage, train_overrides

pytestmark = pytest.mark.slow


def _train_command(root: Path, data: Path, **extra) -> list[str]:
    overrides = train_overrides(root, data, stage="coarse", **extra)
    return [
        sys.executable,
        "-m",
        "monai.bundle",
        "run",
        f"--config_file={TRAIN_CONFIGS}",
        f"--meta_file={META}",
        *[f"--{k}={v}" for k, v in overrides.items()],
    ]


def _env() -> dict[str, str]:
    return {**os.environ, "MLFLOW_DISABLE_TELEMETRY": "true", "PYTHONUTF8": "1"}


def test_training_killed_with_sigkill_resumes_from_its_last_epoch(tmp_path: Path, phantom_dir: Path) -> None:
    stage_dir = tmp_path / "models" / "coarse"
    log = open(tmp_path / "killed.log", "w")
    process = subprocess.Popen(
        _train_command(tmp_path, phantom_dir, epochs=40, val_interval=40), cwd=REPO, env=_env(), stdout=log, stderr=log
    )
    deadline = time.time() + 300
    while time.time() < deadline and process.poll() is None:
        checkpoint = latest_checkpoint(str(stage_dir))
        if checkpoint and not checkpoint.endswith("checkpoint_epoch=1.pt"):
            break
        time.sleep(0.2)
    assert process.poll() is None, "training ended before it could be killed"
    process.send_signal(signal.SIGKILL)
    process.wait(timeout=60)
    log.close()
    assert process.returncode == -signal.SIGKILL

    killed_at = int(Path(latest_checkpoint(str(stage_dir))).stem.split("=")[1])
    assert killed_at >= 2
    torch.load(latest_checkpoint(str(stage_dir)), weights_only=True)  # the file left behind is whole

    resumed = run_training_stage(tmp_path, phantom_dir, "coarse", epochs=killed_at + 1, val_interval=40, resume=True)
    trainer = resumed.parser.get_parsed_content("train#trainer")
    # resumed at the next epoch: one epoch of 2 iterations was run, none repeated
    assert (trainer.state.epoch, trainer.state.iteration) == (killed_at + 1, 2 * (killed_at + 1))
    assert latest_checkpoint(str(stage_dir)).endswith(f"checkpoint_epoch={killed_at + 1}.pt")


def test_corrupt_checkpoint_is_reported_by_name(tmp_path: Path, phantom_dir: Path) -> None:
    run_training_stage(tmp_path, phantom_dir, "coarse")
    checkpoint = Path(latest_checkpoint(str(tmp_path / "models" / "coarse")))
    checkpoint.write_bytes(checkpoint.read_bytes()[: checkpoint.stat().st_size // 2])
    with pytest.raises(Exception) as info:
        run_training_stage(tmp_path, phantom_dir, "coarse", epochs=2, resume=True)
    chain, error = [], info.value
    while error is not None:
        chain.append(str(error))
        error = error.__cause__
    assert any("corrupt or truncated" in m and str(checkpoint) in m for m in chain), chain


_WRITER = """
import sys, numpy as np, torch
from monai.data import MetaTensor
from bundle.inference import SaveCaseImaged
image = MetaTensor(torch.rand(1, 512, 512, 400), meta={"filename_or_obj": "big_case.nii.gz", "affine": torch.eye(4)})
print("writing", flush=True)
SaveCaseImaged("pred", sys.argv[1], postfix="seg", output_dtype=np.float32)({"pred": image})
print("done", flush=True)
"""


def test_writer_killed_mid_save_leaves_no_partial_output(tmp_path: Path) -> None:
    process = subprocess.Popen(
        [sys.executable, "-c", _WRITER, str(tmp_path)],
        cwd=REPO,
        env={**_env(), "PYTHONPATH": str(REPO)},
        stdout=subprocess.PIPE,
        text=True,
    )
    assert process.stdout.readline().strip() == "writing"
    time.sleep(1.0)  # compressing 400 MB takes far longer than this
    assert process.poll() is None, "the writer finished before it could be killed"
    process.send_signal(signal.SIGKILL)
    process.wait(timeout=60)
    final = tmp_path / "big_case" / "big_case_seg.nii.gz"
    assert not final.exists(), "a killed writer left a file under the final name"
    # whatever it left is a hidden temporary file, which a rerun neither reads nor mistakes for a finished case
    leftovers = [p.name for p in (tmp_path / "big_case").iterdir()] if final.parent.exists() else []
    assert all(name.startswith(".") for name in leftovers), leftovers

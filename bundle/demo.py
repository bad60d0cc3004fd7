"""`make demo`: the whole bundle on generated CT phantoms, end to end, in minutes on a CPU.

1. phantoms in LiTS layout: ``demo/data`` (training and validation) and ``demo/heldout`` (never trained on);
2. the four training stages of ``configs/train.yaml`` with the small networks (``--stage all``, tracked in MLflow
   under ``demo/eval``), the final cascade copied to ``demo/model.pt``;
3. ``configs/inference.yaml`` on the held-out volumes: ``demo/predictions/<case>/`` (segmentation on the input's
   grid, JSON report, PNG overlay);
4. the LiTS metrics of the predictions against the held-out labels, printed and written to ``demo/metrics``.
"""

from __future__ import annotations

import logging
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

from bundle.data import save_preview_png, write_phantom_dataset
from bundle.metrics.evaluate import evaluate_folder, format_table

__all__ = ["DEMO_INFERENCE", "run_demo"]

logger = logging.getLogger(__name__)
REPO_ROOT = Path(__file__).resolve().parents[1]

#: Overrides of configs/inference.yaml matching the networks that configs/demo.yaml trains.
DEMO_INFERENCE = {"network_size": "small", "patch_size": "[96,96,12]", "num_workers": "0"}


def _bundle_run(configs: list[str], overrides: dict[str, str], log_path: Path) -> None:
    """``python -m monai.bundle run --config_file [configs/...]`` with overrides; output to ``log_path``."""
    files = [str(REPO_ROOT / "configs" / name) for name in configs]
    command = [sys.executable, "-m", "monai.bundle", "run", "--config_file", str(files)]
    command += ["--meta_file", str(REPO_ROOT / "configs" / "metadata.json")]
    for key, value in overrides.items():
        command += [f"--{key}", value]
    env = {**os.environ, "MLFLOW_DISABLE_TELEMETRY": "true", "PYTHONPATH": str(REPO_ROOT)}
    logger.info("running: %s", " ".join(command[1:]))
    with open(log_path, "w") as log:
        result = subprocess.run(command, cwd=REPO_ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)
    if result.returncode != 0:
        tail = "".join(log_path.read_text().splitlines(keepends=True)[-30:])
        raise RuntimeError(f"{configs[0]} failed (exit {result.returncode}); see {log_path}:\n{tail}")


def run_demo(
    out: Path,
    num_cases: int = 8,
    num_heldout: int = 2,
    seed: int = 0,
    size: int = 128,
    coarse_epochs: int | None = None,
    fine_epochs: int | None = None,
) -> int:
    """Run the demo into ``out``; returns 0 on success (the process exit code).

    ``coarse_epochs`` / ``fine_epochs``: None keeps configs/demo.yaml's (the one place the demo's epochs are set).
    """
    epochs = {"coarse_epochs": coarse_epochs, "fine_epochs": fine_epochs}
    out = Path(out).resolve()
    started = time.time()
    data_dir, heldout_dir = out / "data", out / "heldout"
    for folder in (data_dir, heldout_dir, out / "predictions", out / "models"):
        shutil.rmtree(folder, ignore_errors=True)
    logger.info("1/4 phantoms: %d for training and validation, %d held out", num_cases, num_heldout)
    write_phantom_dataset(data_dir, num_cases, seed=seed, size=size)
    heldout = write_phantom_dataset(heldout_dir, num_heldout, seed=seed, size=size, start_index=num_cases)
    save_preview_png(heldout[0], out / "heldout_preview.png")

    logger.info("2/4 training: coarse -> 2d -> hybrid -> joint (log: %s)", out / "train.log")
    _bundle_run(
        ["train.yaml", "demo.yaml"],
        {
            "bundle_root": str(out),
            "ckpt_dir": str(out / "models"),
            "output_dir": str(out / "eval"),
            "dataset_dir": str(data_dir),
            "num_folds": "4",
            "stage": "all",
            **{key: str(value) for key, value in epochs.items() if value is not None},
            "tracking": "mlflow",
            "experiment_name": "liver_tumor_demo",
        },
        out / "train.log",
    )
    shutil.copy2(out / "models" / "model.pt", out / "model.pt")

    logger.info("3/4 inference on the held-out phantoms (log: %s)", out / "inference.log")
    _bundle_run(
        ["inference.yaml"],
        {
            "bundle_root": str(out),
            "input": str(heldout_dir),
            "output_dir": str(out / "predictions"),
            "ckpt_path": str(out / "model.pt"),
            **DEMO_INFERENCE,
        },
        out / "inference.log",
    )

    logger.info("4/4 evaluation against the held-out labels")
    result = evaluate_folder(out / "predictions", heldout_dir, out_dir=out / "metrics")
    print(format_table(result))
    logger.info("demo finished in %.0f s; everything is under %s", time.time() - started, out)
    return 0 if result.ok else 1

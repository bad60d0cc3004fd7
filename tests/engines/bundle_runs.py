"""Helpers that run the bundle's configs in-process (ConfigWorkflow), shrunk for CPU tests."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ignite.engine import Events
from monai.bundle import ConfigWorkflow

REPO = Path(__file__).resolve().parents[2]
TRAIN_CONFIGS = [str(REPO / "configs" / "train.yaml"), str(REPO / "configs" / "demo.yaml")]
META = str(REPO / "configs" / "metadata.json")


def train_overrides(root: Path, data: Path, **extra: Any) -> dict[str, Any]:
    """Two training and two validation phantoms, one 64 x 64 x 8 patch per volume: two iterations an epoch."""
    return {
        "bundle_root": str(root),
        "ckpt_dir": str(root / "models"),
        "output_dir": str(root / "eval"),
        "dataset_dir": str(data),
        "num_folds": 2,
        "epochs": 1,
        "val_interval": 1,
        "patch_size": [64, 64, 8],
        "samples_per_volume": 1,
        "batch_size": 1,
        **extra,
    }


def run_training_stage(
    root: Path, data: Path, stage: str, tracking: str | None = None, stop_after_epoch: int | None = None, **extra: Any
) -> ConfigWorkflow:
    """Run one stage of configs/train.yaml (+ configs/demo.yaml); returns the finished workflow.

    ``stop_after_epoch``: end the run right after that epoch's checkpoint, as a job killed there would.
    """
    workflow = ConfigWorkflow(
        config_file=TRAIN_CONFIGS,
        meta_file=META,
        logging_file=False,
        workflow_type="train",
        tracking=tracking,
        **train_overrides(root, data, stage=stage, **extra),
    )
    workflow.initialize()
    if stop_after_epoch is not None:
        trainer = workflow.parser.get_parsed_content("train#trainer")
        trainer.add_event_handler(Events.EPOCH_COMPLETED(once=stop_after_epoch), lambda engine: engine.terminate())
    workflow.run()
    workflow.finalize()
    return workflow

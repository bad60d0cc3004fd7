"""Helpers that run the bundle's configs in-process (ConfigWorkflow), shrunk for CPU tests."""

from __future__ import annotations

from collections.abc import Callable, Sequence
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


def run_workflow(
    config_file: str | Sequence[str],
    workflow_type: str,
    before_run: Callable[[ConfigWorkflow], None] | None = None,
    **overrides: Any,
) -> ConfigWorkflow:
    """initialize → check_properties → run → finalize, as the model zoo's CI drives a bundle config.

    ``workflow_type``: ``"train"``, ``"eval"`` or ``"infer"`` (MONAI's TrainProperties / InferProperties).
    Raises ``AssertionError`` naming the properties MONAI reports missing (or defined with a wrong ID).
    ``before_run`` gets the initialized workflow, e.g. to add an event handler to its engine.
    """
    workflow = ConfigWorkflow(
        config_file=config_file, meta_file=META, logging_file=False, workflow_type=workflow_type, **overrides
    )
    workflow.initialize()
    missing = workflow.check_properties()
    assert missing == [], f"{config_file} ({workflow_type}) lacks the bundle properties {missing}"
    if before_run is not None:
        before_run(workflow)
    workflow.run()
    workflow.finalize()
    return workflow


def run_training_stage(
    root: Path, data: Path, stage: str, tracking: str | None = None, stop_after_epoch: int | None = None, **extra: Any
) -> ConfigWorkflow:
    """Run one stage of configs/train.yaml (+ configs/demo.yaml) with :func:`run_workflow`; returns the finished
    workflow.

    ``stop_after_epoch``: end the run right after that epoch's checkpoint, as a job killed there would.
    """

    def stop_early(workflow: ConfigWorkflow) -> None:
        trainer = workflow.parser.get_parsed_content("train#trainer")
        trainer.add_event_handler(Events.EPOCH_COMPLETED(once=stop_after_epoch), lambda engine: engine.terminate())

    return run_workflow(
        TRAIN_CONFIGS,
        "train",
        before_run=stop_early if stop_after_epoch is not None else None,
        tracking=tracking,
        **train_overrides(root, data, stage=stage, **extra),
    )

"""Learning curves from the MLflow store a training wrote (``--tracking mlflow``): one figure, one column per stage.

The figure is a PNG, or an SVG (text, diffable: the model card's figures) when the output name ends in ``.svg``.

Each stage of ``--stage all`` is one MLflow run (its ``stage`` parameter says which); MONAI's ``MLFlowHandler`` logs
``train_loss`` per iteration and ``val_mean_dice`` per validation (epoch). The figure shows, per stage, the training
loss (a running mean over an epoch's worth of iterations, over the raw values in grey) and the validation Dice.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

import numpy as np

__all__ = ["STAGE_COLUMNS", "load_stage_curves", "plot_learning_curves"]

logger = logging.getLogger(__name__)

STAGE_COLUMNS = ("coarse", "2d", "hybrid", "joint")


def load_stage_curves(tracking_uri: str, experiment_name: str) -> dict[str, dict[str, list[tuple[int, float]]]]:
    """``{stage: {"train_loss": [(iteration, value)], "val_mean_dice": [(epoch, value)], "epoch_length": [...]}}``
    of the newest run of each stage in the experiment."""
    os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
    from mlflow.tracking import MlflowClient

    client = MlflowClient(tracking_uri)
    experiment = client.get_experiment_by_name(experiment_name)
    if experiment is None:
        names = [e.name for e in client.search_experiments()]
        raise ValueError(f"no experiment {experiment_name!r} in {tracking_uri} (found {names})")
    curves: dict[str, dict[str, list[tuple[int, float]]]] = {}
    runs = client.search_runs([experiment.experiment_id], order_by=["attributes.start_time ASC"])
    for run in runs:  # later runs of a stage (e.g. resumed) replace earlier ones
        stage = run.data.params.get("stage")
        if stage is None:
            continue
        curves[stage] = {
            key: [(m.step, m.value) for m in client.get_metric_history(run.info.run_id, key)]
            for key in ("train_loss", "val_mean_dice", "train_mean_dice")
        }
    return curves


def _running_mean(values: np.ndarray, window: int) -> np.ndarray:
    window = max(1, min(window, len(values)))
    kernel = np.ones(window) / window
    return np.convolve(values, kernel, mode="valid")


def plot_learning_curves(
    tracking_uri: str, experiment_name: str, out_png: str | os.PathLike, title: str | None = None
) -> Path:
    """Draw the curves of ``experiment_name`` into ``out_png`` (``.png`` or ``.svg``, written atomically); returns its
    path."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    curves = load_stage_curves(tracking_uri, experiment_name)
    stages = [s for s in STAGE_COLUMNS if s in curves]
    if not stages:
        raise ValueError(f"experiment {experiment_name!r} has no run with a 'stage' parameter")
    fig, axes = plt.subplots(2, len(stages), figsize=(3.2 * len(stages), 5.0), squeeze=False)
    for col, stage in enumerate(stages):
        loss = np.array(curves[stage]["train_loss"], dtype=float).reshape(-1, 2)
        dice = np.array(curves[stage]["val_mean_dice"], dtype=float).reshape(-1, 2)
        epochs = max(1, len(curves[stage]["train_mean_dice"]))
        top, bottom = axes[0][col], axes[1][col]
        if len(loss):
            top.plot(loss[:, 0], loss[:, 1], color="0.8", linewidth=0.6)
            window = max(1, len(loss) // epochs)
            smooth = _running_mean(loss[:, 1], window)
            top.plot(loss[window - 1 :, 0], smooth, color="tab:blue", linewidth=1.2)
        top.set_title(stage)
        top.set_xlabel("iteration")
        if col == 0:
            top.set_ylabel("training loss")
        if len(dice):
            bottom.plot(dice[:, 0], dice[:, 1], "o-", color="tab:green")
        bottom.set_ylim(0, 1)
        bottom.set_xlabel("epoch")
        bottom.grid(alpha=0.3)
        if col == 0:
            bottom.set_ylabel("validation mean Dice")
    fig.suptitle(title or experiment_name)
    fig.tight_layout()
    out = Path(out_png)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(f".{out.stem}.{os.getpid()}.tmp{out.suffix}")
    try:
        fig.savefig(tmp, dpi=110, metadata={"Date": None} if out.suffix == ".svg" else None)
        os.replace(tmp, out)
    finally:
        plt.close(fig)
        tmp.unlink(missing_ok=True)
    logger.info("learning curves of %s: %s", experiment_name, out)
    return out

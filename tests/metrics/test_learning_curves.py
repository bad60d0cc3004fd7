"""Learning curves read back from a real MLflow sqlite store and drawn as PNG and SVG."""

from __future__ import annotations

from pathlib import Path

import pytest
from PIL import Image

from bundle.metrics.learning_curves import load_stage_curves, plot_learning_curves


def _store(tmp_path: Path) -> str:
    mlflow = pytest.importorskip("mlflow")
    uri = f"sqlite:///{tmp_path / 'mlruns.db'}"
    mlflow.set_tracking_uri(uri)
    mlflow.set_experiment("curves")
    for stage, dice in (("coarse", [0.4, 0.7]), ("2d", [0.2, 0.5])):
        with mlflow.start_run():
            mlflow.log_param("stage", stage)
            for step in range(1, 21):
                mlflow.log_metric("train_loss", 1.0 / step, step=step)
            for epoch in (1, 2):
                mlflow.log_metric("train_mean_dice", 0.1 * epoch, step=epoch)
                mlflow.log_metric("val_mean_dice", dice[epoch - 1], step=epoch)
    return uri


def test_curves_per_stage_from_the_store(tmp_path: Path):
    uri = _store(tmp_path)
    curves = load_stage_curves(uri, "curves")
    assert set(curves) == {"coarse", "2d"}
    assert curves["2d"]["val_mean_dice"] == [(1, 0.2), (2, 0.5)] and len(curves["coarse"]["train_loss"]) == 20
    png = plot_learning_curves(uri, "curves", tmp_path / "curves.png")
    with Image.open(png) as image:
        assert image.size[0] > 300 and len(set(image.convert("L").getdata())) > 10  # drawn, not blank
    svg = plot_learning_curves(uri, "curves", tmp_path / "curves.svg").read_text()
    assert svg.lstrip().startswith("<?xml") and "coarse" in svg
    with pytest.raises(ValueError, match="no experiment 'other'"):
        load_stage_curves(uri, "other")

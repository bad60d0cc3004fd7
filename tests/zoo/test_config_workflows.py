"""The bundle's configs as the model zoo's CI drives them: ConfigWorkflow initialize → check_properties → run →
finalize for training, evaluation and inference, each with no missing bundle property."""

from __future__ import annotations

import csv
import shutil
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest
import torch

from tests.engines.bundle_runs import REPO, TRAIN_CONFIGS, run_workflow, train_overrides

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory, phantom_dir: Path) -> Path:
    """configs/train.yaml + configs/demo.yaml, the joint stage from random weights (no previous stage), 1 epoch of
    two 64 x 64 x 8 patches; returns the bundle root holding models/model.pt."""
    root = tmp_path_factory.mktemp("zoo_train")
    workflow = run_workflow(TRAIN_CONFIGS, "train", **train_overrides(root, phantom_dir, stage="joint", init_ckpt=None))
    assert workflow.trainer.state.epoch == 1 and workflow.trainer.state.iteration == 2
    assert np.isfinite(float(workflow.trainer.state.output[0]["loss"]))
    return root


def test_train_workflow_writes_the_whole_cascade(trained: Path) -> None:
    state = torch.load(trained / "models" / "model.pt", map_location="cpu", weights_only=True)
    assert any(k.startswith("coarse.") for k in state) and any(k.startswith("fine.hff.") for k in state)


def test_evaluate_workflow_scores_every_validation_case(trained: Path, phantom_dir: Path) -> None:
    """configs/evaluate.yaml over train.yaml: the whole cascade on the validation fold, per-case Dice on disk."""
    workflow = run_workflow(
        [*TRAIN_CONFIGS, str(REPO / "configs" / "evaluate.yaml")], "eval", **train_overrides(trained, phantom_dir)
    )
    assert 0.0 <= workflow.evaluator.state.metrics["val_mean_dice"] <= 1.0
    with open(trained / "eval" / "val_mean_dice_raw.csv") as f:
        header, *rows = list(csv.reader(f))
    assert header == ["filename", "class0", "class1", "mean"]  # liver, tumor, their mean
    assert len(rows) == len(workflow.dataset) == 2  # one row a validation case
    assert all(0.0 <= float(row[1]) <= 1.0 for row in rows)  # liver Dice (tumor Dice is NaN for a tumor-free case)


def test_inference_workflow_segments_the_dataset_dir(trained: Path, phantom_dir: Path, tmp_path: Path) -> None:
    """configs/inference.yaml with the zoo's ``dataset_dir`` (one phantom): a label map on the input's grid."""
    data = tmp_path / "data"
    data.mkdir()
    shutil.copy(phantom_dir / "volume-0.nii.gz", data)
    workflow = run_workflow(
        str(REPO / "configs" / "inference.yaml"),
        "infer",
        bundle_root=str(trained),
        dataset_dir=str(data),
        output_dir=str(tmp_path / "out"),
        network_size="small",
        patch_size=[64, 64, 8],
    )
    assert workflow.evaluator.state.iteration == 1
    source = nib.load(str(data / "volume-0.nii.gz"))
    seg = nib.load(str(tmp_path / "out" / "volume-0" / "volume-0_seg.nii.gz"))
    assert seg.shape == source.shape
    np.testing.assert_allclose(seg.affine, source.affine, atol=1e-3)
    assert set(np.unique(np.asanyarray(seg.dataobj)).tolist()) <= {0, 1, 2}

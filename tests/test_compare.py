"""The comparison's table building on tiny label maps, its per-network overrides and the shared coarse weights."""

from __future__ import annotations

import csv
import json
import math
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest
import torch

from bundle.compare import (
    TABLE_COLUMNS,
    CompareSettings,
    _Shared,
    _train_network,
    adopt_last_epoch,
    format_markdown,
    inference_overrides,
    network_row,
    share_coarse_weights,
    stage_overrides,
    write_tables,
)
from bundle.engines import stages_of
from bundle.metrics.evaluate import evaluate_folder
from bundle.networks import FINE_NETWORKS, LiverTumorCascade

AFFINE = np.diag([0.8, 0.8, 2.5, 1.0])


def _save(label: np.ndarray, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    nib.save(nib.Nifti1Image(label.astype(np.uint8), AFFINE), str(path))


def _scored_folder(root: Path, names: list[str], tumor_hit: bool) -> object:
    """References with a liver and a tumor; predictions that hit the liver and (or not) the tumor."""
    for name in names:
        ref = np.zeros((12, 12, 4), np.uint8)
        ref[2:10, 2:10, :] = 1
        ref[4:6, 4:6, 1:3] = 2
        pred = ref.copy()
        if not tumor_hit:
            pred[pred == 2] = 1
        _save(ref, root / "labels" / f"{name}.nii.gz")
        _save(pred, root / "pred" / name / f"{name}_seg.nii.gz")
    return evaluate_folder(root / "pred", root / "labels", out_dir=root / "metrics")


def test_table_from_fake_results(tmp_path: Path) -> None:
    phantom = (_scored_folder(tmp_path / "phantom", ["volume-6", "volume-7"], tumor_hit=True), 2.5)
    # two real cases; only "lits" has tumor labels: the missed tumor of "liver-only" must not count
    real_result = _scored_folder(tmp_path / "real", ["lits", "liver-only"], tumor_hit=True)
    for case in real_result.cases:
        if case["case"] == "liver-only":
            case.update(tumor_dice=0.0, tumor_intersection_voxels=0, tumor_pred_voxels=10, tumor_ref_voxels=0)
    counts = {"fine_parameters": 1000, "total_parameters": 1500}
    rows = [
        network_row("raunet", counts, 12.0, phantom, (real_result, 4.0), tumor_cases={"lits"}),
        network_row("denseunet3d", counts, None, None, None, status="training failed: boom"),
    ]
    assert rows[0]["phantom_liver_dice"] == pytest.approx(1.0)
    assert rows[0]["phantom_tumor_dice_global"] == pytest.approx(1.0)
    assert rows[0]["real_tumor_dice"] == pytest.approx(1.0)  # liver-only case left out of the tumor columns
    assert rows[0]["real_seconds_per_case"] == 4.0 and rows[0]["status"] == "ok"
    assert math.isnan(rows[1]["phantom_liver_dice"]) and rows[1]["status"].startswith("training failed")

    cases = [{"network": "raunet", "case": c["case"], "liver_dice": 1.0, "tumor_dice": 1.0} for c in phantom[0].cases]
    paths = write_tables(rows, tmp_path / "out", "python scripts/compare.py --x 1", ["context"], cases, {"k": 1})
    markdown = paths["md"].read_text()
    assert "python scripts/compare.py --x 1" in markdown.splitlines()[:8]  # the command comes first
    assert "| raunet | 1,000 | 1,500 | 12.0 | 1.000 |" in markdown
    assert "| volume-6 |" in markdown.replace(" volume-7 |", "")  # the per-case table
    with open(paths["csv"]) as f:
        table = list(csv.DictReader(f))
    assert [r["network"] for r in table] == ["raunet", "denseunet3d"]
    assert list(table[0]) == [key for key, _ in TABLE_COLUMNS]
    saved = json.loads(paths["json"].read_text())
    assert saved["rows"][0]["network"] == "raunet" and saved["cases"] == cases and saved["k"] == 1
    assert format_markdown(rows, "cmd", [], []).count("\n|") == 4  # header, rule, two rows; no per-case table


def test_overrides_are_the_same_for_every_network_but_the_papers_class_weights_and_loss(tmp_path: Path) -> None:
    settings = CompareSettings(out=tmp_path, fine_epochs=4, coarse_epochs=7, num_folds=3, fold=1, seed=5)
    shared = {"dataset_dir", "num_folds", "fold", "split_seed", "patch_size", "coarse_epochs", "fine_epochs"}
    seen = []
    for network in FINE_NETWORKS:
        for stage in stages_of(network):
            overrides = stage_overrides(settings, network, stage)
            seen.append({k: overrides[k] for k in shared})
            assert overrides["network_name"] == network and overrides["stage"] == stage
            assert overrides["network_size"] == "small"
            assert overrides["ckpt_dir"] == str(tmp_path / "runs" / network / "models")
            weights = overrides.get("class_weights")
            assert weights == ("[0.2,1.2,2.2]" if network == "denseunet569" and stage != "coarse" else None)
            assert overrides.get("seg_loss") == ("dice" if network == "raunet" and stage != "coarse" else None)
    assert all(s == seen[0] for s in seen)
    assert seen[0] == {
        "dataset_dir": str(tmp_path / "data"),
        "num_folds": "3",
        "fold": "1",
        "split_seed": "5",
        "patch_size": "[96,96,12]",
        "coarse_epochs": "7",
        "fine_epochs": "4",
    }
    infer = inference_overrides(settings, "raunet", tmp_path / "m.pt", tmp_path / "in", tmp_path / "o")
    assert infer["patch_size"] == "[96,96,12]" and infer["network_name"] == "raunet"
    assert infer["network_size"] == "small" and infer["ckpt_path"] == str(tmp_path / "m.pt")
    assert "--fine-epochs 4" in settings.command() and "--networks hdenseunet,denseunet569" in settings.command()
    with pytest.raises(ValueError, match="networks must be among"):
        CompareSettings(networks=("unet",))


def test_shared_coarse_weights_load_strictly_into_another_network(tmp_path: Path) -> None:
    torch.manual_seed(1)
    trained = LiverTumorCascade(size="small", network_name="denseunet3d", stage="coarse")
    torch.save(trained.state_dict(), tmp_path / "coarse.pt")
    dest = share_coarse_weights(tmp_path / "coarse.pt", "raunet", tmp_path / "raunet" / "coarse" / "model.pt")
    target = LiverTumorCascade(size="small", network_name="raunet", stage="joint")
    target.load_state_dict(torch.load(dest, weights_only=True), strict=True)
    for key, value in trained.state_dict().items():
        if key.startswith("coarse."):
            assert torch.equal(target.state_dict()[key], value), key


def test_a_stopped_final_stage_leaves_its_last_epoch_as_the_model(tmp_path: Path) -> None:
    assert adopt_last_epoch(tmp_path) is None
    for epoch in (2, 10):  # the newest epoch by number, not by name
        state = {"w": torch.full((2,), float(epoch))}
        torch.save({"model": state, "optimizer": {}, "trainer": {}}, tmp_path / f"checkpoint_epoch={epoch}.pt")
    assert adopt_last_epoch(tmp_path) == 10
    assert torch.equal(torch.load(tmp_path / "model.pt", weights_only=True)["w"], torch.full((2,), 10.0))


@pytest.mark.slow
def test_fill_budget_trains_the_last_stage_until_the_budget_ends(tmp_path: Path, phantom_dir: Path) -> None:
    """--fill-budget: a real joint-stage run of the 3D DenseUNet is stopped by the budget (not by its epochs) and
    its last finished epoch becomes models/model.pt."""
    with pytest.raises(ValueError, match="needs a budget"):
        CompareSettings(fill_budget=True, budget_minutes=0)
    (tmp_path / "data").symlink_to(phantom_dir, target_is_directory=True)
    settings = CompareSettings(
        out=tmp_path,
        networks=("denseunet3d",),
        patch_size=(64, 64, 8),
        num_folds=4,
        budget_minutes=1.5,
        fill_budget=True,
    )
    assert settings.command().endswith("--fill-budget")
    torch.manual_seed(0)
    torch.save(LiverTumorCascade(size="small", stage="coarse").state_dict(), tmp_path / "coarse.pt")
    shared = _Shared(tmp_path / "coarse.pt", 0.0, tmp_path / "heldout", None)
    seconds, status = _train_network(settings, "denseunet3d", shared)
    assert seconds == 90.0
    assert status.startswith("ok: budget filled, joint stage stopped after epoch "), status
    models = tmp_path / "runs" / "denseunet3d" / "models"
    epochs = int(status.rsplit(" ", 1)[1])
    assert epochs >= 1 and (models / f"checkpoint_epoch={epochs}.pt").is_file()
    net = LiverTumorCascade(size="small", network_name="denseunet3d", stage="joint")
    net.load_state_dict(torch.load(models / "model.pt", weights_only=True), strict=True)

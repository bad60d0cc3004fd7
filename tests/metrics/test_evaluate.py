"""Folder evaluation end to end on small NIfTI files in the LiTS and MSD layouts."""

from __future__ import annotations

import csv
import importlib.util
import json
import logging
import math
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest

from bundle.metrics.evaluate import case_name, evaluate_folder, find_predictions, find_references
from bundle.metrics.lits import lits_case_metrics

AFFINE = np.diag([0.8, 0.8, 2.5, 1.0])
SHAPE = (16, 16, 8)


def save(array: np.ndarray, path: Path, affine: np.ndarray = AFFINE) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    nib.save(nib.Nifti1Image(array.astype(np.uint8), affine), str(path))
    return path


def reference(seed: int) -> np.ndarray:
    label = np.zeros(SHAPE, np.uint8)
    label[3:12, 3:12, 1:7] = 1
    label[5 + seed % 3 : 8 + seed % 3, 5:8, 2:5] = 2
    return label


def prediction(seed: int) -> np.ndarray:
    label = reference(seed)
    label[3:12, 3:12, 7] = 1  # one slice too many of liver
    label[label == 2] = 1
    label[6:9, 5:9, 2:5] = 2
    return label


@pytest.mark.parametrize(
    ("filename", "case"),
    [
        ("segmentation-3.nii", "volume-3"),
        ("segmentation-12.nii.gz", "volume-12"),
        ("test-segmentation-4.nii", "test-volume-4"),
        ("volume-3_seg.nii.gz", "volume-3"),
        ("volume-3.nii.gz", "volume-3"),
        ("liver_7.nii.gz", "liver_7"),
        ("._liver_7.nii.gz", None),
        ("metrics.json", None),
    ],
)
def test_case_name(filename, case):
    assert case_name(filename) == case


def test_lits_layout_with_a_mismatched_case(tmp_path, caplog):
    labels, preds, out = tmp_path / "labels", tmp_path / "preds", tmp_path / "out"
    save(reference(0), labels / "segmentation-0.nii")
    save(reference(1), labels / "segmentation-1.nii.gz")
    save(reference(2), labels / "segmentation-2.nii.gz")
    save(reference(3), labels / "segmentation-3.nii.gz")  # no prediction
    save(prediction(0), preds / "volume-0" / "volume-0_seg.nii.gz")  # our inference layout
    save(prediction(1), preds / "volume-1_seg.nii.gz")  # flat
    shifted = AFFINE.copy()
    shifted[0, 3] = 0.01  # 10 µm > 1e-3 mm tolerance
    save(prediction(2), preds / "volume-2.nii.gz", affine=shifted)  # flat, wrong affine
    save(prediction(9), preds / "volume-9_seg.nii.gz")  # no reference

    with caplog.at_level(logging.INFO):
        result = evaluate_folder(preds, labels, out)
    assert not result.ok and result.failed == ["volume-2"]
    assert result.missing_predictions == ["volume-3"] and result.unmatched_predictions == ["volume-9"]
    assert [c["status"] for c in result.cases] == ["ok", "ok", "failed"]
    error = result.cases[2]["error"]
    assert "affine mismatch" in error and "volume-2.nii.gz" in error and "segmentation-2.nii.gz" in error
    assert "SUMMARY (mean)" in caplog.text and "liver Dice" in caplog.text

    expected = [lits_case_metrics(prediction(s), reference(s), (0.8, 0.8, 2.5)) for s in (0, 1)]
    assert result.summary["n_cases"] == 2
    assert result.summary["liver_dice"] == pytest.approx(np.mean([e["liver_dice"] for e in expected]))
    assert result.cases[0]["tumor_assd"] == pytest.approx(expected[0]["tumor_assd"])

    with open(out / "metrics.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    assert [r["case"] for r in rows] == ["volume-0", "volume-1", "volume-2", "SUMMARY"]
    assert float(rows[0]["liver_dice"]) == pytest.approx(expected[0]["liver_dice"], rel=1e-5)
    assert rows[2]["status"] == "failed" and rows[2]["liver_dice"] == "" and "affine" in rows[2]["error"]
    assert float(rows[3]["liver_dice_global"]) == pytest.approx(result.summary["liver_dice_global"], rel=1e-5)
    saved = json.loads((out / "metrics.json").read_text())
    assert saved["failed"] == ["volume-2"] and len(saved["cases"]) == 3
    assert saved["summary"]["tumor_burden_rmse"] == pytest.approx(result.summary["tumor_burden_rmse"])


def test_msd_layout_scores_every_case(tmp_path):
    labels, preds = tmp_path / "labelsTr", tmp_path / "preds"
    save(reference(0), labels / "liver_0.nii.gz")
    save(reference(1), labels / "liver_1.nii.gz")
    (labels / "._liver_0.nii.gz").write_bytes(b"\x00macOS resource fork")
    save(prediction(0), preds / "liver_0.nii.gz")
    save(reference(1), preds / "liver_1" / "liver_1_seg.nii.gz")  # a perfect prediction
    assert set(find_references(labels)) == {"liver_0", "liver_1"}
    assert find_predictions(preds)["liver_1"].name == "liver_1_seg.nii.gz"

    result = evaluate_folder(preds, labels)  # outputs default to the prediction folder
    assert result.ok and result.failed == []
    perfect = result.cases[1]
    assert (perfect["liver_dice"], perfect["tumor_dice"], perfect["tumor_msd"]) == (1.0, 1.0, 0.0)
    assert perfect["liver_ref_ml"] == pytest.approx(9 * 9 * 6 * 0.8 * 0.8 * 2.5 / 1000)
    assert (preds / "metrics.csv").is_file() and (preds / "metrics.json").is_file()
    assert evaluate_folder(preds, labels).ok  # a second run ignores the outputs of the first


def test_shape_mismatch_and_script_exit_code(tmp_path):
    labels, preds = tmp_path / "labels", tmp_path / "preds"
    save(reference(0), labels / "segmentation-0.nii.gz")
    save(reference(1), labels / "segmentation-1.nii.gz")
    save(prediction(0), preds / "volume-0.nii.gz")
    save(prediction(1)[:, :, :-1], preds / "volume-1.nii.gz")

    spec = importlib.util.spec_from_file_location("evaluate_script", Path(__file__).parents[2] / "scripts/evaluate.py")
    script = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(script)
    assert script.main([str(preds), str(labels), "--out", str(tmp_path / "out")]) == 1
    saved = json.loads((tmp_path / "out" / "metrics.json").read_text())
    assert saved["failed"] == ["volume-1"]
    assert "shape mismatch" in saved["cases"][1]["error"] and "segmentation-1.nii.gz" in saved["cases"][1]["error"]
    assert not math.isnan(saved["summary"]["liver_dice"])

    (preds / "volume-1.nii.gz").unlink()
    save(prediction(1), preds / "volume-1.nii.gz")
    assert script.main([str(preds), str(labels), "--out", str(tmp_path / "out")]) == 0
    (preds / "volume-1.nii.gz").unlink()
    assert script.main([str(preds), str(labels), "--out", str(tmp_path / "out"), "--require-all"]) == 1


def test_bad_label_values_and_nothing_matched(tmp_path):
    labels, preds = tmp_path / "labels", tmp_path / "preds"
    bad = prediction(0)
    bad[0, 0, 0] = 7
    save(reference(0), labels / "a.nii.gz")
    save(bad, preds / "a.nii.gz")
    result = evaluate_folder(preds, labels, tmp_path / "out")
    assert not result.ok and "outside" in result.cases[0]["error"]
    empty = tmp_path / "empty"
    empty.mkdir()
    assert not evaluate_folder(empty, labels, tmp_path / "out2").ok

"""Per-case report: volumes in mL, tumor components, centroids in world mm, atomic JSON."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from bundle.inference.report import atomic_output, case_report, write_json_atomic


def flipped_affine() -> np.ndarray:
    """Spacing 0.5 x 0.8 x 2.5 mm (voxel 1 mm³); axes 0 and 1 flipped, as for an LPS-stored scan."""
    return np.array(
        [
            [-0.5, 0.0, 0.0, 100.0],
            [0.0, -0.8, 0.0, 50.0],
            [0.0, 0.0, 2.5, -30.0],
            [0.0, 0.0, 0.0, 1.0],
        ]
    )


def test_volumes_count_centroids_and_burden():
    label = np.zeros((40, 30, 20), np.uint8)
    label[0:20, 0:25, 0:10] = 1  # liver block: 5000 voxels = 5 mL
    label[2:6, 2:6, 2:6] = 2  # tumor A: 64 voxels, centre (3.5, 3.5, 3.5)
    label[10:12, 10:12, 8] = 2  # tumor B: 4 voxels, centre (10.5, 10.5, 8)
    label[12, 12, 7] = 2  # 1 voxel touching B at the corner of (11, 11, 8) only: 26-connected, so part of B
    report = case_report(label, flipped_affine(), "volume-7")

    assert report["case"] == "volume-7"
    assert report["voxel_volume_mm3"] == pytest.approx(1.0)
    assert report["spacing_mm"] == pytest.approx([0.5, 0.8, 2.5])
    assert report["liver_volume_ml"] == pytest.approx(5.0)  # labels 1 and 2
    assert report["tumor_count"] == 2
    tumor_a, tumor_b = report["tumors"]
    assert (tumor_a["id"], tumor_a["voxels"], tumor_a["volume_ml"]) == (1, 64, pytest.approx(0.064))
    assert tumor_a["centroid_voxel"] == pytest.approx([3.5, 3.5, 3.5])
    assert tumor_a["centroid_mm"] == pytest.approx([100 - 0.5 * 3.5, 50 - 0.8 * 3.5, -30 + 2.5 * 3.5])
    assert tumor_b["voxels"] == 5
    assert report["tumor_volume_ml"] == pytest.approx(0.069)
    assert report["tumor_burden"] == pytest.approx(69 / 5000)


def test_separate_tumors_and_empty_liver():
    label = np.zeros((10, 10, 10), np.uint8)
    label[1:9, 1:9, 1:9] = 1
    label[2, 2, 2] = 2
    label[4, 4, 4] = 2  # two voxels apart diagonally: not 26-neighbours
    report = case_report(label[None], np.diag([2.0, 2.0, 2.0, 1.0]), "c")
    assert report["tumor_count"] == 2
    assert [t["volume_ml"] for t in report["tumors"]] == pytest.approx([0.008, 0.008])
    empty = case_report(np.zeros((3, 3, 3)), np.eye(4), "empty")
    assert (empty["liver_volume_ml"], empty["tumor_count"], empty["tumor_burden"], empty["tumors"]) == (0, 0, 0, [])
    with pytest.raises(ValueError, match="4x4"):
        case_report(label, np.eye(3), "c")


def test_write_json_atomic(tmp_path):
    path = tmp_path / "out" / "report.json"
    obj = {"a": np.float32(1.5), "b": [np.int64(2), math.nan], "c": np.arange(3), "d": math.inf}
    assert write_json_atomic(obj, path) == path
    assert json.loads(path.read_text()) == {"a": 1.5, "b": [2, None], "c": [0, 1, 2], "d": None}
    write_json_atomic({"x": 1}, path)  # replaces
    assert json.loads(path.read_text()) == {"x": 1}
    assert sorted(p.name for p in path.parent.iterdir()) == ["report.json"]  # no temporary file left


def test_atomic_output_leaves_target_untouched_on_error(tmp_path):
    path = tmp_path / "a.txt"
    path.write_text("old")
    with pytest.raises(RuntimeError), atomic_output(path) as tmp:
        tmp.write_text("half")
        raise RuntimeError("boom")
    assert path.read_text() == "old"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.txt"]

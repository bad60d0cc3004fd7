"""The phantom study's offline threshold sweep and the phantom recipe's per-case targets."""

from __future__ import annotations

import numpy as np
import pytest

from bundle.demo import PHANTOM_TARGETS, RECIPES, phantom_target_report
from bundle.phantom_study import VARIANTS, threshold_sweep


def _case(tumor_probability: float) -> tuple[np.ndarray, np.ndarray]:
    """A 20^3 liver cube with a 6^3 tumor, probabilities (3, X, Y, Z): tumor voxels at ``tumor_probability``,
    plus a stray tumor-ish blob outside the liver that the clean-up must drop."""
    reference = np.zeros((32, 32, 32), np.uint8)
    reference[6:26, 6:26, 6:26] = 1
    reference[12:18, 12:18, 12:18] = 2
    prob = np.zeros((3, 32, 32, 32), np.float32)
    prob[0] = 1.0
    liver = reference > 0
    prob[:, liver] = np.array([0.0, 1.0, 0.0], np.float32)[:, None]
    tumor = reference == 2
    prob[:, tumor] = np.array([0.0, 1.0 - tumor_probability, tumor_probability], np.float32)[:, None]
    prob[:, 28:31, 28:31, 28:31] = np.array([0.0, 0.2, 0.8], np.float32)[:, None, None, None]  # outside the liver
    return prob, reference


def test_threshold_sweep_scores_each_threshold_with_and_without_cleanup() -> None:
    prob, reference = _case(tumor_probability=0.6)
    rows = {row["tumor_threshold"]: row for row in threshold_sweep(prob, reference, thresholds=(0.5, 0.7))}
    assert rows[0.5]["tumor_dice"] == pytest.approx(1.0)  # the blob outside the liver is removed
    assert rows[0.5]["tumor_dice_raw"] < 1.0  # ... but counts before the clean-up
    assert rows[0.5]["tumor_burden"] == pytest.approx(216 / 8000)
    assert rows[0.7]["tumor_dice"] == 0.0 and rows[0.7]["tumor_burden"] == 0.0
    channels_last = threshold_sweep(np.moveaxis(prob, 0, -1), reference, thresholds=(0.5,))
    assert channels_last[0]["tumor_dice"] == pytest.approx(1.0)


def test_variants_change_one_named_factor_against_the_demo() -> None:
    assert VARIANTS["demo"] == {}
    assert set(VARIANTS["tumor_weight_2"]) == {"stage_settings#liver#class_weights"}
    assert set(VARIANTS["equal_centres"]) == {"stage_settings#liver#patch_class_ratios"}


def test_phantom_targets_are_met_per_case_not_on_average() -> None:
    good = {"case": "a", "status": "ok", "liver_dice": 0.97, "tumor_dice": 0.8}
    good |= {"tumor_burden_pred": 0.05, "tumor_burden_ref": 0.045}
    weak = good | {"case": "b", "tumor_dice": 0.5}
    off = good | {"case": "c", "tumor_burden_pred": 0.2}
    assert phantom_target_report([good])[0]
    met, lines = phantom_target_report([good, weak])
    assert not met and lines[1].endswith("NOT met")
    assert not phantom_target_report([good, off])[0]
    assert not phantom_target_report([good, {"case": "d", "status": "failed"}])[0]
    assert not phantom_target_report([])[0]
    assert PHANTOM_TARGETS["liver_dice"] == 0.95
    assert RECIPES["phantoms"].overlays[-1] == "phantoms.yaml"


@pytest.mark.parametrize("stage", ["coarse", "2d", "hybrid", "joint"])
def test_phantom_recipe_overlays_the_demo_with_its_stage_epochs(stage: str) -> None:
    from monai.bundle import ConfigParser

    from bundle.commands import REPO_ROOT

    parser = ConfigParser()
    parser.read_config([str(REPO_ROOT / "configs" / name) for name in ("train.yaml", *RECIPES["phantoms"].overlays)])
    parser["stage"] = stage
    table = parser.get_parsed_content("stage_epochs")
    assert parser.get_parsed_content("epochs") == table[stage] > 8  # longer than the demo's 8 (coarse 15)
    assert parser.get_parsed_content("network_size") == "small"  # demo.yaml's networks and patches
    assert parser.get_parsed_content("patch_size") == [96, 96, 12]

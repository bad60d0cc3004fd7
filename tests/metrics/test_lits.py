"""LiTS metrics against values worked out by hand on small arrays."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from bundle.metrics.lits import (
    assd,
    binary_metrics,
    dice,
    lits_case_metrics,
    lits_summary,
    msd,
    rmsd,
    rvd,
    surface_distances,
    tumor_burden,
    voe,
)

ANISO = (1.0, 1.0, 3.0)  # mm: one slice along axis 2 is 3 mm


def cubes_offset_by_one() -> tuple[np.ndarray, np.ndarray]:
    """Two 3x3x3 cubes, the second shifted by one voxel along axis 0: |P| = |R| = 27, |P∩R| = 18, |P or R| = 36."""
    p = np.zeros((6, 6, 6), bool)
    r = np.zeros((6, 6, 6), bool)
    p[1:4, 1:4, 1:4] = True
    r[2:5, 1:4, 1:4] = True
    return p, r


def test_overlap_metrics_on_offset_cubes():
    p, r = cubes_offset_by_one()
    assert dice(p, r) == pytest.approx(2 * 18 / 54, rel=1e-6)
    assert voe(p, r) == pytest.approx(1 - 18 / 36)
    assert rvd(p, r) == 0.0
    smaller = r.copy()
    smaller[4] = False  # 18 voxels instead of 27
    assert rvd(smaller, r) == pytest.approx((18 - 27) / 27)
    assert rvd(r, smaller) == pytest.approx((27 - 18) / 18)


def test_surface_metrics_on_offset_cubes():
    # Each cube's surface is its 26 voxels without the centre. P -> R: P's 9 voxels on the face x=1 are 1 mm from R,
    # and P's voxel (3, 2, 2) is R's centre, 1 mm from R's surface; the other 16 lie on R's surface. Symmetric for R.
    p, r = cubes_offset_by_one()
    d_pr, d_rp = surface_distances(p, r, ANISO)
    assert sorted(d_pr.tolist()) == [0.0] * 16 + [1.0] * 10
    assert sorted(d_rp.tolist()) == [0.0] * 16 + [1.0] * 10
    assert assd(p, r, ANISO) == pytest.approx(20 / 52)
    assert msd(p, r, ANISO) == pytest.approx(1.0)
    assert rmsd(p, r, ANISO) == pytest.approx(math.sqrt(20 / 52))


def test_planes_one_slice_apart_are_3mm_apart_with_anisotropic_spacing():
    p = np.zeros((4, 4, 6), bool)
    r = np.zeros((4, 4, 6), bool)
    p[:, :, 1] = True
    r[:, :, 2] = True
    m = binary_metrics(p, r, ANISO)
    assert m["assd"] == pytest.approx(3.0)
    assert m["msd"] == pytest.approx(3.0)
    assert m["rmsd"] == pytest.approx(3.0)
    assert (m["dice"], m["voe"], m["rvd"]) == (0.0, 1.0, 0.0)
    # the same offset along an in-plane axis is 1 mm
    assert assd(p.transpose(2, 1, 0), r.transpose(2, 1, 0), ANISO) == pytest.approx(1.0)


def test_surface_metrics_on_a_line():
    # P = voxels z=0,1 and R = z=0..3 of a line: all voxels are surface. P -> R: 0, 0; R -> P: 0, 0, 3, 6 mm.
    p = np.zeros((1, 1, 6), bool)
    r = np.zeros((1, 1, 6), bool)
    p[0, 0, :2] = True
    r[0, 0, :4] = True
    m = binary_metrics(p, r, ANISO)
    assert m["assd"] == pytest.approx(9 / 6)
    assert m["msd"] == pytest.approx(6.0)
    assert m["rmsd"] == pytest.approx(math.sqrt((9 + 36) / 6))
    assert m["rvd"] == pytest.approx(-0.5)
    assert m["dice"] == pytest.approx(2 * 2 / 6, rel=1e-6)


def test_diagonal_distance_uses_spacing_per_axis():
    p = np.zeros((3, 3, 3), bool)
    r = np.zeros((3, 3, 3), bool)
    p[0, 0, 0] = True
    r[1, 0, 1] = True
    assert msd(p, r, ANISO) == pytest.approx(math.sqrt(1 + 9), rel=1e-6)
    assert msd(torch.as_tensor(p), torch.as_tensor(r), (2.0, 1.0, 1.0)) == pytest.approx(math.sqrt(4 + 1), rel=1e-6)


def test_empty_mask_conventions():
    empty = np.zeros((5, 5, 5), bool)
    full = empty.copy()
    full[1:3, 1:3, 1:3] = True
    both = binary_metrics(empty, empty, ANISO)
    assert {k: both[k] for k in ("dice", "voe", "rvd", "assd", "msd", "rmsd")} == {
        "dice": 1.0,
        "voe": 0.0,
        "rvd": 0.0,
        "assd": 0.0,
        "msd": 0.0,
        "rmsd": 0.0,
    }
    missed = binary_metrics(empty, full, ANISO)  # nothing predicted
    assert (missed["dice"], missed["voe"], missed["rvd"]) == (0.0, 1.0, -1.0)
    assert all(math.isnan(missed[k]) for k in ("assd", "msd", "rmsd"))
    false_positive = binary_metrics(full, empty, ANISO)  # reference empty: RVD undefined
    assert (false_positive["dice"], false_positive["voe"]) == (0.0, 1.0)
    assert all(math.isnan(false_positive[k]) for k in ("rvd", "assd", "msd", "rmsd"))
    assert math.isnan(assd(full, empty, ANISO)) and math.isnan(rvd(full, empty))
    with pytest.raises(ValueError, match="exactly one"):
        surface_distances(full, empty, ANISO)


def test_shape_and_spacing_errors():
    with pytest.raises(ValueError, match="same shape"):
        dice(np.zeros((2, 2, 2)), np.zeros((2, 2, 3)))
    with pytest.raises(ValueError, match="one value per axis"):
        surface_distances(np.ones((2, 2, 2)), np.ones((2, 2, 2)), (1.0, 1.0))


def label_map(liver: int, tumor: int, shape=(4, 5, 6)) -> np.ndarray:
    """A label map with ``liver`` voxels labelled 1 or 2, the first ``tumor`` of them 2."""
    flat = np.zeros(int(np.prod(shape)), np.uint8)
    flat[:liver] = 1
    flat[:tumor] = 2
    return flat.reshape(shape)


def test_case_metrics_liver_is_labels_1_and_2():
    ref = label_map(liver=40, tumor=10)
    pred = ref.copy()
    pred[pred == 2] = 1  # every tumor voxel called liver: the liver is perfect, the tumor missed
    m = lits_case_metrics(pred, ref, (1.0, 1.0, 2.0))
    assert m["liver_dice"] == pytest.approx(1.0) and m["liver_assd"] == 0.0
    assert (m["tumor_dice"], m["tumor_rvd"]) == (0.0, -1.0) and math.isnan(m["tumor_assd"])
    assert m["liver_ref_ml"] == pytest.approx(40 * 2 / 1000)
    assert (m["tumor_burden_pred"], m["tumor_burden_ref"]) == (0.0, 0.25)
    channel_first = lits_case_metrics(pred[None], torch.as_tensor(ref[None]), (1.0, 1.0, 2.0))
    assert channel_first["tumor_ref_voxels"] == 10


def test_tumor_burden_of_empty_liver_is_zero():
    assert tumor_burden(np.zeros((3, 3, 3))) == 0.0
    assert tumor_burden(label_map(liver=8, tumor=2)) == 0.25


def test_summary_global_dice_and_burden_rmse_by_hand():
    spacing = (1.0, 1.0, 1.0)
    ref1 = label_map(liver=8, tumor=2)  # burden 0.25
    pred1 = label_map(liver=8, tumor=4)  # burden 0.5, liver perfect, tumor Dice 2*2/6
    ref2 = label_map(liver=10, tumor=0)  # no tumor: burden 0
    pred2 = label_map(liver=0, tumor=0)  # nothing predicted: burden 0, liver Dice 0
    cases = [lits_case_metrics(pred1, ref1, spacing), lits_case_metrics(pred2, ref2, spacing)]
    s = lits_summary(cases)
    assert s["n_cases"] == 2
    assert s["liver_dice"] == pytest.approx((1.0 + 0.0) / 2)  # Dice per case
    assert s["liver_dice_global"] == pytest.approx(2 * 8 / (8 + 8 + 0 + 10))
    assert s["tumor_dice"] == pytest.approx((4 / 6 + 1.0) / 2)  # case 2: both empty -> 1
    assert s["tumor_dice_global"] == pytest.approx(2 * 2 / (4 + 2))
    assert s["tumor_burden_rmse"] == pytest.approx(math.sqrt((0.25**2 + 0.0**2) / 2))
    assert s["tumor_burden_max_error"] == pytest.approx(0.25)
    # case 2's liver: prediction empty -> surface distances excluded (counted), RVD = -1 kept
    assert s["liver_surface_excluded"] == 1 and s["liver_rvd_excluded"] == 0
    assert s["liver_rvd"] == pytest.approx((0.0 + -1.0) / 2)
    assert s["liver_assd"] == 0.0  # the mean over case 1 only
    assert s["tumor_surface_excluded"] == 0  # case 2: both empty -> 0, not excluded


def test_summary_of_no_cases():
    s = lits_summary([])
    assert s["n_cases"] == 0 and math.isnan(s["liver_dice"]) and math.isnan(s["tumor_burden_rmse"])

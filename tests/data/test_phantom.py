"""Synthetic CT phantoms: HU per structure, anatomy, labels, tumours, geometry, files and previews."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest
from PIL import Image
from scipy import ndimage as ndi

from bundle.data.phantom import (
    NOMINAL_HU,
    ORIENTATIONS,
    case_seed,
    make_phantom,
    save_preview_png,
    write_phantom_dataset,
)

# Tissues large enough to have a core (voxels whose 3x3x3 neighbourhood is the same tissue) at 256².
BULK = (
    "air",
    "lung",
    "fat",
    "muscle",
    "bone_cancellous",
    "heart",
    "aorta",
    "ivc",
    "kidney_cortex",
    "kidney_medulla",
    "spleen",
    "stomach_content",
    "bowel_fluid",
    "gallbladder",
    "liver",
    "tumor_hypo",
    "tumor_hyper",
)
MUST_MEASURE = ("air", "lung", "fat", "muscle", "aorta", "spleen", "liver")
CUBE = np.ones((3, 3, 3), bool)


def _core(mask: np.ndarray) -> np.ndarray:
    return ndi.binary_erosion(mask, CUBE)


def _world_centroid(mask: np.ndarray, affine: np.ndarray) -> np.ndarray:
    ijk = np.argwhere(mask).mean(axis=0)
    return (affine @ np.r_[ijk, 1.0])[:3]


@pytest.fixture(scope="module", params=[0, 5])
def detailed_case(request):
    """A 256² case with fine voxels, so that even the kidney cortex has a core."""
    return make_phantom(request.param, size=256, num_slices=48, spacing=(0.7, 0.7, 2.0), return_masks=True)


def test_structure_hu_within_nominal_range(detailed_case):
    measured = {}
    for name, mask in detailed_case.masks.items():
        core = _core(mask)
        if name in BULK and core.sum() >= 50:
            measured[name] = float(detailed_case.image[core].mean())
            lo, hi = NOMINAL_HU[name]
            assert lo - 5 <= measured[name] <= hi + 5, (name, measured[name], (lo, hi))
    assert set(MUST_MEASURE) <= set(measured), sorted(measured)


def test_bone_bright_and_vessels_enhanced(detailed_case):
    image, masks = detailed_case.image, detailed_case.masks
    bone = image[_core(masks["bone_cortical"])]
    assert bone.mean() > 300 and np.percentile(bone, 99) > 600
    liver_mean = image[_core(masks["liver"])].mean()
    assert image[masks["hepatic_vessels"]].mean() > liver_mean + 40
    assert image[_core(masks["aorta"])].mean() > 150
    assert image[_core(masks["bowel_gas"])].mean() < -850


def test_liver_not_separable_by_intensity():
    lo, hi = NOMINAL_HU["liver"]
    assert NOMINAL_HU["spleen"][0] < hi and lo < NOMINAL_HU["spleen"][1]  # the nominal ranges overlap
    for seed in range(3):
        case = make_phantom(seed, size=128, num_slices=32, spacing=(0.8, 0.8, 2.0), return_masks=True)
        liver_lo, liver_hi = np.percentile(case.image[case.masks["liver"]], [5, 95])
        in_window = (case.image >= liver_lo) & (case.image <= liver_hi)
        spleen = case.image[case.masks["spleen"]]
        assert np.mean((spleen >= liver_lo) & (spleen <= liver_hi)) > 0.5
        assert np.sum(in_window & (case.label == 1)) / np.sum(in_window) < 0.6  # a HU window finds mostly non-liver


def test_lungs_in_top_slices_only():
    for seed in range(4):
        case = make_phantom(seed, size=96, orientation="RAS", spacing=(0.8, 0.8, 1.5), return_masks=True)
        per_slice = case.masks["lung"].sum(axis=(0, 1))  # RAS: the last slice is the top
        lung_slices = np.flatnonzero(per_slice)
        assert per_slice[-1] > 0
        assert np.array_equal(lung_slices, np.arange(lung_slices[0], len(per_slice)))  # contiguous from the top
        liver_bottom = np.argwhere(case.label > 0)[:, 2].min()
        assert (
            lung_slices[0] > liver_bottom and lung_slices[0] >= len(per_slice) // 2
        )  # lung bases, above the liver tip
        assert per_slice[-1] > 2 * per_slice[lung_slices[0]]  # shrinking towards the costophrenic recesses


def test_labels_and_tumours_inside_liver():
    counts, cross = [], ndi.generate_binary_structure(2, 1)[:, :, None]
    for seed in range(12):
        case = make_phantom(seed, size=64)
        assert case.image.dtype == np.int16 and case.label.dtype == np.uint8
        assert set(np.unique(case.label)) <= {0, 1, 2}
        assert np.any(case.label == 1)
        tumour = case.label == 2
        assert not np.any(ndi.binary_dilation(tumour, cross) & (case.label == 0)), seed  # liver all around
        counts.append(len(case.tumors))
        for t in case.tumors:
            assert t["kind"] in ("hypo", "hyper")
            if t["num_voxels"]:
                assert case.label[t["centre_voxel"]] == 2
    assert min(counts) >= 0 and max(counts) <= 6


def test_tumour_count_and_size_span():
    """Over many seeds: 0 to 6 tumours, diameters under 10 mm and over 50 mm (adult-equivalent), both kinds."""
    tumours, counts = [], []
    for seed in range(30):
        case = make_phantom(seed, size=256, num_slices=4)  # tumour placement does not depend on the grid
        counts.append(len(case.tumors))
        tumours += case.tumors
    diameters = [t["nominal_diameter_mm"] for t in tumours]
    assert min(counts) == 0 and max(counts) <= 6 and max(counts) >= 5
    assert min(diameters) < 10 and max(diameters) > 50
    assert {t["kind"] for t in tumours} == {"hypo", "hyper"}


def test_deterministic_by_seed():
    a, b, c = make_phantom(7, size=64), make_phantom(7, size=64), make_phantom(8, size=64)
    assert np.array_equal(a.image, b.image) and np.array_equal(a.label, b.label)
    assert np.array_equal(a.affine, b.affine) and a.tumors == b.tumors
    assert a.image.shape != c.image.shape or not np.array_equal(a.image, c.image)


def test_drawn_spacing_and_orientation_like_lits():
    orientations = set()
    for seed in range(20):
        case = make_phantom(seed, size=64)
        dx, dy, dz = case.spacing
        assert 0.55 <= dx <= 1.0 and dx == dy and 0.7 <= dz <= 5.0
        assert np.allclose(np.abs(np.diag(case.affine)[:3]), case.spacing)
        assert "".join(nib.aff2axcodes(case.affine)) == case.orientation
        orientations.add(case.orientation)
    assert len(orientations) >= 3


def test_orientation_keeps_world_anatomy():
    """Every orientation stores the same patient: equal arrays after reorienting to RAS, liver on the right."""
    ras = make_phantom(5, size=64, orientation="RAS")
    liver_ras = _world_centroid(ras.label > 0, ras.affine)
    for code in ORIENTATIONS:
        case = make_phantom(5, size=64, orientation=code)
        assert "".join(nib.aff2axcodes(case.affine)) == code
        canonical = nib.as_closest_canonical(nib.Nifti1Image(case.image, case.affine))
        assert np.array_equal(np.asarray(canonical.dataobj), ras.image)
        assert np.allclose(canonical.affine, ras.affine)
        liver = _world_centroid(case.label > 0, case.affine)
        body = _world_centroid(case.image > -500, case.affine)
        assert np.allclose(liver, liver_ras, atol=1e-3)
        assert liver[0] > body[0] + 5  # RAS+: +x is the patient's right, where the liver is


def test_same_anatomy_at_other_spacing():
    fine = make_phantom(11, size=96, spacing=(0.6, 0.6, 1.0), num_slices=80, orientation="LPS")
    coarse = make_phantom(11, size=96, spacing=(0.9, 0.9, 2.5), num_slices=32, orientation="LPS")
    volumes = [np.sum(c.label > 0) * np.prod(c.spacing) for c in (fine, coarse)]
    assert abs(volumes[0] - volumes[1]) < 0.1 * volumes[0]
    centroids = [_world_centroid(c.label > 0, c.affine) for c in (fine, coarse)]
    assert np.linalg.norm(centroids[0] - centroids[1]) < 2.0


def test_invalid_arguments():
    for kwargs in ({"orientation": "ASR"}, {"orientation": "XYZ"}, {"size": 8}, {"num_slices": 0}):
        with pytest.raises(ValueError):
            make_phantom(0, **{"size": 32, **kwargs})


def test_write_dataset_roundtrip(tmp_path):
    cases = write_phantom_dataset(tmp_path, num_cases=2, seed=3, size=48)
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "segmentation-0.nii.gz",
        "segmentation-1.nii.gz",
        "volume-0.nii.gz",
        "volume-1.nii.gz",
    ]  # no temporary files left behind
    for index, paths in enumerate(cases):
        expected = make_phantom(case_seed(3, index), size=48)
        image, label = nib.load(paths["image"]), nib.load(paths["label"])
        assert image.get_data_dtype() == np.int16 and label.get_data_dtype() == np.uint8
        assert np.array_equal(image.affine, expected.affine) and np.array_equal(label.affine, expected.affine)
        assert np.allclose(image.header.get_zooms(), expected.spacing)
        assert np.array_equal(np.asanyarray(image.dataobj), expected.image)
        assert np.array_equal(np.asanyarray(label.dataobj), expected.label)
    again = write_phantom_dataset(tmp_path / "chunk", num_cases=1, seed=3, size=48, start_index=1)
    assert Path(again[0]["image"]).name == "volume-1.nii.gz"
    assert np.array_equal(nib.load(again[0]["image"]).get_fdata(), nib.load(cases[1]["image"]).get_fdata())


def test_preview_png(tmp_path):
    case = make_phantom(2, size=64)
    i, j, k = np.argwhere(case.label > 0).mean(axis=0).astype(int)
    case.label[i - 2 : i + 3, j - 2 : j + 3, k] = 2  # a tumour in the slice the preview shows
    for source, colours in ((case, ("green", "red")), (write_phantom_dataset(tmp_path, 1, size=64)[0], ("green",))):
        png = save_preview_png(source, tmp_path / "preview.png")
        with Image.open(png) as img:
            assert img.mode == "RGB" and img.width >= 256
            r, g, b = np.moveaxis(np.asarray(img).astype(int), -1, 0)
        assert np.any((g > r + 60) & (g > b + 60))  # liver in green
        assert np.any((r > g + 60) & (r > b + 60)) or "red" not in colours  # tumour in red


def test_make_phantoms_script(tmp_path, repo_root):
    out = tmp_path / "data"
    cmd = [sys.executable, "scripts/make_phantoms.py", "--out", str(out), "--cases", "4", "--size", "64", "--preview"]
    subprocess.run(cmd, cwd=repo_root, check=True, capture_output=True, timeout=120)
    files = sorted(out.glob("*.nii.gz"))
    assert len(files) == 8 and len(list(out.glob("preview-*.png"))) == 4
    for path in files:
        img = nib.load(path)
        assert img.get_data_dtype() == (np.uint8 if path.name.startswith("segmentation") else np.int16)
        assert np.asanyarray(img.dataobj).shape[:2] == (64, 64)


def test_liver_side_matches_real_ct(real_data_dir):
    """The real TotalSegmentator CT has its liver on the same side of the body (+x in RAS) as the phantoms."""
    volume = nib.load(real_data_dir / "nifti" / "ts-ct_volume.nii.gz")
    liver = nib.load(real_data_dir / "nifti" / "ts-ct_liver.nii.gz")
    liver_x = _world_centroid(np.asanyarray(liver.dataobj) > 0, liver.affine)[0]
    body_x = _world_centroid(np.asanyarray(volume.dataobj) > -500, volume.affine)[0]
    assert liver_x > body_x + 20


def test_contrast_phase_enhances_liver_and_keeps_tumours_darker():
    """enhancement 0 is the phantom as before (same voxels); 1 is portal venous (liver 100-135 HU, hypodense
    tumours below it); a range draws the phase per case; anything outside [0, 1] is refused."""
    args = dict(size=128, num_slices=40, spacing=(0.8, 0.8, 2.5))
    seed = next(s for s in range(20) if any(t["kind"] == "hypo" for t in make_phantom(s, **args).tumors))
    plain, unenhanced = make_phantom(seed, **args), make_phantom(seed, enhancement=0.0, **args)
    np.testing.assert_array_equal(plain.image, unenhanced.image)
    enhanced = make_phantom(seed, enhancement=1.0, return_masks=True, **args)
    np.testing.assert_array_equal(plain.label, enhanced.label)
    liver = float(np.median(enhanced.image[_core(enhanced.masks["liver"])]))
    assert 95 <= liver <= 140, liver
    assert np.median(plain.image[plain.label == 1]) < liver - 20
    hypo = float(np.median(enhanced.image[_core(enhanced.masks["tumor_hypo"])]))
    assert liver - 95 <= hypo <= liver - 5, (liver, hypo)
    drawn = {make_phantom(s, enhancement=(0.25, 1.0), **args).enhancement for s in range(3)}
    assert all(0.25 <= e <= 1.0 for e in drawn) and len(drawn) == 3
    with pytest.raises(ValueError, match="enhancement"):
        make_phantom(seed, enhancement=1.5, **args)

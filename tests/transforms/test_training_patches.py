"""Training patches as the train config declares them: pad, liver/tumour-weighted crops, mirror, scaling 0.8-1.2.

Li et al. 2018, section IV-A: 224 x 224 x 12 input volumes, "random mirror and scaling between 0.8 and 1.2".
The tests use the same composition on the small phantom with a 24 x 24 x 8 patch.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from monai.transforms import (
    Compose,
    RandCropByLabelClassesd,
    RandFlipd,
    Randomizable,
    RandZoomd,
    ScaleIntensityRanged,
    SpatialPadd,
)

from bundle.transforms import LiverROId, load_ct_transforms

KEYS = ["image", "label"]


def deterministic_transforms(patch_size) -> list:
    """Shared by training and validation: read, window, liver ROI at least one patch large."""
    return [
        *load_ct_transforms(KEYS),
        ScaleIntensityRanged("image", a_min=-200, a_max=250, b_min=0.0, b_max=1.0, clip=True),
        LiverROId(KEYS, source_key="label", margin_mm=10.0, min_size=patch_size),
        SpatialPadd(KEYS, spatial_size=patch_size),  # where the image itself is smaller than a patch
    ]


def random_patch_transforms(patch_size, num_samples=4, ratios=(1, 1, 2), zoom_prob=0.5) -> list:
    return [
        RandCropByLabelClassesd(
            KEYS,
            label_key="label",
            spatial_size=patch_size,
            ratios=list(ratios),  # background, liver, tumour
            num_classes=3,
            num_samples=num_samples,
        ),
        RandFlipd(KEYS, prob=0.5, spatial_axis=0),  # mirror
        RandFlipd(KEYS, prob=0.5, spatial_axis=1),
        RandZoomd(KEYS, prob=zoom_prob, min_zoom=0.8, max_zoom=1.2, mode=("bilinear", "nearest"), keep_size=True),
    ]


def _paths(phantom_files) -> dict:
    return {k: str(v) for k, v in phantom_files["nifti_las"].items()}


@pytest.mark.parametrize("patch_size", [(24, 24, 8), (24, 24, 20)], ids=["fits", "padded_depth"])
def test_patch_shapes_and_label_values(phantom_files, patch_size):
    train = Compose(deterministic_transforms(patch_size) + random_patch_transforms(patch_size, zoom_prob=1.0))
    train.set_random_state(0)
    for _ in range(3):
        samples = train(_paths(phantom_files))
        assert len(samples) == 4
        for s in samples:
            assert s["image"].shape == (1, *patch_size) and s["label"].shape == (1, *patch_size)
            assert set(torch.unique(s["label"]).tolist()) <= {0.0, 1.0, 2.0}  # nearest zoom: no new values
            assert 0.0 <= float(s["image"].min()) and float(s["image"].max()) <= 1.0


def test_tumour_over_represented_in_patches(phantom_files):
    """With ratios [1, 1, 2] half the patch centres are tumour voxels: tumour is far denser in patches."""
    patch = (24, 24, 8)
    volume = Compose(deterministic_transforms(patch))(_paths(phantom_files))
    roi_fraction = float((volume["label"] == 2).float().mean())
    whole_fraction = float((volume["label"] == 2).sum()) / (48 * 40 * 16)
    train = Compose(deterministic_transforms(patch) + random_patch_transforms(patch, num_samples=8))
    train.set_random_state(1)
    fractions, liver_fractions = [], []
    for _ in range(4):
        for s in train(_paths(phantom_files)):
            fractions.append(float((s["label"] == 2).float().mean()))
            liver_fractions.append(float((s["label"] > 0).float().mean()))
    assert np.mean(fractions) > 2 * roi_fraction > 2 * whole_fraction
    assert np.mean(np.asarray(fractions) > 0) > 0.4  # about half the patches contain tumour
    assert np.mean(liver_fractions) > float((volume["label"] > 0).float().mean())


def test_validation_is_deterministic(phantom_files):
    patch = (24, 24, 8)
    val = Compose(deterministic_transforms(patch))
    assert not any(isinstance(t, Randomizable) for t in val.transforms)
    a, b = val(_paths(phantom_files)), val(_paths(phantom_files))
    for key in KEYS:
        assert torch.equal(a[key].as_tensor(), b[key].as_tensor())
    np.testing.assert_array_equal(a["liver_roi_box"], b["liver_roi_box"])


def test_augmentation_changes_patches_but_keeps_pairs_aligned(phantom_files):
    """Flip and zoom act on image and label together: the liver label still covers liver-intensity voxels."""
    patch = (24, 24, 8)
    train = Compose(deterministic_transforms(patch) + random_patch_transforms(patch, zoom_prob=1.0))
    train.set_random_state(3)
    liver_window = (60 + 200) / 450  # 60 HU liver after the window
    for s in train(_paths(phantom_files)):
        liver = s["label"][0] == 1
        if liver.sum() > 50:
            assert float(s["image"][0][liver].median()) == pytest.approx(liver_window, abs=0.05)

"""LiverROI / LiverROId: box of the liver mask + margin in mm, minimum size, empty-mask fallback, paste-back."""

from __future__ import annotations

import logging

import numpy as np
import pytest
import torch
from monai.data import MetaTensor
from monai.transforms import Compose, Invertd

from bundle.networks import LiverTumorCascade
from bundle.transforms import LiverROI, LiverROId, load_ct_transforms

SPACING = (0.8, 0.7, 2.5)
AFFINE = torch.tensor(
    [[0.8, 0, 0, -20.0], [0, 0.7, 0, 15.0], [0, 0, 2.5, -30.0], [0, 0, 0, 1]], dtype=torch.float64
)  # RAS, anisotropic


def _volumes(box=((20, 30), (10, 20), (6, 9)), shape=(48, 40, 16)):
    image = MetaTensor(torch.randn(1, *shape), affine=AFFINE)
    mask = torch.zeros(1, *shape)
    (a0, b0), (a1, b1), (a2, b2) = box
    mask[0, a0:b0, a1:b1, a2:b2] = 1
    return image, MetaTensor(mask, affine=AFFINE)


@pytest.mark.parametrize(
    "margin_mm, expected_margin_vox",
    [
        ((4.0, 7.0, 5.0), (5, 10, 2)),  # 4 / 0.8, 7 / 0.7, 5 / 2.5
        (10.0, (13, 15, 4)),  # ceil(12.5), ceil(14.29), 4: never less than the margin asked for
        (0.0, (0, 0, 0)),
    ],
)
def test_margin_in_mm_on_anisotropic_spacing(margin_mm, expected_margin_vox):
    image, mask = _volumes()
    d = LiverROId(["image", "label"], source_key="label", margin_mm=margin_mm)({"image": image, "label": mask})
    m = np.asarray(expected_margin_vox)
    start = np.maximum(np.array([20, 10, 6]) - m, 0)
    end = np.minimum(np.array([30, 20, 9]) + m, [48, 40, 16])
    np.testing.assert_array_equal(d["liver_roi_box"], np.stack([start, end]))
    assert d["image"].shape == (1, *(end - start)) and d["label"].shape == d["image"].shape
    assert int(d["label"].sum()) == int(mask.sum())  # the whole liver is inside
    # voxel (0, 0, 0) of the crop is voxel `start` of the full volume in world coordinates
    np.testing.assert_allclose(d["image"].affine.numpy() @ [0, 0, 0, 1], AFFINE.numpy() @ [*start, 1])


def test_margin_clipped_to_image():
    _, mask = _volumes(box=((0, 5), (35, 40), (0, 16)))
    start, end = LiverROI(margin_mm=20.0).compute_bounding_box(mask)
    np.testing.assert_array_equal(start, [0, 35 - 29, 0])
    np.testing.assert_array_equal(end, [5 + 25, 40, 16])


def test_min_size_centred_and_clipped():
    image, mask = _volumes(box=((20, 30), (2, 6), (6, 9)))
    roi = LiverROI(margin_mm=0.0, min_size=(24, 16, 32))
    start, end = roi.compute_bounding_box(mask)
    # axis 0 centred; axis 1 centred then clipped at the edge (as inference does: SpatialPad fills the patch);
    # axis 2 whole (16 < 32)
    np.testing.assert_array_equal(start, [13, 0, 0])
    np.testing.assert_array_equal(end, [37, 12, 16])
    assert roi(image, mask).shape == (1, 24, 12, 16)


@pytest.mark.parametrize(
    "box",
    [
        ((0, 5), (35, 40), (0, 16)),  # touching both ends of the volume
        ((1, 3), (2, 6), (14, 15)),  # within the margin and the patch of the edges
        ((20, 30), (10, 20), (6, 9)),  # inside
    ],
)
def test_training_crops_the_box_inference_crops(box):
    """One liver-box rule: LiverROI (training) and LiverTumorCascade.liver_box (inference) agree, edges included."""
    _, mask = _volumes(box=box)
    margin_mm, patch = (10.0, 10.0, 5.0), (24, 16, 12)
    start, end = LiverROI(margin_mm=margin_mm, min_size=patch).compute_bounding_box(mask)
    cascade = LiverTumorCascade(size="small", roi_margin_mm=margin_mm, patch_size=patch)
    assert cascade.liver_box(mask[0].bool(), SPACING) == list(zip(start.tolist(), end.tolist()))


def test_empty_mask_falls_back_to_whole_volume(caplog):
    image, mask = _volumes()
    with caplog.at_level(logging.WARNING, logger="bundle.transforms.liver_roi"):
        d = LiverROId(["image", "label"], source_key="label", min_size=(24, 24, 12))(
            {"image": image, "label": mask * 0}
        )
    assert "empty liver mask" in caplog.text
    assert d["image"].shape == image.shape
    np.testing.assert_array_equal(d["liver_roi_box"], [[0, 0, 0], [48, 40, 16]])


def test_array_transform_and_mask_defaults():
    image, mask = _volumes()
    out = LiverROI(margin_mm=0.0)(image, mask)
    assert torch.equal(out.as_tensor(), image[:, 20:30, 10:20, 6:9].as_tensor())
    # without a mask, the image itself is the mask (values > 0)
    assert LiverROI(margin_mm=0.0)(mask).shape == (1, 10, 10, 3)
    with pytest.raises(ValueError, match="does not match"):
        LiverROI()(image, mask[:, :10])


def test_source_key_plain_tensor_uses_image_spacing():
    """At inference the mask is the coarse prediction; without its own affine the image's voxel size is used."""
    image, mask = _volumes()
    d = LiverROId("image", source_key="coarse_pred", margin_mm=(8.0, 7.0, 5.0), box_key="box")(
        {"image": image, "coarse_pred": mask.as_tensor()}
    )
    np.testing.assert_array_equal(d["box"], [[10, 0, 4], [40, 30, 11]])
    assert d["coarse_pred"].shape == mask.shape  # not among keys: left alone


def test_prediction_pasted_back_on_original_grid(phantom_files, phantom):
    """Load (LAS NIfTI) -> RAS -> ROI; a prediction inside the ROI goes back by Invertd onto the file's grid."""
    _, label, _ = phantom
    pre = Compose(
        [
            *load_ct_transforms(["image", "label"]),
            LiverROId(["image", "label"], source_key="label", margin_mm=5.0, min_size=(24, 24, 12)),
        ]
    )
    paths = phantom_files["nifti_las"]
    d = pre({"image": str(paths["image"]), "label": str(paths["label"])})
    box = d["liver_roi_box"]
    assert np.all(box[1] - box[0] >= [24, 24, 12]) and d["image"].shape[1:] == tuple(box[1] - box[0])
    # a 3-class one-hot "prediction" of the ROI, as the network would give
    d["pred"] = MetaTensor(torch.nn.functional.one_hot(d["label"][0].long(), 3).permute(3, 0, 1, 2).float())
    out = Invertd("pred", transform=pre, orig_keys="image", nearest_interp=True)(d)["pred"]
    full = out.argmax(0).numpy()
    las_label = np.flip(label, axis=0)  # the file stores the first axis Left-ward
    np.testing.assert_array_equal(full, las_label)
    np.testing.assert_allclose(out.affine.numpy(), d["image"].meta["original_affine"], atol=1e-5)
    assert out.sum(0).amin() == 0  # outside the ROI every channel is 0 (argmax: background)


@pytest.mark.real_data
def test_real_liver_roi_contains_the_liver(real_data_dir):
    """ts-ct (3 mm): the 10 mm margin is 4 voxels; all liver voxels stay inside; inverse restores the label."""
    pre = Compose(
        [*load_ct_transforms(["image", "label"]), LiverROId(["image", "label"], source_key="label", margin_mm=10.0)]
    )
    d = pre(
        {
            "image": str(real_data_dir / "nifti/ts-ct_volume.nii.gz"),
            "label": str(real_data_dir / "nifti/ts-ct_liver.nii.gz"),
        }
    )
    full = pre.inverse(d)["label"]
    box = d["liver_roi_box"]
    liver = np.argwhere(full[0].numpy() > 0)
    np.testing.assert_array_equal(np.maximum(liver.min(0) - 4, 0), box[0])
    np.testing.assert_array_equal(np.minimum(liver.max(0) + 1 + 4, full.shape[1:]), box[1])
    assert int(d["label"].sum()) == int(full.sum())

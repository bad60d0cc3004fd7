"""Paper III-C-3 post-processing: thresholding, largest liver component, hole filling, tumors inside the liver."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from monai.data import MetaTensor

from bundle.inference.postprocessing import (
    LiverTumorCleanup,
    LiverTumorCleanupd,
    LiverTumorThreshold,
    LiverTumorThresholdd,
)


def probabilities(p_liver: list[float], p_tumor: list[float]) -> torch.Tensor:
    """(3, N, 1, 1) softmax-like probabilities from per-voxel liver and tumor probabilities."""
    liver = torch.tensor(p_liver, dtype=torch.float32)
    tumor = torch.tensor(p_tumor, dtype=torch.float32)
    return torch.stack([1 - liver - tumor, liver, tumor])[:, :, None, None]


def test_threshold_liver_region_is_liver_plus_tumor_probability():
    prob = probabilities([0.1, 0.3, 0.6, 0.3, 0.2, 0.0], [0.1, 0.3, 0.1, 0.5, 0.45, 0.4])
    out = LiverTumorThreshold()(prob)
    assert out.shape == (1, 6, 1, 1) and out.dtype == torch.uint8
    # voxel 1: p_liver + p_tumor = 0.6 -> liver, p_tumor 0.3 -> not tumor; voxel 3: tumor 0.5 -> tumor;
    # voxel 4: 0.65 liver region, tumor 0.45 < 0.5 -> liver; voxel 5: region 0.4 < 0.5 -> background
    assert out[0, :, 0, 0].tolist() == [0, 1, 1, 2, 1, 0]


def test_threshold_custom_thresholds_numpy_and_logits():
    prob = probabilities([0.1, 0.3, 0.6], [0.1, 0.3, 0.1])
    out = LiverTumorThreshold(liver_threshold=0.3, tumor_threshold=0.25)(prob.numpy())
    assert isinstance(out, np.ndarray) and out.dtype == np.uint8
    assert out[0, :, 0, 0].tolist() == [0, 2, 1]
    logits = torch.log(prob.clamp_min(1e-6)) + 3.0  # softmax(log p + c) == p
    assert torch.equal(LiverTumorThreshold(softmax=True)(logits), LiverTumorThreshold()(prob))
    meta = MetaTensor(prob, affine=torch.diag(torch.tensor([0.7, 0.7, 5.0, 1.0], dtype=torch.float64)))
    out = LiverTumorThreshold()(meta)
    assert isinstance(out, MetaTensor) and out.shape == (1, 3, 1, 1) and out.affine[2, 2] == 5.0


def test_threshold_rejects_wrong_channels():
    with pytest.raises(ValueError, match="background/liver/tumor"):
        LiverTumorThreshold()(torch.zeros(2, 4, 4, 4))
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        LiverTumorThreshold(liver_threshold=1.5)


def messy_prediction() -> tuple[np.ndarray, np.ndarray]:
    """(1, 12, 12, 10) label map with a liver block containing a tumor and an enclosed hole, a detached false-positive
    blob of liver+tumor, and a tumor voxel outside the liver; and the expected cleaned map."""
    label = np.zeros((1, 12, 12, 10), np.uint8)
    label[0, 1:7, 1:7, 1:7] = 1  # liver block, 216 voxels
    label[0, 2:4, 2:4, 2:4] = 2  # a tumor inside the liver
    label[0, 4, 4, 4] = 0  # a hole, enclosed in 3D
    label[0, 9:11, 9:11, 7:9] = 1  # detached false positive, 8 voxels
    label[0, 9, 9, 7] = 2  # ... with a "tumor" in it
    label[0, 9, 2, 2] = 2  # a lone tumor voxel outside the liver
    expected = np.zeros_like(label)
    expected[0, 1:7, 1:7, 1:7] = 1  # hole filled as liver
    expected[0, 2:4, 2:4, 2:4] = 2
    return label, expected


def test_cleanup_exactly_as_expected():
    label, expected = messy_prediction()
    out = LiverTumorCleanup()(label)
    assert isinstance(out, np.ndarray) and out.dtype == label.dtype and out.shape == label.shape
    np.testing.assert_array_equal(out, expected)


def test_cleanup_keeps_metatensor_meta_and_type():
    label, expected = messy_prediction()
    affine = torch.diag(torch.tensor([0.8, 0.8, 5.0, 1.0], dtype=torch.float64))
    img = MetaTensor(torch.as_tensor(label), affine=affine, meta={"filename_or_obj": "case_0.nii.gz"})
    out = LiverTumorCleanup()(img)
    assert isinstance(out, MetaTensor) and out.dtype == torch.uint8 and out.device == img.device
    assert torch.equal(out.affine, affine) and out.meta["filename_or_obj"] == "case_0.nii.gz"
    np.testing.assert_array_equal(out.numpy(), expected)


def test_cleanup_without_hole_filling_and_empty_input():
    label, expected = messy_prediction()
    out = LiverTumorCleanup(fill_holes=False)(torch.as_tensor(label))
    expected[0, 4, 4, 4] = 0
    np.testing.assert_array_equal(out.numpy(), expected)
    empty = torch.zeros(1, 4, 4, 4, dtype=torch.uint8)
    assert torch.equal(LiverTumorCleanup()(empty), empty)
    with pytest.raises(ValueError, match="one-channel"):
        LiverTumorCleanup()(torch.zeros(3, 4, 4, 4))


def test_cleanup_connectivity_decides_diagonal_neighbours():
    label = np.zeros((1, 6, 6, 6), np.uint8)
    label[0, 0:3, 0:3, 0:3] = 1  # 27 voxels
    label[0, 3, 3, 3] = 1  # touches the block at a corner only
    assert LiverTumorCleanup()(label)[0, 3, 3, 3] == 1  # 26-connectivity (default): one component
    assert LiverTumorCleanup(connectivity=1)(label)[0, 3, 3, 3] == 0  # 6-connectivity: detached


def test_dictionary_versions_chain():
    label, expected = messy_prediction()
    prob = np.zeros((3, *label.shape[1:]), np.float32)
    for value in range(3):
        prob[value][label[0] == value] = 1.0
    data = {"pred": torch.as_tensor(prob), "image": torch.ones(1, 2, 2, 2)}
    data = LiverTumorThresholdd(keys="pred")(data)
    data = LiverTumorCleanupd(keys=["pred", "missing"], allow_missing_keys=True)(data)
    np.testing.assert_array_equal(data["pred"].numpy(), expected)
    assert torch.equal(data["image"], torch.ones(1, 2, 2, 2))
    with pytest.raises(KeyError):
        LiverTumorCleanupd(keys="missing")(data)

"""The cascade's voxel arithmetic, and restrict_to_coarse keeping liver and tumor near the coarse liver only."""

from __future__ import annotations

import torch
from monai.data import MetaTensor
from torch import nn

from bundle.networks import LiverTumorCascade
from bundle.networks.volume_geometry import dilate_box, liver_roi_box, resampled_size, voxel_spacings


def test_resampled_size_and_spacings():
    assert resampled_size((100, 80, 30), (0.5, 0.5, 3.0), (1.0, 1.0, -1)) == [50, 40, 30]
    assert resampled_size((100, 80, 30), (0.5, 0.5, 3.0), None) == [100, 80, 30]
    x = MetaTensor(
        torch.zeros(2, 1, 4, 4, 4), affine=torch.diag(torch.tensor([0.7, 0.7, 2.5, 1.0], dtype=torch.float64))
    )
    assert voxel_spacings(x, 2, (1.0, 1.0, 1.0)) == [(0.7, 0.7, 2.5)] * 2


def test_liver_roi_box_at_the_volume_edges():
    spacing, margin = (0.8, 0.7, 2.5), (10.0, 10.0, 5.0)  # margins of ceil(12.5) = 13, ceil(14.29) = 15, 2 voxels
    shape = (48, 40, 16)
    # inside: margin only
    assert liver_roi_box((20, 10, 6), (30, 20, 9), shape, spacing, margin) == [(7, 43), (0, 35), (4, 11)]
    # at the low and the high edge: the margin is clipped, not shifted back inside
    assert liver_roi_box((0, 35, 14), (5, 40, 16), shape, spacing, margin) == [(0, 18), (20, 40), (12, 16)]
    # grown to the patch about the centre, then clipped: narrower than the patch at the edges
    assert liver_roi_box((0, 38, 15), (2, 40, 16), shape, spacing, (0, 0, 0), (24, 16, 12)) == [
        (0, 13),
        (31, 40),
        (10, 16),
    ]
    # an axis shorter than the patch: the whole axis
    assert liver_roi_box((5, 5, 5), (6, 6, 6), (10, 10, 10), (1, 1, 1), (0, 0, 0), (32, 32, 32)) == [(0, 10)] * 3
    # a margin of a whole number of voxels is that number, not one more
    assert liver_roi_box((10,), (11,), (40,), (0.7,), (7.0,)) == [(0, 21)]


def test_dilate_box_grows_by_the_radius_per_axis():
    mask = torch.zeros(9, 9, 9, dtype=torch.bool)
    mask[4, 4, 4] = True
    grown = dilate_box(mask, [2, 1, 0])
    assert grown.sum() == 5 * 3 * 1 and grown[2:7, 3:6, 4].all()


class _LiverOnTheLeft(nn.Module):
    """Coarse logits: liver in the first 8 columns of axis 0, background elsewhere."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        logits = torch.zeros(x.shape[0], 2, *x.shape[2:])
        logits[:, 1, :8] = 10.0
        logits[:, 0, 8:] = 10.0
        return logits


class _AllTumor(nn.Module):
    """A liver/tumor network that calls everything tumor."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        logits = torch.zeros(x.shape[0], 3, *x.shape[2:])
        logits[:, 2] = 10.0
        return logits


def test_restrict_to_coarse_keeps_foreground_within_the_margin_of_the_coarse_liver():
    kwargs = {"coarse": _LiverOnTheLeft(), "fine": _AllTumor(), "patch_size": (32, 32, 4), "roi_margin_mm": (4, 0, 0)}
    kwargs["coarse_spacing"] = (1.0, 1.0, 1.0)
    volume = MetaTensor(torch.rand(1, 1, 32, 16, 4), affine=torch.eye(4, dtype=torch.float64))
    free = LiverTumorCascade(**kwargs).eval()(volume).argmax(1)[0]
    kept = LiverTumorCascade(restrict_to_coarse="true", **kwargs).eval()(volume).argmax(1)[0]
    # the ROI: liver columns 0-7 and 4 mm, grown towards the 32-voxel patch and clipped: columns 0-19
    assert (free[:20] == 2).all() and (free[20:] == 0).all()  # the fine network decided everywhere in it
    assert (kept[:12] == 2).all() and (kept[12:] == 0).all()  # only within 4 mm of the coarse liver

"""Validation runs the inference path: CascadeStageInferer gives what the deployed cascade computes."""

from __future__ import annotations

import pytest
import torch
from monai.data import MetaTensor
from torch import nn

from bundle.inference import CascadeStageInferer
from bundle.networks import LiverTumorCascade


def _all_liver_coarse() -> nn.Module:
    """A coarse network that calls every voxel liver, so the cascade's ROI is the whole volume."""
    coarse = nn.Conv3d(1, 2, 1)
    nn.init.zeros_(coarse.weight)
    coarse.bias.data = torch.tensor([0.0, 10.0])
    return coarse


@pytest.mark.parametrize("fine_spacing", [None, (1.5, 1.5, -1.0)])
def test_validation_of_the_joint_stage_equals_the_deployed_cascade(fine_spacing):
    torch.manual_seed(0)
    kwargs = {"size": "small", "patch_size": (32, 32, 4), "coarse": _all_liver_coarse(), "fine_spacing": fine_spacing}
    net = LiverTumorCascade(stage="joint", **kwargs).eval()
    spacing = (1.5, 1.5, 2.0) if fine_spacing else (1.0, 1.0, 2.0)
    affine = torch.diag(torch.tensor([*spacing, 1.0], dtype=torch.float64))
    volume = MetaTensor(torch.rand(1, 1, 64, 48, 10), affine=affine)
    validated = CascadeStageInferer()(volume, net)  # the ROI as training's validation sees it (here: everything)
    deployed = net.set_stage("cascade")(volume)
    assert validated.shape == deployed.shape == (1, 3, 64, 48, 10)
    assert torch.allclose(validated, deployed, atol=1e-5)


def test_fine_spacing_resamples_the_roi_and_returns_the_input_grid():
    torch.manual_seed(0)
    net = LiverTumorCascade(
        size="small", patch_size=(32, 32, 4), coarse=_all_liver_coarse(), fine_spacing=(2.0, 2.0, -1), stage="cascade"
    ).eval()
    seen = []
    original = net.roi_probabilities
    net.roi_probabilities = lambda roi: seen.append(tuple(roi.shape[2:])) or original(roi)
    affine = torch.diag(torch.tensor([1.0, 1.0, 3.0, 1.0], dtype=torch.float64))
    out = net(MetaTensor(torch.rand(1, 1, 64, 40, 6), affine=affine))
    assert seen == [(32, 20, 6)]  # 1 mm -> 2 mm in-plane, the slices as they are
    assert out.shape == (1, 3, 64, 40, 6) and torch.allclose(out.exp().sum(1), torch.ones(1, 64, 40, 6), atol=1e-4)


def test_coarse_stage_validation_is_the_whole_slice_path():
    torch.manual_seed(0)
    net = LiverTumorCascade(size="small", patch_size=(32, 32, 4), stage="coarse").eval()
    volume = torch.rand(1, 1, 40, 56, 5)
    with torch.no_grad():
        expected = net.coarse(volume)  # whole slices are what the coarse network computes; 40, 56 divisible by 8
    assert torch.allclose(CascadeStageInferer()(volume, net), expected, atol=1e-4)
    with pytest.raises(ValueError, match="eval mode"):
        CascadeStageInferer()(volume, net.train())

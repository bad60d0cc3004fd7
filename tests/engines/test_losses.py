"""The training losses: eq. (5) against a hand computation, eq. (6) on H-DenseUNet's joint output, and the
``seg_loss`` choice of configs/train.yaml (RA-UNet's Dice loss)."""

from __future__ import annotations

import math

import pytest
import torch
from monai.bundle import ConfigParser
from monai.losses import DiceLoss

from bundle.engines import HybridLoss, WeightedCrossEntropyLoss

from .bundle_runs import REPO


def test_weighted_cross_entropy_divides_by_the_number_of_voxels():
    logits = torch.log(torch.tensor([[0.7, 0.2, 0.1], [0.1, 0.3, 0.6]])).T.reshape(1, 3, 2, 1)  # two voxels
    target = torch.tensor([0, 2]).reshape(1, 1, 2, 1)
    loss = WeightedCrossEntropyLoss([0.78, 0.65, 8.57])(logits, target)
    expected = -(0.78 * math.log(0.7) + 8.57 * math.log(0.6)) / 2  # N = 2 voxels, not the sum of the weights
    assert loss.item() == pytest.approx(expected, rel=1e-5)
    with pytest.raises(ValueError, match="2 class weights for 3 output channels"):
        WeightedCrossEntropyLoss([1.0, 1.0])(logits, target)


def test_hybrid_loss_weights_the_2d_output_by_lambda():
    torch.manual_seed(0)
    fused, two_d = torch.randn(2, 3, 4, 4, 2), torch.randn(2, 3, 4, 4, 2)
    target = torch.randint(0, 3, (2, 1, 4, 4, 2))
    base = WeightedCrossEntropyLoss([0.78, 0.65, 8.57])
    joint = HybridLoss(base, lambda_2d=0.5)(torch.stack([fused, two_d], dim=1), target)
    assert joint.item() == pytest.approx((base(fused, target) + 0.5 * base(two_d, target)).item(), rel=1e-5)
    assert HybridLoss(base)(fused, target).item() == pytest.approx(base(fused, target).item())


@pytest.mark.parametrize("seg_loss, expected", [("weighted_ce", WeightedCrossEntropyLoss), ("dice", DiceLoss)])
def test_train_config_selects_the_segmentation_loss(seg_loss, expected):
    parser = ConfigParser()
    parser.read_config(str(REPO / "configs" / "train.yaml"))
    parser.update({"seg_loss": seg_loss, "stage_now": "joint", "bundle_root": str(REPO)})
    loss = parser.get_parsed_content("loss")
    assert isinstance(loss, HybridLoss) and isinstance(loss.loss, expected)
    perfect = torch.full((1, 3, 4, 4, 2), -20.0)
    perfect[:, 1] = 20.0
    value = loss(perfect, torch.ones(1, 1, 4, 4, 2)).item()
    assert value == pytest.approx(0.0, abs=1e-4)  # a confident, correct prediction


def test_liver_or_tumor_voxels_take_the_marginal_loss():
    """Label 3 (a liver-only case's liver): -w_liver log(p_liver + p_tumor), blind to how liver and tumor share it."""
    probs = torch.tensor([[0.2, 0.5, 0.3], [0.2, 0.1, 0.7]]).T.reshape(1, 3, 2, 1)  # two voxels, same background
    target = torch.tensor([3, 3]).reshape(1, 1, 2, 1)
    loss = WeightedCrossEntropyLoss([0.78, 0.65, 8.57])(torch.log(probs), target)
    assert loss.item() == pytest.approx(-0.65 * math.log(0.8), rel=1e-5)
    mixed = torch.tensor([1, 3]).reshape(1, 1, 2, 1)
    expected = -(0.65 * math.log(0.5) + 0.65 * math.log(0.8)) / 2
    assert WeightedCrossEntropyLoss([0.78, 0.65, 8.57])(torch.log(probs), mixed).item() == pytest.approx(expected)
    with pytest.raises(ValueError, match="needs 3 output channels"):
        WeightedCrossEntropyLoss()(torch.zeros(1, 4, 2, 1), target)
    with pytest.raises(ValueError, match=r"outside 0\.\.2"):
        WeightedCrossEntropyLoss()(torch.zeros(1, 3, 2, 1), torch.tensor([0, 4]).reshape(1, 1, 2, 1))

"""Test-time mirroring in LiverTumorCascade: probabilities averaged over every flip combination of mirror_axes."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from bundle.networks import LiverTumorCascade


def run_whole(x: torch.Tensor, net: nn.Module) -> torch.Tensor:
    """An inferer that runs the network once on the whole input."""
    return net(x)


def cascade_with(fine: nn.Module | None = None, **kwargs) -> LiverTumorCascade:
    torch.manual_seed(0)
    return LiverTumorCascade(size="small", patch_size=(32, 32, 4), stage="cascade", fine=fine, **kwargs).eval()


def test_mirroring_averages_the_flipped_passes():
    torch.manual_seed(1)
    fine = nn.Conv3d(1, 3, 3, padding=1)  # random 3x3x3 kernel: not symmetric, so flipping changes its output
    roi = torch.rand(1, 1, 8, 6, 4)
    with torch.no_grad():
        expected = (
            sum(
                torch.flip(torch.softmax(fine(torch.flip(roi, dims)), dim=1), dims)
                if dims
                else torch.softmax(fine(roi), 1)
                for dims in ([], [2], [4], [2, 4])
            )
            / 4
        )
        mirrored = cascade_with(fine, mirror_axes=(2, 0)).mirrored_probabilities(roi, run_whole)
        plain = cascade_with(fine).mirrored_probabilities(roi, run_whole)
    assert torch.allclose(mirrored, expected, atol=1e-6)
    assert torch.allclose(plain, torch.softmax(fine(roi), dim=1).detach(), atol=1e-6)
    assert (mirrored - plain).abs().max() > 1e-3


def test_mirrored_cascade_returns_log_probabilities_on_the_input_grid():
    x = torch.rand(1, 1, 40, 36, 5)
    with torch.no_grad():
        out = cascade_with(mirror_axes=(0, 1))(x)
    assert out.shape == (1, 3, 40, 36, 5) and (out <= 0).all()
    assert torch.allclose(out.exp().sum(1), torch.ones(1, 40, 36, 5), atol=1e-4)


def test_rejects_non_spatial_axes():
    with pytest.raises(ValueError, match="mirror_axes"):
        cascade_with(mirror_axes=(3,))

"""The paper's ablation (Table II) as liver/tumor networks of the cascade: 2D DenseUNet alone, 3D DenseUNet alone.

Both take the cascade's input ``(N, 1, H, W, D)`` and return logits ``(N, 3, H, W, D)``, so they train and run
through the same configs as H-DenseUNet (``--network_name denseunet2d`` / ``denseunet3d``, stages coarse and joint).
"""

from __future__ import annotations

import torch
from torch import nn

from .denseunet import DenseUNet
from .presets import dense2d_config, dense3d_config
from .slices import slices_from_volume, volume_from_slices

__all__ = ["DenseUNet2DOnly", "DenseUNet3DOnly"]


class DenseUNet2DOnly(nn.Module):
    """2D DenseUNet-167 on three-adjacent-slice stacks (F), logits mapped back to the volume (F⁻¹).

    Args:
        in_channels: image channels ``C`` (the 2D net sees ``3C``).
        out_channels: classes.
        size: ``"paper"`` (DenseUNet-167) or ``"small"``.
    """

    def __init__(self, in_channels: int = 1, out_channels: int = 3, size: str = "paper") -> None:
        super().__init__()
        self.net = DenseUNet(2, 3 * in_channels, out_channels, **dense2d_config(size))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``(N, C, H, W, D)`` -> ``(N, out_channels, H, W, D)``; H and W divisible by 32."""
        return volume_from_slices(self.net(slices_from_volume(x))[1], x.shape[0])


class DenseUNet3DOnly(nn.Module):
    """3D DenseUNet-65 on the image alone (no 2D probabilities), the paper's "3D DenseUNet" row.

    Args:
        in_channels: image channels.
        out_channels: classes.
        size: ``"paper"`` (DenseUNet-65) or ``"small"``.
    """

    def __init__(self, in_channels: int = 1, out_channels: int = 3, size: str = "paper") -> None:
        super().__init__()
        self.net = DenseUNet(3, in_channels, out_channels, **dense3d_config(size))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``(N, C, H, W, D)`` -> ``(N, out_channels, H, W, D)``; H and W divisible by 32, D by 4."""
        return self.net(x)[1]

"""Coarse liver network: a 2.5D residual U-Net for the first stage of the cascade (Fig. 2a of Li et al. 2018).

Li et al. first run "a simple ResNet architecture [34]" (Han 2017, ISBI LiTS challenge) to get a quick coarse
liver mask, whose bounding box is the region of interest of H-DenseUNet. Han's network is a 2.5D FCN: a stack of
adjacent axial slices (5 in Han 2017) goes through a 2D U-Net whose levels are residual blocks, with long UNet
connections. This module builds that network from MONAI's :class:`~monai.networks.nets.UNet` with residual units
(``num_res_units=2``: each level is two conv-BN-ReLU subunits plus a residual path), not a layer-by-layer copy
of Han's model.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
import torch.nn as nn
from monai.networks.nets import UNet

from .presets import coarse_config
from .slices import slices_from_volume, volume_from_slices

__all__ = ["CoarseLiverNet"]


class CoarseLiverNet(nn.Module):
    """2.5D residual U-Net: ``(N, C, H, W, D)`` volume -> ``(N, out_channels, H, W, D)`` logits, slice by slice.

    Every axial slice is stacked with its ``num_adjacent_slices // 2`` neighbours on each side (edge slices
    repeated), the ``N·D`` stacks go through a 2D residual U-Net as one batch, and the 2D logits are put back on
    the volume.

    Args:
        in_channels: image channels ``C`` (1: HU-windowed CT scaled to [0, 1]).
        out_channels: classes (2: background, liver).
        size: ``"paper"`` or ``"small"``, the presets of :func:`bundle.networks.presets.coarse_config`.
        num_adjacent_slices: odd stack depth: 3 (as H-DenseUNet's 2D branch) or 5 (as Han 2017).
        channels: U-Net widths per level; ``None`` takes the preset.
        strides: U-Net downsampling strides; ``None`` takes the preset.
        num_res_units: residual units per level; ``None`` takes the preset (2).
        act: activation of the U-Net.
        norm: normalisation of the U-Net.
        dropout: dropout of the U-Net.

    Examples::

        >>> net = CoarseLiverNet(size="small", num_adjacent_slices=5).eval()
        >>> net(torch.rand(1, 1, 64, 64, 8)).shape
        torch.Size([1, 2, 64, 64, 8])
    """

    def __init__(
        self,
        in_channels: int = 1,
        out_channels: int = 2,
        size: str = "paper",
        num_adjacent_slices: int = 3,
        channels: Sequence[int] | None = None,
        strides: Sequence[int] | None = None,
        num_res_units: int | None = None,
        act: str | tuple = "relu",
        norm: str | tuple = "batch",
        dropout: float = 0.0,
    ) -> None:
        super().__init__()
        if num_adjacent_slices < 1 or num_adjacent_slices % 2 == 0:
            raise ValueError(f"num_adjacent_slices must be a positive odd number, got {num_adjacent_slices}")
        cfg = coarse_config(size)
        channels = cfg["channels"] if channels is None else channels
        strides = cfg["strides"] if strides is None else strides
        num_res_units = cfg["num_res_units"] if num_res_units is None else num_res_units
        self.in_channels = in_channels
        self.out_channels = out_channels
        self.num_adjacent_slices = num_adjacent_slices
        self.size_divisor = int(math.prod(strides))
        self.unet = UNet(
            spatial_dims=2,
            in_channels=in_channels * num_adjacent_slices,
            out_channels=out_channels,
            channels=channels,
            strides=strides,
            num_res_units=num_res_units,
            act=act,
            norm=norm,
            dropout=dropout,
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``(N, in_channels, H, W, D)`` -> logits ``(N, out_channels, H, W, D)``; H and W divisible by
        ``size_divisor`` (the product of the strides: 16 paper, 8 small), any D."""
        if x.dim() != 5 or x.shape[1] != self.in_channels:
            raise ValueError(f"CoarseLiverNet expects (N, {self.in_channels}, H, W, D), got shape {list(x.shape)}")
        if x.shape[2] % self.size_divisor != 0 or x.shape[3] % self.size_divisor != 0:
            raise ValueError(
                f"CoarseLiverNet: H and W must be divisible by {self.size_divisor} for this configuration, "
                f"got (H, W) = {list(x.shape[2:4])}"
            )
        n = x.shape[0]
        logits = self.unet(slices_from_volume(x, self.num_adjacent_slices))
        return volume_from_slices(logits, n)

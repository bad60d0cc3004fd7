"""Moved to :mod:`bundle.networks.hybrid_inferer` and :mod:`bundle.networks.slices` (networks depend on nothing
else in ``bundle``); kept for old imports."""

from __future__ import annotations

import torch
from torch import nn

from bundle.networks.hybrid_inferer import HybridSlidingWindowInferer
from bundle.networks.slices import axial_slices, slice_stacks, whole_slice_inference

__all__ = ["HybridSlidingWindowInferer", "axial_slices", "dense_unet_features", "slice_stacks", "whole_slice_inference"]


def dense_unet_features(net: nn.Module, x: torch.Tensor, channels_last: bool = True) -> torch.Tensor:
    """``net.inference_features(x, channels_last)`` (:meth:`bundle.networks.denseunet.DenseUNet.inference_features`)."""
    return net.inference_features(x, channels_last)

"""Voxel-grid arithmetic of the cascade: the liver ROI box, voxel sizes from an affine, sizes after resampling, box
dilation."""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
import torch.nn.functional as F
from monai.data import MetaTensor

__all__ = ["dilate_box", "liver_roi_box", "resampled_size", "voxel_spacings"]


def liver_roi_box(
    start: Sequence[int],
    end: Sequence[int],
    shape: Sequence[int],
    spacing: Sequence[float],
    margin_mm: Sequence[float],
    min_size: Sequence[int] | None = None,
) -> list[tuple[int, int]]:
    """The liver ROI, one rule for training (:class:`~bundle.transforms.LiverROI`) and inference
    (:meth:`~bundle.networks.LiverTumorCascade.liver_box`): ``[(lo, hi)]`` voxel indices per axis, ``hi`` exclusive.

    From the liver mask's bounding box ``[start, end)`` in a volume of ``shape`` voxels of ``spacing`` mm:

    1. ``ceil(margin_mm / spacing)`` voxels added on both sides of every axis (never less than the margin asked for;
       the division is taken as it falls in floating point, as inference has always computed it);
    2. grown to at least ``min_size`` voxels per axis if given, about the box's centre (an odd extra voxel goes to
       the high side);
    3. clipped to the volume. Near the volume's edge the box is then narrower than ``min_size``: pad afterwards.
    """
    box = []
    for axis, n in enumerate(shape):
        margin = math.ceil(float(margin_mm[axis]) / float(spacing[axis]))
        lo, hi = int(start[axis]) - margin, int(end[axis]) + margin
        short = 0 if min_size is None else int(min_size[axis]) - (hi - lo)
        if short > 0:
            lo -= short // 2
            hi += short - short // 2
        box.append((max(lo, 0), min(hi, int(n))))
    return box


def resampled_size(size: Sequence[int], spacing: Sequence[float], target: Sequence[float] | None) -> list[int]:
    """Voxels per axis of a region of ``size`` voxels of ``spacing`` mm resampled to ``target`` mm (an axis with
    ``target <= 0``, or ``target=None``, keeps its size)."""
    if target is None:
        return [int(n) for n in size]
    return [int(n) if t <= 0 else max(1, round(n * s / t)) for n, s, t in zip(size, spacing, target)]


def dilate_box(mask: torch.Tensor, radius: Sequence[int]) -> torch.Tensor:
    """Boolean ``(H, W, D)`` mask dilated by a box of ``radius`` voxels per axis (three separable max-pools)."""
    out = mask[None, None].float()
    for axis, r in enumerate(radius):
        if r > 0:
            kernel = [1, 1, 1]
            kernel[axis] = 2 * r + 1
            padding = [k // 2 for k in kernel]
            out = F.max_pool3d(out, kernel_size=kernel, stride=1, padding=padding)
    return out[0, 0] > 0


def voxel_spacings(x: torch.Tensor, batch: int, default: Sequence[float]) -> list[tuple[float, ...]]:
    """Voxel sizes in mm of each volume of a batch: from the MetaTensor affine, else ``default``."""
    if isinstance(x, MetaTensor):
        affine = x.affine
        affines = affine if affine.dim() == 3 else affine.unsqueeze(0).expand(batch, -1, -1)
        return [tuple(float(v) for v in torch.linalg.norm(a[:3, :3].double(), dim=0)) for a in affines]
    return [tuple(default)] * batch

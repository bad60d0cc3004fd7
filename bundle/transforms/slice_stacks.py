"""The paper's transformation F (volume -> stacks of three adjacent axial slices) and its inverse F⁻¹.

Li et al., H-DenseUNet, IEEE TMI 2018, section III-A and Fig. 2(d): every slice ``d`` of a volume becomes
one 2D sample whose channels are the slices ``d - 1, d, d + 1``; the slices are moved into the batch
dimension so that a 2D network sees ``N·D`` samples, and F⁻¹ moves them back.

Edge slices: the first and the last slice have only one neighbour; the missing one is the edge slice
itself repeated (replicate padding along D), exactly as the original Keras code builds
``[s0, s0, s1]`` and ``[s_{D-2}, s_{D-1}, s_{D-1}]``. A volume with D = 1 gives ``[s0, s0, s0]``.
"""

from __future__ import annotations

import torch

__all__ = ["slices_from_volume", "volume_from_slices"]


def slices_from_volume(x: torch.Tensor, num_slices: int = 3) -> torch.Tensor:
    """F: ``(N, C, H, W, D)`` -> ``(N·D, 3C, H, W)``.

    Output sample ``n·D + d`` holds channels ``[x[n, :, ..., d-1], x[n, :, ..., d], x[n, :, ..., d+1]]``
    (each block ``C`` channels wide, so ``[:, C:2C]`` is the centre slice), with edge slices repeated.
    Differentiable; no Python loop over slices.

    ``num_slices`` (odd, default 3) widens the stack to ``d - num_slices//2 … d + num_slices//2``, giving
    ``(N·D, num_slices·C, H, W)`` (5 for the 2.5D coarse liver network of Han 2017); edges are repeated the
    same way.
    """
    if x.dim() != 5:
        raise ValueError(f"slices_from_volume expects (N, C, H, W, D), got shape {x.shape}")
    if num_slices < 1 or num_slices % 2 == 0:
        raise ValueError(f"slices_from_volume: num_slices must be a positive odd number, got {num_slices}")
    n, c, h, w, d = x.shape[0], x.shape[1], x.shape[2], x.shape[3], x.shape[4]
    if num_slices == 3:
        padded = torch.cat([x[..., :1], x, x[..., -1:]], dim=-1)  # (N, C, H, W, D + 2)
    else:
        half = num_slices // 2
        index = torch.clamp(torch.arange(-half, d + half, device=x.device), 0, d - 1)
        padded = x.index_select(-1, index)  # (N, C, H, W, D + num_slices - 1), edge slices repeated
    windows = padded.unfold(-1, num_slices, 1)  # (N, C, H, W, D, num_slices)
    return windows.permute(0, 4, 5, 1, 2, 3).reshape(n * d, num_slices * c, h, w)


def volume_from_slices(y: torch.Tensor, n: int) -> torch.Tensor:
    """F⁻¹: ``(N·D, K, H, W)`` -> ``(N, K, H, W, D)``, the inverse arrangement of :func:`slices_from_volume`.

    ``n`` is the number of volumes ``N``; the first dimension of ``y`` must be a multiple of it.
    ``volume_from_slices(slices_from_volume(x)[:, C:2C], N)`` returns ``x`` exactly.
    """
    if y.dim() != 4:
        raise ValueError(f"volume_from_slices expects (N·D, K, H, W), got shape {y.shape}")
    if n <= 0 or y.shape[0] % n != 0:
        raise ValueError(f"volume_from_slices: first dimension {y.shape[0]} is not a multiple of n={n}")
    nd, k, h, w = y.shape[0], y.shape[1], y.shape[2], y.shape[3]
    return y.reshape(n, nd // n, k, h, w).permute(0, 2, 3, 4, 1)

"""The paper's transformation F (volume -> stacks of adjacent axial slices), its inverse F⁻¹, and 2.5D networks run
on whole slices.

Li et al., H-DenseUNet, IEEE TMI 2018, section III-A and Fig. 2(d): every slice ``d`` of a volume becomes
one 2D sample whose channels are the slices ``d - 1, d, d + 1``; the slices are moved into the batch
dimension so that a 2D network sees ``N·D`` samples, and F⁻¹ moves them back.

Edge slices: the first and the last slice have only one neighbour; the missing one is the edge slice
itself repeated (replicate padding along D), exactly as the original Keras code builds
``[s0, s0, s1]`` and ``[s_{D-2}, s_{D-1}, s_{D-1}]``. A volume with D = 1 gives ``[s0, s0, s0]``.

For inference, :func:`axial_slices` and :func:`slice_stacks` build F for a range of slices only, and
:func:`whole_slice_inference` runs a 2.5D network once per slice on whole (padded) slices.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch
import torch.nn.functional as F

__all__ = [
    "axial_slices",
    "crop_padding",
    "memory_format",
    "pad_widths",
    "slice_stacks",
    "slices_from_volume",
    "volume_from_slices",
    "whole_slice_inference",
]


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


def memory_format(ndim: int, channels_last: bool) -> torch.memory_format:
    """Channels-last memory format of a 4D (``channels_last``) or 5D (``channels_last_3d``) tensor, or contiguous."""
    if not channels_last:
        return torch.contiguous_format
    return {4: torch.channels_last, 5: torch.channels_last_3d}[ndim]


def axial_slices(volume: torch.Tensor) -> torch.Tensor:
    """``(1, C, H, W, D) -> (C, D, H, W)``, contiguous: each axial slice one block of memory, for
    :func:`slice_stacks` (in the volume's own layout a slice is a strided gather along the fastest axis)."""
    return volume[0].permute(0, 3, 1, 2).contiguous()


def slice_stacks(slices: torch.Tensor, start: int, stop: int, num_slices: int = 3) -> torch.Tensor:
    """F for the slices ``start:stop``: ``(C, D, H, W)`` (:func:`axial_slices`) ``-> (stop - start, num_slices·C,
    H, W)``.

    The same stacks as ``slices_from_volume(volume)[start:stop]``: channels ``[d - 1, d, d + 1]`` (each block ``C``
    channels wide), every slice with its true neighbours, edge slices repeated only at the volume's ends; the
    stacks of the other slices are not built.
    """
    half = num_slices // 2
    offsets = torch.arange(-half, half + 1, device=slices.device)
    index = (torch.arange(start, stop, device=slices.device)[:, None] + offsets).clamp(0, slices.shape[1] - 1)
    stacks = slices[:, index]  # (C, n, num_slices, H, W)
    return stacks.permute(1, 2, 0, 3, 4).reshape(stop - start, num_slices * slices.shape[0], *slices.shape[2:])


def pad_widths(shape: Sequence[int], target: Sequence[int]) -> list[int]:
    """``F.pad`` widths (last axis first) that pad ``shape`` to ``target`` symmetrically, as MONAI's inferers."""
    pads: list[int] = []
    for n, t in zip(reversed(shape), reversed(target)):
        extra = max(t - n, 0)
        pads += [extra // 2, extra - extra // 2]
    return pads


def crop_padding(x: torch.Tensor, pads: Sequence[int]) -> torch.Tensor:
    """Undo :func:`pad_widths` padding on the trailing axes of ``x``."""
    spatial = len(pads) // 2
    index = [slice(None)] * (x.dim() - spatial)
    for axis in range(spatial):
        lo, hi = pads[2 * (spatial - 1 - axis)], pads[2 * (spatial - 1 - axis) + 1]
        index.append(slice(lo, x.shape[x.dim() - spatial + axis] - hi))
    return x[tuple(index)]


def whole_slice_inference(
    net2d: Callable[[torch.Tensor], torch.Tensor],
    volume: torch.Tensor,
    num_slices: int,
    size_divisor: int,
    slice_batch: int = 8,
    channels_last: bool = True,
) -> torch.Tensor:
    """A 2.5D network on whole slices: ``(1, C, H, W, D) -> (1, out, H, W, D)``, each slice computed once.

    ``net2d`` maps stacks ``(B, num_slices·C, H', W') -> (B, out, H', W')`` with H', W' divisible by
    ``size_divisor``; the slices are zero-padded in-plane to that and cropped back, ``slice_batch`` stacks per call.
    """
    pads = pad_widths(volume.shape[2:4], [-(-n // size_divisor) * size_divisor for n in volume.shape[2:4]])
    slices = axial_slices(F.pad(volume, [0, 0, *pads]))
    depth = volume.shape[-1]
    layout = memory_format(4, channels_last)
    out: torch.Tensor | None = None
    for start in range(0, depth, slice_batch):
        stop = min(start + slice_batch, depth)
        stacks = slice_stacks(slices, start, stop, num_slices).contiguous(memory_format=layout)
        logits = crop_padding(net2d(stacks), pads)
        if out is None:
            out = torch.empty((1, logits.shape[1], *volume.shape[2:]), dtype=logits.dtype, device=logits.device)
        out[0, ..., start:stop] = logits.permute(1, 2, 3, 0)
    assert out is not None
    return out

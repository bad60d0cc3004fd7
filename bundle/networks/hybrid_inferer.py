"""Whole-ROI inference for H-DenseUNet without recomputing the 2D branch where 3D windows overlap.

Running :class:`~bundle.networks.hdenseunet.HDenseUNet` in overlapping 224x224x12 windows (MONAI's
``SlidingWindowInferer``) runs the 2D DenseUNet-167 on every slice of every window: with 25 % overlap in all three
axes each ROI slice goes through the 2D net 3-4 times. But the 2D branch is a fully convolutional slice-wise net
(F → f2d → F⁻¹), so :class:`HybridSlidingWindowInferer` runs it ONCE per ROI slice, on whole ROI slices (padded to a
multiple of 32) in slice batches, and every 3D window covering a slice reuses that slice's features ``X2d'`` and
probabilities ``ŷ2d'``. Only the 3D DenseUNet-65 and the HFF layer run per window; by default the 3D windows span
the whole ROI plane, 12 slices deep, and tile the ROI along D, so the total work is within ~5-10 % of running each
branch once over the ROI (``overlap=0.25`` blends the seams along D for ~15 % more).

Slices are computed as the windows advance along D and dropped once no later window needs them, so memory holds
about two windows' depth of 2D features, whatever the ROI depth.

Differences from ``SlidingWindowInferer(HDenseUNet)``: the 2D net sees whole ROI slices (no seams at 224 px tile
borders) and each slice's true neighbours (F repeats edge slices only at the ROI's ends, not at every window's);
the 3D windows need not be 224 px wide. On an ROI exactly one window big the result equals ``HDenseUNet(x)``.

The inferer only schedules: the 2D branch and the fusion are H-DenseUNet's own public methods
(:meth:`~bundle.networks.hdenseunet.HDenseUNet.branch2d`, :meth:`~bundle.networks.hdenseunet.HDenseUNet.fuse`),
called with ``fast=True`` (:meth:`~bundle.networks.denseunet.DenseUNet.inference_features`: preallocated dense
blocks, channels-last memory layout). A TorchScript H-DenseUNet (the ``fine`` network of an exported ``model.ts``)
works too: its compiled ``branch2d`` and ``fuse`` run the plain forward path, the same arithmetic.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence

import torch
import torch.nn.functional as F
from monai.data.utils import compute_importance_map
from monai.utils import ensure_tuple_rep
from torch import nn

from .slices import axial_slices, crop_padding, memory_format, pad_widths, slice_stacks

__all__ = ["HybridSlidingWindowInferer"]


def _mode(network: nn.Module) -> str:
    """H-DenseUNet's mode; a TorchScript H-DenseUNet (``torch.jit.load`` of ``ckpt_export``) lacks the ``mode``
    property but keeps its ``_mode``."""
    return getattr(network, "mode", None) or getattr(network, "_mode", "joint")


def _axis_windows(extent: int, size: int, overlap: float, divisor: int) -> list[tuple[int, int]]:
    """``(start, size)`` of the windows along one axis: MONAI's placement (every ``int(size · (1 - overlap))``),
    except that the remainder gets a shorter window (a multiple of ``divisor``, at least half of ``size``, keeping
    the overlap) where MONAI would shift a full one back over its neighbour: 103 slices in 12-slice windows take
    8 x 12 + 8 slices of work instead of 10 x 12."""
    if size >= extent:
        return [(0, extent)]
    interval = max(int(size * (1 - overlap)), 1)
    windows = [(start, size) for start in range(0, extent - size + 1, interval)]
    covered = windows[-1][0] + size
    if covered < extent:
        tail = max(extent - covered + size - interval, size // 2)
        tail = min(-(-tail // divisor) * divisor, size)
        windows.append((extent - tail, tail))
    return windows


class HybridSlidingWindowInferer:
    """H-DenseUNet over a whole ROI: the 2D branch once per slice, the 3D branch and HFF in blended windows.

    Args:
        roi_size: size of the 3D windows (H, W, D) in voxels; 0 or less along an axis means the whole (padded) ROI
            along it. Positive sizes must suit the 3D net (multiples of 32 in-plane and 4 along D for both presets).
            Default: whole ROI planes, 12 slices deep (the paper's patch depth).
        overlap: overlap of neighbouring 3D windows, a fraction of ``roi_size`` per axis (MONAI's definition).
            Default 0: the windows tile the ROI (the last one along an axis shifted back to fit, blended with its
            neighbour); 0.25 blends every seam as MONAI's default does, for ~1.3x the 3D work (~1.15x in all).
        slice_batch: slices per call of the 2D net.
        mode: ``"gaussian"`` or ``"constant"`` blending of overlapping 3D windows (MONAI's importance maps).
        sigma_scale: Gaussian sigma as a fraction of the window size.
        channels_last: channels-last memory layout for both nets (faster with oneDNN on CPU).
        cval: value of the padding (the ROI is padded to at least one window and in-plane to a multiple of the 2D
            net's size divisor, then cropped back; a window is smaller than ``roi_size`` where the ROI is).

    After each call ``last_stats`` holds ``roi_shape``, ``padded_shape``, ``slices_2d`` (2D-net samples run) and
    ``windows_3d`` (window shapes of the 3D net), from which the work done can be counted.

    Examples::

        >>> net = HDenseUNet(size="small").eval()
        >>> logits = HybridSlidingWindowInferer()(torch.rand(1, 1, 200, 180, 40), net)  # (1, 3, 200, 180, 40)
    """

    def __init__(
        self,
        roi_size: Sequence[int] = (0, 0, 12),
        overlap: float | Sequence[float] = 0.0,
        slice_batch: int = 8,
        mode: str = "gaussian",
        sigma_scale: float | Sequence[float] = 0.125,
        channels_last: bool = True,
        cval: float = 0.0,
    ) -> None:
        if len(roi_size) != 3:
            raise ValueError(f"roi_size needs 3 entries (H, W, D), got {roi_size}")
        self.roi_size = tuple(int(r) for r in roi_size)
        self.overlap = tuple(float(o) for o in ensure_tuple_rep(overlap, 3))
        if any(not 0.0 <= o < 1.0 for o in self.overlap):
            raise ValueError(f"overlap must be in [0, 1), got {overlap}")
        if slice_batch < 1:
            raise ValueError(f"slice_batch must be positive, got {slice_batch}")
        self.slice_batch = int(slice_batch)
        self.mode = mode
        self.sigma_scale = sigma_scale
        self.channels_last = channels_last
        self.cval = float(cval)
        self.last_stats: dict = {}

    def __call__(self, inputs: torch.Tensor, network: nn.Module) -> torch.Tensor:
        """``(N, C, H, W, D)`` HU-windowed CT in [0, 1] and an eval-mode HDenseUNet -> logits ``(N, out, H, W, D)``.

        Fused logits (2D logits if the net is in mode ``"2d"``), as ``network(inputs)`` would give for an input of
        one window; any H, W, D. Runs under ``torch.inference_mode``; the result is an ordinary tensor.
        """
        if inputs.dim() != 5 or inputs.shape[1] != network.in_channels:
            raise ValueError(f"expected (N, {network.in_channels}, H, W, D), got shape {list(inputs.shape)}")
        if network.training:
            raise ValueError("HybridSlidingWindowInferer needs the network in eval mode (call network.eval())")
        with torch.inference_mode():
            outputs = [self._volume(inputs[i : i + 1], network) for i in range(inputs.shape[0])]
        return torch.cat(outputs)  # made outside inference mode: an ordinary tensor for the caller

    # ---- one volume -------------------------------------------------------------------------------------------
    def _window_and_padded_shape(self, shape: Sequence[int], network: nn.Module) -> tuple[list[int], list[int]]:
        """3D window size and padded ROI shape per axis. The window is ``roi_size``, or the ROI extent rounded up
        to the 3D net's divisor where that is smaller (a 3-slice ROI is not padded to 12 slices); the ROI is padded
        to at least one window and, in-plane, to a multiple of the 2D net's divisor."""
        divisors = network.size_divisors
        window, padded = [], []
        for axis, (n, r) in enumerate(zip(shape, self.roi_size)):
            if r > 0 and r % divisors[axis]:
                raise ValueError(f"roi_size {self.roi_size} must be divisible by the network's {divisors}")
            fit = -(-n // divisors[axis]) * divisors[axis]
            window.append(min(r, fit) if r > 0 else fit)
            size = max(n, window[-1])
            if axis < 2:
                size = -(-size // network.dense2d.size_divisors[axis]) * network.dense2d.size_divisors[axis]
            padded.append(size)
        return window, padded

    def _volume(self, image: torch.Tensor, network: nn.Module) -> torch.Tensor:
        shape = list(image.shape[2:])
        only_2d = _mode(network) == "2d"
        window, padded_shape = self._window_and_padded_shape(shape, network)
        if only_2d:
            window[2] = padded_shape[2] = shape[2]  # no 3D branch: no window along D, no padding of D
        pads = pad_widths(shape, padded_shape)
        volume = F.pad(image, pads, value=self.cval)
        per_axis = [
            _axis_windows(p, w, o, d) for p, w, o, d in zip(padded_shape, window, self.overlap, network.size_divisors)
        ]
        # along D slowest, so that each slice's 2D outputs are computed once and dropped when no window needs them
        windows = [(h, w, d) for d, h, w in itertools.product(per_axis[2], per_axis[0], per_axis[1])]
        self.last_stats = {
            "roi_shape": shape,
            "padded_shape": padded_shape,
            "slices_2d": 0,
            "windows_3d": [] if only_2d else [[size for _, size in win] for win in windows],
        }
        if only_2d:
            return crop_padding(self._slices_2d(axial_slices(volume), 0, shape[2], network)[1], pads)

        importance: dict[tuple[int, ...], torch.Tensor] = {}
        out = torch.zeros((1, network.out_channels, *padded_shape), dtype=torch.float32, device=image.device)
        weight = torch.zeros((1, 1, *padded_shape), dtype=torch.float32, device=image.device)
        slices = axial_slices(volume)
        cache_start, cache_feat, cache_prob = 0, None, None  # 2D outputs of slices cache_start, cache_start + 1, ...
        for corners in windows:
            win = tuple(slice(start, start + size) for start, size in corners)
            d0, d1 = win[2].start, win[2].stop
            cache_end = cache_start + (0 if cache_feat is None else cache_feat.shape[-1])
            if cache_feat is None or d0 >= cache_end:
                cache_start, cache_feat, cache_prob = d0, *self._slices_2d(slices, d0, d1, network)
            elif d1 > cache_end:
                feat, prob = self._slices_2d(slices, cache_end, d1, network)
                keep = slice(d0 - cache_start, None)
                cache_feat = torch.cat([cache_feat[..., keep], feat], dim=-1)
                cache_prob = torch.cat([cache_prob[..., keep], prob], dim=-1)
                cache_start = d0
            local = (slice(None), slice(None), win[0], win[1], slice(d0 - cache_start, d1 - cache_start))
            logits = self._fuse(volume[(slice(None), slice(None), *win)], cache_feat[local], cache_prob[local], network)
            region = (slice(None), slice(None), *win)
            size = tuple(logits.shape[2:])
            if size not in importance:
                importance[size] = compute_importance_map(size, self.mode, self.sigma_scale, device=image.device)
            out[region] += logits * importance[size]
            weight[region] += importance[size]
        return crop_padding(out / weight, pads)

    def _slices_2d(
        self, slices: torch.Tensor, start: int, stop: int, network: nn.Module
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """2D branch on slices ``start:stop`` of the padded ROI (``slices``: :func:`axial_slices`): features
        ``(1, F, H, W, n)`` and, in mode ``"2d"``, logits, otherwise probabilities ``(1, out, H, W, n)``
        (F, f2d, F⁻¹ in slice batches)."""
        feats, outs = [], []
        layout = memory_format(4, self.channels_last)
        for s in range(start, stop, self.slice_batch):
            e = min(s + self.slice_batch, stop)
            stacks = slice_stacks(slices, s, e).contiguous(memory_format=layout)
            feat, logits = network.branch2d(stacks, fast=True, channels_last=self.channels_last)
            feats.append(feat)
            outs.append(logits if _mode(network) == "2d" else torch.softmax(logits, dim=1))
            self.last_stats["slices_2d"] += e - s
        # F⁻¹: (n, K, H, W) -> (1, K, H, W, n), channels-last-3d as the 3D branch wants it
        layout = memory_format(5, self.channels_last)
        feat = torch.cat(feats).permute(1, 2, 3, 0).unsqueeze(0).contiguous(memory_format=layout)
        out = torch.cat(outs).permute(1, 2, 3, 0).unsqueeze(0).contiguous(memory_format=layout)
        return feat, out

    def _fuse(self, x: torch.Tensor, feat2d: torch.Tensor, prob2d: torch.Tensor, network: nn.Module) -> torch.Tensor:
        """3D branch and HFF on one window (:meth:`HDenseUNet.fuse`): ``hff(f3d(concat(I, ŷ2d')) + X2d')``."""
        return network.fuse(x, feat2d, prob2d, fast=True, channels_last=self.channels_last)

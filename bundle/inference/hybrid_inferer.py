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

:func:`dense_unet_features` is ``DenseUNet.forward_features`` for inference: each dense block writes its layers'
outputs into one preallocated tensor instead of concatenating all previous outputs again for every layer, which
also makes channels-last memory layout pay (oneDNN's fastest convolution layout on CPU, where ``torch.cat`` along
channels is a strided copy).
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Sequence

import torch
import torch.nn.functional as F
from monai.data.utils import compute_importance_map
from monai.utils import ensure_tuple_rep
from torch import nn

__all__ = ["HybridSlidingWindowInferer", "axial_slices", "dense_unet_features", "slice_stacks", "whole_slice_inference"]


def _memory_format(ndim: int, channels_last: bool) -> torch.memory_format:
    if not channels_last:
        return torch.contiguous_format
    return {4: torch.channels_last, 5: torch.channels_last_3d}[ndim]


def _dense_block(block: nn.ModuleDict, x: torch.Tensor, memory_format: torch.memory_format) -> torch.Tensor:
    """A ``_DenseBlock`` forward: every micro-block reads a view of one growing tensor and writes its ``k`` new
    channels into it (same arithmetic as ``torch.cat`` of all previous outputs, without the copies)."""
    layers = list(block.values())
    channels = x.shape[1]
    total = channels + sum(layer.conv2.out_channels for layer in layers)
    features = torch.empty((x.shape[0], total, *x.shape[2:]), dtype=x.dtype, device=x.device)
    features = features.contiguous(memory_format=memory_format)
    features[:, :channels] = x
    for layer in layers:
        inputs = features[:, :channels]
        out = layer.conv1(layer.relu1(layer.norm1(inputs)))
        out = layer.conv2(layer.relu2(layer.norm2(out)))
        features[:, channels : channels + out.shape[1]] = out
        channels += out.shape[1]
    return features


def dense_unet_features(net: nn.Module, x: torch.Tensor, channels_last: bool = True) -> torch.Tensor:
    """``DenseUNet.forward_features`` for inference: ``(N, in_channels, H, W[, D]) -> (N, features, H, W[, D])``.

    Same modules and arithmetic as :meth:`~bundle.networks.denseunet.DenseUNet.forward_features` (equal up to float
    rounding), with preallocated dense blocks and, with ``channels_last``, channels-last memory layout (the output
    keeps it). For eval mode: the memory-efficient checkpointing of training does not apply here.
    """
    net.check_input_size(x)
    memory_format = _memory_format(x.dim(), channels_last)
    x = x.contiguous(memory_format=memory_format)
    skips: list[torch.Tensor] = []
    for name, layer in net.features.items():
        if name == "pool0" or name.startswith("transition"):
            skips.append(x)  # as DenseUNet.forward_features: stem output, then each dense block before its transition
        x = _dense_block(layer, x, memory_format) if isinstance(layer, nn.ModuleDict) else layer(x)
    for j, level in enumerate(net.decoder):
        skip = skips[len(skips) - 1 - j] if j < len(skips) else x
        x = level(x, skip, net.unet_connections)
    return x


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


def _pad_widths(shape: Sequence[int], target: Sequence[int]) -> list[int]:
    """``F.pad`` widths (last axis first) that pad ``shape`` to ``target`` symmetrically, as MONAI's inferers."""
    pads: list[int] = []
    for n, t in zip(reversed(shape), reversed(target)):
        extra = max(t - n, 0)
        pads += [extra // 2, extra - extra // 2]
    return pads


def _crop(x: torch.Tensor, pads: Sequence[int]) -> torch.Tensor:
    """Undo :func:`_pad_widths` padding on the trailing axes of ``x``."""
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
    pads = _pad_widths(volume.shape[2:4], [-(-n // size_divisor) * size_divisor for n in volume.shape[2:4]])
    slices = axial_slices(F.pad(volume, [0, 0, *pads]))
    depth = volume.shape[-1]
    memory_format = _memory_format(4, channels_last)
    out: torch.Tensor | None = None
    for start in range(0, depth, slice_batch):
        stop = min(start + slice_batch, depth)
        stacks = slice_stacks(slices, start, stop, num_slices).contiguous(memory_format=memory_format)
        logits = _crop(net2d(stacks), pads)
        if out is None:
            out = torch.empty((1, logits.shape[1], *volume.shape[2:]), dtype=logits.dtype, device=logits.device)
        out[0, ..., start:stop] = logits.permute(1, 2, 3, 0)
    assert out is not None
    return out


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
        only_2d = getattr(network, "mode", "joint") == "2d"
        window, padded_shape = self._window_and_padded_shape(shape, network)
        if only_2d:
            window[2] = padded_shape[2] = shape[2]  # no 3D branch: no window along D, no padding of D
        pads = _pad_widths(shape, padded_shape)
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
            return _crop(self._slices_2d(axial_slices(volume), 0, shape[2], network)[1], pads)

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
        return _crop(out / weight, pads)

    def _slices_2d(
        self, slices: torch.Tensor, start: int, stop: int, network: nn.Module
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """2D branch on slices ``start:stop`` of the padded ROI (``slices``: :func:`axial_slices`): features
        ``(1, F, H, W, n)`` and, in mode ``"2d"``, logits, otherwise probabilities ``(1, out, H, W, n)``
        (F, f2d, F⁻¹ in slice batches)."""
        feats, outs = [], []
        memory_format = _memory_format(4, self.channels_last)
        for s in range(start, stop, self.slice_batch):
            e = min(s + self.slice_batch, stop)
            stacks = slice_stacks(slices, s, e).contiguous(memory_format=memory_format)
            feat = dense_unet_features(network.dense2d, stacks, self.channels_last)
            logits = network.dense2d.classifier(network.dense2d.dropout(feat))
            feats.append(feat)
            outs.append(logits if network.mode == "2d" else torch.softmax(logits, dim=1))
            self.last_stats["slices_2d"] += e - s
        # F⁻¹: (n, K, H, W) -> (1, K, H, W, n), channels-last-3d as the 3D branch wants it
        memory_format = _memory_format(5, self.channels_last)
        feat = torch.cat(feats).permute(1, 2, 3, 0).unsqueeze(0).contiguous(memory_format=memory_format)
        out = torch.cat(outs).permute(1, 2, 3, 0).unsqueeze(0).contiguous(memory_format=memory_format)
        return feat, out

    def _fuse(self, x: torch.Tensor, feat2d: torch.Tensor, prob2d: torch.Tensor, network: nn.Module) -> torch.Tensor:
        """3D branch and HFF on one window, as ``HDenseUNet.forward``: ``hff(f3d(concat(I, ŷ2d')) + X2d')``."""
        feat3d = dense_unet_features(network.dense3d, torch.cat([x, prob2d], dim=1), self.channels_last)
        return network.hff(feat3d + feat2d)

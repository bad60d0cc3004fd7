"""The whole cascade as ONE module: coarse liver network → liver ROI → H-DenseUNet → probabilities on the volume.

MONAI Label and the model zoo drive a bundle only through ``network_def``, ``preprocessing``, ``inferer``,
``postprocessing`` and ``models/model.pt``; so the cascade of Li et al. (Fig. 2: a coarse liver network finds the
liver, H-DenseUNet segments liver and tumor inside its ROI) lives in one ``nn.Module`` with one state dict
(``coarse.*`` and ``fine.*``). The training stages train parts of this same module, so weights pass from one
stage to the next by loading the previous stage's ``model.pt`` whole.

``stage`` decides what ``forward`` does:

- ``"coarse"``: ``coarse(x)``, 2-class logits (background, liver) on patches resampled to the coarse spacing;
- ``"2d"``, ``"hybrid"``, ``"joint"``: ``fine(x)`` with H-DenseUNet in that mode, on liver-ROI patches at the
  original resolution (see :class:`~bundle.networks.hdenseunet.HDenseUNet`);
- ``"cascade"`` (inference): a whole volume in, the paper's inference scheme (section III-C-3) inside: coarse
  liver mask on the volume resampled to ``coarse_spacing`` → largest connected component → bounding box plus
  ``roi_margin_mm`` → H-DenseUNet over the ROI in sliding windows (Gaussian blending) → probabilities pasted
  back into the full volume (background outside the ROI). It returns log-probabilities, so the usual
  ``softmax`` of the post-processing gives the probabilities back.

Exported (``monai.bundle ckpt_export`` / ``onnx_export``), the data-dependent ROI search stays in Python: the
exported ``forward`` is the liver/tumor network on one patch, ``coarse_logits`` the coarse liver network, and
:meth:`LiverTumorCascade.from_torchscript` runs the whole cascade around an exported ``model.ts``.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from itertools import combinations
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from monai.data import MetaTensor
from monai.inferers import SlidingWindowInferer
from monai.transforms.utils import get_largest_connected_component_mask
from monai.utils import convert_to_dst_type
from torch import nn

from bundle.config_values import as_bool

from . import presets
from .ablation import DenseUNet2DOnly, DenseUNet3DOnly
from .cascaded_resnet import CascadedResNet
from .coarse_liver import CoarseLiverNet
from .denseunet569 import DenseUNet569
from .folding import inference_copy
from .hdenseunet import HDenseUNet
from .hybrid_inferer import HybridSlidingWindowInferer
from .raunet import RAUNet3D
from .slices import whole_slice_inference
from .volume_geometry import dilate_box, liver_roi_box, resampled_size, voxel_spacings

__all__ = ["FINE_NETWORKS", "STAGES", "LiverTumorCascade"]

STAGES = ("coarse", "2d", "hybrid", "joint")

#: The liver/tumor networks selectable with ``network_name`` (``--network_name`` in the configs). Only H-DenseUNet
#: has the 2d and hybrid stages; the others train in the coarse and joint stages.
FINE_NETWORKS = {
    "hdenseunet": HDenseUNet,
    "denseunet569": DenseUNet569,
    "raunet": RAUNet3D,
    "cascaded_resnet": CascadedResNet,
    "denseunet2d": DenseUNet2DOnly,  # ablation (Table II): 2D DenseUNet alone
    "denseunet3d": DenseUNet3DOnly,  # ablation (Table II): 3D DenseUNet alone
}


class LiverTumorCascade(nn.Module):
    """Coarse liver network and H-DenseUNet behind one ``forward``.

    Args:
        size: ``"paper"`` or ``"small"``: the preset of both networks (ignored for a network passed in).
        network_name: the liver/tumor network, a key of :data:`FINE_NETWORKS` (default H-DenseUNet).
        stage: ``"coarse"``, ``"2d"``, ``"hybrid"``, ``"joint"`` (training) or ``"cascade"`` (inference).
        coarse: the coarse liver network (default :class:`CoarseLiverNet` of ``size``), 2 output channels.
        fine: the liver/tumor network (default :class:`HDenseUNet` of ``size``), 3 output channels.
        coarse_spacing: voxel size in mm (x, y, z, RAS) the coarse network works at; ``None``: the ``size``
            preset's (:func:`~bundle.networks.presets.coarse_spacing`: paper 0.69 × 0.69 × 1.0, small 1 × 1 × 2).
        roi_margin_mm: margin added around the coarse liver box, in mm per axis.
        patch_size: sliding-window size in voxels for both networks at inference (paper: 224 × 224 × 12).
        overlap: sliding-window overlap of the H-DenseUNet windows.
        sw_batch_size: windows per forward pass.
        liver_threshold: coarse liver probability above which a voxel seeds the ROI.
        default_spacing: spacing in mm used when the input carries no affine (a plain tensor).
        memory_efficient, freeze_bn: passed to the default :class:`HDenseUNet`.
        fast_inference: run the 2D networks once per slice, on whole slices, at inference: the coarse
            :class:`CoarseLiverNet` over the whole resampled volume, H-DenseUNet through
            :class:`~bundle.networks.hybrid_inferer.HybridSlidingWindowInferer` (2D branch once per ROI slice, 3D
            branch and HFF in ``hybrid_window`` windows). ``False``: MONAI's ``SlidingWindowInferer`` with
            ``patch_size`` windows for both, as other fine networks always use.
        hybrid_window: H-DenseUNet's 3D windows with ``fast_inference`` (H, W, D voxels; 0 = the whole ROI along
            that axis); ``None``: whole ROI planes, ``patch_size[2]`` slices deep.
        hybrid_overlap: overlap of those 3D windows (fraction of the window, Gaussian blending); ``None``: ``overlap``
            (0.25 by default: every seam along D blended, as MONAI's sliding windows); 0: they tile the ROI.
        slice_batch: slices per 2D-network call with ``fast_inference``.
        mirror_axes: test-time mirroring of the liver/tumor network: its probabilities are averaged over the ROI
            as is and flipped along every combination of these spatial axes (0: x, 1: y, 2: z of the RAS image),
            ``2 ** len(mirror_axes)`` passes. Default ``()``: none (the paper does not mirror at test time);
            ``(0, 1)`` matches the training augmentation (mirroring in-plane).
        fine_spacing: voxel size in mm (x, y, z) the liver/tumor network works at: the ROI is resampled to it
            (trilinear) and the probabilities back to the ROI's grid; a value <= 0 keeps that axis's own spacing.
            ``None`` (the paper, section IV-A): the scanner's own resolution. Must match the training's
            ``fine_spacing`` (``configs/train.yaml``).
        restrict_to_coarse: keep liver and tumor only within ``roi_margin_mm`` of the coarse liver (its largest
            component, dilated by a box of that margin), background elsewhere in the ROI. The coarse network saw the
            whole abdomen in training, the liver/tumor network only the liver's box and margin, so far from the
            liver the coarse network is the better judge (spleen, abdominal wall). ``False``: the liver/tumor network
            decides everywhere in the ROI (the paper, section III-C-3).
    """

    def __init__(
        self,
        size: str = "paper",
        network_name: str = "hdenseunet",
        stage: str = "cascade",
        coarse: nn.Module | None = None,
        fine: nn.Module | None = None,
        coarse_spacing: Sequence[float] | None = None,
        roi_margin_mm: Sequence[float] = (10.0, 10.0, 5.0),
        patch_size: Sequence[int] = (224, 224, 12),
        overlap: float = 0.25,
        sw_batch_size: int = 1,
        liver_threshold: float = 0.5,
        default_spacing: Sequence[float] = (1.0, 1.0, 1.0),
        memory_efficient: bool = False,
        freeze_bn: bool = False,
        fast_inference: bool = True,
        hybrid_window: Sequence[int] | None = None,
        hybrid_overlap: float | None = None,
        slice_batch: int = 8,
        mirror_axes: Sequence[int] = (),
        fine_spacing: Sequence[float] | None = None,
        restrict_to_coarse: bool = False,
    ) -> None:
        super().__init__()
        memory_efficient, freeze_bn = as_bool(memory_efficient, "memory_efficient"), as_bool(freeze_bn, "freeze_bn")
        self.coarse = coarse if coarse is not None else CoarseLiverNet(in_channels=1, out_channels=2, size=size)
        if fine is None:
            if network_name not in FINE_NETWORKS:
                raise ValueError(f"network_name must be one of {sorted(FINE_NETWORKS)}, got {network_name!r}")
            options = (
                {"memory_efficient": memory_efficient, "freeze_bn": freeze_bn} if network_name == "hdenseunet" else {}
            )
            fine = FINE_NETWORKS[network_name](in_channels=1, out_channels=3, size=size, **options)
        self.fine = fine
        self.coarse_spacing = tuple(float(s) for s in (coarse_spacing or presets.coarse_spacing(size)))
        self.roi_margin_mm = tuple(float(m) for m in roi_margin_mm)
        self.patch_size = tuple(int(p) for p in patch_size)
        self.overlap = float(overlap)
        self.sw_batch_size = int(sw_batch_size)
        self.liver_threshold = float(liver_threshold)
        self.default_spacing = tuple(float(s) for s in default_spacing)
        self.fast_inference = as_bool(fast_inference, "fast_inference")
        self.hybrid_window = (
            (0, 0, self.patch_size[2]) if hybrid_window is None else tuple(int(w) for w in hybrid_window)
        )
        self.hybrid_overlap = self.overlap if hybrid_overlap is None else float(hybrid_overlap)
        self.slice_batch = int(slice_batch)
        self.mirror_axes = tuple(sorted({int(a) for a in mirror_axes}))
        self.fine_spacing = None if fine_spacing is None else tuple(float(s) for s in fine_spacing)
        self.restrict_to_coarse = as_bool(restrict_to_coarse, "restrict_to_coarse")
        if self.fine_spacing is not None and len(self.fine_spacing) != 3:
            raise ValueError(f"fine_spacing needs 3 values (x, y, z mm), got {fine_spacing}")
        if any(a not in (0, 1, 2) for a in self.mirror_axes):
            raise ValueError(f"mirror_axes must be spatial axes 0, 1, 2, got {tuple(mirror_axes)}")
        self.stage = "cascade"
        self.set_stage(stage)

    def set_stage(self, stage: str) -> LiverTumorCascade:
        """Select what ``forward`` does and which parameters train (the others get ``requires_grad=False``)."""
        if stage not in (*STAGES, "cascade"):
            raise ValueError(f"stage must be one of {(*STAGES, 'cascade')}, got {stage!r}")
        staged = hasattr(self.fine, "set_mode")  # H-DenseUNet: 2d, hybrid and joint modes
        if stage in ("2d", "hybrid") and not staged:
            raise ValueError(
                f"stage {stage!r} exists for H-DenseUNet only; "
                f"train {type(self.fine).__name__} in the stages coarse and joint"
            )
        self.stage = stage
        _requires_grad(self.coarse, stage == "coarse")
        fine_stage = stage in ("2d", "hybrid", "joint")
        if staged:  # set_mode sets requires_grad per branch (2D branch frozen in "hybrid"); inference runs "joint"
            self.fine.set_mode(stage if fine_stage else "joint")
        if not (staged and fine_stage):
            _requires_grad(self.fine, stage == "joint")
        return self

    @classmethod
    def from_torchscript(cls, module: torch.jit.ScriptModule, **kwargs: Any) -> LiverTumorCascade:
        """The whole cascade around an exported ``models/model.ts`` (``torch.jit.load`` of ``ckpt_export``).

        The exported module's ``coarse`` and ``fine`` TorchScript networks run inside this class's Python ROI logic
        with the settings stored in the module (``coarse_spacing``, ``roi_margin_mm``, ``patch_size``, ``overlap``,
        ``liver_threshold``, ``fast_inference``, ``hybrid_window``, ...); ``kwargs`` override them. So the exported
        networks run the path the eager module they were exported from runs, ``configs/inference.yaml``'s by
        default: with ``fast_inference`` the coarse network on whole slices and H-DenseUNet through
        :class:`HybridSlidingWindowInferer` (the compiled ``branch2d`` and ``fuse``; BatchNorms are not folded in a
        TorchScript module, the same arithmetic up to float rounding), otherwise MONAI's ``SlidingWindowInferer``.
        """
        names = ("coarse_spacing", "roi_margin_mm", "patch_size", "overlap", "sw_batch_size", "liver_threshold")
        names += ("default_spacing", "mirror_axes", "fine_spacing", "restrict_to_coarse")
        names += ("fast_inference", "hybrid_window", "hybrid_overlap", "slice_batch")
        settings = {name: getattr(module, name) for name in names if hasattr(module, name)}
        return cls(coarse=module.coarse, fine=module.fine, stage="cascade", **{**settings, **kwargs}).eval()

    def trainable_parameters(self) -> list[nn.Parameter]:
        """The parameters the current stage trains (give these to the optimizer)."""
        return [p for p in self.parameters() if p.requires_grad]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``(N, 1, H, W, D)`` HU-windowed image in [0, 1], RAS.

        Training stages: logits ``(N, 2, H, W, D)`` (coarse) or H-DenseUNet's output (see its ``forward``).
        ``"cascade"``: log-probabilities ``(N, 3, H, W, D)`` of background, liver, tumor on the input's grid, any
        H, W, D >= 1 (:meth:`segment_volumes`).

        Exported (``torch.jit.script``, ``torch.jit.trace``, ``torch.export`` / ONNX), ``"cascade"`` is the
        liver/tumor network on one ROI patch: logits ``(N, 3, H, W, D)``, H-DenseUNet's fused output in eval
        mode, H and W divisible by 32 and D by 4 (``fine.size_divisors``). The ROI search is Python and data
        dependent; :meth:`from_torchscript` runs it around an exported module.
        """
        if self.stage == "coarse":
            return self.coarse(x)
        if self.stage == "cascade" and not torch.jit.is_scripting():
            if not (torch.jit.is_tracing() or torch.compiler.is_exporting()):
                return self.segment_volumes(x)
        return self.fine(x)

    @torch.jit.export
    def coarse_logits(self, x: torch.Tensor) -> torch.Tensor:
        """The coarse liver network, for exported modules: ``(N, 1, H, W, D)`` image resampled to
        ``coarse_spacing`` -> logits ``(N, 2, H, W, D)`` (background, liver); H and W divisible by
        ``coarse.size_divisor`` (16 paper, 8 small)."""
        return self.coarse(x)

    @torch.jit.unused
    def segment_volumes(self, x: torch.Tensor) -> torch.Tensor:
        """The inference scheme on a batch of whole volumes ``(N, 1, H, W, D)`` -> log-probabilities
        ``(N, 3, H, W, D)``; voxel sizes from the MetaTensor affine, else ``default_spacing``."""
        spacings = voxel_spacings(x, len(x), self.default_spacing)
        plain = x.as_tensor() if isinstance(x, MetaTensor) else x
        out = torch.cat([self.segment_volume(plain[i : i + 1], spacings[i]) for i in range(len(plain))])
        # keep the input's metadata (affine, applied transforms) so that Invertd can map the output back
        return convert_to_dst_type(out, x, device=out.device)[0] if isinstance(x, MetaTensor) else out

    @torch.no_grad()
    def segment_volume(self, image: torch.Tensor, spacing: Sequence[float]) -> torch.Tensor:
        """The inference scheme on one volume ``(1, 1, H, W, D)`` of voxel size ``spacing`` (mm) → log-probs."""
        liver = self.coarse_liver_mask(image, spacing)
        box = self.liver_box(liver, spacing)
        roi = image[(..., *[slice(lo, hi) for lo, hi in box])]
        work_size = resampled_size(roi.shape[2:], spacing, self.fine_spacing)
        if work_size != list(roi.shape[2:]):
            work = F.interpolate(roi, size=work_size, mode="trilinear", align_corners=False)
            probs_roi = F.interpolate(
                self.roi_probabilities(work), size=list(roi.shape[2:]), mode="trilinear", align_corners=False
            )
        else:
            probs_roi = self.roi_probabilities(roi)
        probs = torch.zeros((1, probs_roi.shape[1], *image.shape[2:]), dtype=probs_roi.dtype, device=image.device)
        probs[:, 0] = 1.0  # background outside the ROI
        probs[(slice(None), slice(None), *[slice(lo, hi) for lo, hi in box])] = probs_roi
        if self.restrict_to_coarse and liver.any():
            near_liver = dilate_box(liver, [int(np.ceil(m / s)) for m, s in zip(self.roi_margin_mm, spacing)])
            probs[:, 1:] *= near_liver
            probs[:, 0] = torch.where(near_liver, probs[:, 0], torch.ones_like(probs[:, 0]))
        return torch.log(probs.clamp_min(1e-6))

    def roi_probabilities(self, roi: torch.Tensor) -> torch.Tensor:
        """The liver/tumor network over a whole ROI ``(1, 1, h, w, d)`` (already at ``fine_spacing``) ->
        probabilities ``(1, 3, h, w, d)``: the one path that inference and validation share.

        H-DenseUNet with ``fast_inference``: :class:`HybridSlidingWindowInferer` on an inference copy (BatchNorms
        folded), the 2D branch once per slice, 3D windows of ``hybrid_window`` blended with a Gaussian at
        ``hybrid_overlap`` (default: ``overlap``) along every axis they tile; otherwise MONAI's
        ``SlidingWindowInferer`` with ``patch_size`` windows, ``overlap``, Gaussian blending. Mirrored over
        ``mirror_axes`` if set."""
        fine: nn.Module = self.fine
        if self.fast_inference and _is_a(self.fine, HDenseUNet):  # 2D branch once per ROI slice
            inferer = HybridSlidingWindowInferer(
                roi_size=self.hybrid_window, overlap=self.hybrid_overlap, slice_batch=self.slice_batch, mode="gaussian"
            )
            fine = _inference_network(self.fine)  # BatchNorms folded, channels-last weights
        else:
            inferer = SlidingWindowInferer(
                roi_size=self.patch_size, sw_batch_size=self.sw_batch_size, overlap=self.overlap, mode="gaussian"
            )
        return self.mirrored_probabilities(roi, inferer, fine)

    @torch.no_grad()
    def validation_logits(self, x: torch.Tensor) -> torch.Tensor:
        """What validation scores, computed as inference computes it, for the current training stage.

        ``"coarse"``: ``x`` ``(N, 1, H, W, D)`` a volume already at ``coarse_spacing`` -> coarse logits, by the same
        whole-slice path as :meth:`coarse_liver_mask`. Other stages: ``x`` a liver ROI (already at
        ``fine_spacing``) -> log-probabilities ``(N, 3, H, W, D)`` by :meth:`roi_probabilities`. Needs eval mode.
        """
        plain = x.as_tensor() if isinstance(x, MetaTensor) else x
        if self.stage == "coarse":
            out = torch.cat([self.coarse_volume_logits(plain[i : i + 1]) for i in range(len(plain))])
        else:
            out = torch.cat([self.roi_probabilities(plain[i : i + 1]).clamp_min(1e-6).log() for i in range(len(plain))])
        return convert_to_dst_type(out, x, device=out.device)[0] if isinstance(x, MetaTensor) else out

    def mirrored_probabilities(
        self, roi: torch.Tensor, inferer: Callable, network: nn.Module | None = None
    ) -> torch.Tensor:
        """Softmax of the liver/tumor network (``network``, default ``self.fine``) over ``roi`` ``(1, 1, h, w, d)``
        -> ``(1, 3, h, w, d)``, averaged over every combination of flips along ``mirror_axes`` (each flipped result
        flipped back first)."""
        network = self.fine if network is None else network
        flips = [
            [2 + a for a in combo]
            for n in range(len(self.mirror_axes) + 1)
            for combo in combinations(self.mirror_axes, n)
        ]
        total: torch.Tensor | None = None
        for dims in flips:
            flipped = torch.flip(roi, dims) if dims else roi
            probs = torch.softmax(inferer(flipped, network), dim=1)
            probs = torch.flip(probs, dims) if dims else probs
            total = probs if total is None else total + probs
        assert total is not None
        return total / len(flips)

    def coarse_liver_mask(self, image: torch.Tensor, spacing: Sequence[float]) -> torch.Tensor:
        """Boolean liver mask ``(H, W, D)`` from the coarse network run at ``coarse_spacing``; largest component."""
        size = image.shape[2:]
        coarse_size = [max(1, round(n * s / c)) for n, s, c in zip(size, spacing, self.coarse_spacing)]
        resampled = F.interpolate(image, size=coarse_size, mode="trilinear", align_corners=False)
        logits = self.coarse_volume_logits(resampled)
        liver_prob = torch.softmax(logits, dim=1)[:, 1:2]
        liver_prob = F.interpolate(liver_prob, size=list(size), mode="trilinear", align_corners=False)
        mask = liver_prob[0] >= self.liver_threshold
        if not mask.any():
            return mask[0]
        return get_largest_connected_component_mask(mask)[0].bool()

    def coarse_volume_logits(self, volume: torch.Tensor) -> torch.Tensor:
        """The coarse network over a whole volume ``(1, 1, H, W, D)`` at ``coarse_spacing`` -> logits
        ``(1, 2, H, W, D)``: with ``fast_inference`` each slice once, whole (BatchNorms folded); otherwise MONAI's
        ``SlidingWindowInferer`` in ``patch_size`` windows."""
        if self.fast_inference and _is_a(self.coarse, CoarseLiverNet):  # whole slices, each once
            with torch.inference_mode():
                logits = whole_slice_inference(
                    _inference_network(self.coarse.unet),  # BatchNorms folded, channels-last weights
                    volume,
                    self.coarse.num_adjacent_slices,
                    self.coarse.size_divisor,
                    self.slice_batch,
                )
            return logits.clone()  # an ordinary tensor outside inference mode
        inferer = SlidingWindowInferer(roi_size=self.patch_size, sw_batch_size=self.sw_batch_size, overlap=0.0)
        return inferer(volume, self.coarse)

    def liver_box(self, liver: torch.Tensor, spacing: Sequence[float]) -> list[tuple[int, int]]:
        """``[(start, end)]`` per axis: the liver's bounding box plus the margin, at least ``patch_size`` wide
        where the volume allows, clipped to the volume (:func:`~bundle.networks.volume_geometry.liver_roi_box`, the
        rule training's ``LiverROI`` uses too). An empty mask gives the whole volume."""
        shape = liver.shape
        if not liver.any():
            return [(0, n) for n in shape]
        nonzero = torch.nonzero(liver)
        start = [int(v) for v in nonzero.amin(0)]
        end = [int(v) + 1 for v in nonzero.amax(0)]
        return liver_roi_box(start, end, shape, spacing, self.roi_margin_mm, self.patch_size)


def _is_a(module: nn.Module, cls: type) -> bool:
    """``isinstance(module, cls)``, or ``module`` is a TorchScript compilation of ``cls`` (``from_torchscript``)."""
    if isinstance(module, cls):
        return True
    return isinstance(module, torch.jit.ScriptModule) and getattr(module, "original_name", None) == cls.__name__


def _inference_network(module: nn.Module) -> nn.Module:
    """:func:`inference_copy` (BatchNorms folded, channels-last weights) of an eager network; a TorchScript network
    as it is (its modules cannot be replaced)."""
    return module if isinstance(module, torch.jit.ScriptModule) else inference_copy(module)


def _requires_grad(module: nn.Module, flag: bool) -> None:
    """``module.requires_grad_(flag)``, also for TorchScript modules (which lack ``requires_grad_``)."""
    for p in module.parameters():
        p.requires_grad_(flag)

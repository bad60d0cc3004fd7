"""H-DenseUNet: hybrid 2D + 3D DenseUNet with a hybrid feature fusion (HFF) layer.

Li et al., "H-DenseUNet: Hybrid Densely Connected UNet for Liver and Tumor Segmentation from CT Volumes",
IEEE TMI 2018, section III-B, equations (1)-(4) and Fig. 2(b):

- ``I2d = F(I)``: every axial slice with its two neighbours becomes one 2D sample (``slices_from_volume``);
- ``X2d, y2d = f2d(I2d)``: 2D DenseUNet-167 features (64 channels) and logits; ``F⁻¹`` puts them back on the
  volume (``volume_from_slices``): ``X2d'``, ``logits2d'``; ``ŷ2d' = softmax(logits2d')``;
- ``X3d = f3d(concat(I, ŷ2d'))``: 3D DenseUNet-65 on the image and the 2D class probabilities (4 channels);
- ``Z = X3d + X2d'``; HFF: 3x3x3 conv (64) → dropout 0.3 → BN → ReLU → 1x1x1 conv to the classes (as the
  released code: ``Conv3D(64, 3x3x3) + Dropout(0.3) + BN + ReLU + Conv3D(3, 1x1x1)``).

The released code fed the 3D net the 2D *logits* scaled by 250 (its images were in HU); we follow the paper and
feed softmax probabilities next to an image already scaled to [0, 1], so both inputs share one range.

Training stages (section III-C), chosen with :meth:`HDenseUNet.set_mode`:

- ``"2d"``: only the 2D branch runs and trains; output = 2D logits on the volume.
- ``"hybrid"``: the 2D branch is frozen (no grad, eval mode, run under ``torch.no_grad()``); the 3D branch and
  the HFF layer train on ``L(y, ŷH)``; output = fused logits.
- ``"joint"``: everything trains on ``L(y, ŷH) + λ L(y, ŷ2d')``; in training mode the output is
  ``torch.stack([fused, logits_2d], dim=1)`` (like MONAI's DynUNet deep supervision), in eval mode the fused
  logits only.
"""

from __future__ import annotations

import math

import torch
import torch.nn as nn
from monai.networks.layers.factories import Conv
from monai.networks.layers.utils import get_act_layer, get_norm_layer

from bundle.config_values import as_bool

from .denseunet import DenseUNet
from .presets import dense2d_config, dense3d_config, hff_config
from .slices import slices_from_volume, volume_from_slices

__all__ = ["MODES", "HDenseUNet"]

MODES = ("2d", "hybrid", "joint")


class HDenseUNet(nn.Module):
    """H-DenseUNet (Li et al., IEEE TMI 2018); defaults give the paper configuration.

    Args:
        in_channels: image channels ``C`` (1: HU-windowed CT scaled to [0, 1]). The 2D branch sees ``3C`` channels
            (three adjacent slices), the 3D branch ``C + out_channels``.
        out_channels: classes (3: background, liver, tumour).
        size: ``"paper"`` or ``"small"``, the presets of :mod:`bundle.networks.presets`.
        dense2d: :class:`DenseUNet` keyword arguments that update the 2D preset (e.g. ``{"dropout_prob": 0.3}``).
        dense3d: the same for the 3D preset.
        hff_channels: width of the HFF conv; ``None`` takes the size preset (64 paper, 16 small).
        hff_dropout: dropout of the HFF layer; ``None`` takes the preset (0.3).
        mode: ``"2d"``, ``"hybrid"`` or ``"joint"`` (see the module docstring); change it with :meth:`set_mode` or
            by assigning ``net.mode``, which applies the same freezing.
        memory_efficient: checkpoint the dense micro-blocks of both branches (see :class:`DenseUNet`).
        freeze_bn: keep every BatchNorm in eval mode with frozen affine parameters, as the released code did.

    The 2D and 3D branches must end with the same number of feature channels (``Z = X3d + X2d'``).

    State-dict names: ``dense2d.*`` (2D branch, ``dense2d.features.*`` is the DenseNet-161 encoder), ``dense3d.*``
    (3D branch), ``hff.*`` (fusion layer and classifier). The 3D branch's own 1x1x1 classifier is built (so
    ``dense3d`` is a complete DenseUNet-65) but never run; its parameters are frozen so DDP sees no unused
    trainable parameter.

    Examples::

        >>> net = HDenseUNet(size="small").eval()
        >>> net(torch.rand(1, 1, 96, 96, 12)).shape
        torch.Size([1, 3, 96, 96, 12])
    """

    __jit_unused_properties__ = ["mode"]

    def __init__(
        self,
        in_channels: int = 1,
        out_channels: int = 3,
        size: str = "paper",
        dense2d: dict | None = None,
        dense3d: dict | None = None,
        hff_channels: int | None = None,
        hff_dropout: float | None = None,
        mode: str = "joint",
        memory_efficient: bool = False,
        freeze_bn: bool = False,
    ) -> None:
        super().__init__()
        memory_efficient = as_bool(memory_efficient, "memory_efficient")
        cfg2d = {**dense2d_config(size), "memory_efficient": memory_efficient, **(dense2d or {})}
        cfg3d = {**dense3d_config(size), "memory_efficient": memory_efficient, **(dense3d or {})}
        hff = hff_config(size)
        hff_channels = hff["hff_channels"] if hff_channels is None else hff_channels
        hff_dropout = hff["hff_dropout"] if hff_dropout is None else hff_dropout
        self.in_channels = in_channels
        self.out_channels = out_channels
        self.dense2d = DenseUNet(2, 3 * in_channels, out_channels, **cfg2d)
        self.dense3d = DenseUNet(3, in_channels + out_channels, out_channels, **cfg3d)
        if self.dense2d.feature_channels != self.dense3d.feature_channels:
            raise ValueError(
                "the 2D and 3D branches must end with the same number of feature channels for Z = X3d + X2d', got "
                f"dense2d decoder_channels[-1]={self.dense2d.feature_channels} and "
                f"dense3d decoder_channels[-1]={self.dense3d.feature_channels}"
            )
        conv3d = Conv[Conv.CONV, 3]
        self.hff = nn.Sequential()
        self.hff.add_module("conv", conv3d(self.dense3d.feature_channels, hff_channels, 3, padding=1, bias=False))
        self.hff.add_module("dropout", nn.Dropout(hff_dropout))
        self.hff.add_module("norm", get_norm_layer(name="batch", spatial_dims=3, channels=hff_channels))
        self.hff.add_module("act", get_act_layer(name=("relu", {"inplace": True})))
        self.hff.add_module("classifier", conv3d(hff_channels, out_channels, 1, bias=True))
        nn.init.kaiming_normal_(self.hff.conv.weight)
        nn.init.zeros_(self.hff.classifier.bias)
        # H and W must suit both branches, D only the 3D one
        self.size_divisors = [
            math.lcm(self.dense2d.size_divisors[0], self.dense3d.size_divisors[0]),
            math.lcm(self.dense2d.size_divisors[1], self.dense3d.size_divisors[1]),
            self.dense3d.size_divisors[2],
        ]
        self.freeze_bn = as_bool(freeze_bn, "freeze_bn")
        self._mode = "joint"
        self.set_mode(mode)

    # ---- training stages -------------------------------------------------------------------------------------
    @property
    def mode(self) -> str:
        """The training stage; assigning it (``net.mode = "hybrid"``) is the same as :meth:`set_mode`."""
        return self._mode

    @mode.setter
    def mode(self, value: str) -> None:
        self.set_mode(value)

    def set_mode(self, mode: str) -> HDenseUNet:
        """Select the training stage and set ``requires_grad`` accordingly; returns ``self``.

        ``"2d"``: the 2D branch trains, the 3D branch and HFF are frozen (they do not run). ``"hybrid"``: the 2D
        branch is frozen and kept in eval mode. ``"joint"``: everything trains. In every mode the 3D branch's own
        classifier stays frozen (never run) and, with ``freeze_bn``, so do all BatchNorm affine parameters.
        Any other ``requires_grad`` setting made by hand is overwritten.
        """
        if mode not in MODES:
            raise ValueError(f"mode must be one of {MODES}, got {mode!r}")
        self._mode = mode
        trainable = {"2d": (True, False), "hybrid": (False, True), "joint": (True, True)}[mode]
        for p in self.dense2d.parameters():
            p.requires_grad_(trainable[0])
        for module in (self.dense3d, self.hff):
            for p in module.parameters():
                p.requires_grad_(trainable[1])
        for p in self.dense3d.classifier.parameters():
            p.requires_grad_(False)
        if self.freeze_bn:
            for m in self.modules():
                if isinstance(m, nn.modules.batchnorm._BatchNorm):
                    for p in m.parameters():
                        p.requires_grad_(False)
        return self.train(self.training)

    def train(self, mode: bool = True) -> HDenseUNet:
        """``nn.Module.train``, then keep the frozen parts in eval mode (the 2D branch in ``"hybrid"``, every
        BatchNorm with ``freeze_bn``)."""
        super().train(mode)
        if self._mode == "hybrid":
            self.dense2d.eval()
        if self.freeze_bn:
            # Frozen by eval mode, never by momentum: Keras BatchNormalization(momentum=1) means "never update the
            # running statistics" (moving = momentum·moving + (1-momentum)·batch), whereas PyTorch momentum=1 means
            # "replace them with each batch's statistics" (running = (1-momentum)·running + momentum·batch).
            for m in self.modules():
                if isinstance(m, nn.modules.batchnorm._BatchNorm):
                    m.eval()
        return self

    # ---- the 2D branch and the fusion: forward and HybridSlidingWindowInferer both call these ------------------
    def branch2d(
        self, stacks: torch.Tensor, fast: bool = False, channels_last: bool = True
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """The 2D branch f2d on stacks of adjacent slices ``F(I)`` ``(B, 3·in_channels, H, W)`` -> features
        ``X2d`` ``(B, F, H, W)`` and logits ``(B, out_channels, H, W)`` (equation (1)).

        ``fast``: the inference path, for eval mode (:meth:`DenseUNet.inference_features`: preallocated dense
        blocks, ``channels_last`` memory layout); same outputs up to float rounding.
        """
        if fast and not torch.jit.is_scripting():
            feat = self.dense2d.inference_features(stacks, channels_last)
            return feat, self.dense2d.classifier(self.dense2d.dropout(feat))
        return self.dense2d(stacks)

    def fuse(
        self,
        x: torch.Tensor,
        feat2d: torch.Tensor,
        prob2d: torch.Tensor,
        fast: bool = False,
        channels_last: bool = True,
    ) -> torch.Tensor:
        """The 3D branch and the HFF layer (equations (3)-(4)): ``hff(f3d(concat(I, ŷ2d')) + X2d')``.

        ``x``: image ``(N, in_channels, H, W, D)``; ``feat2d``: the 2D features on the volume ``X2d'``
        ``(N, F, H, W, D)``; ``prob2d``: the 2D class probabilities ``ŷ2d'`` ``(N, out_channels, H, W, D)`` ->
        fused logits ``(N, out_channels, H, W, D)``. ``fast``: as in :meth:`branch2d`, for the 3D branch.
        """
        inputs = torch.cat([x, prob2d], dim=1)
        if fast and not torch.jit.is_scripting():
            feat3d = self.dense3d.inference_features(inputs, channels_last)
        else:
            feat3d = self.dense3d.forward_features(inputs)
        return self.hff(feat3d + feat2d)

    # ---- forward ----------------------------------------------------------------------------------------------
    def _branch2d_on_volume(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``(N, C, H, W, D)`` -> 2D features ``(N, F, H, W, D)`` and 2D logits ``(N, out, H, W, D)`` (F, f2d, F⁻¹)."""
        n = x.shape[0]
        feat, logits = self.branch2d(slices_from_volume(x))
        return volume_from_slices(feat, n), volume_from_slices(logits, n)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``(N, in_channels, H, W, D)`` HU-windowed CT in [0, 1] -> logits.

        Returns ``(N, out_channels, H, W, D)`` in eval mode (every mode; 2D logits in ``"2d"``, fused logits
        otherwise) and in training mode for ``"2d"``/``"hybrid"``; ``(N, 2, out_channels, H, W, D)`` =
        ``stack([fused, logits_2d], 1)`` in training mode for ``"joint"``. H and W must be divisible by
        ``size_divisors[0:2]`` (32 for both presets) and, unless mode is ``"2d"``, D by ``size_divisors[2]`` (4).
        Training needs more than one value per channel at the coarsest 3D level for BatchNorm: with batch 1 use
        H, W >= 64 (e.g. 224x224x12 patches); 32x32x4 works in eval mode only.
        """
        if x.dim() != 5 or x.shape[1] != self.in_channels:
            raise ValueError(f"HDenseUNet expects (N, {self.in_channels}, H, W, D), got shape {list(x.shape)}")
        spatial = x.shape[2:]
        check_d = self._mode != "2d"
        if (
            spatial[0] % self.size_divisors[0] != 0
            or spatial[1] % self.size_divisors[1] != 0
            or (check_d and spatial[2] % self.size_divisors[2] != 0)
        ):
            raise ValueError(
                f"HDenseUNet: H and W must be divisible by {self.size_divisors[0]} and D by {self.size_divisors[2]} "
                f"for this configuration, got (H, W, D) = {list(spatial)}"
            )
        if self._mode == "hybrid":
            with torch.no_grad():
                feat2d, logits2d = self._branch2d_on_volume(x)
        else:
            feat2d, logits2d = self._branch2d_on_volume(x)
        if self._mode == "2d":
            return logits2d
        fused = self.fuse(x, feat2d, torch.softmax(logits2d, dim=1))
        if self.training and self._mode == "joint":
            return torch.stack([fused, logits2d], dim=1)
        return fused

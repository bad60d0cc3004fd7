"""Cascaded ResNet: dilated 2D ResNets in a cascade, each fed the image and the previous step's probabilities.

Bi, Kim, Kumar, Feng, "Automatic Liver Lesion Detection using Cascaded Deep Residual Networks", arXiv:1704.02703
(ISBI 2017 LiTS challenge), sections 2.3-2.5, Table 1, Fig. 2.

Per-step network (Table 1, ``stages`` of :func:`~bundle.networks.seed_presets.cascaded_resnet_config`): a 3x3
conv (64), then residual blocks of pre-activation convs (BN-ReLU-conv; ``x_{l+1} = x_l + F(x_l)``, equation (1),
with a 1x1 projection of the pre-activated input where the width or stride changes): three stages at strides 2
(128, 256, 512 wide; 3 + 3 + 6 blocks), then stride-1 stages whose second 3x3 conv is dilated by 2 (512 -> 1024),
two bottleneck blocks dilated by 4 (1x1 -> 3x3 -> 1x1 to 2048 and 4096), a 3x3 conv (512) dilated by 12 and a 3x3
classifier dilated by 12. This is ResNet-38 of Wu et al. ("Wider or Deeper", the paper's ref. [13]) as a
segmentation network with output stride 8 (504 -> 63). The classifier's scores are upsampled to the input size
by bilinear interpolation: the paper adds "convolutional and deconvolutional layers" as FCN without giving them;
FCN's deconvolution is initialised bilinear (``upsample_mode="deconv"`` learns a transposed conv instead). Table 1
has 2 outputs per network; here ``out_channels`` (3: background, liver, tumor) softmax logits.

Cascade (section 2.4, equation (3), Fig. 2): step 1 sees the image ``I`` only; every later step sees ``I`` and the
previous step's liver and tumor probabilities (``Y^v``, ``Y^t``: softmax channels 1 and 2, ``out_channels - 1``
extra input channels) and refines them. The steps are separate networks (their inputs differ, and the paper
trains "the ResNet" and then "the cascaded ResNet" on its estimates); the paper's test time uses two steps. By
default the probabilities passed on are detached (each step learns from the previous step's estimates, as in the
paper's step-by-step training) and, in training mode, ``forward`` returns every step's logits so each step gets
its own loss (``stack([last, ..., first], dim=1)``, MONAI's deep-supervision layout, e.g.
``monai.losses.DeepSupervisionLoss``). Eval mode returns the last step's logits ``(N, out_channels, H, W, D)``.

Multi-scale fusion at test time (section 2.4): the paper resizes each 512x512 slice to 512, 544, ..., 640 (step 32),
runs the cascade at each size and averages the outputs. ``multiscale_test=True`` does this in eval mode with
``test_scales`` (default the paper's 512..640 / 512 = 1, 1.0625, ..., 1.25; each size rounded to a multiple of the
network's stride of 8), averaging the softmax probabilities resized back to the input size, and returns their log
(logits whose softmax is the averaged probabilities). It is ignored in training mode.

The paper works on single axial slices (``num_adjacent_slices=1``) windowed to [-160, 240] HU; the bundle's
[-200, 250] window scaled to [0, 1] is used instead. Post-processing (hole filling per slice) belongs to the
bundle's post-processing, not to the network. Loss: the paper minimises a per-pixel (cross-entropy) loss with SGD;
``torch.nn.CrossEntropyLoss`` per step, or MONAI's ``DiceCELoss(to_onehot_y=True, softmax=True)``.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn as nn
import torch.nn.functional as F
from monai.networks.blocks import UpSample
from monai.networks.layers.factories import Conv
from monai.networks.layers.utils import get_act_layer, get_norm_layer

from bundle.config_values import as_bool

from .seed_presets import cascaded_resnet_config
from .slices import slices_from_volume, volume_from_slices

__all__ = ["BI2017_TEST_SCALES", "CascadedResNet"]

# Section 2.4: "size from 512 x 512 to 640 x 640 with an increment of 32", as factors of the 512 x 512 slices.
BI2017_TEST_SCALES = (1.0, 1.0625, 1.125, 1.1875, 1.25)


class _PreActBlock(nn.Module):
    """Residual block ``x + F(x)``, ``F`` a chain of BN-ReLU-conv (kernel, width, dilation) with the stride on the
    first conv; the shortcut is a 1x1 conv of the pre-activated input where the width or stride changes."""

    def __init__(
        self,
        spatial_dims: int,
        in_channels: int,
        convs: Sequence[Sequence[int]],
        stride: int,
        act: str | tuple,
        norm: str | tuple,
    ) -> None:
        super().__init__()
        conv_type = Conv[Conv.CONV, spatial_dims]
        self.norm0 = get_norm_layer(name=norm, spatial_dims=spatial_dims, channels=in_channels)
        self.act0 = get_act_layer(name=act)
        self.body = nn.Sequential()
        channels = in_channels
        for i, (kernel, width, dilation) in enumerate(convs):
            if i > 0:
                self.body.append(get_norm_layer(name=norm, spatial_dims=spatial_dims, channels=channels))
                self.body.append(get_act_layer(name=act))
            padding = dilation * (kernel - 1) // 2
            s = stride if i == 0 else 1
            self.body.append(
                conv_type(channels, width, kernel, stride=s, padding=padding, dilation=dilation, bias=False)
            )
            channels = width
        self.out_channels = channels
        self.project = stride != 1 or channels != in_channels
        self.shortcut: nn.Module = nn.Identity()
        if self.project:
            self.shortcut = conv_type(in_channels, channels, kernel_size=1, stride=stride, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        pre = self.act0(self.norm0(x))
        return self.body(pre) + (self.shortcut(pre) if self.project else x)


class _DilatedResNet(nn.Module):
    """One cascade step (Table 1): ``(B, in_channels, H, W) -> (B, out_channels, H, W)`` logits."""

    def __init__(
        self,
        spatial_dims: int,
        in_channels: int,
        out_channels: int,
        stem_channels: int,
        stages: Sequence[Sequence],
        head_channels: int,
        head_dilation: int,
        act: str | tuple,
        norm: str | tuple,
        dropout_prob: float,
        upsample_mode: str,
    ) -> None:
        super().__init__()
        conv_type = Conv[Conv.CONV, spatial_dims]
        self.stem = conv_type(in_channels, stem_channels, kernel_size=3, padding=1, bias=False)
        self.stages = nn.Sequential()
        channels = stem_channels
        self.output_stride = 1
        for num_blocks, stride, convs in stages:
            for b in range(num_blocks):
                block = _PreActBlock(spatial_dims, channels, convs, stride if b == 0 else 1, act, norm)
                self.stages.append(block)
                channels = block.out_channels
            self.output_stride *= stride
        pad = head_dilation
        self.head = nn.Sequential(
            get_norm_layer(name=norm, spatial_dims=spatial_dims, channels=channels),
            get_act_layer(name=act),
            conv_type(channels, head_channels, 3, padding=pad, dilation=head_dilation, bias=False),
            get_norm_layer(name=norm, spatial_dims=spatial_dims, channels=head_channels),
            get_act_layer(name=act),
            nn.Dropout(dropout_prob),
            conv_type(head_channels, out_channels, 3, padding=pad, dilation=head_dilation, bias=True),
        )
        self.upsample: nn.Module = nn.Identity()
        if self.output_stride > 1:
            self.upsample = UpSample(
                spatial_dims,
                out_channels,
                out_channels,
                scale_factor=self.output_stride,
                mode=upsample_mode,
                interp_mode="linear",
                align_corners=False,
            )
        for m in self.modules():
            if isinstance(m, conv_type):
                nn.init.kaiming_normal_(m.weight)
                if m.bias is not None:
                    nn.init.zeros_(m.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.upsample(self.head(self.stages(self.stem(x))))


class CascadedResNet(nn.Module):
    """Cascaded dilated ResNets with multi-scale test fusion (Bi et al. 2017), slice by slice on volumes.

    The module docstring describes the network, the cascade and the multi-scale fusion.

    Args:
        in_channels: image channels ``C`` (1: HU-windowed CT in [0, 1]).
        out_channels: classes (3: background, liver, tumor); steps after the first get the ``out_channels - 1``
            foreground probabilities of the previous step as extra input channels.
        size: ``"paper"`` or ``"small"``, the presets of :func:`~bundle.networks.seed_presets.cascaded_resnet_config`.
        num_cascade_steps: number of ResNets run in sequence (paper: 2, "ResNet" then "cascaded ResNet").
        multiscale_test: in eval mode, fuse the cascade's outputs over ``test_scales``.
        test_scales: in-plane resize factors for the multi-scale fusion (default: the paper's 512..640 / 512).
        num_adjacent_slices: 1 (the paper: single axial slices) or an odd stack depth (edge slices repeated).
        detach_probabilities: stop gradients between steps (each step learns from the previous step's estimates).
        stem_channels, stages, head_channels, head_dilation: per-step ResNet plan; ``None`` takes the preset.
        act: activation (name or ``(name, kwargs)``).
        norm: normalisation (name or ``(name, kwargs)``).
        dropout_prob: dropout before each step's classifier.
        upsample_mode: ``"nontrainable"`` (bilinear) or ``"deconv"`` (learned transposed conv), MONAI ``UpSample``.

    Examples::

        >>> net = CascadedResNet(size="small", multiscale_test=True).eval()
        >>> net(torch.rand(1, 1, 64, 64, 4)).shape
        torch.Size([1, 3, 64, 64, 4])
    """

    def __init__(
        self,
        in_channels: int = 1,
        out_channels: int = 3,
        size: str = "paper",
        num_cascade_steps: int = 2,
        multiscale_test: bool = False,
        test_scales: Sequence[float] = BI2017_TEST_SCALES,
        num_adjacent_slices: int = 1,
        detach_probabilities: bool = True,
        stem_channels: int | None = None,
        stages: Sequence[Sequence] | None = None,
        head_channels: int | None = None,
        head_dilation: int | None = None,
        act: str | tuple = ("relu", {"inplace": True}),
        norm: str | tuple = "batch",
        dropout_prob: float = 0.0,
        upsample_mode: str = "nontrainable",
    ) -> None:
        super().__init__()
        if num_cascade_steps < 1:
            raise ValueError(f"num_cascade_steps must be at least 1, got {num_cascade_steps}")
        if num_adjacent_slices < 1 or num_adjacent_slices % 2 == 0:
            raise ValueError(f"num_adjacent_slices must be a positive odd number, got {num_adjacent_slices}")
        if len(test_scales) < 1 or any(s <= 0 for s in test_scales):
            raise ValueError(f"test_scales must be positive resize factors, got {test_scales}")
        if out_channels < 2:
            raise ValueError(f"out_channels must be at least 2 (background + foreground), got {out_channels}")
        given = {
            "stem_channels": stem_channels,
            "stages": stages,
            "head_channels": head_channels,
            "head_dilation": head_dilation,
        }
        cfg = {**cascaded_resnet_config(size), **{k: v for k, v in given.items() if v is not None}}
        self.in_channels = in_channels
        self.out_channels = out_channels
        self.num_adjacent_slices = num_adjacent_slices
        self.multiscale_test = as_bool(multiscale_test, "multiscale_test")
        self.test_scales = [float(s) for s in test_scales]
        self.detach_probabilities = as_bool(detach_probabilities, "detach_probabilities")
        image_channels = in_channels * num_adjacent_slices
        step_args = {**cfg, "act": act, "norm": norm, "dropout_prob": dropout_prob, "upsample_mode": upsample_mode}
        self.steps = nn.ModuleList()
        for i in range(num_cascade_steps):
            step_in = image_channels if i == 0 else image_channels + out_channels - 1
            self.steps.append(_DilatedResNet(2, step_in, out_channels, **step_args))
        self.size_divisor = int(self.steps[0].output_stride)

    @property
    def num_cascade_steps(self) -> int:
        return len(self.steps)

    def cascade(self, x: torch.Tensor) -> list[torch.Tensor]:
        """``(B, image channels, H, W)`` slices -> every step's logits ``(B, out_channels, H, W)``, first to last."""
        outputs: list[torch.Tensor] = []
        logits = x
        for i, step in enumerate(self.steps):
            if i == 0:
                logits = step(x)
            else:
                probs = torch.softmax(logits, dim=1)[:, 1:]  # Y^v (liver), Y^t (tumor) of equation (3)
                if self.detach_probabilities:
                    probs = probs.detach()
                logits = step(torch.cat([x, probs], dim=1))
            outputs.append(logits)
        return outputs

    def multiscale(self, x: torch.Tensor) -> torch.Tensor:
        """Multi-scale fusion: ``(B, C, H, W)`` -> log of the mean softmax over ``test_scales`` ``(B, out, H, W)``."""
        h, w = x.shape[-2], x.shape[-1]
        mean_prob = torch.zeros(x.shape[0], self.out_channels, h, w, dtype=x.dtype, device=x.device)
        for s in self.test_scales:
            hs = max(1, int(h * s / self.size_divisor + 0.5)) * self.size_divisor  # nearest multiple of the stride
            ws = max(1, int(w * s / self.size_divisor + 0.5)) * self.size_divisor
            xs = x if (hs == h and ws == w) else F.interpolate(x, size=[hs, ws], mode="bilinear", align_corners=False)
            logits = self.cascade(xs)[-1]
            if hs != h or ws != w:
                logits = F.interpolate(logits, size=[h, w], mode="bilinear", align_corners=False)
            mean_prob = mean_prob + torch.softmax(logits, dim=1)
        return torch.log((mean_prob / len(self.test_scales)).clamp_min(1e-7))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``(N, in_channels, H, W, D)`` -> ``(N, out_channels, H, W, D)`` (eval) or ``(N, steps, out_channels, H, W,
        D)`` (training: last step first). H and W divisible by ``size_divisor`` (8), any D; else ``ValueError``."""
        if x.dim() != 5 or x.shape[1] != self.in_channels:
            raise ValueError(f"CascadedResNet expects (N, {self.in_channels}, H, W, D), got shape {list(x.shape)}")
        if x.shape[2] % self.size_divisor != 0 or x.shape[3] % self.size_divisor != 0:
            raise ValueError(
                f"CascadedResNet: H and W must be divisible by {self.size_divisor} (the ResNet's output stride), "
                f"got (H, W) = {list(x.shape[2:4])}"
            )
        n = x.shape[0]
        slices = slices_from_volume(x, self.num_adjacent_slices)
        if not self.training:
            logits = self.multiscale(slices) if self.multiscale_test else self.cascade(slices)[-1]
            return volume_from_slices(logits, n)
        outputs = self.cascade(slices)
        return torch.stack([volume_from_slices(o, n) for o in outputs[::-1]], dim=1)

    def step_parameter_counts(self) -> list[int]:
        """Parameters of each cascade step's ResNet."""
        return [sum(p.numel() for p in step.parameters()) for step in self.steps]

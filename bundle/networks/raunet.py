"""RA-UNet: a U-Net of pre-activation residual blocks whose long skips pass through attention residual modules.

Jin, Meng, Sun, Wei, Su, "RA-UNet: A hybrid deep attention-aware network to extract liver and tumor in CT scans",
arXiv:1811.01328 (Frontiers in Bioengineering and Biotechnology 2020), section III-D, Figs. 4-5, Tables II and III.

Layer plan (Tables II and III; ``channels = (Conv1, Res1, ..., Res5)``, ``pool_sizes`` one per max pool):

- Conv1: 3x3(x3) conv-BN-ReLU; then five levels of max pool + residual block (Res1..Res4, Res5 + Res6 at the
  bottom);
- decoder level j = 1..4: upsample, attention module Att_j on the encoder's Res_{5-j} with soft-mask depth
  ``j - 1`` (Att1 on Res4 depth 0, Att2 on Res3 depth 1, Att3 on Res2 depth 2, Att4 on Res1 depth 3: each soft
  mask pools down to the bottleneck's resolution), concatenation, residual block Res_{6+j} to Res_{5-j}'s width;
- Up5, concatenation with Conv1, Conv2 (3x3(x3) conv-BN-ReLU), Conv3 (3x3(x3) conv to the classes; the paper has
  one sigmoid channel, here ``out_channels`` logits).

Residual block (Fig. 5): full pre-activation bottleneck, three BN-ReLU-conv sets (1x1 to a quarter of the width,
3x3(x3), 1x1 to the width) plus a 1x1 conv on the shortcut ("a convolutional identity mapping connection"; the
released Keras code also always projects). Attention module (Fig. 4, Wang et al. 2017 with p=1, t=2, r=1 as in the
released code): one residual block, then a trunk of two residual blocks and a soft mask (max pool + residual
block per level, one residual "skip" block per inner level summed back after upsampling, two 1x1 convs, sigmoid);
output ``(1 + mask) · trunk`` through a last residual block. Upsampling is nearest-neighbour (Keras
``UpSampling``, the released code). Conv biases are kept only where no BatchNorm follows.

Loss: the paper minimises the V-Net Dice loss of equation (3) on a sigmoid output. For the bundle's 3-class
softmax logits use ``monai.losses.DiceLoss(to_onehot_y=True, softmax=True, squared_pred=True)`` (equation (3)'s
squared denominators); ``monai.losses.DiceCELoss`` with the same arguments is the more stable alternative.

The paper's cascade and the bundle's cascade
(:class:`~bundle.networks.cascade.LiverTumorCascade`: coarse liver network, largest component, ROI box with a
margin, liver/tumor network in sliding windows inside the ROI, pasted back):

1. RA-UNet-I (:func:`RAUNet2D`): 2D, slices downsampled to 256x256, then the largest 3D connected component and its
   bounding box extended by 10 voxels. This is the bundle's coarse stage: ``LiverTumorCascade(coarse=RAUNet2D())``
   (2 outputs, background and liver; the cascade's ``coarse_spacing`` resampling plays the role of the 256x256
   downsampling and ``roi_margin_mm`` the 10-voxel margin).
2. RA-UNet-II for the liver (:func:`RAUNet3D`): the box interpolated to 224x224 in-plane, 224x224x32 patches,
   largest component of the result.
3. A second RA-UNet-II for the tumor on patches of 128x128x32 at the original resolution inside the liver, tumor
   voxels outside the liver removed.

The bundle's fine network predicts background, liver and tumor in one pass, so stages 2 and 3 become one
``RAUNet3D(out_channels=3)`` used as ``fine``; the paper's two binary RA-UNet-II (liver, then tumor) are two
``RAUNet3D(out_channels=2)`` trained on the two patch samplings. The paper's HU window is [-100, 200] with zero-mean
and min-max normalisation; the bundle's [-200, 250] scaled to [0, 1] is used instead.

Input sizes: every spatial size divisible by the product of its pool sizes: 32 in H, W (and D) for both paper
presets, so RA-UNet-II needs 224x224x32 windows (the paper's patch); the bundle's 224x224x12 windows need
anisotropic pools, e.g. ``pool_sizes=((2, 2, 2), (2, 2, 2), (2, 2, 1), (2, 2, 1), (2, 2, 1))`` (D divisible by 4,
the "small" 3D preset).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
import torch.nn as nn
from monai.networks.blocks import Convolution, UpSample
from monai.networks.layers.factories import Conv, Pool
from monai.networks.layers.utils import get_act_layer, get_norm_layer

from .seed_presets import raunet_config
from .slices import slices_from_volume, volume_from_slices

__all__ = ["RAUNet", "RAUNet2D", "RAUNet3D"]

_DIM_NAMES = ("H", "W", "D")


def _upsample(spatial_dims: int, scale: Sequence[int], mode: str) -> nn.Module:
    return UpSample(
        spatial_dims,
        scale_factor=scale,
        mode="nontrainable",
        interp_mode=mode,
        align_corners=None if mode == "nearest" else False,
    )


class _ResidualBlock(nn.Module):
    """Pre-activation bottleneck: BN-ReLU-1x1 (out/4), BN-ReLU-3x3 (out/4), BN-ReLU-1x1 (out), plus 1x1 shortcut."""

    def __init__(
        self, spatial_dims: int, in_channels: int, out_channels: int, act: str | tuple, norm: str | tuple
    ) -> None:
        super().__init__()
        conv_type = Conv[Conv.CONV, spatial_dims]
        mid = max(out_channels // 4, 1)
        self.norm1 = get_norm_layer(name=norm, spatial_dims=spatial_dims, channels=in_channels)
        self.act1 = get_act_layer(name=act)
        self.conv1 = conv_type(in_channels, mid, kernel_size=1, bias=False)
        self.norm2 = get_norm_layer(name=norm, spatial_dims=spatial_dims, channels=mid)
        self.act2 = get_act_layer(name=act)
        self.conv2 = conv_type(mid, mid, kernel_size=3, padding=1, bias=False)
        self.norm3 = get_norm_layer(name=norm, spatial_dims=spatial_dims, channels=mid)
        self.act3 = get_act_layer(name=act)
        self.conv3 = conv_type(mid, out_channels, kernel_size=1, bias=True)
        self.shortcut = conv_type(in_channels, out_channels, kernel_size=1, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.conv1(self.act1(self.norm1(x)))
        y = self.conv2(self.act2(self.norm2(y)))
        y = self.conv3(self.act3(self.norm3(y)))
        return y + self.shortcut(x)


class _SoftMaskLevel(nn.Module):
    """One encoder-decoder level of the soft mask: pool, residual block, [inner level + residual skip], residual
    block, upsample back to the input resolution. Nested ``depth`` times (the paper's D)."""

    def __init__(
        self,
        spatial_dims: int,
        channels: int,
        pool_sizes: Sequence[Sequence[int]],
        act: str | tuple,
        norm: str | tuple,
        upsample_mode: str,
    ) -> None:
        super().__init__()
        self.pool = Pool[Pool.MAX, spatial_dims](kernel_size=pool_sizes[0], stride=pool_sizes[0])
        self.down = _ResidualBlock(spatial_dims, channels, channels, act, norm)
        self.has_inner = len(pool_sizes) > 1
        self.skip: nn.Module = nn.Identity()
        self.inner: nn.Module = nn.Identity()
        if self.has_inner:
            self.skip = _ResidualBlock(spatial_dims, channels, channels, act, norm)
            self.inner = _SoftMaskLevel(spatial_dims, channels, pool_sizes[1:], act, norm, upsample_mode)
        self.up = _ResidualBlock(spatial_dims, channels, channels, act, norm)
        self.upsample = _upsample(spatial_dims, pool_sizes[0], upsample_mode)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        m = self.down(self.pool(x))
        if self.has_inner:
            m = self.inner(m) + self.skip(m)
        return self.upsample(self.up(m))


class _AttentionModule(nn.Module):
    """Attention residual module (Fig. 4): ``res_out((1 + sigmoid(mask(x'))) · trunk(x'))``, ``x' = res_in(x)``."""

    def __init__(
        self,
        spatial_dims: int,
        channels: int,
        depth: int,
        pool_sizes: Sequence[Sequence[int]],
        act: str | tuple,
        norm: str | tuple,
        upsample_mode: str,
    ) -> None:
        super().__init__()
        if len(pool_sizes) != depth + 1:
            raise ValueError(f"a soft mask of depth {depth} pools {depth + 1} times, got pool sizes {pool_sizes}")
        conv_type = Conv[Conv.CONV, spatial_dims]
        self.depth = depth
        self.res_in = _ResidualBlock(spatial_dims, channels, channels, act, norm)
        self.trunk = nn.Sequential(
            _ResidualBlock(spatial_dims, channels, channels, act, norm),
            _ResidualBlock(spatial_dims, channels, channels, act, norm),
        )
        self.mask = nn.Sequential(
            _SoftMaskLevel(spatial_dims, channels, pool_sizes, act, norm, upsample_mode),
            conv_type(channels, channels, kernel_size=1),
            conv_type(channels, channels, kernel_size=1),
            nn.Sigmoid(),
        )
        self.res_out = _ResidualBlock(spatial_dims, channels, channels, act, norm)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.res_in(x)
        return self.res_out((1 + self.mask(x)) * self.trunk(x))


class _UpLevel(nn.Module):
    """Decoder level: ``res(cat(upsample(x), attention(skip)))``."""

    def __init__(self, upsample: nn.Module, attention: _AttentionModule, res: _ResidualBlock) -> None:
        super().__init__()
        self.upsample = upsample
        self.attention = attention
        self.res = res

    def forward(self, x: torch.Tensor, skip: torch.Tensor) -> torch.Tensor:
        return self.res(torch.cat([self.upsample(x), self.attention(skip)], dim=1))


class RAUNet(nn.Module):
    """RA-UNet (Jin et al.): residual U-Net with attention residual modules on its long skips, 2D or 3D.

    The module docstring gives the layer plan, the loss and how the paper's three-stage cascade maps onto the
    bundle's. :func:`RAUNet2D` (RA-UNet-I, slice-wise on volumes) and :func:`RAUNet3D` (RA-UNet-II) build the
    paper's two networks.

    Args:
        spatial_dims: 2 (RA-UNet-I) or 3 (RA-UNet-II).
        in_channels: input channels (1: HU-windowed CT in [0, 1]).
        out_channels: classes of the final conv (logits).
        size: ``"paper"`` or ``"small"``, the presets of :func:`~bundle.networks.seed_presets.raunet_config`.
        channels: widths ``(Conv1, Res1, Res2, Res3, Res4, Res5)``; ``None`` takes the preset. The decoder mirrors
            them (Res7..Res10 = Res4..Res1 widths, Conv2 = Conv1 width). ``len(channels) - 1`` pools.
        pool_sizes: one max-pool size per pool (int or one per spatial dim); ``None`` takes the preset. The soft
            mask of each attention module reuses the pools below its level, so it ends at the bottleneck's size.
        act: activation (name or ``(name, kwargs)``).
        norm: normalisation (name or ``(name, kwargs)``).
        upsample_mode: interpolation of every upsampling (``"nearest"`` as the released code, or ``"linear"``).

    ``attention_depths[j]`` is the soft-mask depth of decoder level ``j + 1`` (Att1, Att2, ...): ``(0, 1, 2, 3)``
    with five pools, as Tables II and III.

    Examples::

        >>> net = RAUNet(3, 1, 3, size="small").eval()
        >>> net(torch.rand(1, 1, 64, 64, 8)).shape
        torch.Size([1, 3, 64, 64, 8])
    """

    def __init__(
        self,
        spatial_dims: int,
        in_channels: int,
        out_channels: int,
        size: str = "paper",
        channels: Sequence[int] | None = None,
        pool_sizes: Sequence[int | Sequence[int]] | None = None,
        act: str | tuple = ("relu", {"inplace": True}),
        norm: str | tuple = "batch",
        upsample_mode: str = "nearest",
    ) -> None:
        super().__init__()
        if spatial_dims not in (2, 3):
            raise ValueError(f"spatial_dims must be 2 or 3, got {spatial_dims}")
        cfg = raunet_config(spatial_dims, size)
        channels = tuple(cfg["channels"] if channels is None else channels)
        pool_sizes = cfg["pool_sizes"] if pool_sizes is None else pool_sizes
        num_pools = len(channels) - 1
        if num_pools < 2:
            raise ValueError(f"channels needs at least 3 entries (Conv1, one level, bottleneck), got {channels}")
        if len(pool_sizes) != num_pools:
            raise ValueError(f"pool_sizes needs len(channels) - 1 = {num_pools} entries, got {len(pool_sizes)}")
        pools = [tuple(p) if isinstance(p, Sequence) else (int(p),) * spatial_dims for p in pool_sizes]
        if any(len(p) != spatial_dims for p in pools):
            raise ValueError(f"each pool size needs {spatial_dims} entries, got {pools}")
        self.spatial_dims = spatial_dims
        self.in_channels = in_channels
        self.out_channels = out_channels
        self.size_divisors = [math.prod(p[d] for p in pools) for d in range(spatial_dims)]
        self.dim_names = ", ".join(_DIM_NAMES[:spatial_dims])

        self.conv1 = Convolution(spatial_dims, in_channels, channels[0], kernel_size=3, act=act, norm=norm, bias=False)
        self.encoder = nn.ModuleList()
        for i in range(num_pools):
            level = nn.Sequential(Pool[Pool.MAX, spatial_dims](kernel_size=pools[i], stride=pools[i]))
            level.append(_ResidualBlock(spatial_dims, channels[i], channels[i + 1], act, norm))
            if i == num_pools - 1:  # Res6: a second residual block at the bottleneck
                level.append(_ResidualBlock(spatial_dims, channels[i + 1], channels[i + 1], act, norm))
            self.encoder.append(level)

        self.decoder = nn.ModuleList()
        self.attention_depths = list(range(num_pools - 1))  # Att1 (deepest skip) has depth 0, the next 1, ...
        width = channels[-1]
        for j in range(num_pools - 1):
            k = num_pools - 1 - j  # level of the encoder block Res_k this decoder level attends to
            attention = _AttentionModule(spatial_dims, channels[k], j, pools[k:], act, norm, upsample_mode)
            res = _ResidualBlock(spatial_dims, width + channels[k], channels[k], act, norm)
            self.decoder.append(_UpLevel(_upsample(spatial_dims, pools[k], upsample_mode), attention, res))
            width = channels[k]
        self.upsample = _upsample(spatial_dims, pools[0], upsample_mode)
        self.conv2 = Convolution(
            spatial_dims, width + channels[0], channels[0], kernel_size=3, act=act, norm=norm, bias=False
        )
        self.conv3 = Conv[Conv.CONV, spatial_dims](channels[0], out_channels, kernel_size=3, padding=1, bias=True)

    def check_input_size(self, x: torch.Tensor) -> None:
        """Raise ``ValueError`` unless ``x`` is ``(N, in_channels, *spatial)`` with each size divisible as needed."""
        names = self.dim_names
        if x.dim() != self.spatial_dims + 2 or x.shape[1] != self.in_channels:
            raise ValueError(
                f"RAUNet ({self.spatial_dims}D) expects (N, {self.in_channels}, {names}), got {list(x.shape)}"
            )
        for d in range(self.spatial_dims):
            if x.shape[2 + d] % self.size_divisors[d] != 0:
                raise ValueError(
                    f"RAUNet input spatial size ({names}) must be divisible by {self.size_divisors} (the product of "
                    f"the pool sizes), got {list(x.shape[2:])}"
                )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``(N, in_channels, H, W[, D])`` -> logits ``(N, out_channels, H, W[, D])``; each spatial size divisible
        by ``self.size_divisors`` (32 for the paper presets), else ``ValueError``."""
        self.check_input_size(x)
        features = [self.conv1(x)]
        for level in self.encoder:
            features.append(level(features[-1]))
        x = features[-1]
        num_skips = len(features) - 2
        for j, level in enumerate(self.decoder):
            x = level(x, features[num_skips - j])
        x = self.conv2(torch.cat([self.upsample(x), features[0]], dim=1))
        return self.conv3(x)


class _SliceWise(nn.Module):
    """Runs a 2D network on every axial slice (or stack of adjacent slices) of ``(N, C, H, W, D)`` volumes."""

    def __init__(self, net: nn.Module, in_channels: int, num_adjacent_slices: int) -> None:
        super().__init__()
        if num_adjacent_slices < 1 or num_adjacent_slices % 2 == 0:
            raise ValueError(f"num_adjacent_slices must be a positive odd number, got {num_adjacent_slices}")
        self.net = net
        self.in_channels = in_channels
        self.num_adjacent_slices = num_adjacent_slices

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``(N, in_channels, H, W, D)`` -> ``(N, out_channels, H, W, D)``, slice by slice."""
        if x.dim() != 5 or x.shape[1] != self.in_channels:
            raise ValueError(f"expected a volume (N, {self.in_channels}, H, W, D), got shape {list(x.shape)}")
        return volume_from_slices(self.net(slices_from_volume(x, self.num_adjacent_slices)), x.shape[0])


def RAUNet2D(
    in_channels: int = 1, out_channels: int = 2, size: str = "paper", num_adjacent_slices: int = 1, **overrides
) -> nn.Module:
    """RA-UNet-I (Table II), applied slice by slice: ``(N, in_channels, H, W, D)`` -> ``(N, out_channels, H, W, D)``.

    The stage-I liver localiser: 2 outputs (background, liver) like the bundle's coarse network; H and W divisible by
    32. ``num_adjacent_slices`` 1 is the paper (single slices); 3 or 5 feed stacks of adjacent slices
    (:func:`~bundle.networks.slices.slices_from_volume`). ``overrides`` go to :class:`RAUNet`. The 2D network is the
    returned module's ``net``.
    """
    net = RAUNet(2, in_channels * num_adjacent_slices, out_channels, size=size, **overrides)
    return _SliceWise(net, in_channels, num_adjacent_slices)


def RAUNet3D(in_channels: int = 1, out_channels: int = 3, size: str = "paper", **overrides) -> RAUNet:
    """RA-UNet-II (Table III): ``(N, in_channels, H, W, D)`` -> ``(N, out_channels, H, W, D)``, the liver/tumor
    network of the bundle's cascade. Paper preset: every size divisible by 32 (224x224x32 patches)."""
    return RAUNet(3, in_channels, out_channels, size=size, **overrides)

"""3D-DenseUNet-569: a fully 3D DenseUNet with depthwise-separable convolutions in its dense blocks.

Alalwan, Abozeid, ElHabsy, Alzahrani, "Efficient 3D Deep Learning Model for Medical Image Semantic Segmentation",
Alexandria Engineering Journal 60 (2021) 1231-1239, section 3, Fig. 1 and Tables 1 and 3.

What the text states (section 3), and how it is built here:

- input ``224 x 224 x 12`` (one channel), final features ``X`` with 64 channels from "the final up-sampling layer
  (layer 5)", then 3 class scores (background, liver, tumor);
- DenseNet connections in "iterative 3D DenseNet blocks" whose standard convolution is replaced by a
  depthwise-separable one (DS-Conv): a depthwise 3x3x3 conv with ``groups = channels`` followed by a pointwise
  1x1x1 conv. Here a micro-block is DenseNet-BC's BN-ReLU-1x1 conv (``bn_size·k``), BN-ReLU, depthwise 3x3x3,
  BN-ReLU, pointwise 1x1x1 (``k``); the BN-ReLU between depthwise and pointwise follows "BN layer and activation
  layer were applied after each convolution layer" (``ds_norm_act``; it also brings the BatchNorm count to within
  0.1% of Table 3, see below);
- transitions of "a BN layer, a 1x1 convolution layer and a convolution layer with stride 2 as opposed to a pooling
  layer", compression 0.5: BN-ReLU-1x1 conv (half the channels), then a conv with stride 2 in H and W
  (``transition_kernel_size``, 1 by default, see below). D keeps its size: after the stem D is 3 for a 12-slice
  input, which a stride of 2 could not halve and a x2 upsampling could not restore (as H-DenseUNet's (2, 2, 1)
  pools);
- upsampling blocks of "a bilinear interpolation layer, ... a combination of low-level features from the opposite
  dense block (i.e., UNet connections) and a 3x3 convolutional layer", each conv followed by BN and ReLU: here
  trilinear x2 upsampling, 3x3x3 conv-BN-ReLU (a standard conv: the text puts DS-Conv in the dense blocks only),
  then the UNet summation (1x1 projection where widths differ), as the bundle's DenseUNet-65 ``"after_conv"``.

What the text leaves open and where it contradicts itself:

- **No table of layers: block counts, growth rate and stem width are not in the text**, only in Fig. 1 (an
  image, not part of the text this module was written from). It follows the reading of Fig. 1's labels that
  public re-implementations report: 96 stem features (7x7x7 conv, stride 2, then a 3x3x3 max pool, stride 2,
  which Fig. 1 keeps although the text speaks of replacing pooling), growth rate 32, 1x1 bottleneck 128 (one
  reading has 32 in the last block; 128 is kept throughout), dense blocks of 4/12/24/36 micro-blocks, decoder
  widths 504/224/192/96/64 (those of DenseUNet-65, consistent with "layer 5" having 64 channels). Table 3
  corroborates it: with these settings the network has 37.2M parameters, 2.6% more than its 36,270,875 trainable
  parameters, and 81,292 BatchNorm channels against its 81,356.
- **Parameter count: 3.6M in the text (twice) and Table 1 vs 36.4M total / 36.3M trainable in Table 3.** No
  DS-Conv network with the stated input, decoder and DenseNet blocks has 3.6M parameters: the first decoder conv
  alone (DB4 -> 504, 3x3x3) has 22.6M. We take Table 3 as right and "3.6 Million" as a misplaced decimal point.
  Table 3's BatchNorm statistics (162,712 non-trainable = 2 x 81,356 BN channels) match this build's 81,292 BN
  channels to 64; without the BN-ReLU between depthwise and pointwise they would be 71,564.
- **"569 layers"** counts "convolution, depthwise, pointwise, BN, activation layers, transition blocks and
  upsampling blocks"; no enumeration of those reproduces 569 unambiguously (this build has 244 conv layers,
  238 BatchNorms and 238 ReLUs), so the name is not used to fix the plan.
- **Sum or concatenation** for the UNet "combination" is not stated; concatenation would add ~14M parameters at
  the first decoder level alone, which Table 3 rules out, so the skips are summed.
- **Kernel of the strided transition conv** is not stated: 1x1x1 (default, as Fig. 1 is read) matches Table 3;
  3x3x3 (``transition_kernel_size=3``) would add 8.6M parameters (45.9M in all).

Loss (section 3.1): weighted cross-entropy with class weights 0.2 / 1.2 / 2.2 (background / liver / tumor), see
:data:`DENSEUNET569_CLASS_WEIGHTS`, e.g. ``torch.nn.CrossEntropyLoss(weight=torch.tensor(DENSEUNET569_CLASS_WEIGHTS))``
(note that PyTorch's weighted mean divides by the summed weights, equation (2) by the voxel count: the same
minimiser, a different gradient scale). Training: SGD, momentum 0.5, lr 0.01 "decreased by a value of 2" (halved,
presumably) every 10 epochs; HU window [-200, 250], as the bundle's preprocessing.

No ``memory_efficient`` checkpointing (unlike :class:`~bundle.networks.denseunet.DenseUNet`): the dense blocks run
at 56x56x3 and coarser, so their concatenations are small next to the full-resolution decoder levels.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn as nn
from monai.networks.blocks import Convolution, UpSample
from monai.networks.layers.factories import Conv, Pool
from monai.networks.layers.utils import get_act_layer, get_norm_layer

from bundle.config_values import as_bool

from .seed_presets import denseunet569_config

__all__ = ["DENSEUNET569_CLASS_WEIGHTS", "DenseUNet569"]

# Alalwan et al. 2021, section 3.1 ("Empirically, the weights are set as 1.2 for liver, 2.2 for liver lesion, and
# 0.2 for background"), in the bundle's channel order: background, liver, tumor.
DENSEUNET569_CLASS_WEIGHTS = (0.2, 1.2, 2.2)

_DIM_NAMES = ("H", "W", "D")


class _DSDenseLayer(nn.Module):
    """BN-ReLU-1x1 conv (``bn_size·k``), BN-ReLU, depthwise 3x3(x3) (groups = ``bn_size·k``), [BN-ReLU], pointwise
    1x1(x1) (``k``)."""

    def __init__(
        self,
        spatial_dims: int,
        in_channels: int,
        growth_rate: int,
        bn_size: int,
        ds_norm_act: bool,
        act: str | tuple,
        norm: str | tuple,
    ) -> None:
        super().__init__()
        conv_type = Conv[Conv.CONV, spatial_dims]
        width = bn_size * growth_rate
        self.norm1 = get_norm_layer(name=norm, spatial_dims=spatial_dims, channels=in_channels)
        self.relu1 = get_act_layer(name=act)
        self.conv1 = conv_type(in_channels, width, kernel_size=1, bias=False)
        self.norm2 = get_norm_layer(name=norm, spatial_dims=spatial_dims, channels=width)
        self.relu2 = get_act_layer(name=act)
        self.depthwise = conv_type(width, width, kernel_size=3, padding=1, groups=width, bias=False)
        self.norm3: nn.Module = nn.Identity()
        self.relu3: nn.Module = nn.Identity()
        if ds_norm_act:
            self.norm3 = get_norm_layer(name=norm, spatial_dims=spatial_dims, channels=width)
            self.relu3 = get_act_layer(name=act)
        self.pointwise = conv_type(width, growth_rate, kernel_size=1, bias=False)

    def forward(self, features: list[torch.Tensor]) -> torch.Tensor:
        x = self.conv1(self.relu1(self.norm1(torch.cat(features, 1))))
        x = self.depthwise(self.relu2(self.norm2(x)))
        return self.pointwise(self.relu3(self.norm3(x)))


class _DenseBlock(nn.ModuleDict):
    """``num_layers`` micro-blocks, each fed the concatenation of the block input and all previous outputs."""

    def __init__(self, spatial_dims: int, num_layers: int, in_channels: int, growth_rate: int, **layer_args) -> None:
        super().__init__()
        for i in range(num_layers):
            layer = _DSDenseLayer(spatial_dims, in_channels + i * growth_rate, growth_rate, **layer_args)
            self.add_module(f"denselayer{i + 1}", layer)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        features = [x]
        for _, layer in self.items():
            features.append(layer(features))
        return torch.cat(features, 1)


class _Transition(nn.Sequential):
    """BN-ReLU-1x1 conv (compression), then a strided conv in place of pooling."""

    def __init__(
        self,
        spatial_dims: int,
        in_channels: int,
        out_channels: int,
        stride: Sequence[int],
        kernel_size: int,
        act: str | tuple,
        norm: str | tuple,
    ) -> None:
        super().__init__()
        conv_type = Conv[Conv.CONV, spatial_dims]
        self.add_module("norm", get_norm_layer(name=norm, spatial_dims=spatial_dims, channels=in_channels))
        self.add_module("relu", get_act_layer(name=act))
        self.add_module("conv", conv_type(in_channels, out_channels, kernel_size=1, bias=False))
        self.add_module(
            "down",
            conv_type(out_channels, out_channels, kernel_size, stride=stride, padding=kernel_size // 2, bias=False),
        )


class _UpLevel(nn.Module):
    """Upsample (bi/trilinear), 3x3(x3) conv-BN-ReLU, then add the encoder skip (1x1 projection if widths differ)."""

    def __init__(
        self,
        spatial_dims: int,
        in_channels: int,
        out_channels: int,
        skip_channels: int,
        scale: Sequence[int],
        act: str | tuple,
        norm: str | tuple,
    ) -> None:
        super().__init__()
        self.has_skip = skip_channels > 0
        self.upsample = UpSample(
            spatial_dims, scale_factor=scale, mode="nontrainable", interp_mode="linear", align_corners=False
        )
        self.conv = Convolution(spatial_dims, in_channels, out_channels, kernel_size=3, act=act, norm=norm, bias=False)
        self.skip_proj: nn.Module = nn.Identity()
        if self.has_skip and skip_channels != out_channels:
            self.skip_proj = Conv[Conv.CONV, spatial_dims](skip_channels, out_channels, kernel_size=1, bias=True)

    def forward(self, x: torch.Tensor, skip: torch.Tensor) -> torch.Tensor:
        x = self.conv(self.upsample(x))
        if self.has_skip:
            x = x + self.skip_proj(skip)
        return x


class DenseUNet569(nn.Module):
    """3D-DenseUNet-569 (Alalwan et al. 2021): DenseNet-BC encoder with depthwise-separable micro-blocks and
    strided-conv transitions, bi/trilinear decoder with summed UNet links.

    The module docstring explains the layer plan, what the paper's text leaves open and its contradictions.

    Args:
        spatial_dims: 3 (the paper); 2 builds the same plan in 2D.
        in_channels: image channels (1: HU-windowed CT in [0, 1]).
        out_channels: classes (3: background, liver, tumor).
        size: ``"paper"`` or ``"small"``, the presets of :func:`~bundle.networks.seed_presets.denseunet569_config`;
            any of the next five arguments given explicitly replaces its preset value.
        init_features: width of the stem conv (paper 96).
        growth_rate: ``k`` (paper 32).
        block_config: micro-blocks per dense block (paper 4, 12, 24, 36).
        bn_size: the 1x1 conv and the depthwise conv of a micro-block have ``bn_size·k`` channels (paper 4).
        decoder_channels: width of each of the ``len(block_config) + 1`` decoder levels (paper 504, 224, 192, 96,
            64); the last one is the width of the final features.
        compression: channel factor of each transition (``int(c · compression)``; paper 0.5).
        transition_stride: stride of the transitions' strided conv; ``None`` = 2 in H and W, 1 in D (2D: 2, 2).
        transition_kernel_size: odd kernel of the strided conv (1 default, see the module docstring).
        ds_norm_act: BN-ReLU between the depthwise and the pointwise conv.
        act: activation (name or ``(name, kwargs)``).
        norm: normalisation (name or ``(name, kwargs)``).
        dropout_prob: dropout before the final 1x1 conv.

    Examples::

        >>> net = DenseUNet569(size="small").eval()
        >>> net(torch.rand(1, 1, 64, 64, 8)).shape
        torch.Size([1, 3, 64, 64, 8])
        >>> loss = torch.nn.CrossEntropyLoss(weight=torch.tensor(DENSEUNET569_CLASS_WEIGHTS))
    """

    def __init__(
        self,
        spatial_dims: int = 3,
        in_channels: int = 1,
        out_channels: int = 3,
        size: str = "paper",
        init_features: int | None = None,
        growth_rate: int | None = None,
        block_config: Sequence[int] | None = None,
        bn_size: int | None = None,
        decoder_channels: Sequence[int] | None = None,
        compression: float = 0.5,
        transition_stride: Sequence[int] | None = None,
        transition_kernel_size: int = 1,
        ds_norm_act: bool = True,
        act: str | tuple = ("relu", {"inplace": True}),
        norm: str | tuple = "batch",
        dropout_prob: float = 0.0,
    ) -> None:
        super().__init__()
        given = {
            "init_features": init_features,
            "growth_rate": growth_rate,
            "block_config": block_config,
            "bn_size": bn_size,
            "decoder_channels": decoder_channels,
        }
        cfg = {**denseunet569_config(size), **{k: v for k, v in given.items() if v is not None}}
        if spatial_dims not in (2, 3):
            raise ValueError(f"spatial_dims must be 2 or 3, got {spatial_dims}")
        num_blocks = len(cfg["block_config"])
        if num_blocks < 1:
            raise ValueError("block_config needs at least one dense block")
        if len(cfg["decoder_channels"]) != num_blocks + 1:
            raise ValueError(
                f"decoder_channels needs len(block_config) + 1 = {num_blocks + 1} entries (one per downsampling "
                f"step), got {len(cfg['decoder_channels'])}"
            )
        if transition_kernel_size < 1 or transition_kernel_size % 2 == 0:
            raise ValueError(f"transition_kernel_size must be a positive odd number, got {transition_kernel_size}")
        stride = tuple(transition_stride) if transition_stride is not None else (2, 2, 1)[:spatial_dims]
        if len(stride) != spatial_dims:
            raise ValueError(f"transition_stride needs {spatial_dims} entries, got {stride}")
        self.spatial_dims = spatial_dims
        self.in_channels = in_channels
        self.out_channels = out_channels
        stem = (2,) * spatial_dims
        self.size_divisors = [4 * stride[d] ** (num_blocks - 1) for d in range(spatial_dims)]
        self.dim_names = ", ".join(_DIM_NAMES[:spatial_dims])

        conv_type = Conv[Conv.CONV, spatial_dims]
        init = cfg["init_features"]
        k = cfg["growth_rate"]
        ds_norm_act = as_bool(ds_norm_act, "ds_norm_act")
        layer_args = {"bn_size": cfg["bn_size"], "ds_norm_act": ds_norm_act, "act": act, "norm": norm}
        self.features = nn.ModuleDict()
        self.features["conv0"] = conv_type(in_channels, init, 7, stride=2, padding=3, bias=False)
        self.features["norm0"] = get_norm_layer(name=norm, spatial_dims=spatial_dims, channels=init)
        self.features["relu0"] = get_act_layer(name=act)
        self.features["pool0"] = Pool[Pool.MAX, spatial_dims](kernel_size=3, stride=2, padding=1)
        skip_channels = [init]
        channels = init
        for i, num_layers in enumerate(cfg["block_config"]):
            self.features[f"denseblock{i + 1}"] = _DenseBlock(spatial_dims, num_layers, channels, k, **layer_args)
            channels += num_layers * k
            if i < num_blocks - 1:
                skip_channels.append(channels)
                reduced = int(channels * compression)
                self.features[f"transition{i + 1}"] = _Transition(
                    spatial_dims, channels, reduced, stride, transition_kernel_size, act, norm
                )
                channels = reduced
        self.features[f"norm{num_blocks + 1}"] = get_norm_layer(name=norm, spatial_dims=spatial_dims, channels=channels)
        self.features[f"relu{num_blocks + 1}"] = get_act_layer(name=act)
        self.encoder_channels = [*skip_channels, channels]

        scales = [stride] * (num_blocks - 1) + [stem, stem]  # transitions in reverse, stem pool, stem conv
        self.decoder = nn.ModuleList()
        for j, out_c in enumerate(cfg["decoder_channels"]):
            skip_c = skip_channels[num_blocks - 1 - j] if j < num_blocks else 0
            self.decoder.append(_UpLevel(spatial_dims, channels, out_c, skip_c, scales[j], act, norm))
            channels = out_c
        self.dropout = nn.Dropout(dropout_prob)
        self.classifier = conv_type(channels, out_channels, kernel_size=1, bias=True)

        for m in self.modules():
            if isinstance(m, conv_type):
                nn.init.kaiming_normal_(m.weight)
                if m.bias is not None:
                    nn.init.zeros_(m.bias)

    def check_input_size(self, x: torch.Tensor) -> None:
        """Raise ``ValueError`` unless ``x`` is ``(N, in_channels, *spatial)`` with each size divisible as needed."""
        if x.dim() != self.spatial_dims + 2 or x.shape[1] != self.in_channels:
            raise ValueError(
                f"DenseUNet569 ({self.spatial_dims}D) expects (N, {self.in_channels}, {self.dim_names}), "
                f"got shape {list(x.shape)}"
            )
        for d in range(self.spatial_dims):
            if x.shape[2 + d] % self.size_divisors[d] != 0:
                raise ValueError(
                    f"DenseUNet569 input spatial size ({self.dim_names}) must be divisible "
                    f"by {self.size_divisors} (stem conv and pool strides times transition strides), "
                    f"got {list(x.shape[2:])}"
                )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``(N, in_channels, H, W[, D])`` -> logits ``(N, out_channels, H, W[, D])``.

        With the default transition stride H and W must be divisible by 32 and D by 4 (``self.size_divisors``;
        224x224x12 in the paper); other sizes raise ``ValueError``.
        """
        self.check_input_size(x)
        skips: list[torch.Tensor] = []
        for name, layer in self.features.items():
            if name == "pool0" or name.startswith("transition"):
                skips.append(x)  # stem conv after BN-ReLU, then each dense block's output before its transition
            x = layer(x)
        num_skips = len(skips)
        for j, level in enumerate(self.decoder):
            skip = skips[num_skips - 1 - j] if j < num_skips else x
            x = level(x, skip)
        return self.classifier(self.dropout(x))

"""DenseUNet: a DenseNet encoder with a UNet-style decoder, one class for 2D and 3D.

Li et al., "H-DenseUNet: Hybrid Densely Connected UNet for Liver and Tumor Segmentation from CT Volumes",
IEEE TMI 2018, section III-A and Table I (2D DenseUNet-167 and 3D DenseUNet-65).

Layer plan (every "conv" of the encoder is BN-ReLU-Conv, Table I):

- stem: 7x7(x7) conv stride 2 (``init_features``), BN-ReLU, 3x3(x3) max pool stride 2. In 3D both strides
  are 2 in all three dimensions, so 224x224x12 reaches 56x56x3.
- dense blocks of micro-blocks (BN-ReLU-1x1 conv to ``bn_size·k``, BN-ReLU-3x3 conv to ``k``, concatenated),
  separated by transitions (BN-ReLU-1x1 conv with ``compression`` 0.5, average pooling 2x2 / 2x2x1).
- BN-ReLU after the last dense block.
- decoder, one level per downsampling step: bilinear/trilinear upsampling (``align_corners=False``), the UNet
  summation with the encoder features of that scale, 3x3(x3) conv + BN-ReLU (conv-BN-ReLU as in the released
  code's ``conv_upN``/``bn_upN``/``ac_upN``). Level 1 ↔ dense block 3 output (before its transition),
  2 ↔ dense block 2, 3 ↔ dense block 1, 4 ↔ the stem conv output (after its BN-ReLU), level 5 has no skip.
- optional dropout, then a 1x1(x1) conv to ``out_channels``.

Where the UNet summation goes (``skip_merge``). Table I fixes the decoder widths but not whether the skip is added
before or after each level's 3x3 conv; the conv counts (167 and 65) and the channel widths settle it:

- 2D (k=48, blocks 6/12/36/24, init 96): encoder widths are conv1 96, DB1 384, DB2 768, DB3 2112, DB4 2208;
  decoder plan 768, 384, 96, 96, 64. Summing the skip *before* the conv matches the stream at levels 2-4
  (768, 384, 96) and needs one 1x1 projection at level 1 (DB3 2112 → 2208): 1 stem + 156 dense + 3 transition
  + 1 projection + 5 decoder + 1 classifier = **167** convolutions. This is also exactly what the released
  Keras code does (``line0 = Conv2D(2208, 1x1)(box[3])``). Summing after the conv would need 3 projections (169).
- 3D (k=32, blocks 3/4/12/8, init 96): encoder widths conv1 96, DB1 192, DB2 224, DB3 496, DB4 504; decoder
  plan 504, 224, 192, 96, 64. Summing *before* the conv would need projections at levels 1-4 (68 convs);
  summing *after* the conv matches at levels 2-4 (224, 192, 96) and needs one projection at level 1
  (DB3 496 → 504): 1 + 54 + 3 + 1 + 5 + 1 = **65**. Table I's 3D plan is therefore only consistent with
  summation after the conv. (The released Keras 3D code has no UNet connections at all: the ``add`` lines are
  commented out.)

So ``skip_merge="before_conv"`` for 2D and ``"after_conv"`` for 3D. With ``"after_conv"`` the skip is added to
the level's conv-BN-ReLU output, which then feeds the next upsampling. A 1x1 projection is created only where
the skip and the decoder stream differ in width; it is a plain conv with bias, as the released ``line0``.

Deliberate differences from the released code: bilinear/trilinear upsampling (the paper; the code used nearest
``UpSampling2D``), no conv bias before BatchNorm (redundant), and PyTorch's BatchNorm instead of Keras's
BN + ``Scale`` pair (same function, and what torchvision's ImageNet DenseNet-161 weights use).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn as nn
from monai.networks.layers.factories import Conv, Pool
from monai.networks.layers.utils import get_act_layer, get_norm_layer
from monai.utils import ensure_tuple_rep

from bundle.config_values import as_bool

from .dense_blocks import DenseBlock, Transition, UpLevel
from .presets import dense2d_config, dense3d_config
from .slices import memory_format

__all__ = ["IMAGENET_MEAN", "IMAGENET_STD", "DenseUNet", "DenseUNet65", "DenseUNet167"]

_DIM_NAMES = ("H", "W", "D")

#: torchvision's ImageNet input normalisation (RGB), what DenseNet-161's ImageNet weights were trained on
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


class DenseUNet(nn.Module):
    """DenseUNet (Li et al., IEEE TMI 2018): DenseNet-BC encoder, bilinear-upsampling decoder with UNet sums.

    The module docstring explains the layer plan and why ``skip_merge`` differs between the 2D and 3D paper
    configurations. :func:`DenseUNet167` and :func:`DenseUNet65` build the two networks of Table I.

    Args:
        spatial_dims: 2 or 3.
        in_channels: input channels (3 adjacent slices in 2D; image + 3 class probabilities in 3D).
        out_channels: classes of the final 1x1 conv.
        init_features: width of the stem conv.
        growth_rate: ``k``, channels added by each micro-block.
        block_config: micro-blocks per dense block (one transition between consecutive blocks).
        bn_size: bottleneck width factor: the 1x1 conv of a micro-block outputs ``bn_size·k`` channels.
        compression: channel factor of each transition (``int(c · compression)``).
        decoder_channels: width of each decoder level, ``len(block_config) + 1`` entries (the last one is the
            width of the returned features).
        stem_stride: stride of the stem conv and of the stem max pool (int or one per spatial dim).
        pool_sizes: average-pool size of each transition, ``len(block_config) - 1`` entries (int or per dim);
            ``None`` means 2 in every dim in 2D, (2, 2, 1) in 3D.
        upsample_scales: scale of each decoder level; ``None`` mirrors the encoder (transitions in reverse, then
            the stem pool, then the stem conv). If given it must equal that mirror.
        skip_merge: ``"before_conv"`` (sum the skip into the upsampled stream, then conv; paper 2D) or
            ``"after_conv"`` (conv first, then sum; paper 3D).
        act: activation (name or ``(name, kwargs)``), applied after every BatchNorm.
        norm: normalisation (name or ``(name, kwargs)``).
        dropout_prob: dropout before the final 1x1 conv.
        memory_efficient: recompute each micro-block's concat-BN-ReLU-1x1 conv in the backward pass
            (``torch.utils.checkpoint``) when an input requires grad; same outputs, less memory, slower.
        unet_connections: add the skips; a plain attribute that can be switched at run time (the paper warms
            the randomly initialised decoder up without UNet connections). Parameters are the same either way;
            while it is False the 1x1 skip projections get no gradient (under DDP freeze them or use
            ``find_unused_parameters=True`` for the warm-up). ``bundle.engines.DecoderWarmup`` switches it in the
            2d stage (``warmup_epochs`` in ``configs/train.yaml``).

    Input normalisation: every forward path (:meth:`forward`, :meth:`forward_features`, :meth:`inference_features`)
    first computes ``(x - input_mean) / input_std`` per channel, with the buffers ``input_mean`` and ``input_std``
    (shape ``(1, in_channels, 1, 1[, 1])``, identity by default). They are in the state dict, so a setting travels
    with the checkpoint through every later stage, inference and export. :meth:`set_input_normalization` sets them;
    :func:`~bundle.networks.pretrained.load_densenet161_encoder` sets ImageNet's mean and std (the three slices of a
    2D stack as R, G, B). A checkpoint saved before these buffers existed loads as identity.

    Examples::

        >>> net = DenseUNet167()  # 2D, (N, 3, H, W) -> features (N, 64, H, W), logits (N, 3, H, W)
        >>> net3d = DenseUNet65()  # 3D, (N, 4, H, W, D) -> (N, 64, H, W, D), (N, 3, H, W, D)
        >>> tiny = DenseUNet(2, 3, 2, init_features=16, growth_rate=8, block_config=(2, 2, 2, 2),
        ...                  decoder_channels=(32, 24, 16, 16, 16))
    """

    def __init__(
        self,
        spatial_dims: int,
        in_channels: int,
        out_channels: int,
        init_features: int = 96,
        growth_rate: int = 48,
        block_config: Sequence[int] = (6, 12, 36, 24),
        bn_size: int = 4,
        compression: float = 0.5,
        decoder_channels: Sequence[int] = (768, 384, 96, 96, 64),
        stem_stride: int | Sequence[int] = 2,
        pool_sizes: Sequence[int | Sequence[int]] | None = None,
        upsample_scales: Sequence[int | Sequence[int]] | None = None,
        skip_merge: str = "before_conv",
        act: str | tuple = ("relu", {"inplace": True}),
        norm: str | tuple = "batch",
        dropout_prob: float = 0.0,
        memory_efficient: bool = False,
        unet_connections: bool = True,
    ) -> None:
        super().__init__()
        if spatial_dims not in (2, 3):
            raise ValueError(f"spatial_dims must be 2 or 3, got {spatial_dims}")
        if skip_merge not in ("before_conv", "after_conv"):
            raise ValueError(f"skip_merge must be 'before_conv' or 'after_conv', got {skip_merge!r}")
        num_blocks = len(block_config)
        if num_blocks < 1:
            raise ValueError("block_config needs at least one dense block")
        if len(decoder_channels) != num_blocks + 1:
            raise ValueError(
                f"decoder_channels needs len(block_config) + 1 = {num_blocks + 1} entries (one per downsampling "
                f"step), got {len(decoder_channels)}"
            )
        stem = ensure_tuple_rep(stem_stride, spatial_dims)
        if pool_sizes is None:
            pool_sizes = [(2, 2, 1)[:spatial_dims]] * (num_blocks - 1)  # in-plane 2x2; D kept (Table I)
        if len(pool_sizes) != num_blocks - 1:
            raise ValueError(
                f"pool_sizes needs one entry per transition (len(block_config) - 1 = {num_blocks - 1}), "
                f"got {len(pool_sizes)}"
            )
        pools = [ensure_tuple_rep(p, spatial_dims) for p in pool_sizes]
        mirror = [*pools[::-1], stem, stem]
        if upsample_scales is not None:
            scales = [ensure_tuple_rep(s, spatial_dims) for s in upsample_scales]
            if scales != mirror:
                raise ValueError(
                    "upsample_scales must mirror the encoder downsampling (transitions in reverse, stem pool, "
                    f"stem conv) so every UNet sum meets features of its own size: expected {mirror}, got {scales}"
                )
        self.spatial_dims = spatial_dims
        self.in_channels = in_channels
        self.out_channels = out_channels
        self.unet_connections = as_bool(unet_connections, "unet_connections")
        memory_efficient = as_bool(memory_efficient, "memory_efficient")
        self.memory_efficient = memory_efficient
        divisors = [stem[d] * stem[d] for d in range(spatial_dims)]
        for p in pools:
            divisors = [divisors[d] * p[d] for d in range(spatial_dims)]
        self.size_divisors = divisors
        self.dim_names = ", ".join(_DIM_NAMES[:spatial_dims])

        conv_type = Conv[Conv.CONV, spatial_dims]
        # encoder, with torchvision's DenseNet names so ImageNet weights map one to one
        self.features = nn.ModuleDict()
        self.features["conv0"] = conv_type(in_channels, init_features, 7, stride=stem, padding=3, bias=False)
        self.features["norm0"] = get_norm_layer(name=norm, spatial_dims=spatial_dims, channels=init_features)
        self.features["relu0"] = get_act_layer(name=act)
        self.features["pool0"] = Pool[Pool.MAX, spatial_dims](kernel_size=3, stride=stem, padding=1)
        skip_channels = [init_features]
        channels = init_features
        for i, num_layers in enumerate(block_config):
            self.features[f"denseblock{i + 1}"] = DenseBlock(
                spatial_dims, num_layers, channels, growth_rate, bn_size, act, norm, memory_efficient
            )
            channels += num_layers * growth_rate
            if i < num_blocks - 1:
                skip_channels.append(channels)
                reduced = int(channels * compression)
                self.features[f"transition{i + 1}"] = Transition(spatial_dims, channels, reduced, pools[i], act, norm)
                channels = reduced
        self.features[f"norm{num_blocks + 1}"] = get_norm_layer(name=norm, spatial_dims=spatial_dims, channels=channels)
        self.features[f"relu{num_blocks + 1}"] = get_act_layer(name=act)
        self.encoder_channels = [*skip_channels, channels]

        # decoder: level j (1-based) sums skip_channels[num_blocks - j]; the last level has no skip
        self.decoder = nn.ModuleList()
        for j, out_c in enumerate(decoder_channels):
            skip_c = skip_channels[num_blocks - 1 - j] if j < num_blocks else 0
            self.decoder.append(
                UpLevel(spatial_dims, channels, out_c, skip_c, mirror[j], skip_merge == "before_conv", act, norm)
            )
            channels = out_c
        self.feature_channels = channels
        self.dropout = nn.Dropout(dropout_prob)
        self.classifier = conv_type(channels, out_channels, kernel_size=1, bias=True)
        stats_shape = (1, in_channels) + (1,) * spatial_dims
        self.register_buffer("input_mean", torch.zeros(stats_shape))
        self.register_buffer("input_std", torch.ones(stats_shape))

        for m in self.modules():
            if isinstance(m, conv_type):
                nn.init.kaiming_normal_(m.weight)
                if m.bias is not None:
                    nn.init.zeros_(m.bias)
            elif isinstance(m, nn.modules.batchnorm._BatchNorm) and m.affine:
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)

    def set_input_normalization(self, mean: Sequence[float] | None, std: Sequence[float] | None) -> DenseUNet:
        """Normalise every input as ``(x - mean) / std`` per channel (``in_channels`` values each) inside the
        network; ``None`` for both restores the identity. Returns ``self``."""
        if mean is None and std is None:
            mean, std = [0.0] * self.in_channels, [1.0] * self.in_channels
        if mean is None or std is None or len(mean) != self.in_channels or len(std) != self.in_channels:
            raise ValueError(
                f"input normalisation needs one mean and one std per input channel ({self.in_channels}), "
                f"got mean={mean}, std={std}"
            )
        if any(float(s) <= 0 for s in std):
            raise ValueError(f"input normalisation: std must be positive, got {std}")
        with torch.no_grad():
            self.input_mean.copy_(torch.tensor([float(m) for m in mean]).reshape(self.input_mean.shape))
            self.input_std.copy_(torch.tensor([float(s) for s in std]).reshape(self.input_std.shape))
        return self

    def normalize_input(self, x: torch.Tensor) -> torch.Tensor:
        """``(x - input_mean) / input_std``, per channel: the first step of every forward path."""
        return (x - self.input_mean) / self.input_std

    def _load_from_state_dict(self, state_dict, prefix, *args, **kwargs):
        # a whole checkpoint of this network saved before the input normalisation buffers existed: identity, as
        # those networks computed (a partial state dict, e.g. an encoder, leaves the buffers as they are)
        for name in ("input_mean", "input_std"):
            if prefix + name not in state_dict and prefix + "classifier.weight" in state_dict:
                own = getattr(self, name)
                state_dict[prefix + name] = own.new_full(own.shape, 1.0 if name == "input_std" else 0.0)
        super()._load_from_state_dict(state_dict, prefix, *args, **kwargs)

    def check_input_size(self, x: torch.Tensor) -> None:
        """Raise ``ValueError`` unless ``x`` is ``(N, C, *spatial)`` with each spatial size divisible as needed."""
        if x.dim() != self.spatial_dims + 2:
            raise ValueError(
                f"DenseUNet ({self.spatial_dims}D) expects a {self.spatial_dims + 2}D input (N, C, spatial...), "
                f"got shape {list(x.shape)}"
            )
        spatial = x.shape[2:]
        for d in range(self.spatial_dims):
            if spatial[d] % self.size_divisors[d] != 0:
                raise ValueError(
                    f"DenseUNet input spatial size ({self.dim_names}) must be divisible by {self.size_divisors} for "
                    f"this configuration (stem conv and pool strides times transition pools), got {list(spatial)}"
                )

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        """``(N, in_channels, H, W[, D]) -> (N, decoder_channels[-1], H, W[, D])``: the last decoder level."""
        self.check_input_size(x)
        x = self.normalize_input(x)
        skips: list[torch.Tensor] = []
        for name, layer in self.features.items():
            if name == "pool0" or name.startswith("transition"):
                skips.append(x)  # stem conv after BN-ReLU, then each dense block's output before its transition
            x = layer(x)
        num_skips = len(skips)
        for j, level in enumerate(self.decoder):
            skip = skips[num_skips - 1 - j] if j < num_skips else x
            x = level(x, skip, self.unet_connections)
        return x

    @torch.jit.unused
    def inference_features(self, x: torch.Tensor, channels_last: bool = True) -> torch.Tensor:
        """:meth:`forward_features` for inference: same modules and arithmetic (equal up to float rounding), each
        dense block writing into one preallocated tensor (:meth:`DenseBlock.forward_preallocated`) instead of
        concatenating all previous outputs again for every layer, which also makes channels-last memory layout pay
        (oneDNN's fastest convolution layout on CPU, where ``torch.cat`` along channels is a strided copy). With
        ``channels_last`` the output keeps that layout. For eval mode: ``memory_efficient`` does not apply."""
        self.check_input_size(x)
        layout = memory_format(x.dim(), channels_last)
        x = self.normalize_input(x).contiguous(memory_format=layout)
        skips: list[torch.Tensor] = []
        for name, layer in self.features.items():
            if name == "pool0" or name.startswith("transition"):
                skips.append(x)  # as forward_features: stem output, then each dense block before its transition
            x = layer.forward_preallocated(x, layout) if isinstance(layer, DenseBlock) else layer(x)
        for j, level in enumerate(self.decoder):
            skip = skips[len(skips) - 1 - j] if j < len(skips) else x
            x = level(x, skip, self.unet_connections)
        return x

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``(N, in_channels, H, W[, D])`` -> ``(features, logits)``.

        ``features``: ``(N, decoder_channels[-1], H, W[, D])``, the last upsampling layer's output ("upsample5_conv"
        in Table I); ``logits``: ``(N, out_channels, H, W[, D])``. Each spatial size must be divisible by
        ``self.size_divisors`` (32 for H and W in both paper configurations, 4 for D in 3D); other sizes raise
        ``ValueError``.
        """
        features = self.forward_features(x)
        return features, self.classifier(self.dropout(features))


def DenseUNet167(in_channels: int = 3, out_channels: int = 3, **overrides) -> DenseUNet:
    """2D DenseUNet-167 of Table I: k=48, blocks 6/12/36/24, init 96, decoder 768/384/96/96/64 (167 convs).

    The settings are ``presets.dense2d_config("paper")``; ``overrides`` replace any :class:`DenseUNet` argument
    (e.g. ``memory_efficient=True``).
    """
    return DenseUNet(2, in_channels, out_channels, **{**dense2d_config("paper"), **overrides})


def DenseUNet65(in_channels: int = 4, out_channels: int = 3, **overrides) -> DenseUNet:
    """3D DenseUNet-65 of Table I: k=32, blocks 3/4/12/8, init 96, decoder 504/224/192/96/64 (65 convs).

    ``in_channels`` 4 = the image and the 3 class probabilities of the 2D branch. The settings are
    ``presets.dense3d_config("paper")``; ``overrides`` replace any :class:`DenseUNet` argument.
    """
    return DenseUNet(3, in_channels, out_channels, **{**dense3d_config("paper"), **overrides})

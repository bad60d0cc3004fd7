"""Size presets of the three seed methods: ``"paper"`` (each paper's own plan) and ``"small"`` (CPU tests, demo).

Each function returns a fresh ``dict`` of constructor keyword arguments (everything after ``spatial_dims,
in_channels, out_channels``), so callers may update it freely:

- :func:`denseunet569_config` for :class:`~bundle.networks.denseunet569.DenseUNet569` (Alalwan et al. 2021);
- :func:`raunet_config` for :class:`~bundle.networks.raunet.RAUNet`, 2D (RA-UNet-I, Table II of Jin et al.) and
  3D (RA-UNet-II, Table III);
- :func:`cascaded_resnet_config` for the per-step ResNet of :class:`~bundle.networks.cascaded_resnet.CascadedResNet`
  (Table 1 of Bi et al. 2017).

"small" keeps every paper's topology (same number of levels, blocks per stage where cheap, the dilations and the
attention depths) with narrow widths, so a forward pass of a ``1x1x64x64x8`` volume takes well under a second on
two CPU cores and every network accepts the bundle's ``224x224x12`` sliding windows. The one exception to "same
topology" is the 3D RA-UNet "small" preset, which pools D only in its first two levels (the paper pools D five
times, so its 3D net needs D divisible by 32: 224x224x32 patches).
"""

from __future__ import annotations

from .presets import NETWORK_SIZES

__all__ = ["cascaded_resnet_config", "denseunet569_config", "raunet_config"]

_DENSEUNET569 = {
    # Fig. 1 / Table 3 reconstruction (see denseunet569.py): DenseNet-BC encoder with k=32, 96 stem features,
    # dense blocks of 4/12/24/36 depthwise-separable micro-blocks; decoder widths of H-DenseUNet's 3D DenseUNet-65.
    "paper": {
        "init_features": 96,
        "growth_rate": 32,
        "block_config": (4, 12, 24, 36),
        "bn_size": 4,
        "decoder_channels": (504, 224, 192, 96, 64),
    },
    "small": {
        "init_features": 16,
        "growth_rate": 8,
        "block_config": (2, 2, 2, 2),
        "bn_size": 4,
        "decoder_channels": (32, 24, 16, 8, 8),
    },
}

_RAUNET = {
    # channels = (Conv1, Res1, Res2, Res3, Res4, Res5/Res6); the decoder mirrors them (Res7 = Res4 width, ...,
    # Conv2 = Conv1 width). One pool per entry of pool_sizes (after Conv1, Res1, Res2, Res3, Res4).
    2: {
        "paper": {"channels": (16, 16, 32, 64, 128, 256), "pool_sizes": ((2, 2),) * 5},  # Table II, 256x256 slices
        "small": {"channels": (8, 8, 16, 16, 32, 32), "pool_sizes": ((2, 2),) * 5},
    },
    3: {
        "paper": {"channels": (32, 32, 64, 128, 256, 512), "pool_sizes": ((2, 2, 2),) * 5},  # Table III, 224x224x32
        "small": {
            "channels": (8, 8, 16, 16, 32, 32),
            "pool_sizes": ((2, 2, 2), (2, 2, 2), (2, 2, 1), (2, 2, 1), (2, 2, 1)),  # D divisible by 4: 224x224x12
        },
    },
}

# A ResNet stage is (number of residual blocks, stride of the first block, convs of each block), a conv is
# (kernel size, output width, dilation). Table 1 of Bi et al. lists the first block of a stage apart when its
# stride or its first dilation differs; here such rows are separate stages.
_CASCADED_RESNET = {
    "paper": {  # Table 1: ResNet-38 ("model A" of Wu et al., their ref. [13]) with dilations, 1/8 output stride
        "stem_channels": 64,
        "stages": (
            (3, 2, ((3, 128, 1), (3, 128, 1))),  # 252x252: 1 strided + 2 blocks
            (3, 2, ((3, 256, 1), (3, 256, 1))),  # 126x126: 1 strided + 2 blocks
            (6, 2, ((3, 512, 1), (3, 512, 1))),  # 63x63: 1 strided + 5 blocks
            (1, 1, ((3, 512, 1), (3, 1024, 2))),
            (2, 1, ((3, 512, 2), (3, 1024, 2))),
            (1, 1, ((1, 512, 1), (3, 1024, 4), (1, 2048, 1))),
            (1, 1, ((1, 1024, 1), (3, 2048, 4), (1, 4096, 1))),
        ),
        "head_channels": 512,
        "head_dilation": 12,
    },
    "small": {
        "stem_channels": 16,
        "stages": (
            (1, 2, ((3, 16, 1), (3, 16, 1))),
            (1, 2, ((3, 24, 1), (3, 24, 1))),
            (2, 2, ((3, 32, 1), (3, 32, 1))),
            (1, 1, ((3, 32, 1), (3, 48, 2))),
            (1, 1, ((1, 32, 1), (3, 48, 4), (1, 64, 1))),
        ),
        "head_channels": 32,
        "head_dilation": 12,
    },
}


def _check(size: str) -> None:
    if size not in NETWORK_SIZES:
        raise ValueError(f"network size must be one of {NETWORK_SIZES}, got {size!r}")


def denseunet569_config(size: str = "paper") -> dict:
    """:class:`DenseUNet569` keyword arguments: ``init_features``, ``growth_rate``, ``block_config``, ``bn_size``,
    ``decoder_channels``."""
    _check(size)
    return dict(_DENSEUNET569[size])


def raunet_config(spatial_dims: int, size: str = "paper") -> dict:
    """:class:`RAUNet` keyword arguments ``channels`` and ``pool_sizes`` for 2D (RA-UNet-I) or 3D (RA-UNet-II)."""
    _check(size)
    if spatial_dims not in _RAUNET:
        raise ValueError(f"RAUNet presets exist for spatial_dims 2 and 3, got {spatial_dims}")
    return dict(_RAUNET[spatial_dims][size])


def cascaded_resnet_config(size: str = "paper") -> dict:
    """Per-step ResNet keyword arguments: ``stem_channels``, ``stages``, ``head_channels``, ``head_dilation``."""
    _check(size)
    return dict(_CASCADED_RESNET[size])

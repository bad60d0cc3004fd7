"""Network size presets: ``"paper"`` (Table I of Li et al. 2018) and ``"small"`` (CPU tests and the demo).

Each function returns a fresh ``dict`` of constructor keyword arguments, so callers may update it freely:
:func:`dense2d_config` and :func:`dense3d_config` for :class:`~bundle.networks.denseunet.DenseUNet` (everything
after ``spatial_dims, in_channels, out_channels``), :func:`hff_config` for the HFF layer of
:class:`~bundle.networks.hdenseunet.HDenseUNet` and :func:`coarse_config` for
:class:`~bundle.networks.coarse_liver.CoarseLiverNet`.

"small" is chosen so that every UNet sum of the 3D net meets a skip of its own width (no projections needed,
like the paper's 3D plan), the 2D and 3D features both have 16 channels (Z = X3d + X2d'), and a LiTS-sized case
(512x512x120) runs end to end in under 20 s on two CPU cores (``scripts/benchmark.py``). The full-resolution
layers dominate the cost of a whole case: with 32 feature channels (HFF 32) the last 3D decoder conv and the HFF
conv alone were two thirds of the case's 1.27 TFLOP (2026-12-02), so "small" ends at 16.
Encoder widths of "small": 2D stem 32, DB1 64, DB2 80, DB3 104, DB4 100 (level-1 and level-2 sums take a 1x1
projection); 3D stem 32, DB1 48, DB2 40, DB3 36, DB4 34.

:func:`coarse_spacing` is the voxel size the coarse liver network works at: the paper's 0.69 x 0.69 x 1.0 mm,
1 x 1 x 2 mm for "small" (the coarse network on every 0.69 mm slice of a LiTS-sized case was a third of its
time). Coarser in-plane loses the small phantoms' livers: the coarse stage's validation liver Dice after 30 epochs
(tests/engines/test_learning.py) was 0.69 at 0.69 x 0.69 x 1, 0.61 at 1 x 1 x 2, 0.33 at 1.38 x 1.38 x 1 mm.
"""

from __future__ import annotations

__all__ = ["NETWORK_SIZES", "coarse_config", "coarse_spacing", "dense2d_config", "dense3d_config", "hff_config"]

NETWORK_SIZES = ("paper", "small")

_DENSE2D = {
    "paper": {  # 2D DenseUNet-167: 167 convolutions, ImageNet DenseNet-161 encoder
        "init_features": 96,
        "growth_rate": 48,
        "block_config": (6, 12, 36, 24),
        "bn_size": 4,
        "decoder_channels": (768, 384, 96, 96, 64),
        "stem_stride": 2,
        "pool_sizes": ((2, 2), (2, 2), (2, 2)),
        "skip_merge": "before_conv",
    },
    "small": {
        "init_features": 32,
        "growth_rate": 16,
        "block_config": (2, 3, 4, 3),
        "bn_size": 4,
        "decoder_channels": (96, 64, 32, 32, 16),
        "stem_stride": 2,
        "pool_sizes": ((2, 2), (2, 2), (2, 2)),
        "skip_merge": "before_conv",
    },
}

_DENSE3D = {
    "paper": {  # 3D DenseUNet-65: 65 convolutions
        "init_features": 96,
        "growth_rate": 32,
        "block_config": (3, 4, 12, 8),
        "bn_size": 4,
        "decoder_channels": (504, 224, 192, 96, 64),
        "stem_stride": 2,
        "pool_sizes": ((2, 2, 1), (2, 2, 1), (2, 2, 1)),
        "skip_merge": "after_conv",
    },
    "small": {
        "init_features": 32,
        "growth_rate": 8,
        "block_config": (2, 2, 2, 2),
        "bn_size": 4,
        "decoder_channels": (36, 40, 48, 32, 16),
        "stem_stride": 2,
        "pool_sizes": ((2, 2, 1), (2, 2, 1), (2, 2, 1)),
        "skip_merge": "after_conv",
    },
}

_HFF = {
    "paper": {"hff_channels": 64, "hff_dropout": 0.3},  # released code: Conv3D(64, 3x3x3) + Dropout(0.3) + BN + ReLU
    "small": {"hff_channels": 16, "hff_dropout": 0.3},
}

_COARSE = {
    # 2.5D residual U-Net in the spirit of Han 2017 (the coarse ResNet of Fig. 2a): MONAI UNet with 2 residual
    # units per level. The paper asks only for "a simple ResNet ... quick but coarse", run on every slice at
    # 0.69 x 0.69 mm. "paper": 22 conv layers (incl. residual 1x1 and transposed convs), 6.5M parameters,
    # 24 GFLOP per 512² slice; widths starting at 64 instead of 32 (14.8M, 73 GFLOP) made it half of the time
    # of a LiTS-sized case (scripts/benchmark.py, 2026-12-01). "small": 17 conv layers, 0.23M parameters.
    "paper": {"channels": (32, 64, 128, 256, 512), "strides": (2, 2, 2, 2), "num_res_units": 2},
    "small": {"channels": (16, 32, 64, 64), "strides": (2, 2, 2), "num_res_units": 2},
}


#: mm (x, y, z of the RAS image); section IV-A resamples to 0.69 x 0.69 x 1.0 mm for the coarse network
_COARSE_SPACING = {"paper": (0.69, 0.69, 1.0), "small": (1.0, 1.0, 2.0)}


def _check(size: str) -> None:
    if size not in NETWORK_SIZES:
        raise ValueError(f"network size must be one of {NETWORK_SIZES}, got {size!r}")


def dense2d_config(size: str = "paper") -> dict:
    """DenseUNet keyword arguments of the 2D branch (after ``spatial_dims, in_channels, out_channels``)."""
    _check(size)
    return dict(_DENSE2D[size])


def dense3d_config(size: str = "paper") -> dict:
    """DenseUNet keyword arguments of the 3D branch (after ``spatial_dims, in_channels, out_channels``)."""
    _check(size)
    return dict(_DENSE3D[size])


def hff_config(size: str = "paper") -> dict:
    """``hff_channels`` and ``hff_dropout`` of the hybrid feature fusion layer."""
    _check(size)
    return dict(_HFF[size])


def coarse_config(size: str = "paper") -> dict:
    """``channels``, ``strides``, ``num_res_units`` of the coarse liver network's 2D residual U-Net."""
    _check(size)
    return dict(_COARSE[size])


def coarse_spacing(size: str = "paper") -> tuple[float, float, float]:
    """Voxel size in mm (x, y, z, RAS) of the coarse liver network's input: the volume is resampled to it for the
    coarse stage's training and for the cascade's liver search."""
    _check(size)
    return _COARSE_SPACING[size]

"""Networks of the cascade: the coarse liver network and H-DenseUNet (2D DenseUNet-167 + 3D DenseUNet-65 + HFF)."""

from .cascade import LiverTumorCascade
from .coarse_liver import CoarseLiverNet
from .denseunet import DenseUNet, DenseUNet65, DenseUNet167
from .hdenseunet import HDenseUNet
from .presets import NETWORK_SIZES
from .pretrained import load_densenet161_encoder

__all__ = [
    "NETWORK_SIZES",
    "CoarseLiverNet",
    "DenseUNet",
    "DenseUNet65",
    "DenseUNet167",
    "HDenseUNet",
    "LiverTumorCascade",
    "load_densenet161_encoder",
]

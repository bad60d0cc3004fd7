"""Networks: the coarse liver network, H-DenseUNet (2D DenseUNet-167 + 3D DenseUNet-65 + HFF), the cascade that
holds them, and the other seed methods (3D-DenseUNet-569, RA-UNet, cascaded ResNet)."""

from .ablation import DenseUNet2DOnly, DenseUNet3DOnly
from .cascade import FINE_NETWORKS, LiverTumorCascade
from .cascaded_resnet import BI2017_TEST_SCALES, CascadedResNet
from .coarse_liver import CoarseLiverNet
from .denseunet import DenseUNet, DenseUNet65, DenseUNet167
from .denseunet569 import DENSEUNET569_CLASS_WEIGHTS, DenseUNet569
from .hdenseunet import HDenseUNet
from .presets import NETWORK_SIZES
from .pretrained import load_densenet161_encoder
from .raunet import RAUNet, RAUNet2D, RAUNet3D

__all__ = [
    "BI2017_TEST_SCALES",
    "DENSEUNET569_CLASS_WEIGHTS",
    "FINE_NETWORKS",
    "NETWORK_SIZES",
    "CascadedResNet",
    "CoarseLiverNet",
    "DenseUNet",
    "DenseUNet2DOnly",
    "DenseUNet3DOnly",
    "DenseUNet65",
    "DenseUNet167",
    "DenseUNet569",
    "HDenseUNet",
    "LiverTumorCascade",
    "RAUNet",
    "RAUNet2D",
    "RAUNet3D",
    "load_densenet161_encoder",
]

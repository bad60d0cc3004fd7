"""Networks, standing alone with torch and MONAI (no other ``bundle`` sub-package is imported).

- ``coarse_liver``: the coarse liver network (2.5D residual U-Net);
- ``denseunet`` (with its blocks in ``dense_blocks``): DenseUNet, 2D DenseUNet-167 and 3D DenseUNet-65;
- ``hdenseunet``: H-DenseUNet (2D branch + 3D branch + HFF), with public ``branch2d`` and ``fuse``;
- ``cascade``: ``LiverTumorCascade``, the coarse network and a liver/tumor network behind one ``forward``, and the
  paper's inference scheme; ``volume_geometry``: its voxel arithmetic, the liver-ROI box that training uses too;
- ``slices``: F / F⁻¹ (``slices_from_volume`` / ``volume_from_slices``) and 2.5D networks on whole slices;
- ``hybrid_inferer``: H-DenseUNet over a whole ROI, 2D branch once per slice; ``folding``: inference copies with
  BatchNorms folded;
- the seed methods: ``denseunet569``, ``raunet``, ``cascaded_resnet``, ``ablation`` (2D or 3D DenseUNet alone);
- ``presets``, ``seed_presets``: the paper and small sizes; ``pretrained``: the ImageNet DenseNet-161 encoder.
"""

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

"""Post-processing of the cascade's output, Li et al., H-DenseUNet, IEEE TMI 2018, section III-C-3.

"The thresholding is applied to get the liver tumor segmentation result. To avoid the holes in the liver,
a largest connected component labeling is performed to refine the liver result. After that, the final
lesion segmentation result is obtained by removing lesions outside the final liver region."

- :class:`LiverTumorThreshold`: probabilities ``(3, H, W, D)`` -> label map ``(1, H, W, D)`` uint8 {0, 1, 2}.
- :class:`LiverTumorCleanup`: label map -> label map whose liver region (labels {1, 2}) is the largest 3D
  connected component with its enclosed holes filled, and whose tumors lie inside that region only.

Both keep the channel dimension and the MetaTensor metadata, take torch tensors (any device) or numpy
arrays, and return the type they were given. Their dictionary versions end in ``d``.
"""

from __future__ import annotations

from collections.abc import Hashable, Mapping

import numpy as np
import torch
from monai.config import KeysCollection
from monai.config.type_definitions import NdarrayOrTensor
from monai.transforms import FillHoles, KeepLargestConnectedComponent, MapTransform, Transform
from monai.utils import TransformBackends, convert_to_dst_type, convert_to_tensor

__all__ = ["LiverTumorCleanup", "LiverTumorCleanupd", "LiverTumorThreshold", "LiverTumorThresholdd"]

BACKGROUND, LIVER, TUMOR = 0, 1, 2


def _bounding_box(mask: torch.Tensor, margin: int = 1) -> tuple[slice, ...]:
    """Slices of the bounding box of a non-empty boolean ``(H, W[, D])`` mask, widened by ``margin`` voxels."""
    box = []
    for axis in range(mask.ndim):
        others = tuple(a for a in range(mask.ndim) if a != axis)
        hits = torch.nonzero(mask.any(dim=others) if others else mask).flatten()
        box.append(slice(max(int(hits[0]) - margin, 0), int(hits[-1]) + 1 + margin))
    return tuple(box)


class LiverTumorThreshold(Transform):
    """Threshold background/liver/tumor probabilities into a label map.

    liver region = ``p_liver + p_tumor >= liver_threshold``; tumor = ``p_tumor >= tumor_threshold`` inside
    that region; the rest of the region is liver (1), everything else background (0).

    Args:
        liver_threshold: threshold on ``p_liver + p_tumor`` (the tumor is liver tissue). Default 0.5.
        tumor_threshold: threshold on ``p_tumor``. Default 0.5.
        softmax: the input is logits: apply a softmax over the channel dimension first.

    Example::

        labels = LiverTumorThreshold()(probs)  # (3, H, W, D) float -> (1, H, W, D) uint8
    """

    backend = [TransformBackends.TORCH]

    def __init__(self, liver_threshold: float = 0.5, tumor_threshold: float = 0.5, softmax: bool = False) -> None:
        if not (0.0 <= liver_threshold <= 1.0 and 0.0 <= tumor_threshold <= 1.0):
            raise ValueError(f"thresholds must lie in [0, 1], got {liver_threshold} and {tumor_threshold}")
        self.liver_threshold = liver_threshold
        self.tumor_threshold = tumor_threshold
        self.softmax = softmax

    def __call__(self, img: NdarrayOrTensor) -> NdarrayOrTensor:
        """``(3, H, W[, D])`` probabilities (or logits) in the order background, liver, tumor ->
        ``(1, H, W[, D])`` uint8 labels {0 background, 1 liver, 2 tumor}, same type/device/meta as ``img``."""
        if img.ndim < 2 or img.shape[0] != 3:
            raise ValueError(f"expected (3, H, W[, D]) background/liver/tumor channels, got shape {tuple(img.shape)}")
        prob = convert_to_tensor(img, track_meta=False, dtype=torch.float32)
        if self.softmax:
            prob = torch.softmax(prob, dim=0)
        liver = (prob[1] + prob[2]) >= self.liver_threshold
        tumor = liver & (prob[2] >= self.tumor_threshold)
        label = (liver.to(torch.uint8) + tumor.to(torch.uint8))[None]
        dtype = torch.uint8 if isinstance(img, torch.Tensor) else np.uint8
        return convert_to_dst_type(label, dst=img, dtype=dtype)[0]


class LiverTumorCleanup(Transform):
    """Keep the largest liver component, fill its holes, and drop tumors outside it.

    Steps on a label map with 0 background, 1 liver, 2 tumor:

    1. liver region = labels {1, 2} (a tumor is inside the liver);
    2. MONAI :class:`~monai.transforms.KeepLargestConnectedComponent` keeps its largest 3D connected component
       (``connectivity``: None = full, 26-neighbourhood in 3D; 1 = faces only);
    3. MONAI :class:`~monai.transforms.FillHoles` fills the background fully enclosed by that region in 3D
       (``hole_connectivity``: connectivity of the background that reaches the border; None = full);
    4. output: 0 outside the final region, 2 where the input was 2 inside it, 1 elsewhere in it. So a tumor voxel
       outside the final liver region becomes background and a filled hole becomes liver.

    Args:
        connectivity: connectivity of the largest-component labelling (1..3, None = full).
        fill_holes: fill the enclosed holes of the liver region (paper: "to avoid the holes in the liver").
        hole_connectivity: connectivity used by ``FillHoles`` (1..3, None = full).
    """

    backend = [TransformBackends.TORCH, TransformBackends.NUMPY]

    def __init__(
        self, connectivity: int | None = None, fill_holes: bool = True, hole_connectivity: int | None = None
    ) -> None:
        self.largest = KeepLargestConnectedComponent(applied_labels=[1], is_onehot=False, connectivity=connectivity)
        self.fill = FillHoles(applied_labels=[1], connectivity=hole_connectivity) if fill_holes else None

    def __call__(self, img: NdarrayOrTensor) -> NdarrayOrTensor:
        """``(1, H, W[, D])`` labels {0, 1, 2} -> cleaned ``(1, H, W[, D])`` labels, same type/dtype/device/meta."""
        if img.ndim < 2 or img.shape[0] != 1:
            raise ValueError(f"expected a one-channel label map (1, H, W[, D]), got shape {tuple(img.shape)}")
        label = convert_to_tensor(img, track_meta=False)
        region = (label == LIVER) | (label == TUMOR)
        if region.any():
            # work inside the region's bounding box plus a 1-voxel margin: exact (the margin is background connected
            # to the outside) and faster, as the liver fills only part of a CT volume
            box = (slice(None), *_bounding_box(region[0]))
            cropped = region[box].to(torch.uint8)
            cropped = convert_to_tensor(self.largest(cropped), track_meta=False)
            if self.fill is not None:
                cropped = convert_to_tensor(self.fill(cropped), track_meta=False)
            region = torch.zeros_like(region)
            region[box] = cropped.to(device=label.device).bool()
        out = torch.zeros_like(label)
        out[region] = LIVER
        out[region & (label == TUMOR)] = TUMOR
        return convert_to_dst_type(out, dst=img)[0]


class LiverTumorThresholdd(MapTransform):
    """Dictionary version of :class:`LiverTumorThreshold`: each key's ``(3, ...)`` probabilities are replaced
    by its ``(1, ...)`` uint8 label map."""

    backend = LiverTumorThreshold.backend

    def __init__(
        self,
        keys: KeysCollection,
        liver_threshold: float = 0.5,
        tumor_threshold: float = 0.5,
        softmax: bool = False,
        allow_missing_keys: bool = False,
    ) -> None:
        super().__init__(keys, allow_missing_keys)
        self.converter = LiverTumorThreshold(liver_threshold, tumor_threshold, softmax)

    def __call__(self, data: Mapping[Hashable, NdarrayOrTensor]) -> dict[Hashable, NdarrayOrTensor]:
        d = dict(data)
        for key in self.key_iterator(d):
            d[key] = self.converter(d[key])
        return d


class LiverTumorCleanupd(MapTransform):
    """Dictionary version of :class:`LiverTumorCleanup`."""

    backend = LiverTumorCleanup.backend

    def __init__(
        self,
        keys: KeysCollection,
        connectivity: int | None = None,
        fill_holes: bool = True,
        hole_connectivity: int | None = None,
        allow_missing_keys: bool = False,
    ) -> None:
        super().__init__(keys, allow_missing_keys)
        self.converter = LiverTumorCleanup(connectivity, fill_holes, hole_connectivity)

    def __call__(self, data: Mapping[Hashable, NdarrayOrTensor]) -> dict[Hashable, NdarrayOrTensor]:
        d = dict(data)
        for key in self.key_iterator(d):
            d[key] = self.converter(d[key])
        return d

"""Liver region of interest: crop every volume to the bounding box of a liver mask plus a margin in millimetres.

Li et al., H-DenseUNet, IEEE TMI 2018, section III and Fig. 2(a): a coarse network segments the liver first and
H-DenseUNet then works inside that region only. In training the mask is the label (``label > 0``: liver and
tumour); at inference it is the coarse stage's prediction, brought to the image's grid.

:class:`LiverROI` / :class:`LiverROId` build on MONAI's :class:`~monai.transforms.CropForeground` /
:class:`~monai.transforms.Cropd`: the crop is recorded in ``applied_operations`` like any MONAI crop, so
``Compose.inverse`` or :class:`~monai.transforms.Invertd` pads a prediction back into the full volume (with zeros:
for a label map that is background; for probabilities every channel is 0 outside the box, whose argmax is also
background). The box is clipped to the image, so nothing is ever padded on the way in.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Hashable, Mapping, Sequence

import numpy as np
import torch
from monai.config import IndexSelection, KeysCollection
from monai.data import MetaTensor
from monai.data.utils import affine_to_spacing
from monai.transforms import Cropd, CropForeground
from monai.transforms.utils import generate_spatial_bounding_box, is_positive
from monai.utils import ensure_tuple_rep

from bundle.networks.volume_geometry import liver_roi_box

__all__ = ["LiverROI", "LiverROId"]

logger = logging.getLogger(__name__)


def _spacing_mm(*candidates: object) -> np.ndarray | None:
    """Voxel size in mm per spatial axis from the affine of the first ``MetaTensor`` among ``candidates``."""
    for c in candidates:
        if isinstance(c, MetaTensor):
            return np.asarray(affine_to_spacing(c.affine, r=c.ndim - 1), dtype=float)
    return None


class LiverROI(CropForeground):
    """Crop ``(C, H, W, D)`` to the bounding box of a liver mask, enlarged by ``margin_mm`` and to ``min_size``.

    The box is computed on ``mask`` (``(1, H, W, D)``, or any channel count: the union over channels, or over
    ``channel_indices``, is taken) with ``select_fn`` (default ``mask > 0``), then:

    1. enlarged by ``margin_mm`` millimetres on both sides of every axis, converted to voxels with the mask's
       (else the image's) voxel size from its affine and rounded up, so the margin is never less than asked
       (a plain tensor without affine counts as 1 mm voxels);
    2. grown to at least ``min_size`` voxels per axis if given, about the box centre;
    3. clipped to the image: near its edge the box is narrower than ``min_size``, pad afterwards (``SpatialPad``).

    This is the rule the cascade applies at inference
    (:func:`~bundle.networks.volume_geometry.liver_roi_box`), so training crops what inference will crop.

    An empty mask gives the whole volume and a logged warning. The crop is invertible (``inverse`` pads back with
    zeros to the input's shape; ``affine`` is updated forward and restored backward).

    Args:
        margin_mm: margin added around the mask's box, in mm, one value or one per spatial axis.
        min_size: smallest box size in voxels per spatial axis, e.g. ``(224, 224, 12)``; ``None``: no minimum.
        select_fn: function of the mask giving the foreground, default ``mask > 0``.
        channel_indices: mask channels to look at; ``None``: all.

    Examples::

        roi = LiverROI(margin_mm=(10, 10, 5), min_size=(224, 224, 12))
        cropped = roi(image, mask=label)              # (1, h, w, d), h >= 224 if H >= 224
        start, end = roi.compute_bounding_box(label)  # the same box, voxel indices
    """

    def __init__(
        self,
        margin_mm: Sequence[float] | float = 10.0,
        min_size: Sequence[int] | int | None = None,
        select_fn: Callable = is_positive,
        channel_indices: IndexSelection | None = None,
    ) -> None:
        super().__init__(select_fn=select_fn, channel_indices=channel_indices, margin=0, allow_smaller=True)
        self.margin_mm = margin_mm
        self.min_size = min_size

    def compute_bounding_box(  # type: ignore[override]
        self, img: torch.Tensor, spacing: Sequence[float] | None = None
    ) -> tuple[np.ndarray, np.ndarray]:
        """Box ``(start, end)`` in voxel indices (``end`` exclusive) of the mask ``img`` ``(C, H, W, D)``.

        ``spacing``: voxel size in mm per spatial axis; by default read from ``img``'s affine (1 mm without one).
        """
        shape = np.asarray(img.shape[1:], dtype=np.int64)
        ndim = len(shape)
        if spacing is None:
            found = _spacing_mm(img)
            spacing = found if found is not None else np.ones(ndim)
        margin_mm = np.asarray(ensure_tuple_rep(self.margin_mm, ndim), dtype=float)
        if np.any(margin_mm < 0):
            raise ValueError(f"LiverROI: margin_mm must be >= 0, got {self.margin_mm}")
        start, end = generate_spatial_bounding_box(img, self.select_fn, self.channel_indices, 0, True)
        if np.all(np.asarray(end) - np.asarray(start) <= 0):
            name = img.meta.get("filename_or_obj", "") if isinstance(img, MetaTensor) else ""
            logger.warning("LiverROI: empty liver mask %s; falling back to the whole volume %s", name, shape.tolist())
            return np.zeros(ndim, dtype=np.int64), shape.copy()
        min_size = None if self.min_size is None else ensure_tuple_rep(self.min_size, ndim)
        box = liver_roi_box(start, end, shape.tolist(), np.asarray(spacing, dtype=float), margin_mm, min_size)
        return np.array([lo for lo, _ in box], dtype=np.int64), np.array([hi for _, hi in box], dtype=np.int64)

    def __call__(  # type: ignore[override]
        self, img: torch.Tensor, mask: torch.Tensor | None = None, lazy: bool | None = None
    ) -> torch.Tensor:
        """``(C, H, W, D)`` -> ``(C, h, w, d)`` inside the box of ``mask`` (default: of ``img`` itself)."""
        source = img if mask is None else mask
        if source.shape[1:] != img.shape[1:]:
            raise ValueError(f"LiverROI: mask shape {tuple(source.shape)} does not match image {tuple(img.shape)}")
        start, end = self.compute_bounding_box(source, spacing=_spacing_mm(source, img))
        lazy_ = self.lazy if lazy is None else lazy
        return self.crop_pad(img, start, end, lazy=lazy_)


class LiverROId(Cropd):
    """Dictionary wrapper of :class:`LiverROI`: crop every key to the box of ``d[source_key]`` plus a margin in mm.

    All keys get the same box, e.g. ``keys=["image", "label"]`` with ``source_key="label"`` in training, or
    ``keys="image"`` with ``source_key="coarse_pred"`` at inference (the mask must be on the image's grid and may
    itself be among ``keys``). The box ``[[start...], [end...]]`` (voxel indices on the grid before the crop,
    ``end`` exclusive, int64 array of shape ``(2, spatial_dims)``) is stored in ``d[box_key]`` for reports; the
    inverse (``Compose.inverse`` / ``Invertd``) pads every key back to the full volume.

    Args:
        keys: keys of the ``(C, H, W, D)`` volumes to crop.
        source_key: key of the liver mask that defines the box.
        margin_mm: margin around the mask's box in mm, one value or one per spatial axis.
        min_size: smallest box size in voxels, e.g. ``(224, 224, 12)``; ``None``: no minimum.
        select_fn: foreground of the mask, default ``mask > 0``.
        channel_indices: mask channels to look at; ``None``: all.
        box_key: where to store the box; ``None``: don't store it.
        allow_missing_keys: don't raise an exception if a key is missing.

    Examples::

        roi = LiverROId(["image", "label"], source_key="label", margin_mm=10.0, min_size=(224, 224, 12))
        d = roi(d)  # "image", "label": (1, h, w, d); "liver_roi_box": [[i0, j0, k0], [i1, j1, k1]]
        Invertd("pred", transform=Compose([..., roi]), orig_keys="image")(d)  # pred pasted back, zeros outside
    """

    def __init__(
        self,
        keys: KeysCollection,
        source_key: str = "label",
        margin_mm: Sequence[float] | float = 10.0,
        min_size: Sequence[int] | int | None = None,
        select_fn: Callable = is_positive,
        channel_indices: IndexSelection | None = None,
        box_key: str | None = "liver_roi_box",
        allow_missing_keys: bool = False,
    ) -> None:
        cropper = LiverROI(margin_mm=margin_mm, min_size=min_size, select_fn=select_fn, channel_indices=channel_indices)
        super().__init__(keys, cropper=cropper, allow_missing_keys=allow_missing_keys)
        self.source_key = source_key
        self.box_key = box_key

    @property
    def requires_current_data(self) -> bool:
        return True

    def __call__(  # type: ignore[override]
        self, data: Mapping[Hashable, torch.Tensor], lazy: bool | None = None
    ) -> dict[Hashable, torch.Tensor]:
        d = dict(data)
        source = d[self.source_key]
        others = [d[k] for k in self.key_iterator(d)]
        self.cropper: LiverROI
        start, end = self.cropper.compute_bounding_box(source, spacing=_spacing_mm(source, *others))
        if self.box_key is not None:
            d[self.box_key] = np.stack([start, end])
        lazy_ = self.lazy if lazy is None else lazy
        for key in self.key_iterator(d):
            if d[key].shape[1:] != source.shape[1:]:
                raise ValueError(
                    f"LiverROId: {key} has spatial shape {tuple(d[key].shape[1:])}, "
                    f"mask {self.source_key} has {tuple(source.shape[1:])}"
                )
            d[key] = self.cropper.crop_pad(d[key], start, end, lazy=lazy_)
        return d

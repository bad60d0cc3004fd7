"""Validate a datalist entry's CT and label files before ``LoadImaged`` reads them.

:class:`ValidateCTd` runs :func:`bundle.data.validation.check_image_file` and
:func:`~bundle.data.validation.check_label_file` on the file paths (or DICOM folders) of a dictionary, so a
truncated file, a 4D export, an MR image or a label on the wrong grid fails with an
:class:`~bundle.data.validation.InvalidInputError` naming the file, before any voxel is loaded, resampled or cached.
"""

from __future__ import annotations

import logging
from collections.abc import Hashable, Mapping
from os import PathLike

from monai.config import KeysCollection
from monai.transforms import MapTransform
from monai.utils import ensure_tuple

from bundle.data.validation import ImageInfo, check_image_file, check_label_file

__all__ = ["ValidateCTd"]

logger = logging.getLogger(__name__)


class ValidateCTd(MapTransform):
    """Check the files a datalist entry points to; the entry is returned unchanged (paths, not arrays).

    Put it first, before ``LoadImaged``. Keys in ``label_keys`` are checked as labels (values in {0, 1, 2}, same
    grid as the image, compared in RAS order); the other keys as CT images (3D, spacing in ``(0, max_spacing_mm]``
    mm, at least ``min_slices`` axial slices, no NaN/Inf, HU intensities unless ``allow_non_ct``). Each label is
    compared with the first image key present in the entry.

    Input and output: ``{"image": "volume-0.nii.gz", "label": "segmentation-0.nii.gz", ...}``, unchanged.

    Args:
        keys: keys holding file paths or DICOM-series folders, images and labels.
        label_keys: which of ``keys`` are labels.
        allow_non_ct: accept images failing the CT-intensity heuristic (e.g. MR).
        min_slices: fewest axial slices an image may have (the network's slice-stack depth).
        max_spacing_mm: largest voxel size accepted, in mm.
        allow_missing_keys: skip keys absent from the entry (e.g. no label at inference); a ``None`` value is
            treated as absent too.

    Raises:
        InvalidInputError: naming the offending file and the problem.
        TypeError: when a key holds something other than one path (e.g. an array: place this before loading).

    Examples::

        pre = Compose([ValidateCTd(["image", "label"], min_slices=12), *load_ct_transforms(["image", "label"])])
    """

    def __init__(
        self,
        keys: KeysCollection = ("image", "label"),
        label_keys: KeysCollection = ("label",),
        allow_non_ct: bool = False,
        min_slices: int = 1,
        max_spacing_mm: float = 20.0,
        allow_missing_keys: bool = True,
    ) -> None:
        super().__init__(keys, allow_missing_keys)
        self.label_keys = set(ensure_tuple(label_keys))
        self.allow_non_ct = allow_non_ct
        self.min_slices = min_slices
        self.max_spacing_mm = max_spacing_mm

    def __call__(self, data: Mapping[Hashable, object]) -> dict[Hashable, object]:
        d = dict(data)
        present = [key for key in self.key_iterator(d) if d[key] is not None or not self.allow_missing_keys]
        image_info: ImageInfo | None = None
        for key in sorted(present, key=lambda k: k in self.label_keys):  # images first, then labels
            path = d[key]
            if not isinstance(path, (str, PathLike)):
                raise TypeError(
                    f"ValidateCTd expects one file path or DICOM folder under {key!r}, got {type(path).__name__}; "
                    "place it before LoadImaged"
                )
            if key in self.label_keys:
                check_label_file(path, image_info, max_spacing_mm=self.max_spacing_mm)
            else:
                info = check_image_file(
                    path,
                    allow_non_ct=self.allow_non_ct,
                    min_slices=self.min_slices,
                    max_spacing_mm=self.max_spacing_mm,
                )
                image_info = image_info or info
                logger.debug("%s: %s %s mm, HU percentiles %s", path, info.shape, info.spacing_mm, info.hu_percentiles)
        return d

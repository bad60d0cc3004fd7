"""MONAI-style transforms (array + dictionary pairs) for the H-DenseUNet pipeline: CT loading and HU window
(``io``), the liver ROI crop (``liver_roi``, the box rule of :mod:`bundle.networks.volume_geometry`), slice stacks
(``slice_stack_transforms``; F / F⁻¹ themselves live in :mod:`bundle.networks.slices`), partial labels and input
validation as a transform."""

from .io import CT_READERS, load_ct_transforms
from .liver_roi import LiverROI, LiverROId
from .partial_labels import LIVER_OR_TUMOR, MarkUnlabelledTumord
from .slice_stack_transforms import SliceStacks, SliceStacksd, is_slice_stack
from .slice_stacks import slices_from_volume, volume_from_slices
from .validation import ValidateCTd

__all__ = [
    "CT_READERS",
    "LIVER_OR_TUMOR",
    "LiverROI",
    "LiverROId",
    "MarkUnlabelledTumord",
    "SliceStacks",
    "SliceStacksd",
    "ValidateCTd",
    "is_slice_stack",
    "load_ct_transforms",
    "slices_from_volume",
    "volume_from_slices",
]

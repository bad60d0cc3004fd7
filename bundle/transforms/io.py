"""Reading CT volumes and labels from NIfTI, NRRD, MHA/MHD and DICOM-series folders onto one RAS voxel grid.

MONAI's :class:`~monai.transforms.LoadImaged` chooses a reader by trying the registered readers from the last
to the first and taking the first whose ``verify_suffix`` accepts the file. With MONAI 1.6.1's default
registration order (pydicom, nvimgcodec, ITK, NRRD, NumPy, PIL, nibabel), and with this bundle's pinned
dependencies (nibabel and itk installed, pynrrd and pydicom not), that gives:

================================  ===================================================================
input                             reader picked automatically
================================  ===================================================================
``.nii``, ``.nii.gz``             ``NibabelReader`` (its ``verify_suffix`` accepts only these)
``.nrrd``, ``.mha``, ``.mhd``     ``ITKReader`` (accepts any path when itk is installed)
DICOM-series folder               ``ITKReader`` (GDCM series reader, also reads JPEG 2000 transfer syntaxes)
================================  ===================================================================

That automatic choice changes when more packages are installed: with pynrrd, ``.nrrd`` goes to
``NrrdReader``; with pydicom but without itk, DICOM folders go to ``PydicomReader``. :data:`CT_READERS`
pins the choice above whatever is installed: readers given to ``LoadImaged(reader=...)`` are registered after
the defaults and so are tried first, nibabel for NIfTI and ITK for everything else. Both readers return the
affine in RAS world coordinates (ITK's LPS is converted, ``affine_lps_to_ras=True``), so every format gives
the same voxel-to-world mapping for the same image.

Metadata kept on every loaded ``MetaTensor`` (``img.meta``), which :class:`~monai.transforms.Invertd` and
:class:`~monai.transforms.SaveImaged` use to write a prediction back onto the input's grid:
``affine`` (current voxel -> RAS mm), ``original_affine`` (as read, before any reorientation),
``spatial_shape`` (as read) and ``filename_or_obj``.
"""

from __future__ import annotations

from collections.abc import Sequence

from monai.config import KeysCollection
from monai.transforms import EnsureChannelFirstd, LoadImaged, MapTransform, Orientationd

from bundle.data.ircadb import IrcadbReader

__all__ = ["CT_READERS", "load_ct_transforms"]

#: Readers for ``LoadImaged(reader=CT_READERS)``: nibabel for ``.nii``/``.nii.gz``, ITK for ``.nrrd``,
#: ``.mha``, ``.mhd`` and DICOM-series folders, and 3D-IRCADb's ``PATIENT_DICOM`` / ``MASKS_DICOM`` (folder or
#: ``.zip``: :class:`~bundle.data.ircadb.IrcadbReader`, tried last so that no other file meets it). Order matters:
#: the last one is tried first.
CT_READERS: tuple = (IrcadbReader(), "ITKReader", "NibabelReader")


def load_ct_transforms(
    keys: KeysCollection,
    axcodes: str = "RAS",
    readers: Sequence | None = CT_READERS,
    allow_missing_keys: bool = False,
) -> list[MapTransform]:
    """The reading steps every pipeline of the bundle starts with: load, channel first, reorient.

    ``LoadImaged(keys, reader=readers, image_only=True)`` -> ``EnsureChannelFirstd(keys)`` ->
    ``Orientationd(keys, axcodes)``. Each key then holds a ``(1, H, W, D)`` float32 ``MetaTensor`` (HU for a CT
    image, class indices for a label) whose ``affine`` maps voxel indices to RAS world millimetres. With
    ``axcodes="RAS"`` the voxel index grows along axis 0 towards the patient's right, along axis 1 towards
    anterior and along axis 2 (``D``, the axial slices) towards superior, whatever the file's own orientation.
    ``Orientationd`` is invertible: ``Invertd`` brings a prediction back to the file's own axis order.

    Args:
        keys: keys of the image paths (files or DICOM folders) to load, e.g. ``["image", "label"]``.
        axcodes: target orientation for :class:`~monai.transforms.Orientationd`.
        readers: reader names for ``LoadImaged``; ``None`` leaves MONAI's automatic choice (see module docstring).
        allow_missing_keys: passed to every transform (e.g. a label key absent at inference).

    Returns:
        a list of three MONAI dictionary transforms, to splice into a :class:`~monai.transforms.Compose`.

    Examples::

        window = ScaleIntensityRanged("image", a_min=-200, a_max=250, b_min=0.0, b_max=1.0, clip=True)
        pre = Compose([*load_ct_transforms(["image", "label"]), window])
    """
    reader = list(readers) if readers is not None else None
    return [
        LoadImaged(keys, reader=reader, image_only=True, allow_missing_keys=allow_missing_keys),
        EnsureChannelFirstd(keys, allow_missing_keys=allow_missing_keys),
        # labels=None: axis labels follow the tensor's "space" metadata (RAS for both readers); silences the
        # deprecation warning of MONAI >= 1.6 about the changing default.
        Orientationd(keys, axcodes=axcodes, labels=None, allow_missing_keys=allow_missing_keys),
    ]

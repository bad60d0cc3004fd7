"""Image headers read without the voxels, for the checks of :mod:`bundle.data.validation`.

Readers mirror :mod:`bundle.transforms.io`: nibabel for ``.nii``/``.nii.gz`` (scl_slope/scl_inter applied, as
``get_fdata`` does), ITK for ``.nrrd``/``.mha``/``.mhd`` and other files, ITK/GDCM for a folder holding one DICOM
series (rescale slope/intercept applied by GDCM), and 3D-IRCADb's ``PATIENT_DICOM.zip`` and ``MASKS_DICOM`` (folder
or zip) through :class:`~bundle.data.ircadb.IrcadbReader`, as ``LoadImaged`` reads them (read whole: they have no
header-only path). Affines are voxel -> RAS millimetres, as MONAI's readers give.

:func:`open_volume` checks existence and size, reads the header into a :class:`HeaderVolume` (shape, affine, the
spacing as written, dtype, components) and leaves the voxels to ``HeaderVolume.read()``; every failure raises
:class:`InvalidInputError` naming the file.
"""

from __future__ import annotations

import zipfile
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from os import PathLike
from pathlib import Path
from typing import Any

import nibabel as nib
import numpy as np

from .ircadb import IrcadbReader

__all__ = ["READ_ERRORS", "HeaderVolume", "InvalidInputError", "one_line", "open_volume"]

_GZIP_MAGIC = b"\x1f\x8b"
_ITK_DTYPES = {"char": "int8", "unsigned_char": "uint8", "short": "int16", "unsigned_short": "uint16", "int": "int32"}
_ITK_DTYPES |= {"unsigned_int": "uint32", "long": "int64", "unsigned_long": "uint64", "float": "float32"}
_ITK_DTYPES |= {"double": "float64", "long_long": "int64", "unsigned_long_long": "uint64"}
READ_ERRORS = (OSError, EOFError, ValueError, RuntimeError, MemoryError)
#: 3D-IRCADb inputs that only :class:`IrcadbReader` reads (a ``PATIENT_DICOM`` folder is a plain DICOM series)
_IRCADB_WHOLE = ("PATIENT_DICOM.zip", "MASKS_DICOM", "MASKS_DICOM.zip")


class InvalidInputError(ValueError):
    """An input file or folder the pipeline refuses; ``str()`` is ``"<path>: <problem>"``.

    Args:
        path: the offending file or DICOM folder.
        problem: one short phrase saying what is wrong (and, for a label, which image it was compared with).
    """

    def __init__(self, path: str | PathLike, problem: str) -> None:
        self.path = Path(path)
        self.problem = problem
        super().__init__(f"{self.path}: {problem}")


@dataclass
class HeaderVolume:
    """A header read without the voxels; ``load()`` returns ``(raw array, slope, intercept)``."""

    path: Path
    shape: tuple[int, ...]  # full stored shape, extra (time/channel) dims included
    affine: np.ndarray  # voxel -> RAS mm of the first three axes
    header_spacing: tuple[float, ...]  # spacing as written in the header, before any reader's fix-up
    dtype: str
    components: int
    load: Callable[[], tuple[np.ndarray, float, float]]

    def read(self) -> tuple[np.ndarray, float, float]:
        """The voxels (as stored, with the slope and intercept to HU), read once; failures name the file."""
        try:
            return self.load()
        except (*READ_ERRORS, zlib.error) as e:
            raise InvalidInputError(self.path, f"truncated or corrupt data ({one_line(e)})") from e


def one_line(error: BaseException) -> str:
    return " ".join(str(error).split()) or type(error).__name__


def _open_nifti(path: Path) -> HeaderVolume:
    with open(path, "rb") as f:
        gzipped = f.read(2) == _GZIP_MAGIC
    try:
        img = nib.load(str(path))
        # nibabel silently "fixes" zero or negative pixdim on load; read the raw header to see what was written
        with nib.openers.ImageOpener(str(path)) as f:
            raw_header = type(img.header).from_fileobj(f, check=False)
    except (*READ_ERRORS, nib.filebasedimages.ImageFileError) as e:
        problem = "truncated or corrupt compressed NIfTI" if gzipped else "not a readable NIfTI file"
        raise InvalidInputError(path, f"{problem} ({one_line(e)})") from e
    shape = tuple(int(s) for s in img.shape)
    if not gzipped:  # header-only truncation check for an uncompressed file
        needed = int(img.header.get_data_offset()) + int(np.prod(shape)) * img.get_data_dtype().itemsize
        if path.stat().st_size < needed:
            raise InvalidInputError(path, f"truncated or corrupt: {path.stat().st_size} bytes, header needs {needed}")
    sform_used = int(raw_header["sform_code"]) > 0
    header_spacing = () if sform_used else tuple(float(z) for z in raw_header["pixdim"][1:4])

    def load() -> tuple[np.ndarray, float, float]:  # unscaled voxels: the slope is applied to a sample only
        proxy = img.dataobj
        raw = proxy.get_unscaled() if hasattr(proxy, "get_unscaled") else np.asarray(proxy)
        return raw, float(getattr(proxy, "slope", 1.0)), float(getattr(proxy, "inter", 0.0))

    return HeaderVolume(path, shape, np.asarray(img.affine, float), header_spacing, str(img.get_data_dtype()), 1, load)


def _itk_affine(spacing: list[float], origin: list[float], direction: np.ndarray) -> np.ndarray:
    """Voxel -> RAS mm from ITK's LPS geometry (what MONAI's ITKReader returns with ``affine_lps_to_ras=True``)."""
    n = min(3, len(spacing))
    affine = np.eye(4)
    affine[:n, :n] = direction[:n, :n] @ np.diag(spacing[:n])
    affine[:n, 3] = origin[:n]
    affine[:2] *= -1.0  # LPS -> RAS: negate the x and y rows
    return affine + 0.0  # no -0.0 in messages


def _itk_dtype(image_io: Any) -> str:
    """ITK's component type as a NumPy dtype name ("short" -> "int16")."""
    name = image_io.GetComponentTypeAsString(image_io.GetComponentType())
    return _ITK_DTYPES.get(name, name)


def _open_itk_file(path: Path) -> HeaderVolume:
    import itk

    image_io = itk.ImageIOFactory.CreateImageIO(str(path), itk.CommonEnums.IOFileMode_ReadMode)
    if image_io is None:
        raise InvalidInputError(path, "not a readable image file (no NIfTI suffix and no ITK reader recognises it)")
    try:
        image_io.SetFileName(str(path))
        image_io.ReadImageInformation()
    except READ_ERRORS as e:
        raise InvalidInputError(path, f"truncated or corrupt header ({one_line(e)})") from e
    metadata = image_io.GetMetaDataDictionary()
    if metadata.HasKey("0008|0060") and str(metadata["0008|0060"]).strip() == "SEG":
        raise InvalidInputError(path, "is a DICOM SEG object; convert it to NIfTI or NRRD first (e.g. dcmqi)")
    ndim = image_io.GetNumberOfDimensions()
    shape = tuple(int(image_io.GetDimensions(i)) for i in range(ndim))
    spacing = [float(image_io.GetSpacing(i)) for i in range(ndim)]
    direction = np.array([image_io.GetDirection(i) for i in range(ndim)], float).T  # column i: direction of axis i
    affine = _itk_affine(spacing, [float(image_io.GetOrigin(i)) for i in range(ndim)], direction)
    components = int(image_io.GetNumberOfComponents())

    def load() -> tuple[np.ndarray, float, float]:
        return itk.array_view_from_image(itk.imread(str(path))), 1.0, 0.0

    return HeaderVolume(path, shape, affine, tuple(spacing), _itk_dtype(image_io), components, load)


def _open_dicom_series(path: Path) -> HeaderVolume:
    import itk

    names = itk.GDCMSeriesFileNames.New()
    names.SetUseSeriesDetails(True)  # as MONAI's ITKReader does, so "one series" means what it will read
    names.AddSeriesRestriction("0008|0021")  # series date
    names.SetDirectory(str(path))
    uids = tuple(names.GetSeriesUIDs())
    if not uids:
        raise InvalidInputError(path, "folder holds no DICOM series")
    if len(uids) > 1:
        raise InvalidInputError(
            path, f"folder holds {len(uids)} DICOM series (UIDs {', '.join(uids)}); pass one series per folder"
        )
    image_io = itk.GDCMImageIO.New()
    reader = itk.ImageSeriesReader[itk.Image[itk.F, 3]].New(ImageIO=image_io, FileNames=names.GetFileNames(uids[0]))
    try:
        reader.UpdateOutputInformation()
    except READ_ERRORS as e:
        raise InvalidInputError(path, f"unreadable DICOM series ({one_line(e)})") from e
    image = reader.GetOutput()
    shape = tuple(int(s) for s in image.GetLargestPossibleRegion().GetSize())
    spacing = [float(s) for s in image.GetSpacing()]
    affine = _itk_affine(spacing, [float(o) for o in image.GetOrigin()], itk.array_from_matrix(image.GetDirection()))

    def load() -> tuple[np.ndarray, float, float]:  # HU: GDCM applies the rescale slope and intercept
        reader.Update()
        return itk.array_view_from_image(reader.GetOutput()), 1.0, 0.0

    components = int(image_io.GetNumberOfComponents())
    return HeaderVolume(path, shape, affine, tuple(spacing), _itk_dtype(image_io), components, load)


def _open_ircadb(path: Path) -> HeaderVolume:
    """3D-IRCADb's zipped CT, or its masks as the label map 0/1/2, read whole by :class:`IrcadbReader`."""
    reader = IrcadbReader()
    try:
        array, meta = reader.get_data(reader.read(path))
    except (*READ_ERRORS, zipfile.BadZipFile) as e:  # a patient without a liver mask is named in the message
        raise InvalidInputError(path, f"unreadable 3D-IRCADb data ({one_line(e)})") from e
    affine = np.asarray(meta["affine"], float)
    spacing = tuple(float(s) for s in np.linalg.norm(affine[:3, :3], axis=0))
    return HeaderVolume(path, array.shape, affine, spacing, str(array.dtype), 1, lambda: (array, 1.0, 0.0))


def open_volume(path: str | PathLike) -> HeaderVolume:
    """Existence, size and header checks; the voxels are not read (except for :func:`_open_ircadb`)."""
    path = Path(path)
    if not path.exists():
        raise InvalidInputError(path, "file does not exist")
    if path.name in _IRCADB_WHOLE:
        return _open_ircadb(path)
    if path.is_dir():
        return _open_dicom_series(path)
    if path.stat().st_size == 0:
        raise InvalidInputError(path, "empty file (0 bytes)")
    if path.name.lower().endswith((".nii", ".nii.gz")):
        return _open_nifti(path)
    return _open_itk_file(path)

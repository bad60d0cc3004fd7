"""A corpus of bad (and a few good) CT inputs written into a folder, for the input-validation tests.

:func:`write_bad_inputs` writes one small file (or DICOM folder) per kind of problem a hospital export can have
and returns ``{kind: (path, phrase)}``, where ``phrase`` must appear in the :class:`InvalidInputError` raised for
it. Label kinds (:data:`LABEL_KINDS`) are checked against the good image :data:`REFERENCE_IMAGE` in the same
folder; some kinds need check options (:data:`KIND_OPTIONS`). :func:`datalist_entry` builds the MONAI datalist
entry of a kind, e.g. for ``ValidateCTd``. :func:`write_good_inputs` writes small valid CT cases.

Example::

    corpus = write_bad_inputs(tmp_path)
    path, phrase = corpus["nan_voxels"]
    with pytest.raises(InvalidInputError, match=phrase):
        check_case(**datalist_entry(tmp_path, "nan_voxels", path), **KIND_OPTIONS.get("nan_voxels", {}))
"""

from __future__ import annotations

import gzip
import logging
import struct
from pathlib import Path

import nibabel as nib
import numpy as np

__all__ = [
    "BAD_KINDS",
    "KIND_OPTIONS",
    "LABEL_KINDS",
    "REFERENCE_IMAGE",
    "datalist_entry",
    "synthetic_ct",
    "write_bad_inputs",
    "write_dicom_series",
    "write_good_inputs",
]

logger = logging.getLogger(__name__)

#: The good image every label kind is paired with (file name inside the corpus folder).
REFERENCE_IMAGE = "reference_volume.nii.gz"
#: Every kind :func:`write_bad_inputs` writes, in order (for ``pytest.mark.parametrize``).
BAD_KINDS: tuple[str, ...] = (
    "missing_file",
    "truncated_nii_gz",
    "truncated_nii",
    "truncated_mha",
    "empty_file",
    "text_named_nii_gz",
    "image_2d",
    "image_4d",
    "two_slices",
    "nan_voxels",
    "inf_voxels",
    "zero_spacing",
    "spacing_50mm",
    "mr_like",
    "ct_without_intercept",
    "label_value_3",
    "fractional_label",
    "label_shape_mismatch",
    "label_affine_mismatch",
    "two_dicom_series",
    "folder_without_dicom",
)
#: Kinds whose path is a label, to check against :data:`REFERENCE_IMAGE`.
LABEL_KINDS = frozenset({"label_value_3", "fractional_label", "label_shape_mismatch", "label_affine_mismatch"})
#: Keyword arguments of ``check_image_file``/``check_case`` a kind needs to fail.
KIND_OPTIONS: dict[str, dict[str, int]] = {"two_slices": {"min_slices": 3}}

_SPACING_MM = 3.0
_PIXDIM3_OFFSET = 88  # byte offset of pixdim[3] (slice spacing) in a NIfTI-1 header


def synthetic_ct(shape: tuple[int, int, int] = (48, 48, 16), seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """A tiny abdomen: air (-1000 HU) around a fat-rimmed (-100 HU) body (40 HU), a spine (700 HU), a liver.

    Returns:
        ``(image, label)``: int16 HU of ``shape`` and a uint8 label (0 background, 1 liver, 2 tumour).
    """
    rng = np.random.default_rng(seed)
    x, y, _ = np.meshgrid(*(np.linspace(-1, 1, n) for n in shape), indexing="ij")
    body = (x / 0.85) ** 2 + (y / 0.7) ** 2
    image = np.full(shape, -1000.0)
    image[body <= 1.0] = -100.0  # subcutaneous fat
    image[body <= 0.8] = 40.0  # soft tissue
    image[(x**2 + (y + 0.45) ** 2) <= 0.02] = 700.0  # vertebral body
    liver = ((x + 0.35) / 0.35) ** 2 + ((y - 0.1) / 0.3) ** 2 <= 1.0
    tumor = ((x + 0.35) / 0.1) ** 2 + ((y - 0.1) / 0.1) ** 2 <= 1.0
    image[liver] = 60.0
    image[tumor] = 20.0
    image += rng.normal(0.0, 10.0, shape)
    label = np.zeros(shape, np.uint8)
    label[liver] = 1
    label[tumor] = 2
    return np.round(image).astype(np.int16), label


def _affine(spacing: tuple[float, float, float] = (_SPACING_MM,) * 3) -> np.ndarray:
    return np.diag([*spacing, 1.0])


def _save(folder: Path, name: str, data: np.ndarray, affine: np.ndarray | None = None) -> Path:
    path = folder / name
    nib.save(nib.Nifti1Image(data, _affine() if affine is None else affine), str(path))
    return path


def _save_zero_spacing(folder: Path, name: str, data: np.ndarray) -> Path:
    """A qform-only NIfTI whose pixdim[3] is 0; nibabel refuses to write it, so the header bytes are patched."""
    img = nib.Nifti1Image(data, _affine())
    img.header.set_sform(None, code=0)
    img.header["qform_code"] = 1
    raw = bytearray(img.to_bytes())
    raw[_PIXDIM3_OFFSET : _PIXDIM3_OFFSET + 4] = struct.pack("<f", 0.0)
    path = folder / name
    path.write_bytes(gzip.compress(bytes(raw)))
    return path


def _write_truncated_mha(path: Path, image: np.ndarray) -> Path:
    """A MetaImage (read by ITK) cut in half: the header is whole, the voxel data is not."""
    import itk

    itk_image = itk.image_from_array(np.ascontiguousarray(image.transpose(2, 1, 0)))  # (X, Y, Z) -> ITK's (Z, Y, X)
    itk_image.SetSpacing([_SPACING_MM] * 3)
    itk.imwrite(itk_image, str(path))
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    return path


def write_dicom_series(
    folder: Path,
    series_uid: str,
    study_uid: str,
    slices: np.ndarray,
    prefix: str,
    spacing: tuple[float, float, float] = (_SPACING_MM,) * 3,
    origin_lps: tuple[float, float, float] = (0.0, 0.0, 0.0),
) -> None:
    """Write ``slices`` ((Z, Y, X) int16 HU: Z slices of Y rows of X columns) as one-slice CT DICOM files of one
    series, with ITK/GDCM. Axial: columns run along +x and rows along +y of DICOM's LPS patient axes, slice ``k`` at
    ``origin_lps + k * spacing[2]`` on z; ``spacing`` is (column, row, slice) in mm."""
    import itk

    for k, plane in enumerate(slices):
        image = itk.image_from_array(np.ascontiguousarray(plane))
        image.SetSpacing([float(spacing[0]), float(spacing[1])])
        x0, y0, z0 = origin_lps
        tags = {
            "0008|0060": "CT",
            "0008|0018": f"{series_uid}.{k + 1}",  # SOP instance UID
            "0020|000d": study_uid,
            "0020|000e": series_uid,
            "0020|0013": str(k + 1),  # instance number
            "0020|0032": f"{x0:g}\\{y0:g}\\{z0 + k * spacing[2]:g}",  # image position (patient), mm
            "0020|0037": "1\\0\\0\\0\\1\\0",  # image orientation (patient)
            "0028|0030": f"{spacing[1]:g}\\{spacing[0]:g}",  # pixel spacing: row spacing, column spacing (mm)
            "0018|0050": f"{spacing[2]:g}",  # slice thickness, mm
            "0028|1052": "0",  # rescale intercept
            "0028|1053": "1",  # rescale slope
        }
        image_io = itk.GDCMImageIO.New()
        image_io.KeepOriginalUIDOn()
        metadata = image.GetMetaDataDictionary()
        for tag, value in tags.items():
            metadata[tag] = value
        image_io.SetMetaDataDictionary(metadata)
        filename = str(folder / f"{prefix}{k}.dcm")
        itk.ImageFileWriter[type(image)].New(Input=image, ImageIO=image_io, FileName=filename).Update()


def write_bad_inputs(folder: str | Path) -> dict[str, tuple[Path, str]]:
    """Write the corpus of bad inputs into ``folder`` (created if needed), plus :data:`REFERENCE_IMAGE`.

    Returns:
        ``{kind: (path, phrase)}``: ``phrase`` is expected in the error raised for ``path``.
    """
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    image, label = synthetic_ct()
    reference = _save(folder, REFERENCE_IMAGE, image)
    floats = image.astype(np.float32)
    corpus: dict[str, tuple[Path, str]] = {}

    corpus["missing_file"] = (folder / "missing.nii.gz", "does not exist")
    truncated = reference.read_bytes()
    (folder / "truncated.nii.gz").write_bytes(truncated[: len(truncated) // 2])
    corpus["truncated_nii_gz"] = (folder / "truncated.nii.gz", "truncated or corrupt")
    plain = _save(folder, "truncated.nii", image).read_bytes()
    (folder / "truncated.nii").write_bytes(plain[: len(plain) // 2])
    corpus["truncated_nii"] = (folder / "truncated.nii", "truncated or corrupt")
    corpus["truncated_mha"] = (_write_truncated_mha(folder / "truncated.mha", image), "truncated or corrupt")
    (folder / "empty.nii.gz").write_bytes(b"")
    corpus["empty_file"] = (folder / "empty.nii.gz", "empty file")
    (folder / "text.nii.gz").write_text("patient export failed, please call IT\n")
    corpus["text_named_nii_gz"] = (folder / "text.nii.gz", "not a readable NIfTI")
    corpus["image_2d"] = (_save(folder, "image_2d.nii.gz", image[..., 0]), "is 2D")
    corpus["image_4d"] = (_save(folder, "image_4d.nii.gz", np.stack([image, image], -1)), "4D with 2 time points")
    corpus["two_slices"] = (_save(folder, "two_slices.nii.gz", image[..., :2]), "has 2 slices")
    nan = floats.copy()
    nan[10:12, 10:12, 3] = np.nan
    corpus["nan_voxels"] = (_save(folder, "nan_voxels.nii.gz", nan), "contains 4 NaN voxels")
    inf = floats.copy()
    inf[20, 20, 5:8] = np.inf
    corpus["inf_voxels"] = (_save(folder, "inf_voxels.nii.gz", inf), "contains 3 Inf voxels")
    corpus["zero_spacing"] = (_save_zero_spacing(folder, "zero_spacing.nii.gz", image), "zero, negative or NaN")
    thick = _save(folder, "spacing_50mm.nii.gz", image, _affine((_SPACING_MM, _SPACING_MM, 50.0)))
    corpus["spacing_50mm"] = (thick, "exceeds 20 mm")
    mr = np.clip((image.astype(np.float32) + 1000.0) * 0.9, 0, 1500).astype(np.int16)  # no air, 0-1500
    corpus["mr_like"] = (_save(folder, "mr_like.nii.gz", mr), "do not look like CT")
    raw_ct = (image.astype(np.int32) + 1024).astype(np.uint16)  # stored values without the -1024 intercept
    corpus["ct_without_intercept"] = (_save(folder, "ct_without_intercept.nii.gz", raw_ct), "do not look like CT")

    bad = label.copy()
    bad[0, 0, 0], bad[1, 0, 0] = 3, 7
    corpus["label_value_3"] = (_save(folder, "label_value_3.nii.gz", bad), "label values {3, 7} outside {0, 1, 2}")
    fractional = label.astype(np.float32)
    fractional[label == 1] = 0.5
    corpus["fractional_label"] = (_save(folder, "fractional_label.nii.gz", fractional), "non-integer label values")
    short = _save(folder, "label_shape_mismatch.nii.gz", label[..., :-1])
    corpus["label_shape_mismatch"] = (short, "label shape (48, 48, 15) does not match image shape (48, 48, 16)")
    shifted = _affine()
    shifted[2, 3] = 1.5  # half a slice
    moved = _save(folder, "label_affine_mismatch.nii.gz", label, shifted)
    corpus["label_affine_mismatch"] = (moved, "label affine")

    dicom = folder / "two_series_dicom"
    dicom.mkdir(exist_ok=True)
    small = image[16:32, 16:32, :2].transpose(2, 1, 0)  # (Z, Y, X): two 16x16 slices
    study = "1.2.826.0.1.3680043.8.498.7001"
    write_dicom_series(dicom, f"{study}.1", study, small, "a")
    write_dicom_series(dicom, f"{study}.2", study, small, "b")
    corpus["two_dicom_series"] = (dicom, "folder holds 2 DICOM series")
    not_dicom = folder / "no_dicom"
    not_dicom.mkdir(exist_ok=True)
    (not_dicom / "readme.txt").write_text("the scans are on the other disk\n")
    corpus["folder_without_dicom"] = (not_dicom, "no DICOM series")
    logger.debug("wrote %d bad inputs into %s", len(corpus), folder)
    return corpus


def datalist_entry(folder: str | Path, kind: str, path: str | Path) -> dict[str, str]:
    """The datalist entry of a corpus kind: ``{"image": path}``, or the reference image plus ``{"label": path}``."""
    if kind in LABEL_KINDS:
        return {"image": str(Path(folder) / REFERENCE_IMAGE), "label": str(path)}
    return {"image": str(path)}


def write_good_inputs(folder: str | Path, n: int = 2) -> list[dict[str, str]]:
    """Write ``n`` small valid CT cases (48x48x16, 3 mm, HU) with labels; returns their datalist entries.

    Even cases are int16 HU in RAS; odd cases store ``HU + 1024`` as uint16 with ``scl_inter = -1024`` (a raw
    scanner value with the rescale intercept in the header) in LPS orientation, to exercise both paths.
    """
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    entries = []
    for i in range(n):
        image, label = synthetic_ct(seed=i)
        affine = _affine()
        if i % 2:
            image, label = image[::-1, ::-1], label[::-1, ::-1]
            affine = np.diag([-_SPACING_MM, -_SPACING_MM, _SPACING_MM, 1.0])
            affine[:2, 3] = _SPACING_MM * (np.array(image.shape[:2]) - 1)
            img = nib.Nifti1Image((image.astype(np.int32) + 1024).astype(np.uint16), affine)
            img.header.set_slope_inter(1.0, -1024.0)
        else:
            img = nib.Nifti1Image(image, affine)
        nib.save(img, str(folder / f"volume-{i}.nii.gz"))
        _save(folder, f"segmentation-{i}.nii.gz", np.ascontiguousarray(label), affine)
        entries.append({"image": str(folder / f"volume-{i}.nii.gz"), "label": str(folder / f"segmentation-{i}.nii.gz")})
    return entries

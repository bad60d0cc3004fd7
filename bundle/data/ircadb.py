"""3D-IRCADb-01 read in the dataset's own layout: one ``3Dircadb1.N`` folder per patient.

Each patient folder holds ``PATIENT_DICOM`` (the CT, one DICOM file per slice, files ``image_0`` … without an
extension) and ``MASKS_DICOM`` (one DICOM series per structure, voxels 0 / 255: ``liver``, ``livertumor01`` …,
``liverkyst``, ``spleen``, vessels, ...), each either a folder or a ``.zip`` of that folder (as the dataset is
downloaded). The label map in the LiTS convention is made here:

- 1 (liver): the ``liver`` mask;
- 2 (tumor): the union of the ``livertumor*`` masks (``livertumor``, ``livertumor01``, ``livertumors``, ...)
  inside the liver; every other mask (``liverkyst``, a ``tumor`` outside the liver, organs, vessels) is ignored.

A patient without a ``liver`` mask is refused with its name. :class:`IrcadbReader` is a MONAI ``ImageReader``, so
``LoadImaged(reader=[..., IrcadbReader()])`` (the bundle's :data:`~bundle.transforms.CT_READERS`) reads a datalist
entry ``{"image": ".../3Dircadb1.1/PATIENT_DICOM", "label": ".../3Dircadb1.1/MASKS_DICOM.zip"}`` directly; both
go through MONAI's ``ITKReader`` (the zip is unpacked to a temporary folder first), so image and label share
one voxel grid and one affine.

3D-IRCADb-01 is licensed CC BY-NC-ND 4.0 (IRCAD): non-commercial research only.
"""

from __future__ import annotations

import logging
import os
import re
import tempfile
import zipfile
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from monai.data import ITKReader
from monai.data.image_reader import ImageReader
from monai.utils import ensure_tuple

__all__ = [
    "IRCADB_PATIENT",
    "IrcadbReader",
    "find_ircadb_cases",
    "ircadb_image",
    "ircadb_label",
    "is_ircadb_folder",
    "read_ircadb_masks",
]

logger = logging.getLogger(__name__)

#: a patient folder of 3D-IRCADb-01 (``3Dircadb1.7``) or 3D-IRCADb-02 (``3Dircadb2.1``)
IRCADB_PATIENT = re.compile(r"3Dircadb\d+\.(?P<n>\d+)")
_TUMOR_MASK = re.compile(r"livertumou?rs?\d*", re.IGNORECASE)
_PARTS = ("PATIENT_DICOM", "MASKS_DICOM")


def _part(patient: Path, name: str) -> Path | None:
    """``patient/name`` as a folder, else ``patient/name.zip``, else ``None``."""
    for candidate in (patient / name, patient / f"{name}.zip"):
        if candidate.exists():
            return candidate
    return None


def ircadb_image(patient: str | os.PathLike) -> Path | None:
    """The CT of a 3D-IRCADb patient folder (``3Dircadb1.N/``): its ``PATIENT_DICOM`` folder, else
    ``PATIENT_DICOM.zip``, else ``None`` (also when ``patient`` is not a folder). The folder's name is not checked,
    so a renamed patient folder is still found."""
    path = Path(patient)
    return _part(path, _PARTS[0]) if path.is_dir() else None


def is_ircadb_folder(root: str | os.PathLike) -> bool:
    """``root`` is a patient folder or holds ``3Dircadb1.N`` patient folders (directly below it)."""
    path = Path(root)
    if IRCADB_PATIENT.fullmatch(path.name) and path.is_dir():
        return True
    return path.is_dir() and any(IRCADB_PATIENT.fullmatch(p.name) and p.is_dir() for p in path.iterdir())


def find_ircadb_cases(root: str | os.PathLike) -> list[dict]:
    """The patients of a 3D-IRCADb folder (or one patient folder): ``case_id`` (the folder name, e.g.
    ``3Dircadb1.7``), ``image`` (``PATIENT_DICOM`` folder or zip) and ``label`` (``MASKS_DICOM`` folder or zip),
    sorted by patient number.

    Raises:
        ValueError: a patient folder without ``PATIENT_DICOM`` or ``MASKS_DICOM`` (every such patient named).
    """
    path = Path(root).expanduser().resolve()
    folders = [path] if IRCADB_PATIENT.fullmatch(path.name) else [p for p in path.iterdir() if p.is_dir()]
    patients = sorted((p for p in folders if IRCADB_PATIENT.fullmatch(p.name)), key=_patient_key)
    cases, problems = [], []
    for patient in patients:
        image, masks = (_part(patient, name) for name in _PARTS)
        missing = [name for name, found in zip(_PARTS, (image, masks)) if found is None]
        if missing:
            problems.append(f"  {patient}: no {' and no '.join(missing)} (folder or .zip)")
            continue
        cases.append({"case_id": patient.name, "image": str(image), "label": str(masks)})
    if problems:
        raise ValueError("3D-IRCADb patient(s) without their DICOM data:\n" + "\n".join(problems))
    return cases


def _patient_key(path: Path) -> tuple:
    return tuple(int(part) if part.isdigit() else part for part in re.split(r"(\d+)", path.name))


def _mask_names(masks: Path) -> list[str]:
    """Structure names in a ``MASKS_DICOM`` folder or zip (the sub-folders holding slices)."""
    if masks.is_dir():
        return sorted(p.name for p in masks.iterdir() if p.is_dir() and not p.name.startswith("."))
    with zipfile.ZipFile(masks) as archive:
        names = {Path(n).parts[1] for n in archive.namelist() if len(Path(n).parts) > 2}
    return sorted(n for n in names if not n.startswith("."))


def _patient_name(path: Path) -> str:
    return path.parent.name if IRCADB_PATIENT.fullmatch(path.parent.name) else str(path)


def read_ircadb_masks(masks: str | os.PathLike, names: Sequence[str]) -> tuple[dict[str, np.ndarray], dict]:
    """The structures ``names`` of a ``MASKS_DICOM`` folder or zip as boolean arrays ``(H, W, D)`` on the patient's
    grid (MONAI ``ITKReader`` order), and the metadata (``affine`` RAS, ``spatial_shape``, ...) of the first one."""
    masks = Path(masks)
    reader = ITKReader(affine_lps_to_ras=True)
    arrays: dict[str, np.ndarray] = {}
    meta: dict = {}
    with tempfile.TemporaryDirectory(prefix="ircadb_") as tmp:
        folder = masks
        if not masks.is_dir():
            with zipfile.ZipFile(masks) as archive:
                top = {Path(n).parts[0] for n in archive.namelist() if Path(n).parts}
                wanted = [n for n in archive.namelist() if len(Path(n).parts) > 2 and Path(n).parts[1] in names]
                archive.extractall(tmp, members=wanted)
            folder = Path(tmp) / (top.pop() if len(top) == 1 else "MASKS_DICOM")
        for name in names:
            array, found_meta = reader.get_data(reader.read(str(folder / name)))
            arrays[name] = np.asarray(array) > 0
            meta = meta or found_meta
    return arrays, meta


def ircadb_label(masks: str | os.PathLike) -> tuple[np.ndarray, dict]:
    """The LiTS-convention label map ``(H, W, D)`` uint8 (0 background, 1 liver, 2 tumor inside the liver) of one
    patient's ``MASKS_DICOM`` folder or zip, and its metadata.

    Raises:
        ValueError: no ``liver`` mask (the patient is named).
    """
    masks = Path(masks)
    available = _mask_names(masks)
    if "liver" not in available:
        raise ValueError(
            f"3D-IRCADb patient {_patient_name(masks)}: {masks} has no 'liver' mask (found: {', '.join(available)})"
        )
    tumors = [n for n in available if _TUMOR_MASK.fullmatch(n)]
    arrays, meta = read_ircadb_masks(masks, ["liver", *tumors])
    liver = arrays["liver"]
    label = liver.astype(np.uint8)
    for name in tumors:
        label[arrays[name] & liver] = 2
    return label, meta


class _Loaded:
    """What :meth:`IrcadbReader.read` returns: one volume's array and metadata, already read, or the error that
    reading a 3D-IRCADb path raised (re-raised by :meth:`IrcadbReader.get_data`)."""

    def __init__(self, array: np.ndarray | None, meta: dict, error: Exception | None = None) -> None:
        self.array, self.meta, self.error = array, meta, error


class IrcadbReader(ImageReader):
    """MONAI reader of a 3D-IRCADb patient's ``PATIENT_DICOM`` (CT in HU) or ``MASKS_DICOM`` (the label map of
    :func:`ircadb_label`), each a folder or a ``.zip``. Other paths are left to the other readers
    (``verify_suffix`` is false for them).

    ``LoadImage`` given a reader list tries every registered reader (MONAI's defaults too) until one reads the file,
    and ``NumpyReader`` "reads" any zip (as an ``.npz`` of its member names). So a failure on a path this reader
    owns (e.g. a patient without a ``liver`` mask) is not raised by :meth:`read`, which would let the next reader
    try, but by :meth:`get_data`, which ``LoadImage`` calls outside its fallback: the error that names the patient
    is the one the user sees."""

    def __init__(self, **itk_kwargs) -> None:
        super().__init__()
        self.itk = ITKReader(affine_lps_to_ras=True, **itk_kwargs)

    def verify_suffix(self, filename: Sequence[os.PathLike] | os.PathLike) -> bool:
        names = [Path(f).name for f in ensure_tuple(filename)]
        return len(names) == 1 and names[0] in {*_PARTS, *(f"{p}.zip" for p in _PARTS)}

    def read(self, data: Sequence[os.PathLike] | os.PathLike, **kwargs) -> _Loaded:
        path = Path(ensure_tuple(data)[0])
        try:
            return self._read(path)
        except Exception as error:
            if not self.verify_suffix(path):
                raise  # not 3D-IRCADb's: let the next reader try
            return _Loaded(None, {}, error)

    def _read(self, path: Path) -> _Loaded:
        if path.name.startswith("MASKS_DICOM"):
            label, meta = ircadb_label(path)
            return _Loaded(label, meta)
        if path.is_dir():
            array, meta = self.itk.get_data(self.itk.read(str(path)))
            return _Loaded(np.asarray(array), meta)
        with tempfile.TemporaryDirectory(prefix="ircadb_") as tmp, zipfile.ZipFile(path) as archive:
            archive.extractall(tmp)
            folders = [p for p in Path(tmp).rglob("*") if p.is_dir() and any(f.is_file() for f in p.iterdir())]
            if len(folders) != 1:
                raise ValueError(f"{path}: expected one folder of DICOM slices in the zip, found {len(folders)}")
            array, meta = self.itk.get_data(self.itk.read(str(folders[0])))
            return _Loaded(np.asarray(array), meta)

    def get_data(self, img: _Loaded) -> tuple[np.ndarray, dict]:
        if img.error is not None:
            raise img.error
        meta = dict(img.meta)
        meta["filename_or_obj"] = meta.get("filename_or_obj", "")
        return img.array, meta

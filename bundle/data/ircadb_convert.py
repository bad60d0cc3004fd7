"""3D-IRCADb patients converted to the LiTS layout: ``volume-N.nii.gz`` (int16 HU) and ``segmentation-N.nii.gz``
(uint8, 0 background, 1 liver, 2 tumor), ``N`` the patient number (``3Dircadb1.7`` → ``volume-7``).

The arrays are those of :class:`~bundle.data.ircadb.IrcadbReader` (CT) and :func:`~bundle.data.ircadb.ircadb_label`
(label), in MONAI ``ITKReader`` axis order, written with their RAS affine (sform and qform, code 1), so
``LoadImage`` of a written file gives the array and affine of reading the DICOM directly (the affine to float32
precision, as NIfTI stores it). Each file is written atomically (hidden temporary file in the same folder, then
``os.replace``); a patient whose two files exist is skipped unless ``overwrite``.

The written files are still 3D-IRCADb data under its licence (CC BY-NC-ND 4.0, IRCAD): non-commercial research
only; keep them out of any repository.

Example::

    convert_ircadb("/data/3Dircadb1", "/data/ircadb_lits")  # -> volume-1.nii.gz, segmentation-1.nii.gz, ...
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

import numpy as np

from .ircadb import IRCADB_PATIENT, IrcadbReader, find_ircadb_cases, ircadb_label
from .phantom.dataset import save_nifti

__all__ = ["convert_ircadb", "ircadb_patient_number"]

logger = logging.getLogger(__name__)

#: affine tolerance (mm, and unitless for directions) between a patient's CT and its masks
_GRID_ATOL = 1e-3


def ircadb_patient_number(case_id: str) -> int:
    """The patient number of a 3D-IRCADb patient folder name: ``3Dircadb1.7`` → 7.

    Raises:
        ValueError: ``case_id`` is not a patient folder name.
    """
    match = IRCADB_PATIENT.fullmatch(case_id)
    if match is None:
        raise ValueError(f"{case_id!r} is not a 3D-IRCADb patient folder name (3Dircadb1.N)")
    return int(match.group("n"))


def _read_patient(case: dict) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """CT ``(H, W, D)`` int16 HU, label ``(H, W, D)`` uint8 and the RAS affine (4, 4) of one patient.

    Raises:
        ValueError: the masks are not on the CT's grid, or the CT does not fit int16 HU (both name the patient).
    """
    reader = IrcadbReader()
    image, image_meta = reader.get_data(reader.read(case["image"]))
    label, label_meta = ircadb_label(case["label"])
    affine = np.asarray(image_meta["affine"], dtype=np.float64)
    if label.shape != image.shape or not np.allclose(label_meta["affine"], affine, rtol=0.0, atol=_GRID_ATOL):
        raise ValueError(
            f"3D-IRCADb patient {case['case_id']}: masks {label.shape} are not on the CT's grid {image.shape} "
            f"(affines\n{np.asarray(label_meta['affine'])}\nvs\n{affine})"
        )
    if not np.issubdtype(image.dtype, np.integer):
        if not np.array_equal(image, np.rint(image)):
            raise ValueError(f"3D-IRCADb patient {case['case_id']}: CT values are not whole HU, cannot store int16")
    if image.min() < np.iinfo(np.int16).min or image.max() > np.iinfo(np.int16).max:
        raise ValueError(f"3D-IRCADb patient {case['case_id']}: CT [{image.min()}, {image.max()}] HU overflows int16")
    return image.astype(np.int16), label.astype(np.uint8), affine


def convert_ircadb(
    ircadb_dir: str | os.PathLike, out_dir: str | os.PathLike, overwrite: bool = False
) -> list[dict[str, str]]:
    """Write every patient of ``ircadb_dir`` (a 3D-IRCADb folder or one patient folder) to ``out_dir`` in the
    LiTS layout (see the module docstring).

    Args:
        ircadb_dir: folder of ``3Dircadb1.N`` patients (``PATIENT_DICOM`` and ``MASKS_DICOM``, folders or zips),
            or one patient folder.
        out_dir: output folder (created).
        overwrite: rewrite a patient whose ``volume-N`` and ``segmentation-N`` already exist.

    Returns:
        ``[{"case_id": "3Dircadb1.7", "image": ".../volume-7.nii.gz", "label": ".../segmentation-7.nii.gz"}, ...]``
        in patient order, written or skipped alike.

    Raises:
        ValueError: no patient found, two patients with the same number (``3Dircadb1.1`` and ``3Dircadb2.1``), a
            patient without a ``liver`` mask, or masks off the CT's grid (each names the patient). Patients before
            the failing one are already written.
    """
    cases = find_ircadb_cases(ircadb_dir)
    if not cases:
        raise ValueError(f"{ircadb_dir}: no 3D-IRCADb patient folders (3Dircadb1.N) found")
    numbers: dict[int, str] = {}
    for case in cases:
        number = ircadb_patient_number(case["case_id"])
        if number in numbers:
            raise ValueError(f"patients {numbers[number]} and {case['case_id']} would both be written as case {number}")
        numbers[number] = case["case_id"]
    out = Path(out_dir).expanduser().resolve()
    out.mkdir(parents=True, exist_ok=True)
    written = []
    for number, case in zip(numbers, cases):
        image_path, label_path = out / f"volume-{number}.nii.gz", out / f"segmentation-{number}.nii.gz"
        if image_path.is_file() and label_path.is_file() and not overwrite:
            logger.info("skipping %s: %s and %s exist", case["case_id"], image_path, label_path)
        else:
            image, label, affine = _read_patient(case)
            note = f"3D-IRCADb {case['case_id']} (CC BY-NC-ND 4.0)"
            save_nifti(image, affine, image_path, note)
            save_nifti(label, affine, label_path, note)
            logger.info("wrote %s and %s (%s, %d tumor voxels)", image_path, label_path, image.shape, (label > 1).sum())
        written.append({"case_id": case["case_id"], "image": str(image_path), "label": str(label_path)})
    return written

"""What ``--input`` may be: a CT file, a DICOM folder, a 3D-IRCADb patient, a folder of cases, or a datalist JSON.

A 3D-IRCADb patient folder (``3Dircadb1.N/``, :mod:`bundle.data.ircadb`) stands for its CT, ``PATIENT_DICOM``
(a folder or ``PATIENT_DICOM.zip``), and is named after the patient, so that two patients never share the output
folder ``PATIENT_DICOM/``.
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path

from bundle.data.ircadb import ircadb_image

__all__ = ["IMAGE_SUFFIXES", "case_name", "input_datalist"]

IMAGE_SUFFIXES = (".nii.gz", ".nii", ".nrrd", ".nhdr", ".mha", ".mhd")
_LABEL_NAME = re.compile(r"^(segmentation-\d+|.*_seg|.*_label)$")
#: 3D-IRCADb's CT inside a patient folder: the case takes the patient folder's name
_IRCADB_CT = ("PATIENT_DICOM", "PATIENT_DICOM.zip")


def case_name(path: str | Path) -> str:
    """The case's name: the file name without its image suffix, or the DICOM folder's name.

    ``volume-3.nii.gz`` → ``volume-3``; ``/data/patient7/`` (a DICOM series) → ``patient7``;
    ``/data/3Dircadb1.7/PATIENT_DICOM`` or ``.../PATIENT_DICOM.zip`` (3D-IRCADb) → ``3Dircadb1.7``. Only one path
    component is used, so an output path built from it can never leave the output folder.
    """
    name = Path(path).name
    if name in _IRCADB_CT:
        name = Path(os.path.abspath(path)).parent.name or name  # lexical: no file-system access
    for suffix in IMAGE_SUFFIXES:
        if name.lower().endswith(suffix):
            name = name[: -len(suffix)]
            break
    name = re.sub(r"[^A-Za-z0-9._-]", "_", name).lstrip(".")
    return name or "case"


def _is_dicom_file(path: Path) -> bool:
    """A DICOM Part 10 file: the magic ``DICM`` after its 128-byte preamble (file names say nothing)."""
    try:
        with open(path, "rb") as f:
            return f.read(132)[128:] == b"DICM"
    except OSError:
        return False


def _is_dicom_folder(folder: Path) -> bool:
    files = sorted(p for p in folder.iterdir() if p.is_file() and not p.name.startswith("."))
    return bool(files) and _is_dicom_file(files[0])


def _is_image(path: Path) -> bool:
    lower = path.name.lower()
    return path.is_file() and lower.endswith(IMAGE_SUFFIXES) and not _LABEL_NAME.match(case_name(path))


def input_datalist(source: str | Path) -> list[dict[str, str]]:
    """``[{"image": path}, ...]`` for a file, a DICOM folder, a 3D-IRCADb patient folder, a folder of cases (labels
    skipped; images, DICOM folders and 3D-IRCADb patient folders) or a JSON datalist.

    A 3D-IRCADb patient folder gives its ``PATIENT_DICOM`` folder, else ``PATIENT_DICOM.zip``. A JSON datalist is
    MSD style (``{"test": [...]}``, ``{"testing": [...]}``, ``{"validation": [...]}``) or a plain list; entries are
    paths or ``{"image": path}`` dicts, relative to the JSON's folder.
    """
    path = Path(source)
    if not path.exists():
        raise FileNotFoundError(f"input not found: {path}")
    if path.is_file() and path.suffix.lower() == ".json":
        content = json.loads(path.read_text())
        if isinstance(content, dict):
            for key in ("test", "testing", "validation", "training"):
                if key in content:
                    content = content[key]
                    break
            else:
                raise ValueError(f"{path}: no 'test', 'testing', 'validation' or 'training' list")
        items = [entry["image"] if isinstance(entry, dict) else entry for entry in content]
        return [{"image": str(p if Path(p).is_absolute() else path.parent / p)} for p in items]
    if path.is_file():
        return [{"image": str(path)}]
    if _is_dicom_folder(path):
        return [{"image": str(path)}]
    patient_ct = ircadb_image(path)
    if patient_ct is not None:
        return [{"image": str(patient_ct)}]
    cases = []
    for child in sorted(path.iterdir()):
        if _is_image(child) or (child.is_dir() and _is_dicom_folder(child)):
            cases.append(child)
        elif not child.name.startswith(".") and (patient_ct := ircadb_image(child)) is not None:
            cases.append(patient_ct)
    if not cases:
        raise ValueError(
            f"{path}: no CT images ({', '.join(IMAGE_SUFFIXES)}), DICOM series folders or 3D-IRCADb patient folders "
            "(with PATIENT_DICOM) found"
        )
    return [{"image": str(p)} for p in cases]

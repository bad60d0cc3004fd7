"""MSD-style datalists (``dataset.json``) from a folder of CT cases, with deterministic k-fold splits.

Three layouts are recognised:

- **LiTS**: ``volume-N.nii[.gz]`` with ``segmentation-N.nii[.gz]`` anywhere below the folder (the
  challenge ships them in ``Training Batch 1/2``), matched by the integer ``N``.
- **MSD** (Medical Segmentation Decathlon, e.g. ``Task03_Liver``): ``imagesTr/NAME.nii.gz`` with
  ``labelsTr/NAME.nii.gz``, and ``imagesTs/`` (optionally ``labelsTs/``) as the test set. nnU-Net's
  channel suffix (``NAME_0000.nii.gz``) is accepted in the image folders.
- **3D-IRCADb**: ``3Dircadb1.N/`` patient folders, each with ``PATIENT_DICOM`` and ``MASKS_DICOM`` (folder or
  ``.zip``); the label map is made from the masks when the case is loaded (:mod:`bundle.data.ircadb`).

Hidden files (names starting with ``.``, e.g. the ``._*`` files of macOS archives) are ignored.
The result is read by :func:`monai.data.load_decathlon_datalist`.

Example::

    datalist = build_datalist("data/LiTS", num_folds=5, fold=0)
    write_datalist(datalist, "data/LiTS/dataset.json")
"""

from __future__ import annotations

import json
import logging
import os
import re
from pathlib import Path

import numpy as np

from .ircadb import find_ircadb_cases, is_ircadb_folder

__all__ = ["LABELS", "build_datalist", "find_cases", "write_datalist"]

logger = logging.getLogger(__name__)

LABELS: dict[str, str] = {"0": "background", "1": "liver", "2": "tumor"}
_NIFTI = re.compile(r"(?P<stem>.+?)\.nii(\.gz)?$")
_LITS = re.compile(r"(?P<kind>volume|segmentation)-(?P<n>\d+)\.nii(\.gz)?$")


def _natural_key(case_id: str) -> tuple:
    """Sort ``"10"`` after ``"9"`` and ``liver_10`` after ``liver_9``."""
    return tuple(int(part) if part.isdigit() else part for part in re.split(r"(\d+)", case_id))


def _orphan_error(data_dir: Path, images: list[Path], labels: list[Path]) -> ValueError:
    lines = [f"{len(images) + len(labels)} unpaired file(s) in {data_dir}:"]
    lines += [f"  image without a label: {p}" for p in sorted(images)]
    lines += [f"  label without an image: {p}" for p in sorted(labels)]
    return ValueError("\n".join(lines))


def _pair(
    images: dict[str, Path], labels: dict[str, Path], need_labels: bool = True
) -> tuple[list[dict], list[Path], list[Path]]:
    """Match image and label files by case id: the cases, the images without a label, the labels without an image."""
    orphan_images = [p for k, p in images.items() if k not in labels] if need_labels else []
    orphan_labels = [p for k, p in labels.items() if k not in images]
    cases = []
    for case_id in sorted(images, key=_natural_key):
        if case_id in labels or not need_labels:
            case = {"case_id": case_id, "image": str(images[case_id])}
            if case_id in labels:
                case["label"] = str(labels[case_id])
            cases.append(case)
    return cases, orphan_images, orphan_labels


def _add(found: dict[str, Path], case_id: str, path: Path) -> None:
    if case_id in found:
        raise ValueError(f"case {case_id!r} found twice: {found[case_id]} and {path}")
    found[case_id] = path


def _nifti_files(folder: Path) -> dict[str, Path]:
    """Case id -> path of the NIfTI files in one MSD folder (nnU-Net ``_0000`` suffix removed)."""
    found: dict[str, Path] = {}
    if folder.is_dir():
        for path in sorted(folder.iterdir()):
            match = _NIFTI.fullmatch(path.name)
            if match and not path.name.startswith(".") and path.is_file():
                _add(found, re.sub(r"_0000$", "", match["stem"]), path)
    return found


def _find_msd(root: Path) -> tuple[list[dict], list[Path], list[Path]]:
    train, images, labels = _pair(_nifti_files(root / "imagesTr"), _nifti_files(root / "labelsTr"))
    test, _, test_labels = _pair(_nifti_files(root / "imagesTs"), _nifti_files(root / "labelsTs"), need_labels=False)
    return train + [case | {"split": "test"} for case in test], images, labels + test_labels


def _find_lits(root: Path) -> tuple[list[dict], list[Path], list[Path]]:
    images: dict[str, Path] = {}
    labels: dict[str, Path] = {}
    for folder, dirs, files in os.walk(root):
        dirs[:] = sorted(d for d in dirs if not d.startswith("."))
        for name in sorted(files):
            match = _LITS.fullmatch(name)
            if match:
                _add(images if match["kind"] == "volume" else labels, str(int(match["n"])), Path(folder) / name)
    return _pair(images, labels)


def find_cases(data_dir: str | os.PathLike) -> list[dict]:
    """Every case in ``data_dir``, LiTS, MSD or 3D-IRCADb layout (see the module docstring).

    Returns:
        Dicts sorted by case id: ``case_id``, ``image`` and ``label`` (absolute paths). Cases from an
        MSD ``imagesTs`` folder also carry ``"split": "test"`` and have a ``label`` only if
        ``labelsTs`` holds one.

    Raises:
        FileNotFoundError: ``data_dir`` is not a folder.
        ValueError: no cases; an image without its label or a label without its image (all such
            files are named); the same case id twice (e.g. ``volume-3.nii`` and ``volume-3.nii.gz``).
    """
    root = Path(data_dir).expanduser().resolve()
    if not root.is_dir():
        raise FileNotFoundError(f"data folder not found: {root}")
    if is_ircadb_folder(root):
        cases = find_ircadb_cases(root)
        logger.info("found %d cases in %s (3D-IRCADb layout)", len(cases), root)
        return cases
    msd = (root / "imagesTr").is_dir() or (root / "labelsTr").is_dir() or (root / "imagesTs").is_dir()
    cases, orphan_images, orphan_labels = _find_msd(root) if msd else _find_lits(root)
    if orphan_images or orphan_labels:
        raise _orphan_error(root, orphan_images, orphan_labels)
    if not cases:
        raise ValueError(
            f"no CT cases found in {root}: expected LiTS files volume-N.nii[.gz] with segmentation-N.nii[.gz], "
            "or an MSD folder with imagesTr/ and labelsTr/"
        )
    logger.info("found %d cases in %s (%s layout)", len(cases), root, "MSD" if msd else "LiTS")
    return cases


def _entry(case: dict, root: Path, relative: bool) -> dict[str, str]:
    """``{"image", "label"}`` of a case, with paths relative to ``root`` if asked (POSIX separators)."""
    keys = [k for k in ("image", "label") if k in case]
    if relative:
        return {k: Path(os.path.relpath(case[k], root)).as_posix() for k in keys}
    return {k: case[k] for k in keys}


def build_datalist(
    data_dir: str | os.PathLike,
    num_folds: int = 5,
    fold: int = 0,
    val_fraction: float | None = None,
    test_fraction: float = 0.0,
    seed: int = 0,
    relative: bool = False,
) -> dict:
    """An MSD-style ``dataset.json`` dict with ``training``, ``validation`` and ``test`` lists.

    Labelled cases are shuffled with ``seed``; the first ``round(test_fraction * n)`` are held out as
    test (the same for every fold), the rest are split into ``num_folds`` near-equal folds of which
    ``fold`` is the validation set. MSD ``imagesTs`` cases are always test cases.

    Args:
        data_dir: folder in LiTS or MSD layout.
        num_folds: number of cross-validation folds (>= 2).
        fold: validation fold, ``0 <= fold < num_folds``.
        val_fraction: if given, one random split with this fraction for validation instead of k-fold
            (``num_folds`` and ``fold`` are then ignored).
        test_fraction: fraction of labelled cases held out as test, in ``[0, 1)``.
        seed: shuffling seed; the same seed and files give the same split on any machine.
        relative: paths relative to ``data_dir`` (pass ``base_dir=data_dir`` to MONAI's loader when
            the JSON is not saved in ``data_dir``) instead of absolute.

    Returns:
        ``{"name", "description", "tensorImageSize", "modality", "labels", "numTraining",
        "numValidation", "numTest", "fold", "num_folds", "seed", "training", "validation", "test"}``;
        list entries are ``{"image": path, "label": path}`` (test entries without a label file have
        only ``image``). MONAI's ``load_decathlon_datalist(..., data_list_key="test")`` fails on an
        empty ``test`` list: ask for it only when ``numTest > 0``.
    """
    if val_fraction is None and not (num_folds >= 2 and 0 <= fold < num_folds):
        raise ValueError(f"need num_folds >= 2 and 0 <= fold < num_folds, got num_folds={num_folds}, fold={fold}")
    if val_fraction is not None and not 0.0 < val_fraction < 1.0:
        raise ValueError(f"val_fraction must be in (0, 1), got {val_fraction}")
    if not 0.0 <= test_fraction < 1.0:
        raise ValueError(f"test_fraction must be in [0, 1), got {test_fraction}")
    root = Path(data_dir).expanduser().resolve()
    cases = find_cases(root)
    fixed_test = [c for c in cases if c.get("split") == "test"]
    pool = [c for c in cases if c.get("split") != "test"]  # sorted by case id: order independent of the OS
    pool = [pool[i] for i in np.random.default_rng(seed).permutation(len(pool))]
    n_test = round(test_fraction * len(pool))
    test, pool = fixed_test + pool[:n_test], pool[n_test:]
    if val_fraction is not None:
        n_val = min(max(1, round(val_fraction * len(pool))), len(pool) - 1)
        validation, training = pool[:n_val], pool[n_val:]
    else:
        if len(pool) < num_folds:
            raise ValueError(f"{len(pool)} labelled case(s) left for {num_folds} folds in {root}")
        folds = np.array_split(np.arange(len(pool)), num_folds)
        validation = [pool[i] for i in folds[fold]]
        training = [pool[i] for k, f in enumerate(folds) if k != fold for i in f]
    if not training:
        raise ValueError(f"no training cases left in {root} ({len(cases)} cases)")

    def entries(group: list[dict]) -> list[dict[str, str]]:
        return [_entry(c, root, relative) for c in sorted(group, key=lambda c: _natural_key(c["case_id"]))]

    return {
        "name": root.name,
        "description": "liver and liver-tumour segmentation in abdominal CT (LiTS labels)",
        "tensorImageSize": "3D",
        "modality": {"0": "CT"},
        "labels": dict(LABELS),
        "numTraining": len(training),
        "numValidation": len(validation),
        "numTest": len(test),
        "fold": None if val_fraction is not None else fold,
        "num_folds": None if val_fraction is not None else num_folds,
        "seed": seed,
        "training": entries(training),
        "validation": entries(validation),
        "test": entries(test),
    }


def write_datalist(datalist: dict, path: str | os.PathLike) -> Path:
    """Write ``datalist`` as indented JSON, atomically (temporary file in the same folder, then rename)."""
    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(f".{out.name}.{os.getpid()}.tmp")
    try:
        tmp.write_text(json.dumps(datalist, indent=2) + "\n")
        os.replace(tmp, out)
    finally:
        tmp.unlink(missing_ok=True)
    return out

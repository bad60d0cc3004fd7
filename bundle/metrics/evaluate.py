"""Folder-level LiTS evaluation: match predicted label maps to references by case name, score, write a table.

Case names (:func:`case_name`), applied alike to predictions and references:

- the name is the file name without ``.nii.gz`` / ``.nii``;
- a trailing ``_seg`` is dropped (our inference writes ``<case>_seg.nii.gz``);
- a LiTS reference ``segmentation-N`` is named after its image ``volume-N`` (so is ``test-segmentation-N``
  after ``test-volume-N``). An MSD reference ``labelsTr/liver_7.nii.gz`` is ``liver_7``, its image's name.

Layouts: references are the NIfTI files directly in ``label_dir`` (LiTS ``segmentation-N.nii[.gz]`` or any
``NAME.nii[.gz]``; hidden files such as macOS ``._*`` are skipped) and, when ``label_dir`` is a 3D-IRCADb folder
(``3Dircadb1.N/`` patient folders) or one patient folder, each patient's ``MASKS_DICOM`` (folder or zip), named
after the patient (``3Dircadb1.7``, as inference names its ``PATIENT_DICOM`` input) and turned into the label map
0/1/2 by :func:`~bundle.data.ircadb.ircadb_label`; predictions are ``pred_dir/<case>/<case>_seg.nii[.gz]`` (our
inference output) or flat ``pred_dir/<case>_seg.nii[.gz]`` / ``pred_dir/<case>.nii[.gz]``; the per-case folder
wins when both exist.

Each pair must have the same shape and the same affine (absolute tolerance 1e-3); otherwise, or when a file
cannot be read or holds labels outside {0, 1, 2}, the case is recorded as failed with a message naming both
files and the other cases are still scored. Spacing comes from the reference header's zooms (mm); for a
3D-IRCADb reference, from its RAS affine's column norms (rounded through float32 as a NIfTI header would be, so
a patient scores the same against its DICOM masks as against their NIfTI conversion).
Outputs in ``out_dir``, each written atomically: ``metrics.csv`` (one row per case, then a ``SUMMARY`` row of
:func:`~bundle.metrics.lits.lits_summary`; NaN = undefined, see :mod:`bundle.metrics.lits`) and
``metrics.json`` (``cases``, ``summary``, ``failed``, ``missing_predictions``, ``unmatched_predictions``).
"""

from __future__ import annotations

import csv
import io
import logging
import math
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import nibabel as nib
import numpy as np

from bundle.data.ircadb import find_ircadb_cases, ircadb_label, is_ircadb_folder
from bundle.inference.report import atomic_output, write_json_atomic
from bundle.metrics.lits import lits_case_metrics, lits_summary

__all__ = [
    "EvaluationResult",
    "case_name",
    "evaluate_folder",
    "evaluate_pair",
    "find_predictions",
    "find_references",
    "format_table",
]

logger = logging.getLogger(__name__)

AFFINE_ATOL = 1e-3
_NIFTI_SUFFIXES = (".nii.gz", ".nii")
_LITS_REFERENCE = re.compile(r"^(.*)segmentation-(\d+)$")
_LITS_VOLUME = re.compile(r"^(.*?)volume-(\d+)$")
_IRCADB_MASKS = ("MASKS_DICOM", "MASKS_DICOM.zip")
TABLE_COLUMNS = (
    ("liver_dice", "liver Dice"),
    ("liver_assd", "liver ASSD mm"),
    ("tumor_dice", "tumor Dice"),
    ("tumor_assd", "tumor ASSD mm"),
    ("tumor_burden_pred", "burden pred"),
    ("tumor_burden_ref", "burden ref"),
)


def _strip_nifti(name: str) -> str | None:
    for suffix in _NIFTI_SUFFIXES:
        if name.endswith(suffix) and len(name) > len(suffix):
            return name[: -len(suffix)]
    return None


def case_name(filename: str) -> str | None:
    """Case name of a NIfTI file name (``None`` if it is not one): ``segmentation-3.nii`` -> ``volume-3``,
    ``liver_7.nii.gz`` -> ``liver_7``, ``volume-3_seg.nii.gz`` -> ``volume-3``."""
    stem = _strip_nifti(filename)
    if stem is None or filename.startswith("."):
        return None
    if stem.endswith("_seg") and len(stem) > len("_seg"):
        stem = stem[: -len("_seg")]
    match = _LITS_REFERENCE.match(stem)
    return f"{match.group(1)}volume-{match.group(2)}" if match else stem


def _add(found: dict[str, Path], name: str | None, path: Path, kind: str) -> None:
    if name is None:
        return
    if name in found:
        raise ValueError(f"two {kind} files map to case {name!r}: {found[name]} and {path}")
    found[name] = path


def find_references(label_dir: str | os.PathLike) -> dict[str, Path]:
    """``{case: path}`` of the NIfTI label files directly inside ``label_dir``, and of the 3D-IRCADb patients'
    ``MASKS_DICOM`` when ``label_dir`` is a 3D-IRCADb folder or patient folder (case = patient folder name).

    In a LiTS folder (one holding ``segmentation-N`` files) the CT volumes ``volume-N`` beside them are skipped,
    so a LiTS training folder can be given as it is.
    """
    found: dict[str, Path] = {}
    paths = [p for p in sorted(Path(label_dir).iterdir()) if p.is_file()]
    lits = any(_LITS_REFERENCE.match(_strip_nifti(p.name) or "") for p in paths)
    for path in paths:
        if lits and _LITS_VOLUME.match(_strip_nifti(path.name) or ""):
            continue
        _add(found, case_name(path.name), path, "reference")
    if is_ircadb_folder(label_dir):
        for case in find_ircadb_cases(label_dir):
            _add(found, case["case_id"], Path(case["label"]), "reference")
    return found


def find_predictions(pred_dir: str | os.PathLike) -> dict[str, Path]:
    """``{case: path}`` of the predictions in ``pred_dir``: ``<case>/<case>_seg.nii[.gz]``, else flat files."""
    nested: dict[str, Path] = {}
    flat: dict[str, Path] = {}
    for path in sorted(Path(pred_dir).iterdir()):
        if path.is_dir() and not path.name.startswith("."):
            for suffix in _NIFTI_SUFFIXES:
                candidate = path / f"{path.name}_seg{suffix}"
                if candidate.is_file():
                    _add(nested, case_name(candidate.name), candidate, "prediction")
                    break
        elif path.is_file():
            _add(flat, case_name(path.name), path, "prediction")
    for name in sorted(set(nested) & set(flat)):
        logger.warning("case %s: using %s, ignoring %s", name, nested[name], flat[name])
    return {**flat, **nested}


def _load_ircadb_label(masks: Path) -> tuple[np.ndarray, np.ndarray, tuple[float, ...]]:
    """A 3D-IRCADb patient's label map ``(H, W, D)`` on its CT's grid, the RAS affine, and the spacing in mm."""
    label, meta = ircadb_label(masks)
    affine = np.asarray(meta["affine"], dtype=np.float64)
    spacing = tuple(float(str(np.float32(s))) for s in np.linalg.norm(affine[:3, :3], axis=0))
    return label.astype(np.int16), affine, spacing


def _load_label(path: Path) -> tuple[np.ndarray, np.ndarray, tuple[float, ...]]:
    """A label map ``(H, W, D)`` int16 in {0, 1, 2}, its voxel -> RAS mm affine and its spacing (mm)."""
    if path.name in _IRCADB_MASKS:
        return _load_ircadb_label(path)
    img = nib.load(str(path))
    data = np.asanyarray(img.dataobj)
    while data.ndim > 3 and data.shape[-1] == 1:
        data = data[..., 0]
    if data.ndim != 3:
        raise ValueError(f"{path}: expected a 3D label map, got shape {data.shape}")
    labels = np.rint(data).astype(np.int16) if np.issubdtype(data.dtype, np.floating) else data.astype(np.int16)
    unexpected = sorted(set(np.unique(labels).tolist()) - {0, 1, 2})
    if unexpected:
        raise ValueError(f"{path}: label values {unexpected[:5]} outside {{0 background, 1 liver, 2 tumor}}")
    zooms = tuple(float(str(z)) for z in img.header.get_zooms()[:3])  # float32 0.8 -> 0.8, not 0.800000011920929
    return labels, np.asarray(img.affine, dtype=np.float64), zooms


def evaluate_pair(
    pred_path: str | os.PathLike, ref_path: str | os.PathLike, atol: float = AFFINE_ATOL
) -> dict[str, float | int]:
    """:func:`~bundle.metrics.lits.lits_case_metrics` of one prediction/reference pair of NIfTI files (the reference
    may be a 3D-IRCADb ``MASKS_DICOM`` folder or zip).

    Raises:
        ValueError: naming both files, when their shapes or affines (beyond ``atol``) differ.
    """
    pred, pred_affine, _ = _load_label(Path(pred_path))
    ref, ref_affine, spacing = _load_label(Path(ref_path))
    if pred.shape != ref.shape:
        raise ValueError(f"shape mismatch: prediction {pred_path} is {pred.shape}, reference {ref_path} is {ref.shape}")
    if not np.allclose(pred_affine, ref_affine, rtol=0.0, atol=atol):
        diff = float(np.abs(pred_affine - ref_affine).max())
        raise ValueError(
            f"affine mismatch (max difference {diff:.4g} > {atol}): prediction {pred_path} vs reference {ref_path}"
        )
    return lits_case_metrics(pred, ref, spacing)


@dataclass
class EvaluationResult:
    """Per-case rows (``status`` ``ok`` or ``failed``), the summary of the scored cases, and what was unmatched."""

    cases: list[dict[str, Any]] = field(default_factory=list)
    summary: dict[str, float | int] = field(default_factory=dict)
    missing_predictions: list[str] = field(default_factory=list)
    unmatched_predictions: list[str] = field(default_factory=list)
    require_all: bool = False

    @property
    def failed(self) -> list[str]:
        return [c["case"] for c in self.cases if c["status"] != "ok"]

    @property
    def ok(self) -> bool:
        """True when at least one case was scored, none failed, and (with ``require_all``) none is missing."""
        scored = any(c["status"] == "ok" for c in self.cases)
        return scored and not self.failed and not (self.require_all and self.missing_predictions)


def _fmt(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, float):
        return "nan" if math.isnan(value) else f"{value:.6g}"
    return str(value)


def format_table(result: EvaluationResult) -> str:
    """A fixed-width text table of the cases and the summary row."""
    header = ["case", *(title for _, title in TABLE_COLUMNS), "status"]
    rows = [[c["case"], *(_fmt(c.get(k)) for k, _ in TABLE_COLUMNS), c["status"]] for c in result.cases]
    summary = result.summary
    rows.append(["SUMMARY (mean)", *(_fmt(summary.get(k)) for k, _ in TABLE_COLUMNS), f"n={summary.get('n_cases')}"])
    widths = [max(len(str(r[i])) for r in [header, *rows]) for i in range(len(header))]
    lines = ["  ".join(str(v).ljust(w) for v, w in zip(r, widths, strict=True)).rstrip() for r in [header, *rows]]
    lines.insert(1, "  ".join("-" * w for w in widths))
    extra = ("liver_dice_global", "tumor_dice_global", "tumor_burden_rmse", "tumor_burden_max_error")
    lines.append("  ".join(f"{k}={_fmt(summary.get(k))}" for k in extra))
    return "\n".join(lines)


def _write_csv(result: EvaluationResult, path: Path) -> None:
    metric_keys: list[str] = []
    for row in result.cases:
        metric_keys += [k for k in row if k not in metric_keys and k not in ("case", "status", "error", "pred", "ref")]
    summary_only = [k for k in result.summary if k not in metric_keys]
    columns = ["case", "status", *metric_keys, *summary_only, "pred", "ref", "error"]
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=columns, extrasaction="ignore", lineterminator="\n")
    writer.writeheader()
    for row in result.cases:
        writer.writerow({k: _fmt(row.get(k)) for k in columns})
    writer.writerow(
        {"case": "SUMMARY", "status": "ok" if result.ok else "failed"} | {k: _fmt(v) for k, v in result.summary.items()}
    )
    with atomic_output(path) as tmp:
        tmp.write_text(buffer.getvalue(), encoding="utf-8")


def evaluate_folder(
    pred_dir: str | os.PathLike,
    label_dir: str | os.PathLike,
    out_dir: str | os.PathLike | None = None,
    require_all: bool = False,
    atol: float = AFFINE_ATOL,
) -> EvaluationResult:
    """Score every prediction in ``pred_dir`` that has a reference in ``label_dir``; write the CSV and JSON.

    Args:
        pred_dir: folder of predictions (layouts in the module docstring).
        label_dir: folder of reference label maps, or a 3D-IRCADb folder or patient folder.
        out_dir: where ``metrics.csv`` and ``metrics.json`` go; default ``pred_dir``.
        require_all: a reference without a prediction makes the evaluation fail (otherwise a warning).
        atol: absolute tolerance on the affines.

    Returns:
        the :class:`EvaluationResult`; ``result.ok`` is False when a case failed or nothing was scored.
    """
    references = find_references(label_dir)
    predictions = find_predictions(pred_dir)
    result = EvaluationResult(require_all=require_all)
    result.missing_predictions = sorted(set(references) - set(predictions))
    result.unmatched_predictions = sorted(set(predictions) - set(references))
    for name in result.unmatched_predictions:
        logger.warning("prediction %s has no reference in %s: skipped", predictions[name], label_dir)
    for name in result.missing_predictions:
        log = logger.error if require_all else logger.warning
        log("reference %s has no prediction in %s", references[name], pred_dir)
    scored = []
    for name in sorted(set(references) & set(predictions)):
        row: dict[str, Any] = {"case": name, "pred": str(predictions[name]), "ref": str(references[name])}
        try:
            metrics = evaluate_pair(predictions[name], references[name], atol=atol)
        except Exception as err:  # one bad case must not stop the others
            logger.error("case %s failed: %s", name, err)
            row.update(status="failed", error=str(err))
        else:
            row.update(status="ok", **metrics)
            scored.append(metrics)
        result.cases.append(row)
    result.summary = lits_summary(scored)
    out = Path(out_dir) if out_dir is not None else Path(pred_dir)
    _write_csv(result, out / "metrics.csv")
    write_json_atomic(
        {
            "cases": result.cases,
            "summary": result.summary,
            "failed": result.failed,
            "missing_predictions": result.missing_predictions,
            "unmatched_predictions": result.unmatched_predictions,
        },
        out / "metrics.json",
    )
    logger.info("LiTS evaluation of %s against %s\n%s", pred_dir, label_dir, format_table(result))
    logger.info("wrote %s and %s", out / "metrics.csv", out / "metrics.json")
    if not result.cases:
        logger.error("no prediction in %s matched a reference in %s", pred_dir, label_dir)
    return result

"""Batch inference that survives bad cases: validate every input first, skip finished cases, report failures.

Hospital folders mix truncated files, MR series and scout images with good CTs. Before any network runs,
:func:`prepare_cases` checks every input (``bundle.data.validation``) and keeps only those that pass; the others
go to ``<output_dir>/failures.json`` with the file and the reason. Cases whose segmentation already exists are
skipped on a rerun (unless ``overwrite``), so an interrupted batch continues where it stopped; outputs are
written atomically (``bundle.inference.case_outputs``), so an existing file is always a whole one.
:func:`raise_if_failures` ends the job with an error naming the failed cases, after every good case is written.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence
from pathlib import Path

from bundle.config_values import as_bool
from bundle.data.validation import InvalidInputError, check_image_file

from .case_outputs import case_output_path
from .report import write_json_atomic

__all__ = ["FAILURES_FILE", "prepare_cases", "raise_if_failures"]

logger = logging.getLogger(__name__)
FAILURES_FILE = "failures.json"


def prepare_cases(
    datalist: Sequence[dict],
    output_dir: str | Path,
    overwrite: bool = False,
    allow_non_ct: bool = False,
    min_slices: int = 1,
) -> list[dict]:
    """The entries of ``datalist`` to run: valid inputs without a finished segmentation (all valid ones if
    ``overwrite``). Invalid inputs are written to ``<output_dir>/failures.json`` (``[]`` when none)."""
    overwrite, allow_non_ct = as_bool(overwrite, "overwrite"), as_bool(allow_non_ct, "allow_non_ct")
    todo, failures, names = [], [], {}
    for entry in datalist:
        source = str(entry["image"])
        target = case_output_path(output_dir, source, "seg", ".nii.gz")
        case = target.parent.name
        try:
            check_image_file(source, allow_non_ct=allow_non_ct, min_slices=min_slices)
        except InvalidInputError as error:
            logger.error("skipping %s", error)
            failures.append({"case": case, "file": source, "error": error.problem})
            continue
        if case in names:  # two inputs would write the same <case>/ folder
            failures.append({"case": case, "file": source, "error": f"same case name as {names[case]}"})
            continue
        names[case] = source
        if target.is_file() and not overwrite:
            logger.info("skipping %s: %s exists (overwrite=true to redo)", source, target)
            continue
        todo.append(dict(entry))
    write_json_atomic(failures, Path(output_dir) / FAILURES_FILE)
    logger.info(
        "%d case(s) to run, %d skipped as done, %d invalid",
        len(todo),
        len(datalist) - len(todo) - len(failures),
        len(failures),
    )
    return todo


def raise_if_failures(output_dir: str | Path) -> None:
    """Raise ``RuntimeError`` naming the failed cases of ``<output_dir>/failures.json``, if any (non-zero exit)."""
    path = Path(output_dir) / FAILURES_FILE
    failures = json.loads(path.read_text()) if path.is_file() else []
    if failures:
        listed = "; ".join(f"{f['file']}: {f['error']}" for f in failures)
        raise RuntimeError(f"{len(failures)} case(s) failed (details in {path}): {listed}")

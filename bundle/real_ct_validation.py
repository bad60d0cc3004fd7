"""Score a trained cascade on real CT as a user runs it: ``configs/inference.yaml``, then the LiTS metrics.

For leave-one-patient-out validation (train with ``configs/real_ct.yaml --holdout 3Dircadb1.1``, score on
3Dircadb1.1) and for the released weights: every named 3D-IRCADb patient is segmented from its ``PATIENT_DICOM`` by
``python -m monai.bundle run --config_file configs/inference.yaml`` (no overrides but input, output and weights)
and scored against its expert masks (:func:`~bundle.metrics.evaluate.evaluate_folder`); the shipped sample CT
(``sample/``, never trained on) is segmented too and its liver scored against TotalSegmentator's liver (a model's
output). Everything lands in ``<out>/real_validation.json``.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from bundle.commands import REPO_ROOT, run_bundle
from bundle.inference.report import write_json_atomic
from bundle.metrics.evaluate import evaluate_folder, format_table

__all__ = ["validate_on_real_ct"]

logger = logging.getLogger(__name__)


def validate_on_real_ct(
    model: str | Path,
    ircadb_dir: str | Path,
    patients: Sequence[str],
    out: str | Path,
    with_sample: bool = True,
) -> dict[str, Any]:
    """Segment and score ``patients`` (``3Dircadb1.N`` folder names in ``ircadb_dir``) and the sample CT with the
    weights ``model``; returns (and writes to ``<out>/real_validation.json``) the per-case metrics and seconds."""
    from bundle.demo import segment_sample  # the demo's own step: one definition of the sample's score

    out, ircadb_dir = Path(out).resolve(), Path(ircadb_dir).resolve()
    predictions = out / "predictions"
    seconds: dict[str, float] = {}
    for patient in patients:
        overrides = {"input": str(ircadb_dir / patient), "output_dir": str(predictions), "ckpt_path": str(model)}
        overrides |= {"overwrite": "true", "bundle_root": str(REPO_ROOT)}
        started = time.perf_counter()
        run_bundle(["inference.yaml"], overrides, out / f"inference_{patient}.log")
        seconds[patient] = time.perf_counter() - started
        logger.info("%s segmented in %.0f s (including start-up)", patient, seconds[patient])
    result: dict[str, Any] = {"model": str(model), "patients": {}, "sample": None}
    if patients:
        evaluation = evaluate_folder(predictions, ircadb_dir, out_dir=out / "metrics")
        print(format_table(evaluation))
        for row in evaluation.cases:
            result["patients"][row["case"]] = {**row, "seconds_with_startup": seconds.get(row["case"])}
    if with_sample:
        result["sample"] = segment_sample(out / "sample", Path(model))
    write_json_atomic(result, out / "real_validation.json")
    logger.info("real-CT validation: %s", json.dumps({k: v for k, v in result.items() if k != "patients"}))
    return result

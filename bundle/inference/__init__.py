"""Inference around the cascade (which lives in :mod:`bundle.networks.cascade`): batch inputs and their checks
(``inputs``, ``batch``), post-processing of the cascade's output (paper III-C-3, ``postprocessing``), per-case
outputs and reports written atomically (``case_outputs``, ``report``), overlays, and the stage inferer that
validation uses. ``folding`` and ``hybrid_inferer`` re-export what moved to :mod:`bundle.networks`."""

from __future__ import annotations

from bundle.inference.batch import FAILURES_FILE, prepare_cases, raise_if_failures
from bundle.inference.case_outputs import SaveCaseImaged, WriteCaseReportd, case_output_path
from bundle.inference.inputs import case_name, input_datalist
from bundle.inference.overlay import OverlayPanel, save_overlay_png
from bundle.inference.postprocessing import (
    LiverTumorCleanup,
    LiverTumorCleanupd,
    LiverTumorThreshold,
    LiverTumorThresholdd,
)
from bundle.inference.report import atomic_output, case_report, write_json_atomic
from bundle.inference.stage_inferer import CascadeStageInferer

__all__ = [
    "FAILURES_FILE",
    "CascadeStageInferer",
    "LiverTumorCleanup",
    "LiverTumorCleanupd",
    "LiverTumorThreshold",
    "LiverTumorThresholdd",
    "OverlayPanel",
    "SaveCaseImaged",
    "WriteCaseReportd",
    "atomic_output",
    "case_name",
    "case_output_path",
    "case_report",
    "input_datalist",
    "prepare_cases",
    "raise_if_failures",
    "save_overlay_png",
    "write_json_atomic",
]

"""Inference: post-processing of the cascade's output (paper III-C-3), per-case report, and overlay PNG."""

from __future__ import annotations

from bundle.inference.overlay import OverlayPanel, save_overlay_png
from bundle.inference.postprocessing import (
    LiverTumorCleanup,
    LiverTumorCleanupd,
    LiverTumorThreshold,
    LiverTumorThresholdd,
)
from bundle.inference.report import atomic_output, case_report, write_json_atomic

__all__ = [
    "LiverTumorCleanup",
    "LiverTumorCleanupd",
    "LiverTumorThreshold",
    "LiverTumorThresholdd",
    "OverlayPanel",
    "atomic_output",
    "case_report",
    "save_overlay_png",
    "write_json_atomic",
]

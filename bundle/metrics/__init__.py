"""LiTS metrics (Dice, VOE, RVD, ASSD, MSD, RMSD, tumor burden) and the folder-level evaluation."""

from __future__ import annotations

from bundle.metrics.evaluate import EvaluationResult, case_name, evaluate_folder, evaluate_pair
from bundle.metrics.lits import (
    assd,
    binary_metrics,
    dice,
    lits_case_metrics,
    lits_summary,
    msd,
    rmsd,
    rvd,
    surface_distances,
    tumor_burden,
    voe,
)

__all__ = [
    "EvaluationResult",
    "assd",
    "binary_metrics",
    "case_name",
    "dice",
    "evaluate_folder",
    "evaluate_pair",
    "lits_case_metrics",
    "lits_summary",
    "msd",
    "rmsd",
    "rvd",
    "surface_distances",
    "tumor_burden",
    "voe",
]

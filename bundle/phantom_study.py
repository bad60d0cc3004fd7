"""Why does the phantom model over-segment tumors? One factor changed at a time, everything else held fixed.

Each variant is a set of overrides of ``configs/train.yaml`` + an overlay (``configs/demo.yaml`` by default): the
same phantoms, fold, seed and epochs, trained with ``--stage all`` (one ``python -m monai.bundle run`` process, as a
user runs it), then ``configs/inference.yaml`` segments the held-out phantoms with ``save_probabilities true`` and
:func:`~bundle.metrics.evaluate.evaluate_folder` scores them. From the saved probabilities the post-processing is
re-run offline at other tumor thresholds and without the clean-up, so the threshold's and the post-processing's share
of the error is measured on the same network outputs, without retraining.

Outputs in ``out``: ``study.json`` (per variant: overrides, training seconds, per-case and summary metrics, the
threshold sweep) and ``study.md`` (one table, the command that reproduces it); per variant ``runs/<variant>/``
(checkpoints, logs, predictions, ``metrics*``).

Example::

    run_study(Path("runs/study"), {"demo": {}, "weights_1_1_2": {"stage_settings#liver#class_weights": "[1,1,2]"}})
"""

from __future__ import annotations

import json
import logging
import shlex
import sys
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import nibabel as nib
import numpy as np
import torch

from bundle.commands import run_bundle
from bundle.data import write_phantom_dataset
from bundle.demo import DEMO_INFERENCE, phantom_training_overrides
from bundle.inference.postprocessing import LiverTumorCleanup, LiverTumorThreshold
from bundle.inference.report import write_json_atomic
from bundle.metrics.evaluate import evaluate_folder
from bundle.metrics.lits import dice, tumor_burden

__all__ = ["TUMOR_THRESHOLDS", "VARIANTS", "run_study", "threshold_sweep"]

logger = logging.getLogger(__name__)

_WEIGHTS, _CENTRES = "stage_settings#liver#class_weights", "stage_settings#liver#patch_class_ratios"
#: the factors the model card names as suspects, one at a time against the demo recipe (configs/demo.yaml, which
#: keeps train.yaml's liver-stage class weights 0.78 / 0.65 / 8.57 and tumor-centred patches 1 : 1 : 2)
VARIANTS: dict[str, dict[str, str]] = {
    "demo": {},
    "tumor_weight_2": {_WEIGHTS: "[1.0,1.0,2.0]"},
    "equal_centres": {_CENTRES: "[1,1,1,1]"},
    "weight_2_equal_centres": {_WEIGHTS: "[1.0,1.0,2.0]", _CENTRES: "[1,1,1,1]"},
    "epochs_x3": {"coarse_epochs": "45", "fine_epochs": "24"},
}
#: tumor thresholds re-applied offline to the saved probabilities (0.5 is what inference.yaml uses)
TUMOR_THRESHOLDS: tuple[float, ...] = (0.3, 0.5, 0.7, 0.9)


def threshold_sweep(
    probabilities: np.ndarray, reference: np.ndarray, thresholds: Sequence[float] = TUMOR_THRESHOLDS
) -> list[dict[str, float]]:
    """Tumor Dice and burden of one case at each tumor threshold, with and without :class:`LiverTumorCleanup`.

    Args:
        probabilities: ``(H, W, D, 3)`` or ``(3, H, W, D)`` float background/liver/tumor probabilities on the
            reference's grid (``<case>_probabilities.nii.gz`` of inference).
        reference: ``(H, W, D)`` label map {0, 1, 2}.

    Returns:
        one dict per threshold: ``tumor_threshold``, ``tumor_dice``, ``tumor_burden`` (after clean-up, as
        inference writes it), ``tumor_dice_raw`` and ``tumor_burden_raw`` (threshold only).
    """
    prob = torch.as_tensor(np.asarray(probabilities, dtype=np.float32))
    if prob.shape[0] != 3:
        prob = prob.movedim(-1, 0)
    ref_tumor = np.asarray(reference) == 2
    rows = []
    for threshold in thresholds:
        raw = LiverTumorThreshold(tumor_threshold=threshold)(prob)
        cleaned = LiverTumorCleanup()(raw)
        raw_np, cleaned_np = raw[0].numpy(), cleaned[0].numpy()
        rows.append(
            {
                "tumor_threshold": threshold,
                "tumor_dice": float(dice(cleaned_np == 2, ref_tumor)),
                "tumor_burden": tumor_burden(cleaned_np),
                "tumor_dice_raw": float(dice(raw_np == 2, ref_tumor)),
                "tumor_burden_raw": tumor_burden(raw_np),
            }
        )
    return rows


def _sweep_cases(pred_dir: Path, heldout_dir: Path) -> dict[str, list[dict[str, float]]]:
    """:func:`threshold_sweep` of every held-out phantom ``volume-N`` predicted in ``pred_dir``."""
    sweeps = {}
    for label_path in sorted(heldout_dir.glob("segmentation-*.nii.gz")):
        case = label_path.name.replace("segmentation-", "volume-").removesuffix(".nii.gz")
        prob_path = pred_dir / case / f"{case}_probabilities.nii.gz"
        if prob_path.is_file():
            reference = np.asarray(nib.load(str(label_path)).dataobj)
            sweeps[case] = threshold_sweep(np.asarray(nib.load(str(prob_path)).dataobj), reference)
    return sweeps


def _run_variant(
    name: str, overrides: Mapping[str, str], out: Path, data_dir: Path, heldout_dir: Path, overlay: str
) -> dict[str, Any]:
    """Train, infer and score one variant under ``out/runs/<name>``."""
    run_dir = out / "runs" / name
    train_overrides = phantom_training_overrides(run_dir, data_dir, f"phantom_study_{name}") | dict(overrides)
    seconds = run_bundle(["train.yaml", overlay], train_overrides, run_dir / "train.log")
    network_overrides = {k: v for k, v in overrides.items() if k in ("network_size", "patch_size", "fine_spacing")}
    run_bundle(
        ["inference.yaml"],
        {
            "bundle_root": str(run_dir),
            "input": str(heldout_dir),
            "output_dir": str(run_dir / "predictions"),
            "ckpt_path": str(run_dir / "models" / "model.pt"),
            **DEMO_INFERENCE,
            "save_probabilities": "true",
            **network_overrides,
        },
        run_dir / "inference.log",
    )
    result = evaluate_folder(run_dir / "predictions", heldout_dir, out_dir=run_dir / "metrics")
    keys = ("liver_dice", "tumor_dice", "tumor_burden_pred", "tumor_burden_ref", "tumor_pred_ml", "tumor_ref_ml")
    return {
        "overrides": dict(overrides),
        "train_seconds": seconds,
        "summary": result.summary,
        "cases": {row["case"]: {k: row.get(k) for k in keys} for row in result.cases},
        "threshold_sweep": _sweep_cases(run_dir / "predictions", heldout_dir),
    }


def _table(results: Mapping[str, dict[str, Any]], command: str) -> str:
    """``study.md``: per variant the held-out liver and tumor Dice (per case), burdens, and the best threshold."""
    lines = [
        f"Reproduce: `{command}`",
        "",
        "| variant | train s | liver Dice | tumor Dice | burden pred / ref | tumor Dice at threshold "
        + " / ".join(str(t) for t in TUMOR_THRESHOLDS)
        + " | same, no clean-up |",
        "|---|---|---|---|---|---|---|",
    ]
    for name, res in results.items():
        cases, sweep = res["cases"].values(), res["threshold_sweep"].values()

        def joined(values: Sequence[float], digits: int = 2) -> str:
            return " / ".join(f"{v:.{digits}f}" for v in values)

        def mean_at(key: str, sweep: Sequence[list] = tuple(sweep)) -> list[float]:
            return [float(np.mean([rows[i][key] for rows in sweep])) for i in range(len(TUMOR_THRESHOLDS))]

        burdens = " / ".join(f"{c['tumor_burden_pred']:.3f}:{c['tumor_burden_ref']:.3f}" for c in cases)
        lines.append(
            f"| {name} | {res['train_seconds']:.0f} | {joined([c['liver_dice'] for c in cases])} "
            f"| {joined([c['tumor_dice'] for c in cases])} | {burdens} "
            f"| {joined(mean_at('tumor_dice')) if sweep else '-'} "
            f"| {joined(mean_at('tumor_dice_raw')) if sweep else '-'} |"
        )
    return "\n".join(lines) + "\n"


def run_study(
    out: Path,
    variants: Mapping[str, Mapping[str, str]],
    num_cases: int = 8,
    num_heldout: int = 4,
    size: int = 128,
    seed: int = 0,
    overlay: str = "demo.yaml",
) -> int:
    """Run every variant into ``out`` (phantoms written once to ``out/data`` and ``out/heldout``); 0 on success.

    A variant already in ``out/study.json`` is not run again, so a stopped study continues where it stopped.
    """
    out = Path(out).resolve()
    data_dir, heldout_dir = out / "data", out / "heldout"
    if not heldout_dir.is_dir():
        write_phantom_dataset(data_dir, num_cases, seed=seed, size=size)
        write_phantom_dataset(heldout_dir, num_heldout, seed=seed, size=size, start_index=num_cases)
    study_path = out / "study.json"
    results: dict[str, Any] = json.loads(study_path.read_text())["variants"] if study_path.is_file() else {}
    command = shlex.join([Path(sys.executable).name, *sys.argv])
    for name, overrides in variants.items():
        if name in results:
            logger.info("%s: already in %s", name, study_path)
            continue
        started = time.time()
        logger.info("%s: %s", name, dict(overrides) or "the overlay as it is")
        results[name] = _run_variant(name, overrides, out, data_dir, heldout_dir, overlay)
        logger.info("%s: done in %.0f s: %s", name, time.time() - started, results[name]["cases"])
        settings = {"num_cases": num_cases, "num_heldout": num_heldout, "size": size, "seed": seed, "overlay": overlay}
        write_json_atomic({"command": command, "settings": settings, "variants": results}, study_path)
        (out / "study.md").write_text(_table(results, command))
    print((out / "study.md").read_text())
    return 0

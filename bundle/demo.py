"""`make demo`: a real CT segmented with the released weights, then the whole bundle on CT phantoms, in minutes.

0. the sample CT shipped in ``sample/`` (TotalSegmentator's example, Apache-2.0) segmented with ``models/model.pt``
   by ``configs/inference.yaml`` without overrides, its liver volume and Dice against the sample's liver label
   (a model's output, not an expert's) printed, the overlay written: ``demo/sample/``;
1. phantoms in LiTS layout: ``demo/data`` (training and validation) and ``demo/heldout`` (never trained on);
2. the four training stages of ``configs/train.yaml`` with the small networks (``--stage all``, tracked in MLflow
   under ``demo/eval``), the final cascade copied to ``demo/model.pt``;
3. ``configs/inference.yaml`` on the held-out volumes: ``demo/predictions/<case>/`` (segmentation on the input's
   grid, JSON report, PNG overlay);
4. the LiTS metrics of the predictions against the held-out labels, printed and written to ``demo/metrics``.
"""

from __future__ import annotations

import json
import logging
import shutil
import time
from dataclasses import dataclass
from pathlib import Path

import nibabel as nib
import numpy as np

from bundle.commands import REPO_ROOT, run_bundle
from bundle.data import save_preview_png, write_phantom_dataset
from bundle.inference.report import write_json_atomic
from bundle.metrics.evaluate import evaluate_folder, format_table
from bundle.metrics.lits import dice

__all__ = [
    "DEMO_INFERENCE",
    "PHANTOM_TARGETS",
    "RECIPES",
    "SAMPLE_CT",
    "PhantomRecipe",
    "phantom_target_report",
    "phantom_training_overrides",
    "run_demo",
    "segment_sample",
]

logger = logging.getLogger(__name__)

#: Overrides of configs/inference.yaml matching the networks that configs/demo.yaml trains (configs/inference.yaml's
#: defaults are the released weights' settings).
DEMO_INFERENCE = {"network_size": "small", "patch_size": "[96,96,12]", "fine_spacing": "None", "num_workers": "0"}

#: the shipped real CT and its liver label (TotalSegmentator's output), sample/README.md
SAMPLE_CT = REPO_ROOT / "sample" / "ts_example_ct.nii.gz"
SAMPLE_LIVER = REPO_ROOT / "sample" / "ts_example_ct_liver.nii.gz"


def segment_sample(out: Path, weights: Path = REPO_ROOT / "models" / "model.pt") -> dict | None:
    """Segment :data:`SAMPLE_CT` with the released ``weights`` by ``configs/inference.yaml`` (no overrides but the
    paths) into ``out``; print and return its liver volume (mL) and liver Dice against :data:`SAMPLE_LIVER`. ``None``
    (and a log line) when the weights are absent."""
    if not weights.is_file():
        logger.warning("no released weights at %s: the real-CT step is skipped", weights)
        return None
    started = time.time()
    shutil.rmtree(out, ignore_errors=True)
    out.mkdir(parents=True)
    overrides = {"input": str(SAMPLE_CT), "output_dir": str(out), "ckpt_path": str(weights), "bundle_root": str(out)}
    run_bundle(["inference.yaml"], overrides, out / "inference.log")
    case = "ts_example_ct"
    report = json.loads((out / case / f"{case}_report.json").read_text())
    pred = np.asarray(nib.load(str(out / case / f"{case}_seg.nii.gz")).dataobj) > 0
    ref = np.asarray(nib.load(str(SAMPLE_LIVER)).dataobj) > 0
    result = {
        "liver_volume_ml": report["liver_volume_ml"],
        "reference_liver_volume_ml": float(ref.sum()) * report["voxel_volume_mm3"] / 1000.0,
        "liver_dice": float(dice(pred, ref)),
        "tumor_count": report["tumor_count"],
        "seconds": time.time() - started,
        "overlay": str(out / case / f"{case}_overlay.png"),
    }
    print(
        f"real CT {SAMPLE_CT.name} (3 mm, never trained on): liver {result['liver_volume_ml']:.0f} mL "
        f"(label {result['reference_liver_volume_ml']:.0f} mL), liver Dice {result['liver_dice']:.3f} against "
        f"TotalSegmentator's liver (a model's output, not an expert's), {result['tumor_count']} tumor(s) found, "
        f"{result['seconds']:.0f} s; overlay: {result['overlay']}"
    )
    return result


def phantom_training_overrides(run_dir: Path, data_dir: Path, experiment: str) -> dict[str, str]:
    """Overrides of ``configs/train.yaml`` for a phantom run: every stage (``--stage all``) on the LiTS-layout
    ``data_dir`` (fold 0 of 4 validates), checkpoints, evaluation and the MLflow store under ``run_dir``."""
    return {
        "bundle_root": str(run_dir),
        "ckpt_dir": str(run_dir / "models"),
        "output_dir": str(run_dir / "eval"),
        "dataset_dir": str(data_dir),
        "num_folds": "4",
        "stage": "all",
        "tracking": "mlflow",
        "experiment_name": experiment,
    }


@dataclass(frozen=True)
class PhantomRecipe:
    """What a phantom run trains on and with: overlays of ``configs/train.yaml`` (applied in order), phantom counts
    (``num_cases`` for training and validation, a quarter of them validation; ``num_heldout`` never trained on),
    their matrix ``size``, and whether the released weights first segment the sample CT."""

    overlays: tuple[str, ...]
    num_cases: int
    num_heldout: int
    size: int = 128
    with_sample: bool = True


#: ``demo``: ``make demo``, minutes. ``phantoms``: the recipe that learns the phantoms (configs/phantoms.yaml, at
#: most 60 minutes on 2 CPU cores), scored per held-out case against :data:`PHANTOM_TARGETS`.
RECIPES: dict[str, PhantomRecipe] = {
    "demo": PhantomRecipe(("demo.yaml",), num_cases=8, num_heldout=2),
    "phantoms": PhantomRecipe(("demo.yaml", "phantoms.yaml"), num_cases=16, num_heldout=4, with_sample=False),
}
#: per held-out phantom: liver Dice, tumor Dice at least; absolute tumor burden error at most
PHANTOM_TARGETS = {"liver_dice": 0.95, "tumor_dice": 0.75, "tumor_burden_error": 0.01}


def phantom_target_report(cases: list[dict]) -> tuple[bool, list[str]]:
    """Whether every scored case meets :data:`PHANTOM_TARGETS`, and one line per case saying how far it is."""
    lines, all_met = [], bool(cases)
    for row in cases:
        if row.get("status") != "ok":
            all_met = False
            lines.append(f"{row['case']}: not scored")
            continue
        error = abs(float(row["tumor_burden_pred"]) - float(row["tumor_burden_ref"]))
        met = (
            row["liver_dice"] >= PHANTOM_TARGETS["liver_dice"]
            and row["tumor_dice"] >= PHANTOM_TARGETS["tumor_dice"]
            and error <= PHANTOM_TARGETS["tumor_burden_error"]
        )
        all_met &= met
        lines.append(
            f"{row['case']}: liver Dice {row['liver_dice']:.3f} (>= {PHANTOM_TARGETS['liver_dice']}), tumor Dice "
            f"{row['tumor_dice']:.3f} (>= {PHANTOM_TARGETS['tumor_dice']}), burden error {error:.4f} "
            f"(<= {PHANTOM_TARGETS['tumor_burden_error']}): {'met' if met else 'NOT met'}"
        )
    return all_met, lines


def run_demo(
    out: Path,
    recipe: str = "demo",
    seed: int = 0,
    coarse_epochs: int | None = None,
    fine_epochs: int | None = None,
) -> int:
    """Run the ``recipe`` (:data:`RECIPES`) into ``out``; returns 0 on success (the process exit code).

    ``coarse_epochs`` / ``fine_epochs``: None keeps the overlays' (the one place the epochs are set).
    """
    settings = RECIPES[recipe]
    num_cases, num_heldout, size = settings.num_cases, settings.num_heldout, settings.size
    epochs = {"coarse_epochs": coarse_epochs, "fine_epochs": fine_epochs}
    out = Path(out).resolve()
    started = time.time()
    if settings.with_sample:
        logger.info("0/4 a real CT with the released weights (log: %s)", out / "sample" / "inference.log")
        segment_sample(out / "sample")
    data_dir, heldout_dir = out / "data", out / "heldout"
    for folder in (data_dir, heldout_dir, out / "predictions", out / "models"):
        shutil.rmtree(folder, ignore_errors=True)
    logger.info("1/4 phantoms: %d for training and validation, %d held out", num_cases, num_heldout)
    write_phantom_dataset(data_dir, num_cases, seed=seed, size=size)
    heldout = write_phantom_dataset(heldout_dir, num_heldout, seed=seed, size=size, start_index=num_cases)
    save_preview_png(heldout[0], out / "heldout_preview.png")

    logger.info("2/4 training: coarse -> 2d -> hybrid -> joint (log: %s)", out / "train.log")
    run_bundle(
        ["train.yaml", *settings.overlays],
        phantom_training_overrides(out, data_dir, f"liver_tumor_{recipe}")
        | {key: str(value) for key, value in epochs.items() if value is not None},
        out / "train.log",
    )
    shutil.copy2(out / "models" / "model.pt", out / "model.pt")

    logger.info("3/4 inference on the held-out phantoms (log: %s)", out / "inference.log")
    run_bundle(
        ["inference.yaml"],
        {
            "bundle_root": str(out),
            "input": str(heldout_dir),
            "output_dir": str(out / "predictions"),
            "ckpt_path": str(out / "model.pt"),
            **DEMO_INFERENCE,
        },
        out / "inference.log",
    )

    logger.info("4/4 evaluation against the held-out labels")
    result = evaluate_folder(out / "predictions", heldout_dir, out_dir=out / "metrics")
    print(format_table(result))
    if recipe != "demo":
        met, lines = phantom_target_report(result.cases)
        print("\n".join(["targets per held-out phantom:", *lines]))
        write_json_atomic(
            {"all_met": met, "targets": PHANTOM_TARGETS, "cases": lines}, out / "metrics" / "targets.json"
        )
    logger.info("%s finished in %.0f s; everything is under %s", recipe, time.time() - started, out)
    return 0 if result.ok else 1

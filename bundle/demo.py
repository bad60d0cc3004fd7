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
from pathlib import Path

import nibabel as nib
import numpy as np

from bundle.commands import REPO_ROOT, run_bundle
from bundle.data import save_preview_png, write_phantom_dataset
from bundle.metrics.evaluate import evaluate_folder, format_table
from bundle.metrics.lits import dice

__all__ = ["DEMO_INFERENCE", "SAMPLE_CT", "run_demo", "segment_sample"]

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


def run_demo(
    out: Path,
    num_cases: int = 8,
    num_heldout: int = 2,
    seed: int = 0,
    size: int = 128,
    coarse_epochs: int | None = None,
    fine_epochs: int | None = None,
) -> int:
    """Run the demo into ``out``; returns 0 on success (the process exit code).

    ``coarse_epochs`` / ``fine_epochs``: None keeps configs/demo.yaml's (the one place the demo's epochs are set).
    """
    epochs = {"coarse_epochs": coarse_epochs, "fine_epochs": fine_epochs}
    out = Path(out).resolve()
    started = time.time()
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
        ["train.yaml", "demo.yaml"],
        {
            "bundle_root": str(out),
            "ckpt_dir": str(out / "models"),
            "output_dir": str(out / "eval"),
            "dataset_dir": str(data_dir),
            "num_folds": "4",
            "stage": "all",
            **{key: str(value) for key, value in epochs.items() if value is not None},
            "tracking": "mlflow",
            "experiment_name": "liver_tumor_demo",
        },
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
    logger.info("demo finished in %.0f s; everything is under %s", time.time() - started, out)
    return 0 if result.ok else 1

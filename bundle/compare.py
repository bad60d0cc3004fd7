"""The liver/tumor networks side by side: same phantoms, same fold, same patches and epochs, same CPU budget.

Every network of :data:`~bundle.networks.cascade.FINE_NETWORKS` is trained with the small presets
(``configs/train.yaml`` + ``configs/demo.yaml``, one ``python -m monai.bundle run`` process per stage, one log file
per run), then ``configs/inference.yaml`` segments held-out phantoms and the real labelled cases, and
:func:`~bundle.metrics.evaluate.evaluate_folder` scores them. So the comparison uses exactly the bundle's
transforms, engines, inference, post-processing and evaluation; only the network differs (and what its paper states
differently: DenseUNet-569's class weights, RA-UNet's Dice loss).

The coarse liver stage is the same for every network (same :class:`~bundle.networks.CoarseLiverNet`, data, seed
and epochs), so it is trained ONCE and shared: :func:`share_coarse_weights` takes the ``coarse.*`` tensors of that
checkpoint and the freshly initialised ``fine.*`` tensors of the network (seeded as the bundle seeds it) and
writes the complete state dict to ``<network ckpt>/coarse/model.pt``, which the next stage loads with
``strict=True`` as usual. Then the network's remaining stages run (:func:`~bundle.engines.stages_of`:
H-DenseUNet 2d → hybrid → joint, the others joint), each for ``fine_epochs`` epochs.

Outputs in ``out``: ``comparison.md`` (the command that reproduces it, the machine, the tables), ``comparison.csv``
(one row per network), ``comparison.json`` (rows, per-case metrics, settings), and per network
``runs/<network>/`` (checkpoints, ``*.log``, predictions, ``metrics*`` of :func:`evaluate_folder`).

Example::

    settings = CompareSettings(out=Path("runs/compare"), networks=("hdenseunet", "raunet"))
    run_comparison(settings)  # 0 when every network trained and was scored
"""

from __future__ import annotations

import csv
import io
import json
import logging
import math
import os
import platform
import re
import shlex
import shutil
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field, replace
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import torch
from monai.utils import set_determinism

from bundle.commands import REPO_ROOT, OverBudget, run_bundle
from bundle.data import write_phantom_dataset
from bundle.engines import latest_checkpoint, stages_of
from bundle.inference.report import write_json_atomic
from bundle.metrics.evaluate import EvaluationResult, evaluate_folder
from bundle.metrics.lits import lits_summary
from bundle.networks import DENSEUNET569_CLASS_WEIGHTS, FINE_NETWORKS, LiverTumorCascade

__all__ = [
    "PAPER_CLASS_WEIGHTS",
    "PAPER_LOSSES",
    "REAL_CASES",
    "TABLE_COLUMNS",
    "CompareSettings",
    "OverBudget",
    "RealCase",
    "adopt_last_epoch",
    "format_markdown",
    "inference_overrides",
    "network_row",
    "parameter_counts",
    "run_comparison",
    "share_coarse_weights",
    "stage_overrides",
    "write_tables",
]

logger = logging.getLogger(__name__)
NETWORK_SIZE = "small"  # the preset configs/demo.yaml trains

#: Class weights (background, liver, tumor) a network's own paper states; the others keep train.yaml's default.
PAPER_CLASS_WEIGHTS: dict[str, tuple[float, ...]] = {"denseunet569": tuple(DENSEUNET569_CLASS_WEIGHTS)}
#: train.yaml ``seg_loss`` of the networks whose paper trains with another loss than weighted cross-entropy
PAPER_LOSSES: dict[str, str] = {"raunet": "dice"}
#: ``fine_epochs`` of a last stage that trains until the budget ends (``fill_budget``): never reached
FILL_EPOCHS = 100_000


@dataclass(frozen=True)
class RealCase:
    """A real labelled CT of ``../shared/data/real``: image and label paths relative to that folder."""

    name: str
    image: str
    label: str
    tumor_labelled: bool  # False: liver only, a predicted tumor is not an error there


REAL_CASES = (
    RealCase("lits-resized", "nifti/lits-resized_volume.nii", "nifti/lits-resized_segmentation.nii", True),
    RealCase("dcmqi-3slice", "nifti/dcmqi-3slice_volume.nii.gz", "nifti/dcmqi-3slice_liver.nii.gz", False),
    RealCase("ts-ct-sm", "nifti/ts-ct-sm_volume.nii.gz", "nifti/ts-ct-sm_liver.nii.gz", False),
    RealCase("ts-ct", "nifti/ts-ct_volume.nii.gz", "nifti/ts-ct_liver.nii.gz", False),
)
#: ts-ct is left out by default: at the paper's coarse spacing (0.69 mm) its 3 mm volume becomes 530 × 440 × 336
#: voxels (366 × 303 × 168 at the small preset's 1 × 1 × 2 mm); ts-ct-sm is a 30-slice crop of the same CT.
DEFAULT_REAL_CASES = ("lits-resized", "dcmqi-3slice", "ts-ct-sm")
DEFAULT_REAL_DATA = REPO_ROOT.parent / "shared" / "data" / "real"

#: (key, title) of the summary table, in order.
TABLE_COLUMNS = (
    ("network", "network"),
    ("fine_parameters", "fine params"),
    ("total_parameters", "total params"),
    ("train_seconds", "train s"),
    ("phantom_liver_dice", "phantom liver Dice"),
    ("phantom_liver_dice_global", "phantom liver Dice global"),
    ("phantom_tumor_dice", "phantom tumor Dice"),
    ("phantom_tumor_dice_global", "phantom tumor Dice global"),
    ("phantom_seconds_per_case", "phantom infer s/case"),
    ("real_liver_dice", "real liver Dice"),
    ("real_liver_dice_global", "real liver Dice global"),
    ("real_tumor_dice", "real tumor Dice"),
    ("real_tumor_dice_global", "real tumor Dice global"),
    ("real_seconds_per_case", "real infer s/case"),
    ("status", "status"),
)


@dataclass
class CompareSettings:
    """What :func:`run_comparison` does; every field is a flag of ``scripts/compare.py``."""

    out: Path = Path("runs/compare")  # git-ignored, and outside demo/, which `make clean` removes
    networks: tuple[str, ...] = tuple(FINE_NETWORKS)
    num_cases: int = 6  # phantoms for training and validation
    num_heldout: int = 2  # phantoms never trained on
    size: int = 96  # phantom matrix (voxels in-plane)
    coarse_epochs: int = 30
    fine_epochs: int = 6  # per stage after the coarse one
    budget_minutes: float = 20.0  # training wall-clock limit per network (stages after the shared coarse one); 0: none
    fill_budget: bool = False  # every network's last stage trains until the budget ends (same CPU time for all)
    num_folds: int = 3
    fold: int = 0
    seed: int = 0  # phantoms and the datalist split
    patch_size: tuple[int, int, int] = (96, 96, 12)
    real_data: Path | None = DEFAULT_REAL_DATA
    real_cases: tuple[str, ...] = DEFAULT_REAL_CASES

    def __post_init__(self) -> None:
        unknown = sorted(set(self.networks) - set(FINE_NETWORKS))
        if unknown or not self.networks:
            raise ValueError(f"networks must be among {sorted(FINE_NETWORKS)}, got {list(self.networks)}")
        if self.fill_budget and self.budget_minutes <= 0:
            raise ValueError("fill_budget needs a budget: budget_minutes > 0")
        unknown = sorted(set(self.real_cases) - {c.name for c in REAL_CASES})
        if unknown:
            raise ValueError(f"unknown real cases {unknown}; choose among {[c.name for c in REAL_CASES]}")

    def command(self) -> str:
        """The ``scripts/compare.py`` command line that reproduces this comparison, every setting spelled out."""
        flags = {
            "--out": self.out,
            "--networks": ",".join(self.networks),
            "--cases": self.num_cases,
            "--heldout": self.num_heldout,
            "--size": self.size,
            "--coarse-epochs": self.coarse_epochs,
            "--fine-epochs": self.fine_epochs,
            "--budget-minutes": f"{self.budget_minutes:g}",
            "--num-folds": self.num_folds,
            "--fold": self.fold,
            "--seed": self.seed,
            "--real-data": self.real_data or "",
            "--real-cases": ",".join(self.real_cases),
        }
        args = ["python", "scripts/compare.py", *(str(a) for pair in flags.items() for a in pair)]
        if self.fill_budget:
            args.append("--fill-budget")
        return shlex.join(args)


def _list(values: Sequence[Any]) -> str:
    return "[" + ",".join(f"{v:g}" if isinstance(v, float) else str(v) for v in values) + "]"


def stage_overrides(settings: CompareSettings, network: str, stage: str) -> dict[str, str]:
    """Command-line overrides of train.yaml + demo.yaml for one training stage of ``network``.

    Every network gets the same data, fold, split seed, patch size and epochs; ``class_weights`` is set for the
    liver/tumor stages of the networks in :data:`PAPER_CLASS_WEIGHTS` only, ``seg_loss`` for those in
    :data:`PAPER_LOSSES` (RA-UNet: Dice).
    """
    run = settings.out / "runs" / network
    overrides = {
        "bundle_root": str(run),
        "ckpt_dir": str(run / "models"),
        "output_dir": str(run / "eval"),
        "dataset_dir": str(settings.out / "data"),
        "num_folds": str(settings.num_folds),
        "fold": str(settings.fold),
        "split_seed": str(settings.seed),
        "network_size": NETWORK_SIZE,
        "network_name": network,
        "patch_size": _list(settings.patch_size),
        "coarse_epochs": str(settings.coarse_epochs),
        "fine_epochs": str(settings.fine_epochs),
        "stage": stage,
    }
    if stage != "coarse" and network in PAPER_CLASS_WEIGHTS:
        overrides["class_weights"] = _list(PAPER_CLASS_WEIGHTS[network])
    if stage != "coarse" and network in PAPER_LOSSES:
        overrides["seg_loss"] = PAPER_LOSSES[network]
    return overrides


def inference_overrides(
    settings: CompareSettings, network: str, ckpt: Path, input_dir: Path, output_dir: Path
) -> dict[str, str]:
    """Command-line overrides of inference.yaml for ``network``'s final model on the images of ``input_dir``."""
    return {
        "bundle_root": str(settings.out / "runs" / network),
        "input": str(input_dir),
        "output_dir": str(output_dir),
        "ckpt_path": str(ckpt),
        "network_size": NETWORK_SIZE,
        "network_name": network,
        "patch_size": _list(settings.patch_size),
        "num_workers": "0",
    }


def _state_dict(path: Path) -> dict[str, torch.Tensor]:
    """The model state dict of a checkpoint: saved bare (CheckpointSaver of one object) or under ``model``."""
    checkpoint = torch.load(path, map_location="cpu", weights_only=True)
    return checkpoint["model"] if "model" in checkpoint and isinstance(checkpoint["model"], dict) else checkpoint


def share_coarse_weights(coarse_ckpt: Path, network: str, dest: Path, seed: int = 0) -> Path:
    """Write ``dest``: the ``coarse.*`` tensors of ``coarse_ckpt`` + ``network``'s initial ``fine.*`` tensors.

    The fine network is initialised as the bundle does (``set_determinism(seed)``, then the cascade), so the
    checkpoint is what ``network``'s own coarse stage would have written, its coarse weights aside.

    Raises:
        ValueError: ``coarse_ckpt`` lacks coarse tensors the cascade has, or has others.
    """
    coarse = {k: v for k, v in _state_dict(coarse_ckpt).items() if k.startswith("coarse.")}
    set_determinism(seed=seed)
    cascade = LiverTumorCascade(size=NETWORK_SIZE, network_name=network, stage="coarse")
    missing, unexpected = cascade.load_state_dict(coarse, strict=False)
    missing = [k for k in missing if k.startswith("coarse.")]
    if missing or unexpected:
        raise ValueError(
            f"{coarse_ckpt} does not fit {network}'s coarse network: missing {missing[:3]}, unexpected {unexpected[:3]}"
        )
    dest.parent.mkdir(parents=True, exist_ok=True)
    torch.save(cascade.state_dict(), dest)
    return dest


def adopt_last_epoch(models_dir: Path) -> int | None:
    """Make the newest ``checkpoint_epoch=N.pt`` of ``models_dir`` (a stopped final stage) its ``model.pt``.

    Returns N, or None when the folder has no such checkpoint.
    """
    last = latest_checkpoint(str(models_dir))
    if last is None:
        return None
    torch.save(_state_dict(Path(last)), Path(models_dir) / "model.pt")
    return int(re.search(r"=(\d+)\.pt$", last)[1])


def parameter_counts(network: str) -> dict[str, int]:
    """``fine_parameters`` (the liver/tumor network) and ``total_parameters`` (with the coarse network)."""
    cascade = LiverTumorCascade(size=NETWORK_SIZE, network_name=network)
    fine = sum(p.numel() for p in cascade.fine.parameters())
    return {"fine_parameters": fine, "total_parameters": sum(p.numel() for p in cascade.parameters())}


def _prepare_real(settings: CompareSettings) -> tuple[Path, Path, set[str]] | None:
    """``(images, labels, tumor-labelled case names)``: links to the chosen real cases; None if the folder is absent."""
    if settings.real_data is None or not Path(settings.real_data).is_dir():
        logger.warning("real labelled cases not found at %s: phantoms only", settings.real_data)
        return None
    images, labels = settings.out / "real" / "images", settings.out / "real" / "labels"
    for folder in (images, labels):
        shutil.rmtree(folder, ignore_errors=True)
        folder.mkdir(parents=True)
    tumor = set()
    for case in (c for c in REAL_CASES if c.name in settings.real_cases):
        image, label = Path(settings.real_data) / case.image, Path(settings.real_data) / case.label
        if not (image.is_file() and label.is_file()):
            logger.warning("real case %s missing in %s: skipped", case.name, settings.real_data)
            continue
        for source, folder in ((image, images), (label, labels)):  # <case>.nii[.gz]: one case name for both
            suffix = ".nii.gz" if source.name.endswith(".nii.gz") else ".nii"
            (folder / f"{case.name}{suffix}").symlink_to(source.resolve())
        if case.tumor_labelled:
            tumor.add(case.name)
    return (images, labels, tumor) if any(images.iterdir()) else None


_ENGINE_TIME = re.compile(r"SupervisedEvaluator - INFO - Engine run finished\. Time taken: (\d+):(\d+):([\d.]+)")


def _engine_seconds(log_path: Path) -> float | None:
    """The inference engine's run time from its log (without process start-up), or None."""
    match = _ENGINE_TIME.search(log_path.read_text(errors="replace"))
    return int(match[1]) * 3600 + int(match[2]) * 60 + float(match[3]) if match else None


def _infer_and_score(
    settings: CompareSettings, network: str, images: Path, labels: Path, name: str
) -> tuple[EvaluationResult, float]:
    """Inference on the images of ``images`` with ``network``'s final model, scored against ``labels``.

    Returns the evaluation and the inference seconds per case (engine time, else wall-clock, over the cases).
    """
    run = settings.out / "runs" / network
    predictions = run / f"predictions_{name}"
    shutil.rmtree(predictions, ignore_errors=True)
    log = run / f"inference_{name}.log"
    overrides = inference_overrides(settings, network, run / "models" / "model.pt", images, predictions)
    wall = run_bundle(["inference.yaml"], overrides, log)
    result = evaluate_folder(predictions, labels, out_dir=run / f"metrics_{name}")
    num_cases = max(1, len(result.cases))
    return result, (_engine_seconds(log) or wall) / num_cases


def _dice_summary(result: EvaluationResult | None, prefix: str, tumor_cases: set[str] | None = None) -> dict:
    """Liver and tumor Dice (per case mean, global) of ``result``; tumor only over ``tumor_cases`` if given."""
    nan = math.nan
    keys = ("liver_dice", "liver_dice_global", "tumor_dice", "tumor_dice_global")
    if result is None:
        return {f"{prefix}_{k}": nan for k in keys}
    scored = [c for c in result.cases if c["status"] == "ok"]
    liver = lits_summary(scored) if scored else {}
    with_tumor = [c for c in scored if tumor_cases is None or c["case"] in tumor_cases]
    tumor = lits_summary(with_tumor) if with_tumor else {}
    return {f"{prefix}_{k}": float((liver if k.startswith("liver") else tumor).get(k, nan)) for k in keys}


def network_row(
    network: str,
    counts: dict[str, int],
    train_seconds: float | None,
    phantom: tuple[EvaluationResult, float] | None,
    real: tuple[EvaluationResult, float] | None,
    tumor_cases: set[str] | None = None,
    status: str = "ok",
) -> dict[str, Any]:
    """One row of the comparison table (NaN where nothing was measured)."""
    nan = math.nan
    row: dict[str, Any] = {
        "network": network,
        **counts,
        "train_seconds": nan if train_seconds is None else train_seconds,
    }
    row |= _dice_summary(phantom[0] if phantom else None, "phantom")
    row["phantom_seconds_per_case"] = phantom[1] if phantom else nan
    row |= _dice_summary(real[0] if real else None, "real", tumor_cases)
    row["real_seconds_per_case"] = real[1] if real else nan
    failed = [c["case"] for r in (phantom, real) if r for c in r[0].cases if c["status"] != "ok"]
    row["status"] = f"scoring failed: {', '.join(failed)}" if failed and status.startswith("ok") else status
    return row


def _cell(value: Any) -> str:
    if isinstance(value, float):
        return "–" if math.isnan(value) else f"{value:.1f}" if abs(value) >= 10 else f"{value:.3f}"
    if isinstance(value, int):
        return f"{value:,}"
    return str(value).replace("|", "\\|").replace("\n", " ")


def format_markdown(rows: list[dict[str, Any]], command: str, context: list[str], case_rows: list[dict]) -> str:
    """The Markdown report: the reproducing command first, then ``context`` lines, the table, per-case Dice."""
    lines = ["# Liver/tumor networks compared (small presets, CPU)", "", "Reproduce with:", "", "```", command, "```"]
    lines += ["", *context, ""]
    lines += ["| " + " | ".join(title for _, title in TABLE_COLUMNS) + " |"]
    lines += ["|" + "|".join("---" for _ in TABLE_COLUMNS) + "|"]
    lines += ["| " + " | ".join(_cell(row.get(key, "")) for key, _ in TABLE_COLUMNS) + " |" for row in rows]
    if case_rows:
        cases = sorted({c["case"] for c in case_rows})
        lines += ["", "Liver Dice / tumor Dice per case:", ""]
        lines += ["| network | " + " | ".join(cases) + " |", "|---|" + "---|" * len(cases)]
        for row in rows:
            found = {c["case"]: c for c in case_rows if c["network"] == row["network"]}
            cells = [
                f"{_cell(found[c]['liver_dice'])} / {_cell(found[c]['tumor_dice'])}" if c in found else "–"
                for c in cases
            ]
            lines.append(f"| {row['network']} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def write_tables(
    rows: list[dict[str, Any]], out: Path, command: str, context: list[str], case_rows: list[dict], extra: dict
) -> dict[str, Path]:
    """``comparison.md``, ``comparison.csv`` and ``comparison.json`` in ``out``; their paths."""
    out.mkdir(parents=True, exist_ok=True)
    paths = {"md": out / "comparison.md", "csv": out / "comparison.csv", "json": out / "comparison.json"}
    paths["md"].write_text(format_markdown(rows, command, context, case_rows), encoding="utf-8")
    buffer = io.StringIO()
    writer = csv.DictWriter(
        buffer, fieldnames=[k for k, _ in TABLE_COLUMNS], extrasaction="ignore", lineterminator="\n"
    )
    writer.writeheader()
    writer.writerows(rows)
    paths["csv"].write_text(buffer.getvalue(), encoding="utf-8")
    clean = json.loads(json.dumps({"command": command, "rows": rows, "cases": case_rows, **extra}, default=str))
    write_json_atomic(clean, paths["json"])
    return paths


@dataclass
class _Shared:
    """What every network's run reuses: the coarse checkpoint, the held-out and real case folders."""

    coarse_ckpt: Path
    coarse_seconds: float
    heldout: Path
    real: tuple[Path, Path, set[str]] | None
    case_rows: list[dict] = field(default_factory=list)


def _train_network(settings: CompareSettings, network: str, shared: _Shared) -> tuple[float, str]:
    """The stages after the coarse one, from the shared coarse weights, within the budget.

    Returns the wall-clock seconds and ``"ok"``, or, when the budget ends during the last stage after at least
    one epoch of it, ``"over budget: ..."`` with that epoch's model as the final model (a same-budget result).
    With ``fill_budget`` the last stage runs until the budget ends, and the status is ``"ok: budget filled, ..."``.

    Raises:
        RuntimeError: a stage failed, or the budget ended before the last stage had finished an epoch.
    """
    run = settings.out / "runs" / network
    shutil.rmtree(run, ignore_errors=True)
    share_coarse_weights(shared.coarse_ckpt, network, run / "models" / "coarse" / "model.pt")
    budget, spent = settings.budget_minutes * 60.0, 0.0
    stages = stages_of(network)[1:]
    for stage in stages:
        logger.info("  %s: stage %s (log: %s)", network, stage, run / f"train_{stage}.log")
        overrides = stage_overrides(settings, network, stage)
        filling = settings.fill_budget and stage == stages[-1]
        if filling:
            overrides["fine_epochs"] = str(FILL_EPOCHS)
        left = max(budget - spent, 1.0) if budget > 0 else None  # a budget of 0: no limit
        try:
            spent += run_bundle(["train.yaml", "demo.yaml"], overrides, run / f"train_{stage}.log", left)
        except OverBudget:
            epoch = adopt_last_epoch(run / "models") if stage == stages[-1] else None
            if epoch is None:
                raise
            if filling:
                return budget, f"ok: budget filled, {stage} stage stopped after epoch {epoch}"
            return budget, f"over budget: {stage} stage stopped after epoch {epoch} of {settings.fine_epochs}"
    return spent, "ok"


def _compare_one(settings: CompareSettings, network: str, shared: _Shared) -> dict[str, Any]:
    counts = parameter_counts(network)
    try:
        train_seconds, status = _train_network(settings, network, shared)
    except Exception as err:  # one failing network must not stop the others
        logger.error("%s: training failed: %s", network, err)
        return network_row(network, counts, None, None, None, status=f"training failed: {str(err).splitlines()[0]}")
    logger.info("  %s: trained in %.0f s; inference on held-out phantoms", network, train_seconds)
    try:
        phantom = _infer_and_score(settings, network, shared.heldout, shared.heldout, "phantoms")
        real = None
        if shared.real is not None:
            logger.info("  %s: inference on the real cases", network)
            real = _infer_and_score(settings, network, shared.real[0], shared.real[1], "real")
    except Exception as err:
        logger.error("%s: inference failed: %s", network, err)
        status = f"inference failed: {str(err).splitlines()[0]}"
        return network_row(network, counts, train_seconds, None, None, status=status)
    tumor_cases = shared.real[2] if shared.real else None
    shared.case_rows += _case_rows(network, phantom[0], None)
    shared.case_rows += _case_rows(network, real[0], tumor_cases) if real else []
    return network_row(network, counts, train_seconds, phantom, real, tumor_cases, status)


def _case_rows(network: str, result: EvaluationResult, tumor_cases: set[str] | None) -> list[dict[str, Any]]:
    """Per-case Dice of one network; tumor Dice NaN for cases without tumor labels (not in ``tumor_cases``)."""
    rows = []
    for case in result.cases:
        row = {"network": network, **{k: case.get(k, math.nan) for k in ("case", "status", "liver_dice")}}
        labelled = tumor_cases is None or case["case"] in tumor_cases
        row["tumor_dice"] = case.get("tumor_dice", math.nan) if labelled else math.nan
        rows.append(row)
    return rows


def _schedule(settings: CompareSettings) -> str:
    """How the stages after the coarse one were trained, in words."""
    if settings.fill_budget:
        return (
            f"the same wall-clock budget for every network, {settings.budget_minutes:g} min: H-DenseUNet's 2d and "
            f"hybrid stages ({settings.fine_epochs} epochs each), then its joint stage, and the others' joint stage, "
            "until the budget ends; each is scored with its last epoch (`train s` = the budget; the status gives "
            "the epochs)."
        )
    return (
        f"H-DenseUNet's 2d, hybrid and joint stages, the others' joint stage, {settings.fine_epochs} epochs each "
        "(so H-DenseUNet trains 3× as many fine epochs). `train s` = those stages' wall-clock, at most "
        f"{settings.budget_minutes:g} min per network (a network stopped by that budget during its last stage is "
        "scored with its last epoch; the status says so)."
    )


def _context(settings: CompareSettings, shared: _Shared, started: datetime) -> list[str]:
    machine = f"{platform.machine()} {platform.processor() or ''}".strip()
    real = ", ".join(sorted(p.name.split(".")[0] for p in shared.real[0].iterdir())) if shared.real else "none"
    tumor = ", ".join(sorted(shared.real[2])) if shared.real and shared.real[2] else "none"
    weights = "; ".join(f"{k} {_list(v)} (its paper)" for k, v in PAPER_CLASS_WEIGHTS.items())
    return [
        f"Run {started:%Y-%m-%d %H:%M} UTC on {machine}, {os.cpu_count()} CPU cores, Python "
        f"{platform.python_version()}, torch {torch.__version__} (shared machine: timings are noisy).",
        "",
        f"Data: {settings.num_cases} CT phantoms of {settings.size}² voxels (seed {settings.seed}), fold "
        f"{settings.fold} of {settings.num_folds} for validation; {settings.num_heldout} held-out phantoms; real "
        f"labelled cases: {real}. Small presets (configs/demo.yaml: Adam lr 1e-3), patches "
        f"{'×'.join(map(str, settings.patch_size))}, same split and seed for every network.",
        "",
        f"Training: the coarse liver stage ({settings.coarse_epochs} epochs, {shared.coarse_seconds:.0f} s) ran once "
        f"and its weights start every network; then {_schedule(settings)} Class weights: train.yaml's "
        f"[0.78,0.65,8.57], except {weights}.",
        "",
        "Dice: per case, then the mean over cases; `global` = 2·Σ|P∩R| / Σ(|P|+|R|) over the cases. Real tumor Dice "
        f"only over the cases with tumor labels ({tumor}); the other real labels are liver only. `infer s/case`"
        " = configs/inference.yaml's engine time (load, cascade, post-processing, writing) over the cases.",
    ]


def run_comparison(settings: CompareSettings) -> int:
    """Train, infer and score every network of ``settings``; write the tables. 0 when every network is scored."""
    command = settings.command()
    settings = replace(settings, out=Path(settings.out).resolve())  # the runs work from the repository root
    out = settings.out
    started, clock = datetime.now(timezone.utc), time.perf_counter()
    logger.info("comparison of %s into %s", ", ".join(settings.networks), out)
    for folder in ("data", "heldout", "runs", "coarse"):
        shutil.rmtree(out / folder, ignore_errors=True)
    logger.info("phantoms: %d for training and validation, %d held out", settings.num_cases, settings.num_heldout)
    write_phantom_dataset(out / "data", settings.num_cases, seed=settings.seed, size=settings.size)
    write_phantom_dataset(
        out / "heldout", settings.num_heldout, seed=settings.seed, size=settings.size, start_index=settings.num_cases
    )
    logger.info("shared coarse stage, %d epochs (log: %s)", settings.coarse_epochs, out / "coarse" / "train.log")
    coarse = stage_overrides(settings, settings.networks[0], "coarse")
    coarse |= {"bundle_root": str(out / "coarse"), "ckpt_dir": str(out / "coarse"), "output_dir": str(out / "coarse")}
    coarse_seconds = run_bundle(["train.yaml", "demo.yaml"], coarse, out / "coarse" / "train.log")
    shared = _Shared(out / "coarse" / "coarse" / "model.pt", coarse_seconds, out / "heldout", _prepare_real(settings))
    rows = []
    for index, network in enumerate(settings.networks, 1):
        logger.info("[%d/%d] %s (%.0f s so far)", index, len(settings.networks), network, time.perf_counter() - clock)
        rows.append(_compare_one(settings, network, shared))
        extra = {"settings": asdict(settings), "coarse_seconds": coarse_seconds, "started": started.isoformat()}
        paths = write_tables(rows, out, command, _context(settings, shared, started), shared.case_rows, extra)
    logger.info("comparison finished in %.0f s: %s", time.perf_counter() - clock, paths["md"])
    print(paths["md"].read_text(encoding="utf-8"))
    return 0 if all(row["status"].startswith("ok") for row in rows) else 1

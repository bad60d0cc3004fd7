"""The datalist of the real-CT recipe (``configs/real_ct.yaml``): phantoms plus the real cases of ``shared/data/real``.

Real CT with labels is scarce here, so the recipe trains on every real case that suits it, marks which ones have
tumors labelled, and keeps phantoms (generated on first use, deterministic) for tumors and for validation:

==========================  ========================================  ===============  ======================
case                        what                                      tumors labelled  used for
==========================  ========================================  ===============  ======================
``ircadb/3Dircadb1.N``      3D-IRCADb-01, expert liver + tumor masks  yes              training, or held out
``dicom/ts_ct_dicom``       TotalSegmentator DICOM slab, 20 slices    no (model's)     training
phantoms ``volume-N``       generated CT, liver + tumors              yes              training (liver stages)
held-out phantoms           two more, never trained on                yes              validation (curves)
==========================  ========================================  ===============  ======================

Left out on purpose: ``nifti/ts-ct`` (the sample CT ``make demo`` segments: kept unseen), ``ts-ct-sm`` (a crop of
it), ``lits-resized`` (its header spacing is stale after resizing, so its anatomy has the wrong size in mm),
``dcmqi`` (3 slices, −3024 padding) and the MR image.

The phantoms are drawn in contrast phases from near-unenhanced to portal venous (``phantom_enhancement``, liver
50-135 HU; :data:`~bundle.data.phantom.PORTAL_VENOUS_HU`), with hypodense tumors 10-90 HU below the liver: real
liver CT is mostly portal venous (3D-IRCADb-01: liver 112-120 HU, tumors 72-96 HU), and phantoms made only with an
unenhanced liver (50-80 HU) and very dark tumors (10-40 HU) taught a tumor network that found none of a real
patient's seven tumors (fold A of 2026-12-02). The coarse stage trains on the real cases only: with the unenhanced
phantoms it learned "liver = 50-80 HU" and marked stomach and kidney instead of a real patient's liver (measured on
3Dircadb1.1 held out: coarse liver Dice 0.18).

``holdout`` names real patients to leave out of training entirely (leave-one-patient-out validation): they are
returned under ``"heldout"`` for scoring the whole cascade afterwards, and never used to pick checkpoints (the
validation list is phantoms only), so no figure on them is tuned to them. Real cases are listed ``real_repeats``
times in ``training`` so that each epoch draws as many patches from them as from the phantoms.
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Sequence
from pathlib import Path

from .datalist import find_cases
from .ircadb import find_ircadb_cases
from .phantom import write_phantom_dataset
from .phantom.tissues import enhancement_range

__all__ = ["ensure_phantoms", "real_ct_cases", "real_ct_datalist"]

logger = logging.getLogger(__name__)


PHANTOM_SETTINGS = "phantom_settings.json"  # beside the phantoms: what they were generated with


def ensure_phantoms(
    folder: str | os.PathLike,
    num_cases: int,
    size: int = 512,
    start_index: int = 0,
    enhancement: Sequence[float] | float = 0.0,
) -> list[dict]:
    """The phantoms ``volume-N`` of ``folder`` (LiTS layout), generated first if any is missing or if they were made
    with other settings (``phantom_settings.json``; seed 0, so the same files on every machine). ``enhancement``:
    contrast phase or range, see :func:`~bundle.data.phantom.make_phantom`. Returns their cases (``case_id``,
    ``image``, ``label``)."""
    folder = Path(folder)
    enhancement = list(enhancement_range(enhancement if isinstance(enhancement, (int, float)) else tuple(enhancement)))
    settings = {"seed": 0, "size": int(size), "enhancement": enhancement}
    wanted = {str(n) for n in range(start_index, start_index + num_cases)}
    found = {c["case_id"]: c for c in find_cases(folder)} if folder.is_dir() and any(folder.iterdir()) else {}
    marker = folder / PHANTOM_SETTINGS
    made_with = json.loads(marker.read_text()) if marker.is_file() else settings | {"enhancement": [0.0, 0.0]}
    if not wanted <= set(found) or made_with != settings:
        logger.info("generating %d phantoms (%d px, enhancement %s) in %s", num_cases, size, enhancement, folder)
        write_phantom_dataset(folder, num_cases, seed=0, size=size, start_index=start_index, enhancement=enhancement)
        marker.write_text(json.dumps(settings))
        found = {c["case_id"]: c for c in find_cases(folder)}
    return [found[n] for n in sorted(wanted, key=int)]


def real_ct_cases(real_dir: str | os.PathLike) -> list[dict]:
    """The real training cases of ``real_dir`` (``shared/data/real``'s layout; see the module docstring), each with
    ``case_id``, ``image``, ``label``, ``tumor_labelled``. Cases whose files are absent are skipped with a log line;
    none found is an error."""
    root = Path(real_dir).expanduser().resolve()
    cases: list[dict] = []
    if (root / "ircadb").is_dir():
        cases += [{**c, "tumor_labelled": True} for c in find_ircadb_cases(root / "ircadb")]
    slab, slab_label = root / "dicom" / "ts_ct_dicom", root / "dicom" / "ts_ct_dicom_liver.nii.gz"
    if slab.is_dir() and slab_label.is_file():
        cases.append({"case_id": "ts_ct_dicom", "image": str(slab), "label": str(slab_label), "tumor_labelled": False})
    else:
        logger.info("no TotalSegmentator DICOM slab in %s: skipped", root / "dicom")
    if not cases:
        raise FileNotFoundError(f"no real CT cases in {root}: expected ircadb/3Dircadb1.N/ or dicom/ts_ct_dicom/")
    return cases


def _entry(case: dict) -> dict:
    return {"image": case["image"], "label": case["label"], "tumor_labelled": bool(case.get("tumor_labelled", True))}


def real_ct_datalist(
    real_dir: str | os.PathLike,
    phantom_dir: str | os.PathLike,
    holdout: Sequence[str] | str = (),
    num_phantoms: int = 6,
    num_val_phantoms: int = 2,
    phantom_size: int = 512,
    real_repeats: int = 2,
    stage: str = "joint",
    coarse_repeats: int = 5,
    phantom_enhancement: Sequence[float] | float = 0.0,
) -> dict:
    """``{"training", "validation", "heldout"}`` lists for ``configs/real_ct.yaml``.

    Args:
        real_dir: ``shared/data/real`` (or a folder of the same layout).
        phantom_dir: where the phantoms are (generated on first use).
        holdout: ``case_id`` s of real patients to leave out (e.g. ``"3Dircadb1.1"``); unknown names are an error.
        num_phantoms: phantoms to train on.
        num_val_phantoms: further phantoms for validation (checkpoint choice).
        phantom_size: in-plane matrix of the phantoms (512: LiTS-like 0.6-0.9 mm voxels).
        real_repeats: how many times each real case is listed in ``training`` (liver stages).
        stage: the training stage; ``"coarse"`` trains on the real cases only, each listed ``coarse_repeats`` times.
        coarse_repeats: how many times each real case is listed in ``training`` for the coarse stage.
        phantom_enhancement: the phantoms' contrast phase, a value or a ``(low, high)`` range drawn per case
            (0: liver 50-80 HU, 1: portal venous, liver 100-135 HU; :func:`~bundle.data.phantom.make_phantom`).
    """
    held = [holdout] if isinstance(holdout, str) else [h for h in holdout if h]
    real = real_ct_cases(real_dir)
    unknown = sorted(set(held) - {c["case_id"] for c in real})
    if unknown:
        raise ValueError(f"holdout {unknown} not among the real cases {[c['case_id'] for c in real]}")
    phantoms = ensure_phantoms(
        phantom_dir, num_phantoms + num_val_phantoms, size=phantom_size, enhancement=phantom_enhancement
    )
    train_real = [c for c in real if c["case_id"] not in held]
    if stage == "coarse":
        training = [_entry(c) for c in train_real] * coarse_repeats
    else:
        training = [_entry(c) for c in phantoms[:num_phantoms]] + [_entry(c) for c in train_real] * real_repeats
    logger.info(
        "real-CT datalist (%s stage): training %s x%d + %d phantoms; validation %d phantoms; held out %s",
        stage,
        [c["case_id"] for c in train_real],
        coarse_repeats if stage == "coarse" else real_repeats,
        0 if stage == "coarse" else num_phantoms,
        num_val_phantoms,
        held or "none",
    )
    return {
        "training": training,
        "validation": [_entry(c) for c in phantoms[num_phantoms:]],
        "heldout": [_entry(c) | {"case_id": c["case_id"]} for c in real if c["case_id"] in held],
    }

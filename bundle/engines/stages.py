"""The order of the training stages and how weights pass between them.

Li et al. (section III-C-2) train in stages; the released code never said in which order or how weights pass
on. Here every stage trains part of ONE module, :class:`~bundle.networks.cascade.LiverTumorCascade`, and
starts from the whole state dict the previous stage saved:

====== ========================================================= ======================== =====================
stage  trains                                                    starts from              writes
====== ========================================================= ======================== =====================
coarse coarse liver network, volumes at ``coarse_spacing``       random init              ``<ckpt_dir>/coarse``
2d     2D DenseUNet-167 on 3-slice stacks in the liver ROI       ``<ckpt_dir>/coarse``    ``<ckpt_dir>/2d``
hybrid 3D DenseUNet-65 + HFF, 2D branch frozen                   ``<ckpt_dir>/2d``        ``<ckpt_dir>/hybrid``
joint  everything, loss λ·L(y, ŷ2d′) + L(y, ŷH), λ = 0.5         ``<ckpt_dir>/hybrid``    ``<ckpt_dir>`` (final)
====== ========================================================= ======================== =====================

Each stage keeps its best model (validation key metric) as ``model.pt`` in its folder; the joint stage writes
``<ckpt_dir>/model.pt``, the file inference, MONAI Label and the model zoo load. The other seed networks
(``network_name`` other than ``hdenseunet``) have no 2d or hybrid stage: coarse, then joint.
"""

from __future__ import annotations

import json
import logging
import os
import re
import subprocess
import sys
from pathlib import Path

from ignite.engine import Engine

from bundle.config_values import as_bool

__all__ = [
    "STAGE_COMPLETE",
    "STAGE_ORDER",
    "init_checkpoint",
    "latest_checkpoint",
    "run_training",
    "stage_checkpoint_dir",
    "stages_of",
]

logger = logging.getLogger(__name__)

STAGE_ORDER = ("coarse", "2d", "hybrid", "joint")


def stages_of(network_name: str = "hdenseunet") -> tuple[str, ...]:
    """The stages of a liver/tumor network, in training order."""
    return STAGE_ORDER if network_name == "hdenseunet" else (STAGE_ORDER[0], STAGE_ORDER[-1])


def _check(stage: str, network_name: str = "hdenseunet") -> None:
    if stage not in stages_of(network_name):
        raise ValueError(
            f"unknown stage {stage!r} for {network_name}: choose one of {stages_of(network_name)} or 'all'"
        )


def stage_checkpoint_dir(ckpt_dir: str, stage: str) -> str:
    """Where ``stage`` writes its checkpoints: ``<ckpt_dir>/<stage>``, or ``<ckpt_dir>`` for the final stage."""
    _check(stage)
    return str(ckpt_dir) if stage == STAGE_ORDER[-1] else os.path.join(str(ckpt_dir), stage)


def init_checkpoint(ckpt_dir: str, stage: str, network_name: str = "hdenseunet") -> str | None:
    """The best model of the stage before ``stage`` (``None`` for the first stage)."""
    _check(stage, network_name)
    order = stages_of(network_name)
    index = order.index(stage)
    if index == 0:
        return None
    return os.path.join(stage_checkpoint_dir(ckpt_dir, order[index - 1]), "model.pt")


def require_file(path: str | None, what: str) -> str | None:
    """``path`` if it exists (or is ``None``), else a ``FileNotFoundError`` that says which stage to run first."""
    if path is not None and not Path(path).is_file():
        raise FileNotFoundError(f"{what} not found: {path}. Run the previous stage first (see docs/README.md).")
    return path


def latest_checkpoint(folder: str) -> str | None:
    """The newest resumable checkpoint ``checkpoint_epoch=N.pt`` / ``checkpoint_iteration=N.pt`` in ``folder``."""
    pattern = re.compile(r"checkpoint_(?:epoch|iteration)=(\d+)\.pt$")
    found = [(int(m.group(1)), p) for p in Path(folder).glob("checkpoint_*.pt") if (m := pattern.search(p.name))]
    return str(max(found)[1]) if found else None


#: written into a stage's folder when the stage has finished, so that ``--stage all --resume true`` skips it
STAGE_COMPLETE = "stage_complete.json"


def run_training(
    stage: str,
    trainer: Engine,
    network_name: str = "hdenseunet",
    ckpt_dir: str | None = None,
    resume: bool | str = False,
) -> None:
    """Run one stage, or with ``stage="all"`` every stage in order, each in a fresh ``monai.bundle run`` process.

    ``"all"`` re-runs the command line that started this process once per stage with ``--stage <name>``, so every
    other override (dataset, network size, epochs, tracking) reaches every stage, and memory is released between
    stages. It therefore needs the ``python -m monai.bundle run ...`` command line. Each finished stage leaves
    :data:`STAGE_COMPLETE` in its folder; with ``resume`` (and ``ckpt_dir``), ``"all"`` skips finished stages,
    resumes the interrupted one from its last epoch checkpoint and starts the others afresh, so one command
    continues a long training after any stop.
    """
    if stage != "all":
        _check(stage, network_name)
        trainer.run()
        if ckpt_dir is not None and trainer.state.epoch >= trainer.state.max_epochs:
            marker = Path(stage_checkpoint_dir(ckpt_dir, stage)) / STAGE_COMPLETE
            marker.write_text(json.dumps({"stage": stage, "epochs": trainer.state.epoch}) + "\n")
        return
    main = Path(sys.argv[0]).as_posix() if sys.argv else ""
    if not main.endswith("monai/bundle/__main__.py"):
        raise RuntimeError(
            "stage 'all' runs from the command line (python -m monai.bundle run --config_file configs/train.yaml "
            "--stage all ...); from Python, run the stages in order: " + ", ".join(STAGE_ORDER)
        )
    args = _without(_without(sys.argv[1:], "--stage"), "--resume")
    resume = as_bool(resume, "resume")
    if resume and ckpt_dir is None:
        raise ValueError("--stage all --resume true needs ckpt_dir")
    order = stages_of(network_name)
    for name in order:
        folder = Path(stage_checkpoint_dir(ckpt_dir, name)) if ckpt_dir is not None else None
        if resume and folder is not None and (folder / STAGE_COMPLETE).is_file():
            logger.info("=== stage %s finished before: skipped (--resume) ===", name)
            continue
        again = resume and folder is not None and latest_checkpoint(str(folder)) is not None
        position = f"{order.index(name) + 1} of {len(order)}"
        logger.info("=== training stage %s (%s)%s ===", name, position, " resumed" if again else "")
        command = [sys.executable, "-m", "monai.bundle", *args, "--stage", name, "--resume", str(again)]
        subprocess.run(command, check=True)


def _without(args: list[str], option: str) -> list[str]:
    """Command-line arguments without ``option X`` / ``option=X``."""
    out, skip = [], False
    for arg in args:
        if skip:
            skip = False
        elif arg == option:
            skip = True
        elif not arg.startswith(option + "="):
            out.append(arg)
    return out

"""One runner of ``python -m monai.bundle run`` commands, for the scripts that drive the bundle as a user would
(``make demo``, the comparison, the real-CT validation): the bundle's configs, overrides, a log file."""

from __future__ import annotations

import os
import shlex
import subprocess
import sys
import time
from pathlib import Path

__all__ = ["REPO_ROOT", "OverBudget", "run_bundle"]

#: the bundle root (the repository root)
REPO_ROOT = Path(__file__).resolve().parents[1]


class OverBudget(RuntimeError):
    """A run reached the end of its time budget and was stopped."""


def run_bundle(configs: list[str], overrides: dict[str, str], log_path: Path, timeout: float | None = None) -> float:
    """``python -m monai.bundle run --config_file [configs/...]`` with ``--key value`` overrides, output to
    ``log_path`` (its first line is the command); returns the wall-clock seconds.

    Raises:
        RuntimeError: the run failed (the end of its log is in the message).
        OverBudget: it took longer than ``timeout`` s and was stopped.
    """
    files = [str(REPO_ROOT / "configs" / name) for name in configs]
    command = [sys.executable, "-m", "monai.bundle", "run", "--config_file", str(files)]
    command += ["--meta_file", str(REPO_ROOT / "configs" / "metadata.json")]
    for key, value in overrides.items():
        command += [f"--{key}", value]
    env = {**os.environ, "MLFLOW_DISABLE_TELEMETRY": "true", "PYTHONPATH": str(REPO_ROOT)}
    log_path.parent.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    with open(log_path, "w") as log:
        log.write(shlex.join(command) + "\n")
        log.flush()
        try:
            result = subprocess.run(
                command, cwd=REPO_ROOT, env=env, stdout=log, stderr=subprocess.STDOUT, timeout=timeout
            )
        except subprocess.TimeoutExpired:
            raise OverBudget(f"over budget: stopped after {timeout:.0f} s (log: {log_path})") from None
    if result.returncode != 0:
        tail = "".join(log_path.read_text().splitlines(keepends=True)[-30:])
        raise RuntimeError(f"{configs[0]} failed (exit {result.returncode}; log: {log_path}):\n{tail}")
    return time.perf_counter() - started

"""Checkpoints written atomically.

MONAI's ``CheckpointSaver`` passes ``atomic=False`` to ignite's ``DiskSaver`` (atomic files are created
owner-only, 0600): a job killed while saving leaves a truncated ``checkpoint_epoch=N.pt`` or ``model.pt`` under
the final name, which ``--resume`` or inference then trips over. Here ignite writes a temporary file in the same
folder and renames it over the final name, and the file then gets the usual 0644 permissions.

ignite's ``Checkpoint`` also removes the previous file (``n_saved=1``) *before* it writes the new one, so a job
killed while saving ``checkpoint_epoch=N.pt`` would leave no checkpoint at all; ``AtomicDiskSaver`` postpones
every removal until the next file is completely written.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any

from ignite.handlers import DiskSaver
from monai.handlers import CheckpointSaver

__all__ = ["AtomicCheckpointSaver", "AtomicDiskSaver"]


class AtomicDiskSaver(DiskSaver):
    """ignite's ``DiskSaver`` with ``atomic=True``, 0644 files and an optional fixed file name (like MONAI's)."""

    def __init__(self, dirname: str, filename: str | None = None) -> None:
        super().__init__(dirname=dirname, require_empty=False, atomic=True)
        self.filename = filename
        self._pending_removals: list[str] = []

    def __call__(self, checkpoint: Mapping, filename: str, metadata: Mapping | None = None) -> None:
        name = self.filename or filename
        super().__call__(checkpoint=checkpoint, filename=name, metadata=metadata)
        os.chmod(os.path.join(self.dirname, name), 0o644)
        pending, self._pending_removals = self._pending_removals, []
        for old in pending:
            if old != name and os.path.exists(os.path.join(self.dirname, old)):
                super().remove(old)

    def remove(self, filename: str) -> None:
        """Remove ``filename`` once the next checkpoint is safely on disk (ignite asks before it writes that one)."""
        self._pending_removals.append(self.filename or filename)


class AtomicCheckpointSaver(CheckpointSaver):
    """MONAI's ``CheckpointSaver`` (same arguments, same files) whose every save is atomic."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        for checkpoint in (self._final_checkpoint, self._key_metric_checkpoint, self._interval_checkpoint):
            if checkpoint is not None:
                fixed_name = getattr(checkpoint.save_handler, "filename", None)
                checkpoint.save_handler = AtomicDiskSaver(self.save_dir, filename=fixed_name)

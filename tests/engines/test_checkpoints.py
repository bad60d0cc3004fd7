"""AtomicCheckpointSaver on a real ignite engine: one epoch checkpoint kept, and a failed save never costs the
previous one (ignite removes the old file before it writes the new; the saver postpones that removal)."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from ignite.engine import Engine

from bundle.engines import AtomicCheckpointSaver, latest_checkpoint


class BreaksAtEpoch:
    """A savable object whose state cannot be pickled from ``epoch`` on, as a save cut short by a full disk."""

    def __init__(self, engine: Engine, epoch: int) -> None:
        self.engine, self.epoch = engine, epoch

    def state_dict(self) -> dict:
        broken = self.engine.state.epoch >= self.epoch
        return {"epoch": self.engine.state.epoch, "value": (lambda: None) if broken else 0}


def _trainer(model: torch.nn.Module) -> Engine:
    def step(engine: Engine, batch: int) -> None:
        with torch.no_grad():
            model.weight.fill_(float(engine.state.epoch))

    return Engine(step)


def _saver(folder: Path, engine: Engine, model: torch.nn.Module, breaks_at: int) -> AtomicCheckpointSaver:
    save_dict = {"model": model, "extra": BreaksAtEpoch(engine, breaks_at)}
    return AtomicCheckpointSaver(
        save_dir=str(folder), save_dict=save_dict, save_interval=1, epoch_level=True, n_saved=1
    )


def test_one_epoch_checkpoint_is_kept(tmp_path: Path) -> None:
    model = torch.nn.Linear(1, 1, bias=False)
    trainer = _trainer(model)
    _saver(tmp_path, trainer, model, breaks_at=99).attach(trainer)
    trainer.run([0], max_epochs=3)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["checkpoint_epoch=3.pt"]


def test_a_failed_save_keeps_the_previous_checkpoint(tmp_path: Path) -> None:
    model = torch.nn.Linear(1, 1, bias=False)
    trainer = _trainer(model)
    _saver(tmp_path, trainer, model, breaks_at=3).attach(trainer)
    with pytest.raises(Exception, match=r"pickle|lambda"):
        trainer.run([0], max_epochs=5)
    last = latest_checkpoint(str(tmp_path))
    assert last is not None and Path(last).name == "checkpoint_epoch=2.pt"
    state = torch.load(last, weights_only=True)
    assert state["extra"]["epoch"] == 2 and float(state["model"]["weight"]) == 2.0

"""Ignite handlers the bundle needs beyond MONAI's: they wire MONAI's own handlers to the running engine."""

from __future__ import annotations

import logging
from collections.abc import Mapping

import torch
from ignite.engine import Engine, Events
from monai.handlers import CheckpointLoader, CheckpointSaver

from .stages import latest_checkpoint

__all__ = ["LoadPretrainedEncoder", "TrainerCheckpoint"]

logger = logging.getLogger(__name__)


class TrainerCheckpoint:
    """Save model, optimizer, LR scheduler and the trainer itself every epoch; optionally resume from the last save.

    MONAI's ``CheckpointSaver``/``CheckpointLoader`` do the work; this class only adds the engine it is attached
    to as ``"trainer"`` (a config cannot reference the trainer from inside the trainer's own handler list).
    Files are ``<save_dir>/checkpoint_epoch=N.pt``, one kept, written atomically (ignite's ``DiskSaver``).

    Args:
        save_dir: the stage's checkpoint folder.
        save_dict: objects with a ``state_dict``: ``{"model": ..., "optimizer": ..., "lr_scheduler": ...}``.
        resume: load the newest checkpoint of ``save_dir`` when the engine starts (``FileNotFoundError`` if none).
        map_location: where to load tensors (e.g. the training device).
    """

    def __init__(
        self,
        save_dir: str,
        save_dict: Mapping[str, object],
        resume: bool = False,
        map_location: str | torch.device | None = None,
    ) -> None:
        self.save_dir = save_dir
        self.save_dict = dict(save_dict)
        self.resume = resume
        self.map_location = map_location

    def attach(self, engine: Engine) -> None:
        objects = {**self.save_dict, "trainer": engine}
        if self.resume:
            path = latest_checkpoint(self.save_dir)
            if path is None:
                raise FileNotFoundError(f"--resume: no checkpoint_epoch=N.pt in {self.save_dir}")
            logger.info("resuming from %s", path)
            CheckpointLoader(load_path=path, load_dict=objects, map_location=self.map_location).attach(engine)
        CheckpointSaver(save_dir=self.save_dir, save_dict=objects, save_interval=1, epoch_level=True, n_saved=1).attach(
            engine
        )


class LoadPretrainedEncoder:
    """Load ImageNet DenseNet-161 weights (a local torchvision state dict) into the 2D encoder when training starts.

    Attached after the loader of the previous stage's checkpoint, so the pretrained encoder is what the 2D stage
    starts from (the paper: "the encoder part ... initialized with DenseNet's weights").
    """

    def __init__(self, network: torch.nn.Module, path: str | None) -> None:
        self.network = network
        self.path = path

    def attach(self, engine: Engine) -> None:
        if self.path:
            engine.add_event_handler(Events.STARTED, self)

    def __call__(self, engine: Engine) -> None:
        from bundle.networks import load_densenet161_encoder

        fine = getattr(self.network, "fine", self.network)
        load_densenet161_encoder(fine, self.path)

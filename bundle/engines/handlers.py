"""Ignite handlers the bundle needs beyond MONAI's: they wire MONAI's own handlers to the running engine."""

from __future__ import annotations

import logging
import random
from collections.abc import Iterator, Mapping

import numpy as np
import torch
from ignite.engine import Engine, Events
from monai.handlers import CheckpointLoader

from bundle.config_values import as_bool

from .checkpoints import AtomicCheckpointSaver
from .stages import latest_checkpoint

__all__ = ["LoadPretrainedEncoder", "MLflowRunExtras", "RandomStates", "TrainerCheckpoint", "check_checkpoint"]

logger = logging.getLogger(__name__)


def _randomizables(obj: object, seen: set[int] | None = None) -> Iterator[object]:
    """Every object with a random state ``R`` reachable from ``obj``, nested transforms included."""
    seen = set() if seen is None else seen
    if id(obj) in seen:
        return
    seen.add(id(obj))
    if isinstance(obj, list | tuple):
        for item in obj:
            yield from _randomizables(item, seen)
    elif hasattr(obj, "__dict__") and not isinstance(obj, torch.Tensor | np.ndarray):
        if hasattr(obj, "set_random_state") and isinstance(getattr(obj, "R", None), np.random.RandomState):
            yield obj  # and its inner transforms below: RandCropByLabelClassesd's cropper has its own R
        for key, value in vars(obj).items():
            if not key.startswith("__"):
                yield from _randomizables(value, seen)


class RandomStates:
    """The random generators a training run draws from, as a checkpointable ``state_dict``.

    Python's ``random``, NumPy's and torch's global generators (DataLoader shuffling, worker seeds) and the
    private ``R`` of every MONAI random transform in ``dataset``. Restoring them makes a resumed run draw the same
    patches and augmentations as an uninterrupted one. Stored as tensors and lists, so the checkpoint still loads
    with ``torch.load(weights_only=True)``.
    """

    def __init__(self, dataset: object | None = None) -> None:
        self.dataset = dataset

    def state_dict(self) -> dict:
        transforms = [t.R.get_state() for t in _randomizables(self.dataset)] if self.dataset is not None else []
        return {
            "python": list(random.getstate()[1]),
            "numpy": _numpy_state(np.random.get_state()),  # noqa: NPY002 - the legacy global generator is what is used
            "torch": torch.get_rng_state(),
            "transforms": [_numpy_state(state) for state in transforms],
        }

    def load_state_dict(self, state: Mapping) -> None:
        random.setstate((3, tuple(int(v) for v in state["python"]), None))
        np.random.set_state(_numpy_tuple(state["numpy"]))  # noqa: NPY002
        torch.set_rng_state(state["torch"])
        if self.dataset is not None:
            owners = list(_randomizables(self.dataset))
            if len(owners) != len(state["transforms"]):
                raise ValueError(
                    f"checkpoint holds {len(state['transforms'])} random transform states, the pipeline has "
                    f"{len(owners)}: was it saved with another preprocessing?"
                )
            for owner, saved in zip(owners, state["transforms"]):
                owner.R.set_state(_numpy_tuple(saved))


def _numpy_state(state: tuple) -> dict:
    return {"keys": torch.from_numpy(state[1].astype(np.int64)), "pos": int(state[2]), "gauss": [state[3], state[4]]}


def _numpy_tuple(state: Mapping) -> tuple:
    keys = np.asarray(state["keys"].numpy(), dtype=np.uint32)
    return ("MT19937", keys, int(state["pos"]), int(state["gauss"][0]), float(state["gauss"][1]))


def check_checkpoint(path: str) -> None:
    """Raise a ``RuntimeError`` naming ``path`` if it is not a readable checkpoint (truncated, corrupt, not torch).

    Loads with ``weights_only=True``, as every loader of this bundle does: a checkpoint cannot run code.
    """
    try:
        torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:
        raise RuntimeError(
            f"checkpoint {path} is corrupt or truncated ({type(error).__name__}: {error}); delete it to resume "
            "from an earlier one, or start the stage again without --resume"
        ) from error


class TrainerCheckpoint:
    """Save model, optimizer, LR scheduler and the trainer itself every epoch; optionally resume from the last save.

    MONAI's ``CheckpointSaver`` (made atomic) and ``CheckpointLoader`` do the work; this class only adds the engine
    it is attached to as ``"trainer"`` (a config cannot reference the trainer from inside its own handler list).
    Files are ``<save_dir>/checkpoint_epoch=N.pt``, one kept, written atomically (ignite's ``DiskSaver``). The random
    generators are saved too (:class:`RandomStates`), so a resumed run continues exactly as an uninterrupted one.

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
        self.resume = as_bool(resume, "resume")
        self.map_location = map_location

    def attach(self, engine: Engine) -> None:
        dataset = getattr(getattr(engine, "data_loader", None), "dataset", None)
        objects = {**self.save_dict, "trainer": engine, "random_states": RandomStates(dataset)}
        if self.resume:
            path = latest_checkpoint(self.save_dir)
            if path is None:
                raise FileNotFoundError(f"--resume: no checkpoint_epoch=N.pt in {self.save_dir}")
            check_checkpoint(path)
            logger.info("resuming from %s", path)
            CheckpointLoader(load_path=path, load_dict=objects, map_location=self.map_location).attach(engine)
        AtomicCheckpointSaver(
            save_dir=self.save_dir, save_dict=objects, save_interval=1, epoch_level=True, n_saved=1
        ).attach(engine)


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


class MLflowRunExtras:
    """Add the bundle's run parameters and the stage's best checkpoint to the MLflow run of ``--tracking mlflow``.

    ``monai.bundle run --tracking mlflow`` appends MONAI's ``MLFlowHandler`` to ``train#handlers``; it logs the
    loss, the metrics and the executed config but no hyper-parameters. This handler finds that ``MLFlowHandler``
    on the engine, logs ``params`` once its run has started and ``artifacts`` (files that exist) when training
    completes, before the run is closed. Without tracking it does nothing.

    Args:
        params: name -> value (lists are logged as their text).
        artifacts: files to log at the end, e.g. the stage's best ``model.pt``.
    """

    def __init__(self, params: Mapping[str, object], artifacts: list[str] | str | None = None) -> None:
        self.params = {str(k): v if isinstance(v, int | float | str | bool) else str(v) for k, v in params.items()}
        self.artifacts = [artifacts] if isinstance(artifacts, str) else list(artifacts or [])

    def attach(self, engine: Engine) -> None:
        engine.add_event_handler(Events.ITERATION_STARTED(once=1), self._log_params)
        engine.add_event_handler(Events.COMPLETED, self._log_artifacts)

    @staticmethod
    def _mlflow_handlers(engine: Engine) -> list:
        from monai.handlers import MLFlowHandler

        found = []
        for handler, *_ in engine._event_handlers.get(Events.STARTED, []):
            owner = getattr(handler, "__self__", None)
            if isinstance(owner, MLFlowHandler) and owner.cur_run is not None:
                found.append(owner)
        return found

    def _log_params(self, engine: Engine) -> None:
        from mlflow.entities import Param

        for tracker in self._mlflow_handlers(engine):
            params = [Param(k, str(v)) for k, v in self.params.items()]
            tracker.client.log_batch(run_id=tracker.cur_run.info.run_id, params=params)

    def _log_artifacts(self, engine: Engine) -> None:
        from pathlib import Path

        for tracker in self._mlflow_handlers(engine):
            for path in self.artifacts:
                if Path(path).is_file():
                    tracker.client.log_artifact(tracker.cur_run.info.run_id, path)

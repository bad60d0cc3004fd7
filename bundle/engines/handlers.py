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

__all__ = [
    "DecoderWarmup",
    "LoadPretrainedEncoder",
    "MLflowRunExtras",
    "RandomStates",
    "TrainerCheckpoint",
    "check_checkpoint",
]

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


def _warmup_targets(network: torch.nn.Module) -> list[torch.nn.Module]:
    """The 2D DenseUNets whose UNet connections :class:`DecoderWarmup` switches: ``network`` unwrapped from DDP,
    then its liver/tumor network (``fine``) if it is a cascade, then that network's 2D branch (``dense2d``)."""
    from bundle.networks import DenseUNet

    net = getattr(network, "module", network)
    net = getattr(net, "fine", net)
    net = getattr(net, "dense2d", net)
    if not isinstance(net, DenseUNet) or net.spatial_dims != 2:
        raise TypeError(
            f"DecoderWarmup needs a 2D DenseUNet (H-DenseUNet's 2D branch), got {type(net).__name__}: the warm-up "
            "is the 2d stage's, which H-DenseUNet alone has"
        )
    return [net]


class DecoderWarmup:
    """The decoder warm-up of H-DenseUNet's 2d stage (Li et al. 2018, section III-C-2).

    "Since the weights are initialized with a random distribution in the decoder part, we first warm up the network
    without UNet connections. After several iterations, the UNet connections are added to jointly fine tune the
    model." The training iterations of the first ``epochs`` epochs run the 2D DenseUNet with
    ``unet_connections=False`` (the upsampling path alone: its outputs do not depend on the skip activations); every
    later iteration, and everything outside a training iteration (validation, checkpoints, inference), runs with the
    UNet connections. So validation scores, and the stage's best ``model.pt`` holds, the network as inference runs
    it, even during the warm-up. The switch is decided per iteration from ``engine.state.epoch``, so a run resumed
    inside the warm-up continues it. 0 epochs: nothing is attached.

    While the connections are off, the skip projections get no gradient; under DDP that needs
    ``find_unused_parameters`` (``configs/multi_gpu_train.yaml`` turns it on for a 2d stage with a warm-up).

    Args:
        network: the trained network: a :class:`~bundle.networks.cascade.LiverTumorCascade` (its H-DenseUNet's 2D
            branch is warmed up), an ``HDenseUNet`` or a 2D ``DenseUNet``, possibly DDP-wrapped.
        epochs: warm-up epochs (``warmup_epochs`` in ``configs/train.yaml``); must be fewer than the stage's epochs,
            or the UNet connections would never train.
    """

    def __init__(self, network: torch.nn.Module, epochs: int) -> None:
        epochs = int(epochs)
        if epochs < 0:
            raise ValueError(f"warmup_epochs must be 0 (off) or more, got {epochs}")
        self.network = network
        self.epochs = epochs

    def attach(self, engine: Engine) -> None:
        if self.epochs == 0:
            return
        self.targets = _warmup_targets(self.network)
        max_epochs = engine.state.max_epochs
        if max_epochs is not None and self.epochs >= max_epochs:
            raise ValueError(
                f"warmup_epochs {self.epochs} leaves none of the stage's {max_epochs} epochs to train with the UNet "
                "connections: pass fewer (--warmup_epochs 0 turns the warm-up off) or more --epochs"
            )
        logger.info("decoder warm-up: epochs 1-%d of %d train without UNet connections", self.epochs, max_epochs)
        engine.add_event_handler(Events.ITERATION_STARTED, self.iteration_started)
        engine.add_event_handler(Events.ITERATION_COMPLETED, self.iteration_completed)

    def in_warmup(self, engine: Engine) -> bool:
        """Whether the current iteration belongs to the warm-up (``engine.state.epoch`` counts from 1)."""
        return engine.state.epoch <= self.epochs

    def iteration_started(self, engine: Engine) -> None:
        for net in self.targets:
            net.unet_connections = not self.in_warmup(engine)

    def iteration_completed(self, engine: Engine) -> None:
        for net in self.targets:
            net.unet_connections = True


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

"""What ignite and MONAI's SupervisedTrainer lack: the paper's losses, the stage order, checkpoint wiring."""

from .checkpoints import AtomicCheckpointSaver, AtomicDiskSaver
from .handlers import (
    DecoderWarmup,
    LoadPretrainedEncoder,
    MLflowRunExtras,
    RandomStates,
    TrainerCheckpoint,
    check_checkpoint,
)
from .losses import HybridLoss, WeightedCrossEntropyLoss
from .stages import (
    STAGE_COMPLETE,
    STAGE_ORDER,
    init_checkpoint,
    latest_checkpoint,
    require_file,
    run_training,
    stage_checkpoint_dir,
    stages_of,
)

__all__ = [
    "STAGE_COMPLETE",
    "STAGE_ORDER",
    "AtomicCheckpointSaver",
    "AtomicDiskSaver",
    "DecoderWarmup",
    "HybridLoss",
    "LoadPretrainedEncoder",
    "MLflowRunExtras",
    "RandomStates",
    "TrainerCheckpoint",
    "WeightedCrossEntropyLoss",
    "check_checkpoint",
    "init_checkpoint",
    "latest_checkpoint",
    "require_file",
    "run_training",
    "stage_checkpoint_dir",
    "stages_of",
]

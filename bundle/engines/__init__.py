"""What ignite and MONAI's SupervisedTrainer lack: the paper's losses, the stage order, checkpoint wiring."""

from .handlers import LoadPretrainedEncoder, MLflowRunExtras, RandomStates, TrainerCheckpoint
from .losses import HybridLoss, WeightedCrossEntropyLoss
from .stages import (
    STAGE_ORDER,
    init_checkpoint,
    latest_checkpoint,
    require_file,
    run_training,
    stage_checkpoint_dir,
    stages_of,
)

__all__ = [
    "STAGE_ORDER",
    "HybridLoss",
    "LoadPretrainedEncoder",
    "MLflowRunExtras",
    "RandomStates",
    "TrainerCheckpoint",
    "WeightedCrossEntropyLoss",
    "init_checkpoint",
    "latest_checkpoint",
    "require_file",
    "run_training",
    "stage_checkpoint_dir",
    "stages_of",
]

"""The one training loop (Lightning) shared by pretraining, subnetworks, PST and fine-tuning."""

from plmstruct.training.config import OptimConfig, TrainConfig
from plmstruct.training.optim import configure_adamw
from plmstruct.training.sampling import ResumableBatchSampler, SeededDataset, item_seed
from plmstruct.training.schedule import cosine_anneal, lr_multiplier
from plmstruct.training.trainer import (
    AtomicCheckpointIO,
    ResumableDataModule,
    build_trainer,
    fit,
    last_checkpoint,
)

__all__ = [
    "AtomicCheckpointIO", "OptimConfig", "ResumableBatchSampler", "ResumableDataModule", "SeededDataset",
    "TrainConfig", "build_trainer", "configure_adamw", "cosine_anneal", "fit", "item_seed", "last_checkpoint",
    "lr_multiplier",
]

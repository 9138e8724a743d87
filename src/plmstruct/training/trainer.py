"""The one Trainer set-up every method runs through (Lightning).

CPU here; GPU with bf16 autocast when present; DDP across GPUs/nodes (gloo on CPU); atomic
checkpoints every N steps plus ``last.ckpt``; ``resume`` continues from ``last.ckpt`` exactly;
a rich progress bar; metrics to ``metrics.csv``.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import lightning as L
import torch
from lightning.pytorch.callbacks import Callback, ModelCheckpoint, RichProgressBar
from lightning.pytorch.loggers import CSVLogger
from lightning.pytorch.plugins.io import TorchCheckpointIO

from plmstruct.backbone.device import lightning_precision
from plmstruct.io import atomic_write
from plmstruct.training.config import TrainConfig
from plmstruct.training.sampling import ResumableBatchSampler


class AtomicCheckpointIO(TorchCheckpointIO):
    """Writes each checkpoint to a temporary file and renames it into place."""

    def save_checkpoint(self, checkpoint: dict[str, Any], path: str | Path, storage_options: Any = None) -> None:
        atomic_write(Path(path), lambda tmp: torch.save(checkpoint, tmp))

    def load_checkpoint(self, path: str | Path, map_location: Any = None, weights_only: bool | None = None) -> dict:
        # Our own checkpoints hold only tensors, numbers and plain containers.
        return torch.load(path, map_location=map_location or "cpu", weights_only=True)


class ResumableDataModule(L.LightningDataModule):
    """Base data module whose train batches resume exactly mid-epoch.

    Subclasses build ``self.train_sampler`` (a :class:`ResumableBatchSampler`) in ``setup``; the
    epoch and the number of batches done are saved in every checkpoint."""

    train_sampler: ResumableBatchSampler | None = None
    _resume_state: dict[str, int] | None = None

    def state_dict(self) -> dict[str, int]:
        trainer = self.trainer
        if trainer is None:
            return {}
        done = trainer.fit_loop.epoch_loop.batch_progress.current.processed
        return {"epoch": int(trainer.current_epoch), "batches_done": int(done)}

    def load_state_dict(self, state: dict[str, int]) -> None:
        self._resume_state = dict(state)

    def apply_resume_state(self) -> None:
        """Call at the end of ``setup``: positions the sampler where the checkpoint left off."""
        if self._resume_state and self.train_sampler is not None:
            self.train_sampler.resume_at(self._resume_state["epoch"], self._resume_state["batches_done"])
            self._resume_state = None


class _ResumeDataPosition(Callback):
    """Applies a restored data position before the first training batch is drawn."""

    def on_fit_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        dm = trainer.datamodule
        if isinstance(dm, ResumableDataModule):
            dm.apply_resume_state()


def _precision(cfg: TrainConfig) -> str:
    return lightning_precision() if cfg.precision == "auto" else cfg.precision


def build_trainer(cfg: TrainConfig, *, callbacks: list[Callback] | None = None) -> L.Trainer:
    """The shared Trainer: checkpoints, CSV metrics, progress bar, device/precision/strategy."""
    if cfg.num_threads:
        torch.set_num_threads(cfg.num_threads)
    out = Path(cfg.out_dir)
    ckpt = ModelCheckpoint(dirpath=out / "checkpoints", save_last=True, save_top_k=0,
                           every_n_train_steps=cfg.checkpoint_every_n_steps, save_on_train_epoch_end=True)
    cbs: list[Callback] = [_ResumeDataPosition(), ckpt, *(callbacks or [])]
    if cfg.progress:
        cbs.append(RichProgressBar(leave=True))
    strategy: Any = cfg.strategy
    if strategy == "ddp" and not torch.cuda.is_available():
        from lightning.pytorch.strategies import DDPStrategy

        strategy = DDPStrategy(process_group_backend="gloo")
    return L.Trainer(
        default_root_dir=str(out),
        max_steps=cfg.max_steps,
        max_epochs=cfg.max_epochs,
        accelerator=cfg.accelerator,
        devices=cfg.devices,
        num_nodes=cfg.num_nodes,
        strategy=strategy,
        precision=_precision(cfg),
        accumulate_grad_batches=cfg.accumulate_grad_batches,
        gradient_clip_val=cfg.gradient_clip_val,
        val_check_interval=cfg.val_every_n_steps,
        check_val_every_n_epoch=None if cfg.val_every_n_steps else 1,
        limit_val_batches=cfg.limit_val_batches,
        log_every_n_steps=cfg.log_every_n_steps,
        logger=CSVLogger(str(out), name="", version=""),
        callbacks=cbs,
        plugins=[AtomicCheckpointIO()],
        enable_progress_bar=cfg.progress,
        enable_model_summary=False,
        use_distributed_sampler=False,  # our batch sampler shards by rank itself
        deterministic=cfg.deterministic,
        num_sanity_val_steps=0,
    )


def last_checkpoint(cfg: TrainConfig) -> Path | None:
    path = Path(cfg.out_dir) / "checkpoints" / "last.ckpt"
    return path if path.exists() else None


def fit(module: L.LightningModule, datamodule: L.LightningDataModule, cfg: TrainConfig,
        *, callbacks: list[Callback] | None = None) -> L.Trainer:
    """Seed, build the shared Trainer and fit; with ``cfg.resume`` continue from ``last.ckpt``."""
    L.seed_everything(cfg.seed, workers=True, verbose=False)
    trainer = build_trainer(cfg, callbacks=callbacks)
    ckpt = last_checkpoint(cfg) if cfg.resume else None
    if cfg.resume and ckpt is None and trainer.is_global_zero:
        print(f"no checkpoint in {Path(cfg.out_dir) / 'checkpoints'}: starting fresh")
    os.makedirs(cfg.out_dir, exist_ok=True)
    trainer.fit(module, datamodule=datamodule, ckpt_path=str(ckpt) if ckpt else None)
    return trainer

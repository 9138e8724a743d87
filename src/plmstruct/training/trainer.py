"""The one Trainer set-up every method runs through (Lightning).

CPU here; GPU with bf16 autocast when present; DDP across GPUs/nodes (gloo on CPU); atomic
checkpoints every N steps plus ``last.ckpt``; ``resume`` continues from ``last.ckpt`` exactly;
a rich progress bar; metrics to ``metrics.csv``.

Exact resume (a run killed at any moment and resumed reaches the same weights and metrics, bit
for bit on the CPU) rests on: the data position of the batches actually trained on (see
:mod:`plmstruct.training.sampling`); the global RNGs re-seeded before every training batch from
(seed, batch number, rank), so dropout does not depend on what ran before; a checkpoint due on a
step that is followed by validation is written after that validation; and ``metrics.csv`` is
flushed at every logging step and, on resume, keeps the rows of the steps before the checkpoint.
"""

from __future__ import annotations

import csv
import io
import os
import random
import warnings
from pathlib import Path
from typing import Any

import lightning as L
import numpy as np
import torch
from lightning.fabric.loggers.csv_logs import _ExperimentWriter
from lightning.fabric.loggers.logger import rank_zero_experiment
from lightning.pytorch.callbacks import Callback, ModelCheckpoint, RichProgressBar
from lightning.pytorch.loggers import CSVLogger
from lightning.pytorch.loggers.csv_logs import ExperimentWriter
from lightning.pytorch.plugins.io import TorchCheckpointIO

from plmstruct.backbone.device import lightning_precision
from plmstruct.backbone.kernels import fuse_gelu
from plmstruct.errors import InputError
from plmstruct.io import atomic_write, atomic_write_text
from plmstruct.training.config import TrainConfig
from plmstruct.training.sampling import ResumableBatchSampler, item_seed


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
        if self.train_sampler is None:
            return {}
        epoch, done = self.train_sampler.position
        return {"epoch": int(epoch), "batches_done": int(done)}

    def load_state_dict(self, state: dict[str, int]) -> None:
        self._resume_state = dict(state)

    def apply_resume_state(self) -> None:
        """Positions the sampler where the checkpoint left off (the shared loop calls this when
        fitting starts, after ``setup``)."""
        if self._resume_state and self.train_sampler is not None:
            self.train_sampler.resume_at(self._resume_state["epoch"], self._resume_state["batches_done"])
            self._resume_state = None


class _ResumeDataPosition(Callback):
    """Applies a restored data position before the first training batch is drawn, and advances
    the position after each batch trained on (before any checkpoint of that step is written)."""

    def on_fit_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        dm = trainer.datamodule
        if isinstance(dm, ResumableDataModule):
            dm.apply_resume_state()

    def on_train_batch_end(self, trainer: L.Trainer, pl_module: L.LightningModule, outputs: Any, batch: Any,
                           batch_idx: int) -> None:
        dm = trainer.datamodule
        if isinstance(dm, ResumableDataModule) and dm.train_sampler is not None:
            dm.train_sampler.mark_consumed()


class _StepSeed(Callback):
    """Seeds torch/numpy/random before every training batch from (seed, batch number, rank): what a
    step draws (dropout, random layers) does not depend on the history of the process."""

    def __init__(self, seed: int) -> None:
        self.seed = seed

    def on_train_batch_start(self, trainer: L.Trainer, pl_module: L.LightningModule, batch: Any,
                             batch_idx: int) -> None:
        batch_number = trainer.fit_loop.epoch_loop.batch_progress.total.ready
        seed = item_seed(self.seed, batch_number, trainer.global_rank)
        torch.manual_seed(seed)
        np.random.seed(seed % 2**32)
        random.seed(seed)


class _Checkpoint(ModelCheckpoint):
    """``ModelCheckpoint`` every N steps, written where Lightning resumes cleanly from: at the end
    of the epoch when the step is an epoch's last batch (else Lightning runs an empty epoch on
    resume and its epoch counter drifts by one), after validation when validation follows the
    step (a run killed during that validation then redoes it instead of skipping it)."""

    _save_at_epoch_end = False

    def on_train_batch_end(self, trainer: L.Trainer, pl_module: L.LightningModule, outputs: Any, batch: Any,
                           batch_idx: int) -> None:
        due = self._every_n_train_steps >= 1 and trainer.global_step % self._every_n_train_steps == 0
        loop = trainer.fit_loop
        if due and loop.epoch_loop.batch_progress.is_last_batch:
            self._save_at_epoch_end = True
            return
        if due and loop._data_fetcher is not None and loop.epoch_loop._should_check_val_fx(loop._data_fetcher):
            self._defer_save_until_validation = True
            return
        super().on_train_batch_end(trainer, pl_module, outputs, batch, batch_idx)

    def on_train_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if self._save_at_epoch_end:
            self._save_at_epoch_end = False
            if not self._should_skip_saving_checkpoint(trainer):
                candidates = self._monitor_candidates(trainer)
                self._save_topk_checkpoint(trainer, candidates)
                self._save_last_checkpoint(trainer, candidates)
        super().on_train_epoch_end(trainer, pl_module)


class _ResumableExperimentWriter(ExperimentWriter):
    """Lightning's CSV writer, except that on resume it keeps the rows of the steps before the
    checkpoint (Lightning deletes the file) and rewrites the file atomically."""

    def __init__(self, log_dir: str, keep_before_step: int | None) -> None:
        self._keep_before_step = keep_before_step
        super().__init__(log_dir)

    def _check_log_dir_exists(self) -> None:
        if self._keep_before_step is None:
            super()._check_log_dir_exists()
            return
        if not os.path.isfile(self.metrics_file_path):
            return
        text = Path(self.metrics_file_path).read_text()
        if text and not text.endswith("\n"):
            text = text[: text.rfind("\n") + 1]  # drop a line cut short by a kill
        reader = csv.DictReader(io.StringIO(text))
        keys = list(reader.fieldnames or [])
        rows = [r for r in reader if r.get("step") not in (None, "") and int(r["step"]) < self._keep_before_step]
        self.metrics_keys = sorted(keys)
        self._write(rows)

    def _rewrite_with_new_header(self, fieldnames: list[str]) -> None:
        with open(self.metrics_file_path, newline="") as fh:
            rows = list(csv.DictReader(fh))
        self.metrics_keys = list(fieldnames)
        self._write(rows)

    def _write(self, rows: list[dict[str, str]]) -> None:
        out = io.StringIO()
        writer = csv.DictWriter(out, fieldnames=self.metrics_keys)
        writer.writeheader()
        writer.writerows(rows)
        atomic_write_text(Path(self.metrics_file_path), out.getvalue())


class _CSVLogger(CSVLogger):
    """``metrics.csv`` in the run folder, flushed at every logging step, continued on resume."""

    def __init__(self, out_dir: Path, *, keep_before_step: int | None) -> None:
        super().__init__(str(out_dir), name="", version="", flush_logs_every_n_steps=1)
        self._keep_before_step = keep_before_step

    @property
    @rank_zero_experiment
    def experiment(self) -> _ExperimentWriter:
        if self._experiment is None:
            self._fs.makedirs(self.root_dir, exist_ok=True)
            self._experiment = _ResumableExperimentWriter(self.log_dir, self._keep_before_step)
        return self._experiment


class _StepProgressBar(RichProgressBar):
    """Rich progress bar whose label shows the step budget: runs here are bounded by steps, and
    Lightning's own label reads ``Epoch 3/-2`` when ``max_epochs`` is unbounded."""

    def _get_train_description(self, current_epoch: int) -> str:
        return train_description(current_epoch, self.trainer.global_step, self.trainer.max_steps,
                                 self.trainer.max_epochs)


def train_description(epoch: int, step: int, max_steps: int, max_epochs: int | None) -> str:
    """``Epoch 3 · step 96/300`` (step-bounded run) or ``Epoch 3/9`` (epoch-bounded run)."""
    if max_epochs is not None and max_epochs > 0:
        return f"Epoch {epoch}/{max_epochs - 1}"
    return f"Epoch {epoch} · step {step}/{max_steps}" if max_steps and max_steps > 0 else f"Epoch {epoch}"


def _precision(cfg: TrainConfig) -> str:
    return lightning_precision() if cfg.precision == "auto" else cfg.precision


def build_trainer(cfg: TrainConfig, *, callbacks: list[Callback] | None = None,
                  resume_step: int | None = None) -> L.Trainer:
    """The shared Trainer: checkpoints, CSV metrics, progress bar, device/precision/strategy.
    ``resume_step``: the global step of the checkpoint a resumed run starts from (the rows of
    ``metrics.csv`` from that step on are dropped: the run logs them again)."""
    if cfg.num_threads:
        torch.set_num_threads(cfg.num_threads)
    out = Path(cfg.out_dir)
    ckpt = _Checkpoint(dirpath=out / "checkpoints", save_last=True, save_top_k=0,
                       every_n_train_steps=cfg.checkpoint_every_n_steps, save_on_train_epoch_end=False)
    cbs: list[Callback] = [_ResumeDataPosition(), _StepSeed(cfg.seed), ckpt, *(callbacks or [])]
    if cfg.progress:
        cbs.append(_StepProgressBar(leave=True))
    strategy: Any = cfg.strategy
    if strategy == "ddp":
        from lightning.pytorch.strategies import DDPStrategy

        # gloo on the CPU; unused parameters are allowed: models carry heads a method does not
        # train (ESM's contact head in MLM, frozen or bypassed parts)
        strategy = DDPStrategy(process_group_backend=None if torch.cuda.is_available() else "gloo",
                               find_unused_parameters=True)
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
        logger=_CSVLogger(out, keep_before_step=resume_step),
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


def checkpoint_step(path: Path) -> int:
    """The global step stored in a Lightning checkpoint (read without loading the tensors). A file
    that cannot be read (cut short, not a checkpoint, or holding pickled objects) is an
    :class:`~plmstruct.errors.InputError` naming it, before any training starts."""
    try:
        state = torch.load(path, map_location="cpu", weights_only=True, mmap=True)
    except Exception as err:  # noqa: BLE001 - torch raises RuntimeError/UnpicklingError/EOFError/...
        raise InputError(f"cannot resume: unreadable checkpoint ({type(err).__name__}: "
                         f"{str(err).splitlines()[0][:160]}); remove it to start afresh", path=path) from err
    if not isinstance(state, dict):
        raise InputError("cannot resume: not a training checkpoint", path=path)
    return int(state.get("global_step", 0))


def fit(module: L.LightningModule, datamodule: L.LightningDataModule, cfg: TrainConfig,
        *, callbacks: list[Callback] | None = None) -> L.Trainer:
    """Seed, build the shared Trainer and fit; with ``cfg.resume`` continue from ``last.ckpt``.

    ESM feed-forward GELUs in ``module`` are switched to the fused kernel first (same function,
    see :mod:`plmstruct.backbone.kernels`)."""
    L.seed_everything(cfg.seed, workers=True, verbose=False)
    fuse_gelu(module)
    ckpt = last_checkpoint(cfg) if cfg.resume else None
    trainer = build_trainer(cfg, callbacks=callbacks, resume_step=checkpoint_step(ckpt) if ckpt else None)
    if cfg.resume and ckpt is None and trainer.is_global_zero:
        print(f"no checkpoint in {Path(cfg.out_dir) / 'checkpoints'}: starting fresh")
    os.makedirs(cfg.out_dir, exist_ok=True)
    with warnings.catch_warnings():
        if isinstance(datamodule, ResumableDataModule):  # Lightning cannot see that it resumes exactly
            warnings.filterwarnings("ignore", message="You're resuming from a checkpoint that ended before")
        if getattr(module, "frozen_parts_in_eval_mode", False):  # on purpose: no dropout in a frozen backbone
            warnings.filterwarnings("ignore", message=r"Found \d+ module\(s\) in eval mode")
        trainer.fit(module, datamodule=datamodule, ckpt_path=str(ckpt) if ckpt else None)
    return trainer

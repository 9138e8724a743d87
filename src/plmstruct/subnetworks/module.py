"""Subnetwork training on the shared loop: the data module (resumable, fixed targets per batch)
and the LightningModule (only the mask scores train; AdamW + OneCycle; tau annealed by cosine)."""

from __future__ import annotations

import lightning as L
import torch
from torch.utils.data import DataLoader

from plmstruct.backbone.model import Backbone
from plmstruct.subnetworks.config import SubnetworkConfig
from plmstruct.subnetworks.mask import MaskSet
from plmstruct.subnetworks.objective import ObjectiveTerms, subnetwork_objective
from plmstruct.subnetworks.targets import SubnetworkCollator, TargetBatchSampler, TargetData
from plmstruct.training.optim import configure_adamw
from plmstruct.training.sampling import ResumableBatchSampler, SeededDataset
from plmstruct.training.schedule import cosine_anneal
from plmstruct.training.trainer import ResumableDataModule

SCORE_KEY = "scores"


class SubnetworkDataModule(ResumableDataModule):
    """Training examples of one target; sequence-level batches hold ``targets_per_batch`` targets."""

    def __init__(self, backbone: Backbone, data: TargetData, *, batch_size: int = 16, targets_per_batch: int = 4,
                 crop: int = 128, seed: int = 0) -> None:
        super().__init__()
        self.data = data
        self.collate = SubnetworkCollator(backbone, crop)
        self.batch_size, self.targets_per_batch, self.seed = batch_size, targets_per_batch, seed

    def setup(self, stage: str | None = None) -> None:
        if self.train_sampler is not None:
            return
        train = self.data.train
        if self.data.level == "sequence":
            self.train_sampler = TargetBatchSampler([e.is_target for e in train], self.batch_size,
                                                    self.targets_per_batch, seed=self.seed)
        else:
            lengths = [min(len(e.sequence), self.collate.crop) for e in train]
            self.train_sampler = ResumableBatchSampler(lengths, self.batch_size, seed=self.seed)

    def train_dataloader(self) -> DataLoader:
        return DataLoader(SeededDataset(self.data.train), batch_sampler=self.train_sampler, collate_fn=self.collate)


class SubnetworkModule(L.LightningModule):
    """Learns the mask scores of ``masks`` (attached to ``backbone``) for the subnetwork objective.

    The backbone stays in eval mode (no dropout: p_sub and p_orig differ only by the mask).
    Checkpoints hold the scores only (the frozen weights come from the backbone)."""

    def __init__(self, backbone: Backbone, cfg: SubnetworkConfig, masks: MaskSet | None = None) -> None:
        super().__init__()
        self.backbone = backbone
        self.model = backbone.model
        self.cfg = cfg
        self.weights = cfg.objective_weights()
        self.masks = masks or MaskSet(backbone, cfg.mask)
        self.strict_loading = False

    #: tells :func:`~plmstruct.training.trainer.fit` that the eval-mode backbone is intended
    frozen_parts_in_eval_mode = True

    def train(self, mode: bool = True) -> SubnetworkModule:
        super().train(mode)
        self.model.eval()
        return self

    def tau(self, step: int) -> float:
        return cosine_anneal(self.cfg.tau_start, self.cfg.tau_end, step, self.cfg.train.max_steps)

    def logits(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        return self.model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).logits

    def step_terms(self, batch: dict[str, torch.Tensor], step: int) -> ObjectiveTerms:
        """The objective of one batch at training step ``step`` (sets tau; masks sampled in train mode)."""
        self.masks.set_tau(self.tau(step))
        with self.masks.mode("train"):
            logits_sub = self.logits(batch)
            sparsity = self.masks.sparsity_loss()
        rows = batch["other"].any(1)
        logits_orig = None
        if bool(rows.any()):
            with torch.no_grad(), self.masks.mode("off"):
                part = self.logits({k: v[rows] for k, v in batch.items()})
            logits_orig = logits_sub.detach().clone()
            logits_orig[rows] = part
        return subnetwork_objective(logits_sub, logits_orig, batch, sparsity, self.weights,
                                    self.backbone.residue_token_ids)

    def training_step(self, batch: dict[str, torch.Tensor], batch_idx: int) -> torch.Tensor:
        terms = self.step_terms(batch, self.global_step)
        n = int(batch["attention_mask"].shape[0])
        for name, value in terms.as_floats().items():
            self.log(f"train/{name}", value, prog_bar=name in ("total", "suppression"), batch_size=n)
        self.log("train/tau", self.masks.state.tau, batch_size=n)
        if self.global_step % max(1, self.cfg.train.log_every_n_steps) == 0:
            self.log("train/removed", self.masks.removed_fraction(), prog_bar=True, batch_size=n)
        return terms.total

    def on_save_checkpoint(self, checkpoint: dict) -> None:
        checkpoint["state_dict"] = {k: v for k, v in checkpoint["state_dict"].items() if k.endswith(SCORE_KEY)}

    def configure_optimizers(self) -> dict:
        return configure_adamw([{"params": self.masks.scores(), "weight_decay": 0.0}], self.cfg.optim,
                               self.cfg.train.max_steps)

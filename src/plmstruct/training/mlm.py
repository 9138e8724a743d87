"""Masked-LM training of a backbone on sequences: the collator, data module and Lightning module.

Used by ``plmstruct pretrain`` (the default model) and as the template for structure-aware MLM."""

from __future__ import annotations

import math
from collections.abc import Sequence

import lightning as L
import torch
from torch.utils.data import DataLoader

from plmstruct.backbone.model import Backbone
from plmstruct.data.mlm import EVAL_MASKING, MaskingConfig, mask_tokens, random_crop
from plmstruct.data.secondary_structure import IGNORE_INDEX
from plmstruct.training.config import OptimConfig
from plmstruct.training.optim import configure_adamw
from plmstruct.training.sampling import ResumableBatchSampler, SeededDataset
from plmstruct.training.trainer import ResumableDataModule


class MLMCollator:
    """``[(sequence, seed), ...]`` -> cropped, tokenized, masked batch (deterministic per seed)."""

    def __init__(self, backbone: Backbone, max_len: int, masking: MaskingConfig | None = None) -> None:
        self.backbone = backbone
        self.max_len = min(max_len, backbone.max_residues)
        self.masking = masking or MaskingConfig()
        self.residue_ids = backbone.residue_token_ids

    def __call__(self, items: Sequence[tuple[str, int]]) -> dict[str, torch.Tensor]:
        crops, gens = [], []
        for seq, seed in items:
            g = torch.Generator().manual_seed(seed)
            crops.append(random_crop(seq, self.max_len, g)[1])
            gens.append(g)
        enc = self.backbone.tokenize(crops)
        ids, labels = enc["input_ids"], torch.empty_like(enc["input_ids"])
        maskable = ~self.backbone.special_tokens_mask(ids)
        inputs = ids.clone()
        for row, g in enumerate(gens):
            inputs[row], labels[row] = mask_tokens(
                ids[row], maskable[row], mask_token_id=self.backbone.tokenizer.mask_token_id,
                residue_token_ids=self.residue_ids, generator=g, cfg=self.masking)
        return {"input_ids": inputs, "attention_mask": enc["attention_mask"], "labels": labels}


class SequenceMLMDataModule(ResumableDataModule):
    """Train/validation sequences for MLM; validation masks are fixed (same seeds every time) and
    every scored residue is hidden (:data:`~plmstruct.data.mlm.EVAL_MASKING`)."""

    def __init__(self, backbone: Backbone, train: Sequence[str], val: Sequence[str], *, batch_size: int = 8,
                 max_len: int = 512, seed: int = 0) -> None:
        super().__init__()
        self.collate = MLMCollator(backbone, max_len)
        self.val_collate = MLMCollator(backbone, max_len, EVAL_MASKING)
        self.train_seqs, self.val_seqs = list(train), list(val)
        self.batch_size, self.seed = batch_size, seed

    def setup(self, stage: str | None = None) -> None:
        if self.train_sampler is None:
            lengths = [min(len(s), self.collate.max_len) for s in self.train_seqs]
            self.train_sampler = ResumableBatchSampler(lengths, self.batch_size, seed=self.seed)

    def train_dataloader(self) -> DataLoader:
        return DataLoader(SeededDataset(self.train_seqs), batch_sampler=self.train_sampler, collate_fn=self.collate)

    def val_dataloader(self) -> DataLoader:
        lengths = [min(len(s), self.collate.max_len) for s in self.val_seqs]
        sampler = ResumableBatchSampler(lengths, self.batch_size, seed=self.seed + 1, shuffle=False)
        return DataLoader(SeededDataset(self.val_seqs), batch_sampler=sampler, collate_fn=self.val_collate)


def masked_lm_loss(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """Mean cross-entropy over positions whose label is not ``IGNORE_INDEX``."""
    return torch.nn.functional.cross_entropy(logits.flatten(0, 1).float(), labels.flatten(),
                                             ignore_index=IGNORE_INDEX)


class MLMModule(L.LightningModule):
    """Masked-LM training of all weights of a backbone (AdamW, warmup then decay)."""

    def __init__(self, backbone: Backbone, optim: OptimConfig | None = None, total_steps: int = 1000) -> None:
        super().__init__()
        self.backbone = backbone
        self.model = backbone.model
        self.optim = optim or OptimConfig(lr=4e-4, warmup_steps=200, schedule="linear", min_lr_ratio=0.1)
        self.total_steps = total_steps

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        return self.model(input_ids=input_ids, attention_mask=attention_mask).logits

    def on_fit_start(self) -> None:
        self.model.train()  # loaders hand out models in eval mode; dropout (if any) acts in training

    def _loss(self, batch: dict[str, torch.Tensor]) -> tuple[torch.Tensor, int]:
        """Masked-LM loss with the LM head run on the masked positions only (~15% of the tokens):
        the same loss as :func:`masked_lm_loss` on full logits, without the other 85% of the
        head's work and of its backward."""
        labels = batch["labels"]
        hidden = self.backbone.encoder(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"])[0]
        chosen = labels != IGNORE_INDEX
        head = self.model.lm_head if self.backbone.family == "esm" else self.model.cls
        logits = head(hidden[chosen])
        loss = torch.nn.functional.cross_entropy(logits.float(), labels[chosen])
        return loss, int(chosen.sum())

    def training_step(self, batch: dict[str, torch.Tensor], batch_idx: int) -> torch.Tensor:
        loss, n = self._loss(batch)
        self.log("train/loss", loss, prog_bar=True, batch_size=n)
        self.log("train/tokens", float(batch["attention_mask"].sum()), reduce_fx="sum", batch_size=1)
        return loss

    def validation_step(self, batch: dict[str, torch.Tensor], batch_idx: int) -> None:
        loss, n = self._loss(batch)
        self.log("val/loss", loss, prog_bar=True, batch_size=n, sync_dist=True)

    def on_validation_epoch_end(self) -> None:
        loss = self.trainer.callback_metrics.get("val/loss")
        if loss is not None:
            self.log("val/perplexity", math.exp(float(loss)), sync_dist=True)

    def configure_optimizers(self) -> dict:
        return configure_adamw(list(self.model.parameters()), self.optim, self.total_steps)

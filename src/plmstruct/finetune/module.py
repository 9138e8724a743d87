"""The Lightning module of secondary-structure fine-tuning (runs on the shared loop)."""

from __future__ import annotations

import lightning as L
import torch

from plmstruct.data.secondary_structure import IGNORE_INDEX
from plmstruct.finetune.model import SSModel
from plmstruct.training.config import OptimConfig
from plmstruct.training.optim import configure_adamw


def ss_loss(logits: torch.Tensor, labels: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, int]:
    """Cross-entropy over labelled residues (X ignored); also the number correct and labelled."""
    flat, target = logits.flatten(0, 1).float(), labels.flatten()
    loss = torch.nn.functional.cross_entropy(flat, target, ignore_index=IGNORE_INDEX)
    keep = target != IGNORE_INDEX
    correct = (flat.argmax(-1)[keep] == target[keep]).sum()
    return loss, correct, int(keep.sum())


class SSModule(L.LightningModule):
    """Trains the head and whatever the tuner left trainable; ``backbone_lr`` (default: ``optim.lr``)
    is the learning rate of trainable backbone weights (tuner parameters or, for ``full``, all)."""

    def __init__(self, model: SSModel, optim: OptimConfig | None = None, total_steps: int = 1000,
                 backbone_lr: float | None = None) -> None:
        super().__init__()
        self.model = model
        self.optim = optim or OptimConfig(lr=1e-3, warmup_steps=50, schedule="cosine", min_lr_ratio=0.05)
        self.total_steps = total_steps
        self.backbone_lr = backbone_lr

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        return self.model(input_ids, attention_mask)

    def on_fit_start(self) -> None:
        self.model.train()  # loaders hand out models in eval mode

    def _step(self, batch: dict[str, torch.Tensor], stage: str) -> torch.Tensor:
        logits = self(batch["input_ids"], batch["attention_mask"])
        loss, correct, n = ss_loss(logits, batch["labels"])
        self.log(f"{stage}/loss", loss, prog_bar=True, batch_size=max(n, 1), sync_dist=stage == "val")
        self.log(f"{stage}/acc", correct.float() / max(n, 1), prog_bar=stage == "val", batch_size=max(n, 1),
                 sync_dist=stage == "val")
        return loss

    def training_step(self, batch: dict[str, torch.Tensor], batch_idx: int) -> torch.Tensor:
        return self._step(batch, "train")

    def validation_step(self, batch: dict[str, torch.Tensor], batch_idx: int) -> None:
        self._step(batch, "val")

    def configure_optimizers(self) -> dict:
        head = list(self.model.head.parameters())
        groups = [{"params": [p for p in head if p.ndim >= 2], "weight_decay": self.optim.weight_decay},
                  {"params": [p for p in head if p.ndim < 2], "weight_decay": 0.0}]
        backbone = self.model.trainable_backbone_parameters()
        if backbone:
            lr = self.backbone_lr or self.optim.lr
            groups += [{"params": [p for p in backbone if p.ndim >= 2], "weight_decay": self.optim.weight_decay,
                        "lr": lr},
                       {"params": [p for p in backbone if p.ndim < 2], "weight_decay": 0.0, "lr": lr}]
        return configure_adamw([g for g in groups if g["params"]], self.optim, self.total_steps)

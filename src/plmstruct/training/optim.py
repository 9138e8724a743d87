"""AdamW + the warmup/decay schedule, in the form Lightning's ``configure_optimizers`` returns."""

from __future__ import annotations

from collections.abc import Iterable

import torch

from plmstruct.training.config import OptimConfig
from plmstruct.training.schedule import lr_multiplier


def configure_adamw(params: Iterable[torch.nn.Parameter] | list[dict], cfg: OptimConfig, total_steps: int) -> dict:
    """AdamW over ``params`` (no weight decay on biases/norms when given plain parameters) with a
    per-step ``LambdaLR``."""
    params = list(params)
    if params and isinstance(params[0], torch.nn.Parameter):
        decay = [p for p in params if p.requires_grad and p.ndim >= 2]
        no_decay = [p for p in params if p.requires_grad and p.ndim < 2]
        params = [{"params": decay, "weight_decay": cfg.weight_decay},
                  {"params": no_decay, "weight_decay": 0.0}]
    # foreach: one multi-tensor kernel per update term instead of a Python loop over parameters
    # (~1.8x faster optimizer step for ESM-2 8M on CPU; on CPU torch defaults to the loop). The
    # fused CPU kernel measured slower here.
    opt = torch.optim.AdamW(params, lr=cfg.lr, betas=cfg.betas, eps=cfg.eps, weight_decay=cfg.weight_decay,
                            foreach=True)
    sched = torch.optim.lr_scheduler.LambdaLR(
        opt, lr_multiplier(cfg.schedule, cfg.warmup_steps, total_steps, cfg.min_lr_ratio))
    return {"optimizer": opt, "lr_scheduler": {"scheduler": sched, "interval": "step"}}

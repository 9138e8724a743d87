"""Configuration of the shared training loop (every method uses these two dataclasses)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path


@dataclass
class OptimConfig:
    """AdamW + warmup then decay (``linear``, ``cosine``, ``inverse_sqrt``, ``constant`` or ``onecycle``)."""

    lr: float = 1e-3
    weight_decay: float = 0.01
    betas: tuple[float, float] = (0.9, 0.98)
    eps: float = 1e-8
    warmup_steps: int = 100
    schedule: str = "linear"
    min_lr_ratio: float = 0.0


@dataclass
class TrainConfig:
    """One Trainer set-up for all methods: CPU here, GPU + bf16 when present, DDP on request."""

    out_dir: Path = Path("runs/default")
    max_steps: int = 1000
    max_epochs: int = -1
    batch_size: int = 8
    accumulate_grad_batches: int = 1
    gradient_clip_val: float | None = 1.0
    val_every_n_steps: int | None = 200
    limit_val_batches: int | float = 1.0
    checkpoint_every_n_steps: int = 100
    log_every_n_steps: int = 10
    seed: int = 0
    accelerator: str = "auto"
    devices: int | str = "auto"
    num_nodes: int = 1
    strategy: str = "auto"
    precision: str = "auto"
    progress: bool = True
    resume: bool = False
    num_threads: int | None = None
    deterministic: bool = False

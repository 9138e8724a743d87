"""The secondary-structure head: a small 1D-convolutional network over the residue states."""

from __future__ import annotations

from dataclasses import asdict, dataclass

import torch
from torch import nn


@dataclass
class HeadConfig:
    """Two multi-scale conv blocks (kernels 1 and 3, concatenated), a kernel-9 conv, a linear."""

    channels: int = 64
    wide_kernel: int = 9
    dropout: float = 0.1
    input_norm: bool = True  # LayerNorm over the residue states first (BERT states have outlier scales)

    def to_dict(self) -> dict:
        return asdict(self)


class _MultiScale(nn.Module):
    """``relu(cat(conv_k1(x), conv_k3(x)))`` then dropout; ``2 * channels`` outputs."""

    def __init__(self, inp: int, channels: int, dropout: float) -> None:
        super().__init__()
        self.k1 = nn.Conv1d(inp, channels, 1)
        self.k3 = nn.Conv1d(inp, channels, 3, padding=1)
        self.drop = nn.Dropout(dropout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.drop(torch.relu(torch.cat([self.k1(x), self.k3(x)], dim=1)))


class ConvHead(nn.Module):
    """Per-residue logits from residue states ``(B, L, hidden)`` and a residue mask ``(B, L)``.

    Padded positions are zeroed before every convolution, so a chain's logits do not depend on
    what it is batched with."""

    def __init__(self, hidden: int, n_states: int, cfg: HeadConfig | None = None) -> None:
        super().__init__()
        cfg = cfg or HeadConfig()
        self.cfg, self.n_states = cfg, n_states
        self.norm = nn.LayerNorm(hidden) if cfg.input_norm else nn.Identity()
        self.block1 = _MultiScale(hidden, cfg.channels, cfg.dropout)
        self.block2 = _MultiScale(2 * cfg.channels, cfg.channels, cfg.dropout)
        self.wide = nn.Conv1d(2 * cfg.channels, cfg.channels, cfg.wide_kernel, padding=cfg.wide_kernel // 2)
        self.out = nn.Linear(cfg.channels, n_states)

    def forward(self, states: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        m = mask.unsqueeze(1).to(states.dtype)
        x = self.norm(states).transpose(1, 2) * m
        x = self.block1(x) * m
        x = self.block2(x) * m
        x = torch.relu(self.wide(x)) * m
        return self.out(x.transpose(1, 2))

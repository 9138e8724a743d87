"""The PST structure extractor: a small GIN that reads residue states over the residue graph.

One extractor sits in every transformer block. It takes the block's layer-normed residue states
(the input of the attention's query/key/value linears) for the residues of a batch of graphs, runs
``num_layers`` GIN layers (torch_geometric ``GINConv`` with 2-layer MLPs, trainable epsilon, batch
norm), projects the output of every layer and sums the projections into the structure summary
``S``. The block then adds ``W_Q^s S``, ``W_K^s S`` and ``W_V^s S`` (zero-initialised, see
:class:`StructureProjections`) to the query, key and value.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn
from torch_geometric.nn import GINConv

#: the three attention linears that receive a structure term
QKV = ("query", "key", "value")


@dataclass
class ExtractorConfig:
    """Shape of the per-block structure extractor.

    ``hidden_dim`` is the width of the GIN and of ``S``; ``None`` means ``width_ratio`` times the
    model's hidden size. The published PST uses the full width (ratio 1); the default 1/4 keeps the
    structure pass at roughly a tenth of a transformer block's cost (the forward-time goal of
    <= 1.25x the backbone), and ``--extractor-dim`` sets any width."""

    hidden_dim: int | None = None
    width_ratio: float = 0.25
    num_layers: int = 2
    train_eps: bool = True
    batch_norm: bool = True

    def width(self, model_dim: int) -> int:
        return int(self.hidden_dim or max(8, round(model_dim * self.width_ratio)))


def _mlp(in_dim: int, out_dim: int) -> nn.Sequential:
    return nn.Sequential(nn.Linear(in_dim, out_dim), nn.ReLU(), nn.Linear(out_dim, out_dim))


class StructureExtractor(nn.Module):
    """``S = sum_l P_l BN_l(GIN_l(h_{l-1}))`` over the residue graph (ReLU between layers)."""

    def __init__(self, in_dim: int, cfg: ExtractorConfig | None = None) -> None:
        super().__init__()
        cfg = cfg or ExtractorConfig()
        width = cfg.width(in_dim)
        dims = [in_dim] + [width] * cfg.num_layers
        self.convs = nn.ModuleList(
            GINConv(_mlp(dims[i], dims[i + 1]), train_eps=cfg.train_eps) for i in range(cfg.num_layers))
        self.norms = nn.ModuleList(
            nn.BatchNorm1d(width) if cfg.batch_norm else nn.Identity() for _ in range(cfg.num_layers))
        self.out_projs = nn.ModuleList(nn.Linear(width, width, bias=False) for _ in range(cfg.num_layers))
        self.out_dim = width

    def forward(self, x: torch.Tensor, edge_index: torch.Tensor) -> torch.Tensor:
        """``x``: (nodes, in_dim) residue states; ``edge_index``: (2, edges). Returns (nodes, out_dim)."""
        s = None
        h = x
        for i, (conv, norm, proj) in enumerate(zip(self.convs, self.norms, self.out_projs, strict=True)):
            h = norm(conv(h, edge_index))
            s = proj(h) if s is None else s + proj(h)
            if i < len(self.convs) - 1:
                h = torch.relu(h)
        assert s is not None
        return s


class StructureProjections(nn.Module):
    """``W_Q^s``, ``W_K^s``, ``W_V^s``: map ``S`` into query/key/value space; zero at init, so an
    untrained PST computes exactly what its backbone computes."""

    def __init__(self, in_dim: int, out_dim: int) -> None:
        super().__init__()
        self.query = nn.Linear(in_dim, out_dim, bias=False)
        self.key = nn.Linear(in_dim, out_dim, bias=False)
        self.value = nn.Linear(in_dim, out_dim, bias=False)
        for name in QKV:
            nn.init.zeros_(getattr(self, name).weight)

    def forward(self, s: torch.Tensor, which: str) -> torch.Tensor:
        return getattr(self, which)(s)


class BlockStructure(nn.Module):
    """Everything PST adds to one transformer block: the extractor and its three projections."""

    def __init__(self, model_dim: int, cfg: ExtractorConfig | None = None) -> None:
        super().__init__()
        self.extractor = StructureExtractor(model_dim, cfg)
        self.proj = StructureProjections(self.extractor.out_dim, model_dim)

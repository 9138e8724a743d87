"""`PSTModel`: a backbone whose attention query/key/value also read the residue graph.

The backbone is not copied: in every block, the ``attention.self.query/key/value`` linears are
replaced by :class:`StructureAwareLinear` wrappers that call the original linear and add
``W^s S``. ``S`` is computed once per block (by the query wrapper, reused by key and value) from the
block's layer-normed residue states, i.e. the very input of the query linear — pre-LN for ESM,
the previous block's post-LN output for BERT/AntiBERTy. Token positions ``<cls> r_1 ... r_n <eos>
<pad>...`` map to graph nodes ``r_1..r_n`` in batch order (the node order of a torch_geometric
``Batch``); special tokens and padding get no structure term. Without a graph the extractors are
skipped and the model computes exactly what the backbone computes (sequence mode).
"""

from __future__ import annotations

import contextlib
import hashlib
import warnings
from collections.abc import Iterator
from dataclasses import dataclass, field

import torch
from torch import nn

from plmstruct.backbone.model import Backbone
from plmstruct.errors import InputError
from plmstruct.pst.extractor import QKV, BlockStructure, ExtractorConfig

MODES = ("extractors-only", "full")


@dataclass
class PSTConfig:
    """PST on top of a backbone: the extractor shape and the graph radius (Å, Cα–Cα)."""

    extractor: ExtractorConfig = field(default_factory=ExtractorConfig)
    radius: float = 8.0


class _GraphState:
    """The graph of the current forward pass, shared by all wrappers of one model, plus the
    per-block cache of ``S`` (keyed by the identity of the block's input tensor).

    The graph is held as a sparse CSR adjacency (``adj_t[target, source] = 1``): GINConv then sums
    neighbours with one multi-threaded sparse matmul instead of a per-edge scatter."""

    def __init__(self) -> None:
        self.adj_t: torch.Tensor | None = None
        self.residue_mask: torch.Tensor | None = None
        self.cache: dict[int, tuple[torch.Tensor, torch.Tensor]] = {}

    def structure(self, layer: int, x: torch.Tensor, block: BlockStructure) -> torch.Tensor | None:
        """``S`` laid out on the token grid (batch, tokens, width; zero at special tokens and
        padding) for block ``layer`` given its input ``x`` (batch, tokens, hidden); ``None`` in
        sequence mode."""
        if self.adj_t is None or self.residue_mask is None:
            return None
        hit = self.cache.get(layer)
        if hit is not None and hit[0] is x:
            return hit[1]
        nodes = block.extractor(x[self.residue_mask], self.adj_t.to(x.dtype))
        s = nodes.new_zeros((*x.shape[:-1], nodes.shape[-1]))
        s[self.residue_mask] = nodes
        self.cache[layer] = (x, s)
        return s

    @contextlib.contextmanager
    def use(self, edge_index: torch.Tensor, residue_mask: torch.Tensor) -> Iterator[None]:
        n = int(residue_mask.sum())
        ones = torch.ones(edge_index.shape[1], device=edge_index.device)
        with warnings.catch_warnings():  # "sparse CSR support is in beta"
            warnings.simplefilter("ignore", UserWarning)
            adj_t = torch.sparse_coo_tensor(edge_index.flip(0), ones, (n, n)).coalesce().to_sparse_csr()
        self.adj_t, self.residue_mask, self.cache = adj_t, residue_mask, {}
        try:
            yield
        finally:
            self.adj_t, self.residue_mask, self.cache = None, None, {}


class StructureAwareLinear(nn.Module):
    """``base(x) + W^s S`` at residue positions; exactly ``base(x)`` without a graph.

    ``base`` stays a submodule (so whatever it is — a plain, LoRA or masked linear — keeps
    working); the block's extractor is owned by :class:`PSTModel` and only referenced here."""

    def __init__(self, base: nn.Module, which: str, layer: int, block: BlockStructure, state: _GraphState) -> None:
        super().__init__()
        self.base = base
        self.which = which
        self.layer = layer
        self._shared = (block, state)  # a tuple: not registered, so parameters are not duplicated

    @property
    def weight(self) -> torch.Tensor:
        return self.base.weight

    @property
    def bias(self) -> torch.Tensor | None:
        return self.base.bias

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.base(x)
        block, state = self._shared
        s = state.structure(self.layer, x, block)
        if s is None:
            return out
        return out + block.proj(s, self.which).to(out.dtype)


def residue_positions(attention_mask: torch.Tensor) -> torch.Tensor:
    """True at residue tokens of right-padded ``<cls> residues <eos> <pad>...`` rows."""
    lengths = attention_mask.sum(dim=1, keepdim=True)
    pos = torch.arange(attention_mask.shape[1], device=attention_mask.device).unsqueeze(0)
    return (pos >= 1) & (pos < lengths - 1)


def backbone_fingerprint(backbone: Backbone) -> str:
    """A short hash of the backbone's token embeddings: detects a changed backbone on reload."""
    emb = backbone.encoder.embeddings.word_embeddings.weight.detach().float().cpu().contiguous()
    return hashlib.sha256(emb.numpy().tobytes()).hexdigest()[:16]


class PSTModel(nn.Module):
    """A :class:`Backbone` with a structure extractor in every block (see module docs).

    ``forward(input_ids, attention_mask, graph=None)`` returns the backbone's masked-LM output
    (``logits``, and ``hidden_states`` on request); ``graph`` is a torch_geometric ``Data``/``Batch``
    (or anything with ``edge_index`` and ``num_nodes``) whose nodes are the residues of the batch."""

    def __init__(self, backbone: Backbone, cfg: PSTConfig | None = None) -> None:
        super().__init__()
        self.cfg = cfg or PSTConfig()
        self.backbone = backbone
        self.model = backbone.model
        self._state = _GraphState()
        self.blocks = nn.ModuleList(BlockStructure(backbone.hidden_size, self.cfg.extractor)
                                    for _ in range(backbone.num_layers))
        for layer, block in enumerate(self.blocks):
            attn = backbone.layers[layer].attention.self
            for which in QKV:
                base = getattr(attn, which)
                if isinstance(base, StructureAwareLinear):
                    raise ValueError("this backbone is already wrapped by a PSTModel")
                setattr(attn, which, StructureAwareLinear(base, which, layer, block, self._state))
        self.blocks.to(backbone.device)
        self.mode = "full"
        self.fingerprint = backbone_fingerprint(backbone)

    # ---- forward ------------------------------------------------------------------------
    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor, graph: object | None = None,
                *, output_hidden_states: bool = False):
        if graph is None:
            return self.model(input_ids=input_ids, attention_mask=attention_mask,
                              output_hidden_states=output_hidden_states)
        mask = residue_positions(attention_mask)
        n_res, n_nodes = int(mask.sum()), int(graph.num_nodes)
        if n_res != n_nodes:
            raise InputError(f"the residue graph has {n_nodes} nodes but the batch has {n_res} residues")
        with self._state.use(graph.edge_index.to(input_ids.device), mask):
            return self.model(input_ids=input_ids, attention_mask=attention_mask,
                              output_hidden_states=output_hidden_states)

    # ---- training modes -------------------------------------------------------------------
    def set_mode(self, mode: str) -> None:
        """``extractors-only``: only the extractors/projections train (backbone frozen, kept in
        eval mode so its dropout is off); ``full``: everything trains."""
        if mode not in MODES:
            raise InputError(f"mode must be one of {', '.join(MODES)}, not {mode!r}")
        self.mode = mode
        for p in self.model.parameters():
            p.requires_grad_(mode == "full")
        for p in self.blocks.parameters():
            p.requires_grad_(True)
        self.train(self.training)

    def train(self, mode: bool = True) -> PSTModel:
        super().train(mode)
        if self.mode == "extractors-only":
            self.model.eval()
        return self

    def trainable_parameters(self) -> list[nn.Parameter]:
        return [p for p in self.parameters() if p.requires_grad]

    # ---- weights ----------------------------------------------------------------------------
    def extractor_state_dict(self) -> dict[str, torch.Tensor]:
        """Weights and buffers PST adds (extractors, projections, batch-norm statistics)."""
        return {k: v.detach().contiguous() for k, v in self.blocks.state_dict().items()}

    def backbone_state_dict(self) -> dict[str, torch.Tensor]:
        """The backbone's state dict under its original (unwrapped) names."""
        out = {}
        for key, value in self.model.state_dict().items():
            for which in QKV:
                key = key.replace(f".attention.self.{which}.base.", f".attention.self.{which}.")
            out[key] = value.detach().contiguous()
        return out

    def load_backbone_state_dict(self, state: dict[str, torch.Tensor]) -> None:
        """Inverse of :meth:`backbone_state_dict`."""
        renamed = {}
        for key, value in state.items():
            for which in QKV:
                key = key.replace(f".attention.self.{which}.", f".attention.self.{which}.base.")
            renamed[key] = value
        missing, unexpected = self.model.load_state_dict(renamed, strict=False)
        missing = [k for k in missing if not k.endswith(("position_ids", "inv_freq", "decoder.weight"))
                   and "contact_head" not in k]
        if missing or unexpected:
            raise InputError(f"backbone weights do not match: missing={missing[:5]} unexpected={unexpected[:5]}")

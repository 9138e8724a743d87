"""Structures -> PST inputs: tokens plus a batched residue graph (torch_geometric ``Batch``).

A :class:`GraphItem` is one chain: its id, its sequence and the edges of its residue graph
(Cα within ``radius`` Å, both directions, no self loops; from :mod:`plmstruct.data.graph`).
Cropping a chain to a window crops its graph (edges with both ends inside, renumbered), so a
window of a long chain is again a valid item. :class:`StructureMLMCollator` turns ``(item, seed)``
pairs into a masked-LM batch with random crops; :class:`StructureMLMDataModule` plugs that into the
shared resumable training loop.
"""

from __future__ import annotations

import random
import warnings
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import torch
from torch.utils.data import DataLoader
from torch_geometric.data import Batch, Data

from plmstruct.backbone.model import Backbone
from plmstruct.data.corpus import ExactStretchFilter
from plmstruct.data.mlm import EVAL_MASKING, MaskingConfig, mask_tokens, random_crop
from plmstruct.errors import InputError
from plmstruct.training.sampling import ResumableBatchSampler, SeededDataset
from plmstruct.training.trainer import ResumableDataModule


@dataclass(frozen=True)
class GraphItem:
    """One chain for PST: ``edge_index`` (2, E) over residues ``0..len-1``, or ``None`` (sequence
    mode, no structure)."""

    id: str
    sequence: str
    edge_index: torch.Tensor | None

    def __len__(self) -> int:
        return len(self.sequence)

    def crop(self, start: int, length: int) -> GraphItem:
        """Residues ``start:start+length`` with the induced subgraph, renumbered from 0."""
        stop = min(len(self.sequence), start + length)
        if start == 0 and stop == len(self.sequence):
            return self
        edges = self.edge_index
        if edges is not None:
            keep = (edges >= start).all(0) & (edges < stop).all(0)
            edges = edges[:, keep] - start
        return GraphItem(self.id, self.sequence[start:stop], edges)

    def graph(self) -> Data:
        if self.edge_index is None:
            raise ValueError(f"{self.id}: no structure (sequence-mode item)")
        return Data(edge_index=self.edge_index, num_nodes=len(self.sequence))


def item_from_structure(structure, *, radius: float = 8.0, name: str | None = None) -> GraphItem:
    """A :class:`GraphItem` from a :class:`plmstruct.data.structure.ProteinStructure`."""
    from plmstruct.data.graph import residue_graph

    graph = residue_graph(structure, radius=radius)
    return GraphItem(name or structure.id, structure.sequence, graph.edge_index.long().contiguous())


def structure_key(structure, root: str | Path | None = None, *, all_chains: bool = False) -> str:
    """The id of a structure in PST outputs: its file name without suffix, prefixed by its
    sub-folder relative to ``root`` (``novozymes_pdb/10975``), plus ``_chain`` with ``all_chains``."""
    from plmstruct.data.structure import structure_id

    key = structure.id
    if root is not None and structure.path is not None and Path(root).is_dir():
        parent = Path(structure.path).parent.resolve().relative_to(Path(root).resolve())
        key = (parent / structure_id(structure.path)).as_posix() if parent.parts else key
    return f"{key}_{structure.chain}" if all_chains and structure.chain else key


def load_graph_items(source: str | Path | Iterable[str | Path], *, radius: float = 8.0,
                     alphabet: str | None = None, recursive: bool = True, all_chains: bool = False,
                     on_error: str = "skip") -> tuple[list[GraphItem], list[str]]:
    """Read a folder (or files) of PDB/mmCIF structures into items.

    Returns ``(items, skipped)``: chains whose letters fall outside ``alphabet`` (e.g. ``X`` for a
    BERT backbone) and unreadable files (with ``on_error="skip"``) are skipped and named in
    ``skipped``. Ids: see :func:`structure_key`; duplicate ids are an error."""
    from plmstruct.data.structure import load_structures

    if isinstance(source, str | Path) and not Path(source).exists():
        raise InputError("no such file or directory", path=source)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        structures = load_structures(source, all_chains=all_chains, on_error=on_error, recursive=recursive)
    skipped = [str(w.message) for w in caught if str(w.message).startswith("skipped")]
    items: list[GraphItem] = []
    seen: dict[str, Path | None] = {}
    for s in structures:
        name = structure_key(s, source if isinstance(source, str | Path) else None, all_chains=all_chains)
        if name in seen:
            raise InputError(f"two structures share the id {name!r} ({seen[name]} and {s.path}); "
                             "rename one", path=s.path)
        seen[name] = s.path
        bad = next((c for c in s.sequence if alphabet is not None and c not in alphabet), None)
        if bad is not None:
            skipped.append(f"{name}: letter {bad!r} is outside the backbone alphabet")
            continue
        items.append(item_from_structure(s, radius=radius, name=name))
    if not items:
        why = f" (skipped: {'; '.join(s.removeprefix('skipped: ') for s in skipped[:3])}" \
              f"{f'; and {len(skipped) - 3} more' if len(skipped) > 3 else ''})" if skipped else ""
        raise InputError(f"no usable protein chain in the input{why}",
                         path=source if isinstance(source, str | Path) else None)
    return items, skipped


def batch_graph(items: Sequence[GraphItem]) -> Batch | None:
    """The items' graphs as one torch_geometric ``Batch`` (None when the items have no structure)."""
    if all(it.edge_index is None for it in items):
        return None
    return Batch.from_data_list([it.graph() for it in items])


def encode_items(backbone: Backbone, items: Sequence[GraphItem]) -> dict[str, object]:
    """Tokens (``<cls> residues <eos>``, right-padded) and the batched graph of ``items``."""
    enc = backbone.tokenize([it.sequence for it in items])
    return {"input_ids": enc["input_ids"], "attention_mask": enc["attention_mask"], "graph": batch_graph(items)}


def split_items(items: Sequence[GraphItem], val_fraction: float, seed: int = 0,
                stretch: int = 30) -> tuple[list[GraphItem], list[GraphItem]]:
    """Deduplicate sequences, hold out ``val_fraction`` of the chains, and drop from training every
    chain sharing an exact ``stretch``-residue window with a held-out chain (near duplicates such
    as a PDB entry and the AlphaFold model of the same protein)."""
    unique: dict[str, GraphItem] = {}
    for it in items:
        unique.setdefault(it.sequence, it)
    pool = sorted(unique.values(), key=lambda it: it.id)
    random.Random(seed).shuffle(pool)
    n_val = max(1, round(len(pool) * val_fraction)) if val_fraction > 0 else 0
    val, train = pool[:n_val], pool[n_val:]
    if val:
        screen = ExactStretchFilter([it.sequence for it in val], k=stretch)
        train = [it for it in train if not screen.hits(it.sequence)]
    return train, val


class StructureMLMCollator:
    """``[(GraphItem, seed), ...]`` -> random crop (graph cropped too), tokens, 15% masking
    (80/10/10) and the batched graph; deterministic per item seed."""

    def __init__(self, backbone: Backbone, max_len: int, masking: MaskingConfig | None = None) -> None:
        self.backbone = backbone
        self.max_len = min(max_len, backbone.max_residues)
        self.masking = masking or MaskingConfig()
        self.residue_ids = backbone.residue_token_ids

    def __call__(self, batch: Sequence[tuple[GraphItem, int]]) -> dict[str, object]:
        crops, gens = [], []
        for item, seed in batch:
            g = torch.Generator().manual_seed(seed)
            start, _ = random_crop(item.sequence, self.max_len, g)
            crops.append(item.crop(start, self.max_len))
            gens.append(g)
        enc = encode_items(self.backbone, crops)
        ids = enc["input_ids"]
        maskable = ~self.backbone.special_tokens_mask(ids)
        inputs, labels = ids.clone(), torch.empty_like(ids)
        for row, g in enumerate(gens):
            inputs[row], labels[row] = mask_tokens(
                ids[row], maskable[row], mask_token_id=self.backbone.tokenizer.mask_token_id,
                residue_token_ids=self.residue_ids, generator=g, cfg=self.masking)
        return {"input_ids": inputs, "attention_mask": enc["attention_mask"], "labels": labels,
                "graph": enc["graph"]}


class StructureMLMDataModule(ResumableDataModule):
    """Train/validation structures for PST masked-LM; validation crops and masks are fixed and
    every scored residue is hidden (:data:`~plmstruct.data.mlm.EVAL_MASKING`)."""

    def __init__(self, backbone: Backbone, train: Sequence[GraphItem], val: Sequence[GraphItem], *,
                 batch_size: int = 8, max_len: int = 512, seed: int = 0) -> None:
        super().__init__()
        self.collate = StructureMLMCollator(backbone, max_len)
        self.val_collate = StructureMLMCollator(backbone, max_len, EVAL_MASKING)
        self.train_items, self.val_items = list(train), list(val)
        self.batch_size, self.seed = batch_size, seed

    def _lengths(self, items: Sequence[GraphItem]) -> list[int]:
        return [min(len(it), self.collate.max_len) for it in items]

    def setup(self, stage: str | None = None) -> None:
        if self.train_sampler is None:
            self.train_sampler = ResumableBatchSampler(self._lengths(self.train_items), self.batch_size,
                                                       seed=self.seed)

    def train_dataloader(self) -> DataLoader:
        return DataLoader(SeededDataset(self.train_items), batch_sampler=self.train_sampler,
                          collate_fn=self.collate)

    def val_dataloader(self) -> DataLoader:
        sampler = ResumableBatchSampler(self._lengths(self.val_items), self.batch_size, seed=self.seed + 1,
                                        shuffle=False)
        return DataLoader(SeededDataset(self.val_items), batch_sampler=sampler, collate_fn=self.val_collate)

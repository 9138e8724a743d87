"""Contact precision of a model's attention against true contacts from real structures.

Contacts are predicted from the symmetrised, APC-corrected attention maps of every layer and head
(the features of ESM's contact regression) by a logistic-regression probe fitted on the original
model's maps of a set of training structures; the same fitted probe then scores the test
structures with the original and with the masked model (like ESM-2's fixed contact head).
``head="esm"`` uses the model's own trained contact head instead (``Backbone.contact_head``: the HF
ESM-2 checkpoints have one; the embedded default model and AntiBERTy do not).
Precision of the top L/5 and L/2 pairs per chain, for long (|i-j| >= 24) and medium (12-23) ranges,
averaged over chains (with each range's base rate: the expected precision of a random ranking); true contacts = Cβ (Cα for Gly) within 8 Å."""

from __future__ import annotations

import csv
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from plmstruct.backbone.kernels import attention_maps
from plmstruct.backbone.model import Backbone
from plmstruct.data.graph import contact_map
from plmstruct.data.paths import data_file
from plmstruct.data.structure import ProteinStructure, load_structure
from plmstruct.errors import InputError

RANGES = {"medium": (12, 23), "long": (24, None)}
MIN_SEPARATION = 6
#: experimental sources of the bundled collection (AlphaFold models left out)
EXPERIMENTAL = ("ts50_pdb", "novozymes_pdb", "pdb_chains_misc", "cath_tools_domains", "kortemme_pfam_domains")


@dataclass
class ContactConfig:
    n_train: int = 30
    n_test: int = 20
    min_len: int = 40
    max_len: int = 300
    seed: int = 0
    regularization: float = 0.1  # inverse strength C of the L2 logistic regression (standardised features)
    threshold: float = 8.0


def collection_structures(alphabet: str, cfg: ContactConfig | None = None, *, index: Path | None = None,
                          sources: Sequence[str] = EXPERIMENTAL) -> tuple[list[ProteinStructure], list[ProteinStructure]]:
    """(train, test) chains from the bundled structure collection (``index.tsv``): experimental
    chains of ``min_len``..``max_len`` Cα residues whose letters the backbone encodes, split by a
    seeded permutation (whole structures, never pairs, are split)."""
    cfg = cfg or ContactConfig()
    index = index or data_file("structures_collection", "index.tsv")
    rows = list(csv.DictReader(index.open(), delimiter="\t"))
    rows = [r for r in rows if r["source"] in sources and cfg.min_len <= int(r["n_ca_residues"]) <= cfg.max_len]
    order = torch.randperm(len(rows), generator=torch.Generator().manual_seed(cfg.seed)).tolist()
    chosen: list[ProteinStructure] = []
    allowed = set(alphabet)
    for i in order:
        r = rows[i]
        try:
            s = load_structure(index.parent / r["file"], (r["chains"].split(",")[0] or None))
        except InputError:
            continue
        if set(s.sequence) <= allowed and cfg.min_len <= len(s) <= cfg.max_len and (~s.missing_ca).sum() >= cfg.min_len:
            chosen.append(s)
        if len(chosen) == cfg.n_train + cfg.n_test:
            break
    if len(chosen) < 2:
        raise InputError("too few usable structures for a contact evaluation", path=index)
    n_test = min(cfg.n_test, len(chosen) // 2)
    return chosen[n_test:], chosen[:n_test]


def apc(x: torch.Tensor) -> torch.Tensor:
    """Average product correction over the last two dims."""
    a1, a2 = x.sum(-1, keepdim=True), x.sum(-2, keepdim=True)
    return x - a1 * a2 / x.sum((-1, -2), keepdim=True)


@torch.no_grad()
def attention_features(backbone: Backbone, sequence: str) -> torch.Tensor:
    """``(channels, L, L)``: every layer x head attention map over the residues, symmetrised and
    APC-corrected."""
    enc = backbone.encode([sequence])
    model = backbone.model
    was_training = model.training
    model.eval()
    with attention_maps(model):
        out = backbone.encoder(input_ids=enc["input_ids"].to(backbone.device),
                               attention_mask=enc["attention_mask"].to(backbone.device), output_attentions=True)
    model.train(was_training)
    n = len(sequence)
    maps = torch.cat([a[0, :, 1: n + 1, 1: n + 1] for a in out.attentions]).float().cpu()
    return apc(maps + maps.transpose(-1, -2))


def _pairs(n: int, valid: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    i, j = np.triu_indices(n, MIN_SEPARATION)
    keep = valid[i] & valid[j]
    return i[keep], j[keep]


def _truth(s: ProteinStructure, threshold: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """True contacts of the scored pairs (both residues resolved, |i-j| >= 6), and the pairs."""
    i, j = _pairs(len(s), ~s.missing_ca)
    return contact_map(s, threshold).numpy()[i, j], i, j


def _pair_data(backbone: Backbone, s: ProteinStructure, threshold: float) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    feats = attention_features(backbone, s.sequence).numpy()
    y, i, j = _truth(s, threshold)
    return feats[:, i, j].T, y, i, j


def fit_contact_probe(backbone: Backbone, train: Sequence[ProteinStructure], cfg: ContactConfig | None = None):
    """A logistic-regression probe (sklearn) from attention features to contacts."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    cfg = cfg or ContactConfig()
    xs, ys = [], []
    for s in train:
        x, y, _, _ = _pair_data(backbone, s, cfg.threshold)
        xs.append(x)
        ys.append(y)
    probe = make_pipeline(StandardScaler(), LogisticRegression(C=cfg.regularization, max_iter=2000))
    probe.fit(np.concatenate(xs), np.concatenate(ys))
    return probe


def _esm_scores(backbone: Backbone, sequence: str) -> np.ndarray:
    enc = backbone.encode([sequence])
    with torch.no_grad(), attention_maps(backbone.model):
        c = backbone.model.predict_contacts(enc["input_ids"].to(backbone.device),
                                            enc["attention_mask"].to(backbone.device))
    return c[0].float().cpu().numpy()


def precision_at(scores: np.ndarray, truth: np.ndarray, i: np.ndarray, j: np.ndarray, length: int) -> dict[str, float]:
    """Top-L/5 and top-L/2 precision per range for one chain (pairs given by ``i``, ``j``)."""
    out = {}
    sep = j - i
    for name, (lo, hi) in RANGES.items():
        sel = (sep >= lo) & ((sep <= hi) if hi is not None else True)
        s, t = scores[sel], truth[sel]
        order = np.argsort(-s, kind="stable")
        for frac, label in ((5, "L/5"), (2, "L/2")):
            k = max(1, length // frac)
            top = order[:k]
            out[f"{name} {label}"] = float(t[top].mean()) if len(top) else float("nan")
        out[f"{name} base rate"] = float(t.mean()) if len(t) else float("nan")
    return out


def contact_precision(backbone: Backbone, test: Sequence[ProteinStructure], probe=None, *, head: str = "probe",
                      threshold: float = 8.0) -> dict[str, float]:
    """Mean precision over ``test`` chains (``head``: ``probe`` needs a fitted ``probe``; ``esm``
    uses the model's own contact head)."""
    if head == "esm" and not backbone.contact_head:
        raise InputError(f"{backbone.name} has no trained ESM contact head; use the attention probe")
    if head == "probe" and probe is None:
        raise ValueError("head='probe' needs a fitted probe (fit_contact_probe)")
    per_chain = []
    for s in test:
        if head == "probe":
            x, y, i, j = _pair_data(backbone, s, threshold)
            scores = probe.decision_function(x)
        else:
            y, i, j = _truth(s, threshold)
            scores = _esm_scores(backbone, s.sequence)[i, j]
        per_chain.append(precision_at(scores, y, i, j, len(s)))
    keys = per_chain[0].keys()
    return {k: round(float(np.nanmean([p[k] for p in per_chain])), 4) for k in keys} | {"chains": len(per_chain)}

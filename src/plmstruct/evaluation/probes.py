"""Probes: small heads trained on frozen embeddings, several embedding files on one split.

Tasks: per-protein ``multiclass`` (accuracy), per-protein ``multilabel`` (protein-centric Fmax,
as in CAFA/DeepFRI), per-residue secondary structure ``ss3``/``ss8`` (Q3/Q8 on DSSP labels).
Heads: ``linear`` or a one-hidden-layer ``mlp``; features standardised on the training split.
The split is by protein, seeded, and redundancy-aware: a training protein that shares an exact
``stretch``-residue window with a test protein is dropped from training.

Label sets (see :func:`resolve_labels`): ``dssp:FOLDER`` (DSSP of the structures themselves),
``scop-class:FOLDER`` / ``scop-fold:FOLDER`` (SCOP labels of structures whose PDB entry and chain
are in the bundled SCOP lists), ``scop-fold`` (SCOPe 2.01 40% domains, sequences only),
``ec`` (DeepFRI nrPDB-EC test chains, sequences only), ``ec:FOLDER``, or a TSV ``id<TAB>label[,label]``.
"""

from __future__ import annotations

import csv
import gzip
import random
import re
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import nn

from plmstruct.data.corpus import ExactStretchFilter
from plmstruct.data.secondary_structure import IGNORE_INDEX, label_indices, to_states
from plmstruct.errors import InputError
from plmstruct.pst.data import structure_key

TASKS = ("multiclass", "multilabel", "ss3", "ss8")
HEADS = ("linear", "mlp")


@dataclass
class ProbeConfig:
    """Head and training of a probe (fixed settings: no tuning on the test split)."""

    head: str = "linear"
    hidden: int = 256
    epochs: int = 300
    residue_steps: int = 1500
    lr: float = 1e-3
    weight_decay: float = 1e-4
    batch_size: int = 1024
    test_fraction: float = 0.2
    seed: int = 0
    min_per_class: int = 5
    stretch: int = 30


@dataclass
class LabelSet:
    """``labels``: id -> class (multiclass), list of labels (multilabel) or a per-residue DSSP
    string (ss3/ss8); ``task`` is the default task for these labels."""

    task: str
    labels: dict[str, object]
    description: str


# ---- heads -------------------------------------------------------------------------------------
def make_head(in_dim: int, out_dim: int, cfg: ProbeConfig) -> nn.Module:
    if cfg.head not in HEADS:
        raise InputError(f"head must be one of {', '.join(HEADS)}, not {cfg.head!r}")
    if cfg.head == "linear":
        return nn.Linear(in_dim, out_dim)
    return nn.Sequential(nn.Linear(in_dim, cfg.hidden), nn.ReLU(), nn.Dropout(0.2), nn.Linear(cfg.hidden, out_dim))


def _standardise(train: np.ndarray, *others: np.ndarray) -> list[torch.Tensor]:
    mean, std = train.mean(0, keepdims=True), train.std(0, keepdims=True) + 1e-6
    return [torch.from_numpy(((a - mean) / std).astype(np.float32)) for a in (train, *others)]


def fit_head(x: torch.Tensor, y: torch.Tensor, out_dim: int, loss: str, cfg: ProbeConfig,
             epochs: int | None = None, steps: int | None = None) -> nn.Module:
    """Train a head with AdamW on minibatches (``loss``: ``ce`` or ``bce``) for ``epochs`` passes or
    ``steps`` minibatches; deterministic per seed."""
    torch.manual_seed(cfg.seed)
    head = make_head(x.shape[1], out_dim, cfg)
    opt = torch.optim.AdamW(head.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    g = torch.Generator().manual_seed(cfg.seed)
    crit = nn.CrossEntropyLoss(ignore_index=IGNORE_INDEX) if loss == "ce" else nn.BCEWithLogitsLoss()
    per_epoch = -(-len(x) // cfg.batch_size)
    total = steps if steps is not None else (epochs or 1) * per_epoch
    head.train()
    done = 0
    while done < total:
        order = torch.randperm(len(x), generator=g)
        for s in range(0, len(x), cfg.batch_size):
            idx = order[s: s + cfg.batch_size]
            opt.zero_grad()
            crit(head(x[idx]), y[idx]).backward()
            opt.step()
            done += 1
            if done == total:
                break
    return head.eval()


def fmax(scores: np.ndarray, targets: np.ndarray) -> float:
    """Protein-centric maximum F-measure over thresholds 0.01..0.99 (CAFA): precision averaged
    over proteins with at least one prediction, recall over all proteins."""
    targets = targets.astype(bool)
    keep = targets.any(1)
    scores, targets = scores[keep], targets[keep]
    best = 0.0
    for t in np.linspace(0.01, 0.99, 99):
        pred = scores >= t
        tp = (pred & targets).sum(1)
        covered = pred.sum(1) > 0
        if not covered.any():
            continue
        precision = float((tp[covered] / pred.sum(1)[covered]).mean())
        recall = float((tp / targets.sum(1)).mean())
        if precision + recall > 0:
            best = max(best, 2 * precision * recall / (precision + recall))
    return best


# ---- splits ------------------------------------------------------------------------------------
def split_proteins(ids: Sequence[str], sequences: dict[str, str], cfg: ProbeConfig,
                   strata: dict[str, str] | None = None,
                   test_ids: set[str] | None = None) -> tuple[list[str], list[str]]:
    """Seeded protein split (stratified by ``strata`` when given), or the given ``test_ids`` as the
    test set; training proteins sharing an exact ``cfg.stretch`` window with a test protein are
    removed."""
    rng = random.Random(cfg.seed)
    ids = sorted(ids)
    test: list[str] = []
    if test_ids is not None:
        test = [i for i in ids if i in test_ids]
        if not test:
            raise InputError("none of the given test ids is labelled and embedded")
    elif strata:
        groups: dict[str, list[str]] = {}
        for i in ids:
            groups.setdefault(strata[i], []).append(i)
        for members in groups.values():
            rng.shuffle(members)
            k = min(len(members) - 1, max(1, round(len(members) * cfg.test_fraction)))
            test += members[:k]
    else:
        shuffled = ids[:]
        rng.shuffle(shuffled)
        test = shuffled[: max(1, round(len(ids) * cfg.test_fraction))]
    test_set = set(test)
    train = [i for i in ids if i not in test_set]
    test_seqs = [sequences[i] for i in test if sequences.get(i)]
    if test_seqs:
        screen = ExactStretchFilter(test_seqs, k=cfg.stretch)
        train = [i for i in train if not (sequences.get(i) and screen.hits(sequences[i]))]
    return train, sorted(test)


# ---- the three probe kinds ---------------------------------------------------------------------
def _pooled(arr: np.ndarray) -> np.ndarray:
    return arr.mean(0) if arr.ndim == 2 else arr


def probe_multiclass(emb: dict[str, np.ndarray], labels: dict[str, str], train: list[str], test: list[str],
                     cfg: ProbeConfig) -> dict:
    classes = sorted({labels[i] for i in train})
    index = {c: k for k, c in enumerate(classes)}
    test = [i for i in test if labels[i] in index]
    xtr, xte = _standardise(np.stack([_pooled(emb[i]) for i in train]), np.stack([_pooled(emb[i]) for i in test]))
    ytr = torch.tensor([index[labels[i]] for i in train])
    head = fit_head(xtr, ytr, len(classes), "ce", cfg, epochs=cfg.epochs)
    with torch.no_grad():
        pred = head(xte).argmax(1).numpy()
    truth = np.array([index[labels[i]] for i in test])
    majority = Counter(int(v) for v in ytr.tolist()).most_common(1)[0][0]
    return {"accuracy": round(float((pred == truth).mean()), 4),
            "majority_baseline": round(float((truth == majority).mean()), 4),
            "n_train": len(train), "n_test": len(test), "n_classes": len(classes)}


def probe_multilabel(emb: dict[str, np.ndarray], labels: dict[str, list[str]], train: list[str],
                     test: list[str], cfg: ProbeConfig) -> dict:
    vocab = sorted({lab for i in train for lab in labels[i]})
    index = {c: k for k, c in enumerate(vocab)}

    def onehot(ids: list[str]) -> np.ndarray:
        y = np.zeros((len(ids), len(vocab)), dtype=np.float32)
        for r, i in enumerate(ids):
            for lab in labels[i]:
                if lab in index:
                    y[r, index[lab]] = 1
        return y

    ytr, yte = onehot(train), onehot(test)
    xtr, xte = _standardise(np.stack([_pooled(emb[i]) for i in train]), np.stack([_pooled(emb[i]) for i in test]))
    head = fit_head(xtr, torch.from_numpy(ytr), len(vocab), "bce", cfg, epochs=cfg.epochs)
    with torch.no_grad():
        scores = torch.sigmoid(head(xte)).numpy()
    prior = np.broadcast_to(ytr.mean(0, keepdims=True), yte.shape)
    return {"fmax": round(fmax(scores, yte), 4), "label_frequency_baseline_fmax": round(fmax(prior, yte), 4),
            "n_train": len(train), "n_test": len(test), "n_labels": len(vocab)}


def probe_residues(emb: dict[str, np.ndarray], labels: dict[str, str], train: list[str], test: list[str],
                   n_states: int, cfg: ProbeConfig) -> dict:
    def stack(ids: list[str]) -> tuple[np.ndarray, np.ndarray]:
        xs, ys = [], []
        for i in ids:
            if emb[i].ndim != 2:
                raise InputError("secondary-structure probes need per-residue embeddings (embed --per-residue)",
                                 record=i)
            lab = to_states(labels[i], n_states)
            if len(lab) != emb[i].shape[0]:
                raise InputError(f"{len(lab)} labels but {emb[i].shape[0]} embedded residues", record=i)
            xs.append(emb[i])
            ys.append(np.array(label_indices(lab, n_states)))
        return np.concatenate(xs), np.concatenate(ys)

    xtr_np, ytr_np = stack(train)
    xte_np, yte_np = stack(test)
    keep = ytr_np != IGNORE_INDEX
    xtr, xte = _standardise(xtr_np[keep], xte_np)
    ytr = torch.from_numpy(ytr_np[keep]).long()
    head = fit_head(xtr, ytr, n_states, "ce", cfg, steps=cfg.residue_steps)
    with torch.no_grad():
        pred = head(xte).argmax(1).numpy()
    scored = yte_np != IGNORE_INDEX
    acc = float((pred[scored] == yte_np[scored]).mean())
    majority = int(torch.bincount(ytr).argmax())
    return {f"q{n_states}": round(acc, 4), "majority_baseline": round(float((yte_np[scored] == majority).mean()), 4),
            "n_train_proteins": len(train), "n_test_proteins": len(test),
            "n_train_residues": int(keep.sum()), "n_test_residues": int(scored.sum())}


def run_probe(embeddings: dict[str, tuple[dict[str, np.ndarray], dict]], labels: LabelSet, task: str | None = None,
              cfg: ProbeConfig | None = None, test_ids: set[str] | None = None) -> dict:
    """Probe every embedding set (``name -> (arrays, metadata)``) on ONE split of the proteins that
    all sets and the labels share (``test_ids``: a fixed test set, e.g. the chains held out from
    PST pretraining)."""
    cfg = cfg or ProbeConfig()
    task = task or labels.task
    if task not in TASKS:
        raise InputError(f"task must be one of {', '.join(TASKS)}, not {task!r}")
    common = set(labels.labels)
    sequences: dict[str, str] = {}
    for arrays, meta in embeddings.values():
        common &= set(arrays)
        sequences.update(meta.get("sequences", {}))
    lab = {i: labels.labels[i] for i in common}
    strata = None
    if task == "multiclass":
        counts = Counter(lab.values())
        lab = {i: v for i, v in lab.items() if counts[v] >= cfg.min_per_class}
        strata = lab
    elif task == "multilabel":
        counts = Counter(x for v in lab.values() for x in v)
        lab = {i: [x for x in v if counts[x] >= cfg.min_per_class] for i, v in lab.items()}
        lab = {i: v for i, v in lab.items() if v}
    if len(lab) < 4:
        raise InputError(f"only {len(lab)} labelled proteins are in every embedding file: nothing to probe "
                         f"(labels: {labels.description})")
    train, test = split_proteins(list(lab), sequences, cfg, strata, test_ids)
    results = {}
    for name, (arrays, _meta) in embeddings.items():
        if task == "multiclass":
            results[name] = probe_multiclass(arrays, lab, train, test, cfg)
        elif task == "multilabel":
            results[name] = probe_multilabel(arrays, lab, train, test, cfg)
        else:
            results[name] = probe_residues(arrays, lab, train, test, int(task[2]), cfg)
    return {"task": task, "labels": labels.description, "head": cfg.head, "seed": cfg.seed,
            "split": "given test ids" if test_ids is not None else f"random {cfg.test_fraction:.0%}",
            "labelled_in_all_files": len(lab), "results": results}


# ---- label sets --------------------------------------------------------------------------------
def _data(*parts: str) -> Path:
    from plmstruct.data.paths import data_file

    return data_file(*parts)


def scop_lookup() -> dict[str, str]:
    """SCOP domain id -> sccs, from the DeepSF SCOP 1.75 lists and the SCOPe 2.01 40% lookup."""
    out: dict[str, str] = {}
    for name in ("DeepSF_Traindata.list", "DeepSF_Testdata.list", "DeepSF_SCOP206.list"):
        for line in _data("fold_scop", name).read_text().splitlines():
            parts = line.split()
            if len(parts) >= 3 and parts[0].startswith("d"):
                out.setdefault(parts[0], parts[2])
    for line in _data("fold_scop", "scope40_2.01_scop_lookup.fix.tsv").read_text().splitlines():
        parts = line.split()
        if len(parts) >= 2:
            out.setdefault(parts[0], parts[1])
    return out


def scop_level(sccs: str, level: str) -> str:
    """``class`` (``a``), ``fold`` (``a.1``) of an sccs string."""
    return ".".join(sccs.split(".")[: {"class": 1, "fold": 2}[level]])


def pdb_code(path: Path) -> str | None:
    """The PDB entry of a structure file: the HEADER / ``data_`` record, else the file name
    (``1abcA``, ``1ABC-A``, ``PF00001_1ABC_A``, CATH ``1abcA01``); None for AlphaFold models."""
    opener = gzip.open if path.name.endswith(".gz") else open
    with opener(path, "rt", errors="replace") as fh:
        head = fh.readline()
    if head.startswith("HEADER") and re.fullmatch(r"\d[0-9A-Za-z]{3}", head[62:66]) and head[62:66] != "XXXX":
        return head[62:66].upper()
    if head.startswith("data_") and re.fullmatch(r"data_\d[0-9A-Za-z]{3}\s*", head):
        return head[5:9].upper()
    name = path.name.split(".")[0]
    if name.startswith("AF-"):
        return None
    m = re.match(r"^(?:PF\d+_)?(\d[0-9A-Za-z]{3})(?:[-_]?[A-Za-z0-9]{0,3})$", name)
    return m.group(1).upper() if m else None


def structure_scop_labels(folder: Path, level: str = "class") -> LabelSet:
    """SCOP ``class``/``fold`` of structures whose PDB entry + chain has SCOP domains that all
    agree at that level (ids as in ``pst embed``: file names)."""
    from plmstruct.data.structure import load_structures

    by_chain: dict[tuple[str, str], set[str]] = {}
    for dom, sccs in scop_lookup().items():
        by_chain.setdefault((dom[1:5].upper(), dom[5].upper()), set()).add(scop_level(sccs, level))
    labels: dict[str, object] = {}
    for s in load_structures(folder, recursive=True, on_error="skip"):
        code = pdb_code(Path(s.path)) if s.path else None
        found = by_chain.get((code, s.chain.upper())) if code else None
        if found and len(found) == 1:
            labels[structure_key(s, folder)] = next(iter(found))
    return LabelSet("multiclass", labels, f"SCOP {level} of structures in {folder} matched by PDB entry + chain")


def ec_annotations() -> dict[str, list[str]]:
    """DeepFRI nrPDB-EC: ``PDB-chain`` -> EC numbers (train, valid and test chains)."""
    out: dict[str, list[str]] = {}
    for line in _data("function_deepfri_ec", "nrPDB-EC_2020.04_annot.tsv").read_text().splitlines():
        if line.startswith("#") or "\t" not in line:
            continue
        key, ecs = line.split("\t", 1)
        if ecs.strip():
            out[key] = [e for e in ecs.strip().split(",") if e]
    return out


def ec_labels_for_test_sequences() -> LabelSet:
    """EC numbers of the nrPDB-EC test chains (ids as in the bundled test FASTA)."""
    from plmstruct.data.fasta import read_fasta

    annot = ec_annotations()
    ids = [r.id for r in read_fasta(_data("function_deepfri_ec", "nrPDB-EC_2020.04_test_sequences.fasta"))]
    return LabelSet("multilabel", {i: annot[i] for i in ids if i in annot},
                    "EC numbers of DeepFRI nrPDB-EC test chains (sequences)")


def structure_ec_labels(folder: Path) -> LabelSet:
    """EC numbers of structures whose PDB entry + chain is in nrPDB-EC."""
    from plmstruct.data.structure import load_structures

    annot = ec_annotations()
    labels: dict[str, object] = {}
    for s in load_structures(folder, recursive=True, on_error="skip"):
        code = pdb_code(Path(s.path)) if s.path else None
        if code and f"{code}-{s.chain}" in annot:
            labels[structure_key(s, folder)] = annot[f"{code}-{s.chain}"]
    return LabelSet("multilabel", labels, f"EC numbers of structures in {folder} (nrPDB-EC)")


def scop_fold_labels_for_sequences() -> LabelSet:
    """SCOPe 2.01 fold (``class.fold``) of the 2,500 bundled SCOPe-40% domain sequences."""
    from plmstruct.data.fasta import read_fasta

    lookup = scop_lookup()
    ids = [r.id for r in read_fasta(_data("fold_scop", "scope40_2.01_2500.fa"))]
    return LabelSet("multiclass", {i: scop_level(lookup[i], "fold") for i in ids if i in lookup},
                    "SCOPe 2.01 fold of scope40_2.01_2500.fa domains (sequences)")


def dssp_label_set(folder: Path) -> LabelSet:
    """Per-residue DSSP (9 states, X = no backbone) of every structure in ``folder``."""
    from plmstruct.data.dssp import dssp_labels
    from plmstruct.data.structure import load_structures

    labels: dict[str, object] = {structure_key(s, folder): dssp_labels(s)
                                 for s in load_structures(folder, recursive=True, on_error="skip")}
    return LabelSet("ss3", labels, f"DSSP of the structures in {folder}")


def tsv_labels(path: Path) -> LabelSet:
    """``id<TAB>label`` per line; comma-separated labels make a multi-label set."""
    labels: dict[str, object] = {}
    multi = False
    with open(path) as fh:
        for n, row in enumerate(csv.reader(fh, delimiter="\t"), start=1):
            if not row or row[0].startswith("#"):
                continue
            if len(row) < 2:
                raise InputError("expected id<TAB>label", path=path, record=f"line {n}")
            parts = [p for p in row[1].split(",") if p]
            multi = multi or len(parts) > 1
            labels[row[0]] = parts
    if not multi:
        labels = {k: v[0] for k, v in labels.items() if v}
    return LabelSet("multilabel" if multi else "multiclass", labels, f"labels from {path}")


def resolve_labels(spec: str) -> LabelSet:
    """A named label set (see module docs) or a TSV path."""
    name, _, arg = spec.partition(":")
    if name == "dssp" and arg:
        return dssp_label_set(Path(arg))
    if name in ("scop-class", "scop-fold") and arg:
        return structure_scop_labels(Path(arg), name.split("-")[1])
    if name == "scop-fold":
        return scop_fold_labels_for_sequences()
    if name == "ec":
        return structure_ec_labels(Path(arg)) if arg else ec_labels_for_test_sequences()
    path = Path(spec)
    if path.is_file():
        return tsv_labels(path)
    if path.suffix or "/" in spec:  # meant as a file
        raise InputError("no such label file", path=path)
    raise InputError(f"unknown label set {spec!r}: use dssp:FOLDER, scop-class:FOLDER, scop-fold[:FOLDER], "
                     "ec[:FOLDER] or a TSV file (id<TAB>label[,label...])")

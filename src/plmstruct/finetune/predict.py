"""Prediction (long chains in overlapping windows, stitched) and evaluation on test sets."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch

from plmstruct.backbone.device import autocast
from plmstruct.data.fasta import fit_to_length, window_owner
from plmstruct.data.secondary_structure import SSRecord
from plmstruct.evaluation.ss_metrics import SSReport, plot_confusion, ss_report
from plmstruct.finetune.model import SSModel, lenient_tokenize
from plmstruct.io import atomic_write_text


@torch.no_grad()
def predict_probs(model: SSModel, sequences: Sequence[str], *, max_len: int | None = None, overlap: int = 64,
                  tokens_per_batch: int = 8192) -> list[np.ndarray]:
    """Per-residue state probabilities ``(L, n_states)`` of each chain. Chains longer than
    ``max_len`` (default: the backbone limit) are split into windows overlapping by ``overlap``
    residues; each residue is taken from the window where it is most central."""
    model.eval()
    backbone = model.backbone
    max_len = min(max_len or backbone.max_residues, backbone.max_residues)
    overlap = min(overlap, max_len // 2)
    windows = [fit_to_length(str(i), s, max_len, policy="split", overlap=overlap) for i, s in enumerate(sequences)]
    flat = [(c, w, win.sequence) for c, wins in enumerate(windows) for w, win in enumerate(wins)]
    order = sorted(range(len(flat)), key=lambda k: len(flat[k][2]))
    out: dict[tuple[int, int], np.ndarray] = {}
    device = backbone.device
    k = 0
    while k < len(order):
        batch = [order[k]]
        while k + len(batch) < len(order) and (len(batch) + 1) * (len(flat[order[k + len(batch)]][2]) + 2) \
                <= tokens_per_batch:
            batch.append(order[k + len(batch)])
        k += len(batch)
        enc = lenient_tokenize(backbone, [flat[j][2] for j in batch])
        with autocast(device):
            logits = model(enc["input_ids"].to(device), enc["attention_mask"].to(device))
        probs = torch.softmax(logits.float(), -1).cpu().numpy()
        for row, j in enumerate(batch):
            c, w, seq = flat[j]
            out[(c, w)] = probs[row, : len(seq)]
    result = []
    for c, wins in enumerate(windows):
        if len(wins) == 1:
            result.append(out[(c, 0)])
            continue
        owner = window_owner(wins, len(sequences[c]))
        result.append(np.stack([out[(c, w)][off] for w, off in owner]))
    return result


def to_labels(probs: np.ndarray, states: str) -> str:
    """Most probable state letter of each residue."""
    return "".join(states[i] for i in probs.argmax(-1))


def data_states(records: Sequence[SSRecord]) -> int:
    """How many states a file's labels resolve: 3 (H/E/C only), 9 (PPII 'P' present) or 8."""
    letters = set().union(*(set(r.labels) for r in records)) - {"X"}
    if letters <= set("HEC"):
        return 3
    return 9 if "P" in letters else 8


def evaluate_records(model: SSModel, records: Sequence[SSRecord], **kw) -> tuple[list[SSReport], list[str]]:
    """Reports at every state count both the model and the labels resolve (9 -> 8 -> 3), and the
    predicted label strings."""
    probs = predict_probs(model, [r.sequence for r in records], **kw)
    predicted = [to_labels(p, model.states) for p in probs]
    top = min(model.n_states, data_states(records))
    observed = [r.labels for r in records]
    return [ss_report(observed, predicted, n) for n in (9, 8, 3) if n <= top], predicted


def report_rows(name: str, reports: Sequence[SSReport]) -> list[dict]:
    """Flat rows (one per state count) for tables."""
    rows = []
    for r in reports:
        row = {"test_set": name, "metric": r.name, "chains": r.chains, "residues": r.residues,
               "accuracy": round(r.accuracy, 2), "sov99": round(r.sov99, 2), "sov_refine": round(r.sov_refine, 2)}
        row |= {f"prec_{s}": round(v, 1) for s, v in r.precision.items()}
        row |= {f"rec_{s}": round(v, 1) for s, v in r.recall.items()}
        rows.append(row)
    return rows


def write_table(rows: Sequence[dict], path: Path) -> None:
    """TSV of rows (columns = union of keys, in first-seen order), written atomically."""
    cols: list[str] = []
    for row in rows:
        cols += [k for k in row if k not in cols]
    lines = ["\t".join(cols)] + ["\t".join(str(row.get(c, "")) for c in cols) for row in rows]
    atomic_write_text(Path(path), "\n".join(lines) + "\n")


def evaluate_sets(model: SSModel, sets: dict[str, list[SSRecord]], out_dir: Path | None = None,
                  **kw) -> dict[str, list[SSReport]]:
    """Evaluate on each named set; with ``out_dir``: one TSV table per set (``<name>.tsv``), the
    confusion-matrix plots, and ``summary.tsv`` with every set."""
    results: dict[str, list[SSReport]] = {}
    all_rows: list[dict] = []
    for name, records in sets.items():
        reports, _ = evaluate_records(model, records, **kw)
        results[name] = reports
        rows = report_rows(name, reports)
        all_rows += rows
        if out_dir is not None:
            write_table(rows, Path(out_dir) / f"{name}.tsv")
            for r in reports:
                plot_confusion(r, Path(out_dir) / f"{name}_confusion_{r.name}.png", title=f"{name} {r.name}")
    if out_dir is not None:
        write_table(all_rows, Path(out_dir) / "summary.tsv")
    return results


def write_predictions(ids: Sequence[str], sequences: Sequence[str], probs: Sequence[np.ndarray], states: str,
                      path: Path) -> None:
    """Per-residue TSV: ``id, position (1-based), residue, state, p_<state>...`` (atomic)."""
    lines = ["\t".join(["id", "position", "residue", "state", *(f"p_{s}" for s in states)])]
    for rid, seq, p in zip(ids, sequences, probs, strict=True):
        for i, (aa, row) in enumerate(zip(seq, p, strict=True)):
            lines.append("\t".join([rid, str(i + 1), aa, states[int(row.argmax())], *(f"{v:.4f}" for v in row)]))
    atomic_write_text(Path(path), "\n".join(lines) + "\n")

"""Secondary-structure metrics: Q3/Q8/Q9, per-class precision/recall, confusion matrix (+ plot), SOV.

Observed and predicted chains are label strings over the DSSP letters (``X`` = unlabelled, never
scored). A report at ``n`` states maps both to ``n`` states first (9 -> 8 -> 3,
:func:`plmstruct.data.secondary_structure.to_states`), so an 8-state model also gets a Q3.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from plmstruct.data.secondary_structure import STATES, UNLABELLED, to_states
from plmstruct.evaluation.sov import SOVTally
from plmstruct.io import atomic_write


@dataclass
class SSReport:
    """Metrics of one set of chains at ``n_states`` states (accuracies and SOV in percent)."""

    n_states: int
    states: str
    chains: int
    residues: int
    accuracy: float
    sov99: float
    sov_refine: float
    precision: dict[str, float]
    recall: dict[str, float]
    confusion: list[list[int]]  # rows = observed, columns = predicted, in ``states`` order

    @property
    def name(self) -> str:
        return f"Q{self.n_states}"

    def to_dict(self) -> dict:
        return asdict(self)


def confusion_matrix(observed: Sequence[str], predicted: Sequence[str], states: str) -> np.ndarray:
    """Counts (observed x predicted) over labelled residues; both already in ``states`` letters."""
    index = {c: i for i, c in enumerate(states)}
    cm = np.zeros((len(states), len(states)), dtype=np.int64)
    for obs, pred in zip(observed, predicted, strict=True):
        if len(obs) != len(pred):
            raise ValueError(f"observed ({len(obs)}) and predicted ({len(pred)}) lengths differ")
        o = np.array([index.get(c, -1) for c in obs])
        p = np.array([index.get(c, -1) for c in pred])
        keep = o >= 0
        if np.any(p[keep] < 0):
            bad = sorted({c for c, k in zip(pred, keep, strict=True) if k and c not in index})
            raise ValueError(f"predicted letters {bad} are not among the states {states}")
        np.add.at(cm, (o[keep], p[keep]), 1)
    return cm


def ss_report(observed: Sequence[str], predicted: Sequence[str], n_states: int, *, lam: float = 1.0) -> SSReport:
    """All metrics at ``n_states`` (3, 8 or 9) for chains of observed/predicted labels."""
    states = STATES[n_states]
    obs = [to_states(o, n_states) for o in observed]
    pred = [to_states(p, n_states) for p in predicted]
    cm = confusion_matrix(obs, pred, states)
    total = int(cm.sum())
    tally = SOVTally(lam=lam)
    for o, p in zip(obs, pred, strict=True):
        tally.add(o, p)
    col, row = cm.sum(0), cm.sum(1)
    precision = {s: 100.0 * cm[i, i] / col[i] for i, s in enumerate(states) if col[i]}
    recall = {s: 100.0 * cm[i, i] / row[i] for i, s in enumerate(states) if row[i]}
    return SSReport(n_states, states, len(obs), total, 100.0 * np.trace(cm) / total if total else float("nan"),
                    tally.sov99(), tally.sov_refine(), precision, recall, cm.tolist())


def has_state(observed: Sequence[str], letter: str) -> bool:
    """True when any chain uses ``letter`` (e.g. ``P``: the file has 9-state labels)."""
    return any(letter in o for o in observed)


def majority_accuracy(observed: Sequence[str], n_states: int) -> float:
    """Accuracy (percent) of always predicting the most frequent observed state."""
    counts: dict[str, int] = {}
    for o in observed:
        for c in to_states(o, n_states):
            if c != UNLABELLED:
                counts[c] = counts.get(c, 0) + 1
    total = sum(counts.values())
    return 100.0 * max(counts.values()) / total if total else float("nan")


def plot_confusion(report: SSReport, path: Path, *, title: str = "") -> None:
    """Row-normalised confusion matrix as a PNG (counts in each cell), written atomically."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    cm = np.asarray(report.confusion, dtype=float)
    norm = cm / np.maximum(cm.sum(1, keepdims=True), 1)
    n = len(report.states)
    fig, ax = plt.subplots(figsize=(1.0 + 0.6 * n, 0.8 + 0.6 * n))
    ax.imshow(norm, cmap="Blues", vmin=0, vmax=1)
    ax.set_xticks(range(n), list(report.states))
    ax.set_yticks(range(n), list(report.states))
    ax.set_xlabel("predicted")
    ax.set_ylabel("observed (DSSP)")
    for i in range(n):
        for j in range(n):
            ax.text(j, i, f"{int(cm[i, j])}", ha="center", va="center", fontsize=7,
                    color="white" if norm[i, j] > 0.5 else "black")
    ax.set_title(title or f"{report.name} {report.accuracy:.1f}%", fontsize=9)
    fig.tight_layout()
    atomic_write(Path(path), lambda tmp: fig.savefig(tmp, format="png", dpi=120))
    plt.close(fig)

"""Q3/Q8/Q9, per-class precision/recall, confusion matrix and its plot."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.metrics import confusion_matrix as sk_confusion
from sklearn.metrics import precision_score, recall_score

from plmstruct.data.secondary_structure import read_three_line, to_states
from plmstruct.evaluation.ss_metrics import majority_accuracy, plot_confusion, ss_report


def _shift(labels: str, k: int) -> str:
    return labels[k:] + labels[:k]


def test_report_matches_sklearn_on_real_labels(data_dir):
    recs = read_three_line(data_dir / "secondary_structure" / "CASP12.txt")[:10]
    observed = [r.labels for r in recs]
    predicted = [_shift(o.replace("X", "L"), 1) for o in observed]  # a plausible, imperfect prediction
    for n in (9, 8, 3):
        rep = ss_report(observed, predicted, n)
        y_true, y_pred = [], []
        for o, p in zip(observed, predicted, strict=True):
            o, p = to_states(o, n), to_states(p, n)
            keep = [i for i, c in enumerate(o) if c != "X"]
            y_true += [o[i] for i in keep]
            y_pred += [p[i] for i in keep]
        assert rep.residues == len(y_true)
        assert rep.accuracy == pytest.approx(100 * np.mean(np.array(y_true) == np.array(y_pred)))
        labels = list(rep.states)
        assert np.array_equal(np.array(rep.confusion), sk_confusion(y_true, y_pred, labels=labels))
        present = [s for s in labels if s in y_true]
        rec = recall_score(y_true, y_pred, labels=present, average=None, zero_division=0)
        assert [rep.recall[s] for s in present] == pytest.approx(list(100 * rec))
        pp = [s for s in labels if s in y_pred]
        prec = precision_score(y_true, y_pred, labels=pp, average=None, zero_division=0)
        assert [rep.precision[s] for s in pp] == pytest.approx(list(100 * prec))
        assert 0 < rep.sov99 < 100 and 0 < rep.sov_refine < 100


def test_three_state_mapping_and_majority():
    rep = ss_report(["HGIEBTSPL"], ["HHHEETSPL"], 3)
    assert rep.accuracy == 100.0
    rep8 = ss_report(["HGIEBTSPL"], ["HHHEETSPL"], 8)
    assert rep8.accuracy == pytest.approx(100 * 6 / 9)
    assert majority_accuracy(["HHHEC", "XXC"], 3) == pytest.approx(50.0)


def test_confusion_plot_written(tmp_path):
    rep = ss_report(["HHHEEECCC"], ["HHEEECCCC"], 3)
    plot_confusion(rep, tmp_path / "cm.png")
    data = (tmp_path / "cm.png").read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 1000

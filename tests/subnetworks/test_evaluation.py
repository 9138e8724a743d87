"""Contact precision on real structures, the mask-bite table / Jaccard / report, ESMFold skip."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from plmstruct.evaluation.contacts import (
    ContactConfig,
    collection_structures,
    contact_precision,
    fit_contact_probe,
    precision_at,
)
from plmstruct.evaluation.esmfold import esmfold_evaluation, esmfold_unavailable, tm_score
from plmstruct.evaluation.mask_report import jaccard, jaccard_matrix, mask_section, removed_table


def test_precision_at_counts_top_pairs():
    i, j = np.triu_indices(40, 6)
    truth = (j - i) % 5 == 0
    perfect = precision_at(truth.astype(float), truth, i, j, 40)
    assert perfect["long L/5"] == 1.0 and perfect["medium L/2"] == 1.0
    worst = precision_at(-truth.astype(float), truth, i, j, 40)
    assert worst["long L/5"] == 0.0
    assert 0 < perfect["long base rate"] < 0.3


def test_attention_probe_beats_random_on_real_structures(default_backbone):
    cfg = ContactConfig(n_train=12, n_test=10)
    train, test = collection_structures(default_backbone.alphabet, cfg)
    assert len(train) == 12 and len(test) == 10
    assert not {s.path for s in train} & {s.path for s in test}
    probe = fit_contact_probe(default_backbone, train, cfg)
    res = contact_precision(default_backbone, test, probe)
    assert res["chains"] == 10
    # real contact signal in the attention maps: well above the chance precision of each range
    assert res["long L/5"] > 1.5 * res["long base rate"]
    assert res["medium L/5"] > res["medium base rate"]


def test_mask_tables_and_jaccard(tmp_path):
    a = {"layer1.query": torch.tensor([[True, False], [True, True]]), "layer2.value": torch.ones(2, 2, dtype=torch.bool)}
    b = {"layer1.query": torch.tensor([[False, False], [True, True]]), "layer2.value": torch.ones(2, 2, dtype=torch.bool)}
    layers, modules, table = removed_table(a)
    assert layers == [1, 2] and modules == ["query", "value"]
    assert table[0, 0] == 0.25 and np.isnan(table[0, 1]) and table[1, 1] == 0.0
    assert jaccard(a, a) == 1.0 and jaccard(a, b) == 0.5
    names, m = jaccard_matrix({"a": a, "b": b})
    assert m.tolist() == [[1.0, 0.5], [0.5, 1.0]]
    text = mask_section({"a": a, "b": b}, tmp_path)
    assert "| layer | query | value |" in text and "Jaccard" in text
    for png in ("removed_a.png", "removed_b.png", "jaccard.png"):
        assert (tmp_path / png).read_bytes()[:4] == b"\x89PNG"


def test_tm_score_of_rigid_copy_is_one():
    g = np.random.default_rng(0)
    ca = np.cumsum(g.normal(size=(60, 3)) * 2, axis=0)
    q, _ = np.linalg.qr(g.normal(size=(3, 3)))
    q *= np.sign(np.linalg.det(q))
    assert tm_score(ca @ q.T + 5, ca) == pytest.approx(1.0)
    assert tm_score(g.normal(size=(60, 3)) * 10, ca) < 0.3


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the CPU skip path")
def test_esmfold_skips_cleanly_without_gpu():
    reason = esmfold_unavailable()
    assert reason and "GPU" in reason
    assert esmfold_evaluation({"layer0.query": torch.ones(2, 2, dtype=torch.bool)}, ["MKV"]) == {"skipped": reason}

"""Contact precision on real structures, the mask-bite table / Jaccard / report, ESMFold skip."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from typer.testing import CliRunner

from plmstruct.backbone import load_backbone, save_backbone, tiny_esm
from plmstruct.cli.main import app
from plmstruct.errors import InputError
from plmstruct.evaluation.contacts import (
    ContactConfig,
    collection_structures,
    contact_precision,
    fit_contact_probe,
    precision_at,
)
from plmstruct.evaluation.esmfold import esmfold_evaluation, esmfold_unavailable, tm_score
from plmstruct.evaluation.mask_report import jaccard, jaccard_matrix, mask_section, removed_table
from plmstruct.evaluation.perplexity import PerplexityConfig
from plmstruct.subnetworks.artifact import attach_artifact, load_artifact
from plmstruct.subnetworks.evaluate import EvaluationConfig, evaluate_artifacts


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


def test_contact_head_is_refused_where_the_backbone_has_no_trained_one(default_backbone, antiberty):
    for backbone in (default_backbone, antiberty):
        with pytest.raises(InputError, match="no trained ESM contact head"):
            contact_precision(backbone, [], head="esm")


def test_evaluation_uses_the_models_own_contact_head_when_it_has_one(tmp_path, tiny_with_contact_head):
    """A backbone with a trained contact-regression head (as the HF ESM-2 checkpoints) is judged by
    that head, original and masked, and no probe is fitted; without one, by the attention probe."""
    save_backbone(tiny_with_contact_head(11), tmp_path / "esm")
    res = CliRunner().invoke(app, ["subnetwork", "train", "--backbone", str(tmp_path / "esm"), "--steps", "3",
                                   "--batch-size", "4", "--crop", "48", "--limit-train", "16", "--lr", "1.0",
                                   "--out", str(tmp_path / "h"), "--threads", "1"])
    assert res.exit_code == 0, res.output
    art = load_artifact(tmp_path / "h" / "mask")
    contacts = ContactConfig(n_train=2, n_test=3)
    cfg = EvaluationConfig(perplexity=PerplexityConfig(draws=1, passes=1), contacts=contacts, stochastic=False,
                           limit_eval=4, esmfold=False)
    results = evaluate_artifacts({"helix": art}, cfg)
    assert results["contacts_setup"]["head"] == "the model's own ESM contact-regression head"
    backbone = load_backbone(str(tmp_path / "esm"))
    train, test = collection_structures(backbone.alphabet, contacts)
    assert results["contacts_original"] == contact_precision(backbone, test, head="esm")
    masks = attach_artifact(art, backbone)
    with masks.mode("deterministic"):
        assert results["subnetworks"]["helix"]["contacts"] == contact_precision(backbone, test, head="esm")
    # the same model without its head: the probe, fitted on the training chains
    save_backbone(tiny_esm(seed=11), tmp_path / "esm")
    results = evaluate_artifacts({"helix": art}, cfg)
    assert results["contacts_setup"]["head"].startswith("logistic-regression probe")
    assert results["contacts_setup"]["train_chains"] == len(train) > 0

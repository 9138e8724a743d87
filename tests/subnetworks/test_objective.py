"""Objective terms: KL to uniform / to the original on the right positions, MLM on non-targets."""

from __future__ import annotations

import math

import pytest
import torch

from plmstruct.data.secondary_structure import IGNORE_INDEX
from plmstruct.subnetworks.config import ObjectiveConfig
from plmstruct.subnetworks.objective import (
    kl_divergence,
    kl_to_uniform,
    residue_log_probs,
    subnetwork_objective,
)

RES = torch.arange(4, 24)


def _batch(B=2, T=10):
    g = torch.Generator().manual_seed(0)
    target = torch.zeros(B, T, dtype=torch.bool)
    target[:, 1:4] = True
    other = torch.zeros(B, T, dtype=torch.bool)
    other[:, 4:9] = True
    labels = torch.full((B, T), IGNORE_INDEX)
    labels[:, [2, 5, 6]] = torch.randint(4, 24, (B, 3), generator=g)
    return {"target": target, "other": other, "labels": labels}


def test_kl_basics():
    uniform = torch.log(torch.full((3, 20), 1 / 20))
    assert torch.allclose(kl_to_uniform(uniform), torch.zeros(3), atol=1e-6)
    peaked = torch.log_softmax(torch.tensor([[10.0] + [0.0] * 19]), -1)
    assert float(kl_to_uniform(peaked)) > 2.0
    assert float(kl_to_uniform(peaked)) <= math.log(20) + 1e-6
    assert torch.allclose(kl_divergence(peaked, peaked), torch.zeros(1), atol=1e-6)
    logits = torch.randn(2, 5, 33)
    lp = residue_log_probs(logits, RES)
    assert lp.shape == (2, 5, 20) and torch.allclose(lp.exp().sum(-1), torch.ones(2, 5))


@pytest.mark.parametrize("positions", ["masked", "all"])
def test_terms_use_their_positions(positions):
    batch = _batch()
    w = ObjectiveConfig(suppression=1.0, maintenance=1.0, mlm=1.0, sparsity=0.0, kl_positions=positions)
    g = torch.Generator().manual_seed(1)
    sub = torch.randn(2, 10, 33, generator=g)
    orig = torch.randn(2, 10, 33, generator=g)
    base = subnetwork_objective(sub, orig, batch, torch.tensor(0.9), w, RES)
    # changing the original model's output at target positions changes nothing
    orig2 = orig.clone()
    orig2[:, 1:4] += 5
    assert float(subnetwork_objective(sub, orig2, batch, torch.tensor(0.9), w, RES).total) == pytest.approx(
        float(base.total))
    # changing p_sub at non-target positions leaves suppression alone, at target ones maintenance/MLM
    sub2 = sub.clone()
    sub2[:, 5:7] += torch.randn(2, 2, 33, generator=g)
    t2 = subnetwork_objective(sub2, orig, batch, torch.tensor(0.9), w, RES)
    assert float(t2.suppression) == pytest.approx(float(base.suppression))
    assert float(t2.mlm) != pytest.approx(float(base.mlm))
    sub3 = sub.clone()
    sub3[:, 2] += torch.randn(2, 33, generator=g)
    t3 = subnetwork_objective(sub3, orig, batch, torch.tensor(0.9), w, RES)
    assert float(t3.maintenance_kl) == pytest.approx(float(base.maintenance_kl))
    assert float(t3.suppression) != pytest.approx(float(base.suppression))
    # p_sub == p_orig: no maintenance KL; MLM = cross-entropy at masked non-target positions
    same = subnetwork_objective(sub, sub, batch, torch.tensor(0.9), w, RES)
    assert float(same.maintenance_kl) == pytest.approx(0.0, abs=1e-6)
    chosen = batch["other"] & (batch["labels"] != IGNORE_INDEX)
    ce = torch.nn.functional.cross_entropy(sub[chosen], batch["labels"][chosen])
    assert float(same.mlm) == pytest.approx(float(ce), rel=1e-5)


def test_weights_combine_linearly():
    batch = _batch()
    g = torch.Generator().manual_seed(2)
    sub, orig = torch.randn(2, 10, 33, generator=g), torch.randn(2, 10, 33, generator=g)
    w = ObjectiveConfig(suppression=50, maintenance=100, mlm=1.2, sparsity=0.5)
    t = subnetwork_objective(sub, orig, batch, torch.tensor(0.8), w, RES)
    expected = 50 * t.suppression + 100 * t.maintenance_kl + 1.2 * t.mlm + 0.5 * 0.8
    assert float(t.total) == pytest.approx(float(expected), rel=1e-6)
    assert ObjectiveConfig.for_level("sequence").suppression == 10.0
    assert (ObjectiveConfig.for_level("residue").maintenance, ObjectiveConfig.for_level("residue").mlm) == (100.0, 1.2)

"""Short residue-level subnetworks on real weights and real data.

- Default model, DSSP helix on general proteins: on held-out chains the binary mask moves the
  predictions at helix residues toward uniform (KL to uniform down) by more than at the other
  residues and raises the helix perplexity by more than the others'. (The effect is small: this
  weak model hardly encodes helix; its random control does about as much, see the README.)
- AntiBERTy, DSSP strand on antibody variable domains (its own domain; on general proteins it is
  worse than uniform, so suppression could only lower its perplexity): on held-out antibodies the
  strand perplexity rises several times more than the rest's, with the binary and with the
  stochastic mask."""

from __future__ import annotations

import math

import pytest

from plmstruct.evaluation.perplexity import PerplexityConfig, evaluate_perplexity
from plmstruct.subnetworks.artifact import attach_artifact, load_artifact
from plmstruct.subnetworks.sweep import make_config
from plmstruct.subnetworks.targets import load_targets
from plmstruct.subnetworks.train import train_subnetwork


def _rise(after: dict, before: dict, key: str) -> float:
    return math.log(after[key] / before[key])


@pytest.mark.slow
def test_helix_subnetwork_raises_helix_perplexity_on_default_model(tmp_path):
    from plmstruct.backbone import load_backbone

    spec = "default"
    cfg = make_config("helix", backbone=spec, out_dir=tmp_path / spec, limit_train=800, limit_eval=40,
                      progress=False, steps=40, batch_size=16, crop=128, lr=0.3)
    path, metrics = train_subnetwork(cfg)
    assert metrics["removed_fraction"] > 0
    backbone = load_backbone(spec)
    held_out = load_targets(cfg.target, backbone.alphabet).eval
    masks = attach_artifact(load_artifact(path), backbone)
    pc = PerplexityConfig(draws=2, max_len=128)
    before = evaluate_perplexity(backbone, held_out, pc, masks, "off")
    after = evaluate_perplexity(backbone, held_out, pc, masks, "deterministic")
    rise_target, rise_rest = _rise(after, before, "target"), _rise(after, before, "non_target")
    flat_target = after["kl_uniform_target"] / before["kl_uniform_target"]
    flat_rest = after["kl_uniform_non_target"] / before["kl_uniform_non_target"]
    # the suppression objective on held-out residues: helix predictions moved toward "no idea"
    # (KL to uniform down) by more than the others'
    assert flat_target < 1 and flat_target < flat_rest
    assert before["target"] < len(backbone.residue_token_ids)  # better than uniform: suppression raises perplexity
    assert rise_target > 0
    assert rise_target > rise_rest


@pytest.mark.slow
def test_strand_subnetwork_on_antiberty_hits_strands_of_held_out_antibodies(antiberty, tmp_path):
    cfg = make_config("strand", backbone="antiberty", chains="antibody", kl_positions="all", out_dir=tmp_path,
                      progress=False, steps=60, batch_size=8, crop=128, lr=0.3)
    path, _ = train_subnetwork(cfg)
    data = load_targets(cfg.target, antiberty.alphabet)
    assert {e.id for e in data.eval}.isdisjoint(e.id for e in data.train)
    masks = attach_artifact(load_artifact(path), antiberty)
    pc = PerplexityConfig(draws=4, passes=3)
    try:
        before = evaluate_perplexity(antiberty, data.eval, pc, masks, "off")
        for mode in ("deterministic", "stochastic"):
            after = evaluate_perplexity(antiberty, data.eval, pc, masks, mode)
            rise_target, rise_rest = _rise(after, before, "target"), _rise(after, before, "non_target")
            assert rise_target > 0.05 and rise_target > 3 * abs(rise_rest), (mode, before, after)
    finally:
        masks.remove()

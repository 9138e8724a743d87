"""Targets from the real CATH table and DSSP files; fixed targets per batch; the collator."""

from __future__ import annotations

import pytest
import torch

from plmstruct.backbone.model import ESM_RESIDUE_LETTERS, STANDARD_AMINO_ACIDS
from plmstruct.data.cath import label_counts, read_cath_labeled_tsv
from plmstruct.data.secondary_structure import IGNORE_INDEX, read_three_line
from plmstruct.errors import InputError
from plmstruct.subnetworks.config import TargetConfig
from plmstruct.subnetworks.targets import (
    SubnetworkCollator,
    TargetBatchSampler,
    load_targets,
    residue_examples,
    sequence_examples,
)


@pytest.fixture(scope="module")
def casp12(data_dir):
    return read_three_line(data_dir / "secondary_structure" / "CASP12.txt")


@pytest.fixture(scope="module")
def cath(data_dir):
    return read_cath_labeled_tsv(data_dir / "cath" / "cath_S20_v4_3_0_labeled.tsv")


def test_residue_targets_follow_dssp_three_states(casp12):
    helix = residue_examples(casp12, "helix", alphabet=ESM_RESIDUE_LETTERS)
    assert helix
    records = {r.id: r for r in casp12}
    for ex in helix:
        states = records[ex.id].states(3)
        for s, t in zip(states, ex.target, strict=True):
            assert t == ("-" if s == "X" else "1" if s == "H" else "0")
    strand = residue_examples(casp12, "strand", alphabet=ESM_RESIDUE_LETTERS)
    by_id = {e.id: e for e in helix}
    both = [e for e in strand if e.id in by_id]
    assert both
    for e in both:
        assert all(not (a == "1" and b == "1") for a, b in zip(e.target, by_id[e.id].target, strict=True))
    with pytest.raises(InputError):
        residue_examples(casp12, "loop", alphabet=ESM_RESIDUE_LETTERS)


def test_residue_random_control_same_size_other_places(casp12):
    real = residue_examples(casp12, "helix", alphabet=ESM_RESIDUE_LETTERS)
    rand = residue_examples(casp12, "helix", alphabet=ESM_RESIDUE_LETTERS, random_control=True, seed=0)
    assert [e.id for e in rand] == [e.id for e in real]
    moved = 0
    for a, b in zip(real, rand, strict=True):
        assert a.target.count("1") == b.target.count("1")
        assert [i for i, c in enumerate(a.target) if c == "-"] == [i for i, c in enumerate(b.target) if c == "-"]
        moved += a.target != b.target
    assert moved == len(real)
    again = residue_examples(casp12, "helix", alphabet=ESM_RESIDUE_LETTERS, random_control=True, seed=0)
    assert [e.target for e in again] == [e.target for e in rand]


def test_sequence_targets_from_real_cath(cath):
    ex = sequence_examples(cath, "class", "1", alphabet=ESM_RESIDUE_LETTERS)
    n_alpha = label_counts([d for d in cath if d.sequence], "class")["1"]
    assert sum(e.is_target for e in ex) == n_alpha
    assert all(set(e.target) == {"1" if e.is_target else "0"} for e in ex)
    arch = sequence_examples(cath, "architecture", "3.30", alphabet=ESM_RESIDUE_LETTERS)
    ids = {d.domain_id for d in cath if d.cath_code.startswith("3.30.")}
    assert {e.id for e in arch if e.is_target} == ids
    rand = sequence_examples(cath, "class", "1", alphabet=ESM_RESIDUE_LETTERS, random_control=True)
    assert sum(e.is_target for e in rand) == n_alpha
    assert {e.id for e in rand if e.is_target} != {e.id for e in ex if e.is_target}
    with pytest.raises(InputError):
        sequence_examples(cath, "class", "9", alphabet=ESM_RESIDUE_LETTERS)


def test_load_targets_splits_and_holds_out(data_dir):
    seq = load_targets(TargetConfig(kind="class", label="2", limit_eval=40), STANDARD_AMINO_ACIDS, data_dir=data_dir)
    assert seq.level == "sequence"
    assert not {e.id for e in seq.train} & {e.id for e in seq.eval}
    assert 0 < sum(e.is_target for e in seq.eval) < len(seq.eval) <= 40
    assert all(set(e.sequence) <= set(STANDARD_AMINO_ACIDS) for e in seq.train)
    res = load_targets(TargetConfig(kind="coil", limit_train=50, limit_eval=20), ESM_RESIDUE_LETTERS, data_dir=data_dir)
    assert len(res.train) == 50 and len(res.eval) == 20
    assert not {e.sequence for e in res.train} & {e.sequence for e in res.eval}
    ctl = load_targets(TargetConfig(kind="coil", limit_train=50, limit_eval=20, random_control=True),
                       ESM_RESIDUE_LETTERS, data_dir=data_dir)
    assert [e.target for e in ctl.eval] == [e.target for e in res.eval]  # judged on the real target
    assert [e.target for e in ctl.train] != [e.target for e in res.train]


def test_antibody_chains_pool_every_source_and_hold_out(data_dir):
    cfg = TargetConfig(kind="strand", chains="antibody")
    assert cfg.name == "antibody-strand"
    data = load_targets(cfg, STANDARD_AMINO_ACIDS, data_dir=data_dir)
    train, held = {e.id for e in data.train}, {e.id for e in data.eval}
    assert not train & held and len(held) == round(0.4 * len(train | held))
    assert "1fdl_H" in train | held and "5lqb-L" in train | held  # CB433 and NetSurfP-2.0 chains alike
    assert all(100 <= len(e.sequence) <= 130 for e in data.train + data.eval)  # variable domains only
    strand = sum(e.target.count("1") for e in data.eval) / sum(len(e.target) for e in data.eval)
    assert 0.35 < strand < 0.65  # the immunoglobulin fold is mostly beta strand
    with pytest.raises(InputError, match="residue-level targets"):
        TargetConfig(kind="class", label="2", chains="antibody")
    with pytest.raises(InputError, match="unknown chain set"):
        TargetConfig(kind="helix", chains="tcr")


def test_batches_hold_four_targets_of_sixteen_and_resume():
    is_target = [i % 7 == 0 for i in range(300)]
    sampler = TargetBatchSampler(is_target, 16, 4, seed=3)
    batches = list(sampler)
    assert len(batches) == (300 - 43) // 12
    for b in batches:
        idx = [i for _, i in b]
        assert len(idx) == 16 and sum(is_target[i] for i in idx) == 4
    again = TargetBatchSampler(is_target, 16, 4, seed=3)
    again.resume_at(0, 5)
    assert list(again) == batches[5:]
    assert list(sampler) != batches  # the next epoch is reshuffled


def test_collator_flags_align_with_tokens(default_backbone, casp12):
    ex = residue_examples(casp12, "helix", alphabet=ESM_RESIDUE_LETTERS)[:3]
    batch = SubnetworkCollator(default_backbone, crop=60)([(e, 11 + i) for i, e in enumerate(ex)])
    assert batch["input_ids"].shape[1] <= 62
    assert not (batch["target"] & batch["other"]).any()
    special = default_backbone.special_tokens_mask(batch["input_ids"]) & (batch["input_ids"] !=
                                                                          default_backbone.tokenizer.mask_token_id)
    assert not (batch["target"] & special).any()
    masked = batch["labels"] != IGNORE_INDEX
    assert masked.any() and (masked <= ~special).all()
    full = SubnetworkCollator(default_backbone, crop=2000)([(e, 5) for e in ex])  # no cropping
    for row, e in enumerate(ex):
        flags = "".join("1" if t else "0" if o else "-" for t, o in zip(full["target"][row, 1: len(e.sequence) + 1],
                                                                         full["other"][row, 1: len(e.sequence) + 1],
                                                                         strict=True))
        assert flags == e.target
    same = SubnetworkCollator(default_backbone, crop=60)([(e, 11 + i) for i, e in enumerate(ex)])
    assert all(torch.equal(batch[k], same[k]) for k in batch)

"""Windows + stitching, batch independence, merge == unmerged, save/load round trip."""

from __future__ import annotations

import copy

import numpy as np
import pytest
import torch

from plmstruct.data.fasta import fit_to_length, window_owner
from plmstruct.finetune import SSModel, TunerConfig, load_ss_model, save_ss_model
from plmstruct.finetune.predict import predict_probs


def _perturb(model: SSModel, seed: int = 0) -> None:
    """Give every trainable tensor (adapter + head) random non-trivial values."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in model.parameters():
            if p.requires_grad:
                p.copy_(p + 0.05 * torch.randn(p.shape, generator=g))


@pytest.fixture()
def real_seqs(data_dir):
    from plmstruct.data.secondary_structure import read_three_line

    recs = read_three_line(data_dir / "secondary_structure" / "CASP12.txt")
    return [r.sequence for r in recs[:6]]


def test_long_chain_windows_are_stitched_from_their_windows(tiny, real_seqs):
    model = SSModel(tiny, 3, TunerConfig(method="lora")).eval()
    _perturb(model)
    seq = max(real_seqs, key=len)
    max_len, overlap = 64, 16
    got = predict_probs(model, [seq], max_len=max_len, overlap=overlap)[0]
    assert got.shape == (len(seq), 3)
    assert np.allclose(got.sum(1), 1, atol=1e-5)
    wins = fit_to_length("c", seq, max_len, policy="split", overlap=overlap)
    assert len(wins) > 2
    per_win = [predict_probs(model, [w.sequence], max_len=max_len)[0] for w in wins]
    expected = np.stack([per_win[w][off] for w, off in window_owner(wins, len(seq))])
    assert np.allclose(got, expected, atol=1e-5)


def test_prediction_does_not_depend_on_batch_mates(default_backbone, real_seqs):
    model = SSModel(copy.deepcopy(default_backbone), 8, TunerConfig(method="adapter")).eval()
    _perturb(model)
    together = predict_probs(model, real_seqs)
    alone = [predict_probs(model, [s])[0] for s in real_seqs]
    for a, b in zip(together, alone, strict=True):
        assert np.allclose(a, b, atol=1e-4)


@pytest.mark.parametrize("method", ["lora", "ia3"])
def test_merged_equals_unmerged(default_backbone, real_seqs, method):
    model = SSModel(copy.deepcopy(default_backbone), 3, TunerConfig(method=method)).eval()
    _perturb(model)
    before = predict_probs(model, real_seqs)
    assert model.merge()
    assert not any("lora_" in n or "ia3_" in n for n, _ in model.encoder.named_parameters())
    after = predict_probs(model, real_seqs)
    for a, b in zip(before, after, strict=True):
        assert np.allclose(a, b, atol=1e-4)
    # and the merge really changed the backbone weights
    top = model.backbone.num_layers - 1
    assert not torch.equal(model.backbone.linear(top, "key").weight, default_backbone.linear(top, "key").weight)
    assert torch.equal(model.backbone.linear(0, "key").weight, default_backbone.linear(0, "key").weight)


def test_adapter_is_not_mergeable(default_backbone):
    model = SSModel(copy.deepcopy(default_backbone), 3, TunerConfig(method="adapter"))
    assert model.merge() is False and model.peft_model is not None


@pytest.mark.parametrize("method", ["lora", "ia3", "adapter", "features", "full"])
def test_save_load_round_trip(default_backbone, real_seqs, tmp_path, method):
    model = SSModel(copy.deepcopy(default_backbone), 8, TunerConfig(method=method, rank=4)).eval()
    _perturb(model, seed=1)
    want = predict_probs(model, real_seqs[:3])
    save_ss_model(model, tmp_path / "m", backbone_spec="default")
    files = {p.name: p.stat().st_size for p in (tmp_path / "m").iterdir()}
    assert "config.json" in files and "head.safetensors" in files
    if method in ("lora", "ia3", "adapter"):
        assert files["tuner.safetensors"] < 200_000  # adapters only, not the 3.2M-parameter backbone
    assert ("tuner.safetensors" in files) == (method != "features")
    loaded = load_ss_model(tmp_path / "m")
    got = predict_probs(loaded, real_seqs[:3])
    for a, b in zip(want, got, strict=True):
        assert np.allclose(a, b, atol=1e-5)


def test_loading_a_missing_or_foreign_folder_says_which(tmp_path):
    from plmstruct.errors import InputError

    with pytest.raises(InputError, match="no such folder"):
        load_ss_model(tmp_path / "absent")
    with pytest.raises(InputError, match="not a fine-tuned model folder"):
        load_ss_model(tmp_path)


def test_nine_state_model_reports_q9_q8_q3_where_labels_allow(tiny, data_dir):
    from plmstruct.data.secondary_structure import read_netsurfp_csv, read_three_line
    from plmstruct.finetune.predict import data_states, evaluate_records

    casp = read_three_line(data_dir / "secondary_structure" / "CASP12.txt")[:3]
    cb513 = read_netsurfp_csv(data_dir / "ss_netsurfp2_prottrans" / "CB513_HHblits.csv", n_states=8)[:3]
    assert data_states(casp) == 9 and data_states(cb513) == 8
    model = SSModel(tiny, 9, TunerConfig(method="lora")).eval()
    reports, predicted = evaluate_records(model, casp)
    assert [r.name for r in reports] == ["Q9", "Q8", "Q3"]
    assert [len(p) for p in predicted] == [len(r.sequence) for r in casp]
    assert all(set(p) <= set("HGIEBTSPL") for p in predicted)
    assert [r.name for r in evaluate_records(model, cb513)[0]] == ["Q8", "Q3"]

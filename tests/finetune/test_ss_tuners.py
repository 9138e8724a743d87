"""Tuner placement: new parameters only in the top-k blocks, backbone frozen, exact counts; the
same code on ESM-2 (tiny, default) and BERT (AntiBERTy)."""

from __future__ import annotations

import copy
import re

import pytest
import torch

from plmstruct.finetune import SSModel, TunerConfig, top_layers


def _new_params(model: SSModel) -> dict[str, torch.nn.Parameter]:
    return {n: p for n, p in model.encoder.named_parameters() if p.requires_grad}


def _layer(name: str) -> int:
    return int(re.search(r"\.layer\.(\d+)\.", name).group(1))


def test_top_layers():
    assert top_layers(4, None) == [2, 3]
    assert top_layers(6, None) == [4, 5]
    assert top_layers(8, None) == [5, 6, 7]
    assert top_layers(4, 1) == [3]
    with pytest.raises(ValueError):
        top_layers(4, 5)


@pytest.mark.parametrize("which", ["tiny", "default", "antiberty"])
@pytest.mark.parametrize("top_k", [None, 1])
def test_lora_only_in_top_blocks_with_exact_count(which, top_k, request, tiny):
    backbone = tiny if which == "tiny" else copy.deepcopy(request.getfixturevalue(
        "default_backbone" if which == "default" else "antiberty"))
    before = {n: p.detach().clone() for n, p in backbone.encoder.named_parameters()}
    cfg = TunerConfig(method="lora", top_k=top_k, rank=4)
    model = SSModel(backbone, 3, cfg)
    new = _new_params(model)
    layers = top_layers(backbone.num_layers, top_k)
    assert new and all("lora_" in n for n in new)
    assert {_layer(n) for n in new} == set(layers)
    h = backbone.hidden_size
    assert sum(p.numel() for p in new.values()) == len(layers) * 4 * 4 * (h + h)  # 4 linears, r*(in+out)
    # every original backbone weight is frozen and unchanged
    for n, p in model.encoder.named_parameters():
        if "lora_" not in n:
            assert not p.requires_grad
            key = n.replace(".base_layer", "")
            assert torch.equal(p, before[key])


@pytest.mark.parametrize("which", ["default", "antiberty"])
def test_ia3_and_adapter_placement(which, request):
    fixture = request.getfixturevalue("default_backbone" if which == "default" else "antiberty")
    h, inter = fixture.hidden_size, fixture.model.config.intermediate_size
    layers = top_layers(fixture.num_layers, None)
    ia3 = SSModel(copy.deepcopy(fixture), 8, TunerConfig(method="ia3"))
    new = _new_params(ia3)
    assert {_layer(n) for n in new} == set(layers) and all("ia3_" in n for n in new)
    # key and value scale their outputs (h each); the feed-forward output scales its input (intermediate)
    assert sum(p.numel() for p in new.values()) == len(layers) * (h + h + inter)
    ad = SSModel(copy.deepcopy(fixture), 8, TunerConfig(method="adapter", rank=16))
    new = _new_params(ad)
    assert {_layer(n) for n in new} == set(layers)
    assert all(".output.dense." in n for n in new)
    assert sum(p.numel() for p in new.values()) == len(layers) * (h * 16 + 16 + 16 * h + h)


def test_fresh_adapter_and_lora_leave_the_backbone_function_unchanged(default_backbone):
    seqs = ["MKTAYIAKQRQISFVKSHFSRQ", "GSHMLEDPVDAFQ"]
    enc = default_backbone.encode(seqs)
    with torch.no_grad():
        ref = default_backbone.encoder(**enc)[0]
    for method in ("lora", "adapter", "ia3"):
        model = SSModel(copy.deepcopy(default_backbone), 3, TunerConfig(method=method)).eval()
        with torch.no_grad():
            got = model.encoder(**enc)[0]
        assert torch.allclose(got, ref, atol=1e-5), method


def test_features_and_full(default_backbone):
    feat = SSModel(copy.deepcopy(default_backbone), 3, TunerConfig(method="features"))
    assert not _new_params(feat) and feat.peft_model is None
    assert all(p.requires_grad for p in feat.head.parameters())
    full = SSModel(copy.deepcopy(default_backbone), 3, TunerConfig(method="full"))
    assert sum(p.numel() for p in _new_params(full).values()) == sum(
        p.numel() for p in full.encoder.parameters())
    with pytest.raises(ValueError):
        TunerConfig(method="prompt")


def test_gradients_reach_only_trainable_parameters(default_backbone):
    model = SSModel(copy.deepcopy(default_backbone), 3, TunerConfig(method="adapter"))
    enc = default_backbone.encode(["MKTAYIAKQRQISFVKSHFSRQ"])
    # make the adapter non-trivial so gradients flow through both projections
    for n, p in model.encoder.named_parameters():
        if "lora_B" in n:
            torch.nn.init.normal_(p, std=0.02)
    model(enc["input_ids"], enc["attention_mask"]).sum().backward()
    for n, p in model.encoder.named_parameters():
        assert (p.grad is not None) == p.requires_grad, n

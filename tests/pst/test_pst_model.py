"""PSTModel: exact equality with the backbone at zero init and in sequence mode, node mapping in
padded batches, one extractor pass per block."""

from __future__ import annotations

import copy

import pytest
import torch

from plmstruct.backbone import tiny_esm
from plmstruct.errors import InputError
from plmstruct.pst.data import encode_items, load_graph_items
from plmstruct.pst.extractor import QKV
from plmstruct.pst.model import PSTModel, StructureAwareLinear


def _randomise_projections(pst: PSTModel, seed: int = 0) -> None:
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for block in pst.blocks:
            for which in QKV:
                w = getattr(block.proj, which).weight
                w.copy_(torch.randn(w.shape, generator=g) * 0.05)


def _assert_same(ref, out) -> None:
    assert torch.equal(ref.logits, out.logits)
    assert len(ref.hidden_states) == len(out.hidden_states)
    for a, b in zip(ref.hidden_states, out.hidden_states, strict=True):
        assert torch.equal(a, b)


@pytest.mark.parametrize("shape", [dict(num_layers=2, hidden_size=32, num_heads=4),
                                   dict(num_layers=3, hidden_size=48, num_heads=6)])
def test_zero_init_equals_esm_backbone_on_real_graphs(real_items, shape):
    backbone = tiny_esm(seed=1, **shape)
    enc = encode_items(backbone, real_items[:4])
    assert enc["graph"].num_edges > 0
    with torch.no_grad():
        ref = backbone.model(input_ids=enc["input_ids"], attention_mask=enc["attention_mask"],
                             output_hidden_states=True)
        pst = PSTModel(backbone).eval()
        out = pst(enc["input_ids"], enc["attention_mask"], enc["graph"], output_hidden_states=True)
        seq = pst(enc["input_ids"], enc["attention_mask"], None, output_hidden_states=True)
    _assert_same(ref, out)
    _assert_same(ref, seq)
    # the wrappers are really in the path: non-zero W^s changes the structure pass only
    _randomise_projections(pst)
    with torch.no_grad():
        changed = pst(enc["input_ids"], enc["attention_mask"], enc["graph"]).logits
        still = pst(enc["input_ids"], enc["attention_mask"], None, output_hidden_states=True)
    assert not torch.allclose(changed, ref.logits, atol=1e-4)
    _assert_same(ref, still)


def test_zero_init_equals_antiberty_on_real_graphs(antiberty_copy, structure_paths):
    """Real pretrained BERT (post-LN family) with graphs from real structures."""
    backbone = antiberty_copy
    items, skipped = load_graph_items(structure_paths[:5], alphabet=backbone.alphabet)
    assert len(items) == 5 and not skipped
    enc = encode_items(backbone, items)
    with torch.no_grad():
        ref = backbone.model(input_ids=enc["input_ids"], attention_mask=enc["attention_mask"],
                             output_hidden_states=True)
        pst = PSTModel(backbone).eval()
        assert isinstance(backbone.layers[0].attention.self.query, StructureAwareLinear)
        out = pst(enc["input_ids"], enc["attention_mask"], enc["graph"], output_hidden_states=True)
        seq = pst(enc["input_ids"], enc["attention_mask"], None, output_hidden_states=True)
    _assert_same(ref, out)
    _assert_same(ref, seq)
    # backbone state dict under its original names round-trips
    names = set(pst.backbone_state_dict())
    assert "bert.encoder.layer.0.attention.self.query.weight" in names
    assert not any(".base." in n for n in names)


def test_zero_init_equals_default_model_on_real_graphs(default_backbone, real_items):
    """The embedded default ESM-2 (real, pretrained) with graphs from real structures."""
    backbone = copy.deepcopy(default_backbone)
    enc = encode_items(backbone, real_items[:4])
    with torch.no_grad():
        ref = backbone.model(input_ids=enc["input_ids"], attention_mask=enc["attention_mask"],
                             output_hidden_states=True)
        pst = PSTModel(backbone).eval()
        out = pst(enc["input_ids"], enc["attention_mask"], enc["graph"], output_hidden_states=True)
    _assert_same(ref, out)


def test_padded_batch_maps_tokens_to_the_right_nodes(real_items):
    """With a trained-looking PST, each protein's output in a padded batch equals its output alone."""
    backbone = tiny_esm(seed=2)
    pst = PSTModel(backbone).eval()
    _randomise_projections(pst, seed=3)
    items = [real_items[1], real_items[0], real_items[4]]  # different lengths -> padding
    enc = encode_items(backbone, items)
    with torch.no_grad():
        together = pst(enc["input_ids"], enc["attention_mask"], enc["graph"]).logits
        for row, item in enumerate(items):
            alone_enc = encode_items(backbone, [item])
            alone = pst(alone_enc["input_ids"], alone_enc["attention_mask"], alone_enc["graph"]).logits[0]
            n = len(item) + 2
            assert torch.allclose(together[row, :n], alone[:n], atol=1e-5)


def test_structure_summary_computed_once_per_block(real_items):
    backbone = tiny_esm(seed=0, num_layers=3)
    pst = PSTModel(backbone).eval()
    calls = []
    for block in pst.blocks:
        block.extractor.register_forward_hook(lambda *_: calls.append(1))
    enc = encode_items(backbone, real_items[:2])
    with torch.no_grad():
        pst(enc["input_ids"], enc["attention_mask"], enc["graph"])
    assert len(calls) == backbone.num_layers


def test_graph_must_match_the_residues(real_items):
    backbone = tiny_esm()
    pst = PSTModel(backbone)
    enc = encode_items(backbone, real_items[:2])
    other = encode_items(backbone, real_items[2:4])
    with pytest.raises(InputError, match="nodes"):
        pst(enc["input_ids"], enc["attention_mask"], other["graph"])
    with pytest.raises(ValueError, match="already wrapped"):
        PSTModel(backbone)


def test_graph_cropping_keeps_only_inner_edges(real_items):
    item = real_items[0]
    crop = item.crop(10, 40)
    assert len(crop) == 40 and crop.sequence == item.sequence[10:50]
    e = crop.edge_index
    assert int(e.min()) >= 0 and int(e.max()) < 40
    full = {(int(a), int(b)) for a, b in item.edge_index.t()}
    expected = {(a - 10, b - 10) for a, b in full if 10 <= a < 50 and 10 <= b < 50}
    assert {(int(a), int(b)) for a, b in e.t()} == expected

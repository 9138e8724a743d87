"""PST masked-LM batches: validation hides every scored residue, training keeps the 80/10/10 recipe."""

from __future__ import annotations

from plmstruct.data.secondary_structure import IGNORE_INDEX
from plmstruct.pst.data import StructureMLMDataModule


def test_validation_batches_hide_every_scored_residue(default_backbone, real_items):
    dm = StructureMLMDataModule(default_backbone, real_items * 4, real_items * 4, batch_size=32, max_len=128)
    dm.setup()
    val = next(iter(dm.val_dataloader()))
    chosen = val["labels"] != IGNORE_INDEX
    assert chosen.sum() > 100
    assert bool((val["input_ids"][chosen] == default_backbone.tokenizer.mask_token_id).all())
    train = next(iter(dm.train_dataloader()))
    scored = train["labels"] != IGNORE_INDEX
    assert bool((train["input_ids"][scored] == train["labels"][scored]).any())  # 10% kept in training

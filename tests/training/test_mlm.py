"""Masked-LM training on the shared loop: the collator's masking recipe, the masked-positions-only
loss (same value as the full-logits loss, both families), and a short real run that learns."""

from __future__ import annotations

import csv

import pytest
import torch

from plmstruct.data.paths import data_file
from plmstruct.data.secondary_structure import IGNORE_INDEX, read_three_line
from plmstruct.training import OptimConfig, TrainConfig, fit
from plmstruct.training.mlm import MLMCollator, MLMModule, SequenceMLMDataModule, masked_lm_loss


@pytest.fixture(scope="module")
def casp12() -> list[str]:
    return [r.sequence for r in read_three_line(data_file("secondary_structure", "CASP12.txt"))]


def test_collator_masks_15_percent_of_residues_deterministically(tiny, casp12):
    collate = MLMCollator(tiny, max_len=100)
    items = [(s, 1000 + i) for i, s in enumerate(casp12)]
    batch = collate(items)
    again = collate(items)
    assert all(torch.equal(batch[k], again[k]) for k in batch)  # a pure function of the item seeds
    assert batch["input_ids"].shape[1] == 102  # crops of at most 100 residues + <cls>/<eos>
    chosen = batch["labels"] != IGNORE_INDEX
    special = tiny.special_tokens_mask(batch["input_ids"]) & (batch["input_ids"] != tiny.tokenizer.mask_token_id)
    assert not (chosen & special).any()  # never cls/eos/pad
    residues = int(batch["attention_mask"].sum()) - 2 * len(items)
    assert 0.12 < int(chosen.sum()) / residues < 0.18
    masked = batch["input_ids"][chosen] == tiny.tokenizer.mask_token_id
    assert 0.72 < float(masked.float().mean()) < 0.88  # 80% <mask>, the rest random or kept
    other = collate([(s, 2000 + i) for i, s in enumerate(casp12)])
    assert not torch.equal(other["labels"], batch["labels"])


def test_validation_batches_hide_every_scored_residue(tiny, casp12):
    """Validation perplexity must not score residues the model can see (training's 10% kept)."""
    dm = SequenceMLMDataModule(tiny, casp12, casp12, batch_size=8, max_len=100)
    dm.setup()
    val = next(iter(dm.val_dataloader()))
    chosen = val["labels"] != IGNORE_INDEX
    assert chosen.sum() > 100 and bool((val["input_ids"][chosen] == tiny.tokenizer.mask_token_id).all())
    train = next(iter(dm.train_dataloader()))
    scored = train["labels"] != IGNORE_INDEX
    assert bool((train["input_ids"][scored] == train["labels"][scored]).any())  # training keeps 80/10/10


@pytest.mark.parametrize("which", ["tiny", "antiberty"])
def test_masked_positions_loss_equals_full_logits_loss(which, request, casp12):
    backbone = request.getfixturevalue(which)
    seqs = casp12[:4] if which == "tiny" else [s[:100] for s in request.getfixturevalue("antibodies")]
    dm = SequenceMLMDataModule(backbone, seqs, seqs, batch_size=4, max_len=100)
    batch = next(iter(dm.val_dataloader()))
    module = MLMModule(backbone)
    with torch.no_grad():
        loss, n = module._loss(batch)
        full = masked_lm_loss(module(batch["input_ids"], batch["attention_mask"]), batch["labels"])
    assert n == int((batch["labels"] != IGNORE_INDEX).sum()) > 0
    assert float(loss) == pytest.approx(float(full), rel=1e-5)


def test_short_mlm_run_learns_on_real_sequences(tmp_path, casp12, recwarn):
    from plmstruct.backbone import tiny_esm

    backbone = tiny_esm(seed=1, num_layers=2, hidden_size=64, num_heads=4)
    backbone.model.eval()  # as every loader hands it out
    dm = SequenceMLMDataModule(backbone, casp12[:40], casp12[40:], batch_size=8, max_len=128, seed=0)
    module = MLMModule(backbone, OptimConfig(lr=3e-3, warmup_steps=5, schedule="linear"), total_steps=40)
    cfg = TrainConfig(out_dir=tmp_path / "run", max_steps=40, batch_size=8, val_every_n_steps=20,
                      checkpoint_every_n_steps=20, log_every_n_steps=1, progress=False, accelerator="cpu")
    trainer = fit(module, dm, cfg)
    assert trainer.global_step == 40
    assert (tmp_path / "run" / "checkpoints" / "last.ckpt").exists()
    with open(tmp_path / "run" / "metrics.csv", newline="") as fh:
        rows = list(csv.DictReader(fh))
    train = [float(r["train/loss"]) for r in rows if r["train/loss"]]
    val = [float(r["val/loss"]) for r in rows if r["val/loss"]]
    assert len(train) == 40 and len(val) == 2
    # from ~ln(33) = 3.5 (a uniform guess) down to the residue-frequency level (~2.85-2.95)
    assert train[0] > 3.4 and sum(train[-10:]) / 10 < 2.97 and val[-1] < 2.9
    assert all(m.training for m in backbone.model.modules())  # trained in train mode
    assert not [w for w in recwarn if "in eval mode" in str(w.message)]  # switched before Lightning checks


@pytest.fixture(scope="module")
def antibodies(antibody_heavy) -> list[str]:
    return antibody_heavy

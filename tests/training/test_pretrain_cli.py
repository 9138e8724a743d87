"""`plmstruct pretrain` on the real bundled corpus: a few steps of a tiny model, an export that
loads back as a backbone, and `--resume` continuing the same run."""

from __future__ import annotations

import csv
import json

import torch
from typer.testing import CliRunner

from plmstruct.backbone import load_backbone
from plmstruct.cli.main import app

TINY = ["--layers", "1", "--hidden", "16", "--heads", "2", "--crop", "48", "--batch-size", "4",
        "--limit-sequences", "64", "--checkpoint-every", "2", "--val-every", "1000", "--lr", "3e-3",
        "--warmup", "2", "--threads", "1"]


def _json_tail(output: str) -> dict:
    return json.loads(output[output.index("{"):])


def test_pretrain_runs_exports_and_resumes(tmp_path):
    runner = CliRunner()
    out, export = tmp_path / "run", tmp_path / "export"
    first = runner.invoke(app, ["pretrain", "--out-dir", str(out), "--steps", "12", *TINY])
    assert first.exit_code == 0, first.output
    metrics = _json_tail(first.output)
    assert metrics["steps"] == 12 and metrics["train_sequences"] == 64
    assert metrics["removed_test_overlap"] > 0  # test-set chains were held out
    assert 1.0 < metrics["val_perplexity"] < 33.0

    second = runner.invoke(app, ["pretrain", "--out-dir", str(out), "--steps", "24", "--resume",
                                 "--export", str(export), *TINY])
    assert second.exit_code == 0, second.output
    assert _json_tail(second.output)["steps"] == 24
    with open(out / "metrics.csv", newline="") as fh:
        steps = [int(r["step"]) for r in csv.DictReader(fh) if r["train/loss"]]
    assert steps == [9, 19]  # logged every 10 steps: one row from each part, kept across the resume

    backbone = load_backbone(str(export))
    assert backbone.family == "esm" and backbone.num_layers == 1 and backbone.hidden_size == 16
    card = (export / "README.md").read_text()
    assert card.startswith("# plmstruct default model (ESM-2 architecture, pretrained from scratch)")
    assert f'load_backbone("{export}")' in card
    ckpt = torch.load(out / "checkpoints" / "last.ckpt", weights_only=True)
    for key, value in backbone.model.state_dict().items():
        if f"model.{key}" in ckpt["state_dict"] and "inv_freq" not in key and "contact_head" not in key:
            assert torch.equal(value, ckpt["state_dict"][f"model.{key}"]), key



def test_pretrain_init_continues_from_an_existing_model(tmp_path):
    """`--init` starts from the given model's weights (and size), not from a fresh initialisation."""
    runner = CliRunner()
    first = runner.invoke(app, ["pretrain", "--out-dir", str(tmp_path / "a"), "--steps", "4",
                                "--export", str(tmp_path / "a-export"), *TINY])
    assert first.exit_code == 0, first.output
    start = load_backbone(str(tmp_path / "a-export")).model.state_dict()
    tiny_lr = [a if a != "3e-3" else "1e-6" for a in TINY]
    args = ["pretrain", "--out-dir", str(tmp_path / "b"), "--steps", "2", "--export", str(tmp_path / "b-export"),
            "--init", str(tmp_path / "a-export"), *tiny_lr]
    args[args.index("--hidden") + 1] = "32"  # ignored: the size comes from --init
    second = runner.invoke(app, args)
    assert second.exit_code == 0, second.output
    assert _json_tail(second.output)["init"] == str(tmp_path / "a-export")
    after = load_backbone(str(tmp_path / "b-export"))
    assert after.hidden_size == 16
    emb = "esm.embeddings.word_embeddings.weight"
    moved = (after.model.state_dict()[emb] - start[emb]).abs().max()
    assert 0 < moved < 1e-3  # trained a little from the initial weights
    card = (tmp_path / "b-export" / "README.md").read_text()
    assert card.startswith(f"# plmstruct model (ESM-2 architecture, continued pretraining of `{tmp_path / 'a-export'}`)")
    assert "from scratch" not in card and "2 more, from the weights of the initial model" in card


def test_pretrain_init_rejects_a_non_esm_model(tmp_path):
    result = CliRunner().invoke(app, ["pretrain", "--out-dir", str(tmp_path), "--steps", "1", "--init", "antiberty",
                                      *TINY])
    assert result.exit_code == 2 and "only ESM-family" in result.output

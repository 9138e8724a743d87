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
    assert (export / "README.md").read_text().startswith("# plmstruct default model")
    ckpt = torch.load(out / "checkpoints" / "last.ckpt", weights_only=True)
    for key, value in backbone.model.state_dict().items():
        if f"model.{key}" in ckpt["state_dict"] and "inv_freq" not in key and "contact_head" not in key:
            assert torch.equal(value, ckpt["state_dict"][f"model.{key}"]), key


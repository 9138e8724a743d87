"""The ``plmstruct subnetwork`` commands end to end (tiny random ESM for speed; the default model
for a real run), their help, and one-line errors for bad input."""

from __future__ import annotations

import json

import pytest
import torch
from typer.testing import CliRunner

from plmstruct.backbone import load_backbone
from plmstruct.cli.main import app
from plmstruct.subnetworks.artifact import apply_mask, load_artifact

runner = CliRunner()
TINY = ["--backbone", "tiny-esm", "--steps", "3", "--batch-size", "4", "--crop", "48", "--limit-train", "16",
        "--threads", "1"]


def _ok(args):
    res = runner.invoke(app, args)
    assert res.exit_code == 0, res.output
    return res


@pytest.mark.parametrize("cmd", ["train", "evaluate", "apply", "compare", "sweep"])
def test_help(cmd):
    res = _ok(["subnetwork", cmd, "--help"])
    assert "Usage" in res.output


def test_train_evaluate_apply_compare_on_tiny(tmp_path):
    _ok(["subnetwork", "train", *TINY, "--out", str(tmp_path / "h"), "--lr", "1.0"])
    _ok(["subnetwork", "train", *TINY, "--out", str(tmp_path / "r"), "--random-control", "--lr", "1.0"])
    for run in ("h", "r"):
        assert (tmp_path / run / "mask" / "subnetwork.json").is_file()
    _ok(["subnetwork", "evaluate", str(tmp_path / "h" / "mask"), str(tmp_path / "r" / "mask"), "--out",
         str(tmp_path / "ev"), "--no-contacts", "--passes", "2", "--draws", "1", "--limit-eval", "6",
         "--threads", "1"])
    res = json.loads((tmp_path / "ev" / "evaluation.json").read_text())
    assert set(res["subnetworks"]) == {"helix", "random-helix"}
    assert "own_target" in res["subnetworks"]["random-helix"]["deterministic"]
    report = (tmp_path / "ev" / "REPORT.md").read_text()
    assert "| helix | helix | deterministic |" in report and "jaccard.png" in report
    # which folder each name came from (two masks of the same target are told apart)
    assert f"`helix` = `{tmp_path / 'h' / 'mask'}`" in report and f"`random-helix` = `{tmp_path / 'r' / 'mask'}`" in report
    assert res["subnetworks"]["helix"]["mask_folder"] == str(tmp_path / "h" / "mask")
    assert (tmp_path / "ev" / "perplexity.png").is_file()
    _ok(["subnetwork", "apply", str(tmp_path / "h" / "mask"), "--out", str(tmp_path / "model")])
    applied = load_backbone(str(tmp_path / "model"))
    expected = apply_mask(load_artifact(tmp_path / "h" / "mask"), load_backbone("tiny-esm"))
    ids = expected.encode(["MKTAYIAKQRQISFVKSHF"])
    with torch.no_grad():
        assert torch.equal(applied.model(**ids).logits, expected.model(**ids).logits)
    res = _ok(["subnetwork", "compare", str(tmp_path / "h" / "mask"), str(tmp_path / "r" / "mask"), "--out",
               str(tmp_path / "cmp")])
    matrix = json.loads((tmp_path / "cmp" / "jaccard.json").read_text())
    assert matrix["helix"]["helix"] == 1.0 and 0.0 <= matrix["helix"]["random-helix"] <= 1.0


def test_sweep_writes_one_report(tmp_path):
    _ok(["subnetwork", "sweep", "strand", "class:1", "--backbone", "tiny-esm", "--steps", "2", "--batch-size", "8",
         "--crop", "48", "--limit-train", "40", "--limit-eval", "8", "--no-contacts", "--no-stochastic", "--draws",
         "1", "--out", str(tmp_path / "sw"), "--threads", "1"])
    report = (tmp_path / "sw" / "REPORT.md").read_text()
    assert "Subnetwork sweep: strand, class:1" in report
    assert "| strand |" in report and "| class-1 |" in report
    assert (tmp_path / "sw" / "jaccard.png").is_file()


@pytest.mark.parametrize("args, message", [
    (["subnetwork", "train", "--target", "loops"], "unknown target"),
    (["subnetwork", "train", "--target", "class"], "needs a label"),
    (["subnetwork", "train", "--target", "class:7", "--backbone", "tiny-esm"], "no domain has class 7"),
    (["subnetwork", "evaluate", "/nonexistent/mask"], "no such folder"),
    (["subnetwork", "train", "--modules", "attention"], "unknown module"),
    (["subnetwork", "train", "--chains", "tcr"], "unknown chain set 'tcr'"),
    (["subnetwork", "train", "--target", "class:1", "--chains", "antibody"], "residue-level targets"),
])
def test_bad_input_is_one_line(args, message, tmp_path):
    res = runner.invoke(app, [*args, "--out", str(tmp_path / "o")] if args[1] != "evaluate" else args)
    assert res.exit_code == 2, res.output
    assert message in res.output and "Traceback" not in res.output


def test_cli_train_and_evaluate_on_the_default_model(tmp_path):
    _ok(["subnetwork", "train", "--backbone", "default", "--steps", "4", "--batch-size", "8", "--crop", "64",
         "--limit-train", "64", "--out", str(tmp_path / "d"), "--threads", "1"])
    art = load_artifact(tmp_path / "d" / "mask")
    assert art.backbone == "default" and sorted({k.split(".")[0] for k in art.binary}) == ["layer1", "layer2",
                                                                                          "layer3"]
    _ok(["subnetwork", "evaluate", str(tmp_path / "d" / "mask"), "--out", str(tmp_path / "ev"), "--passes", "2",
         "--draws", "1", "--limit-eval", "8", "--contact-train", "6", "--contact-test", "4", "--threads", "1"])
    res = json.loads((tmp_path / "ev" / "evaluation.json").read_text())
    entry = res["subnetworks"]["helix"]
    assert entry["original"]["target"] > 1 and entry["deterministic"]["n_target"] > 0
    assert "contacts" in entry and res["contacts_original"]["chains"] == 4

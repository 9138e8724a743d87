"""The ``plmstruct ss`` commands on the default model and real data: train (+ resume), evaluate
(standard set + an extra file), predict (long chain windowed), and clear errors for bad input."""

from __future__ import annotations

import csv
import json

import numpy as np
import pytest
from typer.testing import CliRunner

from plmstruct.cli.main import app
from plmstruct.data.secondary_structure import read_three_line, write_three_line

runner = CliRunner()


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    run = tmp_path_factory.mktemp("ss") / "run"
    args = ["ss", "train", "--method", "lora", "--states", "8", "--max-steps", "3", "--limit-train", "40",
            "--batch-size", "4", "--max-len", "96", "--out", str(run), "--checkpoint-every", "3",
            "--redundancy", "python", "--filter-against", "CASP12", "--threads", "1"]
    res = runner.invoke(app, args)
    assert res.exit_code == 0, res.output
    return run, args


def test_train_writes_a_small_model_and_resumes(trained):
    run, args = trained
    summary = json.loads((run / "summary.json").read_text())
    assert summary["steps"] == 3 and summary["method"] == "lora" and summary["n_states"] == 8
    assert summary["train_chains"] > 20
    assert (run / "redundancy.tsv").read_text().startswith("# removed ")
    assert (run / "model" / "tuner.safetensors").stat().st_size < 200_000
    assert (run / "checkpoints" / "last.ckpt").exists()
    res = runner.invoke(app, [*args[:7], "5", *args[8:], "--resume"])
    assert res.exit_code == 0, res.output
    assert json.loads((run / "summary.json").read_text())["steps"] == 5


def test_evaluate_standard_set_and_extra_file(trained, tmp_path, data_dir):
    run, _ = trained
    extra = tmp_path / "mine.txt"
    write_three_line(read_three_line(data_dir / "secondary_structure" / "CB433.txt")[:4], extra)
    res = runner.invoke(app, ["ss", "evaluate", str(run / "model"), "--test-sets", "CASP12", "--file", str(extra),
                              "--limit-chains", "4", "--out", str(tmp_path / "eval")])
    assert res.exit_code == 0, res.output
    for name in ("CASP12", "mine"):
        rows = list(csv.DictReader((tmp_path / "eval" / f"{name}.tsv").open(), delimiter="\t"))
        assert [r["metric"] for r in rows] == ["Q8", "Q3"]  # 8-state model: Q8 and Q3 (mapped)
        assert all(0 <= float(r["accuracy"]) <= 100 and 0 <= float(r["sov99"]) <= 100 for r in rows)
        assert (tmp_path / "eval" / f"{name}_confusion_Q8.png").exists()
    # CB513 (NetSurfP CSV, 8-state labels)
    res = runner.invoke(app, ["ss", "evaluate", str(run / "model"), "--test-sets", "CB513", "--limit-chains", "3",
                              "--out", str(tmp_path / "eval2")])
    assert res.exit_code == 0, res.output
    rows = list(csv.DictReader((tmp_path / "eval2" / "CB513.tsv").open(), delimiter="\t"))
    assert [r["metric"] for r in rows] == ["Q8", "Q3"]


def test_predict_long_chain_with_probabilities(trained, tmp_path, data_dir):
    run, _ = trained
    recs = read_three_line(data_dir / "secondary_structure" / "CB634.txt")
    long = "".join(r.sequence for r in recs[:8]).replace("X", "")[:1300]  # > the 1,022-residue limit
    fasta = tmp_path / "in.fasta"
    fasta.write_text(f">long\n{long}\n>short\n{recs[0].sequence.replace('X', 'A')}\n")
    res = runner.invoke(app, ["ss", "predict", str(fasta), "-o", str(tmp_path / "out.tsv"), "--model",
                              str(run / "model")])
    assert res.exit_code == 0, res.output
    rows = list(csv.DictReader((tmp_path / "out.tsv").open(), delimiter="\t"))
    long_rows = [r for r in rows if r["id"] == "long"]
    assert len(long_rows) == 1300 and "".join(r["residue"] for r in long_rows) == long
    probs = np.array([[float(r[f"p_{s}"]) for s in "HGIEBTSL"] for r in rows])
    assert np.allclose(probs.sum(1), 1, atol=2e-3)
    # the state is the most probable one (up to the 4-decimal rounding of the printed probabilities)
    assert all(p["HGIEBTSL".index(r["state"])] >= p.max() - 1e-4 for r, p in zip(rows, probs, strict=True))


@pytest.mark.parametrize(("content", "message"), [(">a\nMKVLAJ\n", "'J'"), (">a\nmkvl\n", "lower case"),
                                                  ("MKV\n", "before any '>' header")])
def test_predict_bad_fasta_is_a_clear_error(trained, tmp_path, content, message):
    run, _ = trained
    fasta = tmp_path / "bad.fasta"
    fasta.write_text(content)
    res = runner.invoke(app, ["ss", "predict", str(fasta), "-o", str(tmp_path / "o.tsv"), "--model",
                              str(run / "model")])
    assert res.exit_code == 2 and message in res.output
    assert not (tmp_path / "o.tsv").exists()


def test_evaluate_bad_file_and_bad_options(trained, tmp_path):
    run, _ = trained
    bad = tmp_path / "bad.txt"
    bad.write_text(">x\nMKVLA\nHHHE\n")
    res = runner.invoke(app, ["ss", "evaluate", str(run / "model"), "--test-sets", "", "--file", str(bad)])
    assert res.exit_code == 2 and "label string has 4 letters but the sequence has 5" in res.output
    res = runner.invoke(app, ["ss", "evaluate", str(tmp_path), "--test-sets", "CASP12"])
    assert res.exit_code == 2 and "config.json missing" in res.output
    res = runner.invoke(app, ["ss", "train", "--method", "prefix"])
    assert res.exit_code == 2 and "unknown method" in res.output
    res = runner.invoke(app, ["ss", "train", "--states", "8", "--source", "netsurfp", "--max-steps", "1"])
    assert res.exit_code == 2 and "3-state labels only" in res.output


def test_help_of_every_command():
    for cmd in ("train", "evaluate", "predict", "compare"):
        res = runner.invoke(app, ["ss", cmd, "--help"])
        assert res.exit_code == 0 and "Usage" in res.output

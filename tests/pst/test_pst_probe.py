"""Probes: Fmax by hand, heads that learn, PDB-entry matching of real files, and the `probe`
command on real labels (DSSP of real structures, SCOP folds, DeepFRI EC numbers)."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest
from typer.testing import CliRunner

from plmstruct.cli.main import app
from plmstruct.data.fasta import read_fasta, write_fasta
from plmstruct.evaluation.probes import (
    LabelSet,
    ProbeConfig,
    ec_labels_for_test_sequences,
    fmax,
    pdb_code,
    resolve_labels,
    run_probe,
    scop_fold_labels_for_sequences,
    structure_scop_labels,
)

runner = CliRunner()


def test_fmax_matches_a_hand_computed_case():
    scores = np.array([[0.9, 0.2, 0.6], [0.1, 0.8, 0.3]])
    targets = np.array([[1, 0, 0], [0, 1, 1]])
    # t in (0.6, 0.8]: predictions {0} and {1}: precision 1, recall (1 + 0.5)/2 = 0.75 -> F = 6/7
    # t in (0.3, 0.6]: {0,2} and {1}: precision (0.5 + 1)/2 = 0.75, recall 0.75 -> F = 0.75
    # t in (0.2, 0.3]: {0,2} and {1,2}: precision 0.75, recall 1 -> F = 6/7
    assert fmax(scores, targets) == pytest.approx(6 / 7, abs=1e-9)
    assert fmax(targets.astype(float), targets) == pytest.approx(1.0)


def test_heads_learn_separable_labels():
    rng = np.random.default_rng(0)
    centers = rng.normal(size=(3, 16)) * 4
    emb, labels, multi = {}, {}, {}
    for i in range(90):
        c = i % 3
        emb[f"p{i}"] = (centers[c] + rng.normal(size=16)).astype(np.float32)
        labels[f"p{i}"] = f"class{c}"
        multi[f"p{i}"] = [f"class{c}", "shared"] if c else [f"class{c}"]
    for head in ("linear", "mlp"):
        cfg = ProbeConfig(head=head, epochs=100)
        res = run_probe({"x": (emb, {})}, LabelSet("multiclass", labels, "synthetic"), cfg=cfg)
        assert res["results"]["x"]["accuracy"] == 1.0
        res = run_probe({"x": (emb, {})}, LabelSet("multilabel", multi, "synthetic"), cfg=cfg)
        assert res["results"]["x"]["fmax"] > 0.95


def test_pdb_entries_and_scop_labels_of_real_files(data_dir, structure_folder):
    root = data_dir / "structures_collection"
    assert pdb_code(root / "novozymes_pdb" / "12307.pdb.gz") == "1CHK"  # from the HEADER record
    assert pdb_code(root / "ts50_pdb" / "1ahsA.pdb.gz") == "1AHS"
    assert pdb_code(root / "kortemme_pfam_domains" / "PF00013_1WVN_A.pdb.gz") == "1WVN"
    assert pdb_code(root / "afdb_models" / "AF-A0A000-F1.pdb.gz") is None
    labels = structure_scop_labels(structure_folder, "class").labels
    # SCOP: 1ahs A = b.19 (viral coat proteins), 2o9s A = b.34 (SH3), 1i8n A = g.10 (small protein)
    assert labels["1ahsA"] == "b" and labels["PF00018_2O9S_A"] == "b" and labels["1i8nA"] == "g"
    assert "AF-A0A000-F1" not in labels


def test_probe_cli_secondary_structure_on_real_dssp(tmp_path, structure_folder, data_dir):
    for extra in sorted((data_dir / "structures_collection" / "ts50_pdb").glob("*.pdb.gz"))[10:18]:
        shutil.copy(extra, structure_folder / extra.name)
    files = {}
    for name, layers in (("last", "last"), ("all", "all")):
        files[name] = tmp_path / f"{name}.npz"
        res = runner.invoke(app, ["pst", "embed", str(structure_folder), "--out", str(files[name]),
                                  "--backbone", "tiny-esm", "--per-residue", "--layers", layers])
        assert res.exit_code == 0, res.output
    out = tmp_path / "ss.json"
    args = ["probe", f"last={files['last']}", f"all={files['all']}", "--labels", f"dssp:{structure_folder}",
            "--task", "ss3", "--residue-steps", "300", "--out", str(out)]
    res = runner.invoke(app, args)
    assert res.exit_code == 0, res.output
    result = json.loads(out.read_text())
    assert set(result["results"]) == {"last", "all"}
    for metrics in result["results"].values():
        # a random tiny model: the numbers are valid fractions on real DSSP labels (learning itself is
        # checked on separable data above and on real models in docs/results/pst)
        assert 0 < metrics["q3"] <= 1 and 0 < metrics["majority_baseline"] < 1
        assert metrics["n_test_residues"] > 200 and metrics["n_train_proteins"] >= 10
    # same split for both embedding sets
    assert result["results"]["last"]["n_test_residues"] == result["results"]["all"]["n_test_residues"]
    again = runner.invoke(app, [*args, "--resume"])
    assert again.exit_code == 0 and "already" in again.output


def _subset_fasta(path, ids, out):
    records = [r for r in read_fasta(path) if r.id in ids]
    write_fasta(records, out)
    return records


def test_probe_on_real_fold_and_ec_labels(tmp_path, data_dir):
    """Sequence-mode embeddings of real SCOPe domains (fold) and DeepFRI chains (EC)."""
    folds = scop_fold_labels_for_sequences().labels
    counts: dict[str, list[str]] = {}
    for i, f in sorted(folds.items()):
        counts.setdefault(f, []).append(i)
    chosen = [i for members in sorted(counts.values(), key=len, reverse=True)[:4] for i in members[:12]]
    fasta = tmp_path / "fold.fasta"
    _subset_fasta(data_dir / "fold_scop" / "scope40_2.01_2500.fa", set(chosen), fasta)
    emb = tmp_path / "fold.npz"
    assert runner.invoke(app, ["pst", "embed", str(fasta), "--out", str(emb), "--backbone", "tiny-esm"]).exit_code == 0
    out = tmp_path / "fold.json"
    res = runner.invoke(app, ["probe", str(emb), "--labels", "scop-fold", "--epochs", "50", "--out", str(out)])
    assert res.exit_code == 0, res.output
    fold = json.loads(out.read_text())["results"]["fold"]
    assert fold["n_classes"] == 4 and fold["n_test"] >= 8 and 0 <= fold["accuracy"] <= 1

    ec = ec_labels_for_test_sequences().labels
    top = sorted({lab for v in ec.values() for lab in v}, key=lambda lab: -sum(lab in v for v in ec.values()))[:3]
    ids = {i for i, v in ec.items() if any(lab in v for lab in top)}
    ids = set(sorted(ids)[:60])
    fasta = tmp_path / "ec.fasta"
    records = _subset_fasta(data_dir / "function_deepfri_ec" / "nrPDB-EC_2020.04_test_sequences.fasta", ids, fasta)
    assert len(records) == len(ids)
    emb = tmp_path / "ec.parquet"
    assert runner.invoke(app, ["pst", "embed", str(fasta), "--out", str(emb), "--backbone", "tiny-esm"]).exit_code == 0
    labels = resolve_labels("ec")
    result = run_probe({"ec": (read_embeddings_for(emb))}, labels, cfg=ProbeConfig(epochs=50, min_per_class=3))
    metrics = result["results"]["ec"]
    assert 0 < metrics["fmax"] <= 1 and metrics["n_labels"] >= 3


def read_embeddings_for(path):
    from plmstruct.pst.embed import read_embeddings

    return read_embeddings(path)


def test_probe_rejects_unknown_labels(tmp_path):
    res = runner.invoke(app, ["probe", str(tmp_path / "x.npz"), "--labels", "nonsense"])
    assert res.exit_code == 2

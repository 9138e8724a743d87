"""`plmstruct pst embed`: npz/parquet keyed by id, per-residue / pooled / all-layer shapes, long
chains split and stitched, FASTA sequence mode equal to the backbone, structure+sequence average."""

from __future__ import annotations

import json

import numpy as np
import torch
from typer.testing import CliRunner

from plmstruct.backbone import tiny_esm
from plmstruct.cli.main import app
from plmstruct.data.fasta import SequenceRecord, write_fasta
from plmstruct.pst.embed import EmbedConfig, embed_items, read_embeddings
from plmstruct.pst.model import PSTModel

runner = CliRunner()


def _embed(*args: str) -> None:
    res = runner.invoke(app, ["pst", "embed", *args])
    assert res.exit_code == 0, res.output


def test_embed_structures_npz_and_parquet(tmp_path, structure_folder, real_items):
    lengths = {it.id: len(it) for it in real_items}
    assert max(lengths.values()) > tiny_esm().max_residues  # one chain needs windows
    pooled = tmp_path / "pooled.npz"
    _embed(str(structure_folder), "--out", str(pooled), "--backbone", "tiny-esm")
    arrays, meta = read_embeddings(pooled)
    assert set(arrays) == set(lengths)
    assert all(a.shape == (32,) for a in arrays.values())
    assert meta["mode"] == "structure" and meta["model"]["backbone"] == "tiny-esm"

    per_res = tmp_path / "residues.parquet"
    _embed(str(structure_folder), "--out", str(per_res), "--backbone", "tiny-esm", "--per-residue",
           "--layers", "all")
    arrays_r, meta_r = read_embeddings(per_res)
    assert set(arrays_r) == set(lengths)
    for key, arr in arrays_r.items():
        assert arr.shape == (lengths[key], 2 * 32)  # 2 layers x width 32
        assert np.isfinite(arr).all()
    # the last layer of the all-layer output, mean-pooled, is the pooled last-layer embedding
    for key in arrays:
        assert np.allclose(arrays_r[key][:, 32:].mean(0), arrays[key], atol=1e-5)
    assert meta_r["sequences"][next(iter(lengths))]


def test_fasta_sequence_mode_equals_backbone(tmp_path):
    seqs = {"p1": "MKTAYIAKQRQISFVKSHFSRQ", "p2": "GSHMASMTGGQQMGRDLYDDDDK"}
    fasta = tmp_path / "in.fasta"
    write_fasta([SequenceRecord(k, v) for k, v in seqs.items()], fasta)
    out = tmp_path / "seq.npz"
    _embed(str(fasta), "--out", str(out), "--backbone", "tiny-esm", "--per-residue")
    arrays, meta = read_embeddings(out)
    assert meta["mode"] == "sequence"
    backbone = tiny_esm()
    for key, seq in seqs.items():
        enc = backbone.encode([seq])
        with torch.no_grad():
            ref = backbone.model(**enc, output_hidden_states=True).hidden_states[-1][0, 1:-1].numpy()
        assert np.allclose(arrays[key], ref, atol=1e-5)


def test_resume_keeps_done_ids_and_bad_input_is_one_line(tmp_path, structure_folder):
    out = tmp_path / "e.npz"
    _embed(str(structure_folder), "--out", str(out), "--backbone", "tiny-esm")
    first, _ = read_embeddings(out)
    _embed(str(structure_folder), "--out", str(out), "--backbone", "tiny-esm", "--resume")
    second, meta = read_embeddings(out)
    assert set(first) == set(second) and json.dumps(meta["config"])
    for key in first:
        assert np.array_equal(first[key], second[key])
    bad = runner.invoke(app, ["pst", "embed", str(tmp_path / "missing"), "--out", str(out), "--backbone",
                              "tiny-esm"])
    assert bad.exit_code == 2
    wrong = runner.invoke(app, ["pst", "embed", str(structure_folder), "--out", str(tmp_path / "e.txt"),
                                "--backbone", "tiny-esm"])
    assert wrong.exit_code == 2 and ".npz" in wrong.output


def test_average_with_sequence_pass(real_items):
    pst = PSTModel(tiny_esm()).eval()
    with torch.no_grad():
        for block in pst.blocks:
            block.proj.value.weight.normal_(std=0.1)
    items = real_items[:2]
    struct = embed_items(pst, items, EmbedConfig(per_residue=True))
    seq = embed_items(pst, [type(it)(it.id, it.sequence, None) for it in items], EmbedConfig(per_residue=True))
    both = embed_items(pst, items, EmbedConfig(per_residue=True, average_sequence=True))
    for it in items:
        assert not np.allclose(struct[it.id], seq[it.id], atol=1e-4)
        assert np.allclose(both[it.id], (struct[it.id] + seq[it.id]) / 2, atol=1e-5)

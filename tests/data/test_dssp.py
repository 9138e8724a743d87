"""DSSP labels: mkdssp and the numpy re-implementation on real structures, and the DSSP-file reader."""

from __future__ import annotations

from collections import Counter

import numpy as np
import pytest

from plmstruct.data.dssp import dssp_labels, parse_dssp_text, python_dssp, read_dssp_file, run_mkdssp
from plmstruct.data.graph import residue_graph
from plmstruct.data.secondary_structure import to_states
from plmstruct.data.structure import ProteinStructure, load_chains, load_structure
from plmstruct.errors import InputError

# mkdssp (Debian package 'dssp') is installed by `make setup`; these tests need it (no skip).

@pytest.fixture(scope="module")
def ts50(data_dir):
    root = data_dir / "structures_collection" / "ts50_pdb"
    ref = {}
    for line in (root / "TS50_reference_dssp.txt").read_text().splitlines():
        labels, name = line.split()
        ref[name.removesuffix(".pdb")] = labels.replace("-", "C")
    return {name: (load_structure(root / f"{name}.pdb.gz"), labels) for name, labels in sorted(ref.items())}


def _q3(pred: str, ref: str) -> tuple[int, int]:
    pred3 = to_states(pred, 3)
    assert len(pred3) == len(ref)
    return sum(a == b for a, b in zip(pred3, ref, strict=True)), len(ref)


def test_python_dssp_reproduces_ts50_reference(ts50):
    ok = total = 0
    for name, (structure, ref) in ts50.items():
        labels = python_dssp(structure)
        assert len(labels) == len(structure.sequence) and set(labels) <= set("HGIEBTSPLX"), name
        k, n = _q3(labels, ref)
        ok, total = ok + k, total + n
    assert total == sum(len(r) for _, r in ts50.values()) > 5000
    assert 0.95 <= ok / total <= 0.995, ok / total  # reference DSSP differs slightly by version


def test_mkdssp_and_python_agree_exactly_on_real_chains(ts50, data_dir):
    root = data_dir / "structures_collection"
    chains = [ts50[n][0] for n in ("1ahsA", "1pdoA", "2cviA", "3e8mA")]
    chains.append(load_structure(root / "afdb_models/AF-A0A000-F1.pdb.gz"))
    chains.append(load_chains(root / "novozymes_pdb/9702.pdb.gz", ["B"])[0])  # incomplete backbones
    for s in chains:
        mk = run_mkdssp(s)
        assert mk == python_dssp(s), s.name
        assert set(mk) <= set("HGIEBTSPLX")
    for name in ("1ahsA", "2cviA", "3e8mA"):  # the shared README: 0.968 / 0.952 / 0.994
        k, n = _q3(run_mkdssp(ts50[name][0]), ts50[name][1])
        assert k / n >= 0.95


def test_missing_backbone_and_chain_gap(ts50):
    s = ts50["1pdoA"][0]
    coords = s.coords.copy()
    coords[20, 0] = np.nan  # residue 20 loses its N
    holed = ProteinStructure(s.id, s.chain, s.path, s.sequence, coords, s.residue_ids)
    # and a real gap: residues 60-69 removed from the chain
    keep = np.r_[0:60, 70:len(s)]
    gapped = ProteinStructure(s.id, s.chain, s.path, "".join(s.sequence[i] for i in keep), coords[keep],
                              [s.residue_ids[i] for i in keep])
    for structure in (holed, gapped):
        py, mk = python_dssp(structure), run_mkdssp(structure)
        assert py == mk
        assert py[20] == "X" and py.count("X") == 1
    assert dssp_labels(holed, "auto") == run_mkdssp(holed)


def test_no_backbone_at_all_is_all_x():
    s = ProteinStructure.from_ca(np.random.default_rng(0).normal(size=(6, 3)), "ACDEFG")
    assert python_dssp(s) == "XXXXXX"
    assert dssp_labels(s, "auto") == "XXXXXX"


def test_method_choice_and_fallback(ts50, monkeypatch):
    s = ts50["2cviA"][0]
    with pytest.raises(ValueError):
        dssp_labels(s, "stride")
    monkeypatch.setenv("PLMSTRUCT_MKDSSP", "/nonexistent/mkdssp")
    with pytest.warns(UserWarning, match="mkdssp failed"):
        labels = dssp_labels(s, "auto")
    assert labels == python_dssp(s)
    with pytest.raises(RuntimeError):
        dssp_labels(s, "mkdssp")


def test_read_casp_dssp_file(data_dir):
    folder = data_dir / "structures_collection" / "casp_fm_dssp_eryk96"
    (chain,) = read_dssp_file(folder / "casp10_3td7.cif.dssp.gz")
    s, labels = chain.structure, chain.labels
    # PROVENANCE.txt: 253 residues, DSSP8 {'-': 45, 'H': 151, 'T': 26, 'S': 16, 'G': 13, 'B': 2}
    assert len(s) == len(labels) == 253 and s.residue_ids[0] == "32"
    assert Counter(labels) == {"L": 45, "H": 151, "T": 26, "S": 16, "G": 13, "B": 2}
    assert not s.missing_ca.any() and s.missing_backbone.all()
    np.testing.assert_allclose(s.ca[0], [22.1, -63.1, 8.3])
    graph = residue_graph(s)
    assert graph.num_nodes == 253 and graph.edge_index.shape[1] > 2 * 252  # at least the chain neighbours
    multi = read_dssp_file(folder / "casp10_4CSO.cif.dssp.gz")
    assert len(multi) == 4 and sum(len(c.labels) for c in multi) == 861
    assert set("".join(c.labels for c in multi)) <= set("HGIEBTSPL")
    only_b = read_dssp_file(folder / "casp10_4CSO.cif.dssp.gz", chain=multi[1].structure.chain)
    assert only_b[0].labels == multi[1].labels
    with pytest.raises(InputError, match="chain 'Q' not found"):
        read_dssp_file(folder / "casp10_4CSO.cif.dssp.gz", chain="Q")


def test_dssp_reader_errors(tmp_path):
    bad = tmp_path / "x.dssp"
    bad.write_text("not a dssp file\n")
    with pytest.raises(InputError, match="not a classic DSSP"):
        read_dssp_file(bad)
    with pytest.raises(InputError, match="no such file"):
        read_dssp_file(tmp_path / "absent.dssp")
    header = "  #  RESIDUE AA STRUCTURE BP1 BP2  ACC     N-H-->O"
    with pytest.raises(InputError, match="line 2"):
        parse_dssp_text(header + "\n    1   xx A H  \n", path=bad)


def test_unknown_residues_are_assigned_like_known_ones(ts50):
    s = ts50["2cviA"][0]  # its first ten residues hold no proline
    unknown = ProteinStructure(s.id, s.chain, s.path, "X" * 10 + s.sequence[10:], s.coords, s.residue_ids)
    assert run_mkdssp(unknown) == run_mkdssp(s) == python_dssp(unknown)
    assert "E" in run_mkdssp(unknown)[:10]

"""Structures from real PDB/mmCIF files and from small synthetic bad inputs."""

from __future__ import annotations

import csv
import gzip
import warnings

import numpy as np
import pytest

from plmstruct.data.structure import (
    ProteinStructure,
    load_chains,
    load_structure,
    load_structures,
    structure_id,
    to_pdb_text,
)
from plmstruct.errors import InputError


@pytest.fixture(scope="module")
def collection(data_dir):
    return data_dir / "structures_collection"


@pytest.fixture(scope="module")
def index(collection):
    with open(collection / "index.tsv") as fh:
        return {r["file"]: r for r in csv.DictReader(fh, delimiter="\t")}


def _pdb_lines(collection, name: str) -> list[str]:
    return gzip.open(collection / name, "rt").read().splitlines()


def test_ts50_sequences_and_ca_match_the_index(collection, index):
    files = sorted(f for f in index if f.startswith("ts50_pdb/"))
    assert len(files) == 50
    for f in files:
        s = load_structure(collection / f)
        assert s.sequence == index[f]["sequence"], f
        assert int((~s.missing_ca).sum()) == int(index[f]["n_ca_residues"]), f
        assert s.coords.shape == (len(s), 4, 3) and s.coords.dtype == np.float32
        assert s.plddt is None  # experimental structures carry no pLDDT
        assert s.chain == index[f]["chains"]


def test_multi_chain_file_all_chains(collection, index):
    f = "novozymes_pdb/9702.pdb.gz"
    chains = load_chains(collection / f)
    assert [c.chain for c in chains] == index[f]["chains"].split(",")
    assert "/".join(c.sequence for c in chains) == index[f]["sequence"]
    b = load_structure(collection / f, "B")
    assert b.sequence == chains[1].sequence and b.name == "9702_B"
    # residues with CA but missing other backbone atoms are flagged, not dropped
    assert sum(int(c.missing_backbone.sum()) for c in chains) > 0
    assert not any(c.missing_ca.any() for c in chains)


def test_alphafold_plddt_pdb_and_mmcif(data_dir, collection, index):
    path = data_dir / "structures" / "alphafold_examples" / "AF-O50607-F1-model_v4.pdb"
    s = load_structure(path)
    assert s.id == "AF-O50607-F1-model_v4" and s.plddt is not None
    ca_b = [float(ln[60:66]) for ln in path.read_text().splitlines() if ln.startswith("ATOM") and ln[12:16] == " CA "]
    np.testing.assert_allclose(s.plddt, ca_b, atol=1e-4)
    assert 0 <= s.plddt.min() and s.plddt.max() <= 100
    cif = "afdb_models/AF-Q15772-F3-model_v4.cif.gz"
    c = load_structure(collection / cif)
    assert c.sequence == index[cif]["sequence"] and c.plddt is not None and np.isfinite(c.plddt).all()
    # forcing: experimental file read with plddt=True gives its B-factors, AF model with False none
    assert load_structure(path, plddt=False).plddt is None
    assert load_structure(collection / "ts50_pdb/1ahsA.pdb.gz", plddt=True).plddt is not None


def test_modified_residues_and_free_amino_acid_ligands(collection):
    s = load_structure(collection / "novozymes_pdb/10975.pdb.gz")  # PTR (phospho-Tyr) at 160
    assert s.sequence[s.residue_ids.index("160")] == "Y"
    s = load_structure(collection / "novozymes_pdb/15415.pdb.gz")  # 4FW (fluoro-Trp) at 8
    assert s.sequence[s.residue_ids.index("8")] == "W"
    # a free ARG ligand (HETATM 201, not bonded to the chain) is not part of the chain
    s = load_structure(collection / "novozymes_pdb/12965.pdb.gz")
    assert "201" not in s.residue_ids and s.residue_ids[-1] == "158"


def test_residue_without_ca_is_flagged_in_real_file(collection):
    s = load_structure(collection / "kortemme_pfam_domains/PF00041_1TEN_A.pdb.gz")
    assert s.missing_ca[0] and s.residue_ids[0] == "802" and s.sequence[0] == "R"
    assert np.isnan(s.coords[0, :2]).all() and np.isfinite(s.coords[0, 2:]).all()
    assert s.missing_backbone[0] and not s.missing_ca[1:].any()


def test_insertion_codes_real_and_synthetic(collection, tmp_path):
    s = load_structure(collection / "cath_tools_domains/1t63A.pdb.gz")
    assert s.residue_ids[-1] == "918A"
    lines = [ln for ln in _pdb_lines(collection, "ts50_pdb/1ahsA.pdb.gz") if ln.startswith("ATOM")]
    first = [ln for ln in lines if ln[22:27] == " 126 "]
    second = [ln for ln in lines if ln[22:27] == " 127 "]
    # renumber residue 127 as 126A: two distinct residues with ids 126 and 126A
    renamed = [ln[:22] + " 126A" + ln[27:] for ln in second]
    path = tmp_path / "ins.pdb"
    path.write_text("\n".join(first + renamed) + "\nEND\n")
    s = load_structure(path)
    assert s.residue_ids == ["126", "126A"] and len(s.sequence) == 2
    assert not s.missing_backbone.any()


def test_several_models_default_to_first(collection, tmp_path):
    path = collection / "novozymes_pdb/3105.pdb.gz"
    first, last = load_structure(path), load_structure(path, model=21)
    assert first.sequence == last.sequence
    assert np.nanmax(np.abs(first.ca - last.ca)) > 0.5  # NMR models differ
    with pytest.raises(InputError, match="21 model"):
        load_structure(path, model=22)
    # synthetic: two models, the second shifted by 10 A
    atoms = [ln for ln in _pdb_lines(collection, "ts50_pdb/2cviA.pdb.gz") if ln.startswith("ATOM")][:40]
    shifted = [ln[:30] + f"{float(ln[30:38]) + 10:8.3f}" + ln[38:] for ln in atoms]
    two = tmp_path / "two.pdb"
    two.write_text("MODEL        1\n" + "\n".join(atoms) + "\nENDMDL\nMODEL        2\n" + "\n".join(shifted)
                   + "\nENDMDL\nEND\n")
    m1, m2 = load_structure(two), load_structure(two, model=2)
    np.testing.assert_allclose(m2.ca[:, 0] - m1.ca[:, 0], 10, atol=1e-3)


def test_pdb_residue_missing_ca_synthetic(collection, tmp_path):
    lines = [ln for ln in _pdb_lines(collection, "ts50_pdb/2cviA.pdb.gz") if ln.startswith("ATOM")]
    resnums = sorted({int(ln[22:26]) for ln in lines})
    target = resnums[4]
    kept = [ln for ln in lines if not (int(ln[22:26]) == target and ln[12:16] == " CA ")]
    path = tmp_path / "noca.pdb"
    path.write_text("\n".join(kept) + "\nEND\n")
    s = load_structure(path)
    full = load_structure(collection / "ts50_pdb/2cviA.pdb.gz")
    assert s.sequence == full.sequence
    assert np.flatnonzero(s.missing_ca).tolist() == [4]
    assert np.isfinite(s.coords[4, [0, 2, 3]]).all()


def test_bad_inputs_raise_input_error(collection, tmp_path):
    with pytest.raises(InputError, match="no such file"):
        load_structure(tmp_path / "absent.pdb")
    binary = tmp_path / "binary.pdb"
    binary.write_bytes(bytes(range(256)) * 8)
    with pytest.raises(InputError, match="binary"):
        load_structure(binary)
    text = gzip.open(collection / "ts50_pdb/1ahsA.pdb.gz", "rt").read()
    truncated = tmp_path / "truncated.pdb"
    truncated.write_text(text[: len(text) // 2 + 17])  # cut inside an ATOM line
    with pytest.raises(InputError, match="truncated"):
        load_structure(truncated)
    bad_gz = tmp_path / "cut.pdb.gz"
    bad_gz.write_bytes((collection / "ts50_pdb/1ahsA.pdb.gz").read_bytes()[:500])
    with pytest.raises(InputError, match="gzip"):
        load_structure(bad_gz)
    garbage = tmp_path / "garbage.pdb"
    garbage.write_text("this is not\na structure file\n")
    with pytest.raises(InputError, match="not a PDB"):
        load_structure(garbage)
    bad_cif = tmp_path / "bad.cif"
    bad_cif.write_text("data_x\nloop_\n_atom_site.id\n_atom_site.Cartn_x\n1 2\n3\n")
    with pytest.raises(InputError, match="bad.cif"):
        load_structure(bad_cif)
    water = tmp_path / "water.pdb"
    water.write_text("HETATM    1  O   HOH A   1      10.000  10.000  10.000  1.00  0.00           O\nEND\n")
    with pytest.raises(InputError, match="no protein chain"):
        load_structure(water)
    with pytest.raises(InputError, match="chain 'Z' not found.*'A'"):
        load_structure(collection / "ts50_pdb/2cviA.pdb.gz", "Z")
    no_ca = tmp_path / "no_ca.pdb"
    no_ca.write_text("\n".join(ln for ln in text.splitlines() if ln.startswith("ATOM") and ln[12:16] != " CA "))
    with pytest.raises(InputError, match="no residue with a CA"):
        load_structure(no_ca)


def test_load_structures_folder_skip_and_errors(collection, tmp_path):
    for name in ("1ahsA", "2cviA"):
        (tmp_path / f"{name}.pdb.gz").write_bytes((collection / f"ts50_pdb/{name}.pdb.gz").read_bytes())
    (tmp_path / "broken.pdb").write_bytes(b"\x00\x01binary")
    (tmp_path / "notes.txt").write_text("ignored: not a structure suffix")
    with pytest.raises(InputError, match="broken.pdb"):
        load_structures(tmp_path)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        loaded = load_structures(tmp_path, on_error="skip")
    assert [s.id for s in loaded] == ["1ahsA", "2cviA"]
    assert any("broken.pdb" in str(w.message) for w in caught)
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(InputError, match="no structure files"):
        load_structures(empty)
    with pytest.raises(InputError, match="no such"):
        load_structures(tmp_path / "missing_dir" / "x.pdb")
    multi = load_structures([collection / "novozymes_pdb/9702.pdb.gz"], all_chains=True)
    assert len(multi) == 6


def test_mmcif_seqres_inserts_unobserved_residues(collection, tmp_path):
    from biotite.structure.io import pdbx

    src = collection / "afdb_models/AF-Q15772-F11-model_v4.cif.gz"
    full = load_structure(src)
    cif = pdbx.CIFFile.read(gzip.open(src, "rt"))
    atoms = pdbx.get_structure(cif, model=1, extra_fields=["b_factor"])
    gone = {str(r) for r in full.residue_ids[10:13]}
    atoms = atoms[~np.isin(atoms.res_id.astype(str), list(gone))]
    pdbx.set_structure(cif, atoms)
    path = tmp_path / "gaps.cif"
    cif.write(path)
    observed = load_structure(path)
    assert len(observed) == len(full) - 3
    with_gaps = load_structure(path, seqres=True)
    assert with_gaps.sequence == full.sequence and with_gaps.residue_ids == full.residue_ids
    assert np.flatnonzero(with_gaps.missing_ca).tolist() == [10, 11, 12]
    keep = ~with_gaps.missing_ca
    np.testing.assert_allclose(with_gaps.coords[keep], full.coords[keep], atol=1e-3)


def test_pdb_text_round_trip(collection, tmp_path):
    s = load_structure(collection / "ts50_pdb/1i8nA.pdb.gz")
    text = to_pdb_text(s)
    assert text.startswith("HEADER") and "\nCRYST1" in text
    path = tmp_path / "backbone.pdb"
    path.write_text(text)
    back = load_structure(path)
    assert back.sequence == s.sequence and len(back) == len(s)
    np.testing.assert_allclose(back.coords, s.coords, atol=6e-4)


def test_structure_helpers():
    ca = np.arange(12, dtype=np.float32).reshape(4, 3)
    s = ProteinStructure.from_ca(ca, "ACDE", id="toy")
    assert s.missing_backbone.all() and not s.missing_ca.any() and s.residue_ids == ["1", "2", "3", "4"]
    part = s.slice(1, 3)
    assert part.sequence == "CD" and np.array_equal(part.ca, ca[1:3])
    with pytest.raises(ValueError):
        ProteinStructure("x", "A", None, "AC", np.zeros((3, 4, 3)))
    assert structure_id("dir/1abc.cif.gz") == "1abc" and structure_id("AF-X-F1-model_v4.pdb") == "AF-X-F1-model_v4"

"""Fixtures of the PST tests: small sets of real structures from the shared collection."""

from __future__ import annotations

import copy
import shutil

import pytest

# real chains of different kinds: PDB chains (TS50, Pfam domains), a CATH domain, AlphaFold models
REAL_FILES = [
    "ts50_pdb/1ahsA.pdb.gz", "ts50_pdb/2cviA.pdb.gz", "ts50_pdb/1i8nA.pdb.gz", "ts50_pdb/1lpbA.pdb.gz",
    "kortemme_pfam_domains/PF00018_2O9S_A.pdb.gz", "kortemme_pfam_domains/PF00240_2BWF_A.pdb.gz",
    "cath_tools_domains/1cf7B00.pdb.gz", "afdb_models/AF-A0A000-F1.pdb.gz",
]


@pytest.fixture(scope="session")
def structure_paths(data_dir):
    paths = [data_dir / "structures_collection" / f for f in REAL_FILES]
    missing = [p for p in paths if not p.exists()]
    assert not missing, f"real structures missing: {missing}"
    return paths


@pytest.fixture()
def structure_folder(tmp_path, structure_paths):
    """A user folder of real structure files (copied), as `pst embed` / `pst pretrain` get it."""
    folder = tmp_path / "structures"
    folder.mkdir()
    for p in structure_paths:
        shutil.copy(p, folder / p.name)
    return folder


@pytest.fixture(scope="session")
def real_items(structure_paths):
    """GraphItems (sequence + 8 Å Cα graph) of the real structures, for the ESM alphabet."""
    from plmstruct.backbone.model import ESM_RESIDUE_LETTERS
    from plmstruct.pst.data import load_graph_items

    items, skipped = load_graph_items(structure_paths, alphabet=ESM_RESIDUE_LETTERS)
    assert not skipped
    return items


@pytest.fixture()
def antiberty_copy(antiberty):
    """A private copy of the session AntiBERTy: wrapping replaces modules in place."""
    return copy.deepcopy(antiberty)

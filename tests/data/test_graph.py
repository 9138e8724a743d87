"""Residue graphs and contact maps on real structures."""

from __future__ import annotations

import csv
import gzip

import numpy as np
import pytest
import torch

from plmstruct.data.graph import contact_map, residue_graph, virtual_cb
from plmstruct.data.structure import load_chains, load_structure


@pytest.fixture(scope="module")
def collection(data_dir):
    return data_dir / "structures_collection"


def _brute_force_pairs(ca: np.ndarray, radius: float) -> set[tuple[int, int]]:
    ca = ca.astype(np.float64)
    d = np.sqrt(((ca[:, None] - ca[None]) ** 2).sum(-1))
    ok = ~np.isnan(ca).any(-1)
    i, j = np.nonzero((d < radius) & ok[:, None] & ok[None, :])
    return {(a, b) for a, b in zip(i.tolist(), j.tolist(), strict=True) if a != b}


def test_edge_counts_match_the_collection_index(collection):
    with open(collection / "index.tsv") as fh:
        rows = [r for r in csv.DictReader(fh, delimiter="\t") if r["file"].startswith(("ts50_pdb/", "afdb_models/"))]
    checked = 0
    for r in rows[::3]:
        chains = load_chains(collection / r["file"])
        ca = np.concatenate([c.ca for c in chains])
        ca = ca[~np.isnan(ca).any(-1)]
        if len(ca) != int(r["n_ca_residues"]) or int(r["n_ca_pairs_within_8A"]) == 0:
            continue
        graph = residue_graph(ca)
        assert graph.edge_index.shape[1] == 2 * int(r["n_ca_pairs_within_8A"]), r["file"]
        checked += 1
    assert checked >= 25


def test_graph_is_the_exact_undirected_radius_graph(collection):
    s = load_structure(collection / "kortemme_pfam_domains/PF00041_1TEN_A.pdb.gz")  # residue 0 has no CA
    for radius in (6.0, 8.0, 10.0):
        graph = residue_graph(s, radius=radius)
        ei = graph.edge_index
        assert ei.dtype == torch.long and ei.shape[0] == 2 and graph.num_nodes == len(s)
        edges = set(map(tuple, ei.t().tolist()))
        assert edges == _brute_force_pairs(s.ca, radius)
        assert all((j, i) in edges for i, j in edges)  # both directions
        assert not (ei[0] == ei[1]).any()  # no self loops
        assert not (ei == 0).any()  # the residue without CA has no edges
        keys = (ei[0] * len(s) + ei[1]).tolist()
        assert keys == sorted(keys)
    small, large = residue_graph(s, radius=6.0), residue_graph(s, radius=10.0)
    assert set(map(tuple, small.edge_index.t().tolist())) < set(map(tuple, large.edge_index.t().tolist()))


def test_input_types_and_edge_attr(collection):
    s = load_structure(collection / "ts50_pdb/2cviA.pdb.gz")
    a = residue_graph(s)
    b = residue_graph(s.ca.copy())
    c = residue_graph(torch.from_numpy(s.ca.copy()))
    assert torch.equal(a.edge_index, b.edge_index) and torch.equal(a.edge_index, c.edge_index)
    d = residue_graph(s, edge_attr=True)
    assert d.edge_attr.shape == (a.edge_index.shape[1], 1)
    src, dst = a.edge_index.numpy()
    expected = np.linalg.norm(s.ca[src] - s.ca[dst], axis=-1)
    np.testing.assert_allclose(d.edge_attr[:, 0].numpy(), expected, rtol=1e-5)
    assert (d.edge_attr < 8.0).all()
    with pytest.raises(ValueError):
        residue_graph(np.zeros((5, 2)))
    with pytest.raises(ValueError):
        residue_graph(s, radius=0)


def _real_cb(path) -> dict[str, np.ndarray]:
    out = {}
    for line in gzip.open(path, "rt"):
        if line.startswith("ATOM") and line[12:16] == " CB ":
            out.setdefault(line[22:27].strip(), np.array([float(line[30:38]), float(line[38:46]), float(line[46:54])]))
    return out


def test_virtual_cb_is_close_to_real_cb_and_contacts_agree(collection):
    path = collection / "ts50_pdb/1pdoA.pdb.gz"
    s = load_structure(path)
    cb = virtual_cb(s.coords, s.sequence)
    real = _real_cb(path)
    errors = [np.linalg.norm(cb[i] - real[rid]) for i, rid in enumerate(s.residue_ids) if rid in real]
    assert len(errors) > 100 and np.median(errors) < 0.3 and max(errors) < 1.0
    glycines = [i for i, a in enumerate(s.sequence) if a == "G"]
    assert glycines and np.allclose(cb[glycines], s.ca[glycines])
    contacts = contact_map(s)
    assert contacts.dtype == torch.bool and contacts.shape == (len(s), len(s))
    assert torch.equal(contacts, contacts.t()) and contacts.diagonal().all()
    real_cb = np.array([real.get(rid, s.ca[i]) for i, rid in enumerate(s.residue_ids)])
    real_contacts = np.linalg.norm(real_cb[:, None] - real_cb[None], axis=-1) < 8.0
    agreement = (contacts.numpy() == real_contacts).mean()
    assert agreement > 0.99
    assert contacts.sum() > residue_graph(s).edge_index.shape[1] * 0.5  # a real, dense-enough map


def test_contact_map_without_ca_rows_are_empty(collection):
    s = load_structure(collection / "kortemme_pfam_domains/PF00041_1TEN_A.pdb.gz")
    contacts = contact_map(s, threshold=8.0)
    assert not contacts[0].any() and not contacts[:, 0].any()
    assert contacts[1:, 1:].diagonal().all()
    assert contact_map(s, threshold=12.0).sum() > contacts.sum()

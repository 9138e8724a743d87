"""Antibody variable domains found by framework motifs, on real chains of the bundled DSSP data."""

from __future__ import annotations

import pytest

from plmstruct.data.antibody import antibody_variable_domains, variable_domain_span
from plmstruct.data.secondary_structure import SSRecord, read_three_line


@pytest.fixture(scope="module")
def cb634(data_dir):
    return {r.id: r for r in read_three_line(data_dir / "secondary_structure" / "CB634.txt")}


def test_whole_vh_is_one_domain(antibody_heavy):
    for heavy in antibody_heavy:  # human (WVRQ) and murine (WVKQ) framework 2
        assert variable_domain_span(heavy) == (0, len(heavy))


def test_tag_and_constant_domain_are_cut_off(cb634):
    nanobody = cb634["7sak_B"]  # His-tagged VHH
    start, end = variable_domain_span(nanobody.sequence)
    domain = nanobody.sequence[start:end]
    assert "HHHHHH" not in domain and "QVQL" in domain[:5] and domain.endswith("WGQGTQVTVS")
    light = cb634["7rpu_B"]  # kappa light chain with its constant domain (long CDR1, WLHQ framework 2)
    start, end = variable_domain_span(light.sequence)
    assert start == 0 and 105 <= end <= 115 < len(light.sequence)
    assert light.sequence[end - 11:end - 6].startswith("FG")  # J region FGxG, then 7 framework-4 residues


def test_t_cell_receptor_and_other_proteins_are_not_antibodies(data_dir, cb634):
    cb433 = {r.id: r for r in read_three_line(data_dir / "secondary_structure" / "CB433.txt")}
    assert variable_domain_span(cb433["1tcr_A"].sequence) is None  # TCR alpha: Ig-V-like, not an antibody
    assert variable_domain_span(cb634["7n4k_D"].sequence) is None
    found = [r.id for r in cb433.values() if variable_domain_span(r.sequence)]
    assert found == ["1fdl_H"]


def test_domains_keep_labels_aligned_and_drop_repeats(cb634):
    light = cb634["7rpu_B"]
    twin = SSRecord("copy", "Q" + light.sequence, "L" + light.labels)  # same antibody, one residue longer
    domains = antibody_variable_domains([light, twin, cb634["7n4k_D"]])
    assert [d.id for d in domains] == ["7rpu_B"]
    start, end = variable_domain_span(light.sequence)
    assert domains[0].labels == light.labels[start:end] and len(domains[0].labels) == len(domains[0].sequence)

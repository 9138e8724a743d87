"""CATH formats on the real CATH v4.3 files, plus bad inputs."""

from __future__ import annotations

import pytest

from plmstruct.data.cath import (
    CathDomain,
    cath_names,
    code_at,
    label_counts,
    parse_cath_header,
    read_cath_fasta,
    read_cath_header_list,
    read_cath_label_list,
    read_cath_labeled_tsv,
    read_clf,
    read_label_table,
    split_by_label,
)
from plmstruct.errors import InputError


@pytest.fixture(scope="module")
def cath(data_dir):
    return data_dir / "cath"


@pytest.fixture(scope="module")
def s20(cath):
    return read_cath_labeled_tsv(cath / "cath_S20_v4_3_0_labeled.tsv")


@pytest.fixture(scope="module")
def labels(cath):
    return read_cath_label_list(cath / "cath_v430_dom_seqs_S100_161121_labels.txt")


def test_labeled_s20_table_counts(s20):
    # PROVENANCE.txt: 14,942 domains; classes 1: 3906, 2: 3090, 3: 7120, 4: 220, 6: 606;
    # 43 architectures, 1,385 topologies, 5,559 superfamilies
    assert len(s20) == 14942
    assert label_counts(s20, "class") == {"3": 7120, "1": 3906, "2": 3090, "6": 606, "4": 220}
    assert len(label_counts(s20, "architecture")) == 43
    assert len(label_counts(s20, "topology")) == 1385
    assert len(label_counts(s20, "superfamily")) == 5559
    assert list(label_counts(s20, "A").items())[:3] == [("3.40", 2778), ("3.30", 2333), ("1.10", 2227)]
    first = s20[0]
    assert (first.domain_id, first.cath_code, first.segments) == ("12asA00", "3.30.930.10", "4-330")
    assert first.label("topology") == "3.30.930" and first.pdb_id == "12as" and first.chain == "A"


def test_fasta_with_labels_equals_the_table(cath, s20, labels):
    fasta = read_cath_fasta(cath / "cath-dataset-nonredundant-S20-v4_3_0.fa", labels, require_labels=True)
    assert [(d.domain_id, d.cath_code, d.sequence, d.segments) for d in fasta] == \
           [(d.domain_id, d.cath_code, d.sequence, d.segments) for d in s20]
    assert len(labels) == 122727
    for name, count in (("ProtTucker_test219.fasta", 219), ("ProtTucker_val200.fasta", 200),
                        ("ProtTucker_test300.fasta", 300)):
        assert len(read_cath_fasta(cath / name, labels, require_labels=True)) == count


def test_s100_header_list(cath, labels):
    domains = read_cath_header_list(cath / "cath_v430_dom_seqs_S100_161121.txt", labels)
    assert len(domains) == 122727
    assert (domains[0].domain_id, domains[0].segments, domains[0].cath_code) == ("107lA00", "1-162", labels["107lA00"])
    assert all(d.cath_code for d in domains)
    multi = next(d for d in domains if d.domain_id == "1a0iA01")
    assert multi.segments == "2-36_193-240"


def test_header_variants():
    assert parse_cath_header("cath|4_3_0|12asA00/4-330") == ("12asA00", "4-330")
    assert parse_cath_header("cath|current|1a7lA02_112-259_333-383(I)") == ("1a7lA02", "112-259_333-383(I)")
    assert parse_cath_header("cath|4_3_0|1a8vA01_-1-47") == ("1a8vA01", "-1-47")
    assert parse_cath_header("cath|4_3_0|1ah1A00/1(A)-131") == ("1ah1A00", "1(A)-131")
    assert parse_cath_header("2vwaA00") == ("2vwaA00", "")
    with pytest.raises(InputError, match="not a 7-character CATH domain"):
        parse_cath_header("cath|4_3_0|12as/4-330", path="f.fa", lineno=3)
    with pytest.raises(InputError, match="bad segment"):
        parse_cath_header("cath|4_3_0|12asA00/4to330")
    with pytest.raises(InputError, match="cath|VERSION"):
        parse_cath_header("cath|12asA00")


def test_clf_example_from_the_format_readme(cath, tmp_path):
    text = (cath / "README-cath-list-file-format.txt").read_text()
    example = [ln for ln in text.splitlines() if len(ln.split()) == 12 and ln[:1].isdigit()]
    assert len(example) == 10
    path = tmp_path / "example.clf"
    path.write_text("# CLF 2.0 example\n" + "\n".join(example) + "\n")
    domains = read_clf(path)
    assert [d.domain_id for d in domains][:2] == ["1oaiA00", "1go5A00"]
    assert {d.cath_code for d in domains} == {"1.10.8.10"}
    assert domains[1].resolution == 999.0 and domains[0].length == 59
    target, rest = split_by_label(domains, "superfamily", "1.10.8.10")
    assert len(target) == 10 and rest == []
    bad = tmp_path / "bad.clf"
    bad.write_text(example[0] + "\n" + example[1][:30] + "\n")
    with pytest.raises(InputError, match=r"bad.clf: line 2: CLF 2.0 has 12 columns"):
        read_clf(bad)
    bad.write_text(example[0].replace(" 1.000", " x.yz") + "\n")
    with pytest.raises(InputError, match="line 1: non-numeric"):
        read_clf(bad)


def test_split_by_label(s20):
    target, rest = split_by_label(s20, "class", "4")
    assert len(target) == 220 and len(rest) == 14942 - 220
    assert all(d.label("class") == "4" for d in target) and not any(d.label("class") == "4" for d in rest)
    both, _ = split_by_label(s20, "architecture", ["3.40", "3.30"])
    assert len(both) == 2778 + 2333
    with pytest.raises(InputError, match="no domain has topology 9.99.999"):
        split_by_label(s20, "topology", "9.99.999")
    with pytest.raises(ValueError, match="unknown CATH level"):
        split_by_label(s20, "family", "1")
    with pytest.raises(ValueError, match="no superfamily level"):
        code_at("3.30", "superfamily")
    with pytest.raises(ValueError, match="no CATH code"):
        CathDomain("1abcA00").label("class")


def test_cath_names(cath, s20):
    names = cath_names(cath / "cath-names-v4_4_0.txt")
    assert names["1"] == "Mainly Alpha" and names["3.30"] == "2-Layer Sandwich"
    assert names["1.10.8.50"] == ""  # superfamilies without a name are kept with an empty name
    assert {d.label("architecture") for d in s20} <= set(names)


def test_label_table_and_errors(tmp_path, labels):
    tsv = tmp_path / "labels.tsv"
    tsv.write_text("id\tsplit\tfold\nA\ttrain\tx\nB\ttest\ty\n")
    assert read_label_table(tsv, id_column="id", label_column="fold") == {"A": "x", "B": "y"}
    csv_path = tmp_path / "labels.csv"
    csv_path.write_text("A,1\nB,2\n")
    assert read_label_table(csv_path) == {"A": "1", "B": "2"}
    with pytest.raises(InputError, match="no column 'label'"):
        read_label_table(tsv, id_column="id", label_column="label")
    clash = tmp_path / "clash.csv"
    clash.write_text("A,1\nA,2\n")
    with pytest.raises(InputError, match="line 2: id 'A' has two labels"):
        read_label_table(clash)
    bad = tmp_path / "bad_labels.txt"
    bad.write_text("1abcA00,3.30.930.10\n1abcA01,3.x\n")
    with pytest.raises(InputError, match="bad_labels.txt: line 2: '3.x' is not a CATH code"):
        read_cath_label_list(bad)
    bad_tsv = tmp_path / "bad.tsv"
    bad_tsv.write_text("domain_id\tclass\tarchitecture\ttopology\thomologous_superfamily\tcath_code\tsegments\t"
                       "sequence\n12asA00\t2\t3.30\t3.30.930\t3.30.930.10\t3.30.930.10\t4-330\tMKT\n")
    with pytest.raises(InputError, match="line 2: class '2' disagrees"):
        read_cath_labeled_tsv(bad_tsv)
    with pytest.raises(InputError, match="no such file"):
        read_cath_fasta(tmp_path / "absent.fa")
    unlabeled = tmp_path / "unlabeled.fa"
    unlabeled.write_text(">cath|4_3_0|9zzzA00/1-5\nACDEF\n")
    with pytest.raises(InputError, match="no CATH label"):
        read_cath_fasta(unlabeled, labels, require_labels=True)
    assert read_cath_fasta(unlabeled)[0].cath_code == ""

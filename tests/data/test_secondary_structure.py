"""Secondary-structure files and state mappings (plmstruct.data.secondary_structure)."""

from __future__ import annotations

from collections import Counter

import pytest

from plmstruct.data.secondary_structure import (
    IGNORE_INDEX,
    SS3,
    SS8,
    SS9,
    SSRecord,
    label_indices,
    read_flip_ss,
    read_netsurfp_csv,
    read_three_line,
    to_states,
    write_three_line,
)
from plmstruct.errors import InputError

# ../shared/README.md: chains and residues per file
THREE_LINE_FILES = {"CB634_valid.txt": (512, 130023), "PISCES_25_valid.txt": (512, 127236),
                    "SPOT_1D_Valid.txt": (983, 215803), "CASP12.txt": (47, 13718), "CB433.txt": (433, 106122),
                    "CB634.txt": (634, 192164), "Test2016.txt": (1213, 287877)}


def test_three_line_files_match_the_readme(data_dir):
    seen_labels: Counter = Counter()
    for name, (chains, residues) in THREE_LINE_FILES.items():
        records = read_three_line(data_dir / "secondary_structure" / name)
        assert len(records) == chains, name
        assert sum(len(r.sequence) for r in records) == residues, name
        for r in records:
            seen_labels.update(r.labels)
    assert set(seen_labels) <= set(SS9 + "X")
    assert seen_labels["P"] > 0 and seen_labels["X"] > 0 and seen_labels["H"] > seen_labels["I"]


def test_state_mappings_on_real_labels(data_dir):
    rec = read_three_line(data_dir / "secondary_structure" / "CASP12.txt")[0]
    nine, eight, three = rec.states(9), rec.states(8), rec.states(3)
    assert len(nine) == len(eight) == len(three) == len(rec.sequence)
    for a, b, c in zip(nine, eight, three, strict=True):
        assert b == ("L" if a == "P" else a)
        assert c == ("X" if a == "X" else "H" if a in "HGI" else "E" if a in "EB" else "C")
    assert to_states("HGIEBTSPLX", 3) == "HHHEECCCCX"
    assert to_states("HGIEBTSPLX", 8) == "HGIEBTSLLX"
    assert to_states("C-", 9) == "LL"
    assert label_indices("HEC" + "X", 3) == [0, 1, 2, IGNORE_INDEX]
    assert label_indices(SS8, 8) == list(range(8))
    with pytest.raises(InputError, match="position 2"):
        to_states("HQ", 3)
    with pytest.raises(ValueError):
        to_states("H", 4)


def test_netsurfp_csv_and_flip(data_dir):
    cb513 = read_netsurfp_csv(data_dir / "ss_netsurfp2_prottrans" / "CB513_HHblits.csv")
    # PROVENANCE.txt: 511 chains, 144,011 residues
    assert len(cb513) == 511 and sum(len(r.sequence) for r in cb513) == 144011
    assert set("".join(r.labels for r in cb513)) <= set(SS8 + "X")
    three = read_netsurfp_csv(data_dir / "ss_netsurfp2_prottrans" / "CB513_HHblits.csv", n_states=3)
    assert set("".join(r.labels for r in three)) <= set(SS3 + "X")
    assert [to_states(r.labels, 3) for r in cb513] == [r.labels for r in three]
    flip = read_flip_ss(data_dir / "ss_netsurfp2_flip" / "splits")
    assert (len(flip["train"]), len(flip["valid"]), len(flip["test"])) == (9712, 1080, 0)
    r = flip["train"][0]
    assert r.id == "1es5-A" and len(r.labels) == len(r.sequence) and set(r.labels) <= set("HECX")


def test_three_line_errors(tmp_path):
    path = tmp_path / "ss.txt"
    cases = [
        (">a\nACDE\nHHH\n", "record 'a': label string has 3 letters but the sequence has 4"),
        (">a\nACDE\nHHQH\n", "record 'a': position 3: unknown secondary-structure label 'Q'"),
        (">a\nACDE\n", "not a multiple of 3"),
        ("a\nACDE\nHHHH\n", "line 1 should be a '>' header"),
        (">a\nAC\nHH\n>a\nDE\nEE\n", "record 'a': duplicate record id"),
    ]
    for text, message in cases:
        path.write_text(text)
        with pytest.raises(InputError, match=message):
            read_three_line(path)
    with pytest.raises(InputError, match="no such file"):
        read_three_line(tmp_path / "absent.txt")
    binary = tmp_path / "binary.txt"
    binary.write_bytes(bytes(range(128, 256)))
    with pytest.raises(InputError, match="binary"):
        read_three_line(binary)


def test_netsurfp_csv_errors(tmp_path):
    path = tmp_path / "bad.csv"
    path.write_text("")
    with pytest.raises(InputError, match="empty"):
        read_netsurfp_csv(path)
    path.write_text("input, dssp3\nA C,H H\n")
    with pytest.raises(InputError, match="missing column.*dssp8"):
        read_netsurfp_csv(path)
    path.write_text("input, dssp3, dssp8, disorder, cb513_mask\nA C,H H,H H,0 0,1 x\n")
    with pytest.raises(InputError, match="line 2"):
        read_netsurfp_csv(path)
    path.write_bytes(bytes(range(128, 256)))
    with pytest.raises(InputError, match="binary"):
        read_netsurfp_csv(path)


def test_flip_label_without_sequence_is_an_input_error(tmp_path):
    (tmp_path / "sequences.fasta").write_text(">a\nACDE\n")
    (tmp_path / "sampled.fasta").write_text(">a SET=train VALIDATION=False\nHHEE\n>b SET=train VALIDATION=False\nCC\n")
    (tmp_path / "mask.fasta").write_text(">a\n1101\n")
    with pytest.raises(InputError, match="record 'b'.*not in sequences.fasta"):
        read_flip_ss(tmp_path)
    (tmp_path / "sampled.fasta").write_text(">a SET=train VALIDATION=True\nHHEE\n")
    flip = read_flip_ss(tmp_path)
    assert flip["valid"] == [SSRecord("a", "ACDE", "HHXE")]


def test_write_three_line_round_trip(tmp_path, data_dir):
    records = read_three_line(data_dir / "secondary_structure" / "CASP12.txt")[:5]
    path = tmp_path / "copy.txt"
    write_three_line(records, path)
    assert read_three_line(path) == records

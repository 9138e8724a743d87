"""FASTA reading, validation, writing and the long-chain policy (plmstruct.data.fasta)."""

from __future__ import annotations

import pytest

from plmstruct.data.fasta import (
    SequenceRecord,
    fit_to_length,
    parse_fasta,
    read_fasta,
    validate_sequence,
    window_owner,
    write_fasta,
)
from plmstruct.errors import InputError

ESM_LETTERS = "ACDEFGHIKLMNPQRSTVWYXBUZO"


def test_real_fasta_files(data_dir):
    flip = data_dir / "ss_netsurfp2_flip" / "splits"
    seqs = read_fasta(flip / "sequences.fasta", alphabet=ESM_LETTERS)
    labels = read_fasta(flip / "sampled.fasta")
    assert len(seqs) == len(labels) == 9712 + 1080
    assert labels[0].id == "1es5-A" and labels[0].description == "SET=train VALIDATION=False"
    by_id = {r.id: r for r in seqs}
    assert all(len(by_id[r.id].sequence) == len(r.sequence) for r in labels)
    cath = read_fasta(data_dir / "cath" / "cath-dataset-nonredundant-S20-v4_3_0.fa", alphabet=ESM_LETTERS)
    assert len(cath) == 14942 and cath[0].id == "cath|current|12asA00/4-330"
    assert sum(len(r.sequence) for r in cath) == 2318318  # PROVENANCE.txt: residues=2318318


def test_errors_name_file_record_and_position(tmp_path):
    path = tmp_path / "bad.fasta"
    path.write_text(">ok\nACDE\n>bad one\nACdE\n")
    with pytest.raises(InputError, match=r"bad.fasta: record 'bad': position 3: letter 'd' \(lower case\)"):
        read_fasta(path, alphabet="ACDE")
    for text, message in [
        ("ACDE\n>a\nAC\n", "line 1 comes before any '>' header"),
        (">a\n>b\nAC\n", "record 'a': empty sequence"),
        (">a\nAC\n>a\nDE\n", "record 'a': duplicate record id"),
        (">a\nAC-DE\n", "position 3: letter '-' \\(a gap\\)"),
        (">a\nACD*\n", "position 4: letter '\\*' \\(a stop codon\\)"),
        (">\nACDE\n", "header without an id"),
        ("\n\n  \n", "no FASTA records"),
    ]:
        with pytest.raises(InputError, match=message):
            parse_fasta(text, path="x.fa", alphabet="ACDE")
    with pytest.raises(InputError, match="no such file"):
        read_fasta(tmp_path / "absent.fa")
    binary = tmp_path / "binary.fa"
    binary.write_bytes(bytes(range(128, 256)))
    with pytest.raises(InputError, match="binary"):
        read_fasta(binary)
    with pytest.raises(InputError, match="empty sequence"):
        validate_sequence("", "ACDE", record="r")


def test_write_is_atomic_and_wraps(tmp_path):
    records = [SequenceRecord("a", "A" * 130, "first chain"), SequenceRecord("b", "CDE")]
    path = tmp_path / "out.fasta"
    write_fasta(records, path, width=60)
    lines = path.read_text().splitlines()
    assert lines[:4] == [">a first chain", "A" * 60, "A" * 60, "A" * 10]
    assert read_fasta(path) == records
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.fasta"]

    def broken():
        yield SequenceRecord("c", "ACD")
        raise RuntimeError("crash while producing records")

    with pytest.raises(RuntimeError):
        write_fasta(broken(), path)
    assert read_fasta(path) == records  # the old file is untouched, no partial output


def test_length_policies():
    seq = "".join("ACDEFGHIKLMNPQRSTVWY"[i % 20] for i in range(1000))
    assert fit_to_length("r", seq[:100], 256) == [fit_to_length("r", seq[:100], 256, policy="crop")[0]]
    with pytest.raises(InputError, match="record 'r'.*1000 residues exceeds the limit of 256"):
        fit_to_length("r", seq, 256, policy="error")
    (crop,) = fit_to_length("r", seq, 256, policy="crop")
    assert crop.start == 0 and crop.sequence == seq[:256]
    windows = fit_to_length("r", seq, 256, policy="split", overlap=64)
    assert [w.start for w in windows] == [0, 192, 384, 576, 744]
    assert all(len(w.sequence) == 256 and w.sequence == seq[w.start: w.start + 256] for w in windows)
    owner = window_owner(windows, len(seq))
    stitched = "".join(windows[w].sequence[o] for w, o in owner)
    assert stitched == seq
    # residue 200 is 8 from the start of window 1 and 200 from the end of window 0: window 0 is more central
    assert owner[200] == (0, 200) and owner[300] == (1, 108)
    with pytest.raises(ValueError):
        fit_to_length("r", seq, 256, policy="split", overlap=256)
    with pytest.raises(ValueError):
        fit_to_length("r", seq, 256, policy="wrap")

"""Property-based tests (hypothesis) for the data-layer parsers and mappings."""

from __future__ import annotations

import tempfile
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from plmstruct.data.cath import parse_cath_header
from plmstruct.data.dssp import parse_dssp_text
from plmstruct.data.fasta import (
    SequenceRecord,
    fit_to_length,
    parse_fasta,
    read_fasta,
    window_owner,
    write_fasta,
)
from plmstruct.data.secondary_structure import (
    IGNORE_INDEX,
    SS9,
    STATES,
    SSRecord,
    label_indices,
    read_three_line,
    to_states,
    write_three_line,
)
from plmstruct.data.structure import load_structure
from plmstruct.errors import InputError

LETTERS = "ACDEFGHIKLMNPQRSTVWYX"
SETTINGS = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])

ids = st.text(alphabet="ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_|.-:", min_size=1,
              max_size=20)
descriptions = st.text(alphabet=st.characters(min_codepoint=32, max_codepoint=126), max_size=30).map(str.strip)
sequences = st.text(alphabet=LETTERS, min_size=1, max_size=300)


def _unique(records: list, key=lambda r: r.id) -> list:
    seen, out = set(), []
    for r in records:
        if key(r) not in seen:
            seen.add(key(r))
            out.append(r)
    return out


@SETTINGS
@given(st.lists(st.builds(SequenceRecord, ids, sequences, descriptions), min_size=1, max_size=8),
       st.integers(min_value=1, max_value=100))
def test_fasta_write_read_round_trip(records, width):
    records = _unique(records)
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "x.fasta"
        write_fasta(records, path, width=width)
        assert read_fasta(path, alphabet=LETTERS) == records


@SETTINGS
@given(st.lists(st.tuples(ids, sequences, st.data()), min_size=1, max_size=8))
def test_three_line_round_trip(items):
    records = _unique([SSRecord(i, s, d.draw(st.text(alphabet=SS9 + "X", min_size=len(s), max_size=len(s))))
                       for i, s, d in items])
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "ss.txt"
        write_three_line(records, path)
        assert read_three_line(path) == records


@SETTINGS
@given(st.integers(1, 2000), st.integers(1, 600), st.data())
def test_split_windows_cover_every_residue(length, max_len, data):
    overlap = data.draw(st.integers(0, max_len - 1))
    seq = "".join(LETTERS[i % 20] for i in range(length))
    windows = fit_to_length("r", seq, max_len, policy="split", overlap=overlap)
    covered = set()
    for w in windows:
        assert 1 <= len(w.sequence) <= max_len
        assert w.sequence == seq[w.start: w.start + len(w.sequence)]
        covered.update(range(w.start, w.start + len(w.sequence)))
    assert covered == set(range(length))
    owner = window_owner(windows, length)
    assert len(owner) == length
    for pos, (w, off) in enumerate(owner):
        assert 0 <= w < len(windows) and 0 <= off < len(windows[w].sequence)
        assert windows[w].start + off == pos
    (crop,) = fit_to_length("r", seq, max_len, policy="crop")
    assert crop.sequence == seq[:max_len]


@SETTINGS
@given(st.text(alphabet=SS9 + "X", max_size=200))
def test_state_mappings_are_consistent(labels):
    nine, eight, three = to_states(labels, 9), to_states(labels, 8), to_states(labels, 3)
    assert nine == labels
    assert to_states(eight, 3) == three and to_states(nine, 8) == eight
    assert len(eight) == len(three) == len(labels)
    assert [i for i, c in enumerate(three) if c == "X"] == [i for i, c in enumerate(labels) if c == "X"]
    for n, states in ((9, nine), (8, eight), (3, three)):
        for c, k in zip(states, label_indices(states, n), strict=True):
            assert k == IGNORE_INDEX if c == "X" else STATES[n][k] == c


garbage = st.one_of(st.text(max_size=300),
                    st.text(alphabet=">\n ACDEHX-*#|/_\t0123456789", max_size=300))


@SETTINGS
@given(garbage)
def test_garbage_text_raises_only_input_error(text):
    for parse in (lambda t: parse_fasta(t, alphabet="ACDE"), parse_fasta, parse_dssp_text, parse_cath_header,
                  lambda t: to_states(t, 3)):
        try:
            parse(text)
        except InputError:
            pass
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "x.txt"
        path.write_text(text)
        try:
            read_three_line(path)
        except InputError:
            pass


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.one_of(st.binary(max_size=400), st.text(alphabet="ATOMHEX0123456789. \n", max_size=400).map(str.encode)),
       st.sampled_from([".pdb", ".cif", ".pdb.gz", ""]))
def test_garbage_structure_files_raise_input_error(content, suffix):
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / f"x{suffix}"
        path.write_bytes(content)
        try:
            load_structure(path)
        except InputError:
            pass

"""FASTA in/out with validation, and the long-chain policy (crop or split).

Errors name the file, the record and the 1-based position. Writing is atomic (temp file + rename).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from plmstruct.errors import InputError
from plmstruct.io import atomic_write_text


@dataclass(frozen=True)
class SequenceRecord:
    """One FASTA record: ``id`` is the header up to the first space."""

    id: str
    sequence: str
    description: str = ""


def parse_fasta(text: str, *, path: object = "<string>", alphabet: str | None = None) -> list[SequenceRecord]:
    """Parse FASTA text; validate letters against ``alphabet`` when given.

    Errors: text before the first header, empty records, duplicate ids, letters outside the alphabet
    (lower case, gaps and ``*`` included)."""
    records: list[SequenceRecord] = []
    header: str | None = None
    chunks: list[str] = []
    header_line = 0

    def flush() -> None:
        if header is None:
            return
        rid = header.split()[0] if header.split() else ""
        if not rid:
            raise InputError("header without an id", path=path, record=f"line {header_line}")
        seq = "".join(chunks)
        if not seq:
            raise InputError("empty sequence", path=path, record=rid)
        records.append(SequenceRecord(rid, seq, header[len(rid):].strip()))

    for lineno, raw in enumerate(text.splitlines(), start=1):
        line = raw.strip()
        if not line:
            continue
        if line.startswith(">"):
            flush()
            header, chunks, header_line = line[1:].strip(), [], lineno
        elif header is None:
            raise InputError(f"line {lineno} comes before any '>' header: not FASTA", path=path)
        else:
            chunks.append(line)
    flush()
    if not records:
        raise InputError("no FASTA records found", path=path)
    seen: set[str] = set()
    for rec in records:
        if rec.id in seen:
            raise InputError("duplicate record id", path=path, record=rec.id)
        seen.add(rec.id)
        if alphabet is not None:
            validate_sequence(rec.sequence, alphabet, path=path, record=rec.id)
    return records


def validate_sequence(sequence: str, alphabet: str, *, path: object = None, record: str | None = None) -> None:
    """Raise :class:`InputError` at the first letter not in ``alphabet`` (or for an empty sequence)."""
    if not sequence:
        raise InputError("empty sequence", path=path, record=record)
    allowed = set(alphabet)
    for i, ch in enumerate(sequence):
        if ch not in allowed:
            what = "a gap" if ch in "-." else ("a stop codon" if ch == "*" else
                                                ("lower case" if ch.islower() else "not a residue letter"))
            raise InputError(f"letter {ch!r} ({what}) is outside the alphabet {alphabet}",
                             path=path, record=record, position=i + 1)


def read_fasta(path: str | Path, *, alphabet: str | None = None) -> list[SequenceRecord]:
    """Read and validate a FASTA file (see :func:`parse_fasta`)."""
    path = Path(path)
    if not path.is_file():
        raise InputError("no such file", path=path)
    try:
        text = path.read_text()
    except UnicodeDecodeError as err:
        raise InputError("not a text file (binary content)", path=path) from err
    return parse_fasta(text, path=path, alphabet=alphabet)


def write_fasta(records: Iterable[SequenceRecord], path: str | Path, *, width: int = 60) -> None:
    """Write records atomically, wrapping sequences at ``width`` letters."""
    lines = []
    for rec in records:
        lines.append(f">{rec.id} {rec.description}".rstrip())
        lines.extend(rec.sequence[i: i + width] for i in range(0, len(rec.sequence), width))
    atomic_write_text(Path(path), "\n".join(lines) + "\n")


@dataclass(frozen=True)
class Window:
    """A piece of a long chain: residues ``start`` (0-based) to ``start + len(sequence)``."""

    record_id: str
    start: int
    sequence: str


LENGTH_POLICIES = ("error", "crop", "split")


def fit_to_length(record_id: str, sequence: str, max_len: int, *, policy: str = "split",
                  overlap: int = 64) -> list[Window]:
    """Apply the long-chain policy to one chain.

    - ``error``: a chain longer than ``max_len`` is an :class:`InputError`;
    - ``crop``: keep the first ``max_len`` residues;
    - ``split``: overlapping windows of ``max_len`` with ``overlap`` shared residues; the last
      window is aligned to the chain end. Per-residue outputs are stitched by
      :func:`window_owner` (each residue taken from the window where it is most central)."""
    if policy not in LENGTH_POLICIES:
        raise ValueError(f"policy must be one of {LENGTH_POLICIES}, not {policy!r}")
    if len(sequence) <= max_len:
        return [Window(record_id, 0, sequence)]
    if policy == "error":
        raise InputError(f"sequence of {len(sequence)} residues exceeds the limit of {max_len} "
                         "(use the 'crop' or 'split' policy)", record=record_id)
    if policy == "crop":
        return [Window(record_id, 0, sequence[:max_len])]
    if not 0 <= overlap < max_len:
        raise ValueError("overlap must be in [0, max_len)")
    step = max_len - overlap
    starts = list(range(0, len(sequence) - max_len, step)) + [len(sequence) - max_len]
    return [Window(record_id, s, sequence[s: s + max_len]) for s in starts]


def window_owner(windows: Sequence[Window], length: int) -> list[tuple[int, int]]:
    """For each residue of a chain, ``(window index, offset in window)`` of the window in which it
    is farthest from an edge — the stitching rule for split chains."""
    owner: list[tuple[int, int]] = []
    for pos in range(length):
        best, best_margin = (-1, -1), -1
        for w, win in enumerate(windows):
            off = pos - win.start
            if 0 <= off < len(win.sequence):
                margin = min(off, len(win.sequence) - 1 - off)
                if margin > best_margin:
                    best, best_margin = (w, off), margin
        owner.append(best)
    return owner

"""Per-residue secondary-structure data: the 3-line format, NetSurfP CSV and FLIP FASTA, and the
9 -> 8 -> 3 state mappings.

3-line format (``../shared/data/secondary_structure``): ``>ID``, the sequence, and a label string
of the same length over the 9 DSSP states ``H G I E B T S P L`` (``L`` = coil, ``P`` = PPII) plus
``X`` (no coordinates: ignored in losses and metrics).
"""

from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path

from plmstruct.errors import InputError
from plmstruct.io import atomic_write_text

#: the 9 DSSP states in our fixed class order; X is "unlabelled"
SS9 = "HGIEBTSPL"
#: 8 states: PPII (P) folds into coil (L), as in DSSP before version 4
SS8 = "HGIEBTSL"
SS3 = "HEC"
UNLABELLED = "X"
IGNORE_INDEX = -100

_TO8 = {**{c: c for c in SS8}, "P": "L", "C": "L", "-": "L", " ": "L"}
_TO3 = {"H": "H", "G": "H", "I": "H", "E": "E", "B": "E", "T": "C", "S": "C", "P": "C", "L": "C", "C": "C",
        "-": "C", " ": "C"}
STATES = {9: SS9, 8: SS8, 3: SS3}


def to_states(labels: str, n_states: int) -> str:
    """Map a DSSP label string to 9, 8 or 3 states; ``X`` stays ``X``."""
    if n_states == 9:
        table = {c: c for c in SS9} | {"C": "L", "-": "L", " ": "L"}
    elif n_states == 8:
        table = _TO8
    elif n_states == 3:
        table = _TO3
    else:
        raise ValueError("n_states must be 3, 8 or 9")
    out = []
    for i, c in enumerate(labels):
        if c == UNLABELLED:
            out.append(c)
        elif c in table:
            out.append(table[c])
        else:
            raise InputError(f"unknown secondary-structure label {c!r}", position=i + 1)
    return "".join(out)


def label_indices(labels: str, n_states: int) -> list[int]:
    """Class indices of a label string already in ``n_states`` states (X -> IGNORE_INDEX)."""
    alphabet = STATES[n_states]
    return [IGNORE_INDEX if c == UNLABELLED else alphabet.index(c) for c in labels]


@dataclass(frozen=True)
class SSRecord:
    """A chain with per-residue DSSP labels (same length as the sequence)."""

    id: str
    sequence: str
    labels: str

    def states(self, n_states: int) -> str:
        return to_states(self.labels, n_states)


def _check(rec: SSRecord, path: object) -> None:
    if not rec.sequence:
        raise InputError("empty sequence", path=path, record=rec.id)
    if len(rec.labels) != len(rec.sequence):
        raise InputError(f"label string has {len(rec.labels)} letters but the sequence has "
                         f"{len(rec.sequence)} residues", path=path, record=rec.id)
    for i, c in enumerate(rec.labels):
        if c not in SS9 + "X" + "C":
            raise InputError(f"unknown secondary-structure label {c!r}", path=path, record=rec.id,
                             position=i + 1)


def _read_text(path: Path) -> str:
    if not path.is_file():
        raise InputError("no such file", path=path)
    try:
        return path.read_text()
    except UnicodeDecodeError as err:
        raise InputError("not a text file (binary content)", path=path) from err


def read_three_line(path: str | Path) -> list[SSRecord]:
    """Read the 3-line format; every error names the file, the record and the position."""
    path = Path(path)
    lines = [ln.strip() for ln in _read_text(path).splitlines() if ln.strip()]
    if len(lines) % 3:
        raise InputError(f"{len(lines)} non-empty lines is not a multiple of 3 (header, sequence, labels)",
                         path=path)
    records, seen = [], set()
    for k in range(0, len(lines), 3):
        head, seq, lab = lines[k: k + 3]
        if not head.startswith(">"):
            raise InputError(f"line {k + 1} should be a '>' header", path=path)
        rec = SSRecord(head[1:].split()[0] if head[1:].split() else "", seq, lab)
        if not rec.id:
            raise InputError(f"header on line {k + 1} has no id", path=path)
        if rec.id in seen:
            raise InputError("duplicate record id", path=path, record=rec.id)
        seen.add(rec.id)
        _check(rec, path)
        records.append(rec)
    return records


def write_three_line(records: list[SSRecord], path: str | Path) -> None:
    """Write records in the 3-line format (atomically)."""
    atomic_write_text(Path(path), "".join(f">{r.id}\n{r.sequence}\n{r.labels}\n" for r in records))


def read_netsurfp_csv(path: str | Path, *, n_states: int = 8) -> list[SSRecord]:
    """NetSurfP-2.0 / ProtTrans CSV (``input, dssp3, dssp8, disorder, cb513_mask``; space-separated
    letters). Residues with evaluation mask 0 become ``X``. Labels use our 8-state letters
    (coil ``C`` -> ``L``) or, for ``n_states=3``, H/E/C."""
    path = Path(path)
    records = []
    reader = csv.reader(_read_text(path).splitlines())
    header = [h.strip() for h in next(reader, [])]
    if not header:
        raise InputError("empty file", path=path)
    needed = ["input", "dssp8" if n_states in (8, 9) else "dssp3"]
    missing = [name for name in needed if name not in header]
    if missing:
        raise InputError(f"line 1: missing column(s) {', '.join(missing)}", path=path)
    col = {name: header.index(name) for name in header}
    label_col = col[needed[1]]
    mask_col = col.get("cb513_mask")
    for n, row in enumerate(reader, start=1):
        try:
            seq = row[col["input"]].split()
            lab = row[label_col].split()
            mask = row[mask_col].split() if mask_col is not None else ["1"] * len(seq)
            labels = "".join(("L" if c == "C" and n_states != 3 else c) if float(m) > 0 else "X"
                             for c, m in zip(lab, mask, strict=False))
        except (IndexError, ValueError) as err:
            raise InputError(f"line {n + 1}: malformed row ({err})", path=path, record=f"{path.stem}_{n}") from err
        rec = SSRecord(f"{path.stem}_{n}", "".join(seq), labels)
        _check(rec, path)
        records.append(rec)
    return records


def read_flip_ss(split_dir: str | Path) -> dict[str, list[SSRecord]]:
    """FLIP's NetSurfP-2.0 3-state split: ``sequences.fasta`` + ``sampled.fasta`` (labels with
    ``SET``/``VALIDATION`` attributes) + ``mask.fasta`` (1 = resolved). Returns ``train`` /
    ``valid`` / ``test`` lists with unresolved residues as ``X``."""
    from plmstruct.data.fasta import read_fasta

    split_dir = Path(split_dir)
    seqs = {r.id: r for r in read_fasta(split_dir / "sequences.fasta")}
    labels = read_fasta(split_dir / "sampled.fasta")
    masks = {r.id: r.sequence for r in read_fasta(split_dir / "mask.fasta")}
    out: dict[str, list[SSRecord]] = {"train": [], "valid": [], "test": []}
    for lab in labels:
        attrs = dict(kv.split("=", 1) for kv in lab.description.split() if "=" in kv)
        if lab.id not in seqs:
            raise InputError("labelled chain is not in sequences.fasta", path=split_dir / "sampled.fasta",
                             record=lab.id)
        mask = masks.get(lab.id, "1" * len(lab.sequence))
        text = "".join(c if m == "1" else "X" for c, m in zip(lab.sequence, mask, strict=False))
        rec = SSRecord(lab.id, seqs[lab.id].sequence, text)
        _check(rec, split_dir / "sampled.fasta")
        split = "test" if attrs.get("SET") == "test" else ("valid" if attrs.get("VALIDATION") == "True" else "train")
        out[split].append(rec)
    return out

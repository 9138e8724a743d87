"""CATH domains and their class / architecture / topology / homologous-superfamily labels.

Readers (every error names the file and line):

- :func:`read_clf` — the CATH List File, CLF 2.0 (``1oaiA00  1  10  8  10  1 1 1 1 1  59 1.000``);
- :func:`read_cath_fasta` — CATH FASTA (``>cath|4_3_0|12asA00/4-330`` or ``>cath|current|...``,
  segments after ``/`` or ``_``, e.g. ``-2-106_120-150`` or ``1(A)-63``; plain ``>12asA00`` too);
- :func:`read_cath_labeled_tsv` — ``domain_id, class, architecture, topology,
  homologous_superfamily, cath_code, segments, sequence`` (``cath_S20_v4_3_0_labeled.tsv``);
- :func:`read_cath_label_list` — ``domainID,C.A.T.H`` lines (``cath_v430_dom_seqs_S100_161121_labels.txt``);
- :func:`read_cath_header_list` — a list of CATH FASTA headers without sequences
  (``cath_v430_dom_seqs_S100_161121.txt``);
- :func:`read_label_table` — any id -> label table (TSV / CSV, chosen columns);
- :func:`cath_names` — node names (CathNames, ``cath-names-v4_4_0.txt``).

Splits: :func:`split_by_label` (target vs rest at one level) and :func:`label_counts`.
"""

from __future__ import annotations

import csv
import re
from collections import Counter
from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from plmstruct.errors import InputError

#: hierarchy levels and how many dot-separated numbers of the CATH code each keeps
LEVELS = {"class": 1, "architecture": 2, "topology": 3, "superfamily": 4}
_LEVEL_ALIASES = {"c": "class", "a": "architecture", "t": "topology", "h": "superfamily",
                  "homologous_superfamily": "superfamily", "homology": "superfamily", "fold": "topology"}
_CODE_RE = re.compile(r"^\d+(\.\d+){0,3}$")
_DOMAIN_RE = re.compile(r"^[0-9][0-9a-zA-Z]{3}[0-9a-zA-Z][0-9]{2}$")
_SEGMENT_RE = re.compile(r"^-?\d+(\([0-9A-Za-z]\))?--?\d+(\([0-9A-Za-z]\))?$")


def level_name(level: str) -> str:
    """Normalise a level name (``class``/``architecture``/``topology``/``superfamily`` or C/A/T/H)."""
    key = level.strip().lower()
    key = _LEVEL_ALIASES.get(key, key)
    if key not in LEVELS:
        raise ValueError(f"unknown CATH level {level!r}; use one of {', '.join(LEVELS)}")
    return key


def code_at(cath_code: str, level: str) -> str:
    """The prefix of ``cath_code`` at ``level`` (``3.30.930.10`` at topology -> ``3.30.930``)."""
    depth = LEVELS[level_name(level)]
    parts = cath_code.split(".")
    if len(parts) < depth:
        raise ValueError(f"CATH code {cath_code!r} has no {level_name(level)} level")
    return ".".join(parts[:depth])


@dataclass(frozen=True)
class CathDomain:
    """A CATH domain: id (e.g. ``12asA00``), C.A.T.H code (may be empty when unknown), sequence
    (may be empty for header-only lists) and segments (residue ranges, e.g. ``4-330`` or
    ``2-36_193-240``)."""

    domain_id: str
    cath_code: str = ""
    sequence: str = ""
    segments: str = ""
    length: int | None = None  # CLF column 11
    resolution: float | None = None  # CLF column 12 (999 = NMR, 1000 = obsolete)

    def label(self, level: str) -> str:
        """Label at ``level``: class ``3``, architecture ``3.30``, topology ``3.30.930`` or
        superfamily ``3.30.930.10``."""
        if not self.cath_code:
            raise ValueError(f"domain {self.domain_id} has no CATH code")
        return code_at(self.cath_code, level)

    @property
    def pdb_id(self) -> str:
        return self.domain_id[:4]

    @property
    def chain(self) -> str:
        return self.domain_id[4:5]


def _check_code(code: str, path: object, lineno: int) -> str:
    if not _CODE_RE.match(code):
        raise InputError(f"line {lineno}: {code!r} is not a CATH code like 3.30.930.10", path=path)
    return code


def _check_domain(domain: str, path: object, lineno: int) -> str:
    if not _DOMAIN_RE.match(domain):
        raise InputError(f"line {lineno}: {domain!r} is not a 7-character CATH domain id like 1oaiA00",
                         path=path)
    return domain


def _open_text(path: str | Path) -> tuple[Path, list[str]]:
    path = Path(path)
    if not path.is_file():
        raise InputError("no such file", path=path)
    try:
        return path, path.read_text().splitlines()
    except UnicodeDecodeError as err:
        raise InputError("not a text file (binary content)", path=path) from err


def _content_lines(path: str | Path) -> tuple[Path, list[tuple[int, str]]]:
    """(line number, line) of the non-blank, non-``#`` lines of a text file."""
    path, lines = _open_text(path)
    return path, [(n, ln) for n, ln in enumerate(lines, start=1) if ln.strip() and not ln.startswith("#")]


def _nonempty(items, path: Path, what: str):
    if not items:
        raise InputError(f"no {what} found", path=path)
    return items


def read_clf(path: str | Path) -> list[CathDomain]:
    """Read a CATH List File (CLF 2.0; ``#`` comments): domain, C, A, T, H, S35, S60, S95, S100,
    S100 count, domain length, resolution."""
    path, lines = _content_lines(path)
    domains = []
    for lineno, line in lines:
        cols = line.split()
        if len(cols) != 12:
            raise InputError(f"line {lineno}: CLF 2.0 has 12 columns, found {len(cols)}", path=path)
        domain = _check_domain(cols[0], path, lineno)
        try:
            numbers = [int(c) for c in cols[1:11]]
            resolution = float(cols[11])
        except ValueError as err:
            raise InputError(f"line {lineno}: non-numeric CLF column ({err})", path=path) from err
        code = ".".join(str(n) for n in numbers[:4])
        domains.append(CathDomain(domain, code, length=numbers[9], resolution=resolution))
    return _nonempty(domains, path, "CLF entries")


def parse_cath_header(header: str, *, path: object = "<string>", lineno: int | None = None,
                      record: str | None = None) -> tuple[str, str]:
    """``(domain_id, segments)`` from a CATH FASTA header (without ``>``): ``cath|4_3_0|12asA00/4-330``,
    ``cath|current|1a0iA01_2-36_193-240`` or a bare ``12asA00``."""
    token = header.strip().split()[0] if header.strip() else ""
    where = f"line {lineno}: " if lineno is not None else ""
    if token.startswith("cath|"):
        parts = token.split("|")
        if len(parts) != 3:
            raise InputError(f"{where}CATH header {token!r} is not cath|VERSION|DOMAIN/SEGMENTS",
                             path=path, record=record)
        token = parts[2]
    if "/" in token:
        domain, segments = token.split("/", 1)
    elif "_" in token:
        domain, segments = token.split("_", 1)
    else:
        domain, segments = token, ""
    if not _DOMAIN_RE.match(domain):
        raise InputError(f"{where}{domain!r} is not a 7-character CATH domain id like 1oaiA00",
                         path=path, record=record)
    for seg in filter(None, segments.split("_") if segments else []):
        if not _SEGMENT_RE.match(seg):
            raise InputError(f"{where}bad segment {seg!r} in CATH header {token!r}", path=path, record=record)
    return domain, segments


def read_cath_fasta(path: str | Path, labels: Mapping[str, str] | None = None, *,
                    require_labels: bool = False) -> list[CathDomain]:
    """Read a CATH FASTA file; ``labels`` (domain id -> C.A.T.H code, e.g. from
    :func:`read_cath_label_list`) fills in the codes."""
    from plmstruct.data.fasta import read_fasta

    path = Path(path)
    domains: list[CathDomain] = []
    seen: set[str] = set()
    for rec in read_fasta(path):
        domain, segments = parse_cath_header(rec.id, path=path, record=rec.id)
        if domain in seen:
            raise InputError("duplicate domain", path=path, record=rec.id)
        seen.add(domain)
        code = (labels or {}).get(domain, "")
        if require_labels and not code:
            raise InputError("no CATH label for this domain", path=path, record=rec.id)
        domains.append(CathDomain(domain, code, rec.sequence, segments))
    return domains


LABELED_TSV_COLUMNS = ("domain_id", "class", "architecture", "topology", "homologous_superfamily",
                       "cath_code", "segments", "sequence")


def read_cath_labeled_tsv(path: str | Path) -> list[CathDomain]:
    """Read the labeled domain table (columns :data:`LABELED_TSV_COLUMNS`); checks that the
    class/architecture/topology/superfamily columns agree with ``cath_code``."""
    path = Path(path)
    if not path.is_file():
        raise InputError("no such file", path=path)
    domains = []
    with path.open(newline="") as fh:
        reader = csv.reader(fh, delimiter="\t")
        header = next(reader, None)
        if header is None:
            raise InputError("empty file", path=path)
        missing = [c for c in LABELED_TSV_COLUMNS if c not in header]
        if missing:
            raise InputError(f"line 1: missing column(s) {', '.join(missing)}", path=path)
        col = {name: header.index(name) for name in LABELED_TSV_COLUMNS}
        for lineno, row in enumerate(reader, start=2):
            if not row or not "".join(row).strip():
                continue
            if len(row) != len(header):
                raise InputError(f"line {lineno}: {len(row)} columns, header has {len(header)}", path=path)
            domain = _check_domain(row[col["domain_id"]], path, lineno)
            code = _check_code(row[col["cath_code"]], path, lineno)
            for level, name in (("class", "class"), ("architecture", "architecture"),
                                ("topology", "topology"), ("superfamily", "homologous_superfamily")):
                try:
                    expected = code_at(code, level)
                except ValueError:
                    continue
                if row[col[name]] != expected:
                    raise InputError(f"line {lineno}: {name} {row[col[name]]!r} disagrees with cath_code "
                                     f"{code!r}", path=path, record=domain)
            seq = row[col["sequence"]].strip()
            if not seq:
                raise InputError(f"line {lineno}: empty sequence", path=path, record=domain)
            domains.append(CathDomain(domain, code, seq, row[col["segments"]]))
    return _nonempty(domains, path, "domains")


def read_cath_label_list(path: str | Path) -> dict[str, str]:
    """``domainID,C.A.T.H`` lines (comma, tab or space separated) -> {domain id: code}."""
    path, lines = _content_lines(path)
    out: dict[str, str] = {}
    for lineno, line in lines:
        parts = re.split(r"[,\t ]+", line.strip())
        if len(parts) < 2:
            raise InputError(f"line {lineno}: expected 'domain,C.A.T.H'", path=path)
        domain = _check_domain(parts[0], path, lineno)
        out[domain] = _check_code(parts[1], path, lineno)
    return _nonempty(out, path, "labels")


def read_cath_header_list(path: str | Path, labels: Mapping[str, str] | None = None) -> list[CathDomain]:
    """A file of CATH FASTA headers, one per line, without sequences (``>`` optional)."""
    path, lines = _open_text(path)
    out = []
    for lineno, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        domain, segments = parse_cath_header(line.strip().lstrip(">"), path=path, lineno=lineno)
        out.append(CathDomain(domain, (labels or {}).get(domain, ""), "", segments))
    return _nonempty(out, path, "headers")


def read_label_table(path: str | Path, *, id_column: str | int = 0, label_column: str | int = 1,
                     delimiter: str | None = None, header: bool | None = None) -> dict[str, str]:
    """Any id -> label table. Columns by name (needs a header row) or 0-based index; the delimiter
    is tab for ``.tsv``/``.tab``, comma for ``.csv``, otherwise sniffed; ``header=None`` assumes a
    header row exactly when a column is given by name."""
    path = Path(path)
    if not path.is_file():
        raise InputError("no such file", path=path)
    text = path.read_text()
    if delimiter is None:
        suffix = path.suffix.lower()
        delimiter = "\t" if suffix in (".tsv", ".tab") else "," if suffix == ".csv" else (
            "\t" if "\t" in text.split("\n", 1)[0] else ",")
    rows = [r for r in csv.reader(text.splitlines(), delimiter=delimiter)]
    if header is None:
        header = isinstance(id_column, str) or isinstance(label_column, str)
    start = 1 if header else 0
    if header:
        if not rows:
            raise InputError("empty table", path=path)
        names = [h.strip() for h in rows[0]]

        def index(column: str | int) -> int:
            if isinstance(column, int):
                return column
            if column not in names:
                raise InputError(f"line 1: no column {column!r}; columns: {', '.join(names)}", path=path)
            return names.index(column)

        id_idx, label_idx = index(id_column), index(label_column)
    else:
        if isinstance(id_column, str) or isinstance(label_column, str):
            raise ValueError("columns given by name need header=True")
        id_idx, label_idx = id_column, label_column
    out: dict[str, str] = {}
    for lineno, row in enumerate(rows[start:], start=start + 1):
        if not row or not "".join(row).strip() or row[0].startswith("#"):
            continue
        if max(id_idx, label_idx) >= len(row):
            raise InputError(f"line {lineno}: {len(row)} columns, need column {max(id_idx, label_idx) + 1}",
                             path=path)
        key, value = row[id_idx].strip(), row[label_idx].strip()
        if not key:
            raise InputError(f"line {lineno}: empty id", path=path)
        if key in out and out[key] != value:
            raise InputError(f"line {lineno}: id {key!r} has two labels ({out[key]!r}, {value!r})", path=path)
        out[key] = value
    return _nonempty(out, path, "rows")


def cath_names(path: str | Path) -> dict[str, str]:
    """CATH node names (CathNames file: ``code  representative  :name``) -> {code: name}."""
    path, lines = _content_lines(path)
    out: dict[str, str] = {}
    for lineno, line in lines:
        if ":" not in line:
            raise InputError(f"line {lineno}: expected 'CODE  DOMAIN  :NAME'", path=path)
        left, name = line.split(":", 1)
        fields = left.split()
        if not fields:
            raise InputError(f"line {lineno}: no CATH code", path=path)
        out[_check_code(fields[0], path, lineno)] = name.strip()
    return _nonempty(out, path, "names")


def label_counts(domains: Iterable[CathDomain], level: str) -> dict[str, int]:
    """Number of domains per label at ``level``, most frequent first (ties by label)."""
    counts = Counter(d.label(level) for d in domains)
    return dict(sorted(counts.items(), key=lambda kv: (-kv[1], kv[0])))


def split_by_label(domains: Sequence[CathDomain], level: str,
                   target: str | Collection[str]) -> tuple[list[CathDomain], list[CathDomain]]:
    """``(target, rest)``: the domains whose label at ``level`` is ``target`` (one label or a
    collection of labels) and all others, each in input order. An unknown target is an error."""
    targets = {target} if isinstance(target, str) else set(target)
    chosen = [d for d in domains if d.label(level) in targets]
    if not chosen:
        known = label_counts(domains, level)
        preview = ", ".join(list(known)[:10])
        raise InputError(f"no domain has {level_name(level)} {', '.join(sorted(targets))}; "
                         f"most frequent: {preview}")
    rest = [d for d in domains if d.label(level) not in targets]
    return chosen, rest

"""Redundancy control: drop training chains identical or highly similar to any test chain.

A training chain is removed when some test chain is

1. identical to it (same sequence, case-insensitive), or
2. aligned to it (local alignment) with sequence identity >= ``min_identity`` (identical columns /
   alignment columns including gaps, MMseqs2's ``fident``) over at least ``min_coverage`` of one
   of the two chains (``max(qcov, tcov)``: in practice the shorter chain).

Two search methods, both after the exact-identity pass:

- ``mmseqs``: MMseqs2 ``easy-search`` (Debian ``/usr/bin/mmseqs``), training chains as queries
  against the test chains, E-value <= ``evalue``, sensitivity ``-s``, in a temporary folder;
- ``python``: no external program — a k-mer prefilter (biotite ``KmerTable``, exact 3-mers,
  low-complexity stretches such as His tags masked, candidates with >= ``min_kmer_hits`` hits on
  one diagonal, best ``max_candidates`` per chain, an ungapped-score screen on that diagonal)
  followed by a banded local alignment (BLOSUM62, gap -11/-1, band +-24 around the diagonal,
  biotite ``align_banded``) that must be significant (Karlin-Altschul E-value <= ``evalue``
  against the whole test set). It finds close homologues as MMseqs2 does but is less sensitive
  in the twilight zone (< 40% identity).

``auto`` uses MMseqs2 when it is installed. :class:`RedundancyReport` records every removal
(best hit, identity, coverage), the method and the parameters, and writes itself as TSV.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
import time
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from plmstruct.errors import InputError
from plmstruct.io import atomic_write_text

METHODS = ("auto", "mmseqs", "python")


@dataclass(frozen=True)
class RedundancyHit:
    """Why a training chain was removed: its best test hit."""

    train_id: str
    test_id: str
    identity: float
    coverage: float
    reason: str  # "identical" or "similar"


@dataclass
class RedundancyReport:
    """Outcome of :func:`filter_similar`."""

    kept: list[str]
    removed: list[RedundancyHit]
    method: str
    parameters: dict = field(default_factory=dict)
    n_train: int = 0
    n_test: int = 0
    seconds: float = 0.0

    @property
    def removed_ids(self) -> set[str]:
        return {h.train_id for h in self.removed}

    def summary(self) -> str:
        """One line: how many were removed, and how."""
        n_identical = sum(h.reason == "identical" for h in self.removed)
        p = self.parameters
        return (f"removed {len(self.removed)} of {self.n_train} training chains "
                f"({n_identical} identical to a test chain, {len(self.removed) - n_identical} with "
                f">= {p.get('min_identity', 0):.0%} identity over >= {p.get('min_coverage', 0):.0%} of "
                f"either chain) against {self.n_test} test chains using {self.method}; "
                f"{len(self.kept)} kept")

    def to_tsv(self, path: str | Path) -> None:
        """Write the report atomically: ``#`` lines with the summary and parameters, then one row
        per training chain (``train_id, status, test_id, identity, coverage, reason``)."""
        lines = [f"# {self.summary()}", f"# method: {self.method}",
                 f"# parameters: {', '.join(f'{k}={v}' for k, v in self.parameters.items())}",
                 f"# seconds: {self.seconds:.1f}",
                 "train_id\tstatus\ttest_id\tidentity\tcoverage\treason"]
        lines += [f"{h.train_id}\tremoved\t{h.test_id}\t{h.identity:.3f}\t{h.coverage:.3f}\t{h.reason}"
                  for h in self.removed]
        lines += [f"{k}\tkept\t\t\t\t" for k in self.kept]
        atomic_write_text(Path(path), "\n".join(lines) + "\n")

    def to_dict(self) -> dict:
        out = asdict(self)
        out["summary"] = self.summary()
        return out


def _pairs(items: Iterable, what: str) -> list[tuple[str, str]]:
    out = []
    for k, item in enumerate(items):
        if isinstance(item, tuple | list) and len(item) == 2:
            rid, seq = item
        elif hasattr(item, "id") and hasattr(item, "sequence"):
            rid, seq = item.id, item.sequence
        else:
            raise TypeError(f"{what} item {k} is not an (id, sequence) pair or a record")
        rid, seq = str(rid), str(seq).strip().upper()
        if not seq:
            raise InputError(f"empty {what} sequence", record=rid)
        out.append((rid, seq))
    return out


def mmseqs_path() -> str | None:
    """Path of the ``mmseqs`` executable (``$PLMSTRUCT_MMSEQS`` or ``PATH``), or None."""
    return os.environ.get("PLMSTRUCT_MMSEQS") or shutil.which("mmseqs")


def filter_similar(train: Sequence, test: Sequence, *, min_identity: float = 0.25, min_coverage: float = 0.5,
                   method: str = "auto", evalue: float = 1e-3, sensitivity: float = 7.5,
                   threads: int | None = None, max_candidates: int = 20,
                   min_kmer_hits: int = 4) -> RedundancyReport:
    """Split ``train`` ((id, sequence) pairs or records with ``.id``/``.sequence``) into kept and
    removed chains against ``test`` (see module docstring). Training ids must be unique."""
    if method not in METHODS:
        raise ValueError(f"method must be one of {METHODS}, not {method!r}")
    if not 0 <= min_identity <= 1 or not 0 <= min_coverage <= 1:
        raise ValueError("min_identity and min_coverage are fractions in [0, 1]")
    start = time.perf_counter()
    train_pairs, test_pairs = _pairs(train, "training"), _pairs(test, "test")
    seen: set[str] = set()
    for rid, _ in train_pairs:
        if rid in seen:
            raise InputError("duplicate training id", record=rid)
        seen.add(rid)
    if method == "auto":
        method = "mmseqs" if mmseqs_path() else "python"
    if method == "mmseqs" and mmseqs_path() is None:
        raise RuntimeError("mmseqs not found on PATH (Debian: apt-get install mmseqs2)")
    threads = threads or max(1, min(4, os.cpu_count() or 1))
    params: dict = {"min_identity": min_identity, "min_coverage": min_coverage}

    # 1. exact duplicates
    by_seq: dict[str, str] = {}
    for tid, seq in test_pairs:
        by_seq.setdefault(seq, tid)
    best: dict[int, RedundancyHit] = {}
    rest: list[int] = []
    for q, (rid, seq) in enumerate(train_pairs):
        if seq in by_seq:
            best[q] = RedundancyHit(rid, by_seq[seq], 1.0, 1.0, "identical")
        else:
            rest.append(q)

    # 2. similar chains
    if rest and test_pairs:
        queries = [train_pairs[q][1] for q in rest]
        targets = [seq for _, seq in test_pairs]
        if method == "mmseqs":
            params |= {"evalue": evalue, "sensitivity": sensitivity, "threads": threads}
            hits = _search_mmseqs(queries, targets, min_identity=min_identity, evalue=evalue,
                                  sensitivity=sensitivity, threads=threads)
        else:
            params |= {"evalue": evalue, "k": 3, "min_kmer_hits": min_kmer_hits,
                       "max_candidates": max_candidates, "ungapped_fraction": _UNGAPPED_FRACTION, "band": 24,
                       "gap": "-11/-1", "matrix": "BLOSUM62"}
            hits = _search_python(queries, targets, min_identity=min_identity, min_coverage=min_coverage,
                                  max_candidates=max_candidates, min_kmer_hits=min_kmer_hits, evalue=evalue)
        for qi, ti, ident, cov in hits:
            if ident + 1e-9 < min_identity or cov + 1e-9 < min_coverage:
                continue
            q = rest[qi]
            old = best.get(q)
            if old is None or (ident, cov) > (old.identity, old.coverage):
                best[q] = RedundancyHit(train_pairs[q][0], test_pairs[ti][0], ident, cov, "similar")
    removed = [best[q] for q in sorted(best)]
    kept = [rid for q, (rid, _) in enumerate(train_pairs) if q not in best]
    return RedundancyReport(kept, removed, method, params, len(train_pairs), len(test_pairs),
                            time.perf_counter() - start)


# ---------------------------------------------------------------------------------------------
# MMseqs2


def _write_fasta(path: Path, prefix: str, seqs: list[str]) -> None:
    path.write_text("".join(f">{prefix}{k}\n{s}\n" for k, s in enumerate(seqs)))


def _search_mmseqs(queries: list[str], targets: list[str], *, min_identity: float, evalue: float,
                   sensitivity: float, threads: int) -> list[tuple[int, int, float, float]]:
    """``(query index, target index, fident, max(qcov, tcov))`` for every reported alignment."""
    exe = mmseqs_path()
    assert exe is not None
    with tempfile.TemporaryDirectory(prefix="plmstruct-mmseqs-") as tmp:
        tmpdir = Path(tmp)
        _write_fasta(tmpdir / "query.fasta", "q", queries)
        _write_fasta(tmpdir / "target.fasta", "t", targets)
        out = tmpdir / "hits.m8"
        cmd = [exe, "easy-search", str(tmpdir / "query.fasta"), str(tmpdir / "target.fasta"), str(out),
               str(tmpdir / "work"), "--format-output", "query,target,fident,qcov,tcov",
               "-e", str(evalue), "--min-seq-id", str(min_identity), "-s", str(sensitivity),
               "--threads", str(threads), "-v", "1"]
        proc = subprocess.run(cmd, capture_output=True, text=True)
        if proc.returncode != 0:
            raise RuntimeError(f"mmseqs easy-search failed ({proc.returncode}): {proc.stderr.strip()[-500:]}")
        hits = []
        for line in out.read_text().splitlines():
            q, t, fident, qcov, tcov = line.split("\t")
            hits.append((int(q[1:]), int(t[1:]), float(fident), max(float(qcov), float(tcov))))
    return hits


# ---------------------------------------------------------------------------------------------
# pure-Python fallback (biotite k-mer table + banded alignment)


def _protein(seq: str):
    from biotite.sequence import ProteinSequence

    allowed = set(ProteinSequence.alphabet.get_symbols()) - {"*"}
    return ProteinSequence("".join(c if c in allowed else "X" for c in seq))


def low_complexity_mask(codes: np.ndarray, window: int = 8, max_distinct: int = 3) -> np.ndarray:
    """True at positions inside a window of ``window`` residues with at most ``max_distinct``
    different letters (His tags, poly-Q, ...): their k-mers are ignored by the prefilter."""
    mask = np.zeros(len(codes), dtype=bool)
    if len(codes) < window:
        return mask
    windows = np.sort(np.lib.stride_tricks.sliding_window_view(codes, window), axis=1)
    distinct = 1 + (np.diff(windows, axis=1) != 0).sum(axis=1)
    for start in np.flatnonzero(distinct <= max_distinct):
        mask[start: start + window] = True
    return mask


# Karlin-Altschul statistics of BLOSUM62 with gap costs 11/1 (NCBI BLAST)
_LAMBDA, _K = 0.267, 0.041


def _search_python(queries: list[str], targets: list[str], *, min_identity: float, min_coverage: float,
                   max_candidates: int, min_kmer_hits: int, evalue: float, k: int = 3,
                   band: int = 24) -> list[tuple[int, int, float, float]]:
    from biotite.sequence.align import KmerTable, SubstitutionMatrix, align_banded

    target_seqs = [_protein(t) for t in targets]
    table = KmerTable.from_sequences(k, target_seqs,
                                     ignore_masks=[low_complexity_mask(t.code) for t in target_seqs])
    matrix = SubstitutionMatrix.std_protein_matrix()
    scores = matrix.score_matrix()
    db_size = sum(len(t) for t in targets)
    shift = 1 << 20  # diagonal offset so that (target, diagonal) packs into one int64 key
    hits: list[tuple[int, int, float, float]] = []
    for qi, query in enumerate(queries):
        if len(query) < k:
            continue
        qseq = _protein(query)
        matches = table.match(qseq, ignore_mask=low_complexity_mask(qseq.code))
        if len(matches) < min_kmer_hits:
            continue
        ref = matches[:, 1].astype(np.int64)
        diag = matches[:, 2].astype(np.int64) - matches[:, 0].astype(np.int64)
        uniq, counts = np.unique(ref * (2 * shift) + diag + shift, return_counts=True)
        good = counts >= min_kmer_hits
        if not good.any():
            continue
        uniq, counts = uniq[good], counts[good]
        refs, diags = uniq // (2 * shift), uniq % (2 * shift) - shift
        # best diagonal per target, then targets by their best diagonal's hit count
        order = np.lexsort((-counts, refs))
        refs, diags, counts = refs[order], diags[order], counts[order]
        first = np.ones(len(refs), dtype=bool)
        first[1:] = refs[1:] != refs[:-1]
        refs, diags, counts = refs[first], diags[first], counts[first]
        # a significant alignment needs score >= ln(K m n / evalue) / lambda
        min_score = np.log(_K * len(query) * db_size / evalue) / _LAMBDA
        for c in np.argsort(-counts, kind="stable")[:max_candidates]:
            ti, d = int(refs[c]), int(diags[c])
            if _ungapped_score(qseq.code, target_seqs[ti].code, d, scores) < _UNGAPPED_FRACTION * min_score:
                continue  # cheap screen: no promising segment on this diagonal
            ident, cov, score = _banded_identity(qseq, target_seqs[ti], d, band, matrix, align_banded)
            if score >= min_score and ident >= min_identity and cov >= min_coverage:
                hits.append((qi, ti, ident, cov))
                break  # the first significant hit (candidates in order of k-mer hits) decides
    return hits


# a candidate diagonal is aligned only if its best ungapped segment scores at least this fraction
# of the significance threshold (on real NetSurfP-vs-test chains this skipped 2/3 of the
# alignments and lost no significant hit)
_UNGAPPED_FRACTION = 0.4


def _ungapped_score(q: np.ndarray, t: np.ndarray, diagonal: int, scores: np.ndarray) -> float:
    """Best ungapped local score (maximum-sum segment) on one diagonal."""
    lo, hi = max(0, -diagonal), min(len(q), len(t) - diagonal)
    if hi <= lo:
        return 0.0
    cumulative = np.concatenate([[0], np.cumsum(scores[q[lo:hi], t[lo + diagonal: hi + diagonal]])])
    return float((cumulative - np.minimum.accumulate(cumulative)).max())


def _banded_identity(q, t, diagonal: int, band: int, matrix, align_banded) -> tuple[float, float, int]:
    """Identity (identical columns / columns), max(qcov, tcov) and raw score of the best local
    alignment in a band around ``diagonal`` (target position - query position)."""
    lo = max(diagonal - band, -(len(q) - 1))
    hi = min(diagonal + band, len(t) - 1)
    if lo > hi:
        return 0.0, 0.0, 0
    alignments = align_banded(q, t, matrix, band=(lo, hi), gap_penalty=(-11, -1), local=True, max_number=1)
    if not alignments or len(alignments[0].trace) == 0:
        return 0.0, 0.0, 0
    trace = alignments[0].trace
    both = (trace[:, 0] >= 0) & (trace[:, 1] >= 0)
    same = int((q.code[trace[both, 0]] == t.code[trace[both, 1]]).sum())
    qpos, tpos = trace[trace[:, 0] >= 0, 0], trace[trace[:, 1] >= 0, 1]
    qcov = (qpos.max() - qpos.min() + 1) / len(q) if len(qpos) else 0.0
    tcov = (tpos.max() - tpos.min() + 1) / len(t) if len(tpos) else 0.0
    return same / len(trace), float(max(qcov, tcov)), int(alignments[0].score)

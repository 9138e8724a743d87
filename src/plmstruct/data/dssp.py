"""DSSP secondary structure of a :class:`~plmstruct.data.structure.ProteinStructure`, and a reader
for classic DSSP files.

:func:`dssp_labels` returns one letter per residue of ``structure.sequence``: the 9 DSSP states
``H G I E B T S P`` plus ``L`` (coil / no state), and ``X`` for residues without complete backbone
coordinates (N, CA, C, O) — the same alphabet as the 3-line secondary-structure files.

Two methods:

- ``mkdssp``: the real DSSP (Debian package ``dssp``, mkdssp 4.x) run on a temporary backbone-only
  PDB file (with the HEADER and CRYST1 records that mkdssp 4 requires), classic output parsed back.
- ``python``: a numpy re-implementation of the Kabsch & Sander (1983) algorithm following DSSP 4:
  electrostatic H-bond energy (E < -0.5 kcal/mol, the two best acceptors per N-H), n-turns and
  minimal helices (H, then G and I where free; pi-helices take precedence over alpha as in DSSP 4),
  bridges and ladders with beta-bulges (E, B), turns (T), bends (S, kappa > 70 deg) and
  polyproline II stretches (P, phi -75 +- 29, psi 145 +- 29 over >= 3 residues).

``auto`` uses mkdssp when it is on ``PATH`` (falling back to Python with a warning if it fails).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
import warnings
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from plmstruct.data.structure import ProteinStructure, to_pdb_text
from plmstruct.errors import InputError

SS_LETTERS = "HGIEBTSPL"
METHODS = ("auto", "mkdssp", "python")


def mkdssp_path() -> str | None:
    """Path of the ``mkdssp`` executable (``$PLMSTRUCT_MKDSSP`` or ``PATH``), or None."""
    return os.environ.get("PLMSTRUCT_MKDSSP") or shutil.which("mkdssp")


def dssp_labels(structure: ProteinStructure, method: str = "auto") -> str:
    """9-state DSSP letters aligned 1:1 to ``structure.sequence`` (``X`` = no backbone)."""
    if method not in METHODS:
        raise ValueError(f"method must be one of {METHODS}, not {method!r}")
    if method == "python":
        return python_dssp(structure)
    exe = mkdssp_path()
    if exe is None:
        if method == "mkdssp":
            raise RuntimeError("mkdssp not found on PATH (Debian: apt-get install dssp)")
        return python_dssp(structure)
    try:
        return run_mkdssp(structure, exe=exe)
    except RuntimeError as err:
        if method == "mkdssp":
            raise
        warnings.warn(f"mkdssp failed ({err}); using the Python DSSP", stacklevel=2)
        return python_dssp(structure)


# ---------------------------------------------------------------------------------------------
# mkdssp


def run_mkdssp(structure: ProteinStructure, *, exe: str | None = None, timeout: float = 300) -> str:
    """Run mkdssp on a backbone-only copy of ``structure`` (residues renumbered 1..L)."""
    exe = exe or mkdssp_path()
    if exe is None:
        raise RuntimeError("mkdssp not found on PATH")
    complete = ~structure.missing_backbone
    labels = ["X"] * len(structure)
    if complete.sum() == 0:
        return "".join(labels)
    if len(structure) > 9999:
        raise RuntimeError("chains over 9999 residues do not fit the PDB format mkdssp reads")
    with tempfile.TemporaryDirectory(prefix="plmstruct-dssp-") as tmp:
        pdb_path, out_path = Path(tmp) / "in.pdb", Path(tmp) / "out.dssp"
        pdb_path.write_text(to_pdb_text(_complete_residues_only(structure), renumber=True, unknown="ALA"))
        try:
            proc = subprocess.run([exe, "--output-format", "dssp", str(pdb_path), str(out_path)],
                                  capture_output=True, text=True, timeout=timeout)
        except (OSError, subprocess.TimeoutExpired) as err:
            raise RuntimeError(f"cannot run {exe}: {err}") from err
        if proc.returncode != 0 or not out_path.exists():
            raise RuntimeError(f"mkdssp exit code {proc.returncode}: {proc.stderr.strip()[:300]}")
        rows = parse_dssp_text(out_path.read_text(), path=out_path)
    for row in rows:
        i = row.number - 1  # renumbered 1..L in the temporary file
        if 0 <= i < len(labels) and complete[i]:
            labels[i] = row.ss
    return "".join(labels)


def _complete_residues_only(structure: ProteinStructure) -> ProteinStructure:
    """Copy with every atom of incomplete residues blanked (mkdssp would skip them anyway)."""
    coords = structure.coords.copy()
    coords[structure.missing_backbone] = np.nan
    return ProteinStructure(structure.id, structure.chain, structure.path, structure.sequence, coords,
                            list(structure.residue_ids))


# ---------------------------------------------------------------------------------------------
# classic DSSP files


@dataclass(frozen=True)
class DsspRow:
    """One residue line of a classic DSSP file."""

    number: int  # author residue number
    insertion: str
    chain: str
    aa: str  # one letter; bridged cysteines (lower case in DSSP) are 'C'
    ss: str  # one of HGIEBTSPL
    ca: tuple[float, float, float]


@dataclass
class DsspChain:
    """A chain from a DSSP file: a Cα-only structure and its DSSP labels."""

    structure: ProteinStructure
    labels: str


def parse_dssp_text(text: str, *, path: object = "<string>") -> list[DsspRow]:
    """Residue lines of classic DSSP output (chain-break ``!`` lines are skipped)."""
    lines = text.splitlines()
    start = next((i for i, ln in enumerate(lines) if ln.startswith("  #  RESIDUE")), None)
    if start is None:
        raise InputError("no '  #  RESIDUE' table: not a classic DSSP file", path=path)
    header = lines[start]
    xcol = header.find("X-CA")
    chain_col = header.find("CHAIN")
    rows = []
    for lineno, line in enumerate(lines[start + 1:], start=start + 2):
        if not line.strip() or line[13:14] == "!":
            continue
        try:
            number = int(line[5:10])
            ss = line[16:17]
            if xcol >= 0:
                # coordinates are right-aligned 7-character fields ending at the header labels
                x, y, z = (float(line[xcol - 3 + 7 * k: xcol + 4 + 7 * k]) for k in range(3))
            else:
                x = y = z = float("nan")
        except (ValueError, IndexError) as err:
            raise InputError(f"line {lineno}: malformed DSSP residue line ({err})", path=path) from err
        chain = line[11:12]
        if chain_col >= 0 and line[chain_col:].strip():
            chain = line[chain_col:].strip()
        aa = line[13:14]
        aa = "C" if aa.islower() else aa
        rows.append(DsspRow(number, line[10:11].strip(), chain.strip(), aa,
                            ss if ss in SS_LETTERS and ss != " " else "L", (x, y, z)))
    return rows


def read_dssp_file(path: str | Path, chain: str | None = None) -> list[DsspChain]:
    """Read a classic DSSP file (optionally ``.gz``) with Cα coordinates, e.g. the CASP FM targets
    in ``structures_collection/casp_fm_dssp_eryk96``: one :class:`DsspChain` per chain (or only
    ``chain``), each with a Cα-only :class:`ProteinStructure` and its 9-state labels."""
    import gzip

    path = Path(path)
    if not path.is_file():
        raise InputError("no such file", path=path)
    try:
        raw = path.read_bytes()
        if raw[:2] == b"\x1f\x8b":
            raw = gzip.decompress(raw)
        text = raw.decode("utf-8")
    except (OSError, EOFError, UnicodeDecodeError) as err:
        raise InputError(f"not a readable DSSP text file ({err})", path=path) from err
    rows = parse_dssp_text(text, path=path)
    by_chain: dict[str, list[DsspRow]] = defaultdict(list)
    for row in rows:
        by_chain[row.chain].append(row)
    if chain is not None:
        if chain not in by_chain:
            raise InputError(f"chain {chain!r} not found; chains in this file: "
                             f"{', '.join(repr(c) for c in by_chain)}", path=path)
        by_chain = {chain: by_chain[chain]}
    name = path.name.removesuffix(".gz").removesuffix(".dssp").removesuffix(".cif").removesuffix(".pdb")
    out = []
    for ch, chain_rows in by_chain.items():
        ca = np.array([r.ca for r in chain_rows], dtype=np.float32)
        structure = ProteinStructure.from_ca(ca, "".join(r.aa for r in chain_rows), id=name, chain=ch,
                                             residue_ids=[f"{r.number}{r.insertion}" for r in chain_rows],
                                             path=path)
        out.append(DsspChain(structure, "".join(r.ss for r in chain_rows)))
    if not out:
        raise InputError("the DSSP file has no residues", path=path)
    return out


# ---------------------------------------------------------------------------------------------
# Python DSSP (Kabsch & Sander 1983, following DSSP 4 conventions)

_COUPLING = -27.888  # -332 * 0.42 * 0.2 (kcal/mol)
_MIN_ENERGY = -9.9
_MAX_HBOND_ENERGY = -0.5
_MIN_DISTANCE = 0.5
_CA_CUTOFF = 9.0
_MAX_PEPTIDE_BOND = 2.5


def _near_pairs(x: np.ndarray, cutoff: float, block: int = 1024) -> tuple[np.ndarray, np.ndarray]:
    """All pairs i < j with ``|x_i - x_j| < cutoff``, in row-major order (memory O(block * L))."""
    rows, cols = [], []
    for start in range(0, len(x), block):
        chunk = x[start: start + block]
        d2 = ((chunk[:, None, :] - x[None, :, :]) ** 2).sum(-1)
        i, j = np.nonzero(d2 < cutoff * cutoff)
        upper = j > i + start
        rows.append(i[upper] + start)
        cols.append(j[upper])
    if not rows:
        return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.int64)
    return np.concatenate(rows), np.concatenate(cols)


def _hbond_matrix(n: np.ndarray, h: np.ndarray, c: np.ndarray, o: np.ndarray, ca: np.ndarray,
                  no_donor: np.ndarray) -> np.ndarray:
    """(L, L) bool ``bond[donor, acceptor]``: N-H(donor) ... O=C(acceptor) with electrostatic energy
    below -0.5 kcal/mol among the donor's two lowest-energy acceptors (as DSSP). Energies are only
    computed for CA-CA < 9 A, never for donor = acceptor + 1, prolines or the first residue."""
    size = len(n)
    bond = np.zeros((size, size), dtype=bool)
    lo, hi = _near_pairs(ca, _CA_CUTOFF)
    donor, acceptor = np.concatenate([lo, hi]), np.concatenate([hi, lo])
    keep = (donor != acceptor + 1) & ~no_donor[donor]
    donor, acceptor = donor[keep], acceptor[keep]
    if len(donor) == 0:
        return bond

    def dist(a: np.ndarray, b: np.ndarray) -> np.ndarray:
        return np.sqrt(((a[donor] - b[acceptor]) ** 2).sum(-1))

    d_ho, d_hc, d_nc, d_no = dist(h, o), dist(h, c), dist(n, c), dist(n, o)
    too_close = np.minimum.reduce([d_ho, d_hc, d_nc, d_no]) < _MIN_DISTANCE
    with np.errstate(divide="ignore"):
        e = _COUPLING * (1 / d_ho - 1 / d_hc + 1 / d_nc - 1 / d_no)
    e = np.where(too_close, _MIN_ENERGY, e)
    e = np.maximum(np.round(e * 1000) / 1000, _MIN_ENERGY)
    # only the two best acceptors per donor count; filtering E < -0.5 first gives the same bonds
    good = e < _MAX_HBOND_ENERGY
    donor, acceptor, e = donor[good], acceptor[good], e[good]
    order = np.lexsort((e, donor))
    donor, acceptor = donor[order], acceptor[order]
    rank = np.arange(len(donor)) - np.searchsorted(donor, donor, side="left")
    top = rank < 2
    bond[donor[top], acceptor[top]] = True
    return bond


def _dihedral(p0: np.ndarray, p1: np.ndarray, p2: np.ndarray, p3: np.ndarray) -> np.ndarray:
    b0, b1, b2 = p0 - p1, p2 - p1, p3 - p2
    b1n = b1 / np.linalg.norm(b1, axis=-1, keepdims=True)
    v = b0 - (b0 * b1n).sum(-1, keepdims=True) * b1n
    w = b2 - (b2 * b1n).sum(-1, keepdims=True) * b1n
    x = (v * w).sum(-1)
    y = (np.cross(b1n, v) * w).sum(-1)
    return np.degrees(np.arctan2(y, x))


def python_dssp(structure: ProteinStructure) -> str:
    """DSSP labels computed in numpy (no external program); see the module docstring."""
    complete = ~structure.missing_backbone
    idx = np.flatnonzero(complete)
    labels = np.array(["X"] * len(structure), dtype="<U1")
    if len(idx) == 0:
        return "".join(labels)
    labels[idx] = _assign(structure.coords[idx].astype(np.float64),
                          np.array([structure.sequence[i] == "P" for i in idx]))
    return "".join(labels)


def _assign(bb: np.ndarray, is_pro: np.ndarray) -> np.ndarray:
    """Secondary-structure letters for complete backbone residues ``bb`` (L, 4, 3)."""
    size = len(bb)
    n, ca, c, o = bb[:, 0], bb[:, 1], bb[:, 2], bb[:, 3]
    # chain breaks: C(i-1)-N(i) longer than a peptide bond; segment ids make NoChainBreak(a, b) cheap
    brk = np.zeros(size, dtype=bool)
    brk[1:] = np.linalg.norm(c[:-1] - n[1:], axis=-1) > _MAX_PEPTIDE_BOND
    seg = np.cumsum(brk)

    def linked(a: int, b: int) -> bool:
        return 0 <= a < size and 0 <= b < size and seg[a] == seg[b]

    # amide hydrogen: N + unit(C(i-1) - O(i-1)); the first residue has H = N (zero energy)
    h = n.copy()
    co = c[:-1] - o[:-1]
    h[1:] += co / np.linalg.norm(co, axis=-1, keepdims=True)
    no_donor = is_pro.copy()
    no_donor[0] = True
    bond = _hbond_matrix(n, h, c, o, ca, no_donor)  # bond[donor, acceptor]

    ss = np.array(["L"] * size, dtype="<U1")

    # --- bridges and ladders
    bridges: list[dict] = []
    pi, pj = _near_pairs(ca, _CA_CUTOFF)  # row-major order: i ascending, then j
    ok = (pi >= 1) & (pj + 1 < size) & (pj >= pi + 3)  # mkdssp 4.2 pairs residues >= 3 apart
    pi, pj = pi[ok], pj[ok]
    ok = (seg[pi - 1] == seg[pi + 1]) & (seg[pj - 1] == seg[pj + 1])
    pi, pj = pi[ok], pj[ok]
    parallel = (bond[pi + 1, pj] & bond[pj, pi - 1]) | (bond[pj + 1, pi] & bond[pi, pj - 1])
    anti = ~parallel & ((bond[pi + 1, pj - 1] & bond[pj + 1, pi - 1]) | (bond[pj, pi] & bond[pi, pj]))
    hits = np.flatnonzero(parallel | anti)
    for k in hits:
        i, j, kind = int(pi[k]), int(pj[k]), "p" if parallel[k] else "a"
        for br in bridges:
            if br["type"] != kind or i != br["i"][-1] + 1:
                continue
            if kind == "p" and br["j"][-1] + 1 == j:
                br["i"].append(i)
                br["j"].append(j)
                break
            if kind == "a" and br["j"][0] - 1 == j:
                br["i"].append(i)
                br["j"].insert(0, j)
                break
        else:
            bridges.append({"type": kind, "i": [i], "j": [j]})
    bridges.sort(key=lambda b: b["i"][0])
    a = 0
    while a < len(bridges):  # merge ladders separated by a beta-bulge
        b = a + 1
        while b < len(bridges):
            x, y = bridges[a], bridges[b]
            ibi, iei, jbi, jei = x["i"][0], x["i"][-1], x["j"][0], x["j"][-1]
            ibj, iej, jbj, jej = y["i"][0], y["i"][-1], y["j"][0], y["j"][-1]
            gap_i = ibj - iei  # DSSP uses unsigned arithmetic: a negative gap never qualifies
            if (x["type"] != y["type"] or not linked(min(ibi, ibj), max(iei, iej))
                    or not linked(min(jbi, jbj), max(jei, jej)) or not 0 <= gap_i < 6
                    or (iei >= ibj and ibi <= iej)):
                b += 1
                continue
            gap_j = jbj - jei if x["type"] == "p" else jbi - jej
            bulge = (0 <= gap_j < 6 and gap_i < 3) or (0 <= gap_j < 3)
            if bulge:
                x["i"].extend(y["i"])
                x["j"] = x["j"] + y["j"] if x["type"] == "p" else y["j"] + x["j"]
                del bridges[b]
            else:
                b += 1
        a += 1
    for br in bridges:
        letter = "E" if len(br["i"]) > 1 else "B"
        for lo, hi in ((br["i"][0], br["i"][-1]), (br["j"][0], br["j"][-1])):
            for r in range(lo, hi + 1):
                if ss[r] != "E":
                    ss[r] = letter

    # --- n-turns (helix starts): CO(i) bonded by NH(i+n) without a chain break
    start = {}
    for stride in (3, 4, 5):
        s = np.zeros(size, dtype=bool)
        if size > stride:
            i = np.arange(size - stride)
            s[i] = bond[i + stride, i] & (seg[i] == seg[i + stride])
        start[stride] = s
    for i in range(1, size - 4):
        if start[4][i] and start[4][i - 1]:
            ss[i: i + 4] = "H"
    for i in range(1, size - 3):
        if start[3][i] and start[3][i - 1] and all(x in "LG" for x in ss[i: i + 3]):
            ss[i: i + 3] = "G"
    for i in range(1, size - 5):
        if start[5][i] and start[5][i - 1] and all(x in "LIH" for x in ss[i: i + 5]):
            ss[i: i + 5] = "I"

    # --- bends: kappa (CA(i-2)->CA(i) vs CA(i)->CA(i+2)) above 70 degrees
    bend = np.zeros(size, dtype=bool)
    if size >= 5:
        i = np.arange(2, size - 2)
        v1, v2 = ca[i] - ca[i - 2], ca[i + 2] - ca[i]
        cos = (v1 * v2).sum(-1) / (np.linalg.norm(v1, axis=-1) * np.linalg.norm(v2, axis=-1))
        kappa = np.degrees(np.arccos(np.clip(cos, -1, 1)))
        bend[i] = (kappa > 70) & (seg[i - 2] == seg[i + 2])
    for i in range(1, size - 1):
        if ss[i] != "L":
            continue
        turn = any(i >= k and start[stride][i - k] for stride in (3, 4, 5) for k in range(1, stride))
        if turn:
            ss[i] = "T"
        elif bend[i]:
            ss[i] = "S"

    # --- polyproline II: phi -75 +- 29 and psi 145 +- 29 for >= 3 consecutive residues
    phi = np.full(size, 360.0)
    psi = np.full(size, 360.0)
    if size > 1:
        ok = seg[1:] == seg[:-1]
        phi_vals = _dihedral(c[:-1], n[1:], ca[1:], c[1:])
        psi_vals = _dihedral(n[:-1], ca[:-1], c[:-1], n[1:])
        phi[1:] = np.where(ok, phi_vals, 360.0)
        psi[:-1] = np.where(ok, psi_vals, 360.0)
        phi[-1] = psi[-1] = 360.0  # DSSP does not consider the last residue
        phi[0] = psi[0] = 360.0
    in_pp = (np.abs(phi + 75) <= 29) & (np.abs(psi - 145) <= 29)
    for i in range(1, size - 3):
        if in_pp[i] and in_pp[i + 1] and in_pp[i + 2]:
            for r in range(i, i + 3):
                if ss[r] == "L":
                    ss[r] = "P"
    return ss

"""Protein structures (PDB / mmCIF, optionally gzip-compressed) read with biotite.

One :class:`ProteinStructure` is one protein chain of one model: its sequence (modified residues
mapped to their parent amino acid with biotite's 3->1 table, e.g. MSE -> M; unknown -> X), the
backbone coordinates N, CA, C, O per residue (NaN where an atom is missing), the author residue
numbers with insertion codes, and, for AlphaFold models, the per-residue pLDDT (B-factor column).

Residues are kept in file order; a residue without a CA (or any backbone atom) stays in the chain
with NaN coordinates and is flagged by :attr:`ProteinStructure.missing_ca` /
:attr:`ProteinStructure.missing_backbone`. For mmCIF files, ``seqres=True`` also inserts the
residues that the sequence scheme (``pdbx_poly_seq_scheme``) lists but that have no coordinates.
Every problem with a file raises :class:`~plmstruct.errors.InputError` naming the file.
"""

from __future__ import annotations

import gzip
import io
import warnings
import zlib
from collections.abc import Iterable
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

import numpy as np

from plmstruct.errors import InputError

#: backbone atoms stored per residue, in this order
BACKBONE_ATOMS = ("N", "CA", "C", "O")
#: file suffixes recognised as structures (each optionally followed by ``.gz``)
STRUCTURE_SUFFIXES = (".pdb", ".ent", ".pdb1", ".cif", ".mmcif")
_CIF_SUFFIXES = (".cif", ".mmcif")


@dataclass
class ProteinStructure:
    """One protein chain: sequence, backbone coordinates and residue ids (see module docstring)."""

    id: str
    chain: str
    path: Path | None
    sequence: str
    coords: np.ndarray  # (L, 4, 3) float32: N, CA, C, O; NaN where an atom is missing
    residue_ids: list[str] = field(default_factory=list)
    plddt: np.ndarray | None = None  # (L,) per-residue B-factor of AlphaFold models

    def __post_init__(self) -> None:
        self.coords = np.asarray(self.coords, dtype=np.float32)
        n = len(self.sequence)
        if self.coords.shape != (n, 4, 3):
            raise ValueError(f"coords must have shape ({n}, 4, 3), not {self.coords.shape}")
        if not self.residue_ids:
            self.residue_ids = [str(i + 1) for i in range(n)]
        if len(self.residue_ids) != n:
            raise ValueError(f"{len(self.residue_ids)} residue ids for {n} residues")
        if self.plddt is not None:
            self.plddt = np.asarray(self.plddt, dtype=np.float32)
            if self.plddt.shape != (n,):
                raise ValueError(f"plddt must have shape ({n},), not {self.plddt.shape}")

    def __len__(self) -> int:
        return len(self.sequence)

    @property
    def name(self) -> str:
        """``id`` and chain, e.g. ``1abc_A`` (``id`` alone when the chain has no name)."""
        return f"{self.id}_{self.chain}" if self.chain else self.id

    @property
    def ca(self) -> np.ndarray:
        """(L, 3) Cα coordinates (NaN rows for residues without Cα)."""
        return self.coords[:, 1]

    @property
    def missing_ca(self) -> np.ndarray:
        """(L,) True where the residue has no Cα coordinates."""
        return np.isnan(self.coords[:, 1]).any(axis=-1)

    @property
    def missing_backbone(self) -> np.ndarray:
        """(L,) True where any of N, CA, C, O is missing."""
        return np.isnan(self.coords).any(axis=(1, 2))

    def slice(self, start: int, stop: int) -> ProteinStructure:
        """Residues ``start:stop`` as a new structure (same id and chain)."""
        return ProteinStructure(self.id, self.chain, self.path, self.sequence[start:stop],
                                self.coords[start:stop].copy(), list(self.residue_ids[start:stop]),
                                None if self.plddt is None else self.plddt[start:stop].copy())

    @classmethod
    def from_ca(cls, ca: np.ndarray, sequence: str | None = None, *, id: str = "ca_trace", chain: str = "A",
                residue_ids: list[str] | None = None, path: Path | None = None) -> ProteinStructure:
        """A Cα-only structure (N, C, O are NaN), e.g. from a DSSP file or a coarse model."""
        ca = np.asarray(ca, dtype=np.float32)
        if ca.ndim != 2 or ca.shape[1] != 3:
            raise ValueError(f"ca must have shape (L, 3), not {ca.shape}")
        coords = np.full((len(ca), 4, 3), np.nan, dtype=np.float32)
        coords[:, 1] = ca
        return cls(id, chain, path, sequence if sequence is not None else "X" * len(ca), coords,
                   residue_ids or [])


# ---------------------------------------------------------------------------------------------
# reading files


def structure_id(path: str | Path) -> str:
    """File name without ``.gz`` and the structure suffix (``1abc.cif.gz`` -> ``1abc``)."""
    name = Path(path).name
    if name.lower().endswith(".gz"):
        name = name[:-3]
    for suffix in STRUCTURE_SUFFIXES:
        if name.lower().endswith(suffix):
            return name[: -len(suffix)]
    return Path(name).stem if "." in name else name


def _read_text(path: Path) -> str:
    if not path.exists():
        raise InputError("no such file", path=path)
    if path.is_dir():
        raise InputError("is a directory, not a structure file", path=path)
    try:
        raw = path.read_bytes()
        if raw[:2] == b"\x1f\x8b":
            raw = gzip.decompress(raw)
    except (OSError, EOFError, zlib.error) as err:
        raise InputError(f"corrupt or truncated gzip file ({err})", path=path) from err
    if not raw.strip():
        raise InputError("empty file", path=path)
    if b"\x00" in raw[:65536]:
        raise InputError("binary content: not a PDB or mmCIF text file", path=path)
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        try:
            return raw.decode("latin-1")
        except UnicodeDecodeError as err:  # pragma: no cover - latin-1 decodes any byte
            raise InputError("binary content: not a PDB or mmCIF text file", path=path) from err


def _is_cif(path: Path, text: str) -> bool:
    name = path.name.lower().removesuffix(".gz")
    if name.endswith(_CIF_SUFFIXES):
        return True
    if name.endswith((".pdb", ".ent", ".pdb1")):
        return False
    return text.lstrip().startswith("data_")


def _check_pdb_lines(text: str, path: Path) -> None:
    """Catch truncated ATOM/HETATM records (a file cut in the middle of a line)."""
    for lineno, line in enumerate(text.splitlines(), start=1):
        if line.startswith(("ATOM  ", "HETATM")) and len(line.rstrip()) < 54:
            raise InputError(f"line {lineno}: truncated coordinate record ({len(line.rstrip())} of "
                             "at least 54 columns); is the file cut off?", path=path)


@dataclass
class _Parsed:
    atoms: object  # biotite AtomArray of one model
    alphafold: bool
    seqres: dict[str, list[tuple[str, str, str | None]]]  # chain -> [(res_name, pdb_seq_num+ins, auth or None)]


def _parse(path: Path, model: int) -> _Parsed:
    text = _read_text(path)
    if model < 1:
        raise InputError(f"model numbers start at 1, not {model}", path=path)
    upper_head = text[:4000].upper()
    alphafold = "ALPHAFOLD" in upper_head or Path(structure_id(path)).name.startswith("AF-")
    seqres: dict[str, list[tuple[str, str, str | None]]] = {}
    try:
        if _is_cif(path, text):
            from biotite.structure.io import pdbx

            cif = pdbx.CIFFile.read(io.StringIO(text))
            block = cif.block
            if "atom_site" not in block:
                raise InputError("no atom_site category: not a coordinate mmCIF file", path=path)
            n_models = pdbx.get_model_count(cif)
            _check_model(n_models, model, path)
            atoms = pdbx.get_structure(cif, model=model, extra_fields=["b_factor"], use_author_fields=True)
            alphafold = alphafold or "ma_qa_metric" in block
            seqres = _cif_seqres(block)
        else:
            from biotite.structure.io import pdb

            _check_pdb_lines(text, path)
            pdb_file = pdb.PDBFile.read(io.StringIO(text))
            n_models = pdb_file.get_model_count()
            if n_models == 0:
                raise InputError("no ATOM/HETATM records: not a PDB or mmCIF structure file", path=path)
            _check_model(n_models, model, path)
            with warnings.catch_warnings():  # "elements were guessed from atom name"
                warnings.simplefilter("ignore", UserWarning)
                atoms = pdb_file.get_structure(model=model, extra_fields=["b_factor"])
    except InputError:
        raise
    except Exception as err:  # biotite raises many types on malformed text
        raise InputError(f"cannot parse structure ({type(err).__name__}: {err})", path=path) from err
    if len(atoms) == 0:
        raise InputError(f"model {model} has no atoms", path=path)
    return _Parsed(atoms, alphafold, seqres)


def _check_model(n_models: int, model: int, path: Path) -> None:
    if n_models == 0:
        raise InputError("no atoms: not a PDB or mmCIF structure file", path=path)
    if model > n_models:
        raise InputError(f"model {model} requested but the file has {n_models} model(s)", path=path)


def _cif_seqres(block) -> dict[str, list[tuple[str, str, str | None]]]:
    """Chain -> full polymer sequence from ``pdbx_poly_seq_scheme`` with author numbers; the third
    item is None for residues without coordinates (``auth_seq_num`` is ``?``)."""
    if "pdbx_poly_seq_scheme" not in block:
        return {}
    cat = block["pdbx_poly_seq_scheme"]
    try:
        cols = {name: cat[name].as_array(str) for name in
                ("seq_id", "mon_id", "pdb_seq_num", "auth_seq_num", "pdb_strand_id")}
    except KeyError:
        return {}
    ins = cat["pdb_ins_code"].as_array(str) if "pdb_ins_code" in cat else np.full(len(cols["seq_id"]), ".")
    out: dict[str, list[tuple[str, str, str | None]]] = {}
    seen: set[tuple[str, str]] = set()
    for seq_id, mon, num, auth, chain, icode in zip(cols["seq_id"], cols["mon_id"], cols["pdb_seq_num"],
                                                  cols["auth_seq_num"], cols["pdb_strand_id"], ins, strict=True):
        if (chain, seq_id) in seen:  # microheterogeneity: keep the first residue type
            continue
        seen.add((chain, seq_id))
        icode = "" if icode in (".", "?") else icode
        rid = f"{num}{icode}"
        out.setdefault(chain, []).append((mon, rid, None if auth in ("?", ".") else rid))
    return out


@lru_cache(maxsize=4096)
def one_letter(res_name: str) -> str:
    """One-letter code of a residue name via biotite's table (MSE -> M, ...); unknown -> ``X``."""
    from biotite.structure.info import one_letter_code

    try:
        code = one_letter_code(res_name)
    except Exception:  # names missing from the chemical component dictionary
        code = None
    return code.upper() if code and len(code) == 1 and code.isalpha() else "X"


def _protein_atoms(parsed: _Parsed, path: Path):
    import biotite.structure as struc

    atoms = parsed.atoms
    aa = atoms[struc.filter_amino_acids(atoms)]
    if len(aa) == 0:
        raise InputError("no protein chain: the structure has no amino-acid residues", path=path)
    return aa


def _chain_order(aa) -> list[str]:
    _, first = np.unique(aa.chain_id, return_index=True)
    return [str(aa.chain_id[i]) for i in sorted(first)]


def _chain_structure(aa, chain: str, path: Path, parsed: _Parsed, plddt: bool | None,
                     seqres: bool) -> ProteinStructure:
    import biotite.structure as struc

    atoms = aa[aa.chain_id == chain]
    starts = struc.get_residue_starts(atoms)
    n = len(starts)
    res_index = np.searchsorted(starts, np.arange(len(atoms)), side="right") - 1
    coords = np.full((n, 4, 3), np.nan, dtype=np.float32)
    for k, atom_name in enumerate(BACKBONE_ATOMS):
        sel = np.flatnonzero(atoms.atom_name == atom_name)[::-1]  # reversed: the first occurrence wins
        coords[res_index[sel], k] = atoms.coord[sel]
    keep = ~atoms.hetero[starts] | _peptide_bonded(coords)
    res_names = atoms.res_name[starts]
    sequence = "".join(one_letter(str(r)) for r, k in zip(res_names, keep, strict=True) if k)
    ins = atoms.ins_code[starts]
    residue_ids = [f"{r}{c}" for r, c, k in zip(atoms.res_id[starts].tolist(), ins.tolist(), keep, strict=True)
                   if k]
    if not keep.all():  # drop free amino-acid ligands (HETATM residues not bonded to the chain)
        remap = np.cumsum(keep) - 1
        atom_keep = keep[res_index]
        atoms, res_index = atoms[atom_keep], remap[res_index[atom_keep]]
        coords, n = coords[keep], int(keep.sum())
    name = structure_id(path)
    if np.isnan(coords[:, 1]).any(axis=-1).all():
        raise InputError(f"chain {chain!r} has no residue with a CA atom", path=path)
    plddt_values = None
    if plddt or (plddt is None and parsed.alphafold):
        b = atoms.b_factor.astype(np.float32)
        plddt_values = np.full(n, np.nan, dtype=np.float32)
        sel = np.flatnonzero(atoms.atom_name == "CA")[::-1]
        plddt_values[res_index[sel]] = b[sel]
        no_ca = np.isnan(plddt_values)
        if no_ca.any():  # residue without CA: mean B-factor of its atoms
            sums = np.bincount(res_index, weights=b, minlength=n)
            counts = np.bincount(res_index, minlength=n)
            plddt_values[no_ca] = (sums / np.maximum(counts, 1))[no_ca]
    result = ProteinStructure(name, chain, path, sequence, coords, residue_ids, plddt_values)
    if seqres and chain in parsed.seqres:
        result = _with_seqres(result, parsed.seqres[chain])
    return result


def _peptide_bonded(coords: np.ndarray, max_bond: float = 2.0) -> np.ndarray:
    """(L,) True where a residue's N bonds to the previous C or its C to the next N."""
    c_n = np.linalg.norm(coords[:-1, 2] - coords[1:, 0], axis=-1)  # NaN compares False
    linked = c_n < max_bond
    out = np.zeros(len(coords), dtype=bool)
    out[1:] |= linked
    out[:-1] |= linked
    return out


def _with_seqres(observed: ProteinStructure, scheme: list[tuple[str, str, str | None]]) -> ProteinStructure:
    """Insert residues listed in the sequence scheme but absent from the coordinates (NaN coords)."""
    index = {rid: i for i, rid in enumerate(observed.residue_ids)}
    scheme_ids = [auth if auth is not None else rid for _, rid, auth in scheme]
    positions = [index[r] for r in scheme_ids if r in index]
    if len(positions) != len(observed) or positions != sorted(positions):
        warnings.warn(f"{observed.path}: sequence scheme of chain {observed.chain!r} does not match the "
                      "coordinates; missing residues not inserted", stacklevel=3)
        return observed
    n = len(scheme)
    coords = np.full((n, 4, 3), np.nan, dtype=np.float32)
    plddt = None if observed.plddt is None else np.full(n, np.nan, dtype=np.float32)
    letters = []
    for k, ((mon, _, _), rid) in enumerate(zip(scheme, scheme_ids, strict=True)):
        i = index.get(rid)
        if i is None:
            letters.append(one_letter(mon))
            continue
        letters.append(observed.sequence[i])
        coords[k] = observed.coords[i]
        if plddt is not None:
            plddt[k] = observed.plddt[i]
    return ProteinStructure(observed.id, observed.chain, observed.path, "".join(letters), coords, scheme_ids,
                            plddt)


def load_chains(path: str | Path, chains: Iterable[str] | None = None, *, model: int = 1,
                plddt: bool | None = None, seqres: bool = False) -> list[ProteinStructure]:
    """Every protein chain of one model of a PDB/mmCIF file (or the named ``chains``), in file order.

    ``plddt``: None reads the B-factor as pLDDT only for AlphaFold models (detected from the title,
    the ``AF-`` file name or the ModelCIF QA category); True/False force it."""
    path = Path(path)
    parsed = _parse(path, model)
    aa = _protein_atoms(parsed, path)
    available = _chain_order(aa)
    wanted = available if chains is None else list(chains)
    for c in wanted:
        if c not in available:
            raise InputError(f"chain {c!r} not found; protein chains in this file: "
                             f"{', '.join(repr(x) for x in available)}", path=path)
    return [_chain_structure(aa, c, path, parsed, plddt, seqres) for c in wanted]


def load_structure(path: str | Path, chain: str | None = None, *, model: int = 1,
                   plddt: bool | None = None, seqres: bool = False) -> ProteinStructure:
    """One protein chain (default: the first protein chain) of model ``model`` (1-based) of a PDB or
    mmCIF file, optionally gzip-compressed. See :func:`load_chains` for ``plddt`` and the module
    docstring for ``seqres``."""
    path = Path(path)
    parsed = _parse(path, model)
    aa = _protein_atoms(parsed, path)
    available = _chain_order(aa)
    if chain is None:
        chain = available[0]
    elif chain not in available:
        raise InputError(f"chain {chain!r} not found; protein chains in this file: "
                         f"{', '.join(repr(x) for x in available)}", path=path)
    return _chain_structure(aa, chain, path, parsed, plddt, seqres)


def structure_files(folder: str | Path, *, recursive: bool = False) -> list[Path]:
    """Structure files in a folder (``.pdb .ent .cif .mmcif``, each optionally ``.gz``), sorted."""
    folder = Path(folder)
    if not folder.is_dir():
        raise InputError("no such directory", path=folder)
    pattern = "**/*" if recursive else "*"
    return sorted(p for p in folder.glob(pattern)
                  if p.is_file() and p.name.lower().removesuffix(".gz").endswith(STRUCTURE_SUFFIXES))


def load_structures(folder_or_paths: str | Path | Iterable[str | Path], chain: str | None = None, *,
                    model: int = 1, all_chains: bool = False, on_error: str = "raise",
                    recursive: bool = False, plddt: bool | None = None,
                    seqres: bool = False) -> list[ProteinStructure]:
    """Load a folder of structure files (or a list of files).

    One structure per file (``chain`` or the first protein chain), or every protein chain with
    ``all_chains=True``. ``on_error="skip"`` warns about and skips unreadable files instead of
    raising; a folder without structure files is an error either way."""
    if on_error not in ("raise", "skip"):
        raise ValueError("on_error must be 'raise' or 'skip'")
    if isinstance(folder_or_paths, str | Path):
        source = Path(folder_or_paths)
        if source.is_dir():
            paths = structure_files(source, recursive=recursive)
            if not paths:
                raise InputError("no structure files (.pdb/.ent/.cif/.mmcif, optionally .gz) in folder",
                                 path=source)
        else:
            paths = [source]
    else:
        paths = [Path(p) for p in folder_or_paths]
        if not paths:
            raise InputError("no structure files given")
    out: list[ProteinStructure] = []
    for p in paths:
        try:
            if all_chains:
                out.extend(load_chains(p, model=model, plddt=plddt, seqres=seqres))
            else:
                out.append(load_structure(p, chain, model=model, plddt=plddt, seqres=seqres))
        except InputError as err:
            if on_error == "raise":
                raise
            warnings.warn(f"skipped: {err}", stacklevel=2)
    return out


# ---------------------------------------------------------------------------------------------
# writing


_THREE = {"A": "ALA", "R": "ARG", "N": "ASN", "D": "ASP", "C": "CYS", "Q": "GLN", "E": "GLU", "G": "GLY",
          "H": "HIS", "I": "ILE", "L": "LEU", "K": "LYS", "M": "MET", "F": "PHE", "P": "PRO", "S": "SER",
          "T": "THR", "W": "TRP", "Y": "TYR", "V": "VAL", "U": "SEC", "O": "PYL"}


def to_pdb_text(structure: ProteinStructure, *, renumber: bool = True, unknown: str = "UNK") -> str:
    """Backbone-only PDB text with the HEADER and CRYST1 records that mkdssp requires.

    ``renumber`` numbers residues 1..L (no insertion codes) so that outputs map back by index;
    atoms with NaN coordinates are left out; ``unknown`` is the residue name written for ``X``
    (mkdssp ignores ``UNK`` residues, so DSSP runs write ``ALA``: only the backbone matters)."""
    if renumber and len(structure) > 9999:
        raise ValueError("PDB format numbers at most 9999 residues per chain")
    lines = ["HEADER    PROTEIN" + " " * 32 + "01-JAN-00   XXXX",
             "CRYST1    1.000    1.000    1.000  90.00  90.00  90.00 P 1           1"]
    chain = (structure.chain or "A")[0]
    serial = 1
    for i, (letter, rid) in enumerate(zip(structure.sequence, structure.residue_ids, strict=True)):
        if renumber:
            num, icode = i + 1, " "
        else:
            digits = rid.rstrip("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz")
            num, icode = int(digits), (rid[len(digits):] or " ")[:1]
        res = _THREE.get(letter, unknown)
        for k, atom in enumerate(BACKBONE_ATOMS):
            x, y, z = structure.coords[i, k]
            if np.isnan(x) or np.isnan(y) or np.isnan(z):
                continue
            lines.append(f"ATOM  {serial % 100000:5d}  {atom:<3s} {res:3s} {chain}{num % 10000:4d}{icode}   "
                         f"{x:8.3f}{y:8.3f}{z:8.3f}  1.00  0.00           {atom[0]}")
            serial += 1
    lines += [f"TER   {serial % 100000:5d}      {_THREE.get(structure.sequence[-1], unknown)} {chain}", "END"]
    return "\n".join(lines) + "\n"

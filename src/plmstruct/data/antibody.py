"""Antibody variable domains (VH, VL, VHH) located by their conserved framework motifs.

For antibody-only backbones (AntiBERTy was trained on variable regions from OAS) the in-domain
residues of a PDB chain are its variable domain. It is found by two motifs, both needed:

- framework 2: the first cysteine (Cys23) followed 8–18 residues later by ``W[VIF][RK]Q.PG`` (heavy)
  or ``W[YFL][LQH]Q[KLR]PG`` (kappa/lambda); T-cell receptors (``WYRQ``/``WYKQ``) do not match;
- framework 4: the second cysteine (Cys104) after ``[YF][YFH]``, the CDR3 (3–32 residues), then
  the J-region ``[WF]G.G``.

The domain runs from 22 residues before Cys23 (the start of framework 1 of a light chain, one residue
early for a heavy chain's Cys22; a tag before it is cut off) to 7 residues after the J-region ``G.G`` (the end of framework 4)."""

from __future__ import annotations

import re
from dataclasses import replace

from plmstruct.data.secondary_structure import SSRecord

FRAMEWORK_2 = re.compile(r"C.{7,17}(?:W[VIF][RK]Q.PG|W[YFL][LQH]Q[KLR]PG)")
FRAMEWORK_4 = re.compile(r"[YF][YFH]C.{3,32}[WF]G.G")
FRAMEWORK_1_LENGTH = 22
FRAMEWORK_4_TAIL = 7


def _core(sequence: str) -> tuple[int, int] | None:
    """Cys23 to the end of the J-region ``G.G``: the part every variable domain has in full."""
    fr2 = FRAMEWORK_2.search(sequence)
    fr4 = FRAMEWORK_4.search(sequence, fr2.end()) if fr2 else None
    return (fr2.start(), fr4.end()) if fr2 and fr4 else None


def _span(core: tuple[int, int], length: int) -> tuple[int, int]:
    return max(0, core[0] - FRAMEWORK_1_LENGTH), min(length, core[1] + FRAMEWORK_4_TAIL)


def variable_domain_span(sequence: str) -> tuple[int, int] | None:
    """``(start, end)`` (Python slice) of the first antibody variable domain, or None."""
    core = _core(sequence)
    return None if core is None else _span(core, len(sequence))


def antibody_variable_domains(records: list[SSRecord]) -> list[SSRecord]:
    """The variable domain of every antibody chain (labels cut alike), other chains left out.
    Chains are the same antibody when their Cys23-to-J-region cores are identical: kept once."""
    out, seen = [], set()
    for rec in records:
        core = _core(rec.sequence)
        if core is None or rec.sequence[core[0]:core[1]] in seen:
            continue
        seen.add(rec.sequence[core[0]:core[1]])
        start, end = _span(core, len(rec.sequence))
        out.append(replace(rec, sequence=rec.sequence[start:end], labels=rec.labels[start:end]))
    return out

"""Residue graphs and contact maps from structures (pure torch; no compiled torch_geometric extras).

- :func:`residue_graph`: nodes = residues, an undirected edge (stored in both directions, no self
  loops) between residues whose Cα atoms are closer than ``radius`` (default 8 Å); residues
  without Cα are nodes without edges.
- :func:`contact_map`: (L, L) boolean map of Cβ-Cβ distance < ``threshold`` (default 8 Å).
  :class:`~plmstruct.data.structure.ProteinStructure` keeps only N, CA, C, O, so Cβ is the
  *virtual* Cβ placed from the backbone with ideal geometry (:func:`virtual_cb`, the formula used
  by trRosetta, Yang et al. 2020, PNAS 117:1496): ``b = CA - N``, ``c = C - CA``, ``a = b x c``,
  ``CB = -0.58273431 a + 0.56802827 b - 0.54067466 c + CA``. Glycine, and any residue missing
  N or C, uses its Cα. Residues without Cα have no contacts.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import torch

from plmstruct.data.structure import ProteinStructure

if TYPE_CHECKING:
    from torch_geometric.data import Data


def _ca_tensor(structure_or_ca: ProteinStructure | np.ndarray | torch.Tensor) -> torch.Tensor:
    if isinstance(structure_or_ca, ProteinStructure):
        ca = structure_or_ca.coords[:, 1]
    else:
        ca = structure_or_ca
    ca = torch.as_tensor(np.asarray(ca) if not isinstance(ca, torch.Tensor) else ca, dtype=torch.float32)
    if ca.ndim != 2 or ca.shape[-1] != 3:
        raise ValueError(f"Cα coordinates must have shape (L, 3), not {tuple(ca.shape)}")
    return ca


_MARGIN = 1e-2  # Å: pairs this close to the cutoff are re-checked exactly


def _valid_points(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, bool]:
    """Points centred on their mean (smaller rounding in the matmul distance form) with NaN rows
    zeroed, the validity mask, and whether all points are valid."""
    valid = ~torch.isnan(x).any(-1)
    all_valid = bool(valid.all())
    if not all_valid:
        x = torch.where(valid[:, None], x, torch.zeros((), dtype=x.dtype))
        centre = x.sum(0) / valid.sum().clamp(min=1)
        return torch.where(valid[:, None], x - centre, torch.zeros((), dtype=x.dtype)), valid, all_valid
    return x - x.mean(0), valid, all_valid


def _within(x: torch.Tensor, cutoff: float) -> tuple[torch.Tensor, torch.Tensor]:
    """(L, L) bool ``|x_i - x_j| < cutoff`` (invalid points never match) and the validity mask.

    The fast matmul form of ``torch.cdist`` is used with a small margin, and pairs inside the
    margin are re-checked with exact differences, so the result equals the exact comparison."""
    x, valid, all_valid = _valid_points(x)
    dist = torch.cdist(x, x)
    close = dist < cutoff + _MARGIN
    borderline = close & (dist > cutoff - _MARGIN)
    if bool(borderline.any()):
        i, j = borderline.nonzero(as_tuple=True)
        exact = (x[i] - x[j]).norm(dim=-1) < cutoff
        close[i, j] = exact
    if not all_valid:
        close &= valid[:, None] & valid[None, :]
    return close, valid


def radius_edge_index(ca: torch.Tensor, radius: float = 8.0) -> torch.Tensor:
    """``edge_index`` (2, E) of all ordered pairs i != j with ``|ca_i - ca_j| < radius`` (both
    directions, sorted by source then target); points with NaN get no edges."""
    adj, _ = _within(ca, radius)
    adj.fill_diagonal_(False)
    return adj.nonzero().t().contiguous()


def residue_graph(structure_or_ca: ProteinStructure | np.ndarray | torch.Tensor, radius: float = 8.0, *,
                  edge_attr: bool = False) -> Data:
    """The Cα residue graph as a ``torch_geometric.data.Data`` with ``edge_index`` (2, E) and
    ``num_nodes`` = L; ``edge_attr=True`` adds the (E, 1) Cα-Cα distances."""
    from torch_geometric.data import Data

    if radius <= 0:
        raise ValueError("radius must be positive")
    ca = _ca_tensor(structure_or_ca)
    edge_index = radius_edge_index(ca, radius)
    if edge_attr:
        dist = (ca[edge_index[0]] - ca[edge_index[1]]).norm(dim=-1, keepdim=True)
        return Data(edge_index=edge_index, edge_attr=dist, num_nodes=len(ca))
    return Data(edge_index=edge_index, num_nodes=len(ca))


def virtual_cb(coords: np.ndarray, sequence: str | None = None) -> np.ndarray:
    """(L, 3) virtual Cβ from (L, 4, 3) backbone N, CA, C, O (see module docstring); Cα for
    glycine (when ``sequence`` is given) and for residues missing N or C."""
    coords = np.asarray(coords, dtype=np.float32)
    n, ca, c = coords[:, 0], coords[:, 1], coords[:, 2]
    b = ca - n
    cc = c - ca
    a = np.cross(b, cc)
    cb = -0.58273431 * a + 0.56802827 * b - 0.54067466 * cc + ca
    use_ca = np.isnan(cb).any(-1)
    if sequence is not None:
        use_ca |= np.frombuffer(sequence.encode("ascii", "replace"), dtype=np.uint8) == ord("G")
    cb[use_ca] = ca[use_ca]
    return cb


def contact_map(structure: ProteinStructure, threshold: float = 8.0) -> torch.Tensor:
    """(L, L) ``torch.bool``: virtual-Cβ distance < ``threshold`` (Cα for Gly). The diagonal is
    True for residues with coordinates; rows and columns of residues without Cα are False."""
    cb = torch.from_numpy(virtual_cb(structure.coords, structure.sequence))
    contacts, _ = _within(cb, threshold)
    return contacts

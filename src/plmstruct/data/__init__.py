"""Data layer: FASTA, secondary-structure files, structures, DSSP, residue graphs, CATH and
redundancy control.

Public names are importable from ``plmstruct.data`` directly; each submodule is imported on first
use only (so ``import plmstruct.data`` stays light: no biotite or torch_geometric at import time).
"""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS: dict[str, tuple[str, ...]] = {
    "fasta": ("SequenceRecord", "Window", "LENGTH_POLICIES", "parse_fasta", "read_fasta", "write_fasta",
              "validate_sequence", "fit_to_length", "window_owner"),
    "secondary_structure": ("SSRecord", "SS9", "SS8", "SS3", "STATES", "UNLABELLED", "IGNORE_INDEX",
                            "to_states", "label_indices", "read_three_line", "write_three_line",
                            "read_netsurfp_csv", "read_flip_ss"),
    "structure": ("ProteinStructure", "BACKBONE_ATOMS", "load_structure", "load_structures", "load_chains",
                  "structure_files", "structure_id", "one_letter", "to_pdb_text"),
    "dssp": ("dssp_labels", "python_dssp", "run_mkdssp", "mkdssp_path", "read_dssp_file", "parse_dssp_text",
             "DsspChain", "DsspRow"),
    "graph": ("residue_graph", "radius_edge_index", "contact_map", "virtual_cb"),
    "cath": ("CathDomain", "LEVELS", "level_name", "code_at", "read_clf", "read_cath_fasta", "parse_cath_header",
             "read_cath_labeled_tsv", "read_cath_label_list", "read_cath_header_list", "read_label_table",
             "cath_names", "label_counts", "split_by_label"),
    "redundancy": ("filter_similar", "RedundancyReport", "RedundancyHit", "mmseqs_path", "low_complexity_mask"),
    "paths": ("shared_data_dir", "data_file"),
}
_WHERE = {name: module for module, names in _EXPORTS.items() for name in names}

__all__ = sorted(_WHERE)


def __getattr__(name: str) -> Any:
    module = _WHERE.get(name)
    if module is None:
        raise AttributeError(f"module 'plmstruct.data' has no attribute {name!r}")
    value = getattr(importlib.import_module(f"plmstruct.data.{module}"), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))

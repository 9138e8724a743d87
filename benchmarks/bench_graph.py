"""Residue-graph building rate (proteins/min) for 300-residue chains; goal >= 10,000 per minute.

Chains are real: 300-residue windows of every chain of >= 300 resolved residues in
``../shared/data/structures_collection`` (PDB entries and AlphaFold models). Graphs are the 8 Å
Cα graphs of :func:`plmstruct.data.graph.residue_graph`, built one protein at a time on one
thread (as a data loader worker would). Run: ``python -m benchmarks.bench_graph``.
"""

from __future__ import annotations

import time
import warnings

import numpy as np
import torch

GOAL_PER_MIN = 10_000
LENGTH = 300


def _crops(max_proteins: int = 256) -> tuple[list[np.ndarray], int]:
    """Up to ``max_proteins`` real 300-residue Cα windows (non-overlapping) and the number of
    source chains they came from."""
    from plmstruct.data.paths import shared_data_dir
    from plmstruct.data.structure import load_structures

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        structures = load_structures(shared_data_dir() / "structures_collection", recursive=True,
                                     all_chains=True, on_error="skip")
    crops, sources = [], 0
    for s in structures:
        ca = s.ca[~s.missing_ca]
        if len(ca) < LENGTH:
            continue
        sources += 1
        for start in range(0, len(ca) - LENGTH + 1, LENGTH):
            crops.append(np.ascontiguousarray(ca[start: start + LENGTH]))
    return crops[:max_proteins], sources


def _rate(fn, items: list, seconds: float) -> float:
    """Items per minute of ``fn(item)`` over at least ``seconds`` (best of repeated passes)."""
    for item in items[:8]:
        fn(item)  # warm-up (imports, allocator)
    best = 0.0
    deadline = time.perf_counter() + seconds
    while time.perf_counter() < deadline:
        start = time.perf_counter()
        for item in items:
            fn(item)
        best = max(best, len(items) / (time.perf_counter() - start) * 60)
    return best


def run(seconds: float = 5.0, threads: int = 1) -> dict:
    """Measure and return the rates; prints one summary line."""
    from plmstruct.data.graph import residue_graph

    torch.set_num_threads(threads)
    crops, sources = _crops()
    tensors = [torch.from_numpy(c) for c in crops]
    edges = float(np.mean([residue_graph(t).edge_index.shape[1] for t in tensors]))
    rate = _rate(residue_graph, tensors, seconds)
    rate_attr = _rate(lambda t: residue_graph(t, edge_attr=True), tensors, seconds / 2)
    result = {
        "proteins": len(crops), "source_chains": sources, "length": LENGTH, "threads": threads,
        "mean_directed_edges": edges, "graphs_per_min": rate, "graphs_per_min_with_edge_attr": rate_attr,
        "goal_per_min": GOAL_PER_MIN, "meets_goal": rate >= GOAL_PER_MIN,
    }
    print(f"residue graph (8 A, {LENGTH} residues, {len(crops)} real crops from {sources} chains, "
          f"{threads} thread): {rate:,.0f} proteins/min ({rate_attr:,.0f} with edge_attr); "
          f"goal >= {GOAL_PER_MIN:,}/min: {'met' if rate >= GOAL_PER_MIN else 'NOT met'} "
          f"({rate / GOAL_PER_MIN:.1f}x)")
    return result


if __name__ == "__main__":
    run()

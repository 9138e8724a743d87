"""PST forward cost vs the backbone on the same batch (goal <= 1.25x), and the residue-graph
building rate (goal >= 10k proteins/min for 300-residue chains, measured by ``bench_graph``).

The batch is real: 8 chains of ``../shared/data/structures_collection`` cropped to 300 residues
(graph cropped too). Forward passes run in eval mode without gradients; time is the process CPU
time (median of interleaved repeats), which is stable on a shared machine, and wall time is reported
beside it. The PST extractor is measured at its default width (1/4 of the model width) and at the
full width of the published PST. Run: ``python -m benchmarks.bench_pst [backbone]``.
"""

from __future__ import annotations

import statistics
import sys
import warnings

import torch
from benchmarks.timing import interleaved_samples

GOAL_RATIO = 1.25
LENGTH = 300
BATCH = 8


def _batch(backbone) -> dict:
    from plmstruct.data.paths import shared_data_dir
    from plmstruct.data.structure import structure_files
    from plmstruct.pst.data import encode_items, load_graph_items

    files = structure_files(shared_data_dir() / "structures_collection" / "novozymes_pdb")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        items, _ = load_graph_items(files, alphabet=backbone.alphabet)
    long = [it.crop(0, LENGTH) for it in items if len(it) >= LENGTH][:BATCH]
    if len(long) < BATCH:
        raise RuntimeError(f"only {len(long)} chains of >= {LENGTH} residues found")
    return encode_items(backbone, long)


def _time(fns: dict, repeats: int) -> dict[str, tuple[float, float]]:
    """Median process-CPU and wall seconds of each ``fn()``, calls interleaved."""
    return {k: (statistics.median(cpu), statistics.median(wall))
            for k, (cpu, wall) in interleaved_samples(fns, repeats).items()}


def forward_ratio(spec: str, *, width_ratio: float = 0.25, repeats: int = 7, threads: int = 1) -> dict:
    """Seconds per forward of the backbone and of PST (with the graph) on one real batch."""
    from plmstruct.backbone import load_backbone
    from plmstruct.pst.extractor import ExtractorConfig
    from plmstruct.pst.model import PSTConfig, PSTModel

    torch.set_num_threads(threads)
    backbone = load_backbone(spec)
    enc = _batch(backbone)
    ids, mask, graph = enc["input_ids"], enc["attention_mask"], enc["graph"]
    reference = load_backbone(spec)  # an unwrapped copy: the plain backbone
    pst = PSTModel(backbone, PSTConfig(ExtractorConfig(width_ratio=width_ratio))).eval()
    with torch.no_grad():
        t = _time({"backbone": lambda: reference.model(input_ids=ids, attention_mask=mask),
                   "pst": lambda: pst(ids, mask, graph),
                   "pst_sequence_mode": lambda: pst(ids, mask, None)}, repeats)
    ratio = t["pst"][0] / t["backbone"][0]
    return {"backbone": spec, "batch": list(ids.shape), "extractor_width": pst.blocks[0].extractor.out_dim,
            "hidden_size": backbone.hidden_size, "threads": threads, "repeats": repeats,
            "backbone_cpu_s": round(t["backbone"][0], 4), "pst_cpu_s": round(t["pst"][0], 4),
            "pst_sequence_mode_cpu_s": round(t["pst_sequence_mode"][0], 4),
            "backbone_wall_s": round(t["backbone"][1], 4), "pst_wall_s": round(t["pst"][1], 4),
            "ratio": round(ratio, 3), "goal_ratio": GOAL_RATIO, "meets_goal": ratio <= GOAL_RATIO}


def _default_spec() -> str:
    from plmstruct.backbone import default_model_dir

    return "default" if (default_model_dir() / "model.safetensors").exists() else "antiberty"


def run(spec: str | None = None, seconds: float = 5.0) -> dict:
    """Both measurements; prints a summary line for each."""
    try:
        from benchmarks.bench_graph import run as graph_run
    except ImportError:  # run as a script from inside benchmarks/
        from bench_graph import run as graph_run

    spec = spec or _default_spec()
    results = {"forward": [forward_ratio(spec, width_ratio=r) for r in (0.25, 1.0)]}
    for r in results["forward"]:
        print(f"PST forward / backbone forward ({spec}, batch {r['batch']}, extractor width "
              f"{r['extractor_width']} of {r['hidden_size']}): {r['ratio']:.2f}x CPU time "
              f"({r['pst_cpu_s']:.3f}s vs {r['backbone_cpu_s']:.3f}s; wall {r['pst_wall_s']:.3f}s vs "
              f"{r['backbone_wall_s']:.3f}s); goal <= {GOAL_RATIO}x: {'met' if r['meets_goal'] else 'NOT met'}")
    results["graph"] = graph_run(seconds=seconds)
    return results


if __name__ == "__main__":
    run(sys.argv[1] if len(sys.argv) > 1 else None)

"""The PST part of ``plmstruct demo``: a short extractor-only pretraining on the bundled real
structures, embeddings of the backbone and of PST, and a per-residue secondary-structure probe on
the chains held out from pretraining (backbone vs PST on the same split)."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

from plmstruct.evaluation.probes import ProbeConfig, dssp_label_set, run_probe
from plmstruct.io import atomic_write_text
from plmstruct.pst.embed import EmbedConfig, embed_items, write_embeddings
from plmstruct.pst.model import PSTModel
from plmstruct.pst.pretrain import VAL_IDS, PSTPretrainConfig, default_structures, load_pst, pretrain_pst
from plmstruct.training.config import OptimConfig, TrainConfig


def demo_config(out_dir: Path, backbone: str = "default", steps: int = 300) -> PSTPretrainConfig:
    """A few-minute CPU run: extractors only, crops of 256 residues, batch 8."""
    return PSTPretrainConfig(
        backbone=backbone, mode="extractors-only", crop=256, val_fraction=0.1,
        train=TrainConfig(out_dir=out_dir / "run", max_steps=steps, batch_size=8, val_every_n_steps=None,
                          limit_val_batches=0, checkpoint_every_n_steps=20, progress=True, resume=True),
        optim=OptimConfig(lr=1e-3, warmup_steps=10, schedule="inverse_sqrt", weight_decay=0.01))


def run_demo(out_dir: Path, *, backbone: str = "default", threads: int | None = None, steps: int = 300) -> str:
    """Pretrain, embed, probe; write files under ``out_dir``; return a Markdown report section."""
    import torch

    from plmstruct.backbone import load_backbone
    from plmstruct.pst.data import load_graph_items

    if threads:
        torch.set_num_threads(threads)
    out_dir = Path(out_dir)
    export = out_dir / "export"
    metrics = pretrain_pst(demo_config(out_dir, backbone, steps), export)
    pst = load_pst(export)
    structures = default_structures()
    items, _ = load_graph_items(structures, alphabet=pst.backbone.alphabet)
    per_residue = EmbedConfig(per_residue=True)
    embeddings = {}
    plain = PSTModel(load_backbone(backbone)).eval()  # untrained PST = exactly the backbone
    for name, model in (("backbone", plain), ("pst", pst)):
        arrays = embed_items(model, items, per_residue)
        meta = {"source": str(structures), "mode": "structure", "per_residue": True,
                "sequences": {it.id: it.sequence for it in items}}
        write_embeddings(out_dir / f"{name}.npz", arrays, meta)
        embeddings[name] = (arrays, meta)
    test_ids = set((export / VAL_IDS).read_text().split())
    probe = run_probe(embeddings, dssp_label_set(structures), "ss3", replace(ProbeConfig(), seed=0), test_ids)
    atomic_write_text(out_dir / "probe_ss3.json", json.dumps(probe, indent=2))
    bb, ps = probe["results"]["backbone"], probe["results"]["pst"]
    return "\n".join([
        "## Structure-aware PLM (PST)",
        "",
        f"Extractor-only MLM pretraining of `{backbone}` on {metrics['train_chains']} real structures "
        f"(`{structures}`), {metrics['steps']} steps, {metrics['train_seconds_this_run']} s; "
        f"{metrics['val_chains']} chains held out (training seconds: this invocation only; the run resumes).",
        "",
        "| held-out masked-LM | loss | perplexity |",
        "|---|---|---|",
        f"| backbone (sequence mode) | {metrics['heldout_loss_backbone_sequence']} | "
        f"{metrics['heldout_perplexity_backbone_sequence']} |",
        f"| PST (structure pass) | {metrics['heldout_loss_pst_trained']} | "
        f"{metrics['heldout_perplexity_pst_trained']} |",
        "",
        f"Per-residue 3-state probe (linear head on frozen last-layer embeddings; DSSP of the structures; "
        f"train {bb['n_train_proteins']} / test {bb['n_test_proteins']} held-out chains):",
        "",
        "| embeddings | Q3 | majority class |",
        "|---|---|---|",
        f"| backbone | {bb['q3']:.3f} | {bb['majority_baseline']:.3f} |",
        f"| PST | {ps['q3']:.3f} | {ps['majority_baseline']:.3f} |",
        "",
        f"Files: `{export}` (PST export), `{out_dir}/backbone.npz`, `{out_dir}/pst.npz`, "
        f"`{out_dir}/probe_ss3.json`.",
        "",
    ])

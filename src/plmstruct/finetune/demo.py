"""The secondary-structure part of ``plmstruct demo``: a short 3-state LoRA run on real data,
evaluation on (samples of) the standard test sets, a prediction, and a Markdown section."""

from __future__ import annotations

import json
import time
from pathlib import Path

from plmstruct.data.fasta import SequenceRecord, write_fasta
from plmstruct.io import atomic_write_text

#: demo budget (about 2-4 minutes on 2 CPU threads with the default model)
DEMO_STEPS = 100
DEMO_TRAIN_CHAINS = 600
DEMO_TEST_CHAINS = 30
DEMO_CROP = 192


def run_demo(out_dir: Path, *, backbone: str = "default", threads: int | None = None) -> str:
    """Train, evaluate and predict under ``out_dir``; return a Markdown section describing it."""
    import torch

    from plmstruct.finetune.checkpoint import load_ss_model
    from plmstruct.finetune.data import TEST_SETS, load_test_sets, remove_test_similar, training_records
    from plmstruct.finetune.predict import (
        evaluate_sets,
        predict_probs,
        report_rows,
        write_predictions,
        write_table,
    )
    from plmstruct.finetune.train import SSTrainConfig, subsample, train_ss
    from plmstruct.finetune.tuners import TunerConfig
    from plmstruct.training.config import OptimConfig, TrainConfig

    if threads:
        torch.set_num_threads(threads)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    start = time.perf_counter()
    tests = {k: subsample(v, DEMO_TEST_CHAINS) for k, v in load_test_sets(tuple(TEST_SETS)).items()}
    train, val = training_records("netsurfp", 3)
    train, val = subsample(train, DEMO_TRAIN_CHAINS), subsample(val, 64)
    kept, report = remove_test_similar(train + val, tests, threads=threads)
    kept_ids = {r.id for r in kept}
    data = ([r for r in train if r.id in kept_ids], [r for r in val if r.id in kept_ids], report)
    cfg = SSTrainConfig(
        n_states=3, source="netsurfp", backbone=backbone, tuner=TunerConfig(method="lora"),
        optim=OptimConfig(lr=2e-3, warmup_steps=15, schedule="cosine", min_lr_ratio=0.05),
        train=TrainConfig(out_dir=out_dir / "run", max_steps=DEMO_STEPS, batch_size=8, val_every_n_steps=None,
                          checkpoint_every_n_steps=DEMO_STEPS, progress=False, num_threads=threads),
        max_len=DEMO_CROP)
    summary = train_ss(cfg, data)
    model = load_ss_model(out_dir / "run" / "model")
    model.merge()
    results = evaluate_sets(model, tests, out_dir / "eval")
    rows = [row for name, reps in results.items() for row in report_rows(name, reps)]
    write_table(rows, out_dir / "eval" / "summary.tsv")

    casp = tests["CASP12"][:3]
    fasta = out_dir / "example.fasta"
    write_fasta([SequenceRecord(r.id, r.sequence) for r in casp], fasta)
    probs = predict_probs(model, [r.sequence for r in casp])
    write_predictions([r.id for r in casp], [r.sequence for r in casp], probs, model.states,
                      out_dir / "example_predictions.tsv")
    seconds = time.perf_counter() - start

    lines = [
        "## Secondary structure: lightweight fine-tuning (LoRA in the top blocks)",
        "",
        f"- Backbone `{backbone}`; LoRA (rank {cfg.tuner.rank}) on query/key/value/output of the top third of "
        f"the blocks, backbone frozen; conv head; {summary['trainable_backbone_parameters']:,} adapter + "
        f"{summary['head_parameters']:,} head parameters trained.",
        f"- Training: {summary['train_chains']} NetSurfP-2.0 chains (a deterministic sample of "
        f"{DEMO_TRAIN_CHAINS}), {summary['steps']} steps of 8 chains cropped to {DEMO_CROP} residues, "
        f"{summary['train_seconds']:.0f} s. Redundancy: {report.summary()}.",
        f"- Evaluation on **samples** of the test sets (every n-th chain, at most {DEMO_TEST_CHAINS} per set; "
        "`plmstruct ss evaluate` runs the full sets), LoRA merged into the backbone:",
        "",
        "| test set | chains | residues | Q3 (%) | SOV'99 | SOV_refine |",
        "|---|---|---|---|---|---|",
    ]
    lines += [f"| {r['test_set']} | {r['chains']} | {r['residues']} | {r['accuracy']:.1f} | {r['sov99']:.1f} | "
              f"{r['sov_refine']:.1f} |" for r in rows if r["metric"] == "Q3"]
    lines += ["", f"- Prediction of {len(casp)} CASP12 chains (`{fasta.name}`) -> `example_predictions.tsv` "
              "(state + probabilities per residue). Tables and confusion plots: `eval/`.",
              f"- Total time {seconds:.0f} s. This is a short demo run: longer training "
              "(`plmstruct ss train`) gives higher accuracy.", ""]
    text = "\n".join(lines)
    atomic_write_text(out_dir / "report.md", text)
    atomic_write_text(out_dir / "summary.json", json.dumps(
        {"train": {k: v for k, v in summary.items() if k != "config"}, "eval": rows, "seconds": round(seconds, 1)},
        indent=2, default=str) + "\n")
    return text

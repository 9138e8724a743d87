"""``plmstruct ss``: lightweight fine-tuning for secondary structure (train, evaluate, predict, compare)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from plmstruct.cli.common import Threads, friendly_errors, set_threads
from plmstruct.errors import InputError

app = typer.Typer(no_args_is_help=True, help="Lightweight fine-tuning for secondary structure (LoRA, IA3, "
                  "bottleneck adapter; feature-extraction and full fine-tuning baselines).")
out = Console()

Method = Annotated[str, typer.Option(help="lora | ia3 | adapter | features | full")]
States = Annotated[int, typer.Option(help="3, 8 or 9 states")]
ALL_SETS = "CASP12,CB433,CB634,TEST2016,CB513"
FilterAgainst = Annotated[str, typer.Option(help="remove training chains similar to these test sets")]


def _check(method: str, states: int) -> None:
    from plmstruct.finetune.tuners import METHODS

    if method not in METHODS:
        raise InputError(f"unknown method {method!r}; choose from {', '.join(METHODS)}")
    if states not in (3, 8, 9):
        raise InputError(f"--states must be 3, 8 or 9, not {states}")


def _train_config(method: str, states: int, backbone: str, top_k: int | None, rank: int, source: str | None,
                  out_dir: Path, max_steps: int, max_minutes: float | None, batch_size: int, lr: float,
                  max_len: int, resume: bool, threads: int | None, seed: int, limit_train: int | None,
                  val_every: int, checkpoint_every: int, redundancy: str, filter_against: str = ALL_SETS,
                  progress: bool = True):
    from plmstruct.cli.common import train_config
    from plmstruct.finetune.train import SSTrainConfig
    from plmstruct.finetune.tuners import TunerConfig
    from plmstruct.training.config import OptimConfig

    _check(method, states)
    return SSTrainConfig(
        n_states=states, source=source or ("netsurfp" if states == 3 else "pools"), backbone=backbone,
        tuner=TunerConfig(method=method, top_k=top_k, rank=rank, alpha=2.0 * rank),
        optim=OptimConfig(lr=lr, warmup_steps=min(50, max(1, max_steps // 10)), schedule="cosine", min_lr_ratio=0.05),
        train=train_config(out_dir, max_steps=max_steps, batch_size=batch_size, seed=seed, resume=resume,
                           devices="auto", strategy="auto", checkpoint_every=checkpoint_every,
                           val_every=val_every, progress=progress, threads=threads),
        max_len=max_len, limit_train=limit_train, max_minutes=max_minutes, redundancy_method=redundancy,
        filter_against=tuple(_split_names(filter_against)))


def _print_summary(summary: dict) -> None:
    out.print_json(json.dumps({k: v for k, v in summary.items() if k != "config"}, default=str))


@app.command()
@friendly_errors
def train(
    method: Method = "lora",
    states: States = 3,
    backbone: Annotated[str, typer.Option(help="default | antiberty | HF id or folder | fair-esm .pt")] = "default",
    top_k: Annotated[int | None, typer.Option(help="tune the top K blocks (default: top third)")] = None,
    rank: Annotated[int, typer.Option(help="LoRA rank / adapter bottleneck width")] = 8,
    source: Annotated[str | None, typer.Option(help="netsurfp | pools | a labelled file (default: netsurfp for "
                                                     "3 states, pools otherwise)")] = None,
    out_dir: Annotated[Path, typer.Option("--out", help="run folder (checkpoints, metrics.csv, model/)")] = Path(
        "runs/ss"),
    max_steps: int = 500,
    max_minutes: Annotated[float | None, typer.Option(help="stop after this many minutes")] = None,
    batch_size: int = 8, lr: float = 1e-3,
    max_len: Annotated[int, typer.Option(help="training crop length")] = 512,
    resume: Annotated[bool, typer.Option(help="continue from the last checkpoint in OUT")] = False,
    threads: Threads = None, seed: int = 0,
    limit_train: Annotated[int | None, typer.Option(help="use at most N training chains")] = None,
    val_every: int = 200, checkpoint_every: int = 100,
    redundancy: Annotated[str, typer.Option(help="auto | mmseqs | python")] = "auto",
    filter_against: FilterAgainst = ALL_SETS,
) -> None:
    """Fine-tune a backbone + conv head on secondary-structure labels (test look-alikes removed first)."""
    from plmstruct.finetune.train import train_ss

    set_threads(threads)
    cfg = _train_config(method, states, backbone, top_k, rank, source, out_dir, max_steps, max_minutes, batch_size,
                        lr, max_len, resume, threads, seed, limit_train, val_every, checkpoint_every, redundancy,
                        filter_against)
    _print_summary(train_ss(cfg))
    out.print(f"model saved to {out_dir / 'model'}")


def _reports_table(title: str, rows: list[dict]) -> Table:
    t = Table(title=title)
    cols = ["test_set", "metric", "chains", "residues", "accuracy", "sov99", "sov_refine"]
    for c in cols:
        t.add_column(c)
    for r in rows:
        t.add_row(*(str(r.get(c, "")) for c in cols))
    return t


def _split_names(names: str) -> list[str]:
    return [n.strip() for n in names.split(",") if n.strip()]


@app.command()
@friendly_errors
def evaluate(
    model_dir: Annotated[Path, typer.Argument(help="a trained model folder (RUN/model)")],
    test_sets: Annotated[str, typer.Option(help="comma-separated: CASP12,CB433,CB634,TEST2016,CB513 "
                                                "('' for none)")] = "CASP12,CB433,CB634,TEST2016,CB513",
    file: Annotated[list[Path] | None, typer.Option(help="extra labelled file (3-line or NetSurfP CSV); repeatable")
                    ] = None,
    out_dir: Annotated[Path | None, typer.Option("--out", help="tables + plots (default MODEL_DIR/../eval)")] = None,
    limit_chains: Annotated[int | None, typer.Option(help="evaluate every n-th chain, at most N per set")] = None,
    merge: Annotated[bool, typer.Option(help="merge LoRA/IA3 into the backbone first")] = True,
    threads: Threads = None,
) -> None:
    """Q3/Q8(/Q9), SOV'99, SOV_refine, per-class precision/recall and confusion plots: one table per test set."""
    from plmstruct.finetune.checkpoint import load_ss_model
    from plmstruct.finetune.data import load_test_sets
    from plmstruct.finetune.predict import evaluate_sets, report_rows
    from plmstruct.finetune.train import subsample

    set_threads(threads)
    model = load_ss_model(model_dir)
    if merge:
        model.merge()
    sets = load_test_sets(_split_names(test_sets), file or [])
    sets = {k: subsample(v, limit_chains) for k, v in sets.items()}
    dest = out_dir or Path(model_dir).parent / "eval"
    results = evaluate_sets(model, sets, dest)
    for name, reports in results.items():
        out.print(_reports_table(name, report_rows(name, reports)))
    out.print(f"tables and confusion plots in {dest}")


@app.command()
@friendly_errors
def predict(
    fasta: Annotated[Path, typer.Argument(help="input FASTA")],
    output: Annotated[Path, typer.Option("-o", "--output", help="per-residue TSV")],
    model_dir: Annotated[Path, typer.Option("--model", help="a trained model folder (RUN/model)")] = Path(
        "runs/ss/model"),
    merge: Annotated[bool, typer.Option(help="merge LoRA/IA3 into the backbone (faster, same output)")] = True,
    threads: Threads = None,
) -> None:
    """Per-residue states and probabilities (long chains in overlapping windows, stitched)."""
    from plmstruct.data.fasta import read_fasta
    from plmstruct.finetune.checkpoint import load_ss_model
    from plmstruct.finetune.predict import predict_probs, write_predictions

    set_threads(threads)
    model = load_ss_model(model_dir)
    records = read_fasta(fasta, alphabet=model.backbone.alphabet)
    if merge:
        model.merge()
    probs = predict_probs(model, [r.sequence for r in records])
    write_predictions([r.id for r in records], [r.sequence for r in records], probs, model.states, output)
    out.print(f"{len(records)} chains, {sum(len(r.sequence) for r in records)} residues -> {output}")


@app.command()
@friendly_errors
def compare(
    methods: Annotated[str, typer.Option(help="comma-separated methods")] = "lora,features,full",
    states: States = 3,
    backbone: str = "default",
    top_k: int | None = None, rank: int = 8,
    source: Annotated[str | None, typer.Option(help="netsurfp | pools | a labelled file")] = None,
    out_dir: Annotated[Path, typer.Option("--out")] = Path("runs/ss_compare"),
    max_steps: Annotated[int, typer.Option(help="the same step budget for every method")] = 300,
    batch_size: int = 8, lr: float = 1e-3, max_len: int = 512,
    threads: Threads = None, seed: int = 0,
    limit_train: int | None = None,
    test_sets: str = ALL_SETS,
    filter_against: FilterAgainst = ALL_SETS,
    limit_chains: Annotated[int | None, typer.Option(help="evaluate at most N chains per set")] = None,
    resume: bool = False,
) -> None:
    """Train each method at the same budget (steps, batch, data, seed), evaluate all, print one table."""
    from plmstruct.finetune.checkpoint import load_ss_model
    from plmstruct.finetune.data import load_test_sets
    from plmstruct.finetune.predict import evaluate_sets, report_rows, write_table
    from plmstruct.finetune.train import prepare_data, subsample, train_ss

    set_threads(threads)
    names = _split_names(methods)
    for m in names:
        _check(m, states)
    sets = {k: subsample(v, limit_chains) for k, v in load_test_sets(_split_names(test_sets)).items()}
    rows: list[dict] = []
    data = None
    for m in names:
        run = out_dir / m
        cfg = _train_config(m, states, backbone, top_k, rank, source, run, max_steps, None, batch_size, lr, max_len,
                            resume, threads, seed, limit_train, 10**9, 100, "auto", filter_against)
        data = data or prepare_data(cfg)  # the same filtered chains for every method
        summary = train_ss(cfg, data)
        model = load_ss_model(run / "model")
        model.merge()
        for name, reports in evaluate_sets(model, sets, run / "eval").items():
            for row in report_rows(name, reports):
                rows.append({"method": m, "train_seconds": summary["train_seconds"], "steps": summary["steps"],
                             "trainable_backbone": summary["trainable_backbone_parameters"], **row})
    write_table(rows, out_dir / "compare.tsv")
    t = Table(title=f"{states}-state: " + " vs ".join(names) + f" ({max_steps} steps each)")
    cols = ["method", "test_set", "metric", "accuracy", "sov99", "sov_refine", "train_seconds", "trainable_backbone"]
    for c in cols:
        t.add_column(c)
    for r in rows:
        t.add_row(*(str(r.get(c, "")) for c in cols))
    out.print(t)
    out.print(f"table in {out_dir / 'compare.tsv'}")

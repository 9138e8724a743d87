"""``plmstruct subnetwork train|evaluate|apply|compare|sweep``: trainable subnetworks (binary masks
over frozen backbone weights that suppress one kind of structure knowledge)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from plmstruct.cli.common import BackboneOption, Threads, friendly_errors, set_threads

app = typer.Typer(no_args_is_help=True, help="Trainable subnetworks: learn, evaluate, apply and compare masks.")
out = Console()

Masks = Annotated[list[Path], typer.Argument(help="subnetwork artifact folders (OUT/mask of `train`)")]
ChainsOption = Annotated[str, typer.Option(
    help="residue-level chains: all, or antibody = only antibody variable domains from every bundled DSSP "
         "source, 40% held out (for antibody backbones such as AntiBERTy)")]
KLPositionsOption = Annotated[str | None, typer.Option(
    help="KL terms on 'masked' positions or 'all' labelled positions (default: masked)")]


@app.command()
@friendly_errors
def train(
    target: Annotated[str, typer.Option(help="helix | strand | coil (residue level) or LEVEL:LABEL for a CATH "
                                             "class/architecture/topology/superfamily, e.g. class:1")] = "helix",
    random_control: Annotated[bool, typer.Option(help="suppress a random subset of the same size instead")] = False,
    backbone: BackboneOption = "default",
    out_dir: Annotated[Path, typer.Option("--out", help="run folder; the mask is exported to OUT/mask")] = Path(
        "runs/subnetwork"),
    steps: int = 300, batch_size: int = 16,
    targets_per_batch: Annotated[int, typer.Option(help="target examples per batch (sequence level)")] = 4,
    crop: Annotated[int, typer.Option(help="random crop of long chains (residues)")] = 128,
    lr: Annotated[float, typer.Option(help="peak learning rate of the scores (OneCycle)")] = 0.1,
    tau_start: float = 3.2, tau_end: float = 0.01,
    layers: Annotated[list[int] | None, typer.Option(help="masked layers (repeatable; default: top 80%)")] = None,
    modules: Annotated[list[str] | None, typer.Option(
        help="masked linears: query key value output intermediate ffn_output (repeatable; default q/k/v/o)")] = None,
    top_fraction: float = 0.8,
    init_prob: Annotated[float, typer.Option(help="initial keep probability")] = 0.96,
    suppression: Annotated[float | None, typer.Option(help="suppression weight (default 50 residue / 10 seq)")] = None,
    maintenance: Annotated[float | None, typer.Option(help="maintenance KL weight (default 100 / 7)")] = None,
    mlm: Annotated[float | None, typer.Option(help="maintenance MLM weight (default 1.2 / 1)")] = None,
    sparsity: Annotated[float | None, typer.Option(help="sparsity weight (default 0)")] = None,
    kl_positions: KLPositionsOption = None,
    chains: ChainsOption = "all",
    limit_train: Annotated[int | None, typer.Option(help="use N training chains/domains")] = None,
    seed: int = 0,
    resume: Annotated[bool, typer.Option(help="continue from OUT/checkpoints/last.ckpt")] = False,
    threads: Threads = None,
    devices: str = "auto", strategy: str = "auto", num_nodes: int = 1,
    checkpoint_every: int = 50,
) -> None:
    """Train a subnetwork mask on the bundled real data and export it (OUT/mask)."""
    from plmstruct.subnetworks.sweep import make_config
    from plmstruct.subnetworks.train import train_subnetwork

    set_threads(threads)
    cfg = make_config(target, random_control=random_control, backbone=backbone, out_dir=out_dir, steps=steps,
                       batch_size=batch_size, targets_per_batch=targets_per_batch, crop=crop, lr=lr,
                       tau_start=tau_start, tau_end=tau_end, layers=layers, modules=modules,
                       top_fraction=top_fraction, init_prob=init_prob, suppression=suppression,
                       maintenance=maintenance, mlm=mlm, sparsity=sparsity, kl_positions=kl_positions,
                       chains=chains, limit_train=limit_train, limit_eval=None, seed=seed, resume=resume,
                       threads=threads, devices=devices, strategy=strategy, num_nodes=num_nodes,
                       checkpoint_every=checkpoint_every)
    path, metrics = train_subnetwork(cfg)
    out.print(f"mask: {path}")
    out.print_json(json.dumps(metrics))


def _eval_config(draws: int, passes: int, stochastic: bool, contacts: bool, limit_eval: int | None,
                 contact_train: int, contact_test: int, seed: int):
    from plmstruct.evaluation.contacts import ContactConfig
    from plmstruct.evaluation.perplexity import PerplexityConfig
    from plmstruct.subnetworks.evaluate import EvaluationConfig

    return EvaluationConfig(perplexity=PerplexityConfig(seed=seed, draws=draws, passes=passes),
                            contacts=ContactConfig(n_train=contact_train, n_test=contact_test) if contacts else None,
                            stochastic=stochastic, limit_eval=limit_eval)


def _load_all(masks: list[Path]) -> dict:
    from plmstruct.errors import InputError
    from plmstruct.subnetworks.artifact import load_artifact

    arts = {}
    for p in masks:
        art = load_artifact(p)
        name = art.name
        while name in arts:
            name += "'"
        arts[name] = art
    if not arts:
        raise InputError("give at least one mask folder")
    return arts


@app.command()
@friendly_errors
def evaluate(
    masks: Masks,
    out_dir: Annotated[Path, typer.Option("--out", help="folder for evaluation.json, REPORT.md and PNGs")] = Path(
        "runs/subnetwork-eval"),
    backbone: Annotated[str | None, typer.Option(help="override the backbone stored with the masks")] = None,
    draws: Annotated[int, typer.Option(help="masked copies of each held-out chain")] = 2,
    passes: Annotated[int, typer.Option(help="stochastic mask samples averaged")] = 10,
    stochastic: Annotated[bool, typer.Option(help="also evaluate the stochastic mask")] = True,
    contacts: Annotated[bool, typer.Option(help="contact precision original vs masked")] = True,
    contact_train: int = 30, contact_test: int = 20,
    limit_eval: Annotated[int | None, typer.Option(help="held-out chains/domains (default: as trained)")] = None,
    seed: int = 0,
    threads: Threads = None,
) -> None:
    """Perplexity target vs non-target, mask bite table/heatmap, Jaccard overlap, contact precision."""
    from plmstruct.subnetworks.evaluate import evaluate_artifacts, perplexity_rows, write_evaluation

    set_threads(threads)
    arts = _load_all(masks)
    results = evaluate_artifacts(arts, _eval_config(draws, passes, stochastic, contacts, limit_eval, contact_train,
                                                    contact_test, seed), backbone=backbone)
    report = write_evaluation(results, arts, out_dir)
    for row in perplexity_rows(results):
        out.print(f"{row[0]} ({row[2]}): target ppl {row[3]} -> {row[4]} ({row[5]}), non-target {row[6]} -> "
                  f"{row[7]} ({row[8]})")
    out.print(f"report: {report}")


@app.command("apply")
@friendly_errors
def apply_cmd(
    mask: Annotated[Path, typer.Argument(help="subnetwork artifact folder")],
    out_dir: Annotated[Path, typer.Option("--out", help="folder for the masked model (HF layout, safetensors)")],
    backbone: Annotated[str | None, typer.Option(help="override the backbone stored with the mask")] = None,
    threads: Threads = None,
) -> None:
    """Zero the removed weights of the backbone and save the result as an ordinary model."""
    import shutil
    import tempfile

    from plmstruct.backbone import load_backbone, save_backbone
    from plmstruct.subnetworks.artifact import apply_mask, load_artifact

    set_threads(threads)
    art = load_artifact(mask)
    bb = apply_mask(art, load_backbone(backbone or art.backbone))
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out_dir.name}.", dir=out_dir.parent))
    try:
        save_backbone(bb, tmp)
        if out_dir.exists():
            shutil.rmtree(out_dir)
        tmp.rename(out_dir)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    out.print(f"masked model ({art.removed_fraction():.2%} of the masked weights zeroed): {out_dir}")


@app.command()
@friendly_errors
def compare(
    masks: Masks,
    out_dir: Annotated[Path | None, typer.Option("--out", help="write jaccard.json/.png and the bite tables here")] = None,
) -> None:
    """Jaccard overlap of the removed weights between subnetworks (matrix)."""
    from plmstruct.evaluation.mask_report import jaccard_matrix, mask_section
    from plmstruct.io import atomic_write_text

    arts = _load_all(masks)
    names, m = jaccard_matrix({n: a.binary for n, a in arts.items()})
    matrix = {a: {b: round(float(m[i, j]), 4) for j, b in enumerate(names)} for i, a in enumerate(names)}
    out.print_json(json.dumps(matrix))
    if out_dir is not None:
        atomic_write_text(out_dir / "jaccard.json", json.dumps(matrix, indent=2))
        atomic_write_text(out_dir / "REPORT.md", mask_section({n: a.binary for n, a in arts.items()}, out_dir))
        out.print(f"report: {out_dir / 'REPORT.md'}")


@app.command()
@friendly_errors
def sweep(
    targets: Annotated[list[str], typer.Argument(help="targets: helix strand coil class:1 class:2 ...")],
    out_dir: Annotated[Path, typer.Option("--out", help="one run folder per target + REPORT.md")] = Path(
        "runs/subnetwork-sweep"),
    random_control: Annotated[bool, typer.Option(help="also train a random control of each target")] = False,
    backbone: BackboneOption = "default",
    steps: int = 300, batch_size: int = 16, crop: int = 128, lr: float = 0.1,
    chains: ChainsOption = "all",
    kl_positions: KLPositionsOption = None,
    limit_train: int | None = None,
    limit_eval: Annotated[int | None, typer.Option(help="held-out chains/domains per target")] = None,
    draws: int = 2, passes: int = 10,
    stochastic: bool = True, contacts: bool = True,
    seed: int = 0,
    resume: Annotated[bool, typer.Option(help="continue unfinished runs (finished ones are reused)")] = True,
    threads: Threads = None,
) -> None:
    """Train a list of targets (and random controls), evaluate them together, write one report."""
    from plmstruct.subnetworks.sweep import SweepConfig, run_sweep

    set_threads(threads)
    cfg = SweepConfig(targets=list(targets), random_control=random_control, backbone=backbone, steps=steps,
                      batch_size=batch_size, crop=crop, lr=lr, chains=chains, kl_positions=kl_positions,
                      limit_train=limit_train, limit_eval=limit_eval, seed=seed, resume=resume, threads=threads,
                      evaluation=_eval_config(draws, passes, stochastic, contacts, limit_eval, 30, 20, seed))
    report, _ = run_sweep(cfg, out_dir)
    out.print(f"report: {report}")

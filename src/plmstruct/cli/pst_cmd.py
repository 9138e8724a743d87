"""``plmstruct pst pretrain|embed`` and the top-level ``plmstruct probe``."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from plmstruct.cli.common import BackboneOption, Threads, friendly_errors, set_threads

app = typer.Typer(no_args_is_help=True, help="Structure-aware PLM (PST): pretrain, embed.")
out = Console()



@app.command()
@friendly_errors
def pretrain(
    structures: Annotated[Path | None, typer.Option(
        help="folder of PDB/mmCIF files (default: the bundled structures_collection)")] = None,
    backbone: BackboneOption = "default",
    mode: Annotated[str, typer.Option(help="extractors-only (backbone frozen) or full")] = "extractors-only",
    out_dir: Annotated[Path, typer.Option(help="run folder (checkpoints, metrics.csv)")] = Path("runs/pst"),
    export: Annotated[Path | None, typer.Option(
        help="write the small PST export (pst.json + safetensors) here")] = None,
    steps: int = 300,
    batch_size: int = 8,
    lr: float = 1e-3,
    warmup: Annotated[int, typer.Option(help="linear warmup steps, then inverse-sqrt decay")] = 30,
    crop: Annotated[int, typer.Option(
        help="random crop length (capped at the model limit); the graph is cropped too")] = 512,
    radius: Annotated[float, typer.Option(help="residue-graph radius (Å, Cα-Cα)")] = 8.0,
    extractor_dim: Annotated[int | None, typer.Option(
        help="GIN width (default: 1/4 of the model width; the published PST uses the full width)")] = None,
    val_fraction: Annotated[float, typer.Option(help="chains held out for validation")] = 0.1,
    seed: int = 0,
    resume: Annotated[bool, typer.Option(help="continue from the last checkpoint in OUT_DIR")] = False,
    devices: Annotated[str, typer.Option(help="auto, a count, or a list")] = "auto",
    strategy: Annotated[str, typer.Option(help="auto or ddp")] = "auto",
    num_nodes: int = 1,
    threads: Threads = None,
    val_every: int = 50,
    checkpoint_every: int = 50,
) -> None:
    """Pretrain PST extractors (or the whole model) with masked-LM on structures."""
    from plmstruct.cli.common import train_config
    from plmstruct.pst.extractor import ExtractorConfig
    from plmstruct.pst.model import PSTConfig
    from plmstruct.pst.pretrain import PSTPretrainConfig, pretrain_pst
    from plmstruct.training.config import OptimConfig

    cfg = PSTPretrainConfig(
        backbone=backbone, structures=structures, mode=mode, crop=crop, val_fraction=val_fraction,
        pst=PSTConfig(extractor=ExtractorConfig(hidden_dim=extractor_dim), radius=radius),
        optim=OptimConfig(lr=lr, warmup_steps=warmup, schedule="inverse_sqrt", weight_decay=0.01),
        train=train_config(out_dir, max_steps=steps, batch_size=batch_size, seed=seed, resume=resume,
                           devices=devices, strategy=strategy, num_nodes=num_nodes,
                           checkpoint_every=checkpoint_every, val_every=val_every, threads=threads))
    metrics = pretrain_pst(cfg, export)
    out.print_json(json.dumps({k: v for k, v in metrics.items() if k != "optim"}))


@app.command()
@friendly_errors
def embed(
    source: Annotated[Path, typer.Argument(
        help="folder of PDB/mmCIF files (structure mode) or a FASTA file (sequence mode)")],
    output: Annotated[Path, typer.Option("--out", "-o", help="output .npz or .parquet, keyed by id")],
    checkpoint: Annotated[Path | None, typer.Option(
        help="PST export folder (without it: the untrained PST = exactly the backbone)")] = None,
    backbone: Annotated[str | None, typer.Option(
        help="backbone (default: 'default'; with --checkpoint: the checkpoint's reference)")] = None,
    layers: Annotated[str, typer.Option(help="last, or all (every layer concatenated)")] = "last",
    per_residue: Annotated[bool, typer.Option(help="per-residue (L, D) arrays, not mean-pooled (D,)")] = False,
    average_sequence: Annotated[bool, typer.Option(
        help="average the structure pass with the sequence pass")] = False,
    batch_size: int = 8,
    overlap: Annotated[int, typer.Option(help="window overlap for chains longer than the model")] = 64,
    resume: Annotated[bool, typer.Option(help="keep the ids already in OUT; embed only the others")] = False,
    device: Annotated[str, typer.Option(help="auto, cpu or cuda")] = "auto",
    threads: Threads = None,
) -> None:
    """Per-residue or per-protein embeddings from PST (structures) or its sequence mode (FASTA)."""
    from plmstruct.backbone.device import best_device
    from plmstruct.backbone.loader import load_backbone
    from plmstruct.pst.embed import EmbedConfig, embed_to_file
    from plmstruct.pst.model import PSTModel
    from plmstruct.pst.pretrain import backbone_reference, load_pst

    set_threads(threads)
    dev = best_device() if device == "auto" else device
    if checkpoint is not None:
        pst = load_pst(checkpoint, device=dev, backbone=backbone)
        reference = backbone or json.loads((checkpoint / "pst.json").read_text())["backbone"]
        ref = {"checkpoint": str(checkpoint.resolve()), "backbone": reference}
    else:
        pst = PSTModel(load_backbone(backbone or "default", device=dev)).eval()
        ref = {"checkpoint": None, "backbone": backbone_reference(backbone or "default")}
    cfg = EmbedConfig(layers=layers, per_residue=per_residue, average_sequence=average_sequence,
                      batch_size=batch_size, overlap=overlap)
    meta = embed_to_file(source, pst, output, cfg, model_ref=ref, resume=resume)
    skipped = f"; skipped {len(meta['skipped'])}" if meta["skipped"] else ""
    out.print(f"{meta['count']} embeddings ({meta['mode']} mode, dim {meta['dim']}, "
              f"{'per residue' if per_residue else 'per protein'}) -> {output}{skipped}")


@friendly_errors
def probe(
    embeddings: Annotated[list[str], typer.Argument(
        help="embedding files (.npz/.parquet), optionally NAME=PATH")],
    labels: Annotated[str, typer.Option(
        help="dssp:FOLDER, scop-class:FOLDER, scop-fold[:FOLDER], ec[:FOLDER] or a TSV id<TAB>label[,label]")],
    task: Annotated[str | None, typer.Option(
        help="multiclass, multilabel, ss3 or ss8 (default: the label set's)")] = None,
    head: Annotated[str, typer.Option(help="linear or mlp")] = "linear",
    test_fraction: float = 0.2,
    test_ids: Annotated[Path | None, typer.Option(
        help="file of ids (one per line) forming the test set, e.g. EXPORT/val_ids.txt of `pst pretrain`")] = None,
    seed: int = 0,
    min_per_class: Annotated[int, typer.Option(help="drop classes/labels with fewer labelled proteins")] = 5,
    epochs: Annotated[int, typer.Option(help="epochs of per-protein heads")] = 300,
    residue_steps: Annotated[int, typer.Option(help="minibatch steps of per-residue heads")] = 1500,
    resume: Annotated[bool, typer.Option(
        help="skip the run when --out already holds results for the same inputs")] = False,
    save: Annotated[Path | None, typer.Option("--out", "-o", help="write the results as JSON")] = None,
    threads: Threads = None,
) -> None:
    """Train linear/MLP heads on frozen embeddings (e.g. backbone vs PST) on one shared split."""
    from plmstruct.errors import InputError
    from plmstruct.evaluation.probes import ProbeConfig, resolve_labels, run_probe
    from plmstruct.io import atomic_write_text
    from plmstruct.pst.embed import read_embeddings

    set_threads(threads)
    named: dict[str, Path] = {}
    for spec in embeddings:
        name, sep, path = spec.partition("=")
        p = Path(path if sep else spec)
        named[name if sep else p.stem] = p
    inputs = {"embeddings": {k: str(v) for k, v in named.items()}, "labels": labels, "task": task, "head": head,
              "seed": seed, "test_fraction": test_fraction, "test_ids": str(test_ids) if test_ids else None,
              "min_per_class": min_per_class, "epochs": epochs, "residue_steps": residue_steps}
    if resume and save is not None and save.exists():
        previous = json.loads(save.read_text())
        if previous.get("inputs") == inputs:
            out.print(f"results already in {save}")
            _print_results(previous)
            return
    loaded = {name: read_embeddings(path) for name, path in named.items()}
    cfg = ProbeConfig(head=head, test_fraction=test_fraction, seed=seed, min_per_class=min_per_class,
                      epochs=epochs, residue_steps=residue_steps)
    fixed = None
    if test_ids is not None:
        if not test_ids.is_file():
            raise InputError("no such file", path=test_ids)
        fixed = {line.strip() for line in test_ids.read_text().splitlines() if line.strip()}
    result = run_probe(loaded, resolve_labels(labels), task, cfg, fixed)
    result["inputs"] = inputs
    _print_results(result)
    if save is not None:
        atomic_write_text(save, json.dumps(result, indent=2))


def _print_results(result: dict) -> None:
    table = Table(title=f"{result['task']} probe ({result['head']} head): {result['labels']}")
    rows = result["results"]
    metrics = list(next(iter(rows.values())))
    table.add_column("embeddings")
    for m in metrics:
        table.add_column(m, justify="right")
    for name, vals in rows.items():
        table.add_row(name, *(str(vals[m]) for m in metrics))
    out.print(table)


top_level_commands = [probe]

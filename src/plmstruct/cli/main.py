"""The ``plmstruct`` command line (typer). Each mission has its own sub-command group."""

from __future__ import annotations

import json
import os
import platform
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from plmstruct.cli.common import friendly_errors

app = typer.Typer(help="plmstruct: find, inject and tune structural knowledge in protein language models.",
                  no_args_is_help=True, pretty_exceptions_show_locals=False)
out = Console()


@app.command()
@friendly_errors
def info() -> None:
    """Print versions, the compute device, and the available backbones and datasets."""
    import lightning
    import peft
    import torch
    import torch_geometric
    import transformers

    import plmstruct
    from plmstruct.backbone import ESM2_HUB_IDS, KNOWN_NAMES, default_model_dir
    from plmstruct.backbone.device import best_device, lightning_precision
    from plmstruct.data.paths import shared_data_dir

    t = Table(title="plmstruct", show_header=False)
    for name, mod in [("plmstruct", plmstruct), ("torch", torch), ("transformers", transformers), ("peft", peft),
                      ("lightning", lightning), ("torch_geometric", torch_geometric)]:
        t.add_row(name, mod.__version__)
    t.add_row("python", platform.python_version())
    t.add_row("device", f"{best_device()} (precision {lightning_precision()}, {torch.get_num_threads()} threads)")
    t.add_row("HF_HUB_OFFLINE", os.environ.get("HF_HUB_OFFLINE", "unset"))
    default_ok = (default_model_dir() / "model.safetensors").exists()
    t.add_row("backbones", ", ".join(KNOWN_NAMES) + f" (default present: {default_ok}); any of "
              + ", ".join(i.split('/')[1] for i in ESM2_HUB_IDS) + " from the HF cache or a folder; fair-esm .pt")
    try:
        root = shared_data_dir()
        t.add_row("data", str(root))
        for sub in sorted(p.name for p in root.iterdir() if p.is_dir()):
            t.add_row("", sub)
    except Exception as err:  # noqa: BLE001
        t.add_row("data", f"not found ({err})")
    out.print(t)


@app.command()
@friendly_errors
def pretrain(
    out_dir: Annotated[Path, typer.Option(help="run folder (checkpoints, metrics.csv)")] = Path("runs/pretrain"),
    export: Annotated[Path | None, typer.Option(help="write the trained model (safetensors + card) here")] = None,
    layers: int = 6, hidden: int = 320, heads: int = 20,
    crop: Annotated[int, typer.Option(help="random crop length of long chains")] = 512,
    steps: int = 6000, batch_size: int = 16, lr: float = 1e-3, warmup: int = 300, seed: int = 0,
    limit_sequences: Annotated[int | None, typer.Option(help="train on the first N sequences only")] = None,
    resume: Annotated[bool, typer.Option(help="continue from the last checkpoint in OUT_DIR")] = False,
    devices: str = "auto", strategy: str = "auto", num_nodes: int = 1,
    threads: Annotated[int | None, typer.Option(help="torch CPU threads")] = None,
    val_every: int = 500, checkpoint_every: int = 100,
    init: Annotated[str | None, typer.Option(
        help="continue pretraining this ESM model (default, a folder or a hub id) instead of starting from "
             "scratch; its size overrides --layers/--hidden/--heads")] = None,
) -> None:
    """MLM-pretrain an ESM-2-architecture model (from scratch, or continued with --init) on the bundled real sequences."""
    from plmstruct.backbone.pretrain import PretrainConfig
    from plmstruct.backbone.pretrain import pretrain as run
    from plmstruct.cli.common import train_config
    from plmstruct.training.config import OptimConfig

    cfg = PretrainConfig(num_layers=layers, hidden_size=hidden, num_heads=heads, crop=crop,
                         limit_sequences=limit_sequences, init=init,
                         optim=OptimConfig(lr=lr, warmup_steps=warmup, schedule="linear", min_lr_ratio=0.1),
                         train=train_config(out_dir, max_steps=steps, batch_size=batch_size, seed=seed, resume=resume,
                                            devices=devices, strategy=strategy, num_nodes=num_nodes,
                                            checkpoint_every=checkpoint_every, val_every=val_every, threads=threads))
    metrics = run(cfg, export)
    out.print_json(json.dumps({k: v for k, v in metrics.items() if k not in ("train", "optim")}))


def _register_subcommands() -> None:
    from plmstruct.cli import demo_cmd, finetune_cmd, pst_cmd, subnetwork_cmd

    app.add_typer(subnetwork_cmd.app, name="subnetwork",
                  help="Trainable subnetworks: masks that find where a model keeps one kind of structure knowledge.")
    app.add_typer(pst_cmd.app, name="pst",
                  help="Structure-aware PLM (PST): residue-graph GIN extractors inside the attention blocks.")
    app.add_typer(finetune_cmd.app, name="ss",
                  help="Secondary structure (3/8/9 states): LoRA, IA3, adapters, feature extraction, full tuning.")
    app.command("demo")(demo_cmd.demo)
    for extra in getattr(pst_cmd, "top_level_commands", []):
        app.command(extra.__name__.replace("_", "-"))(extra)


_register_subcommands()

if __name__ == "__main__":
    app()

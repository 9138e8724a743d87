"""``plmstruct demo``: the three missions end to end on one backbone and the bundled real data,
in a few CPU minutes, with one Markdown report."""

from __future__ import annotations

import importlib
import platform
import time
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from plmstruct.cli.common import friendly_errors

out = Console()

#: part name -> module with ``run_demo(out_dir, *, backbone, threads) -> str`` (a Markdown section)
PARTS = {
    "subnetwork": "plmstruct.subnetworks.demo",
    "pst": "plmstruct.pst.demo",
    "ss": "plmstruct.finetune.demo",
}


def _header(backbone: str, threads: int) -> str:
    import torch

    from plmstruct.backbone import load_backbone

    bb = load_backbone(backbone)
    n = sum(p.numel() for p in bb.model.parameters())
    return "\n".join([
        "# plmstruct demo report",
        "",
        f"Backbone `{backbone}` ({bb.family}, {bb.num_layers} layers x {bb.hidden_size}, {n:,} parameters); "
        f"torch {torch.__version__}, {threads} CPU threads, Python {platform.python_version()}. "
        "Real weights and real data only; short runs sized for a CPU (see README for the full-size numbers).",
        "",
    ])


@friendly_errors
def demo(
    out_dir: Annotated[Path, typer.Option("--out", help="folder for the report and every artifact")] = Path(
        "outputs/demo"),
    backbone: Annotated[str, typer.Option(help="backbone spec (default: the embedded model)")] = "default",
    only: Annotated[list[str] | None, typer.Option(
        help="run only these parts (subnetwork, pst, ss); repeatable")] = None,
    threads: Annotated[int | None, typer.Option(help="torch CPU threads (default: all cores)")] = None,
) -> None:
    """Run the three missions (subnetwork probe, PST, secondary-structure adapters) on real data
    and write OUT/REPORT.md."""
    import os

    import torch

    from plmstruct.errors import InputError
    from plmstruct.io import atomic_write_text

    parts = only or list(PARTS)
    unknown = [p for p in parts if p not in PARTS]
    if unknown:
        raise InputError(f"unknown demo part(s) {', '.join(unknown)}; choose from {', '.join(PARTS)}")
    n_threads = threads or os.cpu_count() or 1
    torch.set_num_threads(n_threads)
    out_dir.mkdir(parents=True, exist_ok=True)
    sections = [_header(backbone, n_threads)]
    for part in parts:
        out.rule(f"demo: {part}")
        start = time.time()
        module = importlib.import_module(PARTS[part])
        section = module.run_demo(out_dir / part, backbone=backbone, threads=n_threads)
        sections.append(section.rstrip() + f"\n\n_{part}: {time.time() - start:.0f} s._\n")
        atomic_write_text(out_dir / "REPORT.md", "\n".join(sections))
    out.print(f"report: {out_dir / 'REPORT.md'}")

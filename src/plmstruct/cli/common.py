"""Shared CLI plumbing: clear errors (exit code 2) for bad input, rich console, train options."""

from __future__ import annotations

import functools
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any, TypeVar

import typer
from rich.console import Console
from rich.markup import escape

from plmstruct.errors import InputError
from plmstruct.training.config import TrainConfig

F = TypeVar("F", bound=Callable[..., Any])
console = Console(stderr=True)

#: options shared by the command groups
Threads = Annotated[int | None, typer.Option(help="torch CPU threads")]
BackboneOption = Annotated[str, typer.Option(help="backbone: default, antiberty, tiny-esm, an ESM-2 hub id, "
                                                  "an HF folder or a fair-esm .pt")]


def set_threads(threads: int | None) -> None:
    """``torch.set_num_threads(threads)`` when given (else torch's default)."""
    if threads:
        import torch

        torch.set_num_threads(threads)


def friendly_errors(fn: F) -> F:
    """Turn :class:`InputError` (and missing files) into one red line and exit code 2."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except InputError as err:
            # soft_wrap: one line however long (paths are not broken); escape: '[...]' in user text is
            # not rich markup
            console.print(f"[bold red]error:[/] {escape(str(err))}", highlight=False, soft_wrap=True)
            raise typer.Exit(code=2) from None
        except FileNotFoundError as err:
            console.print(f"[bold red]error:[/] {escape(str(err.filename or err))}: no such file or directory",
                          highlight=False, soft_wrap=True)
            raise typer.Exit(code=2) from None

    return wrapper  # type: ignore[return-value]


def train_config(out_dir: Path, *, max_steps: int, batch_size: int, seed: int, resume: bool, devices: str,
                 strategy: str, num_nodes: int = 1, precision: str = "auto", checkpoint_every: int = 100,
                 val_every: int | None = None, progress: bool = True, threads: int | None = None) -> TrainConfig:
    """Build a :class:`TrainConfig` from the common CLI options."""
    dev: int | str = int(devices) if devices.isdigit() else devices
    return TrainConfig(out_dir=out_dir, max_steps=max_steps, batch_size=batch_size, seed=seed, resume=resume,
                       devices=dev, strategy=strategy, num_nodes=num_nodes, precision=precision,
                       checkpoint_every_n_steps=checkpoint_every, val_every_n_steps=val_every,
                       progress=progress and sys.stderr.isatty(), num_threads=threads)

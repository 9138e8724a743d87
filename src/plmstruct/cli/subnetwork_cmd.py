"""CLI group (filled in by its mission)."""

import typer

app = typer.Typer(no_args_is_help=True)

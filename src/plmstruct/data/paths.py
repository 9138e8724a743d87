"""Where the bundled real data lives: ``$PLMSTRUCT_DATA`` or ``../shared/data`` beside the project."""

from __future__ import annotations

import os
from pathlib import Path

from plmstruct.errors import InputError


def shared_data_dir() -> Path:
    """Root of the shared real data (see ``../shared/README.md``)."""
    env = os.environ.get("PLMSTRUCT_DATA")
    candidates = [Path(env)] if env else []
    here = Path(__file__).resolve()
    candidates += [p / "shared" / "data" for p in here.parents]
    candidates.append(Path.cwd().parent / "shared" / "data")
    for c in candidates:
        if (c / "secondary_structure").is_dir():
            return c
    raise InputError("shared data not found: set PLMSTRUCT_DATA to the folder holding "
                     "secondary_structure/, cath/, structures_collection/ ...")


def data_file(*parts: str) -> Path:
    """A file under :func:`shared_data_dir`, with a clear error when it is missing."""
    path = shared_data_dir().joinpath(*parts)
    if not path.exists():
        raise InputError("bundled data file missing", path=path)
    return path

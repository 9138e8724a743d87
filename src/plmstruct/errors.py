"""Errors raised for bad user input: one clear message naming file, record and position."""

from __future__ import annotations


class InputError(ValueError):
    """Bad user input (file, record or value). The CLI turns it into a message and exit code 2."""

    def __init__(self, message: str, *, path: object | None = None, record: str | None = None,
                 position: int | None = None) -> None:
        where = []
        if path is not None:
            where.append(f"{path}")
        if record is not None:
            where.append(f"record '{record}'")
        if position is not None:
            where.append(f"position {position}")
        self.path, self.record, self.position = path, record, position
        super().__init__(f"{': '.join(where)}: {message}" if where else message)

"""Errors the CLI turns into one-line messages instead of tracebacks."""
from __future__ import annotations

from pathlib import Path


class MosaicItError(Exception):
    """A failure the user can act on; the CLI prints it on one line and exits 2."""


class InputFileError(MosaicItError):
    """A whole input file is unusable; names the file and, where known, the line."""

    def __init__(self, path: str | Path, message: str, line: int | None = None) -> None:
        self.path = str(path)
        self.line = line
        self.reason = message
        where = f"{self.path}:{line}" if line is not None else self.path
        super().__init__(f"{where}: {message}")


class ConfigError(MosaicItError):
    """params.yaml (or an override) does not describe a valid configuration."""

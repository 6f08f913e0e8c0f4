"""What several commands share: refusing an output file that exists."""

from __future__ import annotations

from os import PathLike
from pathlib import Path

from softreg.errors import OutputExistsError


def refuse_existing(path: str | PathLike[str] | None, force: bool) -> None:
    if path is not None and Path(path).exists() and not force:
        raise OutputExistsError(f"{path}: exists; use --force to overwrite it")

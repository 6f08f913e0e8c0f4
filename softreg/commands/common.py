"""What several commands share: refusing an output file that exists, and a run's storage options."""

from __future__ import annotations

from os import PathLike
from pathlib import Path
from typing import Any

from softreg.errors import ConfigError, OutputExistsError


def refuse_existing(path: str | PathLike[str] | None, force: bool) -> None:
    if path is not None and Path(path).exists() and not force:
        raise OutputExistsError(f"{path}: exists; use --force to overwrite it")


def saved_storage_options(run_dir: str | PathLike[str]) -> dict[str, Any] | None:
    """The ``data.storage_options`` a run was trained with (None: none, or a run without a
    config): ``evaluate --data`` and ``predict --input`` open URLs with them."""
    from softreg import rundir
    from softreg.config import read_yaml

    try:
        data = read_yaml(Path(run_dir) / rundir.CONFIG).get("data")
    except ConfigError:
        return None
    options = data.get("storage_options") if isinstance(data, dict) else None
    return options if isinstance(options, dict) else None

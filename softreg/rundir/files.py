"""Atomic writes and strict JSON: every file of a run directory goes through here."""

from __future__ import annotations

import io
import json
import math
import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO, Any

import numpy as np

from softreg.errors import RunDirError, cannot_write


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask

@contextmanager
def atomic_open(path: str | os.PathLike[str], mode: str = "w", **kwargs: Any) -> Iterator[IO[Any]]:
    """Write to a temporary file beside ``path``, then rename it onto ``path``.

    On any exception the temporary file is removed and ``path`` is left as it was.
    """
    path = Path(path)
    try:
        descriptor, temporary = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
        os.fchmod(descriptor, 0o666 & ~_umask())  # mkstemp's 0600 would hide results from other users
    except OSError as error:
        raise cannot_write(path, error) from None
    try:
        with os.fdopen(descriptor, mode, **kwargs) as handle:
            yield handle
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temporary, path)
    except BaseException as error:
        Path(temporary).unlink(missing_ok=True)
        if isinstance(error, OSError):
            raise cannot_write(path, error) from None
        raise

def write_text(path: str | os.PathLike[str], content: str) -> None:
    with atomic_open(path, "w", encoding="utf-8", newline="") as handle:
        handle.write(content)

def write_json(path: str | os.PathLike[str], document: object) -> None:
    write_text(path, json_text(document) + "\n")

def json_text(document: object, indent: int | None = 2) -> str:
    """Strict JSON: numpy values as plain ones, and NaN or infinite numbers as null (JSON has neither)."""
    return json.dumps(finite(document), indent=indent, allow_nan=False)

def finite(value: Any) -> Any:
    """``value`` with numpy scalars and arrays made plain, and non-finite floats replaced by None."""
    if isinstance(value, dict):
        return {key: finite(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [finite(item) for item in value]
    if isinstance(value, np.ndarray):
        return finite(value.tolist())
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, (str, int, float, bool)) or value is None:
        return value
    return str(value)

def write_npz(path: str | os.PathLike[str], **arrays: Any) -> None:
    buffer = io.BytesIO()
    np.savez(buffer, **arrays)
    with atomic_open(path, "wb") as handle:
        handle.write(buffer.getvalue())

def read_json_object(path: str | os.PathLike[str]) -> dict[str, Any]:
    """A run directory's JSON file as a dict; a missing or broken one is a RunDirError."""
    try:
        document = json.loads(Path(path).read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise RunDirError(f"{path}: missing; the run directory is incomplete") from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
        raise RunDirError(f"{path}: not valid JSON ({error})") from None
    if not isinstance(document, dict):
        raise RunDirError(f"{path}: expected a JSON object")
    return document

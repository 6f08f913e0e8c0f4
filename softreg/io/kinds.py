"""Which reader a source needs: the one place that decides it (content sniffing included).

- ``builtin:NAME``: scikit-learn's bundled sets (no download), NAME in `BUILTINS`;
- Parquet: a ``.parquet`` (or ``.pq``) file, or a folder (of ``*.parquet`` files);
- ``.npz`` with ``X`` and ``y`` (and optionally ``feature_names``);
- svmlight/libsvm text: a `SVMLIGHT_SUFFIXES` suffix, or a file whose suffix is not a
  delimited one (`DELIMITED_SUFFIXES`) and whose first lines look like svmlight;
- anything else, standard input (``-``) included: delimited text (``.tsv``/``.tab`` default to tabs).

A URL (`softreg.io.remote`) is told by its name alone, less a compression suffix (``.csv.gz``
is delimited text), and a folder by a listing; its content is never sniffed.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

from softreg.errors import DataError
from softreg.io import remote

BUILTIN_PREFIX = "builtin:"
BUILTINS = ("iris", "digits", "wine", "breast_cancer")
DELIMITED_SUFFIXES = {".csv": None, ".tsv": "\t", ".tab": "\t", ".txt": None}
SVMLIGHT_SUFFIXES = {".svm", ".svmlight", ".libsvm", ".svmlite"}
PARQUET_SUFFIXES = (".parquet", ".pq")
KINDS = ("builtin", "parquet", "npz", "svmlight", "delimited")

_SVMLIGHT_LINE = re.compile(r"^\s*[-+\w.]+(\s+(qid:\S+|\d+:\S+))+\s*(#.*)?$")


def source_kind(source: str) -> str:
    """``builtin``, ``parquet``, ``npz``, ``svmlight`` or ``delimited``: which reader ``source`` goes
    to, by its name and, for a file whose suffix names no format, by its first lines."""
    if source.startswith(BUILTIN_PREFIX):
        return "builtin"
    if source == "-":
        return "delimited"
    if is_parquet(source):
        return "parquet"
    suffix = Path(remote.plain_name(source)).suffix.lower()
    if suffix == ".npz":
        return "npz"
    if suffix in SVMLIGHT_SUFFIXES:
        return "svmlight"
    if suffix not in DELIMITED_SUFFIXES and not remote.is_url(source) and looks_like_svmlight(Path(source)):
        return "svmlight"
    return "delimited"


def is_parquet(source: str) -> bool:
    """Whether a source names Parquet: a ``.parquet``/``.pq`` file, or a folder."""
    suffix = Path(remote.plain_name(source)).suffix.lower()
    if suffix in PARQUET_SUFFIXES:
        return True
    if remote.is_url(source):  # a name with a file format's suffix is a file: the store is not asked
        named = suffix in DELIMITED_SUFFIXES or suffix in SVMLIGHT_SUFFIXES or suffix == ".npz"
        return not named and remote.compression(source) is None and remote.is_dir(source)
    return os.path.isdir(source)  # False on any OSError


def default_delimiter(source: str) -> str | None:
    """The delimiter a delimited source's suffix implies (a tab for ``.tsv``/``.tab``; None: sniffed)."""
    return DELIMITED_SUFFIXES.get(Path(remote.plain_name(source)).suffix.lower()) if source != "-" else None


def looks_like_svmlight(path: Path) -> bool:
    """Whether the first lines of the regular file ``path`` are svmlight/libsvm rows (False for
    anything that is not a readable file: its reader then says what is wrong)."""
    try:
        if not path.is_file():
            return False
        with open(path, "rb") as handle:
            head = handle.read(4096).decode("utf-8", errors="replace")
    except OSError:  # a name too long, no permission: the reader's check names it
        return False
    lines = [line for line in head.splitlines()[:5] if line.strip() and not line.startswith("#")]
    return bool(lines) and all(_SVMLIGHT_LINE.match(line) for line in lines[:-1] or lines)


def check_file(source: str, path: Path) -> None:
    """A readable regular file, or a DataError saying what it is instead (a URL: a file its
    store holds, of a kind read by URL)."""
    if remote.is_url(source):
        kind = source_kind(source)
        if kind not in ("delimited", "parquet"):
            raise DataError(f"{source}: {kind} is not read by URL (delimited text and Parquet are); "
                            "copy it to a local file")
        if not (kind == "parquet" and remote.is_dir(source)):  # a folder's files are checked as they are listed
            remote.check_file(source)
        return
    try:
        path.stat()
    except FileNotFoundError:
        pass
    except OSError as error:
        raise DataError(f"{source}: cannot be read ({error.strerror or error})") from None
    if not path.exists():
        raise DataError(f"{source}: data file not found")
    if path.is_dir():
        raise DataError(f"{source}: is a directory, expected a data file")
    if not path.is_file():
        raise DataError(f"{source}: is not a regular file (a pipe or device?); give a file, or - for standard input")

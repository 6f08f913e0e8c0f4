"""Which files a Parquet source is: a file, or a folder's ``*.parquet`` files sorted by name, local
or named by URL (`RemoteFile`, which stands in for a `Path` where the reader takes one)."""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TypeAlias

from softreg.errors import DataError
from softreg.io import remote


def parquet_files(source: str | os.PathLike[str]) -> Sequence[ParquetPath]:
    """The Parquet files of a source: itself, or a folder's ``*.parquet`` files sorted by name
    (a URL's: `RemoteFile`s, which stand in for paths)."""
    if remote.is_url(source):
        return _remote_files(str(source))
    path = Path(source)
    if not os.path.isdir(path):
        if not os.path.exists(path):
            raise DataError(f"{source}: data file not found")
        return [path]
    files = sorted(
        entry for entry in path.iterdir()
        if entry.suffix.lower() == ".parquet" and entry.name[0] not in "._" and entry.is_file()
    )
    if not files:
        raise DataError(f"{source}: a folder is read as Parquet, and this one holds no *.parquet files; "
                        "give a data file, or a folder of Parquet files")
    return files


@dataclass(frozen=True)
class RemoteFile:
    """A Parquet file named by URL where the reader takes a `Path`: its ``name``, its size
    (``stat().st_size``) and its URL as its text."""

    url: str

    @property
    def name(self) -> str:
        return self.url.rstrip("/").rsplit("/", 1)[-1]

    def stat(self) -> os.stat_result:
        return os.stat_result((0, 0, 0, 0, 0, 0, remote.size(self.url), 0, 0, 0))

    def __str__(self) -> str:
        return self.url


ParquetPath: TypeAlias = "Path | RemoteFile"  # a Parquet file: local, or named by URL


def _remote_files(source: str) -> list[RemoteFile]:
    """A URL's Parquet files: itself, or its folder's ``*.parquet`` files as `parquet_files` chooses them."""
    if not remote.is_dir(source):
        remote.check_file(source)
        return [RemoteFile(source)]
    files = [RemoteFile(url) for url in remote.listing(source)]
    files = [file for file in files if file.name.lower().endswith(".parquet") and file.name[0] not in "._"]
    if not files:
        raise DataError(f"{source}: a folder is read as Parquet, and this one holds no *.parquet files; "
                        "give a data file, or a folder of Parquet files")
    return files

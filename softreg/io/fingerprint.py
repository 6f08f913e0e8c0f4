"""What identifies a source's content cheaply, so that a cache knows when its source changed:
sizes, modification times and digests of each file's ends."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path
from typing import Any

from softreg.errors import DataError
from softreg.io import remote
from softreg.io.kinds import source_kind
from softreg.io.parquet_files import RemoteFile, parquet_files

FINGERPRINT_BYTES = 2**20


def fingerprint(source: str) -> dict[str, Any]:
    """Size, modification time and SHA-256 of the first and last MiB of a file (a builtin: its name;
    a folder of Parquet files: those of each file, and their total size; a URL: its store's
    version tag instead of a modification time)."""
    if source_kind(source) == "builtin":
        return {"builtin": source}
    if remote.is_url(source):
        return _fingerprint_url(source)
    if Path(source).is_dir():
        return _fingerprint_folder(source)
    try:
        stat = os.stat(source)
        digest = hashlib.sha256()
        with open(source, "rb") as handle:
            digest.update(handle.read(FINGERPRINT_BYTES))
            handle.seek(max(0, stat.st_size - FINGERPRINT_BYTES))
            digest.update(handle.read(FINGERPRINT_BYTES))
    except OSError as error:
        raise DataError(f"{source}: cannot read ({error.strerror or error})") from None
    return {"size": stat.st_size, "mtime_ns": stat.st_mtime_ns, "sha256_ends": digest.hexdigest()}


def _fingerprint_folder(source: str) -> dict[str, Any]:
    """Size, modification time and SHA-256 of the first and last MiB of each Parquet file of a
    folder (sorted), and their total size; a change to any of them changes it."""
    entries = []
    try:
        for path in parquet_files(source):
            if isinstance(path, RemoteFile):
                entries.append({"name": path.name, **_fingerprint_url(path.url)})
                continue
            stat = path.stat()
            digest = hashlib.sha256()
            with open(path, "rb") as handle:
                digest.update(handle.read(FINGERPRINT_BYTES))
                handle.seek(max(0, stat.st_size - FINGERPRINT_BYTES))
                digest.update(handle.read(FINGERPRINT_BYTES))
            entries.append({"name": path.name, "size": stat.st_size, "mtime_ns": stat.st_mtime_ns,
                            "sha256_ends": digest.hexdigest()})
    except OSError as error:
        raise DataError(f"{source}: cannot read ({error.strerror or error})") from None
    return {"size": sum(entry["size"] for entry in entries), "files": entries}


def _fingerprint_url(source: str) -> dict[str, Any]:
    """A URL's size and version tag (`softreg.io.remote.version`) and the SHA-256 of its first and
    last MiB as stored; a folder's as `_fingerprint_folder` gives them."""
    if remote.is_dir(source):
        return _fingerprint_folder(source)
    stamp = remote.version(source)
    fs, path = remote.filesystem(source)
    digest = hashlib.sha256()
    with remote.failures(source), fs.open(path, "rb") as handle:  # as stored: never decompressed
        digest.update(handle.read(FINGERPRINT_BYTES))
        handle.seek(max(0, stamp["size"] - FINGERPRINT_BYTES))
        digest.update(handle.read(FINGERPRINT_BYTES))
    return {**stamp, "sha256_ends": digest.hexdigest()}

"""``manifest.json`` is input: checked like a config before a cache is believed.

A cache is a folder anyone can edit, copy into or half-restore from a backup. Its manifest
is read as untrusted text: `problem` returns the first thing wrong with it, in one sentence,
or None. It checks, in order:

- the digest: a SHA-256 of the manifest's own canonical JSON, written last by ingest, so that
  any edit (renamed or reordered classes, a count, a mean) is seen at once;
- types and counts: the part sizes, the features and their names, the classes (two or more,
  distinct), the dtype, the standardizer (finite, positive scales), the layout;
- the shards: each part with rows has exactly its files, named ``<part>/<name>.npy`` inside
  the cache (no other path, no symbolic link), each of the size the manifest gives and with
  the fingerprint of its ends (`shard_ends`: another cache's shard of the same size differs).

What needs the shards' contents (their shapes, dtypes and that every label indexes a class)
is checked where they are opened, by `softreg.cache.read.load_part`.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
from pathlib import Path
from typing import Any

from softreg.cache.rows import PARTS, VERSION, Manifest

ENDS_BYTES = 1 << 16  # read from each end of a shard for its fingerprint
DENSE = ("X", "y")
SPARSE = ("X_data", "X_indices", "X_indptr", "y")
DTYPES = ("float32", "float64")
PLACED = ("X", "y", "source_rows")  # a worker's shard files (`softreg.cache.pieces.SHARD_FILES`)


def shard_ends(path: Path) -> str:
    """The fingerprint of a shard: SHA-256 over its size, its first and its last `ENDS_BYTES`."""
    size = path.stat().st_size
    hasher = hashlib.sha256(str(size).encode())
    with open(path, "rb") as handle:
        hasher.update(handle.read(ENDS_BYTES))
        handle.seek(max(0, size - ENDS_BYTES))
        hasher.update(handle.read(ENDS_BYTES))
    return hasher.hexdigest()[:32]


def digest(document: dict[str, Any]) -> str:
    """SHA-256 of the manifest's canonical JSON (sorted keys), its own ``digest`` left out."""
    body = {key: value for key, value in document.items() if key != "digest"}
    return hashlib.sha256(json.dumps(body, sort_keys=True).encode()).hexdigest()


def problem(manifest: Manifest) -> str | None:
    """The first thing wrong with ``manifest`` and its shards (one sentence), or None."""
    document = manifest.document
    if document.get("version") != VERSION:
        return f"the cache is of format version {str(document.get('version'))[:20]}; this softreg writes {VERSION}"
    if document.get("digest") != digest(document):
        return "manifest.json was changed after ingest wrote it (its digest differs)"
    try:
        _check_fields(document)
        if "placement" in document:
            _check_placement(document)
        else:
            _check_shards(document, manifest.directory)
    except ValueError as error:
        return f"manifest.json: {error}"
    return None


def _count(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0


def _numbers(value: object, length: int, positive: bool = False) -> bool:
    return isinstance(value, list) and len(value) == length and all(
        isinstance(item, (int, float)) and not isinstance(item, bool) and math.isfinite(item)
        and (item > 0 if positive else True) for item in value
    )


def _check_fields(document: dict[str, Any]) -> None:
    counts = document.get("n")
    if not (isinstance(counts, dict) and set(counts) == set(PARTS) and all(map(_count, counts.values()))):
        raise ValueError(f"n must give a count of rows for each of {', '.join(PARTS)}, got {counts!r:.80}")
    if counts["train"] == 0:
        raise ValueError("n.train is 0: a cache holds training rows")
    n_features = document.get("n_features")
    if not (isinstance(n_features, int) and not isinstance(n_features, bool) and n_features > 0):
        raise ValueError(f"n_features must be a positive count, got {n_features!r:.80}")
    names = document.get("feature_names")
    if not (isinstance(names, list) and len(names) == n_features and all(isinstance(n, str) for n in names)):
        raise ValueError(f"feature_names must be {n_features} names (n_features)")
    classes = document.get("classes")
    if not (isinstance(classes, list) and all(isinstance(c, (str, int)) and not isinstance(c, bool) for c in classes)):
        raise ValueError("classes must be a list of class names")
    if len(classes) < 2 or len({str(c) for c in classes}) != len(classes):
        distinct = len({str(c) for c in classes})
        raise ValueError(f"classes must be two or more distinct names, got {len(classes)} ({distinct} distinct)")
    if document.get("dtype") not in DTYPES:
        raise ValueError(f"dtype must be one of {', '.join(DTYPES)}, got {document.get('dtype')!r:.80}")
    if not _numbers(document.get("feature_mean"), n_features):
        raise ValueError(f"feature_mean must be {n_features} finite numbers (n_features)")
    if not _numbers(document.get("feature_scale"), n_features, positive=True):
        raise ValueError(f"feature_scale must be {n_features} finite numbers > 0 (n_features)")
    if not isinstance(document.get("sparse", False), bool):
        raise ValueError(f"sparse must be true or false, got {document.get('sparse')!r:.80}")


def _check_shards(document: dict[str, Any], directory: Path) -> None:
    shards = document.get("shards")
    names = SPARSE if document.get("sparse") else DENSE
    if not isinstance(shards, dict):
        raise ValueError("shards must map each part to its files")
    held = [part for part in PARTS if document["n"][part] > 0]
    if sorted(shards) != sorted(held):
        raise ValueError(f"shards must list the parts with rows ({', '.join(held)}), got {', '.join(map(str, shards))}")
    root = directory.resolve()
    for part in held:
        files = shards[part]
        if not (isinstance(files, dict) and sorted(files) == sorted(names)):
            raise ValueError(f"shards.{part} must have the files {', '.join(names)}")
        for name in names:
            entry, expected = files[name], f"{part}/{name.replace('X_', 'X.')}.npy"
            if not (isinstance(entry, dict) and entry.get("file") == expected and _count(entry.get("bytes"))
                    and isinstance(entry.get("ends"), str)):
                raise ValueError(f"shards.{part}.{name} must be the file {expected} with its bytes and ends")
            path = directory / expected
            if path.is_symlink() or path.parent.is_symlink() or not path.resolve().is_relative_to(root):
                raise ValueError(f"shards.{part}.{name}: {expected} must be a file inside the cache, not a link")
            try:
                size, ends = os.stat(path).st_size, shard_ends(path)
            except OSError as error:
                raise ValueError(f"shards.{part}.{name}: cannot read {expected} ({error.strerror or error})") from None
            if size != entry["bytes"] or ends != entry["ends"]:
                raise ValueError(f"shards.{part}.{name}: {expected} is not the shard ingest wrote (other size or ends)")


def _check_placement(document: dict[str, Any]) -> None:
    """A cache whose shards are on Dask workers (`softreg.engine.ingest`): per part with rows,
    ``worker_shards`` shards, each a worker's address, its rows and its files' paths, sizes and
    ends; the rows adding up to the part's. The files are the workers' to check."""
    placement, n_shards = document.get("placement"), document.get("worker_shards")
    if not (isinstance(n_shards, int) and not isinstance(n_shards, bool) and n_shards > 0):
        raise ValueError(f"worker_shards must be a positive count, got {n_shards!r:.80}")
    held = [part for part in PARTS if document["n"][part] > 0]
    if not isinstance(placement, dict) or sorted(placement) != sorted(held) or document.get("shards") != {}:
        raise ValueError(f"placement must list the workers' shards of the parts with rows ({', '.join(held)})")
    for part in held:
        shards = placement[part]
        if not (isinstance(shards, list) and len(shards) == n_shards):
            raise ValueError(f"placement.{part} must list {n_shards} shards (worker_shards)")
        for index, shard in enumerate(shards):
            files = shard.get("files") if isinstance(shard, dict) else None
            if not (isinstance(shard, dict) and isinstance(shard.get("worker"), str) and _count(shard.get("rows"))
                    and isinstance(files, dict) and sorted(files) == sorted(PLACED)
                    and all(_placed_file(files[name]) for name in PLACED)):
                raise ValueError(f"placement.{part}[{index}] must give a worker, its rows and its files "
                                 f"{', '.join(PLACED)} (path, bytes, ends)")
        if sum(shard["rows"] for shard in shards) != document["n"][part]:
            raise ValueError(f"placement.{part}: the shards' rows do not add up to n.{part}")


def _placed_file(entry: object) -> bool:
    return (isinstance(entry, dict) and isinstance(entry.get("file"), str) and os.path.isabs(entry["file"])
            and _count(entry.get("bytes")) and isinstance(entry.get("ends"), str))

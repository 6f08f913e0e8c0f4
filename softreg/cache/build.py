"""`ingest`: a source into a shuffled on-disk cache, in bounded memory, written atomically."""

from __future__ import annotations

import math
import os
import shutil
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from softreg.cache.cells import (
    ColumnKinds,
    feature_moments,
    learnt_columns,
    refuse_identifiers,
)
from softreg.cache.chunks import ChunkPass, Encoding, Standardized, bucket_parts, by_bucket, record_dtype
from softreg.cache.rows import (
    MAX_BUCKETS,
    PARTS,
    SOURCE_ROWS,
    Manifest,
    Moments,
    SourceInfo,
    _bucket_count,
    _open_source,
    check_cacheable,
    read_manifest,
)
from softreg.cache.sparse import build_sparse, classes_of, write_manifest
from softreg.cache.staging import make_staging, remove_abandoned, unmark
from softreg.errors import DataError, UsageError, cannot_write, warn
from softreg.io.fingerprint import fingerprint
from softreg.io.selection import ROW_NAME_HEADERS
from softreg.prepare.columns import Columns
from softreg.prepare.labels import check_label_kind
from softreg.prepare.scaling import feature_scaling, unscaled_indicators

if TYPE_CHECKING:
    from softreg.config import Config


def ingest(
    config: Config, cache_dir: str | os.PathLike[str], on_rows: Callable[[int, int | None], None] | None = None
) -> Manifest:
    """Build the cache of ``config``'s data in ``cache_dir`` (replacing an old one there);
    ``on_rows(rows, offset)`` hears after each chunk of the rows read so far and of the bytes
    of the source read so far (None where the reader does not know), for progress.

    Returns its `Manifest`. Raises DataError for data it cannot read (naming the line and
    column), OutputError when it cannot write; either way ``cache_dir`` is left as it was.
    """
    check_cacheable(config)
    target = cache_target(cache_dir)
    before = fingerprint(config.data.source)
    with staged_cache(target) as staging:
        document = _build(config, staging, before, on_rows)
        if fingerprint(config.data.source) != before:
            raise DataError(f"{config.data.source}: changed while it was being read; ingest again")
    return Manifest(document, target)


def cache_target(cache_dir: str | os.PathLike[str]) -> Path:
    """``data.cache`` resolved, refused when it is a link or holds what softreg did not write (`_check_target`)."""
    if Path(cache_dir).is_symlink():
        raise UsageError(
            f"{cache_dir}: is a symbolic link; softreg does not write through links: give the real path as data.cache"
        )
    target = Path(cache_dir).resolve()
    _check_target(target)
    return target


@contextmanager
def staged_cache(target: Path) -> Iterator[Path]:
    """A hidden staging folder beside ``target`` to build a cache in: renamed into place when the block
    ends, removed when it raises (an OSError as one line: the cache cannot be written)."""
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        remove_abandoned(target.parent)
        staging = make_staging(target)
    except OSError as error:
        raise cannot_write(target, error, "cannot create the cache") from None
    try:
        yield staging
        unmark(staging)
        _commit(staging, target)
    except BaseException as error:
        shutil.rmtree(staging, ignore_errors=True)
        if isinstance(error, OSError):
            raise cannot_write(target, error, "cannot write the cache") from None
        raise


def _check_target(target: Path) -> None:
    """Refuse to replace a directory that holds something other than a cache, or a cache into which
    someone put files of their own (a rebuild replaces the directory whole)."""
    if target.exists() and (not target.is_dir() or (any(target.iterdir()) and read_manifest(target) is None)):
        raise UsageError(f"{target}: exists and is not a softreg cache; choose another data.cache directory")
    foreign = _foreign_entries(target) if target.is_dir() else []
    if foreign:
        shown = ", ".join(foreign[:5]) + (f" and {len(foreign) - 5} more" if len(foreign) > 5 else "")
        raise UsageError(
            f"{target}: holds entries softreg did not write ({shown}); move them out, or choose another data.cache"
        )


def _foreign_entries(target: Path) -> list[str]:
    """Entries of a cache directory that are not its manifest or its parts' ``.npy`` files (links always)."""
    foreign = []
    for entry in sorted(os.scandir(target), key=lambda entry: entry.name):
        if entry.is_symlink():
            foreign.append(entry.name)
        elif entry.name in PARTS and entry.is_dir(follow_symlinks=False):
            foreign += [
                f"{entry.name}/{inner.name}" for inner in sorted(os.scandir(entry.path), key=lambda inner: inner.name)
                if inner.is_symlink() or not inner.is_file(follow_symlinks=False)
                or not (inner.name.endswith(".npy") or inner.name.endswith(".tmp"))
            ]
        elif not (entry.name == "manifest.json" and entry.is_file(follow_symlinks=False)) and not entry.name.endswith(
            ".tmp"
        ):
            foreign.append(entry.name + ("/" if entry.is_dir(follow_symlinks=False) else ""))
    return foreign

def _commit(staging: Path, target: Path) -> None:
    old = None
    if target.exists():
        old = target.parent / f".{target.name}.old-{os.getpid()}"
        os.replace(target, old)
    os.replace(staging, target)
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)

def _build(
    config: Config, staging: Path, source_print: dict[str, Any], on_rows: Callable[[int, int | None], None] | None
) -> dict[str, Any]:
    from contextlib import ExitStack

    data = config.data
    n_buckets = bucket_count(config)
    with ExitStack() as stack:
        reader = _open_source(config, stack)
        if reader.sparse is not None:
            return build_sparse(config, staging, source_print, reader)
        layout = reader.layout
        buckets = [stack.enter_context(open(staging / f"bucket-{index}.bin", "wb")) for index in range(n_buckets)]
        chunk_pass = ChunkPass(config, layout, n_buckets)
        for chunk in reader.chunks:
            records, bucket = chunk_pass.add(chunk)
            if on_rows is not None:
                on_rows(chunk_pass.n_read, chunk.offset)
            for bucket_index, held in by_bucket(records, bucket, n_buckets):
                buckets[bucket_index].write(held.tobytes())
    counts = chunk_pass.counts.sum(axis=0).tolist()
    learnt = learn(config, reader.info, layout, chunk_pass, counts)
    shards, unseen = _write_shards(config, staging, n_buckets, record_dtype(layout), counts, learnt.how)
    for index in range(n_buckets):
        (staging / f"bucket-{index}.bin").unlink()
    warn_unseen(data.source, unseen)
    return write_manifest(staging, config, source_print, counts, learnt.classes, learnt.how.mean, learnt.how.scale,
                          shards, described(config, reader.info, learnt, chunk_pass.unlabelled, n_buckets))


@dataclass
class Learnt:
    """What pass 1 learnt: the classes, the columns and how pass 2 encodes and standardizes."""

    classes: np.ndarray
    columns: Columns
    how: Standardized


def learn(config: Config, info: SourceInfo, layout: ColumnKinds, chunk_pass: ChunkPass, counts: list[int]) -> Learnt:
    """The classes, columns and standardizer from pass 1's counts and moments (of the whole source,
    ``chunk_pass`` holding them merged), after the checks that need all of them."""
    data = config.data
    labels, moments, categories = chunk_pass.labels, chunk_pass.moments, chunk_pass.categories
    if data.missing == "drop" and chunk_pass.n_rows == 0 and chunk_pass.n_read:
        raise DataError(f"{data.source}: every row has a missing value; data.missing: drop leaves nothing")
    check_label_kind(np.array(list(labels), dtype=str), data.source, info.label_name, data.label is not None)
    refuse_identifiers(data, layout, categories, counts[0])
    if data.id is None and info.id_name in ROW_NAME_HEADERS:  # as the in-memory load says it
        warn(f"{data.source}: the first column {info.id_name!r} holds row names: it is the id "
             "(copied into predict's output), not a feature")
    classes, relabel = classes_of(data.source, labels)
    if counts[0] == 0:
        raise DataError(f"{data.source}: the split leaves no training rows out of {chunk_pass.n_rows}")
    columns, maps = learnt_columns(layout, moments, categories, data.missing)
    feature_mean, squares, n_train = feature_moments(layout, columns, moments, categories, counts[0])
    d = len(feature_mean)
    if data.standardize:
        mean, scale = Moments(n_train, feature_mean, squares).standardizer()
        scale = unscaled_indicators(scale, columns)
    else:
        mean, scale = np.zeros(d), np.ones(d)
    how = Standardized(relabel, mean, scale, Encoding(layout, columns, maps), config.model.dtype)
    return Learnt(classes, columns, how)


def warn_unseen(source: str, unseen: dict[str, int]) -> None:
    if unseen:
        shown = ", ".join(f"{name}: {count}" for name, count in unseen.items())
        warn(f"{source}: categories unseen in the training rows get all-zero indicators in the "
             f"validation and test rows ({shown} cells)")


def described(config: Config, info: SourceInfo, learnt: Learnt, unlabelled: int, n_buckets: int) -> dict[str, Any]:
    """The manifest's description of the columns and of how the parts were made."""
    columns, layout = learnt.columns, learnt.how.encoding.layout
    plain = columns.plain and not layout.categorical
    return {
        "feature_names": columns.feature_names,
        "label_name": info.label_name,
        "header": info.header,
        "file_columns": info.file_columns,
        "id_name": info.id_name,
        "unlabelled": unlabelled,  # rows left out for a missing label (the training summary's n_unlabelled)
        "columns": None if info.file_columns is None and plain else columns.to_json(),
        "feature_scaling": feature_scaling(columns, len(learnt.how.mean), config.data.standardize),
        # per part, each row's 0-based data-row index in the source; not where rows were left out for a
        # missing label, since the chunks do not say which (those runs write no split.npz)
        "source_rows": SOURCE_ROWS if unlabelled == 0 else None,
        "buckets": n_buckets,
    }

def bucket_count(config: Config) -> int:
    """Buckets of the shuffle: as many as the source's size asks (`BUCKET_BYTES` each), or more, so
    that the three copies of a bucket pass 2 holds stay within a ``data.memory_budget`` the config
    sets (at most `MAX_BUCKETS`). The count decides the shuffle, so it depends on the config and
    the source only: the default budget, a share of the memory free at the time, does not count."""
    from softreg.cache.budget import footprint, memory_budget

    if config.data.memory_budget is None:
        return _bucket_count(config)
    size = footprint(config.data.source)
    records = 0 if size is None else size.n_rows * (8 * size.n_features + 9)  # a record: x, label, part
    by_budget = math.ceil(3 * records / memory_budget(config.data.memory_budget))
    return int(min(MAX_BUCKETS, max(_bucket_count(config), by_budget)))

def _write_shards(
    config: Config, staging: Path, n_buckets: int, record: np.dtype, counts: list[int], how: Standardized,
) -> tuple[dict[str, Any], dict[str, int]]:
    """Pass 2: each bucket permuted and appended, standardized, to its part's ``X.npy``/``y.npy``,
    and each row's data-row index in the source to its ``SOURCE_ROWS`` file."""
    from contextlib import ExitStack

    dtype = np.dtype(how.dtype)
    d = len(how.mean)
    shards: dict[str, Any] = {}
    unseen: dict[str, int] = {}
    with ExitStack() as stack:
        handles = {}
        for index, part in enumerate(PARTS):
            if counts[index] == 0:
                continue
            (staging / part).mkdir()
            X_file = stack.enter_context(open(staging / part / "X.npy", "wb"))
            y_file = stack.enter_context(open(staging / part / "y.npy", "wb"))
            header = {"descr": np.lib.format.dtype_to_descr(dtype), "fortran_order": False, "shape": (counts[index], d)}
            np.lib.format.write_array_header_1_0(X_file, header)
            y_header = {"descr": np.lib.format.dtype_to_descr(np.dtype(np.int64)), "fortran_order": False,
                        "shape": (counts[index],)}
            np.lib.format.write_array_header_1_0(y_file, y_header)
            rows_file = stack.enter_context(open(staging / part / SOURCE_ROWS, "wb"))
            np.lib.format.write_array_header_1_0(rows_file, y_header)
            handles[index] = (X_file, y_file, rows_file)
        for bucket in range(n_buckets):
            records = np.fromfile(staging / f"bucket-{bucket}.bin", dtype=record)
            parts = bucket_parts(records, bucket, config.seed, how, unseen)
            for index, (X_file, y_file, rows_file) in handles.items():
                X, y, source_rows = parts[index]
                X_file.write(X.data)
                y_file.write(y.data)
                rows_file.write(source_rows.data)
        for handle_pair in handles.values():
            for handle in handle_pair:
                handle.flush()
                os.fsync(handle.fileno())
    for index, part in enumerate(PARTS):
        if counts[index]:
            shards[part] = {
                name: {"file": f"{part}/{name}.npy", "bytes": (staging / part / f"{name}.npy").stat().st_size}
                for name in ("X", "y")
            }
    return shards, unseen

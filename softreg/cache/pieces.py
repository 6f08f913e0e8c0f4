"""What a Dask worker does in a distributed ingest (`softreg.engine.ingest` sends it): read its
pieces of the source (pass 1, `read_piece`), hand on its records of a bucket
(`read_fragment`), turn a bucket into its rows of each shard (`bucket_slices`, pass 2), and write
the shards it holds to its own directory (`open_shard`, `append_shard`, `close_shard`).

Nothing here imports dask but `worker_directory`, which asks the worker it runs on for its local
directory. Every function takes and returns plain values, so that the driver receives counts,
moments and fingerprints, never rows; rows travel only from worker to worker, a bucket at a time.
"""

from __future__ import annotations

import math
import os
import warnings
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from softreg.cache.cells import ColumnKinds
from softreg.cache.chunks import ChunkPass, Standardized, bucket_parts, by_bucket, piece_summary, renumbered
from softreg.cache.manifest import shard_ends
from softreg.cache.rows import READ_ROWS, _open_source
from softreg.errors import SoftregWarning
from softreg.io.cells import unlabelled_note
from softreg.io.parquet import ParquetLayout
from softreg.io.parquet_chunks import Window
from softreg.io.remote import storage_options
from softreg.io.spans import Span

if TYPE_CHECKING:
    from softreg.config import Config

SHARD_FILES = ("X", "y", "source_rows")


@dataclass(frozen=True)
class Piece:
    """Consecutive rows of a source that one worker reads: the source's ``start``-th labelled row
    on, ``window``'s rows of a Parquet source or ``span``'s bytes of delimited text (both None:
    the whole source). ``layout``: the columns' kinds the source's head decided (None: decided
    on the piece's first chunk, which is the source's); ``rows``: the data rows a span holds."""

    index: int
    start: int
    window: Window | None
    span: Span | None = None
    layout: ColumnKinds | None = None
    rows: int | None = None


def parquet_pieces(groups: list[list[int]], at_least: int) -> list[Piece]:
    """A Parquet source's pieces: runs of whole chunks (`READ_ROWS` labelled rows), about ``at_least``
    of them, from the labelled rows of each row group of each file (``groups[file][group]``)."""
    flat = [(file, group, count) for file, counts in enumerate(groups) for group, count in enumerate(counts)]
    total = sum(count for _, _, count in flat)
    per_piece = max(1, math.ceil(math.ceil(total / READ_ROWS) / max(1, at_least)))
    found: list[Piece] = []
    before = index = 0
    for start in range(0, total, per_piece * READ_ROWS):
        while before + flat[index][2] <= start:  # the row group holding labelled row `start`
            before += flat[index][2]
            index += 1
        file, group, _ = flat[index]
        found.append(Piece(len(found), start, Window(file, group, start - before, min(per_piece * READ_ROWS,
                                                                                        total - start))))
    return found


def worker_directory(worker_cache: str | None) -> Path:
    """``engine.worker_cache`` on this worker, or (None) the dask local directory of the worker running this."""
    if worker_cache is not None:
        return Path(worker_cache).expanduser().resolve()
    from distributed import get_worker

    return Path(get_worker().local_directory).resolve()


def prepare_directory(worker_cache: str | None, name: str) -> str:
    """The folder ``name`` under `worker_directory`, made and shown writable: its absolute path
    (an OSError when it cannot be made or written)."""
    path = worker_directory(worker_cache) / name
    path.mkdir(parents=True, exist_ok=True)
    probe = path / f".probe-{os.getpid()}"
    probe.write_bytes(b"softreg")
    probe.unlink()
    return str(path)


def remove_directory(path: str) -> None:
    """Remove a worker's scratch folder, if it is there."""
    import shutil

    shutil.rmtree(path, ignore_errors=True)


def _fragment(scratch: str, piece: int, bucket: int) -> Path:
    return Path(scratch) / f"piece-{piece}-bucket-{bucket}.bin"


def read_piece(config: Config, piece: Piece, n_buckets: int, scratch: str) -> dict[str, Any]:
    """Pass 1 over ``piece``: its records written to ``scratch`` a file per bucket; returned, what
    the driver merges (`softreg.cache.chunks.piece_summary`), the columns read and the warnings met."""
    with warnings.catch_warnings(record=True) as caught, ExitStack() as stack:
        warnings.simplefilter("always", SoftregWarning)
        stack.enter_context(storage_options(config.data.storage_options))  # a URL, as the driver opens it
        reader = _open_source(config, stack, piece.window, piece.span, piece.layout)
        chunk_pass = ChunkPass(config, reader.layout, n_buckets, start=piece.start, fold=False)
        handles: dict[int, Any] = {}
        for chunk in reader.chunks:
            records, bucket = chunk_pass.add(chunk)
            for index, held in by_bucket(records, bucket, n_buckets):
                if index not in handles:
                    handles[index] = stack.enter_context(open(_fragment(scratch, piece.index, index), "wb"))
                handles[index].write(held.tobytes())
    summary = piece_summary(chunk_pass)
    own = unlabelled_note(config.data.source, chunk_pass.unlabelled)  # the driver counts them all, once
    said = [str(item.message) for item in caught if issubclass(item.category, SoftregWarning)]
    summary.update(info=reader.info, layout=reader.layout, warnings=[message for message in said if message != own])
    return summary


def labelled_rows(layout: ParquetLayout, policy: str, options: dict[str, Any] | None) -> list[list[int]]:
    """`softreg.io.parquet.labelled_counts` of ``layout``'s files, opened with ``options``
    (``data.storage_options``)."""
    from softreg.io.parquet import labelled_counts

    with storage_options(options):
        return labelled_counts(layout, policy)


def read_fragment(scratch: str, piece: int, bucket: int, record: np.dtype, labels: np.ndarray,
                  codes: list[np.ndarray]) -> np.ndarray:
    """Piece ``piece``'s records of ``bucket`` (none: empty), its labels and categories numbered as
    the whole source's (`softreg.cache.chunks.renumbered`)."""
    path = _fragment(scratch, piece, bucket)
    if not path.exists():
        return np.empty(0, dtype=record)
    return renumbered(np.fromfile(path, dtype=record), labels, codes)


Slices = dict[tuple[int, int], tuple[np.ndarray, np.ndarray, np.ndarray]]


def bucket_slices(
    fragments: list[np.ndarray], bucket: int, seed: int, how: Standardized, cuts: list[list[tuple[int, int, int]]],
) -> tuple[Slices, dict[str, int]]:
    """Pass 2 of ``bucket`` (its pieces' records in the pieces' order): per (part, shard), the rows it
    adds to that shard, ``cuts[part]`` giving each shard's ``(shard, start, stop)`` within the
    bucket's rows of the part; and the categories unseen in training met."""
    unseen: dict[str, int] = {}
    parts = bucket_parts(np.concatenate(fragments), bucket, seed, how, unseen)
    slices: Slices = {}
    for part, part_cuts in enumerate(cuts):
        X, y, source_rows = parts[part]
        for shard, start, stop in part_cuts:
            slices[(part, shard)] = (X[start:stop], y[start:stop], source_rows[start:stop])
    return slices, unseen


def pick(slices: tuple[Slices, dict[str, int]], key: tuple[int, int]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """One shard's rows of a bucket (run where the bucket was: only they travel to the shard's worker)."""
    return slices[0][key]


def unseen_of(slices: tuple[Slices, dict[str, int]]) -> dict[str, int]:
    """A bucket's count of categories unseen in training, per column (what the driver takes of it)."""
    return slices[1]


def _shard_path(directory: str, part: str, shard: int, name: str) -> Path:
    return Path(directory) / part / f"{name}-{shard:05d}.npy"


def open_shard(directory: str, part: str, shard: int, n_rows: int, n_features: int, dtype: str) -> None:
    """Start the shard's files (``.tmp`` until `close_shard`): ``.npy`` headers for ``n_rows`` rows."""
    (Path(directory) / part).mkdir(parents=True, exist_ok=True)
    headers: dict[str, dict[str, Any]] = {
        "X": {"descr": np.lib.format.dtype_to_descr(np.dtype(dtype)), "fortran_order": False,
              "shape": (n_rows, n_features)},
        "y": {"descr": np.lib.format.dtype_to_descr(np.dtype(np.int64)), "fortran_order": False, "shape": (n_rows,)},
    }
    headers["source_rows"] = headers["y"]
    for name in SHARD_FILES:
        with open(_temporary(_shard_path(directory, part, shard, name)), "wb") as handle:
            np.lib.format.write_array_header_1_0(handle, headers[name])


def _temporary(path: Path) -> Path:
    return path.with_name(path.name + ".tmp")


def append_shard(directory: str, part: str, shard: int, rows: tuple[np.ndarray, ...], after: Any = None) -> None:
    """Append a bucket's rows to the shard (``after``: the append before it, which dask runs first)."""
    for name, array in zip(SHARD_FILES, rows, strict=True):
        with open(_temporary(_shard_path(directory, part, shard, name)), "ab") as handle:
            handle.write(np.ascontiguousarray(array).data)


def close_shard(
    directory: str, part: str, shard: int, n_rows: int, n_classes: int, after: Any = None
) -> tuple[dict[str, dict[str, Any]], list[int]]:
    """The shard's files synced, checked to hold ``n_rows`` rows and renamed into place: per file its
    path on this worker, its size and the fingerprint of its ends (`softreg.cache.manifest.shard_ends`);
    and its rows of each class."""
    entries = {}
    for name in SHARD_FILES:
        final = _shard_path(directory, part, shard, name)
        with open(_temporary(final), "rb+") as handle:
            np.lib.format.read_magic(handle)
            shape, _, dtype = np.lib.format.read_array_header_1_0(handle)
            expected = handle.tell() + int(np.prod(shape)) * dtype.itemsize
            os.fsync(handle.fileno())
        size = _temporary(final).stat().st_size
        if shape[0] != n_rows or size != expected:
            raise OSError(f"{final}: holds {size} bytes, not the {expected} of {n_rows} rows")
        os.replace(_temporary(final), final)
        entries[name] = {"file": str(final), "bytes": final.stat().st_size, "ends": shard_ends(final)}
    y = np.load(_shard_path(directory, part, shard, "y"), mmap_mode="r")
    return entries, np.bincount(y, minlength=n_classes).tolist()

"""Reading a cache: its manifest, its parts as `CacheData`, and training from it."""

from __future__ import annotations

import mmap
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from softreg import rundir
from softreg.cache.budget import memory_budget
from softreg.cache.build import ingest
from softreg.cache.manifest import problem
from softreg.cache.rows import (
    BLOCK_ROWS,
    PARTS,
    SOURCE_ROWS,
    Manifest,
    cache_options,
    check_cacheable,
    read_manifest,
)
from softreg.cache.staging import remove_abandoned
from softreg.errors import DataError
from softreg.io.fingerprint import fingerprint
from softreg.kernels import Batch
from softreg.prepare.columns import Columns
from softreg.train import ArrayData

if TYPE_CHECKING:
    from softreg.config import Config
    from softreg.prepare.data import Prepared


@dataclass
class CacheData(ArrayData):
    """`TrainingData` over a cache part's memory-mapped ``X`` (n_samples, n_features) and ``y`` (n_samples,).

    Each epoch visits the blocks of `BLOCK_ROWS` rows in a random order and the rows of each
    block in a random order (both from ``rng``); a batch may span two blocks, so every
    batch but the last is full. ``chunks`` reads the rows in order. Blocks and chunks come
    in ``read_as`` (None: the shards' dtype), converted as they are read.

    With ``release_pages`` the pages read are dropped from the process after each block and
    chunk (`release`): they stay in the page cache, but the resident memory stays within a
    block or a chunk rather than growing to the whole part. `prepare_cached` sets it for parts
    larger than half the memory budget; a part that fits keeps its pages (mapping them again
    each epoch would cost time for nothing).
    """

    read_as: str | None = None
    release_pages: bool = False

    @property
    def dtype(self) -> np.dtype:
        return np.dtype(self.read_as or self.X.dtype)

    def minibatches(self, batch_size: int, rng: np.random.Generator) -> Iterator[Batch]:
        if not isinstance(self.X, np.ndarray):  # CSR over memory maps: rows gathered by index
            yield from super().minibatches(batch_size, rng)
            return
        n_samples = self.n_samples
        buffer = np.empty((min(batch_size, n_samples), self.n_features), self.X.dtype)
        pending = np.empty(0, dtype=np.int64)
        starts = np.arange(0, n_samples, BLOCK_ROWS)
        for block in rng.permutation(len(starts)).tolist():
            start = int(starts[block])
            order = start + rng.permutation(min(BLOCK_ROWS, n_samples - start))
            order = np.concatenate([pending, order]) if pending.size else order
            full = len(order) - len(order) % batch_size
            for first in range(0, full, batch_size):
                yield self._gather(order[first:first + batch_size], buffer)
            pending = order[full:]
            self.release()
        if pending.size:
            yield self._gather(pending, buffer)

    def _gather(self, index: np.ndarray, buffer: np.ndarray) -> Batch:
        X_batch = buffer if len(index) == len(buffer) else buffer[: len(index)]
        np.take(self.X, index, axis=0, out=X_batch, mode="clip")
        return X_batch.astype(self.dtype, copy=False), np.asarray(self.y[index]), None

    def chunks(self, rows: int) -> Iterator[Batch]:
        if not isinstance(self.X, np.ndarray):  # CSR: each chunk in ``read_as``
            for X, y, weight in super().chunks(rows):
                yield X.astype(self.dtype, copy=False), y, weight
            return
        for start in range(0, self.n_samples, rows):
            X = np.array(self.X[start:start + rows], dtype=self.dtype)
            y = np.array(self.y[start:start + rows])
            self.release()
            yield X, y, None

    def release(self) -> None:
        """With ``release_pages``, drop the pages of ``X`` and ``y`` from this process's resident set
        (a no-op for arrays in memory): the next read maps them again from the page cache."""
        if not self.release_pages:
            return
        for array in (self.X, self.y):
            mapping = getattr(array, "_mmap", None)  # np.memmap's, shared by its slices
            if mapping is not None and hasattr(mmap, "MADV_DONTNEED"):
                mapping.madvise(mmap.MADV_DONTNEED)


def load_part(manifest: Manifest, part: str) -> CacheData | None:
    """One part's shards as `CacheData` (None when the part is empty); a damaged shard is a DataError."""
    shards = manifest.document["shards"].get(part)
    if shards is None:
        return None
    sparse = bool(manifest.document.get("sparse"))
    names = ("X_data", "X_indices", "X_indptr", "y") if sparse else ("X", "y")
    arrays = []
    for name in names:
        path = manifest.directory / shards[name]["file"]
        try:
            if path.stat().st_size != shards[name]["bytes"]:
                raise DataError(f"{path}: has another size than the manifest says; ingest again")
            arrays.append(np.load(path, mmap_mode="r", allow_pickle=False))
        except (OSError, ValueError) as error:
            raise DataError(f"{path}: cannot read the cache shard ({error}); ingest again") from None
    n, d = manifest.count(part), manifest.document["n_features"]
    y = arrays[-1]
    _check_labels(manifest, part, y, n)
    if sparse:
        return _sparse_part(manifest, part, arrays, n, d)
    X = arrays[0]
    if X.shape != (n, d) or X.dtype != np.dtype(manifest.document["dtype"]):
        raise DataError(f"{manifest.directory}: the {part} shards do not match the manifest; ingest again")
    return CacheData(X, y)


def _check_labels(manifest: Manifest, part: str, y: np.ndarray, n: int) -> None:
    """``y`` holds ``n`` class indices, each in [0, n_classes): numpy would read -1 as the last
    class. One pass over the labels (a column of the part, read a block at a time)."""
    n_classes = len(manifest.document["classes"])
    valid = y.shape == (n,) and y.dtype.kind in "iu"
    for start in range(0, n if valid else 0, 1 << 22):
        block = y[start:start + (1 << 22)]
        if int(block.min()) < 0 or int(block.max()) >= n_classes:
            valid = False
            break
    if not valid:
        raise DataError(
            f"{manifest.directory}: the {part} labels do not index the manifest's {n_classes} classes; ingest again"
        )

def _sparse_part(manifest: Manifest, part: str, arrays: list[np.ndarray], n: int, d: int) -> CacheData:
    """CSR over the memory-mapped data, indices and indptr, checked as scipy would (index ranges)."""
    import scipy.sparse as sp

    data, indices, indptr, y = arrays
    valid = (indptr.shape == (n + 1,) and y.shape == (n,) and data.shape == indices.shape
             and indptr[0] == 0 and indptr[-1] == len(indices) and bool(np.all(np.diff(indptr) >= 0)))
    if valid and len(indices):
        valid = 0 <= int(indices.min()) and int(indices.max()) < d
    if not valid:
        raise DataError(f"{manifest.directory}: the {part} shards do not match the manifest; ingest again")
    X = sp.csr_matrix((data, indices, indptr), shape=(n, d), copy=False)
    mean = np.asarray(manifest.document["feature_mean"])
    scale = np.asarray(manifest.document["feature_scale"])
    return CacheData(X, y, center=mean / scale if np.any(mean) else None)

def stale_reason(manifest: Manifest, config: Config, on_workers: bool | None = None) -> str | None:
    """Why a cache does not hold ``config``'s data (None: it does); with ``on_workers`` True (False),
    also when its shards are not on Dask workers (are), `softreg.engine.ingest`'s placement."""
    placed = "placement" in manifest.document
    if on_workers is not None and placed != on_workers:
        return ("its shards are on this machine; engine.kind: dask ingests them to the workers" if on_workers
                else "its shards are on Dask workers; engine.kind: numpy reads a cache on this machine")
    if placed and manifest.document.get("worker_shards") != config.data.shards:
        return f"data.shards is {config.data.shards}, the workers hold {manifest.document.get('worker_shards')}"
    if manifest.document.get("options") != _plain(cache_options(config)):
        return "the data options, model.dtype or seed differ from the cache's"
    if manifest.document.get("fingerprint") != fingerprint(config.data.source):
        return f"the source {config.data.source} changed since it was ingested"
    return None

def part_files(manifest: Manifest, part: str) -> tuple[Path, Path] | None:
    """The paths of one part's ``X.npy`` and ``y.npy`` (None when the part is empty): what a
    worker opens by itself (softreg.engine)."""
    shards = manifest.document["shards"].get(part)
    if shards is None:
        return None
    return manifest.directory / shards["X"]["file"], manifest.directory / shards["y"]["file"]


def _plain(document: Any) -> Any:
    """``document`` as it reads back from JSON (tuples as lists)."""
    import json

    return json.loads(json.dumps(document))

def open_cache(config: Config, rebuild: bool = True) -> Manifest:
    """The cache of ``config`` at ``data.cache``: used when its manifest checks out
    (`softreg.cache.manifest.problem`) and it holds this data; built when missing; rebuilt
    (with a warning) when the manifest, the source or the data options differ. Without
    ``rebuild`` (what reads a finished run's data) a cache that would be built is a DataError."""
    from softreg.errors import warn

    cache_dir = config.data.cache
    if cache_dir is None:
        raise ValueError("config has no data.cache")
    check_cacheable(config)  # before any word of rebuilding
    remove_abandoned(Path(cache_dir).resolve().parent)  # what killed ingests left there, whichever cache
    manifest = read_manifest(cache_dir)
    on_workers = False if config.engine.kind == "numpy" else None  # only Dask reads shards on the workers
    reason = "there is no data cache there" if manifest is None else (
        problem(manifest) or stale_reason(manifest, config, on_workers))
    if reason is None:
        assert manifest is not None, "a reason is given when there is no manifest"
        return manifest
    if not rebuild:
        raise DataError(
            f"{cache_dir}: the data cache no longer holds this run's data ({reason}); it is not rebuilt "
            f"here: ingest it again with the run's config (softreg ingest --config RUN/config.yaml)"
        )
    if manifest is not None:
        warn(f"{cache_dir}: rebuilding the data cache: {reason}")
    return ingest(config, cache_dir)

# the most of a cached test part a run directory keeps (test.npz, float64): this, or an eighth of the memory budget
TEST_SPLIT_BYTES = 256 * 2**20

def prepare_cached(config: Config, rebuild: bool = True, manifest: Manifest | None = None) -> Prepared:
    """`softreg.prepare.data.Prepared` from the cache: parts as `CacheData` over the shards (`open_cache`
    with ``rebuild``, unless its ``manifest`` is given)."""
    from softreg.errors import warn

    manifest = manifest or open_cache(config, rebuild=rebuild)
    document = manifest.document
    budget = memory_budget(config.data.memory_budget)

    def part(name: str) -> CacheData | None:
        data = load_part(manifest, name)
        if data is not None and isinstance(data.X, np.ndarray):  # a CSR part is held whole (svmlight)
            data.release_pages = data.X.nbytes + data.y.nbytes > budget // 2
        return data

    train = part("train")
    if train is None:
        raise DataError(f"{manifest.directory}: the cache has no training rows; ingest again")
    test = part("test")
    mean, scale = np.asarray(document["feature_mean"]), np.asarray(document["feature_scale"])
    test_raw: np.ndarray = np.empty((0, len(mean)))
    if test is not None:
        if document.get("sparse"):
            import scipy.sparse as sp

            test_raw = sp.csr_matrix(test.X @ sp.diags(scale))  # the shards hold x / scale
        else:
            # an explicit budget only: the default, a share of the memory free now, must not change the run's files
            explicit = config.data.memory_budget
            kept_bytes = TEST_SPLIT_BYTES if explicit is None else min(TEST_SPLIT_BYTES, budget // 8)
            keep = max(1, min(test.n_samples, kept_bytes // (8 * max(1, test.n_features))))
            if keep < test.n_samples:
                warn(f"{manifest.directory}: the run keeps the first {keep} of {test.n_samples} test rows in "
                     f"{rundir.TEST_SPLIT}")
                test = CacheData(test.X[:keep], test.y[:keep])
            test_raw = np.asarray(test.X, dtype=np.float64) * scale + mean  # the shards hold standardized values
    columns = document["columns"]
    from softreg.prepare.data import Prepared

    return Prepared(
        train=train,
        val=part("val"),
        test=test,
        test_raw=test_raw,
        classes=manifest.classes,
        feature_names=list(document["feature_names"]),
        label_name=document["label_name"],
        feature_mean=mean,
        feature_scale=scale,
        source=document["source"],
        columns=None if columns is None else Columns.from_json(columns),
        header=document["header"],
        file_columns=document["file_columns"],
        id_name=document["id_name"],
        index_base=document.get("index_base"),
        scaling=document.get("feature_scaling"),  # None in a cache built before it was recorded
        split=source_rows(manifest),
        unlabelled=int(document.get("unlabelled", 0)),  # caches built before the count: none known
    )


def source_rows(manifest: Manifest) -> dict[str, np.ndarray] | None:
    """Per part (train, val, test), the 0-based data-row index in the source of each row, in
    shard order, shape (n_rows_of_part,) int64; None for a cache that does not record them
    (built before it did, or from svmlight)."""
    if manifest.document.get("source_rows") != SOURCE_ROWS:
        return None
    split = {}
    for part in PARTS:
        n = int(manifest.document["n"][part])
        path = manifest.directory / part / SOURCE_ROWS
        if n == 0:
            split[part] = np.empty(0, dtype=np.int64)
            continue
        try:
            rows = np.load(path, allow_pickle=False)
        except (OSError, ValueError) as error:
            raise DataError(f"{path}: unreadable ({error.__class__.__name__}: {error}); ingest again") from None
        if rows.shape != (n,) or rows.dtype != np.int64 or rows.min() < 0:
            raise DataError(f"{path}: does not match the manifest's {n} {part} rows; ingest again")
        split[part] = rows
    return split

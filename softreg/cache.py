"""An on-disk, shuffled cache of a data set: ingest once, train many times.

`ingest` streams the source in chunks and writes, per part (train, val, test), an
``X.npy`` of standardized features in ``model.dtype`` and a ``y.npy`` of class indices,
plus ``manifest.json``. Two passes, in bounded memory:

1. every row is validated (errors name the line and column), assigned to a part by a
   seeded hash of (seed, row index) and to a bucket file by another, and the training
   rows' moments are merged chunk by chunk (Chan et al.) into the standardizer;
2. each bucket is read back, permuted with its own seeded generator, standardized and
   appended to its part's shards.

Rows spread uniformly over the buckets and each bucket uniformly permuted make the
shards a uniform random permutation of each part, deterministic for the seed.

The cache is built in a hidden staging directory beside the target, the manifest written
last, and renamed into place: an interrupted ingest leaves no cache that looks complete.

This step reads numeric feature columns only (categories and missing values are
refused); delimited text is streamed, other sources (.npz, builtin) are loaded whole.
`CacheData` is the `TrainingData` that reads the shards through memory maps.
"""

from __future__ import annotations

import hashlib
import math
import os
import shutil
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from softreg.columns import Columns
from softreg.dataset import generated_names
from softreg.delimited import Selection, delimited_chunks
from softreg.errors import DataError, OutputError
from softreg.kernels import Batch
from softreg.rundir.files import _umask, read_json_object, write_json
from softreg.sources import DELIMITED_SUFFIXES, source_kind
from softreg.train import ArrayData

if TYPE_CHECKING:
    from softreg.config import Config
    from softreg.data import Prepared

FORMAT = "softreg-cache"
VERSION = 1
PARTS = ("train", "val", "test")
BLOCK_ROWS = 65536  # rows a training epoch visits together (block order and rows within a block are permuted)
BUCKET_BYTES = 64 * 2**20  # the size a bucket aims at: what pass 2 holds in memory (about 3x)
MAX_BUCKETS = 1000  # open files during pass 1
FINGERPRINT_BYTES = 2**20
READ_ROWS = 65536
_MASK = 0xFFFFFFFFFFFFFFFF

# -- seeded hashes of the row index


def _mix(values: np.ndarray) -> np.ndarray:
    """splitmix64's finalizer over a uint64 array (wrapping arithmetic)."""
    x = values + np.uint64(0x9E3779B97F4A7C15)
    x = (x ^ (x >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
    x = (x ^ (x >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
    return x ^ (x >> np.uint64(31))


def row_hash(seed: int, purpose: int, rows: np.ndarray) -> np.ndarray:
    """Uniform numbers in [0, 1) of shape ``rows.shape``, a function of (seed, purpose, row index) only."""
    key = _mix(np.array([(seed * 0x100 + purpose) & _MASK], dtype=np.uint64))
    return (_mix(rows.astype(np.uint64) ^ key) >> np.uint64(11)).astype(np.float64) * 2.0**-53


def assign_parts(seed: int, rows: np.ndarray, test: float, val: float) -> np.ndarray:
    """Part of each row (0 train, 1 val, 2 test): a ``test`` share of the rows, then ``val`` of the rest."""
    u = row_hash(seed, 1, rows)
    return np.where(u < test, 2, np.where(u < test + (1.0 - test) * val, 1, 0)).astype(np.int8)


# -- moments merged chunk by chunk


@dataclass
class Moments:
    """Count, mean and sum of squared deviations of each column (float64), merged by Chan's formula."""

    count: int
    mean: np.ndarray
    squares: np.ndarray

    @classmethod
    def empty(cls, n_features: int) -> Moments:
        return cls(0, np.zeros(n_features), np.zeros(n_features))

    def add(self, X: np.ndarray) -> None:
        n = X.shape[0]
        if n == 0:
            return
        mean = X.mean(axis=0)
        squares = ((X - mean) ** 2).sum(axis=0)
        total = self.count + n
        delta = mean - self.mean
        self.mean = self.mean + delta * (n / total)
        self.squares = self.squares + squares + delta**2 * (self.count * n / total)
        self.count = total

    def standardizer(self) -> tuple[np.ndarray, np.ndarray]:
        """Mean and scale (the population standard deviation; 1 for constant columns)."""
        scale = np.sqrt(self.squares / max(self.count, 1))
        constant = scale < 10 * np.finfo(np.float64).eps * np.maximum(np.abs(self.mean), 1.0)
        return self.mean.copy(), np.where(constant, 1.0, scale)


# -- the source: its fingerprint and its rows in chunks


def fingerprint(source: str) -> dict[str, Any]:
    """Size, modification time and SHA-256 of the first and last MiB of a file (a builtin: its name)."""
    if source_kind(source) == "builtin":
        return {"builtin": source}
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


@dataclass
class SourceInfo:
    feature_names: list[str]
    label_name: str
    header: bool | None
    file_columns: list[str] | None
    columns: Columns | None
    id_name: str | None = None  # data.id: not a feature, but predict copies it to its output


RowChunk = tuple[np.ndarray, list[str], list[int] | None]  # features float64 (n, d), label texts, file lines


@dataclass
class _Reader:
    info: SourceInfo
    chunks: Iterator[RowChunk]


def _unsupported(config: Config) -> str | None:
    data = config.data
    if isinstance(data.test, str):
        return "data.test as a separate file"
    if data.split != "random":
        return "data.split: ordered"
    if data.classes is not None:
        return "data.classes"
    if data.missing != "error":
        return f"data.missing: {data.missing}"
    if isinstance(data.categorical, list) and data.categorical:
        return "categorical columns"
    return None


def _delimited_rows(config: Config, names: list[str], chunks: Iterator[tuple[list[list[str]], list[int]]]
                    ) -> Iterator[RowChunk]:
    data = config.data
    selection = Selection(label=data.label, id=data.id, features=data.features, exclude=data.exclude or ())
    target, _, features = selection.resolve(data.source, names)
    numeric = Columns.numeric([names[index] for index in features])
    for rows, lines in chunks:
        cells = np.array(rows, dtype=str)
        labels = np.char.strip(cells[:, target])
        blank = np.flatnonzero(labels == "")
        if blank.size:
            raise DataError(f"{data.source}: line {lines[blank[0]]}: empty label in column {names[target]!r}")
        try:
            X = numeric.encode(cells[:, features], data.source, lines).X
        except DataError as error:
            raise DataError(f"{error} (a cache reads numeric feature columns only, so far)") from None
        yield X, labels.tolist(), lines


def _whole_rows(config: Config) -> _Reader:
    """A numeric source (.npz, builtin), loaded whole: streaming them is a later step."""
    from softreg.data import load_data

    dataset = load_data(config.data, config.data.source)
    if dataset.X is None or not isinstance(dataset.X, np.ndarray):
        raise DataError(f"{config.data.source}: a cache holds dense numeric data only, so far (not svmlight)")
    X = dataset.X
    if not np.isfinite(X).all():
        Columns.numeric(dataset.feature_names).encode(X, dataset.source)  # raises, naming the cell
    info = SourceInfo(list(dataset.feature_names), dataset.label_name, None, None, None)
    labels = [str(label) for label in dataset.labels.tolist()]
    return _Reader(info, iter([(X, labels, None)]))


# -- ingest


@dataclass
class Manifest:
    """What ``manifest.json`` says: see `ingest`."""

    document: dict[str, Any]
    directory: Path

    @property
    def classes(self) -> np.ndarray:
        return np.asarray(self.document["classes"])

    def count(self, part: str) -> int:
        return int(self.document["n"][part])


def cache_options(config: Config) -> dict[str, Any]:
    """The settings that decide a cache's content: the data options, the dtype and the seed."""
    data = {key: value for key, value in vars(config.data).items() if key not in ("cache", "memory_budget")}
    return {"data": data, "dtype": config.model.dtype, "seed": config.seed}


def ingest(
    config: Config, cache_dir: str | os.PathLike[str], on_rows: Callable[[int], None] | None = None
) -> Manifest:
    """Build the cache of ``config``'s data in ``cache_dir`` (replacing an old one there);
    ``on_rows(n)`` hears of the rows read so far after each chunk (for progress).

    Returns its `Manifest`. Raises DataError for data it cannot read (naming the line and
    column), OutputError when it cannot write; either way ``cache_dir`` is left as it was.
    """
    unsupported = _unsupported(config)
    if unsupported is not None:
        raise DataError(f"{config.path or 'config'}: {unsupported} is not supported with a data cache yet")
    target = Path(cache_dir).resolve()
    _check_target(target)
    before = fingerprint(config.data.source)
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        _remove_abandoned(target)
        staging = Path(tempfile.mkdtemp(prefix=f".{target.name}.ingest-{os.getpid()}-", dir=target.parent))
        os.chmod(staging, 0o777 & ~_umask())  # mkdtemp's 0700 would hide the cache from other users
    except OSError as error:
        raise OutputError(f"{target}: cannot create the cache ({error.strerror or error})") from None
    try:
        document = _build(config, staging, before, on_rows)
        if fingerprint(config.data.source) != before:
            raise DataError(f"{config.data.source}: changed while it was being read; ingest again")
        _commit(staging, target)
    except BaseException as error:
        shutil.rmtree(staging, ignore_errors=True)
        if isinstance(error, OSError):
            raise OutputError(f"{target}: cannot write the cache ({error.strerror or error})") from None
        raise
    return Manifest(document, target)


def _check_target(target: Path) -> None:
    """Refuse to replace a directory that holds something other than a cache."""
    if target.exists() and (not target.is_dir() or (any(target.iterdir()) and read_manifest(target) is None)):
        raise OutputError(f"{target}: exists and is not a softreg cache; choose another data.cache directory")


def _remove_abandoned(target: Path) -> None:
    """Remove the staging directories of ingests into ``target`` whose process is gone (killed
    before it could clean up), so that disk space does not leak; a running one's is kept."""
    for staging in target.parent.glob(f".{target.name}.ingest-*"):
        pid = staging.name[len(f".{target.name}.ingest-"):].partition("-")[0]
        if pid.isdigit() and not _alive(int(pid)):
            shutil.rmtree(staging, ignore_errors=True)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's process
        return True
    return True


def _commit(staging: Path, target: Path) -> None:
    old = None
    if target.exists():
        old = target.parent / f".{target.name}.old-{os.getpid()}"
        os.replace(target, old)
    os.replace(staging, target)
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)


def _open_source(config: Config, stack: Any) -> _Reader:
    data = config.data
    if source_kind(data.source) != "delimited" or data.source == "-":
        if data.source == "-":
            raise DataError("a cache cannot be built from standard input; give a file")
        return _whole_rows(config)
    suffix = Path(data.source).suffix.lower()
    names, chunks = stack.enter_context(
        delimited_chunks(data.source, data.delimiter or DELIMITED_SUFFIXES.get(suffix), READ_ROWS, data.header,
                         data.encoding)
    )
    selection = Selection(label=data.label, id=data.id, features=data.features, exclude=data.exclude or ())
    target, ident, features = selection.resolve(data.source, names)
    feature_names = [names[index] for index in features]
    named = names != generated_names(len(names))
    id_name = None if ident is None else names[ident]
    info = SourceInfo(feature_names, names[target], named, list(names), Columns.numeric(feature_names), id_name)
    return _Reader(info, _delimited_rows(config, names, chunks))


def _bucket_count(config: Config) -> int:
    size = fingerprint(config.data.source).get("size", 0)
    return int(min(MAX_BUCKETS, max(1, math.ceil(4 * size / BUCKET_BYTES))))


def _build(
    config: Config, staging: Path, source_print: dict[str, Any], on_rows: Callable[[int], None] | None
) -> dict[str, Any]:
    from contextlib import ExitStack

    data, seed = config.data, config.seed
    n_buckets = _bucket_count(config)
    with ExitStack() as stack:
        reader = _open_source(config, stack)
        d = len(reader.info.feature_names)
        record = np.dtype([("x", np.float64, (d,)), ("label", np.int64), ("part", np.int8)])
        buckets = [stack.enter_context(open(staging / f"bucket-{index}.bin", "wb")) for index in range(n_buckets)]
        labels: dict[str, int] = {}
        moments = Moments.empty(d)
        counts = [0, 0, 0]
        n_rows = 0
        for X, label_texts, _ in reader.chunks:
            rows = np.arange(n_rows, n_rows + X.shape[0])
            n_rows += X.shape[0]
            if on_rows is not None:
                on_rows(n_rows)
            part = assign_parts(seed, rows, float(data.test), data.val)
            moments.add(X[part == 0])
            records = np.empty(X.shape[0], dtype=record)
            records["x"] = X
            texts, inverse = np.unique(np.asarray(label_texts, dtype=str), return_inverse=True)
            label_ids = np.array([labels.setdefault(text, len(labels)) for text in texts.tolist()], dtype=np.int64)
            records["label"] = label_ids[inverse.ravel()]
            records["part"] = part
            for index in range(3):
                counts[index] += int(np.count_nonzero(part == index))
            bucket = (row_hash(seed, 2, rows) * n_buckets).astype(np.int64)
            order = np.argsort(bucket, kind="stable")
            bounds = np.searchsorted(bucket[order], np.arange(n_buckets + 1))
            for bucket_index in np.flatnonzero(np.diff(bounds)).tolist():
                records[order[bounds[bucket_index]:bounds[bucket_index + 1]]].tofile(buckets[bucket_index])
    classes, relabel = _classes(data.source, labels)
    if counts[0] == 0:
        raise DataError(f"{data.source}: the split leaves no training rows out of {n_rows}")
    mean, scale = moments.standardizer() if data.standardize else (np.zeros(d), np.ones(d))
    shards = _write_shards(config, staging, n_buckets, record, counts, relabel, mean, scale)
    for index in range(n_buckets):
        (staging / f"bucket-{index}.bin").unlink()
    info = reader.info
    document = {
        "format": FORMAT,
        "version": VERSION,
        "n": dict(zip(PARTS, counts, strict=True)),
        "n_features": d,
        "feature_names": info.feature_names,
        "label_name": info.label_name,
        "header": info.header,
        "file_columns": info.file_columns,
        "id_name": info.id_name,
        "columns": None if info.columns is None else info.columns.to_json(),
        "classes": classes.tolist(),
        "dtype": config.model.dtype,
        "standardized": True,  # the shards hold (x - feature_mean) / feature_scale
        "feature_mean": mean.tolist(),
        "feature_scale": scale.tolist(),
        "seed": seed,
        "source": data.source,
        "fingerprint": source_print,
        "options": cache_options(config),
        "buckets": n_buckets,
        "shards": shards,
    }
    write_json(staging / "manifest.json", document)  # last: a cache without it is incomplete
    return document


def _classes(source: str, labels: dict[str, int]) -> tuple[np.ndarray, np.ndarray]:
    """Sorted classes (integers when every label is one, else text, as in-memory loading types them)
    and, per provisional label id (order of first appearance), its class index."""
    texts = np.array(list(labels), dtype=str)
    try:
        typed: np.ndarray = texts.astype(np.int64)
    except (ValueError, OverflowError):
        typed = texts
    classes, relabel = np.unique(typed, return_inverse=True)
    if len(classes) < 2:
        shown = "none" if len(classes) == 0 else repr(str(classes[0]))
        raise DataError(f"{source}: only one class ({shown}) in the labels; need at least two")
    return classes, relabel.astype(np.int64)


def _write_shards(
    config: Config, staging: Path, n_buckets: int, record: np.dtype, counts: list[int],
    relabel: np.ndarray, mean: np.ndarray, scale: np.ndarray,
) -> dict[str, Any]:
    """Pass 2: each bucket permuted and appended, standardized, to its part's ``X.npy``/``y.npy``."""
    from contextlib import ExitStack

    dtype = np.dtype(config.model.dtype)
    d = len(mean)
    shards: dict[str, Any] = {}
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
            handles[index] = (X_file, y_file)
        for bucket in range(n_buckets):
            records = np.fromfile(staging / f"bucket-{bucket}.bin", dtype=record)
            rng = np.random.default_rng([config.seed, bucket, 0x5EED])
            records = records[rng.permutation(len(records))]
            for index, (X_file, y_file) in handles.items():
                rows = records[records["part"] == index]
                X = ((rows["x"] - mean) / scale).astype(dtype)  # (n_rows, d)
                X_file.write(np.ascontiguousarray(X).tobytes())
                y_file.write(relabel[rows["label"]].astype(np.int64).tobytes())
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
    return shards


# -- reading a cache


class CacheData(ArrayData):
    """`TrainingData` over a cache part's memory-mapped ``X`` (n_samples, n_features) and ``y`` (n_samples,).

    Each epoch visits the blocks of `BLOCK_ROWS` rows in a random order and the rows of each
    block in a random order (both from ``rng``); a batch may span two blocks, so every
    batch but the last is full. ``chunks`` reads the rows in order.
    """

    def minibatches(self, batch_size: int, rng: np.random.Generator) -> Iterator[Batch]:
        n_samples = self.n_samples
        buffer = np.empty((min(batch_size, n_samples), self.n_features), self.dtype)
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
        if pending.size:
            yield self._gather(pending, buffer)

    def _gather(self, index: np.ndarray, buffer: np.ndarray) -> Batch:
        X_batch = buffer if len(index) == len(buffer) else buffer[: len(index)]
        np.take(self.X, index, axis=0, out=X_batch, mode="clip")
        return X_batch, np.asarray(self.y[index]), None

    def chunks(self, rows: int) -> Iterator[Batch]:
        for start in range(0, self.n_samples, rows):
            yield np.array(self.X[start:start + rows]), np.array(self.y[start:start + rows]), None


def read_manifest(cache_dir: str | os.PathLike[str]) -> Manifest | None:
    """The cache's manifest, or None when ``cache_dir`` holds no complete cache."""
    path = Path(cache_dir) / "manifest.json"
    if not path.is_file():
        return None
    from softreg.errors import RunDirError

    try:
        document = read_json_object(path)
    except RunDirError:
        return None
    if document.get("format") != FORMAT or document.get("version") != VERSION:
        return None
    return Manifest(document, Path(cache_dir))


def load_part(manifest: Manifest, part: str) -> CacheData | None:
    """One part's shards as `CacheData` (None when the part is empty); a damaged shard is a DataError."""
    shards = manifest.document["shards"].get(part)
    if shards is None:
        return None
    arrays = []
    for name in ("X", "y"):
        path = manifest.directory / shards[name]["file"]
        try:
            if path.stat().st_size != shards[name]["bytes"]:
                raise DataError(f"{path}: has another size than the manifest says; ingest again")
            arrays.append(np.load(path, mmap_mode="r", allow_pickle=False))
        except (OSError, ValueError) as error:
            raise DataError(f"{path}: cannot read the cache shard ({error}); ingest again") from None
    X, y = arrays
    if X.shape != (manifest.count(part), manifest.document["n_features"]) or y.shape != (manifest.count(part),):
        raise DataError(f"{manifest.directory}: the {part} shards do not match the manifest; ingest again")
    return CacheData(X, y)


def stale_reason(manifest: Manifest, config: Config) -> str | None:
    """Why a cache does not hold ``config``'s data (None: it does)."""
    if manifest.document.get("options") != _plain(cache_options(config)):
        return "the data options, model.dtype or seed differ from the cache's"
    if manifest.document.get("fingerprint") != fingerprint(config.data.source):
        return f"the source {config.data.source} changed since it was ingested"
    return None


def _plain(document: Any) -> Any:
    """``document`` as it reads back from JSON (tuples as lists)."""
    import json

    return json.loads(json.dumps(document))


# -- training from a cache


def open_cache(config: Config, on_build: Any = None) -> Manifest:
    """The cache of ``config`` at ``data.cache``: used when it holds this data; built when
    missing; rebuilt (with a warning) when the source or the data options changed."""
    from softreg.errors import warn

    cache_dir = config.data.cache
    if cache_dir is None:
        raise ValueError("config has no data.cache")
    manifest = read_manifest(cache_dir)
    if manifest is not None:
        reason = stale_reason(manifest, config)
        if reason is None:
            return manifest
        warn(f"{cache_dir}: rebuilding the data cache: {reason}")
    return ingest(config, cache_dir)


TEST_SPLIT_BYTES = 256 * 2**20  # the most of a cached test part a run directory keeps (test.npz)


def prepare_cached(config: Config) -> Prepared:
    """`softreg.data.Prepared` from the cache: parts as `CacheData` over the shards."""
    from softreg.errors import warn

    manifest = open_cache(config)
    document = manifest.document
    train = load_part(manifest, "train")
    if train is None:
        raise DataError(f"{manifest.directory}: the cache has no training rows; ingest again")
    test = load_part(manifest, "test")
    mean, scale = np.asarray(document["feature_mean"]), np.asarray(document["feature_scale"])
    test_raw: np.ndarray = np.empty((0, len(mean)))
    if test is not None:
        keep = max(1, min(test.n_samples, TEST_SPLIT_BYTES // (8 * max(1, test.n_features))))
        if keep < test.n_samples:
            warn(f"{manifest.directory}: the run keeps the first {keep} of {test.n_samples} test rows in test.npz")
            test = CacheData(test.X[:keep], test.y[:keep])
        test_raw = np.asarray(test.X, dtype=np.float64) * scale + mean  # the shards hold standardized values
    columns = document["columns"]
    from softreg.data import Prepared

    return Prepared(
        train=train,
        val=load_part(manifest, "val"),
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
    )

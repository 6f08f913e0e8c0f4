"""The rows of a source as an ingest reads them: its fingerprint, chunks of rows, seeded
hashes of the row index, and moments merged chunk by chunk."""

from __future__ import annotations

import itertools
import math
import os
from collections.abc import Iterator
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from softreg.cache.cells import STREAMED_MISSING, CellChunk, ColumnKinds, split_cells
from softreg.errors import DataError, warn
from softreg.io.cells import label_policy, unlabelled_note
from softreg.io.fingerprint import fingerprint
from softreg.io.kinds import default_delimiter, source_kind
from softreg.io.parquet_chunks import Window
from softreg.io.selection import Selection
from softreg.io.spans import Span
from softreg.io.stream import ReadOptions, Rows, open_rows
from softreg.prepare.columns import Column, Columns
from softreg.prepare.features import categorical_names
from softreg.rundir.files import read_json_object

if TYPE_CHECKING:
    from softreg.config import Config


FORMAT = "softreg-cache"

VERSION = 2  # 2: the shards' ends and the manifest's digest

PARTS = ("train", "val", "test")
SOURCE_ROWS = "source_rows.npy"  # in each part's folder beside X.npy and y.npy: its rows' 0-based data-row indices

BLOCK_ROWS = 65536  # rows a training epoch visits together (block order and rows within a block are permuted)

BUCKET_BYTES = 64 * 2**20  # the size a bucket aims at: what pass 2 holds in memory (about 3x)

MAX_BUCKETS = 1000  # open files during pass 1

PARQUET_MISSING_HINT = "set data.missing to drop or mean to handle missing cells"

READ_ROWS = 32768  # rows parsed at a time (pandas holds several copies of a chunk: the ingest's peak follows it)

_MASK = 0xFFFFFFFFFFFFFFFF

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

@dataclass
class SourceInfo:
    feature_names: list[str]
    label_name: str
    header: bool | None
    file_columns: list[str] | None
    columns: Columns | None
    id_name: str | None = None  # data.id: not a feature, but predict copies it to its output
    index_base: int | None = None  # svmlight: 0 or 1, the first feature index of the file


RowChunk = tuple[np.ndarray, "np.ndarray | list[str]", "list[int] | None"]  # features (n, d), label texts, lines

@dataclass
class _SparseRows:
    """A sparse source's rows, whole: CSR features (n, d) float64 and label texts."""

    X: Any
    labels: list[str]


@dataclass
class _Reader:
    info: SourceInfo
    chunks: Iterator[CellChunk]
    layout: ColumnKinds
    sparse: _SparseRows | None = None

def unsupported_options(config: Config) -> str | None:
    """What of ``config``'s data options a cache cannot do yet, with what to set instead (None: nothing)."""
    data = config.data
    if isinstance(data.test, str):
        return "data.test as a separate file (append its rows to data.source, or train in memory)"
    if data.split != "random":
        return "data.split: ordered (a cache splits by a seeded hash of each row; set data.split: random)"
    if data.classes is not None:
        return "data.classes (keep only those rows in the source, or train in memory)"
    if data.missing not in STREAMED_MISSING:
        return f"data.missing: {data.missing} (it needs every value of a column at once; use mean or drop)"
    return None


def check_cacheable(config: Config) -> None:
    """A DataError naming the option when ``config``'s data cannot go through a cache yet."""
    unsupported = unsupported_options(config)
    if unsupported is not None:
        raise DataError(f"{config.path or 'config'}: {unsupported} is not supported with a data cache yet")

def _cell_chunks(
    config: Config, rows: Rows, layout: ColumnKinds | None = None
) -> tuple[ColumnKinds, Iterator[CellChunk]]:
    """The feature columns' layout (numeric ones only when the rows start as numbers, else with the
    categorical columns decided on the first chunk; ``layout`` when given, the one its source's
    head decided) and the rows as `CellChunk` (text cells checked cell by cell: every error
    names the line and column)."""
    data = config.data
    feature_names = [rows.names[index] for index in rows.features]
    chunks = iter(rows.chunks)
    first = None if rows.numbers or layout is not None else next(chunks, None)
    if layout is None and rows.numbers:
        layout = ColumnKinds(feature_names, [])
    elif layout is None and (first is None or first.cells is None):
        raise DataError(f"{data.source}: has a header but no data rows")
    elif layout is None:
        assert first is not None and first.cells is not None
        layout = ColumnKinds(feature_names, categorical_names(
            feature_names, first.cells[:, rows.features], data.categorical, data.source))
    kinds = layout

    def read() -> Iterator[CellChunk]:
        unlabelled = 0
        for chunk in itertools.chain([] if first is None else [first], chunks):
            unlabelled += chunk.unlabelled
            labels = np.asarray(chunk.labels).tolist()
            if chunk.cells is None:
                no_text = np.empty((len(chunk), 0), dtype=str)
                yield CellChunk(np.asarray(chunk.X), no_text, labels, None, chunk.offset, chunk.unlabelled)
                continue
            cells = chunk.cells[:, rows.features]
            numbers, text = split_cells(kinds, cells, data.missing, data.source, chunk.lines)
            yield CellChunk(numbers, text, labels, chunk.lines, chunk.offset, chunk.unlabelled)
        if unlabelled:
            warn(unlabelled_note(data.source, unlabelled))

    return kinds, read()

def _whole_rows(config: Config) -> _Reader:
    """A numeric source (.npz, builtin), loaded whole: streaming them is a later step."""
    from softreg.prepare.data import load_data

    dataset = load_data(config.data, config.data.source)
    if dataset.X is None:
        raise DataError(f"{config.data.source}: a cache reads numeric sources whole (not text cells)")
    labels = [str(label) for label in dataset.labels.tolist()]
    if not isinstance(dataset.X, np.ndarray):  # svmlight: CSR, shuffled and stored whole
        info = SourceInfo(list(dataset.feature_names), dataset.label_name, None, None, None,
                          index_base=dataset.index_base)
        sparse = _SparseRows(dataset.X.tocsr(), labels)
        return _Reader(info, iter(()), ColumnKinds(list(dataset.feature_names), []), sparse)
    X = dataset.X
    if not np.isfinite(X).all():
        fill = None if config.data.missing == "error" else 0.0  # NaN is a missing cell unless data.missing: error
        Columns([Column(name, None, fill) for name in dataset.feature_names]).encode(X, dataset.source)  # raises
    info = SourceInfo(list(dataset.feature_names), dataset.label_name, None, None, None)
    layout = ColumnKinds(list(dataset.feature_names), [])
    chunk = CellChunk(X, np.empty((X.shape[0], 0), dtype=str), labels, None, unlabelled=dataset.unlabelled)
    return _Reader(info, iter([chunk]), layout)

def _open_source(config: Config, stack: ExitStack, window: Window | None = None, span: Span | None = None,
                 layout: ColumnKinds | None = None) -> _Reader:
    """The source's rows through `open_rows`: delimited text and Parquet streamed (Parquet in chunks
    of exactly `READ_ROWS`, as delimited text gives them, so that the same rows make the same cache
    in either format; only ``window``'s rows, or ``span``'s bytes of delimited text, where one is
    given, their columns' ``layout`` the one the source's head decided); other sources whole."""
    data = config.data
    if data.source == "-":
        raise DataError("a cache cannot be built from standard input; give a file")
    kind = source_kind(data.source)
    if kind not in ("delimited", "parquet"):
        return _whole_rows(config)
    selection = Selection(label=data.label, id=data.id, features=data.features, exclude=data.exclude or ())
    options = ReadOptions(
        delimiter=data.delimiter or default_delimiter(data.source), header=data.header, encoding=data.encoding,
        numbers=not (isinstance(data.categorical, list) and data.categorical)  # named categories: the text path
        and not (layout is not None and layout.categorical),  # (as are categories the head found)
        refuse_missing=PARQUET_MISSING_HINT if data.missing == "error" else None, exact_chunks=True,
        missing_labels=label_policy(data.missing), window=window, span=span,
    )
    rows = stack.enter_context(open_rows(data.source, selection, options, READ_ROWS))
    assert rows.target is not None, "a Selection always chooses a label"
    layout, chunks = _cell_chunks(config, rows, layout)
    delimited = rows.kind == "delimited"
    id_name = None if rows.ident is None else rows.names[rows.ident]
    info = SourceInfo(layout.names, rows.names[rows.target], rows.named if delimited else None,
                      list(rows.names) if delimited else None, None, id_name)
    return _Reader(info, chunks, layout)

def _bucket_count(config: Config) -> int:
    size = fingerprint(config.data.source).get("size", 0)
    return int(min(MAX_BUCKETS, max(1, math.ceil(4 * size / BUCKET_BYTES))))


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
    """The settings that decide a cache's content: the data options, the dtype and the seed (not
    where the cache is, the memory budget, ``data.shards``, which is the batch plan's, nor
    ``data.storage_options``, how a URL is reached)."""
    skipped = ("cache", "memory_budget", "shards", "storage_options")
    data = {key: value for key, value in vars(config.data).items() if key not in skipped}
    return {"data": data, "dtype": config.model.dtype, "seed": config.seed}


def read_manifest(cache_dir: str | os.PathLike[str]) -> Manifest | None:
    """The cache's manifest, or None when ``cache_dir`` holds no complete softreg cache; not yet
    believed (`softreg.cache.manifest.problem` checks it)."""
    path = Path(cache_dir) / "manifest.json"
    if not path.is_file():
        return None
    from softreg.errors import RunDirError

    try:
        document = read_json_object(path)
    except RunDirError:
        return None
    if document.get("format") != FORMAT:  # another version's cache is still softreg's: rebuilt, not refused
        return None
    return Manifest(document, Path(cache_dir))

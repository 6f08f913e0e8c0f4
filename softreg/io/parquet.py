"""Parquet files and folders as a data source, through pyarrow (the optional extra
``softreg[parquet]``).

A source is one Parquet file, or a folder whose ``*.parquet`` files (sorted by name;
subfolders, and names that start with '.' or '_', are not read) hold the rows in that order,
every file with the same columns. Columns are chosen as in delimited text (`Selection`:
``data.label``, by default the last column; ``data.id``; ``data.features`` or
``data.exclude``; or a model's input columns, without a label, for ``predict``); an unnamed
index pandas stored as a column is not one of them. Features must
be numbers (integers, floats, decimals or booleans) and are read as float64, a null (or NaN)
as a missing value (which ``data.missing`` handles); inf is refused. A label of any type is
read as its text and typed as delimited labels are: integers when every label is one, else
strings. Rows are read in batches, never as a Python object per cell.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Sequence
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from types import ModuleType
from typing import Any

import numpy as np

from softreg.errors import DataError
from softreg.escape import visible
from softreg.io import remote
from softreg.io.cells import missing_label_error, missing_mask
from softreg.io.dataset import shown_names
from softreg.io.parquet_chunks import ParquetBatch, Window, windowed
from softreg.io.parquet_files import ParquetPath, RemoteFile, parquet_files
from softreg.io.selection import ColumnChoice, Selection

BATCH_ROWS = 65536
INSTALL_HINT = "pip install 'softreg[parquet]' (from a clone of the repository: pip install '.[parquet]')"


def _pyarrow(source: str | os.PathLike[str]) -> tuple[ModuleType, ModuleType, ModuleType]:
    """pyarrow, pyarrow.compute and pyarrow.parquet, or a DataError saying how to install them."""
    try:
        import pyarrow
        import pyarrow.compute
        import pyarrow.parquet
    except ImportError:
        raise DataError(f"{source}: reading Parquet needs pyarrow: {INSTALL_HINT}") from None
    return pyarrow, pyarrow.compute, pyarrow.parquet


@dataclass(frozen=True)
class ParquetLayout:
    """A Parquet source's files, their row counts, its columns and which are label, id and features."""

    source: str
    files: Sequence[ParquetPath]
    rows: list[int]  # per file
    names: list[str]  # the data columns (a stored pandas index left out)
    target: int | None  # None: no label column (rows to predict)
    ident: int | None
    features: list[int]

    @property
    def feature_names(self) -> list[str]:
        return [self.names[index] for index in self.features]


def read_parquet_layout(source: str, selection: ColumnChoice | None = None) -> ParquetLayout:
    """Open every file of ``source`` (checking that they have the same columns, the features
    numeric ones) and resolve ``selection`` (default `Selection()`) against the columns."""
    pa, _, pq = _pyarrow(source)
    files = parquet_files(source)
    schemas, rows = [], []
    for path in files:
        with _opened(pa, pq, path) as parquet_file:
            schemas.append(parquet_file.schema_arrow)
            rows.append(parquet_file.metadata.num_rows)
    names = _data_columns(schemas[0])
    duplicates = sorted({name for name in names if names.count(name) > 1})
    if duplicates:
        raise DataError(f"{files[0]}: duplicate column name(s) {shown_names(duplicates)}")
    for path, schema in zip(files[1:], schemas[1:], strict=True):
        if _data_columns(schema) != names:
            raise DataError(
                f"{path}: its columns ({shown_names(_data_columns(schema))}) differ from {files[0].name}'s "
                f"({shown_names(names)}); every Parquet file of a folder needs the same columns"
            )
    if sum(rows) == 0:
        raise DataError(f"{source}: has no rows")
    choice = selection or Selection()
    if len(names) < 2 and isinstance(choice, Selection):  # a label and a feature at least
        raise DataError(f"{source}: needs at least one feature column besides the label; columns are: "
                        f"{', '.join(names)}")
    target, ident, features = choice.resolve(source, names)
    layout = ParquetLayout(source, files, rows, names, target, ident, features)
    for path, schema in zip(files, schemas, strict=True):
        _check_numeric(pa, path, schema, layout.feature_names)
    return layout


def parquet_column_names(source: str) -> list[str]:
    """The data columns of a Parquet source (of its first file; `read_parquet_layout` checks the others)."""
    pa, _, pq = _pyarrow(source)
    with _opened(pa, pq, parquet_files(source)[0]) as parquet_file:
        return _data_columns(parquet_file.schema_arrow)


def _reason(error: BaseException) -> str:
    """pyarrow's message on one short line: its line breaks as spaces, any byte it quotes from a
    damaged footer as an escape (``\\x0f``), at most 160 characters."""
    text = visible(" ".join(str(error).split()))
    return text if len(text) <= 160 else text[:157] + "..."


@contextmanager
def _opened(pa: ModuleType, pq: ModuleType, path: ParquetPath) -> Iterator[Any]:
    """``pq.ParquetFile(path)``, closed after; a file pyarrow cannot open is a DataError naming it."""
    with ExitStack() as stack:
        if isinstance(path, RemoteFile):
            source: Any = stack.enter_context(remote.open_binary(path.url))
        else:
            source = path
        try:
            parquet_file = pq.ParquetFile(source)
        except (pa.ArrowException, OSError) as error:
            raise DataError(f"{path}: not a readable Parquet file ({_reason(error)})") from None
        try:
            yield parquet_file
        finally:
            parquet_file.close()


def _data_columns(schema: Any) -> list[str]:
    """The column names, less an unnamed index pandas stored as a column (``__index_level_0__``;
    a named index is data, such as an id column)."""
    try:
        index = (schema.pandas_metadata or {}).get("index_columns", [])
    except ValueError:  # metadata that is not JSON: no pandas index to leave out
        index = []
    unnamed = {name for name in index if isinstance(name, str) and name.startswith("__index_level_")}
    return [name for name in schema.names if name not in unnamed]


def _check_numeric(pa: ModuleType, path: ParquetPath, schema: Any, feature_names: Sequence[str]) -> None:
    types = pa.types
    for name in feature_names:
        kind = schema.field(name).type
        if not (types.is_integer(kind) or types.is_floating(kind) or types.is_decimal(kind)
                or types.is_boolean(kind) or types.is_null(kind)):
            raise DataError(
                f"{path}: feature column {name!r} holds {kind} values, not numbers; Parquet features must be numeric "
                "(leave it out with data.exclude, or list the features with data.features)"
            )


def read_batches(
    layout: ParquetLayout, batch_rows: int = BATCH_ROWS, refuse_missing: str | None = None,
    missing_labels: str = "error", window: Window | None = None,
) -> Iterator[ParquetBatch]:
    """The rows of every file in order (or of ``window``), in batches of at most ``batch_rows``. A
    null or NaN label, inf in a feature, and a null or NaN feature when ``refuse_missing`` says why
    not (else it is read as NaN) are DataErrors naming the file, the row (1: its first) and the column."""
    batches = _batches(layout, batch_rows, refuse_missing, missing_labels, window)
    return batches if window is None else windowed(batches, window.skip, window.count)


def labelled_counts(layout: ParquetLayout, missing_labels: str) -> list[list[int]]:
    """Per file, per row group: its rows that have a label (``missing_labels="error"``: all of them,
    from the metadata; a missing label is refused when the rows are read)."""
    pa, pc, pq = _pyarrow(layout.source)
    counts = []
    for path in layout.files:
        with _opened(pa, pq, path) as parquet_file:
            groups = range(parquet_file.num_row_groups)
            if missing_labels == "error" or layout.target is None:
                counts.append([parquet_file.metadata.row_group(group).num_rows for group in groups])
                continue
            name = layout.names[layout.target]
            file_counts = []
            for group in groups:
                table = parquet_file.read_row_group(group, columns=[name], use_pandas_metadata=False)
                column = table.column(name).combine_chunks()
                texts, codes = _texts(pa, pc, column, path, name)
                blank = np.isin(codes, np.flatnonzero(missing_mask(np.char.strip(texts)))) | (codes < 0)
                file_counts.append(int(len(codes) - np.count_nonzero(blank)))
            counts.append(file_counts)
    return counts


def _batches(
    layout: ParquetLayout, batch_rows: int, refuse_missing: str | None, missing_labels: str, window: Window | None,
) -> Iterator[ParquetBatch]:
    pa, pc, pq = _pyarrow(layout.source)
    chosen = {*layout.features} | {index for index in (layout.target, layout.ident) if index is not None}
    wanted = [layout.names[index] for index in sorted(chosen)]
    start_file, start_group = (0, 0) if window is None else (window.file, window.group)
    for file_index, path in enumerate(layout.files):
        if file_index < start_file:
            continue
        first_row = 0
        with _opened(pa, pq, path) as parquet_file:
            groups = None
            if file_index == start_file and start_group:
                first_row = sum(parquet_file.metadata.row_group(group).num_rows for group in range(start_group))
                groups = list(range(start_group, parquet_file.num_row_groups))
            try:
                for batch in parquet_file.iter_batches(batch_rows, row_groups=groups, columns=wanted,
                                                       use_pandas_metadata=False):
                    batch_read = _batch(pa, pc, layout, batch, path, first_row, refuse_missing)
                    yield _labelled(batch_read, path, first_row, layout, missing_labels)
                    first_row += batch.num_rows
            except (pa.ArrowException, OSError) as error:
                raise DataError(f"{path}: not a readable Parquet file ({_reason(error)})") from None


def _batch(pa: ModuleType, pc: ModuleType, layout: ParquetLayout, batch: Any, path: ParquetPath, first_row: int,
           refuse_missing: str | None) -> ParquetBatch:
    X = _features(pa, pc, layout, batch, path, first_row, refuse_missing)
    texts, codes = np.empty(0, dtype=str), np.empty(0, dtype=np.intp)
    if layout.target is not None:
        label_name = layout.names[layout.target]
        texts, codes = _texts(pa, pc, batch.column(label_name), path, label_name)
        texts = np.char.strip(texts)
    ids = None
    if layout.ident is not None:
        id_texts, id_codes = _texts(pa, pc, batch.column(layout.names[layout.ident]), path, layout.names[layout.ident])
        ids = np.append(id_texts, "")[id_codes]  # a null id (code -1) is an empty text
    return ParquetBatch(X, texts, codes, ids)


def _labelled(batch: ParquetBatch, path: ParquetPath, first_row: int, layout: ParquetLayout,
              missing_labels: str) -> ParquetBatch:
    """``batch`` less its rows without a label (a null, NaN, empty or missing-token label), counted;
    under ``missing_labels="error"`` the first is refused, naming its row (1: the file's first)."""
    if layout.target is None:
        return batch
    blank = np.isin(batch.label_codes, np.flatnonzero(missing_mask(batch.label_texts))) | (batch.label_codes < 0)
    if not blank.any():
        return batch
    if missing_labels == "error":
        row = int(np.flatnonzero(blank)[0])
        code = int(batch.label_codes[row])
        cell = batch.label_texts[code] if code >= 0 else ""
        raise missing_label_error(str(path), f"row {first_row + row + 1}", cell, layout.names[layout.target])
    keep = ~blank
    ids = None if batch.ids is None else batch.ids[keep]
    return ParquetBatch(batch.X[keep], batch.label_texts, batch.label_codes[keep], ids, int(blank.sum()))


def _features(pa: ModuleType, pc: ModuleType, layout: ParquetLayout, batch: Any, path: ParquetPath, first_row: int,
              refuse_missing: str | None) -> np.ndarray:
    """The feature columns of a batch as float64 (n_rows, n_features), NaN for a null."""
    X = np.empty((batch.num_rows, len(layout.features)))
    for column, name in enumerate(layout.feature_names):
        values = pc.cast(batch.column(name), pa.float64(), safe=False)  # integers round as numpy rounds them
        X[:, column] = values.to_numpy(zero_copy_only=False)
    bad = np.isinf(X) if refuse_missing is None else ~np.isfinite(X)
    if bad.any():
        row, column = (int(index) for index in np.argwhere(bad)[0])
        value = X[row, column]
        what = f"missing value; {refuse_missing}" if np.isnan(value) else (
            f"{value} is not a finite number (NaN and inf are not allowed in features)")
        raise DataError(f"{path}: row {first_row + row + 1}, column {layout.feature_names[column]!r}: {what}")
    return X


def _texts(pa: ModuleType, pc: ModuleType, column: Any, path: ParquetPath, name: str) -> tuple[np.ndarray, np.ndarray]:
    """A column's distinct values as text (str) and each row's index into them (-1: null or NaN)."""
    try:
        encoded = column if pa.types.is_dictionary(column.type) else pc.dictionary_encode(column)
        dictionary = encoded.dictionary
        texts = pc.cast(dictionary, pa.string()).to_numpy(zero_copy_only=False)
    except (pa.ArrowException, ValueError) as error:
        raise DataError(f"{path}: column {name!r} holds {column.type} values, which have no text ({error})") from None
    texts = np.asarray(["" if text is None else text for text in texts.tolist()], dtype=str)
    codes = encoded.indices.fill_null(-1).to_numpy(zero_copy_only=False).astype(np.intp)
    if pa.types.is_floating(dictionary.type):
        nan = np.flatnonzero(np.asarray(pc.is_nan(dictionary).fill_null(False)))
        codes = np.where(np.isin(codes, nan), -1, codes)
    return texts, codes

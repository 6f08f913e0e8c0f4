"""The data ``softreg evaluate`` scores, read a chunk at a time: the run's test split, or other
data in any format training reads (delimited text and Parquet streamed, through the fast numeric
reader where it can; svmlight and ``.npz`` whole), each chunk as raw features and class indices."""

from __future__ import annotations

import os
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from os import PathLike
from pathlib import Path

import numpy as np

from softreg import rundir
from softreg.cache import budget
from softreg.columns import MISSING_HINT, Columns
from softreg.data import encode_with
from softreg.delimited import CHUNK_ROWS, Chunk, Selection, delimited_chunks, hint_label_first, typed_labels
from softreg.delimited_numbers import NotNumeric, NumericChunk, numbers_then_text, read_layout
from softreg.errors import DataError, warn
from softreg.kernels import Matrix
from softreg.model import Model
from softreg.parquet import parquet_column_names, read_batches, read_parquet_layout
from softreg.sources import (
    DELIMITED_SUFFIXES,
    align_features,
    check_file,
    load_source,
    looks_like_svmlight,
    source_kind,
)

EvaluatedChunks = Iterator[tuple[Matrix, np.ndarray]]  # raw features (n, d), class indices (n,)


@contextmanager
def evaluated_chunks(
    run_dir: str | PathLike[str], model: Model, data: str | None, label: str | int | None, header: bool | None,
    chunk_rows: int | None,
) -> Iterator[tuple[EvaluatedChunks, str]]:
    """The evaluated rows in chunks, and a description of them: delimited text and Parquet
    streamed, the saved test split and other sources (.npz, svmlight, builtin) in one piece.
    Whatever can be refused before the first row (a missing file, missing columns) is refused
    on entry."""
    if data is not None and _streams(data):
        with _delimited_chunks(run_dir, model, data, label, header, chunk_rows) as chunks:
            yield chunks, data
        return
    if data is not None and source_kind(data) == "parquet":
        rows = chunk_rows or budget.chunk_rows(budget.run_budget(run_dir), len(model.input_names) + 2, CHUNK_ROWS)
        yield _parquet_chunks(model, data, label if label is not None else _label_for(data, model, header), rows), data
        return
    X_raw, y, source = _evaluated_data(run_dir, model, data, label, header)
    yield iter([(X_raw, y)]), source


def _streams(source: str) -> bool:
    """Whether ``source`` is delimited text, read in chunks (`softreg.sources.load_source`'s rule)."""
    if source == "-":
        return True
    path = Path(source)
    if source_kind(source) != "delimited":
        return False
    return path.suffix.lower() in DELIMITED_SUFFIXES or not path.is_file() or not looks_like_svmlight(path)


@contextmanager
def _delimited_chunks(
    run_dir: str | PathLike[str], model: Model, data: str, label: str | int | None, header: bool | None,
    chunk_rows: int | None,
) -> Iterator[EvaluatedChunks]:
    """Stream a labelled delimited file as `_evaluated_data` reads it whole: the same columns,
    checks and messages, a chunk at a time; through the fast path when the model reads plain
    numeric columns, as text cells otherwise and from wherever the fast path declines."""
    flag = header if header is not None else model.header
    label = label if label is not None else _label_for(data, model, flag)
    if data != "-":
        check_file(data, Path(data))
    rows = chunk_rows or budget.chunk_rows(budget.run_budget(run_dir), len(model.input_names) + 2, CHUNK_ROWS)
    delimiter = DELIMITED_SUFFIXES.get(Path(data).suffix.lower()) if data != "-" else None
    columns = model.columns or Columns.numeric(model.feature_names)
    choice = _EvaluatedColumns(model, label, data)
    try:
        layout = read_layout(data, choice, delimiter, flag) if columns.plain else None
    except NotNumeric:  # the text path reads the file, and refuses what it must
        layout = None
    if layout is not None and layout.target is not None and choice.hints(layout.target) and 0 not in layout.features:
        layout = None  # column 0 may hold text labels to warn about, which only the text path reads
    if layout is not None:

        def text(names: list[str], chunks: Iterator[Chunk], skipped: int) -> EvaluatedChunks:
            return _text_chunks(model, columns, choice, names, chunks, first=skipped == 0)

        evaluated = numbers_then_text(layout, rows, lambda chunk: _numeric_chunk(model, chunk, data), text)
        try:
            yield evaluated
        finally:
            evaluated.close()  # the file, when the rows are left before their end
        return
    with delimited_chunks(data, delimiter, rows, flag) as (names, chunks):
        choice.columns(names)  # refuse missing columns up front
        yield _text_chunks(model, columns, choice, names, chunks, first=True)


@dataclass(frozen=True)
class _EvaluatedColumns:
    """The columns of a labelled file to evaluate (a `softreg.delimited.ColumnChoice`): ``label``
    (None: the last column), and the model's input columns among the others."""

    model: Model
    label: str | int | None
    where: str

    def columns(self, header: Sequence[str]) -> tuple[int, list[int], list[int]]:
        """The label's index, every other column's (the candidate features), and the model's input columns'."""
        if len(header) < 2:
            raise DataError(
                f"{self.where}: needs at least one feature column besides the label; columns are: {', '.join(header)}"
            )
        target, _, features = Selection(label=self.label).resolve(self.where, header)
        names = [header[index] for index in features]
        return target, features, [features[index] for index in self.model.input_positions(names, self.where)]

    def hints(self, target: int) -> bool:
        """Whether the text path looks at the first chunk for text labels in column 0 (`hint_label_first`),
        which is a candidate feature unless it is the label."""
        return self.label is None and target != 0

    def resolve(self, path: str | PathLike[str], header: Sequence[str]) -> tuple[int, None, list[int]]:
        target, _, positions = self.columns(header)
        return target, None, positions


def _numeric_chunk(model: Model, chunk: NumericChunk, where: str) -> tuple[np.ndarray, np.ndarray]:
    """Raw features and class indices of rows read by the fast path: the text path's, bit for bit;
    NotNumeric for a value too large to standardize (the text path reads that chunk again and
    names its line)."""
    X = np.ascontiguousarray(chunk.X)  # laid out as the text path's: the same arithmetic, the same bits
    try:
        model.check_finite_standardized(X, where)
    except DataError:
        raise NotNumeric from None
    return X, encode_with(model.classes, typed_labels(chunk.labels), where)


def _text_chunks(
    model: Model, columns: Columns, choice: _EvaluatedColumns, names: list[str], chunks: Iterator[Chunk], first: bool
) -> EvaluatedChunks:
    """Raw features and class indices of rows read as text cells (every error names the line and
    column); ``first``: these chunks start at the file's first row."""
    data = choice.where
    target, _, positions = choice.columns(names)
    unknown: dict[str, int] = {}
    for number, (cells_list, lines) in enumerate(chunks):
        cells = np.array(cells_list, dtype=str)
        labels = np.char.strip(cells[:, target])
        blank = np.flatnonzero(labels == "")
        if blank.size:
            raise DataError(f"{data}: line {lines[blank[0]]}: empty label in column {names[target]!r}")
        if first and number == 0 and choice.hints(target):
            hint_label_first(data, names, cells)
        encoded = columns.encode(cells[:, positions], data, lines)
        for name, count in encoded.unknown.items():
            unknown[name] = unknown.get(name, 0) + count
        model.check_finite_standardized(encoded.X, data, lines)
        yield encoded.X, encode_with(model.classes, typed_labels(labels), data)
    if unknown:
        counts = ", ".join(f"{name}: {count}" for name, count in unknown.items())
        warn(f"{data}: categories unseen in training got all-zero indicators ({counts} cells)")


def _parquet_chunks(model: Model, data: str, label: str | int | None, chunk_rows: int) -> EvaluatedChunks:
    """A labelled Parquet file or folder, at most ``chunk_rows`` rows at a time: ``label`` (None: the
    last column) and the model's input columns among the others, by name (any other column is not
    read). A null feature is a missing value: filled as the model's columns fill them, else refused
    naming its row and column. Missing columns are refused on the call, before the first row."""
    if not os.path.isdir(data):
        check_file(data, Path(data))  # as load_source does: a pipe named .parquet is refused, not read
    layout = read_parquet_layout(data, _EvaluatedColumns(model, label, data))
    columns = model.columns or Columns.numeric(model.feature_names)
    fills = any(column.fill is not None for column in columns.columns)

    def read() -> EvaluatedChunks:
        first_row = 0
        unknown: dict[str, int] = {}
        for batch in read_batches(layout, chunk_rows, refuse_missing=None if fills else MISSING_HINT):
            X = batch.X
            if not columns.plain:
                encoded = columns.encode(X, data)
                for name, count in encoded.unknown.items():
                    unknown[name] = unknown.get(name, 0) + count
                X = encoded.X
            model.check_finite_standardized(X, data, first_row=first_row)
            yield X, encode_with(model.classes, typed_labels(batch.labels), data)
            first_row += len(batch)
        if unknown:
            counts = ", ".join(f"{name}: {count}" for name, count in unknown.items())
            warn(f"{data}: categories unseen in training got all-zero indicators ({counts} cells)")

    return read()


def _evaluated_data(
    run_dir: str | PathLike[str], model: Model, data: str | None, label: str | int | None, header: bool | None
) -> tuple[Matrix, np.ndarray, str]:
    """Raw features (n, d), class indices (n,) and a description of what is evaluated, read whole."""
    if data is None:
        X_raw, y = rundir.load_test_split(run_dir)
        if X_raw.shape[1] != model.n_features:
            raise DataError(f"{run_dir}/test.npz: has {X_raw.shape[1]} features, the model has {model.n_features}")
        return X_raw, y, f"{run_dir} (saved test split)"
    training = rundir.read_model_json(Path(run_dir) / rundir.MODEL_JSON).get("training", {})
    flag = header if header is not None else model.header
    selection = Selection(label=label if label is not None else _label_for(data, model, flag))
    dataset = load_source(data, selection, header=flag, index_base=training.get("svmlight_index_base"))
    if dataset.cells is None:
        X_raw = align_features(dataset, model.input_names, data)
    else:
        positions = model.input_positions(dataset.feature_names, data)
        columns = model.columns or Columns.numeric(model.feature_names)
        lines = None if dataset.line_numbers is None else dataset.line_numbers.tolist()
        encoded = columns.encode(dataset.cells[:, positions], data, lines)
        if encoded.unknown:
            counts = ", ".join(f"{name}: {count}" for name, count in encoded.unknown.items())
            warn(f"{data}: categories unseen in training got all-zero indicators ({counts} cells)")
        X_raw = encoded.X
    lines = None if dataset.line_numbers is None else dataset.line_numbers.tolist()
    model.check_finite_standardized(X_raw, data, lines)
    return X_raw, encode_with(model.classes, dataset.labels, data), data


def raw_features(X_raw: Matrix, n_features: int) -> np.ndarray | None:
    """Dense float64 raw features for the decision regions; None unless the model has two features."""
    if n_features != 2:
        return None
    return (X_raw if isinstance(X_raw, np.ndarray) else X_raw.toarray()).astype(np.float64)



def _label_for(source: str, model: Model, header_flag: bool | None) -> str | None:
    """Use the model's label column name when a delimited or Parquet source has it, else the default."""
    kind = source_kind(source)
    if kind not in ("delimited", "parquet") or source == "-":
        return None
    try:
        if kind == "parquet":
            header = parquet_column_names(source)
        else:
            with delimited_chunks(Path(source), header=header_flag) as (header, _):  # the header (and a few rows)
                pass
    except DataError:
        return None  # the reader says what is wrong
    return model.label_name if model.label_name in header else None

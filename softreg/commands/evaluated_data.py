"""The data ``softreg evaluate`` scores, read a chunk at a time: the run's test split, or other
data in any format training reads (delimited text and Parquet streamed, through the fast numeric
reader where it can; svmlight and ``.npz`` whole), each chunk as raw features and class indices."""

from __future__ import annotations

import os
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from os import PathLike
from pathlib import Path

import numpy as np

from softreg import rundir
from softreg.cache import budget
from softreg.commands.common import saved_storage_options
from softreg.errors import DataError, warn
from softreg.io.cells import label_policy, unlabelled_note
from softreg.io.delimited import CHUNK_ROWS, hint_label_first, typed_labels
from softreg.io.delimited_numbers import NotNumeric
from softreg.io.kinds import check_file, default_delimiter, source_kind
from softreg.io.remote import storage_options
from softreg.io.selection import Selection
from softreg.io.sources import align_features
from softreg.io.stream import ReadOptions, RowChunk, Rows, column_names, open_rows
from softreg.kernels import Matrix
from softreg.model import Model
from softreg.prepare.columns import MISSING_HINT, Columns
from softreg.prepare.labels import encode_with

EvaluatedChunks = Iterator[tuple[Matrix, np.ndarray]]  # raw features (n, d), class indices (n,)


@contextmanager
def evaluated_chunks(
    run_dir: str | PathLike[str], model: Model, data: str | None, label: str | int | None, header: bool | None,
    chunk_rows: int | None,
) -> Iterator[tuple[EvaluatedChunks, str]]:
    """The evaluated rows in chunks, and a description of them: delimited text and Parquet
    streamed, the saved test split and other sources (.npz, svmlight, builtin) in one piece.
    Whatever can be refused before the first row (a missing file, missing columns) is refused
    on entry. A URL opens with the run's ``data.storage_options``."""
    with storage_options(saved_storage_options(run_dir)):
        kind = None if data is None else source_kind(data)
        if data is not None and kind in ("delimited", "parquet"):
            with _streamed_chunks(run_dir, model, data, kind, label, header, chunk_rows) as chunks:
                yield chunks, data
            return
        X_raw, y, source = _evaluated_data(run_dir, model, data, label)
        yield iter([(X_raw, y)]), source


@contextmanager
def _streamed_chunks(
    run_dir: str | PathLike[str], model: Model, data: str, kind: str | None, label: str | int | None,
    header: bool | None, chunk_rows: int | None,
) -> Iterator[EvaluatedChunks]:
    """Stream a labelled delimited file or Parquet source (`open_evaluated`); one warning at the
    end counts the rows left out without a label and the categories unseen in training."""
    reading = evaluated_reading(run_dir, model, data, label, header, chunk_rows)
    if data != "-" and (kind == "delimited" or not os.path.isdir(data)):
        check_file(data, Path(data))  # as load_source does: a pipe named .parquet is refused, not read
    notes = ReadNotes()
    with open_evaluated(model, data, reading, notes) as chunks:
        yield _warned_after(chunks, notes, data)


def check_part_columns(model: Model, reading: EvaluatedReading, part: str) -> None:
    """Refuse, naming ``part``, a part of a source that lacks the label or one of the model's input columns."""
    _EvaluatedColumns(model, reading.label, part).columns(column_names(part))


def _warned_after(chunks: EvaluatedChunks, notes: ReadNotes, data: str) -> EvaluatedChunks:
    yield from chunks
    notes.warn(data)


@dataclass(frozen=True)
class EvaluatedReading:
    """How ``evaluate`` reads a labelled delimited or Parquet source (the same for each of its parts):
    the label column (None: the last), the read options and the rows read at a time."""

    label: str | int | None
    options: ReadOptions
    chunk_rows: int


def evaluated_reading(
    run_dir: str | PathLike[str], model: Model, data: str, label: str | int | None, header: bool | None,
    chunk_rows: int | None,
) -> EvaluatedReading:
    """``label`` (None: the model's label column when the source has it, else the last column), the
    header as in training unless ``header`` says, ``chunk_rows`` (None: from the run's
    ``data.memory_budget``), missing values and labels as the run's config treats them."""
    flag = header if header is not None else model.header
    label = label if label is not None else _label_for(data, model, flag)
    rows = chunk_rows or budget.read_chunk_rows(budget.run_budget(run_dir), len(model.input_names) + 2, CHUNK_ROWS)
    columns = model.columns or Columns.numeric(model.feature_names)
    fills = any(column.fill is not None for column in columns.columns)
    options = ReadOptions(
        delimiter=default_delimiter(data), header=flag, numbers=columns.plain,
        refuse_missing=None if fills else MISSING_HINT, missing_labels=run_label_policy(run_dir),
    )
    return EvaluatedReading(label, options, rows)


@dataclass
class ReadNotes:
    """What reading met that the user hears about once, at the end: rows left out without a label
    and categories unseen in training (cells per column). Adds up over chunks and parts."""

    unlabelled: int = 0
    unknown: dict[str, int] = field(default_factory=dict)

    def add_unknown(self, unknown: dict[str, int]) -> None:
        for name, count in unknown.items():
            self.unknown[name] = self.unknown.get(name, 0) + count

    def merge(self, other: ReadNotes) -> None:
        self.unlabelled += other.unlabelled
        self.add_unknown(other.unknown)

    def warn(self, data: str) -> None:
        """One warning for each kind of note, naming ``data``."""
        if self.unlabelled:
            warn(unlabelled_note(data, self.unlabelled))
        if self.unknown:
            counts = ", ".join(f"{name}: {count}" for name, count in self.unknown.items())
            warn(f"{data}: categories unseen in training got all-zero indicators ({counts} cells)")


@contextmanager
def open_evaluated(model: Model, data: str, reading: EvaluatedReading, notes: ReadNotes) -> Iterator[EvaluatedChunks]:
    """The chunks of a labelled delimited or Parquet source through `open_rows`: the label column and
    the model's input columns among the others (missing ones refused on entry, naming ``data``).
    Delimited text goes through the fast path when the model reads plain numeric columns, as text
    cells otherwise and from wherever the fast path declines; a null Parquet feature is a missing
    value, filled as the model's columns fill them, else refused naming its row and column. What
    is left out or unseen is counted in ``notes``."""
    columns = model.columns or Columns.numeric(model.feature_names)
    choice = _EvaluatedColumns(model, reading.label, data)
    with open_rows(data, choice, reading.options, reading.chunk_rows) as opened:
        if opened.target is not None and choice.hints(opened.target) and 0 not in opened.features:
            opened.decline()  # column 0 may hold text labels to warn about, which only the text path reads
        yield _evaluated(model, columns, choice, opened, notes)


@dataclass(frozen=True)
class _EvaluatedColumns:
    """The columns of a labelled file to evaluate (a `softreg.io.selection.ColumnChoice`): ``label``
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
        target, _, features = Selection(label=self.label, row_names=False).resolve(self.where, header)
        names = [header[index] for index in features]
        return target, features, [features[index] for index in self.model.input_positions(names, self.where)]

    def hints(self, target: int) -> bool:
        """Whether the text path looks at the first chunk for text labels in column 0 (`hint_label_first`),
        which is a candidate feature unless it is the label."""
        return self.label is None and target != 0

    def resolve(self, path: str | PathLike[str], header: Sequence[str]) -> tuple[int, None, list[int]]:
        target, _, positions = self.columns(header)
        return target, None, positions


def _evaluated(
    model: Model, columns: Columns, choice: _EvaluatedColumns, rows: Rows, notes: ReadNotes
) -> EvaluatedChunks:
    """Raw features and class indices of each chunk (errors name the line of text cells, the row of
    Parquet); the rows left out and the categories unseen in training counted in ``notes``."""
    data = choice.where
    for chunk in rows.chunks:
        notes.unlabelled += chunk.unlabelled
        if chunk.cells is not None:
            if chunk.first_row == 0 and rows.target is not None and choice.hints(rows.target):
                hint_label_first(data, rows.names, chunk.cells)
            X = _encoded(columns, chunk.cells[:, rows.features], data, chunk.lines, notes)
        elif rows.kind == "delimited":
            try:
                numeric = _numeric_chunk(model, chunk, data)
            except NotNumeric:
                rows.decline()  # the text path reads the chunk again, and names the line
                continue
            yield numeric
            continue
        else:
            X = np.asarray(chunk.X) if columns.plain else _encoded(columns, np.asarray(chunk.X), data, None, notes)
        model.check_finite_standardized(X, data, chunk.lines, first_row=chunk.first_row)
        yield X, encode_with(model.classes, typed_labels(chunk.labels), data)


def _encoded(columns: Columns, cells: np.ndarray, data: str, lines: list[int] | None, notes: ReadNotes
             ) -> np.ndarray:
    """The features of ``cells`` (n, n_columns) under the model's columns; the unseen categories
    met are counted in ``notes``."""
    encoded = columns.encode(cells, data, lines)
    notes.add_unknown(encoded.unknown)
    return encoded.X


def _numeric_chunk(model: Model, chunk: RowChunk, where: str) -> tuple[np.ndarray, np.ndarray]:
    """Raw features and class indices of rows read by the fast path: the text path's, bit for bit;
    NotNumeric for a value too large to standardize (the text path reads that chunk again and
    names its line)."""
    X = np.ascontiguousarray(chunk.X)  # laid out as the text path's: the same arithmetic, the same bits
    try:
        model.check_finite_standardized(X, where)
    except DataError:
        raise NotNumeric from None
    return X, encode_with(model.classes, typed_labels(chunk.labels), where)


def _evaluated_data(
    run_dir: str | PathLike[str], model: Model, data: str | None, label: str | int | None
) -> tuple[Matrix, np.ndarray, str]:
    """Raw features (n, d), class indices (n,) and a description of what is evaluated, read whole:
    the saved test split, or a svmlight, .npz or builtin source (svmlight with the training file's
    first feature index)."""
    if data is None:
        X_raw, y = rundir.load_test_split(run_dir)
        if X_raw.shape[1] != model.n_features:
            raise DataError(f"{run_dir}/test.npz: has {X_raw.shape[1]} features, the model has {model.n_features}")
        return X_raw, y, f"{run_dir} (saved test split)"
    training = rundir.read_model_json(Path(run_dir) / rundir.MODEL_JSON).get("training", {})
    options = ReadOptions(index_base=training.get("svmlight_index_base"), missing_labels=run_label_policy(run_dir))
    with open_rows(data, Selection(label=label), options) as rows:  # a label is refused: these carry theirs
        dataset = rows.dataset
    assert dataset is not None, "a source that is not streamed is read whole"
    if dataset.unlabelled:
        warn(unlabelled_note(data, dataset.unlabelled))
    X_raw = align_features(dataset, model.input_names, data)
    model.check_finite_standardized(X_raw, data)
    return X_raw, encode_with(model.classes, dataset.labels, data), data


def run_label_policy(run_dir: str | PathLike[str]) -> str:
    """What evaluating other data does with a row without a label: as the run's training did
    (its config's ``data.missing``: ``error`` refuses it, else it is left out and counted)."""
    import yaml

    try:
        config = yaml.safe_load((Path(run_dir) / rundir.CONFIG).read_text())
    except (OSError, yaml.YAMLError):
        return "error"
    data = config.get("data") if isinstance(config, dict) else None
    missing = data.get("missing", "error") if isinstance(data, dict) else "error"
    return label_policy(str(missing))


def raw_features(X_raw: Matrix, n_features: int) -> np.ndarray | None:
    """Dense float64 raw features for the decision regions; None unless the model has two features."""
    if n_features != 2:
        return None
    return (X_raw if isinstance(X_raw, np.ndarray) else X_raw.toarray()).astype(np.float64)


def _label_for(source: str, model: Model, header_flag: bool | None) -> str | None:
    """Use the model's label column name when a delimited or Parquet source has it, else the default."""
    if source_kind(source) not in ("delimited", "parquet") or source == "-":
        return None
    try:
        header = column_names(source, header_flag)
    except DataError:
        return None  # the reader says what is wrong
    return model.label_name if model.label_name in header else None

"""``softreg predict``: labels and probabilities for a file of raw features, streamed.

Every format ``train`` reads is accepted: delimited text (``-`` for standard input),
Parquet, svmlight and ``.npz`` (read whole), and builtin names. Parquet is read in
batches, by the model's input column names (no label needed). Delimited input is read the way
training read its file (its header rule and columns, from ``model.json``), one chunk at
a time, so memory stays bounded whatever the file's size: numbers through the fast path
(`softreg.io.delimited_numbers`) when the model's input columns are plain numeric ones, text
cells otherwise and from wherever the fast path declines (their errors name the line).
"""

from __future__ import annotations

import csv
import os
import shutil
import sys
import tempfile
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from os import PathLike
from pathlib import Path
from typing import IO

import numpy as np

from softreg import rundir
from softreg.cache import budget
from softreg.commands.common import saved_storage_options
from softreg.errors import DataError, warn
from softreg.io.dataset import Dataset
from softreg.io.delimited import CHUNK_ROWS
from softreg.io.delimited_numbers import NotNumeric
from softreg.io.kinds import check_file, source_kind
from softreg.io.remote import is_url, storage_options
from softreg.io.sources import align_features
from softreg.io.stream import ReadOptions, RowChunk, Rows, open_rows
from softreg.model import Model
from softreg.prepare.columns import MISSING_HINT, Columns


@dataclass
class Predictions:
    """One chunk of predictions: ids (or None), labels (n,), probabilities (n, n_classes)."""

    ids: np.ndarray | None
    labels: np.ndarray
    proba: np.ndarray


@dataclass
class PredictionStream:
    """What `prediction_stream` yields: the classes, the id column's name, the chunks."""

    classes: np.ndarray
    id_name: str | None
    chunks: Iterator[Predictions]
    unknown: dict[str, int] = field(default_factory=dict)  # unseen categories met, per column


@contextmanager
def prediction_stream(
    run_dir: str | PathLike[str],
    input_path: str | PathLike[str],
    chunk_rows: int | None = None,
    header: bool | None = None,
    validate: bool = False,
) -> Iterator[PredictionStream]:
    """Predictions for a file of raw features.

    Columns are matched by the model's input column names (any other column, such as the
    label, is ignored), or by position in a file without a header. Everything that can be
    refused up front (the model, a missing file, missing columns) is refused before the
    first chunk; with ``validate`` the whole input is read and checked once before (so
    that no output line is written for an input that fails further down; standard input is
    then spooled to a temporary file), otherwise it is read once, as it comes.

    ``header`` overrides the model's (None: as in training, else the header rule).
    ``chunk_rows`` (None: from the run's ``data.memory_budget``, `softreg.cache.budget.read_chunk_rows`)
    bounds the rows parsed at a time. A URL opens with the run's ``data.storage_options``.
    """
    with storage_options(saved_storage_options(run_dir)), _prediction_stream(
        run_dir, input_path, chunk_rows, header, validate
    ) as stream:
        yield stream


@contextmanager
def _prediction_stream(
    run_dir: str | PathLike[str], input_path: str | PathLike[str], chunk_rows: int | None, header: bool | None,
    validate: bool,
) -> Iterator[PredictionStream]:
    model = rundir.load_model(run_dir)
    source = str(input_path)
    kind = source_kind(source)
    if kind not in ("delimited", "parquet"):
        with stream_predictions(model, source, source, CHUNK_ROWS, header) as stream:
            yield stream  # read whole, predicted before the first line is written
        return
    if chunk_rows is None:
        chunk_rows = budget.read_chunk_rows(budget.run_budget(run_dir), len(model.input_names) + 2, CHUNK_ROWS)
    if kind == "parquet":
        if not os.path.isdir(source):
            check_file(source, Path(source))  # as load_source does: a pipe named .parquet is refused, not read
        with _checked_stream(model, source, source, chunk_rows, header, validate) as stream:
            yield stream
        return
    with _seekable(source, spool=validate) as path, _checked_stream(
        model, path, source, chunk_rows, header, validate
    ) as stream:
        yield stream


@contextmanager
def _checked_stream(
    model: Model, path: str, where: str, chunk_rows: int, header: bool | None, validate: bool
) -> Iterator[PredictionStream]:
    """`stream_predictions`, read through once before when ``validate``; the unseen categories warned about after."""
    if validate:
        with stream_predictions(model, path, where, chunk_rows, header) as stream:
            for _ in stream.chunks:
                pass
    with stream_predictions(model, path, where, chunk_rows, header) as stream:
        yield stream
        warn_unknown(where, stream.unknown)


def warn_unknown(source: str, unknown: dict[str, int]) -> None:
    """One warning counting the categories unseen in training met in ``source`` (per column), if any."""
    if unknown:
        counts = ", ".join(f"{name}: {count}" for name, count in unknown.items())
        warn(f"{source}: categories unseen in training got all-zero indicators ({counts} cells)")


@contextmanager
def _seekable(source: str, spool: bool = True) -> Iterator[str]:
    """A path to read (twice if need be): the file itself, or standard input, spooled to a
    temporary file when ``spool``."""
    if source == "-" and not spool:
        yield source
        return
    if is_url(source):  # read again from its store
        yield source
        return
    if source != "-":
        path = Path(source)
        if not path.exists():
            raise DataError(f"{source}: input file not found")
        if not path.is_file():
            raise DataError(f"{source}: is not a regular file; give a file, or - for standard input")
        yield source
        return
    with tempfile.NamedTemporaryFile("wb", suffix=".csv") as copy:
        shutil.copyfileobj(sys.stdin.buffer, copy)
        copy.flush()
        yield copy.name


@dataclass(frozen=True)
class InputColumns:
    """The columns of a file to predict (a `softreg.io.selection.ColumnChoice`): no label, the
    model's input columns (`Model.input_positions`: by name, or by position in a file without
    a header) and its id column when the file has one."""

    model: Model
    where: str  # the input as the user named it, for messages

    def resolve(self, path: str | PathLike[str], header: Sequence[str]) -> tuple[None, int | None, list[int]]:
        return None, self.model.id_position(header), self.model.input_positions(header, self.where)


@contextmanager
def stream_predictions(
    model: Model, path: str, where: str, chunk_rows: int, header: bool | None
) -> Iterator[PredictionStream]:
    """Stream predictions of ``path`` (named ``where`` in messages) read through `open_rows`: the model's
    input columns (`InputColumns`; any other column, a label, is not used), the id column copied
    when the model has one and the file too. Delimited text goes through the fast path when the
    model reads plain numeric columns; a null Parquet value is a missing value, filled as the
    model's columns fill them, else refused naming its row and column; svmlight, .npz and builtin
    input are read and predicted whole, on opening."""
    columns = model.columns or Columns.numeric(model.feature_names)
    fills = any(column.fill is not None for column in columns.columns)
    flag = header if header is not None else model.header
    options = ReadOptions(header=flag, numbers=columns.plain, refuse_missing=None if fills else MISSING_HINT)
    with open_rows(path, InputColumns(model, where), options, chunk_rows, where) as rows:
        stream = PredictionStream(model.classes, model.id_name if rows.ident is not None else None, iter(()))
        if rows.dataset is not None:
            stream.chunks = iter([_whole_predictions(model, rows.dataset, where)])
        else:
            stream.chunks = _predictions(model, columns, stream, rows, where)
        yield stream


def _predictions(
    model: Model, columns: Columns, stream: PredictionStream, rows: Rows, where: str
) -> Iterator[Predictions]:
    """Predictions of each chunk; the unseen categories met are counted in ``stream.unknown``."""
    for chunk in rows.chunks:
        if chunk.cells is not None:
            yield _text_predictions(model, columns, stream, rows, chunk, where)
        elif rows.kind == "parquet":
            yield _parquet_predictions(model, columns, stream, chunk, where)
        else:
            try:
                predictions = _numeric_predictions(model, chunk, where)
            except NotNumeric:
                rows.decline()  # the text path reads the chunk again, and names the line
                continue
            yield predictions


def _numeric_predictions(model: Model, chunk: RowChunk, where: str) -> Predictions:
    """Predictions of rows read by the fast path: those of the text path, bit for bit; NotNumeric
    for a value too large to standardize (the text path reads that chunk again and names its line)."""
    X = np.ascontiguousarray(chunk.X)  # laid out as the text path's: the same arithmetic, the same bits
    try:
        model.check_finite_standardized(X, where)
    except DataError:
        raise NotNumeric from None
    proba = model.predict_proba(X)
    return Predictions(chunk.ids, model.classes[proba.argmax(axis=1)], proba)


def _text_predictions(
    model: Model, columns: Columns, stream: PredictionStream, rows: Rows, chunk: RowChunk, where: str
) -> Predictions:
    """Predictions of rows read as text cells (every error names the line and column)."""
    assert chunk.cells is not None, "a text chunk"
    encoded = columns.encode(chunk.cells[:, rows.features], where, chunk.lines)
    model.check_finite_standardized(encoded.X, where, chunk.lines)
    for name, count in encoded.unknown.items():
        stream.unknown[name] = stream.unknown.get(name, 0) + count
    proba = model.predict_proba(encoded.X)
    return Predictions(chunk.ids, model.classes[proba.argmax(axis=1)], proba)


def _parquet_predictions(
    model: Model, columns: Columns, stream: PredictionStream, chunk: RowChunk, where: str
) -> Predictions:
    """Predictions of Parquet rows: numbers, encoded by the model's columns unless plain."""
    X = chunk.X
    if not columns.plain:
        encoded = columns.encode(np.asarray(X), where)
        for name, count in encoded.unknown.items():
            stream.unknown[name] = stream.unknown.get(name, 0) + count
        X = encoded.X
    model.check_finite_standardized(X, where, first_row=chunk.first_row)
    proba = model.predict_proba(X)
    return Predictions(chunk.ids, model.classes[proba.argmax(axis=1)], proba)


def _whole_predictions(model: Model, dataset: Dataset, where: str) -> Predictions:
    """Predictions for svmlight, .npz or builtin input, read whole."""
    X = align_features(dataset, model.input_names, where)
    model.check_finite_standardized(X, where)
    proba = model.predict_proba(X)
    return Predictions(None, model.classes[proba.argmax(axis=1)], proba)


def write_predictions(handle: IO[str], stream: PredictionStream, delimiter: str = ",") -> int:
    """Delimited text with the id column (when the model has one and the input too), ``label``
    and one ``prob_<class>`` column per class, each probability with 10 significant digits
    (``f"{p:.10g}"``); returns the row count."""
    writer = csv.writer(handle, delimiter=delimiter, lineterminator="\n")
    id_columns = [stream.id_name] if stream.id_name is not None else []
    writer.writerow([*id_columns, "label"] + [f"prob_{label}" for label in stream.classes])
    numbers = delimiter.join(["%.10g"] * len(stream.classes))  # "%.10g" % p is f"{p:.10g}"
    count = 0
    for chunk in stream.chunks:
        labels = _unquoted(chunk.labels, delimiter)
        ids = None if chunk.ids is None else _unquoted(chunk.ids, delimiter)
        if labels is None or (chunk.ids is not None and ids is None):
            _write_rows(handle, delimiter, chunk)
        else:  # what csv.writer writes, a row at a time instead of a field at a time (a few times faster)
            leads = labels if ids is None else [
                f"{ident}{delimiter}{label}" for ident, label in zip(ids, labels, strict=True)
            ]
            rows = zip(leads, chunk.proba.tolist(), strict=True)
            handle.write("".join([f"{lead}{delimiter}{numbers % tuple(row)}\n" for lead, row in rows]))
        count += len(chunk.labels)
    return count


def _unquoted(values: np.ndarray, delimiter: str) -> list[str] | None:
    """The texts of ``values`` (str or integers) as csv.writer writes them, when it writes each as it
    is: none empty, none holding the delimiter, a quote or a line end; else None."""
    if values.dtype.kind not in "Uiu":
        return None
    texts = [str(value) for value in values.tolist()] if values.dtype.kind != "U" else values.tolist()
    joined = "\x00".join(texts)
    if any(special in joined for special in (delimiter, '"', "\r", "\n")) or (texts and min(map(len, texts)) == 0):
        return None
    return texts


def _write_rows(handle: IO[str], delimiter: str, chunk: Predictions) -> None:
    """A chunk through csv.writer, which quotes what needs quotes."""
    writer = csv.writer(handle, delimiter=delimiter, lineterminator="\n")
    probabilities = [[f"{value:.10g}" for value in row] for row in chunk.proba.tolist()]
    labels = chunk.labels.tolist()
    if chunk.ids is not None:
        rows = zip(chunk.ids.tolist(), labels, probabilities, strict=True)
        writer.writerows([ident, label, *row] for ident, label, row in rows)
    else:
        writer.writerows([label, *row] for label, row in zip(labels, probabilities, strict=True))

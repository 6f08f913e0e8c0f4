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
from softreg.errors import DataError, warn
from softreg.io.delimited import CHUNK_ROWS, Chunk, delimited_chunks
from softreg.io.delimited_numbers import Layout, NotNumeric, NumericChunk, numbers_then_text, read_layout
from softreg.io.kinds import check_file, source_kind
from softreg.io.parquet import read_batches, read_parquet_layout
from softreg.io.sources import align_features, load_source
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
    ``chunk_rows`` (None: from the run's ``data.memory_budget``, `softreg.cache.budget.chunk_rows`)
    bounds the rows parsed at a time.
    """
    model = rundir.load_model(run_dir)
    source = str(input_path)
    kind = source_kind(source)
    if kind not in ("delimited", "parquet"):
        yield _whole_file(model, source)
        return
    if chunk_rows is None:
        chunk_rows = budget.chunk_rows(budget.run_budget(run_dir), len(model.input_names) + 2, CHUNK_ROWS)
    if kind == "parquet":
        if validate:
            for _ in _parquet(model, source, chunk_rows).chunks:
                pass
        stream = _parquet(model, source, chunk_rows)
        yield stream
        _warn_unknown(source, stream)
        return
    with _seekable(source, spool=validate) as path:
        if validate:
            with _delimited(model, path, source, chunk_rows, header) as stream:
                for _ in stream.chunks:
                    pass
        with _delimited(model, path, source, chunk_rows, header) as stream:
            yield stream
            _warn_unknown(source, stream)


def _warn_unknown(source: str, stream: PredictionStream) -> None:
    """One warning counting the categories unseen in training that the stream met, if any."""
    if stream.unknown:
        counts = ", ".join(f"{name}: {count}" for name, count in stream.unknown.items())
        warn(f"{source}: categories unseen in training got all-zero indicators ({counts} cells)")


@contextmanager
def _seekable(source: str, spool: bool = True) -> Iterator[str]:
    """A path to read (twice if need be): the file itself, or standard input, spooled to a
    temporary file when ``spool``."""
    if source == "-" and not spool:
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
        positions = self.model.input_positions(header, self.where)
        id_name = self.model.id_name
        ident = list(header).index(id_name) if id_name is not None and id_name in header else None
        return None, ident, positions


@contextmanager
def _delimited(
    model: Model, path: str, where: str, chunk_rows: int, header: bool | None
) -> Iterator[PredictionStream]:
    """Stream predictions of the delimited file ``path`` (named ``where`` in messages): through
    the fast path when the model reads plain numeric columns, else as text cells."""
    columns = model.columns or Columns.numeric(model.feature_names)
    flag = header if header is not None else model.header
    layout = _numeric_layout(model, path, where, flag) if columns.plain else None
    if layout is not None:
        stream = PredictionStream(model.classes, model.id_name if layout.ident is not None else None, iter(()))

        def text(names: list[str], chunks: Iterator[Chunk], _: int) -> Iterator[Predictions]:
            return _text_predictions(model, columns, stream, names, chunks, where)

        predictions = numbers_then_text(
            layout, chunk_rows, lambda chunk: _numeric_predictions(model, chunk, where), text
        )
        stream.chunks = predictions
        try:
            yield stream
        finally:
            predictions.close()  # the file, when the stream is left before its end
        return
    with delimited_chunks(path, chunk_rows=chunk_rows, header=flag) as (names, chunks):
        _, ident, _ = InputColumns(model, where).resolve(path, names)  # missing columns refused here, up front
        stream = PredictionStream(model.classes, model.id_name if ident is not None else None, iter(()))
        stream.chunks = _text_predictions(model, columns, stream, names, chunks, where)
        yield stream


def _numeric_layout(model: Model, path: str, where: str, header: bool | None) -> Layout | None:
    """The fast path's layout of ``path``, or None where it declines (standard input, text
    cells, missing columns: the text path then reads the file, and refuses what it must)."""
    try:
        return read_layout(path, InputColumns(model, where), header=header)
    except NotNumeric:
        return None


def _numeric_predictions(model: Model, chunk: NumericChunk, where: str) -> Predictions:
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
    model: Model, columns: Columns, stream: PredictionStream, names: list[str], chunks: Iterator[Chunk], where: str
) -> Iterator[Predictions]:
    """Predictions of rows read as text cells (every error names the line and column); the unseen
    categories met are counted in ``stream.unknown``."""
    _, ident, positions = InputColumns(model, where).resolve(where, names)
    for rows, line_numbers in chunks:
        cells = np.array(rows, dtype=str)
        encoded = columns.encode(cells[:, positions], where, line_numbers)
        model.check_finite_standardized(encoded.X, where, line_numbers)
        for name, count in encoded.unknown.items():
            stream.unknown[name] = stream.unknown.get(name, 0) + count
        proba = model.predict_proba(encoded.X)
        ids = cells[:, ident] if ident is not None else None
        yield Predictions(ids, model.classes[proba.argmax(axis=1)], proba)


def _parquet(model: Model, source: str, chunk_rows: int) -> PredictionStream:
    """Stream predictions of a Parquet file or folder, at most ``chunk_rows`` rows at a time: the
    model's input columns by name (`InputColumns`; any other column, a label, is not read), the
    id column copied when the model has one and the file too. A null is a missing value: filled
    as the model's columns fill them, else refused naming its row and column."""
    if not os.path.isdir(source):
        check_file(source, Path(source))  # as load_source does: a pipe named .parquet is refused, not read
    layout = read_parquet_layout(source, InputColumns(model, source))  # missing columns refused here, up front
    columns = model.columns or Columns.numeric(model.feature_names)
    fills = any(column.fill is not None for column in columns.columns)
    stream = PredictionStream(model.classes, model.id_name if layout.ident is not None else None, iter(()))

    def predictions() -> Iterator[Predictions]:
        first_row = 0
        for batch in read_batches(layout, chunk_rows, refuse_missing=None if fills else MISSING_HINT):
            X = batch.X
            if not columns.plain:
                encoded = columns.encode(X, source)
                for name, count in encoded.unknown.items():
                    stream.unknown[name] = stream.unknown.get(name, 0) + count
                X = encoded.X
            model.check_finite_standardized(X, source, first_row=first_row)
            proba = model.predict_proba(X)
            yield Predictions(batch.ids, model.classes[proba.argmax(axis=1)], proba)
            first_row += len(batch)

    stream.chunks = predictions()
    return stream


def _whole_file(model: Model, source: str) -> PredictionStream:
    """Predictions for svmlight, .npz or builtin input, read whole."""
    dataset = load_source(source)
    if dataset.X is None:
        raise DataError(f"{source}: expected numeric input")
    X = align_features(dataset, model.input_names, source)
    model.check_finite_standardized(X, source)
    proba = model.predict_proba(X)
    chunk = Predictions(None, model.classes[proba.argmax(axis=1)], proba)
    return PredictionStream(model.classes, None, iter([chunk]))


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

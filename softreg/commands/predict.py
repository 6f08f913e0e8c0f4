"""``softreg predict``: labels and probabilities for a file of raw features, streamed.

Every format ``train`` reads is accepted: delimited text (``-`` for standard input),
svmlight and ``.npz`` (read whole), and builtin names. Delimited input is read the way
training read its file (its header rule and columns, from ``model.json``), one chunk at
a time, so memory stays bounded whatever the file's size.
"""

from __future__ import annotations

import csv
import shutil
import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from os import PathLike
from pathlib import Path
from typing import IO

import numpy as np

from softreg import rundir
from softreg.cache import budget
from softreg.columns import Columns
from softreg.delimited import CHUNK_ROWS, delimited_chunks
from softreg.errors import DataError, warn
from softreg.model import Model
from softreg.sources import align_features, load_source, source_kind


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
    kind = source_kind(source) if source != "-" else "delimited"
    if kind != "delimited" or (source != "-" and not _is_delimited(source)):
        yield _whole_file(model, source)
        return
    if chunk_rows is None:
        chunk_rows = budget.chunk_rows(budget.run_budget(run_dir), len(model.input_names) + 2, CHUNK_ROWS)
    with _seekable(source, spool=validate) as path:
        if validate:
            with _delimited(model, path, source, chunk_rows, header) as stream:
                for _ in stream.chunks:
                    pass
        with _delimited(model, path, source, chunk_rows, header) as stream:
            yield stream
            if stream.unknown:
                counts = ", ".join(f"{name}: {count}" for name, count in stream.unknown.items())
                warn(f"{source}: categories unseen in training got all-zero indicators ({counts} cells)")


def _is_delimited(source: str) -> bool:
    from softreg.sources import DELIMITED_SUFFIXES, looks_like_svmlight

    path = Path(source)
    return path.suffix.lower() in DELIMITED_SUFFIXES or not path.is_file() or not looks_like_svmlight(path)


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


@contextmanager
def _delimited(
    model: Model, path: str, where: str, chunk_rows: int, header: bool | None
) -> Iterator[PredictionStream]:
    """Stream predictions of the delimited file ``path`` (named ``where`` in messages)."""
    columns = model.columns or Columns.numeric(model.feature_names)
    flag = header if header is not None else model.header
    with delimited_chunks(path, chunk_rows=chunk_rows, header=flag) as (names, chunks):
        positions = model.input_positions(names, where)
        ident = names.index(model.id_name) if model.id_name is not None and model.id_name in names else None
        stream = PredictionStream(model.classes, model.id_name if ident is not None else None, iter(()))

        def predictions() -> Iterator[Predictions]:
            for rows, line_numbers in chunks:
                cells = np.array(rows, dtype=str)
                encoded = columns.encode(cells[:, positions], where, line_numbers)
                model.check_finite_standardized(encoded.X, where, line_numbers)
                for name, count in encoded.unknown.items():
                    stream.unknown[name] = stream.unknown.get(name, 0) + count
                proba = model.predict_proba(encoded.X)
                ids = cells[:, ident] if ident is not None else None
                yield Predictions(ids, model.classes[proba.argmax(axis=1)], proba)

        stream.chunks = predictions()
        yield stream


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
    and one ``prob_<class>`` column per class; returns the row count."""
    writer = csv.writer(handle, delimiter=delimiter, lineterminator="\n")
    id_columns = [stream.id_name] if stream.id_name is not None else []
    writer.writerow([*id_columns, "label"] + [f"prob_{label}" for label in stream.classes])
    count = 0
    for chunk in stream.chunks:
        probabilities = [[f"{value:.10g}" for value in row] for row in chunk.proba.tolist()]
        labels = chunk.labels.tolist()
        if chunk.ids is not None:
            rows = zip(chunk.ids.tolist(), labels, probabilities, strict=True)
            writer.writerows([ident, label, *row] for ident, label, row in rows)
        else:
            writer.writerows([label, *row] for label, row in zip(labels, probabilities, strict=True))
        count += len(labels)
    return count

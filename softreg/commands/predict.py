"""``softreg predict``: labels and probabilities for a file of raw features, streamed."""

from __future__ import annotations

import csv
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from os import PathLike
from pathlib import Path
from typing import IO

import numpy as np

from softreg import rundir
from softreg.dataset import generated_names, shown_names
from softreg.delimited import CHUNK_ROWS, delimited_chunks, parse_features
from softreg.errors import DataError
from softreg.model import Model


@contextmanager
def prediction_stream(
    run_dir: str | PathLike[str], input_path: str | PathLike[str], chunk_rows: int = CHUNK_ROWS
) -> Iterator[tuple[np.ndarray, Iterator[tuple[np.ndarray, np.ndarray]]]]:
    """Predictions for a delimited file of raw features, streamed chunk by chunk.

    Columns are matched by the model's feature names (any other column, such as the
    label, is ignored). Everything that can be refused up front (the model, a missing
    file, missing columns) is refused before the first chunk.

    Yields
    ------
    classes : ndarray of shape (n_classes,)
    predictions : iterator of (labels, proba)
        ``labels`` (chunk,) predicted classes, ``proba`` (chunk, n_classes).
    """
    model = rundir.load_model(run_dir)
    path = Path(input_path)
    if not path.is_file():
        raise DataError(f"{path}: input file not found")
    with delimited_chunks(path, chunk_rows=chunk_rows) as (header, chunks):
        columns = _feature_columns(path, header, model)

        def predictions() -> Iterator[tuple[np.ndarray, np.ndarray]]:
            for rows, line_numbers in chunks:
                cells = np.array(rows, dtype=str)[:, columns]
                proba = model.predict_proba(parse_features(path, cells, model.feature_names, line_numbers))
                yield model.classes[proba.argmax(axis=1)], proba

        yield model.classes, predictions()


def _feature_columns(path: Path, header: list[str], model: Model) -> list[int]:
    """Indices of the model's features among the file's columns: by name, or by position
    in a file without a header that has exactly the model's feature count."""
    if header == generated_names(len(header)) and len(header) == model.n_features:
        return list(range(model.n_features))
    position = {name: index for index, name in enumerate(header)}
    missing = [name for name in model.feature_names if name not in position]
    if missing:
        raise DataError(f"{path}: missing feature column(s) {shown_names(missing)} that the model needs")
    return [position[name] for name in model.feature_names]


def write_predictions(
    handle: IO[str], classes: np.ndarray, predictions: Iterable[tuple[np.ndarray, np.ndarray]]
) -> int:
    """CSV with ``label`` and one ``prob_<class>`` column per class; returns the row count."""
    writer = csv.writer(handle, lineterminator="\n")
    writer.writerow(["label"] + [f"prob_{label}" for label in classes])
    count = 0
    for labels, proba in predictions:
        rows = zip(labels.tolist(), proba, strict=True)  # one label per row of probabilities
        writer.writerows([label, *(f"{value:.10g}" for value in row)] for label, row in rows)
        count += len(labels)
    return count

"""``softreg predict``: labels and probabilities for a file of raw features, streamed."""

from __future__ import annotations

import csv
from contextlib import contextmanager
from pathlib import Path

import numpy as np

from softreg import rundir
from softreg.dataset import generated_names, shown_names
from softreg.delimited import CHUNK_ROWS, delimited_chunks, parse_features
from softreg.errors import DataError


@contextmanager
def prediction_stream(run_dir, input_path, chunk_rows=CHUNK_ROWS):
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

        def predictions():
            for rows, line_numbers in chunks:
                cells = np.array(rows, dtype=str)[:, columns]
                proba = model.predict_proba(parse_features(path, cells, model.feature_names, line_numbers))
                yield model.classes[proba.argmax(axis=1)], proba

        yield model.classes, predictions()


def _feature_columns(path, header, model):
    """Indices of the model's features among the file's columns: by name, or by position
    in a file without a header that has exactly the model's feature count."""
    if header == generated_names(len(header)) and len(header) == model.n_features:
        return list(range(model.n_features))
    position = {name: index for index, name in enumerate(header)}
    missing = [name for name in model.feature_names if name not in position]
    if missing:
        raise DataError(f"{path}: missing feature column(s) {shown_names(missing)} that the model needs")
    return [position[name] for name in model.feature_names]


def write_predictions(handle, classes, predictions):
    """CSV with ``label`` and one ``prob_<class>`` column per class; returns the row count."""
    writer = csv.writer(handle, lineterminator="\n")
    writer.writerow(["label"] + [f"prob_{label}" for label in classes])
    count = 0
    for labels, proba in predictions:
        writer.writerows([label, *(f"{value:.10g}" for value in row)] for label, row in zip(labels.tolist(), proba))
        count += len(labels)
    return count

"""Numeric delimited text and Parquet read whole: ``X`` float64 allocated once (from the file's
size or the Parquet metadata) and filled chunk by chunk, labels kept as codes until the end."""

from __future__ import annotations

import math
import os
from os import PathLike

import numpy as np

from softreg.errors import DataError
from softreg.io.dataset import Dataset
from softreg.io.delimited import typed_labels
from softreg.io.delimited_numbers import CHUNK_ROWS, read_chunks, read_layout
from softreg.io.parquet import read_batches, read_parquet_layout
from softreg.io.selection import Selection


def load_numbers(
    path: str | PathLike[str],
    selection: Selection | None = None,
    delimiter: str | None = None,
    header: bool | None = None,
    encoding: str = "utf-8",
) -> Dataset:
    """A delimited file whose feature cells are all finite numbers as a `Dataset` with float64
    ``X`` and no text cells, exactly as `softreg.io.delimited.load_delimited` followed by
    encoding its cells would give it; NotNumeric for any other file.

    Memory: ``X`` is allocated once from the file size and the first chunk's bytes per row,
    grown (or shrunk at the end) in place, so loading peaks a chunk above ``X`` and the labels.
    (A row takes at least two bytes per column: a character and a delimiter or line end.)
    """
    layout = read_layout(path, selection, delimiter, header, encoding)
    size = os.stat(path).st_size
    n_features = len(layout.features)
    X = np.empty((0, n_features))
    codes = np.empty(0, dtype=np.intp)
    texts: dict[str, int] = {}  # each distinct label and its index
    ids: list[np.ndarray] = []
    n_rows = 0
    for chunk in read_chunks(layout, CHUNK_ROWS):
        end = n_rows + len(chunk)
        if end > X.shape[0]:
            X = _room_for(X, end, size // (2 * len(layout.names)), size, chunk.offset)
            codes.resize(X.shape[0], refcheck=False)
        X[n_rows:end] = chunk.X
        index = np.array([texts.setdefault(text, len(texts)) for text in chunk.label_texts.tolist()], dtype=np.intp)
        codes[n_rows:end] = index[chunk.label_codes]
        if chunk.ids is not None:
            ids.append(chunk.ids)
        n_rows = end
    X.resize((n_rows, n_features), refcheck=False)  # in place: no copy
    labels = typed_labels(np.array(list(texts), dtype=str))[codes[:n_rows]]
    names = layout.names
    assert layout.target is not None, "a Selection always chooses a label"
    return Dataset(
        X=X,
        labels=labels,
        feature_names=[names[index] for index in layout.features],
        label_name=names[layout.target],
        source=str(path),
        named=layout.named,
        ids=None if layout.ident is None else np.concatenate(ids),
        id_name=None if layout.ident is None else names[layout.ident],
        file_columns=list(names),
    )


def _room_for(X: np.ndarray, rows: int, most: int, size: int, offset: int) -> np.ndarray:
    """``X`` with room for at least ``rows`` rows: the first time, the rows the whole file
    should hold at the bytes per row read so far (plus 5%; never more than the ``most`` a file
    of its size can hold); later, a quarter more. Pages never written are never touched, so an
    estimate too large costs no memory."""
    if X.shape[0] == 0:
        estimate = min(math.ceil(rows * size / max(offset, 1) * 1.05), most)
        return np.empty((max(rows, estimate), X.shape[1]))
    X.resize((max(rows, X.shape[0] + X.shape[0] // 4), X.shape[1]), refcheck=False)
    return X


def load_parquet(source: str, selection: Selection | None = None) -> Dataset:
    """A Parquet file or folder as a `Dataset` of float64 ``X`` (NaN for nulls), typed labels
    and ids; ``X`` is allocated once, from the files' row counts."""
    layout = read_parquet_layout(source, selection)
    shape = (sum(layout.rows), len(layout.features))
    try:
        X = np.empty(shape)
    except MemoryError:
        raise DataError(f"{source}: {shape[0]} rows x {shape[1]} features do not fit in memory as float64 "
                        f"({shape[0] * shape[1] * 8 / 2**30:.1f} GiB); a data.cache streams them") from None
    codes = np.empty(X.shape[0], dtype=np.intp)
    texts: dict[str, int] = {}
    ids: list[np.ndarray] = []
    start = 0
    for batch in read_batches(layout):
        end = start + len(batch)
        if end > X.shape[0]:
            raise DataError(f"{source}: holds more rows than its metadata says ({X.shape[0]}); is a file damaged?")
        X[start:end] = batch.X
        index = np.array([texts.setdefault(text, len(texts)) for text in batch.label_texts.tolist()], dtype=np.intp)
        codes[start:end] = index[batch.label_codes]
        if batch.ids is not None:
            ids.append(batch.ids)
        start = end
    if start != X.shape[0]:
        raise DataError(f"{source}: holds {start} rows, its metadata says {X.shape[0]}; is a file damaged?")
    names = layout.names
    assert layout.target is not None, "a Selection always chooses a label"
    return Dataset(
        X=X,
        labels=typed_labels(np.array(list(texts), dtype=str))[codes],
        feature_names=layout.feature_names,
        label_name=names[layout.target],
        source=str(source),
        ids=None if layout.ident is None else np.concatenate(ids),
        id_name=None if layout.ident is None else names[layout.ident],
    )

"""Numeric delimited text and Parquet read whole, through `softreg.io.stream.open_rows`: ``X``
float64 allocated once (from the file's size or the Parquet metadata) and filled chunk by chunk,
labels kept as codes until the end."""

from __future__ import annotations

import math
import os
from dataclasses import replace
from os import PathLike

import numpy as np

from softreg.errors import DataError
from softreg.io import remote
from softreg.io.dataset import Dataset
from softreg.io.delimited import typed_labels
from softreg.io.delimited_numbers import CHUNK_ROWS, NotNumeric
from softreg.io.parquet import BATCH_ROWS
from softreg.io.selection import Selection
from softreg.io.stream import ReadOptions, RowChunk, Rows, open_rows


def load_numbers(
    path: str | PathLike[str],
    selection: Selection | None = None,
    delimiter: str | None = None,
    header: bool | None = None,
    encoding: str = "utf-8",
    missing_labels: str = "error",
) -> Dataset:
    """A delimited file whose feature cells are all finite numbers as a `Dataset` with float64
    ``X`` and no text cells, exactly as `softreg.io.delimited.load_delimited` followed by
    encoding its cells would give it; NotNumeric for any other file.

    Memory: ``X`` is allocated once from the file size and the first chunk's bytes per row,
    grown (or shrunk at the end) in place, so loading peaks a chunk above ``X`` and the labels.
    (A row takes at least two bytes per column: a character and a delimiter or line end.)
    """
    if str(path) == "-":
        raise NotNumeric
    options = ReadOptions(delimiter=delimiter, header=header, encoding=encoding, missing_labels=missing_labels)
    try:
        with open_rows(str(path), selection or Selection(), options, CHUNK_ROWS) as rows:
            if not rows.numbers:
                raise NotNumeric
            size = remote.size(str(path)) if remote.is_url(path) else os.stat(path).st_size
            X = np.empty((0, len(rows.features)))
            codes = np.empty(0, dtype=np.intp)
            texts: dict[str, int] = {}  # each distinct label and its index
            ids: list[np.ndarray] = []
            n_rows = 0
            for chunk in rows.chunks:
                if chunk.cells is not None:  # the fast path declined: the caller reads the file as text cells
                    raise NotNumeric
                end = n_rows + len(chunk)
                if end > X.shape[0]:
                    X = _room_for(X, end, size // (2 * len(rows.names)), size, chunk.offset or 0)
                    codes.resize(X.shape[0], refcheck=False)
                X[n_rows:end] = chunk.X
                codes[n_rows:end] = _merged_codes(texts, chunk)
                if chunk.ids is not None:
                    ids.append(chunk.ids)
                n_rows = end
    except DataError:  # the text path then says what is wrong, as it says it
        raise NotNumeric from None
    X.resize((n_rows, len(rows.features)), refcheck=False)  # in place: no copy
    return _dataset(rows, str(path), X, typed_labels(np.array(list(texts), dtype=str))[codes[:n_rows]], ids)


def _merged_codes(texts: dict[str, int], chunk: RowChunk) -> np.ndarray:
    """Each row's label as an index into ``texts``, every distinct label of all chunks so far (grown here)."""
    index = np.array([texts.setdefault(text, len(texts)) for text in chunk.label_texts.tolist()], dtype=np.intp)
    return index[chunk.label_codes]


def _dataset(rows: Rows, source: str, X: np.ndarray, labels: np.ndarray, ids: list[np.ndarray]) -> Dataset:
    names = rows.names
    assert rows.target is not None, "a Selection always chooses a label"
    return Dataset(
        X=X,
        labels=labels,
        feature_names=[names[index] for index in rows.features],
        label_name=names[rows.target],
        source=source,
        named=rows.named,
        ids=None if rows.ident is None else np.concatenate(ids),
        id_name=None if rows.ident is None else names[rows.ident],
        file_columns=list(names) if rows.kind == "delimited" else None,
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


def load_parquet(source: str, selection: Selection | None = None, missing_labels: str = "error") -> Dataset:
    """A Parquet file or folder as a `Dataset` of float64 ``X`` (NaN for nulls), typed labels
    and ids; ``X`` is allocated once, from the files' row counts. Rows without a label are
    refused or left out as ``missing_labels`` says (`softreg.io.stream.ReadOptions`)."""
    options = ReadOptions(missing_labels=missing_labels)
    with open_rows(source, selection or Selection(), options, chunk_rows=BATCH_ROWS) as rows:
        shape = (rows.n_rows or 0, len(rows.features))
        try:
            X = np.empty(shape)
        except MemoryError:
            raise DataError(f"{source}: {shape[0]} rows x {shape[1]} features do not fit in memory as float64 "
                            f"({shape[0] * shape[1] * 8 / 2**30:.1f} GiB); a data.cache streams them") from None
        codes = np.empty(X.shape[0], dtype=np.intp)
        texts: dict[str, int] = {}
        ids: list[np.ndarray] = []
        start = unlabelled = 0
        for chunk in rows.chunks:
            end = start + len(chunk)
            if end > X.shape[0]:
                raise DataError(f"{source}: holds more rows than its metadata says ({X.shape[0]}); is a file damaged?")
            X[start:end] = chunk.X
            codes[start:end] = _merged_codes(texts, chunk)
            if chunk.ids is not None:
                ids.append(chunk.ids)
            start, unlabelled = end, unlabelled + chunk.unlabelled
    if start + unlabelled != X.shape[0]:
        raise DataError(f"{source}: holds {start + unlabelled} rows, its metadata says {X.shape[0]}; "
                        "is a file damaged?")
    if start == 0:
        raise DataError(f"{source}: no row has a label in column {rows.names[rows.target or 0]!r}")
    labels = typed_labels(np.array(list(texts), dtype=str))[codes[:start]]
    return replace(_dataset(rows, str(source), X[:start], labels, ids), unlabelled=unlabelled)

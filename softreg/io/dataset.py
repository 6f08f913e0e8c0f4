"""A loaded data set, and the small helpers every reader shares for its messages."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from os import PathLike
from typing import Any

import numpy as np

from softreg.errors import DataError
from softreg.kernels import Matrix


@dataclass
class NumberRows:
    """Consecutive rows of a source read as numbers, their labels coded.

    X : ndarray of shape (n_rows, n_features), float64 (NaN where a value is missing)
    label_texts : ndarray of shape (n_texts,), str: the distinct label texts, stripped (empty
        without a label column: the rows to predict)
    label_codes : ndarray of shape (n_rows,), int: each row's label, an index into ``label_texts``
        (empty without a label column)
    ids : ndarray of shape (n_rows,), str as written, or None without ``data.id``
    """

    X: np.ndarray
    label_texts: np.ndarray
    label_codes: np.ndarray
    ids: np.ndarray | None

    def __len__(self) -> int:
        return int(self.X.shape[0])

    @property
    def labels(self) -> np.ndarray:
        """The label text of each row, shape (n_rows,) (empty without a label column)."""
        return self.label_texts[self.label_codes]


@dataclass
class Dataset:
    """Features and raw labels as loaded from a source.

    X : {ndarray, csr_matrix} of shape (n_samples, n_features), float64, or None
        Numeric sources (builtin, .npz, svmlight); NaN marks a missing value.
    cells : ndarray of str of shape (n_samples, n_columns) or None
        Delimited text: the raw cells of the feature columns (`softreg.prepare.columns` encodes them).
    labels : ndarray of shape (n_samples,), int64 or str
    feature_names : the input column names (of X's columns, or of cells' columns)
    line_numbers, ids : ndarray of shape (n_samples,) or None, delimited text only
    """

    X: Matrix | None
    labels: np.ndarray
    feature_names: list[str]
    label_name: str
    source: str
    named: bool = True  # whether feature_names came from the data (else x0, x1, ... or col0, ...)
    index_base: int | None = None  # svmlight only: whether its feature indices start at 0 or 1
    cells: np.ndarray | None = None
    line_numbers: np.ndarray | None = None
    ids: np.ndarray | None = None
    id_name: str | None = None
    file_columns: list[str] | None = None  # delimited text: every column of the file, in order
    source_rows: np.ndarray | None = None  # each row's 0-based data-row index in the source (None: 0..n-1)
    unlabelled: int = 0  # rows left out on reading for a missing label (``data.missing`` other than error)

    @property
    def n_samples(self) -> int:
        return len(self.labels)

    @property
    def row_index(self) -> np.ndarray:
        """The 0-based data-row index in the source of each row, shape (n_samples,), int64."""
        if self.source_rows is None:
            return np.arange(self.n_samples, dtype=np.int64)
        return self.source_rows

    @property
    def untracked(self) -> bool:
        """Whether rows were left out on reading (a missing label) by a reader that did not record
        which: `row_index` would then be wrong, and a run writes no split.npz."""
        return self.unlabelled > 0 and self.source_rows is None

    @property
    def table(self) -> np.ndarray | Matrix:
        """The raw feature columns: ``cells`` for text, ``X`` otherwise."""
        return self.cells if self.cells is not None else self.X

    def take(self, rows: np.ndarray) -> Dataset:
        """The rows ``rows`` (indices or a boolean mask) of every per-row array."""

        def pick(array: Any) -> Any:
            return None if array is None else array[rows]

        return replace(
            self, X=pick(self.X), labels=self.labels[rows], cells=pick(self.cells),
            line_numbers=pick(self.line_numbers), ids=pick(self.ids),
            source_rows=None if self.untracked else self.row_index[rows],
        )


def generated_names(count: int) -> list[str]:
    """Column names of a file without a header: col0, col1, ..."""
    return [f"col{index}" for index in range(count)]


def shown_names(names: Sequence[object], limit: int = 10) -> str:
    """``'a', 'b' and 3 more``: a list of names short enough for a one-line message."""
    shown = ", ".join(repr(str(name)) for name in names[:limit])
    return shown + (f" and {len(names) - limit} more" if len(names) > limit else "")


def check_finite(
    path: str | PathLike[str], X: np.ndarray, names: Sequence[str], line_numbers: Sequence[int] | None = None
) -> None:
    """Raise a DataError naming the first NaN/inf cell of dense ``X``."""
    bad = ~np.isfinite(X)
    if bad.any():
        row, column = np.argwhere(bad)[0]
        where = f"line {line_numbers[row]}" if line_numbers is not None else f"row {row + 1}"
        raise DataError(
            f"{path}: {where}, column {names[column]!r}: {X[row, column]} is not a finite number "
            "(NaN and inf are not allowed in features)"
        )

"""A loaded data set, and the small helpers every reader shares for its messages."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from os import PathLike

import numpy as np

from softreg.errors import DataError
from softreg.kernels import Matrix


@dataclass
class Dataset:
    """Features and raw labels as loaded from a source.

    X : {ndarray, csr_matrix} of shape (n_samples, n_features), float64, finite
    labels : ndarray of shape (n_samples,), int64 or str
    """

    X: Matrix
    labels: np.ndarray
    feature_names: list[str]
    label_name: str
    source: str
    named: bool = True  # whether feature_names came from the data (else x0, x1, ... or col0, ...)
    index_base: int | None = None  # svmlight only: whether its feature indices start at 0 or 1

    @property
    def n_samples(self) -> int:
        return self.X.shape[0]


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
        where = f"line {line_numbers[row]}" if line_numbers is not None else f"row {row}"
        raise DataError(
            f"{path}: {where}, column {names[column]!r}: {X[row, column]} is not a finite number "
            "(NaN and inf are not allowed in features)"
        )

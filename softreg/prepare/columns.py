"""From raw table cells to the model's numeric features: missing values and categories.

A `Columns` is learnt on the training part only and saved with the model (as JSON in
``model.json``, never pickled), so that ``evaluate`` and ``predict`` turn their files into
exactly the features training saw:

- numeric columns: a missing cell (empty, ``NA``, ``NaN``, ``null``, ``?``, ...) is an
  error, drops its row, or takes the training part's mean, median or most frequent value
  (scikit-learn's ``SimpleImputer`` semantics: NaN-ignoring statistics, ties to the smallest);
- categorical columns: one indicator feature ``name=category`` per category seen in the
  training part (``OneHotEncoder`` semantics: categories sorted); a category unseen in
  training gives all-zero indicators and is counted, so callers can warn.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from softreg.errors import DataError
from softreg.io.cells import MISSING_TOKENS, missing_mask, numeric_or_none

MISSING_STRATEGIES = ("error", "drop", "mean", "median", "most_frequent")
MISSING_HINT = "set data.missing to drop, mean, median or most_frequent to handle missing cells"


@dataclass
class Column:
    """One input column: numeric (``categories`` None) or categorical, and its fill value for
    missing cells (None: none learnt, a missing cell is an error)."""

    name: str
    categories: list[str] | None = None
    fill: float | str | None = None

    @property
    def feature_names(self) -> list[str]:
        if self.categories is None:
            return [self.name]
        return [f"{self.name}={category}" for category in self.categories]


@dataclass
class Encoded:
    """Features (n_samples, n_features) float64, and the unseen categories met per column."""

    X: np.ndarray
    unknown: dict[str, int] = field(default_factory=dict)


@dataclass
class Columns:
    """The input columns of a model, in file order, and how each becomes features."""

    columns: list[Column]
    missing: str = "error"

    @property
    def names(self) -> list[str]:
        return [column.name for column in self.columns]

    @property
    def feature_names(self) -> list[str]:
        return [name for column in self.columns for name in column.feature_names]

    @property
    def plain(self) -> bool:
        """True when the features are the columns themselves (no categories, no filling)."""
        return all(column.categories is None and column.fill is None for column in self.columns)

    def to_json(self) -> dict[str, Any]:
        return {
            "missing": self.missing,
            "columns": [
                {"name": column.name, "categories": column.categories, "fill": column.fill} for column in self.columns
            ],
        }

    @classmethod
    def from_json(cls, document: dict[str, Any]) -> Columns:
        columns = [
            Column(str(entry["name"]), entry.get("categories"), entry.get("fill")) for entry in document["columns"]
        ]
        return cls(columns, str(document.get("missing", "error")))

    @classmethod
    def numeric(cls, names: Sequence[str]) -> Columns:
        return cls([Column(str(name)) for name in names])

    def encode(self, cells: np.ndarray, where: str, line_numbers: Sequence[int] | None = None) -> Encoded:
        """Features of the rows of ``cells`` (n_samples, n_columns), strings or numbers.

        Errors name the file (``where``), the line (or row) and the column.
        """
        n_samples = cells.shape[0]
        blocks, unknown = [], {}
        for index, column in enumerate(self.columns):
            values = cells[:, index]
            if column.categories is None:
                blocks.append(self._numeric(column, values, where, line_numbers)[:, None])
                continue
            text = values.astype(str)
            missing = missing_mask(text)
            if missing.any():
                if column.fill is None:
                    missing_error(where, line_numbers, int(np.flatnonzero(missing)[0]), column.name)
                text = np.where(missing, str(column.fill), text)
            categories = np.asarray(column.categories, dtype=str)
            position = np.clip(np.searchsorted(categories, text), 0, len(categories) - 1)
            known = categories[position] == text
            indicators = np.zeros((n_samples, len(categories)))
            indicators[np.flatnonzero(known), position[known]] = 1.0
            if not known.all():
                unknown[column.name] = int(np.count_nonzero(~known))
            blocks.append(indicators)
        X = np.hstack(blocks) if blocks else np.empty((n_samples, 0))
        return Encoded(X, unknown)

    def _numeric(self, column: Column, values: np.ndarray, where: str, lines: Sequence[int] | None) -> np.ndarray:
        """A numeric column as float64: missing cells filled when the column has a fill value,
        otherwise refused with the message that names them (an empty cell, text, NaN or inf)."""
        if values.dtype.kind in "biuf":
            numbers = values.astype(np.float64)
        elif column.fill is None:
            try:
                numbers = values.astype(np.float64)
            except ValueError:
                _first_non_number(where, lines, values, column.name, missing_ok=False)
                raise
        else:
            parsed = numeric_or_none(values)
            if parsed is None:
                _first_non_number(where, lines, values, column.name, missing_ok=True)
                raise AssertionError("unreachable")
            numbers = parsed
        if column.fill is not None:
            numbers = np.where(np.isnan(numbers), float(column.fill), numbers)
        elif values.dtype.kind in "biuf" and np.isnan(numbers).any():  # NaN marks a missing value in numbers
            missing_error(where, lines, int(np.flatnonzero(np.isnan(numbers))[0]), column.name)
        bad = ~np.isfinite(numbers)
        if bad.any():
            row = int(np.flatnonzero(bad)[0])
            raise DataError(
                f"{where}: {_row(lines, row)}, column {column.name!r}: {numbers[row]} is not a finite number "
                "(NaN and inf are not allowed in features)"
            )
        return numbers


def fit_columns(
    cells: np.ndarray,
    names: Sequence[str],
    categorical: Sequence[str],
    missing: str,
) -> Columns:
    """Learn the columns from the training rows ``cells`` (n_samples, n_columns): the
    categories of the ``categorical`` columns and, unless ``missing`` is ``error`` or
    ``drop``, each column's fill value (mean, median or most frequent; categorical
    columns always take their most frequent category)."""
    from sklearn.impute import SimpleImputer

    columns = []
    for index, name in enumerate(names):
        values = cells[:, index]
        if name in categorical:
            text = values.astype(str)
            present = text[~missing_mask(text)]
            categories = sorted(set(present.tolist()))
            fill = None
            if missing not in ("error", "drop") and present.size:
                counts = {category: int(np.count_nonzero(present == category)) for category in categories}
                fill = max(categories, key=lambda category: (counts[category], _negated(category)))
            columns.append(Column(str(name), categories or [""], fill))
            continue
        fill_value: float | None = None
        if missing not in ("error", "drop"):
            numbers = values.astype(np.float64) if values.dtype.kind in "biuf" else numeric_or_none(values)
            if numbers is not None and not np.isnan(numbers).all():
                imputer = SimpleImputer(strategy=missing).fit(numbers[:, None])
                fill_value = float(imputer.statistics_[0])
            else:
                fill_value = 0.0  # a column with no value at all in the training part
        columns.append(Column(str(name), None, fill_value))
    return Columns(columns, missing)


class _Negated(str):
    """Orders strings in reverse, so that max() breaks count ties towards the smallest category."""

    def __lt__(self, other: object) -> bool:
        return str.__gt__(self, other)  # type: ignore[operator]

    def __gt__(self, other: object) -> bool:
        return str.__lt__(self, other)  # type: ignore[operator]


def _negated(text: str) -> _Negated:
    return _Negated(text)


def _row(lines: Sequence[int] | None, row: int) -> str:
    return f"line {lines[row]}" if lines is not None else f"row {row + 1}"


def missing_error(where: str, lines: Sequence[int] | None, row: int, name: str) -> None:
    """Raise the DataError for the missing cell of ``row`` (0-based) in column ``name``."""
    raise DataError(f"{where}: {_row(lines, row)}, column {name!r}: missing value; {MISSING_HINT}")


def _first_non_number(
    where: str, lines: Sequence[int] | None, values: np.ndarray, name: str, missing_ok: bool
) -> None:
    """Raise the DataError naming the first cell of ``values`` that is not a number (missing
    cells count as numbers when ``missing_ok``)."""
    text = values.astype(str)
    skip = missing_mask(text) if missing_ok else np.zeros(len(text), dtype=bool)
    for row, cell in enumerate(text):
        if skip[row]:
            continue
        try:
            float(cell)
        except ValueError:
            what = "an empty cell" if not cell.strip() else repr(str(cell))
            hint = f"; {MISSING_HINT}" if not missing_ok and cell.strip().lower() in MISSING_TOKENS else ""
            raise DataError(f"{where}: {_row(lines, row)}, column {name!r}: {what} is not a number{hint}") from None

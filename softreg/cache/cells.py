"""Delimited rows with categorical columns or missing cells, as an ingest streams them, and
what pass 1 learns of them: the categories and each column's fill value.

The in-memory path (`softreg.prepare.columns.fit_columns`) learns a `Columns` from the whole
training part at once; an ingest sees it chunk by chunk, so it keeps what can be merged:

- per numeric column, the count, mean and squared deviations of its present values
  (Chan's merge, NaN-aware), which give the ``mean`` fill and the standardizer;
- per categorical column, the count of each category in the training rows, which gives
  the sorted categories, the most frequent one (the fill, ties to the smallest) and the
  moments of each indicator feature (mean p, squared deviations n·p·(1 - p)).

``data.missing: median`` and ``most_frequent`` need every value of a numeric column at
once and are refused for a cache; ``error``, ``drop`` and ``mean`` stream.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from softreg.errors import DataError
from softreg.io.cells import missing_mask, numeric_or_none
from softreg.prepare.columns import Column, Columns, missing_error
from softreg.prepare.features import MIN_IDENTIFIER_ROWS

STREAMED_MISSING = ("error", "drop", "mean")

MISSING_CODE = -2  # a categorical cell that is missing, in the bucket records


@dataclass
class CellChunk:
    """A chunk of rows: numeric columns (n, n_numeric) float64 with NaN where a cell is
    missing, categorical columns (n, n_categorical) as text, labels and file lines."""

    numbers: np.ndarray
    text: np.ndarray
    labels: list[str]
    lines: list[int] | None
    offset: int | None = None  # bytes of the source read so far, where the reader knows it
    unlabelled: int = 0  # rows of the source left out before this chunk's for a missing label


@dataclass
class ColumnKinds:
    """Which feature columns (in file order) are numeric and which categorical."""

    names: list[str]
    categorical: list[str]

    @property
    def numeric_positions(self) -> list[int]:
        return [index for index, name in enumerate(self.names) if name not in self.categorical]

    @property
    def categorical_positions(self) -> list[int]:
        return [index for index, name in enumerate(self.names) if name in self.categorical]


def split_cells(layout: ColumnKinds, cells: np.ndarray, missing: str, source: str, lines: Sequence[int] | None
                ) -> tuple[np.ndarray, np.ndarray]:
    """Numeric columns as float64 (NaN where missing; an error naming the cell when ``missing``
    is ``error`` or a cell is not a number) and categorical columns as text."""
    numeric = layout.numeric_positions
    numbers = np.empty((cells.shape[0], len(numeric)))
    for out, index in enumerate(numeric):
        column = cells[:, index]
        if missing == "error":
            numbers[:, out] = Columns.numeric([layout.names[index]]).encode(column[:, None], source, lines).X[:, 0]
            continue
        parsed = numeric_or_none(column)
        if parsed is None or not np.isfinite(parsed[~np.isnan(parsed)]).all():
            Columns([Column(layout.names[index], None, 0.0)]).encode(column[:, None], source, lines)  # raises
        numbers[:, out] = parsed
    text = cells[:, layout.categorical_positions].astype(str)
    if missing == "error" and text.size:
        absent = missing_mask(text)
        if absent.any():
            row, position = (int(value) for value in np.argwhere(absent)[0])
            missing_error(source, lines, row, layout.categorical[position])
    return numbers, text


def present_rows(chunk: CellChunk) -> np.ndarray:
    """Rows without a missing cell (``data.missing: drop``)."""
    keep = ~np.isnan(chunk.numbers).any(axis=1)
    if chunk.text.size:
        keep &= ~missing_mask(chunk.text).any(axis=1)
    return keep


@dataclass
class NanMoments:
    """Per column: count, mean and squared deviations of the present (non-NaN) values, merged by Chan's formula."""

    count: np.ndarray
    mean: np.ndarray
    squares: np.ndarray

    @classmethod
    def empty(cls, n_columns: int) -> NanMoments:
        return cls(np.zeros(n_columns), np.zeros(n_columns), np.zeros(n_columns))

    @classmethod
    def of(cls, X: np.ndarray) -> NanMoments:
        """The moments of the rows of ``X`` (n, n_columns), NaN a missing value."""
        present = ~np.isnan(X)
        n = present.sum(axis=0).astype(np.float64)
        safe = np.maximum(n, 1.0)
        values = np.where(present, X, 0.0)
        mean = values.sum(axis=0) / safe
        squares = (np.where(present, X - mean, 0.0) ** 2).sum(axis=0)
        return cls(n, mean, squares)

    def add(self, X: np.ndarray) -> None:
        self.merge(NanMoments.of(X))

    def merge(self, other: NanMoments) -> None:
        """Chan's merge of ``other``'s rows into these: merging the moments of each chunk, in the
        chunks' order, is the same arithmetic wherever the chunks were read."""
        n = other.count
        if not n.any():
            return
        total = self.count + n
        safe_total = np.maximum(total, 1.0)
        delta = other.mean - self.mean
        self.mean = self.mean + delta * (n / safe_total)
        self.squares = self.squares + other.squares + delta**2 * (self.count * n / safe_total)
        self.count = total


@dataclass
class CategoryCounts:
    """Per categorical column: the code of each category met (any part) and the count of each in the training rows."""

    codes: list[dict[str, int]]
    counts: list[dict[str, int]] = field(default_factory=list)

    @classmethod
    def empty(cls, n_columns: int) -> CategoryCounts:
        return cls([{} for _ in range(n_columns)], [{} for _ in range(n_columns)])

    def encode(self, text: np.ndarray, train: np.ndarray) -> np.ndarray:
        """Codes (n, n_columns) int32 of the cells (`MISSING_CODE` for a missing one); counts the training rows'."""
        codes = np.empty(text.shape, dtype=np.int32)
        missing = missing_mask(text) if text.size else np.zeros(text.shape, dtype=bool)
        for column in range(text.shape[1]):
            values, inverse = np.unique(text[:, column], return_inverse=True)
            ids = np.array([self.codes[column].setdefault(value, len(self.codes[column]))
                            for value in values.tolist()], dtype=np.int32)
            codes[:, column] = np.where(missing[:, column], MISSING_CODE, ids[inverse.ravel()])
            counted = text[train & ~missing[:, column], column]
            for value, count in zip(*np.unique(counted, return_counts=True), strict=True):
                self.counts[column][str(value)] = self.counts[column].get(str(value), 0) + int(count)
        return codes


def learnt_columns(layout: ColumnKinds, moments: NanMoments, categories: CategoryCounts, missing: str
                   ) -> tuple[Columns, list[np.ndarray]]:
    """The `Columns` that training would learn, and per categorical column the map from
    code to indicator position (-1: a category unseen in the training rows)."""
    counts = iter(categories.counts)
    codes = iter(categories.codes)
    columns, maps = [], []
    numeric = 0
    for name in layout.names:
        if name not in layout.categorical:
            value = None
            if missing not in ("error", "drop"):  # mean: a column with no value in the training rows takes 0
                value = float(moments.mean[numeric]) if moments.count[numeric] > 0 else 0.0
            columns.append(Column(name, None, value))
            numeric += 1
            continue
        seen, code_of = next(counts), next(codes)
        ordered = sorted(seen)
        fill_category = None
        if missing not in ("error", "drop") and ordered:
            fill_category = min(ordered, key=lambda category: (-seen[category], category))
        position = {category: index for index, category in enumerate(ordered)}
        mapping = np.full(len(code_of), -1, dtype=np.int64)
        for category, code in code_of.items():
            mapping[code] = position.get(category, -1)
        columns.append(Column(name, ordered or [""], fill_category))
        maps.append(mapping)
    return Columns(columns, missing), maps


def feature_moments(layout: ColumnKinds, columns: Columns, moments: NanMoments, categories: CategoryCounts,
                    n_train: int) -> tuple[np.ndarray, np.ndarray, int]:
    """Mean and squared deviations of every feature over the ``n_train`` training rows after
    filling (a filled cell sits at the mean: it adds no deviation), in feature order."""
    means, squares = [], []
    numeric = iter(range(len(moments.mean)))
    counts = iter(categories.counts)
    for column in columns.columns:
        if column.categories is None:
            index = next(numeric)
            means.append(np.array([moments.mean[index]]))
            squares.append(np.array([moments.squares[index]]))
            continue
        seen = next(counts)
        totals = np.array([seen.get(category, 0) for category in column.categories], dtype=np.float64)
        if column.fill is not None:
            totals[column.categories.index(str(column.fill))] += n_train - sum(seen.values())
        p = totals / max(n_train, 1)
        means.append(p)
        squares.append(n_train * p * (1.0 - p))
    return np.concatenate(means), np.concatenate(squares), n_train


def encode_records(layout: ColumnKinds, columns: Columns, maps: list[np.ndarray], numbers: np.ndarray,
                   codes: np.ndarray) -> np.ndarray:
    """Features (n, n_features) float64 of bucket records: numeric cells filled, categories as indicators."""
    n = numbers.shape[0]
    blocks = []
    numeric = iter(range(numbers.shape[1]))
    categorical = iter(range(codes.shape[1] if codes.ndim == 2 else 0))
    for column in columns.columns:
        if column.categories is None:
            values = numbers[:, next(numeric)]
            if column.fill is not None:
                values = np.where(np.isnan(values), float(column.fill), values)
            blocks.append(values[:, None])
            continue
        index = next(categorical)
        column_codes = codes[:, index].astype(np.int64)
        positions = np.where(column_codes >= 0, maps[index][np.maximum(column_codes, 0)], -1)
        if column.fill is not None:
            positions = np.where(column_codes == MISSING_CODE, column.categories.index(str(column.fill)), positions)
        indicators = np.zeros((n, len(column.categories)))
        known = positions >= 0
        indicators[np.flatnonzero(known), positions[known]] = 1.0
        blocks.append(indicators)
    return np.hstack(blocks) if blocks else np.empty((n, 0))


def unseen_counts(columns: Columns, maps: list[np.ndarray], codes: np.ndarray) -> Iterator[tuple[str, int]]:
    """(column, cells) of the categories unseen in training, among the rows of ``codes``."""
    categorical = [column for column in columns.columns if column.categories is not None]
    for index, column in enumerate(categorical):
        column_codes = codes[:, index].astype(np.int64)
        unseen = (column_codes >= 0) & (maps[index][np.maximum(column_codes, 0)] < 0)
        if unseen.any():
            yield column.name, int(np.count_nonzero(unseen))


def refuse_identifiers(data: Any, layout: ColumnKinds, categories: CategoryCounts, n_train: int) -> None:
    """A text column that ``categorical: auto`` chose and whose training cells are all present and
    distinct (an identifier, as `softreg.prepare.features.identifier_columns` finds in memory) is
    refused: a cache cannot make it the id after its first pass, and one-hot encoding cannot learn from it."""
    if data.categorical != "auto" or n_train < MIN_IDENTIFIER_ROWS:
        return
    names = [layout.names[index] for index in layout.categorical_positions]  # the order of the text cells
    for name, counts in zip(names, categories.counts, strict=True):
        if len(counts) == n_train and sum(counts.values()) == n_train:
            raise DataError(
                f"{data.source}: column {name!r} holds a different text in every row, an identifier that one-hot "
                f"encoding cannot learn from; set data.id: {name} (a cache does not choose the id itself) or leave "
                "it out with data.exclude"
            )

"""Which columns of a table are the label, the id and the features: chosen from the column
names alone, the same way for every format (delimited text, Parquet, and by name on numeric
sources)."""

from __future__ import annotations

import difflib
from collections.abc import Sequence
from dataclasses import dataclass
from os import PathLike
from typing import Protocol

from softreg.errors import DataError
from softreg.io.dataset import shown_names


def column_index(path: str | PathLike[str], header: Sequence[str], column: str | int, key: str) -> int:
    """Index of a column given by name or 0-based index; ``key`` names the setting in errors."""
    if isinstance(column, int) and not isinstance(column, bool):
        if -len(header) <= column < len(header):
            return column % len(header)
        raise DataError(f"{path}: {key} column index {column} is out of range; the file has {len(header)} columns")
    if column in header:
        return list(header).index(str(column))
    lowered = {name.lower(): name for name in header}
    hint = difflib.get_close_matches(str(column).lower(), list(lowered), n=1)
    suggestion = f" (did you mean {lowered[hint[0]]!r}?)" if hint else ""
    shown = ", ".join(header[:20]) + (f" and {len(header) - 20} more" if len(header) > 20 else "")
    raise DataError(f"{path}: {key} column {column!r} not found{suggestion}; columns are: {shown}")


def label_index(path: str | PathLike[str], header: list[str], label: str | int | None) -> int:
    """Column index of the label given by name or 0-based index (default: last column)."""
    if label is None:
        return len(header) - 1
    return column_index(path, header, label, "label")


class ColumnChoice(Protocol):
    """Which columns of a file are the label, the id and the features, chosen from its column
    names: `Selection` (training's data options), or the columns a saved model reads."""

    def resolve(self, path: str | PathLike[str], header: Sequence[str]) -> tuple[int | None, int | None, list[int]]:
        """``(label index or None, id index or None, feature indices)``; a DataError when the
        columns do not fit."""
        ...


ROW_NAME_HEADERS = ("", "Unnamed: 0")  # the first column's name where R's write.csv and pandas' to_csv write row names


@dataclass(frozen=True)
class Selection:
    """Which columns of a delimited file are what: ``data.label``, ``data.id``, and the
    features (``data.features``, else every other column but ``data.exclude``).

    With ``row_names`` (training's choice), a first column named as R and pandas name their row
    names (`ROW_NAME_HEADERS`) is the id when ``data.id`` is unset and no option names it, and a
    feature column with an empty name is refused; without it (a saved model's columns are read
    by name) every column is a candidate feature."""

    label: str | int | None = None
    id: str | int | None = None
    features: Sequence[str | int] | None = None
    exclude: Sequence[str | int] = ()
    row_names: bool = True

    def resolve(self, path: str | PathLike[str], header: Sequence[str]) -> tuple[int, int | None, list[int]]:
        """``(label index, id index or None, feature indices in file order)``."""
        target = label_index(path, list(header), self.label)
        ident = None if self.id is None else column_index(path, header, self.id, "id")
        if ident is None and self._row_names_first(header, target):
            ident = 0
        if ident == target:
            raise DataError(f"{path}: data.id and the label are the same column {header[target]!r}")
        taken = {target} if ident is None else {target, ident}
        if self.features is not None:
            features = [column_index(path, header, name, "features") for name in self.features]
            clash = [header[index] for index in features if index in taken]
            if clash:
                raise DataError(f"{path}: data.features lists {shown_names(clash)}, the label or id column")
        else:
            excluded = {column_index(path, header, name, "exclude") for name in self.exclude}
            features = [index for index in range(len(header)) if index not in taken | excluded]
        if not features:
            raise DataError(
                f"{path}: no feature columns left besides the label{' and id' if ident is not None else ''}; "
                f"columns are: {shown_names(header, 20)}"
            )
        unnamed = [index for index in features if not header[index].strip()]
        if self.row_names and unnamed:
            raise DataError(f"{path}: column {unnamed[0] + 1} has no name in the header; a feature needs one "
                            "(name it, or leave it out with data.exclude)")
        return target, ident, sorted(set(features))

    def _row_names_first(self, header: Sequence[str], target: int) -> bool:
        """Whether the first column is a row-name column to read as the id (see the class)."""
        if not self.row_names or target == 0 or len(header) < 3 or header[0] not in ROW_NAME_HEADERS:
            return False
        named = [*(self.features or ()), *self.exclude]
        return not any(entry in (0, header[0]) and not isinstance(entry, bool) for entry in named)

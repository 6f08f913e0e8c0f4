"""Delimited text (CSV, TSV, ...): streamed in chunks, with a sniffed delimiter and header.

Handles a UTF-8 BOM, CRLF line ends, quoted fields and blank lines; every error names
the file and, where it applies, the line and column.
"""

from __future__ import annotations

import csv
import itertools
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from os import PathLike
from typing import TextIO, TypeAlias

import numpy as np

from softreg.dataset import Dataset, check_finite, generated_names
from softreg.errors import DataError

CHUNK_ROWS = 65536

Chunk: TypeAlias = tuple[list[list[str]], list[int]]  # rows of cells, and the file line of each


def sniff_delimiter(first_line: str) -> str:
    """The most frequent of ``, ; TAB |`` in the header line (comma when none occurs)."""
    counts = {candidate: first_line.count(candidate) for candidate in (",", ";", "\t", "|")}
    best = max(counts, key=counts.__getitem__)
    return best if counts[best] > 0 else ","


def _is_number(cell: str) -> bool:
    try:
        float(cell)
    except ValueError:
        return False
    return True


def _data_rows(path: str | PathLike[str], handle: TextIO, delimiter: str) -> Iterator[tuple[list[str], int]]:
    """(cells, line number) of every non-blank row; decoding and quoting errors name the line."""
    reader = csv.reader(handle, delimiter=delimiter)
    try:
        for row in reader:
            if row and any(cell.strip() for cell in row):
                yield row, reader.line_num
    except csv.Error as error:
        raise DataError(f"{path}: line {reader.line_num}: malformed delimited text ({error})") from None
    except UnicodeDecodeError:
        raise DataError(f"{path}: not UTF-8 text (after line {reader.line_num}); is it a binary file?") from None


@contextmanager
def delimited_chunks(
    path: str | PathLike[str], delimiter: str | None = None, chunk_rows: int = CHUNK_ROWS, header: bool | None = None
) -> Iterator[tuple[list[str], Iterator[Chunk]]]:
    """Open a delimited file; yield its header and an iterator of row chunks.

    Streams the file (memory bounded by ``chunk_rows``). Handles a UTF-8 BOM, CRLF
    line ends, quoted fields and blank lines. ``header`` None assumes a header row
    unless every cell of the first row is a number; False reads the first row as data.
    Without a header the columns are named ``col0, col1, ...``.

    Yields
    ------
    header : list of str
    chunks : iterator of (rows, line_numbers)
        ``rows`` a list of lists of str, each as long as the header; ``line_numbers``
        the file line of each row.
    """
    try:
        handle = open(path, encoding="utf-8-sig", newline="")
    except OSError as error:
        raise DataError(f"{path}: cannot read ({error.strerror or error})") from None
    with handle:
        rows = _data_rows(path, handle, delimiter or _sniff_file(path, handle))
        first = next(rows, None)
        if first is None:
            raise DataError(f"{path}: file is empty")
        names = [cell.strip() for cell in first[0]]
        pending = []
        if header is False or (header is None and all(_is_number(cell) for cell in names)):
            names, pending = generated_names(len(names)), [first]
        duplicates = sorted({name for name in names if names.count(name) > 1})
        if duplicates:
            raise DataError(f"{path}: duplicate column name(s) {', '.join(map(repr, duplicates))} in the header")
        yield names, _chunks(path, names, itertools.chain(pending, rows), chunk_rows)


def _sniff_file(path: str | PathLike[str], handle: TextIO) -> str:
    try:
        first_line = next((line for line in handle if line.strip()), "")
    except UnicodeDecodeError:
        raise DataError(f"{path}: not UTF-8 text; is it a binary file?") from None
    handle.seek(0)
    return sniff_delimiter(first_line)


def _chunks(
    path: str | PathLike[str], header: list[str], rows: Iterable[tuple[list[str], int]], chunk_rows: int
) -> Iterator[Chunk]:
    chunk: list[list[str]] = []
    lines: list[int] = []
    total = 0
    for row, line in rows:
        if len(row) != len(header):
            raise DataError(f"{path}: line {line} has {len(row)} fields, expected {len(header)} (as in the header)")
        chunk.append(row)
        lines.append(line)
        if len(chunk) == chunk_rows:
            total += len(chunk)
            yield chunk, lines
            chunk, lines = [], []
    if chunk:
        yield chunk, lines
    elif total == 0:
        raise DataError(f"{path}: has a header but no data rows")


def read_delimited_rows(
    path: str | PathLike[str], delimiter: str | None = None, header: bool | None = None
) -> tuple[list[str], list[list[str]], list[int]]:
    """Header, all data rows and their line numbers (see `delimited_chunks`)."""
    rows: list[list[str]] = []
    line_numbers: list[int] = []
    with delimited_chunks(path, delimiter, header=header) as (names, chunks):
        for chunk, lines in chunks:
            rows.extend(chunk)
            line_numbers.extend(lines)
    return names, rows, line_numbers


def label_index(path: str | PathLike[str], header: list[str], label: str | int | None) -> int:
    """Column index of the label given by name or 0-based index (default: last column)."""
    if label is None:
        return len(header) - 1
    if isinstance(label, int):
        if -len(header) <= label < len(header):
            return label % len(header)
        raise DataError(f"{path}: label column index {label} is out of range; the file has {len(header)} columns")
    if label in header:
        return header.index(label)
    raise DataError(f"{path}: label column {label!r} not found; columns are: {', '.join(header)}")


def parse_features(
    path: str | PathLike[str], cells: np.ndarray, names: Sequence[str], line_numbers: Sequence[int]
) -> np.ndarray:
    """Convert a (n, d) array of strings to finite float64; errors name line and column."""
    try:
        X = cells.astype(np.float64)
    except ValueError:
        for row_index, row in enumerate(cells):
            for column, cell in enumerate(row):
                if not _is_number(cell):
                    what = "an empty cell" if not cell.strip() else f"{str(cell)!r}"
                    raise DataError(
                        f"{path}: line {line_numbers[row_index]}, column {names[column]!r}: "
                        f"{what} is not a number"
                    ) from None
        raise
    check_finite(path, X, names, line_numbers)
    return X


def load_delimited(
    path: str | PathLike[str],
    label: str | int | None = None,
    delimiter: str | None = None,
    header: bool | None = None,
) -> Dataset:
    """A delimited file as a `Dataset`: the ``label`` column (see `label_index`) and every other as a feature."""
    columns, rows, line_numbers = read_delimited_rows(path, delimiter, header)
    target = label_index(path, columns, label)
    if len(columns) < 2:
        raise DataError(
            f"{path}: needs at least one feature column besides the label; columns are: {', '.join(columns)}"
        )
    cells = np.array(rows, dtype=str)
    label_cells = np.char.strip(cells[:, target])
    blank = np.flatnonzero(label_cells == "")
    if blank.size:
        raise DataError(f"{path}: line {line_numbers[blank[0]]}: empty label in column {columns[target]!r}")
    names = columns[:target] + columns[target + 1:]
    X = parse_features(path, np.delete(cells, target, axis=1), names, line_numbers)
    return Dataset(
        X=X,
        labels=_typed_labels(label_cells),
        feature_names=names,
        label_name=columns[target],
        source=str(path),
        named=columns != generated_names(len(columns)),
    )


def _typed_labels(label_cells: np.ndarray) -> np.ndarray:
    """Integer labels when every label is an integer, otherwise strings."""
    try:
        as_int = label_cells.astype(np.int64)
    except (ValueError, OverflowError):  # text, or integers too large for int64: keep them as text
        return label_cells.astype(str)
    return as_int

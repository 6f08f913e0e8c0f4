"""Delimited text (CSV, TSV, ...): streamed in chunks, with a sniffed delimiter and header.

Handles a UTF-8 BOM, CRLF line ends, quoted fields and blank lines; every error names
the file and, where it applies, the line and column.
"""

from __future__ import annotations

import codecs
import collections
import csv
import io
import itertools
import sys
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from os import PathLike
from typing import TextIO, TypeAlias

import numpy as np

from softreg.errors import DataError, warn
from softreg.io import remote
from softreg.io.cells import is_number, missing_label_error
from softreg.io.cells import missing_labels as missing_labels_of
from softreg.io.dataset import Dataset, generated_names, shown_names
from softreg.io.header import HEADER_LOOKAHEAD, is_missing, looks_like_header, sniff_delimiter
from softreg.io.selection import Selection
from softreg.io.spans import Span, open_span

CHUNK_ROWS = 65536

Chunk: TypeAlias = tuple[list[list[str]], list[int]]  # rows of cells, and the file line of each


def _data_rows(
    path: str | PathLike[str], lines: Iterable[str], delimiter: str, first_line: int, encoding: str = "utf-8"
) -> Iterator[tuple[list[str], int]]:
    """(cells, line number) of every non-blank row; decoding and quoting errors name the line."""
    reader = csv.reader(lines, delimiter=delimiter)
    offset = first_line - 1  # blank lines skipped before the first one read
    try:
        for row in reader:
            if row and any(cell.strip() for cell in row):
                yield row, reader.line_num + offset
    except csv.Error as error:
        raise DataError(f"{path}: line {reader.line_num + offset}: malformed delimited text ({error})") from None
    except UnicodeDecodeError:
        raise DataError(
            f"{path}: not {_shown(encoding)} text (after line {reader.line_num + offset}); is it a binary file? "
            "(text in another encoding: set data.encoding, e.g. latin-1)"
        ) from None


def _open_text(path: str | PathLike[str], encoding: str, span: Span | None = None) -> TextIO:
    """The file (or ``span`` of it) as text (``-``: standard input; a URL through
    `softreg.io.remote`); a UTF-8 byte-order mark at its head is skipped."""
    if str(path) == "-":
        return io.TextIOWrapper(sys.stdin.buffer, encoding=python_encoding(encoding), newline="")
    try:
        if span is not None:
            codec = python_encoding(encoding)
            if not span.at_head and codecs.lookup(codec).name == "utf-8-sig":
                codec = "utf-8"  # a byte-order mark is one only at the file's head
            codecs.lookup(codec)
            return io.TextIOWrapper(open_span(str(path), span), encoding=codec, newline="")
        if remote.is_url(path):
            codecs.lookup(python_encoding(encoding))  # an unknown encoding refused before the file is opened
            return io.TextIOWrapper(remote.open_binary(str(path)), encoding=python_encoding(encoding), newline="")
        return open(path, encoding=python_encoding(encoding), newline="")
    except LookupError:
        raise DataError(f"{path}: unknown data.encoding {encoding!r} (e.g. utf-8, latin-1, cp1252)") from None
    except OSError as error:
        raise DataError(f"{path}: cannot read ({error.strerror or error})") from None


def _shown(encoding: str) -> str:
    return "UTF-8" if python_encoding(encoding) == "utf-8-sig" else encoding


def python_encoding(encoding: str) -> str:
    """The Python codec for ``data.encoding`` (UTF-8 reads as ``utf-8-sig``, skipping a byte-order mark)."""
    return "utf-8-sig" if encoding.lower().replace("_", "-") in ("utf-8", "utf8") else encoding


@dataclass
class DelimitedText:
    """An open delimited file: its column names, the delimiter read or sniffed, and its rows."""

    names: list[str]
    separator: str
    chunks: Iterator[Chunk]
    handle: TextIO | None = None
    header: bool = True  # whether the first row was read as the header

    def position(self) -> int | None:
        """Bytes of the file read so far (a little ahead of the rows); None for standard input."""
        try:
            return int(self.handle.buffer.tell()) if self.handle is not None else None
        except (AttributeError, OSError, ValueError):
            return None


@contextmanager
def open_delimited(
    path: str | PathLike[str],
    delimiter: str | None = None,
    chunk_rows: int = CHUNK_ROWS,
    header: bool | None = None,
    encoding: str = "utf-8",
    span: Span | None = None,
) -> Iterator[DelimitedText]:
    """Open a delimited file (``-``: standard input): see `delimited_chunks`, which yields
    the same header and chunks; this also tells the delimiter. ``span``: only those bytes
    (`softreg.io.spans.Span`), read after the file's head with the columns and delimiter it
    decided, or at the head as usual."""
    handle = _open_text(path, encoding, span)
    with handle:
        if span is not None and not span.at_head:
            assert span.names is not None and span.separator is not None
            names, separator = list(span.names), span.separator
            rows = _data_rows(path, handle, separator, span.first_line, encoding)
            yield DelimitedText(names, separator, _chunks(path, names, rows, chunk_rows), handle)
            return
        lines, first_line = _skip_blank(path, handle, encoding)
        if not lines:
            raise DataError(f"{path}: file is empty")
        separator = delimiter or sniff_delimiter(lines[0])
        rows = _data_rows(path, itertools.chain(lines, handle), separator, first_line, encoding)
        ahead = list(itertools.islice(rows, HEADER_LOOKAHEAD + 1))
        if not ahead:
            raise DataError(f"{path}: file is empty")
        first = ahead[0]
        names = [cell.strip() for cell in first[0]]
        is_header = header if header is not None else looks_like_header(names, [row for row, _ in ahead[1:]])
        pending = ahead[1:] if is_header else ahead
        if not is_header:
            names = generated_names(len(names))
        counts = collections.Counter(names)
        duplicates = sorted(name for name, count in counts.items() if count > 1)
        if duplicates:
            raise DataError(f"{path}: duplicate column name(s) {shown_names(duplicates)} in the header")
        chunks = _chunks(path, names, itertools.chain(pending, rows), chunk_rows)
        yield DelimitedText(names, separator, chunks, handle if str(path) != "-" else None, is_header)


@contextmanager
def delimited_chunks(
    path: str | PathLike[str],
    delimiter: str | None = None,
    chunk_rows: int = CHUNK_ROWS,
    header: bool | None = None,
    encoding: str = "utf-8",
) -> Iterator[tuple[list[str], Iterator[Chunk]]]:
    """Open a delimited file (``-``: standard input); yield its header and an iterator of row chunks.

    Streams the file (memory bounded by ``chunk_rows``). Handles a UTF-8 BOM, CRLF
    line ends, quoted fields and blank lines. ``header`` None decides by
    `looks_like_header` on the first rows; False reads the first row as data. Without a
    header the columns are named ``col0, col1, ...``.

    Yields
    ------
    header : list of str
    chunks : iterator of (rows, line_numbers)
        ``rows`` a list of lists of str, each as long as the header; ``line_numbers``
        the file line of each row.
    """
    with open_delimited(path, delimiter, chunk_rows, header, encoding) as text:
        yield text.names, text.chunks


def _skip_blank(path: str | PathLike[str], handle: TextIO, encoding: str) -> tuple[list[str], int]:
    """The first non-blank line (as a one-item list, or empty at the end) and its line number."""
    number = 0
    try:
        for line in handle:
            number += 1
            if line.strip():
                return [line], number
    except UnicodeDecodeError:
        raise DataError(
            f"{path}: not {_shown(encoding)} text; is it a binary file? "
            "(text in another encoding: set data.encoding, e.g. latin-1)"
        ) from None
    return [], number


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
    path: str | PathLike[str], delimiter: str | None = None, header: bool | None = None, encoding: str = "utf-8"
) -> tuple[list[str], list[list[str]], list[int]]:
    """Header, all data rows and their line numbers (see `delimited_chunks`)."""
    rows: list[list[str]] = []
    line_numbers: list[int] = []
    with delimited_chunks(path, delimiter, header=header, encoding=encoding) as (names, chunks):
        for chunk, lines in chunks:
            rows.extend(chunk)
            line_numbers.extend(lines)
    return names, rows, line_numbers


def load_delimited(
    path: str | PathLike[str],
    selection: Selection | None = None,
    delimiter: str | None = None,
    header: bool | None = None,
    encoding: str = "utf-8",
    missing_labels: str = "error",
) -> Dataset:
    """A delimited file as a `Dataset` of raw feature cells (see `softreg.prepare.columns` for how
    they become numbers), with its labels, line numbers and id column.

    A row whose label is missing (`softreg.io.cells.missing_labels`) is refused naming its line
    (``missing_labels="error"``) or left out and counted in ``unlabelled`` (``"drop"``)."""
    selection = selection or Selection()
    columns, rows, line_numbers = read_delimited_rows(path, delimiter, header, encoding)
    if len(columns) < 2:
        raise DataError(
            f"{path}: needs at least one feature column besides the label; columns are: {', '.join(columns)}"
        )
    target, ident, features = selection.resolve(path, columns)
    source_rows = None
    cells = np.array(rows, dtype=str)
    lines = np.asarray(line_numbers)
    label_cells = np.char.strip(cells[:, target])
    unlabelled = missing_labels_of(label_cells)
    if unlabelled.any():
        if missing_labels == "error":
            row = int(np.flatnonzero(unlabelled)[0])
            raise missing_label_error(str(path), f"line {lines[row]}", label_cells[row], columns[target])
        cells, lines, label_cells = cells[~unlabelled], lines[~unlabelled], label_cells[~unlabelled]
        source_rows = np.flatnonzero(~unlabelled)  # the kept rows' data-row indices, for split.npz
        if not len(cells):
            raise DataError(f"{path}: no row has a label in column {columns[target]!r}")
    if selection.label is None and target != 0 and 0 in features:
        hint_label_first(path, columns, cells)
    return Dataset(
        X=None,
        labels=typed_labels(label_cells),
        feature_names=[columns[index] for index in features],
        label_name=columns[target],
        source=str(path),
        named=columns != generated_names(len(columns)),
        cells=cells[:, features],
        line_numbers=lines,
        ids=None if ident is None else cells[:, ident],
        id_name=None if ident is None else columns[ident],
        file_columns=list(columns),
        unlabelled=int(unlabelled.sum()),
        source_rows=source_rows,
    )


def hint_label_first(path: str | PathLike[str], columns: Sequence[str], cells: np.ndarray) -> None:
    """Warn when the default label (the last column) is numeric but the first column holds text
    with few distinct values: the label probably sits first (as in UCI letters)."""
    sample = cells[:1000]
    first, last = sample[:, 0].tolist(), sample[:, -1].tolist()
    first_is_text = not any(is_number(cell) or is_missing(cell) for cell in first)
    if first_is_text and all(is_number(cell) for cell in last) and len(set(first)) <= max(2, len(first) // 2):
        warn(
            f"{path}: data.label is unset, so the last column {columns[-1]!r} is the label, but the first column "
            f"{columns[0]!r} holds text labels; if that is the label, set data.label: {columns[0]}"
        )


def typed_labels(label_cells: np.ndarray) -> np.ndarray:
    """Integer labels when every label is an integer, otherwise strings."""
    try:
        as_int = label_cells.astype(np.int64)
    except (ValueError, OverflowError):  # text, or integers too large for int64: keep them as text
        return label_cells.astype(str)
    return as_int

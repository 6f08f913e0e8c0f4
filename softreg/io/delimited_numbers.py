"""Delimited text whose feature cells are all numbers, read fast: pandas' C parser, in chunks,
straight into float64.

A shortcut, never a second set of rules. `softreg.io.delimited` reads the head of the file (the
delimiter, the header, the columns and the first rows); pandas then parses the body, features
as float64 and the label and id columns as text. The result is exactly what the text-cell
path gives for the same file: the same rows, each feature bit for bit what Python's ``float``
reads (pandas 3.1's converter is correctly rounded; older versions are asked for their
round-trip converter), each label the same stripped text. Or the shortcut declines
(`NotNumeric`) and the caller reads the file as text cells, whose errors name the line and
column. It declines whenever it cannot be sure: a feature cell that is not a finite number
(missing, text, NaN, inf), a blank label, a row shorter or longer than the header, anything
pandas refuses or warns about, first rows that differ from `softreg.io.delimited`'s reading of
them, an encoding whose line end is not the byte ``\\n``, standard input. It never raises a
DataError of its own, so every message stays the text path's.

No Python object per cell: features go from pandas' parser to float64 arrays; only the label
and id columns pass through Python strings, one chunk at a time.

The columns are chosen by a `softreg.io.selection.ColumnChoice`: training's `Selection`, or the
columns a saved model reads (no label for ``predict``). Streaming readers (ingest, ``evaluate
--data``, ``predict``) go through `softreg.io.stream.open_rows`, which hands over to the text path
at the chunk where the fast path declines, so that the text path reads on from the same row;
`softreg.io.arrays.load_numbers` reads a whole file into one array.
"""

from __future__ import annotations

import codecs
import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from os import PathLike
from typing import IO, Any, TypeVar

import numpy as np

from softreg.errors import DataError
from softreg.io import remote
from softreg.io.cells import missing_mask
from softreg.io.dataset import NumberRows, generated_names
from softreg.io.delimited import Chunk, DelimitedText, open_delimited, python_encoding
from softreg.io.header import HEADER_LOOKAHEAD
from softreg.io.selection import ColumnChoice, Selection
from softreg.io.spans import Span, open_span

CHUNK_ROWS = 65536

_BOM = codecs.BOM_UTF8
_ASCII_PROBE = '\n\r,;\t|"+-.0123456789eE'

T = TypeVar("T")


class NotNumeric(Exception):
    """The fast path declines a file (or the rest of it): read it as text cells instead."""


@dataclass
class NumericChunk(NumberRows):
    """Consecutive data rows of a delimited file (`NumberRows`; every feature a finite number), and
    ``offset``: bytes of the file read so far (the parser reads a little ahead of the rows)."""

    offset: int = 0


@dataclass(frozen=True)
class Layout:
    """A delimited file's head as `softreg.io.delimited` reads it: its columns, which are label, id
    and features, where the body starts, and the first data rows; and what `read_layout` was
    asked, with which the text path reads the file where the fast path declines."""

    path: str
    separator: str
    codec: str  # what pandas decodes with (a UTF-8 byte-order mark is skipped here)
    names: list[str]  # every column of the file, in order
    target: int | None  # None: no label column (rows to predict)
    ident: int | None
    features: list[int]  # in the order the features are read, not necessarily the file's
    skip_lines: int  # lines before the first data row: blank ones and the header
    head: NumericChunk
    delimiter: str | None  # as asked (None: sniffed)
    header: bool | None
    encoding: str
    span: Span | None = None  # only these bytes of the file (`softreg.io.spans.Span`)

    @property
    def named(self) -> bool:
        """Whether the file has a header (else its columns are col0, col1, ...)."""
        return self.names != generated_names(len(self.names))


def read_layout(
    path: str | PathLike[str],
    selection: ColumnChoice | None = None,
    delimiter: str | None = None,
    header: bool | None = None,
    encoding: str = "utf-8",
    span: Span | None = None,
) -> Layout:
    """The layout of a delimited file whose first rows are numeric; NotNumeric when the fast path
    cannot read it (the text path then says why, if anything is wrong).

    ``selection`` chooses the columns (default: `Selection()`, the last one the label); a
    `ColumnChoice` may choose no label (the rows to predict), and may raise NotNumeric itself
    to leave the file to the text path. ``span``: only those bytes of the file."""
    codec = byte_lines_codec(encoding)
    if str(path) == "-" or codec is None:
        raise NotNumeric
    try:
        with open_delimited(path, delimiter, HEADER_LOOKAHEAD, header, encoding, span) as text:
            rows, lines = next(text.chunks)
        if len(text.names) < 2 or text.separator in '"\r\n':
            raise NotNumeric
        target, ident, features = (selection or Selection()).resolve(path, text.names)
    except (DataError, StopIteration):
        raise NotNumeric from None
    head = _head(rows, target, ident, features)
    first_line = 1 if span is None else span.first_line
    return Layout(str(path), text.separator, codec, text.names, target, ident, features, lines[0] - first_line, head,
                  delimiter, header, encoding, span)


def byte_lines_codec(encoding: str) -> str | None:
    """The codec to hand pandas when the file's line ends, delimiters and digits are their ASCII
    bytes (UTF-8, Latin-1, cp1252, ...), so that lines can be skipped as bytes; else None."""
    try:
        name = codecs.lookup(python_encoding(encoding)).name
    except LookupError:
        return None
    name = "utf-8" if name == "utf-8-sig" else name
    try:
        return name if _ASCII_PROBE.encode(name) == _ASCII_PROBE.encode("ascii") else None
    except UnicodeEncodeError:
        return None


def _head(rows: list[list[str]], target: int | None, ident: int | None, features: list[int]) -> NumericChunk:
    """The first rows, read cell by cell as the text path reads them; NotNumeric unless every
    feature cell is a finite number and every label is present."""
    try:
        X = np.array([[float(row[index]) for index in features] for row in rows], dtype=np.float64)
    except ValueError:
        raise NotNumeric from None
    texts, codes = np.empty(0, dtype=str), np.empty(0, dtype=np.intp)
    if target is not None:
        texts, codes = np.unique(np.char.strip(np.array([row[target] for row in rows], dtype=str)), return_inverse=True)
    if not np.isfinite(X).all() or missing_mask(texts).any():  # a missing label: the text path names its line
        raise NotNumeric
    ids = None if ident is None else np.array([row[ident] for row in rows], dtype=str)
    return NumericChunk(X, texts, codes.ravel(), ids)


def read_chunks(layout: Layout, chunk_rows: int = CHUNK_ROWS) -> Iterator[NumericChunk]:
    """The data rows of ``layout.path`` in chunks of ``chunk_rows``; NotNumeric (raised at the
    chunk where it happens) when a row is not what the fast path can read exactly."""
    import pandas as pd

    columns = [f"c{index}" for index in range(len(layout.names))]
    last = len(columns) - 1
    # every column is parsed (pandas checks the field count only then); those not features as
    # categories: a code per row and each distinct text once, never a Python string per cell
    dtype: dict[str, Any] = {name: "category" for name in columns}
    dtype.update({columns[index]: np.float64 for index in layout.features})
    try:
        with _open_binary(layout) as handle:
            _skip_head(handle, layout.skip_lines, layout.codec, layout.span is None or layout.span.at_head)
            reader = pd.read_csv(
                handle, sep=layout.separator, header=None, names=columns, index_col=False,
                dtype=dtype, na_filter=False, keep_default_na=False, skip_blank_lines=True, quotechar='"',
                doublequote=True, engine="c", encoding=layout.codec, chunksize=chunk_rows, **_converter(pd),
            )
            with reader:
                n_rows = 0
                while (frame := _next_frame(reader, pd.errors.ParserWarning)) is not None:
                    chunk = _numbers(frame, layout, columns, last, handle.tell())
                    if n_rows < len(layout.head):
                        _check_head(chunk, layout.head, n_rows)
                    n_rows += len(chunk)
                    yield chunk
                if n_rows < len(layout.head):
                    raise NotNumeric
    except (ValueError, OverflowError, OSError):  # pandas' parse errors are ValueErrors
        raise NotNumeric from None


def _open_binary(layout: Layout) -> IO[bytes]:
    """The layout's file (or its span) for reading bytes."""
    if layout.span is not None:
        return open_span(layout.path, layout.span)
    return remote.open_binary(layout.path) if remote.is_url(layout.path) else open(layout.path, "rb")


def _skip_head(handle: IO[bytes], skip_lines: int, codec: str, at_head: bool = True) -> None:
    """Move past the header and the blank lines before the first data row (and a byte-order mark
    at the file's head)."""
    if at_head and skip_lines == 0 and codec == "utf-8" and handle.read(len(_BOM)) != _BOM:
        handle.seek(0)
    for _ in range(skip_lines):
        handle.readline()


def _converter(pd: Any) -> dict[str, str]:
    """pandas before 3.1 parses floats correctly rounded only with its round-trip converter;
    3.1 made that the only one and deprecates the option."""
    major, minor = (int(part) for part in pd.__version__.split(".")[:2])
    return {} if (major, minor) >= (3, 1) else {"float_precision": "round_trip"}


def _next_frame(reader: Any, parser_warning: type[Warning]) -> Any:
    """The next chunk, or None at the end; a parser warning (such as a first row longer than
    the header) is a reason to decline, not to go on."""
    with warnings.catch_warnings():
        warnings.simplefilter("error", parser_warning)
        try:
            return next(reader)
        except StopIteration:
            return None
        except parser_warning:
            raise NotNumeric from None


def _numbers(frame: Any, layout: Layout, columns: list[str], last: int, offset: int) -> NumericChunk:
    X = frame[[columns[index] for index in layout.features]].to_numpy(dtype=np.float64)
    if not np.isfinite(X).all():
        raise NotNumeric
    texts, codes = np.empty(0, dtype=str), np.empty(0, dtype=np.intp)
    if layout.target is not None:
        texts, codes = _categories(frame[columns[layout.target]])
        texts = np.char.strip(texts)
    if missing_mask(texts).any():  # a missing label (the text path names its line), or a row too short to have one
        raise NotNumeric
    ids = None
    if layout.ident is not None:
        id_texts, id_codes = _categories(frame[columns[layout.ident]])
        ids = id_texts[id_codes]
    if last not in layout.features and last != layout.target and np.any(_categories(frame[columns[last]])[0] == ""):
        raise NotNumeric  # an empty last cell, or a row too short to have one
    return NumericChunk(X, texts, codes, ids, offset)


def _categories(column: Any) -> tuple[np.ndarray, np.ndarray]:
    """The distinct texts (str) of a categorical column and the code of each row."""
    return np.asarray(column.cat.categories, dtype=str), column.cat.codes.to_numpy()


def _check_head(chunk: NumericChunk, head: NumericChunk, start: int) -> None:
    """The rows of ``chunk`` (rows ``start`` on) must be those the text path read first: a
    header or a first row that spans lines, or line ends that are not ``\\n``, would shift them."""
    rows = slice(start, min(len(head), start + len(chunk)))
    n = rows.stop - rows.start
    same = (
        np.array_equal(chunk.X[:n].view(np.uint64), head.X[rows].view(np.uint64))
        and np.array_equal(chunk.labels[:n], head.labels[rows])
        and (chunk.ids is None or head.ids is None or np.array_equal(chunk.ids[:n], head.ids[rows]))
    )
    if not same:
        raise NotNumeric


class RowsAfter(Iterator[Chunk]):
    """The text path's chunks less their first ``skip`` rows; ``position()`` is the file's
    (`softreg.io.delimited.DelimitedText.position`), for progress."""

    def __init__(self, opened: DelimitedText, skip: int) -> None:
        self.position = opened.position
        self._chunks = self._after(opened.chunks, skip)

    @staticmethod
    def _after(chunks: Iterator[Chunk], skip: int) -> Iterator[Chunk]:
        for rows, lines in chunks:
            if skip < len(rows):
                yield rows[skip:], lines[skip:]
            skip = max(0, skip - len(rows))

    def __next__(self) -> Chunk:
        return next(self._chunks)

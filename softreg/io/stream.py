"""The one streaming entry point: `open_rows` reads any source a chunk at a time, in the same
`RowChunk` for every format, for ingest, ``evaluate --data`` and ``predict``.

- Delimited text goes through the fast numeric path (`softreg.io.delimited_numbers`) while it can,
  and as text cells from the chunk where it declines (the text path reads on from the same row
  and names the line and column of what is wrong, if anything). A caller that cannot use a
  numeric chunk (a check whose message needs line numbers) calls `Rows.decline`: that chunk is
  read again as text.
- Parquet is read in batches by column name (`softreg.io.parquet`).
- svmlight, ``.npz`` and the builtin sets are read whole (`softreg.io.sources.load_source`), as
  one chunk.

Columns are chosen by a `softreg.io.selection.ColumnChoice` once, on opening: what can be refused
before the first row (a missing file or column) is refused then.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field

import numpy as np

from softreg.io import delimited_numbers
from softreg.io.cells import missing_label_error, missing_mask
from softreg.io.dataset import Dataset, generated_names
from softreg.io.delimited import CHUNK_ROWS, DelimitedText, delimited_chunks, open_delimited
from softreg.io.delimited_numbers import Layout, NotNumeric, RowsAfter
from softreg.io.kinds import source_kind
from softreg.io.parquet import ParquetLayout, parquet_column_names, read_batches, read_parquet_layout
from softreg.io.parquet_chunks import Window, rows_in_chunks
from softreg.io.selection import ColumnChoice, Selection
from softreg.io.spans import Span
from softreg.io.whole import load_whole
from softreg.kernels import Matrix


@dataclass(frozen=True)
class ReadOptions:
    """How to read a source beyond its name.

    delimiter, header, encoding : delimited text (None: sniffed; decided by the first rows)
    numbers : whether delimited text may go through the fast numeric path
    index_base : svmlight's first feature index (None: detected)
    refuse_missing : Parquet: a null feature is refused with this hint (None: read as NaN)
    exact_chunks : Parquet: chunks of exactly ``chunk_rows`` rows wherever its files and row
        groups end (else at most ``chunk_rows``, a batch never spanning two files)
    missing_labels : a row without a label (`softreg.io.cells.missing_labels`): ``"error"``
        refuses it naming its line or row, ``"drop"`` leaves it out (counted in `RowChunk.unlabelled`)
    window : Parquet: only these labelled rows (`softreg.io.parquet_chunks.Window`), for a reader
        that reads part of a source (a Dask worker's share of an ingest)
    span : delimited text: only these bytes (`softreg.io.spans.Span`), for the same
    """

    delimiter: str | None = None
    header: bool | None = None
    encoding: str = "utf-8"
    numbers: bool = True
    index_base: int | None = None
    refuse_missing: str | None = None
    exact_chunks: bool = False
    missing_labels: str = "error"
    window: Window | None = None
    span: Span | None = None


@dataclass
class RowChunk:
    """Consecutive rows of a source.

    X : {ndarray, csr_matrix} of shape (n_rows, n_features), float64, or None
        The feature columns as numbers (the fast path, Parquet, whole sources); NaN marks a
        missing value.
    cells : ndarray of str of shape (n_rows, n_columns), or None
        Text rows (the text path): every column of the file.
    label_texts : ndarray of shape (n_texts,), str
        The distinct labels, stripped (whole sources: the typed labels themselves).
    label_codes : ndarray of shape (n_rows,), int, indices into ``label_texts``
        Both empty without a label column (the rows to predict).
    ids : ndarray of shape (n_rows,), str, or None without an id column
    lines : the file line of each row (the text path), or None
    first_row : the source row (0: its first) of the chunk's first row
    offset : bytes of the source read so far (a little ahead of the rows), or None
    unlabelled : rows of the source left out of the chunk for a missing label
    """

    X: Matrix | None
    cells: np.ndarray | None
    label_texts: np.ndarray
    label_codes: np.ndarray
    ids: np.ndarray | None
    lines: list[int] | None
    first_row: int
    offset: int | None = None
    unlabelled: int = 0

    def __len__(self) -> int:
        table = self.cells if self.cells is not None else self.X
        return 0 if table is None else int(table.shape[0])

    @property
    def labels(self) -> np.ndarray:
        """The label of each row, shape (n_rows,) (empty without a label column)."""
        return self.label_texts[self.label_codes]


@dataclass
class Rows:
    """An open source: its kind, its columns (``names``, every column of the file), which of them
    are the label, the id and the features, and its chunks (`RowChunk`); ``numbers``: whether the
    chunks start as numbers (False: delimited text read as text cells from its first row);
    ``dataset``: a whole source as loaded."""

    kind: str
    source: str
    names: list[str]
    target: int | None
    ident: int | None
    features: list[int]
    named: bool
    numbers: bool = True
    n_rows: int | None = None  # Parquet: the rows its metadata counts
    chunks: Iterator[RowChunk] = field(default_factory=lambda: iter(()))
    dataset: Dataset | None = None
    _declined: bool = False

    def decline(self) -> None:
        """Read the numeric chunk just passed on (or, before the first, the whole file) again as text."""
        self._declined = True


@contextmanager
def open_rows(
    source: str, columns: ColumnChoice, options: ReadOptions | None = None, chunk_rows: int = CHUNK_ROWS,
    where: str | None = None,
) -> Iterator[Rows]:
    """Open ``source`` (``-``: delimited text on standard input) and yield its `Rows`.

    ``columns`` chooses the label, id and feature columns of delimited text and Parquet (a whole
    source carries its own). ``where`` names the source in messages (default ``source``)."""
    where = where or source
    options = options or ReadOptions()
    kind = source_kind(source)
    if kind == "parquet":
        yield _parquet_rows(source, columns, options, chunk_rows)
        return
    if kind != "delimited":
        yield _whole_rows(source, kind, columns, options)
        return
    with ExitStack() as stack:
        yield _delimited_rows(stack, source, columns, options, chunk_rows, where)


def _delimited_rows(
    stack: ExitStack, source: str, columns: ColumnChoice, options: ReadOptions, chunk_rows: int, where: str
) -> Rows:
    layout = None
    if options.numbers:
        try:
            layout = delimited_numbers.read_layout(source, columns, options.delimiter, options.header, options.encoding,
                                                   options.span)
        except NotNumeric:  # the text path opens it, and says what is wrong with it if anything is
            layout = None
    if layout is not None:
        rows = Rows("delimited", source, layout.names, layout.target, layout.ident, layout.features, layout.named)
        rows.chunks = stack.enter_context(_closing(_numbers_then_text(rows, layout, options, chunk_rows, where)))
        return rows
    opened = stack.enter_context(
        open_delimited(source, options.delimiter, chunk_rows, options.header, options.encoding, options.span)
    )
    target, ident, features = columns.resolve(where, opened.names)  # missing columns refused here, up front
    named = opened.names != generated_names(len(opened.names))
    rows = Rows("delimited", source, opened.names, target, ident, features, named, numbers=False)
    rows.chunks = _text_chunks(rows, opened, opened.chunks, 0, where, options.missing_labels)
    return rows


@contextmanager
def _closing(chunks: Iterator[RowChunk]) -> Iterator[Iterator[RowChunk]]:
    """The chunks, their generator closed (and its file with it) when the rows are left before their end."""
    try:
        yield chunks
    finally:
        close = getattr(chunks, "close", None)
        if close is not None:
            close()


def _numbers_then_text(
    rows: Rows, layout: Layout, options: ReadOptions, chunk_rows: int, where: str
) -> Iterator[RowChunk]:
    """Chunks through the fast path until it (or the caller, by `Rows.decline`) declines; from that
    chunk on, the text path's chunks of the rows not yet passed on, in the same chunk sizes."""
    done = 0
    try:
        if rows._declined:
            raise NotNumeric
        for chunk in delimited_numbers.read_chunks(layout, chunk_rows):
            yield RowChunk(chunk.X, None, chunk.label_texts, chunk.label_codes, chunk.ids, None, done, chunk.offset)
            if rows._declined:
                raise NotNumeric
            done += len(chunk)
        return
    except NotNumeric:
        pass
    with open_delimited(layout.path, layout.delimiter, chunk_rows, layout.header, layout.encoding,
                        layout.span) as opened:
        yield from _text_chunks(rows, opened, RowsAfter(opened, done), done, where, options.missing_labels)


def _text_chunks(
    rows: Rows, opened: DelimitedText, chunks: Iterator[tuple[list[list[str]], list[int]]], first_row: int, where: str,
    missing_labels: str = "error",
) -> Iterator[RowChunk]:
    """Text rows as chunks; a missing label is refused naming its line and column, or its row
    left out (``missing_labels``)."""
    for cell_rows, lines in chunks:
        cells = np.array(cell_rows, dtype=str)
        texts, codes = np.empty(0, dtype=str), np.empty(0, dtype=np.intp)
        read, unlabelled = len(lines), 0
        if rows.target is not None:
            labels = np.char.strip(cells[:, rows.target])
            blank = missing_mask(labels)
            if blank.any():
                column = rows.names[rows.target]
                if missing_labels == "error":
                    row = int(np.flatnonzero(blank)[0])
                    raise missing_label_error(where, f"line {lines[row]}", labels[row], column)
                cells, labels, unlabelled = cells[~blank], labels[~blank], int(blank.sum())
                lines = [line for line, gone in zip(lines, blank.tolist(), strict=True) if not gone]
            texts, codes = labels, np.arange(len(labels))
        ids = None if rows.ident is None else cells[:, rows.ident]
        yield RowChunk(None, cells, texts, codes, ids, lines, first_row, opened.position(), unlabelled)
        first_row += read


def _parquet_rows(source: str, columns: ColumnChoice, options: ReadOptions, chunk_rows: int) -> Rows:
    """A Parquet file or folder in batches; a null feature refused or read as NaN (``options.refuse_missing``)."""
    layout = read_parquet_layout(source, columns)  # missing columns refused here, up front
    rows = Rows("parquet", source, layout.names, layout.target, layout.ident, layout.features, True,
                n_rows=sum(layout.rows))
    rows.chunks = _parquet_chunks(layout, options, chunk_rows)
    return rows


def _parquet_chunks(layout: ParquetLayout, options: ReadOptions, chunk_rows: int) -> Iterator[RowChunk]:
    batches = read_batches(layout, chunk_rows, refuse_missing=options.refuse_missing,
                           missing_labels=options.missing_labels, window=options.window)
    if options.exact_chunks:
        batches = rows_in_chunks(batches, chunk_rows)
    total_rows, total_bytes = max(1, sum(layout.rows)), sum(path.stat().st_size for path in layout.files)
    done = 0
    for batch in batches:
        first_row, done = done, done + len(batch) + batch.unlabelled
        offset = total_bytes * done // total_rows  # progress: the share of the rows, as bytes of the files
        yield RowChunk(batch.X, None, batch.label_texts, batch.label_codes, batch.ids, None, first_row, offset,
                       batch.unlabelled)


def _whole_rows(source: str, kind: str, columns: ColumnChoice, options: ReadOptions) -> Rows:
    """svmlight, ``.npz`` or a builtin set, loaded whole: one chunk of numbers and typed labels
    (a `Selection` picks features by name; it cannot name a label or id, which these carry)."""
    selection = columns if isinstance(columns, Selection) else Selection()
    dataset = load_whole(source, kind, selection, options.index_base, options.missing_labels)
    names = list(dataset.feature_names)
    rows = Rows(kind, source, names, None, None, list(range(len(names))), dataset.named, dataset=dataset)
    rows.chunks = iter([RowChunk(dataset.X, None, dataset.labels, np.arange(dataset.n_samples), None, None, 0,
                                 unlabelled=dataset.unlabelled)])
    return rows


def column_names(source: str, header: bool | None = None) -> list[str]:
    """The columns of a delimited or Parquet source (read from its head, or its first file's schema)."""
    if source_kind(source) == "parquet":
        return parquet_column_names(source)
    with delimited_chunks(source, header=header) as (names, _):  # the header (and a few rows)
        return names

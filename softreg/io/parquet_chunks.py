"""Parquet rows in the chunks a reader asks for: batches joined and cut into chunks of exactly so
many rows wherever files and row groups end (`rows_in_chunks`), or a window of them (`windowed`)."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np

from softreg.io.dataset import NumberRows


@dataclass
class ParquetBatch(NumberRows):
    """Consecutive rows of a Parquet source (`NumberRows`; X is NaN where a value is null), and
    ``unlabelled``: rows of the source left out of the batch for a missing label."""

    unlabelled: int = 0


@dataclass(frozen=True)
class Window:
    """Some consecutive labelled rows of a Parquet source: from row group ``group`` of file ``file``
    (0: the first), less the first ``skip`` labelled rows read there, the next ``count``."""

    file: int
    group: int
    skip: int
    count: int


def windowed(batches: Iterator[ParquetBatch], skip: int, count: int) -> Iterator[ParquetBatch]:
    """The ``count`` rows of ``batches`` after their first ``skip``."""
    for batch in batches:
        if count <= 0:
            return
        start = min(skip, len(batch))
        skip -= start
        if start == len(batch):
            continue
        stop = min(len(batch), start + count)
        count -= stop - start
        kept = rows_of(batch, start, stop)
        yield ParquetBatch(kept.X, kept.label_texts, kept.label_codes, kept.ids, 0)


def rows_in_chunks(batches: Iterator[ParquetBatch], chunk_rows: int) -> Iterator[ParquetBatch]:
    """The same rows in chunks of exactly ``chunk_rows`` (the last one shorter), wherever the
    files and their row groups end: what is merged chunk by chunk then does not depend on them."""
    pending: list[ParquetBatch] = []
    held = 0
    for batch in batches:
        pending.append(batch)
        held += len(batch)
        while held >= chunk_rows:
            whole = joined(pending)
            yield rows_of(whole, 0, chunk_rows)
            pending = [rows_of(whole, chunk_rows, held)] if held > chunk_rows else []
            held -= chunk_rows
    if held:
        yield joined(pending)


def joined(batches: list[ParquetBatch]) -> ParquetBatch:
    if len(batches) == 1:
        return batches[0]
    texts = np.concatenate([batch.label_texts for batch in batches])
    offsets = np.cumsum([0] + [len(batch.label_texts) for batch in batches[:-1]])
    codes = np.concatenate([batch.label_codes + offset for batch, offset in zip(batches, offsets, strict=True)])
    ids = None if batches[0].ids is None else np.concatenate([batch.ids for batch in batches if batch.ids is not None])
    unlabelled = sum(batch.unlabelled for batch in batches)
    return ParquetBatch(np.concatenate([batch.X for batch in batches]), texts, codes, ids, unlabelled)


def rows_of(batch: ParquetBatch, start: int, stop: int) -> ParquetBatch:
    ids = None if batch.ids is None else batch.ids[start:stop]
    unlabelled = batch.unlabelled if start == 0 else 0  # counted once, with the first rows
    return ParquetBatch(batch.X[start:stop], batch.label_texts, batch.label_codes[start:stop], ids, unlabelled)

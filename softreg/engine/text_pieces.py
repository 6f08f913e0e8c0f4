"""One delimited file cut into byte ranges for a distributed ingest (`softreg.engine.ingest`), each
a piece of whole chunks (`READ_ROWS` data rows) that one worker reads, as Parquet row groups are.

The workers find the cuts in three short passes over the file's bytes, a range each
(`softreg.io.records`): its quotes and line feeds (so that each range knows whether it starts
inside quotes and on which line); its records, data rows and rows without a label; and where the
data rows at the cuts start. The driver adds up counts and reads no row. The first piece starts
at the file's head and reads its header as one reader of the whole file does; every later one
is handed the columns, the delimiter and the columns' kinds the head decided (`head`), and the
index of its first row among the labelled rows, which decides each row's part and bucket.

A file that cannot be cut so (compressed, an encoding whose characters may hold ASCII bytes,
quoting other than RFC 4180's, a lone carriage return, bytes that are not text in its encoding)
is one piece, and the ingest says why.
Each piece's reader later counts what it read; a count that differs from the plan reads the
file as one piece again (`check_counts`), so a cut can cost time but never change a byte.
"""

from __future__ import annotations

import bisect
import codecs
import itertools
import math
from collections.abc import Callable
from contextlib import ExitStack
from typing import IO, TYPE_CHECKING, Any

from softreg.cache.cells import ColumnKinds
from softreg.cache.pieces import Piece
from softreg.cache.rows import READ_ROWS, _open_source
from softreg.errors import warn
from softreg.io import remote
from softreg.io.cells import label_policy
from softreg.io.delimited import open_delimited, python_encoding
from softreg.io.header import HEADER_LOOKAHEAD
from softreg.io.kinds import default_delimiter
from softreg.io.records import Reading, Scan, ascii_safe, quote_count, scan_records
from softreg.io.remote import storage_options
from softreg.io.selection import Selection
from softreg.io.spans import Span

if TYPE_CHECKING:
    from softreg.config import Config

MIN_RANGE_BYTES = 1 << 20  # a range scanned by one task is at least this large


def head(config: Config) -> dict[str, Any]:
    """(A worker's task.) What the file's head decides: its columns, delimiter and header, the
    label's column, the feature columns' kinds (`ColumnKinds`, from its first chunk), the codec;
    ``refused``: why the file cannot be cut into byte ranges (None: it can)."""
    data = config.data
    delimiter = data.delimiter or default_delimiter(data.source)
    with ExitStack() as stack:
        stack.enter_context(storage_options(data.storage_options))
        text = stack.enter_context(open_delimited(data.source, delimiter, HEADER_LOOKAHEAD, data.header,
                                                  data.encoding))
        layout = _open_source(config, stack).layout
    target = Selection(label=data.label, id=data.id, features=data.features,
                       exclude=data.exclude or ()).resolve(data.source, text.names)[0]
    codec = codecs.lookup(python_encoding(data.encoding)).name  # known: the head was read with it
    # (the delimiter is one of , ; TAB | and space, as data.delimiter allows and the sniffer finds)
    refused = None
    if remote.is_url(data.source) and remote.compression(data.source) is not None:
        refused = "it is compressed"
    elif not ascii_safe(codec):
        refused = f"its encoding {data.encoding} may hold quote, delimiter or line-feed bytes inside a character"
    return {"names": tuple(text.names), "separator": text.separator, "header": text.header, "target": target,
            "layout": layout, "codec": "utf-8" if codec == "utf-8-sig" else codec, "bom": codec == "utf-8-sig",
            "refused": refused}


def _binary(source: str, options: dict[str, Any] | None) -> IO[bytes]:
    if remote.is_url(source):
        with storage_options(options):
            return remote.open_binary(source)
    return open(source, "rb")  # noqa: SIM115 (the caller closes it)


def count_range(source: str, options: dict[str, Any] | None, start: int, stop: int | None) -> tuple[int, int, bool]:
    """(A worker's task.) `softreg.io.records.quote_count` of bytes ``start`` to ``stop``."""
    with _binary(source, options) as handle:
        return quote_count(handle, start, stop)


def scan_range(source: str, options: dict[str, Any] | None, start: int, stop: int | None, quoted: bool,
               first_line: int, reading: Reading, wanted: list[int]) -> Scan:
    """(A worker's task.) `softreg.io.records.scan_records` of the records starting in bytes ``start`` to ``stop``."""
    with _binary(source, options) as handle:
        return scan_records(handle, start, stop, quoted, first_line, reading, wanted)


Submit = Callable[..., Any]


def delimited_pieces(config: Config, size: int, at_least: int, workers: list[str], submit: Submit,
                     wait: Callable[[Any], Any]) -> list[Piece]:
    """The pieces of ``config``'s delimited source (``size`` bytes): about ``at_least`` of them,
    each whole chunks of data rows; one piece (the whole file) where it cannot be cut. ``submit(
    function, *args, worker=...)`` runs a task on a worker, ``wait`` gives its result."""
    whole = [Piece(0, 0, None)]
    n_ranges = min(at_least, size // MIN_RANGE_BYTES)
    if n_ranges < 2:
        return whole
    data = config.data
    found = wait(submit(head, config, worker=workers[0]))
    if found["refused"] is not None:
        _say_whole(data.source, found["refused"])
        return whole
    starts = [size * index // n_ranges for index in range(n_ranges)]
    ranges: list[tuple[int, int | None]] = list(zip(starts, [*starts[1:], None], strict=True))
    where = [workers[index % len(workers)] for index in range(n_ranges)]
    options = data.storage_options
    counted = [wait(future) for future in [submit(count_range, data.source, options, start, stop, worker=worker)
                                           for (start, stop), worker in zip(ranges, where, strict=True)]]
    if any(lone for _, _, lone in counted):
        _say_whole(data.source, "a carriage return in it ends no line (byte ranges need \\n or \\r\\n line ends)")
        return whole
    quoted, lines = [False], [1]
    for quotes, feeds, _ in counted[:-1]:
        quoted.append(bool((quoted[-1] + quotes) & 1))
        lines.append(lines[-1] + feeds)
    target = found["target"] if label_policy(data.missing) == "drop" else None

    def reading(header: bool) -> Reading:
        return Reading(found["separator"], target, found["codec"], header, found["bom"])

    scanned = [wait(future) for future in [
        submit(scan_range, data.source, options, start, stop, quoted[index], lines[index],
               reading(found["header"] and index == 0), [], worker=where[index])
        for index, (start, stop) in enumerate(ranges)]]
    irregular = next((scan.irregular for scan in scanned if scan.irregular is not None), None)
    if irregular is not None or scanned[0].header_left:
        _say_whole(data.source, f"it has {irregular}" if irregular else "its header is not near its head")
        return whole
    n_rows = sum(scan.rows for scan in scanned)
    per_piece = READ_ROWS * max(1, math.ceil(math.ceil(n_rows / READ_ROWS) / at_least))
    cuts = list(range(per_piece, n_rows, per_piece))
    if not cuts:
        return whole
    # each cut's row found by a scan from the mark before it (a record start outside quotes)
    firsts = list(itertools.accumulate((scan.rows for scan in scanned), initial=0))
    unlabelled_before = list(itertools.accumulate((scan.unlabelled for scan in scanned), initial=0))
    futures = []
    for number, cut in enumerate(cuts):
        index = bisect.bisect_right(firsts, cut) - 1
        marks = scanned[index].marks
        local, byte, line, unlabelled = marks[bisect.bisect_right(marks, (cut - firsts[index], math.inf)) - 1]
        futures.append((cut, unlabelled_before[index] + unlabelled, submit(
            scan_range, data.source, options, byte, None, False, line, reading(False), [cut - firsts[index] - local],
            worker=workers[number % len(workers)])))
    spans = [(0, 1, 0)]  # per piece: its first byte, line and labelled-row index
    for cut, unlabelled, future in futures:
        byte, line, more = wait(future).found[0]
        spans.append((byte, line, cut - unlabelled - more))
    return _pieces(found, spans, [0, *cuts, n_rows])


def _pieces(found: dict[str, Any], spans: list[tuple[int, int, int]], firsts: list[int]) -> list[Piece]:
    """The pieces starting at ``spans`` (byte, line, labelled-row index), holding data rows
    ``firsts[k]`` to ``firsts[k + 1]`` each; the first reads the file's head."""
    layout: ColumnKinds = found["layout"]
    pieces = []
    for number, (byte, line, labelled) in enumerate(spans):
        stop = spans[number + 1][0] if number + 1 < len(spans) else None
        span = Span(0, stop) if number == 0 else Span(byte, stop, line, found["names"], found["separator"])
        pieces.append(Piece(number, labelled, None, span, None if number == 0 else layout,
                            firsts[number + 1] - firsts[number]))
    return pieces


def check_counts(pieces: list[Piece], summaries: list[dict[str, Any]]) -> bool:
    """Whether every piece read the data rows the plan gave it, and its labelled rows end where
    the next piece's start."""
    for number, (piece, summary) in enumerate(zip(pieces, summaries, strict=True)):
        if piece.rows is None:
            continue
        if summary["n_read"] + summary["unlabelled"] != piece.rows:
            return False
        if number + 1 < len(pieces) and piece.start + summary["n_read"] != pieces[number + 1].start:
            return False
    return True


def _say_whole(source: str, why: str) -> None:
    warn(f"{source}: one worker reads it whole, since {why}")

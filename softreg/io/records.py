"""Where the records of a delimited file start, found in its bytes without parsing it, so that
readers can each take a byte range of whole records (`softreg.io.spans.Span`).

A record ends at a line feed outside quotes; whether a byte is inside quotes is the parity of
the quotes before it, which `quote_count` totals per byte range so that each range's scan
(`scan_records`) knows how it starts. That parity is the csv module's reading only where the
file quotes as RFC 4180 does (a quote opens a field, closes one before a delimiter or the line
end, or is doubled inside one): `scan_records` says where a file does not (``irregular``), and
so does a carriage return that is not part of a CRLF line end (a line end of its own to Python),
and the caller then reads the file whole.

A record is a data row unless it is blank (every cell whitespace: the text path skips it). Where
a row may lack a label (``data.missing`` not ``error``) each data row's label cell is looked at
too, since a row's index among the labelled rows decides its part and bucket. Records whose
bytes leave a doubt (no visible ASCII character; a quoted label, or one as short as a missing
token) are read by the csv module, as the text path reads them.
"""

from __future__ import annotations

import codecs
import csv
import io
from dataclasses import dataclass, field
from typing import IO

import numpy as np

from softreg.io.cells import missing_mask

QUOTE, LINE_FEED, RETURN = 0x22, 0x0A, 0x0D
BLOCK_BYTES = 1 << 23  # bytes scanned at a time
MARK_ROWS = 8192  # rows between marks
SHORT = 16  # doubtful label cells up to this many bytes are read as one array; longer ones one by one
_LONGEST_TOKEN = 4  # characters of the longest missing-label token ("null", "none"): a cell with more
# visible ASCII characters has a label; one with fewer is read (non-ASCII whitespace strips too)


def ascii_safe(codec: str) -> bool:
    """Whether every byte below 0x80 of text in ``codec`` (a `codecs.lookup` name) is that ASCII
    character, never part of another: what finding quotes, delimiters and line feeds in the bytes
    needs (not so in Shift JIS, Big5, GBK or ISO-2022, whose characters may hold such bytes)."""
    return codec in ("utf-8", "utf-8-sig", "ascii", "cp437", "cp850") or codec.startswith(
        ("iso8859-", "cp125", "koi8-", "mac-", "euc_"))


def quote_count(handle: IO[bytes], start: int, stop: int | None) -> tuple[int, int, bool]:
    """Quotes and line feeds among bytes ``start`` to ``stop`` (None: the end) of the file
    ``handle`` reads, and whether a carriage return there is not followed by a line feed."""
    quotes = feeds = 0
    lone = False
    handle.seek(start)
    position = start
    while stop is None or position < stop:
        block = handle.read(BLOCK_BYTES if stop is None else min(BLOCK_BYTES, stop - position))
        if not block:
            break
        position += len(block)
        quotes += block.count(b'"')
        feeds += block.count(b"\n")
        returns = block.count(b"\r")
        if returns and returns != block.count(b"\r\n") + block.endswith(b"\r"):
            lone = True
        if block.endswith(b"\r"):
            lone = lone or handle.read(1) != b"\n"
            handle.seek(position)
    return quotes, feeds, lone


@dataclass(frozen=True)
class Reading:
    """How the records are read: the delimiter, the label's column (None: labels not looked at),
    the Python codec (an ASCII-compatible one: `ascii_safe`), and whether the range's first
    non-blank record is the header (not a row)."""

    separator: str
    target: int | None
    codec: str
    header: bool = False
    bom: bool = False  # a UTF-8 byte-order mark at the file's head is not text (the text path skips it)


@dataclass
class Scan:
    """What `scan_records` found in a byte range: its data rows (those of the records that start
    in it), the rows among them without a label, and per wanted row ``(byte, line, unlabelled
    rows before it)``; ``irregular``: why the file cannot be cut by this reading (None: it can)."""

    rows: int = 0
    unlabelled: int = 0
    found: list[tuple[int, int, int]] = field(default_factory=list)
    marks: list[tuple[int, int, int, int]] = field(default_factory=list)  # every MARK_ROWS-th row: index, found
    irregular: str | None = None
    header_left: bool = False
    wanted: list[int] = field(default_factory=list)


def scan_records(
    handle: IO[bytes], start: int, stop: int | None, quoted: bool, first_line: int, reading: Reading,
    wanted: list[int] | None = None,
) -> Scan:
    """Scan the records that start in bytes ``start`` to ``stop`` of the file ``handle`` reads
    (``start`` inside quotes when ``quoted``, on file line ``first_line``). ``wanted``: range-local
    data-row indices whose start, line and unlabelled rows before are wanted (in `Scan.found`;
    the scan ends once it has found them)."""
    scan = Scan(header_left=reading.header, wanted=sorted(wanted or []))
    handle.seek(0)
    skipped = len(codecs.BOM_UTF8) if reading.bom and handle.read(len(codecs.BOM_UTF8)) == codecs.BOM_UTF8 else 0
    located = (skipped, first_line) if start <= skipped else _first_record(handle, start, quoted, first_line)
    if located is None:
        return scan
    at, line = located
    handle.seek(at)
    carry = b""
    while True:
        block = handle.read(BLOCK_BYTES)
        buffer = carry + block
        data = np.frombuffer(buffer, dtype=np.uint8)
        quotes = np.flatnonzero(data == QUOTE)  # a record starts at data[0]: outside quotes
        feeds = np.flatnonzero(data == LINE_FEED)
        ends = feeds[(np.searchsorted(quotes, feeds) & 1) == 0]
        if not block:
            if len(quotes) & 1:
                scan.irregular = "a quote left open at the end of the file (byte ranges need RFC 4180 quoting)"
                return scan
            if len(data) and (not len(ends) or ends[-1] != len(data) - 1):
                ends = np.append(ends, len(data))  # the last record, without a line end
        past = _records(scan, Bytes(data, quotes, feeds), ends, at, line, stop, reading)
        if past or scan.irregular is not None or not block or wanted and not scan.wanted:
            return scan
        used = int(ends[-1]) + 1 if len(ends) else 0
        line += int(np.searchsorted(feeds, used))
        at += used
        carry = buffer[used:]


def _first_record(handle: IO[bytes], start: int, quoted: bool, line: int) -> tuple[int, int] | None:
    """The byte and line where the first record starting at or after ``start`` starts (None: none does)."""
    if start == 0:
        return 0, line
    handle.seek(start - 1)
    if handle.read(1) == b"\n" and not quoted:
        return start, line
    at = start
    while block := handle.read(BLOCK_BYTES):
        data = np.frombuffer(block, dtype=np.uint8)
        quotes = np.flatnonzero(data == QUOTE)
        feeds = np.flatnonzero(data == LINE_FEED)
        ends = feeds[((np.searchsorted(quotes, feeds) + quoted) & 1) == 0]
        if len(ends):
            first = int(ends[0]) + 1
            return at + first, line + int(np.searchsorted(feeds, first))
        at += len(block)
        line += len(feeds)
        quoted = bool((quoted + len(quotes)) & 1)
    return None


@dataclass
class Bytes:
    """A buffer of a file from a record's start: its bytes, and where its quotes and line feeds are."""

    data: np.ndarray
    quotes: np.ndarray
    feeds: np.ndarray

    def outside(self, positions: np.ndarray) -> np.ndarray:
        """Which of ``positions`` are outside quotes (an even number of quotes before them)."""
        return (np.searchsorted(self.quotes, positions) & 1) == 0

    def quotes_in(self, low: np.ndarray, high: np.ndarray) -> np.ndarray:
        """Quotes among bytes ``low`` to ``high`` (each pair)."""
        return np.searchsorted(self.quotes, high) - np.searchsorted(self.quotes, low)


def _records(scan: Scan, buffer: Bytes, ends: np.ndarray, base: int, line: int, stop: int | None,
             reading: Reading) -> bool:
    """Count the records ending at ``ends`` (the buffer's byte 0 is file byte ``base``, a record's start
    on file line ``line``) into ``scan``; True once a record starts at or past ``stop``."""
    data = buffer.data
    starts = np.concatenate([[0], ends[:-1] + 1]).astype(np.int64) if len(ends) else np.empty(0, dtype=np.int64)
    past = False
    if stop is not None and len(starts) and base + starts[-1] >= stop:
        keep = int(np.searchsorted(base + starts, stop))
        starts, ends, past = starts[:keep], ends[:keep], True
    if not len(starts):
        return past
    region = int(ends[-1]) + 1  # the records' bytes and the last one's line feed
    scan.irregular = _irregular(Bytes(data[:region], buffer.quotes[buffer.quotes < region], buffer.feeds),
                                reading.separator)
    try:  # the text path says where the text is not the codec's; one reader of the whole file names that line
        data[:region].tobytes().decode(reading.codec)
    except UnicodeDecodeError:
        scan.irregular = scan.irregular or f"bytes that are not {reading.codec} text"
    if scan.irregular is not None:
        return past
    content_ends = ends - ((ends > starts) & (data[np.maximum(ends - 1, 0)] == RETURN))
    separator = ord(reading.separator)
    head = data[:region]
    visible = ((head > 32) & (head < 127) & (head != separator) & (head != QUOTE)).view(np.uint8)
    doubtful = np.flatnonzero(np.maximum.reduceat(visible, starts) == 0) if len(visible) else np.arange(len(starts))
    blank = np.zeros(len(starts), dtype=bool)
    for index in doubtful.tolist():
        row = _parsed(data, int(starts[index]), int(content_ends[index]), reading)
        blank[index] = not any(cell.strip() for cell in row)
    rows = np.flatnonzero(~blank)
    if scan.header_left and len(rows):
        rows, scan.header_left = rows[1:], False
    unlabelled = np.zeros(len(rows), dtype=bool)
    if reading.target is not None and len(rows):
        unlabelled = _unlabelled(buffer, starts[rows], content_ends[rows], reading)
    first = scan.rows
    before = np.concatenate([[0], np.cumsum(unlabelled)])

    def place(local: int) -> tuple[int, int, int]:
        record = int(starts[rows[local]])
        return (base + record, line + int(np.searchsorted(buffer.feeds, record)),
                scan.unlabelled + int(before[local]))

    while scan.wanted and scan.wanted[0] < first + len(rows):
        scan.found.append(place(scan.wanted.pop(0) - first))
    scan.marks += [(first + local, *place(local)) for local in range(-first % MARK_ROWS, len(rows), MARK_ROWS)]
    scan.rows += len(rows)
    scan.unlabelled += int(unlabelled.sum())
    return past


def _irregular(buffer: Bytes, separator: str) -> str | None:
    """Why the records' quotes or line ends are not what the parity reading assumes (None: they are)."""
    data = buffer.data
    following = np.flatnonzero(data == RETURN) + 1
    if np.any(following >= len(data)) or np.any(data[following[following < len(data)]] != LINE_FEED):
        return "a carriage return that ends no line (byte ranges need \\n or \\r\\n line ends)"
    if not len(buffer.quotes):
        return None
    sep = ord(separator)
    opening = buffer.quotes[0::2]  # an even number of quotes before it
    previous = data[np.maximum(opening - 1, 0)]
    if not np.all((opening == 0) | (previous == LINE_FEED) | (previous == sep) | (previous == QUOTE)):
        return "a quote inside a field (byte ranges need RFC 4180 quoting)"
    closing = buffer.quotes[1::2]
    after = data[np.minimum(closing + 1, len(data) - 1)]
    last = closing + 1 >= len(data)
    if not np.all(last | (after == sep) | (after == QUOTE) | (after == RETURN) | (after == LINE_FEED)):
        return "a quote followed by more of its field (byte ranges need RFC 4180 quoting)"
    return None


def _parsed(data: np.ndarray, start: int, stop: int, reading: Reading) -> list[str]:
    """The cells of the record at bytes ``start`` to ``stop``, as the csv module reads them."""
    text = data[start:stop].tobytes().decode(reading.codec, errors="replace")
    try:
        return next(csv.reader(io.StringIO(text, newline=""), delimiter=reading.separator), [])
    except csv.Error:  # (a field over the csv module's limit) a row with a label: its reader says what is wrong
        return ["\0"] * (1 + (reading.target or 0))


def _unlabelled(buffer: Bytes, starts: np.ndarray, ends: np.ndarray, reading: Reading) -> np.ndarray:
    """Which records (bytes ``starts`` to ``ends``) have a missing label in column ``reading.target``."""
    target = reading.target
    assert target is not None
    data = buffer.data
    candidates = np.flatnonzero(data[: int(ends[-1]) + 1] == ord(reading.separator))
    separators = candidates[buffer.outside(candidates)]
    first, last = np.searchsorted(separators, starts), np.searchsorted(separators, ends)
    has = last - first >= target  # a record short of the label's column is refused by the reader anyway
    padded = separators if len(separators) else np.zeros(1, dtype=np.int64)

    def separator(index: np.ndarray) -> np.ndarray:
        return padded[np.clip(index, 0, len(padded) - 1)]

    low = starts if target == 0 else np.where(has, separator(first + target - 1) + 1, starts)
    high = np.where(has & (first + target < last), separator(first + target), ends)
    offsets = low[:, None] + np.arange(SHORT)
    inside = offsets < high[:, None]
    cells = np.where(inside, data[np.minimum(offsets, len(data) - 1)], 0).astype(np.uint8)  # (n, SHORT)
    filled = ((cells > 32) & (cells < 127)).sum(axis=1)  # visible ASCII among the first SHORT bytes
    missing = np.zeros(len(starts), dtype=bool)
    by_csv = has & (buffer.quotes_in(low, high) > 0)
    short = has & ~by_csv & (high - low <= SHORT) & (filled <= _LONGEST_TOKEN)
    if short.any():
        texts, inverse = np.unique(cells[short].view(f"S{SHORT}").ravel(), return_inverse=True)
        missing[short] = missing_mask(np.char.decode(texts, reading.codec, errors="replace"))[inverse.ravel()]
    read = np.flatnonzero(by_csv | has & ~by_csv & (high - low > SHORT) & (filled <= _LONGEST_TOKEN))
    if len(read):
        rows = [_parsed(data, int(starts[index]), int(ends[index]), reading) for index in read.tolist()]
        labels = np.array([row[target] if len(row) > target else "x" for row in rows], dtype=str)  # short: refused
        missing[read] = missing_mask(labels)
    return missing

"""The shape of a source's data, told before loading it: read from ``X``'s header for ``.npz``,
known for the builtin sets, estimated for delimited text from the file's size and its first
`SNIFF_BYTES` (`softreg.cache.budget` compares it with the memory budget)."""

from __future__ import annotations

import csv
import zipfile
from pathlib import Path

from softreg.io.header import sniff_delimiter
from softreg.io.kinds import BUILTIN_PREFIX, source_kind
from softreg.io.npz import npz_shape
from softreg.io.remote import is_url

SNIFF_BYTES = 2**16  # the start of a delimited file read to estimate its rows

# rows x features of the builtin sets (scikit-learn's; tests/test_cache.py checks them)
BUILTIN_SHAPES = {"iris": (150, 4), "digits": (1797, 64), "wine": (178, 13), "breast_cancer": (569, 30)}

Shape = tuple[int, int, bool]  # rows, features, whether estimated


def source_shape(source: str) -> Shape | None:
    """``(n_rows, n_features, estimated)`` of ``source``'s data (None when it cannot be told
    before reading it: standard input, svmlight, Parquet, a URL, an unreadable file: then the
    loader says what is wrong). For delimited text the features are the columns but the label."""
    if is_url(source):
        return None
    kind = source_kind(source)
    if kind == "builtin":
        shape = BUILTIN_SHAPES.get(source[len(BUILTIN_PREFIX):])
        return None if shape is None else (*shape, False)
    path = Path(source)
    if source == "-" or kind == "svmlight" or not path.is_file():
        return None
    try:
        if kind == "npz":
            rows_columns = npz_shape(path)
            return None if rows_columns is None else (*rows_columns, False)
        return _delimited_shape(path)
    except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile, csv.Error):  # the loader will say
        return None


def estimated_rows(file_bytes: int, header_bytes: int, sample_bytes: int, sample_rows: int) -> int:
    """Data rows of a delimited file of ``file_bytes``, from ``sample_rows`` whole rows that take
    ``sample_bytes`` after a header of ``header_bytes``: the rest of the file at the same bytes per row."""
    if sample_rows == 0 or sample_bytes == 0:
        return 0
    return max(sample_rows, round((file_bytes - header_bytes) * sample_rows / sample_bytes))


def _delimited_shape(path: Path) -> Shape | None:
    """Rows from the file's size and its first `SNIFF_BYTES`; features: the columns but the label."""
    size = path.stat().st_size
    with open(path, "rb") as handle:
        start = handle.read(SNIFF_BYTES)
    lines = start.splitlines(keepends=True)
    if len(start) == size:  # the whole file: count, do not estimate
        whole = [line for line in lines if line.strip()]
        if not whole:
            return None
        return len(whole) - 1, max(1, _columns(whole[0]) - 1), True
    complete = [line for line in lines[:-1] if line.strip()]  # the last line read may be cut short
    if len(complete) < 2:
        return None
    header, rows = complete[0], complete[1:]
    n_rows = estimated_rows(size, len(header), sum(map(len, rows)), len(rows))
    return n_rows, max(1, _columns(header) - 1), True


def _columns(line: bytes) -> int:
    text = line.decode("utf-8", errors="replace").lstrip("\ufeff")
    delimiter = sniff_delimiter(text)
    return len(next(csv.reader([text.rstrip("\r\n")], delimiter=delimiter)))

"""A byte range of one delimited file (`Span`), for a reader that reads only some of its rows
(a Dask worker's share of an ingest: `softreg.engine.text_pieces` finds the ranges).

A span starts where a record starts and stops where the next span starts (or at the end of the
file). The span at the file's head reads its header as usual; a later one is handed the
columns and the delimiter that the head decided, and the file line it starts on, so that its
rows, and every error's line number, are those a reader of the whole file meets.
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from typing import IO

from softreg.io import remote


@dataclass(frozen=True)
class Span:
    """Bytes ``start`` to ``stop`` (None: the end of the file) of a delimited file.

    first_line : the file line (1: the first) that ``start`` begins
    names, separator : the file's columns and delimiter as its head decides them; None for the
        span that starts at the head, which reads them there
    """

    start: int
    stop: int | None
    first_line: int = 1
    names: tuple[str, ...] | None = None
    separator: str | None = None

    @property
    def at_head(self) -> bool:
        """Whether the span starts at the file's head (reads the header and skips a byte-order mark)."""
        return self.names is None


class _Window(io.RawIOBase):
    """Bytes ``start`` to ``stop`` of an open binary file, as a file of their own (positions are the file's)."""

    def __init__(self, raw: IO[bytes], start: int, stop: int | None) -> None:
        super().__init__()
        self._raw, self._start, self._stop = raw, start, stop
        raw.seek(start)

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def readinto(self, buffer: bytearray | memoryview) -> int:  # type: ignore[override]
        wanted = len(buffer)
        if self._stop is not None:
            wanted = max(0, min(wanted, self._stop - self._raw.tell()))
        data = self._raw.read(wanted)
        buffer[: len(data)] = data
        return len(data)

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        if whence == io.SEEK_SET:
            return self._raw.seek(self._start + offset) - self._start
        return self._raw.seek(offset, whence) - self._start

    def tell(self) -> int:
        return self._raw.tell() - self._start

    def close(self) -> None:
        if not self.closed:
            self._raw.close()
        super().close()


def open_span(path: str, span: Span) -> IO[bytes]:
    """The bytes of ``span`` of the file ``path`` (a local path or a URL), buffered; OSError as `open`'s."""
    raw = remote.open_binary(path) if remote.is_url(path) else open(path, "rb")  # noqa: SIM115 (closed with the window)
    return io.BufferedReader(_Window(raw, span.start, span.stop))
